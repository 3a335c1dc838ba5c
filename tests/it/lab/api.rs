//! The lab answers as Kong of each node's version does (the corpus comparison is in
//! `conformance`): data planes without an Admin API, control planes listing them, readiness,
//! proxies' headers, crashes.

use std::time::{Duration, Instant};

use kongup::plan::model::Role;
use kongup::plan::steps::ClusterSide;
use kongup::sim::{DEMO_API_KEY, Fault, Lab, LabOptions, NodeEndpoint, Scenario};
use serde_json::Value;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client")
}

fn node<'a>(nodes: &'a [NodeEndpoint], name: &str) -> &'a NodeEndpoint {
    nodes.iter().find(|n| n.name == name).expect("node in lab")
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("lab answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Polls `check` until it returns true or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_planes_have_a_status_api_and_a_proxy_but_no_admin_api() {
    let lab = Lab::start(
        Scenario::Hybrid,
        LabOptions {
            y_deployed: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    for n in &endpoints.nodes {
        match n.role {
            Role::DataPlane => {
                // kong/templates/nginx_kong.lua renders no admin server for a data plane.
                assert_eq!(n.admin, None, "{}", n.name);
                assert!(n.proxy.is_some(), "{}", n.name);
            }
            _ => {
                let (code, root) =
                    get_json(&client, &format!("{}/", n.admin.clone().unwrap())).await;
                assert_eq!(code, 200, "{}", n.name);
                assert_eq!(root["version"], n.version.to_string());
                assert_eq!(root["configuration"]["role"], n.role.as_str());
            }
        }
        let (code, status) = get_json(&client, &format!("{}/status", n.status)).await;
        assert_eq!(code, 200, "{}", n.name);
        // 3.x: `database` only where there is one; `configuration_hash` only on data planes.
        assert_eq!(status.get("database").is_some(), n.role != Role::DataPlane);
        assert_eq!(
            status.get("configuration_hash").is_some(),
            n.role == Role::DataPlane
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_planes_are_listed_by_their_control_plane_and_refused_elsewhere() {
    let lab = Lab::start(
        Scenario::Hybrid,
        LabOptions {
            y_deployed: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let y_cp = node(&endpoints.nodes, "cp-y-1").admin.clone().unwrap();

    // Y's control plane runs 3.10.0: its rows carry every column up to rpc_capabilities.
    let (code, body) = get_json(&client, &format!("{y_cp}/clustering/data-planes")).await;
    assert_eq!(code, 200);
    assert_eq!(keys(&body), sorted(&["data", "next"]));
    assert!(body["next"].is_null());
    let rows = body["data"].as_array().expect("data is a list");
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(
            keys(row),
            sorted(&[
                "cert_details",
                "config_hash",
                "hostname",
                "id",
                "ip",
                "labels",
                "last_seen",
                "rpc_capabilities",
                "sync_status",
                "ttl",
                "updated_at",
                "version"
            ])
        );
        assert_eq!(row["labels"], serde_json::json!({}));
        assert_eq!(row["rpc_capabilities"], serde_json::json!([]));
        assert_eq!(row["sync_status"], "normal");
        assert_eq!(row["version"], "3.10.0");
    }
    // Each data plane from an address of its own, as from a host of its own (where the
    // system has more loopback addresses than 127.0.0.1).
    let ips: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["ip"].as_str()).collect();
    for n in endpoints.nodes.iter().filter(|n| n.role == Role::DataPlane) {
        let host = n
            .status
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap();
        if n.cluster == ClusterSide::Y {
            assert!(ips.contains(host), "{} at {host}, rows {ips:?}", n.name);
        }
    }

    // X's runs 3.4.2: no labels, cert_details nor rpc_capabilities yet.
    let x_cp = node(&endpoints.nodes, "cp-x-1").admin.clone().unwrap();
    let (_, body) = get_json(&client, &format!("{x_cp}/clustering/data-planes?size=1")).await;
    assert_eq!(
        keys(&body["data"][0]),
        sorted(&[
            "config_hash",
            "hostname",
            "id",
            "ip",
            "last_seen",
            "sync_status",
            "ttl",
            "updated_at",
            "version"
        ])
    );
    // One row a page: a `next` link (with `size` from 3.1) and the offset.
    let next = body["next"].as_str().expect("a next page");
    assert!(
        next.starts_with("/clustering/data-planes?offset="),
        "{next}"
    );
    assert!(next.ends_with("&size=1"), "{next}");
    assert!(body["offset"].is_string());
    let (_, last) = get_json(&client, &format!("{x_cp}{next}")).await;
    assert_eq!(keys(&last), sorted(&["data", "next"]));
    assert_ne!(last["data"][0]["id"], body["data"][0]["id"]);

    // Not a control plane: Kong's 400 and message.
    let traditional = Lab::start(Scenario::DualCluster, LabOptions::default())
        .await
        .unwrap();
    let x1 = traditional.endpoints().nodes[0].admin.clone().unwrap();
    let (code, body) = get_json(&client, &format!("{x1}/clustering/data-planes")).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        "this endpoint is only available when Kong is configured to run as Control Plane for the cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rpc_sync_a_3_10_control_plane_lists_its_data_planes_under_their_node_id() {
    let lab = Lab::start(
        Scenario::Hybrid,
        LabOptions {
            y_deployed: true,
            rpc_sync: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let y_cp = node(&endpoints.nodes, "cp-y-1").admin.clone().unwrap();
    let (_, body) = get_json(&client, &format!("{y_cp}/clustering/data-planes")).await;
    for row in body["data"].as_array().unwrap() {
        assert_eq!(row["hostname"], row["id"], "{row}");
        assert_eq!(row["rpc_capabilities"], serde_json::json!(["kong.sync.v2"]));
        let hash = row["config_hash"].as_str().unwrap();
        assert!(hash.starts_with("v02_") && hash.len() == 32, "{hash}");
    }
    // X's 3.4.2 control plane has no RPC sync: real hostnames.
    let x_cp = node(&endpoints.nodes, "cp-x-1").admin.clone().unwrap();
    let (_, body) = get_json(&client, &format!("{x_cp}/clustering/data-planes")).await;
    let hostnames: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["hostname"].as_str())
        .collect();
    assert!(
        hostnames.iter().all(|h| h.starts_with("dp-x-")),
        "{hostnames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_whose_minor_is_above_its_control_planes_is_incompatible() {
    let lab = Lab::start(
        Scenario::Hybrid,
        LabOptions {
            y_deployed: true,
            faults: vec![Fault::DpIncompatible],
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let x_cp = node(&endpoints.nodes, "cp-x-1").admin.clone().unwrap();
    let (_, body) = get_json(&client, &format!("{x_cp}/clustering/data-planes")).await;
    let status = |body: &Value, host: &str| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|dp| dp["hostname"] == host)
            .map(|dp| dp["sync_status"].as_str().unwrap().to_string())
    };
    // dp-y-1 (3.10) now reports to cp-x-1 (3.4): 10 > 4.
    assert_eq!(
        status(&body, "dp-y-1").as_deref(),
        Some("kong_version_incompatible")
    );
    assert_eq!(status(&body, "dp-x-1").as_deref(), Some("normal"));
    let metrics = client
        .get(format!("{x_cp}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kong_data_plane_version_compatible{")
                && l.contains("hostname=\"dp-y-1\"")
                && l.ends_with(" 0")),
        "{metrics}"
    );

    // Lifting the fault sends it back to its own control plane.
    lab.clear_faults().await.unwrap();
    let y_cp = node(&endpoints.nodes, "cp-y-1").admin.clone().unwrap();
    let (_, body) = get_json(&client, &format!("{y_cp}/clustering/data-planes")).await;
    assert_eq!(status(&body, "dp-y-1").as_deref(), Some("normal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_shows_in_status_ready_and_metrics() {
    let lab = Lab::start(Scenario::InPlace, LabOptions::default())
        .await
        .unwrap();
    let x1 = node(&lab.endpoints().nodes, "kong-x-1").clone();
    let client = client();
    lab.apply_fault(&"x-db-down".parse().unwrap())
        .await
        .unwrap();
    let (code, body) = get_json(&client, &format!("{}/status/ready", x1.status)).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (503, Some("failed to connect to database"))
    );
    let (_, status) = get_json(&client, &format!("{}/status", x1.status)).await;
    assert_eq!(status["database"]["reachable"], Value::Bool(false));
    lab.clear_faults().await.unwrap();
    let (code, _) = get_json(&client, &format!("{}/status/ready", x1.status)).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_ready_answers_503_draining_after_a_drain() {
    let lab = Lab::start(
        Scenario::DblessRolling,
        LabOptions {
            y_deployed: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let y1 = node(&endpoints.nodes, "kong-y-1").status.clone();
    let (code, body) = get_json(&client, &format!("{y1}/status/ready")).await;
    assert_eq!((code, body["message"].as_str()), (200, Some("ready")));

    // What `kong drain` does (3.9+): POST {"status":"draining"} to the Status API.
    let response = client
        .post(format!("{y1}/status/ready"))
        .json(&serde_json::json!({"status": "draining"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let (code, body) = get_json(&client, &format!("{y1}/status/ready")).await;
    assert_eq!(code, 503);
    assert_eq!(body["message"], "draining");
    assert!(
        !lab.nodes()
            .iter()
            .find(|n| n.name == "kong-y-1")
            .unwrap()
            .ready
    );

    // X runs 3.9.1: it has /status/ready and `kong drain` too; an unknown body is a 400.
    let x1 = node(&endpoints.nodes, "kong-x-1").status.clone();
    let response = client
        .post(format!("{x1}/status/ready"))
        .json(&serde_json::json!({"status": "sleepy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_carry_kongs_headers_and_name_their_node() {
    let lab = Lab::start(
        Scenario::DualCluster,
        LabOptions {
            y_deployed: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    for (name, via, server) in [
        // Before 3.8, nginx's own Server passes; from 3.8 Kong's when the upstream sent none.
        ("kong-x-1", "kong/3.4.3.12-enterprise-edition", "openresty"),
        (
            "kong-y-1",
            "1.1 kong/3.10.0.1-enterprise-edition",
            "kong/3.10.0.1-enterprise-edition",
        ),
    ] {
        let proxy = node(&endpoints.nodes, name).proxy.clone().unwrap();
        let response = client.get(format!("{proxy}/orders")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["via"], via);
        assert_eq!(headers["server"], server);
        assert!(
            headers["x-kong-upstream-latency"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        assert!(
            headers["x-kong-proxy-latency"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["node"], name);
        assert_eq!(
            body["cluster"],
            if name.contains("-x-") { "x" } else { "y" }
        );
    }

    let proxy = node(&endpoints.nodes, "kong-y-2").proxy.clone().unwrap();
    let response = client.get(format!("{proxy}/secure")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Key");
    let id = response.headers()["x-kong-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    // kong.response.error's template, with the request id from 3.5.
    assert_eq!(
        response.text().await.unwrap(),
        format!(
            "{{\n  \"message\":\"No API key found in request\",\n  \"request_id\":\"{id}\"\n}}"
        )
    );
    let response = client
        .get(format!("{proxy}/secure"))
        .header("apikey", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = client
        .get(format!("{proxy}/secure"))
        .header("apikey", DEMO_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = client.get(format!("{proxy}/nowhere")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "no Route matched with those values");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_stops_answering_and_comes_back_when_faults_clear() {
    let lab = Lab::start(
        Scenario::DualCluster,
        LabOptions {
            y_deployed: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let y1 = node(&endpoints.nodes, "kong-y-1").clone();
    let done = lab.apply_fault(&Fault::Crash { node: None }).await.unwrap();
    assert!(done.contains("kong-y-1"), "{done}");
    for url in [
        format!("{}/status", y1.status),
        format!("{}/orders", y1.proxy.clone().unwrap()),
    ] {
        let refused = client.get(&url).send().await;
        assert!(refused.is_err(), "{url} still answers");
    }
    assert!(lab.faults().crashed.contains(&"kong-y-1".to_string()));
    lab.clear_faults().await.unwrap();
    let back = eventually(Duration::from_secs(5), || {
        let client = client.clone();
        let url = format!("{}/status", y1.status);
        async move {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    assert!(back, "kong-y-1 did not come back");
    assert!(
        lab.nodes()
            .iter()
            .filter(|n| n.cluster == ClusterSide::Y)
            .all(|n| n.ready)
    );
}

//! The lab answers as Kong does: its bodies deserialize into the client's types
//! (`kongup::kong::types`) and carry exactly the keys of KONG.md's shapes.

use std::time::{Duration, Instant};

use kongup::kong::types::{
    DataPlaneList, Message, NOT_A_CONTROL_PLANE, NodeInfo, NodeStatus, SyncStatus,
};
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
async fn admin_root_and_status_match_kongs_shapes_and_the_client_types() {
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
        let (code, root) = get_json(&client, &format!("{}/", n.admin)).await;
        assert_eq!(code, 200, "{}", n.name);
        assert_eq!(
            keys(&root),
            sorted(&[
                "configuration",
                "edition",
                "hostname",
                "node_id",
                "plugins",
                "tagline",
                "version"
            ])
        );
        assert!(root["plugins"]["available_on_server"].is_object());
        assert!(root["plugins"]["enabled_in_cluster"].is_array());
        let info: NodeInfo = serde_json::from_value(root.clone()).expect("NodeInfo");
        assert_eq!(info.version, n.version.to_string());
        assert_eq!(info.edition.as_deref(), Some("enterprise"));
        assert_eq!(info.configuration.role, n.role.as_str());
        let expected_db = if n.role == Role::ControlPlane {
            "postgres"
        } else {
            "off"
        };
        assert_eq!(info.configuration.database, expected_db, "{}", n.name);

        let (code, status) = get_json(&client, &format!("{}/status", n.status)).await;
        assert_eq!(code, 200);
        let server_keys = sorted(&[
            "connections_accepted",
            "connections_active",
            "connections_handled",
            "connections_reading",
            "connections_waiting",
            "connections_writing",
            "total_requests",
        ]);
        assert_eq!(keys(&status["server"]), server_keys);
        for key in &server_keys {
            assert!(status["server"][key].is_u64(), "server.{key} is a number");
        }
        if n.role == Role::ControlPlane {
            // DB-backed: `database.reachable`, no configuration hash.
            assert_eq!(keys(&status), sorted(&["database", "memory", "server"]));
            assert_eq!(status["database"]["reachable"], Value::Bool(true));
        } else {
            // Data planes: `configuration_hash`, no database.
            assert_eq!(
                keys(&status),
                sorted(&["configuration_hash", "memory", "server"])
            );
            assert_eq!(
                status["configuration_hash"].as_str().map(str::len),
                Some(32)
            );
        }
        let typed: NodeStatus = serde_json::from_value(status).expect("NodeStatus");
        assert!(typed.server.total_requests >= 1);
        // The Admin API serves /status too, with the same shape.
        let (_, admin_status) = get_json(&client, &format!("{}/status", n.admin)).await;
        assert_eq!(keys(&admin_status["server"]), server_keys);
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

    let (code, body) = get_json(
        &client,
        &format!(
            "{}/clustering/data-planes",
            node(&endpoints.nodes, "cp-y-1").admin
        ),
    )
    .await;
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
                "sync_status",
                "ttl",
                "updated_at",
                "version"
            ])
        );
        assert_eq!(keys(&row["cert_details"]), sorted(&["expiry_timestamp"]));
        assert!(row["last_seen"].is_i64());
        assert_eq!(row["sync_status"], "normal");
    }
    let list: DataPlaneList = serde_json::from_value(body).expect("DataPlaneList");
    assert!(list.data.iter().all(|dp| dp.version == "3.10.0.1"));

    // Not a control plane: Kong's 400 and message, on data planes too.
    for name in ["dp-y-1", "dp-x-2"] {
        let response = client
            .get(format!(
                "{}/clustering/data-planes",
                node(&endpoints.nodes, name).admin
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let message: Message = response.json().await.unwrap();
        assert_eq!(message.message, NOT_A_CONTROL_PLANE);
    }
    let traditional = Lab::start(Scenario::DualCluster, LabOptions::default())
        .await
        .unwrap();
    let x1 = traditional.endpoints().nodes[0].admin.clone();
    let (code, body) = get_json(&client, &format!("{x1}/clustering/data-planes")).await;
    assert_eq!(code, 400);
    assert_eq!(body["message"], NOT_A_CONTROL_PLANE);
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
    let x_cp = node(&endpoints.nodes, "cp-x-1").admin.clone();
    let (_, body) = get_json(&client, &format!("{x_cp}/clustering/data-planes")).await;
    let list: DataPlaneList = serde_json::from_value(body).unwrap();
    let status = |host: &str| {
        list.data
            .iter()
            .find(|dp| dp.hostname == host)
            .map(|dp| dp.sync_status)
    };
    // dp-y-1 (3.10) now reports to cp-x-1 (3.4): 10 > 4.
    assert_eq!(status("dp-y-1"), Some(SyncStatus::KongVersionIncompatible));
    assert_eq!(status("dp-x-1"), Some(SyncStatus::Normal));
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
    let y_cp = node(&endpoints.nodes, "cp-y-1").admin.clone();
    let (_, body) = get_json(&client, &format!("{y_cp}/clustering/data-planes")).await;
    let list: DataPlaneList = serde_json::from_value(body).unwrap();
    assert!(
        list.data
            .iter()
            .any(|dp| dp.hostname == "dp-y-1" && dp.sync_status == SyncStatus::Normal)
    );
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
    let message: Message = serde_json::from_value(body).unwrap();
    assert_eq!(message.message, "draining");
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
    for (name, via) in [
        ("kong-x-1", "kong/3.4.3.12-enterprise-edition"),
        ("kong-y-1", "1.1 kong/3.10.0.1-enterprise-edition"),
    ] {
        let proxy = node(&endpoints.nodes, name).proxy.clone().unwrap();
        let response = client.get(format!("{proxy}/orders")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["via"], via);
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
    let message: Message = response.json().await.unwrap();
    assert_eq!(message.message, "No API key found in request");
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
    let message: Message = response.json().await.unwrap();
    assert_eq!(message.message, "no Route matched with those values");
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
        format!("{}/status", y1.admin),
        format!("{}/orders", y1.proxy.clone().unwrap()),
    ] {
        let refused = client.get(&url).send().await;
        assert!(refused.is_err(), "{url} still answers");
    }
    assert!(lab.faults().crashed.contains(&"kong-y-1".to_string()));
    lab.clear_faults().await.unwrap();
    let back = eventually(Duration::from_secs(5), || {
        let client = client.clone();
        let url = format!("{}/status", y1.admin);
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

//! The lab's `/metrics`: valid Prometheus text with Kong's series, counters that move with
//! the traffic the balancer sends, and injected faults visible in Y's 5xx.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kongup::lb::{Split, TrafficDriver};
use kongup::plan::steps::ClusterSide;
use kongup::sim::{Fault, Lab, LabOptions, MetricsFlags, NodeEndpoint, Scenario};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client")
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a text body")
}

/// A minimal check of the text format: every line is a comment (`# HELP`/`# TYPE` with a
/// name) or `name{labels} value` with a numeric value and well-formed labels; every family
/// is typed before its samples. Returns the samples as (name, labels, value).
fn parse_exposition(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let kind = words.next().unwrap();
            let name = words.next().expect("a metric name after # HELP/# TYPE");
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                let t = words.next().expect("a type");
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                typed.insert(name.to_string(), t.to_string());
            }
            continue;
        }
        assert!(!line.is_empty(), "no blank lines in Kong's output");
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("numeric value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("closing brace: {line}"));
                let mut labels = BTreeMap::new();
                if !body.is_empty() {
                    for pair in body.split("\",") {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("label: {line}"));
                        labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                    }
                }
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name: {line}"
        );
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&name);
        assert!(typed.contains_key(family), "{name} has no # TYPE before it");
        samples.push((name, labels, value));
    }
    samples
}

fn sum_of(
    samples: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    pred: impl Fn(&BTreeMap<String, String>) -> bool,
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && pred(l))
        .map(|(_, _, v)| v)
        .sum()
}

async fn cluster_requests(
    client: &reqwest::Client,
    nodes: &[NodeEndpoint],
    side: ClusterSide,
) -> (f64, f64) {
    let mut total = 0.0;
    let mut errors = 0.0;
    for n in nodes
        .iter()
        .filter(|n| n.cluster == side && n.proxy.is_some())
    {
        let samples = parse_exposition(&scrape(client, &n.status).await);
        total += sum_of(&samples, "kong_http_requests_total", |_| true);
        errors += sum_of(&samples, "kong_http_requests_total", |l| {
            l["code"].starts_with('5')
        });
    }
    (total, errors)
}

async fn wait_for<F, Fut>(within: Duration, mut check: F) -> bool
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_parses_and_has_kongs_series() {
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
    // One request through each proxy, so the per-route series exist.
    for n in endpoints.nodes.iter().filter(|n| n.proxy.is_some()) {
        let proxy = n.proxy.clone().unwrap();
        client.get(format!("{proxy}/orders")).send().await.unwrap();
    }
    for n in &endpoints.nodes {
        let text = scrape(&client, &n.status).await;
        let samples = parse_exposition(&text);
        // The crate the metrics engineer may use reads it too.
        let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("prometheus-parse reads the lab's exposition");
        assert!(!parsed.samples.is_empty());

        let names: Vec<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
        for always in [
            "kong_nginx_connections_total",
            "kong_nginx_requests_total",
            "kong_datastore_reachable",
            "kong_node_info",
            "kong_memory_workers_lua_vms_bytes",
            "kong_memory_lua_shared_dict_bytes",
        ] {
            assert!(names.contains(&always), "{} lacks {always}", n.name);
        }
        let info = samples
            .iter()
            .find(|(name, _, _)| name == "kong_node_info")
            .unwrap();
        assert_eq!(info.1["version"], n.version.to_string());
        let states: Vec<&str> = samples
            .iter()
            .filter(|(name, _, _)| name == "kong_nginx_connections_total")
            .map(|(_, l, _)| l["state"].as_str())
            .collect();
        for state in [
            "accepted", "active", "handled", "reading", "waiting", "writing", "total",
        ] {
            assert!(states.contains(&state), "{state}");
        }
        if n.role == kongup::plan::model::Role::ControlPlane {
            for cp_only in [
                "kong_data_plane_last_seen",
                "kong_data_plane_config_hash",
                "kong_data_plane_version_compatible",
            ] {
                assert!(names.contains(&cp_only), "{} lacks {cp_only}", n.name);
            }
            continue;
        }
        let requests: Vec<_> = samples
            .iter()
            .filter(|(name, _, _)| name == "kong_http_requests_total")
            .collect();
        assert!(!requests.is_empty(), "{}", n.name);
        let labels: Vec<&String> = requests[0].1.keys().collect();
        // The workspace label exists from 3.7: Y (3.10) has it, X (3.4) not.
        let mut expected = vec!["code", "consumer", "route", "service", "source"];
        if n.cluster == ClusterSide::Y {
            expected.push("workspace");
        }
        expected.sort();
        assert_eq!(labels, expected, "{}", n.name);
        for hist in [
            "kong_request_latency_ms",
            "kong_upstream_latency_ms",
            "kong_kong_latency_ms",
        ] {
            let count = sum_of(&samples, &format!("{hist}_count"), |_| true);
            let inf = sum_of(&samples, &format!("{hist}_bucket"), |l| l["le"] == "+Inf");
            assert!(count >= 1.0, "{hist} on {}", n.name);
            assert_eq!(count, inf, "+Inf bucket equals _count");
        }
        // Kong's upstream buckets.
        let les: Vec<&str> = samples
            .iter()
            .filter(|(name, l, _)| {
                name == "kong_upstream_latency_ms_bucket" && l["route"] == "orders"
            })
            .map(|(_, l, _)| l["le"].as_str())
            .collect();
        assert_eq!(
            les,
            [
                "25", "50", "80", "100", "250", "400", "700", "1000", "2000", "5000", "10000",
                "30000", "60000", "+Inf"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_the_split_and_a_fault_raises_ys_5xx() {
    let lab = Lab::start(
        Scenario::DualCluster,
        LabOptions {
            y_deployed: true,
            traffic_rps: 200.0,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let driver = lab.traffic_driver();

    // All to X at first: X's counters move, Y's stay at zero.
    assert!(
        wait_for(Duration::from_secs(10), || {
            let client = client.clone();
            let nodes = endpoints.nodes.clone();
            async move { cluster_requests(&client, &nodes, ClusterSide::X).await.0 >= 50.0 }
        })
        .await
    );
    assert_eq!(
        cluster_requests(&client, &endpoints.nodes, ClusterSide::Y)
            .await
            .0,
        0.0
    );

    driver.set_split(Split::to_y(50)).await.unwrap();
    assert_eq!(driver.read_split().await.unwrap(), Some(Split::to_y(50)));
    lab.apply_fault(&Fault::ErrorRatio {
        cluster: ClusterSide::Y,
        ratio: 0.3,
    })
    .await
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || {
            let client = client.clone();
            let nodes = endpoints.nodes.clone();
            async move { cluster_requests(&client, &nodes, ClusterSide::Y).await.0 >= 200.0 }
        })
        .await,
        "Y's counters did not move after the shift"
    );
    let (y_total, y_errors) = cluster_requests(&client, &endpoints.nodes, ClusterSide::Y).await;
    let ratio = y_errors / y_total;
    assert!(
        (0.15..0.45).contains(&ratio),
        "Y's 5xx ratio {ratio} after a 0.3 fault"
    );
    let (_, x_errors) = cluster_requests(&client, &endpoints.nodes, ClusterSide::X).await;
    assert_eq!(x_errors, 0.0, "X has no fault");

    // Back to X: once the requests already sent to Y are answered (X has served 50 more
    // since), Y serves nothing more while X goes on.
    driver.set_split(Split::ALL_X).await.unwrap();
    let served_x_reaches = |target: u64| {
        let lab = lab.clone();
        wait_for(Duration::from_secs(10), move || {
            let lab = lab.clone();
            async move { lab.served(ClusterSide::X).0 >= target }
        })
    };
    assert!(served_x_reaches(lab.served(ClusterSide::X).0 + 50).await);
    let (y_before, _) = lab.served(ClusterSide::Y);
    assert!(served_x_reaches(lab.served(ClusterSide::X).0 + 100).await);
    assert_eq!(
        lab.served(ClusterSide::Y).0,
        y_before,
        "Y still served after the split went back to X"
    );
    let stats = lab.traffic_stats().expect("the generator runs");
    assert!(stats.answered(ClusterSide::Y) > 0 && stats.answered(ClusterSide::X) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_flags_off_the_status_and_latency_series_are_absent() {
    let lab = Lab::start(
        Scenario::InPlace,
        LabOptions {
            metrics_flags: MetricsFlags::ALL_OFF,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let client = client();
    let x1 = endpoints
        .nodes
        .iter()
        .find(|n| n.name == "kong-x-1")
        .unwrap();
    for _ in 0..5 {
        client
            .get(format!("{}/orders", x1.proxy.clone().unwrap()))
            .send()
            .await
            .unwrap();
    }
    let text = scrape(&client, &x1.status).await;
    parse_exposition(&text);
    assert!(!text.contains("kong_http_requests_total"));
    assert!(!text.contains("_latency_ms"));
    assert!(text.contains("kong_nginx_requests_total"));
    // The lab still counts what it served.
    assert_eq!(lab.served(ClusterSide::X).0, 5);

    lab.set_metrics_flags(MetricsFlags::ALL_ON);
    client
        .get(format!("{}/orders", x1.proxy.clone().unwrap()))
        .send()
        .await
        .unwrap();
    let samples = parse_exposition(&scrape(&client, &x1.status).await);
    assert_eq!(sum_of(&samples, "kong_http_requests_total", |_| true), 1.0);
}

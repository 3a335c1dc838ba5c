//! `kongup lab --json`: the first line is the endpoints; they answer over real HTTP; the
//! traffic moves /metrics; SIGINT stops the lab cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kongup::cli::lab::LabJson;

/// Kills the lab if a test fails before stopping it.
pub(super) struct LabProcess(pub(super) Child);

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn spawn_lab(args: &[&str]) -> (LabProcess, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("kongup"))
        .arg("lab")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kongup starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("kongup lab printed its endpoints");
    (LabProcess(child), first)
}

pub(super) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn requests_total(client: &reqwest::Client, status_url: &str) -> f64 {
    let text = client
        .get(format!("{status_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("kong_http_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_json_endpoints_answer_and_traffic_moves_the_metrics() {
    let (mut lab, first) = spawn_lab(&["--scenario", "dual-cluster", "--json", "--traffic", "50"]);
    let value: serde_json::Value = serde_json::from_str(&first).expect("the first line is JSON");
    assert_eq!(
        value.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["nodes"]
    );
    let parsed: LabJson = serde_json::from_value(value).unwrap();
    assert_eq!(parsed.nodes.len(), 4);
    let client = client();
    for node in &parsed.nodes {
        assert!(["x", "y"].contains(&node.cluster.as_str()));
        assert_eq!(node.role, "traditional");
        let admin = node
            .admin
            .as_deref()
            .expect("a traditional node's Admin API");
        let root: serde_json::Value = client
            .get(format!("{admin}/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(root["version"], node.version.as_str());
        let ready = client
            .get(format!("{}/status/ready", node.status))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.status().as_u16(),
            200,
            "{} is ready: Y runs too",
            node.name
        );
        let proxied = client
            .get(format!("{}/users", node.proxy.clone().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status().as_u16(), 200);
        let body: serde_json::Value = proxied.json().await.unwrap();
        assert_eq!(body["node"], node.name.as_str());
    }

    // The generator sends to X (the balancer starts at 100% X): X's counters move.
    let x1 = parsed.nodes.iter().find(|n| n.name == "kong-x-1").unwrap();
    let start = requests_total(&client, &x1.status).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if requests_total(&client, &x1.status).await >= start + 10.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kong-x-1's counters did not move"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGINT stops the lab, with exit status 0, and its ports close.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lab.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = lab.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kongup lab did not stop on SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        client
            .get(format!("{}/status", x1.status))
            .send()
            .await
            .is_err()
    );
}

#[test]
fn lab_refuses_an_unknown_scenario_and_fault() {
    let output = Command::new(assert_cmd::cargo::cargo_bin!("kongup"))
        .args(["lab", "--scenario", "canary"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("'canary' is not a lab scenario"),
        "{stderr}"
    );
    let output = Command::new(assert_cmd::cargo::cargo_bin!("kongup"))
        .args(["lab", "--fault", "y-errors=3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("between 0 and 1"));
}

/// The hybrid lab lists its control planes and data planes by role, and `kongup init`
/// against X's control plane writes a plan that validates, with X's data planes in it.
#[test]
fn init_against_the_hybrid_lab_writes_a_plan_that_validates() {
    let (mut lab, first) = spawn_lab(&["--scenario", "hybrid", "--json"]);
    let parsed: LabJson = serde_json::from_str(&first).expect("the first line is JSON");
    let roles: Vec<(&str, &str)> = parsed
        .nodes
        .iter()
        .map(|n| (n.cluster.as_str(), n.role.as_str()))
        .collect();
    for expected in [
        ("x", "control_plane"),
        ("x", "data_plane"),
        ("y", "control_plane"),
        ("y", "data_plane"),
    ] {
        assert!(roles.contains(&expected), "{expected:?} in {roles:?}");
    }
    // Data planes have no Admin API: `"admin": null`.
    for node in &parsed.nodes {
        assert_eq!(
            node.admin.is_none(),
            node.role == "data_plane",
            "{}: {:?}",
            node.name,
            node.admin
        );
    }
    assert!(first.contains(r#""admin":null"#), "{first}");
    let x_control_planes: Vec<&str> = parsed
        .nodes
        .iter()
        .filter(|n| n.cluster == "x" && n.role == "control_plane")
        .filter_map(|n| n.admin.as_deref())
        .collect();
    let x_data_planes: Vec<&str> = parsed
        .nodes
        .iter()
        .filter(|n| n.cluster == "x" && n.role == "data_plane")
        .map(|n| n.name.as_str())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    let mut init = assert_cmd::Command::cargo_bin("kongup").unwrap();
    init.arg("init");
    for admin in &x_control_planes {
        init.args(["--admin", admin]);
    }
    let out = init
        .args(["--to", "3.10.0", "-o"])
        .arg(&plan)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(out.status.success(), "kongup init: {out:?}");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains("mode: hybrid"), "{text}");
    for name in &x_data_planes {
        assert!(
            text.contains(name),
            "data plane {name} in the plan:\n{text}"
        );
    }
    let out = assert_cmd::Command::cargo_bin("kongup")
        .unwrap()
        .arg("validate")
        .arg(&plan)
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the plan init wrote does not validate: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lab.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let _ = lab.0.wait();
}

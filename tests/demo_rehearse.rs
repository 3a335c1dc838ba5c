//! `kongup run PLAN --rehearse`: an operator's own plan (ssh executors, HAProxy, secrets
//! that are not set here, TLS to the Admin API, install commands the lab does not simulate)
//! walks to done against a lab shaped like it, in a run directory of its own.

mod demo_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kongup::demo::rehearse;
use kongup::engine::RunOptions;
use kongup::engine::journal::JOURNAL_FILE;
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::load::load_plan;
use kongup::plan::steps::ClusterSide;
use kongup::sim::node::Lifecycle;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rehearsal-payments.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_plan_rehearses_to_done_on_a_lab_of_its_shape() {
    let loaded = load_plan(&fixture()).unwrap();
    let plan_sha = loaded.source_sha256.clone();
    let dir = tempfile::tempdir().unwrap();
    let run_dir =
        rehearse::rehearsal_run_dir(Some(&dir.path().join("payments")), "ignored").unwrap();
    assert_eq!(run_dir, dir.path().join("payments-rehearsal"));
    let run = rehearse::start(
        loaded,
        fixture(),
        run_dir.clone(),
        RunOptions::default(),
        demo_support::SPEED,
    )
    .await
    .expect("the rehearsal starts though the plan's secrets and CA file are not here");
    // The lab has the plan's nodes, versions and databases.
    let endpoints = run.lab.endpoints();
    let names: Vec<(&str, ClusterSide, String)> = endpoints
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.cluster, n.version.to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("kong-x-1", ClusterSide::X, "3.4.3.12".to_string()),
            ("kong-x-2", ClusterSide::X, "3.4.3.12".to_string()),
            ("kong-y-1", ClusterSide::Y, "3.10.0.2".to_string()),
            ("kong-y-2", ClusterSide::Y, "3.10.0.2".to_string()),
        ]
    );
    // The engine runs the plan fitted to the lab: loopback URLs, no token.
    assert!(
        run.plan.clusters.x.nodes[0]
            .admin_url
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(run.plan.admin.token, None);

    // The support keeps a directory of its own; the run's stays here, to read afterwards.
    let mut demo = demo_support::Demo::from_run(run, tempfile::tempdir().unwrap());
    demo.walk_to_done().await;
    let lab = demo.run.lab.clone();
    for node in lab.nodes() {
        let expected = match node.cluster {
            ClusterSide::X => Lifecycle::Absent,
            ClusterSide::Y => Lifecycle::Running,
        };
        assert_eq!(node.lifecycle, expected, "{}", node.name);
    }
    assert_eq!(
        lab.traffic_driver().read_split().await.unwrap(),
        Some(Split::to_y(100))
    );
    assert_eq!(lab.schema_state(ClusterSide::Y).unwrap().pending_total(), 0);
    demo.quit().await;

    // The rehearsal's journal records the plan file's own hash.
    let journal = std::fs::read_to_string(run_dir.join(JOURNAL_FILE)).unwrap();
    assert!(journal.contains(&plan_sha));
}

#[test]
fn the_rehearsal_never_touches_the_real_runs_directory() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("payments");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kongup"))
        .arg("run")
        .arg(fixture())
        .args(["--rehearse", "--plain", "--journal"])
        .arg(&real)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kongup run --rehearse did not end on end of input");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // End of input quits at once: the rehearsal stopped before the end and is resumable.
    assert_eq!(
        status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("REHEARSAL"), "{stdout}");
    assert!(
        dir.path()
            .join("payments-rehearsal")
            .join(JOURNAL_FILE)
            .exists()
    );
    assert!(!real.exists(), "the real run's directory was created");
}

//! The lab at fleet size: `kongup lab --data-planes N` and `kongup demo --data-planes N`
//! (issue 17), and the sizes they refuse.

use std::process::Command;
use std::time::Duration;

use kongup::cli::lab::LabJson;

use super::cli::{client, spawn_lab};

/// A thousand data planes per cluster start, answer, and are each `normal` on their control
/// plane, which lists them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_lab_of_a_thousand_data_planes_per_cluster_starts_and_every_one_reports() {
    let (mut lab, first) = spawn_lab(&["--scenario", "hybrid", "--data-planes", "1000", "--json"]);
    let parsed: LabJson = serde_json::from_str(&first).expect("the first line is JSON");
    assert_eq!(parsed.nodes.len(), 2 * 1001);
    let client = client();
    for side in ["x", "y"] {
        let cp = parsed
            .nodes
            .iter()
            .find(|n| n.cluster == side && n.role == "control_plane")
            .unwrap();
        let admin = cp.admin.as_deref().unwrap();
        let listed: serde_json::Value = client
            .get(format!("{admin}/clustering/data-planes?size=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = listed["data"].as_array().expect("a page of data planes");
        assert_eq!(rows.len(), 1000, "{side}'s control plane lists its fleet");
        assert!(
            rows.iter().all(|r| r["sync_status"] == "normal"),
            "every data plane of {side} is in sync"
        );
        // The last data plane proxies like the first.
        let last = parsed
            .nodes
            .iter()
            .find(|n| n.name == format!("dp-{side}-1000"))
            .unwrap();
        let ready = client
            .get(format!("{}/status/ready", last.status))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status().as_u16(), 200, "{} is ready", last.name);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lab.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let _ = lab.0.wait();
}

#[test]
fn a_fleet_larger_than_the_lab_runs_is_refused_with_why_and_leaves_nothing() {
    let kongup = || Command::new(assert_cmd::cargo::cargo_bin!("kongup"));
    let output = kongup()
        .args(["lab", "--scenario", "hybrid", "--data-planes", "1001"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--data-planes 1001 is more than the lab runs (1000 per cluster at most)"),
        "{stderr}"
    );
    let output = kongup()
        .args(["lab", "--scenario", "dual-cluster", "--data-planes", "3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the dual-cluster lab has no data planes (use --scenario hybrid)"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("fleet");
    let output = kongup()
        .args(["demo", "--plain", "--data-planes", "5000", "--journal"])
        .arg(&run_dir)
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--data-planes 5000 is more than the lab runs"),
        "{stderr}"
    );
    assert!(!run_dir.exists(), "a refused demo made its run directory");
}

/// `kongup demo --data-planes 1000` opens on a lab of the fleet with a plan of its own
/// (named for its size, so its default run directory is not the small demo's), and the
/// resume line it leaves says the size again.
#[test]
fn a_fleet_demo_opens_on_its_own_plan_and_says_how_to_resume_it() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("fleet");
    let output = crate::support::demo::cli::kongup(
        &["demo", "--plain", "--data-planes", "1000", "--speed", "10"],
        &run_dir,
        "",
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("kongup demo hybrid: 2002 nodes on 127.0.0.1"),
        "{stdout}"
    );
    let plan = std::fs::read_to_string(run_dir.join("plan.yaml")).unwrap();
    assert!(
        plan.contains("name: demo hybrid-1000 3.4.2 to 3.10.0"),
        "{plan}"
    );
    assert!(
        plan.contains("- name: dp-y-1000"),
        "the plan names the whole fleet"
    );
    assert!(
        stderr.contains("kongup demo --scenario hybrid --data-planes 1000 --journal"),
        "{stderr}"
    );
}

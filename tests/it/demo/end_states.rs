//! How a demo ends, as a script sees it: a run that ends by a completed rollback is
//! `rolled-back` (exit status 3, `kongup status --json`, the report), never "done".

use crate::support::demo as demo_support;

use demo_support::cli::{PlainDemo, kongup, plan_name, status_json};
use kongup::sim::Scenario;
use std::time::Duration;

/// `kongup demo --scenario blue-green --plain` with Y answering half its requests with
/// 500s: the staging smoke tests fail on it (the operator marks them done, as one who
/// knows the fault), the first traffic stage breaches its gate, the run pauses, `rollback`
/// sends all traffic to X, and the rollback plan is confirmed to its end.
#[test]
fn a_blue_green_demo_rolled_back_after_a_gate_breach_exits_3_and_reads_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut plain = PlainDemo::spawn(
        &[
            "demo",
            "--scenario",
            "blue-green",
            "--fault",
            "y-errors=50%",
        ],
        &run_dir,
        &plan_name(Scenario::BlueGreen),
    );
    let failed = loop {
        let failed = plain.confirm_until("a traffic stage to breach its gate", |line| {
            line.starts_with("FAILED ")
        });
        if failed.starts_with("FAILED cluster/shift-traffic") {
            break failed;
        }
        assert!(
            failed.starts_with("FAILED cluster/staging-tests"),
            "only the smoke tests and a stage meet the fault: {failed}"
        );
        plain.send("done the smoke tests fail on the fault injected into Y");
    };
    assert!(failed.contains("gate failed"), "{failed}");
    plain.send("rollback");
    plain.confirm_until("the rollback to finish", |line| line == "rollback finished");
    let ended = plain.end();
    assert_eq!(
        ended.status.code(),
        Some(3),
        "a completed rollback exits 3:\n{}\n{}",
        ended.stdout,
        ended.stderr
    );
    assert!(
        ended.stdout.contains("The run was rolled back"),
        "{}",
        ended.stdout
    );
    assert!(
        !ended.stdout.contains("The run is done"),
        "{}",
        ended.stdout
    );

    let status = status_json(&run_dir);
    assert_eq!(status["state"], "rolled-back", "{status:#}");
    assert_eq!(status["traffic"]["x"], 100, "{status:#}");
    let text = kongup(&["status"], &run_dir, "", Duration::from_secs(10));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("): ROLLED BACK\n"), "{text}");

    let report = kongup(&["report"], &run_dir, "", Duration::from_secs(10));
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("- State: **rolled-back** (all traffic back on cluster X)"),
        "{report}"
    );
    let json = kongup(
        &["report", "--format", "json"],
        &run_dir,
        "",
        Duration::from_secs(10),
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["state"], "rolled-back", "{json:#}");
}

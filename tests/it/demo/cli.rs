//! `kongup demo --plain` as a script drives it: answers on stdin, every step to done; then
//! `kongup status` and `kongup report` read the demo's run like any other, and a run
//! directory holding another scenario's plan is refused.

use crate::support::demo as demo_support;

use std::time::Duration;

use demo_support::cli::{answers, kongup};
use kongup::sim::Scenario;

#[test]
fn the_hybrid_demo_walks_to_done_from_stdin_and_status_and_report_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("demo");
    let speed = demo_support::SPEED.to_string();
    let output = kongup(
        &["demo", "--scenario", "hybrid", "--speed", &speed, "--plain"],
        &run_dir,
        &answers(Scenario::Hybrid),
        Duration::from_secs(180),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("kongup demo hybrid: 6 nodes on 127.0.0.1"),
        "{stdout}"
    );
    assert!(stdout.contains("The run is done"), "{stdout}");
    assert!(run_dir.join("plan.yaml").exists());
    // Where traffic is, as the run opens; and no gate line while Y takes no traffic (the
    // engine does not act on the gates then).
    assert!(
        stdout.contains("traffic: the load balancer reports X 100% | Y 0%"),
        "{stdout}"
    );
    let first_stage = stdout
        .find("traffic: asked for X 90% | Y 10%")
        .unwrap_or_else(|| panic!("no first traffic stage:\n{stdout}"));
    assert!(
        !stdout[..first_stage].contains("\ngate: "),
        "a gate line before Y took traffic:\n{stdout}"
    );
    assert!(stdout[first_stage..].contains("\ngate: "), "{stdout}");

    let status = kongup(&["status", "--json"], &run_dir, "", Duration::from_secs(10));
    assert!(status.status.success(), "{status:?}");
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["state"], "done", "{json:#}");
    assert_eq!(json["traffic"]["y"], 100, "{json:#}");

    let report = kongup(&["report"], &run_dir, "", Duration::from_secs(10));
    assert!(report.status.success(), "{report:?}");
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("# kongup run report: demo hybrid"),
        "{report}"
    );
    assert!(report.contains("data-plane/decommission-x"), "{report}");

    // Another scenario's lab cannot take this run directory.
    let refused = kongup(
        &["demo", "--scenario", "in-place", "--plain"],
        &run_dir,
        "",
        Duration::from_secs(30),
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is not a plan for the in-place lab"),
        "{stderr}"
    );
}

#[test]
fn faults_given_on_the_command_line_are_in_the_lab_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("demo");
    let output = kongup(
        &[
            "demo",
            "--scenario",
            "dual-cluster",
            "--fault",
            "y-errors=25%",
            "--fault",
            "y-latency=300ms",
            "--plain",
        ],
        &run_dir,
        "",
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    // End of input quits at once: resumable.
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("fault: "), "{stdout}");
    assert!(stdout.contains("25"), "{stdout}");
    assert!(stdout.contains("300ms"), "{stdout}");

    // A fault the lab cannot inject yet is refused, and nothing runs.
    let crash = kongup(
        &[
            "demo",
            "--scenario",
            "dual-cluster",
            "--fault",
            "crash",
            "--plain",
        ],
        &dir.path().join("crash"),
        "",
        Duration::from_secs(60),
    );
    assert_eq!(crash.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&crash.stderr);
    assert!(stderr.contains("no Y proxy is running yet"), "{stderr}");
}

//! `kongup report` on a run that went wrong: a rehearsal of a plan whose secrets come from
//! the environment, a Y error ratio during the first traffic stage, the gate fails, the run
//! pauses, the operator rolls back. The report, in Markdown and JSON, has what a
//! postmortem needs (every traffic change with the split the balancer reported, every gate
//! verdict with its figures and thresholds as data, the verified time to safety, the rollback
//! steps in order) and none of the plan's secrets, though the operator typed one.

use crate::support::demo as demo_support;
use crate::support::own_process::in_own_process;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use kongup::demo::rehearse;
use kongup::engine::event::RollbackProgress;
use kongup::engine::{Command, Event, RunOptions, RunState, StepState};
use kongup::plan::load::load_plan;
use kongup::plan::steps::{ClusterSide, StepRef};
use kongup::sim::Fault;
use serde_json::Value;

/// The secrets the fixture names (`{env: …}`), with values long enough to be redacted.
const SECRETS: [(&str, &str); 3] = [
    ("KONGUP_REHEARSAL_TEST_PG_X", "pgx-Secret-4e1f9a77c3"),
    ("KONGUP_REHEARSAL_TEST_PG_Y", "pgy-Secret-0b5d2c8e61"),
    (
        "KONGUP_REHEARSAL_TEST_ADMIN_TOKEN",
        "kong-admin-token-9c2e7f1d04",
    ),
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rehearsal-payments.yaml")
}

fn report(run_dir: &Path, format: &str) -> String {
    let output = Process::new(env!("CARGO_BIN_EXE_kongup"))
        .args(["report", "--format", format, "--journal"])
        .arg(run_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "kongup report: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Drives the rehearsal to a finished rollback; returns the run directory and the first
/// traffic stage.
async fn a_rolled_back_run(root: &Path) -> (PathBuf, StepRef) {
    let run_dir = root.join("payments-rehearsal");
    let loaded = load_plan(&fixture()).unwrap();
    let run = rehearse::start(
        loaded,
        fixture(),
        run_dir.clone(),
        RunOptions::default(),
        demo_support::SPEED,
    )
    .await
    .unwrap();
    let mut demo = demo_support::Demo::from_run(run, tempfile::tempdir().unwrap());

    // The operator pastes a database password into a skip reason.
    let event = demo
        .confirm_until("review-considerations to wait for a decision", |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Ready, .. }
                if step.id == "review-considerations")
        })
        .await;
    let Event::StepChanged { step, .. } = event else {
        unreachable!()
    };
    demo.send(Command::Skip {
        step,
        reason: format!("checked by hand: psql -W {}", SECRETS[0].1),
    })
    .await;

    let shift = demo.walk_to_first_shift().await;
    demo.run
        .lab
        .apply_fault(&Fault::ErrorRatio {
            cluster: ClusterSide::Y,
            ratio: 0.5,
        })
        .await
        .unwrap();
    demo.wait_until(
        "the stage to fail its gate and the run to pause",
        |run, steps| run == Some(RunState::Paused) && steps.get(&shift) == Some(&StepState::Failed),
    )
    .await;
    demo.send(Command::Rollback).await;
    demo.seen("all traffic to be safe on X", demo_support::traffic_safe)
        .await;
    // The failed gate paused the run: resume to confirm the rollback's steps.
    demo.send(Command::Resume).await;
    demo.confirm_until("the rollback to finish", |e| {
        matches!(e, Event::RollbackProgress(RollbackProgress::Finished))
    })
    .await;
    demo.quit().await;
    (run_dir, shift)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_rolled_back_run_has_traffic_gates_and_time_to_safety_and_no_secret() {
    // The secrets go into the process's environment: no other test may see them.
    if !in_own_process(
        module_path!(),
        "the_report_of_a_rolled_back_run_has_traffic_gates_and_time_to_safety_and_no_secret",
    ) {
        return;
    }
    // SAFETY: the only test in this process, and no other thread reads the environment yet.
    for (name, value) in SECRETS {
        unsafe { std::env::set_var(name, value) };
    }
    let root = tempfile::tempdir().unwrap();
    let (run_dir, shift) = a_rolled_back_run(root.path()).await;
    let shift_key = shift.to_string();

    let json: Value = serde_json::from_str(&report(&run_dir, "json")).unwrap();
    let markdown = report(&run_dir, "md");

    // Traffic: the first stage asked 10 % of Y and the balancer reported it; the rollback
    // asked all of X and the balancer reported that.
    let traffic = json["traffic"].as_array().unwrap();
    let splits: Vec<(Value, Value)> = traffic
        .iter()
        .map(|t| (t["requested"].clone(), t["applied"].clone()))
        .collect();
    let split = |x: u8, y: u8| serde_json::json!({"x": x, "y": y});
    assert_eq!(
        splits,
        [
            (split(90, 10), split(90, 10)),
            (split(100, 0), split(100, 0)),
        ],
        "{traffic:#?}"
    );
    assert!(traffic.iter().all(|t| t["error"].is_null()), "{traffic:#?}");
    assert!(
        traffic[1]["cause"].as_str().unwrap().contains("rollback"),
        "{traffic:#?}"
    );
    // In Markdown each split is one table cell: its `|` is escaped.
    assert!(
        markdown.contains("| X 90% \\| Y 10% | X 90% \\| Y 10% |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| X 100% \\| Y 0% | X 100% \\| Y 0% |"),
        "{markdown}"
    );

    // Gates: the failing verdict, during the stage, with the Y 5xx ratio and p99 against
    // the plan's thresholds (2 %, 800 ms) and the breaches in a row (2).
    let gates = json["gates"].as_array().unwrap();
    let failed = gates
        .iter()
        .find(|g| g["verdict"] == "fail")
        .unwrap_or_else(|| panic!("no failing verdict: {gates:#?}"));
    assert_eq!(failed["step"], shift_key.as_str());
    assert_eq!(failed["consecutive_breaches"], 2);
    assert!(failed["requests_in_window"].as_u64().unwrap() >= 10);
    let checks: Vec<&str> = failed["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let error_check = checks
        .iter()
        .find(|c| c.starts_with("Y 5xx "))
        .unwrap_or_else(|| panic!("{checks:?}"));
    // "Y 5xx 42.86% > 2.00%: BREACH": the ratio, the threshold, the outcome.
    let ratio: f64 = error_check["Y 5xx ".len()..]
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{error_check}: {e}"));
    // The window mixes requests from before the fault with the faulted half, in a share
    // that depends on timing: the ratio is above the threshold and below what no mix of
    // 0 % and 50 % errors can exceed (with the lab's sampling noise).
    assert!(ratio > 2.0 && ratio <= 80.0, "{error_check}");
    assert!(error_check.ends_with("> 2.00%: BREACH"), "{error_check}");
    // "Y p99 24.8 ms ≤ 800.0 ms: ok"
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("Y p99 ") && c.ends_with("≤ 800.0 ms: ok")),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.contains("2 breaches in a row (2 make a failure): fail")),
        "{checks:?}"
    );
    // The same verdict's figures as data: Y's 5xx ratio over the window, above the plan's
    // threshold, the one the check line shows; X's figures beside it; the thresholds.
    let figures = &failed["figures"];
    let y_ratio = figures["y"]["error_ratio"]
        .as_f64()
        .unwrap_or_else(|| panic!("no Y 5xx ratio: {figures:#}"));
    assert_eq!(
        figures["thresholds"]["max_error_ratio"], 0.02,
        "{figures:#}"
    );
    assert_eq!(figures["thresholds"]["max_p99_ms"], 800.0, "{figures:#}");
    assert_eq!(figures["thresholds"]["max_p99_ratio"], 3.0, "{figures:#}");
    assert_eq!(figures["thresholds"]["min_requests"], 10, "{figures:#}");
    assert_eq!(figures["thresholds"]["breaches_to_fail"], 2, "{figures:#}");
    assert!(y_ratio > 0.02, "{figures:#}");
    assert!(
        (y_ratio * 100.0 - ratio).abs() < 0.006,
        "{figures:#} vs {error_check}"
    );
    assert_eq!(figures["y"]["requests"], failed["requests_in_window"]);
    let y_p99 = figures["y"]["p99_ms"].as_f64().unwrap();
    assert!(y_p99 <= 800.0, "{figures:#}");
    let x_ratio = figures["x"]["error_ratio"].as_f64().unwrap();
    assert!(x_ratio < 0.02, "X had no injected errors: {figures:#}");
    assert!(
        figures["x"]["requests"].as_u64().unwrap() > 0,
        "{figures:#}"
    );

    let fail_row = markdown
        .lines()
        .find(|l| l.contains(&format!("| {shift_key} | fail |")))
        .unwrap_or_else(|| panic!("no failing gate row: {markdown}"));
    assert!(fail_row.contains(*error_check), "{fail_row}");
    // Y 5xx, Y p99, X 5xx as columns, then the breaches in a row.
    assert!(
        fail_row.contains(&format!(
            "| {:.2}% | {y_p99:.1} ms | {:.2}% |",
            y_ratio * 100.0,
            x_ratio * 100.0
        )),
        "{fail_row}"
    );
    assert!(fail_row.contains("| 2 |"), "{fail_row}");

    // Rollback: time to safety, read back from the balancer; the steps in order; done.
    let rollback = &json["rollback"];
    let ms = rollback["time_to_safety_ms"].as_u64().unwrap();
    assert!(ms < 30_000, "{rollback:#}");
    assert_eq!(rollback["time_to_safety_verified"], "read-back");
    assert_eq!(rollback["finished"], true);
    assert_eq!(rollback["point_of_no_return"], false);
    assert_eq!(rollback["reason"], "requested by the operator");
    let planned: Vec<&str> = rollback["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let position = |id: &str| {
        planned
            .iter()
            .position(|s| s.ends_with(&format!("/{id}")))
            .unwrap_or_else(|| panic!("{id} is not in the rollback plan: {planned:?}"))
    };
    // The counterparts of what was done, in reverse: Y stops before writes come back.
    assert!(
        position("start-y") < position("freeze-writes"),
        "{planned:?}"
    );
    // Each rollback step ran, and succeeded, in the planned order.
    let steps = json["steps"].as_array().unwrap();
    let ran: Vec<String> = steps
        .iter()
        .filter(|s| s["phase"] == "rollback")
        .map(|s| format!("rollback/{}", s["id"].as_str().unwrap()))
        .collect();
    assert_eq!(ran, planned, "{steps:#?}");
    for step in steps.iter().filter(|s| s["phase"] == "rollback") {
        assert_eq!(step["state"], "succeeded", "{step:#}");
    }
    assert!(
        markdown.contains(&format!(
            "- Time to safety: {ms} ms (all traffic on X; read-back"
        )) || markdown.contains(&format!(
            "- Time to safety: {:.1} s (all traffic on X; read-back",
            ms as f64 / 1000.0
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("- Rollback steps: {}", planned.join(", "))),
        "{markdown}"
    );
    let finished_at = rollback["finished_at"].as_str().unwrap();
    assert!(
        finished_at >= rollback["requested_at"].as_str().unwrap(),
        "{rollback:#}"
    );
    assert!(
        markdown.contains(&format!("- Finished: yes, at {finished_at}")),
        "{markdown}"
    );
    // The run is over, and the header says which way it went.
    assert_eq!(json["state"], "rolled-back");
    assert!(
        markdown.contains("- State: **rolled-back** (all traffic back on cluster X)"),
        "{markdown}"
    );

    // The operator's skip reason is there, its password is not, nor any other secret.
    let skipped = steps
        .iter()
        .find(|s| s["id"] == "review-considerations")
        .unwrap();
    assert!(
        skipped["skip_reason"]
            .as_str()
            .unwrap()
            .starts_with("checked by hand: psql -W "),
        "{skipped:#}"
    );
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    for (name, secret) in SECRETS {
        for (what, text) in [("JSON", &json.to_string()), ("Markdown", &markdown)] {
            assert!(!text.contains(secret), "the {what} report shows {name}");
        }
        assert!(!journal.contains(secret), "the journal holds {name}");
    }
}

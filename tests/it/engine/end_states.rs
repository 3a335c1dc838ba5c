//! How a run that stopped reads: an aborted bake is the operator's abort (by whom), not a
//! red failed run.

use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::status::{read_run, status_json, status_text};
use kongup::engine::{Command, StepState};
use kongup::plan::model::Strategy;
use kongup::plan::steps::{RollbackKind, StepKind};

#[tokio::test]
async fn an_aborted_bake_reads_aborted_by_whom_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let stage = with_rollback(
        step(
            "shift-traffic-50",
            StepKind::ShiftTraffic {
                y_percent: 50,
                bake: Duration::from_secs(600),
            },
        ),
        RollbackKind::TrafficToX,
    );
    let steps = expanded(Strategy::BlueGreen, vec![stage, scripted("after")]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    let stage = cluster("shift-traffic-50");
    run.confirm_and_wait(&stage, StepState::Running).await;
    run.wait_seen("the bake counting down", |e| {
        matches!(e, kongup::engine::Event::Bake { .. })
    })
    .await;
    run.send(Command::Abort).await;
    let detail = run.wait_step(&stage, StepState::Failed).await.unwrap();
    assert!(detail.starts_with("aborted by alice@test"), "{detail}");
    let on_disk = read_run(&run.run_dir).unwrap();
    let json = status_json(&on_disk);
    assert_eq!(json["state"], "aborted", "{json:#}");
    let text = status_text(&on_disk);
    assert!(text.contains("): ABORTED\n"), "{text}");
    assert!(text.contains("aborted by alice@test"), "{text}");
    run.quit().await;
}

/// `running` only while a step runs: between steps the run waits for the operator.
#[tokio::test]
async fn the_run_is_running_only_while_a_step_runs_and_otherwise_waits_for_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    kit.stand_in.set("a", Behavior::Block(release.clone()));
    let steps = expanded(Strategy::BlueGreen, vec![scripted("a"), scripted("b")]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    let state = |run: &TestRun| status_json(&read_run(&run.run_dir).unwrap())["state"].clone();
    run.confirm_and_wait(&cluster("a"), StepState::Running)
        .await;
    assert_eq!(state(&run), "running");
    release.notify_one();
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.wait_step(&cluster("b"), StepState::Ready).await;
    assert_eq!(state(&run), "waiting");
    let text = status_text(&read_run(&run.run_dir).unwrap());
    assert!(text.contains("): WAITING FOR YOU · cluster/b\n"), "{text}");
    run.quit().await;
}

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

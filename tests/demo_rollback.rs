//! A Y error ratio injected during the first traffic stage: the gate fails, the run pauses,
//! and rollback brings all traffic back to X, as the lab's own counters show (after the
//! switch, X serves and Y serves nothing).

mod demo_support;

use kongup::engine::event::RollbackProgress;
use kongup::engine::{Command, Event, RunState, StepState};
use kongup::lb::Split;
use kongup::plan::steps::ClusterSide;
use kongup::sim::{Fault, Scenario};

async fn a_failing_gate_pauses_and_rollback_sends_all_traffic_to_x(scenario: Scenario) {
    let mut demo = demo_support::start(scenario).await;
    let shift = demo.walk_to_first_shift().await;
    demo.run
        .lab
        .apply_fault(&Fault::ErrorRatio {
            cluster: ClusterSide::Y,
            ratio: 0.5,
        })
        .await
        .unwrap();

    let failed = demo
        .wait_for("the traffic stage to fail its gate", |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Failed, .. } if *step == shift)
        })
        .await;
    let Event::StepChanged { detail, .. } = failed else {
        unreachable!()
    };
    let detail = detail.unwrap_or_default();
    assert!(detail.contains("gate failed"), "{scenario}: {detail}");
    assert!(detail.contains("Y 5xx"), "{scenario}: {detail}");
    demo.wait_for("the run to pause", |e| {
        matches!(e, Event::RunChanged(RunState::Paused))
    })
    .await;
    // Y has been answering: the lab counted its 500s.
    assert!(demo.run.lab.served(ClusterSide::Y).1 > 0, "{scenario}");

    demo.send(Command::Rollback).await;
    demo.wait_for("all traffic to be safe on X", demo_support::traffic_safe)
        .await;
    assert_eq!(demo.run.lab.traffic_driver().split(), Split::ALL_X);
    // Requests already on their way to Y finish first; once X has served some more, Y
    // must serve nothing at all while X keeps serving.
    demo.served_more(ClusterSide::X, 20).await;
    let y_after_switch = demo.run.lab.served(ClusterSide::Y);
    demo.served_more(ClusterSide::X, 60).await;
    assert_eq!(
        demo.run.lab.served(ClusterSide::Y),
        y_after_switch,
        "{scenario}: Y served requests after the rollback sent all traffic to X"
    );
    let planned = demo
        .wait_for("the rollback plan", |e| {
            matches!(e, Event::RollbackProgress(RollbackProgress::Planned { .. }))
        })
        .await;
    let Event::RollbackProgress(RollbackProgress::Planned { steps }) = planned else {
        unreachable!()
    };
    assert!(
        steps.iter().all(|s| s.id != "traffic-to-x"),
        "{scenario}: traffic is already safe, the plan must not ask again: {steps:?}"
    );
    demo.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_rolls_back_to_x_when_y_errors() {
    a_failing_gate_pauses_and_rollback_sends_all_traffic_to_x(Scenario::Hybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_cluster_rolls_back_to_x_when_y_errors() {
    a_failing_gate_pauses_and_rollback_sends_all_traffic_to_x(Scenario::DualCluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_rolls_back_to_x_when_y_errors() {
    a_failing_gate_pauses_and_rollback_sends_all_traffic_to_x(Scenario::BlueGreen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbless_rolling_rolls_back_to_x_when_y_errors() {
    a_failing_gate_pauses_and_rollback_sends_all_traffic_to_x(Scenario::DblessRolling).await;
}

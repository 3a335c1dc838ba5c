//! A Y error ratio injected during the first traffic stage: the gate fails, the run pauses,
//! and rollback brings all traffic back to X, as the lab's own counters show (after the
//! switch, X serves and Y serves nothing).

use crate::support::demo as demo_support;

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

    demo.wait_until(
        "the stage to fail its gate and the run to pause",
        |run, steps| run == Some(RunState::Paused) && steps.get(&shift) == Some(&StepState::Failed),
    )
    .await;
    let detail = demo
        .events
        .iter()
        .find_map(|e| match e {
            Event::StepChanged {
                step,
                state: StepState::Failed,
                detail,
            } if *step == shift => detail.clone(),
            _ => None,
        })
        .unwrap_or_default();
    assert!(detail.contains("gate failed"), "{scenario}: {detail}");
    assert!(detail.contains("Y 5xx"), "{scenario}: {detail}");
    // Y has been answering: the lab counted its 500s.
    assert!(demo.run.lab.served(ClusterSide::Y).1 > 0, "{scenario}");

    demo.send(Command::Rollback).await;
    demo.seen("all traffic to be safe on X", demo_support::traffic_safe)
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
        .seen("the rollback plan", |e| {
            matches!(e, Event::RollbackProgress(RollbackProgress::Planned { .. }))
        })
        .await;
    let Event::RollbackProgress(RollbackProgress::Planned { steps, .. }) = planned else {
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

/// In place, X is stopped and its database migrated before Y takes the traffic: R cannot
/// send traffic to X at once. The rollback plan gives X back (Y stopped, the database
/// restored, X started), then sends the traffic; after it, only X serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_rolls_back_through_the_restore_then_sends_all_traffic_to_x() {
    let mut demo = demo_support::start(Scenario::InPlace).await;
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
        "the switch to fail its gate and the run to pause",
        |run, steps| run == Some(RunState::Paused) && steps.get(&shift) == Some(&StepState::Failed),
    )
    .await;

    demo.send(Command::Rollback).await;
    let planned = demo
        .seen("the rollback plan", |e| {
            matches!(e, Event::RollbackProgress(RollbackProgress::Planned { .. }))
        })
        .await;
    let Event::RollbackProgress(RollbackProgress::Planned { steps, .. }) = planned else {
        unreachable!()
    };
    // X comes back (its database restored, its nodes started) before the traffic does.
    let at = |id: &str| steps.iter().position(|s| s.id == id);
    let traffic = at("traffic-to-x").expect("traffic goes back to X in the plan");
    assert!(
        at("migrations-finish").is_some_and(|i| i < traffic),
        "{steps:?}"
    );
    assert!(at("stop-x").is_some_and(|i| i < traffic), "{steps:?}");
    assert_eq!(demo.run.lab.traffic_driver().split(), Split::to_y(100));

    // The failed gate paused the run; the operator resumes to confirm the rollback steps.
    demo.send(Command::Resume).await;
    demo.confirm_until("the rollback to finish", |e| {
        matches!(e, Event::RollbackProgress(RollbackProgress::Finished))
    })
    .await;
    assert_eq!(demo.run.lab.traffic_driver().split(), Split::ALL_X);
    demo.served_more(ClusterSide::X, 20).await;
    let y_after = demo.run.lab.served(ClusterSide::Y);
    demo.served_more(ClusterSide::X, 60).await;
    assert_eq!(demo.run.lab.served(ClusterSide::Y), y_after);
    // X serves from its database as it was before the upgrade.
    let schema = demo.run.lab.schema_state(ClusterSide::X).unwrap();
    assert_eq!(schema.pending_total(), 0);
    demo.quit().await;
}

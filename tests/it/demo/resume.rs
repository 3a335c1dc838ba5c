//! A demo resumes like a real run: the same run directory and plan file (the same hash,
//! though the new lab listens on other ports), and a lab rebuilt in the state the journal
//! implies, from which the run goes on to done.

use crate::support::demo as demo_support;

use kongup::demo::{self, DemoOptions, PLAN_FILE};
use kongup::engine::{Event, StepState};
use kongup::lb::Split;
use kongup::plan::steps::ClusterSide;
use kongup::sim::Scenario;
use kongup::sim::node::Lifecycle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_demo_rebuilds_the_lab_and_goes_on_to_done() {
    let mut first = demo_support::start(Scenario::Hybrid).await;
    let run_dir = first.dir.path().join("run");
    let plan_text = std::fs::read_to_string(run_dir.join(PLAN_FILE)).unwrap();
    let first_ports: Vec<String> = first
        .run
        .lab
        .endpoints()
        .nodes
        .iter()
        .map(|n| n.status.clone())
        .collect();
    let shift = first.walk_to_first_shift().await;
    first
        .wait_for("the first traffic stage to succeed", |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Succeeded, .. } if *step == shift)
        })
        .await;
    let done_before: Vec<_> = first
        .states
        .iter()
        .filter(|(_, s)| **s == StepState::Succeeded)
        .map(|(step, _)| step.clone())
        .collect();
    let lab_before: Vec<(String, Lifecycle)> = first
        .run
        .lab
        .nodes()
        .into_iter()
        .map(|n| (n.name, n.lifecycle))
        .collect();
    let schema_before = first.run.lab.schema_state(ClusterSide::Y);
    let dir = std::mem::replace(&mut first.dir, tempfile::tempdir().unwrap());
    let old = first.quit().await;
    old.lab.shutdown().await;

    let run = demo::start(DemoOptions {
        speed: demo_support::SPEED,
        ..DemoOptions::new(Scenario::Hybrid, run_dir.clone())
    })
    .await
    .expect("the demo resumes under the same plan");
    assert_eq!(
        std::fs::read_to_string(run_dir.join(PLAN_FILE)).unwrap(),
        plan_text,
        "the plan file is kept as it was"
    );
    let new_ports: Vec<String> = run
        .lab
        .endpoints()
        .nodes
        .iter()
        .map(|n| n.status.clone())
        .collect();
    assert_ne!(new_ports, first_ports, "a new lab, on new ports");
    let mut replayed = run.rebuilt.replayed.clone();
    replayed.sort_by_key(|s| s.to_string());
    let mut expected = done_before.clone();
    expected.sort_by_key(|s| s.to_string());
    assert_eq!(replayed, expected, "every succeeded step replayed");
    assert_eq!(run.rebuilt.split, Some(Split::to_y(10)));
    assert!(
        run.rebuilt.warnings.is_empty(),
        "{:?}",
        run.rebuilt.warnings
    );
    assert_eq!(run.lab.traffic_driver().split(), Split::to_y(10));
    let lab_after: Vec<(String, Lifecycle)> = run
        .lab
        .nodes()
        .into_iter()
        .map(|n| (n.name, n.lifecycle))
        .collect();
    assert_eq!(
        lab_after, lab_before,
        "the rebuilt lab's nodes are as the first left them"
    );
    assert_eq!(run.lab.schema_state(ClusterSide::Y), schema_before);

    let mut resumed = demo_support::Demo::from_run(run, dir);
    // Y serves its share again in the rebuilt lab.
    resumed.served_more(ClusterSide::Y, 5).await;
    resumed.walk_to_done().await;
    for node in resumed.run.lab.nodes() {
        let expected = match node.cluster {
            ClusterSide::X => Lifecycle::Absent,
            ClusterSide::Y => Lifecycle::Running,
        };
        assert_eq!(node.lifecycle, expected, "{}", node.name);
    }
    resumed.quit().await;
}

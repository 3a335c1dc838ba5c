//! A hybrid plan with eight data planes a side, rolled in three waves (`rolling:`), rehearsed
//! on a lab of its shape: each wave starts its own Y nodes and stops its own X nodes while
//! the rest of X serves, and the run ends with every data plane on Y.

use crate::support::demo as demo_support;
use crate::support::waves::WavePlan;

use std::path::{Path, PathBuf};

use kongup::demo::rehearse;
use kongup::engine::{Event, RunOptions, StepState};
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::load::load_plan;
use kongup::plan::steps::{ClusterSide, PhaseName, StepRef};
use kongup::sim::node::Lifecycle;

/// The plan: one control plane and eight data planes a side, waves [1, 50%, 100%], at the
/// addresses of the rehearsal's lab. At 100% to Y no X baseline is left for the relative
/// gates: an absolute one judges.
pub fn fleet_plan() -> WavePlan {
    WavePlan::hybrid(8)
        .name("fleet")
        .lab_addresses()
        .gates("  max_error_ratio: 0.05\n")
        .between_waves("1m")
}

/// A rehearsal of the plan at `path`, its run directory `DIR/fleet-rehearsal`.
pub async fn rehearsal(path: PathBuf, dir: &Path) -> demo_support::Demo {
    let loaded = load_plan(&path).unwrap_or_else(|e| panic!("{e}"));
    let run = rehearse::start(
        loaded,
        path,
        dir.join("fleet-rehearsal"),
        RunOptions::default(),
        demo_support::SPEED,
    )
    .await
    .unwrap_or_else(|e| panic!("the rehearsal did not start: {e}"));
    demo_support::Demo::from_run(run, tempfile::tempdir().unwrap())
}

fn lifecycle(lab: &kongup::sim::Lab, name: &str) -> Lifecycle {
    lab.nodes()
        .into_iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name} in the lab"))
        .lifecycle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_data_planes_roll_in_three_waves_to_y() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(fleet_plan().write(dir.path()), dir.path()).await;

    // Through wave 1: its one Y node runs, its one X node is stopped, the others wait.
    let wave_1_done = StepRef::new(PhaseName::DataPlane, "wave-1-stop-x");
    demo.confirm_until("wave 1 to stop its X node", |e| {
        matches!(e, Event::StepChanged { step, state: StepState::Succeeded, .. } if *step == wave_1_done)
    })
    .await;
    let lab = demo.run.lab.clone();
    assert_eq!(lifecycle(&lab, "dp-y-1"), Lifecycle::Running);
    assert_ne!(lifecycle(&lab, "dp-y-2"), Lifecycle::Running);
    assert_eq!(lifecycle(&lab, "dp-x-1"), Lifecycle::Stopped);
    for i in 2..=8 {
        assert_eq!(
            lifecycle(&lab, &format!("dp-x-{i}")),
            Lifecycle::Running,
            "dp-x-{i}"
        );
    }
    assert_eq!(
        lab.traffic_driver().read_split().await.unwrap(),
        Some(Split::to_y(13))
    );

    demo.walk_to_done().await;
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
    demo.quit().await;
}

/// Quit in the middle of the rollout (after wave 1, wave 2's Y nodes started): the
/// rehearsal reopened on the same run directory rebuilds its lab from the journal with each
/// wave's nodes as they were, and walks on to done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_stopped_mid_way_resumes_with_each_wave_s_nodes_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = fleet_plan().write(dir.path());
    let run_dir = dir.path().join("fleet-rehearsal");
    let start = |path: std::path::PathBuf| {
        let run_dir = run_dir.clone();
        async move {
            let loaded = load_plan(&path).unwrap_or_else(|e| panic!("{e}"));
            rehearse::start(
                loaded,
                path,
                run_dir,
                RunOptions::default(),
                demo_support::SPEED,
            )
            .await
            .unwrap_or_else(|e| panic!("the rehearsal did not start: {e}"))
        }
    };
    let mut demo =
        demo_support::Demo::from_run(start(path.clone()).await, tempfile::tempdir().unwrap());
    let wave_2_started = StepRef::new(PhaseName::DataPlane, "wave-2-start-y");
    demo.confirm_until("wave 2 to start its Y nodes", |e| {
        matches!(e, Event::StepChanged { step, state: StepState::Succeeded, .. } if *step == wave_2_started)
    })
    .await;
    demo.quit().await;

    let mut demo = demo_support::Demo::from_run(start(path).await, tempfile::tempdir().unwrap());
    let lab = demo.run.lab.clone();
    for i in 1..=4 {
        assert_eq!(
            lifecycle(&lab, &format!("dp-y-{i}")),
            Lifecycle::Running,
            "dp-y-{i}"
        );
    }
    for i in 5..=8 {
        assert_ne!(
            lifecycle(&lab, &format!("dp-y-{i}")),
            Lifecycle::Running,
            "dp-y-{i}"
        );
    }
    assert_eq!(lifecycle(&lab, "dp-x-1"), Lifecycle::Stopped);
    for i in 2..=8 {
        assert_eq!(
            lifecycle(&lab, &format!("dp-x-{i}")),
            Lifecycle::Running,
            "dp-x-{i}"
        );
    }
    demo.walk_to_done().await;
    for node in lab.nodes() {
        let expected = match node.cluster {
            ClusterSide::X => Lifecycle::Absent,
            ClusterSide::Y => Lifecycle::Running,
        };
        assert_eq!(node.lifecycle, expected, "{}", node.name);
    }
    demo.quit().await;
}

//! No traffic stage onto a sick Y without the operator's typed override (issue 15, item 1):
//! the engine reads the watcher's topology and the gate, names the node and why, and
//! journals who overrode what.

use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::health::OVERRIDE_WORD;
use kongup::engine::journal::Entry;
use kongup::engine::{Command, Event, StepState};
use kongup::kong::topology::{NodeHealth, NodeView, TopologySnapshot};
use kongup::kong::types::SyncStatus;
use kongup::plan::model::{Role, Strategy};
use kongup::plan::steps::{ClusterSide, RollbackKind, StepKind};
use tokio::sync::mpsc::UnboundedSender;

const HASH: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn data_plane(name: &str, health: NodeHealth) -> NodeView {
    NodeView {
        name: name.into(),
        cluster: ClusterSide::Y,
        role: Role::DataPlane,
        version: Some("3.10.0".into()),
        health,
        control_plane: Some("cp-y".into()),
        sync_status: Some(SyncStatus::Normal),
        config_hash: Some(HASH.into()),
    }
}

/// Y with two data planes, the second crashed (its Status API refuses connections).
fn one_data_plane_crashed() -> TopologySnapshot {
    TopologySnapshot {
        nodes: vec![
            data_plane("dp-y-1", NodeHealth::Ready),
            data_plane(
                "dp-y-2",
                NodeHealth::Unreachable("connection refused (os error 111)".into()),
            ),
        ],
        ..TopologySnapshot::default()
    }
}

fn stages() -> kongup::plan::steps::ExpandedPlan {
    expanded(
        Strategy::BlueGreen,
        vec![with_rollback(
            step(
                "shift-traffic-50",
                StepKind::ShiftTraffic {
                    y_percent: 50,
                    bake: Duration::from_millis(50),
                },
            ),
            RollbackKind::TrafficToX,
        )],
    )
}

async fn started_with(
    dir: &std::path::Path,
    topology: TopologySnapshot,
) -> (TestRun, UnboundedSender<Event>) {
    let (side, side_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut setup = setup(dir, plan_named("p"), stages(), "v1", kit().toolbox);
    setup.side_events = Some(side_rx);
    let mut run = TestRun::start(setup);
    side.send(Event::Topology(topology)).unwrap();
    run.wait_for("the topology forwarded", |e| {
        matches!(e, Event::Topology(_))
    })
    .await;
    (run, side)
}

#[tokio::test]
async fn a_stage_onto_y_with_a_crashed_data_plane_is_refused_naming_it_until_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, _side) = started_with(dir.path(), one_data_plane_crashed()).await;
    let stage = cluster("shift-traffic-50");

    run.confirm(&stage).await;
    let refusal = run.wait_warning("not fit").await;
    assert!(
        refusal.contains("Y node dp-y-2 does not answer: connection refused")
            && refusal.contains(&format!("type '{OVERRIDE_WORD}'")),
        "{refusal}"
    );
    assert!(
        !run.journal()
            .iter()
            .any(|r| matches!(r.entry, Entry::StepConfirmed { .. })),
        "a refused stage is not confirmed"
    );
    assert!(
        !run.events.lock().unwrap().iter().any(|e| matches!(
            e,
            Event::StepChanged {
                state: StepState::Running,
                ..
            }
        )),
        "nothing ran"
    );

    // A wrong word is no override.
    run.send(Command::Confirm {
        step: stage.clone(),
        typed: Some("yes".into()),
    })
    .await;
    run.wait_warning("not fit").await;

    run.send(Command::Confirm {
        step: stage.clone(),
        typed: Some(OVERRIDE_WORD.into()),
    })
    .await;
    run.wait_step(&stage, StepState::Succeeded).await;
    let journal = run.journal();
    let confirmed = journal
        .iter()
        .find(|r| matches!(r.entry, Entry::StepConfirmed { .. }))
        .expect("the overridden confirm is journaled");
    assert_eq!(confirmed.by, "alice@test");
    match &confirmed.entry {
        Entry::StepConfirmed {
            overridden, typed, ..
        } => {
            assert_eq!(
                overridden,
                &["Y node dp-y-2 does not answer: connection refused (os error 111)"]
            );
            assert!(!typed, "the override word is not the plan name");
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_healthy_y_takes_the_stage_on_a_plain_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = TopologySnapshot {
        nodes: vec![
            data_plane("dp-y-1", NodeHealth::Ready),
            data_plane("dp-y-2", NodeHealth::Ready),
        ],
        ..TopologySnapshot::default()
    };
    let (mut run, _side) = started_with(dir.path(), healthy).await;
    run.confirm_and_wait(&cluster("shift-traffic-50"), StepState::Succeeded)
        .await;
}

#[tokio::test]
async fn once_the_node_is_back_the_stage_needs_no_override() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, side) = started_with(dir.path(), one_data_plane_crashed()).await;
    let stage = cluster("shift-traffic-50");
    run.confirm(&stage).await;
    run.wait_warning("dp-y-2 does not answer").await;
    side.send(Event::Topology(TopologySnapshot {
        nodes: vec![
            data_plane("dp-y-1", NodeHealth::Ready),
            data_plane("dp-y-2", NodeHealth::Ready),
        ],
        ..TopologySnapshot::default()
    }))
    .unwrap();
    run.wait_for("the new topology", |e| {
        matches!(e, Event::Topology(t) if t.nodes.iter().all(|n| n.health == NodeHealth::Ready))
    })
    .await;
    run.confirm_and_wait(&stage, StepState::Succeeded).await;
}

/// `--plain` asks the same: a bare `y` is refused with the reasons, `override` goes on.
#[tokio::test]
async fn plain_says_why_y_is_unfit_and_takes_override_not_y() {
    use kongup::metrics::{GateFigures, GateVerdict, Verdict};
    use kongup::plain::{PlainSetup, drive};
    use std::io::{BufReader, Write};
    use std::os::unix::net::UnixStream;

    let dir = tempfile::tempdir().unwrap();
    let mut kit = kit();
    let (gates, rx) = tokio::sync::watch::channel(None);
    kit.toolbox = kit.toolbox.with_gates(rx);
    let setup = setup(
        dir.path(),
        plan_named("p"),
        stages(),
        "v1",
        kit.toolbox.clone(),
    );
    let run_dir = setup.run_dir.clone();
    let plain = PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: kit.toolbox.clone(),
        interactive: false,
    };
    let out = SharedOut::default();
    let (mut keyboard, pipe) = UnixStream::pair().unwrap();
    let handle = kongup::engine::spawn(setup).unwrap();
    let task = tokio::spawn(drive(handle, plain, BufReader::new(pipe), out.clone()));
    gates.send_replace(Some(GateVerdict {
        at: chrono::Utc::now(),
        verdict: Verdict::Fail,
        checks: vec!["Y 5xx 4.00% <= 1.00%: BREACH".into()],
        requests_in_window: 400,
        consecutive_breaches: 2,
        figures: GateFigures::default(),
        shown: Vec::new(),
    }));
    out.wait_for("gate: ").await;

    keyboard.write_all(b"y\n").unwrap();
    out.wait_for(
        "! cluster/shift-traffic-50 would send more traffic to a Y that is not fit for it: the \
         gate window holds failing samples (2 in a row): Y 5xx 4.00% <= 1.00%: BREACH",
    )
    .await;
    out.wait_for(&format!("type `{OVERRIDE_WORD}` to confirm anyway"))
        .await;
    let read = || {
        kongup::engine::journal::read_journal(&run_dir.join(kongup::engine::journal::JOURNAL_FILE))
            .unwrap()
            .records
    };
    assert!(
        !read()
            .iter()
            .any(|r| matches!(r.entry, Entry::StepConfirmed { .. })),
        "{}",
        out.text()
    );

    keyboard
        .write_all(format!("{OVERRIDE_WORD}\n").as_bytes())
        .unwrap();
    out.wait_for("-> cluster/shift-traffic-50 running").await;
    drop(keyboard);
    tokio::time::timeout(DEADLINE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let confirmed = read()
        .into_iter()
        .find_map(|r| match r.entry {
            Entry::StepConfirmed { overridden, .. } => Some((r.by, overridden)),
            _ => None,
        })
        .expect("the override is journaled");
    assert_eq!(confirmed.0, "alice@test");
    assert_eq!(
        confirmed.1,
        ["the gate window holds failing samples (2 in a row): Y 5xx 4.00% <= 1.00%: BREACH"]
    );
}

/// `t` (a split set by hand) that sends Y more is checked as a stage is.
#[tokio::test]
async fn more_traffic_to_an_unfit_y_by_hand_needs_the_override_and_journals_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, _side) = started_with(dir.path(), one_data_plane_crashed()).await;
    run.send(Command::SetTraffic {
        y_percent: 50,
        override_health: false,
    })
    .await;
    let refusal = run.wait_warning("cannot set Y 50%").await;
    assert!(
        refusal.contains("Y node dp-y-2 does not answer")
            && refusal.contains(&format!("`50 {OVERRIDE_WORD}`")),
        "{refusal}"
    );
    assert!(
        !run.journal()
            .iter()
            .any(|r| matches!(r.entry, Entry::TrafficRequested { .. })),
        "nothing was asked of the load balancer"
    );
    run.send(Command::SetTraffic {
        y_percent: 50,
        override_health: true,
    })
    .await;
    run.wait_for(
        "the split applied",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if requested.y == 50),
    )
    .await;
    let cause = run
        .journal()
        .into_iter()
        .find_map(|r| match r.entry {
            Entry::TrafficRequested { cause, .. } => Some(cause),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        cause,
        "set by hand by alice@test, overriding Y's health check: Y node dp-y-2 does not \
         answer: connection refused (os error 111)"
    );
    // Less to Y is never held by Y's health.
    run.send(Command::SetTraffic {
        y_percent: 0,
        override_health: false,
    })
    .await;
    run.wait_for(
        "all back on X",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if requested.y == 0),
    )
    .await;
}

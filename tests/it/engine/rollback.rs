//! The one-command rollback: traffic to X first where X can still serve, time to safety,
//! the rollback plan confirmed step by step, the database-restore path after the point
//! of no return, and rollback across a restart.

use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::event::{RollbackProgress, TrafficVerification};
use kongup::engine::journal::Entry;
use kongup::engine::{Command, Event, RunState, StepState};
use kongup::lb::Split;
use kongup::plan::model::Strategy;
use kongup::plan::steps::{ClusterSide, ExpandedPlan, MigrationsCommand, RollbackKind, StepKind};
use tokio::sync::Notify;

fn shift(id: &str, y_percent: u8, bake: Duration) -> kongup::plan::steps::Step {
    with_rollback(
        step(id, StepKind::ShiftTraffic { y_percent, bake }),
        RollbackKind::TrafficToX,
    )
}

fn start_y() -> kongup::plan::steps::Step {
    with_rollback(
        scripted("start-y"),
        RollbackKind::StopNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
    )
}

fn finish() -> kongup::plan::steps::Step {
    let mut finish = with_rollback(
        step(
            "migrations-finish",
            StepKind::Migrations(MigrationsCommand::Finish),
        ),
        RollbackKind::RestoreDatabase,
    );
    finish.irreversible = true;
    finish
}

/// Ends with a step after the finish, as X's decommissioning would be: a run that is done
/// has nothing to roll back, so after the finish the run must still be under way.
fn blue_green() -> ExpandedPlan {
    expanded(
        Strategy::BlueGreen,
        vec![
            start_y(),
            shift("shift-traffic-50", 50, Duration::ZERO),
            shift("shift-traffic-100", 100, Duration::ZERO),
            finish(),
            scripted("tidy-up"),
        ],
    )
}

async fn confirm(run: &mut TestRun, id: &str, typed: Option<&str>) {
    run.send(Command::Confirm {
        step: cluster(id),
        typed: typed.map(str::to_string),
    })
    .await;
    run.wait_step(&cluster(id), StepState::Succeeded).await;
}

fn planned_ids(event: &Event) -> Vec<String> {
    match event {
        Event::RollbackProgress(RollbackProgress::Planned { steps, .. }) => {
            steps.iter().map(|s| s.to_string()).collect()
        }
        _ => panic!("not a plan: {event:?}"),
    }
}

async fn wait_planned(run: &mut TestRun) -> Vec<String> {
    let event = run
        .wait_for("the rollback plan", |e| {
            matches!(e, Event::RollbackProgress(RollbackProgress::Planned { .. }))
        })
        .await;
    planned_ids(&event)
}

#[tokio::test]
async fn before_the_point_of_no_return_traffic_goes_to_x_first_then_the_plan_runs() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-50", None).await;
    run.wait_seen("traffic at 50%", |e| {
        *e == Event::TrafficChanged {
            requested: Split::to_y(50),
            applied: Some(Split::to_y(50)),
        }
    })
    .await;

    run.send(Command::Rollback).await;
    run.wait_for("rollback started", |e| {
        *e == Event::RollbackProgress(RollbackProgress::Started)
    })
    .await;
    run.wait_for("traffic on X", |e| {
        *e == Event::TrafficChanged {
            requested: Split::ALL_X,
            applied: Some(Split::ALL_X),
        }
    })
    .await;
    let safe = run
        .wait_for("time to safety", |e| {
            matches!(
                e,
                Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
            )
        })
        .await;
    assert!(
        matches!(
            &safe,
            Event::RollbackProgress(RollbackProgress::TrafficSafe {
                verified: TrafficVerification::ReadBack,
                evidence,
                ..
            }) if evidence == "confirmed by the load balancer, which reports X 100% | Y 0%"
        ),
        "{safe:?}"
    );
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    assert_eq!(wait_planned(&mut run).await, ["rollback/start-y"]);
    run.wait_seen("rolling back", |e| {
        *e == Event::RunChanged(RunState::RollingBack)
    })
    .await;

    // Forward steps wait: it is the rollback's turn.
    run.confirm(&cluster("shift-traffic-100")).await;
    run.wait_warning("rollback/start-y's turn").await;
    run.confirm_and_wait(&rollback_ref("start-y"), StepState::Succeeded)
        .await;
    run.wait_seen("start-y rolled back", |e| {
        matches!(e, Event::StepChanged { step, state: StepState::RolledBack, .. } if *step == cluster("start-y"))
    })
    .await;
    run.wait_for("rollback finished", |e| {
        *e == Event::RollbackProgress(RollbackProgress::Finished)
    })
    .await;
    run.wait_for("rolled back", |e| {
        *e == Event::RunChanged(RunState::RolledBack)
    })
    .await;
    assert_eq!(kit.stand_in.runs_of("start-y"), 2, "forward and rollback");

    let journal = run.journal();
    let requested = position(&journal, |e| matches!(e, Entry::RollbackRequested { .. })).unwrap();
    let safe = position(&journal, |e| matches!(e, Entry::RollbackTrafficSafe { .. })).unwrap();
    let planned = position(&journal, |e| {
        matches!(
            e,
            Entry::RollbackPlanned {
                point_of_no_return: false,
                ..
            }
        )
    })
    .unwrap();
    assert!(requested < safe && safe < planned);
    assert_eq!(journal[requested].by, "alice@test");
    run.quit().await;
}

#[tokio::test]
async fn after_migrations_finish_rollback_is_the_restore_path_with_typed_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-50", None).await;
    confirm(&mut run, "shift-traffic-100", None).await;
    confirm(&mut run, "migrations-finish", Some("bg")).await;
    let sets_before = kit.driver.sets.lock().unwrap().len();

    run.send(Command::Rollback).await;
    let warning = run.wait_warning("database-restore path").await;
    assert!(warning.contains("cluster/migrations-finish"), "{warning}");
    assert_eq!(
        wait_planned(&mut run).await,
        [
            "rollback/migrations-finish",
            "rollback/traffic-to-x",
            "rollback/start-y"
        ]
    );
    assert_eq!(
        kit.driver.sets.lock().unwrap().len(),
        sets_before,
        "X cannot serve: traffic stays"
    );

    run.confirm(&rollback_ref("migrations-finish")).await;
    let warning = run.wait_warning("irreversible").await;
    assert!(warning.contains("replaces everything written"), "{warning}");
    run.send(Command::Confirm {
        step: rollback_ref("migrations-finish"),
        typed: Some("bg".into()),
    })
    .await;
    run.wait_step(&rollback_ref("migrations-finish"), StepState::Succeeded)
        .await;
    run.wait_seen("finish rolled back", |e| {
        matches!(e, Event::StepChanged { step, state: StepState::RolledBack, .. } if *step == cluster("migrations-finish"))
    })
    .await;

    run.confirm_and_wait(&rollback_ref("traffic-to-x"), StepState::Succeeded)
        .await;
    run.wait_seen("time to safety", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    run.confirm(&rollback_ref("start-y")).await;
    run.wait_for("rolled back", |e| {
        *e == Event::RunChanged(RunState::RolledBack)
    })
    .await;
    let journal = run.journal();
    assert!(
        position(&journal, |e| matches!(
            e,
            Entry::RollbackPlanned {
                point_of_no_return: true,
                ..
            }
        ))
        .is_some()
    );
    run.quit().await;
}

#[tokio::test]
async fn dual_cluster_keeps_x_serving_after_finish_so_traffic_still_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(
        Strategy::DualCluster,
        vec![
            start_y(),
            shift("shift-traffic-100", 100, Duration::ZERO),
            finish(),
            scripted("tidy-up"),
        ],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("dc"),
        steps,
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-100", None).await;
    confirm(&mut run, "migrations-finish", Some("dc")).await;
    run.send(Command::Rollback).await;
    run.wait_for("time to safety", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    assert_eq!(
        wait_planned(&mut run).await,
        ["rollback/migrations-finish", "rollback/start-y"]
    );
    run.quit().await;
}

#[tokio::test]
async fn a_load_balancer_that_cannot_confirm_gets_a_traffic_step_in_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver {
            blind: true,
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-50", None).await;
    run.send(Command::Rollback).await;
    let warning = run.wait_warning("not confirmed on X").await;
    assert!(warning.contains("cannot read the split back"), "{warning}");
    assert_eq!(
        wait_planned(&mut run).await,
        ["rollback/traffic-to-x", "rollback/start-y"]
    );
    assert!(
        position(&run.journal(), |e| matches!(
            e,
            Entry::RollbackTrafficFailed { .. }
        ))
        .is_some()
    );

    // A second R does nothing new: no other call to the load balancer, no other rollback;
    // the plan's traffic-to-x step is the way on.
    let sets = kit.driver.sets.lock().unwrap().len();
    run.send(Command::Rollback).await;
    run.wait_warning("already under way").await;
    assert_eq!(kit.driver.sets.lock().unwrap().len(), sets);
    let requested = |journal: &[kongup::engine::journal::Record]| {
        journal
            .iter()
            .filter(|r| matches!(r.entry, Entry::RollbackRequested { .. }))
            .count()
    };
    assert_eq!(requested(&run.journal()), 1);

    run.confirm(&rollback_ref("traffic-to-x")).await;
    let detail = run
        .wait_step(&rollback_ref("traffic-to-x"), StepState::Succeeded)
        .await
        .unwrap();
    assert!(detail.contains("cannot read the split back"), "{detail}");
    let safe = run
        .wait_seen("time to safety", |e| {
            matches!(
                e,
                Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
            )
        })
        .await;
    assert!(
        matches!(
            &safe,
            Event::RollbackProgress(RollbackProgress::TrafficSafe {
                verified: TrafficVerification::Unverified,
                evidence,
                ..
            }) if evidence.contains("NOT verified")
        ),
        "{safe:?}"
    );
    run.wait_warning("nothing confirms it").await;
    let journal = run.journal();
    assert!(
        position(&journal, |e| matches!(
            e,
            Entry::RollbackTrafficSafe {
                verified: TrafficVerification::Unverified,
                ..
            }
        ))
        .is_some(),
        "the journal says the time to safety was not verified"
    );
    let on_disk = kongup::engine::status::read_run(&run.run_dir).unwrap();
    let report =
        kongup::engine::report::render_markdown(&kongup::engine::report::build_report(&on_disk));
    assert!(
        report.contains("unverified: NOT verified: the traffic driver cannot read the split back"),
        "{report}"
    );
    run.quit().await;
}

#[tokio::test]
async fn with_the_manual_driver_the_operator_confirms_traffic_on_x() {
    let dir = tempfile::tempdir().unwrap();
    let mut kit = kit();
    kit.toolbox.traffic = Arc::new(kongup::lb::manual::ManualTrafficDriver);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-50", None).await;
    run.send(Command::Rollback).await;
    assert_eq!(
        wait_planned(&mut run).await,
        ["rollback/traffic-to-x", "rollback/start-y"]
    );
    run.confirm(&rollback_ref("traffic-to-x")).await;
    let safe = run
        .wait_for("time to safety", |e| {
            matches!(
                e,
                Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
            )
        })
        .await;
    assert!(
        matches!(
            &safe,
            Event::RollbackProgress(RollbackProgress::TrafficSafe {
                verified: TrafficVerification::OperatorConfirmed,
                evidence,
                ..
            }) if evidence.contains("confirmed by the operator")
        ),
        "{safe:?}"
    );
    run.quit().await;
}

#[tokio::test]
async fn rollback_stops_a_bake_but_never_cuts_a_command_short() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(
        Strategy::BlueGreen,
        vec![
            start_y(),
            shift("shift-traffic-50", 50, Duration::from_secs(600)),
        ],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        steps.clone(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    run.confirm(&cluster("shift-traffic-50")).await;
    run.wait_for("the bake", |e| matches!(e, Event::Bake { .. }))
        .await;
    run.send(Command::Rollback).await;
    let detail = run
        .wait_step(&cluster("shift-traffic-50"), StepState::Failed)
        .await
        .unwrap();
    assert!(detail.contains("the bake was stopped"), "{detail}");
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    run.wait_step(&rollback_ref("start-y"), StepState::Ready)
        .await;
    run.quit().await;

    // A command step runs on: the rollback plan waits for it.
    let dir = tempfile::tempdir().unwrap();
    let kit = crate::support::engine::kit();
    let release = Arc::new(Notify::new());
    kit.stand_in
        .set("start-y", Behavior::Block(release.clone()));
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        steps,
        "v1",
        kit.toolbox,
    ));
    run.confirm_and_wait(&cluster("start-y"), StepState::Running)
        .await;
    run.send(Command::Rollback).await;
    run.wait_warning("is not cut short").await;
    assert_eq!(wait_planned(&mut run).await, ["rollback/start-y"]);
    release.notify_one();
    run.wait_step(&cluster("start-y"), StepState::Succeeded)
        .await;
    run.wait_step(&rollback_ref("start-y"), StepState::Ready)
        .await;
    run.quit().await;
}

#[tokio::test]
async fn a_rollback_is_resumed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox.clone(),
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-50", None).await;
    run.send(Command::Rollback).await;
    wait_planned(&mut run).await;
    assert_eq!(run.quit().await.state, RunState::RollingBack);

    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    run.wait_for("rolling back", |e| {
        *e == Event::RunChanged(RunState::RollingBack)
    })
    .await;
    run.wait_for("the rollback plan again", |e| {
        matches!(e, Event::RollbackProgress(RollbackProgress::Planned { .. }))
    })
    .await;
    run.wait_step(&rollback_ref("start-y"), StepState::Ready)
        .await;
    run.send(Command::Rollback).await;
    run.wait_warning("already under way").await;
    run.confirm(&rollback_ref("start-y")).await;
    run.wait_for("rolled back", |e| {
        *e == Event::RunChanged(RunState::RolledBack)
    })
    .await;
    run.send(Command::Rollback).await;
    run.wait_warning("already rolled back").await;
    run.quit().await;
}

#[tokio::test]
async fn a_rollback_before_traffic_moved_does_not_touch_the_load_balancer() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    run.send(Command::Rollback).await;
    assert_eq!(wait_planned(&mut run).await, ["rollback/start-y"]);
    assert!(kit.driver.sets.lock().unwrap().is_empty());
    run.send(Command::Skip {
        step: rollback_ref("start-y"),
        reason: "Y was never started".into(),
    })
    .await;
    run.wait_for("rolled back", |e| {
        *e == Event::RunChanged(RunState::RolledBack)
    })
    .await;
    assert_eq!(run.quit().await.state, RunState::RolledBack);
}

#[tokio::test]
async fn a_rollback_during_a_traffic_change_acts_after_it_so_x_gets_the_last_word() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver {
            delay: Some(Duration::from_millis(300)),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    run.confirm_and_wait(&cluster("shift-traffic-50"), StepState::Running)
        .await;
    run.send(Command::Rollback).await;
    run.wait_seen("time to safety", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    assert_eq!(
        *kit.driver.sets.lock().unwrap(),
        [Split::to_y(50), Split::ALL_X],
        "the stage's split landed first, the rollback's last"
    );
    assert_eq!(wait_planned(&mut run).await, ["rollback/start-y"]);
    run.quit().await;
}

#[tokio::test]
async fn an_interrupted_step_can_be_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    crash_while_running(
        setup(
            dir.path(),
            plan_named("bg"),
            blue_green(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "start-y",
    )
    .await;

    kit.stand_in.set("start-y", Behavior::Succeed);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    run.wait_step(&cluster("start-y"), StepState::Interrupted)
        .await;
    run.send(Command::Rollback).await;
    assert_eq!(wait_planned(&mut run).await, ["rollback/start-y"]);
    run.confirm_and_wait(&rollback_ref("start-y"), StepState::Succeeded)
        .await;
    run.wait_seen("start-y rolled back", |e| {
        matches!(e, Event::StepChanged { step, state: StepState::RolledBack, .. } if *step == cluster("start-y"))
    })
    .await;
    run.wait_for("rolled back", |e| {
        *e == Event::RunChanged(RunState::RolledBack)
    })
    .await;
    run.quit().await;
}

/// After X was decommissioned, R has nothing to do: X cannot take traffic and nothing that
/// ran has a rollback step. It is refused with the reason, before and after the run is
/// done, and the journal never reads as if the run went back to X.
#[tokio::test]
async fn after_x_is_decommissioned_no_traffic_goes_back_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut decommission = step(
        "decommission-x",
        StepKind::Decommission {
            cluster: ClusterSide::X,
        },
    );
    decommission.irreversible = true;
    let steps = expanded(
        Strategy::Rolling,
        vec![
            shift("shift-traffic-100", 100, Duration::ZERO),
            decommission,
            scripted("tidy-up"),
        ],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("prod-eu"),
        steps,
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "shift-traffic-100", None).await;
    confirm(&mut run, "decommission-x", Some("prod-eu")).await;

    run.send(Command::Rollback).await;
    let warning = run.wait_warning("nothing to roll back").await;
    assert!(
        warning.contains("cluster/decommission-x")
            && warning.contains("rebuild")
            && warning.contains("No step that ran has a rollback step"),
        "{warning}"
    );
    confirm(&mut run, "tidy-up", None).await;
    run.wait_for("done", |e| *e == Event::RunChanged(RunState::Done))
        .await;
    run.send(Command::Rollback).await;
    let warning = run.wait_warning("nothing to roll back").await;
    assert!(
        warning.contains("the run is done") && warning.contains("`traffic N`"),
        "{warning}"
    );
    assert_eq!(
        *kit.driver.sets.lock().unwrap(),
        [Split::to_y(100)],
        "no traffic was sent to the decommissioned X"
    );
    let journal = run.journal();
    assert!(
        position(&journal, |e| matches!(
            e,
            Entry::RollbackRequested { .. }
                | Entry::RollbackPlanned { .. }
                | Entry::RollbackFinished
        ))
        .is_none(),
        "a refused rollback leaves no trace of one in the journal"
    );

    // By hand, traffic may not go back to X either; all of it on Y is fine.
    run.send(Command::SetTraffic {
        y_percent: 0,
        override_health: false,
    })
    .await;
    let warning = run.wait_warning("cannot set X").await;
    assert!(warning.contains("cluster/decommission-x"), "{warning}");
    assert_eq!(kit.driver.sets.lock().unwrap().len(), 1);
    run.send(Command::SetTraffic {
        y_percent: 100,
        override_health: false,
    })
    .await;
    run.wait_seen(
        "all traffic on Y again",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if *requested == Split::to_y(100)),
    )
    .await;
    run.quit().await;
}

#[tokio::test]
async fn after_x_was_stopped_traffic_goes_back_only_once_x_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let stop_x = with_rollback(
        step(
            "stop-x",
            StepKind::StopNodes {
                cluster: ClusterSide::X,
                wave: None,
            },
        ),
        RollbackKind::StartNodes {
            cluster: ClusterSide::X,
            wave: None,
        },
    );
    let steps = expanded(
        Strategy::InPlace,
        vec![
            stop_x,
            start_y(),
            shift("shift-traffic-100", 100, Duration::ZERO),
            scripted("tidy-up"),
        ],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("ip"),
        steps,
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "stop-x", None).await;
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-100", None).await;

    run.send(Command::Rollback).await;
    let warning = run.wait_warning("cannot serve").await;
    assert!(warning.contains("cluster/stop-x"), "{warning}");
    assert_eq!(
        wait_planned(&mut run).await,
        [
            "rollback/start-y",
            "rollback/stop-x",
            "rollback/traffic-to-x"
        ]
    );
    assert_eq!(*kit.driver.sets.lock().unwrap(), [Split::to_y(100)]);
    run.send(Command::SetTraffic {
        y_percent: 0,
        override_health: false,
    })
    .await;
    run.wait_warning("cannot set X").await;

    for id in ["start-y", "stop-x"] {
        run.confirm_and_wait(&rollback_ref(id), StepState::Succeeded)
            .await;
    }
    run.confirm_and_wait(&rollback_ref("traffic-to-x"), StepState::Succeeded)
        .await;
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    run.quit().await;
}

#[tokio::test]
async fn rollback_stops_the_bake_of_a_stage_with_commands_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let ran = dir.path().join("the stage's command ran");
    let mut stage = shift("shift-traffic-50", 50, Duration::from_secs(600));
    stage.commands = vec![shell_command(&format!("touch '{}'", ran.display()))];
    let steps = expanded(Strategy::BlueGreen, vec![start_y(), stage]);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        steps,
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    run.confirm(&cluster("shift-traffic-50")).await;
    run.wait_for("the bake", |e| matches!(e, Event::Bake { .. }))
        .await;
    run.send(Command::Rollback).await;
    let safe = run
        .wait_for("traffic safe", |e| {
            matches!(
                e,
                Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
            )
        })
        .await;
    let Event::RollbackProgress(RollbackProgress::TrafficSafe {
        time_to_safety_ms, ..
    }) = safe
    else {
        unreachable!()
    };
    assert!(
        time_to_safety_ms < 5_000,
        "R waited {time_to_safety_ms} ms for the stage's bake"
    );
    let failed = run
        .wait_seen("the stage to fail", |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Failed, .. } if *step == cluster("shift-traffic-50"))
        })
        .await;
    let Event::StepChanged {
        detail: Some(detail),
        ..
    } = failed
    else {
        unreachable!()
    };
    assert!(detail.contains("stopped by the rollback"), "{detail}");
    assert!(!ran.exists(), "the stage's command ran after the rollback");
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    run.quit().await;
}

#[tokio::test]
async fn a_stage_that_had_not_set_its_split_when_rollback_came_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver {
            delay: Some(Duration::from_millis(800)),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        expanded(
            Strategy::BlueGreen,
            vec![shift("shift-traffic-50", 50, Duration::ZERO)],
        ),
        "v1",
        kit.toolbox,
    ));
    // A split set by hand holds the driver, so the stage queues behind it.
    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: false,
    })
    .await;
    run.confirm_and_wait(&cluster("shift-traffic-50"), StepState::Running)
        .await;
    run.send(Command::Rollback).await;
    let detail = run
        .wait_step(&cluster("shift-traffic-50"), StepState::Failed)
        .await
        .unwrap();
    assert!(
        detail.contains("a rollback was requested before"),
        "{detail}"
    );
    run.wait_seen("time to safety", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    assert_eq!(
        *kit.driver.sets.lock().unwrap(),
        [Split::to_y(10), Split::ALL_X],
        "the split by hand was applied whole, the stage left it alone, the rollback's landed last"
    );
    run.quit().await;
}

/// A gate failure (or the operator) paused the run; `R` then must not need a resume before
/// each rollback step: the pause holds the upgrade, not its undoing.
#[tokio::test]
async fn a_paused_run_rolls_back_without_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("bg"),
        blue_green(),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    confirm(&mut run, "shift-traffic-50", None).await;
    run.send(Command::Pause).await;
    run.wait_seen("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;

    run.send(Command::Rollback).await;
    assert_eq!(wait_planned(&mut run).await, ["rollback/start-y"]);
    run.confirm_and_wait(&rollback_ref("start-y"), StepState::Succeeded)
        .await;
    run.wait_for("rolled back", |e| {
        *e == Event::RunChanged(RunState::RolledBack)
    })
    .await;
    // The rollback took traffic to X on its own, pause or not.
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    run.quit().await;
}

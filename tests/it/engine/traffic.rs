//! Traffic stages and monitoring bakes with gate verdicts: pass, fail (pause or roll
//! back), inconclusive, no gate source, auto-advance, and traffic set by hand.

use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::*;
use chrono::Utc;
use kongup::engine::event::RollbackProgress;
use kongup::engine::journal::{ConfirmVia, Entry, StepResult};
use kongup::engine::{Command, Event, RunState, StepState};
use kongup::lb::Split;
use kongup::metrics::{ClusterWindow, GateFigures, GateThresholds, GateVerdict, Verdict};
use kongup::plan::model::{FailAction, Strategy};
use kongup::plan::steps::{RollbackKind, StepKind};
use tokio::sync::watch;

fn shift(id: &str, y_percent: u8, bake: Duration) -> kongup::plan::steps::Step {
    with_rollback(
        step(id, StepKind::ShiftTraffic { y_percent, bake }),
        RollbackKind::TrafficToX,
    )
}

fn verdict(verdict: Verdict) -> Option<GateVerdict> {
    Some(GateVerdict {
        at: Utc::now(),
        verdict,
        checks: vec!["Y 5xx 4.0% <= 1.0%: breached".into()],
        requests_in_window: 420,
        consecutive_breaches: if verdict == Verdict::Fail { 2 } else { 0 },
        figures: figures(),
        shown: Vec::new(),
    })
}

/// What `verdict` says it was judged on.
fn figures() -> GateFigures {
    GateFigures {
        x: ClusterWindow {
            requests: Some(3780),
            error_ratio: Some(0.001),
            p99_ms: Some(120.0),
        },
        y: ClusterWindow {
            requests: Some(420),
            error_ratio: Some(0.04),
            p99_ms: Some(150.0),
        },
        thresholds: GateThresholds {
            max_error_ratio: Some(0.01),
            min_requests: 10,
            breaches_to_fail: 2,
            ..GateThresholds::default()
        },
        p99_on_shared_bounds: None,
        scope: None,
    }
}

struct Gated {
    kit: Kit,
    gates: watch::Sender<Option<GateVerdict>>,
}

fn gated() -> Gated {
    let mut kit = kit();
    let (gates, rx) = watch::channel(None);
    kit.toolbox = kit.toolbox.with_gates(rx);
    Gated { kit, gates }
}

async fn start_bake(run: &mut TestRun, id: &str) {
    run.confirm(&cluster(id)).await;
    run.wait_for(
        "the bake to begin",
        |e| matches!(e, Event::Bake { step, .. } if *step == cluster(id)),
    )
    .await;
}

#[tokio::test]
async fn a_failing_gate_ends_the_bake_at_once_and_pauses_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    let steps = expanded(
        Strategy::BlueGreen,
        vec![shift("shift-traffic-5", 5, Duration::from_secs(600))],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        steps,
        "v1",
        gated.kit.toolbox,
    ));
    start_bake(&mut run, "shift-traffic-5").await;
    gated.gates.send_replace(verdict(Verdict::Fail));
    run.wait_for(
        "the verdict shown",
        |e| matches!(e, Event::Gate(v) if v.verdict == Verdict::Fail),
    )
    .await;
    let detail = run
        .wait_step(&cluster("shift-traffic-5"), StepState::Failed)
        .await
        .unwrap();
    assert!(
        detail.contains("gate failed (2 breaches in a row): Y 5xx 4.0% <= 1.0%: breached"),
        "{detail}"
    );
    assert!(
        detail.contains("the load balancer reports X 95% | Y 5%"),
        "{detail}"
    );
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    // The run reads paused at once, not failed first (the step failed, the run did not).
    assert!(
        !run.events
            .lock()
            .unwrap()
            .contains(&Event::RunChanged(RunState::Failed)),
        "the run was said to have failed before it paused"
    );
    let journal = run.journal();
    let gate = journal.iter().find_map(|r| match &r.entry {
        Entry::Gate { gate, .. } => Some(gate.clone()),
        _ => None,
    });
    let gate = gate.expect("the verdict is journaled");
    assert_eq!(
        (gate.verdict.as_str(), gate.requests_in_window),
        ("fail", 420)
    );
    // A bake's verdict is journaled with the figures it was judged on.
    assert_eq!(gate.figures, Some(figures()));
    // The split stays where it was: pausing moves no traffic.
    assert_eq!(
        *gated.kit.driver.split.lock().unwrap(),
        Some(Split::to_y(5))
    );
    run.retry(&cluster("shift-traffic-5")).await;
    run.wait_warning("the run is paused").await;
    run.quit().await;
}

#[tokio::test]
async fn a_failing_gate_rolls_back_when_the_plan_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    let mut plan = plan_named("p");
    plan.gates.on_fail = FailAction::Rollback;
    let steps = expanded(
        Strategy::BlueGreen,
        vec![shift("shift-traffic-5", 5, Duration::from_secs(600))],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        steps,
        "v1",
        gated.kit.toolbox.clone(),
    ));
    start_bake(&mut run, "shift-traffic-5").await;
    gated.gates.send_replace(verdict(Verdict::Fail));
    run.wait_step(&cluster("shift-traffic-5"), StepState::Failed)
        .await;
    run.wait_for("time to safety", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    assert_eq!(*gated.kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    let journal = run.journal();
    let requested = journal
        .iter()
        .find(|r| matches!(r.entry, Entry::RollbackRequested { .. }))
        .unwrap();
    assert_eq!(requested.by, "kongup");
    assert!(
        matches!(&requested.entry, Entry::RollbackRequested { reason } if reason.contains("on_fail: rollback"))
    );
    let intent = position(&journal, |e| matches!(e, Entry::RollbackRequested { .. })).unwrap();
    let failed = position(&journal, |e| {
        matches!(
            e,
            Entry::StepFinished {
                result: StepResult::Failed,
                ..
            }
        )
    })
    .unwrap();
    assert!(
        intent < failed,
        "the rollback's intent must be journaled before the failure that causes it"
    );
    run.quit().await;

    // kongup dies right after journaling the failed stage: the rollback is not lost.
    let path = dir.path().join("run").join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text
        .lines()
        .take(failed + 1)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept).unwrap();
    let mut plan = plan_named("p");
    plan.gates.on_fail = FailAction::Rollback;
    let steps = expanded(
        Strategy::BlueGreen,
        vec![shift("shift-traffic-5", 5, Duration::from_secs(600))],
    );
    let mut run = TestRun::start(setup(dir.path(), plan, steps, "v1", gated.kit.toolbox));
    run.wait_for("rolling back", |e| {
        *e == Event::RunChanged(RunState::RollingBack)
    })
    .await;
    run.wait_warning("a rollback was under way").await;
    run.quit().await;
}

#[tokio::test]
async fn no_fresh_verdict_during_a_bake_is_inconclusive_and_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    // A verdict from before the bake does not count.
    gated.gates.send_replace(verdict(Verdict::Pass));
    let steps = expanded(
        Strategy::BlueGreen,
        vec![shift("shift-traffic-5", 5, Duration::from_secs(1))],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        steps,
        "v1",
        gated.kit.toolbox,
    ));
    run.confirm(&cluster("shift-traffic-5")).await;
    let detail = run
        .wait_step(&cluster("shift-traffic-5"), StepState::Failed)
        .await
        .unwrap();
    assert!(
        detail.contains("no gate verdict arrived during the bake"),
        "{detail}"
    );
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    run.send(Command::Resume).await;
    run.send(Command::MarkDone {
        step: cluster("shift-traffic-5"),
        note: "dashboards look fine".into(),
    })
    .await;
    run.wait_for("done", |e| *e == Event::RunChanged(RunState::Done))
        .await;
    run.quit().await;
}

#[tokio::test]
async fn passing_gates_with_auto_advance_start_the_next_stage_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    let mut plan = plan_named("p");
    plan.traffic.auto_advance = true;
    let steps = expanded(
        Strategy::BlueGreen,
        vec![
            shift("shift-traffic-50", 50, Duration::from_secs(2)),
            shift("shift-traffic-100", 100, Duration::from_secs(2)),
            step("review", StepKind::Review),
        ],
    );
    let mut run = TestRun::start(setup(dir.path(), plan, steps, "v1", gated.kit.toolbox));
    start_bake(&mut run, "shift-traffic-50").await;
    gated.gates.send_replace(verdict(Verdict::Pass));
    let detail = run
        .wait_step(&cluster("shift-traffic-50"), StepState::Succeeded)
        .await
        .unwrap();
    assert!(detail.contains("gates passed"), "{detail}");
    run.wait_for(
        "the next bake",
        |e| matches!(e, Event::Bake { step, .. } if *step == cluster("shift-traffic-100")),
    )
    .await;
    gated.gates.send_replace(verdict(Verdict::Pass));
    run.wait_step(&cluster("shift-traffic-100"), StepState::Succeeded)
        .await;
    // Auto-advance is for traffic stages only: the review waits for its confirm.
    run.wait_step(&cluster("review"), StepState::Ready).await;
    let journal = run.journal();
    let auto = journal
        .iter()
        .find(|r| matches!(&r.entry, Entry::StepConfirmed { step, via: ConfirmVia::AutoAdvance, .. } if step == "cluster/shift-traffic-100"))
        .expect("the auto-advance is journaled as a confirm");
    assert_eq!(auto.by, "kongup");
    assert_eq!(
        *gated.kit.driver.split.lock().unwrap(),
        Some(Split::to_y(100))
    );
    run.quit().await;
}

#[tokio::test]
async fn without_a_gate_source_a_bake_counts_down_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(
        Strategy::BlueGreen,
        vec![step(
            "monitor",
            StepKind::Monitor {
                duration: Duration::from_secs(2),
            },
        )],
    );
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.confirm(&cluster("monitor")).await;
    let detail = run
        .wait_step(&cluster("monitor"), StepState::Succeeded)
        .await
        .unwrap();
    assert!(detail.contains("baked without gates"), "{detail}");
    let countdown: Vec<u64> = run
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Bake { remaining_secs, .. } => Some(*remaining_secs),
            _ => None,
        })
        .collect();
    assert!(countdown.first().is_some_and(|s| *s == 2), "{countdown:?}");
    assert_eq!(countdown.last(), Some(&0));
    assert!(countdown.windows(2).all(|w| w[0] >= w[1]), "{countdown:?}");
    run.quit().await;
}

#[tokio::test]
async fn a_split_the_load_balancer_does_not_apply_fails_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver {
            misreport: Some(Split::to_y(0)),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let steps = expanded(
        Strategy::BlueGreen,
        vec![shift("shift-traffic-5", 5, Duration::ZERO)],
    );
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.confirm(&cluster("shift-traffic-5")).await;
    let detail = run
        .wait_step(&cluster("shift-traffic-5"), StepState::Failed)
        .await
        .unwrap();
    assert_eq!(
        detail,
        "asked the load balancer for X 95% | Y 5% but it reports X 100% | Y 0%"
    );
    run.quit().await;
}

#[tokio::test]
async fn traffic_set_by_hand_is_journaled_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: false,
    })
    .await;
    run.wait_for("traffic at 10%", |e| {
        *e == Event::TrafficChanged {
            requested: Split::to_y(10),
            applied: Some(Split::to_y(10)),
        }
    })
    .await;
    let journal = run.journal();
    let requested = journal
        .iter()
        .find(|r| matches!(r.entry, Entry::TrafficRequested { .. }))
        .unwrap();
    assert_eq!(requested.by, "alice@test");
    assert!(
        position(
            &journal,
            |e| matches!(e, Entry::TrafficApplied { applied: Some(s), .. } if *s == Split::to_y(10))
        )
        .is_some()
    );
    run.quit().await;
}

#[tokio::test]
async fn the_engine_takes_commands_while_the_driver_answers() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver {
            delay: Some(Duration::from_millis(1500)),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let steps = expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: false,
    })
    .await;
    run.send(Command::Pause).await;
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    run.wait_for(
        "traffic at 10%",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if *requested == Split::to_y(10)),
    )
    .await;
    let journal = run.journal();
    let paused = position(&journal, |e| matches!(e, Entry::Paused { .. })).unwrap();
    let applied = position(&journal, |e| matches!(e, Entry::TrafficApplied { .. })).unwrap();
    assert!(
        paused < applied,
        "the pause waited for the load balancer: {:#?}",
        entries(&journal)
    );
    run.quit().await;
}

#[tokio::test]
async fn abort_stops_a_driver_call_of_a_stage_or_set_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver {
            delay: Some(Duration::from_secs(600)),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let steps = expanded(
        Strategy::BlueGreen,
        vec![shift("shift-traffic-50", 50, Duration::ZERO)],
    );
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));

    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: false,
    })
    .await;
    run.wait_seen("the request journaled", |_| {
        position(&run.journal(), |e| {
            matches!(e, Entry::TrafficRequested { .. })
        })
        .is_some()
    })
    .await;
    run.send(Command::Abort).await;
    run.wait_warning("could not set the traffic to X 90% | Y 10%")
        .await;
    let journal = run.journal();
    let error = journal
        .iter()
        .find_map(|r| match &r.entry {
            Entry::TrafficApplied { error, .. } => error.clone(),
            _ => None,
        })
        .expect("the stopped call is journaled");
    assert!(error.contains("stopped by an abort"), "{error}");

    let stage = cluster("shift-traffic-50");
    run.confirm_and_wait(&stage, StepState::Running).await;
    run.send(Command::Abort).await;
    let detail = run.wait_step(&stage, StepState::Failed).await.unwrap();
    assert!(detail.contains("stopped by an abort"), "{detail}");
    assert!(kit.driver.sets.lock().unwrap().is_empty());
    run.quit().await;
}

#[tokio::test]
async fn a_failing_gate_between_bakes_pauses_while_y_carries_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    let steps = expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        steps,
        "v1",
        gated.kit.toolbox.clone(),
    ));
    // No traffic on Y: a failing gate is only shown.
    gated.gates.send_replace(verdict(Verdict::Fail));
    run.wait_for("the verdict", |e| matches!(e, Event::Gate(_)))
        .await;
    assert!(position(&run.journal(), |e| matches!(e, Entry::Paused { .. })).is_none());

    // The failing window holds Y's health against more traffic: overridden here, to have Y
    // carry some (tests/it/engine/sick_y.rs has the refusal).
    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: true,
    })
    .await;
    run.wait_for(
        "traffic at 10%",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if *requested == Split::to_y(10)),
    )
    .await;
    gated.gates.send_replace(verdict(Verdict::Fail));
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    let journal = run.journal();
    let gate = position(&journal, |e| {
        matches!(e, Entry::Gate { gate, .. } if gate.verdict == "fail" && gate.requests_in_window == 420
            && gate.figures == Some(figures()))
    })
    .expect("the failing verdict is journaled with its numbers");
    let paused = position(&journal, |e| {
        matches!(e, Entry::Paused { reason } if reason.contains("Y carries 10%") && reason.contains("5xx"))
    })
    .unwrap();
    assert!(gate < paused);
    run.quit().await;
}

#[tokio::test]
async fn between_bakes_each_change_of_verdict_is_journaled_once() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    let steps = expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        steps,
        "v1",
        gated.kit.toolbox.clone(),
    ));
    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: false,
    })
    .await;
    run.wait_for(
        "traffic at 10%",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if *requested == Split::to_y(10)),
    )
    .await;
    let sequence = [
        Verdict::Pass,
        Verdict::Pass,
        Verdict::Inconclusive,
        Verdict::Inconclusive,
        Verdict::Pass,
    ];
    for (i, v) in sequence.into_iter().enumerate() {
        gated.gates.send_replace(verdict(v));
        run.wait_for(&format!("verdict {i}"), |e| matches!(e, Event::Gate(_)))
            .await;
    }
    let journaled = |run: &TestRun| -> Vec<String> {
        run.journal()
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::Gate { gate, .. } => Some(gate.verdict.clone()),
                _ => None,
            })
            .collect()
    };
    // The event goes out before the record is written: wait for the last one's record.
    run.wait_seen("the last verdict journaled", |_| {
        journaled(&run).last().map(String::as_str) == Some("pass") && journaled(&run).len() > 1
    })
    .await;
    assert_eq!(journaled(&run), ["pass", "inconclusive", "pass"]);
    run.quit().await;
}

#[tokio::test]
async fn a_failing_gate_between_bakes_rolls_back_when_the_plan_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let gated = gated();
    let mut plan = plan_named("p");
    plan.gates.on_fail = FailAction::Rollback;
    let steps = expanded(
        Strategy::BlueGreen,
        vec![
            shift("shift-traffic-50", 50, Duration::ZERO),
            step("review", StepKind::Review),
        ],
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        steps,
        "v1",
        gated.kit.toolbox.clone(),
    ));
    run.confirm_and_wait(&cluster("shift-traffic-50"), StepState::Succeeded)
        .await;
    gated.gates.send_replace(verdict(Verdict::Fail));
    run.wait_for("time to safety", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    assert_eq!(*gated.kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    let journal = run.journal();
    let gate = position(&journal, |e| matches!(e, Entry::Gate { .. })).unwrap();
    let requested = position(&journal, |e| {
        matches!(e, Entry::RollbackRequested { reason } if reason.contains("on_fail: rollback"))
    })
    .unwrap();
    assert!(gate < requested);
    run.quit().await;
}

/// The load balancer's split is read as a run opens, for the header. A read that answers
/// only after the split was changed is old news and is not reported: the header never
/// shows a split older than the last change.
#[tokio::test]
async fn a_read_as_the_run_opens_that_answers_after_a_change_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let kit = kit_with(
        FakeDriver {
            split: std::sync::Mutex::new(Some(Split::ALL_X)),
            first_read_gate: Some(gate.clone()),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    );
    let driver = kit.driver.clone();
    let waiting = driver.first_read_waiting.notified();
    let steps = expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    // The opening read has read X 100% and hangs; the operator sets 10% meanwhile.
    waiting.await;
    run.send(Command::SetTraffic {
        y_percent: 10,
        override_health: false,
    })
    .await;
    run.wait_for(
        "traffic at 10%",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if *requested == Split::to_y(10)),
    )
    .await;
    // Now the opening read answers, with the split from before the change.
    let answered = driver.first_read_answered.notified();
    gate.notify_one();
    answered.await;
    // A few turns of the engine's loop, so the read's end is taken up.
    for (command, state) in [
        (Command::Pause, RunState::Paused),
        (Command::Resume, RunState::Idle),
        (Command::Pause, RunState::Paused),
    ] {
        run.send(command).await;
        run.wait_for("the run state", |e| *e == Event::RunChanged(state))
            .await;
    }
    let events = run.events.lock().unwrap().clone();
    assert!(
        !events.contains(&Event::TrafficRead(Split::ALL_X)),
        "an old read was reported: {events:#?}"
    );
    run.quit().await;
}

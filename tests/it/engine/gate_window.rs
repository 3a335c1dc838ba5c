//! Issue 15, item 2: a gate window still holding failing samples says when it clears, in
//! the pause text and when resume is pressed.

use std::time::Duration;

use crate::support::engine::*;
use chrono::{TimeDelta, Utc};
use kongup::engine::journal::Entry;
use kongup::engine::{Command, Event, RunState};
use kongup::lb::Split;
use kongup::metrics::{GateFigures, GateVerdict, Verdict};
use kongup::plan::model::Strategy;
use kongup::plan::steps::StepKind;
use tokio::sync::watch;

fn failed(ago: TimeDelta) -> Option<GateVerdict> {
    Some(GateVerdict {
        at: Utc::now() - ago,
        verdict: Verdict::Fail,
        checks: vec!["Y 5xx 4.00% > 1.00%: BREACH".into()],
        requests_in_window: 420,
        consecutive_breaches: 2,
        figures: GateFigures::default(),
        shown: Vec::new(),
    })
}

/// A 60 s gate window; Y carries 10 % between bakes; the gate fails `ago`: paused.
async fn paused_by_a_failure(
    dir: &std::path::Path,
) -> (TestRun, watch::Sender<Option<GateVerdict>>) {
    let mut kit = kit();
    let (gates, rx) = watch::channel(None);
    kit.toolbox = kit.toolbox.with_gates(rx);
    let mut plan = plan_named("p");
    plan.gates.window = Duration::from_secs(60);
    let steps = expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(dir, plan, steps, "v1", kit.toolbox));
    run.send(Command::SetTraffic { y_percent: 10 }).await;
    run.wait_for(
        "traffic at 10%",
        |e| matches!(e, Event::TrafficChanged { requested, .. } if *requested == Split::to_y(10)),
    )
    .await;
    gates.send_replace(failed(TimeDelta::seconds(15)));
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    (run, gates)
}

#[tokio::test]
async fn the_pause_and_the_resume_say_when_the_gate_window_clears() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, _gates) = paused_by_a_failure(dir.path()).await;
    let reason = run
        .journal()
        .iter()
        .find_map(|r| match &r.entry {
            Entry::Paused { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    // Failed 15 s ago, 60 s window: 45 s left (a second or so passes in the test).
    assert!(reason.contains("window clears in 4"), "{reason}");
    run.send(Command::Resume).await;
    let said = run.wait_warning("resumed; ").await;
    assert!(said.contains("window clears in 4"), "{said}");
    run.quit().await;
}

#[tokio::test]
async fn once_the_window_is_clear_resume_says_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut run, gates) = paused_by_a_failure(dir.path()).await;
    // The last verdict is a pass: nothing failing left in the window.
    let mut pass = failed(TimeDelta::zero()).unwrap();
    pass.verdict = Verdict::Pass;
    pass.consecutive_breaches = 0;
    gates.send_replace(Some(pass));
    run.wait_for(
        "the pass",
        |e| matches!(e, Event::Gate(v) if v.verdict == Verdict::Pass),
    )
    .await;
    // (The pause's own warning said it; only what comes after the resume counts.)
    let before = run.events.lock().unwrap().len();
    run.send(Command::Resume).await;
    run.wait_for(
        "resumed",
        |e| matches!(e, Event::RunChanged(s) if *s != RunState::Paused),
    )
    .await;
    assert!(
        !run.events.lock().unwrap()[before..]
            .iter()
            .any(|e| matches!(e, Event::Warning(w) if w.contains("window clears"))),
        "a clear window was said to hold failing samples"
    );
    run.quit().await;
}

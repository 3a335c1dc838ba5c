//! A wave confirmed as one (issue 17): on a rehearsal lab of eight data planes a side in
//! three waves ([1, 50%, 100%]), the confirm of a wave's first step runs its steps in turn
//! to the next wave's confirm, each continued step's confirm journaled as the wave's; the
//! wave pauses on a failed node, on a gate breach in its bake, and stops at once on `R`;
//! after a pause, the confirm (or retry) of the wave's next step goes on the same way.
//! The kill -9 in the middle of a wave is `demo::fleet`'s (the real binary).

use crate::support::demo as demo_support;

use crate::demo::waves::fleet_plan;
use crate::support::waves::WavePlan;

use std::path::Path;
use std::time::Duration;

use kongup::engine::journal::{JOURNAL_FILE, Record};
use kongup::engine::{Command, Event, RunState, StepState};
use kongup::exec::{ExecRequest, Executor};
use kongup::metrics::Verdict;
use kongup::plan::model::CommandLine;
use kongup::plan::steps::{ClusterSide, PhaseName, StepRef};
use kongup::sim::Fault;

fn dp(id: &str) -> StepRef {
    StepRef::new(PhaseName::DataPlane, id)
}

/// A rehearsal of `demo::waves`'s fleet plan as `plan` makes it.
async fn rehearsal(dir: &Path, plan: impl FnOnce(WavePlan) -> WavePlan) -> demo_support::Demo {
    crate::demo::waves::rehearsal(plan(fleet_plan()).write(dir), dir).await
}

fn is(event: &Event, step: &StepRef, state: StepState) -> bool {
    matches!(event, Event::StepChanged { step: s, state: st, .. } if s == step && *st == state)
}

fn ended_badly(event: &Event) -> bool {
    matches!(
        event,
        Event::StepChanged {
            state: StepState::Failed | StepState::Interrupted,
            ..
        }
    )
}

/// Confirms every step up to `step`'s turn, then stops (`step` is left unconfirmed).
async fn walk_to(demo: &mut demo_support::Demo, step: &StepRef) {
    demo.confirm_until(&format!("{step} to wait for its confirm"), |e| {
        is(e, step, StepState::Ready)
    })
    .await;
}

/// Walks to `step`'s turn and confirms it.
async fn confirm_at(demo: &mut demo_support::Demo, step: &StepRef) {
    walk_to(demo, step).await;
    demo.send(demo.confirm_for(step)).await;
}

/// Waits until `next` waits for its confirm, with no step failed or interrupted before.
async fn runs_to_confirm_of(demo: &mut demo_support::Demo, what: &str, next: &StepRef) {
    let stopped = demo
        .wait_for(what, |e| is(e, next, StepState::Ready) || ended_badly(e))
        .await;
    assert!(is(&stopped, next, StepState::Ready), "{stopped:?}");
}

/// The steps shown waiting for a confirm among `events`.
fn readied(events: &[Event]) -> Vec<StepRef> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepChanged {
                step,
                state: StepState::Ready,
                ..
            } => Some(step.clone()),
            _ => None,
        })
        .collect()
}

fn records(dir: &Path) -> Vec<Record> {
    std::fs::read_to_string(dir.join("fleet-rehearsal").join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each `step-confirmed` record as (step, via, by), read as the journal's JSON.
fn confirms(dir: &Path) -> Vec<(String, String, String)> {
    records(dir)
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .filter(|r| r["event"] == "step-confirmed")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("step"), s("via"), s("by"))
        })
        .collect()
}

fn via_of(confirms: &[(String, String, String)], step: &str) -> Vec<String> {
    confirms
        .iter()
        .filter(|(s, _, _)| s == &format!("data-plane/{step}"))
        .map(|(_, via, _)| via.clone())
        .collect()
}

/// Brings `nodes` up on the lab as the operator's own tools would (`lab deploy`).
async fn deploy_by_hand(demo: &demo_support::Demo, nodes: &[&str]) {
    let mut argv = vec!["lab".to_string(), "deploy".to_string()];
    argv.extend(nodes.iter().map(|n| n.to_string()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let ended = demo
        .run
        .lab
        .executor("lab")
        .run(
            ExecRequest {
                command: CommandLine::Argv(argv),
                env: Vec::new(),
                timeout: Duration::from_secs(60),
            },
            tx,
            Default::default(),
        )
        .await
        .unwrap();
    drain.await.unwrap();
    assert!(ended.success(), "lab deploy {nodes:?}: {ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_confirm_runs_a_wave_s_steps_to_the_next_wave_s_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(dir.path(), |p| p).await;
    walk_to(&mut demo, &dp("wave-1-start-y")).await;
    let from = demo.events.len();
    demo.send(demo.confirm_for(&dp("wave-1-start-y"))).await;
    let next = dp("wave-2-start-y");
    runs_to_confirm_of(&mut demo, "wave 1 to run to wave 2's confirm", &next).await;
    // Nothing between asked for a confirm.
    assert_eq!(readied(&demo.events[from..]), std::slice::from_ref(&next));
    for id in [
        "wave-1-start-y",
        "staging-tests",
        "wave-1-traffic",
        "wave-1-stop-x",
    ] {
        assert_eq!(
            demo.states.get(&dp(id)),
            Some(&StepState::Succeeded),
            "{id}"
        );
    }
    assert_eq!(
        demo.run.lab.traffic_driver().split(),
        kongup::lb::Split::to_y(13)
    );

    // The journal: the operator's confirm of the wave's first step, then the wave's for
    // the rest, in the operator's name.
    let confirms = confirms(dir.path());
    let (_, _, operator) = confirms
        .iter()
        .find(|(s, _, _)| s == "data-plane/wave-1-start-y")
        .cloned()
        .expect("wave 1's confirm");
    assert_eq!(via_of(&confirms, "wave-1-start-y"), ["confirm"]);
    for id in ["staging-tests", "wave-1-traffic", "wave-1-stop-x"] {
        assert_eq!(via_of(&confirms, id), ["wave"], "{id}");
        assert!(
            confirms
                .iter()
                .any(|(s, _, by)| s.ends_with(id) && *by == operator),
            "{id}: {confirms:?}"
        );
    }
    // The report says so.
    let said: Vec<String> = records(dir.path())
        .iter()
        .map(|r| kongup::engine::report::describe(&r.entry))
        .collect();
    assert!(
        said.iter()
            .any(|s| s == "data-plane/wave-1-stop-x confirmed with wave 1"),
        "{said:#?}"
    );
    demo.quit().await;
}

/// `kong health` as wave 2's start command fails on a node not running: with dp-y-2 and
/// dp-y-4 brought up by hand, dp-y-3 fails alone; the wave stops there, its traffic stage
/// never starts. Once dp-y-3 is up, the retry goes on through the wave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_node_stops_the_wave_after_its_start_and_the_retry_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(dir.path(), |p| {
        p.command("wave-2-start-y", "{run: [kong, health]}")
    })
    .await;
    let start = dp("wave-2-start-y");
    walk_to(&mut demo, &start).await;
    deploy_by_hand(&demo, &["dp-y-2", "dp-y-4"]).await;
    demo.send(demo.confirm_for(&start)).await;
    let failed = demo
        .wait_for("wave 2's start to fail", |e| {
            is(e, &start, StepState::Failed) || is(e, &start, StepState::Succeeded)
        })
        .await;
    let Event::StepChanged {
        state: StepState::Failed,
        detail,
        ..
    } = &failed
    else {
        panic!("wave 2's start did not fail: {failed:?}");
    };
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.starts_with("1 of 3 nodes failed: dp-y-3")),
        "{detail:?}"
    );
    demo.wait_until("the run to wait on the failed step", |run, _| {
        run == Some(RunState::Failed)
    })
    .await;
    assert_eq!(
        demo.states.get(&dp("wave-2-traffic")),
        Some(&StepState::Pending)
    );
    assert!(
        via_of(&confirms(dir.path()), "wave-2-traffic").is_empty(),
        "the wave went on past a failed node"
    );

    deploy_by_hand(&demo, &["dp-y-3"]).await;
    demo.send(Command::Retry {
        step: start.clone(),
        typed: None,
    })
    .await;
    runs_to_confirm_of(
        &mut demo,
        "the retried wave to run to wave 3's confirm",
        &dp("wave-3-start-y"),
    )
    .await;
    let confirms = confirms(dir.path());
    assert_eq!(via_of(&confirms, "wave-2-start-y"), ["confirm", "retry"]);
    assert_eq!(via_of(&confirms, "wave-2-traffic"), ["wave"]);
    assert_eq!(via_of(&confirms, "wave-2-stop-x"), ["wave"]);
    demo.quit().await;
}

/// Y answers half its requests with 500 during wave 2's bake: the stage fails its gate, the
/// run pauses, and the wave's X nodes are not stopped. Resumed with the fault gone, the
/// retry of the stage goes on to stop them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_in_the_bake_stops_the_wave_before_its_x_nodes_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(dir.path(), |p| p).await;
    let start = dp("wave-2-start-y");
    let stage = dp("wave-2-traffic");
    confirm_at(&mut demo, &start).await;
    demo.wait_for("wave 2's stage to bake", |e| {
        is(e, &stage, StepState::Running) || ended_badly(e)
    })
    .await;
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
        |run, steps| run == Some(RunState::Paused) && steps.get(&stage) == Some(&StepState::Failed),
    )
    .await;
    let stop_x = dp("wave-2-stop-x");
    assert_eq!(demo.states.get(&stop_x), Some(&StepState::Pending));
    assert!(via_of(&confirms(dir.path()), "wave-2-stop-x").is_empty());
    for i in 2..=4 {
        let node = format!("dp-x-{i}");
        let running = demo
            .run
            .lab
            .nodes()
            .into_iter()
            .any(|n| n.name == node && n.lifecycle == kongup::sim::node::Lifecycle::Running);
        assert!(running, "{node} was stopped after the breach");
    }

    demo.run.lab.clear_faults().await.unwrap();
    // The gate window lets go of the failing samples before the stage is tried again.
    demo.wait_for(
        "a passing verdict with the fault gone",
        |e| matches!(e, Event::Gate(v) if v.verdict == Verdict::Pass),
    )
    .await;
    demo.send(Command::Resume).await;
    demo.send(Command::Retry {
        step: stage.clone(),
        typed: None,
    })
    .await;
    runs_to_confirm_of(
        &mut demo,
        "the retried stage to run the wave on",
        &dp("wave-3-start-y"),
    )
    .await;
    assert_eq!(via_of(&confirms(dir.path()), "wave-2-stop-x"), ["wave"]);
    demo.quit().await;
}

/// `R` while wave 2's stage bakes: the bake stops, the rollback's plan waits (this plan's X
/// control plane was stopped in place, so traffic goes back at a step of it), and nothing
/// more of the wave runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_during_a_wave_s_bake_stops_the_wave_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(dir.path(), |p| p).await;
    let start = dp("wave-2-start-y");
    let stage = dp("wave-2-traffic");
    confirm_at(&mut demo, &start).await;
    // The bake runs once the stage's split is set.
    let baking = demo
        .wait_for("wave 2's stage to set its split", |e| {
            matches!(e, Event::TrafficChanged { requested, .. } if requested.y == 50)
                || ended_badly(e)
        })
        .await;
    assert!(matches!(baking, Event::TrafficChanged { .. }), "{baking:?}");
    demo.send(Command::Rollback).await;
    let stopped = demo
        .seen("the bake to be stopped", |e| {
            is(e, &stage, StepState::Failed)
        })
        .await;
    assert!(
        matches!(&stopped, Event::StepChanged { detail: Some(d), .. } if d.contains("stopped by the rollback")),
        "{stopped:?}"
    );
    // The rollback's plan is what waits now, not the wave's next step.
    demo.wait_for("the rollback's first step to wait", |e| {
        matches!(e, Event::StepChanged { step, state: StepState::Ready, .. } if step.phase == PhaseName::Rollback)
    })
    .await;
    let stop_x = dp("wave-2-stop-x");
    assert!(
        !demo
            .events
            .iter()
            .any(|e| is(e, &stop_x, StepState::Running)),
        "wave 2's X nodes were stopped after R"
    );
    assert!(via_of(&confirms(dir.path()), "wave-2-stop-x").is_empty());
    demo.quit().await;
}

/// `rolling.confirm: each-step`: every step of a wave waits for its own confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_confirm_each_step_confirms_every_step_of_a_wave() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(dir.path(), |p| p.confirm("each-step")).await;
    confirm_at(&mut demo, &dp("wave-1-start-y")).await;
    let stopped = demo
        .wait_for("wave 1's next step to wait for its confirm", |e| {
            matches!(
                e,
                Event::StepChanged {
                    state: StepState::Ready,
                    ..
                }
            ) || ended_badly(e)
        })
        .await;
    assert!(
        is(&stopped, &dp("staging-tests"), StepState::Ready),
        "{stopped:?}"
    );
    assert!(via_of(&confirms(dir.path()), "staging-tests").is_empty());
    demo.quit().await;
}

//! A wave's node step fails node by node: a node whose command fails is named in the
//! step's failure while the wave's other nodes run theirs, each node's outcome is
//! journaled (`node-outcome`), and a retry, or a resume after kongup was killed in the
//! middle of the step, runs the commands only on the nodes not done.

use crate::support::engine::*;
use crate::support::waves::{self, WavePlan, cut_to, ran, toolbox};
use kongup::engine::{Event, StepState};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{ExpandedPlan, PhaseName, StepRef};

/// Hybrid, eight data planes a side in three waves ([1, 50%, 100%]: wave 2 starts dp-y-2,
/// dp-y-3 and dp-y-4). `wave-2-start-y` appends its node to `DIR/ran`; on dp-y-3 it fails
/// until `DIR/fixed` exists; on dp-y-4 it waits for `DIR/go` when `DIR/hold` exists.
fn plan_text(dir: &std::path::Path) -> String {
    plan_on(dir, None)
}

/// The plan with its data planes on the `ansible` executor `fleet` of `inventory` (the
/// node's name then comes from Ansible's `inventory_hostname`), else on `local`.
fn plan_on(dir: &std::path::Path, inventory: Option<&std::path::Path>) -> String {
    let plan = WavePlan::hybrid(8).ansible(inventory);
    let (d, n) = (dir.display(), plan.node_var());
    let script = format!(
        "echo {n} >> {d}/ran; if [ {n} = dp-y-4 ] && [ -e {d}/hold ]; then while [ ! -e {d}/go ] && [ -d {d} ]; do sleep 0.05; done; fi; [ {n} != dp-y-3 ] || [ -e {d}/fixed ]"
    );
    plan.shell("wave-2-start-y", &script).yaml()
}

fn wave_2() -> StepRef {
    StepRef::new(PhaseName::DataPlane, "wave-2-start-y")
}

/// The real expansion of the plan, cut down to `wave-2-start-y`.
fn load(text: &str) -> (kongup::plan::model::Plan, ExpandedPlan) {
    let loaded = parse_plan(text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let expanded = cut_to(&loaded, PhaseName::DataPlane, &["wave-2-start-y"]);
    (loaded.plan, expanded)
}

fn start(dir: &std::path::Path) -> TestRun {
    start_plan(dir, plan_text(dir))
}

fn start_plan(dir: &std::path::Path, text: String) -> TestRun {
    let (plan, expanded) = load(&text);
    let toolbox = toolbox(&plan);
    TestRun::start(setup(dir, plan, expanded, &text, toolbox))
}

/// The journal's `node-outcome` records of wave 2's start: (node, ok, reason), in order.
fn node_outcomes(dir: &std::path::Path) -> Vec<(String, bool, Option<String>)> {
    waves::node_outcomes(&dir.join("run"), "data-plane/wave-2-start-y")
}

#[tokio::test]
async fn a_failed_node_fails_alone_and_a_retry_runs_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path());
    let detail = run
        .confirm_and_wait(&wave_2(), StepState::Failed)
        .await
        .unwrap_or_default();
    assert!(
        detail.starts_with("1 of 3 nodes failed: dp-y-3 (exit status 1)"),
        "{detail}"
    );
    // dp-y-3's failure did not stop dp-y-4.
    assert_eq!(ran(dir.path()), ["dp-y-2", "dp-y-3", "dp-y-4"]);
    assert_eq!(
        node_outcomes(dir.path()),
        [
            ("dp-y-2".to_string(), true, None),
            (
                "dp-y-3".to_string(),
                false,
                Some("exit status 1".to_string())
            ),
            ("dp-y-4".to_string(), true, None),
        ]
    );

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    run.retry(&wave_2()).await;
    let detail = run.wait_step(&wave_2(), StepState::Succeeded).await;
    assert_eq!(
        detail.as_deref(),
        Some("the commands exited 0 on 1 node (2 done before)")
    );
    assert_eq!(
        ran(dir.path()),
        ["dp-y-2", "dp-y-3", "dp-y-4", "dp-y-3"],
        "the retry ran the command on dp-y-3 alone"
    );
    assert_eq!(
        node_outcomes(dir.path()).last(),
        Some(&("dp-y-3".to_string(), true, None))
    );
    run.quit().await;
}

/// kill -9 while dp-y-4's command runs (dp-y-2 done, dp-y-3 failed): the resumed run has
/// the step interrupted, and its retry runs the command on dp-y-3 and dp-y-4 only.
#[tokio::test]
async fn a_wave_step_killed_mid_way_resumes_with_only_the_nodes_not_done() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hold"), "").unwrap();
    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let mut run = start(dir.path());
    run.confirm(&wave_2()).await;
    run.wait_for(
        "dp-y-4's command to start",
        |e| matches!(e, Event::Log(line) if line.text.contains("[on dp-y-4 (local")),
    )
    .await;
    run.crash().await;
    assert_eq!(
        node_outcomes(dir.path())
            .into_iter()
            .map(|(node, ok, _)| (node, ok))
            .collect::<Vec<_>>(),
        [("dp-y-2".to_string(), true), ("dp-y-3".to_string(), true)]
    );

    let mut run = start(dir.path());
    run.wait_step(&wave_2(), StepState::Interrupted).await;
    // dp-y-4's command outlived the engine (its own process group): the resumed run
    // watches it to its end before the step may run again.
    run.wait_seen("the first dp-y-4 command to be watched", |e| {
        matches!(e, Event::StillRunning { what: Some(_), .. })
    })
    .await;
    std::fs::write(dir.path().join("go"), "").unwrap();
    run.wait_seen("the first dp-y-4 command to end", |e| {
        matches!(e, Event::StillRunning { what: None, .. })
    })
    .await;
    run.retry(&wave_2()).await;
    let detail = run.wait_step(&wave_2(), StepState::Succeeded).await;
    assert_eq!(
        detail.as_deref(),
        Some("the commands exited 0 on 1 node (2 done before)")
    );
    let ran = ran(dir.path());
    assert_eq!(
        ran.iter().filter(|n| *n == "dp-y-4").count(),
        2,
        "dp-y-4 ran again: {ran:?}"
    );
    assert_eq!(&ran[..3], ["dp-y-2", "dp-y-3", "dp-y-4"]);
    run.quit().await;
}

/// Through the real `ansible` executor (one invocation for the wave's hosts, on local
/// hosts): the host that failed is named, journaled, and the retry's invocation is
/// limited to it.
#[tokio::test]
async fn through_ansible_a_failed_host_is_named_and_the_retry_runs_on_it_alone() {
    use crate::exec::ansible::{inventory, require_ansible};
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-y-2", "dp-y-3", "dp-y-4"], &[]);
    let mut run = start_plan(dir.path(), plan_on(dir.path(), Some(&inventory)));
    let detail = run
        .confirm_and_wait(&wave_2(), StepState::Failed)
        .await
        .unwrap_or_default();
    assert!(
        detail.starts_with("1 of 3 nodes failed: dp-y-3 (failed (rc=1)"),
        "{detail}"
    );
    let mut ran_first = ran(dir.path());
    ran_first.sort();
    assert_eq!(ran_first, ["dp-y-2", "dp-y-3", "dp-y-4"]);
    let outcomes = node_outcomes(dir.path());
    let oks: Vec<(&str, bool)> = outcomes
        .iter()
        .map(|(n, ok, _)| (n.as_str(), *ok))
        .collect();
    assert_eq!(
        oks,
        [("dp-y-2", true), ("dp-y-3", false), ("dp-y-4", true)],
        "{outcomes:?}"
    );

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    run.retry(&wave_2()).await;
    let detail = run.wait_step(&wave_2(), StepState::Succeeded).await;
    assert_eq!(
        detail.as_deref(),
        Some("the commands exited 0 on 1 node (2 done before)")
    );
    assert_eq!(
        ran(dir.path())[3..],
        ["dp-y-3"],
        "the retry ran on dp-y-3 alone"
    );
    let log =
        std::fs::read_to_string(dir.path().join("run/logs/data-plane-wave-2-start-y.log")).unwrap();
    assert!(
        log.contains("already done on 2 of 3 nodes, not run there again: dp-y-2, dp-y-4"),
        "{log}"
    );
    run.quit().await;
}

/// The node outcomes among `events`: (step, node, why it failed), in order.
fn node_events(events: &[Event]) -> Vec<(String, String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NodeOutcome { step, node, failed } => {
                Some((step.id.clone(), node.clone(), failed.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The console hears each node's outcome as the engine journals it, and a console that
/// opens later (`kongup watch`, the engine's snapshot on resume) hears the same, read from
/// the journal.
#[tokio::test]
async fn each_node_outcome_reaches_the_console_and_a_watcher_replays_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path());
    run.confirm_and_wait(&wave_2(), StepState::Failed).await;
    let live = node_events(&run.events.lock().unwrap());
    let step = "wave-2-start-y".to_string();
    assert_eq!(
        live,
        [
            (step.clone(), "dp-y-2".to_string(), None),
            (
                step.clone(),
                "dp-y-3".to_string(),
                Some("exit status 1".to_string())
            ),
            (step.clone(), "dp-y-4".to_string(), None),
        ]
    );
    let mut watcher = kongup::engine::watcher::Watcher::open(&run.run_dir).unwrap();
    let snapshot = watcher.snapshot();
    assert_eq!(node_events(&snapshot), live);
    // A colleague's console, from the journal alone, counts the wave as the driver's does.
    let (plan, expanded) = load(&plan_text(dir.path()));
    let mut console = kongup::ui::ConsoleState::new(
        &plan,
        &expanded,
        watcher.started_at(),
        kongup::ui::Theme::NO_COLOUR,
        kongup::ui::Previewer::new(|_| None),
    );
    snapshot.iter().for_each(|e| console.apply(e));
    let progress = console.wave_progress(2).expect("wave 2");
    assert_eq!((progress.up, progress.y_nodes, progress.failed), (2, 3, 1));
    // Said once: a later look with nothing new says no node again.
    let (_, events) = watcher.poll().unwrap();
    assert_eq!(node_events(&events), []);

    // The retry goes on from the nodes done: only dp-y-3's new outcome is said.
    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let seen = run.events.lock().unwrap().len();
    run.retry(&wave_2()).await;
    run.wait_step(&wave_2(), StepState::Succeeded).await;
    let after = node_events(&run.events.lock().unwrap()[seen..]);
    assert_eq!(after, [(step.clone(), "dp-y-3".to_string(), None)]);
    run.quit().await;
}

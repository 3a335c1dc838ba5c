//! `rolling.drain` against the lab: before a wave's X node is stopped, kongup runs `kong
//! drain` on it through its executor, waits until its `/status/ready` answers 503
//! `draining` and no request is in flight on it, then runs its stop commands. A node that
//! does not drain within `drain` fails alone ("still draining after …") and is not stopped.
//! DB-less 3.9.1 → 3.10.0, three nodes a side, the first wave stopping two of X's.

use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::*;
use crate::support::waves::{self, cut_to, toolbox_with_kong};
use kongup::engine::{StepState, Toolbox};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{ExpandedPlan, PhaseName, StepRef};
use kongup::sim::node::Lifecycle;
use kongup::sim::{Fault, Lab, LabEndpoints, LabOptions, Scenario};

/// The lab's nodes in a DB-less plan rolled in waves [2, 100%] (wave 1 stops kong-x-1
/// and kong-x-2), each X node on its own executor, `stop` as the stop-x command
/// ([`STOP_EACH`] or [`STOP_ONCE`]).
fn plan_text(endpoints: &LabEndpoints, drain: &str, stop: &str) -> String {
    let nodes = |side| waves::lab_node_lines(endpoints, side, |_| true);
    let executors = waves::local_executors(endpoints);
    format!(
        "\
name: drain
from: {from}
to: {to}
mode: dbless
strategy: rolling
clusters:
  x:
    nodes:
{x}  y:
    nodes:
{y}traffic:
  driver: {{type: manual}}
executors:
{executors}rolling:
  waves: [2, 100%]
  drain: {drain}
steps:
  wave-1-stop-x:
    commands:
      - {stop}
",
        from = endpoints.from,
        to = endpoints.to,
        x = nodes(kongup::plan::steps::ClusterSide::X),
        y = nodes(kongup::plan::steps::ClusterSide::Y),
    )
}

/// `kong stop` on each node of the step.
const STOP_EACH: &str = "{run: [kong, stop]}";
/// `kong stop` once for the whole batch, on an executor the plan names (as an ansible
/// group would be).
const STOP_ONCE: &str = "{run: [kong, stop], executor: kong-x-1}";

fn stop_x() -> StepRef {
    StepRef::new(PhaseName::Cluster, "wave-1-stop-x")
}

fn start(dir: &std::path::Path, lab: &Lab, drain: &str, stop: &str) -> TestRun {
    let (plan, expanded, toolbox) = loaded(lab, drain, stop);
    let text = plan_text(&lab.endpoints(), drain, stop);
    TestRun::start(setup(dir, plan, expanded, &text, toolbox))
}

/// The plan's real expansion cut down to `wave-1-stop-x`, on the lab's executors.
fn loaded(
    lab: &Lab,
    drain: &str,
    stop: &str,
) -> (kongup::plan::model::Plan, ExpandedPlan, Toolbox) {
    let text = plan_text(&lab.endpoints(), drain, stop);
    let loaded = parse_plan(&text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let expanded = cut_to(&loaded, PhaseName::Cluster, &["wave-1-stop-x"]);
    let mut toolbox = toolbox_with_kong(&loaded.plan);
    for node in lab.endpoints().nodes {
        toolbox = toolbox.with_executor(
            node.name.clone(),
            Arc::new(lab.executor(&node.name).with_speed(50.0)),
        );
    }
    (loaded.plan, expanded, toolbox)
}

async fn lab(faults: Vec<Fault>) -> Lab {
    Lab::start(
        Scenario::DblessRolling,
        LabOptions {
            y_deployed: true,
            faults,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap()
}

fn node(lab: &Lab, name: &str) -> (Lifecycle, bool) {
    let view = lab.nodes().into_iter().find(|n| n.name == name).unwrap();
    (view.lifecycle, view.draining)
}

/// The journal's `node-outcome` records of the step: (node, ok, reason).
fn node_outcomes(dir: &std::path::Path) -> Vec<(String, bool, Option<String>)> {
    waves::node_outcomes(&dir.join("run"), "cluster/wave-1-stop-x")
}

/// The step's log file, line by line (every line: the live view may be thinned).
fn log_lines(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(
        dir.join("run")
            .join("logs")
            .join("cluster-wave-1-stop-x.log"),
    )
    .unwrap_or_default()
    .lines()
    .map(String::from)
    .collect()
}

fn position(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", lines.join("\n")))
}

/// A request to kong-x-2 held in flight (X answers 4 s late), seen on its `/status` before
/// this returns; the handle ends when it does.
async fn slow_request_on_x2(lab: &Lab) -> tokio::task::JoinHandle<()> {
    let proxy = lab
        .endpoints()
        .nodes
        .iter()
        .find(|n| n.name == "kong-x-2")
        .and_then(|n| n.proxy.clone())
        .unwrap();
    let slow = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .get(format!("{proxy}/orders"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
    });
    let status = lab
        .endpoints()
        .nodes
        .iter()
        .find(|n| n.name == "kong-x-2")
        .map(|n| n.status.clone())
        .unwrap();
    // The request is in flight before the step starts.
    waves::wait_for_request_in_flight(&status).await;
    slow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_is_drained_before_it_is_stopped() {
    let lab = lab(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), &lab, "10s", STOP_EACH);
    // The confirm says the drain before anything runs.
    let (plan, expanded, toolbox) = loaded(&lab, "10s", STOP_EACH);
    let preview = kongup::engine::preview_step(&plan, &expanded, &toolbox, &stop_x()).unwrap();
    assert!(
        preview.runs[0].starts_with(
            "before its stop commands, each of the wave's X nodes is drained: kongup runs `kong \
             drain` on it, then waits up to 10s until its /status/ready answers 503 draining"
        ),
        "{:?}",
        preview.runs
    );
    assert!(
        preview
            .step
            .instruction
            .contains("kongup first drains each of the wave's nodes"),
        "{}",
        preview.step.instruction
    );
    let detail = run
        .confirm_and_wait(&stop_x(), StepState::Succeeded)
        .await
        .unwrap_or_default();
    let lines = log_lines(dir.path());
    for name in ["kong-x-1", "kong-x-2"] {
        let drain = position(&lines, &format!("$ kong drain   [on {name}"));
        let drained = position(&lines, &format!("{name} drained:"));
        let stop = position(&lines, &format!("$ kong stop   [on {name}"));
        assert!(drain < drained && drained < stop, "{}", lines.join("\n"));
        assert_eq!(node(&lab, name).0, Lifecycle::Stopped, "{detail}");
    }
    assert_eq!(node(&lab, "kong-x-3"), (Lifecycle::Running, false));
    assert_eq!(
        node_outcomes(dir.path()),
        [
            ("kong-x-1".to_string(), true, None),
            ("kong-x-2".to_string(), true, None)
        ]
    );
    run.quit().await;
}

/// kong-x-2 has a request in flight for longer than the drain (X answers 4 s late): it
/// fails alone, is left running (draining), and kong-x-1 is stopped. Once the request has
/// ended, the retry drains and stops kong-x-2 alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_drain_in_time_fails_alone_and_is_not_stopped() {
    let lab = lab(vec![Fault::ExtraLatency {
        cluster: kongup::plan::steps::ClusterSide::X,
        latency: Duration::from_secs(4),
    }])
    .await;
    let slow = slow_request_on_x2(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), &lab, "1s", STOP_EACH);
    let detail = run
        .confirm_and_wait(&stop_x(), StepState::Failed)
        .await
        .unwrap_or_default();
    assert!(
        detail.starts_with(
            "1 of 2 nodes failed: kong-x-2 (still draining after 1s: 1 request in flight)"
        ),
        "{detail}"
    );
    assert_eq!(node(&lab, "kong-x-1").0, Lifecycle::Stopped);
    assert_eq!(node(&lab, "kong-x-2"), (Lifecycle::Running, true));
    assert_eq!(
        node_outcomes(dir.path()),
        [
            (
                "kong-x-2".to_string(),
                false,
                Some("still draining after 1s: 1 request in flight".to_string())
            ),
            ("kong-x-1".to_string(), true, None),
        ]
    );
    let lines = log_lines(dir.path());
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("$ kong stop   [on kong-x-2")),
        "{}",
        lines.join("\n")
    );

    slow.await.unwrap();
    run.retry(&stop_x()).await;
    let detail = run.wait_step(&stop_x(), StepState::Succeeded).await;
    assert_eq!(node(&lab, "kong-x-2").0, Lifecycle::Stopped, "{detail:?}");
    let lines = log_lines(dir.path());
    let stops: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("$ kong stop   [on"))
        .collect();
    assert_eq!(stops.len(), 2, "kong-x-1 is not stopped again: {stops:?}");
    assert!(stops[1].contains("[on kong-x-2"), "{stops:?}");
    assert_eq!(
        node_outcomes(dir.path()).last(),
        Some(&("kong-x-2".to_string(), true, None))
    );
    run.quit().await;
}

/// A stop command that runs once for the batch (on an executor the plan names, as an
/// ansible group's would) would stop the node that did not drain too: it is not run, and
/// the drained nodes fail with why, rather than being waited for as if stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_run_once_is_held_back_when_a_node_did_not_drain_and_says_so() {
    let lab = lab(vec![Fault::ExtraLatency {
        cluster: kongup::plan::steps::ClusterSide::X,
        latency: Duration::from_secs(4),
    }])
    .await;
    let slow = slow_request_on_x2(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), &lab, "1s", STOP_ONCE);
    let detail = run
        .confirm_and_wait(&stop_x(), StepState::Failed)
        .await
        .unwrap_or_default();
    let held = "not stopped: `kong stop` runs once for the batch and kong-x-2 was not drained";
    assert!(
        detail.starts_with(&format!(
            "2 of 2 nodes failed: kong-x-1 ({held}), kong-x-2 (still draining after 1s"
        )),
        "{detail}"
    );
    assert_eq!(node(&lab, "kong-x-1"), (Lifecycle::Running, true));
    assert_eq!(node(&lab, "kong-x-2"), (Lifecycle::Running, true));
    assert!(
        node_outcomes(dir.path()).contains(&(
            "kong-x-1".to_string(),
            false,
            Some(held.to_string())
        )),
        "{:?}",
        node_outcomes(dir.path())
    );
    let lines = log_lines(dir.path());
    assert!(
        !lines.iter().any(|l| l.contains("$ kong stop")),
        "{}",
        lines.join("\n")
    );
    slow.await.unwrap();
    run.quit().await;
}

/// Drained is not stopped: a stop command that leaves the node running (here `kong
/// version`) fails the node, though its `/status/ready` answers 503 `draining` as a stopping
/// node's might.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_still_running_is_not_taken_for_stopped() {
    let lab = lab(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), &lab, "10s", "{run: [kong, version]}");
    let detail = run
        .confirm_and_wait(&stop_x(), StepState::Failed)
        .await
        .unwrap_or_default();
    assert!(
        detail.contains("drained but still running (/status/ready says draining)"),
        "{detail}"
    );
    assert_eq!(node(&lab, "kong-x-1"), (Lifecycle::Running, true));
    run.quit().await;
}

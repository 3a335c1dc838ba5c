//! `rolling.drain` with X before Kong 3.9 (no `kong drain`), through a real HAProxy: before a
//! wave's X node is stopped, kongup puts its server in drain (`set server kong/xN state
//! drain`), waits until HAProxy has no session open to it and the node's `/status` shows
//! no request in flight, then runs its stop commands. The drained server gets no new
//! request while its open one finishes. A node whose request outlasts `drain` fails alone
//! and is not stopped. The hybrid lab's data planes (X 3.4.2, Y 3.10.0), three a side, in
//! a DB-less plan rolled in waves [2, 100%] (wave 1 stops dp-x-1 and dp-x-2).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::*;
use crate::support::waves;
use kongup::actions::kong::{KongAccess, Waits};
use kongup::engine::journal::JOURNAL_FILE;
use kongup::engine::{Command, Event, StepState, Toolbox};
use kongup::exec::{ExecRequest, Executor};
use kongup::lb::haproxy::parse_servers_state;
use kongup::plan::load::parse_plan;
use kongup::plan::model::CommandLine;
use kongup::plan::steps::{ClusterSide, ExpandedPlan, Phase, PhaseName, StepRef};
use kongup::secrets::Redactor;
use kongup::sim::node::Lifecycle;
use kongup::sim::{Fault, Lab, LabOptions, Scenario};
use kongup::testkit::lb::Haproxy;

/// HAProxy's `srv_admin_state` flag of a forced drain (management.txt, "show servers
/// state", HAProxy 2.6).
const FORCED_DRAIN: u32 = 0x08;

struct Setup {
    lab: Lab,
    haproxy: Haproxy,
    text: String,
}

/// The lab's data planes behind HAProxy (X's servers x1..x3 at weight 100, Y's y1..y3 at
/// 0), X answering `latency` late.
async fn behind_haproxy(dir: &Path, latency: Duration, drain: &str) -> Setup {
    let lab = Lab::start(
        Scenario::Hybrid,
        LabOptions {
            y_deployed: true,
            data_planes: Some(3),
            faults: vec![Fault::ExtraLatency {
                cluster: ClusterSide::X,
                latency,
            }],
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let endpoints = lab.endpoints();
    let proxies = |side| -> Vec<std::net::SocketAddr> {
        endpoints
            .cluster(side)
            .filter_map(|n| n.proxy.as_deref())
            .map(|url| url.trim_start_matches("http://").parse().unwrap())
            .collect()
    };
    let haproxy = Haproxy::start(dir, &proxies(ClusterSide::X), &proxies(ClusterSide::Y));
    let nodes = |side| waves::lab_node_lines(&endpoints, side, |n| n.proxy.is_some());
    let executors = waves::local_executors(&endpoints);
    let text = format!(
        "\
name: drain-balancer
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
  driver:
    type: haproxy
    socket: {socket}
    backend: kong
    x_servers: [{xs}]
    y_servers: [{ys}]
    node_servers: {{dp-x-1: x1, dp-x-2: x2, dp-x-3: x3, dp-y-1: y1, dp-y-2: y2, dp-y-3: y3}}
executors:
{executors}rolling:
  waves: [2, 100%]
  drain: {drain}
steps:
  wave-1-stop-x:
    commands:
      - {{run: [kong, stop]}}
",
        from = endpoints.from,
        to = endpoints.to,
        x = nodes(ClusterSide::X),
        y = nodes(ClusterSide::Y),
        socket = haproxy.socket.display(),
        xs = haproxy.x_names.join(", "),
        ys = haproxy.y_names.join(", "),
    );
    Setup { lab, haproxy, text }
}

fn stop_x() -> StepRef {
    StepRef::new(PhaseName::Cluster, "wave-1-stop-x")
}

/// The plan's real expansion cut down to `wave-1-stop-x`, on the lab's executors.
fn loaded(s: &Setup) -> (kongup::plan::model::Plan, ExpandedPlan, Toolbox) {
    let loaded = parse_plan(&s.text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let phase = &loaded.expanded.phases[0];
    let expanded = ExpandedPlan {
        phases: vec![Phase {
            name: phase.name,
            strategy: phase.strategy,
            steps: phase
                .steps
                .iter()
                // Wave 2 left pending: a run with nothing left is not rolled back.
                .filter(|step| step.id == "wave-1-stop-x" || step.id == "wave-2-start-y")
                .cloned()
                .collect(),
        }],
        ..loaded.expanded.clone()
    };
    let access = KongAccess::for_plan(&loaded.plan)
        .unwrap()
        .with_waits(Waits {
            nodes: Duration::from_secs(5),
            poll: Duration::from_millis(100),
            progress: Duration::from_millis(500),
            smoke_request: Duration::from_secs(5),
            tools: Duration::from_secs(30),
        });
    let mut toolbox = Toolbox::for_plan(
        &loaded.plan,
        Redactor::default(),
        kongup::actions::builtins(Some(access)),
    )
    .unwrap();
    for node in s.lab.endpoints().nodes {
        toolbox = toolbox.with_executor(
            node.name.clone(),
            Arc::new(s.lab.executor(&node.name).with_speed(50.0)),
        );
    }
    (loaded.plan, expanded, toolbox)
}

fn start(dir: &Path, s: &Setup) -> TestRun {
    let (plan, expanded, toolbox) = loaded(s);
    TestRun::start(setup(dir, plan, expanded, &s.text, toolbox))
}

/// One runtime-API exchange (HAProxy answers, then closes).
fn runtime(haproxy: &Haproxy, line: &str) -> String {
    let mut socket = std::os::unix::net::UnixStream::connect(&haproxy.socket).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    answer
}

fn admin_state(haproxy: &Haproxy, server: &str) -> u32 {
    parse_servers_state(&runtime(haproxy, "show servers state kong"))
        .unwrap()
        .into_iter()
        .find(|s| s.name == server)
        .unwrap()
        .admin_state
}

/// `stot` of each server (the sessions HAProxy has sent it in all), from `show stat`.
fn sessions_sent(haproxy: &Haproxy) -> std::collections::BTreeMap<String, u64> {
    let stat = runtime(haproxy, "show stat kong 4 -1");
    let mut lines = stat.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let at = |name| header.iter().position(|c| *c == name).unwrap();
    let (name, total) = (at("svname"), at("stot"));
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            (fields[name].to_string(), fields[total].parse().unwrap())
        })
        .collect()
}

/// Sends one request through HAProxy with only `server` of X weighted, and waits until it
/// is in flight on `node` (its `/status` counts it beside the one asking); then X's
/// weights are back at 100.
async fn open_slow_request(
    s: &Setup,
    server: &str,
    node: &str,
) -> tokio::task::JoinHandle<reqwest::StatusCode> {
    for other in s.haproxy.x_names.iter().filter(|n| *n != server) {
        assert_eq!(
            runtime(&s.haproxy, &format!("set server kong/{other} weight 0")).trim(),
            ""
        );
    }
    let front = s.haproxy.front;
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("http://{front}/orders"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap()
            .status()
    });
    let status = s
        .lab
        .endpoints()
        .nodes
        .into_iter()
        .find(|n| n.name == node)
        .unwrap()
        .status;
    waves::wait_for_request_in_flight(&status).await;
    for other in s.haproxy.x_names.iter().filter(|n| *n != server) {
        runtime(&s.haproxy, &format!("set server kong/{other} weight 100"));
    }
    slow
}

fn lifecycle(lab: &Lab, name: &str) -> Lifecycle {
    lab.nodes()
        .into_iter()
        .find(|n| n.name == name)
        .unwrap()
        .lifecycle
}

/// The journal's `node-outcome` records of the step: (node, ok, reason).
fn node_outcomes(dir: &Path) -> Vec<(String, bool, Option<String>)> {
    std::fs::read_to_string(dir.join("run").join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|r| r["event"] == "node-outcome")
        .map(|r| {
            (
                r["node"].as_str().unwrap_or_default().to_string(),
                r["ok"].as_bool().unwrap_or_default(),
                r["reason"].as_str().map(String::from),
            )
        })
        .collect()
}

fn log_lines(dir: &Path) -> Vec<String> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_x_node_is_drained_in_haproxy_before_it_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let s = behind_haproxy(dir.path(), Duration::from_secs(3), "5s").await;
    let slow = open_slow_request(&s, "x1", "dp-x-1").await;
    let sent_before = sessions_sent(&s.haproxy);
    // The confirm says how the drain goes before anything runs.
    let (plan, expanded, toolbox) = loaded(&s);
    let preview = kongup::engine::preview_step(&plan, &expanded, &toolbox, &stop_x()).unwrap();
    assert!(
        preview.runs[0].starts_with(
            "before its stop commands, each of the wave's X nodes is drained in the balancer"
        ),
        "{:?}",
        preview.runs
    );
    assert!(
        preview
            .step
            .instruction
            .contains("kongup first drains each of the wave's nodes in the balancer (Kong 3.4.2"),
        "{}",
        preview.step.instruction
    );
    let mut run = start(dir.path(), &s);
    run.confirm(&stop_x()).await;
    // HAProxy takes the wave's x1 and x2 out of rotation while x1's request is still open…
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ["x1", "x2"]
        .iter()
        .any(|server| admin_state(&s.haproxy, server) & FORCED_DRAIN == 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "x1 and x2 are not in drain: {}",
            runtime(&s.haproxy, "show servers state kong")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !slow.is_finished(),
        "the open request ended before the drain"
    );
    // …and sends it no new request meanwhile: they go to x3, the X node the wave keeps.
    let front = s.haproxy.front;
    let fresh: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(format!("http://{front}/orders"))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    assert_eq!(slow.await.unwrap(), 200, "the open request finishes");
    for request in fresh {
        assert_eq!(request.await.unwrap(), 200);
    }
    let detail = run.wait_step(&stop_x(), StepState::Succeeded).await;
    let sent = sessions_sent(&s.haproxy);
    assert_eq!(
        sent["x1"], sent_before["x1"],
        "x1 got a new request: {sent:?}"
    );
    assert_eq!(sent["x3"], sent_before["x3"] + 4, "{sent:?}");

    let lines = log_lines(dir.path());
    for (node, server) in [("dp-x-1", "x1"), ("dp-x-2", "x2")] {
        let drain = position(&lines, &format!("{node}: server {server} set to drain"));
        let drained = position(&lines, &format!("{node} drained:"));
        let stop = position(&lines, &format!("$ kong stop   [on {node}"));
        assert!(drain < drained && drained < stop, "{}", lines.join("\n"));
        assert_eq!(lifecycle(&s.lab, node), Lifecycle::Stopped, "{detail:?}");
        assert_ne!(admin_state(&s.haproxy, server) & FORCED_DRAIN, 0);
    }
    assert_eq!(lifecycle(&s.lab, "dp-x-3"), Lifecycle::Running);
    assert_eq!(admin_state(&s.haproxy, "x3"), 0);
    assert_eq!(
        node_outcomes(dir.path()),
        [
            ("dp-x-1".to_string(), true, None),
            ("dp-x-2".to_string(), true, None)
        ]
    );

    // The wave's rollback: X's nodes started again (by hand, as its step asks) and
    // answering, their servers go back in rotation.
    run.send(Command::Rollback).await;
    let undo = match run
        .wait_for("the rollback's step for the wave", |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Ready, .. } if step.phase == PhaseName::Rollback)
        })
        .await
    {
        Event::StepChanged { step, .. } => step,
        _ => unreachable!(),
    };
    for node in ["dp-x-1", "dp-x-2"] {
        let (lines, _keep) = tokio::sync::mpsc::channel(64);
        let started = s
            .lab
            .executor(node)
            .with_speed(50.0)
            .run(
                ExecRequest {
                    command: CommandLine::Argv(vec!["kong".into(), "start".into()]),
                    env: Vec::new(),
                    timeout: Duration::from_secs(30),
                },
                lines,
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .unwrap();
        assert!(started.success(), "{node}: {started:?}");
    }
    run.send(Command::Confirm {
        step: undo.clone(),
        typed: None,
    })
    .await;
    let detail = run.wait_step(&undo, StepState::Succeeded).await;
    for server in ["x1", "x2"] {
        assert_eq!(admin_state(&s.haproxy, server), 0, "{detail:?}");
    }
    run.quit().await;
}

/// dp-x-2's request outlasts the drain (X answers 5 s late, the drain is 2 s): it fails
/// alone, is not stopped, and its server stays in drain; dp-x-1 is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_request_outlasts_the_drain_fails_alone_and_is_not_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let s = behind_haproxy(dir.path(), Duration::from_secs(5), "2s").await;
    let slow = open_slow_request(&s, "x2", "dp-x-2").await;
    let mut run = start(dir.path(), &s);
    let detail = run
        .confirm_and_wait(&stop_x(), StepState::Failed)
        .await
        .unwrap_or_default();
    let why = "still draining after 2s: the balancer has 1 session open to x2; 1 request in \
               flight on its /status";
    assert!(
        detail.starts_with(&format!("1 of 2 nodes failed: dp-x-2 ({why})")),
        "{detail}"
    );
    assert_eq!(lifecycle(&s.lab, "dp-x-1"), Lifecycle::Stopped);
    assert_eq!(lifecycle(&s.lab, "dp-x-2"), Lifecycle::Running);
    assert_ne!(admin_state(&s.haproxy, "x2") & FORCED_DRAIN, 0);
    assert_eq!(
        node_outcomes(dir.path()),
        [
            ("dp-x-2".to_string(), false, Some(why.to_string())),
            ("dp-x-1".to_string(), true, None),
        ]
    );
    let lines = log_lines(dir.path());
    assert!(
        !lines.iter().any(|l| l.contains("$ kong stop   [on dp-x-2")),
        "{}",
        lines.join("\n")
    );
    assert_eq!(slow.await.unwrap(), 200, "the open request finishes");
    run.quit().await;
}

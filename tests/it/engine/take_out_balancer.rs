//! A Y node taken out of its wave goes out of a real HAProxy (`set server kong/y1 state
//! maint`), journaled as the step's fact `lb.server-out.NODE`; the wave's rollback puts
//! it back in rotation. DB-less, two nodes a side (HAProxy's servers point at ports nothing
//! listens on: no request is sent), waves [1, 100%]; dp-y-1's start command fails.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::support::engine::*;
use kongup::actions::kong::KongAccess;
use kongup::engine::journal::{Entry, SERVER_OUT};
use kongup::engine::{Command, Event, StepState, Toolbox};
use kongup::lb::haproxy::parse_servers_state;
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{ExpandedPlan, Phase, PhaseName, StepRef};
use kongup::secrets::Redactor;
use kongup::testkit::lb::{Haproxy, free_port};

/// `srv_admin_state`'s forced maintenance flag (management.txt, "show servers state",
/// HAProxy 2.6).
const FORCED_MAINT: u32 = 0x01;

fn plan_text(haproxy: &Haproxy) -> String {
    format!(
        r#"name: take-out
from: 3.4.2
to: 3.10.0
mode: dbless
strategy: rolling
clusters:
  x:
    nodes:
      - {{name: dp-x-1}}
      - {{name: dp-x-2}}
  y:
    nodes:
      - {{name: dp-y-1}}
      - {{name: dp-y-2}}
traffic:
  driver:
    type: haproxy
    socket: {socket}
    backend: kong
    x_servers: [x1, x2]
    y_servers: [y1, y2]
    node_servers: {{dp-x-1: x1, dp-x-2: x2, dp-y-1: y1, dp-y-2: y2}}
rolling:
  waves: [1, 100%]
steps:
  wave-1-start-y:
    commands:
      - shell: '[ "$KONGUP_NODE" != dp-y-1 ]'
"#,
        socket = haproxy.socket.display()
    )
}

fn start_y() -> StepRef {
    StepRef::new(PhaseName::Cluster, "wave-1-start-y")
}

fn start(dir: &Path, haproxy: &Haproxy) -> TestRun {
    let text = plan_text(haproxy);
    let loaded = parse_plan(&text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let phase = &loaded.expanded.phases[0];
    let expanded = ExpandedPlan {
        phases: vec![Phase {
            name: phase.name,
            strategy: phase.strategy,
            steps: phase
                .steps
                .iter()
                // Wave 2 left pending: a run with nothing left is not rolled back.
                .filter(|s| s.id == "wave-1-start-y" || s.id == "wave-2-start-y")
                .cloned()
                .collect(),
        }],
        ..loaded.expanded.clone()
    };
    let toolbox = Toolbox::for_plan(
        &loaded.plan,
        Redactor::default(),
        // The node steps' action (the wave's rollback puts the server back there); the
        // nodes have no URL, so it waits on none of them.
        kongup::actions::builtins(Some(KongAccess::for_plan(&loaded.plan).unwrap())),
    )
    .unwrap();
    TestRun::start(setup(dir, loaded.plan, expanded, &text, toolbox))
}

fn admin_state(haproxy: &Haproxy, server: &str) -> u32 {
    let mut socket = std::os::unix::net::UnixStream::connect(&haproxy.socket).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.write_all(b"show servers state kong\n").unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    parse_servers_state(&answer)
        .unwrap()
        .into_iter()
        .find(|s| s.name == server)
        .unwrap()
        .admin_state
}

/// The `lb.server-out.dp-y-1` facts, in order.
fn server_out_facts(run: &TestRun) -> Vec<String> {
    run.journal()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::Fact { key, value, .. } if key == format!("{SERVER_OUT}dp-y-1") => Some(value),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_y_node_taken_out_leaves_the_balancer_and_the_wave_s_rollback_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = |_| std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let x: Vec<_> = (0..2).map(nowhere).collect();
    let y: Vec<_> = (0..2).map(nowhere).collect();
    let haproxy = Haproxy::start(dir.path(), &x, &y);
    let mut run = start(dir.path(), &haproxy);
    run.send(Command::Confirm {
        step: start_y(),
        typed: None,
    })
    .await;
    run.wait_step(&start_y(), StepState::Failed).await;
    assert_eq!(
        admin_state(&haproxy, "y1"),
        0,
        "not out before the take-out"
    );

    run.send(Command::TakeOut {
        step: start_y(),
        node: "dp-y-1".into(),
        reason: "its disk is full".into(),
    })
    .await;
    run.wait_step(&start_y(), StepState::Succeeded).await;
    // The take-out's call to the balancer runs beside the step's retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while admin_state(&haproxy, "y1") & FORCED_MAINT == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "y1 is not in maintenance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let said = "dp-y-1 is out of the balancer: server y1 set to maintenance";
    while !run
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Warning(text) if text == said))
    {
        assert!(tokio::time::Instant::now() < deadline, "not said: {said}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(admin_state(&haproxy, "y2"), 0, "only the taken-out node's");
    assert_eq!(server_out_facts(&run), ["y1"]);

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
    run.send(Command::Confirm {
        step: undo.clone(),
        typed: None,
    })
    .await;
    let detail = run.wait_step(&undo, StepState::Succeeded).await;
    assert_eq!(admin_state(&haproxy, "y1"), 0, "{detail:?}");
    assert_eq!(server_out_facts(&run), ["y1", ""]);
    run.quit().await;
}

//! Issue 15, item 3: `--plain` names the likely cause of a failed step in the line above
//! its details, from the watcher's topology.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;

use crate::support::engine::*;
use kongup::engine::Event;
use kongup::kong::topology::{NodeHealth, NodeView, TopologySnapshot};
use kongup::plain::{PlainSetup, drive};
use kongup::plan::model::{Node, Role, Strategy};
use kongup::plan::steps::ClusterSide;

fn node(name: &str) -> Node {
    Node {
        name: name.into(),
        admin_url: None,
        status_url: None,
        proxy_url: None,
        role: Role::Traditional,
        executor: None,
    }
}

fn view(name: &str, cluster: ClusterSide, health: NodeHealth) -> NodeView {
    NodeView {
        name: name.into(),
        cluster,
        role: Role::Traditional,
        version: Some("3.10.0".into()),
        health,
        control_plane: None,
        sync_status: None,
        config_hash: None,
    }
}

#[tokio::test]
async fn a_failed_step_says_its_likely_cause_above_its_details() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    kit.stand_in.set(
        "start-y",
        Behavior::Fail("kong-y1 did not become healthy in 60 s"),
    );
    let mut plan = plan_named("bg");
    plan.clusters.x.nodes = vec![node("kong-x1")];
    plan.clusters.y.nodes = vec![node("kong-y1")];
    let steps = expanded(Strategy::BlueGreen, vec![scripted("start-y")]);
    let mut setup = setup(dir.path(), plan, steps, "v1", kit.toolbox.clone());
    let (side, side_events) = tokio::sync::mpsc::unbounded_channel();
    setup.side_events = Some(side_events);
    let plain = PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: kit.toolbox.clone(),
        interactive: false,
    };
    let out = SharedOut::default();
    let (mut script, pipe) = UnixStream::pair().unwrap();
    let handle = kongup::engine::spawn(setup).unwrap();
    let task = tokio::spawn(drive(handle, plain, BufReader::new(pipe), out.clone()));
    out.wait_for("kongup> cluster/start-y: y").await;
    // The watcher's view, then a line that says it has been read (side events keep order).
    side.send(Event::Topology(TopologySnapshot {
        nodes: vec![
            view("kong-x1", ClusterSide::X, NodeHealth::Ready),
            view(
                "kong-y1",
                ClusterSide::Y,
                NodeHealth::NotReady("router builds not yet complete".into()),
            ),
        ],
        ..TopologySnapshot::default()
    }))
    .unwrap();
    side.send(Event::Warning("topology read".into())).unwrap();
    out.wait_for("! topology read").await;
    script.write_all(b"y\n").unwrap();
    out.wait_for("FAILED cluster/start-y").await;
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.contains("FAILED cluster/start-y"))
        .unwrap();
    assert!(
        lines[failed - 1].contains(
            "likely cause: Y node kong-y1 not ready: /status/ready says router builds not yet \
             complete"
        ),
        "{text}"
    );
    script.write_all(b"quit\n").unwrap();
    drop(script);
    let _ = tokio::time::timeout(DEADLINE, task).await;
}

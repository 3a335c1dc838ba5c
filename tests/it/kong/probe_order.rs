//! The topology refresher's probes at fleet size: a node that never answers holds one probe
//! slot until its timeout, never the others' turns.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::http::{node_info, serve};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::kong::types::DataPlaneList;
use kongup::kong::watch::TopologyWatcher;
use kongup::plan::load::parse_plan;
use serde_json::json;
use tokio::sync::watch;

/// Data planes per cluster; with a control plane each, 200 nodes.
const DATA_PLANES: usize = 99;
/// First among the data planes the watcher probes: with probes taken in order, a fixed
/// window of them behind it would wait for its timeout.
const SILENT: &str = "dp-x-1";

/// Which nodes' `/status/ready` were asked, shared with the test.
#[derive(Clone)]
struct Asked {
    names: Arc<Mutex<BTreeSet<String>>>,
    count: watch::Sender<usize>,
}

/// Every node of the plan behind one loopback server, each under its own path (`/NAME`):
/// `/NAME/` and `/NAME/clustering/data-planes` for the control planes, `/NAME/status/ready`
/// for all, [`SILENT`]'s never answered.
async fn fleet(asked: Asked) -> String {
    serve(
        Router::new()
            .route(
                "/{node}/",
                get(|| async { Json(node_info("3.9.1", "control_plane", "postgres")) }),
            )
            .route(
                "/{node}/clustering/data-planes",
                get(|| async {
                    Json(DataPlaneList {
                        data: Vec::new(),
                        next: None,
                    })
                }),
            )
            .route(
                "/{node}/status/ready",
                get(
                    |State(asked): State<Asked>, Path(node): Path<String>| async move {
                        let count = {
                            let mut names = asked.names.lock().unwrap();
                            names.insert(node.clone());
                            names.len()
                        };
                        asked.count.send_replace(count);
                        if node == SILENT {
                            std::future::pending::<()>().await;
                        }
                        Json(json!({"message": "ready"}))
                    },
                ),
            )
            .with_state(asked),
    )
    .await
}

fn plan_yaml(base: &str) -> String {
    let cluster = |side: &str| {
        let mut nodes = format!(
            "      - {{name: cp-{side}, role: control_plane, admin_url: {base}/cp-{side}, status_url: {base}/cp-{side}}}\n"
        );
        for i in 1..=DATA_PLANES {
            nodes.push_str(&format!(
                "      - {{name: dp-{side}-{i}, role: data_plane, status_url: {base}/dp-{side}-{i}}}\n"
            ));
        }
        nodes
    };
    format!(
        "name: probe order\nfrom: 3.9.1\nto: 3.10.0\nmode: hybrid\nstrategy: in-place\n\
         clusters:\n  x:\n    nodes:\n{}  y:\n    nodes:\n{}\
         traffic:\n  driver: {{type: manual}}\n",
        cluster("x"),
        cluster("y")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_does_not_hold_up_the_other_nodes_probes() {
    let (count, mut counted) = watch::channel(0usize);
    let asked = Asked {
        names: Arc::new(Mutex::new(BTreeSet::new())),
        count,
    };
    let base = fleet(asked.clone()).await;
    let plan = parse_plan(&plan_yaml(&base), "probe-order.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .plan;
    let nodes = plan.clusters.x.nodes.len() + plan.clusters.y.nodes.len();
    assert_eq!(nodes, 200);
    // The silent node's probe outlasts the test's wait: whatever is asked within it was
    // not held up by it.
    let client = AdminClient::new(AdminClientOptions {
        timeout: Duration::from_secs(300),
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
    .unwrap()
    .0;
    let mut watcher = TopologyWatcher::new(client, Arc::new(plan), Vec::new());
    let poll = tokio::spawn(async move { watcher.poll().await });

    // Generous for a debug build on a loaded machine; each probe answers at once.
    let all_asked = tokio::time::timeout(
        Duration::from_secs(60),
        counted.wait_for(|asked| *asked == nodes),
    )
    .await;
    poll.abort();
    let names = asked.names.lock().unwrap().clone();
    assert!(
        all_asked.is_ok(),
        "within 60 s only {} of the {nodes} nodes were probed while {SILENT} stayed silent \
         (asked: the last is {:?})",
        names.len(),
        names.iter().next_back()
    );
    assert!(names.contains(SILENT) && names.contains("dp-y-99") && names.contains("cp-y"));
}

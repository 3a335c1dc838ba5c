//! The topology refresher against a Kong-shaped control plane whose answers the test
//! changes: snapshots, and one warning per new drift from the plan.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::http::{node_info, refused_url, serve};
use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kongup::engine::event::Event;
use kongup::kong::backup::PgTools;
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::kong::database::{KongDatabase, PgDatabase};
use kongup::kong::pg::PgTarget;
use kongup::kong::topology::NodeHealth;
use kongup::kong::types::{DataPlane, DataPlaneList, SyncStatus};
use kongup::kong::watch::TopologyWatcher;
use kongup::plan::load::parse_plan;
use kongup::plan::steps::ClusterSide;
use kongup::session;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Cp {
    version: String,
    ready: bool,
    planes: Vec<DataPlane>,
}

type Shared = Arc<Mutex<Cp>>;

fn data_plane(hostname: &str, version: &str, sync: SyncStatus) -> DataPlane {
    DataPlane {
        id: format!("id-{hostname}"),
        ip: "10.0.9.1".into(),
        hostname: hostname.into(),
        version: version.into(),
        sync_status: sync,
        config_hash: "0123456789abcdef0123456789abcdef".into(),
        last_seen: 1_700_000_000,
        updated_at: None,
        labels: Default::default(),
        cert_details: None,
        ttl: None,
    }
}

async fn control_plane(state: Shared) -> String {
    serve(
        Router::new()
            .route(
                "/",
                get(|State(s): State<Shared>| async move {
                    let version = s.lock().unwrap().version.clone();
                    Json(node_info(&version, "control_plane", "postgres"))
                }),
            )
            .route(
                "/status/ready",
                get(|State(s): State<Shared>| async move {
                    if s.lock().unwrap().ready {
                        (StatusCode::OK, Json(json!({"message": "ready"})))
                    } else {
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            Json(json!({"message": "boom"})),
                        )
                    }
                }),
            )
            .route(
                "/clustering/data-planes",
                get(|State(s): State<Shared>| async move {
                    Json(DataPlaneList {
                        data: s.lock().unwrap().planes.clone(),
                        next: None,
                    })
                }),
            )
            .with_state(state),
    )
    .await
}

fn plan_yaml(cp: &str, y_status: &str, pg_port: u16) -> String {
    format!(
        r#"
name: watch test
from: 3.9.1
to: 3.10.0
mode: hybrid
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: cp-1
        role: control_plane
        admin_url: {cp}
        status_url: {cp}
      - name: dp-1
        role: data_plane
    database:
      host: 127.0.0.1
      port: {pg_port}
      password: {{env: KONGUP_WATCH_TEST_PG}}
  y:
    nodes:
      - name: cp-1-new
        role: control_plane
        admin_url: {cp}
        status_url: {cp}
      - name: dp-y-1
        role: data_plane
        status_url: {y_status}
traffic:
  driver:
    type: manual
  schedule: [50, 100]
  bake: 1m
"#
    )
}

fn client() -> AdminClient {
    AdminClient::new(AdminClientOptions {
        timeout: Duration::from_secs(2),
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
    .unwrap()
    .0
}

#[tokio::test]
async fn snapshots_and_warns_once_per_new_drift() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::Pending);
    let state: Shared = Arc::new(Mutex::new(Cp {
        version: "3.9.1".into(),
        ready: true,
        planes: vec![data_plane("dp-1", "3.9.1", SyncStatus::Normal)],
    }));
    let cp = control_plane(state.clone()).await;
    let plan = parse_plan(&plan_yaml(&cp, &refused_url(), pg.port), "watch.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .plan;
    let database = PgTarget {
        host: HOST.into(),
        port: pg.port,
        database: "kong".into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: None,
        connect_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_secs(5),
        tls: Default::default(),
    };
    let database: Arc<dyn KongDatabase> = Arc::new(PgDatabase::new(
        database,
        PgTools::discover(Duration::from_secs(30)),
    ));
    let mut watcher =
        TopologyWatcher::new(client(), Arc::new(plan), vec![(ClusterSide::X, database)]);

    let (snapshot, warnings) = watcher.poll().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let node = |name: &str| {
        snapshot
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("{name} in {snapshot:?}"))
            .clone()
    };
    assert_eq!(node("cp-1").version.as_deref(), Some("3.9.1"));
    assert_eq!(node("cp-1").health, NodeHealth::Ready);
    let dp = node("dp-1");
    assert_eq!(dp.sync_status, Some(SyncStatus::Normal));
    assert_eq!(dp.control_plane.as_deref(), Some("cp-1"));
    assert_eq!(dp.version.as_deref(), Some("3.9.1"));
    assert!(matches!(node("dp-y-1").health, NodeHealth::Unreachable(_)));
    assert_eq!(
        snapshot.databases[0].schema.as_deref(),
        Some("024_380_to_390, 2 pending")
    );
    assert_eq!(
        snapshot.load_balancer.as_deref(),
        Some("manual: the operator moves traffic")
    );

    // A data plane falls out of sync and an unplanned one appears.
    {
        let mut s = state.lock().unwrap();
        s.planes = vec![
            data_plane("dp-1", "3.9.1", SyncStatus::KongVersionIncompatible),
            data_plane("dp-stray", "3.8.0", SyncStatus::Normal),
        ];
    }
    let (snapshot, warnings) = watcher.poll().await;
    assert_eq!(
        warnings,
        [
            "data plane x/dp-1 reports sync_status kong_version_incompatible to cp-1",
            "x/dp-stray reports Kong 3.8.0; the plan expects 3.9.1 or 3.10.0",
        ]
    );
    assert!(snapshot.nodes.iter().any(|n| n.name == "dp-stray"));
    let (_, warnings) = watcher.poll().await;
    assert!(warnings.is_empty(), "warned twice: {warnings:?}");

    // The control plane comes back at a version the plan does not expect, then dies.
    state.lock().unwrap().version = "3.9.9".into();
    let (_, warnings) = watcher.poll().await;
    assert!(
        warnings
            .contains(&"x/cp-1 reports Kong 3.9.9; the plan expects 3.9.1 or 3.10.0".to_string()),
        "{warnings:?}"
    );
    state.lock().unwrap().ready = false;
    state.lock().unwrap().version = "3.9.1".into();
    let (_, warnings) = watcher.poll().await;
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("x/cp-1 stopped answering")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn the_task_sends_topology_events_until_cancelled() {
    let state: Shared = Arc::new(Mutex::new(Cp {
        version: "3.9.1".into(),
        ready: true,
        planes: vec![data_plane("dp-1", "3.9.1", SyncStatus::Normal)],
    }));
    let cp = control_plane(state).await;
    let refused = refused_url();
    let plan = parse_plan(&plan_yaml(&cp, &refused, 1), "watch.yaml")
        .unwrap()
        .plan;
    let watcher = TopologyWatcher::new(client(), Arc::new(plan), Vec::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let task =
        session::spawn_topology_watcher(watcher, Duration::from_millis(50), tx, cancel.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut topologies = 0;
    while topologies < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Event::Topology(snapshot))) => {
                assert!(snapshot.at.is_some());
                topologies += 1;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("no topology event before the deadline"),
        }
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the task stops when cancelled")
        .unwrap();
}

//! The topology watcher against control planes and data planes that answer with the
//! corpus's bodies: data planes whose `hostname` is their node id (RPC sync) are still
//! matched to the plan's nodes and shown; a listing it cannot read is said, never dropped
//! quietly; a data plane with the empty configuration (Kong issue 12861) is reported at
//! once, with Kong's reason.

use std::sync::Arc;
use std::time::Duration;

use crate::support::http::{corpus_control_plane, serve, serve_corpus};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::kong::topology::{NodeHealth, TopologySnapshot};
use kongup::kong::types::SyncStatus;
use kongup::kong::watch::TopologyWatcher;
use kongup::plan::load::parse_plan;
use kongup::testkit::corpus;

fn client() -> AdminClient {
    AdminClient::new(AdminClientOptions {
        timeout: Duration::from_secs(2),
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
    .unwrap()
    .0
}

/// A hybrid plan: X's control plane at `cp`, its data planes as `dps` (YAML lines of each
/// node's keys after `name`), Y a placeholder.
fn watcher(cp: &str, dps: &[(&str, &str)]) -> TopologyWatcher {
    let mut nodes =
        format!("      - name: kong-cp-01\n        role: control_plane\n        admin_url: {cp}\n");
    for (name, keys) in dps {
        nodes.push_str(&format!(
            "      - name: {name}\n        role: data_plane\n{keys}"
        ));
    }
    let yaml = format!(
        r#"
name: watch corpus
from: 3.9.1
to: 3.10.0
mode: hybrid
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
{nodes}    database:
      host: 127.0.0.1
  y:
    nodes:
      - name: kong-cp-01-new
        role: control_plane
        admin_url: {cp}
      - name: dp-y-1
        role: data_plane
traffic:
  driver:
    type: manual
  schedule: [50, 100]
  bake: 1m
"#
    );
    let plan = parse_plan(&yaml, "watch.yaml")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
        .plan;
    TopologyWatcher::new(client(), Arc::new(plan), Vec::new())
}

fn node<'a>(snapshot: &'a TopologySnapshot, name: &str) -> &'a kongup::kong::topology::NodeView {
    snapshot
        .nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name} in {snapshot:#?}"))
}

#[tokio::test]
async fn data_planes_whose_hostname_is_their_node_id_are_matched_by_ip_and_shown() {
    let cp = serve_corpus(corpus_control_plane(
        "3.9.1",
        "clustering_data_planes_incremental_sync",
    ))
    .await;
    // dp-eu-1 by the IP of its proxy URL; dp-eu-2 by its node id as its name.
    let mut watcher = watcher(
        &cp,
        &[
            ("kong-dp-eu-1", "        proxy_url: http://10.0.3.21:8000\n"),
            ("6b2f7d91-3a4c-4e58-9f06-2d8c1e5a4b73", ""),
        ],
    );
    let (snapshot, warnings) = watcher.poll().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    for name in ["kong-dp-eu-1", "6b2f7d91-3a4c-4e58-9f06-2d8c1e5a4b73"] {
        let dp = node(&snapshot, name);
        assert_eq!(dp.sync_status, Some(SyncStatus::Normal), "{name}");
        assert_eq!(dp.control_plane.as_deref(), Some("kong-cp-01"), "{name}");
        assert_eq!(dp.version.as_deref(), Some("3.9.1"), "{name}");
    }
    // No data plane shown twice under its id.
    assert_eq!(
        snapshot
            .nodes
            .iter()
            .filter(|n| n.role == kongup::plan::model::Role::DataPlane)
            .count(),
        3,
        "{snapshot:#?}"
    );
}

#[tokio::test]
async fn a_data_plane_named_by_a_host_name_is_matched_through_its_address() {
    // A data plane on this machine, listed by RPC sync under its node id: the plan calls
    // it `localhost`, which resolves to the IP the control plane lists.
    let listing = serde_json::json!({"data": [{
        "id": "0d1e2f30-4a5b-4c6d-8e7f-809112233445", "hostname": "0d1e2f30-4a5b-4c6d-8e7f-809112233445",
        "ip": "127.0.0.1", "version": "3.9.1", "sync_status": "normal",
        "config_hash": "00000000000000000000000000000042", "last_seen": 1749556796,
        "updated_at": 1749556796, "labels": null, "cert_details": null,
        "rpc_capabilities": ["kong.sync.v2"], "ttl": 1209596}], "next": null});
    let root = corpus::http(&corpus::file("3.9.1", "admin_root_cp.http")).json();
    let cp = serve(
        Router::new()
            .route("/", get(move || async move { axum::Json(root) }))
            .route(
                "/clustering/data-planes",
                get(move || async move { axum::Json(listing) }),
            ),
    )
    .await;
    let mut watcher = watcher(&cp, &[("localhost", "")]);
    let (snapshot, warnings) = watcher.poll().await;
    assert!(warnings.is_empty(), "{warnings:?}");
    let dp = node(&snapshot, "localhost");
    assert_eq!(dp.sync_status, Some(SyncStatus::Normal));
    assert_eq!(snapshot.nodes.len(), 4, "{snapshot:#?}");
}

#[tokio::test]
async fn a_listing_the_watcher_cannot_read_is_said() {
    let root = corpus::http(&corpus::file("3.9.1", "admin_root_cp.http")).json();
    let cp = serve(
        Router::new()
            .route("/", get(move || async move { axum::Json(root) }))
            .route(
                "/clustering/data-planes",
                get(|| async {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(serde_json::json!({"message": "An unexpected error happened"})),
                    )
                }),
            ),
    )
    .await;
    let mut watcher = watcher(&cp, &[("kong-dp-eu-1", "")]);
    let (_, warnings) = watcher.poll().await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("cannot list the data planes of x/kong-cp-01")
            && warnings[0].contains("An unexpected error happened"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_data_plane_with_the_empty_configuration_is_reported_at_once() {
    // The control plane lists dp-eu-1 with the empty configuration's hash.
    let mut listing =
        corpus::http(&corpus::file("3.9.1", "clustering_data_planes_page2.http")).json();
    listing["data"][0]["config_hash"] = "00000000000000000000000000000000".into();
    let root = corpus::http(&corpus::file("3.9.1", "admin_root_cp.http")).json();
    let cp = serve(
        Router::new()
            .route("/", get(move || async move { axum::Json(root) }))
            .route(
                "/clustering/data-planes",
                get(move || async move { axum::Json(listing) }),
            ),
    )
    .await;
    // Another data plane's own Status API says it has no configuration.
    let dp_status = serve_corpus(vec![(
        "/status/ready".to_string(),
        corpus::file("3.9.1", "status_ready_503_empty_config.http"),
    )])
    .await;
    let mut watcher = watcher(
        &cp,
        &[
            ("kong-dp-us-1", ""),
            (
                "kong-dp-eu-2",
                &format!("        status_url: {dp_status}\n"),
            ),
        ],
    );
    let (snapshot, warnings) = watcher.poll().await;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(
            |w| w.starts_with("data plane x/kong-dp-us-1 has no configuration")
                && w.contains("config_hash 00000000000000000000000000000000")
                && w.contains("kong-cp-01")
        ),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(
            |w| w.starts_with("data plane x/kong-dp-eu-2 has no configuration")
                && w.contains("no configuration available (empty configuration present)")
        ),
        "{warnings:?}"
    );
    assert_eq!(
        node(&snapshot, "kong-dp-eu-2").health,
        NodeHealth::NotReady("no configuration available (empty configuration present)".into())
    );
    // Lasting: said once while it lasts.
    let (_, warnings) = watcher.poll().await;
    assert!(warnings.is_empty(), "{warnings:?}");
}

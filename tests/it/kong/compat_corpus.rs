//! The hybrid compatibility check (actions/kong/compat.rs) against control planes and
//! data planes that answer with the corpus's bodies: RPC-sync listings (null labels and
//! certificate details, the node id as hostname) are read, and a data plane with the empty
//! configuration (Kong issue 12861), by its control plane's `config_hash` or by its own
//! `/status/ready`, fails the check with that reason.

use std::time::Duration;

use crate::support::engine::*;
use crate::support::http::{corpus_control_plane, serve, serve_corpus};
use crate::support::kong_actions::all_logs;
use axum::Router;
use axum::routing::get;
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::{Command, Event, StepState};
use kongup::plan::model::{Node, Plan, Role, Strategy};
use kongup::plan::steps::StepKind;
use kongup::testkit::corpus;

fn waits() -> Waits {
    Waits {
        nodes: Duration::from_secs(2),
        poll: Duration::from_millis(100),
        progress: Duration::from_millis(500),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    }
}

fn node(name: &str, role: Role, admin_url: Option<&str>, status_url: Option<&str>) -> Node {
    Node {
        name: name.into(),
        admin_url: admin_url.map(str::to_string),
        status_url: status_url.map(str::to_string),
        proxy_url: None,
        role,
        executor: None,
    }
}

/// Runs the compatibility check of `plan`; how it ended, its detail and the run's logs.
async fn check(plan: Plan) -> (StepState, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut kit = kit();
    let access = KongAccess::for_plan(&plan).unwrap().with_waits(waits());
    register_kong_actions(&mut kit.toolbox.actions, access);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(
            Strategy::Rolling,
            vec![step("compat-check", StepKind::CompatibilityCheck)],
        ),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::Confirm {
        step: cluster("compat-check"),
        typed: None,
    })
    .await;
    let event = run
        .wait_for("compat-check to end", |e| {
            matches!(e, Event::StepChanged { step, state, .. }
                if *step == cluster("compat-check")
                    && matches!(state, StepState::Succeeded | StepState::Failed))
        })
        .await;
    let Event::StepChanged { state, detail, .. } = event else {
        unreachable!()
    };
    let logs = all_logs(&run.run_dir);
    run.quit().await;
    (state, detail.unwrap_or_default(), logs)
}

fn plan_with(nodes: Vec<Node>) -> Plan {
    let mut plan = plan_named("compat corpus");
    plan.clusters.y.nodes = nodes;
    plan
}

#[tokio::test]
async fn rpc_sync_listings_are_read_and_their_data_planes_named_by_ip() {
    for (version, listing) in [
        ("3.9.1", "clustering_data_planes_incremental_sync"),
        ("3.10.0", "clustering_data_planes_rpc_sync"),
    ] {
        let cp = serve_corpus(corpus_control_plane(version, listing)).await;
        let (state, detail, logs) = check(plan_with(vec![node(
            "cp-1",
            Role::ControlPlane,
            Some(&cp),
            None,
        )]))
        .await;
        assert_eq!(state, StepState::Succeeded, "{version}: {detail}\n{logs}");
        assert!(
            detail.contains("all 2 data plane(s) in sync and compatible"),
            "{version}: {detail}"
        );
        assert!(
            logs.contains("data plane 10.0.3.21 (node 1c9e4b52)"),
            "{version}: {logs}"
        );
    }
}

#[tokio::test]
async fn every_versions_listing_passes_when_all_is_well() {
    for version in corpus::VERSIONS {
        let cp = serve_corpus(corpus_control_plane(version, "clustering_data_planes")).await;
        let (state, detail, _) = check(plan_with(vec![node(
            "cp-1",
            Role::ControlPlane,
            Some(&cp),
            None,
        )]))
        .await;
        assert_eq!(state, StepState::Succeeded, "{version}: {detail}");
        assert!(
            detail.contains("all 3 data plane(s)"),
            "{version}: {detail}"
        );
    }
}

#[tokio::test]
async fn a_data_plane_the_control_plane_lists_with_the_empty_configuration_fails_the_check() {
    let mut listing =
        corpus::http(&corpus::file("3.10.0", "clustering_data_planes_page2.http")).json();
    listing["data"][0]["config_hash"] = "00000000000000000000000000000000".into();
    let root = corpus::http(&corpus::file("3.10.0", "admin_root_cp.http")).json();
    let cp = serve(
        Router::new()
            .route("/", get(move || async move { axum::Json(root) }))
            .route(
                "/clustering/data-planes",
                get(move || async move { axum::Json(listing) }),
            ),
    )
    .await;
    let (state, detail, _) = check(plan_with(vec![node(
        "cp-1",
        Role::ControlPlane,
        Some(&cp),
        None,
    )]))
    .await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains("data plane kong-dp-us-1 (10.0.7.40) Kong 3.10.0: config_hash 00000000000000000000000000000000, the empty configuration"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_data_plane_whose_status_says_no_configuration_fails_the_check() {
    for reason in [
        "status_ready_503_empty_config.http",
        "status_ready_503_no_config_hash.http",
    ] {
        let cp = serve_corpus(corpus_control_plane("3.10.0", "clustering_data_planes")).await;
        let dp_status = serve_corpus(vec![(
            "/status/ready".to_string(),
            corpus::file("3.10.0", reason),
        )])
        .await;
        let message = corpus::http(&corpus::file("3.10.0", reason)).json()["message"]
            .as_str()
            .unwrap()
            .to_string();
        let (state, detail, _) = check(plan_with(vec![
            node("cp-1", Role::ControlPlane, Some(&cp), None),
            node("kong-dp-eu-2", Role::DataPlane, None, Some(&dp_status)),
        ]))
        .await;
        assert_eq!(state, StepState::Failed, "{reason}: {detail}");
        assert!(
            detail.contains(&format!(
                "data plane kong-dp-eu-2 (10.0.3.22) Kong 3.9.1: its /status/ready says {message}"
            )),
            "{reason}: {detail}"
        );
        assert!(detail.starts_with("1 problem(s)"), "{reason}: {detail}");
    }
}

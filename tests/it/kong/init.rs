//! `kongup init` against small servers that answer with Kong's bodies (src/kong/types.rs):
//! the plan it writes validates, names the data planes with their versions, and marks
//! what kongup could not know.

use crate::support;

use std::time::Duration;

use crate::support::http::{node_info, serve};
use assert_cmd::Command;
use axum::routing::get;
use axum::{Json, Router};
use kongup::kong::discover::{self, InitOptions, ProbedNode};
use kongup::kong::types::{DataPlane, DataPlaneList, NodeInfo, SyncStatus};
use kongup::plan::load::{load_plan, parse_plan};
use kongup::plan::model::{Mode, Strategy};
use serde_json::json;

fn with_config(mut info: NodeInfo, database: bool) -> NodeInfo {
    let other = &mut info.configuration.other;
    other.insert(
        "status_listeners".into(),
        json!([{"ip": "0.0.0.0", "port": 8100, "ssl": false}]),
    );
    other.insert(
        "proxy_listeners".into(),
        json!([{"ip": "0.0.0.0", "port": 8000, "ssl": false}]),
    );
    if database {
        other.insert("pg_host".into(), json!("pg.internal"));
        other.insert("pg_port".into(), json!(5432));
        other.insert("pg_database".into(), json!("kong"));
        other.insert("pg_user".into(), json!("kong"));
        other.insert("pg_password".into(), json!("******"));
    }
    info
}

fn data_plane(id: &str, hostname: &str, version: &str, sync: SyncStatus) -> DataPlane {
    DataPlane {
        id: id.into(),
        ip: format!("10.0.9.{}", id.len()),
        hostname: hostname.into(),
        version: version.into(),
        sync_status: sync,
        config_hash: "0123456789abcdef0123456789abcdef".into(),
        last_seen: 1_700_000_000,
        updated_at: Some(1_700_000_000),
        labels: Default::default(),
        cert_details: None,
        ttl: Some(1_209_600),
    }
}

async fn node(info: NodeInfo, planes: Vec<DataPlane>) -> String {
    let is_cp = info.configuration.role == "control_plane";
    let mut router = Router::new().route("/", get(move || async move { Json(info) }));
    if is_cp {
        router = router.route(
            "/clustering/data-planes",
            get(move || async move {
                Json(DataPlaneList {
                    data: planes,
                    next: None,
                })
            }),
        );
    }
    serve(router).await
}

fn run_init(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("kongup")
        .unwrap()
        .arg("init")
        .args(args)
        .env("KONG_ADMIN_TOKEN", "init-test-token")
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn init_on_a_hybrid_control_plane_names_the_data_planes_with_their_versions() {
    let cp = node(
        with_config(node_info("3.9.1", "control_plane", "postgres"), true),
        vec![
            data_plane("dp-a", "dp-east-1", "3.9.1", SyncStatus::Normal),
            data_plane(
                "dp-bb",
                "dp-east-2",
                "3.8.0",
                SyncStatus::KongVersionIncompatible,
            ),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.yaml");
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let cp = cp.clone();
        let plan_path = plan_path.clone();
        move || {
            run_init(&[
                "--admin",
                &cp,
                "-o",
                plan_path.to_str().unwrap(),
                "--to",
                "3.10.0",
                "--token-env",
                "KONG_ADMIN_TOKEN",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "the plan went to the file: {stdout}");
    assert!(stderr.contains("validates"), "{stderr}");
    assert!(
        stderr.contains("dp-east-2 (10.0.9.5) reports sync_status kong_version_incompatible"),
        "{stderr}"
    );

    let loaded = load_plan(&plan_path).unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            std::fs::read_to_string(&plan_path).unwrap_or_default()
        )
    });
    let plan = loaded.plan;
    assert_eq!(plan.mode, Mode::Hybrid);
    assert_eq!(plan.from.to_string(), "3.9.1");
    assert_eq!(plan.to.to_string(), "3.10.0");
    let names: Vec<&str> = plan
        .clusters
        .x
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["control_plane-host", "dp-east-1", "dp-east-2"]);
    assert_eq!(
        plan.clusters.x.nodes[0].status_url.as_deref(),
        Some(format!("http://127.0.0.1:{}", 8100).as_str())
    );
    let database = plan.clusters.x.database.as_ref().unwrap();
    assert_eq!(
        (database.host.as_str(), database.port),
        ("pg.internal", 5432)
    );

    let text = std::fs::read_to_string(&plan_path).unwrap();
    assert!(text.contains("version 3.9.1, sync_status normal"), "{text}");
    assert!(
        text.contains("version 3.8.0, sync_status kong_version_incompatible"),
        "{text}"
    );
    assert!(text.contains("# TODO"), "{text}");
    assert!(
        text.contains("token: {env: \"KONG_ADMIN_TOKEN\"}"),
        "{text}"
    );
    assert!(!text.contains("******"), "{text}");
    assert!(!text.contains("init-test-token"), "{text}");
    // Hybrid in place stops the control planes only: the data planes go on proxying.
    let unwrapped = text.replace("\n# ", " ");
    assert!(
        unwrapped.contains("so in-place: X's control planes stop")
            && unwrapped.contains("the data planes keep proxying with their last configuration")
            && !unwrapped.contains("proxy is down"),
        "{text}"
    );

    // The file is not overwritten without --force.
    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        run_init(&["--admin", &cp, "-o", plan_path.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("--force"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_on_an_unreachable_node_says_why() {
    let url = support::http::refused_url();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || run_init(&["--admin", &url]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("connection refused"), "{stderr}");
}

fn probed(url: &str, info: NodeInfo, planes: Vec<DataPlane>) -> ProbedNode {
    ProbedNode {
        admin_url: url.into(),
        info,
        data_planes: planes,
        unreadable: Vec::new(),
    }
}

/// Every mode and strategy kongup can pick writes a plan that validates.
#[test]
fn every_pick_writes_a_valid_plan() {
    let traditional = || {
        vec![
            probed(
                "https://10.0.1.11:8444",
                with_config(node_info("3.9.1", "traditional", "postgres"), true),
                vec![],
            ),
            probed(
                "https://10.0.1.12:8444",
                with_config(node_info("3.9.1", "traditional", "postgres"), true),
                vec![],
            ),
        ]
    };
    let hybrid = || {
        vec![probed(
            "https://10.0.8.11:8444",
            with_config(node_info("3.4.3.12", "control_plane", "postgres"), true),
            vec![data_plane("d1", "dp-1", "3.4.3.12", SyncStatus::Normal)],
        )]
    };
    let dbless = || {
        vec![probed(
            "http://10.0.4.11:8001",
            with_config(node_info("3.4.3.12", "traditional", "off"), false),
            vec![],
        )]
    };
    let cases = [
        (
            "traditional patch",
            traditional(),
            "3.9.2",
            false,
            Mode::Traditional,
            Strategy::BlueGreen,
        ),
        (
            "traditional minor",
            traditional(),
            "3.10.0",
            false,
            Mode::Traditional,
            Strategy::InPlace,
        ),
        (
            "traditional spare",
            traditional(),
            "3.10.0",
            true,
            Mode::Traditional,
            Strategy::DualCluster,
        ),
        (
            "hybrid LTS",
            hybrid(),
            "3.10.0.2",
            false,
            Mode::Hybrid,
            Strategy::InPlace,
        ),
        (
            "hybrid spare",
            hybrid(),
            "3.10.0.2",
            true,
            Mode::Hybrid,
            Strategy::DualCluster,
        ),
        (
            "dbless",
            dbless(),
            "3.10.0.2",
            false,
            Mode::Dbless,
            Strategy::Rolling,
        ),
    ];
    for (label, nodes, to, spare, mode, strategy) in cases {
        let discovery = discover::analyse(nodes).unwrap();
        assert_eq!(discovery.mode, mode, "{label}");
        let init = discover::render_plan(
            &discovery,
            &InitOptions {
                to: Some(to.parse().unwrap()),
                spare_capacity: spare,
                ..InitOptions::default()
            },
        );
        assert_eq!(init.pick.primary, strategy, "{label}");
        let loaded = parse_plan(&init.yaml, label)
            .unwrap_or_else(|e| panic!("{label}:\n{e}\n{}", init.yaml));
        assert_eq!(loaded.plan.mode, mode, "{label}");
        assert!(init.todos > 0, "{label}");
    }

    // Without --to the plan still validates, with the target marked TODO.
    let discovery = discover::analyse(traditional()).unwrap();
    let init = discover::render_plan(&discovery, &InitOptions::default());
    assert!(
        init.yaml.contains("# TODO the version to upgrade to"),
        "{}",
        init.yaml
    );
    assert_eq!(
        parse_plan(&init.yaml, "no-to").unwrap().plan.to.to_string(),
        "3.9.2"
    );
}

#[test]
fn versions_with_a_suffix_are_read_and_equal_releases_are_not_mixed() {
    let discovery = discover::analyse(vec![
        probed(
            "http://a:8001",
            node_info("2.4.1.0-enterprise-edition", "traditional", "postgres"),
            vec![],
        ),
        probed(
            "http://b:8001",
            node_info("2.4.1.0", "traditional", "postgres"),
            vec![],
        ),
    ])
    .unwrap();
    assert_eq!(discovery.version.to_string(), "2.4.1.0");
    assert!(discovery.warnings.is_empty(), "{:?}", discovery.warnings);
}

#[test]
fn mixed_nodes_are_refused() {
    let error = discover::analyse(vec![
        probed(
            "http://a:8001",
            node_info("3.9.1", "traditional", "postgres"),
            vec![],
        ),
        probed(
            "http://b:8001",
            node_info("3.9.1", "control_plane", "postgres"),
            vec![],
        ),
    ])
    .unwrap_err();
    assert!(error.to_string().contains("once per cluster"), "{error}");
}

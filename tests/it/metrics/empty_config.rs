//! A Y data plane with the empty configuration (Kong issue 12861: a control plane pushed an
//! empty configuration, every route answered 404 and `sync_status` stayed `normal`) fails
//! the gates at once, from what Y's control plane says in its `/metrics`
//! (`kong_data_plane_config_hash` 0 is the hash of the empty configuration): a bake ends
//! on it without waiting for the 5xx ratio.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use kongup::engine::StepState;
use kongup::metrics::aggregate::ClusterTracker;
use kongup::metrics::gates::GateEvaluator;
use kongup::metrics::monitor::{self, MonitorConfig, ScrapeTarget};
use kongup::metrics::sample::NodeSample;
use kongup::metrics::{ClusterFigures, GateVerdict, MetricsSnapshot, Verdict};
use kongup::plan::model::{FailAction, GateSpec, Strategy, TlsOptions};
use kongup::plan::steps::{RollbackKind, StepKind};
use kongup::testkit::corpus;
use tokio::sync::watch;

use crate::support::engine::*;
use crate::support::http::serve;

/// `3.4.2/metrics_cp.txt` as Y's control plane serves it now: kong-dp-1 connected with a
/// configuration; kong-dp-3 connected, compatible (a 3.4.2 like its control plane), with
/// the empty configuration's hash (as the fixture has it); kong-dp-2 gone an hour ago
/// with the empty hash too (the control plane keeps its row for
/// `cluster_data_plane_purge_delay`, 14 days).
fn control_plane_now() -> String {
    let now = chrono::Utc::now().timestamp();
    corpus::file("3.4.2", "metrics_cp.txt")
        .text()
        .replace(" 1751371188", &format!(" {now}"))
        .replace(" 1751371181", &format!(" {now}"))
        .replace(" 1751371173", &format!(" {}", now - 3600))
        .replace("kong_version=\"2.8.5\"} 0", "kong_version=\"3.4.2\"} 1")
        .lines()
        .map(|line| {
            if line.starts_with("kong_data_plane_config_hash{node_id=\"8f2e6d4c") {
                let (series, _) = line.rsplit_once(' ').unwrap();
                format!("{series} 0\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

async fn node(body: impl Fn() -> String + Clone + Send + Sync + 'static) -> String {
    serve(Router::new().route(
        "/metrics",
        get(move || {
            let body = body.clone();
            async move { body() }
        }),
    ))
    .await
}

fn target(node: &str, base: &str) -> ScrapeTarget {
    ScrapeTarget {
        node: node.to_string(),
        url: Some(format!("{base}/metrics")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_y_data_plane_with_the_empty_configuration_fails_the_bake_at_once() {
    let flags_on = corpus::file("3.4.2", "metrics_flags_on.txt").text();
    let dp = corpus::file("3.4.2", "metrics_dp.txt").text();
    let x1 = node(move || flags_on.clone()).await;
    let cp = node(control_plane_now).await;
    let dp1 = node(move || dp.clone()).await;

    // So many requests to judge that the figures alone stay inconclusive for the whole bake.
    let gates = GateSpec {
        window: Duration::from_secs(30),
        max_error_ratio: Some(0.01),
        max_p99_ms: None,
        max_error_ratio_delta: None,
        max_p99_ratio: None,
        min_requests: 1_000_000,
        consecutive_breaches: 3,
        on_fail: FailAction::Pause,
    };
    let config = MonitorConfig {
        x: vec![target("x1", &x1)],
        y: vec![target("cp-1", &cp), target("kong-dp-1", &dp1)],
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(3),
        window: gates.window,
        history: Duration::from_secs(60),
        gates: Some(gates.clone()),
        admin_token: None,
    };
    let client = kongup::kong::http::client(
        &TlsOptions::default(),
        Duration::from_secs(3),
        Duration::from_secs(3),
    )
    .unwrap()
    .0;
    let monitor = monitor::spawn(config, client);
    // As the session does: every verdict to the engine's bakes.
    let (verdicts_tx, verdicts_rx) = watch::channel::<Option<GateVerdict>>(None);
    let mut verdicts = monitor.subscribe_verdicts();
    tokio::spawn(async move {
        while let Ok(verdict) = verdicts.recv().await {
            verdicts_tx.send_replace(Some(verdict));
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let mut kit = kit();
    kit.toolbox = kit.toolbox.with_gates(verdicts_rx);
    let mut plan = plan_named("empty-config");
    plan.gates = gates;
    let bake = Duration::from_secs(15);
    let shift = with_rollback(
        step(
            "shift-traffic-10",
            StepKind::ShiftTraffic {
                y_percent: 10,
                bake,
            },
        ),
        RollbackKind::TrafficToX,
    );
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::DualCluster, vec![shift]),
        "v1",
        kit.toolbox,
    ));
    let started = tokio::time::Instant::now();
    run.confirm(&cluster("shift-traffic-10")).await;
    let detail = run
        .wait_step(&cluster("shift-traffic-10"), StepState::Failed)
        .await
        .unwrap();
    assert!(
        started.elapsed() < bake,
        "the bake ran to its end: {detail}"
    );
    assert!(
        detail.contains("; gate failed: data plane kong-dp-3"),
        "{detail}"
    );
    assert!(
        detail.contains(
            "data plane kong-dp-3 (10.0.2.23) has the empty configuration: Y's control plane \
             cp-1 reports its config hash as 0"
        ),
        "{detail}"
    );
    // A row the control plane keeps for a data plane gone long ago is no data plane of Y.
    assert!(!detail.contains("kong-dp-2"), "{detail}");

    let failed = monitor.latest().expect("a snapshot");
    assert_eq!(failed.y.empty_configuration.len(), 1);
    // Gate verdicts are samples in the event stream (the latest waits): the failing one may
    // come after the step's Failed state, so wait for it among every event received.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let verdict = loop {
        let found = run.events.lock().unwrap().iter().find_map(|e| match e {
            kongup::engine::Event::Gate(v) if v.verdict == Verdict::Fail => Some(v.clone()),
            _ => None,
        });
        if let Some(verdict) = found {
            break verdict;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failing verdict is shown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(verdict.consecutive_breaches, 0, "{:?}", verdict.checks);
    run.quit().await;
}

fn at(unix: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::TimeZone::timestamp_opt(&chrono::Utc, unix, 0).unwrap()
}

/// The fixture's kong-dp-3 is a 2.8.5 data plane a 3.4.2 control plane refused: its hash
/// 0 is the one the control plane records before any ping, not a configuration it runs.
/// It gets no configuration all the same, and fails the gates with those words. One scrape
/// is not enough (a data plane that has just connected pings the empty hash until its
/// first configuration is applied), and a row older than two ping intervals is a data
/// plane gone.
#[test]
fn the_control_planes_own_exposition_says_which_data_plane_has_no_configuration() {
    let text = corpus::file("3.4.2", "metrics_cp.txt").text();
    // The fixture's data planes pinged at …173, …181 and …188.
    let judged_at = |tracker: &ClusterTracker, unix: i64| {
        let snapshot = MetricsSnapshot {
            at: at(unix),
            x: ClusterFigures::default(),
            y: tracker.figures(at(unix)),
        };
        GateEvaluator::new(GateSpec::default()).evaluate(&snapshot)
    };
    let mut tracker = ClusterTracker::new(["cp-1"], Duration::from_secs(60));
    tracker.record(0, Ok(NodeSample::parse(&text, at(1_751_371_190)).unwrap()));
    assert!(
        tracker
            .figures(at(1_751_371_190))
            .empty_configuration
            .is_empty()
    );
    tracker.record(0, Ok(NodeSample::parse(&text, at(1_751_371_192)).unwrap()));
    let verdict = judged_at(&tracker, 1_751_371_192);
    assert_eq!(verdict.verdict, Verdict::Fail);
    assert_eq!(
        verdict.checks[0],
        "data plane kong-dp-3 (10.0.2.23) gets no configuration: Y's control plane cp-1 \
         refuses it as incompatible (it runs Kong 2.8.5) and reports its config hash as 0 (the \
         empty configuration's) on two scrapes in a row. It serves an old configuration or \
         none: BREACH"
    );
    assert_eq!(verdict.consecutive_breaches, 0);

    // kong-dp-3 last pinged at …181: more than 60 s later it is gone, not a data plane of Y.
    let mut tracker = ClusterTracker::new(["cp-1"], Duration::from_secs(60));
    for unix in [1_751_371_242, 1_751_371_244] {
        tracker.record(0, Ok(NodeSample::parse(&text, at(unix)).unwrap()));
    }
    assert!(
        tracker
            .figures(at(1_751_371_244))
            .empty_configuration
            .is_empty()
    );
    assert_ne!(judged_at(&tracker, 1_751_371_244).verdict, Verdict::Fail);
}

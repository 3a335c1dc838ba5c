//! Preflight on the lab checks what the gates will read from X's `/metrics`: it passes
//! with Kong's prometheus flags on, fails naming the series and the config key when
//! `latency_metrics` is off, and fails naming the URL when `/metrics` does not answer.
//! It also reads the split back through the demo plan's driver.

use crate::support::demo as demo_support;

use demo_support::{Demo, SPEED};
use kongup::demo::{self, DemoOptions};
use kongup::engine::{Event, StepState};
use kongup::plan::steps::{StepKind, StepRef};
use kongup::sim::{Fault, MetricsFlags, Scenario};

async fn start(scenario: Scenario, flags: MetricsFlags, faults: Vec<Fault>) -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        speed: SPEED,
        metrics_flags: flags,
        faults,
        ..DemoOptions::new(scenario, dir.path().join("run"))
    };
    let run = demo::start(options)
        .await
        .unwrap_or_else(|e| panic!("the {scenario} demo did not start: {e}"));
    Demo::from_run(run, dir)
}

/// Confirms steps up to the first preflight and returns how it ended and its log lines.
async fn preflight(demo: &mut Demo) -> (StepState, String, Vec<String>) {
    let (phase, step) = demo
        .run
        .expanded
        .steps()
        .find(|(_, step)| step.kind == StepKind::Preflight)
        .expect("the demo plan has a preflight");
    let preflight = StepRef::new(phase.name, &step.id);
    let target = preflight.clone();
    let event = demo
        .confirm_until("the preflight to end", move |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Succeeded | StepState::Failed, .. }
                if *step == target)
        })
        .await;
    let Event::StepChanged { state, detail, .. } = event else {
        unreachable!()
    };
    let logs = demo
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Log(line) => Some(line.text.clone()),
            _ => None,
        })
        .collect();
    (state, detail.unwrap_or_default(), logs)
}

fn x_status_urls(demo: &Demo) -> Vec<(String, String)> {
    demo.run
        .plan
        .clusters
        .x
        .nodes
        .iter()
        .filter(|n| n.role != kongup::plan::model::Role::ControlPlane)
        .map(|n| {
            let base = n.status_url.clone().or(n.admin_url.clone()).unwrap();
            (
                n.name.clone(),
                format!("{}/metrics", base.trim_end_matches('/')),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_flags_on_preflight_passes_and_reports_the_split() {
    let mut demo = start(Scenario::Hybrid, MetricsFlags::ALL_ON, vec![]).await;
    let (state, detail, logs) = preflight(&mut demo).await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert!(
        detail.contains("traffic split read back (X 100% | Y 0%)"),
        "{detail}"
    );
    let nodes = x_status_urls(&demo);
    assert!(
        detail.contains(&format!("the gates' series on {} X node(s)", nodes.len())),
        "{detail}"
    );
    for (name, url) in nodes {
        assert!(
            logs.iter()
                .any(|l| l == &format!("metrics: x/{name} at {url} exports what the gates read")),
            "{logs:#?}"
        );
    }
    assert!(
        logs.iter()
            .any(|l| l.starts_with("traffic: X 100% | Y 0%, as read back through")),
        "{logs:#?}"
    );
    demo.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_latency_metrics_off_preflight_names_the_series_and_the_config_key() {
    let flags = MetricsFlags {
        status_code_metrics: true,
        latency_metrics: false,
    };
    let mut demo = start(Scenario::DualCluster, flags, vec![]).await;
    let (state, detail, _) = preflight(&mut demo).await;
    assert_eq!(state, StepState::Failed, "{detail}");
    for (name, url) in x_status_urls(&demo) {
        assert!(
            detail.contains(&format!(
                "x/{name}: {url} has no kong_request_latency_ms_bucket series: Kong's \
                 prometheus plugin needs `latency_metrics: true`"
            )),
            "{detail}"
        );
    }
    assert!(detail.contains("every verdict is inconclusive"), "{detail}");
    assert!(!detail.contains("kong_http_requests_total"), "{detail}");
    demo.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_metrics_endpoint_fails_preflight_with_its_url() {
    let crashed = "kong-x-1";
    let crash = Fault::Crash {
        node: Some(crashed.to_string()),
    };
    let mut demo = start(Scenario::DualCluster, MetricsFlags::ALL_ON, vec![crash]).await;
    let (_, url) = x_status_urls(&demo)
        .into_iter()
        .find(|(name, _)| name == crashed)
        .expect("the dual-cluster lab has kong-x-1");
    let (state, detail, _) = preflight(&mut demo).await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains(&format!(
            "x/{crashed}: cannot read its /metrics: could not reach {url}:"
        )),
        "{detail}"
    );
    demo.quit().await;
}

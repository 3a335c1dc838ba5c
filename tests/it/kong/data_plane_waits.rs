//! Waiting for data planes, which have no Admin API: their version and sync state come from
//! the control planes' `/clustering/data-planes` (the data plane found by hostname, else by
//! ip), their readiness from their Status API. Against the hybrid lab (3.4.2 → 3.10.0).

use std::time::Duration;

use crate::support::engine::*;
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::{Command, Event, StepState};
use kongup::plan::model::{Mode, Node, Plan, Strategy, StrategyChoice};
use kongup::plan::steps::{ClusterSide, StepKind};
use kongup::plan::version::KongVersion;
use kongup::sim::{Fault, Lab, LabEndpoints, LabOptions, Scenario};

fn waits() -> Waits {
    Waits {
        nodes: Duration::from_secs(3),
        poll: Duration::from_millis(100),
        progress: Duration::from_millis(500),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    }
}

/// A hybrid plan of the lab's nodes, at the lab's URLs (data planes without `admin_url`).
fn plan_of(endpoints: &LabEndpoints, to: KongVersion) -> Plan {
    let mut plan = plan_named("data plane waits");
    plan.mode = Mode::Hybrid;
    plan.strategy = StrategyChoice::Fixed(Strategy::DualCluster);
    plan.from = endpoints.from;
    plan.to = to;
    for n in &endpoints.nodes {
        let node = Node {
            name: n.name.clone(),
            admin_url: n.admin.clone(),
            status_url: Some(n.status.clone()),
            proxy_url: n.proxy.clone(),
            role: n.role,
            executor: None,
        };
        match n.cluster {
            ClusterSide::X => plan.clusters.x.nodes.push(node),
            ClusterSide::Y => plan.clusters.y.nodes.push(node),
        }
    }
    plan
}

/// Runs a `start-y` step on `plan`; returns how it ended.
async fn start_y(plan: Plan) -> (StepState, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut kit = kit();
    let access = KongAccess::for_plan(&plan).unwrap().with_waits(waits());
    register_kong_actions(&mut kit.toolbox.actions, access);
    let steps = vec![step(
        "start-y",
        StepKind::StartNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
    )];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::DualCluster, steps),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::Confirm {
        step: cluster("start-y"),
        typed: None,
    })
    .await;
    let event = run
        .wait_for("start-y to end", |e| {
            matches!(e, Event::StepChanged { step, state, .. }
                if *step == cluster("start-y")
                    && matches!(state, StepState::Succeeded | StepState::Failed))
        })
        .await;
    run.quit().await;
    match event {
        Event::StepChanged { state, detail, .. } => (state, detail.unwrap_or_default()),
        _ => unreachable!(),
    }
}

async fn lab(options: LabOptions) -> Lab {
    Lab::start(
        Scenario::Hybrid,
        LabOptions {
            y_deployed: true,
            ..options
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_planes_version_and_sync_state_come_from_its_control_plane() {
    let lab = lab(LabOptions::default()).await;
    let endpoints = lab.endpoints();
    let (state, detail) = start_y(plan_of(&endpoints, endpoints.to)).await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    for dp in ["dp-y-1", "dp-y-2"] {
        assert!(
            detail.contains(&format!(
                "{dp}: Kong 3.10.0, sync_status normal (cp-y-1, by hostname)"
            )),
            "{detail}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_its_control_plane_lists_at_another_version_is_not_up() {
    let lab = lab(LabOptions::default()).await;
    let endpoints = lab.endpoints();
    // The plan expects 3.10.1; the lab's Y runs 3.10.0.
    let (state, detail) = start_y(plan_of(&endpoints, KongVersion::new(3, 10, 1))).await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains("dp-y-1 (cp-y-1 lists it at Kong 3.10.0, not 3.10.1)"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_sent_to_the_old_control_plane_is_seen_there_as_incompatible() {
    let lab = lab(LabOptions {
        faults: vec![Fault::DpIncompatible],
        ..LabOptions::default()
    })
    .await;
    let endpoints = lab.endpoints();
    let (state, detail) = start_y(plan_of(&endpoints, endpoints.to)).await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains("dp-y-1 (cp-x-1 lists it with sync_status kong_version_incompatible)"),
        "{detail}"
    );
    assert!(!detail.contains("dp-y-2 ("), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_rpc_sync_a_data_plane_listed_by_node_id_is_found_by_its_ip() {
    let lab = lab(LabOptions {
        rpc_sync: true,
        ..LabOptions::default()
    })
    .await;
    let endpoints = lab.endpoints();
    let ips: std::collections::BTreeSet<&str> = endpoints
        .cluster(ClusterSide::Y)
        .filter(|n| n.admin.is_none())
        .map(|n| {
            n.status
                .trim_start_matches("http://")
                .split(':')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ips.len(),
        2,
        "this system gives the lab's data planes no loopback addresses of their own"
    );
    let (state, detail) = start_y(plan_of(&endpoints, endpoints.to)).await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert!(
        detail.contains("dp-y-1: Kong 3.10.0, sync_status normal (cp-y-1, by ip)"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_planes_admin_url_in_the_plan_is_not_asked() {
    let lab = lab(LabOptions::default()).await;
    let endpoints = lab.endpoints();
    let mut plan = plan_of(&endpoints, endpoints.to);
    // Nothing listens there, as on a real data plane: the wait must not depend on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for node in &mut plan.clusters.y.nodes {
        if node.name.starts_with("dp-") {
            node.admin_url = Some(nowhere.clone());
        }
    }
    let (state, detail) = start_y(plan).await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert!(
        detail.contains("dp-y-2: Kong 3.10.0, sync_status normal (cp-y-1, by hostname)"),
        "{detail}"
    );
}

/// A hybrid lab whose first Y data plane reports to X's control plane (incompatible), and
/// a run of the plan's one wave start (every Y data plane) on it: the run, its step, and
/// the directory it lives in.
async fn incompatible_wave() -> (
    Lab,
    TestRun,
    kongup::plan::steps::StepRef,
    tempfile::TempDir,
) {
    use kongup::plan::model::{RollingSpec, Share};
    use kongup::plan::steps::{Phase, PhaseName, StepRef};
    let lab = lab(LabOptions {
        faults: vec![Fault::DpIncompatible],
        ..LabOptions::default()
    })
    .await;
    let endpoints = lab.endpoints();
    let mut plan = plan_of(&endpoints, endpoints.to);
    plan.rolling = Some(RollingSpec {
        waves: vec![Share::Percent(100)],
        between_waves: Duration::from_secs(1),
        confirm: Default::default(),
        drain: None,
        max_unavailable: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let mut kit = kit();
    let access = KongAccess::for_plan(&plan).unwrap().with_waits(waits());
    register_kong_actions(&mut kit.toolbox.actions, access);
    let mut expanded = expanded(
        Strategy::DualCluster,
        vec![step(
            "wave-1-start-y",
            StepKind::StartNodes {
                cluster: ClusterSide::Y,
                wave: Some(1),
            },
        )],
    );
    expanded.phases = vec![Phase {
        name: PhaseName::DataPlane,
        ..expanded.phases.remove(0)
    }];
    let wave_1 = StepRef::new(PhaseName::DataPlane, "wave-1-start-y");
    let run = TestRun::start(setup(dir.path(), plan, expanded, "v1", kit.toolbox));
    (lab, run, wave_1, dir)
}

/// In a wave, a data plane that does not come up is journaled as failed there
/// (`node-outcome`), so a retry runs the step's commands on it again and on no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_s_data_plane_that_does_not_come_up_is_journaled_as_failed_there() {
    use kongup::engine::journal::Entry;
    let (_lab, mut run, wave_1, _dir) = incompatible_wave().await;
    let detail = run
        .confirm_and_wait(&wave_1, StepState::Failed)
        .await
        .unwrap_or_default();
    assert!(detail.contains("dp-y-1 (cp-x-1 lists it"), "{detail}");
    let outcomes: Vec<(String, bool, Option<String>)> = run
        .journal()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::NodeOutcome {
                node, ok, reason, ..
            } => Some((node, ok, reason)),
            _ => None,
        })
        .collect();
    // dp-y-2 came up: journaled done, so a retry does not run its commands there again.
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(
        (outcomes[0].0.as_str(), outcomes[0].1),
        ("dp-y-2", true),
        "{outcomes:?}"
    );
    let (node, ok, reason) = &outcomes[1];
    assert_eq!((node.as_str(), *ok), ("dp-y-1", false));
    let reason = reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("did not answer with Kong 3.10.0 and be ready within 3s: ")
            && reason.contains("kong_version_incompatible"),
        "{reason}"
    );
    run.quit().await;
}

/// The data plane that did not come up, taken out of its wave: the step runs again and
/// its wait is for the wave's other data planes alone, which are up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_taken_out_of_its_wave_is_not_waited_for() {
    let (_lab, mut run, wave_1, dir) = incompatible_wave().await;
    run.confirm_and_wait(&wave_1, StepState::Failed).await;
    run.send(Command::TakeOut {
        step: wave_1.clone(),
        node: "dp-y-1".into(),
        reason: "reports to the old control plane; fixed after the upgrade".into(),
    })
    .await;
    let detail = run
        .wait_step(&wave_1, StepState::Succeeded)
        .await
        .unwrap_or_default();
    assert!(
        detail.contains("answer with Kong 3.10.0 and are ready") && !detail.contains("dp-y-1"),
        "{detail}"
    );
    let log =
        std::fs::read_to_string(dir.path().join("run/logs/data-plane-wave-1-start-y.log")).unwrap();
    assert!(
        log.contains("not waited for: dp-y-1: taken out (at data-plane/wave-1-start-y"),
        "{log}"
    );
    run.quit().await;
}

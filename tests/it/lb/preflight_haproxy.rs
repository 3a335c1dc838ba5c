//! Preflight reads the split back from a real HAProxy: server names the backend lacks fail
//! it, naming them, before anything moves; the right names pass and report the split.
//! The metrics check is skipped here (no step bakes with the gates), and says so.

use crate::support::engine::*;
use crate::support::kong_actions::{NodeBehaviour, fake_node};
use kongup::actions::kong::{KongAccess, register_kong_actions};
use kongup::engine::{Command, Event, StepState, Toolbox};
use kongup::plan::model::{
    DatabaseKind, HaproxyDriver, Mode, Node, Plan, Role, Strategy, TrafficDriverSpec,
};
use kongup::plan::steps::StepKind;
use kongup::plan::version::KongVersion;
use kongup::secrets::Redactor;
use kongup::testkit::lb::{Haproxy, LabUpstreams};

/// A DB-less plan whose one X node is `x_url`, behind HAProxy's backend `kong`.
fn plan(x_url: &str, haproxy: &Haproxy, x_servers: Vec<String>) -> Plan {
    let mut plan = plan_named("preflight-haproxy");
    plan.from = KongVersion::new(3, 9, 1);
    plan.to = KongVersion::new(3, 10, 0);
    plan.mode = Mode::Dbless;
    plan.database = DatabaseKind::Off;
    plan.clusters.x.nodes = vec![Node {
        name: "x1".into(),
        admin_url: Some(x_url.to_string()),
        status_url: Some(x_url.to_string()),
        proxy_url: Some(x_url.to_string()),
        role: Role::Traditional,
        executor: None,
    }];
    plan.traffic.driver = TrafficDriverSpec::Haproxy(HaproxyDriver {
        socket: haproxy.socket.display().to_string(),
        backend: "kong".into(),
        x_servers,
        y_servers: haproxy.y_names.clone(),
        node_servers: Default::default(),
    });
    plan
}

/// Runs the preflight of `plan` with the plan's own traffic driver; how it ended, and
/// its log lines.
async fn preflight(dir: &std::path::Path, plan: Plan) -> (StepState, String, Vec<String>) {
    let mut toolbox =
        Toolbox::for_plan(&plan, Redactor::default(), kongup::actions::builtins(None))
            .expect("the toolbox builds");
    register_kong_actions(
        &mut toolbox.actions,
        KongAccess::for_plan(&plan).expect("the Kong access builds"),
    );
    let mut run = TestRun::start(setup(
        dir,
        plan,
        expanded(
            Strategy::DualCluster,
            vec![step("preflight", StepKind::Preflight)],
        ),
        "v1",
        toolbox,
    ));
    run.send(Command::Confirm {
        step: cluster("preflight"),
        typed: None,
    })
    .await;
    let ended = run
        .wait_for("the preflight to end", |e| {
            matches!(e, Event::StepChanged { step, state: StepState::Succeeded | StepState::Failed, .. }
                if *step == cluster("preflight"))
        })
        .await;
    let Event::StepChanged { state, detail, .. } = ended else {
        unreachable!()
    };
    // The split preflight read, for the console's header, in the log with the rest.
    let logs = run
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Log(line) => Some(line.text.clone()),
            Event::TrafficRead(split) => Some(format!("read for the header: {split}")),
            _ => None,
        })
        .collect();
    run.quit().await;
    (state, detail.unwrap_or_default(), logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_names_the_backend_lacks_fail_preflight_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 1).await;
    let (x, y) = (upstreams.x_proxies(), upstreams.y_proxies());
    let haproxy = Haproxy::start(dir.path(), &x, &y);
    let (x_url, _node) = fake_node(NodeBehaviour::new("3.9.1", "traditional", "off")).await;

    let wrong = plan(&x_url, &haproxy, vec!["kong-x-1".into()]);
    let (state, detail, _) = preflight(dir.path(), wrong).await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(detail.starts_with("1 check(s) failed"), "{detail}");
    assert!(
        detail.contains(
            "the traffic driver cannot read the split: haproxy: backend kong has no server \
             named kong-x-1. Fix the plan's traffic.driver"
        ),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_server_names_pass_preflight_and_report_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 1).await;
    let (x, y) = (upstreams.x_proxies(), upstreams.y_proxies());
    let haproxy = Haproxy::start(dir.path(), &x, &y);
    let (x_url, _node) = fake_node(NodeBehaviour::new("3.9.1", "traditional", "off")).await;

    let right = plan(&x_url, &haproxy, haproxy.x_names.clone());
    let (state, detail, logs) = preflight(dir.path(), right).await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert!(
        detail.contains("traffic split read back (X 100% | Y 0%)"),
        "{detail}"
    );
    let expected = format!(
        "traffic: X 100% | Y 0%, as read back through HAProxy runtime API at {}: weights of \
         backend kong (X: x1; Y: y1)",
        haproxy.socket.display()
    );
    assert!(logs.contains(&expected), "{logs:#?}");
    assert!(
        logs.contains(&"read for the header: X 100% | Y 0%".to_string()),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l == "metrics: not checked, no step of the plan bakes with the gates on"),
        "{logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_runtime_api_socket_fails_preflight_with_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 1).await;
    let (x, y) = (upstreams.x_proxies(), upstreams.y_proxies());
    let haproxy = Haproxy::start(dir.path(), &x, &y);
    let (x_url, _node) = fake_node(NodeBehaviour::new("3.9.1", "traditional", "off")).await;

    let mut wrong_socket = plan(&x_url, &haproxy, haproxy.x_names.clone());
    let missing = dir.path().join("no-such.sock");
    if let TrafficDriverSpec::Haproxy(spec) = &mut wrong_socket.traffic.driver {
        spec.socket = missing.display().to_string();
    }
    let (state, detail, _) = preflight(dir.path(), wrong_socket).await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains(&format!(
            "could not connect to the runtime API at {}",
            missing.display()
        )) && detail.contains("stats socket"),
        "{detail}"
    );
}

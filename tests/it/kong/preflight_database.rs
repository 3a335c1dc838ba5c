//! Preflight on X's database, a real PostgreSQL: its server version against Kong's minimum
//! and documented range, a `kong migrations` run in progress, and on Kubernetes the Helm
//! chart's own migration Jobs.

use std::path::Path;
use std::time::Duration;

use crate::support::engine::*;
use crate::support::kong_actions::*;
use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::{Command, Event, StepState};
use kongup::plan::model::{
    DatabaseSpec, ExecutorSpec, KubectlTarget, Node, Plan, Role, SecretRef, Strategy,
};
use kongup::plan::steps::StepKind;
use kongup::plan::version::KongVersion;

fn plan_on(pg: &TestPg, dir: &Path, x_url: &str) -> Plan {
    let mut plan = plan_named("preflight-db");
    plan.from = KongVersion::new(3, 9, 1);
    plan.to = KongVersion::new(3, 10, 0);
    plan.clusters.x.database = Some(DatabaseSpec {
        host: HOST.into(),
        port: pg.port,
        name: "kong".into(),
        user: SUPERUSER.into(),
        password: Some(SecretRef::File(secret_file(dir, "pg-password", PASSWORD))),
        tls: Default::default(),
    });
    plan.clusters.x.nodes = vec![Node {
        name: "x1".into(),
        admin_url: Some(x_url.into()),
        status_url: Some(x_url.into()),
        proxy_url: Some(x_url.into()),
        role: Role::Traditional,
        executor: None,
    }];
    plan
}

async fn preflight(dir: &Path, plan: Plan) -> (TestRun, StepState, String) {
    let mut kit = kit();
    let waits = Waits {
        nodes: Duration::from_secs(2),
        poll: Duration::from_millis(100),
        progress: Duration::from_millis(500),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    };
    let access = KongAccess::for_plan(&plan).unwrap().with_waits(waits);
    register_kong_actions(&mut kit.toolbox.actions, access);
    let mut run = TestRun::start(setup(
        dir,
        plan,
        expanded(
            Strategy::InPlace,
            vec![step("preflight", StepKind::Preflight)],
        ),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::Confirm {
        step: cluster("preflight"),
        typed: None,
    })
    .await;
    let event = run
        .wait_for("preflight to end", |e| {
            matches!(e, Event::StepChanged { step, state, .. }
                if *step == cluster("preflight") && matches!(state, StepState::Succeeded | StepState::Failed))
        })
        .await;
    let Event::StepChanged { state, detail, .. } = event else {
        unreachable!()
    };
    (run, state, detail.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reads_the_postgresql_version_and_refuses_a_migration_in_progress() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    pg.psql(
        "kong",
        "INSERT INTO locks (key, owner, ttl) VALUES ('migrations', 'helm-pre-upgrade', now() + interval '1 hour')",
    );
    let dir = tempfile::tempdir().unwrap();
    let (x_url, _x) = fake_node(NodeBehaviour::new("3.9.1", "traditional", "postgres")).await;
    let mut plan = plan_on(&pg, dir.path(), &x_url);
    plan.executors.insert(
        "k8s-kong".into(),
        ExecutorSpec::Kubectl {
            context: None,
            namespace: Some("kong".into()),
            target: KubectlTarget::Selector("app=kong".into()),
            container: None,
        },
    );
    let (run, state, detail) = preflight(dir.path(), plan).await;

    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains("another `kong migrations` run holds the migrations lock")
            && detail.contains("owner helm-pre-upgrade"),
        "{detail}"
    );
    let helm: Vec<String> = run
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Warning(w) if w.contains("Helm chart") => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert!(
        helm.len() == 1
            && helm[0]
                .contains("--set migrations.preUpgrade=false --set migrations.postUpgrade=false"),
        "{helm:?}"
    );
    // The server's own words for its version, e.g. "15.14 (Debian 15.14-1.pgdg120+1)".
    let server = pg.psql("kong", "SHOW server_version");
    let release = server.split_whitespace().next().unwrap();
    let logs = all_logs(&run.run_dir);
    assert!(
        logs.contains(&format!(
            "PostgreSQL {release}: Kong's minimum is 9.5; documented for Kong 3.9: 12 to 16, 3.10: 12 to 16"
        )),
        "{logs}"
    );
    run.quit().await;

    // Without the lock nor kubectl, the same database passes.
    pg.psql("kong", "DELETE FROM locks");
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_on(&pg, dir.path(), &x_url);
    let (run, state, detail) = preflight(dir.path(), plan).await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert!(
        detail.contains(&format!("PostgreSQL {release}"))
            && detail.contains("no migrations run in progress"),
        "{detail}"
    );
    run.quit().await;
}

//! The migrations step against another `kong migrations` run on the same database: a
//! real PostgreSQL, the `kong` stand-in as both the other run and the plan's kong binary.
//! Kong never renews its lock, so a run longer than its `--lock-timeout` goes on without
//! it (Kong issue 12978): kongup looks at the lock and at Kong's sessions before every
//! attempt.

use std::path::Path;
use std::time::Duration;

use crate::support::engine::*;
use crate::support::kong_actions::*;
use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::{Command, Event, StepState};
use kongup::exec::OutputLine;
use kongup::exec::local::LocalExecutor;
use kongup::kong::migrations;
use kongup::kong::pg::PgTarget;
use kongup::plan::model::{DatabaseSpec, Plan, SecretRef, Strategy};
use kongup::plan::steps::{MigrationsCommand, StepKind};
use kongup::plan::version::KongVersion;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn plan_on(pg: &TestPg, dir: &Path) -> Plan {
    let mut plan = plan_named("lock");
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
    plan.migrations.kong_binary = standin();
    plan.migrations.db_timeout = 60;
    plan.migrations.timeout = Duration::from_secs(120);
    plan
}

fn kit_for(plan: &Plan) -> Kit {
    let mut kit = kit();
    let waits = Waits {
        nodes: Duration::from_secs(2),
        poll: Duration::from_millis(100),
        progress: Duration::from_millis(500),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    };
    let access = KongAccess::for_plan(plan).unwrap().with_waits(waits);
    register_kong_actions(&mut kit.toolbox.actions, access);
    kit
}

async fn ended(run: &mut TestRun, id: &str) -> (StepState, String) {
    let event = run
        .wait_for(&format!("{id} to end"), |e| {
            matches!(e, Event::StepChanged { step, state, .. }
                if *step == cluster(id) && matches!(state, StepState::Succeeded | StepState::Failed))
        })
        .await;
    match event {
        Event::StepChanged { state, detail, .. } => (state, detail.unwrap_or_default()),
        _ => unreachable!(),
    }
}

fn target(pg: &TestPg) -> PgTarget {
    PgTarget {
        host: HOST.into(),
        port: pg.port,
        database: "kong".into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: Some("test".into()),
        connect_timeout: Duration::from_secs(10),
        query_timeout: Duration::from_secs(10),
        tls: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_is_refused_while_another_run_outlives_its_lock_and_runs_once_it_ended() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let dir = tempfile::tempdir().unwrap();
    let t = target(&pg);

    // Another runner with a lock shorter than its migration, as Kong's defaults make it
    // (60 s of lock, here 1 s), still in its first migration.
    let mut other = plan_on(&pg, dir.path()).migrations;
    other.extra_args = vec!["--lock-timeout".into(), "1".into()];
    let stop_other = CancellationToken::new();
    let other_run = {
        let cancel = stop_other.clone();
        let mut env = t.kong_env();
        env.push(("KONG_STANDIN_SLEEP".into(), "120".into()));
        tokio::spawn(async move {
            let (tx, _rx) = mpsc::channel::<OutputLine>(1024);
            migrations::run(
                &LocalExecutor::new(),
                &other,
                MigrationsCommand::Up,
                env,
                tx,
                cancel,
            )
            .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let activity = migrations::read_activity(&t).await.unwrap();
        if activity.lock.as_ref().is_some_and(|l| l.expired)
            && let Some(session) = activity.sessions.first()
        {
            break session.pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other run never outlived its lock: {activity:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let plan = plan_on(&pg, dir.path());
    let kit = kit_for(&plan);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(
            Strategy::BlueGreen,
            vec![step(
                "migrations-up",
                StepKind::Migrations(MigrationsCommand::Up),
            )],
        ),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::Confirm {
        step: cluster("migrations-up"),
        typed: None,
    })
    .await;
    let (state, detail) = ended(&mut run, "migrations-up").await;
    assert_eq!(state, StepState::Failed);
    assert!(detail.starts_with("kongup did not start `"), "{detail}");
    assert!(
        detail.contains("is still going on")
            && detail.contains(&format!("pid {pid} from 127.0.0.1 (kong, active"))
            && detail.contains("12978"),
        "{detail}"
    );
    assert_eq!(
        pg.psql(
            "kong",
            "SELECT coalesce(pending, '{}') FROM schema_meta WHERE subsystem = 'core'"
        ),
        "{}",
        "kongup ran nothing beside the other run"
    );

    // The other run ends (stopped, its session gone): the retry goes through.
    stop_other.cancel();
    assert!(other_run.await.unwrap().is_err());
    pg.psql("kong", &format!("SELECT pg_terminate_backend({pid})"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !migrations::read_activity(&t)
        .await
        .unwrap()
        .sessions
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "the session stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.send(Command::Retry {
        step: cluster("migrations-up"),
        typed: None,
    })
    .await;
    let (state, detail) = ended(&mut run, "migrations-up").await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    let logs = all_logs(&run.run_dir);
    assert!(
        logs.contains("migrations up --db-timeout 60 --lock-timeout 120"),
        "{logs}"
    );
    run.quit().await;
}

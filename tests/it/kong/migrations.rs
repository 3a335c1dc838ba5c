//! `kong migrations up/finish` through an executor, against a real PostgreSQL and the
//! `kong` stand-in (tests/fixtures/kong-standin), with the checks of `schema_meta` after.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use kongup::exec::OutputLine;
use kongup::exec::local::LocalExecutor;
use kongup::kong::migrations::{self, Diagnosis, MigrationsError, VerifyError};
use kongup::kong::pg::{self, PgTarget};
use kongup::plan::model::MigrationsSpec;
use kongup::plan::steps::MigrationsCommand;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn standin() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kong-standin")
        .display()
        .to_string()
}

fn target(pg: &TestPg, database: &str) -> PgTarget {
    PgTarget {
        host: HOST.into(),
        port: pg.port,
        database: database.into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: Some("test".into()),
        connect_timeout: Duration::from_secs(10),
        query_timeout: Duration::from_secs(10),
        tls: Default::default(),
    }
}

fn spec() -> MigrationsSpec {
    MigrationsSpec {
        kong_binary: standin(),
        extra_args: vec!["-c".into(), "/etc/kong/kong.conf".into()],
        db_timeout: 120,
        force: false,
        timeout: Duration::from_secs(60),
    }
}

struct Run {
    result: Result<migrations::MigrationsRun, MigrationsError>,
    lines: Vec<String>,
}

async fn run(
    spec: &MigrationsSpec,
    command: MigrationsCommand,
    target: &PgTarget,
    log: &std::path::Path,
) -> Run {
    let (tx, mut rx) = mpsc::channel::<OutputLine>(1024);
    let mut env = target.kong_env();
    env.push(("KONG_STANDIN_LOG".into(), log.display().to_string()));
    let collect = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line.text);
        }
        lines
    });
    let result = migrations::run(
        &LocalExecutor::new(),
        spec,
        command,
        env,
        tx,
        CancellationToken::new(),
    )
    .await;
    Run {
        result,
        lines: collect.await.unwrap(),
    }
}

#[tokio::test]
async fn up_then_finish_moves_pending_to_executed_and_each_is_verified() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("invocations");

    let before = pg::schema_state(&t).await.unwrap();
    let up = run(&spec(), MigrationsCommand::Up, &t, &log).await;
    let ran = up.result.unwrap();
    assert_eq!(
        ran.command,
        format!(
            "{} migrations up -c /etc/kong/kong.conf --db-timeout 120",
            standin()
        )
    );
    assert!(
        up.lines
            .iter()
            .any(|l| l == "core migrated up to: 025_390_to_3100 (pending)"),
        "{:?}",
        up.lines
    );
    let after_up = pg::schema_state(&t).await.unwrap();
    let note = migrations::verify_after_up(&before, &after_up, &t.address()).unwrap();
    assert!(note.contains("core: 025_390_to_3100"), "{note}");
    // The freshly pending migration is exactly what a finish check must refuse.
    let error = migrations::verify_after_finish(&after_up, &t.address()).unwrap_err();
    assert!(
        matches!(error, VerifyError::StillPending { count: 1, .. }),
        "{error:?}"
    );

    let finish = run(&spec(), MigrationsCommand::Finish, &t, &log).await;
    finish.result.unwrap();
    let note = migrations::verify(&t, MigrationsCommand::Finish, &after_up)
        .await
        .unwrap();
    assert!(note.contains("025_390_to_3100"), "{note}");

    let invocations = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        invocations.lines().collect::<Vec<_>>(),
        [
            "migrations up -c /etc/kong/kong.conf --db-timeout 120",
            "migrations finish -c /etc/kong/kong.conf --db-timeout 120"
        ]
    );
    assert!(!invocations.contains(PASSWORD), "the password reached argv");
}

#[tokio::test]
async fn up_over_an_unfinished_upgrade_explains_finish() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::Pending);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let up = run(&spec(), MigrationsCommand::Up, &t, &dir.path().join("log")).await;
    let error = up.result.unwrap_err();
    let MigrationsError::Failed { diagnosis, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*diagnosis, Some(Diagnosis::PendingBlocksUp));
    let text = error.to_string();
    assert!(text.contains("exited with 1"), "{text}");
    assert!(
        text.contains("`kong migrations finish` of that upgrade never ran"),
        "{text}"
    );
}

#[tokio::test]
async fn a_held_lock_is_a_failure_even_though_kong_exits_0() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    pg.psql(
        "kong",
        "INSERT INTO locks VALUES ('migrations', 'other-node', now() + interval '10 minutes')",
    );
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let up = run(&spec(), MigrationsCommand::Up, &t, &dir.path().join("log")).await;
    assert!(
        up.lines
            .iter()
            .any(|l| l == "aborted: another node is performing database changes"),
        "{:?}",
        up.lines
    );
    let error = up.result.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("another node holds the migrations lock"),
        "{text}"
    );
    assert!(text.contains("SELECT key, owner, ttl"), "{text}");
    assert!(
        text.contains("DELETE FROM locks WHERE key = 'migrations'"),
        "{text}"
    );

    let lock = migrations::read_lock(&t).await.unwrap().unwrap();
    assert_eq!(lock.owner.as_deref(), Some("other-node"));
    assert!(!lock.expired);
    // Nothing ran.
    assert_eq!(pg::schema_state(&t).await.unwrap().pending_total(), 0);

    // An expired lock is cleared by Kong itself, and the run goes through.
    pg.psql(
        "kong",
        "UPDATE locks SET ttl = now() - interval '1 minute' WHERE key = 'migrations'",
    );
    assert!(migrations::read_lock(&t).await.unwrap().unwrap().expired);
    run(&spec(), MigrationsCommand::Up, &t, &dir.path().join("log"))
        .await
        .result
        .unwrap();
    assert_eq!(migrations::read_lock(&t).await.unwrap(), None);
}

#[tokio::test]
async fn up_that_records_nothing_is_caught() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let before = pg::schema_state(&t).await.unwrap();
    let up = run(&spec(), MigrationsCommand::Up, &t, &dir.path().join("log")).await;
    up.result.unwrap();
    assert!(
        up.lines
            .iter()
            .any(|l| l == "Database is already up-to-date"),
        "{:?}",
        up.lines
    );
    let error = migrations::verify(&t, MigrationsCommand::Up, &before)
        .await
        .unwrap_err();
    assert!(
        matches!(error, VerifyError::NothingRecorded { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("another database"), "{error}");
}

#[tokio::test]
async fn an_empty_database_is_named_and_not_bootstrapped() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::NeedsBootstrap);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let error = run(&spec(), MigrationsCommand::Up, &t, &dir.path().join("log"))
        .await
        .result
        .unwrap_err();
    assert!(
        matches!(
            error,
            MigrationsError::Failed {
                diagnosis: Some(Diagnosis::NeedsBootstrap),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("never runs `bootstrap`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_migration_past_its_timeout_is_stopped() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut spec = spec();
    spec.timeout = Duration::from_millis(1500);
    let (tx, _rx) = mpsc::channel::<OutputLine>(1024);
    let mut env = t.kong_env();
    env.push(("KONG_STANDIN_SLEEP".into(), "30".into()));
    env.push(("KONG_STANDIN_LOG".into(), log.display().to_string()));
    let started = std::time::Instant::now();
    let error = migrations::run(
        &LocalExecutor::new(),
        &spec,
        MigrationsCommand::Up,
        env,
        tx,
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    let text = error.to_string();
    assert!(text.contains("did not finish within 1s 500ms"), "{text}");
    assert!(text.contains("db_timeout"), "{text}");
}

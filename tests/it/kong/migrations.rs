//! `kong migrations up/finish` through an executor, against a real PostgreSQL and the
//! `kong` stand-in (tests/fixtures/kong-standin), with the checks of `schema_meta` after.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use kongup::exec::OutputLine;
use kongup::exec::local::LocalExecutor;
use kongup::kong::migrations::{self, Conclusion, MigrationsError, VerifyError};
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
    run_with(spec, command, target, log, &[]).await
}

async fn run_with(
    spec: &MigrationsSpec,
    command: MigrationsCommand,
    target: &PgTarget,
    log: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> Run {
    let (tx, mut rx) = mpsc::channel::<OutputLine>(1024);
    let mut env = target.kong_env();
    env.push(("KONG_STANDIN_LOG".into(), log.display().to_string()));
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
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
            "{} migrations up -c /etc/kong/kong.conf --db-timeout 120 --lock-timeout 60",
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
            "migrations up -c /etc/kong/kong.conf --db-timeout 120 --lock-timeout 60",
            "migrations finish -c /etc/kong/kong.conf --db-timeout 120 --lock-timeout 60"
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
    let MigrationsError::Failed { conclusion, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*conclusion, Conclusion::PendingBlocksUp);
    let text = error.to_string();
    assert!(text.contains("exited with 1"), "{text}");
    assert!(
        text.contains("`kong migrations finish` of that upgrade never ran"),
        "{text}"
    );
}

/// Kong's stderr, as the corpus has it (the stand-in prints the corpus's lines).
fn stderr_of(corpus_run: &str) -> String {
    kongup::testkit::corpus::cli(&kongup::testkit::corpus::file(
        "3.10.0",
        &format!("migrations/{corpus_run}.cli"),
    ))
    .stderr
}

#[tokio::test]
async fn waiting_out_the_lock_is_told_apart_from_a_slow_query() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    pg.psql(
        "kong",
        "INSERT INTO locks VALUES ('migrations', 'other-node', now() + interval '10 minutes')",
    );
    let mut spec = spec();
    spec.extra_args = vec!["--lock-timeout".into(), "1".into()];
    let up = run(&spec, MigrationsCommand::Up, &t, &dir.path().join("log")).await;
    assert_eq!(
        up.lines.join("\n") + "\n",
        stderr_of("up_locked"),
        "Kong's own words"
    );
    let error = up.result.unwrap_err();
    let MigrationsError::Failed { conclusion, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*conclusion, Conclusion::LockWaitTimedOut);
    let text = error.to_string();
    assert!(
        text.contains("Kong ran nothing: `up` waited its --lock-timeout (1s)")
            && text.contains("not a slow query"),
        "{text}"
    );
    assert_eq!(pg::schema_state(&t).await.unwrap().pending_total(), 0);

    // The same `Error: ... timeout` shape from a migration's query past --db-timeout.
    pg.psql("kong", "DELETE FROM locks");
    let mut spec = self::spec();
    spec.extra_args = vec!["--db-timeout".into(), "1".into()];
    let (tx, mut rx) = mpsc::channel::<OutputLine>(1024);
    let mut env = t.kong_env();
    env.push(("KONG_STANDIN_SLEEP".into(), "5".into()));
    let result = migrations::run(
        &LocalExecutor::new(),
        &spec,
        MigrationsCommand::Up,
        env,
        tx,
        CancellationToken::new(),
    )
    .await;
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push(line.text);
    }
    assert!(
        lines.iter().any(|l| l
            == "Error: [PostgreSQL error] cluster_mutex callback threw an error: /usr/local/share/lua/5.1/kong/cmd/utils/migrations.lua:104: [PostgreSQL error] failed to run migration '025_390_to_3100' up: receive_message: failed to get type: timeout"),
        "{lines:#?}"
    );
    let error = result.unwrap_err();
    let MigrationsError::Failed { conclusion, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*conclusion, Conclusion::DbTimeout);
    let text = error.to_string();
    assert!(
        text.contains("ran past Kong's database timeout (--db-timeout 1s)")
            && text.contains("pg_stat_activity"),
        "{text}"
    );
    // Kong's callback failed, so it released its lock.
    assert_eq!(migrations::read_activity(&t).await.unwrap().lock, None);
}

#[tokio::test]
async fn a_lock_that_expires_while_up_waits_means_nothing_ran_though_kong_exits_0() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    // Another run's row; it expires while `up` waits for it, and Kong's `up` gives up,
    // although that run may well go on (Kong never renews its lock).
    pg.psql(
        "kong",
        "INSERT INTO locks VALUES ('migrations', 'other-node', now() + interval '10 minutes')",
    );
    let mut spec = spec();
    spec.extra_args = vec!["--lock-timeout".into(), "30".into()];
    let waiting = dir.path().join("waiting");
    let expire = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !waiting.exists() {
            assert!(std::time::Instant::now() < deadline, "up never waited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pg.psql("kong", "UPDATE locks SET ttl = now() - interval '1 second'");
    };
    let (log, waiting_env) = (dir.path().join("log"), waiting.display().to_string());
    let env = [("KONG_STANDIN_WAITING", waiting_env.as_str())];
    let (up, ()) = tokio::join!(
        run_with(&spec, MigrationsCommand::Up, &t, &log, &env),
        expire
    );
    assert_eq!(
        up.lines,
        ["aborted: another node is performing database changes"]
    );
    let error = up.result.unwrap_err();
    let MigrationsError::Failed { conclusion, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*conclusion, Conclusion::LockHeld);
    let text = error.to_string();
    assert!(text.contains("exited 0 but did nothing"), "{text}");
    assert!(
        text.contains("until the row was released or its ttl passed"),
        "{text}"
    );
    // Waiting past the ttl is not called safe: the row's expiry proves nothing.
    assert!(
        text.contains("an expired row does not mean nothing runs")
            && text.contains("pg_stat_activity"),
        "{text}"
    );
    assert!(!text.contains("safe fix"), "{text}");
    assert_eq!(pg::schema_state(&t).await.unwrap().pending_total(), 0);

    // `finish` does not wait at all.
    pg.psql(
        "kong",
        "INSERT INTO locks VALUES ('migrations', 'other-node', now() + interval '10 minutes') ON CONFLICT (key) DO UPDATE SET ttl = EXCLUDED.ttl",
    );
    let finish = run(
        &spec,
        MigrationsCommand::Finish,
        &t,
        &dir.path().join("log"),
    )
    .await;
    let error = finish.result.unwrap_err();
    assert!(
        matches!(
            error,
            MigrationsError::Failed {
                conclusion: Conclusion::LockHeld,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("`finish` found the migrations lock held by another run and gave up at once"),
        "{error}"
    );
}

#[tokio::test]
async fn finish_before_up_did_nothing_and_says_so() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let t = target(&pg, "kong");
    let dir = tempfile::tempdir().unwrap();
    let finish = run(
        &spec(),
        MigrationsCommand::Finish,
        &t,
        &dir.path().join("log"),
    )
    .await;
    assert_eq!(
        finish.lines,
        [
            "",
            "New migrations available; run 'kong migrations up' to proceed"
        ]
    );
    let error = finish.result.unwrap_err();
    assert!(
        matches!(
            error,
            MigrationsError::Failed {
                conclusion: Conclusion::UpFirst,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("run the up step first"),
        "{error}"
    );
}

/// Polls `read_activity` until `ready` holds, for at most 20 s.
async fn activity_when(
    t: &PgTarget,
    what: &str,
    ready: impl Fn(&migrations::MigrationsActivity) -> bool,
) -> migrations::MigrationsActivity {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let activity = migrations::read_activity(t).await.unwrap();
        if ready(&activity) {
            return activity;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {activity:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_that_outlives_its_lock_still_shows_and_is_refused() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let t = target(&pg, "kong");
    // A run with Kong's old habits: a lock shorter than the migration.
    let mut spec = spec();
    spec.extra_args = vec!["--lock-timeout".into(), "1".into()];
    let cancel = CancellationToken::new();
    let running = {
        let (spec, cancel) = (spec.clone(), cancel.clone());
        let mut env = t.kong_env();
        env.push(("KONG_STANDIN_SLEEP".into(), "60".into()));
        tokio::spawn(async move {
            let (tx, _rx) = mpsc::channel::<OutputLine>(1024);
            migrations::run(
                &LocalExecutor::new(),
                &spec,
                MigrationsCommand::Up,
                env,
                tx,
                cancel,
            )
            .await
        })
    };
    // Its row expires a second after it was taken; its migration goes on.
    let outlived = activity_when(&t, "the run's session past its expired lock", |a| {
        a.lock.as_ref().is_some_and(|l| l.expired) && !a.sessions.is_empty()
    })
    .await;
    let session = &outlived.sessions[0];
    assert_eq!(session.application_name, "kong");
    assert!(session.query.contains("DO $$"), "{session:?}");
    let refusal = migrations::check_not_running(&outlived, &t.address())
        .unwrap_err()
        .to_string();
    assert!(
        refusal.contains("is still going on")
            && refusal.contains(&format!("pid {}", session.pid))
            && refusal.contains("12978"),
        "{refusal}"
    );

    cancel.cancel();
    assert!(running.await.unwrap().is_err());
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
                conclusion: Conclusion::NeedsBootstrap,
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
    assert!(text.contains("raise migrations.timeout"), "{text}");
}

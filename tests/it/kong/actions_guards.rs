//! The Kong actions where they stop a run: the freeze guard before a traffic stage, a
//! failing smoke test, preflight refusals, an incompatible data plane, nodes that never
//! come up; and the rollback that restores the backup over the live database.

use crate::support;

use std::path::Path;
use std::time::Duration;

use crate::support::engine::*;
use crate::support::kong_actions::*;
use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use axum::Router;
use axum::routing::get;
use kongup::actions::kong::facts::{self, DATABASE_BACKUP};
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::event::RollbackProgress;
use kongup::engine::{Command, Event, StepState};
use kongup::lb::Split;
use kongup::plan::model::{DatabaseSpec, Node, Plan, Role, SecretRef, SmokeTest, Strategy};
use kongup::plan::steps::{BackupKind, ClusterSide, MigrationsCommand, RollbackKind, StepKind};
use kongup::plan::version::KongVersion;

fn waits() -> Waits {
    Waits {
        nodes: Duration::from_secs(2),
        poll: Duration::from_millis(100),
        progress: Duration::from_millis(500),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    }
}

fn node(name: &str, url: &str, role: Role) -> Node {
    Node {
        name: name.into(),
        admin_url: (role != Role::DataPlane).then(|| url.to_string()),
        status_url: Some(url.to_string()),
        proxy_url: (role != Role::ControlPlane).then(|| url.to_string()),
        role,
        executor: None,
    }
}

/// A plan on `pg`'s database `kong`, the password in a file.
fn plan_on(pg: &TestPg, dir: &Path, name: &str) -> Plan {
    let mut plan = plan_named(name);
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
    plan
}

/// The test kit's toolbox (stand-in actions, a remembering load balancer) with the Kong
/// actions registered over it.
fn kit_for(plan: &Plan) -> Kit {
    let mut kit = kit();
    let access = KongAccess::for_plan(plan).unwrap().with_waits(waits());
    register_kong_actions(&mut kit.toolbox.actions, access);
    kit
}

async fn confirm(run: &mut TestRun, id: &str, typed: Option<&str>) {
    run.send(Command::Confirm {
        step: cluster(id),
        typed: typed.map(str::to_string),
    })
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freeze_guard_stops_a_traffic_stage_after_a_write_and_lets_it_go_once_undone() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_on(&pg, dir.path(), "guarded");
    let kit = kit_for(&plan);
    let steps = vec![
        step("freeze-writes", StepKind::FreezeWrites),
        step(
            "shift-traffic-50",
            StepKind::ShiftTraffic {
                y_percent: 50,
                bake: Duration::ZERO,
            },
        ),
    ];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::BlueGreen, steps),
        "v1",
        kit.toolbox.clone(),
    ));
    confirm(&mut run, "freeze-writes", None).await;
    assert_eq!(
        ended(&mut run, "freeze-writes").await.0,
        StepState::Succeeded
    );

    pg.psql(
        "kong",
        "INSERT INTO routes (id, name, paths) VALUES ('b0000000-0000-4000-8000-000000000009', 'sneaky', '{/sneaky}')",
    );
    confirm(&mut run, "shift-traffic-50", None).await;
    let (state, detail) = ended(&mut run, "shift-traffic-50").await;
    assert_eq!(state, StepState::Failed);
    assert!(
        detail.contains("the configuration changed since the freeze")
            && detail.contains("routes: 2 → 3"),
        "{detail}"
    );
    assert!(
        kit.driver.sets.lock().unwrap().is_empty(),
        "no traffic moved"
    );

    // The write is undone: the same stage goes through, and traffic moves.
    pg.psql("kong", "DELETE FROM routes WHERE name = 'sneaky'");
    run.send(Command::Retry {
        step: cluster("shift-traffic-50"),
        typed: None,
    })
    .await;
    let (state, detail) = ended(&mut run, "shift-traffic-50").await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::to_y(50)));
    assert!(
        all_logs(&run.run_dir).contains("freeze guard: configuration unchanged since the freeze")
    );
    run.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_migrations_rewrite_are_no_write_for_the_guard() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let dir = tempfile::tempdir().unwrap();
    // A `kong` whose `up` also rewrites a route, as some of Kong's migrations do.
    let kong = dir.path().join("kong");
    std::fs::write(
        &kong,
        format!(
            "#!/bin/sh\n{} \"$@\" || exit $?\n\
             PGPASSWORD=\"$KONG_PG_PASSWORD\" psql -X -q -h \"$KONG_PG_HOST\" -p \"$KONG_PG_PORT\" \
             -U \"$KONG_PG_USER\" -d \"$KONG_PG_DATABASE\" \
             -c \"UPDATE routes SET paths = '{{/orders/v2}}' WHERE name = 'orders-route'\"\n",
            standin()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&kong, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut plan = plan_on(&pg, dir.path(), "rewrites");
    plan.migrations.kong_binary = kong.display().to_string();
    let kit = kit_for(&plan);
    let steps = vec![
        step("freeze-writes", StepKind::FreezeWrites),
        step("migrations-up", StepKind::Migrations(MigrationsCommand::Up)),
        step(
            "shift-traffic-50",
            StepKind::ShiftTraffic {
                y_percent: 50,
                bake: Duration::ZERO,
            },
        ),
    ];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::BlueGreen, steps),
        "v1",
        kit.toolbox.clone(),
    ));
    for id in ["freeze-writes", "migrations-up", "shift-traffic-50"] {
        confirm(&mut run, id, None).await;
        let (state, detail) = ended(&mut run, id).await;
        assert_eq!(state, StepState::Succeeded, "{id}: {detail}");
    }
    assert_eq!(
        pg.psql(
            "kong",
            "SELECT paths FROM routes WHERE name = 'orders-route'"
        ),
        "{/orders/v2}"
    );
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::to_y(50)));
    let fingerprints = run
        .journal()
        .iter()
        .filter(|r| matches!(&r.entry, kongup::engine::journal::Entry::Fact { key, .. } if key == facts::FREEZE_FINGERPRINT))
        .count();
    assert_eq!(fingerprints, 2, "taken at the freeze and again after `up`");
    assert!(
        all_logs(&run.run_dir)
            .contains("configuration fingerprint taken again after the migrations")
    );
    run.quit().await;
}

fn smoke(name: &str, expect_status: u16, key_file: Option<&Path>) -> SmokeTest {
    SmokeTest {
        name: name.into(),
        method: "GET".into(),
        path: "/orders".into(),
        headers: Default::default(),
        secret_headers: key_file
            .map(|f| [("apikey".to_string(), SecretRef::File(f.to_path_buf()))].into())
            .unwrap_or_default(),
        body: None,
        expect_status,
        expect_headers: [("content-type".to_string(), "application/json".to_string())].into(),
        expect_body_contains: None,
    }
}

#[tokio::test]
async fn a_failing_smoke_test_fails_the_step_and_says_what_differed() {
    let dir = tempfile::tempdir().unwrap();
    // Y forgot key-auth: everyone gets in.
    let mut behaviour = NodeBehaviour::new("3.10.0", "traditional", "postgres");
    behaviour.open_proxy = true;
    let (y_url, _y) = fake_node(behaviour).await;
    let key = secret_file(dir.path(), "api-key", API_KEY);
    let mut plan = plan_named("smoke");
    plan.clusters.y.nodes = vec![node("y1", &y_url, Role::Traditional)];
    plan.smoke_tests = vec![
        smoke("rejects without a key", 401, None),
        smoke("accepts the key", 200, Some(&key)),
    ];
    let kit = kit_for(&plan);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(
            Strategy::DualCluster,
            vec![step("staging-tests", StepKind::SmokeTests)],
        ),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "staging-tests", None).await;
    let (state, detail) = ended(&mut run, "staging-tests").await;
    assert_eq!(state, StepState::Failed);
    assert!(
        detail.starts_with("1 of 2 smoke test run(s) failed: \"rejects without a key\" via y/y1: status 200 (expected 401)"),
        "{detail}"
    );
    let logs = all_logs(&run.run_dir);
    assert!(
        logs.contains(
            "FAIL \"rejects without a key\" via y/y1: GET /orders: status 200 (expected 401)"
        ),
        "{logs}"
    );
    assert!(logs.contains("PASS \"accepts the key\" via y/y1"), "{logs}");
    let journal = std::fs::read_to_string(run.run_dir.join("journal.jsonl")).unwrap();
    assert!(!journal.contains(API_KEY) && !logs.contains(API_KEY));
    run.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_after_finish_restores_the_backup_over_the_live_database() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_on(&pg, dir.path(), "restore");
    let kit = kit_for(&plan);
    let mut finish = with_rollback(
        step(
            "migrations-finish",
            StepKind::Migrations(MigrationsCommand::Finish),
        ),
        RollbackKind::RestoreDatabase,
    );
    finish.irreversible = true;
    // A step after the finish: a run that is done has nothing to roll back.
    let steps = vec![
        step("backup", StepKind::Backup(BackupKind::Database)),
        step("migrations-up", StepKind::Migrations(MigrationsCommand::Up)),
        finish,
        scripted("tidy-up"),
    ];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::InPlace, steps),
        "v1",
        kit.toolbox,
    ));
    for (id, typed) in [
        ("backup", None),
        ("migrations-up", None),
        ("migrations-finish", Some("restore")),
    ] {
        confirm(&mut run, id, typed).await;
        let (state, detail) = ended(&mut run, id).await;
        assert_eq!(state, StepState::Succeeded, "{id}: {detail}");
    }
    let core = || {
        pg.psql(
            "kong",
            "SELECT last_executed FROM schema_meta WHERE subsystem = 'core'",
        )
    };
    assert_eq!(core(), "025_390_to_3100");
    // Written after the backup: the restore takes it away (the safety dump keeps it).
    pg.psql(
        "kong",
        "INSERT INTO routes (id, name, paths) VALUES ('b0000000-0000-4000-8000-000000000007', 'late', '{/late}')",
    );

    run.send(Command::Rollback).await;
    let planned = run
        .wait_for("the rollback plan", |e| {
            matches!(e, Event::RollbackProgress(RollbackProgress::Planned { .. }))
        })
        .await;
    let Event::RollbackProgress(RollbackProgress::Planned { steps, .. }) = planned else {
        unreachable!()
    };
    assert_eq!(steps, vec![rollback_ref("migrations-finish")]);
    run.send(Command::Confirm {
        step: rollback_ref("migrations-finish"),
        typed: Some("restore".into()),
    })
    .await;
    let detail = run
        .wait_step(&rollback_ref("migrations-finish"), StepState::Succeeded)
        .await
        .unwrap();
    assert!(
        detail.contains("schema_meta now: 024_380_to_390, none pending"),
        "{detail}"
    );
    assert_eq!(core(), "024_380_to_390");
    assert_eq!(
        pg.psql(
            "kong",
            "SELECT string_agg(name, ',' ORDER BY name) FROM routes"
        ),
        "billing-route,orders-route"
    );
    let (_, safety) = facts::recorded_backup(&run.run_dir, "backup.safety-before-restore")
        .unwrap()
        .expect("the safety dump is recorded");
    assert_eq!(sha256_file(&safety.path), safety.sha256);
    let (_, backup) = facts::recorded_backup(&run.run_dir, DATABASE_BACKUP)
        .unwrap()
        .unwrap();
    assert_ne!(safety.path, backup.path);
    run.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_names_a_version_mismatch_and_an_unfinished_upgrade() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::Pending);
    let dir = tempfile::tempdir().unwrap();
    let (x_url, _x) = fake_node(NodeBehaviour::new("3.9.0", "traditional", "postgres")).await;
    let mut plan = plan_on(&pg, dir.path(), "preflight");
    plan.clusters.x.nodes = vec![node("x1", &x_url, Role::Traditional)];
    plan.admin.tls.insecure = true;
    let mut with_reset = step("wipe", StepKind::Manual);
    with_reset.commands = vec![shell_command("kong migrations reset --yes")];
    let kit = kit_for(&plan);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(
            Strategy::InPlace,
            vec![step("preflight", StepKind::Preflight), with_reset],
        ),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "preflight", None).await;
    run.wait_warning("admin.tls.insecure").await;
    let (state, detail) = ended(&mut run, "preflight").await;
    assert_eq!(state, StepState::Failed);
    assert!(detail.starts_with("3 check(s) failed"), "{detail}");
    assert!(
        detail.contains("x/x1 at ")
            && detail.contains("reports Kong 3.9.0, but the plan says X runs 3.9.1"),
        "{detail}"
    );
    assert!(
        detail.contains("`kong migrations finish` of that upgrade never ran"),
        "{detail}"
    );
    assert!(
        detail.contains("cluster/wipe: kongup will not run `sh -c 'kong migrations reset --yes'`"),
        "{detail}"
    );
    run.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_migrations_lock_stops_up_before_kong_runs_and_says_whose_it_is() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    pg.psql(
        "kong",
        "INSERT INTO locks (key, owner, ttl) VALUES ('migrations', 'helm-hook-7', now() + interval '1 hour')",
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_on(&pg, dir.path(), "locked");
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
    confirm(&mut run, "migrations-up", None).await;
    let (state, detail) = ended(&mut run, "migrations-up").await;
    assert_eq!(state, StepState::Failed);
    assert!(
        detail.starts_with(&format!(
            "kongup did not start `{} migrations up",
            standin()
        )),
        "{detail}"
    );
    let ttl = pg.psql("kong", "SELECT ttl::text FROM locks");
    assert!(
        detail.contains(&format!("owner helm-hook-7 is live until {ttl}")),
        "{detail}"
    );
    assert!(
        detail.contains("Helm hook")
            && detail
                .contains("DELETE FROM locks WHERE key = 'migrations' AND owner = 'helm-hook-7'"),
        "{detail}"
    );
    assert_eq!(
        pg.psql(
            "kong",
            "SELECT coalesce(pending, '{}') FROM schema_meta WHERE subsystem = 'core'"
        ),
        "{}",
        "nothing migrated"
    );
    run.quit().await;
}

#[tokio::test]
async fn the_compatibility_check_lists_every_offending_data_plane() {
    let dir = tempfile::tempdir().unwrap();
    let planes = serde_json::json!({"data": [
        {"id": "a", "ip": "10.0.0.1", "hostname": "dp-a", "version": "3.10.0.1",
         "sync_status": "normal", "config_hash": "h", "last_seen": 1},
        {"id": "b", "ip": "10.0.0.2", "hostname": "dp-b", "version": "3.11.0.0",
         "sync_status": "kong_version_incompatible", "config_hash": "h", "last_seen": 1},
        {"id": "c", "ip": "10.0.0.3", "hostname": "dp-c", "version": "3.9.1.0",
         "sync_status": "plugin_set_incompatible", "config_hash": "h", "last_seen": 1}
    ], "next": null});
    let router = Router::new()
        .route(
            "/",
            get(|| async {
                axum::Json(support::http::node_info(
                    "3.10.0.2",
                    "control_plane",
                    "postgres",
                ))
            }),
        )
        .route(
            "/clustering/data-planes",
            get(move || {
                let planes = planes.clone();
                async move { axum::Json(planes) }
            }),
        );
    let cp_url = support::http::serve(router).await;
    let mut plan = plan_named("compat");
    plan.clusters.y.nodes = vec![node("cp1", &cp_url, Role::ControlPlane)];
    let kit = kit_for(&plan);
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
    confirm(&mut run, "compat-check", None).await;
    let (state, detail) = ended(&mut run, "compat-check").await;
    assert_eq!(state, StepState::Failed);
    assert!(detail.starts_with("2 problem(s)"), "{detail}");
    assert!(
        detail.contains("data plane dp-b (10.0.0.2) Kong 3.11.0.0: sync_status kong_version_incompatible, minor 3.11 is newer than the control plane's 3.10"),
        "{detail}"
    );
    assert!(
        detail.contains(
            "data plane dp-c (10.0.0.3) Kong 3.9.1.0: sync_status plugin_set_incompatible"
        ),
        "{detail}"
    );
    assert!(!detail.contains("dp-a"), "{detail}");
    run.quit().await;
}

#[tokio::test]
async fn a_node_that_never_comes_up_fails_the_start_at_the_deadline_with_a_countdown() {
    let dir = tempfile::tempdir().unwrap();
    // Y answers, but with the old version: the start did not take.
    let (y_url, _y) = fake_node(NodeBehaviour::new("3.9.1", "traditional", "postgres")).await;
    let mut plan = plan_named("never-up");
    plan.from = KongVersion::new(3, 9, 1);
    plan.clusters.y.nodes = vec![
        node("y1", &y_url, Role::Traditional),
        node("y2", &support::http::refused_url(), Role::Traditional),
    ];
    let kit = kit_for(&plan);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(
            Strategy::BlueGreen,
            vec![step(
                "start-y",
                StepKind::StartNodes {
                    cluster: ClusterSide::Y,
                    wave: None,
                },
            )],
        ),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "start-y", None).await;
    let (state, detail) = ended(&mut run, "start-y").await;
    assert_eq!(state, StepState::Failed);
    assert!(
        detail.starts_with("after 2s, 2 of the 2 checked of Y's nodes still do not answer with Kong 3.10.0 and be ready"),
        "{detail}"
    );
    assert!(
        detail.contains("y1 (answers Kong 3.9.1, not 3.10.0)"),
        "{detail}"
    );
    assert!(detail.contains("y2 (could not connect to"), "{detail}");
    let logs = all_logs(&run.run_dir);
    assert!(logs.contains("0 of 2 done; waiting for y1"), "{logs}");
    assert!(logs.contains(" left"), "{logs}");
    run.quit().await;
}

/// A `kong` that does its work, then fails the first time it is run: as if the
/// connection to the node dropped after Kong had finished. Each run appends a line to
/// `kong-runs` in `dir`.
fn kong_that_fails_once(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("kong-fails-once");
    let mark = dir.join("kong-failed-once");
    let runs = dir.join("kong-runs");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{runs}'\n'{standin}' \"$@\" || exit $?\n\
             if [ ! -e '{mark}' ]; then touch '{mark}'; echo 'connection to the node lost' >&2; exit 255; fi\n",
            runs = runs.display(),
            standin = standin(),
            mark = mark.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Runs `migrations-up` on `pg`, whose `kong` fails once after doing its work, then
/// retries it; returns the retry's detail and how often `kong` ran.
async fn up_then_retry(pg: &TestPg, name: &str) -> (String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_on(pg, dir.path(), name);
    plan.migrations.kong_binary = kong_that_fails_once(dir.path());
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
    confirm(&mut run, "migrations-up", None).await;
    let (state, detail) = ended(&mut run, "migrations-up").await;
    assert_eq!(state, StepState::Failed);
    assert!(detail.contains("exited with 255"), "{detail}");
    run.send(Command::Retry {
        step: cluster("migrations-up"),
        typed: None,
    })
    .await;
    let (state, detail) = ended(&mut run, "migrations-up").await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    let runs = std::fs::read_to_string(dir.path().join("kong-runs"))
        .unwrap()
        .lines()
        .count();
    run.quit().await;
    (detail, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_up_whose_first_attempt_left_migrations_pending_is_not_run_again() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let (detail, runs) = up_then_retry(&pg, "retry-pending").await;
    assert!(
        detail.contains("1 migration(s) pending, as expected until `kong migrations finish`"),
        "{detail}"
    );
    assert_eq!(runs, 1, "`up` ran again over its own pending migrations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_up_that_finds_the_database_up_to_date_compares_with_the_first_attempt() {
    let pg = TestPg::start();
    // A 3.10 database but for one plugin migration without a teardown: `up` runs it and
    // leaves nothing pending.
    pg.create_kong_database("kong", KongDbState::UpToDate);
    pg.psql(
        "kong",
        "UPDATE schema_meta SET executed = array_remove(executed, '004_212_to_213') \
         WHERE subsystem = 'acl'",
    );
    let (detail, runs) = up_then_retry(&pg, "retry-up-to-date").await;
    assert!(
        detail.contains("new migrations ran to the end and none is pending"),
        "{detail}"
    );
    assert_eq!(runs, 2, "the retry runs `up`, which finds nothing to do");
}

/// A `kong` that appends its arguments to `kong-runs` in `dir`, then does what the
/// stand-in does.
fn recording_kong(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("kong-recording");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{runs}'\nexec '{standin}' \"$@\"\n",
            runs = dir.join("kong-runs").display(),
            standin = standin(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freeze_guard_stops_migrations_finish_after_a_write_before_kong_runs() {
    let pg = TestPg::start();
    // `up` of the upgrade ran: `finish`, the point of no return, is next.
    pg.create_kong_database("kong", KongDbState::Pending);
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_on(&pg, dir.path(), "guarded-finish");
    plan.migrations.kong_binary = recording_kong(dir.path());
    let kit = kit_for(&plan);
    let mut finish = step(
        "migrations-finish",
        StepKind::Migrations(MigrationsCommand::Finish),
    );
    finish.irreversible = true;
    let steps = vec![step("freeze-writes", StepKind::FreezeWrites), finish];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::BlueGreen, steps),
        "v1",
        kit.toolbox,
    ));
    confirm(&mut run, "freeze-writes", None).await;
    assert_eq!(
        ended(&mut run, "freeze-writes").await.0,
        StepState::Succeeded
    );

    // Someone edits a plugin's configuration after the fingerprint.
    pg.psql(
        "kong",
        "UPDATE plugins SET config = '{\"minute\": 5}', updated_at = now() \
         WHERE name = 'rate-limiting'",
    );
    confirm(&mut run, "migrations-finish", Some("guarded-finish")).await;
    let (state, detail) = ended(&mut run, "migrations-finish").await;
    assert_eq!(state, StepState::Failed, "{detail}");
    assert!(
        detail.contains("the configuration changed since the freeze")
            && detail.contains("plugins: newest updated_at changed"),
        "says what changed: {detail}"
    );
    assert!(
        detail.contains("stop the writer") && detail.contains("retry this step"),
        "says what to do: {detail}"
    );
    assert!(
        !dir.path().join("kong-runs").exists(),
        "`kong migrations finish` ran: {}",
        std::fs::read_to_string(dir.path().join("kong-runs")).unwrap_or_default()
    );
    assert_eq!(
        pg.psql(
            "kong",
            "SELECT array_to_string(pending, ',') FROM schema_meta WHERE subsystem = 'core'"
        ),
        "025_390_to_3100",
        "the teardown is still pending"
    );

    // The edit is undone: the retry passes the guard, and the recorder sees `finish`.
    pg.psql(
        "kong",
        "UPDATE plugins SET config = '{\"minute\": 100}', updated_at = '2025-01-04 10:00:00+00' \
         WHERE name = 'rate-limiting'",
    );
    run.send(Command::Retry {
        step: cluster("migrations-finish"),
        typed: Some("guarded-finish".into()),
    })
    .await;
    let (state, detail) = ended(&mut run, "migrations-finish").await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    let runs = std::fs::read_to_string(dir.path().join("kong-runs")).unwrap();
    assert!(runs.starts_with("migrations finish"), "{runs}");
    run.quit().await;
}

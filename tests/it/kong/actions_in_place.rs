//! An in-place plan driven through the engine with the Kong actions registered as
//! `kongup run` registers them: a real PostgreSQL, the `kong` stand-in as the plan's kong
//! binary on the local executor, and axum servers playing X's and Y's nodes.
//! preflight → freeze → backup → stop X → deploy Y → migrations up/finish → start Y →
//! smoke tests.

use std::sync::Arc;
use std::time::Duration;

use crate::support::engine::{TestRun, cluster};
use crate::support::kong_actions::*;
use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use kongup::actions::kong::facts::{self, DATABASE_BACKUP, FREEZE_FINGERPRINT};
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::journal::Entry;
use kongup::engine::step::resolve_plan_secrets;
use kongup::engine::{Command, Operator, RunOptions, RunSetup, StepState, Toolbox};
use kongup::kong::watch::TopologyWatcher;
use kongup::plan::load::parse_plan;
use kongup::session;
use tokio_util::sync::CancellationToken;

const PLAN_NAME: &str = "orders in place 3.9 to 3.10";

pub fn fast_waits() -> Waits {
    Waits {
        nodes: Duration::from_secs(20),
        poll: Duration::from_millis(100),
        progress: Duration::from_secs(1),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_upgrade_runs_kongs_steps_through_the_engine() {
    let pg = TestPg::start();
    // A 3.9 database: the stand-in (Kong 3.10) has one new core migration with a teardown.
    pg.create_kong_database("kong", KongDbState::New);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let x_stopped = work.join("x-stopped");
    let y_started = work.join("y-started");

    let mut x = NodeBehaviour::new("3.9.1", "traditional", "postgres");
    x.draining_when = Some(x_stopped.clone());
    let (x_url, _x) = fake_node(x).await;
    let mut y = NodeBehaviour::new("3.10.0", "traditional", "postgres");
    y.up_when = Some(y_started.clone());
    let (y_url, _y) = fake_node(y).await;

    let pg_password = secret_file(work, "pg-password", PASSWORD);
    let api_key = secret_file(work, "api-key", API_KEY);
    let count = work.join("stop-count");
    let plan_text = format!(
        r#"
name: {PLAN_NAME}
from: 3.9.1
to: 3.10.0
mode: traditional
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        admin_url: {x_url}
        status_url: {x_url}
        proxy_url: {x_url}
    database:
      host: {HOST}
      port: {port}
      name: kong
      user: {SUPERUSER}
      password: {{file: {pg_password}}}
  y:
    nodes:
      - name: y1
        admin_url: {y_url}
        status_url: {y_url}
        proxy_url: {y_url}
smoke_tests:
  - name: key-auth rejects a request without a key
    path: /orders
    expect:
      status: 401
  - name: key-auth accepts the smoke-test key
    path: /orders
    headers:
      apikey: {{file: {api_key}}}
    expect:
      status: 200
      headers: {{content-type: application/json}}
      body_contains: '"ok": true'
migrations:
  kong_binary: {standin}
  db_timeout: 60
  timeout: 2m
steps:
  stop-x:
    commands:
      - shell: "echo stop >> {count} && touch {x_stopped}"
  start-y:
    commands:
      - shell: "touch {y_started}"
"#,
        port = pg.port,
        pg_password = pg_password.display(),
        api_key = api_key.display(),
        standin = standin(),
        count = count.display(),
        x_stopped = x_stopped.display(),
        y_started = y_started.display(),
    );
    let loaded = parse_plan(&plan_text, "in-place.yaml").unwrap_or_else(|e| panic!("{e}"));
    let plan = loaded.plan;
    let ids: Vec<&str> = loaded.expanded.phases[0]
        .steps
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        ids[..11],
        [
            "preflight",
            "freeze-writes",
            "backup",
            "review-considerations",
            "review-breaking-changes",
            "stop-x",
            "deploy-y",
            "migrations-up",
            "migrations-finish",
            "start-y",
            "staging-tests"
        ]
    );

    // As `kongup run` builds it: the plan's toolbox, then the Kong actions on top.
    let redactor = resolve_plan_secrets(&plan).expect("the plan's secrets resolve");
    let mut toolbox = Toolbox::for_plan(&plan, redactor, kongup::actions::builtins(None)).unwrap();
    let access = KongAccess::for_plan(&plan)
        .unwrap()
        .with_waits(fast_waits());
    register_kong_actions(&mut toolbox.actions, access.clone());
    let plan = Arc::new(plan);
    let cancel_watch = CancellationToken::new();
    // As `session::start` runs the watcher beside the engine.
    let (side_tx, side_events) = tokio::sync::mpsc::unbounded_channel();
    let watcher = TopologyWatcher::new(access.probe.clone(), plan.clone(), access.databases());
    let watch_task = session::spawn_topology_watcher(
        watcher,
        Duration::from_millis(200),
        side_tx,
        cancel_watch.clone(),
    );
    let mut run = TestRun::start(RunSetup {
        plan,
        expanded: Arc::new(loaded.expanded),
        plan_text: plan_text.clone(),
        run_dir: work.join("run"),
        operator: Operator("alice@test".into()),
        toolbox,
        options: RunOptions::default(),
        side_events: Some(side_events),
        lock: None,
    });
    let run_dir = run.run_dir.clone();

    async fn confirm(run: &mut TestRun, id: &str, typed: Option<&str>) -> Option<String> {
        run.send(Command::Confirm {
            step: cluster(id),
            typed: typed.map(str::to_string),
        })
        .await;
        let state = run
            .wait_for(&format!("{id} to end"), |e| {
                matches!(e, kongup::engine::Event::StepChanged { step, state, .. }
                    if *step == cluster(id) && matches!(state, StepState::Succeeded | StepState::Failed))
            })
            .await;
        match state {
            kongup::engine::Event::StepChanged {
                state: StepState::Succeeded,
                detail,
                ..
            } => detail,
            other => panic!("{id} did not succeed: {other:?}"),
        }
    }

    // The topology watcher's snapshots reach the engine's event stream.
    run.wait_seen("a topology snapshot with X's node and database", |e| {
        matches!(e, kongup::engine::Event::Topology(t)
            if t.nodes.iter().any(|n| n.name == "x1" && n.version.as_deref() == Some("3.9.1"))
                && t.databases.iter().any(|d| d.schema.as_deref() == Some("024_380_to_390, none pending")))
    })
    .await;

    let detail = confirm(&mut run, "preflight", None).await.unwrap();
    assert!(detail.contains("1 X node(s) as planned"), "{detail}");
    assert!(detail.contains("no pending migrations"), "{detail}");

    confirm(&mut run, "freeze-writes", None).await;
    let (freeze, fingerprint) = facts::recorded_freeze(&run_dir).unwrap().expect("a freeze");
    assert_eq!(fingerprint.entities["routes"].count, 2);
    assert_eq!(mode(&run_dir.join(&freeze.file)), 0o600);

    let detail = confirm(&mut run, "backup", None).await.unwrap();
    assert!(detail.contains("pg_restore --list"), "{detail}");
    let (by, backup) = facts::recorded_backup(&run_dir, DATABASE_BACKUP)
        .unwrap()
        .expect("a recorded backup");
    assert_eq!(by, "cluster/backup");
    assert!(backup.path.starts_with(run_dir.join("backups")));
    assert_eq!(sha256_file(&backup.path), backup.sha256);
    assert_eq!(mode(&backup.path), 0o600);

    confirm(&mut run, "review-considerations", None).await;
    confirm(&mut run, "review-breaking-changes", None).await;

    // The command stops X, then kongup waits until X reports draining; the command runs
    // once (the action ran it, the engine had none left).
    let detail = confirm(&mut run, "stop-x", None).await.unwrap();
    assert!(
        detail.contains("X's nodes stopped answering, report draining, or answer with another"),
        "{detail}"
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "stop\n");

    let detail = confirm(&mut run, "deploy-y", None).await.unwrap();
    assert!(detail.contains("cluster/start-y"), "{detail}");

    let core = |column: &str| {
        pg.psql(
            "kong",
            &format!("SELECT coalesce({column}, '{{}}') FROM schema_meta WHERE subsystem = 'core'"),
        )
    };
    assert_eq!(core("pending"), "{}");
    let detail = confirm(&mut run, "migrations-up", None).await.unwrap();
    assert!(detail.contains("core: 025_390_to_3100"), "{detail}");
    assert_eq!(core("pending"), "{025_390_to_3100}");

    let detail = confirm(&mut run, "migrations-finish", Some(PLAN_NAME))
        .await
        .unwrap();
    assert!(detail.contains("no pending migrations"), "{detail}");
    assert_eq!(core("pending"), "{}");
    assert!(core("executed").ends_with(",025_390_to_3100}"));

    assert!(!y_started.exists());
    let detail = confirm(&mut run, "start-y", None).await.unwrap();
    assert!(
        detail.contains("Y's nodes answer with Kong 3.10.0 and are ready"),
        "{detail}"
    );

    let detail = confirm(&mut run, "staging-tests", None).await.unwrap();
    assert!(
        detail.contains("all 2 smoke test run(s) passed"),
        "{detail}"
    );

    let journal = run.journal();
    // Every preview said what would run and where before the step started.
    let runs_of = |id: &str| {
        journal
            .iter()
            .find_map(|r| match &r.entry {
                Entry::StepStarted { step, runs, .. } if step == &format!("cluster/{id}") => {
                    Some(runs.join("\n"))
                }
                _ => None,
            })
            .unwrap()
    };
    assert!(
        runs_of("stop-x").contains("after the plan's commands below, wait up to 20s"),
        "{}",
        runs_of("stop-x")
    );
    assert!(runs_of("migrations-up").contains(&format!("run `{} migrations up", standin())));
    assert!(
        journal
            .iter()
            .any(|r| matches!(&r.entry, Entry::Fact { key, .. } if key == FREEZE_FINGERPRINT))
    );

    // Secrets stay out of the journal and the logs.
    let journal_text = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    let logs = all_logs(&run_dir);
    for secret in [API_KEY, PASSWORD] {
        assert!(!journal_text.contains(secret), "{secret} in the journal");
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
    assert!(logs.contains("PASS \"key-auth rejects a request without a key\" via y/y1"));
    assert!(logs.contains("core migrated up to: 025_390_to_3100 (pending)"));
    run.quit().await;
    cancel_watch.cancel();
    tokio::time::timeout(Duration::from_secs(10), watch_task)
        .await
        .expect("the watcher stops")
        .unwrap();
}

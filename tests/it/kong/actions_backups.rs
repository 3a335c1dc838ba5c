//! The backup actions through the engine: the declarative configuration (a copy and an
//! Admin API export), keyring and `kong.conf` fetched through the local executor, the
//! refusal of a missing or empty file, and the dual-cluster restore into Y's database.

use std::path::Path;
use std::time::Duration;

use crate::support::engine::*;
use crate::support::kong_actions::*;
use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use kongup::actions::kong::facts::{self, DATABASE_BACKUP};
use kongup::actions::kong::{KongAccess, Waits, register_kong_actions};
use kongup::engine::{Command, Event, StepState};
use kongup::plan::model::{DatabaseSpec, Node, Plan, Role, SecretRef, Strategy};
use kongup::plan::steps::{BackupKind, StepKind};

fn kit_for(plan: &Plan) -> Kit {
    let mut kit = kit();
    let access = KongAccess::for_plan(plan).unwrap().with_waits(Waits {
        tools: Duration::from_secs(30),
        ..Waits::default()
    });
    register_kong_actions(&mut kit.toolbox.actions, access);
    kit
}

async fn run_step(run: &mut TestRun, id: &str) -> (StepState, String) {
    run.send(Command::Confirm {
        step: cluster(id),
        typed: None,
    })
    .await;
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

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn x_node(url: &str) -> Node {
    Node {
        name: "x1".into(),
        admin_url: Some(url.into()),
        status_url: None,
        proxy_url: None,
        role: Role::Traditional,
        executor: Some("local".into()),
    }
}

#[tokio::test]
async fn declarative_keyring_and_static_backups_land_in_the_run_with_their_sha() {
    let dir = tempfile::tempdir().unwrap();
    let (x_url, _x) = fake_node(NodeBehaviour::new("3.9.1", "traditional", "postgres")).await;
    let kong_yml = write(
        dir.path(),
        "kong.yml",
        "_format_version: \"3.0\"\nservices: []\n",
    );
    let cert = write(
        dir.path(),
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
    );
    let key = write(dir.path(), "key.pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n");
    let conf = write(
        dir.path(),
        "kong.conf",
        "database = postgres\npg_host = db\n",
    );
    let mut plan = plan_named("backups");
    plan.clusters.x.nodes = vec![x_node(&x_url)];
    plan.backup.declarative_config = Some(kong_yml.clone());
    plan.backup.keyring = vec![cert.clone(), key.clone()];
    plan.backup.kong_conf = Some(conf.clone());
    let kit = kit_for(&plan);
    let steps = vec![
        step(
            "backup-declarative",
            StepKind::Backup(BackupKind::Declarative),
        ),
        step("backup-keyring", StepKind::Backup(BackupKind::Keyring)),
        step("backup-static", StepKind::Backup(BackupKind::StaticFiles)),
    ];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::BlueGreen, steps),
        "v1",
        kit.toolbox,
    ));
    for id in ["backup-declarative", "backup-keyring", "backup-static"] {
        let (state, detail) = run_step(&mut run, id).await;
        assert_eq!(state, StepState::Succeeded, "{id}: {detail}");
    }
    let run_dir = run.run_dir.clone();
    let recorded = |key: &str| {
        facts::recorded_backup(&run_dir, key)
            .unwrap()
            .unwrap_or_else(|| panic!("{key} is recorded"))
            .1
    };
    let copies = [
        ("backup.declarative-config", &kong_yml),
        ("backup.keyring.1", &cert),
        ("backup.keyring.2", &key),
        ("backup.kong-conf.1", &conf),
    ];
    for (key, original) in copies {
        let record = recorded(key);
        assert!(record.path.starts_with(run_dir.join("backups")), "{key}");
        assert_eq!(mode(&record.path), 0o600, "{key}");
        assert_eq!(sha256_file(&record.path), record.sha256, "{key}");
        assert_eq!(
            std::fs::read(&record.path).unwrap(),
            std::fs::read(original).unwrap(),
            "{key}"
        );
    }
    let export = recorded("backup.admin-api-export");
    let text = std::fs::read_to_string(&export.path).unwrap();
    assert!(text.contains("orders.internal"), "{text}");
    assert!(
        export.verified.contains("services 1"),
        "{}",
        export.verified
    );
    run.quit().await;
}

/// Runs one backup step of `kind` in a run of its own.
async fn backup_alone(dir: &Path, plan: Plan, kind: BackupKind) -> (StepState, String) {
    let kit = kit_for(&plan);
    let mut run = TestRun::start(setup(
        dir,
        plan,
        expanded(
            Strategy::BlueGreen,
            vec![step("backup-files", StepKind::Backup(kind))],
        ),
        "v1",
        kit.toolbox,
    ));
    let ended = run_step(&mut run, "backup-files").await;
    run.quit().await;
    ended
}

#[tokio::test]
async fn a_missing_or_empty_file_fails_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = plan_named("bad-backups");
    plan.clusters.x.nodes = vec![Node {
        admin_url: None,
        ..x_node("http://unused")
    }];
    plan.backup.keyring = vec![dir.path().join("no-such-key.pem")];
    plan.backup.kong_conf = Some(write(dir.path(), "kong.conf", ""));

    let missing = dir.path().join("missing");
    let (state, detail) = backup_alone(&missing, plan.clone(), BackupKind::Keyring).await;
    assert_eq!(state, StepState::Failed);
    assert!(
        detail.contains("could not fetch") && detail.contains("no-such-key.pem"),
        "{detail}"
    );
    let empty = dir.path().join("empty");
    let (state, detail) = backup_alone(&empty, plan, BackupKind::StaticFiles).await;
    assert_eq!(state, StepState::Failed);
    assert!(detail.contains("is empty"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_cluster_restores_xs_backup_into_ys_new_database() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let dir = tempfile::tempdir().unwrap();
    let password = secret_file(dir.path(), "pg-password", PASSWORD);
    let database = |name: &str| DatabaseSpec {
        host: HOST.into(),
        port: pg.port,
        name: name.into(),
        user: SUPERUSER.into(),
        password: Some(SecretRef::File(password.clone())),
        tls: Default::default(),
    };
    let mut plan = plan_named("dual");
    plan.clusters.x.database = Some(database("kong"));
    plan.clusters.y.database = Some(database("kong_y"));
    let kit = kit_for(&plan);
    let steps = vec![
        step("backup", StepKind::Backup(BackupKind::Database)),
        step("restore-db", StepKind::RestoreDatabase),
    ];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(Strategy::DualCluster, steps),
        "v1",
        kit.toolbox,
    ));
    assert_eq!(run_step(&mut run, "backup").await.0, StepState::Succeeded);
    let (state, detail) = run_step(&mut run, "restore-db").await;
    assert_eq!(state, StepState::Succeeded, "{detail}");
    assert!(detail.contains("into 127.0.0.1:"), "{detail}");
    assert_eq!(
        pg.psql(
            "kong_y",
            "SELECT string_agg(name, ',' ORDER BY name) FROM routes"
        ),
        "billing-route,orders-route"
    );
    let (by, _) = facts::recorded_backup(&run.run_dir, DATABASE_BACKUP)
        .unwrap()
        .unwrap();
    assert_eq!(by, "cluster/backup");
    run.quit().await;
}

#[tokio::test]
async fn on_cassandra_the_built_in_backup_and_migrations_refuse_and_say_what_to_do() {
    use kongup::plan::steps::MigrationsCommand;
    for (kind, work) in [
        (StepKind::Backup(BackupKind::Database), "backup"),
        (
            StepKind::Migrations(MigrationsCommand::Up),
            "migrations check",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_named("cassandra");
        plan.from = kongup::plan::version::KongVersion::new(3, 2, 1);
        plan.to = kongup::plan::version::KongVersion::new(3, 3, 0);
        plan.database = kongup::plan::model::DatabaseKind::Cassandra;
        plan.clusters.x.database = Some(DatabaseSpec {
            host: HOST.into(),
            port: 9042,
            name: "kong".into(),
            user: "kong".into(),
            password: None,
            tls: Default::default(),
        });
        // A `kong` that only records that it ran.
        let runs = dir.path().join("kong-runs");
        let kong = write(
            dir.path(),
            "kong",
            &format!("#!/bin/sh\necho \"$*\" >> '{}'\n", runs.display()),
        );
        std::fs::set_permissions(&kong, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        plan.migrations.kong_binary = kong.display().to_string();
        let kit = kit_for(&plan);
        let mut run = TestRun::start(setup(
            dir.path(),
            plan,
            expanded(Strategy::InPlace, vec![step("the-step", kind)]),
            "v1",
            kit.toolbox,
        ));
        let (state, detail) = run_step(&mut run, "the-step").await;
        assert_eq!(state, StepState::Failed);
        assert_eq!(
            detail,
            format!(
                "database cassandra: kongup's built-in {work} supports PostgreSQL only; give the \
                 step commands and `builtin: false`"
            )
        );
        assert!(!runs.exists(), "kong ran");
        run.quit().await;
    }
}

/// Kong Enterprise 3.4 says no `edition` in `GET /` (3.6.0+): its four-part version makes
/// the Admin API export cover every workspace, and the step's log names them.
#[tokio::test]
async fn the_declarative_backup_of_enterprise_names_every_workspace_it_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (x_url, _x) = fake_node(NodeBehaviour::new("3.4.3.12", "traditional", "postgres")).await;
    let mut plan = plan_named("enterprise-backup");
    plan.clusters.x.nodes = vec![x_node(&x_url)];
    let kit = kit_for(&plan);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan,
        expanded(
            Strategy::BlueGreen,
            vec![step(
                "backup-declarative",
                StepKind::Backup(BackupKind::Declarative),
            )],
        ),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::Confirm {
        step: cluster("backup-declarative"),
        typed: None,
    })
    .await;
    let said = run
        .wait_for(
            "the log line naming the workspaces",
            |e| matches!(e, Event::Log(line) if line.text.contains("workspace(s) backed up")),
        )
        .await;
    let Event::Log(line) = said else {
        unreachable!()
    };
    assert!(
        line.text.contains("X is Kong enterprise")
            && line.text.contains("3.4.3.12 has four parts")
            && line
                .text
                .ends_with("workspace(s) backed up: default, team-a"),
        "{}",
        line.text
    );
    let ended = run
        .wait_for("the backup to end", |e| {
            matches!(e, Event::StepChanged { step, state, .. }
                if *step == cluster("backup-declarative")
                    && matches!(state, StepState::Succeeded | StepState::Failed))
        })
        .await;
    let Event::StepChanged { state, detail, .. } = ended else {
        unreachable!()
    };
    assert_eq!(state, StepState::Succeeded, "{detail:?}");
    let run_dir = run.run_dir.clone();
    for (n, workspace) in [(1, "default"), (2, "team-a")] {
        let (_, record) = facts::recorded_backup(&run_dir, &format!("backup.admin-api-export.{n}"))
            .unwrap()
            .unwrap_or_else(|| panic!("export {n} is recorded"));
        assert!(
            record.source.ends_with(&format!("workspace {workspace}")),
            "{record:?}"
        );
        assert!(record.verified.contains("services 1"), "{record:?}");
    }
    run.quit().await;
}

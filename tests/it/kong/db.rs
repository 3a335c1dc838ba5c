//! Reading `schema_meta` from a real PostgreSQL in every state a Kong database can be in,
//! `kongup db status`, the preflight, and the connection errors an operator meets.

use std::time::Duration;

use crate::support::pg::{CORE_3100, HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use assert_cmd::Command;
use kongup::kong::pg::{self, PgError, PgTarget, PreflightRefusal};
use kongup::plan::model::Strategy;

fn target(pg: &TestPg, database: &str) -> PgTarget {
    PgTarget {
        host: HOST.into(),
        port: pg.port,
        database: database.into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: Some("environment variable KONGUP_TEST_PGPW".into()),
        connect_timeout: Duration::from_secs(10),
        query_timeout: Duration::from_secs(10),
        tls: Default::default(),
    }
}

#[tokio::test]
async fn reads_each_state_from_schema_meta() {
    let pg = TestPg::start();
    for (name, state) in [
        ("boot", KongDbState::NeedsBootstrap),
        ("current", KongDbState::UpToDate),
        ("pending", KongDbState::Pending),
        ("new", KongDbState::New),
    ] {
        pg.create_kong_database(name, state);
    }

    let boot = pg::schema_state(&target(&pg, "boot")).await.unwrap();
    assert!(boot.needs_bootstrap);
    assert!(boot.subsystems.is_empty());

    let current = pg::schema_state(&target(&pg, "current")).await.unwrap();
    assert!(!current.needs_bootstrap);
    assert_eq!(current.core_generation(), Some("025_390_to_3100"));
    assert_eq!(current.pending_total(), 0);
    let names: Vec<&str> = current
        .subsystems
        .iter()
        .map(|s| s.subsystem.as_str())
        .collect();
    assert_eq!(names, ["core", "acl", "rate-limiting"], "core comes first");
    assert_eq!(current.subsystems[0].executed.len(), CORE_3100.len());

    let pending = pg::schema_state(&target(&pg, "pending")).await.unwrap();
    assert_eq!(pending.pending_total(), 2);
    assert_eq!(pending.subsystems[0].pending, ["025_390_to_3100"]);
    assert_eq!(pending.core_generation(), Some("024_380_to_390"));

    // A 3.9 database looks finished on its own: what is new needs the target's list.
    let new = pg::schema_state(&target(&pg, "new")).await.unwrap();
    assert_eq!(new.pending_total(), 0);
    assert_eq!(new.core_generation(), Some("024_380_to_390"));

    // A schema_meta table without a core row also needs bootstrap.
    pg.create_database("nocore");
    pg.psql(
        "nocore",
        "CREATE TABLE schema_meta (key TEXT, subsystem TEXT, last_executed TEXT, executed TEXT[], pending TEXT[], PRIMARY KEY (key, subsystem)); \
         INSERT INTO schema_meta VALUES ('schema_meta', 'acl', NULL, NULL, NULL);",
    );
    let nocore = pg::schema_state(&target(&pg, "nocore")).await.unwrap();
    assert!(nocore.needs_bootstrap);
    assert!(
        nocore.subsystems[0].executed.is_empty(),
        "NULL reads as empty"
    );
}

#[tokio::test]
async fn preflight_refuses_an_unfinished_upgrade_on_a_real_database() {
    let pg = TestPg::start();
    pg.create_kong_database("pending", KongDbState::Pending);
    pg.create_kong_database("current", KongDbState::UpToDate);
    let t = target(&pg, "pending");
    let state = pg::schema_state(&t).await.unwrap();
    let refusal = pg::preflight(&state, Strategy::InPlace, &t.address()).unwrap_err();
    assert!(
        matches!(
            refusal,
            PreflightRefusal::UnfinishedUpgrade { count: 2, .. }
        ),
        "{refusal:?}"
    );
    assert!(
        refusal
            .to_string()
            .contains("rate-limiting: 005_320_to_330"),
        "{refusal}"
    );
    let current = pg::schema_state(&target(&pg, "current")).await.unwrap();
    pg::preflight(&current, Strategy::BlueGreen, "x").unwrap();
}

fn db_status(pg: &TestPg, database: &str, json: bool) -> (i32, String, String) {
    let mut command = Command::cargo_bin("kongup").unwrap();
    command
        .args(["db", "status", "--pg", &pg.url(database)])
        .args(["--password-env", "KONGUP_TEST_PGPW"])
        .env("KONGUP_TEST_PGPW", PASSWORD)
        .env_remove("PGPASSWORD")
        .timeout(Duration::from_secs(60));
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn db_status_json_on_each_state() {
    let pg = TestPg::start();
    for (name, state) in [
        ("boot", KongDbState::NeedsBootstrap),
        ("current", KongDbState::UpToDate),
        ("pending", KongDbState::Pending),
        ("new", KongDbState::New),
    ] {
        pg.create_kong_database(name, state);
    }

    let (code, out, err) = db_status(&pg, "boot", true);
    assert_eq!(code, 3, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"needs_bootstrap": true, "subsystems": [], "pending_total": 0})
    );

    let (code, out, err) = db_status(&pg, "pending", true);
    assert_eq!(code, 4, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["pending_total"], 2);
    assert_eq!(json["needs_bootstrap"], false);
    assert_eq!(json["subsystems"][0]["subsystem"], "core");
    assert_eq!(json["subsystems"][0]["last_executed"], "024_380_to_390");
    assert_eq!(
        json["subsystems"][0]["pending"],
        serde_json::json!(["025_390_to_3100"])
    );
    assert_eq!(
        json["subsystems"][0]["executed"].as_array().unwrap().len(),
        CORE_3100.len() - 1
    );

    for name in ["current", "new"] {
        let (code, out, err) = db_status(&pg, name, true);
        assert_eq!(code, 0, "{name}: {err}");
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["pending_total"], 0, "{name}");
    }

    let (code, out, _) = db_status(&pg, "pending", false);
    assert_eq!(code, 4);
    assert!(out.contains("core.last_executed): 024_380_to_390"), "{out}");
    assert!(out.contains("`kong migrations finish` did not"), "{out}");
    assert!(!out.contains(PASSWORD));
}

#[test]
fn db_status_refuses_a_password_in_the_url() {
    let output = Command::cargo_bin("kongup")
        .unwrap()
        .args([
            "db",
            "status",
            "--pg",
            "postgres://kong:s3cret@127.0.0.1:1/kong",
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("holds a password"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test]
async fn connection_errors_say_what_to_fix() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);

    let mut wrong = target(&pg, "kong");
    wrong.password = Some("not-the-password".into());
    let error = wrong.connect().await.unwrap_err();
    assert!(matches!(error, PgError::AuthFailed { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("refused the login of user postgres"),
        "{text}"
    );
    assert!(
        text.contains("environment variable KONGUP_TEST_PGPW"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");

    let mut none = target(&pg, "kong");
    none.password = None;
    none.password_source = None;
    let text = none.connect().await.unwrap_err().to_string();
    assert!(text.contains("export PGPASSWORD"), "{text}");

    let error = target(&pg, "kongx").connect().await.unwrap_err();
    assert!(
        matches!(error, PgError::DatabaseMissing { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("no database named \"kongx\""),
        "{error}"
    );

    let mut refused = target(&pg, "kong");
    refused.port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let error = refused.connect().await.unwrap_err();
    assert!(matches!(error, PgError::Refused { .. }), "{error:?}");
    assert!(error.to_string().contains("connection refused"), "{error}");

    // A server that accepts the connection and never speaks.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut slow = target(&pg, "kong");
    slow.port = silent.local_addr().unwrap().port();
    slow.connect_timeout = Duration::from_millis(500);
    let error = slow.connect().await.unwrap_err();
    assert!(matches!(error, PgError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("within 500ms"), "{error}");
    drop(silent);
}

/// An in-place plan on `pg`'s database `kong`; `password` is the YAML of its password
/// source, or `None` for none.
fn plan_file(dir: &std::path::Path, pg: &TestPg, password: Option<&str>) -> std::path::PathBuf {
    let password = password
        .map(|p| format!("\n      password: {p}"))
        .unwrap_or_default();
    let text = format!(
        "name: db-status\nfrom: 3.9.1\nto: 3.10.0\nmode: traditional\nstrategy: in-place\n\
         clusters:\n  x:\n    nodes:\n      - name: x1\n        proxy_url: http://127.0.0.1:8000\n    \
         database:\n      host: {HOST}\n      port: {}\n      name: kong\n      user: {SUPERUSER}{password}\n  \
         y:\n    nodes:\n      - name: y1\n        proxy_url: http://127.0.0.1:9000\n",
        pg.port
    );
    let path = dir.join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `kongup db status --json` with `args`, PGPASSWORD set to `pgpassword` or unset.
fn db_status_with(args: &[&str], pgpassword: Option<&str>) -> (i32, String, String) {
    let mut command = Command::cargo_bin("kongup").unwrap();
    command
        .args(["db", "status", "--json"])
        .args(args)
        .env_remove("PGPASSWORD")
        .timeout(Duration::from_secs(60));
    if let Some(password) = pgpassword {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn db_status_takes_the_database_and_its_password_from_the_plan() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::Pending);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pg-password");
    std::fs::write(&secret, PASSWORD).unwrap();

    // The password from the plan's {file: …}.
    let plan = plan_file(
        dir.path(),
        &pg,
        Some(&format!("{{file: {}}}", secret.display())),
    );
    let plan_arg = plan.to_str().unwrap();
    let (code, out, err) = db_status_with(&["--plan", plan_arg], None);
    assert_eq!(code, 4, "pending migrations: {err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["pending_total"], 2, "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));

    // A wrong password in the file: the error names the file, not what it holds.
    std::fs::write(&secret, "wrong-pw-4711").unwrap();
    let (code, out, err) = db_status_with(&["--plan", plan_arg], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("refused the login of user postgres")
            && err.contains(&format!("file {}", secret.display())),
        "{err}"
    );
    assert!(!err.contains("wrong-pw-4711") && !out.contains("wrong-pw-4711"));

    // No source in the plan: PGPASSWORD.
    let plan = plan_file(dir.path(), &pg, None);
    let (code, out, err) = db_status_with(&["--plan", plan.to_str().unwrap()], Some(PASSWORD));
    assert_eq!(code, 4, "{err}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    let (code, _, err) = db_status_with(&["--plan", plan.to_str().unwrap()], Some("bad-pw-99"));
    assert_eq!(code, 1);
    assert!(err.contains("environment variable PGPASSWORD"), "{err}");
    assert!(!err.contains("bad-pw-99"), "{err}");

    // --pg without --password-env reads PGPASSWORD too.
    let (code, _, err) = db_status_with(&["--pg", &pg.url("kong")], Some(PASSWORD));
    assert_eq!(code, 4, "{err}");

    // An in-place plan gives Y no database of its own.
    let (code, _, err) = db_status_with(
        &["--plan", plan.to_str().unwrap(), "--cluster", "y"],
        Some(PASSWORD),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("has no clusters.y.database") && err.contains("use --cluster x"),
        "{err}"
    );
}

//! Backups, restores and the freeze guard against a real PostgreSQL (and small Admin API
//! servers): a backup → drop → restore round trip gives identical rows, a corrupted dump
//! is caught, and a row written after the backup is named.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use kongup::exec::local::LocalExecutor;
use kongup::kong::backup::{self, BackupError, PgTools};
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::kong::freeze::{self, FreezeSource};
use kongup::kong::pg::PgTarget;
use kongup::kong::restore::{self, RestoreError};
use serde_json::json;

const TABLES: &[&str] = &["schema_meta", "services", "routes", "consumers", "plugins"];

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

fn tools(pg: &TestPg) -> PgTools {
    PgTools {
        pg_dump: pg.client_bin("pg_dump"),
        pg_restore: pg.client_bin("pg_restore"),
        timeout: Duration::from_secs(120),
    }
}

/// Every row of the Kong tables, as text, in a stable order.
fn rows(pg: &TestPg, database: &str) -> Vec<String> {
    TABLES
        .iter()
        .map(|table| {
            format!(
                "{table}:\n{}",
                pg.psql(
                    database,
                    &format!("SELECT t::text FROM {table} t ORDER BY 1")
                )
            )
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn backup_drop_restore_gives_identical_rows() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let original = rows(&pg, "kong");
    let run_dir = tempfile::tempdir().unwrap();
    let tools = tools(&pg);

    let record = backup::dump_database(&tools, &target(&pg, "kong"), run_dir.path(), "x.dump")
        .await
        .unwrap();
    assert_eq!(record.kind, "database");
    assert_eq!(mode(&record.path), 0o600);
    assert!(record.size > 0);
    assert_eq!(record.sha256, backup::sha256_file(&record.path).unwrap());
    assert!(
        record.verified.contains("schema_meta present"),
        "{}",
        record.verified
    );
    assert!(!record.source.contains(PASSWORD));

    pg.psql("postgres", "DROP DATABASE kong");
    let report = restore::restore_into_new_database(&tools, &record, &target(&pg, "kong"))
        .await
        .unwrap();
    assert_eq!(rows(&pg, "kong"), original);
    assert_eq!(
        report.schema.core_generation(),
        Some("025_390_to_3100"),
        "the restored database reads as Kong's"
    );

    // Dual-cluster: Y's new database gets the same rows; an occupied one is refused.
    restore::restore_into_new_database(&tools, &record, &target(&pg, "kong_y"))
        .await
        .unwrap();
    assert_eq!(rows(&pg, "kong_y"), original);
    let error = restore::restore_into_new_database(&tools, &record, &target(&pg, "kong_y"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RestoreError::TargetNotEmpty { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("only into a new or empty"),
        "{error}"
    );
}

#[tokio::test]
async fn a_corrupted_missing_or_empty_dump_is_caught() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let run_dir = tempfile::tempdir().unwrap();
    let tools = tools(&pg);
    let record = backup::dump_database(&tools, &target(&pg, "kong"), run_dir.path(), "x.dump")
        .await
        .unwrap();
    backup::check_record(&record).unwrap();

    // Flip bytes in the middle: the recorded hash no longer matches, and the restore
    // refuses before touching anything.
    let mut bytes = std::fs::read(&record.path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&record.path, &bytes).unwrap();
    let error = backup::check_record(&record).unwrap_err();
    assert!(
        matches!(error, BackupError::ChecksumMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("changed since it was taken"),
        "{error}"
    );
    let error = restore::restore_into_new_database(&tools, &record, &target(&pg, "kong_y"))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RestoreError::Backup(BackupError::ChecksumMismatch { .. })
    ));
    assert!(
        pg.try_psql("kong_y", "SELECT 1").is_err(),
        "nothing was created"
    );

    // A file that is not a dump at all cannot be verified.
    let garbage = run_dir.path().join("garbage.dump");
    std::fs::write(&garbage, b"PGDMPnot really a dump").unwrap();
    let error = backup::verify_dump(&tools, &garbage).await.unwrap_err();
    assert!(
        matches!(error, BackupError::Unverifiable { .. }),
        "{error:?}"
    );

    let mut missing = record.clone();
    missing.path = run_dir.path().join("gone.dump");
    assert!(matches!(
        backup::check_record(&missing).unwrap_err(),
        BackupError::Missing { .. }
    ));
    let mut empty = record.clone();
    empty.path = run_dir.path().join("empty.dump");
    std::fs::write(&empty.path, b"").unwrap();
    let error = backup::check_record(&empty).unwrap_err();
    assert!(matches!(error, BackupError::Empty { .. }), "{error:?}");
    assert!(error.to_string().contains("will not go on"), "{error}");
}

#[tokio::test]
async fn pg_dump_gets_the_password_from_the_environment_and_a_bad_dump_is_refused() {
    let pg = TestPg::start();
    let run_dir = tempfile::tempdir().unwrap();
    // A pg_dump that records how it was called and writes something that is no dump.
    let fake = run_dir.path().join("fake-pg_dump");
    let calls = run_dir.path().join("calls");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"args: $*\" >> {calls}\necho \"password set: ${{PGPASSWORD:+yes}}\" >> {calls}\nwhile [ $# -gt 1 ]; do shift; done\necho junk > \"$1\"\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tools = PgTools {
        pg_dump: fake,
        ..tools(&pg)
    };
    let error = backup::dump_database(&tools, &target(&pg, "kong"), run_dir.path(), "x.dump")
        .await
        .unwrap_err();
    assert!(
        matches!(error, BackupError::Unverifiable { .. }),
        "{error:?}"
    );
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert!(calls.contains("password set: yes"), "{calls}");
    assert!(
        !calls.contains(PASSWORD),
        "the password reached argv: {calls}"
    );
}

#[tokio::test]
async fn restore_over_live_takes_a_safety_dump_first_and_reports_new_tables() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::New);
    let original = rows(&pg, "kong");
    let run_dir = tempfile::tempdir().unwrap();
    let tools = tools(&pg);
    let t = target(&pg, "kong");
    let record = backup::dump_database(&tools, &t, run_dir.path(), "x.dump")
        .await
        .unwrap();

    // What an upgrade leaves behind: a finished migration, a table of the new version, a
    // route written after the backup.
    pg.psql(
        "kong",
        "UPDATE schema_meta SET executed = array_append(executed, '025_390_to_3100'), last_executed = '025_390_to_3100' WHERE subsystem = 'core'; \
         CREATE TABLE clustering_sync_version (version SERIAL PRIMARY KEY); \
         INSERT INTO routes (id, name, paths) VALUES ('b0000000-0000-4000-8000-000000000009', 'late', '{/late}');",
    );

    let report = restore::restore_over_live(&tools, &record, &t, run_dir.path())
        .await
        .unwrap();
    assert_eq!(rows(&pg, "kong"), original);
    assert_eq!(report.schema.core_generation(), Some("024_380_to_390"));
    assert_eq!(report.extra_tables, ["public.clustering_sync_version"]);
    let safety = report.safety_dump.expect("a safety dump");
    assert_eq!(mode(&safety.path), 0o600);
    backup::check_record(&safety).unwrap();

    // The safety dump holds the state from before the restore, late route included.
    restore::restore_into_new_database(&tools, &safety, &target(&pg, "before_restore"))
        .await
        .unwrap();
    assert_eq!(
        pg.psql(
            "before_restore",
            "SELECT name FROM routes WHERE name = 'late'"
        ),
        "late"
    );
}

#[tokio::test]
async fn the_freeze_guard_catches_a_row_written_after_the_backup() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let source = FreezeSource::Database(target(&pg, "kong"));
    let fingerprint = freeze::take(&source).await.unwrap();
    assert_eq!(fingerprint.entities["routes"].count, 2);
    assert!(
        !fingerprint.entities.contains_key("upstreams"),
        "absent tables are skipped"
    );
    assert!(
        freeze::check(&fingerprint, &source)
            .await
            .unwrap()
            .is_empty()
    );

    pg.psql(
        "kong",
        "INSERT INTO routes (id, name, paths) VALUES ('b0000000-0000-4000-8000-000000000003', 'new', '{/new}')",
    );
    let changes = freeze::check(&fingerprint, &source).await.unwrap();
    assert_eq!(
        changes,
        ["routes: 2 → 3, newest created_at changed, newest updated_at changed"]
    );

    // An edit straight in the database that leaves updated_at alone is caught too.
    let fingerprint = freeze::take(&source).await.unwrap();
    pg.psql(
        "kong",
        "UPDATE services SET port = 9090 WHERE name = 'billing'",
    );
    assert_eq!(
        freeze::check(&fingerprint, &source).await.unwrap(),
        ["services: rows were edited (same ids and timestamps)"]
    );

    // What `kong migrations up` does to the schema is no configuration write: a column
    // added with a default, and a new, empty entity table.
    let fingerprint = freeze::take(&source).await.unwrap();
    pg.psql(
        "kong",
        "ALTER TABLE routes ADD COLUMN priority BIGINT DEFAULT 0; \
         CREATE TABLE upstreams (id UUID PRIMARY KEY, name TEXT, created_at TIMESTAMPTZ)",
    );
    assert_eq!(
        freeze::check(&fingerprint, &source).await.unwrap(),
        Vec::<String>::new()
    );
    // A column taken away is named.
    pg.psql("kong", "ALTER TABLE consumers DROP COLUMN username");
    let changes = freeze::check(&fingerprint, &source).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].starts_with("consumers: column(s) gone: username"),
        "{changes:?}"
    );
}

type Routes = Arc<Mutex<Vec<serde_json::Value>>>;

/// Kong 3.9.1's Admin API with one service, the routes the test changes, and every other
/// collection of its version empty.
async fn admin_server(routes: Routes) -> String {
    support::http::serve(
        Router::new()
            .route(
                "/",
                get(|| async { Json(support::http::node_info("3.9.1", "traditional", "postgres")) }),
            )
            .route(
                "/{collection}",
                get(|| async { Json(json!({"data": [], "next": null})) }),
            )
            .route(
                "/routes",
                get(|State(routes): State<Routes>| async move {
                    Json(json!({"data": routes.lock().unwrap().clone(), "next": null}))
                }),
            )
            .route(
                "/services",
                get(|| async {
                    Json(json!({"data": [{"id": "s1", "name": "orders", "created_at": 100, "updated_at": 100}], "next": null}))
                }),
            )
            .with_state(routes),
    )
    .await
}

#[tokio::test]
async fn the_freeze_guard_works_through_the_admin_api_and_the_export_is_a_backup() {
    let routes: Routes = Arc::new(Mutex::new(vec![
        json!({"id": "r1", "name": "orders", "created_at": 100, "updated_at": 150}),
    ]));
    let base = admin_server(routes.clone()).await;
    let (client, _) = AdminClient::new(AdminClientOptions::default()).unwrap();
    let source = FreezeSource::AdminApi {
        client: client.clone(),
        admin_url: base.clone(),
    };
    let fingerprint = freeze::take(&source).await.unwrap();

    let run_dir = tempfile::tempdir().unwrap();
    let record = backup::export_through_admin_api(&client, &base, run_dir.path(), "export.json")
        .await
        .unwrap();
    assert_eq!(mode(&record.path), 0o600);
    // Every collection of 3.9.1 (filter-chains answers 200 here: this stand-in has wasm on).
    assert_eq!(
        record.verified,
        "read back: acls 0, basic-auths 0, ca_certificates 0, certificates 0, consumers 0, \
         filter-chains 0, hmac-auths 0, jwts 0, key-auths 0, key-sets 0, keys 0, oauth2 0, \
         plugins 0, routes 1, services 1, snis 0, targets 0, upstreams 0, vaults 0"
    );
    let export: backup::AdminExport =
        serde_json::from_slice(&std::fs::read(&record.path).unwrap()).unwrap();
    assert_eq!(export.entities["routes"][0]["name"], "orders");

    routes
        .lock()
        .unwrap()
        .push(json!({"id": "r2", "name": "late", "created_at": 200, "updated_at": 200}));
    let changes = freeze::check(&fingerprint, &source).await.unwrap();
    assert_eq!(
        changes,
        ["routes: 1 → 2, newest created_at changed, newest updated_at changed"]
    );

    // A fingerprint is only compared with one from the same place.
    let elsewhere = FreezeSource::AdminApi {
        client,
        admin_url: format!("{base}/other"),
    };
    assert!(freeze::check(&fingerprint, &elsewhere).await.is_err());
}

/// The declarative file lives on the DB-less node: it is read through the node's executor
/// (here the local one), kept with mode 0600 and checked to be Kong's format.
#[tokio::test]
async fn declarative_config_is_fetched_through_the_executor_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("kong.yml");
    std::fs::write(
        &source,
        "_format_version: \"3.0\"\nservices:\n- name: orders\n  url: http://orders\n",
    )
    .unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let executor = LocalExecutor::new();
    let timeout = Duration::from_secs(10);
    let fetch = |name: &'static str| {
        let (executor, source, run_dir) = (&executor, source.clone(), run_dir.path().to_path_buf());
        async move { backup::fetch_declarative_config(executor, &source, &run_dir, name, timeout).await }
    };
    let record = fetch("kong.yml").await.unwrap();
    assert_eq!(record.verified, "YAML with _format_version 3.0");
    assert_eq!(mode(&record.path), 0o600);
    assert_eq!(
        std::fs::read(&record.path).unwrap(),
        std::fs::read(&source).unwrap()
    );

    std::fs::write(&source, "services: []\n").unwrap();
    let error = fetch("no-version.yml").await.unwrap_err();
    assert!(error.to_string().contains("no _format_version"), "{error}");
    std::fs::write(&source, "").unwrap();
    let error = fetch("empty.yml").await.unwrap_err();
    assert!(error.to_string().contains("is empty"), "{error}");
    std::fs::remove_file(&source).unwrap();
    let error = fetch("absent.yml").await.unwrap_err();
    assert!(matches!(error, BackupError::Fetch { .. }), "{error:?}");
}

#[tokio::test]
async fn kong_conf_is_fetched_through_the_executor() {
    let remote = tempfile::tempdir().unwrap();
    let conf = remote.path().join("kong.conf");
    std::fs::write(&conf, "database = postgres\npg_host = db\n").unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let record = backup::fetch_file(
        &LocalExecutor::new(),
        &conf,
        "kong-conf",
        run_dir.path(),
        "kong.conf",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&record.path).unwrap(),
        "database = postgres\npg_host = db\n"
    );
    assert_eq!(mode(&record.path), 0o600);
    assert!(record.verified.contains("2 lines"), "{}", record.verified);

    let error = backup::fetch_file(
        &LocalExecutor::new(),
        &remote.path().join("missing.conf"),
        "kong-conf",
        run_dir.path(),
        "missing.conf",
        Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("No such file"), "{error}");
}

/// What a client sends instead of a protocol version to ask for TLS.
const SSL_REQUEST_CODE: i32 = 80877103;

/// A server that speaks just enough of PostgreSQL's protocol to let a client log in, then
/// never answers a query: a database that hangs.
async fn silent_postgres() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((HOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // The startup message: its length, then the rest. A client that prefers
                // TLS (libpq's default) asks for it first; the answer is no ('N').
                loop {
                    let length = socket.read_i32().await.unwrap_or(0);
                    let mut rest = vec![0u8; (length - 4).max(0) as usize];
                    if socket.read_exact(&mut rest).await.is_err() {
                        return;
                    }
                    if rest != SSL_REQUEST_CODE.to_be_bytes() {
                        break;
                    }
                    if socket.write_all(b"N").await.is_err() {
                        return;
                    }
                }
                // AuthenticationOk, then ReadyForQuery (idle).
                let mut hello = vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0];
                hello.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
                if socket.write_all(&hello).await.is_err() {
                    return;
                }
                let mut sink = [0u8; 1024];
                while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    port
}

#[tokio::test]
async fn a_database_that_stops_answering_fails_the_restore_at_the_query_timeout() {
    let port = silent_postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("x.dump");
    std::fs::write(&dump, b"not read: the restore stops before pg_restore").unwrap();
    let record = backup::BackupRecord {
        kind: "database".into(),
        source: "test".into(),
        size: std::fs::metadata(&dump).unwrap().len(),
        sha256: backup::sha256_file(&dump).unwrap(),
        path: dump,
        verified: "test".into(),
    };
    let target = PgTarget {
        host: HOST.into(),
        port,
        database: "kong_y".into(),
        user: SUPERUSER.into(),
        password: None,
        password_source: None,
        connect_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_millis(500),
        tls: Default::default(),
    };
    let tools = PgTools::discover(Duration::from_secs(5));
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        restore::restore_into_new_database(&tools, &record, &target),
    )
    .await
    .expect("the restore gave up at its query timeout")
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("looking for Y's database") && text.contains("took longer than 500ms"),
        "{text}"
    );
}

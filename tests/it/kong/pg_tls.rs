//! TLS to a real PostgreSQL 15 with `ssl = on` and a TLS-only `pg_hba.conf`, its certificate
//! (for `localhost`) signed by a CA made here: libpq's sslmode values for kongup's own
//! connections and for `pg_dump`, the errors that tell TLS failures apart, and
//! `kongup db status` end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::support::pg::{CERT_USER, HOST, KongDbState, PASSWORD, SUPERUSER, ServerTls, TestPg};
use crate::support::tls::{self as pki, Pki};
use assert_cmd::Command;
use kongup::actions::kong::KongAccess;
use kongup::kong::backup::{self, BackupError, PgTools};
use kongup::kong::client::AdminClientOptions;
use kongup::kong::database::{KongDatabase, PgDatabase};
use kongup::kong::pg::{self, PgError, PgTarget};
use kongup::kong::pg_tls::{CaFile, PgTls, SslMode};

/// The name the server's certificate holds; `HOST` (127.0.0.1) is not in it.
const CERT_NAME: &str = "localhost";

struct TlsServer {
    pg: TestPg,
    /// Holds the CA files.
    dir: tempfile::TempDir,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server has.
    other_ca: PathBuf,
}

fn tls_server() -> TlsServer {
    let server_pki: Pki = pki::make_pki_for(&[CERT_NAME]);
    let other: Pki = pki::make_pki();
    let pg = TestPg::start_tls(ServerTls {
        cert_pem: &server_pki.server_cert_pem,
        key_pem: &server_pki.server_key_pem,
        client_ca_pem: None,
    });
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::write(dir.path(), "pg-ca.pem", &server_pki.ca_pem);
    let other_ca = pki::write(dir.path(), "other-ca.pem", &other.ca_pem);
    TlsServer {
        pg,
        dir,
        ca,
        other_ca,
    }
}

fn tls(mode: SslMode, ca: Option<&Path>) -> PgTls {
    PgTls {
        mode,
        ca_file: ca.map(|path| CaFile {
            path: path.to_path_buf(),
            origin: "sslrootcert in the address".into(),
        }),
        client_cert: None,
    }
}

fn target(pg: &TestPg, host: &str, tls: PgTls) -> PgTarget {
    PgTarget {
        host: host.into(),
        ..target_at(pg.port, tls)
    }
}

/// Kong's database on 127.0.0.1:`port`.
fn target_at(port: u16, tls: PgTls) -> PgTarget {
    PgTarget {
        host: HOST.into(),
        port,
        database: "kong".into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: Some("environment variable KONGUP_TEST_PGPW".into()),
        connect_timeout: Duration::from_secs(10),
        query_timeout: Duration::from_secs(10),
        tls,
    }
}

/// Whether the server sees this connection as TLS (`pg_stat_ssl`).
async fn server_sees_tls(target: &PgTarget) -> bool {
    let client = target.connect().await.unwrap();
    let rows = target
        .query(
            &client,
            "reading pg_stat_ssl",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        )
        .await
        .unwrap();
    rows[0].get(0)
}

fn connect_error(result: Result<impl std::fmt::Debug, PgError>) -> (PgError, String) {
    let error = result.expect_err("the connection was refused");
    let text = error.to_string();
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    (error, text)
}

#[tokio::test]
async fn verify_full_needs_the_ca_and_the_name_verify_ca_only_the_ca() {
    let server = tls_server();
    let pg = &server.pg;

    let full = target(pg, CERT_NAME, tls(SslMode::VerifyFull, Some(&server.ca)));
    let state = pg::schema_state(&full).await.unwrap();
    assert_eq!(state.core_generation(), Some("025_390_to_3100"));
    assert!(server_sees_tls(&full).await);

    // 127.0.0.1 is the same server, but not a name its certificate holds.
    let (error, text) = connect_error(
        target(pg, HOST, tls(SslMode::VerifyFull, Some(&server.ca)))
            .connect()
            .await,
    );
    assert!(
        matches!(error, PgError::HostnameMismatch { .. }),
        "{error:?}"
    );
    assert!(text.contains("does not name \"127.0.0.1\""), "{text}");
    assert!(
        text.contains(&format!("it names {CERT_NAME}")),
        "names what it holds: {text}"
    );
    assert!(
        text.contains("sslmode=verify-ca"),
        "says what to do: {text}"
    );

    // verify-ca checks the chain only, so the name does not matter.
    let chain_only = target(pg, HOST, tls(SslMode::VerifyCa, Some(&server.ca)));
    assert!(server_sees_tls(&chain_only).await);

    // A CA that did not sign the certificate: named, with what to do.
    let (error, text) = connect_error(
        target(
            pg,
            CERT_NAME,
            tls(SslMode::VerifyFull, Some(&server.other_ca)),
        )
        .connect()
        .await,
    );
    assert!(
        matches!(error, PgError::CertificateUntrusted { .. }),
        "{error:?}"
    );
    assert!(
        text.contains(&format!(
            "the CA file {} (sslrootcert in the address)",
            server.other_ca.display()
        )),
        "{text}"
    );
    assert!(text.contains("sslrootcert=PATH"), "{text}");
    // verify-ca rejects it as well: the chain is what it checks.
    let (error, _) = connect_error(
        target(pg, HOST, tls(SslMode::VerifyCa, Some(&server.other_ca)))
            .connect()
            .await,
    );
    assert!(
        matches!(error, PgError::CertificateUntrusted { .. }),
        "{error:?}"
    );

    // Without a CA file the system's roots decide, and they do not know the test CA.
    let (error, text) = connect_error(
        target(pg, CERT_NAME, tls(SslMode::VerifyFull, None))
            .connect()
            .await,
    );
    assert!(
        matches!(error, PgError::CertificateUntrusted { .. }),
        "{error:?}"
    );
    assert!(text.contains("the system's trusted roots"), "{text}");

    // libpq's rule: require with a CA file checks the chain.
    let (error, _) = connect_error(
        target(pg, HOST, tls(SslMode::Require, Some(&server.other_ca)))
            .connect()
            .await,
    );
    assert!(
        matches!(error, PgError::CertificateUntrusted { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn require_and_prefer_encrypt_without_a_ca_and_disable_meets_a_tls_only_server() {
    let server = tls_server();
    let pg = &server.pg;

    let require = target(pg, HOST, tls(SslMode::Require, None));
    assert!(server_sees_tls(&require).await);
    let warnings = require.tls_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not checked"), "{warnings:?}");

    let prefer = target(pg, HOST, tls(SslMode::Prefer, None));
    assert!(server_sees_tls(&prefer).await);
    assert!(prefer.tls_warnings().is_empty());

    // The server's pg_hba.conf has only `hostssl` lines.
    let (error, text) = connect_error(
        target(pg, HOST, tls(SslMode::Disable, None))
            .connect()
            .await,
    );
    assert!(matches!(error, PgError::TlsRequired { .. }), "{error:?}");
    assert!(text.contains("only over TLS"), "{text}");
    assert!(text.contains("sslmode=verify-full"), "{text}");
    assert!(!text.contains("password"), "not a password problem: {text}");
}

#[tokio::test]
async fn a_server_without_tls_refuses_require_with_the_way_out() {
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::write(dir.path(), "ca.pem", &pki::make_pki().ca_pem);

    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        let (error, text) = connect_error(target(&pg, HOST, tls(mode, Some(&ca))).connect().await);
        assert!(matches!(error, PgError::TlsUnsupported { .. }), "{error:?}");
        assert!(text.contains("does not accept TLS"), "{text}");
        assert!(
            text.contains(&format!("sslmode={}", mode.as_str())),
            "{text}"
        );
        assert!(text.contains("ssl = on"), "says what to do: {text}");
    }
    // prefer falls back to a plain connection, as libpq does.
    let prefer = target(&pg, HOST, tls(SslMode::Prefer, None));
    assert!(!server_sees_tls(&prefer).await);
}

#[test]
fn a_run_shows_the_database_warning_with_the_admin_ones() {
    let require = target_at(40001, tls(SslMode::Require, None));
    let database: Arc<dyn KongDatabase> = Arc::new(PgDatabase::new(
        require,
        PgTools::discover(Duration::from_secs(5)),
    ));
    let access = KongAccess::new(AdminClientOptions::default(), Some(database), None).unwrap();
    assert_eq!(access.tls_warnings.len(), 1, "{:?}", access.tls_warnings);
    assert!(
        access.tls_warnings[0].contains("sslmode=require for PostgreSQL at 127.0.0.1:40001/kong"),
        "{:?}",
        access.tls_warnings
    );
}

fn tools(pg: &TestPg) -> PgTools {
    PgTools {
        pg_dump: pg.client_bin("pg_dump"),
        pg_restore: pg.client_bin("pg_restore"),
        timeout: Duration::from_secs(120),
    }
}

#[tokio::test]
async fn pg_dump_checks_the_server_as_kongup_does() {
    let server = tls_server();
    let pg = &server.pg;
    let run_dir = tempfile::tempdir().unwrap();

    // libpq 15 has no system roots of its own: verify-full succeeds only because
    // PGSSLROOTCERT reached it.
    let full = target(pg, CERT_NAME, tls(SslMode::VerifyFull, Some(&server.ca)));
    let record = backup::dump_database(&tools(pg), &full, run_dir.path(), "x.dump")
        .await
        .unwrap();
    assert!(record.size > 0);

    // libpq's default (prefer) would take this; it fails only because PGSSLMODE said
    // verify-full.
    let wrong_name = target(pg, HOST, tls(SslMode::VerifyFull, Some(&server.ca)));
    let error = backup::dump_database(&tools(pg), &wrong_name, run_dir.path(), "y.dump")
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, BackupError::Tool(_)), "{error:?}");
    assert!(text.contains("does not match host name"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

/// `kongup db status` with a clean libpq environment and a home without
/// `~/.postgresql/root.crt`.
fn db_status(home: &Path) -> Command {
    let mut command = Command::cargo_bin("kongup").unwrap();
    command
        .args(["db", "status"])
        .env("PGPASSWORD", PASSWORD)
        .env("HOME", home)
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGSSLCERT")
        .env_remove("PGSSLKEY")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .timeout(Duration::from_secs(60));
    command
}

fn texts(output: &std::process::Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "the password leaked:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn db_status_speaks_tls_end_to_end() {
    let server = tls_server();
    let port = server.pg.port;
    let home = server.dir.path();

    let url = format!(
        "postgres://{SUPERUSER}@{CERT_NAME}:{port}/kong?sslmode=verify-full&sslrootcert={}",
        server.ca.display()
    );
    let output = db_status(home).args(["--pg", &url]).output().unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("025_390_to_3100"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // require: works without a CA, with the warning.
    let url = format!("postgres://{SUPERUSER}@{HOST}:{port}/kong?sslmode=require");
    let output = db_status(home).args(["--pg", &url]).output().unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("warning: sslmode=require"), "{stderr}");

    // verify-full without sslrootcert trusts the system's roots, which SSL_CERT_FILE sets.
    let url = format!("postgres://{SUPERUSER}@{CERT_NAME}:{port}/kong?sslmode=verify-full");
    let output = db_status(home)
        .args(["--pg", &url])
        .env("SSL_CERT_FILE", &server.ca)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let output = db_status(home)
        .args(["--pg", &url])
        .env("SSL_CERT_FILE", &server.other_ca)
        .output()
        .unwrap();
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not trust") && stderr.contains("the system's trusted roots"),
        "{stderr}"
    );

    // PGSSLMODE applies when the address says nothing, as in libpq.
    let url = format!("postgres://{SUPERUSER}@{HOST}:{port}/kong");
    let output = db_status(home)
        .args(["--pg", &url])
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("only over TLS"), "{stderr}");

    // The key=value form takes the same parameters.
    let conninfo = format!(
        "host={CERT_NAME} port={port} user={SUPERUSER} dbname=kong sslmode=verify-full sslrootcert='{}'",
        server.ca.display()
    );
    let output = db_status(home)
        .args(["--pg", &conninfo, "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["pending_total"], 0);

    // A plan's database.tls, with the password from the plan's source.
    let plan = pki::write(
        home,
        "plan.yaml",
        &format!(
            "name: tls
from: 3.4.3
to: 3.5.0
mode: traditional
strategy: in-place
clusters:
  x:
    nodes: [{{name: x1, proxy_url: http://127.0.0.1:8000}}]
    database:
      host: {CERT_NAME}
      port: {port}
      user: {SUPERUSER}
      password: {{env: KONGUP_TEST_PGPW}}
      tls: {{mode: verify-full, ca_file: {}}}
  y:
    nodes: [{{name: y1, proxy_url: http://127.0.0.1:9000}}]
",
            server.ca.display()
        ),
    );
    let output = db_status(home)
        .arg("--plan")
        .arg(&plan)
        .env_remove("PGPASSWORD")
        .env("KONGUP_TEST_PGPW", PASSWORD)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("025_390_to_3100"), "{stdout}");
}

fn as_cert_user(target: PgTarget) -> PgTarget {
    PgTarget {
        user: CERT_USER.into(),
        ..target
    }
}

/// A server that asks for a client certificate besides the password
/// (`clientcert=verify-full`): kongup presents the plan's, `pg_dump` gets the same one
/// through libpq's `PGSSLCERT`/`PGSSLKEY`, and without one, or with one the server's CA did
/// not sign, the error says which and what to do.
#[tokio::test]
async fn a_client_certificate_is_presented_to_a_server_that_asks_for_one() {
    use std::os::unix::fs::PermissionsExt;

    let server_pki = pki::make_pki_with_clients(&[CERT_NAME], &[CERT_USER, "someone_else"]);
    let stranger = pki::make_pki_with_clients(&[CERT_NAME], &[CERT_USER]);
    let pg = TestPg::start_tls(ServerTls {
        cert_pem: &server_pki.server_cert_pem,
        key_pem: &server_pki.server_key_pem,
        client_ca_pem: Some(&server_pki.ca_pem),
    });
    pg.create_kong_database("kong", KongDbState::UpToDate);
    pg.psql(
        "kong",
        &format!("CREATE ROLE {CERT_USER} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_read_all_data"),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::write(dir.path(), "pg-ca.pem", &server_pki.ca_pem);
    let client_files = |name: &str, pki: &Pki| {
        let cert = pki::write(dir.path(), &format!("{name}.crt"), &pki.client_cert_pem);
        let key = pki::write(dir.path(), &format!("{name}.key"), &pki.client_key_pem);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        (cert, key)
    };
    let with_cert = |(cert, key): (PathBuf, PathBuf)| {
        let tls = tls(SslMode::VerifyFull, Some(&ca))
            .with_client_cert(
                Some(cert),
                Some(key),
                "database.tls.client_cert in the plan",
            )
            .unwrap();
        as_cert_user(target(&pg, CERT_NAME, tls))
    };

    let presented = with_cert(client_files("kong", &server_pki));
    let state = pg::schema_state(&presented).await.unwrap();
    assert_eq!(state.core_generation(), Some("025_390_to_3100"));
    let run_dir = tempfile::tempdir().unwrap();
    let record = backup::dump_database(&tools(&pg), &presented, run_dir.path(), "x.dump")
        .await
        .unwrap();
    assert!(record.size > 0);

    let (error, text) = connect_error(
        as_cert_user(target(&pg, CERT_NAME, tls(SslMode::VerifyFull, Some(&ca))))
            .connect()
            .await,
    );
    assert!(
        matches!(error, PgError::ClientCertMissing { .. }),
        "{error:?}"
    );
    assert!(
        text.contains("asks user kong_cert for a client certificate")
            && text.contains("database.tls.client_cert"),
        "{text}"
    );

    // `kongup db status` takes the certificate as libpq does: sslcert and sslkey in the
    // address, or PGSSLCERT and PGSSLKEY.
    let (cert, key) = client_files("kong", &server_pki);
    let base = format!(
        "postgres://{CERT_USER}@{CERT_NAME}:{}/kong?sslmode=verify-full&sslrootcert={}",
        pg.port,
        ca.display()
    );
    let in_address = format!("{base}&sslcert={}&sslkey={}", cert.display(), key.display());
    let output = db_status(dir.path())
        .args(["--pg", &in_address])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("025_390_to_3100"), "{stdout}");
    let output = db_status(dir.path())
        .args(["--pg", &base])
        .env("PGSSLCERT", &cert)
        .env("PGSSLKEY", &key)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = db_status(dir.path())
        .args(["--pg", &in_address])
        .output()
        .unwrap();
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("chmod 0600"), "{stderr}");

    // Signed by the server's CA, but naming another user: with clientcert=verify-full the
    // server calls that a failed password, and the error says what else it may mean.
    let (other_cert, other_key) = &server_pki.extra_clients[0];
    let cert = pki::write(dir.path(), "someone-else.crt", other_cert);
    let key = pki::write(dir.path(), "someone-else.key", other_key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (error, text) = connect_error(with_cert((cert, key)).connect().await);
    assert!(matches!(error, PgError::AuthFailed { .. }), "{error:?}");
    assert!(
        text.contains("password authentication failed")
            && text.contains(&format!("does not name {CERT_USER} as its common name")),
        "{text}"
    );

    // Signed by a CA of the same name the server does not have.
    let (cert, key) = client_files("stranger", &stranger);
    let (error, text) = connect_error(with_cert((cert.clone(), key)).connect().await);
    assert!(
        matches!(error, PgError::ClientCertRefused { .. }),
        "{error:?}"
    );
    assert!(
        text.contains(&cert.display().to_string())
            && text.contains("database.tls.client_cert in the plan")
            && text.contains("ssl_ca_file"),
        "{text}"
    );
}

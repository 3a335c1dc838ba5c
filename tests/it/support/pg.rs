//! A throwaway PostgreSQL for tests: `initdb` + `pg_ctl` in a temporary directory on a free
//! loopback port, stopped and deleted when the value is dropped (also when a test panics).
//!
//! Binaries come from PATH, else the newest `/usr/lib/postgresql/*/bin`. PostgreSQL refuses
//! to run as root, so when the tests run as root the server runs as the `postgres` user.
//! The superuser is `postgres` with password `PASSWORD` (scram-sha-256 over TCP), so the
//! code under test must pass the password the way it would in production.
//! [`TestPg::start_tls`] turns `ssl` on and takes connections over TLS only (`hostssl`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SUPERUSER: &str = "postgres";
pub const PASSWORD: &str = "kongup-test-pw";
pub const HOST: &str = "127.0.0.1";

pub struct TestPg {
    /// Holds the data directory, socket and log; removed after the server stops.
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    run_as_postgres: bool,
    running: bool,
}

/// The directory holding `pg_ctl` and friends.
pub fn bin_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pg_ctl").is_file() && dir.join("initdb").is_file() {
                return dir;
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL server binaries (pg_ctl, initdb) are neither on PATH nor in /usr/lib/postgresql/*/bin: install postgresql")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((HOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// The server's certificate and key, PEM.
/// The user a server started with a client CA asks for a client certificate.
pub const CERT_USER: &str = "kong_cert";

pub struct ServerTls<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
    /// When set, the server also asks [`CERT_USER`] for a client certificate signed by this
    /// CA whose common name is the user's (`clientcert=verify-full`), besides the password.
    pub client_ca_pem: Option<&'a str>,
}

impl TestPg {
    /// Starts a new server; panics with the server's log when it cannot.
    pub fn start() -> TestPg {
        TestPg::start_with(None)
    }

    /// Starts a server with `ssl = on` and this certificate, whose `pg_hba.conf` takes
    /// connections over TLS only, as a managed database that forces TLS does.
    pub fn start_tls(tls: ServerTls<'_>) -> TestPg {
        TestPg::start_with(Some(tls))
    }

    fn start_with(tls: Option<ServerTls<'_>>) -> TestPg {
        let bin = bin_dir();
        let run_as_postgres = nix::unistd::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("kongup-pg-")
            .tempdir()
            .expect("create a temporary directory");
        if run_as_postgres {
            let user = nix::unistd::User::from_name(SUPERUSER)
                .expect("look up the postgres user")
                .expect("running as root needs a `postgres` user to run PostgreSQL as");
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))
                .expect("hand the temporary directory to the postgres user");
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("write the password file");
        let data = dir.path().join("data");
        let mut pg = TestPg {
            dir,
            data,
            bin,
            port: 0,
            run_as_postgres,
            running: false,
        };
        if run_as_postgres {
            pg.chown_to_postgres(&pwfile);
        }
        let initdb = pg.server_command(
            "initdb",
            &[
                "-D".as_ref(),
                pg.data.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth=scram-sha-256".as_ref(),
                "--pwfile".as_ref(),
                pwfile.as_os_str(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        expect_success("initdb", initdb);
        let tls_options = tls.map(|tls| pg.tls_files(tls)).unwrap_or_default();
        // A port picked free can be taken by another test before the server binds it.
        for _ in 0..5 {
            pg.port = free_port();
            let options = format!(
                "-c listen_addresses={HOST} -c port={} -c unix_socket_directories={} -c fsync=off -c full_page_writes=off{tls_options}",
                pg.port,
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("server.log");
            let output = pg.server_command(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    pg.data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "-o".as_ref(),
                    options.as_ref(),
                    "start".as_ref(),
                ],
            );
            if output.status.success() {
                pg.running = true;
                return pg;
            }
        }
        let log = std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default();
        panic!("PostgreSQL did not start on a free port after 5 tries; server log:\n{log}");
    }

    /// Writes the certificate, the key (0600, the server refuses a key others can read) and
    /// a TLS-only `pg_hba.conf`; returns the server options that use them.
    fn tls_files(&self, tls: ServerTls<'_>) -> String {
        use std::os::unix::fs::PermissionsExt;
        let cert = self.dir.path().join("server.crt");
        let key = self.dir.path().join("server.key");
        let hba = self.dir.path().join("pg_hba.conf");
        std::fs::write(&cert, tls.cert_pem).expect("write the server certificate");
        std::fs::write(&key, tls.key_pem).expect("write the server key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the server key");
        let client_ca = self.dir.path().join("client-ca.crt");
        let cert_user = match tls.client_ca_pem {
            Some(pem) => {
                std::fs::write(&client_ca, pem).expect("write the client CA");
                format!("hostssl all {CERT_USER} {HOST}/32 scram-sha-256 clientcert=verify-full\n")
            }
            None => String::new(),
        };
        std::fs::write(
            &hba,
            format!(
                "local all all scram-sha-256\n{cert_user}hostssl all all {HOST}/32 scram-sha-256\n"
            ),
        )
        .expect("write pg_hba.conf");
        if self.run_as_postgres {
            for path in [&cert, &key, &hba, &client_ca] {
                if path.exists() {
                    self.chown_to_postgres(path);
                }
            }
        }
        let mut options = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c hba_file={}",
            cert.display(),
            key.display(),
            hba.display()
        );
        if tls.client_ca_pem.is_some() {
            options.push_str(&format!(" -c ssl_ca_file={}", client_ca.display()));
        }
        options
    }

    fn chown_to_postgres(&self, path: &Path) {
        let user = nix::unistd::User::from_name(SUPERUSER)
            .expect("look up the postgres user")
            .expect("postgres user");
        nix::unistd::chown(path, Some(user.uid), Some(user.gid)).expect("chown to postgres");
    }

    /// Runs a server binary, as the postgres user when we are root.
    fn server_command(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let path = self.bin.join(program);
        let mut command = if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.args(args);
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// A client binary (`psql`, `pg_dump`, `pg_restore`) of the same installation.
    pub fn client_bin(&self, program: &str) -> PathBuf {
        let same = self.bin.join(program);
        if same.is_file() {
            same
        } else {
            PathBuf::from(program)
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`, without the password.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@{HOST}:{}/{database}", self.port)
    }

    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.client_bin("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", HOST, "-p", &self.port.to_string(), "-U", SUPERUSER])
            .args(["-d", database, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Runs SQL and returns psql's unaligned, tuples-only output; panics on an SQL error.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql)
            .unwrap_or_else(|e| panic!("psql on {database} failed: {e}\nSQL: {sql}"))
    }

    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// Creates database `name` holding Kong-like tables in the given migration state.
    pub fn create_kong_database(&self, name: &str, state: KongDbState) {
        self.create_database(name);
        if state == KongDbState::NeedsBootstrap {
            return;
        }
        self.psql(name, KONG_TABLES);
        let (core_executed, core_pending): (&[&str], &[&str]) = match state {
            KongDbState::UpToDate => (CORE_3100, &[]),
            KongDbState::Pending => (
                &CORE_3100[..CORE_3100.len() - 1],
                &CORE_3100[CORE_3100.len() - 1..],
            ),
            KongDbState::New => (&CORE_3100[..CORE_3100.len() - 1], &[]),
            KongDbState::NeedsBootstrap => unreachable!("returned above"),
        };
        let (rl_executed, rl_pending): (&[&str], &[&str]) = match state {
            KongDbState::Pending => (
                &RATE_LIMITING[..RATE_LIMITING.len() - 1],
                &RATE_LIMITING[RATE_LIMITING.len() - 1..],
            ),
            _ => (RATE_LIMITING, &[]),
        };
        let insert = |subsystem: &str, executed: &[&str], pending: &[&str], null_pending: bool| {
            let last = executed
                .last()
                .map(|m| format!("'{m}'"))
                .unwrap_or("NULL".into());
            let pending = if null_pending && pending.is_empty() {
                "NULL".to_string()
            } else {
                sql_array(pending)
            };
            format!(
                "INSERT INTO schema_meta (key, subsystem, last_executed, executed, pending) VALUES ('schema_meta', '{subsystem}', {last}, {}, {pending});",
                sql_array(executed)
            )
        };
        // Core's empty pending is NULL (as Kong leaves it), a plugin's is `{}`: both read as empty.
        let sql = [
            insert("core", core_executed, core_pending, true),
            insert("rate-limiting", rl_executed, rl_pending, false),
            insert("acl", ACL, &[], true),
        ]
        .join("\n");
        self.psql(name, &sql);
        self.psql(name, SAMPLE_ROWS);
    }

    /// Stops the server now (the drop would do it too).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let output = self.server_command(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "30".as_ref(),
                "stop".as_ref(),
            ],
        );
        if !output.status.success() {
            eprintln!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        self.stop();
    }
}

fn expect_success(what: &str, output: Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sql_array(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|m| format!("\"{m}\"")).collect();
    format!("'{{{}}}'", quoted.join(","))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KongDbState {
    /// An empty database: `kong migrations bootstrap` never ran.
    NeedsBootstrap,
    /// Everything a 3.10 Kong knows has run.
    UpToDate,
    /// `up` of 3.10 ran but `finish` did not: core and rate-limiting have pending teardowns.
    Pending,
    /// A 3.9 database: a 3.10 Kong (the stand-in) has a new core migration for it.
    New,
}

/// Core migrations up to Kong 3.10; the last one has a teardown.
pub const CORE_3100: &[&str] = &[
    "000_base",
    "003_100_to_110",
    "004_110_to_120",
    "005_120_to_130",
    "006_130_to_140",
    "007_140_to_150",
    "008_150_to_200",
    "009_200_to_210",
    "010_210_to_211",
    "011_212_to_213",
    "012_213_to_220",
    "013_220_to_230",
    "014_230_to_260",
    "015_260_to_270",
    "016_270_to_280",
    "016_280_to_300",
    "017_300_to_310",
    "018_310_to_320",
    "019_320_to_330",
    "020_330_to_340",
    "021_340_to_350",
    "022_350_to_360",
    "023_360_to_370",
    "024_380_to_390",
    "025_390_to_3100",
];

pub const RATE_LIMITING: &[&str] = &[
    "000_base_rate_limiting",
    "003_10_to_112",
    "004_200_to_210",
    "005_320_to_330",
];

pub const ACL: &[&str] = &["000_base_acl", "002_130_to_140", "004_212_to_213"];

/// `schema_meta` and `locks` as Kong creates them, and a few core entity tables with the
/// columns the freeze guard and the backups read.
const KONG_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS schema_meta (
  key TEXT, subsystem TEXT, last_executed TEXT,
  executed TEXT[], pending TEXT[],
  PRIMARY KEY (key, subsystem));
CREATE TABLE IF NOT EXISTS locks (key TEXT PRIMARY KEY, owner TEXT, ttl TIMESTAMPTZ);
CREATE TABLE services (
  id UUID PRIMARY KEY, name TEXT UNIQUE, host TEXT NOT NULL, port INTEGER NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE routes (
  id UUID PRIMARY KEY, name TEXT UNIQUE, service_id UUID REFERENCES services (id),
  paths TEXT[], created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE consumers (
  id UUID PRIMARY KEY, username TEXT UNIQUE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE plugins (
  id UUID PRIMARY KEY, name TEXT NOT NULL, service_id UUID REFERENCES services (id),
  route_id UUID REFERENCES routes (id), config JSONB, enabled BOOLEAN NOT NULL DEFAULT true,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
"#;

const SAMPLE_ROWS: &str = r#"
INSERT INTO services (id, name, host, port, created_at, updated_at) VALUES
  ('a0000000-0000-4000-8000-000000000001', 'orders', 'orders.internal', 8080, '2025-01-01 10:00:00+00', '2025-02-01 10:00:00+00'),
  ('a0000000-0000-4000-8000-000000000002', 'billing', 'billing.internal', 8080, '2025-01-02 10:00:00+00', '2025-01-02 10:00:00+00');
INSERT INTO routes (id, name, service_id, paths, created_at, updated_at) VALUES
  ('b0000000-0000-4000-8000-000000000001', 'orders-route', 'a0000000-0000-4000-8000-000000000001', '{/orders}', '2025-01-01 10:00:00+00', '2025-01-01 10:00:00+00'),
  ('b0000000-0000-4000-8000-000000000002', 'billing-route', 'a0000000-0000-4000-8000-000000000002', '{/billing}', '2025-01-02 10:00:00+00', '2025-03-01 10:00:00+00');
INSERT INTO consumers (id, username, created_at, updated_at) VALUES
  ('c0000000-0000-4000-8000-000000000001', 'alice', '2025-01-03 10:00:00+00', '2025-01-03 10:00:00+00');
INSERT INTO plugins (id, name, service_id, config, created_at, updated_at) VALUES
  ('d0000000-0000-4000-8000-000000000001', 'rate-limiting', 'a0000000-0000-4000-8000-000000000001', '{"minute": 100}', '2025-01-04 10:00:00+00', '2025-01-04 10:00:00+00');
"#;

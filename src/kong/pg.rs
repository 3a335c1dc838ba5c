//! Kong's PostgreSQL database: connecting (with errors that say what to fix), reading the
//! migration state from `schema_meta`, and the preflight that refuses to start an upgrade
//! over an unfinished one.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::kong::pg_tls::{self, PgTls, RootCert, SslMode, TlsFailure};
use crate::kong::schema::{SchemaState, SubsystemState};
use crate::plan::model::{DatabaseSpec, Strategy};
use crate::secrets::Secret;

/// Where Kong's database is and how to log in. The password is held for the connection and
/// for the environment of `pg_dump`/`pg_restore`; it is never printed (a [`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// A host name, an IP address, or a directory holding the server's Unix socket.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<Secret>,
    /// Where the password came from, for error messages (e.g. "environment variable PGPASSWORD").
    pub password_source: Option<String>,
    pub connect_timeout: Duration,
    /// Limit for each query kongup runs.
    pub query_timeout: Duration,
    /// TLS as libpq's `sslmode`/`sslrootcert` say (see [`crate::kong::pg_tls`]).
    pub tls: PgTls,
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "could not connect to PostgreSQL at {address}: connection refused. Is the server running, and are the host and port right?"
    )]
    Refused { address: String },
    #[error("PostgreSQL at {address} refused the login of user {user}: {detail}. {}", password_hint(password_source.as_deref()))]
    AuthFailed {
        address: String,
        user: String,
        detail: String,
        password_source: Option<String>,
    },
    #[error(
        "PostgreSQL at {address} has no database named {database:?}: check the name (Kong's pg_database, default \"kong\")"
    )]
    DatabaseMissing { address: String, database: String },
    #[error(
        "PostgreSQL at {address} did not answer within {}: check the host, the port and any firewall",
        humantime::format_duration(*after)
    )]
    Timeout { address: String, after: Duration },
    #[error("could not connect to PostgreSQL at {address}: {detail}")]
    Connect { address: String, detail: String },
    #[error(
        "PostgreSQL at {address} does not accept TLS, and sslmode={mode} insists on it: turn TLS on at the server (ssl = on, with ssl_cert_file and ssl_key_file, in postgresql.conf), or, on a network you trust, connect with sslmode=prefer or sslmode=disable"
    )]
    TlsUnsupported { address: String, mode: &'static str },
    #[error(
        "PostgreSQL at {address} presented a certificate kongup does not trust: {detail}, trusting {ca_source}. Name the CA that signed the server's certificate with sslrootcert=PATH in the address (database.tls.ca_file in the plan); a managed database's provider publishes it (e.g. the RDS region bundle, the Cloud SQL instance's server CA)"
    )]
    CertificateUntrusted {
        address: String,
        ca_source: String,
        detail: String,
    },
    #[error(
        "the certificate of PostgreSQL at {address} does not name {host:?}, the host kongup connected to ({presented}): connect by a name the certificate holds, or use sslmode=verify-ca to check only that a trusted CA signed it"
    )]
    HostnameMismatch {
        address: String,
        host: String,
        presented: String,
    },
    #[error(
        "TLS with PostgreSQL at {address} failed (sslmode={mode}, trusting {ca_source}): {detail}"
    )]
    Tls {
        address: String,
        mode: &'static str,
        ca_source: String,
        detail: String,
    },
    #[error(
        "PostgreSQL at {address} takes user {user} only over TLS ({detail}): connect with sslmode=verify-full and the server's CA (sslrootcert=PATH; database.tls in the plan), or sslmode=require"
    )]
    TlsRequired {
        address: String,
        user: String,
        detail: String,
    },
    #[error("TLS to PostgreSQL at {address}: {detail}")]
    TlsSetup { address: String, detail: String },
    #[error(
        "PostgreSQL at {address} asks user {user} for a client certificate ({detail}) and kongup presented none: name it with database.tls.client_cert and client_key in the plan (sslcert= and sslkey= in the address, or PGSSLCERT and PGSSLKEY)"
    )]
    ClientCertMissing {
        address: String,
        user: String,
        detail: String,
    },
    #[error(
        "PostgreSQL at {address} refused kongup's client certificate {cert}: {detail}. It must be signed by a CA in the server's ssl_ca_file and, with clientcert=verify-full or cert authentication, name the user ({user}) as its common name"
    )]
    ClientCertRefused {
        address: String,
        user: String,
        /// The file and who named it.
        cert: String,
        detail: String,
    },
    #[error("{what} on {address} failed: {detail}")]
    Query {
        what: String,
        address: String,
        detail: String,
    },
    #[error("{what} on {address} took longer than {}", humantime::format_duration(*after))]
    QueryTimeout {
        what: String,
        address: String,
        after: Duration,
    },
    #[error("{0}")]
    BadTarget(String),
    #[error("cannot read the database password: {0}")]
    Secret(#[from] crate::secrets::SecretError),
}

fn password_hint(source: Option<&str>) -> String {
    match source {
        Some(source) => format!("kongup used the password from {source}: check it"),
        None => "kongup sent no password: export PGPASSWORD, or name the variable with --password-env (or the plan's password source)".to_string(),
    }
}

impl PgTarget {
    /// A database named in the plan; the password comes from its secret source, else from
    /// `PGPASSWORD` when that is set.
    pub fn from_spec(spec: &DatabaseSpec) -> Result<PgTarget, PgError> {
        let (password, password_source) = match &spec.password {
            Some(source) => (
                Some(crate::secrets::resolve(source)?),
                Some(source.describe()),
            ),
            None => password_from_env("PGPASSWORD"),
        };
        let tls = PgTls::resolve(
            spec.tls.mode,
            spec.tls.ca_file.clone().map(RootCert::File),
            "database.tls.ca_file in the plan",
        )
        .and_then(|tls| {
            // libpq presents no certificate over a Unix socket, so it looks for none.
            if pg_tls::is_unix_socket(&spec.host) {
                return Ok(tls);
            }
            tls.with_client_cert(
                spec.tls.client_cert.clone(),
                spec.tls.client_key.clone(),
                "database.tls.client_cert in the plan",
            )
        })
        .map_err(PgError::BadTarget)?;
        Ok(PgTarget {
            host: spec.host.clone(),
            port: spec.port,
            database: spec.name.clone(),
            user: spec.user.clone(),
            password,
            password_source,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            tls,
        })
    }

    /// A `postgres://user@host:port/db` URL (or `host=… dbname=…` key-value string) with
    /// the password from the environment variable `password_env`. A password inside the
    /// URL is refused: command lines are visible to every user of the machine. `sslmode`
    /// and `sslrootcert` are read as libpq reads them.
    pub fn from_url(url: &str, password_env: &str) -> Result<PgTarget, PgError> {
        let (url, address_tls) = pg_tls::take_tls_params(url).map_err(PgError::BadTarget)?;
        let tls = PgTls::resolve(
            address_tls.mode,
            address_tls.root_cert,
            "sslrootcert in the address",
        )
        .map_err(PgError::BadTarget)?;
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            PgError::BadTarget(format!(
                "cannot read the database address: {e}; write postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_password().is_some() {
            return Err(PgError::BadTarget(format!(
                "the database address holds a password: remove it and export it instead ({password_env}), since command lines can be read by every user of this machine"
            )));
        }
        let host = match config.get_hosts() {
            [] => "localhost".to_string(),
            [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
            [tokio_postgres::config::Host::Unix(path)] => path.display().to_string(),
            _ => {
                return Err(PgError::BadTarget(
                    "the database address names several hosts: name one".into(),
                ));
            }
        };
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => {
                return Err(PgError::BadTarget(
                    "the database address names several ports: name one".into(),
                ));
            }
        };
        let user = config
            .get_user()
            .map(str::to_string)
            .or_else(|| std::env::var("PGUSER").ok())
            .unwrap_or_else(|| "kong".to_string());
        let database = config
            .get_dbname()
            .map(str::to_string)
            .unwrap_or_else(|| "kong".to_string());
        let (password, password_source) = password_from_env(password_env);
        // libpq presents no certificate over a Unix socket, so it looks for none.
        let tls = if pg_tls::is_unix_socket(&host) {
            tls
        } else {
            tls.with_client_cert(address_tls.cert, address_tls.key, "sslcert in the address")
                .map_err(PgError::BadTarget)?
        };
        Ok(PgTarget {
            host,
            port,
            database,
            user,
            password,
            password_source,
            connect_timeout: config
                .get_connect_timeout()
                .copied()
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            tls,
        })
    }

    /// The same server, another database (e.g. Y's new database, or `postgres` for
    /// `CREATE DATABASE`).
    pub fn with_database(&self, database: &str) -> PgTarget {
        PgTarget {
            database: database.to_string(),
            ..self.clone()
        }
    }

    /// `host:port/name`, never the password.
    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    /// `user@host:port/name`, never the password.
    pub fn describe(&self) -> String {
        format!("{}@{}", self.user, self.address())
    }

    /// What the operator must be told before kongup connects (`sslmode=require` without a
    /// CA file checks no certificate).
    pub fn tls_warnings(&self) -> Vec<String> {
        if pg_tls::is_unix_socket(&self.host) {
            return Vec::new();
        }
        self.tls.warnings(&self.address())
    }

    /// The libpq environment for `pg_dump`, `pg_restore` and `psql`: the password goes
    /// here (`PGPASSWORD`), never into their arguments; `PGSSLMODE` and `PGSSLROOTCERT`
    /// make them check the server as kongup does.
    pub fn libpq_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PGHOST".to_string(), self.host.clone()),
            ("PGPORT".to_string(), self.port.to_string()),
            ("PGUSER".to_string(), self.user.clone()),
            ("PGDATABASE".to_string(), self.database.clone()),
            (
                "PGCONNECT_TIMEOUT".to_string(),
                self.connect_timeout.as_secs().max(1).to_string(),
            ),
        ];
        env.extend(self.tls.libpq_env());
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD".to_string(), password.expose().to_string()));
        }
        env
    }

    /// Kong's own environment for its database (`kong migrations` reads `KONG_PG_*`).
    pub fn kong_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("KONG_DATABASE".to_string(), "postgres".to_string()),
            ("KONG_PG_HOST".to_string(), self.host.clone()),
            ("KONG_PG_PORT".to_string(), self.port.to_string()),
            ("KONG_PG_USER".to_string(), self.user.clone()),
            ("KONG_PG_DATABASE".to_string(), self.database.clone()),
        ];
        if let Some(password) = &self.password {
            env.push((
                "KONG_PG_PASSWORD".to_string(),
                password.expose().to_string(),
            ));
        }
        env
    }

    /// Connects, within `connect_timeout`, with TLS as `tls` says (never over a Unix
    /// socket, as libpq).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, PgError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name("kongup")
            .connect_timeout(self.connect_timeout);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        if pg_tls::is_unix_socket(&self.host) || self.tls.mode == SslMode::Disable {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            return self.connect_with(&config, tokio_postgres::NoTls).await;
        }
        config.ssl_mode(if self.tls.mode == SslMode::Prefer {
            tokio_postgres::config::SslMode::Prefer
        } else {
            tokio_postgres::config::SslMode::Require
        });
        let tls = self.tls.connector().map_err(|detail| PgError::TlsSetup {
            address: self.address(),
            detail,
        })?;
        self.connect_with(&config, tls).await
    }

    async fn connect_with<T>(
        &self,
        config: &tokio_postgres::Config,
        tls: T,
    ) -> Result<tokio_postgres::Client, PgError>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
        T::Stream: Send + 'static,
    {
        let connecting = config.connect(tls);
        let (client, connection) = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| PgError::Timeout {
                address: self.address(),
                after: self.connect_timeout,
            })?
            .map_err(|e| self.classify(e))?;
        tokio::spawn(async move {
            // The connection ends when the client is dropped; an error here surfaces on
            // the next query, which reports it.
            let _ = connection.await;
        });
        Ok(client)
    }

    fn classify(&self, error: tokio_postgres::Error) -> PgError {
        let address = self.address();
        if let Some(failure) = pg_tls::tls_failure(&error) {
            return self.tls_error(failure);
        }
        if let Some(code) = error.code() {
            let message = db_message(&error);
            // pg_hba.conf has only `hostssl` lines for this user (RDS with rds.force_ssl,
            // say): the server names the missing encryption ("no encryption", before
            // PostgreSQL 12 "SSL off").
            if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && message.contains("no pg_hba.conf entry")
                && (message.contains("no encryption") || message.contains("SSL off"))
            {
                return PgError::TlsRequired {
                    address,
                    user: self.user.clone(),
                    detail: message,
                };
            }
            // pg_hba.conf's clientcert=verify-full, or the cert method.
            if message.contains("requires a valid client certificate")
                || message.contains("certificate authentication failed")
            {
                return match &self.tls.client_cert {
                    None => PgError::ClientCertMissing {
                        address,
                        user: self.user.clone(),
                        detail: message,
                    },
                    Some(client) => PgError::ClientCertRefused {
                        address,
                        user: self.user.clone(),
                        cert: format!("{} ({})", client.cert.display(), client.origin),
                        detail: format!("the server says: {message}"),
                    },
                };
            }
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                let mut detail = message;
                if let Some(client) = &self.tls.client_cert {
                    // clientcert=verify-full on a password line reports a certificate that
                    // names another user as a failed password.
                    detail.push_str(&format!(
                        " (with clientcert=verify-full the server says the same when the client certificate {} does not name {} as its common name)",
                        client.cert.display(),
                        self.user
                    ));
                }
                return PgError::AuthFailed {
                    address,
                    user: self.user.clone(),
                    detail,
                    password_source: self.password_source.clone(),
                };
            }
            if *code == SqlState::INVALID_CATALOG_NAME {
                return PgError::DatabaseMissing {
                    address,
                    database: self.database.clone(),
                };
            }
        }
        let text = db_message(&error);
        if text.contains("password missing") {
            return PgError::AuthFailed {
                address,
                user: self.user.clone(),
                detail: "the server asks for a password".into(),
                password_source: None,
            };
        }
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return PgError::Refused { address },
                    std::io::ErrorKind::TimedOut => {
                        return PgError::Timeout {
                            address,
                            after: self.connect_timeout,
                        };
                    }
                    _ => {}
                }
            }
            source = e.source();
        }
        if text.contains("timed out") || text.contains("timeout") {
            return PgError::Timeout {
                address,
                after: self.connect_timeout,
            };
        }
        PgError::Connect {
            address,
            detail: db_message(&error),
        }
    }

    fn tls_error(&self, failure: TlsFailure) -> PgError {
        let address = self.address();
        match failure {
            TlsFailure::NotSupported => PgError::TlsUnsupported {
                address,
                mode: self.tls.mode.as_str(),
            },
            TlsFailure::Untrusted(detail) => PgError::CertificateUntrusted {
                address,
                ca_source: self.tls.ca_source(),
                detail,
            },
            TlsFailure::WrongName(presented) => PgError::HostnameMismatch {
                address,
                host: self.host.clone(),
                presented: if presented.is_empty() {
                    "it holds no subject alternative name, and kongup does not fall back to the common name".to_string()
                } else {
                    format!("it names {}", presented.join(", "))
                },
            },
            TlsFailure::CertificateAlert(alert) => match &self.tls.client_cert {
                Some(client) => PgError::ClientCertRefused {
                    address,
                    user: self.user.clone(),
                    cert: format!("{} ({})", client.cert.display(), client.origin),
                    detail: format!("the TLS handshake ended with the server's alert {alert}"),
                },
                None => PgError::Tls {
                    address,
                    mode: self.tls.mode.as_str(),
                    ca_source: self.tls.ca_source(),
                    detail: format!("the server ended the handshake with the alert {alert}"),
                },
            },
            TlsFailure::Other(detail) => PgError::Tls {
                address,
                mode: self.tls.mode.as_str(),
                ca_source: self.tls.ca_source(),
                detail,
            },
        }
    }

    /// Runs a query with this target's query timeout; `what` names it in errors.
    pub async fn query(
        &self,
        client: &tokio_postgres::Client,
        what: &str,
        sql: &str,
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        self.query_with(client, what, sql, &[]).await
    }

    /// [`PgTarget::query`] with parameters (`$1`, …).
    pub async fn query_with(
        &self,
        client: &tokio_postgres::Client,
        what: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        match tokio::time::timeout(self.query_timeout, client.query(sql, params)).await {
            Err(_) => Err(PgError::QueryTimeout {
                what: what.to_string(),
                address: self.address(),
                after: self.query_timeout,
            }),
            Ok(Err(e)) => Err(PgError::Query {
                what: what.to_string(),
                address: self.address(),
                detail: db_message(&e),
            }),
            Ok(Ok(rows)) => Ok(rows),
        }
    }
}

fn password_from_env(var: &str) -> (Option<Secret>, Option<String>) {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => (
            Some(Secret::new(value)),
            Some(format!("environment variable {var}")),
        ),
        _ => (None, None),
    }
}

/// The server's message when there is one (tokio-postgres' own `Display` says only "db error").
pub fn db_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(e) = source {
                text.push_str(": ");
                text.push_str(&e.to_string());
                source = e.source();
            }
            text
        }
    }
}

/// Reads `schema_meta`. No table, or no `core` row, means the database needs bootstrap.
/// A NULL `executed` or `pending` reads as empty.
pub async fn read_schema_state(
    target: &PgTarget,
    client: &tokio_postgres::Client,
) -> Result<SchemaState, PgError> {
    let exists = target
        .query(
            client,
            "looking for the schema_meta table",
            "SELECT to_regclass('schema_meta') IS NOT NULL",
        )
        .await?;
    let has_table: bool = exists.first().map(|row| row.get(0)).unwrap_or(false);
    if !has_table {
        return Ok(SchemaState {
            needs_bootstrap: true,
            subsystems: Vec::new(),
        });
    }
    let rows = target
        .query(
            client,
            "reading schema_meta",
            "SELECT subsystem, last_executed, executed, pending FROM schema_meta \
             WHERE key = 'schema_meta' ORDER BY subsystem <> 'core', subsystem",
        )
        .await?;
    let subsystems: Vec<SubsystemState> = rows
        .iter()
        .map(|row| SubsystemState {
            subsystem: row.get(0),
            last_executed: row.get(1),
            executed: row.get::<_, Option<Vec<String>>>(2).unwrap_or_default(),
            pending: row.get::<_, Option<Vec<String>>>(3).unwrap_or_default(),
        })
        .collect();
    let needs_bootstrap = !subsystems.iter().any(|s| s.subsystem == "core");
    Ok(SchemaState {
        needs_bootstrap,
        subsystems,
    })
}

/// Connects, reads the state and disconnects.
pub async fn schema_state(target: &PgTarget) -> Result<SchemaState, PgError> {
    let client = target.connect().await?;
    read_schema_state(target, &client).await
}

/// Why an upgrade must not start on this database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightRefusal {
    #[error(
        "the database at {address} has {count} pending migration(s) from an earlier upgrade ({list}): `kong migrations finish` of that upgrade never ran. A new `kong migrations up` refuses to run over them (\"Database has pending migrations; run 'kong migrations finish'\"). Finish the earlier upgrade first: run `kong migrations finish` with the Kong version that ran its `up` (once every node runs that version), check with `kongup db status` that nothing is pending, then start this upgrade"
    )]
    UnfinishedUpgrade {
        address: String,
        count: usize,
        list: String,
    },
    #[error(
        "the database at {address} has no Kong schema (no schema_meta table, or no core row): kongup upgrades an existing installation. Check that the plan names Kong's database"
    )]
    NotBootstrapped { address: String },
}

/// Refuses a database-backed upgrade (in-place, blue-green, and dual-cluster, whose copy
/// inherits the state) while migrations of an earlier upgrade are still pending, or when
/// the database holds no Kong schema. Rolling upgrades have no database and always pass.
pub fn preflight(
    state: &SchemaState,
    strategy: Strategy,
    address: &str,
) -> Result<(), PreflightRefusal> {
    if !strategy.is_database_backed() {
        return Ok(());
    }
    if state.needs_bootstrap {
        return Err(PreflightRefusal::NotBootstrapped {
            address: address.to_string(),
        });
    }
    let count = state.pending_total();
    if count > 0 {
        return Err(PreflightRefusal::UnfinishedUpgrade {
            address: address.to_string(),
            count,
            list: pending_list(state),
        });
    }
    Ok(())
}

/// `core: 025_390_to_3100; rate-limiting: 005_320_to_330`.
pub fn pending_list(state: &SchemaState) -> String {
    state
        .subsystems
        .iter()
        .filter(|s| !s.pending.is_empty())
        .map(|s| format!("{}: {}", s.subsystem, s.pending.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line for the topology pane: "up to date", "3 pending", "needs bootstrap".
pub fn summary(state: &SchemaState) -> String {
    if state.needs_bootstrap {
        return "needs bootstrap".to_string();
    }
    let pending = state.pending_total();
    let generation = state.core_generation().unwrap_or("?");
    if pending == 0 {
        format!("{generation}, none pending")
    } else {
        format!("{generation}, {pending} pending")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pending: &[&str]) -> SchemaState {
        SchemaState {
            needs_bootstrap: false,
            subsystems: vec![SubsystemState {
                subsystem: "core".into(),
                last_executed: Some("024_380_to_390".into()),
                executed: vec!["000_base".into(), "024_380_to_390".into()],
                pending: pending.iter().map(|s| s.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn preflight_refuses_pending_and_explains_finish() {
        let refusal = preflight(
            &state(&["025_390_to_3100"]),
            Strategy::InPlace,
            "db:5432/kong",
        )
        .unwrap_err();
        let text = refusal.to_string();
        assert!(text.contains("core: 025_390_to_3100"), "{text}");
        assert!(
            text.contains("`kong migrations finish` of that upgrade never ran"),
            "{text}"
        );
        assert!(preflight(&state(&["x"]), Strategy::BlueGreen, "db").is_err());
        assert!(preflight(&state(&[]), Strategy::BlueGreen, "db").is_ok());
        assert!(preflight(&state(&["x"]), Strategy::Rolling, "db").is_ok());
    }

    #[test]
    fn url_with_password_is_refused_and_debug_hides_the_password() {
        let error =
            PgTarget::from_url("postgres://kong:hunter2@db:5432/kong", "PGPASSWORD").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("holds a password"), "{error}");
        let mut target =
            PgTarget::from_url("postgres://kong@db:6543/kongdb", "KONGUP_SURELY_UNSET").unwrap();
        assert_eq!(target.address(), "db:6543/kongdb");
        target.password = Some("hunter2".into());
        let shown = format!("{target:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("[REDACTED]"),
            "{shown}"
        );
    }

    #[test]
    fn url_tls_parameters_reach_the_target_and_libpq() {
        let target = PgTarget::from_url(
            "postgres://kong@db:5432/kong?sslmode=verify-ca&sslrootcert=/etc/kongup/pg-ca.pem",
            "KONGUP_SURELY_UNSET",
        )
        .unwrap();
        assert_eq!(target.tls.mode, SslMode::VerifyCa);
        let env = target.libpq_env();
        assert!(
            env.contains(&("PGSSLMODE".into(), "verify-ca".into())),
            "{env:?}"
        );
        assert!(
            env.contains(&("PGSSLROOTCERT".into(), "/etc/kongup/pg-ca.pem".into())),
            "{env:?}"
        );
        let over_socket = PgTarget::from_url(
            "host=/run/postgresql dbname=kong sslmode=require",
            "KONGUP_SURELY_UNSET",
        )
        .unwrap();
        assert!(
            over_socket.tls_warnings().is_empty(),
            "no TLS over a Unix socket, so nothing to warn about"
        );
        // Nor a client certificate, so none is looked for (libpq does the same).
        let over_socket = PgTarget::from_url(
            "host=/run/postgresql dbname=kong sslcert=/nonexistent/client.crt sslkey=/nonexistent/client.key",
            "KONGUP_SURELY_UNSET",
        )
        .unwrap();
        assert_eq!(over_socket.tls.client_cert, None);
        let error = PgTarget::from_url(
            "postgres://kong@db/kong?sslcert=/nonexistent/client.crt&sslkey=/nonexistent/client.key",
            "KONGUP_SURELY_UNSET",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("/nonexistent/client.crt") && error.contains("sslcert in the address"),
            "{error}"
        );
    }
}

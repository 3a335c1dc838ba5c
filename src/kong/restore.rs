//! Restoring a `pg_dump -Fc` backup: into Y's new database (dual-cluster), or over the live
//! database during an in-place or blue-green rollback, after a safety dump of what is there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::kong::backup::{self, BackupError, BackupRecord, PgTools};
use crate::kong::pg::{self, PgError, PgTarget};
use crate::kong::process;
use crate::kong::schema::SchemaState;

/// Said in the typed-confirmation modal before `restore_over_live`.
pub const RESTORE_OVER_LIVE_WARNING: &str = "Restoring over the live database replaces every Kong table with the backup's contents: configuration written since the backup is lost, and the database goes back to the old schema. kongup first takes a safety dump of the current state, and restores in one transaction, so a failure leaves the database as it was.";

#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    pub database: String,
    pub from: PathBuf,
    /// The dump of the live state taken before restoring over it.
    pub safety_dump: Option<BackupRecord>,
    /// Tables the restore left alone because the backup does not know them (created by
    /// the newer version's migrations); the old version ignores them.
    pub extra_tables: Vec<String>,
    /// `schema_meta` after the restore.
    pub schema: SchemaState,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(
        "database {database:?} on {server} already holds {tables} table(s): kongup restores only into a new or empty database. Drop it, or name another database for Y"
    )]
    TargetNotEmpty {
        server: String,
        database: String,
        tables: i64,
    },
    #[error("pg_restore into {database} failed, nothing was changed (one transaction): {detail}")]
    Restore { database: String, detail: String },
    #[error(
        "the safety dump of {database} before restoring over it failed, so nothing was restored: {source}"
    )]
    SafetyDump {
        database: String,
        #[source]
        source: BackupError,
    },
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn pg_restore(
    tools: &PgTools,
    target: &PgTarget,
    dump: &Path,
    clean: bool,
) -> Result<(), RestoreError> {
    let mut args: Vec<OsString> = vec![
        "--no-password".into(),
        "--no-owner".into(),
        "--no-acl".into(),
        "--exit-on-error".into(),
        "--single-transaction".into(),
        "--dbname".into(),
        target.database.clone().into(),
    ];
    if clean {
        args.push("--clean".into());
        args.push("--if-exists".into());
    }
    args.push(dump.into());
    process::run_tool(
        &tools.pg_restore,
        &args,
        &target.libpq_env(),
        tools.timeout,
        &format!("pg_restore into {}", target.address()),
    )
    .await
    .map(|_| ())
    .map_err(|e| RestoreError::Restore {
        database: target.address(),
        detail: e.to_string(),
    })
}

async fn user_tables(target: &PgTarget) -> Result<Vec<String>, PgError> {
    let client = target.connect().await?;
    let rows = target
        .query(
            &client,
            "listing tables",
            "SELECT table_schema || '.' || table_name FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 1",
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Dual-cluster: creates Y's database (`target.database`) when it does not exist, refuses
/// one that holds tables, and restores X's backup into it. The maintenance database
/// `postgres` on the same server is used for `CREATE DATABASE`.
pub async fn restore_into_new_database(
    tools: &PgTools,
    dump: &BackupRecord,
    target: &PgTarget,
) -> Result<RestoreReport, RestoreError> {
    backup::check_record(dump)?;
    let maintenance = target.with_database("postgres");
    let client = maintenance.connect().await?;
    let exists = maintenance
        .query_with(
            &client,
            "looking for Y's database",
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&target.database],
        )
        .await?;
    if exists.is_empty() {
        maintenance
            .query(
                &client,
                "creating Y's database",
                &format!("CREATE DATABASE {}", quote_ident(&target.database)),
            )
            .await?;
    } else {
        let tables = user_tables(target).await?;
        if !tables.is_empty() {
            return Err(RestoreError::TargetNotEmpty {
                server: format!("{}:{}", target.host, target.port),
                database: target.database.clone(),
                tables: tables.len() as i64,
            });
        }
    }
    drop(client);
    pg_restore(tools, target, &dump.path, false).await?;
    Ok(RestoreReport {
        database: target.address(),
        from: dump.path.clone(),
        safety_dump: None,
        extra_tables: Vec::new(),
        schema: pg::schema_state(target).await?,
    })
}

/// Rollback after `kong migrations finish`: restores `dump` over the live database. This is
/// irreversible for the data written since the backup; the engine asks for the typed
/// confirmation first (`RESTORE_OVER_LIVE_WARNING`). A safety dump of the current state goes
/// into `run_dir` first, and the restore runs in one transaction.
pub async fn restore_over_live(
    tools: &PgTools,
    dump: &BackupRecord,
    target: &PgTarget,
    run_dir: &Path,
) -> Result<RestoreReport, RestoreError> {
    backup::check_record(dump)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let safety = backup::dump_database(
        tools,
        target,
        run_dir,
        &format!("safety-before-restore-{stamp}.dump"),
    )
    .await
    .map_err(|source| RestoreError::SafetyDump {
        database: target.address(),
        source,
    })?;
    pg_restore(tools, target, &dump.path, true).await?;
    let in_backup = backup::dump_tables(tools, &dump.path).await?;
    let extra_tables = user_tables(target)
        .await?
        .into_iter()
        .filter(|t| !in_backup.contains(t))
        .collect();
    Ok(RestoreReport {
        database: target.address(),
        from: dump.path.clone(),
        safety_dump: Some(safety),
        extra_tables,
        schema: pg::schema_state(target).await?,
    })
}

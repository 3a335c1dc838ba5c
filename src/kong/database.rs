//! Kong's database as the step actions use it: what it is, its migration state, backups and
//! restores, the configuration fingerprint, the migrations lock and the server's version. PostgreSQL is the real
//! one ([`PgDatabase`]); the simulated lab brings its own, so the same actions drive both.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::kong::backup::{self, BackupError, BackupRecord, PgTools};
use crate::kong::freeze::{self, Fingerprint, FreezeError, FreezeSource};
use crate::kong::migrations::{self, MigrationsActivity};
use crate::kong::pg::{self, PgError, PgTarget};
use crate::kong::pg_version::PgServerVersion;
use crate::kong::restore::{self, RestoreError, RestoreReport};
use crate::kong::schema::SchemaState;
use crate::plan::model::DatabaseSpec;

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Freeze(#[from] FreezeError),
    /// What another implementation (the lab's) reports; says what failed and what to do.
    #[error("{0}")]
    Other(String),
}

/// One Kong database. Object safe: the actions hold an `Arc<dyn KongDatabase>`.
#[async_trait::async_trait]
pub trait KongDatabase: Send + Sync {
    /// Names it for the operator, never with a password, e.g. `kong@db:5432/kong`.
    fn describe(&self) -> String;

    /// What `kong migrations` needs in its environment to reach this database
    /// (`KONG_PG_*`, password included): given to the command's environment, never argv.
    fn kong_env(&self) -> Vec<(String, String)>;

    /// What the operator must be told about reaching it (TLS that checks no certificate).
    fn tls_warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// The migration state from `schema_meta`.
    async fn schema_state(&self) -> Result<SchemaState, DatabaseError>;

    /// Backs the database up into `dir/file_name` (mode 0600); the record says how it was
    /// verified. Missing, empty or unverifiable is an error.
    async fn backup(&self, dir: &Path, file_name: &str) -> Result<BackupRecord, DatabaseError>;

    /// Checks a backup before anything relies on it (still the recorded size and SHA-256,
    /// and readable); says how.
    async fn verify(&self, record: &BackupRecord) -> Result<String, DatabaseError>;

    /// Restores a backup into this database, which must be new or empty (dual-cluster: X's
    /// backup into Y's database).
    async fn restore_into_new(&self, record: &BackupRecord)
    -> Result<RestoreReport, DatabaseError>;

    /// Restores a backup over this live database (rollback after `migrations finish`),
    /// after a safety dump of its current state into `run_dir`. Irreversible for what was
    /// written since the backup: the engine asks for the typed confirmation first.
    async fn restore_over_live(
        &self,
        record: &BackupRecord,
        run_dir: &Path,
    ) -> Result<RestoreReport, DatabaseError>;

    /// The configuration fingerprint now (the freeze guard).
    async fn fingerprint(&self) -> Result<Fingerprint, DatabaseError>;

    /// What changed since `before` (empty: still frozen); compares like with like.
    async fn changes_since(&self, before: &Fingerprint) -> Result<Vec<String>, DatabaseError>;

    /// What shows a `kong migrations` run in progress: the `locks` row and the sessions
    /// running a migration.
    async fn migrations_activity(&self) -> Result<MigrationsActivity, DatabaseError>;

    /// The server's PostgreSQL version; `None` when this database has none to report (the
    /// simulated one).
    async fn server_version(&self) -> Result<Option<PgServerVersion>, DatabaseError>;
}

/// A Kong database on PostgreSQL, with `pg_dump`/`pg_restore` for backups and restores.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    pub target: PgTarget,
    pub tools: PgTools,
}

impl PgDatabase {
    pub fn new(target: PgTarget, tools: PgTools) -> PgDatabase {
        PgDatabase { target, tools }
    }

    /// The database a plan names; the password is read from its source now. `tool_timeout`
    /// limits each `pg_dump`/`pg_restore`.
    pub fn from_spec(
        spec: &DatabaseSpec,
        tool_timeout: Duration,
    ) -> Result<Arc<dyn KongDatabase>, PgError> {
        Ok(Arc::new(PgDatabase::new(
            PgTarget::from_spec(spec)?,
            PgTools::discover(tool_timeout),
        )))
    }
}

#[async_trait::async_trait]
impl KongDatabase for PgDatabase {
    fn describe(&self) -> String {
        self.target.describe()
    }

    fn kong_env(&self) -> Vec<(String, String)> {
        self.target.kong_env()
    }

    fn tls_warnings(&self) -> Vec<String> {
        self.target.tls_warnings()
    }

    async fn schema_state(&self) -> Result<SchemaState, DatabaseError> {
        Ok(pg::schema_state(&self.target).await?)
    }

    async fn backup(&self, dir: &Path, file_name: &str) -> Result<BackupRecord, DatabaseError> {
        Ok(backup::dump_database(&self.tools, &self.target, dir, file_name).await?)
    }

    async fn verify(&self, record: &BackupRecord) -> Result<String, DatabaseError> {
        backup::check_record(record)?;
        let toc = backup::verify_dump(&self.tools, &record.path).await?;
        Ok(format!("size and SHA-256 as recorded; {toc}"))
    }

    async fn restore_into_new(
        &self,
        record: &BackupRecord,
    ) -> Result<RestoreReport, DatabaseError> {
        Ok(restore::restore_into_new_database(&self.tools, record, &self.target).await?)
    }

    async fn restore_over_live(
        &self,
        record: &BackupRecord,
        run_dir: &Path,
    ) -> Result<RestoreReport, DatabaseError> {
        Ok(restore::restore_over_live(&self.tools, record, &self.target, run_dir).await?)
    }

    async fn fingerprint(&self) -> Result<Fingerprint, DatabaseError> {
        Ok(freeze::take(&FreezeSource::Database(self.target.clone())).await?)
    }

    async fn changes_since(&self, before: &Fingerprint) -> Result<Vec<String>, DatabaseError> {
        Ok(freeze::check(before, &FreezeSource::Database(self.target.clone())).await?)
    }

    async fn migrations_activity(&self) -> Result<MigrationsActivity, DatabaseError> {
        Ok(migrations::read_activity(&self.target).await?)
    }

    async fn server_version(&self) -> Result<Option<PgServerVersion>, DatabaseError> {
        Ok(Some(PgServerVersion::read(&self.target).await?))
    }
}

//! The lab's databases as the Kong step actions reach them ([`KongDatabase`]), so backups,
//! restores, migrations checks and the freeze guard act on the simulated databases exactly
//! as they act on PostgreSQL.
//!
//! A backup is a real file in the run directory (size and SHA-256 journaled, checked before
//! a restore relies on it) describing what was dumped; the dump itself is the lab's snapshot
//! of the database, kept under the file's path like a `pg_dump -f` of the sim executor, so a
//! plan's own `pg_restore` of that file works too. The lab's configuration never changes
//! under the freeze (nothing in the lab writes to it), so its fingerprint is the lab's
//! configuration hash.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::kong::backup::{self, BackupRecord};
use crate::kong::database::{DatabaseError, KongDatabase};
use crate::kong::freeze::{self, EntityPrint, Fingerprint};
use crate::kong::migrations::{MigrationsActivity, MigrationsLock};
use crate::kong::pg;
use crate::kong::pg_version::PgServerVersion;
use crate::kong::restore::RestoreReport;
use crate::kong::schema::SchemaState;
use crate::plan::steps::ClusterSide;
use crate::sim::Lab;
use crate::sim::database::SimDatabase;
use crate::sim::lab::Artifact;
use crate::sim::scenarios::DatabasePlan;

/// One database of the lab.
pub struct LabDatabase {
    lab: Lab,
    plan: DatabasePlan,
}

/// How long a dump or a restore of the lab takes at speed 1.
const DUMP_TIME: Duration = Duration::from_secs(2);
const RESTORE_TIME: Duration = Duration::from_secs(3);

impl LabDatabase {
    /// The database cluster `side` runs on, if it has one; `None` as well for Y when it
    /// shares X's (the actions then use X's).
    pub fn of(lab: &Lab, side: ClusterSide) -> Option<LabDatabase> {
        let topology = lab.topology();
        let name_of = |side: ClusterSide| {
            topology
                .nodes
                .iter()
                .filter(|n| n.cluster == side)
                .find_map(|n| n.database.clone())
        };
        let name = name_of(side)?;
        if side == ClusterSide::Y && name_of(ClusterSide::X).as_deref() == Some(name.as_str()) {
            return None;
        }
        let plan = topology.database(&name)?.clone();
        Some(LabDatabase {
            lab: lab.clone(),
            plan,
        })
    }

    /// The database's name (`pg_database`) in the lab.
    pub fn name(&self) -> &str {
        &self.plan.name
    }

    fn with_db<R>(&self, f: impl FnOnce(&mut SimDatabase) -> R) -> Result<R, DatabaseError> {
        self.lab
            .shared()
            .databases()
            .get_mut(&self.plan.name)
            .map(f)
            .ok_or_else(|| {
                DatabaseError::Other(format!(
                    "the lab has no database {}: it was not part of this lab's topology",
                    self.plan.name
                ))
            })
    }

    /// A simulated wait, scaled by the lab's speed.
    async fn take_time(&self, base: Duration) {
        let speed = self.lab.shared().speed;
        tokio::time::sleep(base.div_f64(speed)).await;
    }

    /// The lab's snapshot behind a backup file, after checking the file is as recorded.
    fn snapshot_of(
        &self,
        record: &BackupRecord,
    ) -> Result<crate::sim::database::DatabaseSnapshot, DatabaseError> {
        backup::check_record(record)?;
        match self
            .lab
            .shared()
            .files()
            .get(&record.path.display().to_string())
        {
            Some(Artifact::DatabaseDump(snapshot)) => Ok(snapshot.clone()),
            _ => Err(DatabaseError::Other(format!(
                "the lab holds no dump for {}: the backup was taken by another lab (the run \
                 directory was used by a lab that is gone and this one was not rebuilt with \
                 it); take the backup again",
                record.path.display()
            ))),
        }
    }

    /// Files the database as it is now under `path`, as a backup taken now would: a
    /// rebuilt lab takes back the dumps its journal recorded (the file itself is kept).
    pub fn adopt_dump(&self, path: &Path) -> Result<(), DatabaseError> {
        let snapshot = self.with_db(|db| db.snapshot())?;
        self.lab
            .shared()
            .files()
            .insert(path.display().to_string(), Artifact::DatabaseDump(snapshot));
        Ok(())
    }

    fn report(&self, record: &BackupRecord) -> Result<RestoreReport, DatabaseError> {
        Ok(RestoreReport {
            database: self.describe(),
            from: record.path.clone(),
            safety_dump: None,
            extra_tables: Vec::new(),
            schema: self.with_db(|db| db.schema_state())?,
        })
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), DatabaseError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| {
        DatabaseError::Backup(backup::BackupError::Io {
            what: "cannot write".into(),
            path: path.to_path_buf(),
            source,
        })
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[async_trait::async_trait]
impl KongDatabase for LabDatabase {
    fn describe(&self) -> String {
        format!(
            "{}@{}:{}/{} (simulated)",
            self.plan.user, self.plan.host, self.plan.port, self.plan.name
        )
    }

    fn kong_env(&self) -> Vec<(String, String)> {
        vec![
            ("KONG_DATABASE".into(), "postgres".into()),
            ("KONG_PG_HOST".into(), self.plan.host.clone()),
            ("KONG_PG_PORT".into(), self.plan.port.to_string()),
            ("KONG_PG_DATABASE".into(), self.plan.name.clone()),
            ("KONG_PG_USER".into(), self.plan.user.clone()),
        ]
    }

    async fn schema_state(&self) -> Result<SchemaState, DatabaseError> {
        self.with_db(|db| db.schema_state())
    }

    async fn backup(&self, dir: &Path, file_name: &str) -> Result<BackupRecord, DatabaseError> {
        self.take_time(DUMP_TIME).await;
        let (snapshot, schema) = self.with_db(|db| (db.snapshot(), db.schema_state()))?;
        let path = dir.join(file_name);
        let text = format!(
            "kongup lab dump of {}\ntaken at {}\nschema_meta: {}\n",
            self.describe(),
            Utc::now().to_rfc3339(),
            pg::summary(&schema)
        );
        write_private(&path, &text)?;
        self.lab
            .shared()
            .files()
            .insert(path.display().to_string(), Artifact::DatabaseDump(snapshot));
        Ok(BackupRecord {
            kind: "database".into(),
            source: self.describe(),
            size: text.len() as u64,
            sha256: backup::sha256_file(&path)?,
            path,
            verified: format!(
                "the lab holds the dump; schema_meta {}",
                pg::summary(&schema)
            ),
        })
    }

    async fn verify(&self, record: &BackupRecord) -> Result<String, DatabaseError> {
        self.snapshot_of(record)?;
        Ok("size and SHA-256 as recorded; the lab holds the dump".to_string())
    }

    async fn restore_into_new(
        &self,
        record: &BackupRecord,
    ) -> Result<RestoreReport, DatabaseError> {
        let snapshot = self.snapshot_of(record)?;
        if !self.with_db(|db| db.schema_state().needs_bootstrap)? {
            return Err(DatabaseError::Other(format!(
                "{} is not empty: kongup restores X's backup only into a new database",
                self.describe()
            )));
        }
        self.take_time(RESTORE_TIME).await;
        self.with_db(|db| db.restore(&snapshot))?;
        self.report(record)
    }

    async fn restore_over_live(
        &self,
        record: &BackupRecord,
        run_dir: &Path,
    ) -> Result<RestoreReport, DatabaseError> {
        let snapshot = self.snapshot_of(record)?;
        let dir = run_dir.join(crate::engine::rundir::BACKUPS_DIR);
        crate::engine::rundir::create_private_dir(&dir).map_err(|source| {
            DatabaseError::Backup(backup::BackupError::Io {
                what: "cannot create".into(),
                path: dir.clone(),
                source,
            })
        })?;
        let name = format!(
            "safety-{}-{}.dump",
            self.plan.name,
            Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        let safety = self.backup(&dir, &name).await?;
        self.take_time(RESTORE_TIME).await;
        self.with_db(|db| db.restore(&snapshot))?;
        Ok(RestoreReport {
            safety_dump: Some(safety),
            ..self.report(record)?
        })
    }

    async fn fingerprint(&self) -> Result<Fingerprint, DatabaseError> {
        let config_hash = self.lab.shared().config_hash.clone();
        let print = EntityPrint {
            count: 1,
            newest_created_at: None,
            newest_updated_at: None,
            ids_sha256: config_hash.clone(),
            content_sha256: config_hash,
            columns: Vec::new(),
        };
        Ok(Fingerprint {
            source: self.describe(),
            taken_at: Utc::now(),
            entities: BTreeMap::from([("configuration".to_string(), print)]),
        })
    }

    async fn changes_since(&self, before: &Fingerprint) -> Result<Vec<String>, DatabaseError> {
        Ok(freeze::compare(before, &self.fingerprint().await?))
    }

    async fn migrations_activity(&self) -> Result<MigrationsActivity, DatabaseError> {
        let now = Instant::now();
        let lock = self.with_db(|db| db.lock())?.map(|row| MigrationsLock {
            owner: Some(row.owner),
            ttl: Some(format!(
                "{}s",
                row.expires.saturating_duration_since(now).as_secs()
            )),
            expired: row.expires <= now,
        });
        Ok(MigrationsActivity {
            lock,
            sessions: Vec::new(),
            unseen: Some(
                "the simulated database has no pg_stat_activity: only its lock row is checked"
                    .to_string(),
            ),
        })
    }

    async fn server_version(&self) -> Result<Option<PgServerVersion>, DatabaseError> {
        Ok(None)
    }
}

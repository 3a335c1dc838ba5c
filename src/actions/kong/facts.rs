//! What earlier steps recorded, read back from the run's journal: the database backup and
//! the freeze fingerprint. A fact is written with `StepContext::record_fact` (journaled and
//! fsync'd before the step goes on); the engine offers no way to read one back, so the
//! actions read the journal file, which only ever grows.
//!
//! Values are JSON objects, written in one fact so an interrupted step never leaves half a
//! record. Paths in them are relative to the run directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::journal::{Entry, JOURNAL_FILE, read_journal};
use crate::engine::step::{ActionError, StepContext};
use crate::kong::backup::{self, BackupRecord};
use crate::kong::freeze::Fingerprint;
use crate::secrets::REDACTED;

/// The fact that names X's database backup.
pub const DATABASE_BACKUP: &str = "backup.database";
/// The fact that names the freeze fingerprint.
pub const FREEZE_FINGERPRINT: &str = "freeze.fingerprint";

/// The latest value of a fact in the run's journal, with the step that recorded it.
pub fn latest(run_dir: &Path, key: &str) -> Result<Option<(String, String)>, ActionError> {
    let path = run_dir.join(JOURNAL_FILE);
    let contents = read_journal(&path).map_err(|e| {
        ActionError::Failed(format!(
            "cannot read the journal {} for the fact {key}: {e}",
            path.display()
        ))
    })?;
    Ok(contents
        .records
        .into_iter()
        .rev()
        .find_map(|record| match record.entry {
            Entry::Fact {
                step,
                key: k,
                value,
            } if k == key => Some((step, value)),
            _ => None,
        }))
}

/// Reads a JSON fact back; the journal redacts secret values, which would make it unreadable.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    key: &str,
    step: &str,
    value: &str,
) -> Result<T, ActionError> {
    serde_json::from_str(value).map_err(|e| {
        let why = if value.contains(REDACTED) {
            "a secret's value appears in it and the journal redacted it (use longer secrets)"
                .to_string()
        } else {
            e.to_string()
        };
        ActionError::Failed(format!(
            "the fact {key} recorded by {step} cannot be read back: {why}"
        ))
    })
}

/// A backup file as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedBackup {
    pub kind: String,
    pub source: String,
    /// Relative to the run directory.
    pub file: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub verified: String,
}

impl RecordedBackup {
    pub fn of(record: &BackupRecord, run_dir: &Path) -> RecordedBackup {
        RecordedBackup {
            kind: record.kind.clone(),
            source: record.source.clone(),
            file: record
                .path
                .strip_prefix(run_dir)
                .unwrap_or(&record.path)
                .to_path_buf(),
            size: record.size,
            sha256: record.sha256.clone(),
            verified: record.verified.clone(),
        }
    }

    pub fn record(&self, run_dir: &Path) -> BackupRecord {
        BackupRecord {
            kind: self.kind.clone(),
            source: self.source.clone(),
            path: run_dir.join(&self.file),
            size: self.size,
            sha256: self.sha256.clone(),
            verified: self.verified.clone(),
        }
    }
}

/// Journals a backup under `key` (after checking it is still what was measured).
pub async fn record_backup(
    ctx: &StepContext,
    key: &str,
    record: &BackupRecord,
) -> Result<(), ActionError> {
    backup::check_record(record).map_err(|e| ActionError::Failed(e.to_string()))?;
    let value = serde_json::to_string(&RecordedBackup::of(record, &ctx.run_dir))
        .map_err(|e| ActionError::Failed(format!("cannot write the fact {key}: {e}")))?;
    ctx.record_fact(key, value).await
}

/// The backup recorded under `key`, if any step recorded one, and which step did.
pub fn recorded_backup(
    run_dir: &Path,
    key: &str,
) -> Result<Option<(String, BackupRecord)>, ActionError> {
    let Some((step, value)) = latest(run_dir, key)? else {
        return Ok(None);
    };
    let recorded: RecordedBackup = parse(key, &step, &value)?;
    Ok(Some((step, recorded.record(run_dir))))
}

/// Where the freeze fingerprint was taken, so the guard takes the next one the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum FreezeVia {
    /// X's database.
    Database,
    /// The Admin API of one of X's nodes.
    AdminApi { admin_url: String },
}

/// The freeze as the journal records it: the fingerprint lives in a file of the run
/// directory (mode 0600), which this names with its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFreeze {
    #[serde(flatten)]
    pub via: FreezeVia,
    /// Relative to the run directory.
    pub file: PathBuf,
    pub sha256: String,
    /// e.g. "services 12, routes 40, …".
    pub summary: String,
}

/// The directory the fingerprints go to.
pub const FREEZE_DIR: &str = "freeze";

/// Writes the fingerprint file (0600, fsync'd) and journals it.
pub async fn record_freeze(
    ctx: &StepContext,
    via: FreezeVia,
    fingerprint: &Fingerprint,
) -> Result<RecordedFreeze, ActionError> {
    let dir = ctx.run_dir.join(FREEZE_DIR);
    crate::engine::rundir::create_private_dir(&dir).map_err(|source| ActionError::Io {
        path: dir.clone(),
        source,
    })?;
    let stamp = fingerprint.taken_at.format("%Y%m%dT%H%M%S%.3fZ");
    // A file once journaled is never rewritten: a name already taken gets a suffix.
    let name = (1..)
        .map(|n| match n {
            1 => format!("fingerprint-{stamp}.json"),
            n => format!("fingerprint-{stamp}-{n}.json"),
        })
        .find(|name| !dir.join(name).exists())
        .expect("an unbounded range yields a free name");
    let path = dir.join(&name);
    let bytes = serde_json::to_vec_pretty(fingerprint)
        .map_err(|e| ActionError::Failed(format!("cannot write the fingerprint: {e}")))?;
    write_private(&path, &bytes)?;
    let recorded = RecordedFreeze {
        via,
        file: PathBuf::from(FREEZE_DIR).join(name),
        sha256: sha256_hex(&bytes),
        summary: summary(fingerprint),
    };
    let value = serde_json::to_string(&recorded).map_err(|e| {
        ActionError::Failed(format!("cannot write the fact {FREEZE_FINGERPRINT}: {e}"))
    })?;
    ctx.record_fact(FREEZE_FINGERPRINT, value).await?;
    Ok(recorded)
}

/// The recorded freeze and its fingerprint, checked against the journal's SHA-256.
pub fn recorded_freeze(
    run_dir: &Path,
) -> Result<Option<(RecordedFreeze, Fingerprint)>, ActionError> {
    let Some((step, value)) = latest(run_dir, FREEZE_FINGERPRINT)? else {
        return Ok(None);
    };
    let recorded: RecordedFreeze = parse(FREEZE_FINGERPRINT, &step, &value)?;
    let path = run_dir.join(&recorded.file);
    let bytes = std::fs::read(&path).map_err(|e| {
        ActionError::Failed(format!(
            "the fingerprint {step} took is gone ({}: {e}); run {step} again to take a new one \
             (only if nobody wrote configuration since)",
            path.display()
        ))
    })?;
    let sha256 = sha256_hex(&bytes);
    if sha256 != recorded.sha256 {
        return Err(ActionError::Failed(format!(
            "the fingerprint file {} changed since {step} took it (SHA-256 {sha256}, journal \
             {}): kongup will not trust it",
            path.display(),
            recorded.sha256
        )));
    }
    let fingerprint: Fingerprint = serde_json::from_slice(&bytes).map_err(|e| {
        ActionError::Failed(format!(
            "the fingerprint {} does not read: {e}",
            path.display()
        ))
    })?;
    Ok(Some((recorded, fingerprint)))
}

/// "services 12, routes 40, plugins 7".
pub fn summary(fingerprint: &Fingerprint) -> String {
    let parts: Vec<String> = fingerprint
        .entities
        .iter()
        .map(|(name, print)| format!("{name} {}", print.count))
        .collect();
    if parts.is_empty() {
        "no entity readable".to_string()
    } else {
        parts.join(", ")
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ActionError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| ActionError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_journaled_relative_to_the_run_and_read_back_absolute() {
        let record = BackupRecord {
            kind: "database".into(),
            source: "kong@db:5432/kong".into(),
            path: PathBuf::from("/runs/r1/backups/x.dump"),
            size: 10,
            sha256: "ab".repeat(32),
            verified: "pg_restore --list: 3 entries".into(),
        };
        let recorded = RecordedBackup::of(&record, Path::new("/runs/r1"));
        assert_eq!(recorded.file, PathBuf::from("backups/x.dump"));
        let text = serde_json::to_string(&recorded).unwrap();
        let back: RecordedBackup = parse(DATABASE_BACKUP, "cluster/backup", &text).unwrap();
        assert_eq!(
            back.record(Path::new("/moved/r1")).path,
            PathBuf::from("/moved/r1/backups/x.dump")
        );
    }

    #[test]
    fn a_fact_the_redactor_touched_says_why_it_cannot_be_read() {
        let error =
            parse::<RecordedBackup>(DATABASE_BACKUP, "cluster/backup", r#"{"kind":"[REDACTED]"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("the journal redacted it"), "{error}");
        assert!(error.contains("recorded by cluster/backup"), "{error}");
    }
}

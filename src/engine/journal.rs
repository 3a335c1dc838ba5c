//! The journal: one JSON object a line, appended and fsync'd before the action it records.
//!
//! Every record carries a sequence number, when it was written and who caused it
//! (`user@host`). The first record of a run (`run-created`) holds the plan's text and its
//! SHA-256, so a resumed run can tell whether the plan changed, and `status`/`report` can
//! read a run without the plan file. A torn last line (power loss mid-write) is dropped
//! with a warning and cut off before the next append; a corrupt line anywhere else stops
//! the run, because a journal that lies cannot be resumed safely.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::TrafficVerification;
use crate::lb::Split;
use crate::metrics::GateFigures;
use crate::plan::steps::{PhaseName, StepRef};
use crate::secrets::Redactor;

/// The journal's file name inside the run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// `user@host` of the operator, or `kongup` for what the engine does by itself.
    pub by: String,
    #[serde(flatten)]
    pub entry: Entry,
}

/// A step as the journal remembers it, so readers need not have the plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    /// `phase/id`.
    pub step: String,
    pub title: String,
    pub kind: String,
    pub changes: bool,
    pub irreversible: bool,
}

/// One step of a rollback plan: `rollback/<id>` and the forward step it undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackStepInfo {
    pub step: String,
    /// `phase/id` of the forward step; `None` for the traffic-to-X step.
    pub undoes: Option<String>,
    pub title: String,
    pub irreversible: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfirmVia {
    /// The operator confirmed the ready step.
    Confirm,
    /// The operator asked to run a failed or interrupted step again.
    Retry,
    /// The plan's `traffic.auto_advance` confirmed the next stage after gates passed.
    AutoAdvance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepResult {
    Succeeded,
    Failed,
}

/// A gate verdict with the numbers that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub evaluated_at: DateTime<Utc>,
    /// `pass`, `inconclusive` or `fail`.
    pub verdict: String,
    pub checks: Vec<String>,
    pub requests_in_window: u64,
    pub consecutive_breaches: u32,
    /// The figures and thresholds as data; `None` in journals written before they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<GateFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    /// Always the first record.
    RunCreated {
        run_id: String,
        plan_name: String,
        plan_sha256: String,
        plan_text: String,
        steps: Vec<StepInfo>,
        kongup_version: String,
    },
    /// A process took the run's lock and started driving it.
    SessionOpened {
        pid: u32,
    },
    /// The operator resumed with a changed plan and said so (`--accept-plan-change`).
    PlanChangeAccepted {
        previous_sha256: String,
        plan_sha256: String,
        plan_text: String,
        summary: Vec<String>,
        steps: Vec<StepInfo>,
    },
    StepConfirmed {
        step: String,
        via: ConfirmVia,
        /// The plan name was typed (irreversible steps).
        typed: bool,
    },
    StepSkipped {
        step: String,
        reason: String,
        /// The plan skips it (`steps.skip`), rather than the operator.
        by_plan: bool,
    },
    StepStarted {
        step: String,
        attempt: u32,
        /// What runs and where, as shown before the confirm.
        runs: Vec<String>,
    },
    StepFinished {
        step: String,
        attempt: u32,
        result: StepResult,
        detail: Option<String>,
        duration_ms: u64,
        /// The last lines of its output (redacted); the full log is in `logs/`.
        last_lines: Vec<String>,
    },
    /// Found `running` when the run was opened again: the process died during the step.
    StepInterrupted {
        step: String,
    },
    StepMarkedDone {
        step: String,
        note: String,
    },
    /// The operator asked to stop the running step.
    AbortRequested {
        step: String,
    },
    /// Something an action wants remembered, e.g. a backup's path and SHA-256.
    Fact {
        step: String,
        key: String,
        value: String,
    },
    Paused {
        reason: String,
    },
    Resumed,
    TrafficRequested {
        split: Split,
        /// The step or command that asked for it.
        cause: String,
    },
    TrafficApplied {
        requested: Split,
        /// What the load balancer reported back; `None` when it cannot say.
        applied: Option<Split>,
        /// The driver's error, when setting or reading failed.
        error: Option<String>,
    },
    Gate {
        step: String,
        gate: GateRecord,
    },
    RollbackRequested {
        reason: String,
    },
    /// All traffic is on X; `verified` says how that is known, `evidence` in words.
    RollbackTrafficSafe {
        time_to_safety_ms: u64,
        #[serde(default)]
        verified: TrafficVerification,
        #[serde(default)]
        evidence: String,
    },
    RollbackTrafficFailed {
        error: String,
    },
    RollbackPlanned {
        steps: Vec<RollbackStepInfo>,
        /// `migrations finish` ran on a database X shares: X cannot serve from it until
        /// the database is restored.
        point_of_no_return: bool,
        /// Set when X cannot serve: what must happen before traffic can go back to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    RollbackFinished,
    Warning {
        text: String,
    },
    SessionClosed {
        reason: String,
    },
}

pub fn step_key(step: &StepRef) -> String {
    step.to_string()
}

/// Reads `phase/id` back into a step reference.
pub fn parse_step_key(key: &str) -> Option<StepRef> {
    let (phase, id) = key.split_once('/')?;
    Some(StepRef::new(PhaseName::parse(phase)?, id))
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "could not {what} the journal {}: {source}. kongup does not act on what it cannot \
         record, so it stops here; free space on that disk or fix its permissions, then run \
         `kongup run` with the same plan: the run resumes from what the journal holds",
        path.display()
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "line {line} of the journal {} is not a valid record ({message}); only a torn last \
         line can be dropped safely, so kongup stops here: inspect the file, or start a new \
         run with another --journal directory",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "the journal {} does not start with the run's plan record; it is not a kongup \
         journal, or its start was lost",
        path.display()
    )]
    NoHeader { path: PathBuf },
}

/// What reading a journal found.
#[derive(Debug)]
pub struct JournalContents {
    pub records: Vec<Record>,
    /// Bytes of complete, valid lines; anything after is a torn tail.
    pub valid_len: u64,
    /// Set when a torn last line was dropped.
    pub torn_tail: Option<String>,
}

/// Reads every record. A last line that is incomplete or does not parse is dropped (and
/// reported in `torn_tail`); a bad line before the last is an error.
pub fn read_journal(path: &Path) -> Result<JournalContents, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    let mut torn_tail = None;
    while offset < bytes.len() {
        line_no += 1;
        let rest = &bytes[offset..];
        let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        let parsed = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Record>(text).map_err(|e| e.to_string()));
        let is_last = !complete || offset + line.len() + 1 >= bytes.len();
        let message = match parsed {
            Ok(record) if complete => {
                records.push(record);
                offset += line.len() + 1;
                continue;
            }
            Ok(_) => "the line has no end".to_string(),
            Err(message) => message,
        };
        if !is_last {
            return Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                line: line_no,
                message,
            });
        }
        torn_tail = Some(format!(
            "the last line of the journal {} ({} bytes) is torn and was ignored: {message}",
            path.display(),
            line.len()
        ));
        break;
    }
    if let Some(first) = records.first()
        && !matches!(first.entry, Entry::RunCreated { .. })
    {
        return Err(JournalError::NoHeader {
            path: path.to_path_buf(),
        });
    }
    Ok(JournalContents {
        records,
        valid_len: offset as u64,
        torn_tail,
    })
}

/// The append side. Only the engine holds one, under the run's lock.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    next_seq: u64,
    redactor: Arc<Redactor>,
}

impl Journal {
    /// Opens (or creates, mode 0600) the journal for appending after `valid_len` bytes,
    /// cutting off a torn tail so the next record starts on a line of its own.
    pub fn open(
        path: &Path,
        valid_len: u64,
        next_seq: u64,
        redactor: Arc<Redactor>,
    ) -> Result<Journal, JournalError> {
        let io_err = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| JournalError::Io { what, path, source }
        };
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("open"))?;
        if file.metadata().map_err(io_err("inspect"))?.len() != valid_len {
            file.set_len(valid_len)
                .map_err(io_err("cut the torn tail of"))?;
            file.sync_all().map_err(io_err("sync"))?;
        }
        if created && let Some(dir) = path.parent() {
            // The new file's directory entry must survive a power loss too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("sync the directory of"))?;
        }
        let mut journal = Journal {
            file,
            path: path.to_path_buf(),
            next_seq,
            redactor,
        };
        use std::io::Seek;
        journal
            .file
            .seek(io::SeekFrom::End(0))
            .map_err(io_err("seek"))?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record and fsyncs it; only then may the caller act on it. The record's
    /// free text (output lines, details, reasons, notes, warnings, fact values, command
    /// displays, errors) passes through the redactor first; its structure (step keys, the
    /// plan's text and hash, event tags) is kept as it is, so a short secret cannot
    /// garble what the journal is read back by.
    pub fn append(&mut self, by: &str, entry: Entry) -> Result<Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            at: Utc::now(),
            by: by.to_string(),
            entry: entry.redacted(&self.redactor),
        };
        let io_err = |what: &'static str| {
            let path = self.path.clone();
            move |source| JournalError::Io { what, path, source }
        };
        let mut line = serde_json::to_string(&record)
            .map_err(|e| io_err("write a record to")(io::Error::other(e)))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(io_err("append to"))?;
        self.file.sync_data().map_err(io_err("sync"))?;
        self.next_seq += 1;
        Ok(record)
    }
}

impl Entry {
    /// The entry with every free-text field redacted; structural fields untouched.
    pub fn redacted(self, redactor: &Redactor) -> Entry {
        let text = |s: String| match redactor.redact(&s) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(redacted) => redacted,
        };
        let texts = |lines: Vec<String>| lines.into_iter().map(text).collect::<Vec<_>>();
        match self {
            Entry::PlanChangeAccepted {
                previous_sha256,
                plan_sha256,
                plan_text,
                summary,
                steps,
            } => Entry::PlanChangeAccepted {
                previous_sha256,
                plan_sha256,
                plan_text,
                summary: texts(summary),
                steps,
            },
            Entry::StepSkipped {
                step,
                reason,
                by_plan,
            } => Entry::StepSkipped {
                step,
                reason: text(reason),
                by_plan,
            },
            Entry::StepStarted {
                step,
                attempt,
                runs,
            } => Entry::StepStarted {
                step,
                attempt,
                runs: texts(runs),
            },
            Entry::StepFinished {
                step,
                attempt,
                result,
                detail,
                duration_ms,
                last_lines,
            } => Entry::StepFinished {
                step,
                attempt,
                result,
                detail: detail.map(text),
                duration_ms,
                last_lines: texts(last_lines),
            },
            Entry::StepMarkedDone { step, note } => Entry::StepMarkedDone {
                step,
                note: text(note),
            },
            Entry::Fact { step, key, value } => Entry::Fact {
                step,
                key,
                value: text(value),
            },
            Entry::Paused { reason } => Entry::Paused {
                reason: text(reason),
            },
            Entry::TrafficApplied {
                requested,
                applied,
                error,
            } => Entry::TrafficApplied {
                requested,
                applied,
                error: error.map(text),
            },
            Entry::RollbackRequested { reason } => Entry::RollbackRequested {
                reason: text(reason),
            },
            Entry::RollbackTrafficSafe {
                time_to_safety_ms,
                verified,
                evidence,
            } => Entry::RollbackTrafficSafe {
                time_to_safety_ms,
                verified,
                evidence: text(evidence),
            },
            Entry::RollbackTrafficFailed { error } => {
                Entry::RollbackTrafficFailed { error: text(error) }
            }
            Entry::RollbackPlanned {
                steps,
                point_of_no_return,
                note,
            } => Entry::RollbackPlanned {
                steps,
                point_of_no_return,
                note: note.map(text),
            },
            Entry::Warning { text: warning } => Entry::Warning {
                text: text(warning),
            },
            Entry::SessionClosed { reason } => Entry::SessionClosed {
                reason: text(reason),
            },
            // Nothing but structure (keys, hashes, the plan, numbers, gate figures).
            structural @ (Entry::RunCreated { .. }
            | Entry::SessionOpened { .. }
            | Entry::StepConfirmed { .. }
            | Entry::StepInterrupted { .. }
            | Entry::AbortRequested { .. }
            | Entry::Resumed
            | Entry::TrafficRequested { .. }
            | Entry::Gate { .. }
            | Entry::RollbackFinished) => structural,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Entry {
        Entry::RunCreated {
            run_id: "r".into(),
            plan_name: "p".into(),
            plan_sha256: "00".into(),
            plan_text: "name: p\n".into(),
            steps: vec![],
            kongup_version: "0".into(),
        }
    }

    #[test]
    fn records_round_trip_and_secrets_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let redactor = Arc::new(Redactor::new(["hunter2".to_string()]));
        let mut journal = Journal::open(&path, 0, 0, redactor).unwrap();
        journal.append("a@b", header()).unwrap();
        journal
            .append(
                "a@b",
                Entry::Warning {
                    text: "token hunter2 leaked".into(),
                },
            )
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let contents = read_journal(&path).unwrap();
        assert_eq!(contents.records.len(), 2);
        assert_eq!(contents.records[1].seq, 1);
        assert_eq!(
            contents.records[1].entry,
            Entry::Warning {
                text: "token [REDACTED] leaked".into()
            }
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_short_secret_is_redacted_in_free_text_only_and_never_breaks_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        // "key" is in a step key, "step" in every event tag: neither may be touched.
        let redactor = Arc::new(Redactor::new(["key".to_string(), "step".to_string()]));
        let mut journal = Journal::open(&path, 0, 0, redactor).unwrap();
        let header = Entry::RunCreated {
            run_id: "r".into(),
            plan_name: "p".into(),
            plan_sha256: "00".into(),
            plan_text: "backup:\n  keyring: [/etc/kong/key.pem]\n".into(),
            steps: vec![],
            kongup_version: "0".into(),
        };
        journal.append("a@b", header.clone()).unwrap();
        journal
            .append(
                "a@b",
                Entry::StepStarted {
                    step: "cluster/backup-keyring".into(),
                    attempt: 1,
                    runs: vec!["cp /etc/kong/key.pem backups/".into()],
                },
            )
            .unwrap();
        journal
            .append(
                "a@b",
                Entry::Fact {
                    step: "cluster/backup-keyring".into(),
                    key: "backup.keyring".into(),
                    value: "the key was copied".into(),
                },
            )
            .unwrap();
        let records = read_journal(&path).unwrap().records;
        assert_eq!(records[0].entry, header);
        assert_eq!(
            records[1].entry,
            Entry::StepStarted {
                step: "cluster/backup-keyring".into(),
                attempt: 1,
                runs: vec!["cp /etc/kong/[REDACTED].pem backups/".into()],
            }
        );
        assert_eq!(
            records[2].entry,
            Entry::Fact {
                step: "cluster/backup-keyring".into(),
                key: "backup.keyring".into(),
                value: "the [REDACTED] was copied".into(),
            }
        );
    }

    #[test]
    fn torn_tail_is_dropped_then_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let redactor = Arc::new(Redactor::default());
        let mut journal = Journal::open(&path, 0, 0, redactor.clone()).unwrap();
        journal.append("a@b", header()).unwrap();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":1,\"at\":\"2024-").unwrap();
        drop(file);

        let contents = read_journal(&path).unwrap();
        assert_eq!(contents.records.len(), 1);
        assert!(contents.torn_tail.unwrap().contains("torn"));
        let mut journal = Journal::open(&path, contents.valid_len, 1, redactor).unwrap();
        journal.append("a@b", Entry::Resumed).unwrap();
        let again = read_journal(&path).unwrap();
        assert!(again.torn_tail.is_none());
        assert_eq!(again.records.len(), 2);
        assert_eq!(again.records[1].entry, Entry::Resumed);
    }

    #[test]
    fn a_complete_but_unparsable_last_line_is_torn_and_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::open(&path, 0, 0, Arc::new(Redactor::default())).unwrap();
        journal.append("a@b", header()).unwrap();
        drop(journal);
        let good = std::fs::read_to_string(&path).unwrap();

        std::fs::write(&path, format!("{good}{{\"seq\":1,\"at\n")).unwrap();
        assert!(read_journal(&path).unwrap().torn_tail.is_some());

        std::fs::write(&path, format!("{good}garbage\n{good}")).unwrap();
        let err = read_journal(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_journal_that_cannot_be_written_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join(JOURNAL_FILE);
        let message = Journal::open(&path, 0, 0, Arc::new(Redactor::default()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("could not open the journal"), "{message}");
        assert!(
            message.contains("free space") && message.contains("the run resumes"),
            "{message}"
        );
    }

    /// A gate line as kongup wrote it before verdicts carried their figures.
    const OLD_GATE_LINE: &str = r#"{"seq":1,"at":"2024-05-02T10:00:05Z","by":"kongup","event":"gate","step":"cluster/shift-traffic-10","gate":{"evaluated_at":"2024-05-02T10:00:04Z","verdict":"fail","checks":["Y 5xx 4.00% > 1.00%: BREACH"],"requests_in_window":420,"consecutive_breaches":2}}"#;

    fn gate_of(record: &Record) -> &GateRecord {
        match &record.entry {
            Entry::Gate { gate, .. } => gate,
            other => panic!("not a gate record: {other:?}"),
        }
    }

    #[test]
    fn a_gate_line_written_before_figures_loads_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::open(&path, 0, 0, Arc::new(Redactor::default())).unwrap();
        journal.append("a@b", header()).unwrap();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(file, "{OLD_GATE_LINE}").unwrap();
        drop(file);

        let contents = read_journal(&path).unwrap();
        assert!(contents.torn_tail.is_none(), "{:?}", contents.torn_tail);
        let gate = gate_of(&contents.records[1]);
        assert_eq!(gate.verdict, "fail");
        assert_eq!(gate.requests_in_window, 420);
        assert_eq!(gate.figures, None);
    }

    #[test]
    fn gate_figures_round_trip_and_an_unknown_figure_stays_unknown() {
        use crate::metrics::{ClusterWindow, GateThresholds};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::open(&path, 0, 0, Arc::new(Redactor::default())).unwrap();
        journal.append("a@b", header()).unwrap();
        let figures = GateFigures {
            x: ClusterWindow {
                requests: Some(3780),
                error_ratio: Some(0.001),
                p99_ms: None,
            },
            y: ClusterWindow {
                requests: Some(420),
                error_ratio: Some(0.04),
                // JSON has no NaN: serde_json writes null, which must read back unknown.
                p99_ms: Some(f64::NAN),
            },
            thresholds: GateThresholds {
                max_error_ratio: Some(0.01),
                min_requests: 10,
                breaches_to_fail: 2,
                ..GateThresholds::default()
            },
        };
        let gate = GateRecord {
            evaluated_at: Utc::now(),
            verdict: "fail".into(),
            checks: vec!["Y 5xx 4.00% > 1.00%: BREACH".into()],
            requests_in_window: 420,
            consecutive_breaches: 2,
            figures: Some(figures),
        };
        journal
            .append(
                "kongup",
                Entry::Gate {
                    step: "cluster/shift-traffic-10".into(),
                    gate,
                },
            )
            .unwrap();
        let records = read_journal(&path).unwrap().records;
        let read = gate_of(&records[1])
            .figures
            .expect("figures were journaled");
        assert_eq!(read.x, figures.x);
        assert_eq!(read.y.error_ratio, Some(0.04));
        assert_eq!(read.y.p99_ms, None);
        assert_eq!(read.thresholds, figures.thresholds);
    }

    #[test]
    fn step_keys_parse_back() {
        let step = StepRef::new(PhaseName::ControlPlane, "migrations-up");
        assert_eq!(parse_step_key(&step_key(&step)), Some(step));
        assert_eq!(
            parse_step_key("rollback/stop-y"),
            Some(StepRef::new(PhaseName::Rollback, "stop-y"))
        );
        assert_eq!(parse_step_key("nonsense"), None);
    }
}

//! The journal: one JSON object a line, appended and fsync'd before the action it records.
//!
//! Every record carries a sequence number (0, 1, 2… with no gaps), when it was written,
//! who caused it (`user@host`), and the SHA-256 of the line before it (`prev`, absent on
//! the first line), so a record edited, removed or moved is found, and named by its line,
//! when the journal is read. The first record of a run (`run-created`) holds the plan's
//! text and its SHA-256, so a resumed run can tell whether the plan changed, and
//! `status`/`report` can read a run without the plan file.
//!
//! One process writes it: the engine, under the run's lock, which is on the journal
//! itself ([`super::lock`]); before each record it checks that it still holds the journal,
//! and writes the whole line in one `write(2)` on a file opened `O_APPEND`.
//!
//! Reading ([`read_journal`]) trusts nothing it cannot check: a torn last line (power loss
//! mid-write: no newline, or not complete JSON) is dropped with a warning and cut off before
//! the next append; anything else wrong (a line that is not a record, records interleaved by
//! two writers, a missing or moved record, a broken chain, a record of a kind a newer kongup
//! writes) stops the run with the line it is on, because a journal that lies cannot be
//! resumed safely.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::TrafficVerification;
use super::lock::RunLock;
use crate::exec::track::{ProcessEnd, ProcessIdentity, TrackedProcess};
use crate::lb::Split;
use crate::metrics::GateFigures;
use crate::plan::steps::{PhaseName, StepRef};
use crate::secrets::Redactor;

mod read;

pub use read::{JournalContents, Tail, check_lines, read_journal};

/// The journal's file name inside the run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// The `Fact` key prefix (then the node's name) that says kongup put a Y node taken out of
/// its wave out of the balancer; the value is its server. The wave's rollback puts it back.
pub const SERVER_OUT: &str = "lb.server-out.";

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
    /// The percentage a traffic stage sends to Y, so a changed plan can say what each
    /// added or removed stage would set; absent in journals written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_percent: Option<u8>,
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
    /// The step went on from the one before it in its wave, whose confirm ran the wave as
    /// one (`engine::wave`); the record's `by` is the operator who confirmed that step.
    Wave,
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
        /// Why Y was found unfit for the traffic this step sends it, which the operator
        /// overrode by typing `engine::health::OVERRIDE_WORD` (who: the record's `by`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        overridden: Vec<String>,
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
    /// A step started a program (a command, a tool, the ssh or kubectl client), journaled
    /// before kongup waits on it, so a kongup that crashed and resumed finds it again.
    ProcessStarted {
        step: String,
        attempt: u32,
        process: TrackedProcess,
    },
    /// Over ssh: who the command is on its host.
    ProcessOnHost {
        step: String,
        attempt: u32,
        number: u32,
        remote: ProcessIdentity,
    },
    ProcessEnded {
        step: String,
        attempt: u32,
        number: u32,
        end: ProcessEnd,
    },
    /// The operator asked to kill a step's process that still ran after kongup stopped.
    ProcessKillRequested {
        step: String,
        attempt: u32,
        number: u32,
    },
    StepMarkedDone {
        step: String,
        note: String,
    },
    /// How a wave's node step (`wave-N-start-y`, `wave-N-stop-x`) ended on one of its
    /// nodes (the record's `at` says when): `ok` once its commands there exited 0, else
    /// `reason`. The latest record of a node stands; a retry, or a resume after a crash,
    /// runs the step's commands only on the nodes whose latest record is not `ok`.
    NodeOutcome {
        step: String,
        attempt: u32,
        node: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The operator took a node that failed in a wave's node step out of the wave (the
    /// record's `by` and `at` say who and when): the step no longer waits for it, and the
    /// run's later steps leave it out (no command, no wait on it); `report` and `status`
    /// name it. Accepted only when the node's latest outcome in the step's last attempt
    /// was a failure.
    NodeTakenOut {
        step: String,
        node: String,
        reason: String,
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
    /// No cluster serves traffic from now (`engine::outage`): why, in words.
    OutageStarted {
        why: String,
    },
    /// A cluster serves traffic again: the open outage ends.
    OutageEnded,
    Warning {
        text: String,
    },
    SessionClosed {
        reason: String,
    },
    /// Another kongup (the record's `by`, its `pid`) asks the driver to hand the run over;
    /// `request` names the request (`kongup run --take-over`).
    HandoverRequested {
        request: String,
        pid: u32,
    },
    /// The driver handed the run over to `to`: its session closes next, and `to` drives.
    HandedOver {
        request: String,
        to: String,
    },
    /// The request of `to` was not taken: declined by the driver, lapsed, or withdrawn.
    HandoverDeclined {
        request: String,
        to: String,
        reason: String,
    },
    /// The session that follows takes the run from a driver that stopped without closing
    /// its session (a crash, `kill -9`, power loss: the kernel freed its lock).
    LockTakenOver {
        from: String,
        pid: u32,
        since: DateTime<Utc>,
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

/// What every message about a journal kongup cannot trust ends with.
const UNTRUSTED: &str = "kongup will not resume a run whose journal it cannot trust (nor \
                         report on it): restore the journal from a backup, or start a new run \
                         with --journal DIR";

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
        "line {line} of the journal {} is not a valid record ({message}): the journal was \
         edited or damaged there (only a torn last line, an unfinished write, can be dropped \
         safely). {UNTRUSTED}",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "the journal {} does not start with the run's plan record (run-created); it is not a \
         kongup journal, or its start was lost. {UNTRUSTED}",
        path.display()
    )]
    NoHeader { path: PathBuf },
    /// Two processes appended at once: two records with one number, or one line holding
    /// two records.
    #[error(
        "the journal {} was written by two processes at once: {detail}. Its records \
         interleave, so it no longer says what happened in which order. {UNTRUSTED}",
        path.display()
    )]
    Interleaved {
        path: PathBuf,
        /// Where it was found.
        line: usize,
        detail: String,
    },
    /// Sequence numbers that go back, or a record that comes after one it should precede.
    #[error(
        "the journal {} has records out of order: {detail}. Two processes wrote it at once, \
         or its lines were moved. {UNTRUSTED}",
        path.display()
    )]
    OutOfOrder {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error(
        "the journal {} has lost {}: records {before} and {after} are adjacent (lines {} and \
         {line}): {} missing. A line was deleted, or the file was damaged. {UNTRUSTED}",
        path.display(),
        if after - before == 2 { "a record" } else { "records" },
        line - 1,
        missing_records(*before, *after)
    )]
    Missing {
        path: PathBuf,
        /// The line of the record after the gap.
        line: usize,
        before: u64,
        after: u64,
    },
    /// A record's line is not what the next record's chained hash says it was.
    #[error(
        "the journal {} was edited or damaged at line {line}: {detail}. {UNTRUSTED}",
        path.display()
    )]
    Edited {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error(
        "line {line} of the journal {} is a `{event}` record, which kongup {} does not know, \
         so it was written by a newer kongup{}: upgrade kongup to resume this run (and to read \
         it with `kongup status` or `kongup report`); this one leaves the journal as it is",
        path.display(),
        env!("CARGO_PKG_VERSION"),
        started_by.as_ref().map_or(String::new(), |v| format!(" (the run was started by kongup {v})"))
    )]
    Newer {
        path: PathBuf,
        line: usize,
        event: String,
        /// The version of kongup that started the run, when it is not this one.
        started_by: Option<String>,
    },
    /// Before an append: the journal is no longer this process's alone.
    #[error(
        "kongup stopped before writing to the journal {}: {why}. It writes only to a journal \
         it alone holds, so it acts on nothing more, and leaves the journal as it is. See who \
         drives the run with `kongup status --journal {}`; once nobody does, `kongup run` \
         with the same plan checks the journal and resumes the run",
        path.display(),
        path.parent().unwrap_or(Path::new(".")).display()
    )]
    Interfered { path: PathBuf, why: String },
}

fn missing_records(before: u64, after: u64) -> String {
    if after - before == 2 {
        format!("record {} is", before + 1)
    } else {
        format!("records {} to {} are", before + 1, after - 1)
    }
}

/// A record as written: the record, with the chained hash of the line before it.
#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    /// SHA-256 (hex) of the previous line's bytes, without its newline; absent on the
    /// first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<&'a str>,
    at: &'a DateTime<Utc>,
    by: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// SHA-256 of a line's bytes (without its newline), in hex: what the next record's
/// `prev` holds.
pub fn line_sha256(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The append side. Only the engine holds one, under the run's lock.
#[derive(Debug)]
pub struct Journal {
    /// The lock on the journal; records are written through its descriptor.
    lock: RunLock,
    /// The file's length as this process left it: anything else was written (or cut)
    /// by another.
    len: u64,
    /// The chained hash of the last line, for the next record.
    last_line: Option<String>,
    next_seq: u64,
    redactor: Arc<Redactor>,
}

impl Journal {
    /// The journal `lock` is on, for appending after `valid_len` bytes (what
    /// [`read_journal`] found valid): a torn tail is cut off so the next record starts on
    /// a line of its own, and the next record chains to the last line kept.
    pub fn open(
        lock: RunLock,
        valid_len: u64,
        next_seq: u64,
        redactor: Arc<Redactor>,
    ) -> Result<Journal, JournalError> {
        let path = lock.journal_path().to_path_buf();
        let io_err = |what: &'static str| {
            let path = path.clone();
            move |source| JournalError::Io { what, path, source }
        };
        lock.check().map_err(|why| JournalError::Interfered {
            path: path.clone(),
            why,
        })?;
        let file = lock.journal_file();
        let len = file.metadata().map_err(io_err("inspect"))?.len();
        if len < valid_len {
            return Err(JournalError::Interfered {
                path,
                why: format!(
                    "it holds {len} bytes, fewer than the {valid_len} kongup read a moment ago: \
                     another process cut it short"
                ),
            });
        }
        if len > valid_len {
            file.set_len(valid_len)
                .map_err(io_err("cut the torn tail of"))?;
            file.sync_all().map_err(io_err("sync"))?;
        }
        let mut kept = vec![0; valid_len as usize];
        file.read_exact_at(&mut kept, 0).map_err(io_err("read"))?;
        let last_line = match kept.split_last() {
            None => None,
            Some((b'\n', lines)) => {
                let start = lines.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                Some(line_sha256(&lines[start..]))
            }
            Some(_) => {
                return Err(JournalError::Corrupt {
                    path,
                    line: kept.iter().filter(|&&b| b == b'\n').count() + 1,
                    message: "the line kongup would append after has no end".into(),
                });
            }
        };
        Ok(Journal {
            lock,
            len: valid_len,
            last_line,
            next_seq,
            redactor,
        })
    }

    pub fn path(&self) -> &Path {
        self.lock.journal_path()
    }

    /// Writes one record and fsyncs it; only then may the caller act on it. The record's
    /// free text (output lines, details, reasons, notes, warnings, fact values, command
    /// displays, errors) passes through the redactor first; its structure (step keys, the
    /// plan's text and hash, event tags) is kept as it is, so a short secret cannot
    /// garble what the journal is read back by.
    ///
    /// Before writing, it checks that this process still holds the journal (its lock, the
    /// same file at the journal's path, no bytes it did not write); the line, newline
    /// included, goes out in a single `write(2)` on the file opened `O_APPEND`.
    pub fn append(&mut self, by: &str, entry: Entry) -> Result<Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            at: Utc::now(),
            by: by.to_string(),
            entry: entry.redacted(&self.redactor),
        };
        let path = self.path().to_path_buf();
        let io_err = |what: &'static str| {
            let path = path.clone();
            move |source| JournalError::Io { what, path, source }
        };
        let mut line = serde_json::to_vec(&Line {
            seq: record.seq,
            prev: self.last_line.as_deref(),
            at: &record.at,
            by: &record.by,
            entry: &record.entry,
        })
        .map_err(|e| io_err("write a record to")(io::Error::other(e)))?;
        line.push(b'\n');

        let interfered = |why: String| JournalError::Interfered {
            path: path.clone(),
            why,
        };
        self.lock.check().map_err(interfered)?;
        let file = self.lock.journal_file();
        let len = file.metadata().map_err(io_err("inspect"))?.len();
        if len > self.len {
            return Err(interfered(format!(
                "it holds {len} bytes where this kongup wrote {}: another process wrote to it \
                 (this kongup did not write its last {} bytes)",
                self.len,
                len - self.len
            )));
        }
        if len < self.len {
            return Err(interfered(format!(
                "it holds {len} bytes where this kongup wrote {}: another process cut it short",
                self.len
            )));
        }
        let mut writer: &File = file;
        let written = loop {
            match writer.write(&line) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other.map_err(io_err("append to"))?,
            }
        };
        if written != line.len() {
            // Leave no half record behind: the next append starts on a line of its own.
            let _ = file.set_len(self.len);
            return Err(io_err("append to")(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "only {written} of the record's {} bytes were written",
                    line.len()
                ),
            )));
        }
        file.sync_data().map_err(io_err("sync"))?;
        self.len += line.len() as u64;
        self.last_line = Some(line_sha256(&line[..line.len() - 1]));
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
            Entry::NodeOutcome {
                step,
                attempt,
                node,
                ok,
                reason,
            } => Entry::NodeOutcome {
                step,
                attempt,
                node,
                ok,
                reason: reason.map(text),
            },
            Entry::NodeTakenOut { step, node, reason } => Entry::NodeTakenOut {
                step,
                node,
                reason: text(reason),
            },
            Entry::ProcessStarted {
                step,
                attempt,
                process,
            } => Entry::ProcessStarted {
                step,
                attempt,
                process: TrackedProcess {
                    command: text(process.command),
                    ..process
                },
            },
            Entry::ProcessEnded {
                step,
                attempt,
                number,
                end,
            } => Entry::ProcessEnded {
                step,
                attempt,
                number,
                end: ProcessEnd {
                    how: text(end.how),
                    ..end
                },
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
            Entry::OutageStarted { why } => Entry::OutageStarted { why: text(why) },
            Entry::Warning { text: warning } => Entry::Warning {
                text: text(warning),
            },
            Entry::SessionClosed { reason } => Entry::SessionClosed {
                reason: text(reason),
            },
            Entry::HandoverDeclined {
                request,
                to,
                reason,
            } => Entry::HandoverDeclined {
                request,
                to,
                reason: text(reason),
            },
            // Nothing but structure (keys, hashes, the plan, numbers, gate figures).
            structural @ (Entry::RunCreated { .. }
            | Entry::SessionOpened { .. }
            | Entry::StepConfirmed { .. }
            | Entry::StepInterrupted { .. }
            | Entry::ProcessOnHost { .. }
            | Entry::ProcessKillRequested { .. }
            | Entry::AbortRequested { .. }
            | Entry::Resumed
            | Entry::TrafficRequested { .. }
            | Entry::Gate { .. }
            | Entry::RollbackFinished
            | Entry::OutageEnded
            | Entry::HandoverRequested { .. }
            | Entry::HandedOver { .. }
            | Entry::LockTakenOver { .. }) => structural,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    /// The journal of the run in `dir`, locked, for appending after `valid_len` bytes.
    fn open(dir: &Path, valid_len: u64, next_seq: u64, redactor: Arc<Redactor>) -> Journal {
        let lock = RunLock::acquire(dir, "a@b").unwrap();
        Journal::open(lock, valid_len, next_seq, redactor).unwrap()
    }

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
        let mut journal = open(dir.path(), 0, 0, redactor);
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
        let mut journal = open(dir.path(), 0, 0, redactor);
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
        let mut journal = open(dir.path(), 0, 0, redactor.clone());
        journal.append("a@b", header()).unwrap();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":1,\"at\":\"2024-").unwrap();
        drop(file);

        let contents = read_journal(&path).unwrap();
        assert_eq!(contents.records.len(), 1);
        assert!(contents.torn_tail.unwrap().contains("torn"));
        let mut journal = open(dir.path(), contents.valid_len, 1, redactor);
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
        let mut journal = open(dir.path(), 0, 0, Arc::new(Redactor::default()));
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
        let mut journal = open(dir.path(), 0, 0, Arc::new(Redactor::default()));
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
        let mut journal = open(dir.path(), 0, 0, Arc::new(Redactor::default()));
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
            p99_on_shared_bounds: None,
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

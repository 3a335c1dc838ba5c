//! `kongup status`, and the run read back from its journal that `kongup report` reads too:
//! without the plan file and without taking the run's lock.
//!
//! A step the journal shows `running` while nobody holds the lock was cut off by a
//! crash: it is shown `interrupted`, as the engine will call it when the run is opened.
//! A program of a step whose end is not journaled (see `exec::track`) is looked up on
//! this machine: "still running since 04:12 UTC, pid 12180 on local" when it is.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::drivers::{Driver, drivers};
use super::event::{RunState, StepState};
use super::journal::{JOURNAL_FILE, JournalError, Record, read_journal};
use super::lock::{LockHolder, LockStatus, lock_status};
use super::view::{RunView, StepProcess};
use crate::exec::track::{self, Liveness};
use crate::lb::Split;

/// A run as read from its directory.
#[derive(Debug)]
pub struct RunOnDisk {
    pub run_dir: PathBuf,
    pub records: Vec<Record>,
    pub view: RunView,
    pub lock: LockStatus,
    /// What reading the journal warns about: a torn last line dropped, records written
    /// before kongup chained them.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadRunError {
    #[error(
        "no run in {}: it has no {JOURNAL_FILE}; pass the run directory with --journal DIR",
        .0.display()
    )]
    NoJournal(PathBuf),
    #[error("the journal in {} is empty: the run never started", .0.display())]
    Empty(PathBuf),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("could not check the lock of {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn read_run(run_dir: &Path) -> Result<RunOnDisk, ReadRunError> {
    let path = run_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Err(ReadRunError::NoJournal(run_dir.to_path_buf()));
    }
    let contents = read_journal(&path)?;
    let mut view = RunView::replay(&contents.records)
        .ok_or_else(|| ReadRunError::Empty(run_dir.to_path_buf()))?;
    let lock = lock_status(run_dir).map_err(|source| ReadRunError::Lock {
        path: run_dir.to_path_buf(),
        source,
    })?;
    if lock == LockStatus::Free {
        for record in view.records.values_mut() {
            if record.state == StepState::Running {
                record.state = StepState::Interrupted;
                record.detail = Some("kongup stopped while this step ran".to_string());
            }
        }
    }
    Ok(RunOnDisk {
        run_dir: run_dir.to_path_buf(),
        warnings: contents.warnings(),
        records: contents.records,
        view,
        lock,
    })
}

pub(super) fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn split_json(split: Option<Split>) -> serde_json::Value {
    match split {
        Some(s) => json!({"x": s.x, "y": s.y}),
        None => serde_json::Value::Null,
    }
}

fn holder_json(lock: &LockStatus) -> serde_json::Value {
    match lock {
        LockStatus::Free => serde_json::Value::Null,
        LockStatus::Held(Some(LockHolder {
            operator,
            pid,
            since,
        })) => json!({"operator": operator, "pid": pid, "since": time(since)}),
        LockStatus::Held(None) => json!({"operator": null, "pid": null, "since": null}),
    }
}

/// `phase/id` as `(phase, id)`.
pub(super) fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// What is known here of a step's program whose end is not journaled: `Some(true)` it
/// runs on this machine, `Some(false)` it has ended (not yet journaled), `None` only its
/// host can say (over ssh, with the connection gone).
fn runs_here(run: &RunOnDisk, process: &StepProcess) -> Option<bool> {
    match track::liveness(&process.process.identity, process.process.pgid) {
        Liveness::Running => Some(true),
        _ if process.process.remote_dir.is_some()
            && track::ended_here(&process.process, &run.run_dir).is_none() =>
        {
            None
        }
        _ => Some(false),
    }
}

/// A line about a step's program whose end is not journaled.
fn still_running_line(run: &RunOnDisk, process: &StepProcess) -> String {
    let command = &process.process.command;
    match runs_here(run, process) {
        Some(true) => format!(
            "still running since {} UTC: `{command}`, pid {} on {}",
            process.started_at.format("%H:%M"),
            process.pid(),
            process.process.on
        ),
        Some(false) => format!(
            "`{command}` ({}) has ended since kongup stopped; `kongup run` records how",
            process.place()
        ),
        None => format!(
            "`{command}` ({}) was running when the connection to its host was lost; \
             `kongup run` asks the host whether it still runs",
            process.place()
        ),
    }
}

/// `kongup status --json`.
pub fn status_json(run: &RunOnDisk) -> serde_json::Value {
    let view = &run.view;
    let steps: Vec<serde_json::Value> = view
        .step_keys()
        .iter()
        .map(|key| {
            let (phase, id) = split_key(key);
            let record = view.record(key);
            let still_running = record.and_then(|r| r.unended().next()).map(|p| {
                json!({
                    "command": p.process.command,
                    "on": p.process.on,
                    "pid": p.pid(),
                    "since": time(&p.started_at),
                    "running": runs_here(run, p),
                })
            });
            json!({
                "id": id,
                "phase": phase,
                "state": view.effective_state(key).as_str(),
                "confirmed_by": record.and_then(|r| r.confirmed_by.clone()),
                "confirmed_at": record.and_then(|r| r.confirmed_at.as_ref().map(time)),
                "still_running": still_running,
            })
        })
        .collect();
    json!({
        "run_id": view.run_id,
        "plan": view.plan_name,
        "state": view.run_state().as_str(),
        "steps": steps,
        "traffic": split_json(view.traffic()),
        "outage": outage_json(run),
        "locked_by": holder_json(&run.lock),
        "taken_out": view.taken_out.iter().map(|(node, out)| json!({
            "node": node,
            "step": out.step,
            "reason": out.reason,
            "by": out.by,
            "at": time(&out.at),
            "still_running": out.still_running,
            "state": out.what(),
        })).collect::<Vec<_>>(),
        "drivers": drivers(&run.records).iter().map(|d| json!({
            "operator": d.operator,
            "pid": d.pid,
            "from": time(&d.from),
            "to": d.to.as_ref().map(time),
            "ended": d.ended,
        })).collect::<Vec<_>>(),
    })
}

/// When the journal's last record was written: an outage still going is counted to it.
fn last_record_at(run: &RunOnDisk) -> DateTime<Utc> {
    run.records.last().map(|r| r.at).unwrap_or_else(Utc::now)
}

/// `{"total_secs": 41, "open": false, "outages": [{"from", "to", "secs", "why"}]}`.
fn outage_json(run: &RunOnDisk) -> serde_json::Value {
    let last = last_record_at(run);
    let outages = &run.view.outages;
    json!({
        "total_secs": outages.iter().map(|o| o.secs(last)).sum::<u64>(),
        "open": run.view.open_outage().is_some(),
        "outages": outages.iter().map(|o| json!({
            "from": time(&o.from),
            "to": o.to.as_ref().map(time),
            "secs": o.secs(last),
            "why": o.why,
        })).collect::<Vec<_>>(),
    })
}

fn state_mark(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "[ ]",
        StepState::Ready => "[?]",
        StepState::Running => "[>]",
        StepState::Succeeded => "[x]",
        StepState::Failed => "[!]",
        StepState::Interrupted => "[~]",
        StepState::Skipped => "[-]",
        StepState::RolledBack => "[<]",
    }
}

/// `alice@ops1 (pid 4242) from … to …: handed over to bob@ops2`.
pub(super) fn driver_text(driver: &Driver) -> String {
    let to = driver
        .to
        .as_ref()
        .map(time)
        .unwrap_or_else(|| "…".to_string());
    let ended = driver.ended.as_deref().unwrap_or("driving");
    format!(
        "{} (pid {}) from {} to {to}: {ended}",
        driver.operator,
        driver.pid,
        time(&driver.from)
    )
}

/// The run's state in words; waiting for the operator, with the step whose turn it is.
fn state_words(view: &RunView) -> String {
    let state = view.run_state();
    match (state, view.next_step()) {
        (RunState::Waiting, Some(next)) => format!("{} · {next}", state.title()),
        _ => state.title(),
    }
}

/// `kongup status` for people.
pub fn status_text(run: &RunOnDisk) -> String {
    let view = &run.view;
    let mut out = format!(
        "run {} (plan {}): {}\nrun directory: {}\n",
        view.run_id,
        view.plan_name,
        state_words(view),
        run.run_dir.display()
    );
    out.push_str(&match &run.lock {
        LockStatus::Free => "driven by: nobody (kongup run PLAN resumes it)\n".to_string(),
        LockStatus::Held(Some(holder)) => format!("driven by: {holder}\n"),
        LockStatus::Held(None) => "driven by: a process that has not written its name yet\n".into(),
    });
    out.push_str(&match (view.traffic_requested, view.traffic_applied) {
        (None, _) => "traffic: never changed by this run\n".to_string(),
        (Some(_), Some(applied)) => format!("traffic: {applied} (reported by the load balancer)\n"),
        (Some(requested), None) => format!("traffic: {requested} (asked; not read back)\n"),
    });
    out.push_str(&format!(
        "outage: {}\n",
        super::outage::summary(&view.outages, last_record_at(run))
    ));
    if let Some(reason) = &view.paused {
        out.push_str(&format!("paused: {reason}\n"));
    }
    let drivers = drivers(&run.records);
    if !drivers.is_empty() {
        out.push_str("drivers:\n");
        for driver in &drivers {
            out.push_str(&format!("  {}\n", driver_text(driver)));
        }
    }
    for warning in &run.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if !view.taken_out.is_empty() {
        out.push_str("taken out of their wave:\n");
        for (node, out_of) in &view.taken_out {
            out.push_str(&format!("  {}\n", out_of.describe(node)));
        }
    }
    out.push_str("steps:\n");
    for key in view.step_keys() {
        let state = view.effective_state(&key);
        let record = view.record(&key);
        let mut line = format!("  {} {key:<36} {:<12}", state_mark(state), state.as_str());
        if let Some(r) = record
            && let (Some(by), Some(at)) = (&r.confirmed_by, &r.confirmed_at)
        {
            line.push_str(&format!(" confirmed by {by} at {}", time(at)));
        }
        if let Some(detail) = record.and_then(|r| r.detail.as_deref())
            && state != StepState::Running
        {
            line.push_str(&format!(" — {detail}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
        for process in record.into_iter().flat_map(|r| r.unended()) {
            out.push_str(&format!("      {}\n", still_running_line(run, process)));
        }
    }
    out
}

//! The engine: the only owner of run state. It takes `Command`s, emits `Event`s and
//! journals each event before acting on it. It knows no terminal: the console, `--plain`
//! and tests all drive it the same way.
//!
//! ```ignore
//! let handle = engine::spawn(RunSetup { plan, expanded, plan_text, run_dir, operator,
//!                                       toolbox, options, side_events: None,
//!                                       lock: None })?;
//! // handle.events: RunChanged, then StepChanged for every step, then whatever happens.
//! handle.commands.send(Command::Confirm { step, typed: None }).await?;
//! ```
//!
//! Rules it keeps: a step starts only after a confirm (or a retry, or the plan's
//! `auto_advance` for a traffic stage) is in the journal; one step runs at a time; a
//! step found `running` when a run is opened again becomes `interrupted` and waits for
//! the operator; `Quit` and SIGHUP/SIGTERM/SIGINT never kill a running step: it runs to
//! its end, its result is journaled, then the engine stops.

pub mod cause;
pub mod command;
pub mod drivers;
pub mod event;
pub mod expected;
pub mod follow;
pub mod handover;
pub mod health;
pub mod journal;
pub mod lock;
pub mod outage;
pub mod plan_change;
pub mod report;
pub mod rollback;
mod run;
pub mod rundir;
pub mod shown;
pub mod status;
pub mod step;
pub mod view;
pub mod watcher;
pub mod wave;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use self::command::{Command, Operator};
pub use self::event::{Event, RunState, StepState};
pub use self::rollback::step_details;
pub use self::step::Toolbox;
use crate::plan::model::Plan;
use crate::plan::steps::{ExpandedPlan, Step, StepKind, StepRef};

/// Everything a run needs.
pub struct RunSetup {
    pub plan: Arc<Plan>,
    pub expanded: Arc<ExpandedPlan>,
    /// The plan file's text, exactly as read: its SHA-256 tells whether the plan changed.
    pub plan_text: String,
    /// The run directory itself (journal, lock, logs, backups).
    pub run_dir: PathBuf,
    pub operator: Operator,
    pub toolbox: Toolbox,
    pub options: RunOptions,
    /// Events from other tasks (metrics, topology, drift warnings) to pass on to the
    /// event stream, so a console reads one stream.
    pub side_events: Option<mpsc::UnboundedReceiver<Event>>,
    /// The run's lock, when the caller took it before writing into the run directory (a
    /// demo writes its plan there under it); else the engine takes it.
    pub lock: Option<lock::RunLock>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Resume even though the plan changed since the run started (journaled).
    pub accept_plan_change: bool,
    /// Handle SIGHUP, SIGTERM and SIGINT: a running step finishes, then the engine stops.
    pub handle_signals: bool,
}

/// A running engine.
pub struct EngineHandle {
    pub commands: mpsc::Sender<Command>,
    /// Bounded, and the engine never waits on it: a reader that falls behind gets the
    /// latest output lines and samples, told how many lines it missed, and every state
    /// change (see [`event::channel`]). It ends when the engine stops.
    pub events: event::EventReceiver,
    pub task: JoinHandle<Result<SessionEnd, EngineError>>,
    pub run_dir: PathBuf,
    pub run_id: String,
}

/// How a session ended (the run itself stays resumable unless it is done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub state: RunState,
    pub reason: String,
}

impl SessionEnd {
    /// What the operator reads when kongup leaves: why, where the run stands, and how
    /// `resume` (a command) continues it.
    pub fn stopped_line(&self, resume: &str) -> String {
        match self.state {
            RunState::Done => format!("done: {}", self.reason),
            RunState::RolledBack => {
                format!(
                    "rolled back: the upgrade did not go through ({})",
                    self.reason
                )
            }
            state => format!(
                "kongup stopped ({}); the run is {} and resumes with {resume}",
                self.reason,
                state.as_str()
            ),
        }
    }
}

/// What the operator reads when a run failed after it opened (a full disk under its
/// journal, a lost console): the journal holds every record written before the failure, so
/// `resume` (a command) continues the run once the cause is fixed.
pub fn failed_run_line(run_dir: &Path, resume: &str) -> String {
    format!(
        "the run in {} stopped before its end and stays resumable: fix what failed (free \
         space on its disk, for one), then resume it with {resume}",
        run_dir.display()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("could not create the run directory {}: {source}; pass --journal DIR to use another", path.display())]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the plan changed since the run in {} started:\n{}\nResume with --accept-plan-change to \
         go on with the new plan (the change is journaled), or put the old plan back",
        run_dir.display(),
        summary.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    )]
    PlanChanged {
        run_dir: PathBuf,
        summary: Vec<String>,
    },
    #[error(
        "the changed plan has no step {}, left undecided when the run in {} stopped: a step \
         that ran must not vanish with a plan change. Resume with the plan the run has (its \
         text is in the journal's first record, or the last plan-change-accepted record), \
         decide the step there (retry it, mark it done with a note, or skip it with a \
         reason), then resume with the changed plan and --accept-plan-change",
        steps.join(", "),
        run_dir.display()
    )]
    PlanDropsUndecided {
        run_dir: PathBuf,
        steps: Vec<String>,
    },
    #[error(
        "could not listen for SIGHUP, SIGTERM and SIGINT: {0}. Without them a lost terminal \
         could stop kongup in the middle of a step, so it does not start; this comes from \
         the environment kongup runs in (no signal support, or no file descriptors left): \
         run it again from an ordinary shell"
    )]
    Signals(#[source] std::io::Error),
    #[error(
        "kongup's engine stopped unexpectedly ({reason}). The run is resumable: the journal in \
         {} holds everything up to here; run `kongup run` with the same plan to go on (a \
         step that was running shows as interrupted: retry it, mark it done, or roll back)",
        run_dir.display()
    )]
    Crashed { run_dir: PathBuf, reason: String },
}

/// Opens (or creates) the run, takes its lock, journals the session and starts the
/// engine task. Call it inside a tokio runtime.
pub fn spawn(setup: RunSetup) -> Result<EngineHandle, EngineError> {
    run::spawn(setup)
}

/// What a console shows before a confirm: the step (forward or rollback) and exactly
/// what confirming it will run, and where, one line each.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPreview {
    pub step: Step,
    pub runs: Vec<String>,
    /// Nothing runs: the operator does it and the confirm records it.
    pub by_hand: bool,
    /// A bake (a traffic stage's, the monitoring) with no gate source to judge it: a wave
    /// does not go on past it (`wave::confirm_lines`).
    pub bakes_without_gates: bool,
}

impl StepPreview {
    /// What decides whether a wave goes on into this step, or past it.
    pub fn wave_runs(&self) -> wave::WaveStepRuns {
        wave::WaveStepRuns {
            by_hand: self.by_hand,
            bakes_without_gates: self.bakes_without_gates,
        }
    }
}

pub fn preview_step(
    plan: &Plan,
    expanded: &ExpandedPlan,
    toolbox: &Toolbox,
    step: &StepRef,
) -> Option<StepPreview> {
    let details = step_details(expanded, step)?;
    let rollback_kind = rollback::rollback_step(expanded, step).map(|r| r.kind);
    let runs = toolbox.preview(plan, &details, rollback_kind.as_ref());
    let by_hand = toolbox.by_hand(&details, rollback_kind.as_ref());
    let bakes_without_gates = toolbox.gates.is_none()
        && matches!(
            details.kind,
            StepKind::ShiftTraffic { .. } | StepKind::Monitor { .. }
        );
    Some(StepPreview {
        step: details,
        runs,
        by_hand,
        bakes_without_gates,
    })
}

/// Runs blocking work (the journal's fsync, a log flush, waiting for the terminal writer)
/// without stalling the other tasks of this worker: on the multi-threaded runtime the
/// worker hands them over first; on a single-threaded one (tests) it just runs.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// After a terminal's input ends, how long the console and `--plain` wait for the SIGHUP a
/// hang-up brings (the kernel ends the input a moment before the signal arrives), so that
/// the session's end names the signal.
pub const HANGUP_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a session ended, when a signal ended it: the same words whether the engine's own
/// handler or the console caught it.
pub fn signal_reason(name: &str) -> String {
    match name {
        "SIGHUP" => "SIGHUP: the terminal went away".to_string(),
        other => format!("{other} received"),
    }
}

/// SHA-256 of a text, in hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `user@host` of whoever runs this process.
pub fn local_operator() -> Operator {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()));
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string());
    Operator(format!("{user}@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_say_what_to_do_next() {
        let signals = EngineError::Signals(std::io::Error::other("no signal driver")).to_string();
        assert!(
            signals.contains("no signal driver") && signals.contains("run it again"),
            "{signals}"
        );
        let timeout = step::ActionError::TrafficTimeout {
            driver: "haproxy at /run/haproxy.sock".into(),
            timeout: std::time::Duration::from_secs(19),
        }
        .to_string();
        assert!(
            timeout.contains("within 19s")
                && timeout.contains("retry the step")
                && timeout.contains("`traffic N`"),
            "{timeout}"
        );
    }
}

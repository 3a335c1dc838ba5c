//! The step contract: what a step is to the engine, and how the engine runs one.
//!
//! The engine runs a step as: the action registered for its kind (if any), then the
//! plan's `commands` for the step (if any), in order (`run_commands`). A step with neither
//! is a checklist item: the operator does it by hand, and the confirm is the operator
//! saying it is done.
//!
//! # Registering an action
//!
//! Built-in automation (traffic stages, backups, migrations, smoke tests, …) is a
//! [`StepAction`] put into the [`ActionRegistry`] of the engine's [`Toolbox`], matched by
//! what the step is. The engine knows none of them: the `actions` module implements them,
//! and `actions::builtins` lists them all.
//!
//! ```ignore
//! let mut actions = actions::builtins(Some(access));
//! actions.register(
//!     |target| matches!(target, ActionFor::Step(StepKind::Backup(BackupKind::Database))),
//!     Arc::new(PgDumpBackup::new(..)),
//! ); // replaces the built-in database backup
//! let toolbox = Toolbox::new(driver, redactor, actions);
//! ```
//!
//! The last registration that matches wins, so a lab or a test can replace a built-in.
//!
//! An action gets a [`StepContext`]: the step, the plan, the run directory, a log sink
//! ([`LogSink`]: lines are redacted, shown live and kept in `logs/` of the run), the
//! executors, the traffic driver, the gate verdicts, a way to record facts in the
//! journal, and a cancellation token (the operator's abort). Use
//! [`StepContext::run_command`] to run a command: it streams the output into the log and
//! honours abort and timeouts; [`StepContext::set_traffic`] moves traffic through the
//! engine's one [`TrafficPath`]; [`StepContext::bake`] waits with the gates on.

mod commands;
mod context;
mod log;
mod toolbox;
mod traffic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub(crate) use self::commands::some_nodes;
pub use self::commands::{describe_commands, run_commands};
pub use self::context::{BakeResult, NODE_VARIABLE, StepContext};
pub use self::log::{LOG_FLUSH_TIMEOUT, LogSink, TAIL_LINES};
pub use self::toolbox::{Toolbox, plan_secrets, resolve_plan_secrets};
pub(crate) use self::traffic::Mover;
pub use self::traffic::{
    DRIVER_MARGIN, TrafficPath, TrafficReadback, apply_split, driver_deadline, safety_evidence,
};
use crate::engine::journal::{Entry, GateRecord};
use crate::exec::{ExecError, ExitOutcome};
use crate::lb::LbError;
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::Plan;
use crate::plan::steps::{RollbackKind, Step, StepKind, StepRef};

/// What an action is looked up by: a forward step's kind, or what a rollback step undoes.
#[derive(Debug, Clone, Copy)]
pub enum ActionFor<'a> {
    Step(&'a StepKind),
    Rollback(&'a RollbackKind),
}

/// What a confirmed step does.
#[async_trait::async_trait]
pub trait StepAction: Send + Sync {
    /// What it will do and where, one line each, shown before the confirm
    /// (e.g. "set the split to X 75% | Y 25% through haproxy at /run/haproxy.sock").
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String>;

    /// Runs the step. `Ok(Failed)` is a step that failed for a reason the operator should
    /// read (an exit status, a gate); `Err` is something that stopped the action itself.
    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Succeeded {
        detail: Option<String>,
        /// A traffic stage whose bake passed its gates: `auto_advance` may go on.
        gates_passed: bool,
    },
    Failed {
        detail: String,
        then: AfterFailure,
    },
}

impl StepOutcome {
    pub fn succeeded(detail: impl Into<String>) -> StepOutcome {
        StepOutcome::Succeeded {
            detail: Some(detail.into()),
            gates_passed: false,
        }
    }

    pub fn failed(detail: impl Into<String>) -> StepOutcome {
        StepOutcome::Failed {
            detail: detail.into(),
            then: AfterFailure::Stop,
        }
    }
}

/// What the run does after a failed step, beyond waiting for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    Stop,
    /// Pause the run (a gate failed with `on_fail: pause`, or was inconclusive).
    Pause,
    /// Start the rollback (a gate failed with `on_fail: rollback`).
    Rollback,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("the plan names no executor '{name}' (it has: {known}); add it under `executors:`")]
    UnknownExecutor { name: String, known: String },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("traffic driver: {0}")]
    Traffic(#[from] LbError),
    #[error(
        "traffic driver {driver} did not answer within {}s (what it started was stopped): check \
         that the load balancer is up and reachable and see which split it holds now, then \
         retry the step, or set the split by hand (`traffic N`)",
        timeout.as_secs()
    )]
    TrafficTimeout { driver: String, timeout: Duration },
    #[error(
        "the call to traffic driver {driver} was stopped by an abort{}",
        if *changed {
            " while it ran: the split may be half-applied; check the load balancer, then \
             set the split again (`traffic N`)"
        } else {
            " before it started: the split was not changed"
        }
    )]
    TrafficStopped { driver: String, changed: bool },
    #[error("could not journal {what}: {message}; the step stops here")]
    Journal { what: String, message: String },
    #[error("could not create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

type Matcher = dyn Fn(&ActionFor<'_>) -> bool + Send + Sync;

/// Actions by what they act on. See the module documentation.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    entries: Vec<(Arc<Matcher>, Arc<dyn StepAction>)>,
}

impl std::fmt::Debug for ActionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActionRegistry({} actions)", self.entries.len())
    }
}

impl ActionRegistry {
    /// No actions at all: every step runs only its plan commands.
    pub fn empty() -> Self {
        ActionRegistry::default()
    }

    /// Adds an action for every step `matches` accepts; later registrations win.
    pub fn register(
        &mut self,
        matches: impl Fn(&ActionFor<'_>) -> bool + Send + Sync + 'static,
        action: Arc<dyn StepAction>,
    ) -> &mut Self {
        self.entries.push((Arc::new(matches), action));
        self
    }

    pub fn find(&self, target: ActionFor<'_>) -> Option<Arc<dyn StepAction>> {
        self.entries
            .iter()
            .rev()
            .find(|(matches, _)| matches(&target))
            .map(|(_, action)| action.clone())
    }
}

/// A request from a running action to journal something; answered once it is on disk.
#[derive(Debug)]
pub(crate) struct JournalRequest {
    pub entry: Entry,
    /// Recorded as the operator's (a split set by hand), not kongup's.
    pub by_operator: bool,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Journals `entry` through the engine and waits until it is on disk.
pub(crate) async fn journal_through(
    journal: &mpsc::UnboundedSender<JournalRequest>,
    what: &str,
    entry: Entry,
    by_operator: bool,
) -> Result<(), ActionError> {
    let (done, answer) = oneshot::channel();
    let failed = |message: String| ActionError::Journal {
        what: what.to_string(),
        message,
    };
    journal
        .send(JournalRequest {
            entry,
            by_operator,
            done,
        })
        .map_err(|_| failed("the engine has stopped".into()))?;
    answer
        .await
        .map_err(|_| failed("the engine has stopped".into()))?
        .map_err(failed)
}

/// What a rollback step undoes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackOf {
    /// The forward step; `None` for `rollback/traffic-to-x`.
    pub undoes: Option<StepRef>,
    pub kind: RollbackKind,
}

pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Fail => "fail",
    }
}

pub fn gate_record(verdict: &GateVerdict) -> GateRecord {
    GateRecord {
        evaluated_at: verdict.at,
        verdict: verdict_name(verdict.verdict).to_string(),
        checks: verdict.checks.clone(),
        requests_in_window: verdict.requests_in_window,
        consecutive_breaches: verdict.consecutive_breaches,
        figures: Some(verdict.figures),
    }
}

/// Says how a command ended, for a step's detail.
pub fn describe_exit(outcome: ExitOutcome, timeout: Duration) -> String {
    match outcome {
        ExitOutcome::Exited(code) => format!("exit status {code}"),
        ExitOutcome::Signalled(signal) => format!("killed by signal {signal}"),
        ExitOutcome::TimedOut => format!(
            "timed out after {} (its process group was killed)",
            humantime::format_duration(timeout)
        ),
        ExitOutcome::Aborted => "aborted by the operator (its process group was killed)".into(),
    }
}

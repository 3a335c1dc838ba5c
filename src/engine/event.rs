//! What the engine tells the world. The console, `--plain` and tests all read these,
//! through the bounded stream of [`channel`].

mod channel;

pub use self::channel::{
    EventReceiver, EventSender, LOG_BACKLOG_BYTES, LOG_BACKLOG_LINES, OTHER_BACKLOG, channel,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::journal::ConfirmVia;
use super::lock::LockHolder;
pub use crate::exec::LogStream;
use crate::kong::topology::TopologySnapshot;
use crate::lb::Split;
use crate::metrics::{GateVerdict, MetricsSnapshot};
use crate::plan::steps::StepRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    /// Its turn has come: it waits for the operator's confirm.
    Ready,
    Running,
    Succeeded,
    Failed,
    /// Found `running` in the journal after a crash: the operator decides.
    Interrupted,
    Skipped,
    RolledBack,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Interrupted => "interrupted",
            StepState::Skipped => "skipped",
            StepState::RolledBack => "rolled-back",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Idle,
    /// A step runs.
    Running,
    /// The run is under way and no step runs: the next one waits for the operator.
    Waiting,
    Paused,
    RollingBack,
    /// Every step of the plan is settled: the upgrade went through.
    Done,
    /// It ended by a completed rollback: the upgrade did not go through.
    RolledBack,
    Failed,
    /// The step whose turn it is ended by the operator's abort: it waits for a retry,
    /// a note that it was done by hand, or a rollback.
    Aborted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Running => "running",
            RunState::Waiting => "waiting",
            RunState::Paused => "paused",
            RunState::RollingBack => "rolling-back",
            RunState::Done => "done",
            RunState::RolledBack => "rolled-back",
            RunState::Failed => "failed",
            RunState::Aborted => "aborted",
        }
    }

    /// The state for people: `ROLLED BACK`, `ROLLING BACK`, `WAITING FOR YOU`, `DONE`…
    pub fn title(self) -> String {
        match self {
            RunState::Waiting => "WAITING FOR YOU".to_string(),
            state => state.as_str().replace('-', " ").to_uppercase(),
        }
    }

    /// The run is over, one way or the other: nothing is left to confirm.
    pub fn is_over(self) -> bool {
        matches!(self, RunState::Done | RunState::RolledBack)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    /// The step whose output this is; `None` for engine-wide lines.
    pub step: Option<String>,
    pub stream: LogStream,
    /// Already redacted.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a metrics snapshot (both clusters' figures) is the largest event; one goes out per scrape round, so boxing it saves nothing worth an allocation"
)]
pub enum Event {
    StepChanged {
        step: StepRef,
        state: StepState,
        /// Exit status, failure reason, skip reason or note.
        detail: Option<String>,
    },
    RunChanged(RunState),
    /// A step starts (its `StepChanged` to running follows): its attempt, and who
    /// confirmed it as the journal has it (`user@host`); `None`: kongup itself, by the
    /// plan's `traffic.auto_advance`. `via`: how (`Wave`: it went on from the step before
    /// it in its wave, which `who` confirmed).
    StepStarted {
        step: StepRef,
        attempt: u32,
        who: Option<String>,
        via: ConfirmVia,
    },
    Log(LogLine),
    /// How a wave's node step (`wave-N-start-y`, `wave-N-stop-x`) last ended on one of
    /// its nodes, as journaled (`node-outcome`): `failed` is `None` once its commands there
    /// exited 0, else why it failed there. Derived from the run's view (`engine::shown`),
    /// so a resumed console and `kongup watch` get the same. A fresh start of the step
    /// (not a retry or a resume) forgets its nodes: its `StepChanged` to running from a
    /// state other than failed or interrupted says so.
    NodeOutcome {
        step: StepRef,
        node: String,
        failed: Option<String>,
    },
    /// Output lines the event stream left out because its reader fell behind (the step's
    /// log file has every one). `step`: whose lines; `None` for several steps' or
    /// kongup's own.
    LogSkipped {
        step: Option<String>,
        lines: u64,
    },
    TrafficChanged {
        /// What was asked of the driver.
        requested: Split,
        /// What the load balancer reports back; `None` when the driver cannot read it.
        applied: Option<Split>,
    },
    /// The split read back from the load balancer without changing it (preflight).
    TrafficRead(Split),
    /// Countdown of a bake after a traffic stage or during a monitor step.
    Bake {
        step: StepRef,
        remaining_secs: u64,
    },
    Gate(GateVerdict),
    Metrics(MetricsSnapshot),
    Topology(TopologySnapshot),
    /// No cluster serves traffic since `since` (`engine::outage`, journaled); `None`: one
    /// does (again).
    Outage {
        since: Option<DateTime<Utc>>,
    },
    RollbackProgress(RollbackProgress),
    /// Something the operator should see (drift, a skipped check, an insecure TLS flag).
    Warning(String),
    /// The engine did not do what the operator asked, and why ("cannot retry …: the run
    /// is paused …"). Not journaled: nothing happened. The console keeps it in the footer
    /// until the next key.
    Refused(String),
    /// What still runs of a step kongup no longer waits on (its command found running
    /// after kongup stopped): "`kong migrations up` is still running since 04:12 UTC, pid
    /// 12180 on local". `None` once nothing does. While something does, the step is
    /// neither retried nor marked done: the operator waits for it, or kills it.
    StillRunning {
        step: StepRef,
        what: Option<String>,
    },
    /// Who drives the run, and requests to hand it over.
    Session(SessionEvent),
}

/// Who drives the run (told to `kongup watch`), and another kongup's request to take it
/// over (told to the driver).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Who drives the run now; `None`: nobody (the driver quit, crashed or lost its
    /// terminal), so `kongup run` takes it over.
    Driver(Option<LockHolder>),
    /// `by` (`user@host`) asks to take the run over; unanswered, the request lapses at
    /// `until`.
    HandoverAsked { by: String, until: DateTime<Utc> },
    /// The request is no longer open (declined, lapsed, withdrawn, or the run is being
    /// handed over): why, in words.
    HandoverClosed(String),
}

/// How a rollback knows all traffic is on X.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrafficVerification {
    /// The driver read the split back (for nginx: from the file kongup wrote; the
    /// evidence says so).
    ReadBack,
    /// The operator set it by hand and confirmed it (manual driver).
    OperatorConfirmed,
    /// Nobody checked: the driver set the split but cannot read it back. (Also what a
    /// journal from before kongup recorded this says.)
    #[default]
    Unverified,
}

impl TrafficVerification {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficVerification::ReadBack => "read-back",
            TrafficVerification::OperatorConfirmed => "operator-confirmed",
            TrafficVerification::Unverified => "unverified",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RollbackProgress {
    Started,
    /// All traffic is on X: `verified` says how that is known, `evidence` in words
    /// ("confirmed by the load balancer, which reports …").
    TrafficSafe {
        time_to_safety_ms: u64,
        verified: TrafficVerification,
        evidence: String,
    },
    /// The remaining rollback steps, in the order they will be offered.
    Planned {
        steps: Vec<StepRef>,
        /// What the operator must know about it (X cannot serve, a phase not undone).
        note: Option<String>,
    },
    Finished,
}

//! What the operator (or a script, or a test) asks of the engine.

use crate::plan::steps::StepRef;

/// Who gave a command, as recorded in the journal (`user@host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(pub String);

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run a ready step. Irreversible steps need `typed` equal to the plan name.
    Confirm {
        step: StepRef,
        typed: Option<String>,
    },
    Skip {
        step: StepRef,
        reason: String,
    },
    /// Run a failed or interrupted step again. Irreversible steps need `typed` equal to
    /// the plan name, as for a confirm.
    Retry {
        step: StepRef,
        typed: Option<String>,
    },
    /// Record an interrupted step as done by hand.
    MarkDone {
        step: StepRef,
        note: String,
    },
    /// Take a node that failed in a wave's node step (its last attempt) out of the wave,
    /// with a reason. `node` is the name the operator typed: that is the confirmation.
    /// When every other node of the step is done, the step runs again at once on them
    /// (nothing left to run there but its wait); the run's later steps leave the node out.
    TakeOut {
        step: StepRef,
        node: String,
        reason: String,
    },
    Pause,
    Resume,
    /// One key: traffic to X first where that is safe, then the rollback plan.
    Rollback,
    /// Set the traffic split by hand (percent to Y). More to a Y found unfit
    /// (`engine::health`) needs `override_health`, journaled with the split's cause.
    SetTraffic {
        y_percent: u8,
        override_health: bool,
    },
    /// Stop the running step (kills its process group) and fail it.
    Abort,
    /// Kill what still runs of a step kongup no longer waits on (its command, found
    /// running after kongup stopped): SIGTERM to its process group (on its host, over
    /// ssh), SIGKILL after a grace. Journaled first; its end is recorded as it comes.
    Kill {
        step: StepRef,
    },
    /// The operator leaves: the run stays resumable. A running step finishes first.
    Quit,
    /// Leave for another reason than the operator's quit (a signal, a lost terminal, the
    /// end of `--plain`'s input), journaled as the session's end; otherwise as `Quit`.
    Stop {
        reason: String,
    },
    /// Hand the run over to the kongup that asks for it (`kongup run --take-over`): then
    /// leave, as `Quit`.
    HandOver,
    /// Keep the run: the request to take it over is declined.
    KeepRun,
}

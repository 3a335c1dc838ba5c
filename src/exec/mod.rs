//! Running commands: locally, over ssh, through kubectl, or on the simulated lab.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::event::LogStream;
use crate::plan::model::CommandLine;

/// One line of a command's output, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: LogStream,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: CommandLine,
    /// Extra environment for the command (secrets go here, never into argv).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitOutcome {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    /// Cancelled by an abort; the process group was killed.
    Aborted,
}

impl ExitOutcome {
    pub fn success(self) -> bool {
        self == ExitOutcome::Exited(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("could not start {what} on {executor}: {source}")]
    Spawn {
        what: String,
        executor: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Runs a command somewhere and streams its output line by line.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Where commands run, e.g. "local" or "ssh kong@cp1:22".
    fn describe(&self) -> String;
    /// Runs to completion, timeout or cancellation; output goes to `lines` as it comes.
    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError>;
}

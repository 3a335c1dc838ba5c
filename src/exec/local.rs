//! Runs commands on this machine.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{DEFAULT_KILL_GRACE, ProcessSpec, run_process};
use super::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::plan::model::CommandLine;

/// Runs an argv directly (no shell) or a `shell:` string with `sh -c`, in its own
/// process group, with the request's environment added to kongup's own.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    kill_grace: Duration,
}

impl Default for LocalExecutor {
    fn default() -> Self {
        LocalExecutor {
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }
}

impl LocalExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Time between SIGTERM and SIGKILL to the process group on timeout or abort.
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }
}

/// The program and arguments a command line runs as.
pub(crate) fn program_and_args(command: &CommandLine) -> Result<(String, Vec<String>), ExecError> {
    match command {
        CommandLine::Argv(argv) => match argv.split_first() {
            Some((program, args)) => Ok((program.clone(), args.to_vec())),
            None => Err(ExecError::Other(
                "the command is empty: give at least the program to run".to_string(),
            )),
        },
        CommandLine::Shell(script) => {
            Ok(("sh".to_string(), vec!["-c".to_string(), script.clone()]))
        }
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn describe(&self) -> String {
        "local".to_string()
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let (program, args) = program_and_args(&request.command)?;
        let spec = ProcessSpec {
            program: PathBuf::from(program),
            args,
            env: request.env,
            cwd: None,
            stdin: None,
            hold_stdin_open: false,
            what: request.command.display(),
            executor: self.describe(),
            kill_grace: self.kill_grace,
            slot: None,
        };
        run_process(spec, request.timeout, lines, cancel).await
    }
}

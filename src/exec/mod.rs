//! Running commands: locally, over ssh, through kubectl, or on the simulated lab.

pub mod ansible;
pub mod kubectl;
pub mod local;
pub mod process;
pub mod remote;
pub mod ssh;
pub mod track;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::step::NODE_VARIABLE;
use crate::plan::model::{CommandLine, ExecutorSpec};

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// A line from kongup itself.
    Engine,
}

/// One line of a command's output, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: LogStream,
    pub text: String,
}

#[derive(Clone)]
pub struct ExecRequest {
    pub command: CommandLine,
    /// Extra environment for the command (secrets go here, never into argv).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The environment's names only: its values may be secrets (`KONG_PG_PASSWORD`).
impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("command", &self.command)
            .field("env", &env_names(&self.env))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The names of an environment, for `Debug` output that must not show the values.
pub(crate) fn env_names(env: &[(String, String)]) -> Vec<&str> {
    env.iter().map(|(name, _)| name.as_str()).collect()
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

    /// How it ended, in words: "exited with status 1".
    pub fn describe(self) -> String {
        match self {
            ExitOutcome::Exited(code) => format!("exited with status {code}"),
            ExitOutcome::Signalled(signal) => format!("was killed by signal {signal}"),
            ExitOutcome::TimedOut => "timed out and was killed".to_string(),
            ExitOutcome::Aborted => "was aborted".to_string(),
        }
    }
}

/// How a command ended on one host of [`Executor::run_per_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    pub host: String,
    pub outcome: ExitOutcome,
    /// What happened there, for the step's log and its failure ("failed (rc=1): …").
    pub summary: String,
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
    /// Keep reading `lines` while this runs (or use `run_to_completion`): when the
    /// reader falls far behind, the program waits for it (no line is dropped); once the
    /// receiver is dropped, the output is read and discarded.
    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError>;

    /// Runs the command on each of `hosts` (the plan's node names) and says how it ended
    /// on each, in the order given; each host's command gets `KONGUP_NODE` (its name) and
    /// its output lines reach `lines` prefixed with `HOST: `. This default runs `run`
    /// once per host, one after the other, every host whatever the others did (until
    /// `cancel`: the hosts not started then are `Aborted`); an executor that reaches many
    /// hosts in one invocation (ansible) overrides it.
    async fn run_per_host(
        &self,
        hosts: &[String],
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<Vec<HostOutcome>, ExecError> {
        let mut outcomes = Vec::with_capacity(hosts.len());
        for host in hosts {
            let outcome = if cancel.is_cancelled() {
                ExitOutcome::Aborted
            } else {
                let mut request = request.clone();
                request.env.retain(|(name, _)| name != NODE_VARIABLE);
                request.env.push((NODE_VARIABLE.to_string(), host.clone()));
                let (host_tx, mut host_rx) = mpsc::channel::<OutputLine>(256);
                let forward = async {
                    while let Some(line) = host_rx.recv().await {
                        let text = format!("{host}: {}", line.text);
                        let _ = lines.send(OutputLine { text, ..line }).await;
                    }
                };
                let (outcome, ()) =
                    tokio::join!(self.run(request, host_tx, cancel.clone()), forward);
                outcome?
            };
            outcomes.push(HostOutcome {
                host: host.clone(),
                outcome,
                summary: if outcome.success() {
                    "ok".to_string()
                } else {
                    outcome.describe()
                },
            });
        }
        Ok(outcomes)
    }

    /// Asks the host a step's command ran on (under kongup's tracking wrapper, in
    /// `remote_dir` there) whether it still runs, for its output after `offsets` (bytes of
    /// stdout and stderr already read). Only executors that leave such a directory on
    /// another host (ssh) can answer.
    async fn probe_tracked(
        &self,
        remote_dir: &str,
        offsets: (u64, u64),
    ) -> Result<track::RemoteProbe, ExecError> {
        let _ = offsets;
        Err(ExecError::Other(format!(
            "{} keeps no directory {remote_dir} to ask about a command",
            self.describe()
        )))
    }

    /// Kills the process group of the step's command in `remote_dir` on its host
    /// (SIGTERM, SIGKILL after `grace`).
    async fn kill_tracked(&self, remote_dir: &str, grace: Duration) -> Result<(), ExecError> {
        let _ = grace;
        Err(ExecError::Other(format!(
            "{} keeps no directory {remote_dir} to find a command to kill",
            self.describe()
        )))
    }
}

/// A finished command and every line it printed.
#[derive(Debug, Clone)]
pub struct Completed {
    pub outcome: ExitOutcome,
    pub lines: Vec<OutputLine>,
}

impl Completed {
    /// The stdout lines, joined with newlines.
    pub fn stdout(&self) -> String {
        self.text_of(LogStream::Stdout)
    }

    /// The stderr lines, joined with newlines.
    pub fn stderr(&self) -> String {
        self.text_of(LogStream::Stderr)
    }

    fn text_of(&self, stream: LogStream) -> String {
        self.lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Says how a failed command ended, with its last lines of stderr (else stdout),
    /// for error messages.
    pub fn failure_summary(&self, last_lines: usize) -> String {
        let ending = self.outcome.describe();
        let stream = if self.lines.iter().any(|l| l.stream == LogStream::Stderr) {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        };
        let tail: Vec<&str> = self
            .lines
            .iter()
            .filter(|l| l.stream == stream && !l.text.trim().is_empty())
            .map(|l| l.text.as_str())
            .collect();
        let tail = &tail[tail.len().saturating_sub(last_lines)..];
        if tail.is_empty() {
            ending
        } else {
            format!("{ending}: {}", tail.join(" | "))
        }
    }
}

/// Runs a command and collects its output; for short commands whose output the caller
/// wants whole (a driver reading a load balancer, a probe). Steps whose output the
/// operator watches should call `Executor::run` and stream instead.
pub async fn run_to_completion(
    executor: &dyn Executor,
    request: ExecRequest,
    cancel: CancellationToken,
) -> Result<Completed, ExecError> {
    let (sender, mut receiver) = mpsc::channel(1024);
    let run = executor.run(request, sender, cancel);
    let collect = async {
        let mut lines = Vec::new();
        while let Some(line) = receiver.recv().await {
            lines.push(line);
        }
        lines
    };
    let (outcome, lines) = tokio::join!(run, collect);
    Ok(Completed {
        outcome: outcome?,
        lines,
    })
}

/// The executor a plan's `executors:` entry describes. `name` is the entry's name, for
/// errors. The `sim` kind exists only inside the simulated lab.
pub fn executor_for(spec: &ExecutorSpec, name: &str) -> Result<Arc<dyn Executor>, ExecError> {
    Ok(match spec {
        ExecutorSpec::Local => Arc::new(local::LocalExecutor::new()),
        ExecutorSpec::Ssh {
            host,
            user,
            port,
            identity_file,
        } => Arc::new(ssh::SshExecutor::new(
            host.clone(),
            user.clone(),
            *port,
            identity_file.clone(),
        )),
        ExecutorSpec::Kubectl {
            context,
            namespace,
            target,
            container,
        } => Arc::new(kubectl::KubectlExecutor::new(
            context.clone(),
            namespace.clone(),
            target.clone(),
            container.clone(),
        )),
        ExecutorSpec::Ansible(spec) => Arc::new(ansible::AnsibleExecutor::new(spec.clone())),
        ExecutorSpec::Sim => {
            return Err(ExecError::Other(format!(
                "executor {name:?} is of kind `sim`, which acts on the simulated lab: it is only available under `kongup demo` or `kongup run --rehearse`"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_names_the_environment_but_shows_no_value() {
        let request = ExecRequest {
            command: CommandLine::Argv(vec!["kong".into(), "migrations".into()]),
            env: vec![("KONG_PG_PASSWORD".into(), "pg-secret-9d2e".into())],
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("KONG_PG_PASSWORD"), "{shown}");
        assert!(!shown.contains("pg-secret-9d2e"), "{shown}");
        let spec = process::ProcessSpec {
            program: "kong".into(),
            args: Vec::new(),
            env: request.env.clone(),
            cwd: None,
            stdin: Some(b"pg-secret-9d2e".to_vec()),
            hold_stdin_open: false,
            what: "kong".into(),
            executor: "local".into(),
            kill_grace: Duration::from_secs(1),
            slot: None,
        };
        let shown = format!("{spec:?}");
        assert!(!shown.contains("pg-secret-9d2e"), "{shown}");
    }
}

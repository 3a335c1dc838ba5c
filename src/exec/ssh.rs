//! Runs commands on another host through the system's OpenSSH client, so the operator's
//! `~/.ssh/config`, known hosts and agent apply.
//!
//! `BatchMode=yes`: ssh never prompts (a missing key or an unknown host key fails at
//! once, with ssh's own message on stderr and exit status 255). The command travels as
//! an argv quoted for the remote shell inside a small wrapper (see `remote`); its
//! environment travels on stdin, never on an argv. On timeout or abort the local ssh is
//! killed, and the wrapper on the host then stops the remote command's process group.
//!
//! A step's command (see `exec::track`) runs under the tracking wrapper instead: it
//! outlives kongup and the connection, its output and exit status kept in its directory
//! on the host (`~/.kongup/runs/<run-id>/<phase>-<id>/<attempt>-<n>/`); kongup stops it by
//! writing `stop` on stdin, and asks about it later over new connections
//! ([`Executor::probe_tracked`], [`Executor::kill_tracked`]).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{
    DEFAULT_KILL_GRACE, ProcessSpec, find_program, is_tracked, kill_on_drop, run_process,
};
use super::remote::{
    KILL_SCRIPT, PROBE_SCRIPT, environment_line, shell_quote, tracked_argv, wrapped_argv,
};
use super::track::{self, ProcessIdentity, REMOTE_ASK_TIMEOUT, RemoteProbe, RemoteState};
use super::{
    Completed, ExecError, ExecRequest, Executor, ExitOutcome, LogStream, OutputLine,
    run_to_completion,
};
use crate::plan::model::CommandLine;

/// ssh's own connect timeout, capped by the command's timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SshExecutor {
    host: String,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    /// Extra `-o` options, e.g. `UserKnownHostsFile=…`.
    options: Vec<String>,
    kill_grace: Duration,
    /// Where the host keeps the directories of step commands.
    runs_dir: String,
}

impl SshExecutor {
    pub fn new(
        host: impl Into<String>,
        user: Option<String>,
        port: Option<u16>,
        identity_file: Option<PathBuf>,
    ) -> Self {
        SshExecutor {
            host: host.into(),
            user,
            port,
            identity_file,
            options: Vec::new(),
            kill_grace: DEFAULT_KILL_GRACE,
            runs_dir: track::REMOTE_RUNS_DIR.to_string(),
        }
    }

    /// Keeps the directories of step commands under `dir` on the host instead of
    /// `~/.kongup/runs`.
    pub fn with_runs_dir(mut self, dir: impl Into<String>) -> Self {
        self.runs_dir = dir.into();
        self
    }

    /// Adds an ssh `-o` option (`Name=value`) after kongup's own.
    pub fn with_option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// The arguments given to `ssh` for a command (the program itself excluded).
    pub fn ssh_args(&self, request: &ExecRequest) -> Result<Vec<String>, ExecError> {
        self.args_for(request.timeout, &wrapped_argv(&request.command)?)
    }

    /// The arguments given to `ssh` to run `remote` (an argv, quoted here for the
    /// remote shell).
    fn args_for(&self, timeout: Duration, remote: &[String]) -> Result<Vec<String>, ExecError> {
        let connect_timeout = CONNECT_TIMEOUT.min(timeout).as_secs().max(1);
        let mut args = vec![
            "-T".to_string(),
            "-o".to_string(),
            "BatchMode=yes".to_string(),
            "-o".to_string(),
            format!("ConnectTimeout={connect_timeout}"),
        ];
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(identity) = &self.identity_file {
            args.extend(["-i".to_string(), identity.display().to_string()]);
        }
        for option in &self.options {
            args.extend(["-o".to_string(), option.clone()]);
        }
        // `--` so a host name can never be read as an option.
        args.push("--".to_string());
        args.push(self.host.clone());
        let remote = remote
            .iter()
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ");
        args.push(remote);
        Ok(args)
    }
}

#[async_trait::async_trait]
impl Executor for SshExecutor {
    fn describe(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("ssh {user}{}{port}", self.host)
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        // A step's command: tracked, in a directory on the host named after its place.
        let slot = is_tracked().then(track::current).flatten().map(|tracking| {
            let mut slot = tracking.next_slot();
            slot.remote_dir = Some(tracking.remote_dir(&self.runs_dir, &slot));
            slot
        });
        let args = match slot.as_ref().and_then(|s| s.remote_dir.as_deref()) {
            Some(dir) => self.args_for(request.timeout, &tracked_argv(&request.command, dir)?)?,
            None => self.ssh_args(&request)?,
        };
        let stdin = environment_line(&request.env)?;
        let spec = ProcessSpec {
            program: find_program("ssh"),
            args,
            env: Vec::new(),
            cwd: None,
            stdin: Some(stdin),
            hold_stdin_open: true,
            what: request.command.display(),
            executor: self.describe(),
            kill_grace: self.kill_grace,
            slot,
        };
        run_process(spec, request.timeout, lines, cancel).await
    }

    async fn probe_tracked(
        &self,
        remote_dir: &str,
        offsets: (u64, u64),
    ) -> Result<RemoteProbe, ExecError> {
        let asked = self
            .ask(
                PROBE_SCRIPT,
                &[
                    remote_dir.to_string(),
                    offsets.0.to_string(),
                    offsets.1.to_string(),
                ],
                REMOTE_ASK_TIMEOUT,
            )
            .await?;
        parse_probe(&asked).ok_or_else(|| {
            ExecError::Other(format!(
                "{} did not answer about {remote_dir}: {}",
                self.describe(),
                asked.failure_summary(3)
            ))
        })
    }

    async fn kill_tracked(&self, remote_dir: &str, grace: Duration) -> Result<(), ExecError> {
        let asked = self
            .ask(
                KILL_SCRIPT,
                &[remote_dir.to_string(), grace.as_secs().max(1).to_string()],
                REMOTE_ASK_TIMEOUT + grace,
            )
            .await?;
        if asked.outcome.success() && asked.stdout().contains("kongup-kill: ") {
            Ok(())
        } else {
            Err(ExecError::Other(format!(
                "could not kill the command in {remote_dir} on {}: {}",
                self.describe(),
                asked.failure_summary(3)
            )))
        }
    }
}

impl SshExecutor {
    /// Runs one of kongup's own scripts on the host (never tracked: a question, given up
    /// with its caller).
    async fn ask(
        &self,
        script: &str,
        args: &[String],
        timeout: Duration,
    ) -> Result<Completed, ExecError> {
        let mut argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        argv.push("kongup".to_string());
        argv.extend(args.iter().cloned());
        let request = ExecRequest {
            command: CommandLine::Argv(argv),
            env: Vec::new(),
            timeout,
        };
        kill_on_drop(run_to_completion(self, request, CancellationToken::new())).await
    }
}

/// Reads a `PROBE_SCRIPT` answer: its first stdout line, then the output that followed.
fn parse_probe(asked: &Completed) -> Option<RemoteProbe> {
    if !asked.outcome.success() {
        return None;
    }
    let mut stdout = asked.lines.iter().filter(|l| l.stream == LogStream::Stdout);
    let answer = stdout
        .next()?
        .text
        .strip_prefix("kongup-probe: ")?
        .to_string();
    let field = |name: &str| {
        answer
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
            .filter(|value| !value.is_empty())
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
    let state = match field("state")? {
        "running" => RemoteState::Running(ProcessIdentity {
            pid: field("pid")?.parse().ok()?,
            start_ticks: number("start")?,
            boot_id: field("boot")?.to_string(),
        }),
        "ended" => RemoteState::Ended(field("status")?.parse().ok()?),
        "gone" => RemoteState::Gone,
        "missing" => RemoteState::Missing,
        _ => return None,
    };
    let lines = stdout
        .cloned()
        .chain(
            asked
                .lines
                .iter()
                .filter(|l| l.stream == LogStream::Stderr)
                .cloned(),
        )
        .collect();
    Some(RemoteProbe {
        state,
        lines,
        sizes: (number("out").unwrap_or(0), number("err").unwrap_or(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: CommandLine, env: Vec<(String, String)>) -> ExecRequest {
        ExecRequest {
            command,
            env,
            timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn argv_carries_batch_mode_connection_settings_and_the_quoted_command() {
        let executor = SshExecutor::new(
            "cp1.example",
            Some("kong".into()),
            Some(2222),
            Some(PathBuf::from("/keys/id kong")),
        );
        let args = executor
            .ssh_args(&request(
                CommandLine::Argv(vec!["kong".into(), "migrations".into(), "it's".into()]),
                Vec::new(),
            ))
            .unwrap();
        assert_eq!(
            args[..13],
            [
                "-T",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-p",
                "2222",
                "-l",
                "kong",
                "-i",
                "/keys/id kong",
                "--",
                "cp1.example",
            ]
        );
        assert_eq!(args.len(), 14);
        let remote = &args[13];
        assert!(remote.starts_with("'sh' '-c' 'kongup_nl="), "{remote}");
        assert!(
            remote.ends_with(r#" 'kongup' 'kong' 'migrations' 'it'\''s'"#),
            "{remote}"
        );
    }

    #[test]
    fn secrets_in_the_environment_never_reach_the_argv() {
        let executor = SshExecutor::new("h", None, None, None);
        let args = executor
            .ssh_args(&request(
                CommandLine::Shell("kong migrations up".into()),
                vec![("KONG_PG_PASSWORD".into(), "hunter2-secret".into())],
            ))
            .unwrap();
        assert!(args.iter().all(|a| !a.contains("hunter2-secret")));
        assert!(args.iter().all(|a| !a.contains("KONG_PG_PASSWORD")));
    }

    #[test]
    fn connect_timeout_never_exceeds_the_command_timeout() {
        let executor = SshExecutor::new("h", None, None, None).with_option("Ciphers=aes128-ctr");
        let mut req = request(CommandLine::Argv(vec!["true".into()]), Vec::new());
        req.timeout = Duration::from_secs(3);
        let args = executor.ssh_args(&req).unwrap();
        assert!(args.contains(&"ConnectTimeout=3".to_string()));
        let at = args.iter().position(|a| a == "Ciphers=aes128-ctr").unwrap();
        assert_eq!(args[at - 1], "-o");
        assert!(at < args.iter().position(|a| a == "--").unwrap());
    }

    #[test]
    fn a_probe_answer_gives_the_state_the_sizes_and_the_output_after_it() {
        let line = |stream, text: &str| OutputLine {
            stream,
            text: text.into(),
        };
        let asked = Completed {
            outcome: ExitOutcome::Exited(0),
            lines: vec![
                line(
                    LogStream::Stdout,
                    "kongup-probe: state=running status= pid=12180 start=4711 boot=b-1 out=20 err=4",
                ),
                line(LogStream::Stdout, "migrating core"),
                line(LogStream::Stderr, "warn"),
            ],
        };
        let probe = parse_probe(&asked).unwrap();
        assert_eq!(
            probe.state,
            RemoteState::Running(ProcessIdentity {
                pid: 12180,
                start_ticks: 4711,
                boot_id: "b-1".into()
            })
        );
        assert_eq!(probe.sizes, (20, 4));
        assert_eq!(
            probe
                .lines
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>(),
            ["migrating core", "warn"]
        );
        let ended = Completed {
            outcome: ExitOutcome::Exited(0),
            lines: vec![line(
                LogStream::Stdout,
                "kongup-probe: state=ended status=3 pid=1 start=2 boot=b out=0 err=0",
            )],
        };
        assert_eq!(parse_probe(&ended).unwrap().state, RemoteState::Ended(3));
        let refused = Completed {
            outcome: ExitOutcome::Exited(255),
            lines: vec![line(LogStream::Stderr, "Connection refused")],
        };
        assert_eq!(parse_probe(&refused), None);
    }

    #[test]
    fn describe_names_user_host_and_port() {
        assert_eq!(
            SshExecutor::new("cp1", Some("kong".into()), Some(22), None).describe(),
            "ssh kong@cp1:22"
        );
        assert_eq!(
            SshExecutor::new("cp1", None, None, None).describe(),
            "ssh cp1"
        );
    }
}

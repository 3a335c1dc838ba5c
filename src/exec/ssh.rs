//! Runs commands on another host through the system's OpenSSH client, so the operator's
//! `~/.ssh/config`, known hosts and agent apply.
//!
//! `BatchMode=yes`: ssh never prompts (a missing key or an unknown host key fails at
//! once, with ssh's own message on stderr and exit status 255). The command travels as
//! an argv quoted for the remote shell inside a small wrapper (see `remote`); its
//! environment travels on stdin, never on an argv. On timeout or abort the local ssh is
//! killed, and the wrapper on the host then stops the remote command's process group.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{DEFAULT_KILL_GRACE, ProcessSpec, find_program, run_process};
use super::remote::{environment_line, shell_quote, wrapped_argv};
use super::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};

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
        }
    }

    /// Adds an ssh `-o` option (`Name=value`) after kongup's own.
    pub fn with_option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// The arguments given to `ssh` for a command (the program itself excluded).
    pub fn ssh_args(&self, request: &ExecRequest) -> Result<Vec<String>, ExecError> {
        let connect_timeout = CONNECT_TIMEOUT.min(request.timeout).as_secs().max(1);
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
        let remote = wrapped_argv(&request.command)?
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
        let args = self.ssh_args(&request)?;
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
        };
        run_process(spec, request.timeout, lines, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::CommandLine;

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

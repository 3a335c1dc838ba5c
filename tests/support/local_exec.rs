//! A minimal local `Executor` for tests: runs the command on this machine, streams its
//! lines, enforces the timeout and honours cancellation. (The product's executors live in
//! `kongup::exec`; this stand-in keeps these tests independent of them.)

use std::process::Stdio;

use kongup::engine::event::LogStream;
use kongup::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use kongup::plan::model::CommandLine;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct LocalExec;

#[async_trait::async_trait]
impl Executor for LocalExec {
    fn describe(&self) -> String {
        "local (test)".into()
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let mut command = match &request.command {
            CommandLine::Argv(argv) => {
                let mut c = tokio::process::Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            CommandLine::Shell(script) => {
                let mut c = tokio::process::Command::new("sh");
                c.args(["-c", script]);
                c
            }
        };
        command
            .envs(request.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| ExecError::Spawn {
            what: request.command.display(),
            executor: self.describe(),
            source,
        })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let out = tokio::spawn(pump(
            BufReader::new(stdout),
            LogStream::Stdout,
            lines.clone(),
        ));
        let err = tokio::spawn(pump(BufReader::new(stderr), LogStream::Stderr, lines));
        let outcome = tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| ExecError::Other(e.to_string()))?;
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(code), _) => ExitOutcome::Exited(code),
                    (None, Some(signal)) => ExitOutcome::Signalled(signal),
                    (None, None) => ExitOutcome::Exited(-1),
                }
            }
            _ = tokio::time::sleep(request.timeout) => {
                kill_group(&mut child).await;
                ExitOutcome::TimedOut
            }
            _ = cancel.cancelled() => {
                kill_group(&mut child).await;
                ExitOutcome::Aborted
            }
        };
        let _ = out.await;
        let _ = err.await;
        Ok(outcome)
    }
}

/// Kills the command's whole process group, so children holding its pipes die too.
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait().await;
}

async fn pump<R: tokio::io::AsyncBufRead + Unpin>(
    reader: R,
    stream: LogStream,
    lines: mpsc::Sender<OutputLine>,
) {
    let mut reader = reader.lines();
    while let Ok(Some(text)) = reader.next_line().await {
        if lines.send(OutputLine { stream, text }).await.is_err() {
            return;
        }
    }
}

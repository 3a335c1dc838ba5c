//! Local child processes kongup runs itself (`pg_dump`, `pg_restore`, `deck`): always with a
//! timeout, secrets only in the environment, and the process group killed when time runs
//! out. They start through the one process path (`exec::process::run_process`), so none
//! inherits the secret variables kongup hides from its children (the Admin token, the
//! other cluster's database password): each gets only what its call passes (`PGPASSWORD`
//! of its own database).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::process::{
    DEFAULT_KILL_GRACE, ProcessSpec, is_tracked, kill_on_drop, run_process,
};
use crate::exec::{ExecError, ExitOutcome, LogStream, OutputLine};

/// The most kongup reads of what a tool prints on each stream. Its outputs are small: decK
/// writes its dump to a file and prints progress, `pg_restore --list` a few hundred lines
/// for Kong's database; a tool that prints more is stopped rather than held in memory.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct ToolOutput {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{program} is not installed (or not on PATH): {hint}")]
    NotFound { program: String, hint: String },
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not finish within {}; it was killed", humantime::format_duration(*after))]
    TimedOut { what: String, after: Duration },
    #[error(
        "{what} printed more than {} MiB on {stream}; kongup stopped it, since no output it reads \
         is that large. Run it by hand to see what it prints",
        MAX_OUTPUT_BYTES / (1024 * 1024)
    )]
    OutputTooLarge { what: String, stream: &'static str },
    #[error("{what} failed ({status}): {}", said(stderr))]
    Failed {
        what: String,
        status: String,
        stderr: String,
    },
    /// kongup lost track of it (waiting failed, or it would not die when killed).
    #[error("{0}")]
    Run(String),
}

/// What a failed tool printed on stderr, or that it printed nothing.
fn said(stderr: &str) -> &str {
    match stderr.trim() {
        "" => "it printed nothing on stderr",
        text => text,
    }
}

/// Runs `program args…` with `env` added to kongup's environment (less the variables it
/// hides) and stdin closed; kills its process group after `timeout`. `what` names the
/// action in errors ("pg_dump of db:5432/kong").
pub async fn run_tool(
    program: &Path,
    args: &[OsString],
    env: &[(String, String)],
    timeout: Duration,
    what: &str,
) -> Result<ToolOutput, ToolError> {
    run_tool_in(program, args, env, None, timeout, what).await
}

/// `run_tool` in the directory `cwd` (kongup's own when `None`), for tools that write
/// their output files into the current directory (`deck gateway dump --all-workspaces`).
pub async fn run_tool_in(
    program: &Path,
    args: &[OsString],
    env: &[(String, String)],
    cwd: Option<&Path>,
    timeout: Duration,
    what: &str,
) -> Result<ToolOutput, ToolError> {
    let program_name = program.display().to_string();
    let args = args
        .iter()
        .map(|arg| {
            arg.clone().into_string().map_err(|bad| ToolError::Spawn {
                program: program_name.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("its argument {bad:?} is not UTF-8: rename the file or directory"),
                ),
            })
        })
        .collect::<Result<Vec<String>, ToolError>>()?;
    let spec = ProcessSpec {
        program: program.to_path_buf(),
        args,
        env: env.to_vec(),
        cwd: cwd.map(Path::to_path_buf),
        stdin: None,
        hold_stdin_open: false,
        what: what.to_string(),
        executor: "local".to_string(),
        kill_grace: DEFAULT_KILL_GRACE,
        slot: None,
    };
    let (lines_tx, mut lines_rx) = mpsc::channel::<OutputLine>(1024);
    // Past the cap on either stream the tool is stopped: its process group is killed.
    let stop = CancellationToken::new();
    let run = async {
        let run = run_process(spec, timeout, lines_tx, stop.clone());
        // Inside a step the tool is one of the step's tracked processes: it outlives a
        // crash and is found again, so a retry never runs a second pg_restore beside it.
        // Elsewhere (`kongup db`, `kongup init`) it dies with a call that is dropped.
        if is_tracked() {
            run.await
        } else {
            kill_on_drop(run).await
        }
    };
    let collect = async {
        let (mut stdout, mut stderr) = (Vec::new(), String::new());
        let mut too_large = None;
        while let Some(line) = lines_rx.recv().await {
            if too_large.is_some() {
                continue;
            }
            let (held, name) = match line.stream {
                LogStream::Stdout => {
                    stdout.extend_from_slice(line.text.as_bytes());
                    stdout.push(b'\n');
                    (stdout.len(), "stdout")
                }
                LogStream::Stderr | LogStream::Engine => {
                    stderr.push_str(&line.text);
                    stderr.push('\n');
                    (stderr.len(), "stderr")
                }
            };
            if held > MAX_OUTPUT_BYTES {
                too_large = Some(name);
                stop.cancel();
                (stdout, stderr) = (Vec::new(), String::new());
            }
        }
        (stdout, stderr, too_large)
    };
    let (outcome, (stdout, stderr, too_large)) = tokio::join!(run, collect);
    if let Some(stream) = too_large {
        return Err(ToolError::OutputTooLarge {
            what: what.to_string(),
            stream,
        });
    }
    let outcome = outcome.map_err(|error| match error {
        ExecError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            ToolError::NotFound {
                program: program_name.clone(),
                hint: install_hint(program),
            }
        }
        ExecError::Spawn { source, .. } => ToolError::Spawn {
            program: program_name.clone(),
            source,
        },
        ExecError::Other(message) => ToolError::Run(message),
    })?;
    let status = match outcome {
        ExitOutcome::Exited(0) => return Ok(ToolOutput { stdout, stderr }),
        ExitOutcome::TimedOut => {
            return Err(ToolError::TimedOut {
                what: what.to_string(),
                after: timeout,
            });
        }
        ExitOutcome::Exited(code) => format!("exit status: {code}"),
        ExitOutcome::Signalled(signal) => format!("killed by signal {signal}"),
        ExitOutcome::Aborted => "aborted".to_string(),
    };
    Err(ToolError::Failed {
        what: what.to_string(),
        status,
        stderr,
    })
}

fn install_hint(program: &Path) -> String {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.as_str() {
        "pg_dump" | "pg_restore" | "psql" => "install the PostgreSQL client of the server's major version (e.g. postgresql-client-15), or name its path".into(),
        "deck" => "install decK from Kong, or let kongup export through the Admin API".into(),
        _ => "install it or name its full path".into(),
    }
}

/// Finds a program on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A PostgreSQL client program: on PATH, else in the newest `/usr/lib/postgresql/*/bin`.
pub fn find_pg_program(name: &str) -> PathBuf {
    if let Some(found) = find_on_path(name) {
        return found;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let candidate = entry.path().join("bin").join(name);
            is_executable(&candidate).then_some((version, candidate))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, path)| path)
        .unwrap_or_else(|| PathBuf::from(name))
}

//! Local child processes kongup runs itself (`pg_dump`, `pg_restore`, `deck`): always with a
//! timeout, secrets only in the environment, and the process killed when time runs out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

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
}

/// What a failed tool printed on stderr, or that it printed nothing.
fn said(stderr: &str) -> &str {
    match stderr.trim() {
        "" => "it printed nothing on stderr",
        text => text,
    }
}

/// Runs `program args…` with `env` added to kongup's environment and stdin closed; kills it
/// after `timeout`. `what` names the action in errors ("pg_dump of db:5432/kong").
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
    let mut command = tokio::process::Command::new(program);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ToolError::NotFound {
                program: program.display().to_string(),
                hint: install_hint(program),
            }
        } else {
            ToolError::Spawn {
                program: program.display().to_string(),
                source,
            }
        }
    })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let run = async {
        // Both streams at once, so a tool that fills one pipe while kongup waits on the
        // other cannot stall; past the cap the child is dropped, which kills it.
        let (stdout, stderr) = tokio::try_join!(
            read_capped(stdout, "stdout", what),
            read_capped(stderr, "stderr", what)
        )?;
        let status = child.wait().await.map_err(|source| ToolError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        Ok::<_, ToolError>(std::process::Output {
            status,
            stdout,
            stderr,
        })
    };
    let output = match tokio::time::timeout(timeout, run).await {
        Err(_) => {
            return Err(ToolError::TimedOut {
                what: what.to_string(),
                after: timeout,
            });
        }
        Ok(result) => result?,
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(ToolError::Failed {
            what: what.to_string(),
            status: output.status.to_string(),
            stderr,
        });
    }
    Ok(ToolOutput {
        stdout: output.stdout,
        stderr,
    })
}

/// All of one output stream, or `OutputTooLarge` once it passes [`MAX_OUTPUT_BYTES`].
async fn read_capped(
    stream: Option<impl AsyncRead + Unpin>,
    name: &'static str,
    what: &str,
) -> Result<Vec<u8>, ToolError> {
    let mut out = Vec::new();
    let Some(stream) = stream else {
        return Ok(out);
    };
    // A read error (the pipe broke) leaves what was read: the exit status says the rest.
    let _ = stream
        .take(MAX_OUTPUT_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .await;
    if out.len() > MAX_OUTPUT_BYTES {
        return Err(ToolError::OutputTooLarge {
            what: what.to_string(),
            stream: name,
        });
    }
    Ok(out)
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

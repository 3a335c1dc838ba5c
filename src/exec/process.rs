//! Runs one local program in its own process group: streams its output line by line,
//! enforces the timeout, and kills the whole group on timeout or abort. Every executor
//! ends up here (ssh and kubectl are local client programs too).
//!
//! Dropping the future of a run does not kill the program, on purpose: a step's command
//! (`kong migrations up`) must never die half-way because its caller stopped waiting (the
//! engine stopping on a journal error, say); only its timeout or the operator's abort
//! stops it. Calls that an outer deadline may give up on (the traffic drivers') run inside
//! [`kill_on_drop`], which SIGKILLs the process group of every program started in it that
//! was not reaped when the future is dropped.

use std::collections::VecDeque;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::track::{self, ProcessEnd, RemoteLine, Slot, StepTracking, TrackedProcess};
use super::{ExecError, ExitOutcome, OutputLine};
use crate::exec::LogStream;

/// A line longer than this is cut (the rest is counted, not kept), so a program that
/// writes megabytes without a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Lines held while the consumer of the output channel is slower than the program (a
/// read's lines are added at once, so the queue may pass this by one read's). Beyond this
/// the pipe readers wait for room, so the program waits on its full pipe (as
/// it would writing to a slow file) and no line is lost: the consumer, the step's log,
/// must have every line. A consumer that is gone (its receiver dropped) no longer holds
/// the program up: its lines are read and discarded.
pub const BACKLOG_LINES: usize = 10_000;

/// How much of a program's output one read takes: its whole lines are handed on at once,
/// so a program printing as fast as it can costs one hand-off per read, not one per line.
pub const OUTPUT_CHUNK: usize = 64 * 1024;

/// Between SIGTERM to the process group and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

/// After SIGKILL to the process group, how long kongup waits for the program to be gone.
/// A program still there is stuck in the kernel, and is reported rather than waited for.
pub const REAP_AFTER_KILL: Duration = Duration::from_secs(5);

/// After the program exits, how long its output pipes may stay open (held by a
/// background process it started) before kongup stops reading them. Time the readers
/// spend waiting for a slow consumer (the backlog full) does not count, up to
/// [`DRAIN_LIMIT`].
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The longest kongup reads a program's output after it exited: what the program left in
/// its pipes and the backlog is read whole (a log file on a slow disk takes that in well
/// under this); a background process that keeps the pipes full is cut off.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Where the program is looked up when its name has no `/` and `PATH` lacks it:
/// Debian keeps haproxy, nginx and sshd in /usr/sbin, which a non-root `PATH` omits.
const SBIN_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

/// Finds a program: a name with a `/` is taken as is; otherwise `PATH`, then /usr/sbin
/// and /sbin. Returns the name unchanged when nothing is found, so the spawn error names
/// what the operator wrote.
pub fn find_program(name: &str) -> PathBuf {
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Names of kongup's own environment variables that hold secrets (the plan's `env:`
/// secret sources). No program kongup starts inherits them; a command that needs one gets
/// it passed explicitly in its request's `env`.
static SECRET_ENV: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Keeps these environment variables from every program kongup starts from now on (unless
/// a request passes one explicitly). Names add up; none is ever taken back.
pub fn hide_env_from_children(names: impl IntoIterator<Item = String>) {
    let mut hidden = SECRET_ENV.write().unwrap_or_else(PoisonError::into_inner);
    for name in names {
        if !hidden.contains(&name) {
            hidden.push(name);
        }
    }
}

/// Removes the hidden secret variables from what `command` inherits, except those in
/// `passed` (given explicitly).
fn remove_hidden_env(command: &mut Command, passed: &[(String, String)]) {
    let hidden = SECRET_ENV.read().unwrap_or_else(PoisonError::into_inner);
    for name in hidden.iter() {
        if !passed.iter().any(|(given, _)| given == name) {
            command.env_remove(name);
        }
    }
}

tokio::task_local! {
    /// Set inside [`kill_on_drop`].
    static KILL_ON_DROP: bool;
}

/// Runs `future` so that a program `run_process` starts inside it has its whole process
/// group SIGKILLed if the future is dropped before the program was reaped (an outer
/// deadline, an abort that drops the call). For calls whose caller may give up on them,
/// like the traffic drivers'; see the module documentation for why it is not the default.
pub async fn kill_on_drop<F: std::future::Future>(future: F) -> F::Output {
    KILL_ON_DROP.scope(true, future).await
}

/// The longest `run_process` may take for a `timeout`: the timeout, the grace between
/// SIGTERM and SIGKILL, the wait for the program to go after SIGKILL, and the wait for the
/// output to drain.
pub fn longest_run(timeout: Duration) -> Duration {
    timeout + DEFAULT_KILL_GRACE + REAP_AFTER_KILL + DRAIN_GRACE
}

/// SIGKILLs a process group when dropped while armed: the run was given up on before its
/// program was reaped. Disarmed once the leader is reaped (after that the group id may
/// belong to someone else).
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// One program to start.
#[derive(Clone)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The directory it starts in; kongup's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Written to the program's stdin; `None` gives it /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// Keep stdin open (after writing `stdin`) until the program exits: the remote
    /// wrapper of ssh/kubectl watches for its end to know the client went away.
    pub hold_stdin_open: bool,
    /// How the command is named in errors, e.g. `kong migrations up`.
    pub what: String,
    /// Where it runs, for errors, e.g. `local`.
    pub executor: String,
    pub kill_grace: Duration,
    /// A step's process: its place, when the executor chose it (ssh names the command's
    /// directory on the host after it); otherwise the next of the step's.
    pub slot: Option<Slot>,
}

/// Neither the environment's values nor stdin (either may carry a secret).
impl std::fmt::Debug for ProcessSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &super::env_names(&self.env))
            .field("cwd", &self.cwd)
            .field("stdin", &self.stdin.as_ref().map(Vec::len))
            .field("what", &self.what)
            .field("executor", &self.executor)
            .field("kill_grace", &self.kill_grace)
            .field("slot", &self.slot)
            .finish()
    }
}

/// Starts the program and waits for it to exit, time out, or be cancelled; its stdout and
/// stderr lines go to `lines` as they arrive. On timeout or cancellation the whole
/// process group gets SIGTERM, then SIGKILL after `kill_grace`.
///
/// Inside a step ([`track::tracked`]) and outside [`kill_on_drop`], the program is one of
/// the step's tracked processes: started under the status wrapper with its output in
/// files of the run directory, journaled before it is waited on, its end journaled (see
/// `exec::track`).
///
/// The caller must keep reading `lines` while this runs (see `run_to_completion` for a
/// helper that collects them): once the backlog is full the program waits for the reader
/// (no line is dropped), and at the end this waits until every line is delivered.
pub async fn run_process(
    spec: ProcessSpec,
    timeout: Duration,
    lines: mpsc::Sender<OutputLine>,
    cancel: CancellationToken,
) -> Result<ExitOutcome, ExecError> {
    let kill_on_drop = KILL_ON_DROP.try_with(|kill| *kill).unwrap_or(false);
    match track::current().filter(|_| !kill_on_drop) {
        Some(tracking) => run_tracked(spec, &tracking, timeout, lines, cancel).await,
        None => run_piped(spec, timeout, lines, cancel, kill_on_drop).await,
    }
}

/// Whether a program started here now would be one of a step's tracked processes.
pub fn is_tracked() -> bool {
    !KILL_ON_DROP.try_with(|kill| *kill).unwrap_or(false) && track::current().is_some()
}

/// A relative program path (`./bin/deck` in a plan, or found through a relative PATH
/// entry) names a file as seen from kongup's own directory: made absolute when the program
/// starts in another (`cwd`), where the path would name another file or none.
fn from_here(program: PathBuf, cwd: Option<&Path>) -> PathBuf {
    match (cwd, std::env::current_dir()) {
        (Some(_), Ok(here)) if program.is_relative() && program.components().count() > 1 => {
            here.join(program)
        }
        _ => program,
    }
}

/// The command for `program args…` as the spec says: environment (less the hidden
/// variables), directory, stdin, its own process group. Output is the caller's to set.
fn command_for(spec: &ProcessSpec, program: &Path, args: &[String]) -> Command {
    let mut command = Command::new(program);
    remove_hidden_env(&mut command, &spec.env);
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    command
        .args(args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        // Its own group: the terminal's SIGINT/SIGHUP do not reach it (the engine
        // decides what happens to a running step), and a kill reaches its whole tree.
        .process_group(0);
    command
}

fn spawn(command: &mut Command, spec: &ProcessSpec) -> Result<(Child, Pid), ExecError> {
    let child = command.spawn().map_err(|source| ExecError::Spawn {
        what: spec.what.clone(),
        executor: spec.executor.clone(),
        source,
    })?;
    match child.id() {
        Some(pid) => Ok((child, Pid::from_raw(pid as i32))),
        None => Err(ExecError::Other(format!(
            "{} on {} exited before kongup could read its process id",
            spec.what, spec.executor
        ))),
    }
}

/// Writes the spec's stdin (if any) and, when asked to, holds it open until the program
/// exits (`exited`), writing `STOP_LINE` first if `stop` fires.
fn feed_stdin(
    child: &mut Child,
    spec: &ProcessSpec,
    exited: oneshot::Receiver<()>,
    stop: Option<oneshot::Receiver<()>>,
) {
    let (Some(mut stdin), Some(data)) = (child.stdin.take(), spec.stdin.clone()) else {
        return;
    };
    let hold = spec.hold_stdin_open;
    tokio::spawn(async move {
        // A program that exits without reading its stdin makes this fail; that is
        // its business, and its exit status tells the story.
        let _ = stdin.write_all(&data).await;
        let _ = stdin.flush().await;
        if hold {
            match stop {
                Some(stop) => {
                    let mut exited = exited;
                    tokio::select! {
                        _ = &mut exited => {}
                        Ok(()) = stop => {
                            let _ = stdin.write_all(STOP_LINE).await;
                            let _ = stdin.flush().await;
                            let _ = exited.await;
                        }
                    }
                }
                None => {
                    let _ = exited.await;
                }
            }
        }
        drop(stdin);
    });
}

/// What the tracked ssh wrapper reads on its stdin as the word to stop its command.
pub const STOP_LINE: &[u8] = b"stop\n";

/// After `STOP_LINE`, how long kongup waits for ssh to end by itself: the wrapper's own
/// SIGTERM-to-SIGKILL grace on the host, and room for the answer to come back.
pub const REMOTE_STOP_WAIT: Duration = Duration::from_secs(15);

/// Waits for the program to exit, time out or be cancelled; stops its group in the last
/// two cases. `stop` asks it politely first (the tracked ssh wrapper's `STOP_LINE`).
async fn wait_for(
    child: &mut Child,
    pgid: Pid,
    spec: &ProcessSpec,
    timeout: Duration,
    cancel: &CancellationToken,
    guard: &mut GroupGuard,
    stop: Option<oneshot::Sender<()>>,
) -> Result<ExitOutcome, ExecError> {
    enum Ending {
        Exited(io::Result<ExitStatus>),
        TimedOut,
        Aborted,
    }
    let ending = tokio::select! {
        biased;
        status = child.wait() => Ending::Exited(status),
        _ = cancel.cancelled() => Ending::Aborted,
        _ = tokio::time::sleep(timeout) => Ending::TimedOut,
    };
    let outcome = match ending {
        Ending::Exited(Ok(status)) => outcome_of(status),
        Ending::Exited(Err(error)) => {
            // Nobody knows whether it still runs: a dropped guard kills its group.
            return Err(ExecError::Other(format!(
                "waiting for {} on {} failed: {error}",
                spec.what, spec.executor
            )));
        }
        Ending::TimedOut | Ending::Aborted => {
            let (outcome, how) = match ending {
                Ending::TimedOut => (ExitOutcome::TimedOut, "timed out"),
                _ => (ExitOutcome::Aborted, "was aborted"),
            };
            let stopped_politely = match stop.map(|stop| stop.send(())) {
                Some(Ok(())) => tokio::time::timeout(REMOTE_STOP_WAIT, child.wait())
                    .await
                    .is_ok_and(|status| status.is_ok()),
                _ => false,
            };
            if !stopped_politely
                && !terminate_group(child, pgid, spec.kill_grace, REAP_AFTER_KILL).await
            {
                // Still not reaped: the armed guard sends SIGKILL once more on the way out.
                guard.armed = true;
                return Err(ExecError::Other(format!(
                    "{} on {} {how} and did not exit within {} of SIGKILL to its process group {pgid}: it is stuck in the kernel (uninterruptible I/O, a hung network mount?). Look at it with `ps -o pid,stat,wchan:32,args -g {pgid}` and deal with it before retrying",
                    spec.what,
                    spec.executor,
                    humantime::format_duration(REAP_AFTER_KILL)
                )));
            }
            outcome
        }
    };
    // The leader is reaped (`terminate_group` waits for it too).
    guard.armed = false;
    Ok(outcome)
}

/// The program with its output through pipes: for everything but a step's processes.
async fn run_piped(
    spec: ProcessSpec,
    timeout: Duration,
    lines: mpsc::Sender<OutputLine>,
    cancel: CancellationToken,
    kill_on_drop: bool,
) -> Result<ExitOutcome, ExecError> {
    let program = from_here(spec.program.clone(), spec.cwd.as_deref());
    let mut command = command_for(&spec, &program, &spec.args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let (mut child, pgid) = spawn(&mut command, &spec)?;
    // Declared after `child`, so it is dropped first: the group is killed while the
    // unreaped leader still holds its id.
    let mut guard = GroupGuard {
        pgid,
        armed: kill_on_drop,
    };

    let queue = Arc::new(LineQueue::new(2));
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(
            stdout,
            LogStream::Stdout,
            queue.clone(),
        )));
    } else {
        queue.reader_done();
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(
            stderr,
            LogStream::Stderr,
            queue.clone(),
        )));
    } else {
        queue.reader_done();
    }
    let forwarder = tokio::spawn(forward(queue.clone(), lines));

    let (exited_tx, exited_rx) = oneshot::channel::<()>();
    feed_stdin(&mut child, &spec, exited_rx, None);
    let outcome = wait_for(&mut child, pgid, &spec, timeout, &cancel, &mut guard, None).await?;
    let _ = exited_tx.send(());

    if !drain_readers(&mut readers, &queue).await {
        for reader in &readers {
            reader.abort();
        }
        queue
            .push(OutputLine {
                stream: LogStream::Engine,
                text: format!(
                    "kongup: stopped reading the output of {}: it exited but a background process it started still holds its output open",
                    spec.what
                ),
            })
            .await;
    }
    queue.close();
    let _ = forwarder.await;
    Ok(outcome)
}

/// Waits for the pipe readers after the program exited: [`DRAIN_GRACE`] at a time, again
/// while they waited for a slow consumer in that time (the output is still being taken),
/// [`DRAIN_LIMIT`] in all. False when they had to be given up on.
async fn drain_readers(readers: &mut [tokio::task::JoinHandle<()>], queue: &LineQueue) -> bool {
    let limit = Instant::now() + DRAIN_LIMIT;
    let drain = futures::future::join_all(readers.iter_mut());
    tokio::pin!(drain);
    loop {
        let waits_before = queue.lock().waits_for_room;
        let deadline = (Instant::now() + DRAIN_GRACE).min(limit);
        if tokio::time::timeout_at(deadline, &mut drain).await.is_ok() {
            return true;
        }
        let consumer_bound = queue.lock().waits_for_room > waits_before;
        if !consumer_bound || Instant::now() >= limit {
            return false;
        }
    }
}

/// A step's process (see `exec::track`): under the status wrapper, its output in files of
/// its directory, journaled before it is waited on and when it ends. Over ssh (the slot
/// names a directory on the host) the wrapper there says on stderr who the command is and
/// how it ended; when the connection ends without that, its end is left unrecorded, for
/// the engine to find out from the host.
async fn run_tracked(
    mut spec: ProcessSpec,
    tracking: &StepTracking,
    timeout: Duration,
    lines: mpsc::Sender<OutputLine>,
    cancel: CancellationToken,
) -> Result<ExitOutcome, ExecError> {
    let slot = spec.slot.take().unwrap_or_else(|| tracking.next_slot());
    let dir = tracking.run_dir.join(&slot.dir);
    let io_error = |what: &str, path: &Path, e: io::Error| {
        ExecError::Other(format!(
            "could not {what} {} for the output of {} on {}: {e}; free space there or fix its permissions, then retry the step",
            path.display(),
            spec.what,
            spec.executor
        ))
    };
    crate::engine::rundir::create_private_dir(&dir).map_err(|e| io_error("create", &dir, e))?;
    let output_file = |name: &str| {
        let path = dir.join(name);
        crate::engine::rundir::open_private_new(&path).map_err(|e| io_error("create", &path, e))
    };
    let (stdout, stderr) = (output_file("stdout")?, output_file("stderr")?);
    // The wrapper is `sh`: a program it cannot find would be sh's "not found" (127), not
    // the spawn error that names it, so it is looked up here.
    let program = from_here(
        find_program(&spec.program.to_string_lossy()),
        spec.cwd.as_deref(),
    );
    if !is_executable(&program) {
        return Err(ExecError::Spawn {
            what: spec.what.clone(),
            executor: spec.executor.clone(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not an executable program", program.display()),
            ),
        });
    }
    let mut args = vec![
        "-c".to_string(),
        track::STATUS_WRAPPER.to_string(),
        "kongup".to_string(),
        dir.join("status").display().to_string(),
        if spec.stdin.is_some() {
            "stdin"
        } else {
            "null"
        }
        .to_string(),
        program.display().to_string(),
    ];
    args.extend(spec.args.iter().cloned());
    let mut command = command_for(&spec, &find_program("sh"), &args);
    // The wrapper waits on stdin for kongup's go, given once the start is journaled.
    command.stdin(Stdio::piped()).stdout(stdout).stderr(stderr);
    let (mut child, pgid) = spawn(&mut command, &spec)?;
    let mut guard = GroupGuard { pgid, armed: false };

    let process = TrackedProcess {
        number: slot.number,
        command: spec.what.clone(),
        on: spec.executor.clone(),
        identity: match track::identify(pgid.as_raw()) {
            Ok(identity) => identity,
            Err(error) => {
                let _ = terminate_group(&mut child, pgid, spec.kill_grace, REAP_AFTER_KILL).await;
                return Err(ExecError::Other(format!(
                    "could not read the start time of {} on {} (pid {pgid}) from /proc: {error}; it was stopped, since kongup could not find it again after a crash",
                    spec.what, spec.executor
                )));
            }
        },
        pgid: pgid.as_raw(),
        dir: slot.dir.clone(),
        remote_dir: slot.remote_dir.clone(),
    };
    if let Err(error) = tracking.recorder.started(&process).await {
        let _ = terminate_group(&mut child, pgid, spec.kill_grace, REAP_AFTER_KILL).await;
        let _ = std::fs::remove_dir_all(&dir);
        return Err(ExecError::Other(format!(
            "could not journal the start of {} on {} ({error}), so it was not started: nothing runs that the journal does not know of",
            spec.what, spec.executor
        )));
    }
    let gate = match child.stdin.as_mut() {
        Some(stdin) => stdin
            .write_all(track::GO_LINE)
            .await
            .and(stdin.flush().await),
        None => Err(io::Error::other("its stdin is not a pipe")),
    };
    if spec.stdin.is_none() {
        drop(child.stdin.take());
    }
    if let Err(error) = gate {
        let _ = terminate_group(&mut child, pgid, spec.kill_grace, REAP_AFTER_KILL).await;
        return Err(ExecError::Other(format!(
            "could not let {} on {} start ({error}); it was stopped before it began",
            spec.what, spec.executor
        )));
    }

    let remote = slot.remote_dir.is_some();
    let (remote_tx, mut remote_rx) = mpsc::unbounded_channel();
    let follow = FollowedFiles::start(&dir, lines, remote.then_some(remote_tx));
    // The host says who the command is as it starts there: journaled as it comes.
    let recorder = tracking.recorder.clone();
    let remote_lines = tokio::spawn(async move {
        let mut exit = None;
        while let Some(line) = remote_rx.recv().await {
            match line {
                RemoteLine::Started(identity) => {
                    let _ = recorder.remote(slot.number, &identity).await;
                }
                RemoteLine::Exit(status) => exit = Some(status),
            }
        }
        exit
    });

    let (exited_tx, exited_rx) = oneshot::channel::<()>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    feed_stdin(&mut child, &spec, exited_rx, remote.then_some(stop_rx));
    let waited = wait_for(
        &mut child,
        pgid,
        &spec,
        timeout,
        &cancel,
        &mut guard,
        remote.then_some(stop_tx),
    )
    .await;
    let _ = exited_tx.send(());
    follow.finish().await;
    let remote_exit = remote_lines.await.ok().flatten();
    let outcome = waited?;

    let end = if remote {
        remote_exit.map(ProcessEnd::exited)
    } else {
        Some(match (outcome, track::read_status(&dir)) {
            (_, Some(status)) => ProcessEnd::exited(status),
            (ExitOutcome::Signalled(signal), None) => ProcessEnd {
                status: Some(128 + signal),
                how: track::describe_status(128 + signal),
            },
            (ExitOutcome::Exited(code), None) => ProcessEnd::exited(code),
            (ExitOutcome::TimedOut | ExitOutcome::Aborted, None) => ProcessEnd {
                status: None,
                how: "killed with its wrapper by kongup".into(),
            },
        })
    };
    match end {
        Some(end) => {
            if tracking.recorder.ended(slot.number, &end).await.is_ok() {
                // Its output is in the step's log now (redacted), and its end in the journal.
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        None => {
            // The connection ended without the host's word: the command may run on.
            return Ok(outcome);
        }
    }
    Ok(outcome)
}

/// A tracked process's output files, read as they grow.
pub(crate) struct FollowedFiles {
    queue: Arc<LineQueue>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    forwarder: tokio::task::JoinHandle<()>,
    done: CancellationToken,
}

/// How often a followed output file is read again when it had nothing new.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

impl FollowedFiles {
    /// Follows `dir/stdout` and `dir/stderr` from their start. With `remote`, the ssh
    /// wrapper's `kongup-remote:` lines on stderr go there instead of to `lines`.
    pub(crate) fn start(
        dir: &Path,
        lines: mpsc::Sender<OutputLine>,
        remote: Option<mpsc::UnboundedSender<RemoteLine>>,
    ) -> FollowedFiles {
        let queue = Arc::new(LineQueue::new(2));
        let done = CancellationToken::new();
        let readers = vec![
            tokio::spawn(follow_file(
                dir.join("stdout"),
                LogStream::Stdout,
                queue.clone(),
                done.clone(),
                None,
            )),
            tokio::spawn(follow_file(
                dir.join("stderr"),
                LogStream::Stderr,
                queue.clone(),
                done.clone(),
                remote,
            )),
        ];
        let forwarder = tokio::spawn(forward(queue.clone(), lines));
        FollowedFiles {
            queue,
            readers,
            forwarder,
            done,
        }
    }

    /// Reads what is left (the process has ended) and delivers every line.
    pub(crate) async fn finish(self) {
        self.done.cancel();
        // A background process the program left behind may go on writing: the files are
        // read while the step's log takes their lines (up to DRAIN_LIMIT), not beyond.
        let mut readers = self.readers;
        if !drain_readers(&mut readers, &self.queue).await {
            for reader in &readers {
                reader.abort();
            }
            self.queue
                .push(OutputLine {
                    stream: LogStream::Engine,
                    text: "kongup: stopped reading the command's output files: it exited but a \
                           background process it started still writes to them"
                        .to_string(),
                })
                .await;
        }
        self.queue.close();
        let _ = self.forwarder.await;
    }
}

async fn follow_file(
    path: PathBuf,
    stream: LogStream,
    queue: Arc<LineQueue>,
    done: CancellationToken,
    remote: Option<mpsc::UnboundedSender<RemoteLine>>,
) {
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) => {
            queue
                .push(OutputLine {
                    stream: LogStream::Engine,
                    text: format!("kongup: cannot read {}: {error}", path.display()),
                })
                .await;
            queue.reader_done();
            return;
        }
    };
    let mut chunk = vec![0u8; OUTPUT_CHUNK];
    let mut line = PartialLine::default();
    let remote = remote.as_ref();
    loop {
        // Looked at before reading: once done, everything was written before this read.
        let finishing = done.is_cancelled();
        let n = match file.read(&mut chunk).await {
            Ok(0) if finishing => break,
            Ok(0) => {
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                    _ = done.cancelled() => {}
                }
                continue;
            }
            Ok(n) => n,
            Err(_) => break,
        };
        deliver(&queue, remote, line.split(&chunk[..n], stream)).await;
    }
    if !line.is_empty() {
        deliver(&queue, remote, vec![line.take(stream)]).await;
    }
    queue.reader_done();
}

/// The lines of a read of a followed output file: what the remote wrapper says about the
/// command goes to `remote`, the rest to the queue at once (waiting for room, as the pipe
/// readers do).
async fn deliver(
    queue: &LineQueue,
    remote: Option<&mpsc::UnboundedSender<RemoteLine>>,
    mut lines: Vec<OutputLine>,
) {
    if let Some(remote) = remote {
        lines.retain(|line| match track::parse_remote_line(&line.text) {
            Some(said) => {
                let _ = remote.send(said);
                false
            }
            None => true,
        });
    }
    queue.push_all(lines).await;
}

fn outcome_of(status: ExitStatus) -> ExitOutcome {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitOutcome::Exited(code),
        (None, Some(signal)) => ExitOutcome::Signalled(signal),
        // Neither a code nor a signal only happens for stopped processes, which
        // `wait` does not report; treat it as a failure rather than invent success.
        (None, None) => ExitOutcome::Exited(-1),
    }
}

/// SIGTERM to the group; once the leader is reaped and the group is empty, done;
/// otherwise SIGKILL to the group after `grace`, and a wait of at most `reap_limit` for the
/// leader. False when the leader is still there then.
async fn terminate_group(
    child: &mut Child,
    pgid: Pid,
    grace: Duration,
    reap_limit: Duration,
) -> bool {
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        let leader_gone = !matches!(child.try_wait(), Ok(None));
        // The group's id stays reserved while any member lives, so this cannot hit
        // an unrelated process.
        if leader_gone && killpg(pgid, None) == Err(Errno::ESRCH) {
            return true;
        }
        if Instant::now() >= deadline {
            let _ = killpg(pgid, Signal::SIGKILL);
            return tokio::time::timeout(reap_limit, child.wait()).await.is_ok();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Output lines waiting for the consumer, shared by the two pipe readers and the
/// forwarder. Bounded: a reader waits for room (see [`BACKLOG_LINES`]). Lines come and go
/// a read's worth at a time: one lock and one wake-up each way per read, not per line.
struct LineQueue {
    state: Mutex<QueueState>,
    /// Told when a line is added or the readers are done (the forwarder waits on it).
    wake: Notify,
    /// Told when a line is taken or the consumer is gone (a full queue's readers wait).
    room: Notify,
}

struct QueueState {
    lines: VecDeque<OutputLine>,
    open_readers: usize,
    /// The consumer dropped its receiver: lines are discarded.
    consumer_gone: bool,
    /// How many times a reader found the queue full (the consumer is the slower).
    waits_for_room: u64,
}

enum Next {
    Lines(VecDeque<OutputLine>),
    Empty,
    Finished,
}

impl LineQueue {
    fn new(readers: usize) -> Self {
        LineQueue {
            state: Mutex::new(QueueState {
                lines: VecDeque::new(),
                open_readers: readers,
                consumer_gone: false,
                waits_for_room: 0,
            }),
            wake: Notify::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a line once there is room (the program waits on its pipe meanwhile).
    async fn push(&self, line: OutputLine) {
        self.push_all(vec![line]).await;
    }

    /// Adds a read's lines, in order, once there is room (the program waits on its pipe
    /// meanwhile).
    async fn push_all(&self, lines: Vec<OutputLine>) {
        if lines.is_empty() {
            return;
        }
        let mut counted = false;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.lock();
                if state.consumer_gone {
                    return;
                }
                if state.lines.len() < BACKLOG_LINES {
                    state.lines.extend(lines);
                    drop(state);
                    self.wake.notify_one();
                    return;
                }
                if !counted {
                    state.waits_for_room += 1;
                    counted = true;
                }
            }
            room.await;
        }
    }

    fn reader_done(&self) {
        let mut state = self.lock();
        state.open_readers = state.open_readers.saturating_sub(1);
        drop(state);
        self.wake.notify_one();
    }

    /// No more lines will come (readers finished or were stopped).
    fn close(&self) {
        self.lock().open_readers = 0;
        self.wake.notify_one();
    }

    /// The consumer is gone: what waits is dropped and the readers no longer wait.
    fn consumer_gone(&self) {
        let mut state = self.lock();
        state.consumer_gone = true;
        state.lines.clear();
        drop(state);
        self.room.notify_waiters();
    }

    /// Every line waiting, in order.
    fn next(&self) -> Next {
        let mut state = self.lock();
        if !state.lines.is_empty() {
            let lines = std::mem::take(&mut state.lines);
            drop(state);
            self.room.notify_waiters();
            return Next::Lines(lines);
        }
        if state.open_readers == 0 {
            Next::Finished
        } else {
            Next::Empty
        }
    }
}

async fn forward(queue: Arc<LineQueue>, lines: mpsc::Sender<OutputLine>) {
    loop {
        match queue.next() {
            Next::Lines(waiting) => {
                for line in waiting {
                    if lines.send(line).await.is_err() {
                        // Nobody listens any more: the readers go on draining the pipes,
                        // discarding, so the program is not blocked.
                        queue.consumer_gone();
                        return;
                    }
                }
            }
            Next::Finished => return,
            Next::Empty => queue.wake.notified().await,
        }
    }
}

async fn read_lines(mut pipe: impl AsyncRead + Unpin, stream: LogStream, queue: Arc<LineQueue>) {
    let mut chunk = vec![0u8; OUTPUT_CHUNK];
    let mut line = PartialLine::default();
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        queue.push_all(line.split(&chunk[..n], stream)).await;
    }
    if !line.is_empty() {
        queue.push(line.take(stream)).await;
    }
    queue.reader_done();
}

#[derive(Default)]
struct PartialLine {
    bytes: Vec<u8>,
    cut: usize,
}

impl PartialLine {
    /// The whole lines `data` ends (the first continuing what earlier reads began), in
    /// order; what follows its last newline is kept for the next read.
    fn split(&mut self, data: &[u8], stream: LogStream) -> Vec<OutputLine> {
        let mut lines = Vec::new();
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.append(&rest[..end]);
            lines.push(self.take(stream));
            rest = &rest[end + 1..];
        }
        self.append(rest);
        lines
    }

    fn append(&mut self, data: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.bytes.len());
        let kept = room.min(data.len());
        self.bytes.extend_from_slice(&data[..kept]);
        self.cut += data.len() - kept;
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.cut == 0
    }

    fn take(&mut self, stream: LogStream) -> OutputLine {
        if self.bytes.last() == Some(&b'\r') && self.cut == 0 {
            self.bytes.pop();
        }
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.cut > 0 {
            text.push_str(&format!(" … [{} more bytes cut]", self.cut));
        }
        self.bytes.clear();
        self.cut = 0;
        OutputLine { stream, text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_cut_and_says_how_much() {
        let mut line = PartialLine::default();
        line.append(&vec![b'a'; MAX_LINE_BYTES + 10]);
        line.append(b"bc");
        let out = line.take(LogStream::Stdout);
        assert!(out.text.starts_with(&"a".repeat(MAX_LINE_BYTES)));
        assert!(out.text.ends_with(" … [12 more bytes cut]"), "{}", out.text);
        assert!(line.is_empty());
    }

    #[test]
    fn a_carriage_return_before_the_newline_is_dropped() {
        let mut line = PartialLine::default();
        line.append(b"done\r");
        assert_eq!(line.take(LogStream::Stderr).text, "done");
    }

    /// Output that arrives a few bytes a read (a pipe of 5 bytes): lines cut across reads
    /// are put back whole, in order, and the last, without a newline, is kept.
    #[tokio::test]
    async fn lines_cut_across_reads_are_handed_on_whole_and_in_order() {
        let (mut writer, reader) = tokio::io::duplex(5);
        let queue = Arc::new(LineQueue::new(1));
        let reading = tokio::spawn(read_lines(reader, LogStream::Stdout, queue.clone()));
        let text = "token=hunter2-value\nsecond\n\nlast without a newline";
        writer.write_all(text.as_bytes()).await.unwrap();
        drop(writer);
        reading.await.unwrap();
        let Next::Lines(lines) = queue.next() else {
            panic!("no lines were handed on");
        };
        let lines: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            lines,
            [
                "token=hunter2-value",
                "second",
                "",
                "last without a newline"
            ]
        );
        assert!(matches!(queue.next(), Next::Finished));
    }

    fn numbered(i: usize) -> OutputLine {
        OutputLine {
            stream: LogStream::Stdout,
            text: i.to_string(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_reader_wait_and_loses_nothing() {
        use futures::FutureExt;
        let queue = Arc::new(LineQueue::new(1));
        for i in 0..BACKLOG_LINES {
            queue.push(numbered(i)).await;
        }
        let mut waiting = Box::pin(queue.push(numbered(BACKLOG_LINES)));
        assert!(
            waiting.as_mut().now_or_never().is_none(),
            "a full queue waits"
        );
        let Next::Lines(taken) = queue.next() else {
            panic!("a full queue hands its lines on");
        };
        assert!(
            taken.iter().map(|l| &l.text).eq(&(0..BACKLOG_LINES)
                .map(|i| i.to_string())
                .collect::<Vec<_>>())
        );
        assert!(waiting.now_or_never().is_some(), "lines taken make room");
        queue.reader_done();
        assert!(
            matches!(queue.next(), Next::Lines(l) if l.len() == 1 && l[0].text == BACKLOG_LINES.to_string())
        );
        assert!(matches!(queue.next(), Next::Finished));
    }

    #[tokio::test]
    async fn once_the_consumer_is_gone_a_full_queue_no_longer_waits() {
        use futures::FutureExt;
        let queue = Arc::new(LineQueue::new(1));
        for i in 0..BACKLOG_LINES {
            queue.push(numbered(i)).await;
        }
        let mut waiting = Box::pin(queue.push(numbered(BACKLOG_LINES)));
        assert!(waiting.as_mut().now_or_never().is_none());
        queue.consumer_gone();
        assert!(waiting.now_or_never().is_some());
        queue.reader_done();
        assert!(matches!(queue.next(), Next::Finished));
    }

    #[tokio::test]
    async fn a_leader_that_outlives_sigkill_is_reported_not_waited_for() {
        let sleeper = || {
            let mut command = Command::new("sleep");
            command.arg("30").process_group(0).kill_on_drop(true);
            command.spawn().unwrap()
        };
        // The "leader" is in a group of its own, so the SIGKILL to `group` never reaches
        // it: from terminate_group's side, exactly a program that would not die.
        let mut leader = sleeper();
        let mut member = sleeper();
        let group = Pid::from_raw(member.id().unwrap() as i32);
        let started = Instant::now();
        let reaped = terminate_group(
            &mut leader,
            group,
            Duration::from_millis(100),
            Duration::from_millis(300),
        )
        .await;
        assert!(!reaped);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // The group itself was signalled (SIGTERM is enough for `sleep`).
        let status = tokio::time::timeout(Duration::from_secs(5), member.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
        leader.kill().await.unwrap();
    }

    #[test]
    fn find_program_keeps_a_path_and_searches_a_bare_name() {
        assert_eq!(find_program("./bin/x"), PathBuf::from("./bin/x"));
        assert!(find_program("sh").is_absolute());
        assert_eq!(
            find_program("kongup-no-such-program"),
            PathBuf::from("kongup-no-such-program")
        );
    }
}

//! A step's processes that outlive kongup.
//!
//! Step commands run in process groups of their own, so when kongup dies (`kill -9`, a
//! lost machine of the operator's) they are re-parented and go on. So that a resumed
//! kongup finds them instead of starting a second copy beside them, every program started
//! while a step runs ([`tracked`], which the engine wraps around a step) is:
//!
//! - started under a small `sh` wrapper ([`STATUS_WRAPPER`]) that writes the program's
//!   exit status to `status` in the process's own directory of the run directory
//!   (`procs/<phase>-<id>/<attempt>-<n>/`) when it ends: a resumed kongup is not its
//!   parent and cannot `waitpid` it. (kongup does not re-exec itself as the supervisor:
//!   the same wrapper then serves on a remote host, where kongup's binary is not, and the
//!   engine's tests run in-process.)
//! - given files in that directory for its stdout and stderr, not pipes: a pipe to a
//!   dead kongup kills the program with SIGPIPE at its next line, while a file keeps
//!   taking its output, and the resumed kongup reads it from there. The files hold the raw
//!   output (kongup redacts what it shows and logs), so they are 0600 and removed once the
//!   end is journaled.
//! - journaled (through the [`Recorder`]) with its pid, process group and start time
//!   (field 22 of `/proc/<pid>/stat`, clock ticks after boot, so a reused pid is not
//!   taken for it) and the boot id (`/proc/sys/kernel/random/boot_id`, so a reboot is not
//!   missed), before kongup waits on it.
//!
//! Over ssh the command itself runs on the host under the same wrapper, in a session of
//! its own, its output in files of a directory there (`~/.kongup/runs/<run-id>/…`), so it
//! survives both kongup and the connection; see `remote`. A resumed kongup asks that host
//! (over ssh, with a timeout) whether it still runs and how it ended ([`watch`]).
//!
//! `kubectl exec`: the local `kubectl` client is tracked like any local program. The
//! wrapper in the pod stops the command when the client's stdin closes, and kongup's death
//! closes it, so a command in a pod does not outlive kongup by more than its 5 s grace; the
//! resumed kongup records how the client ended. The simulated lab's `sim` executor runs
//! its programs inside kongup: they die with it, and nothing is tracked.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Executor, LogStream, OutputLine};
use crate::plan::steps::StepRef;

/// The directory of the run directory that holds the step processes' output and status.
pub const PROCS_DIR: &str = "procs";

/// Where a host keeps the directories of the commands kongup runs there over ssh.
pub const REMOTE_RUNS_DIR: &str = "~/.kongup/runs";

/// How often a process kongup did not start (found again after a crash) is looked at.
pub const WATCH_POLL: Duration = Duration::from_millis(250);

/// How often a host is asked about a command whose connection was lost.
pub const REMOTE_POLL: Duration = Duration::from_secs(3);

/// The longest one question to a host about a command may take.
pub const REMOTE_ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// What both status wrappers do once the program may start: run `"$@"`, then write its
/// exit status to `$kongup_status_file` (through a temporary file, so a reader never sees
/// half a number). SIGTERM to the group reaches the program; the wrapper catches it, so
/// that it lives to write the program's status (a caught signal is reset to the default
/// in the program). A status above 128 is the shell's word for a signal: the wrapper
/// re-raises it on itself, so a parent that waits sees the signal, as it would without the
/// wrapper (a program that exits 130 by itself reads as killed by SIGINT: the shell cannot
/// tell them apart).
macro_rules! run_and_write_status {
    () => {
        r#"trap : TERM
"$@"
kongup_rc=$?
printf '%s\n' "$kongup_rc" > "$kongup_status_file.tmp" && mv -f "$kongup_status_file.tmp" "$kongup_status_file"
if [ "$kongup_rc" -gt 128 ] && kongup_signal=$(kill -l "$kongup_rc" 2>/dev/null); then
  trap - TERM
  kill -s "$kongup_signal" "$$"
fi
exit "$kongup_rc"
"#
    };
}

/// The wrapper of a step's program on this machine: `$1` is the status file, `$2` says
/// whether the program reads the rest of stdin (`stdin`) or /dev/null (`null`), the rest
/// is the program. It runs the program only once kongup writes `go` on its stdin, which
/// kongup does after the start is journaled: a kongup that dies before leaves a wrapper
/// that reads the end of stdin, writes `<status file>.not-started` and exits, so no
/// program ever runs that the journal does not know of.
pub const STATUS_WRAPPER: &str = concat!(
    r#"kongup_status_file=$1
kongup_stdin=$2
shift 2
if ! IFS= read -r kongup_go || [ "$kongup_go" != go ]; then
  : > "$kongup_status_file.not-started"
  exit 125
fi
[ "$kongup_stdin" = stdin ] || exec </dev/null
"#,
    run_and_write_status!()
);

/// The status wrapper of a step's command on an ssh host (`$1` the status file, the rest
/// the command): the tracking wrapper there starts it once the local ssh runs, which is
/// once kongup journaled it.
pub const REMOTE_STATUS_WRAPPER: &str = concat!(
    r#"kongup_status_file=$1
shift
"#,
    run_and_write_status!()
);

/// What kongup writes to a step program's wrapper once its start is journaled.
pub const GO_LINE: &[u8] = b"go\n";

/// Who a process is, across kongup's lifetime: its pid, its start time (clock ticks after
/// boot, field 22 of `/proc/<pid>/stat`) and the boot it started in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: i32,
    pub start_ticks: u64,
    pub boot_id: String,
}

/// A process a step started, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedProcess {
    /// Which of the attempt's processes (1, 2, …).
    pub number: u32,
    /// What it runs, as shown to the operator.
    pub command: String,
    /// Where: the executor, e.g. `local` or `ssh kong@cp1:22`.
    pub on: String,
    /// The local process kongup started: the program, or the ssh or kubectl client.
    pub identity: ProcessIdentity,
    pub pgid: i32,
    /// Its directory (output, exit status), relative to the run directory.
    pub dir: PathBuf,
    /// Over ssh: the command's directory on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_dir: Option<String>,
}

/// How a tracked process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEnd {
    /// Its exit status, when it was recorded (128 + N: killed by signal N).
    pub status: Option<i32>,
    /// How it ended, in words.
    pub how: String,
}

impl ProcessEnd {
    /// The end of a process whose exit status is `status`.
    pub fn exited(status: i32) -> ProcessEnd {
        ProcessEnd {
            status: Some(status),
            how: describe_status(status),
        }
    }
}

/// "exit status 0", or "exit status 143 (killed by SIGTERM)".
pub fn describe_status(status: i32) -> String {
    match (status > 128)
        .then(|| Signal::try_from(status - 128).ok())
        .flatten()
    {
        Some(signal) => format!("exit status {status} (killed by {})", signal.as_str()),
        None => format!("exit status {status}"),
    }
}

/// Journals what happens to a step's processes; the engine's answers once the record is
/// on disk.
#[async_trait::async_trait]
pub trait Recorder: Send + Sync {
    /// A process started. When this fails the process is stopped: nothing runs that the
    /// journal does not know of.
    async fn started(&self, process: &TrackedProcess) -> Result<(), String>;
    /// Over ssh: the command's own process on the host.
    async fn remote(&self, number: u32, remote: &ProcessIdentity) -> Result<(), String>;
    async fn ended(&self, number: u32, end: &ProcessEnd) -> Result<(), String>;
}

/// The processes of one attempt of a step: where their directories go, and how they are
/// journaled.
pub struct StepTracking {
    pub run_dir: PathBuf,
    pub run_id: String,
    /// `<phase>-<id>`, which names the step's directories.
    pub step_dir: String,
    pub attempt: u32,
    pub recorder: Arc<dyn Recorder>,
    next: AtomicU32,
}

/// One process's place: its number in the attempt and its directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub number: u32,
    /// Relative to the run directory.
    pub dir: PathBuf,
    /// Set by the ssh executor: the command's directory on the host.
    pub remote_dir: Option<String>,
}

impl StepTracking {
    pub fn new(
        run_dir: PathBuf,
        run_id: String,
        step: &StepRef,
        attempt: u32,
        recorder: Arc<dyn Recorder>,
    ) -> StepTracking {
        StepTracking {
            run_dir,
            run_id,
            step_dir: step_dir_name(step),
            attempt,
            recorder,
            next: AtomicU32::new(1),
        }
    }

    /// The next process's place.
    pub fn next_slot(&self) -> Slot {
        let number = self.next.fetch_add(1, Ordering::SeqCst);
        Slot {
            number,
            dir: PathBuf::from(PROCS_DIR)
                .join(&self.step_dir)
                .join(format!("{}-{number}", self.attempt)),
            remote_dir: None,
        }
    }

    /// The directory on a host, under `base` (`~/.kongup/runs` unless the executor says
    /// otherwise), for the process in `slot`.
    pub fn remote_dir(&self, base: &str, slot: &Slot) -> String {
        format!(
            "{}/{}/{}/{}-{}",
            base.trim_end_matches('/'),
            self.run_id,
            self.step_dir,
            self.attempt,
            slot.number
        )
    }
}

/// `<phase>-<id>` of a step, safe as a file name.
pub fn step_dir_name(step: &StepRef) -> String {
    format!(
        "{}-{}",
        step.phase,
        crate::engine::rundir::run_id_for(&step.id)
    )
}

tokio::task_local! {
    static TRACKING: Arc<StepTracking>;
}

/// Runs `future` (a step) so that every program started in it is tracked.
pub async fn tracked<F: Future>(tracking: Arc<StepTracking>, future: F) -> F::Output {
    TRACKING.scope(tracking, future).await
}

/// The tracking of the step this task runs, if any.
pub fn current() -> Option<Arc<StepTracking>> {
    TRACKING.try_with(Arc::clone).ok()
}

/// The boot this machine is in.
pub fn boot_id() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

/// The state (field 3) and start time (field 22) of a process, from `/proc/<pid>/stat`.
/// The command name (field 2) is in parentheses and may hold spaces: fields are counted
/// after its closing parenthesis.
fn stat(pid: i32) -> std::io::Result<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = || std::io::Error::other(format!("/proc/{pid}/stat is not as Linux writes it"));
    let (_, rest) = text.rsplit_once(')').ok_or_else(bad)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields
        .first()
        .and_then(|f| f.chars().next())
        .ok_or_else(bad)?;
    // `rest` starts at field 3, so field 22 is its 20th.
    let start = fields
        .get(19)
        .and_then(|f| f.parse().ok())
        .ok_or_else(bad)?;
    Ok((state, start))
}

/// Who the process `pid` is (it must still exist, a zombie included).
pub fn identify(pid: i32) -> std::io::Result<ProcessIdentity> {
    Ok(ProcessIdentity {
        pid,
        start_ticks: stat(pid)?.1,
        boot_id: boot_id()?,
    })
}

/// Whether a tracked process (its group) still runs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Running,
    Gone,
    /// The machine restarted since it started: it is gone.
    Rebooted,
}

/// Whether `identity` (the leader of the group `pgid`) still runs: the same process (pid
/// and start time) and not a zombie, or, with its leader gone, other members of its group.
pub fn liveness(identity: &ProcessIdentity, pgid: i32) -> Liveness {
    if boot_id().is_ok_and(|boot| boot != identity.boot_id) {
        return Liveness::Rebooted;
    }
    match stat(identity.pid) {
        Ok((state, start)) if start == identity.start_ticks => {
            if state == 'Z' {
                Liveness::Gone
            } else {
                Liveness::Running
            }
        }
        // Another process has the pid now: ours is gone, but its group may live on. A
        // group's id is its first leader's pid, and a new group with the same id would need
        // that pid to exist: with it taken by an unrelated process, members found are not
        // ours for sure, so only a group whose id no process holds counts.
        Ok(_) => Liveness::Gone,
        Err(_) if pgid == identity.pid && killpg(Pid::from_raw(pgid), None).is_ok() => {
            Liveness::Running
        }
        Err(_) => Liveness::Gone,
    }
}

/// The exit status the wrapper wrote in `dir`, if it did.
pub fn read_status(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("status"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The prefix of the lines the ssh wrapper says to kongup on stderr (its command's pid,
/// then its exit status); kongup reads them and does not show them.
pub const REMOTE_LINE: &str = "kongup-remote: ";

/// What a `kongup-remote:` line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteLine {
    Started(ProcessIdentity),
    Exit(i32),
}

/// Reads a `kongup-remote:` line; `None` for any other line.
pub fn parse_remote_line(line: &str) -> Option<RemoteLine> {
    let rest = line.strip_prefix(REMOTE_LINE)?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
    };
    if let Some(status) = field("exit") {
        return status.parse().ok().map(RemoteLine::Exit);
    }
    Some(RemoteLine::Started(ProcessIdentity {
        pid: field("pid")?.parse().ok()?,
        start_ticks: field("start")?.parse().ok()?,
        boot_id: field("boot")?.to_string(),
    }))
}

/// What a host says of a tracked command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteState {
    Running(ProcessIdentity),
    Ended(i32),
    /// Neither running nor a recorded status: killed with its wrapper, or the host
    /// restarted.
    Gone,
    /// The host has no directory for it.
    Missing,
}

/// A host's answer about a tracked command, and its output since the offsets asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteProbe {
    pub state: RemoteState,
    pub lines: Vec<OutputLine>,
    /// The sizes of its stdout and stderr files: the offsets to ask from next time.
    pub sizes: (u64, u64),
}

/// How a local process that is gone ended: the status its wrapper wrote in `dir`, else
/// why there is none.
fn local_end(process: &TrackedProcess, dir: &Path) -> ProcessEnd {
    match read_status(dir) {
        Some(status) => ProcessEnd::exited(status),
        None if dir.join("status.not-started").exists() => ProcessEnd {
            status: None,
            how: "never started: kongup stopped before it let it start".into(),
        },
        None if liveness(&process.identity, process.pgid) == Liveness::Rebooted => ProcessEnd {
            status: None,
            how: "gone: the machine restarted since it started, before it recorded an exit \
                  status"
                .into(),
        },
        None => ProcessEnd {
            status: None,
            how: "gone without recording an exit status (it was killed together with \
                  kongup's wrapper)"
                .into(),
        },
    }
}

/// How `process` (of the run in `run_dir`) ended, when it has and this machine can tell:
/// `None` while it runs, and for a command over ssh whose connection ended before the
/// host said how it ended (only the host knows: see [`watch`]).
pub fn ended_here(process: &TrackedProcess, run_dir: &Path) -> Option<ProcessEnd> {
    if liveness(&process.identity, process.pgid) == Liveness::Running {
        return None;
    }
    let dir = run_dir.join(&process.dir);
    if process.remote_dir.is_none() {
        return Some(local_end(process, &dir));
    }
    let stderr = std::fs::read_to_string(dir.join("stderr")).ok()?;
    stderr
        .lines()
        .filter_map(parse_remote_line)
        .find_map(|line| match line {
            RemoteLine::Exit(status) => Some(ProcessEnd::exited(status)),
            RemoteLine::Started(_) => None,
        })
}

/// Sends SIGTERM to the group, then SIGKILL if it still has members after `grace`.
pub async fn kill_group(pgid: i32, grace: Duration) {
    let group = Pid::from_raw(pgid);
    if killpg(group, Signal::SIGTERM) == Err(Errno::ESRCH) {
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if killpg(group, None) == Err(Errno::ESRCH) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// What watching a process found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchUpdate {
    /// It still runs; over ssh, the command's own process on the host when known.
    Running {
        remote: Option<ProcessIdentity>,
    },
    /// Whether it still runs cannot be told now (why); asked again.
    Unknown(String),
    Ended(ProcessEnd),
    /// A kill did not go through (why); it may still run.
    KillFailed(String),
}

/// A process kongup did not start in this session, being watched: its output is read from
/// its files as they grow, its end recorded; it can be killed.
pub struct Watch {
    kill: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// SIGTERM to its group (on its host, over ssh), SIGKILL after the grace. Each call
    /// is one more try (one that failed says so).
    pub fn kill(&self) {
        let _ = self.kill.send(());
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a watch says what it finds.
pub type WatchUpdates = Box<dyn Fn(WatchUpdate) + Send + Sync>;

/// Watches `process` (journaled in the run in `run_dir`): its output goes to `lines`
/// (from the start of its files), what is found to `updates`, until it has ended.
/// `executor` is where it ran, to ask the host about a command run over ssh.
pub fn watch(
    process: TrackedProcess,
    run_dir: &Path,
    executor: Option<Arc<dyn Executor>>,
    kill_grace: Duration,
    lines: mpsc::Sender<OutputLine>,
    updates: WatchUpdates,
) -> Watch {
    let (kill, kills) = mpsc::unbounded_channel();
    let watcher = Watcher {
        dir: run_dir.join(&process.dir),
        process,
        executor,
        kill_grace,
        lines,
        updates,
        kills,
    };
    Watch {
        kill,
        task: tokio::spawn(watcher.run()),
    }
}

struct Watcher {
    process: TrackedProcess,
    dir: PathBuf,
    executor: Option<Arc<dyn Executor>>,
    kill_grace: Duration,
    lines: mpsc::Sender<OutputLine>,
    updates: WatchUpdates,
    /// The operator's kills, one try each.
    kills: mpsc::UnboundedReceiver<()>,
}

impl Watcher {
    fn say(&self, update: WatchUpdate) {
        (self.updates)(update);
    }

    async fn note(&self, text: String) {
        let _ = self
            .lines
            .send(OutputLine {
                stream: LogStream::Engine,
                text,
            })
            .await;
    }

    async fn run(mut self) {
        let remote = self.process.remote_dir.clone();
        let (remote_tx, mut remote_rx) = mpsc::unbounded_channel();
        let follow = super::process::FollowedFiles::start(
            &self.dir,
            self.lines.clone(),
            remote.is_some().then_some(remote_tx),
        );
        let mut told_running = false;
        let mut remote_exit = None;
        loop {
            while let Ok(said) = remote_rx.try_recv() {
                match said {
                    RemoteLine::Started(identity) => self.say(WatchUpdate::Running {
                        remote: Some(identity),
                    }),
                    RemoteLine::Exit(status) => remote_exit = Some(status),
                }
            }
            match liveness(&self.process.identity, self.process.pgid) {
                Liveness::Running => {
                    if !told_running {
                        told_running = true;
                        self.say(WatchUpdate::Running { remote: None });
                    }
                }
                Liveness::Gone | Liveness::Rebooted => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(WATCH_POLL) => {}
                Some(()) = self.kills.recv() => self.kill_it(remote.as_deref()).await,
            }
        }
        follow.finish().await;
        while let Ok(said) = remote_rx.try_recv() {
            if let RemoteLine::Exit(status) = said {
                remote_exit = Some(status);
            }
        }
        let Some(remote) = remote else {
            self.say(WatchUpdate::Ended(local_end(&self.process, &self.dir)));
            return;
        };
        if let Some(status) = remote_exit {
            self.say(WatchUpdate::Ended(ProcessEnd::exited(status)));
            return;
        }
        self.ask_host(&remote).await;
    }

    async fn kill_it(&self, remote: Option<&str>) {
        match (remote, &self.executor) {
            (Some(dir), Some(executor)) => {
                if let Err(error) = executor.kill_tracked(dir, self.kill_grace).await {
                    self.say(WatchUpdate::KillFailed(error.to_string()));
                }
                // The local client ends once the command on the host has.
            }
            (Some(_), None) => self.say(WatchUpdate::KillFailed(format!(
                "the plan no longer has an executor for {}: kill it there by hand",
                self.process.on
            ))),
            (None, _) => kill_group(self.process.pgid, self.kill_grace).await,
        }
    }

    /// The connection to the host was lost while the command ran there: asks the host,
    /// again and again, until the command has ended there.
    async fn ask_host(&mut self, remote_dir: &str) {
        let Some(executor) = self.executor.clone() else {
            self.say(WatchUpdate::Unknown(format!(
                "the plan no longer has an executor for {}, so kongup cannot ask whether \
                 the command still runs in {remote_dir} there",
                self.process.on
            )));
            return;
        };
        self.note(format!(
            "kongup: the connection to {} ended before the command did; asking the host \
             about it (its output there, from the start)",
            self.process.on
        ))
        .await;
        let mut offsets = (0, 0);
        loop {
            match executor.probe_tracked(remote_dir, offsets).await {
                Ok(probe) => {
                    for line in probe.lines {
                        let _ = self.lines.send(line).await;
                    }
                    offsets = probe.sizes;
                    let end = match probe.state {
                        RemoteState::Running(identity) => {
                            self.say(WatchUpdate::Running {
                                remote: Some(identity),
                            });
                            None
                        }
                        RemoteState::Ended(status) => Some(ProcessEnd::exited(status)),
                        RemoteState::Gone => Some(ProcessEnd {
                            status: None,
                            how: format!(
                                "gone from {} without recording an exit status (killed with \
                                 its wrapper, or the host restarted)",
                                self.process.on
                            ),
                        }),
                        RemoteState::Missing => Some(ProcessEnd {
                            status: None,
                            how: format!(
                                "unknown: {} has no directory {remote_dir} (removed, or the \
                                 command never started there)",
                                self.process.on
                            ),
                        }),
                    };
                    if let Some(end) = end {
                        self.say(WatchUpdate::Ended(end));
                        return;
                    }
                }
                Err(error) => self.say(WatchUpdate::Unknown(format!(
                    "asking {} failed: {error}",
                    self.process.on
                ))),
            }
            tokio::select! {
                _ = tokio::time::sleep(REMOTE_POLL) => {}
                Some(()) = self.kills.recv() => {
                    if let Err(error) = executor.kill_tracked(remote_dir, self.kill_grace).await {
                        self.say(WatchUpdate::KillFailed(error.to_string()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_identified_by_its_start_time_and_boot() {
        let me = identify(std::process::id() as i32).unwrap();
        assert!(me.start_ticks > 0);
        assert_eq!(me.boot_id.len(), 36, "{}", me.boot_id);
        let pgid = nix::unistd::getpgrp().as_raw();
        assert_eq!(liveness(&me, pgid), Liveness::Running);
        let reused = ProcessIdentity {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert_eq!(liveness(&reused, pgid), Liveness::Gone);
        let other_boot = ProcessIdentity {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..me
        };
        assert_eq!(liveness(&other_boot, pgid), Liveness::Rebooted);
    }

    #[test]
    fn remote_lines_are_read_and_others_are_not() {
        assert_eq!(
            parse_remote_line("kongup-remote: pid=12180 start=4711 boot=ab-cd"),
            Some(RemoteLine::Started(ProcessIdentity {
                pid: 12180,
                start_ticks: 4711,
                boot_id: "ab-cd".into()
            }))
        );
        assert_eq!(
            parse_remote_line("kongup-remote: exit=143"),
            Some(RemoteLine::Exit(143))
        );
        assert_eq!(parse_remote_line("migrating core on database kong"), None);
    }

    #[test]
    fn a_status_above_128_names_its_signal() {
        assert_eq!(describe_status(0), "exit status 0");
        assert_eq!(describe_status(143), "exit status 143 (killed by SIGTERM)");
        assert_eq!(describe_status(255), "exit status 255");
    }
}

//! A step's processes (`exec::track`) on this machine: journaled before kongup waits on
//! them, their output read from files that outlive kongup, their end recorded; found again
//! by a kongup that did not start them, watched to their end, and killed on request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kongup::exec::local::LocalExecutor;
use kongup::exec::track::{
    self, ProcessEnd, ProcessIdentity, Recorder, StepTracking, TrackedProcess, WatchUpdate,
};
use kongup::exec::{ExecRequest, Executor, ExitOutcome, OutputLine, run_to_completion};
use kongup::plan::model::CommandLine;
use kongup::plan::steps::{PhaseName, StepRef};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the stand-in journal was told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Told {
    Started(TrackedProcess),
    OnHost(u32, ProcessIdentity),
    Ended(u32, ProcessEnd),
}

/// A journal that keeps what it is told; `refuse` makes it fail the starts, `slow` makes
/// a start take one more turn of the runtime once it is kept (as a real journal's fsync).
#[derive(Default)]
pub struct Journal {
    pub told: Mutex<Vec<Told>>,
    pub refuse: bool,
    pub slow: bool,
}

impl Journal {
    pub fn told(&self) -> Vec<Told> {
        self.told.lock().unwrap().clone()
    }

    /// What the host said of process `number`, once it is journaled: the host's line comes
    /// through its own follower, so it may land after the command's first output.
    pub async fn on_host(&self, number: u32) -> ProcessIdentity {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let said = self.told().into_iter().find_map(|told| match told {
                Told::OnHost(n, identity) if n == number => Some(identity),
                _ => None,
            });
            if let Some(identity) = said {
                return identity;
            }
            assert!(
                Instant::now() < deadline,
                "the host said who the command is"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first process started, once it is journaled and its stdout (in the run in
    /// `run_dir`) holds `said`.
    pub async fn started(&self, run_dir: &Path, said: &str) -> TrackedProcess {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Told::Started(p)) = self.told().into_iter().next() {
                let stdout = std::fs::read_to_string(run_dir.join(&p.dir).join("stdout"));
                if stdout.is_ok_and(|out| out.contains(said)) {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no process was journaled that said {said:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait::async_trait]
impl Recorder for Journal {
    async fn started(&self, process: &TrackedProcess) -> Result<(), String> {
        if self.refuse {
            return Err("the disk is full".into());
        }
        self.told
            .lock()
            .unwrap()
            .push(Told::Started(process.clone()));
        if self.slow {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    async fn remote(&self, number: u32, remote: &ProcessIdentity) -> Result<(), String> {
        self.told
            .lock()
            .unwrap()
            .push(Told::OnHost(number, remote.clone()));
        Ok(())
    }

    async fn ended(&self, number: u32, end: &ProcessEnd) -> Result<(), String> {
        self.told
            .lock()
            .unwrap()
            .push(Told::Ended(number, end.clone()));
        Ok(())
    }
}

/// The tracking of attempt 1 of `cluster/migrations-up` in the run in `run_dir`.
pub fn tracking(run_dir: &Path, journal: Arc<Journal>) -> Arc<StepTracking> {
    Arc::new(StepTracking::new(
        run_dir.to_path_buf(),
        "it-run".into(),
        &StepRef::new(PhaseName::Cluster, "migrations-up"),
        1,
        journal,
    ))
}

fn shell(script: String) -> ExecRequest {
    ExecRequest {
        command: CommandLine::Shell(script),
        env: Vec::new(),
        timeout: Duration::from_secs(60),
    }
}

/// Collects a watch's lines and updates.
pub struct Watching {
    pub lines: mpsc::Receiver<OutputLine>,
    pub updates: mpsc::UnboundedReceiver<WatchUpdate>,
    pub seen: Vec<String>,
}

impl Watching {
    pub fn start(
        process: TrackedProcess,
        run_dir: &Path,
        executor: Option<Arc<dyn Executor>>,
    ) -> (track::Watch, Watching) {
        let (lines_tx, lines) = mpsc::channel(256);
        let (updates_tx, updates) = mpsc::unbounded_channel();
        let watch = track::watch(
            process,
            run_dir,
            executor,
            Duration::from_secs(2),
            lines_tx,
            Box::new(move |update| {
                let _ = updates_tx.send(update);
            }),
        );
        (
            watch,
            Watching {
                lines,
                updates,
                seen: Vec::new(),
            },
        )
    }

    /// The next update that is not `Running`, reading lines meanwhile.
    pub async fn until(&mut self, wanted: impl Fn(&WatchUpdate) -> bool) -> WatchUpdate {
        loop {
            tokio::select! {
                Some(line) = self.lines.recv() => self.seen.push(line.text),
                update = self.updates.recv() => {
                    let update = update.expect("the watch says how it ends");
                    if wanted(&update) {
                        // What was written before is read before the end is said.
                        while let Ok(line) = self.lines.try_recv() {
                            self.seen.push(line.text);
                        }
                        return update;
                    }
                }
            }
        }
    }

    pub async fn line(&mut self, text: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.seen.iter().any(|l| l == text) {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("{text:?} was not read: {:?}", self.seen))
                .expect("the watch's lines");
            self.seen.push(line.text);
        }
    }
}

pub fn dir_of(run_dir: &Path, process: &TrackedProcess) -> PathBuf {
    run_dir.join(&process.dir)
}

#[tokio::test]
async fn a_step_program_is_journaled_before_it_is_waited_on_and_its_end_after() {
    let run_dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::default());
    let done = track::tracked(
        tracking(run_dir.path(), journal.clone()),
        run_to_completion(
            &LocalExecutor::new(),
            shell("echo out-1; echo err-1 >&2; echo out-2; exit 3".into()),
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::Exited(3));
    assert_eq!(done.stdout(), "out-1\nout-2");
    assert_eq!(done.stderr(), "err-1");
    let told = journal.told();
    let Told::Started(process) = &told[0] else {
        panic!("the start is journaled first: {told:?}");
    };
    assert_eq!(process.number, 1);
    assert_eq!(process.on, "local");
    assert_eq!(process.pgid, process.identity.pid, "it leads its own group");
    assert_eq!(process.dir, Path::new("procs/cluster-migrations-up/1-1"));
    assert_eq!(process.remote_dir, None);
    assert_eq!(
        told[1],
        Told::Ended(
            1,
            ProcessEnd {
                status: Some(3),
                how: "exit status 3".into()
            }
        )
    );
    assert!(
        !dir_of(run_dir.path(), process).exists(),
        "its raw output is removed once its end is journaled"
    );
}

#[tokio::test]
async fn a_program_the_journal_refuses_is_stopped_at_once() {
    let run_dir = tempfile::tempdir().unwrap();
    let marker = run_dir.path().join("ran-on");
    let journal = Arc::new(Journal {
        refuse: true,
        ..Journal::default()
    });
    let started = Instant::now();
    let error = track::tracked(
        tracking(run_dir.path(), journal),
        run_to_completion(
            &LocalExecutor::new(),
            shell(format!("sleep 2; touch '{}'", marker.display())),
            CancellationToken::new(),
        ),
    )
    .await
    .expect_err("nothing runs that the journal does not know of");
    assert!(error.to_string().contains("the disk is full"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !marker.exists(),
        "the program went on after its start failed to journal"
    );
}

/// kongup's death, as far as its process is concerned: the future that started the
/// program is dropped, and nobody reads its output any more.
#[tokio::test]
async fn a_program_outlives_its_caller_and_a_watch_reads_its_output_and_its_end() {
    let run_dir = tempfile::tempdir().unwrap();
    let go = run_dir.path().join("go");
    let journal = Arc::new(Journal::default());
    let script = format!(
        "echo started; while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.05; done; echo finished; exit 4",
        go.display(),
        run_dir.path().display()
    );
    let local = LocalExecutor::new();
    let run = track::tracked(
        tracking(run_dir.path(), journal.clone()),
        run_to_completion(&local, shell(script), CancellationToken::new()),
    );
    let process = tokio::select! {
        _ = run => panic!("the program ended before its gate opened"),
        process = journal.started(run_dir.path(), "started") => process,
    };
    // The run future is gone; the program goes on, writing into its files.
    assert_eq!(
        track::liveness(&process.identity, process.pgid),
        track::Liveness::Running
    );
    let (_watch, mut watching) = Watching::start(process.clone(), run_dir.path(), None);
    assert_eq!(
        watching
            .until(|u| matches!(u, WatchUpdate::Running { .. }))
            .await,
        WatchUpdate::Running { remote: None }
    );
    watching.line("started", Duration::from_secs(20)).await;
    std::fs::write(&go, "").unwrap();
    let end = watching.until(|u| matches!(u, WatchUpdate::Ended(_))).await;
    assert_eq!(
        end,
        WatchUpdate::Ended(ProcessEnd {
            status: Some(4),
            how: "exit status 4".into()
        })
    );
    assert!(
        watching.seen.contains(&"finished".to_string()),
        "{:?}",
        watching.seen
    );
    assert!(
        !journal.told().iter().any(|t| matches!(t, Told::Ended(..))),
        "the caller that went away journaled nothing more"
    );
}

#[tokio::test]
async fn a_watched_program_is_killed_with_its_group_and_its_status_says_so() {
    let run_dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::default());
    let child_pid = run_dir.path().join("child.pid");
    let script = format!(
        "sleep 300 & echo $! > '{}'; echo waiting; wait",
        child_pid.display()
    );
    let local = LocalExecutor::new();
    let run = track::tracked(
        tracking(run_dir.path(), journal.clone()),
        run_to_completion(&local, shell(script), CancellationToken::new()),
    );
    let process = tokio::select! {
        _ = run => panic!("the program ended by itself"),
        process = journal.started(run_dir.path(), "waiting") => process,
    };
    let (watch, mut watching) = Watching::start(process.clone(), run_dir.path(), None);
    watching.line("waiting", Duration::from_secs(20)).await;
    watch.kill();
    let end = watching.until(|u| matches!(u, WatchUpdate::Ended(_))).await;
    assert_eq!(
        end,
        WatchUpdate::Ended(ProcessEnd {
            status: Some(143),
            how: "exit status 143 (killed by SIGTERM)".into()
        }),
        "the wrapper lived to write the status of the program SIGTERM killed"
    );
    let sleeper: i32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::read_to_string(format!("/proc/{sleeper}/stat")).map_or(true, |stat| {
            stat.rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
        })
    });
    assert!(
        gone,
        "the rest of its process group (sleep {sleeper}) survived the kill"
    );
}

/// kongup dies after the start is journaled and before it lets the program start: the
/// program never runs, and the wrapper says so.
#[tokio::test]
async fn a_program_whose_caller_dies_before_letting_it_start_never_runs() {
    let run_dir = tempfile::tempdir().unwrap();
    let marker = run_dir.path().join("ran");
    let journal = Arc::new(Journal {
        slow: true,
        ..Journal::default()
    });
    let local = LocalExecutor::new();
    let run = track::tracked(
        tracking(run_dir.path(), journal.clone()),
        run_to_completion(
            &local,
            shell(format!("touch '{}'", marker.display())),
            CancellationToken::new(),
        ),
    );
    // Polled until the start is kept, and dropped while the journal still answers: before
    // kongup's next step, the go.
    let mut run = Box::pin(run);
    let process = loop {
        assert!(
            futures::poll!(run.as_mut()).is_pending(),
            "the program ran to its end before its start was journaled"
        );
        if let Some(Told::Started(process)) = journal.told().into_iter().next() {
            break process;
        }
        tokio::task::yield_now().await;
    };
    drop(run);
    let (_watch, mut watching) = Watching::start(process, run_dir.path(), None);
    let end = watching.until(|u| matches!(u, WatchUpdate::Ended(_))).await;
    assert_eq!(
        end,
        WatchUpdate::Ended(ProcessEnd {
            status: None,
            how: "never started: kongup stopped before it let it start".into()
        })
    );
    assert!(
        !marker.exists(),
        "the program ran though kongup never let it"
    );
}

#[tokio::test]
async fn a_program_that_is_not_there_is_a_spawn_error_naming_it_also_in_a_step() {
    let run_dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::default());
    let error = track::tracked(
        tracking(run_dir.path(), journal.clone()),
        run_to_completion(
            &LocalExecutor::new(),
            ExecRequest {
                command: CommandLine::Argv(vec!["kongup-no-such-program".into()]),
                env: Vec::new(),
                timeout: Duration::from_secs(5),
            },
            CancellationToken::new(),
        ),
    )
    .await
    .expect_err("nothing to start");
    assert!(
        matches!(&error, kongup::exec::ExecError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(journal.told().is_empty());
}

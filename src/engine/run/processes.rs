//! A step's processes (see `exec::track`): journaled as a step starts them, and, when a
//! step's program is still there after kongup stopped (a crash, a lost ssh connection),
//! watched until it ends: its output shown as its files grow, its end journaled, killed
//! when the operator asks. While one runs, its step is neither retried nor marked done,
//! so no second copy ever runs beside it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Engine, Who};
use crate::engine::EngineError;
use crate::engine::event::{Event, StepState};
use crate::engine::journal::{Entry, parse_step_key};
use crate::engine::rundir;
use crate::engine::step::{JournalRequest, LogSink, journal_through};
use crate::engine::view::StepProcess;
use crate::exec::OutputLine;
use crate::exec::process::DEFAULT_KILL_GRACE;
use crate::exec::track::{
    self, ProcessEnd, ProcessIdentity, Recorder, TrackedProcess, WatchUpdate,
};
use crate::plan::steps::StepRef;

/// Journals an attempt's processes through the engine.
pub(super) struct JournalRecorder {
    pub(super) step: String,
    pub(super) attempt: u32,
    pub(super) journal: mpsc::UnboundedSender<JournalRequest>,
}

#[async_trait::async_trait]
impl Recorder for JournalRecorder {
    async fn started(&self, process: &TrackedProcess) -> Result<(), String> {
        let entry = Entry::ProcessStarted {
            step: self.step.clone(),
            attempt: self.attempt,
            process: process.clone(),
        };
        journal_through(&self.journal, "the start of a process", entry, false)
            .await
            .map_err(|e| e.to_string())
    }

    async fn remote(&self, number: u32, remote: &ProcessIdentity) -> Result<(), String> {
        let entry = Entry::ProcessOnHost {
            step: self.step.clone(),
            attempt: self.attempt,
            number,
            remote: remote.clone(),
        };
        journal_through(&self.journal, "a process on its host", entry, false)
            .await
            .map_err(|e| e.to_string())
    }

    async fn ended(&self, number: u32, end: &ProcessEnd) -> Result<(), String> {
        let entry = Entry::ProcessEnded {
            step: self.step.clone(),
            attempt: self.attempt,
            number,
            end: end.clone(),
        };
        journal_through(&self.journal, "the end of a process", entry, false)
            .await
            .map_err(|e| e.to_string())
    }
}

/// What is known of a watched process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Known {
    /// Not looked at yet.
    Checking,
    Running,
    /// Whether it runs cannot be told (why).
    Unknown(String),
}

/// A step's process kongup watches without having started it in this session.
pub(super) struct Watched {
    watch: track::Watch,
    known: Known,
    sink: LogSink,
}

/// A watched process's update, for the engine's loop.
pub(super) struct Update {
    step: String,
    number: u32,
    update: WatchUpdate,
}

pub(super) type Updates = mpsc::UnboundedReceiver<Update>;

/// The engine's watched processes, by step and number.
#[derive(Default)]
pub(super) struct Watches(BTreeMap<(String, u32), Watched>);

impl Watches {
    fn of<'a>(&'a self, step: &'a str) -> impl Iterator<Item = (&'a u32, &'a Watched)> + 'a {
        self.0
            .iter()
            .filter(move |((key, _), _)| key == step)
            .map(|((_, number), watched)| (number, watched))
    }
}

pub(super) fn updates() -> (mpsc::UnboundedSender<Update>, Updates) {
    mpsc::unbounded_channel()
}

/// The next update of a watched process.
pub(super) async fn next_update(updates: &mut Updates) -> Option<Update> {
    updates.recv().await
}

impl Engine {
    /// Journals the end of every process of `key`'s last attempt that ended unseen (this
    /// machine can tell how), and starts watching the others, whose end is not journaled.
    pub(super) fn watch_unended(&mut self, key: &str) -> Result<(), EngineError> {
        let Some(step) = parse_step_key(key) else {
            return Ok(());
        };
        let (attempt, unended): (u32, Vec<StepProcess>) = self
            .view
            .record(key)
            .map(|record| (record.attempts, record.unended().cloned().collect()))
            .unwrap_or_default();
        for process in unended {
            let number = process.process.number;
            if self.watches.0.contains_key(&(key.to_string(), number)) {
                continue;
            }
            if let Some(end) = track::ended_here(&process.process, &self.run_dir) {
                self.record(
                    Who::Kongup,
                    Entry::ProcessEnded {
                        step: key.to_string(),
                        attempt,
                        number,
                        end,
                    },
                )?;
                let _ = std::fs::remove_dir_all(self.run_dir.join(&process.process.dir));
                continue;
            }
            let sink = self.orphan_sink(key, &step);
            sink.note(&format!(
                "`{}` ({}) was running when kongup stopped: following its output from its \
                 start, and recording its end",
                process.process.command,
                process.place()
            ));
            let executor = self
                .executors
                .values()
                .find(|e| e.describe() == process.process.on)
                .cloned();
            let (lines, mut lines_rx) = mpsc::channel::<OutputLine>(256);
            let forward_to = sink.clone();
            tokio::spawn(async move {
                while let Some(line) = lines_rx.recv().await {
                    forward_to.line(line.stream, &line.text);
                }
            });
            let updates = self.watch_tx.clone();
            let step_key = key.to_string();
            let watch = track::watch(
                process.process.clone(),
                &self.run_dir,
                executor,
                DEFAULT_KILL_GRACE,
                lines,
                Box::new(move |update| {
                    let _ = updates.send(Update {
                        step: step_key.clone(),
                        number,
                        update,
                    });
                }),
            );
            self.watches.0.insert(
                (key.to_string(), number),
                Watched {
                    watch,
                    known: Known::Checking,
                    sink,
                },
            );
        }
        self.shown.forget_step(key);
        Ok(())
    }

    /// The sink a watched process's output goes to: the step's log and the event stream.
    fn orphan_sink(&self, key: &str, step: &StepRef) -> LogSink {
        let path = rundir::step_log_path(&self.run_dir, step);
        let file = match rundir::open_private_append(&path) {
            Ok(file) => Some((file, path)),
            Err(e) => {
                self.warn(format!(
                    "could not open the log {}: {e}; the output is only shown",
                    path.display()
                ));
                None
            }
        };
        LogSink::new(
            key.to_string(),
            file,
            self.toolbox.redactor.clone(),
            self.events.clone(),
        )
    }

    /// What a watch found: journaled (an end, who the command is on its host), shown.
    pub(super) fn on_watch_update(&mut self, update: Update) -> Result<(), EngineError> {
        let Update {
            step,
            number,
            update,
        } = update;
        let Some(attempt) = self.view.record(&step).map(|r| r.attempts) else {
            return Ok(());
        };
        match update {
            WatchUpdate::Running { remote } => {
                let known_remote = self
                    .view
                    .record(&step)
                    .and_then(|r| r.processes.iter().find(|p| p.process.number == number))
                    .and_then(|p| p.on_host.clone());
                if let Some(remote) = remote.filter(|r| known_remote.as_ref() != Some(r)) {
                    self.record(
                        Who::Kongup,
                        Entry::ProcessOnHost {
                            step: step.clone(),
                            attempt,
                            number,
                            remote,
                        },
                    )?;
                }
                if let Some(watched) = self.watches.0.get_mut(&(step.clone(), number)) {
                    watched.known = Known::Running;
                }
            }
            WatchUpdate::Unknown(why) => {
                if let Some(watched) = self.watches.0.get_mut(&(step.clone(), number)) {
                    watched.known = Known::Unknown(why);
                }
            }
            WatchUpdate::KillFailed(why) => self.warn(format!("{step}: {why}")),
            WatchUpdate::Ended(end) => {
                let watched = self.watches.0.remove(&(step.clone(), number));
                let dir = self
                    .view
                    .record(&step)
                    .and_then(|r| r.processes.iter().find(|p| p.process.number == number))
                    .map(|p| self.run_dir.join(&p.process.dir));
                self.record(
                    Who::Kongup,
                    Entry::ProcessEnded {
                        step: step.clone(),
                        attempt,
                        number,
                        end: end.clone(),
                    },
                )?;
                if let Some(watched) = watched {
                    watched.sink.note(&format!("it ended: {}", end.how));
                }
                // Its output is in the step's log now (redacted), its end in the journal.
                if let Some(dir) = dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
        self.shown.forget_step(&step);
        Ok(())
    }

    /// Says what of `key` is still (or may still be) running, for its detail and for
    /// refusals; `None` when nothing is.
    pub(super) fn still_running(&self, key: &str) -> Option<String> {
        let record = self.view.record(key)?;
        let process = record.unended().next()?;
        let known = self
            .watches
            .0
            .get(&(key.to_string(), process.process.number))
            .map(|w| &w.known);
        let command = &process.process.command;
        Some(match known {
            Some(Known::Running) => format!(
                "`{command}` is still running since {} UTC, pid {} on {}",
                process.started_at.format("%H:%M"),
                process.pid(),
                process.process.on
            ),
            Some(Known::Unknown(why)) => format!(
                "`{command}` ({}) may still be running: {why}",
                process.place()
            ),
            Some(Known::Checking) | None => format!(
                "`{command}` ({}) was running when kongup stopped; checking whether it \
                 still runs",
                process.place()
            ),
        })
    }

    /// Refuses to start `step` again, to mark it done or to skip it, while its program may
    /// run.
    pub(super) fn check_nothing_left_running(
        &self,
        step: &StepRef,
        verb: &str,
    ) -> Result<(), String> {
        match self.still_running(&step.to_string()) {
            Some(what) => Err(format!(
                "cannot {verb} {step}: {what}. Wait for it to end (kongup records how it \
                 ended), or kill it"
            )),
            None => Ok(()),
        }
    }

    /// The operator's kill: SIGTERM to the group of each of the step's watched processes
    /// (on its host, over ssh), SIGKILL after the grace; journaled first.
    pub(super) fn kill_left_running(&mut self, step: StepRef) -> Result<(), EngineError> {
        let key = step.to_string();
        if let Some(reason) = &self.quitting {
            self.refuse(
                Some(&step),
                format!("kongup is stopping ({reason}): nothing is killed now"),
            );
            return Ok(());
        }
        let numbers: Vec<u32> = self.watches.of(&key).map(|(n, _)| *n).collect();
        if numbers.is_empty() {
            self.refuse(
                Some(&step),
                format!("nothing of {step} is still running: nothing to kill"),
            );
            return Ok(());
        }
        let attempt = self.view.record(&key).map_or(0, |r| r.attempts);
        for number in numbers {
            self.record(
                Who::Operator,
                Entry::ProcessKillRequested {
                    step: key.clone(),
                    attempt,
                    number,
                },
            )?;
            if let Some(watched) = self.watches.0.get(&(key.clone(), number)) {
                watched.sink.note(&format!(
                    "kill requested by {}: SIGTERM to its process group, SIGKILL after {}",
                    self.operator,
                    humantime::format_duration(DEFAULT_KILL_GRACE)
                ));
                watched.watch.kill();
            }
        }
        Ok(())
    }

    /// Sends the events derived from the run's view (`engine::shown`), with what only
    /// this engine knows: what still runs of a step, said before the steps (so a client
    /// reads a step's choices as wait or kill) and in their details, and what stopped
    /// running, said after them.
    pub(super) fn emit_derived(&mut self, events: Vec<Event>) {
        self.emit_still_running(false);
        for mut event in events {
            if let Event::StepChanged {
                step,
                state,
                detail,
            } = &mut event
                && !matches!(
                    state,
                    StepState::Pending | StepState::Ready | StepState::Running
                )
                && let Some(what) = self.still_running(&step.to_string())
            {
                *detail = Some(format!(
                    "{what}: wait for it to end (its output shows in the logs), or kill it"
                ));
            }
            self.emit(event);
        }
        self.emit_still_running(true);
    }

    /// Tells the console what still runs of each step, when that changed: `ended` false
    /// says what runs (before the steps are said, so a client reads a step's choices as
    /// wait or kill), `ended` true says what stopped (after them, so the step's last word
    /// before it is free again is not taken for an answer still to give).
    pub(super) fn emit_still_running(&mut self, ended: bool) {
        let keys: Vec<String> = self
            .view
            .records
            .iter()
            .filter(|(_, r)| r.unended().next().is_some())
            .map(|(k, _)| k.clone())
            .chain(self.shown_still_running.keys().cloned())
            .collect();
        for key in keys {
            let what = self.still_running(&key);
            if what.is_some() == ended || self.shown_still_running.get(&key) == Some(&what) {
                continue;
            }
            let Some(step) = parse_step_key(&key) else {
                continue;
            };
            self.shown_still_running.insert(key, what.clone());
            self.emit(Event::StillRunning { step, what });
        }
    }
}

/// Where the tracked processes of an attempt go: the engine's journal.
pub(super) fn recorder(
    step: &str,
    attempt: u32,
    journal: mpsc::UnboundedSender<JournalRequest>,
) -> Arc<dyn Recorder> {
    Arc::new(JournalRecorder {
        step: step.to_string(),
        attempt,
        journal,
    })
}

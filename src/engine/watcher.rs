//! `kongup watch`'s half of the engine: a run another kongup drives (or drove), followed
//! through its journal. It derives the console's events from the records as the engine
//! does ([`Shown`]), tells who drives the run, and never writes to the run directory nor
//! takes its lock.
//!
//! The journal is looked at when inotify says the run directory changed (nix's binding,
//! already a dependency: only a wake-up is needed, the size check does the reading), and
//! every [`POLL_INTERVAL`] whatever it says: the fallback where inotify cannot watch (a
//! network file system, no instances left) and the clock that notices a driver that died.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::event::{Event, LogLine, LogStream, SessionEvent};
use super::follow::{Follower, Update};
use super::journal::{Entry, JOURNAL_FILE, JournalError, Record};
use super::lock::{LockHolder, LockStatus, driver_status};
use super::shown::Shown;
use super::view::RunView;
use crate::plan::load::{LoadedPlan, PlanErrors, parse_plan};

/// The longest a change to the journal waits to be seen without inotify.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "no run in {}: it has no {JOURNAL_FILE} (or it cannot be read: {source}); pass the \
         run directory with --journal DIR, or the plan the run was started with",
        .run_dir.display()
    )]
    NoJournal {
        run_dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the journal in {} is empty: its run has not started yet; watch it again once \
         `kongup run` has opened it",
        .0.display()
    )]
    Empty(PathBuf),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "{0}\nThe plan journaled by the run does not load with this kongup; watch with the \
         kongup that drives the run"
    )]
    Plan(PlanErrors),
}

/// A run followed through its journal.
pub struct Watcher {
    run_dir: PathBuf,
    follower: Follower,
    view: RunView,
    loaded: LoadedPlan,
    shown: Shown,
    driver: Option<LockStatus>,
    warnings: Vec<String>,
    started_at: DateTime<Utc>,
}

impl Watcher {
    /// Reads the run in `run_dir` and its plan (the text its first record keeps, so the
    /// plan file is not needed).
    pub fn open(run_dir: &Path) -> Result<Watcher, WatchError> {
        let path = run_dir.join(JOURNAL_FILE);
        let (follower, contents) = match Follower::open(&path) {
            Err(JournalError::Io { source, .. }) => {
                return Err(WatchError::NoJournal {
                    run_dir: run_dir.to_path_buf(),
                    source,
                });
            }
            other => other?,
        };
        let view = RunView::replay(&contents.records)
            .ok_or_else(|| WatchError::Empty(run_dir.to_path_buf()))?;
        let loaded = load_journaled_plan(&view)?;
        Ok(Watcher {
            run_dir: run_dir.to_path_buf(),
            follower,
            view,
            loaded,
            shown: Shown::default(),
            driver: None,
            warnings: contents.warnings(),
            started_at: contents.records[0].at,
        })
    }

    /// The plan in force, as journaled.
    pub fn plan(&self) -> &LoadedPlan {
        &self.loaded
    }

    /// When the run began (its first record).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn view(&self) -> &RunView {
        &self.view
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Who drives the run now, as last looked at.
    pub fn driver(&mut self) -> Option<LockHolder> {
        match self
            .driver
            .get_or_insert_with(|| driver_status(&self.run_dir))
        {
            LockStatus::Held(holder) => holder.clone(),
            LockStatus::Free => None,
        }
    }

    /// Where the run stands: what a console starts from (the engine's snapshot of the same
    /// journal), who drives it, and what reading the journal warned about.
    pub fn snapshot(&mut self) -> Vec<Event> {
        self.shown.clear();
        let mut events = self.shown.update(&self.view, &self.loaded.expanded);
        self.driver = Some(driver_status(&self.run_dir));
        events.push(Event::Session(SessionEvent::Driver(self.driver())));
        events.extend(
            std::mem::take(&mut self.warnings)
                .into_iter()
                .map(Event::Warning),
        );
        events
    }

    /// What changed since the last look: the records appended (for `--plain`) and the
    /// events they make, and who drives the run when that changed. A journal that can no
    /// longer be trusted is an error, as it is to the engine.
    pub fn poll(&mut self) -> Result<(Vec<Record>, Vec<Event>), JournalError> {
        let mut events = Vec::new();
        let records = match self.follower.poll()? {
            None => Vec::new(),
            Some(Update::Appended(records)) => {
                for record in &records {
                    self.view.apply(record);
                    events.extend(record_event(record));
                }
                records
            }
            Some(Update::Replaced { contents, why }) => {
                events.push(Event::Warning(why));
                match RunView::replay(&contents.records) {
                    Some(view) => {
                        self.view = view;
                        // Another plan, maybe: the steps are the journal's.
                        if let Ok(loaded) = load_journaled_plan(&self.view) {
                            self.loaded = loaded;
                        }
                    }
                    None => events.push(Event::Warning(
                        "the journal is empty now: nothing to show until a run starts in it".into(),
                    )),
                }
                self.shown.clear();
                events.extend(contents.warnings().into_iter().map(Event::Warning));
                contents.records
            }
        };
        events.extend(self.shown.update(&self.view, &self.loaded.expanded));
        let driver = driver_status(&self.run_dir);
        if self.driver.as_ref() != Some(&driver) {
            self.driver = Some(driver);
            events.push(Event::Session(SessionEvent::Driver(self.driver())));
        }
        Ok((records, events))
    }
}

fn load_journaled_plan(view: &RunView) -> Result<LoadedPlan, WatchError> {
    parse_plan(&view.plan_text, &format!("the plan of run {}", view.run_id))
        .map_err(WatchError::Plan)
}

/// What a record tells a watcher besides the states the view derives: warnings as
/// warnings, and as a line in the logs what a driver's console hears from its own actions
/// (a confirm, a gate's verdict, a pause's reason, a fact, who drives).
fn record_event(record: &Record) -> Option<Event> {
    let step = match &record.entry {
        Entry::Warning { text } => return Some(Event::Warning(text.clone())),
        // Said by the view's events (step and run states, traffic, rollback).
        Entry::RunCreated { .. }
        | Entry::StepStarted { .. }
        | Entry::StepFinished { .. }
        | Entry::StepSkipped { .. }
        | Entry::StepInterrupted { .. }
        | Entry::StepMarkedDone { .. }
        | Entry::Resumed
        | Entry::TrafficApplied { .. }
        | Entry::RollbackTrafficSafe { .. }
        | Entry::RollbackPlanned { .. }
        | Entry::RollbackFinished => return None,
        Entry::StepConfirmed { step, .. }
        | Entry::AbortRequested { step }
        | Entry::Fact { step, .. }
        | Entry::NodeOutcome { step, .. }
        | Entry::NodeTakenOut { step, .. }
        | Entry::Gate { step, .. } => Some(step.clone()),
        _ => None,
    };
    Some(Event::Log(LogLine {
        at: record.at,
        step,
        stream: LogStream::Engine,
        text: format!("{}: {}", record.by, super::report::describe(&record.entry)),
    }))
}

/// Wakes the follower when the run directory changes, and every [`POLL_INTERVAL`].
pub struct Wake {
    /// A wake-up each time inotify reports changes (read on a thread of its own, which
    /// ends at the first report after this is dropped).
    notified: Option<tokio::sync::mpsc::Receiver<()>>,
    tick: tokio::time::Interval,
}

impl Wake {
    /// Watches `run_dir` where inotify can (it needs only read access to the directory);
    /// else the clock alone. Call it inside a tokio runtime.
    pub fn new(run_dir: &Path) -> Wake {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Wake {
            notified: watch_dir(run_dir),
            tick,
        }
    }

    /// Whether inotify watches the directory (else only the clock wakes the follower).
    pub fn notified(&self) -> bool {
        self.notified.is_some()
    }

    /// Returns when the directory changed, or at the next tick.
    pub async fn next(&mut self) {
        let Some(notified) = &mut self.notified else {
            self.tick.tick().await;
            return;
        };
        tokio::select! {
            report = notified.recv() => if report.is_none() {
                self.notified = None;
            },
            _ = self.tick.tick() => {}
        }
    }
}

fn watch_dir(run_dir: &Path) -> Option<tokio::sync::mpsc::Receiver<()>> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).ok()?;
    inotify
        .add_watch(
            run_dir,
            AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_CLOSE_WRITE,
        )
        .ok()?;
    // One wake-up pending is enough: the follower reads whatever changed.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::Builder::new()
        .name("kongup-inotify".into())
        .spawn(move || {
            while inotify.read_events().is_ok() {
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                    return;
                }
            }
        })
        .ok()?;
    Some(rx)
}

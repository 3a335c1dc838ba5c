//! The engine task: opens the run (`open.rs`), then takes commands (`commands.rs`), runs
//! one step at a time (`step.rs`), makes its own traffic calls (`traffic.rs`) and journals
//! every change before acting on it. This file is the loop: the engine's state, what it
//! waits on, and the helpers every part uses to journal and to tell the world.

mod commands;
mod handover;
mod open;
mod outage;
mod processes;
mod step;
mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

use self::handover::Handovers;
use self::open::{Opened, OpeningRead, open_run, opening_read_end};
use self::processes::{Updates, Watches, next_update};
use self::traffic::{TrafficCall, traffic_call_end};
use super::command::Command;
use super::event::{Event, EventSender};
use super::journal::{Entry, Journal, Record, step_key};
use super::shown::Shown;
use super::step::{JournalRequest, LogSink, StepOutcome, Toolbox, TrafficPath, gate_record};
use super::view::RunView;
use super::{EngineError, EngineHandle, RunSetup, SessionEnd, blocking};
use crate::exec::Executor;
use crate::kong::topology::TopologySnapshot;
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::{FailAction, Plan};
use crate::plan::steps::{ExpandedPlan, StepRef};

/// Who a journal record is by: the operator of this session, or kongup itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    Operator,
    Kongup,
}

struct Running {
    step: StepRef,
    key: String,
    attempt: u32,
    started: Instant,
    cancel: CancellationToken,
    /// Only a bake (a traffic stage or a monitor step without commands): a rollback
    /// stops it. Anything else runs on: a rollback never cuts a command short.
    bake_only: bool,
    sink: LogSink,
    task: tokio::task::JoinHandle<StepOutcome>,
}

struct Engine {
    plan: Arc<Plan>,
    expanded: Arc<ExpandedPlan>,
    run_dir: PathBuf,
    operator: String,
    toolbox: Toolbox,
    executors: Arc<BTreeMap<String, Arc<dyn Executor>>>,
    journal: Journal,
    view: RunView,
    events: EventSender,
    journal_tx: mpsc::UnboundedSender<JournalRequest>,
    journal_rx: mpsc::UnboundedReceiver<JournalRequest>,
    running: Option<Running>,
    /// Set once asked to leave; the engine stops when no step runs.
    quitting: Option<String>,
    commands_closed: bool,
    /// What the event stream last said of the run.
    shown: Shown,
    gate_watch: Option<watch::Receiver<Option<GateVerdict>>>,
    side_events: Option<mpsc::UnboundedReceiver<Event>>,
    /// Warnings from opening the run, shown after the first snapshot.
    opening_warnings: Vec<String>,
    /// The only way to the traffic driver, shared with the running steps.
    traffic: TrafficPath,
    traffic_call: Option<TrafficCall>,
    /// A rollback waiting for a split set by hand (being stopped) to end; when the
    /// operator asked for it.
    deferred_rollback: Option<Instant>,
    /// The last verdict journaled between bakes: a change of verdict is journaled, not
    /// every scrape's.
    gate_journaled: Option<Verdict>,
    /// The read of the load balancer's split as the run opened, while it runs.
    opening_read: Option<OpeningRead>,
    /// Requests to take the run over.
    handovers: Handovers,
    /// Steps' processes found running after kongup stopped, watched until they end.
    watches: Watches,
    watch_tx: mpsc::UnboundedSender<processes::Update>,
    watch_rx: Updates,
    /// What the event stream last said still runs of each step.
    shown_still_running: HashMap<String, Option<String>>,
    /// The watcher's latest topology and the latest gate verdict: what Y's health check
    /// before a traffic stage reads (`engine::health`).
    topology: Option<TopologySnapshot>,
    last_verdict: Option<GateVerdict>,
    /// When the last step ended: a topology snapshot older than that is not Y now.
    last_step_end: Option<chrono::DateTime<chrono::Utc>>,
    /// What the outage clock keeps between checks.
    outage: outage::OutageWatch,
}

pub(super) fn spawn(setup: RunSetup) -> Result<EngineHandle, EngineError> {
    let RunSetup {
        plan,
        expanded,
        plan_text,
        run_dir,
        operator,
        toolbox,
        options,
        side_events,
        lock,
    } = setup;
    let Opened {
        journal,
        view,
        plan_change,
        warnings: opening_warnings,
        stale,
    } = open_run(
        &plan, &expanded, &plan_text, &run_dir, &operator, &toolbox, options, lock,
    )?;

    let (events_tx, events_rx) = super::event::channel();
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (journal_tx, journal_rx) = mpsc::unbounded_channel();
    let run_id = view.run_id.clone();
    let traffic = TrafficPath::new(toolbox.traffic.clone());
    let (watch_tx, watch_rx) = processes::updates();
    if view.rollback_active() {
        traffic.rollback_requested();
    }
    let mut engine = Engine {
        traffic,
        traffic_call: None,
        executors: Arc::new(toolbox.executors.clone()),
        gate_watch: toolbox.gates.clone(),
        plan,
        expanded,
        run_dir: run_dir.clone(),
        operator: operator.0,
        toolbox,
        journal,
        view,
        events: events_tx,
        journal_tx,
        journal_rx,
        running: None,
        quitting: None,
        commands_closed: false,
        shown: Shown::default(),
        side_events,
        opening_warnings,
        deferred_rollback: None,
        gate_journaled: None,
        opening_read: None,
        handovers: Handovers::new(),
        watches: Watches::default(),
        watch_tx,
        watch_rx,
        shown_still_running: HashMap::new(),
        topology: None,
        last_verdict: None,
        last_step_end: None,
        outage: outage::OutageWatch::default(),
    };
    // Listening starts before anything runs, so no signal finds the default action.
    let signals = Signals::listen(options.handle_signals).map_err(EngineError::Signals)?;
    engine.open_session(plan_change, stale)?;
    // A run resumed inside a wave judges that wave from its first verdict.
    engine.update_gate_scope();
    engine.opening_read = OpeningRead::start(
        engine.toolbox.traffic.clone(),
        (engine.view.traffic_requested, engine.view.traffic_applied),
    );
    let task = tokio::spawn(engine.run(stamp_commands(commands_rx), signals));
    Ok(EngineHandle {
        commands: commands_tx,
        events: events_rx,
        task,
        run_dir,
        run_id,
    })
}

/// Whether `entry` may change which wave the gates judge: a step's state, a node taken
/// out, a rollback. (Not each node's outcome: a stop step's stopped nodes count once it
/// ends.)
fn moves_gate_scope(entry: &Entry) -> bool {
    matches!(
        entry,
        Entry::StepStarted { .. }
            | Entry::StepFinished { .. }
            | Entry::StepInterrupted { .. }
            | Entry::StepSkipped { .. }
            | Entry::StepMarkedDone { .. }
            | Entry::NodeTakenOut { .. }
            | Entry::RollbackRequested { .. }
            | Entry::RollbackPlanned { .. }
            | Entry::RollbackFinished
    )
}

/// A command and when it was sent.
struct Stamped {
    command: Command,
    sent: Instant,
}

/// Stamps each command with the moment it arrives, on a task of its own that does
/// nothing else, so time to safety counts from the operator's key, not from when the
/// engine got round to the command.
fn stamp_commands(mut commands: mpsc::Receiver<Command>) -> mpsc::UnboundedReceiver<Stamped> {
    let (stamped_tx, stamped_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            let stamped = Stamped {
                command,
                sent: Instant::now(),
            };
            if stamped_tx.send(stamped).is_err() {
                return;
            }
        }
    });
    stamped_rx
}

/// The next verdict from the gate source; `None` once the source is gone.
async fn next_verdict(
    gates: &mut Option<watch::Receiver<Option<GateVerdict>>>,
) -> Option<Option<GateVerdict>> {
    match gates {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

async fn next_side_event(events: &mut Option<mpsc::UnboundedReceiver<Event>>) -> Option<Event> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn step_end(running: &mut Option<Running>) -> Result<StepOutcome, JoinError> {
    match running {
        Some(running) => (&mut running.task).await,
        None => std::future::pending().await,
    }
}

/// SIGHUP, SIGTERM and SIGINT, when the engine handles them.
struct Signals(Option<[Signal; 3]>);

impl Signals {
    fn listen(enabled: bool) -> std::io::Result<Signals> {
        if !enabled {
            return Ok(Signals(None));
        }
        Ok(Signals(Some([
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ])))
    }

    async fn next(&mut self) -> &'static str {
        match &mut self.0 {
            Some([hup, term, int]) => tokio::select! {
                _ = hup.recv() => "SIGHUP",
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            None => std::future::pending().await,
        }
    }
}

impl Engine {
    fn by(&self, who: Who) -> String {
        match who {
            Who::Operator => self.operator.clone(),
            Who::Kongup => "kongup".to_string(),
        }
    }

    /// Journals (fsync'd) and applies to the view; only then may the caller act. The
    /// write and fsync block, so the worker hands its other tasks over first.
    fn record(&mut self, who: Who, entry: Entry) -> Result<Record, EngineError> {
        self.record_as(&self.by(who), entry)
    }

    /// [`Engine::record`] by someone else (`user@host`): the kongup that asks to take the
    /// run over.
    fn record_as(&mut self, by: &str, entry: Entry) -> Result<Record, EngineError> {
        let journal = &mut self.journal;
        let record = blocking(|| journal.append(by, entry))?;
        self.view.apply(&record);
        if moves_gate_scope(&record.entry) {
            self.update_gate_scope();
        }
        Ok(record)
    }

    /// Tells the monitor which wave's nodes the gates judge now (`wave::gate_scope`).
    /// Set before a wave's stage starts baking: its bake trusts only verdicts evaluated
    /// after it began, so with this scope.
    fn update_gate_scope(&self) {
        if let Some(scope_tx) = &self.toolbox.gate_scope {
            let scope = super::wave::gate_scope(&self.plan, &self.expanded, &self.view);
            scope_tx.send_if_modified(|current| {
                let changed = *current != scope;
                if changed {
                    *current = scope;
                }
                changed
            });
        }
    }

    fn emit(&self, event: Event) {
        self.events.send(event);
    }

    fn warn(&self, text: impl AsRef<str>) {
        let text = self.toolbox.redactor.redact(text.as_ref()).into_owned();
        self.emit(Event::Warning(text));
    }

    /// Refuses a command: says why, and re-sends the step's state so a client that
    /// thought its command would go through sees where things stand.
    fn refuse(&mut self, step: Option<&StepRef>, why: impl AsRef<str>) {
        let why = self.toolbox.redactor.redact(why.as_ref()).into_owned();
        self.emit(Event::Refused(why));
        if let Some(step) = step {
            self.shown.forget_step(&step_key(step));
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Stamped>,
        mut signals: Signals,
    ) -> Result<SessionEnd, EngineError> {
        self.emit_snapshot();
        let reason = loop {
            self.advance()?;
            self.check_outage()?;
            self.emit_changes();
            if self.running.is_none()
                && self.traffic_call.is_none()
                && let Some(reason) = &self.quitting
            {
                break reason.clone();
            }
            tokio::select! {
                command = commands.recv(), if !self.commands_closed => match command {
                    Some(Stamped { command, sent }) => self.handle(command, sent)?,
                    None => {
                        self.commands_closed = true;
                        self.quit("the console closed".to_string());
                    }
                },
                ended = step_end(&mut self.running) => self.finish_step(ended)?,
                ended = traffic_call_end(&mut self.traffic_call) => self.finish_traffic_call(ended)?,
                split = opening_read_end(&mut self.opening_read) => {
                    let read = self.opening_read.take().expect("the read that ended");
                    let untouched = self.running.is_none()
                        && self.traffic_call.is_none()
                        && (self.view.traffic_requested, self.view.traffic_applied) == read.known;
                    if let Some(split) = split.filter(|_| untouched) {
                        self.emit(Event::TrafficRead(split));
                    }
                }
                Some(request) = self.journal_rx.recv() => {
                    let who = if request.by_operator { Who::Operator } else { Who::Kongup };
                    let result = self.record(who, request.entry);
                    let answer = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
                    let _ = request.done.send(answer);
                    result?;
                }
                Some(update) = next_update(&mut self.watch_rx) => self.on_watch_update(update)?,
                name = signals.next() => self.on_signal(name),
                _ = self.handovers.tick() => self.check_handover()?,
                verdict = next_verdict(&mut self.gate_watch) => match verdict {
                    Some(Some(verdict)) => self.on_verdict(verdict)?,
                    Some(None) => {}
                    None => self.gate_watch = None,
                },
                event = next_side_event(&mut self.side_events) => match event {
                    Some(Event::Warning(text)) => self.warn(text),
                    Some(Event::Topology(snapshot)) => {
                        self.outage.snapshot_received();
                        self.topology = Some(snapshot.clone());
                        self.emit(Event::Topology(snapshot));
                    }
                    Some(event) => self.emit(event),
                    None => self.side_events = None,
                },
            }
        };
        self.record(
            Who::Kongup,
            Entry::SessionClosed {
                reason: reason.clone(),
            },
        )?;
        Ok(SessionEnd {
            state: self.view.run_state(),
            reason,
        })
    }

    /// Sends a `StepChanged` for every step whose state changed since last said, then a
    /// `RunChanged` if the run's did.
    fn emit_changes(&mut self) {
        let events = self.shown.changes(&self.view, &self.expanded);
        self.emit_derived(events);
    }

    /// A gate verdict between bakes (a bake journals and acts on its own): while Y carries
    /// traffic, each change of verdict is journaled with its numbers, and a failure pauses
    /// the run or starts the rollback, as the plan's `on_fail` says.
    fn on_verdict(&mut self, verdict: GateVerdict) -> Result<(), EngineError> {
        self.last_verdict = Some(verdict.clone());
        self.emit(Event::Gate(verdict.clone()));
        let y_share = self.view.traffic().map_or(0, |s| s.y);
        let watched = y_share > 0
            && !self.traffic.baking()
            && !self.view.rollback_active()
            && !self.view.run_state().is_over();
        if !watched {
            return Ok(());
        }
        let acts = verdict.verdict == Verdict::Fail;
        // A rollback that would change nothing is refused: the run pauses instead.
        let refusal = (acts && self.plan.gates.on_fail == FailAction::Rollback)
            .then(|| self.rollback_refusal())
            .flatten();
        let pausing = self.plan.gates.on_fail == FailAction::Pause || refusal.is_some();
        let already_paused = acts && pausing && self.view.paused.is_some();
        if self.gate_journaled != Some(verdict.verdict) || (acts && !already_paused) {
            let at = self
                .running
                .as_ref()
                .map(|r| r.key.clone())
                .or_else(|| self.view.next_step())
                .unwrap_or_else(|| "run".to_string());
            self.record(
                Who::Kongup,
                Entry::Gate {
                    step: at,
                    gate: gate_record(&verdict),
                },
            )?;
            self.gate_journaled = Some(verdict.verdict);
        }
        if !acts || already_paused {
            return Ok(());
        }
        let mut reason = format!(
            "the gates failed while Y carries {y_share}% of the traffic and no bake runs ({} \
             breaches in a row): {}",
            verdict.consecutive_breaches,
            verdict.checks.join("; ")
        );
        if let Some(secs) = crate::metrics::gates::window_clears_in(
            &verdict,
            self.plan.gates.window,
            chrono::Utc::now(),
        ) {
            reason.push_str(&format!(
                "; {}",
                crate::metrics::gates::window_clears_words(secs)
            ));
        }
        if let Some(why) = refusal {
            self.warn(format!(
                "{reason}; the plan says on_fail: rollback, but {why}: the run pauses instead"
            ));
            self.record(Who::Kongup, Entry::Paused { reason })?;
        } else if pausing {
            self.warn(format!("{reason}; the plan says on_fail: pause"));
            self.record(Who::Kongup, Entry::Paused { reason })?;
        } else {
            self.rollback(
                Instant::now(),
                &format!("{reason}; the plan says on_fail: rollback"),
                Who::Kongup,
            )?;
        }
        Ok(())
    }
}

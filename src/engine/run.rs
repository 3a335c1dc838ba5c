//! The engine task: opens the run, then takes commands, runs one step at a time and
//! journals every change before acting on it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

use super::command::Command;
use super::event::{Event, RollbackProgress, RunState, StepState, TrafficVerification};
use super::journal::{
    ConfirmVia, Entry, JOURNAL_FILE, Journal, Record, StepInfo, StepResult, parse_step_key,
    read_journal, step_key,
};
use super::lock::RunLock;
use super::rollback::{self, TRAFFIC_TO_X};
use super::rundir::{self, LOGS_DIR};
use super::step::{
    ActionError, AfterFailure, JournalRequest, LogSink, Mover, RollbackOf, StepAction, StepContext,
    StepOutcome, Toolbox, TrafficPath, TrafficReadback, driver_deadline, gate_record, run_commands,
    safety_evidence,
};
use super::view::RunView;
use super::{EngineError, EngineHandle, RunSetup, SessionEnd, blocking, plan_change};
use crate::exec::Executor;
use crate::exec::process::kill_on_drop;
use crate::lb::{ReadBackSource, Split, TrafficDriver};
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::{FailAction, Plan};
use crate::plan::steps::{ExpandedPlan, PhaseName, RollbackKind, Step, StepKind, StepRef};
use crate::secrets::SHORT_SECRET;

/// Who a journal record is by: the operator of this session, or kongup itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
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

/// A call to the traffic driver the engine itself makes, run as a task so that the
/// engine keeps taking commands (R, abort, quit) while the load balancer answers.
struct TrafficCall {
    purpose: TrafficPurpose,
    /// The operator's abort (and, for a split set by hand, a rollback) stops it.
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<TrafficCallEnd>,
}

#[derive(Debug, Clone, Copy)]
enum TrafficPurpose {
    /// The rollback's first act: all traffic to X. `clock` is when the operator asked
    /// (time to safety counts from it); `planned`: the rollback plan already exists.
    RollbackAct { clock: Instant, planned: bool },
    /// `traffic N` from the operator.
    ByHand { split: Split },
}

struct TrafficCallEnd {
    result: Result<TrafficReadback, ActionError>,
    /// When the driver answered (the time to safety ends here, not when the engine
    /// gets round to reading the answer).
    at: Instant,
}

struct Engine {
    plan: Arc<Plan>,
    expanded: Arc<ExpandedPlan>,
    run_dir: PathBuf,
    operator: String,
    toolbox: Toolbox,
    executors: Arc<BTreeMap<String, Arc<dyn Executor>>>,
    journal: Journal,
    _lock: RunLock,
    view: RunView,
    events: mpsc::UnboundedSender<Event>,
    journal_tx: mpsc::UnboundedSender<JournalRequest>,
    journal_rx: mpsc::UnboundedReceiver<JournalRequest>,
    running: Option<Running>,
    /// Set once asked to leave; the engine stops when no step runs.
    quitting: Option<String>,
    commands_closed: bool,
    /// What the event stream last said of each step and of the run.
    shown: HashMap<String, StepState>,
    shown_run: Option<RunState>,
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
}

/// The load balancer's split, read once as the run opens, for the header: where traffic
/// is is the first question of an operator who opens (or takes over) a run. Reported only
/// if nothing touched the traffic meanwhile, so it never contradicts a newer change;
/// aborted (and what it started killed) if the engine stops first.
struct OpeningRead {
    task: tokio::task::JoinHandle<Option<Split>>,
    /// The split the journal knew when the read began.
    known: (Option<Split>, Option<Split>),
}

impl OpeningRead {
    /// None for a driver that cannot be read (preflight and the traffic steps say why).
    fn start(
        driver: Arc<dyn TrafficDriver>,
        known: (Option<Split>, Option<Split>),
    ) -> Option<Self> {
        if matches!(
            driver.read_back_source(),
            ReadBackSource::Operator | ReadBackSource::Nothing
        ) {
            return None;
        }
        let task = tokio::spawn(async move {
            let deadline = driver_deadline(driver.as_ref());
            let read = tokio::time::timeout(deadline, kill_on_drop(driver.read_split())).await;
            read.ok()?.ok()?
        });
        Some(OpeningRead { task, known })
    }
}

impl Drop for OpeningRead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn opening_read_end(read: &mut Option<OpeningRead>) -> Option<Split> {
    match read {
        Some(read) => (&mut read.task).await.ok().flatten(),
        None => std::future::pending().await,
    }
}

fn step_infos(expanded: &ExpandedPlan) -> Vec<StepInfo> {
    expanded
        .steps()
        .map(|(phase, step)| StepInfo {
            step: step_key(&StepRef::new(phase.name, step.id.clone())),
            title: step.title.clone(),
            kind: step.kind.as_str().to_string(),
            changes: step.changes,
            irreversible: step.irreversible,
        })
        .collect()
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
    } = setup;
    let mut opening_warnings = Vec::new();
    match toolbox.redactor.short_secrets() {
        0 => {}
        short => opening_warnings.push(format!(
            "{short} of the plan's secrets {} shorter than {SHORT_SECRET} characters: kongup \
             still hides {} in log lines and messages, where {} may garble words that contain \
             {}; use longer secrets",
            if short == 1 { "is" } else { "are" },
            if short == 1 { "it" } else { "them" },
            if short == 1 { "it" } else { "they" },
            if short == 1 { "it" } else { "them" },
        )),
    }
    let run_dir_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| EngineError::RunDir { path, source }
    };
    if run_dir.exists() {
        if rundir::is_shared(&run_dir).map_err(run_dir_err(&run_dir))? {
            opening_warnings.push(format!(
                "the run directory {} can be read by other users; it holds logs and backups: \
                 chmod 700 it",
                run_dir.display()
            ));
        }
    } else {
        rundir::create_private_dir(&run_dir).map_err(run_dir_err(&run_dir))?;
    }
    let logs = run_dir.join(LOGS_DIR);
    rundir::create_private_dir(&logs).map_err(run_dir_err(&logs))?;
    let lock = RunLock::acquire(&run_dir, &operator.0)?;

    let plan_sha256 = super::sha256_hex(&plan_text);
    let journal_path = run_dir.join(JOURNAL_FILE);
    let existing = if journal_path.exists() {
        let contents = read_journal(&journal_path)?;
        opening_warnings.extend(contents.torn_tail.clone());
        (!contents.records.is_empty()).then_some(contents)
    } else {
        None
    };

    let (journal, view, plan_change) = match existing {
        Some(contents) => {
            let view = RunView::replay(&contents.records).expect("read_journal checked the header");
            let change = if view.plan_sha256 != plan_sha256 {
                let summary = plan_change::summarise(&view.plan_text, &plan_text);
                if !options.accept_plan_change {
                    return Err(EngineError::PlanChanged { run_dir, summary });
                }
                Some(Entry::PlanChangeAccepted {
                    previous_sha256: view.plan_sha256.clone(),
                    plan_sha256: plan_sha256.clone(),
                    plan_text: plan_text.clone(),
                    summary,
                    steps: step_infos(&expanded),
                })
            } else {
                None
            };
            let journal = Journal::open(
                &journal_path,
                contents.valid_len,
                view.last_seq + 1,
                toolbox.redactor.clone(),
            )?;
            (journal, view, change)
        }
        None => {
            let mut journal = Journal::open(&journal_path, 0, 0, toolbox.redactor.clone())?;
            let created = journal.append(
                &operator.0,
                Entry::RunCreated {
                    run_id: rundir::run_id_for(&plan.name),
                    plan_name: plan.name.clone(),
                    plan_sha256: plan_sha256.clone(),
                    plan_text: plan_text.clone(),
                    steps: step_infos(&expanded),
                    kongup_version: env!("CARGO_PKG_VERSION").to_string(),
                },
            )?;
            let view = RunView::replay(std::slice::from_ref(&created)).expect("a header");
            (journal, view, None)
        }
    };

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (journal_tx, journal_rx) = mpsc::unbounded_channel();
    let run_id = view.run_id.clone();
    let traffic = TrafficPath::new(toolbox.traffic.clone());
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
        _lock: lock,
        view,
        events: events_tx,
        journal_tx,
        journal_rx,
        running: None,
        quitting: None,
        commands_closed: false,
        shown: HashMap::new(),
        shown_run: None,
        side_events,
        opening_warnings,
        deferred_rollback: None,
        gate_journaled: None,
        opening_read: None,
    };
    // Listening starts before anything runs, so no signal finds the default action.
    let signals = Signals::listen(options.handle_signals).map_err(EngineError::Signals)?;
    engine.open_session(plan_change)?;
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

async fn traffic_call_end(call: &mut Option<TrafficCall>) -> Result<TrafficCallEnd, JoinError> {
    match call {
        Some(call) => (&mut call.task).await,
        None => std::future::pending().await,
    }
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

/// Runs a step: its action, then its plan commands; a step with neither is done by hand.
async fn execute_step(action: Option<Arc<dyn StepAction>>, mut ctx: StepContext) -> StepOutcome {
    let mut details = Vec::new();
    let mut gates_passed = false;
    if let Some(action) = &action {
        match action.execute(&mut ctx).await {
            Ok(StepOutcome::Succeeded {
                detail,
                gates_passed: passed,
            }) => {
                details.extend(detail);
                gates_passed = passed;
            }
            Ok(failed) => return failed,
            Err(error) => return StepOutcome::failed(error.to_string()),
        }
    }
    let commands = ctx.step.commands.clone();
    if !commands.is_empty() {
        match run_commands(&ctx, &commands).await {
            Ok(StepOutcome::Succeeded { detail, .. }) => details.extend(detail),
            Ok(failed) => return failed,
            Err(error) => return StepOutcome::failed(error.to_string()),
        }
    }
    if action.is_none() && commands.is_empty() {
        ctx.log
            .note("nothing to run: the operator's confirm records that this was done by hand");
        return StepOutcome::succeeded("done by hand: confirmed by the operator");
    }
    StepOutcome::Succeeded {
        detail: (!details.is_empty()).then(|| details.join("; ")),
        gates_passed,
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
        let by = self.by(who);
        let journal = &mut self.journal;
        let record = blocking(|| journal.append(&by, entry))?;
        self.view.apply(&record);
        Ok(record)
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn warn(&self, text: impl AsRef<str>) {
        let text = self.toolbox.redactor.redact(text.as_ref()).into_owned();
        self.emit(Event::Warning(text));
    }

    /// Refuses a command: says why, and re-sends the step's state so a client that
    /// thought its command would go through sees where things stand.
    fn refuse(&mut self, step: Option<&StepRef>, why: impl AsRef<str>) {
        self.warn(why);
        if let Some(step) = step {
            self.shown.remove(&step_key(step));
        }
    }

    fn open_session(&mut self, plan_change: Option<Entry>) -> Result<(), EngineError> {
        self.record(
            Who::Operator,
            Entry::SessionOpened {
                pid: std::process::id(),
            },
        )?;
        if let Some(change) = plan_change {
            self.opening_warnings.push(
                "the plan changed since the run started; the change is accepted and journaled"
                    .into(),
            );
            self.record(Who::Operator, change)?;
        }
        for warning in self.opening_warnings.clone() {
            self.record(Who::Kongup, Entry::Warning { text: warning })?;
        }
        let running: Vec<String> = self
            .view
            .records
            .iter()
            .filter(|(_, r)| r.state == StepState::Running)
            .map(|(k, _)| k.clone())
            .collect();
        for step in running {
            self.record(Who::Kongup, Entry::StepInterrupted { step: step.clone() })?;
            self.opening_warnings.push(format!(
                "{step} was running when kongup stopped: it is interrupted; retry it, mark it \
                 done with a note, or roll back"
            ));
        }
        if self
            .view
            .rollback
            .as_ref()
            .is_some_and(|r| !r.finished && r.planned.is_none())
        {
            self.opening_warnings.push(
                "a rollback was under way before its plan was made: roll back again to \
                 finish its first act and plan it"
                    .into(),
            );
        }
        Ok(())
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Stamped>,
        mut signals: Signals,
    ) -> Result<SessionEnd, EngineError> {
        self.emit_snapshot();
        let reason = loop {
            self.advance()?;
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
                name = signals.next() => self.on_signal(name),
                verdict = next_verdict(&mut self.gate_watch) => match verdict {
                    Some(Some(verdict)) => self.on_verdict(verdict)?,
                    Some(None) => {}
                    None => self.gate_watch = None,
                },
                event = next_side_event(&mut self.side_events) => match event {
                    Some(Event::Warning(text)) => self.warn(text),
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

    fn emit_snapshot(&mut self) {
        self.shown.clear();
        let run_state = self.view.run_state();
        self.shown_run = Some(run_state);
        self.emit(Event::RunChanged(run_state));
        if let Some(requested) = self.view.traffic_requested {
            self.emit(Event::TrafficChanged {
                requested,
                applied: self.view.traffic_applied,
            });
        }
        if let Some(rollback) = &self.view.rollback {
            self.emit(Event::RollbackProgress(RollbackProgress::Started));
            if let Some(ms) = rollback.time_to_safety_ms {
                let (verified, evidence) = rollback.traffic_verified.clone().unwrap_or_default();
                self.emit(Event::RollbackProgress(RollbackProgress::TrafficSafe {
                    time_to_safety_ms: ms,
                    verified,
                    evidence,
                }));
            }
            if rollback.planned.is_some() {
                self.emit_rollback_plan();
            }
            if rollback.finished {
                self.emit(Event::RollbackProgress(RollbackProgress::Finished));
            }
        }
        self.emit_changes();
        for warning in std::mem::take(&mut self.opening_warnings) {
            self.warn(warning);
        }
    }

    fn emit_rollback_plan(&self) {
        let steps = self
            .view
            .rollback_steps()
            .iter()
            .filter_map(|s| parse_step_key(&s.step))
            .collect();
        let note = self.view.rollback.as_ref().and_then(|r| r.note.clone());
        self.emit(Event::RollbackProgress(RollbackProgress::Planned {
            steps,
            note,
        }));
    }

    /// Sends a `StepChanged` for every step whose state changed since last said, then a
    /// `RunChanged` if the run's did.
    fn emit_changes(&mut self) {
        for key in self.view.step_keys() {
            let mut state = self.view.effective_state(&key);
            if state == StepState::Ready && self.plan_skips(&key) {
                // Its turn is only for the plan's skip, which `advance` records next.
                state = StepState::Pending;
            }
            if self.shown.get(&key) == Some(&state) {
                continue;
            }
            self.shown.insert(key.clone(), state);
            let Some(step) = parse_step_key(&key) else {
                continue;
            };
            let record = self.view.record(&key);
            let detail = match state {
                StepState::Pending | StepState::Ready => None,
                StepState::Running => record.map(|r| format!("attempt {}", r.attempts)),
                _ => record.and_then(|r| r.detail.clone()),
            };
            self.emit(Event::StepChanged {
                step,
                state,
                detail,
            });
        }
        let run_state = self.view.run_state();
        if self.shown_run != Some(run_state) {
            self.shown_run = Some(run_state);
            self.emit(Event::RunChanged(run_state));
        }
    }

    fn plan_skips(&self, key: &str) -> bool {
        parse_step_key(key)
            .filter(|s| s.phase != PhaseName::Rollback)
            .and_then(|s| self.expanded.step(&s))
            .is_some_and(|s| s.skip_reason.is_some())
    }

    /// What happens without a command: plan skips, and the end of a rollback plan.
    fn advance(&mut self) -> Result<(), EngineError> {
        // Plan skips run nothing, so they happen while quitting too.
        if self.running.is_some() {
            return Ok(());
        }
        loop {
            let next = self.view.next_step();
            let skip_reason = next
                .as_deref()
                .filter(|key| self.view.state_of(key) == StepState::Pending)
                .and_then(parse_step_key)
                .filter(|s| s.phase != PhaseName::Rollback)
                .and_then(|s| self.expanded.step(&s).and_then(|s| s.skip_reason.clone()));
            if let (Some(step), Some(reason)) = (next.clone(), skip_reason) {
                self.record(
                    Who::Kongup,
                    Entry::StepSkipped {
                        step,
                        reason,
                        by_plan: true,
                    },
                )?;
                continue;
            }
            let rollback_planned = self
                .view
                .rollback
                .as_ref()
                .is_some_and(|r| !r.finished && r.planned.is_some());
            if rollback_planned && next.is_none() {
                // The last rollback step's end is told before the rollback's.
                self.emit_changes();
                self.record(Who::Kongup, Entry::RollbackFinished)?;
                self.emit(Event::RollbackProgress(RollbackProgress::Finished));
                continue;
            }
            return Ok(());
        }
    }

    /// Acts on a command; `sent` is when the operator sent it.
    fn handle(&mut self, command: Command, sent: Instant) -> Result<(), EngineError> {
        match command {
            Command::Confirm { step, typed } => self.confirm(step, typed),
            Command::Skip { step, reason } => self.skip(step, reason),
            Command::Retry { step, typed } => self.retry(step, typed),
            Command::MarkDone { step, note } => self.mark_done(step, note),
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Rollback => self.rollback(sent, "requested by the operator", Who::Operator),
            Command::SetTraffic { y_percent } => self.set_traffic_by_hand(y_percent),
            Command::Abort => self.abort(),
            Command::Quit => {
                self.quit("the operator quit".to_string());
                Ok(())
            }
        }
    }

    /// Whether `step` may be acted on now, in one of `states`; else why not.
    fn check_turn(
        &self,
        step: &StepRef,
        states: &[StepState],
        verb: &str,
    ) -> Result<String, String> {
        if let Some(reason) = &self.quitting {
            return Err(format!("kongup is stopping ({reason}): nothing new starts"));
        }
        if let Some(running) = &self.running {
            return Err(format!(
                "cannot {verb} {step}: {} is running; wait for it to end, or abort it",
                running.step
            ));
        }
        let key = step_key(step);
        match self.view.next_step() {
            Some(next) if next == key => {}
            Some(next) => return Err(format!("cannot {verb} {step}: it is {next}'s turn")),
            None if self.view.rollback_active() => {
                return Err(format!(
                    "cannot {verb} {step}: the rollback has no plan yet; roll back again"
                ));
            }
            None => return Err(format!("cannot {verb} {step}: the run is done")),
        }
        let state = self.view.state_of(&key);
        if !states.contains(&state) {
            let hint = match state {
                StepState::Failed | StepState::Interrupted => {
                    ": retry it, mark it done with a note, or roll back"
                }
                _ => "",
            };
            return Err(format!(
                "cannot {verb} {step}: it is {}{hint}",
                state.as_str()
            ));
        }
        Ok(key)
    }

    /// A pause holds the upgrade, not its rollback: a gate failure pauses the run, and the
    /// operator's `R` must not then need a resume before each rollback step.
    fn check_not_paused(&self, verb: &str, step: &StepRef) -> Result<(), String> {
        if step.phase == PhaseName::Rollback {
            return Ok(());
        }
        match &self.view.paused {
            Some(reason) => Err(format!(
                "cannot {verb} {step}: the run is paused ({reason}); resume it first"
            )),
            None => Ok(()),
        }
    }

    /// The step a reference stands for, with what it undoes when it is a rollback step.
    fn resolve(&self, step: &StepRef) -> Option<(Step, Option<RollbackOf>)> {
        if step.phase == PhaseName::Rollback {
            if let Some(found) = rollback::rollback_step(&self.expanded, step) {
                let of = RollbackOf {
                    undoes: found.undoes,
                    kind: found.kind,
                };
                return Some((found.step, Some(of)));
            }
            // The plan changed under a planned rollback: the journal still names the step.
            let info = self
                .view
                .rollback_steps()
                .iter()
                .find(|s| s.step == step_key(step))?;
            let manual = Step {
                id: step.id.clone(),
                guide_ref: String::new(),
                title: info.title.clone(),
                instruction: "The plan no longer describes this rollback step: do it by hand \
                              and confirm it."
                    .into(),
                kind: StepKind::Manual,
                changes: true,
                irreversible: info.irreversible,
                irreversible_because: info
                    .irreversible
                    .then(|| "the journal recorded it as irreversible".to_string()),
                rollback: None,
                commands: Vec::new(),
                builtin: true,
                skip_reason: None,
            };
            let undoes = info.undoes.as_deref().and_then(parse_step_key);
            let of = RollbackOf {
                undoes,
                kind: RollbackKind::Manual,
            };
            return Some((manual, Some(of)));
        }
        self.expanded.step(step).cloned().map(|s| (s, None))
    }

    /// An irreversible step (forward or rollback) runs only when the plan name was typed;
    /// the one check behind confirm and retry. `verb` says what was asked ("confirmed",
    /// "retried").
    fn check_typed(
        &self,
        step: &StepRef,
        details: &Step,
        typed: Option<&str>,
        verb: &str,
    ) -> Result<(), String> {
        if !details.irreversible || typed.map(str::trim) == Some(self.plan.name.as_str()) {
            return Ok(());
        }
        let because = details
            .irreversible_because
            .clone()
            .unwrap_or_else(|| "it cannot be undone".to_string());
        Err(match typed {
            Some(_) => {
                format!("{step} was not {verb}: the typed name does not match the plan name")
            }
            None => format!(
                "{step} is irreversible ({because}): it is {verb} only by typing the plan name '{}'",
                self.plan.name
            ),
        })
    }

    /// `rollback/traffic-to-x` runs only once X can serve again.
    fn check_x_serves_for(&self, step: &StepRef) -> Result<(), String> {
        if *step != StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X) {
            return Ok(());
        }
        let blockers = rollback::x_blockers(&self.expanded, &self.view);
        if blockers.is_empty() {
            return Ok(());
        }
        Err(format!(
            "cannot send traffic to X yet: X cannot serve: {}",
            rollback::describe_blockers(&blockers)
        ))
    }

    fn confirm(&mut self, step: StepRef, typed: Option<String>) -> Result<(), EngineError> {
        self.confirm_or_retry(step, typed, ConfirmVia::Confirm)
    }

    fn retry(&mut self, step: StepRef, typed: Option<String>) -> Result<(), EngineError> {
        self.confirm_or_retry(step, typed, ConfirmVia::Retry)
    }

    /// Starts a ready step (confirm) or a failed or interrupted one (retry), after the
    /// turn, the pause and the typed name are checked.
    fn confirm_or_retry(
        &mut self,
        step: StepRef,
        typed: Option<String>,
        via: ConfirmVia,
    ) -> Result<(), EngineError> {
        let (states, verb, done) = match via {
            ConfirmVia::Retry => (
                &[StepState::Failed, StepState::Interrupted][..],
                "retry",
                "retried",
            ),
            _ => (&[StepState::Pending][..], "confirm", "confirmed"),
        };
        let checked = self
            .check_turn(&step, states, verb)
            .and_then(|key| self.check_not_paused(verb, &step).map(|()| key))
            .and_then(|key| match self.resolve(&step) {
                Some((details, _)) => self
                    .check_typed(&step, &details, typed.as_deref(), done)
                    .map(|()| key),
                None => Err(format!("{step} is not a step of this plan")),
            })
            .and_then(|key| self.check_x_serves_for(&step).map(|()| key));
        let key = match checked {
            Ok(key) => key,
            Err(why) => {
                self.refuse(Some(&step), why);
                return Ok(());
            }
        };
        self.record(
            Who::Operator,
            Entry::StepConfirmed {
                step: key,
                via,
                typed: typed.is_some(),
            },
        )?;
        self.start_step(step, Who::Operator)
    }

    fn mark_done(&mut self, step: StepRef, note: String) -> Result<(), EngineError> {
        let note = note.trim().to_string();
        match self.check_turn(
            &step,
            &[StepState::Failed, StepState::Interrupted],
            "mark done",
        ) {
            Ok(_) if note.is_empty() => {
                self.refuse(
                    Some(&step),
                    format!("marking {step} done needs a note: what was done by hand"),
                );
                Ok(())
            }
            Ok(key) => {
                self.record(Who::Operator, Entry::StepMarkedDone { step: key, note })?;
                Ok(())
            }
            Err(why) => {
                self.refuse(Some(&step), why);
                Ok(())
            }
        }
    }

    fn skip(&mut self, step: StepRef, reason: String) -> Result<(), EngineError> {
        let reason = reason.trim().to_string();
        match self.check_turn(&step, &[StepState::Pending], "skip") {
            Ok(_) if reason.is_empty() => {
                self.refuse(Some(&step), format!("skipping {step} needs a reason"));
                Ok(())
            }
            Ok(key) => {
                self.record(
                    Who::Operator,
                    Entry::StepSkipped {
                        step: key,
                        reason,
                        by_plan: false,
                    },
                )?;
                Ok(())
            }
            Err(why) => {
                self.refuse(Some(&step), why);
                Ok(())
            }
        }
    }

    fn pause(&mut self) -> Result<(), EngineError> {
        if let Some(reason) = &self.view.paused {
            self.warn(format!("the run is already paused ({reason})"));
            return Ok(());
        }
        let reason = format!("paused by {}", self.operator);
        self.record(Who::Operator, Entry::Paused { reason })?;
        if let Some(running) = &self.running {
            self.warn(format!(
                "{} goes on running; nothing new starts until the run is resumed",
                running.step
            ));
        }
        Ok(())
    }

    fn resume(&mut self) -> Result<(), EngineError> {
        if self.view.paused.is_none() {
            self.warn("the run is not paused");
            return Ok(());
        }
        self.record(Who::Operator, Entry::Resumed)?;
        Ok(())
    }

    /// Stops the running step (its process group is killed) and the engine's own traffic
    /// call, if any (what the driver started is killed; the split may be half-applied).
    fn abort(&mut self) -> Result<(), EngineError> {
        if self.running.is_none() && self.traffic_call.is_none() {
            self.warn("no step is running and no traffic change is under way: nothing to abort");
            return Ok(());
        }
        if let Some(running) = &self.running {
            let (key, cancel, sink) = (
                running.key.clone(),
                running.cancel.clone(),
                running.sink.clone(),
            );
            self.record(Who::Operator, Entry::AbortRequested { step: key })?;
            sink.note(&format!("abort requested by {}", self.operator));
            cancel.cancel();
        }
        if let Some(call) = &self.traffic_call {
            call.cancel.cancel();
            self.warn(format!(
                "abort: the call to the traffic driver ({}) is being stopped",
                call.purpose.describe()
            ));
        }
        Ok(())
    }

    fn quit(&mut self, reason: String) {
        if let Some(running) = &self.running {
            self.warn(format!(
                "{} is still running: kongup stops when it ends, and journals its result \
                 ({reason}); abort it to stop it now",
                running.step
            ));
        }
        if let Some(call) = &self.traffic_call {
            self.warn(format!(
                "the traffic driver is still answering ({}): kongup stops when it has, and \
                 journals what it said ({reason}); abort to stop it now",
                call.purpose.describe()
            ));
        }
        if self.quitting.is_none() {
            self.quitting = Some(reason);
        }
    }

    fn on_signal(&mut self, name: &str) {
        let reason = match name {
            "SIGHUP" => "SIGHUP: the terminal went away".to_string(),
            other => format!("{other} received"),
        };
        self.quit(reason);
    }

    fn start_step(&mut self, step: StepRef, who: Who) -> Result<(), EngineError> {
        let key = step_key(&step);
        let Some((details, rollback_of)) = self.resolve(&step) else {
            self.refuse(Some(&step), format!("{step} is not a step of this plan"));
            return Ok(());
        };
        let rollback_kind = rollback_of.as_ref().map(|r| r.kind.clone());
        let action = self.toolbox.action_for(&details, rollback_kind.as_ref());
        let runs = self
            .toolbox
            .preview(&self.plan, &details, rollback_kind.as_ref());
        let attempt = self.view.record(&key).map_or(0, |r| r.attempts) + 1;
        self.record(
            who,
            Entry::StepStarted {
                step: key.clone(),
                attempt,
                runs,
            },
        )?;
        let log_path = rundir::step_log_path(&self.run_dir, &step);
        let log_file = match rundir::open_private_append(&log_path) {
            Ok(file) => Some(file),
            Err(e) => {
                self.warn(format!(
                    "could not open the log {}: {e}; the output is only shown",
                    log_path.display()
                ));
                None
            }
        };
        let sink = LogSink::new(
            key.clone(),
            log_file,
            self.toolbox.redactor.clone(),
            self.events.clone(),
        );
        sink.note(&format!(
            "{step}: attempt {attempt}, started by {}",
            self.by(who)
        ));
        let cancel = CancellationToken::new();
        let bake_only = details.commands.is_empty()
            && matches!(
                details.kind,
                StepKind::ShiftTraffic { .. } | StepKind::Monitor { .. }
            )
            && rollback_kind.is_none();
        let ctx = StepContext {
            step_ref: step.clone(),
            step: details,
            rollback: rollback_of,
            attempt,
            plan: self.plan.clone(),
            expanded: self.expanded.clone(),
            run_dir: self.run_dir.clone(),
            executors: self.executors.clone(),
            traffic: self.toolbox.traffic.clone(),
            gates: self.toolbox.gates.clone(),
            redactor: self.toolbox.redactor.clone(),
            log: sink.clone(),
            cancel: cancel.clone(),
            traffic_path: self.traffic.clone(),
            journal: self.journal_tx.clone(),
            events: self.events.clone(),
        };
        let task = tokio::spawn(execute_step(action, ctx));
        self.running = Some(Running {
            step,
            key,
            attempt,
            started: Instant::now(),
            cancel,
            bake_only,
            sink,
            task,
        });
        Ok(())
    }

    fn finish_step(&mut self, ended: Result<StepOutcome, JoinError>) -> Result<(), EngineError> {
        let running = self.running.take().expect("a step was running");
        let outcome = ended.unwrap_or_else(|e| {
            StepOutcome::failed(format!("internal error in the step's action: {e}"))
        });
        let (result, detail, then, gates_passed) = match outcome {
            StepOutcome::Succeeded {
                detail,
                gates_passed,
            } => (
                StepResult::Succeeded,
                detail,
                AfterFailure::Stop,
                gates_passed,
            ),
            StepOutcome::Failed { detail, then } => (StepResult::Failed, Some(detail), then, false),
        };
        running.sink.note(&match (&result, &detail) {
            (StepResult::Succeeded, Some(d)) => format!("succeeded: {d}"),
            (StepResult::Succeeded, None) => "succeeded".to_string(),
            (StepResult::Failed, d) => format!("failed: {}", d.as_deref().unwrap_or("")),
        });
        // Every line so far is in the log file before the step's end is journaled.
        blocking(|| running.sink.flush());
        let gate_rollback = format!(
            "the gates failed on {} and the plan says on_fail: rollback",
            running.step
        );
        if then == AfterFailure::Rollback && self.view.rollback.as_ref().is_none_or(|r| r.finished)
        {
            // The intent goes first: a crash between the two records leaves a rollback to
            // finish (resumed with R), never a failed step whose rollback is forgotten.
            self.record(
                Who::Kongup,
                Entry::RollbackRequested {
                    reason: gate_rollback.clone(),
                },
            )?;
        }
        self.record(
            Who::Kongup,
            Entry::StepFinished {
                step: running.key.clone(),
                attempt: running.attempt,
                result,
                detail: detail.clone(),
                duration_ms: running.started.elapsed().as_millis() as u64,
                last_lines: running.sink.tail(),
            },
        )?;
        // Paused before the changes are said, so the run reads paused, not failed first.
        if matches!(then, AfterFailure::Pause) && self.view.paused.is_none() {
            let reason = format!("{}: {}", running.step, detail.unwrap_or_default());
            self.record(Who::Kongup, Entry::Paused { reason })?;
        }
        self.emit_changes();
        let succeeded = result == StepResult::Succeeded;
        if succeeded && running.step == StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X) {
            self.record_traffic_safe_after_step()?;
        }
        match then {
            AfterFailure::Stop | AfterFailure::Pause => {}
            AfterFailure::Rollback => {
                self.rollback(Instant::now(), &gate_rollback, Who::Kongup)?;
            }
        }
        if succeeded && gates_passed && self.plan.traffic.auto_advance {
            self.auto_advance()?;
        }
        Ok(())
    }

    /// A gate verdict between bakes (a bake journals and acts on its own): while Y carries
    /// traffic, each change of verdict is journaled with its numbers, and a failure pauses
    /// the run or starts the rollback, as the plan's `on_fail` says.
    fn on_verdict(&mut self, verdict: GateVerdict) -> Result<(), EngineError> {
        self.emit(Event::Gate(verdict.clone()));
        let y_share = self.view.traffic().map_or(0, |s| s.y);
        let watched = y_share > 0
            && !self.traffic.baking()
            && !self.view.rollback_active()
            && self.view.run_state() != RunState::Done;
        if !watched {
            return Ok(());
        }
        let acts = verdict.verdict == Verdict::Fail;
        let pausing = self.plan.gates.on_fail == FailAction::Pause;
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
        let reason = format!(
            "the gates failed while Y carries {y_share}% of the traffic and no bake runs ({} \
             breaches in a row): {}",
            verdict.consecutive_breaches,
            verdict.checks.join("; ")
        );
        if pausing {
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

    /// `rollback/traffic-to-x` succeeded: time to safety, from the rollback's command,
    /// with how it is known (the step's read-back, the operator's confirm, or nothing).
    fn record_traffic_safe_after_step(&mut self) -> Result<(), EngineError> {
        let Some(rollback) = &self.view.rollback else {
            return Ok(());
        };
        if rollback.time_to_safety_ms.is_some() {
            return Ok(());
        }
        let ms = (chrono::Utc::now() - rollback.requested_at)
            .num_milliseconds()
            .max(0) as u64;
        let source = self.traffic.driver.read_back_source();
        let Some((verified, evidence)) = safety_evidence(&source, self.view.traffic_applied) else {
            return Ok(());
        };
        self.record_traffic_safe(ms, verified, evidence)
    }

    fn record_traffic_safe(
        &mut self,
        time_to_safety_ms: u64,
        verified: TrafficVerification,
        evidence: String,
    ) -> Result<(), EngineError> {
        self.record(
            Who::Kongup,
            Entry::RollbackTrafficSafe {
                time_to_safety_ms,
                verified,
                evidence: evidence.clone(),
            },
        )?;
        self.emit(Event::RollbackProgress(RollbackProgress::TrafficSafe {
            time_to_safety_ms,
            verified,
            evidence,
        }));
        if verified == TrafficVerification::Unverified {
            self.warn(
                "all traffic was asked of X, but nothing confirms it: the traffic driver cannot \
                 read the split back; check the load balancer",
            );
        }
        Ok(())
    }

    /// The plan's `auto_advance`: the next traffic stage starts after this one's bake
    /// passed its gates, with a confirm journaled by kongup.
    fn auto_advance(&mut self) -> Result<(), EngineError> {
        if self.quitting.is_some() || self.view.paused.is_some() || self.view.rollback.is_some() {
            return Ok(());
        }
        self.advance()?;
        let Some(next) = self.view.next_step().and_then(|k| parse_step_key(&k)) else {
            return Ok(());
        };
        let is_stage = self
            .expanded
            .step(&next)
            .is_some_and(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }) && !s.irreversible);
        if !is_stage || self.view.state_of(&step_key(&next)) != StepState::Pending {
            return Ok(());
        }
        self.record(
            Who::Kongup,
            Entry::StepConfirmed {
                step: step_key(&next),
                via: ConfirmVia::AutoAdvance,
                typed: false,
            },
        )?;
        self.start_step(next, Who::Kongup)
    }

    /// The one-key rollback. See `rollback.rs` for what it plans.
    fn rollback(&mut self, clock: Instant, reason: &str, who: Who) -> Result<(), EngineError> {
        match self.traffic_call.as_ref().map(|c| c.purpose) {
            Some(TrafficPurpose::RollbackAct { .. }) => {
                self.refuse(
                    None,
                    "the rollback's first act (all traffic to X) is under way: its answer comes \
                     next",
                );
                return Ok(());
            }
            Some(TrafficPurpose::ByHand { .. }) if self.deferred_rollback.is_some() => {
                self.refuse(
                    None,
                    "the rollback already waits for the split set by hand to stop",
                );
                return Ok(());
            }
            _ => {}
        }
        match &self.view.rollback {
            Some(rollback) if rollback.finished => {
                self.refuse(None, "the run was already rolled back");
                return Ok(());
            }
            Some(rollback) if rollback.planned.is_some() => {
                if self.traffic_act_applies() && self.traffic_call.is_none() {
                    self.start_rollback_act(clock, true);
                } else {
                    self.warn("a rollback is already under way: its next step waits for a confirm");
                    self.emit_rollback_plan();
                }
                return Ok(());
            }
            Some(_) => {}
            None => {
                self.record(
                    who,
                    Entry::RollbackRequested {
                        reason: reason.to_string(),
                    },
                )?;
            }
        }
        // From here on no forward stage moves traffic, and bakes stop.
        self.traffic.rollback_requested();
        self.emit(Event::RollbackProgress(RollbackProgress::Started));
        if let Some(running) = &self.running {
            if running.bake_only {
                running.sink.note("the rollback stops this bake");
            } else {
                let step = running.step.clone();
                running
                    .sink
                    .note("a rollback was requested: a bake stops, a command runs to its end");
                self.warn(format!(
                    "{step} is running and is not cut short: the rollback steps wait for it to end"
                ));
            }
        }
        if let Some(call) = &self.traffic_call {
            // A split set by hand must not land after the rollback's: stop it, then act.
            call.cancel.cancel();
            self.deferred_rollback = Some(clock);
            return Ok(());
        }
        self.rollback_act_and_plan(clock)
    }

    /// The rollback's first act applies: traffic moved, X can serve, and the rollback has
    /// not yet got it safely onto X.
    fn traffic_act_applies(&self) -> bool {
        self.view.traffic_moved
            && rollback::x_can_serve(&self.expanded, &self.view)
            && self
                .view
                .rollback
                .as_ref()
                .is_none_or(|r| r.time_to_safety_ms.is_none())
    }

    /// The first act where it applies (all traffic to X, as a task: the plan follows its
    /// answer), else the rollback plan at once.
    fn rollback_act_and_plan(&mut self, clock: Instant) -> Result<(), EngineError> {
        if self.traffic_act_applies() {
            self.start_rollback_act(clock, false);
            return Ok(());
        }
        let blockers = rollback::x_blockers(&self.expanded, &self.view);
        if !blockers.is_empty() {
            self.warn(format!(
                "X cannot serve, so the rollback sends it no traffic now: {}",
                rollback::describe_blockers(&blockers)
            ));
        }
        self.plan_rollback(false)
    }

    fn plan_rollback(&mut self, traffic_safe: bool) -> Result<(), EngineError> {
        let past_no_return = rollback::point_of_no_return(&self.expanded, &self.view);
        let plan = rollback::plan_rollback(&self.expanded, &self.view, traffic_safe);
        self.record(
            Who::Kongup,
            Entry::RollbackPlanned {
                steps: plan.steps,
                point_of_no_return: past_no_return.is_some(),
                note: plan.note.clone(),
            },
        )?;
        self.emit_rollback_plan();
        if let Some(note) = plan.note {
            self.warn(format!("rollback plan: {note}"));
        }
        Ok(())
    }

    /// Starts a driver call of the engine's own: the split goes through the traffic path
    /// (one call at a time; journaled before and after) on a task of its own.
    fn start_traffic_call(&mut self, purpose: TrafficPurpose, split: Split, cause: String) {
        let cancel = CancellationToken::new();
        let (path, journal, events, stop) = (
            self.traffic.clone(),
            self.journal_tx.clone(),
            self.events.clone(),
            cancel.clone(),
        );
        let mover = match purpose {
            TrafficPurpose::RollbackAct { .. } => Mover::Rollback,
            TrafficPurpose::ByHand { .. } => Mover::Operator,
        };
        let task = tokio::spawn(async move {
            let result = path
                .set(split, cause, mover, &journal, &events, &stop)
                .await;
            TrafficCallEnd {
                result,
                at: Instant::now(),
            }
        });
        self.traffic_call = Some(TrafficCall {
            purpose,
            cancel,
            task,
        });
    }

    /// The rollback's first act: all traffic to X, read back.
    fn start_rollback_act(&mut self, clock: Instant, planned: bool) {
        self.start_traffic_call(
            TrafficPurpose::RollbackAct { clock, planned },
            Split::ALL_X,
            "rollback".into(),
        );
    }

    fn finish_traffic_call(
        &mut self,
        ended: Result<TrafficCallEnd, JoinError>,
    ) -> Result<(), EngineError> {
        let call = self
            .traffic_call
            .take()
            .expect("a traffic call was in flight");
        let (result, at) = match ended {
            Ok(end) => (end.result, end.at),
            Err(e) => (
                Err(ActionError::Failed(format!(
                    "internal error in the traffic call: {e}"
                ))),
                Instant::now(),
            ),
        };
        match call.purpose {
            TrafficPurpose::ByHand { split } => {
                match result {
                    Ok(readback) => {
                        if let Some(applied) = readback.applied.filter(|a| *a != split) {
                            self.warn(format!(
                                "asked for {split}, but the load balancer reports {applied}"
                            ));
                        }
                    }
                    Err(e) => self.warn(format!("could not set the traffic to {split}: {e}")),
                }
                if let Some(clock) = self.deferred_rollback.take() {
                    self.rollback_act_and_plan(clock)?;
                }
            }
            TrafficPurpose::RollbackAct { clock, planned } => {
                let elapsed_ms = at.saturating_duration_since(clock).as_millis() as u64;
                let safe = self.record_rollback_act(result, elapsed_ms)?;
                if !planned {
                    self.plan_rollback(safe)?;
                } else if safe {
                    let step = step_key(&StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X));
                    let pending = self.view.rollback_steps().iter().any(|s| s.step == step)
                        && self.view.state_of(&step) == StepState::Pending;
                    if pending {
                        self.record(
                            Who::Kongup,
                            Entry::StepSkipped {
                                step,
                                reason: "the rollback command moved all traffic to X".into(),
                                by_plan: false,
                            },
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// What the rollback's first act achieved: safe when the load balancer reports all
    /// traffic on X.
    fn record_rollback_act(
        &mut self,
        result: Result<TrafficReadback, ActionError>,
        elapsed_ms: u64,
    ) -> Result<bool, EngineError> {
        let source = self.traffic.driver.read_back_source();
        let error = match result {
            Ok(TrafficReadback {
                applied: Some(applied),
                ..
            }) if applied == Split::ALL_X => {
                let (verified, evidence) =
                    safety_evidence(&source, Some(applied)).expect("all traffic on X, read back");
                self.record_traffic_safe(elapsed_ms, verified, evidence)?;
                return Ok(true);
            }
            Ok(TrafficReadback {
                applied: Some(applied),
                ..
            }) => format!("asked for all traffic on X, but the load balancer reports {applied}"),
            Ok(TrafficReadback { applied: None, .. }) => {
                "the traffic driver cannot read the split back: check the load balancer, then \
                 confirm rollback/traffic-to-x"
                    .to_string()
            }
            Err(e) => e.to_string(),
        };
        self.record(
            Who::Kongup,
            Entry::RollbackTrafficFailed {
                error: error.clone(),
            },
        )?;
        self.warn(format!("traffic is not confirmed on X: {error}"));
        Ok(false)
    }

    fn set_traffic_by_hand(&mut self, y_percent: u8) -> Result<(), EngineError> {
        if let Some(running) = &self.running {
            let why = format!(
                "cannot set the traffic by hand while {} runs: wait for it or abort it",
                running.step
            );
            self.refuse(None, why);
            return Ok(());
        }
        if let Some(call) = &self.traffic_call {
            let why = format!(
                "cannot set the traffic by hand while the driver is still answering ({}): \
                 wait for it or abort it",
                call.purpose.describe()
            );
            self.refuse(None, why);
            return Ok(());
        }
        let split = Split::to_y(y_percent);
        let blockers = rollback::x_blockers(&self.expanded, &self.view);
        if split.x > 0 && !blockers.is_empty() {
            let why = format!(
                "cannot set X {}%: X cannot serve: {}. All traffic on Y (`traffic 100`) is \
                 still allowed",
                split.x,
                rollback::describe_blockers(&blockers)
            );
            self.refuse(None, why);
            return Ok(());
        }
        let cause = format!("set by hand by {}", self.operator);
        self.start_traffic_call(TrafficPurpose::ByHand { split }, split, cause);
        Ok(())
    }
}

impl TrafficPurpose {
    fn describe(&self) -> String {
        match self {
            TrafficPurpose::RollbackAct { .. } => "the rollback's all traffic to X".to_string(),
            TrafficPurpose::ByHand { split } => format!("{split}, set by hand"),
        }
    }
}

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
use super::event::{Event, RollbackProgress, RunState, StepState};
use super::journal::{
    ConfirmVia, Entry, JOURNAL_FILE, Journal, Record, StepInfo, StepResult, parse_step_key,
    read_journal, step_key,
};
use super::lock::RunLock;
use super::rollback::{self, TRAFFIC_TO_X};
use super::rundir::{self, LOGS_DIR};
use super::toolbox::Toolbox;
use super::view::RunView;
use super::{EngineError, EngineHandle, RunSetup, SessionEnd, plan_change};
use crate::actions::traffic::apply_split;
use crate::actions::{
    AfterFailure, JournalRequest, LogSink, RollbackOf, StepAction, StepContext, StepOutcome,
    commands::run_commands,
};
use crate::exec::Executor;
use crate::lb::Split;
use crate::metrics::GateVerdict;
use crate::plan::model::Plan;
use crate::plan::steps::{ExpandedPlan, PhaseName, RollbackKind, Step, StepKind, StepRef};

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
    /// Only a bake: a rollback may stop it (a command is never cut short by a rollback).
    bake_only: bool,
    /// It sets the traffic split: a rollback's traffic act waits for its end.
    touches_traffic: bool,
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
    /// A rollback waiting for a running traffic step to end; its command's arrival time.
    deferred_rollback: Option<Instant>,
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
    let mut engine = Engine {
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
    };
    // Listening starts before anything runs, so no signal finds the default action.
    let signals = Signals::listen(options.handle_signals).map_err(EngineError::Signals)?;
    engine.open_session(plan_change)?;
    let task = tokio::spawn(engine.run(commands_rx, signals));
    Ok(EngineHandle {
        commands: commands_tx,
        events: events_rx,
        task,
        run_dir,
        run_id,
    })
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

    /// Journals (fsync'd) and applies to the view; only then may the caller act.
    fn record(&mut self, who: Who, entry: Entry) -> Result<Record, EngineError> {
        let by = self.by(who);
        let record = self.journal.append(&by, entry)?;
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
        mut commands: mpsc::Receiver<Command>,
        mut signals: Signals,
    ) -> Result<SessionEnd, EngineError> {
        self.emit_snapshot();
        let reason = loop {
            self.advance()?;
            self.emit_changes();
            if self.running.is_none()
                && let Some(reason) = &self.quitting
            {
                break reason.clone();
            }
            tokio::select! {
                command = commands.recv(), if !self.commands_closed => match command {
                    Some(command) => self.handle(command).await?,
                    None => {
                        self.commands_closed = true;
                        self.quit("the console closed".to_string());
                    }
                },
                ended = step_end(&mut self.running) => self.finish_step(ended).await?,
                Some(request) = self.journal_rx.recv() => {
                    let result = self.record(Who::Kongup, request.entry);
                    let answer = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
                    let _ = request.done.send(answer);
                    result?;
                }
                name = signals.next() => self.on_signal(name),
                verdict = next_verdict(&mut self.gate_watch) => match verdict {
                    Some(Some(verdict)) => self.emit(Event::Gate(verdict)),
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
                self.emit(Event::RollbackProgress(RollbackProgress::TrafficSafe {
                    time_to_safety_ms: ms,
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
        self.emit(Event::RollbackProgress(RollbackProgress::Planned { steps }));
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

    async fn handle(&mut self, command: Command) -> Result<(), EngineError> {
        match command {
            Command::Confirm { step, typed } => self.confirm(step, typed),
            Command::Skip { step, reason } => self.skip(step, reason),
            Command::Retry { step } => self.retry(step),
            Command::MarkDone { step, note } => self.mark_done(step, note),
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Rollback => {
                self.rollback(Instant::now(), "requested by the operator", Who::Operator)
                    .await
            }
            Command::SetTraffic { y_percent } => self.set_traffic_by_hand(y_percent).await,
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

    fn check_not_paused(&self, verb: &str, step: &StepRef) -> Result<(), String> {
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

    fn confirm(&mut self, step: StepRef, typed: Option<String>) -> Result<(), EngineError> {
        let checked = self
            .check_turn(&step, &[StepState::Pending], "confirm")
            .and_then(|key| self.check_not_paused("confirm", &step).map(|()| key));
        let key = match checked {
            Ok(key) => key,
            Err(why) => {
                self.refuse(Some(&step), why);
                return Ok(());
            }
        };
        let Some((details, _)) = self.resolve(&step) else {
            self.refuse(Some(&step), format!("{step} is not a step of this plan"));
            return Ok(());
        };
        if details.irreversible && typed.as_deref().map(str::trim) != Some(self.plan.name.as_str())
        {
            let because = details
                .irreversible_because
                .clone()
                .unwrap_or_else(|| "it cannot be undone".to_string());
            let why = match typed {
                Some(_) => {
                    format!("{step} was not confirmed: the typed name does not match the plan name")
                }
                None => format!(
                    "{step} is irreversible ({because}): confirm it by typing the plan name '{}'",
                    self.plan.name
                ),
            };
            self.refuse(Some(&step), why);
            return Ok(());
        }
        self.record(
            Who::Operator,
            Entry::StepConfirmed {
                step: key,
                via: ConfirmVia::Confirm,
                typed: typed.is_some(),
            },
        )?;
        self.start_step(step, Who::Operator)
    }

    fn retry(&mut self, step: StepRef) -> Result<(), EngineError> {
        let checked = self
            .check_turn(&step, &[StepState::Failed, StepState::Interrupted], "retry")
            .and_then(|key| self.check_not_paused("retry", &step).map(|()| key));
        match checked {
            Ok(key) => {
                self.record(
                    Who::Operator,
                    Entry::StepConfirmed {
                        step: key,
                        via: ConfirmVia::Retry,
                        typed: false,
                    },
                )?;
                self.start_step(step, Who::Operator)
            }
            Err(why) => {
                self.refuse(Some(&step), why);
                Ok(())
            }
        }
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

    fn abort(&mut self) -> Result<(), EngineError> {
        let Some(running) = &self.running else {
            self.warn("no step is running: nothing to abort");
            return Ok(());
        };
        let (key, cancel, sink) = (
            running.key.clone(),
            running.cancel.clone(),
            running.sink.clone(),
        );
        self.record(Who::Operator, Entry::AbortRequested { step: key })?;
        sink.note(&format!("abort requested by {}", self.operator));
        cancel.cancel();
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
        let touches_traffic = matches!(details.kind, StepKind::ShiftTraffic { .. });
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
            touches_traffic,
            sink,
            task,
        });
        Ok(())
    }

    async fn finish_step(
        &mut self,
        ended: Result<StepOutcome, JoinError>,
    ) -> Result<(), EngineError> {
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
        self.emit_changes();
        let succeeded = result == StepResult::Succeeded;
        if succeeded && running.step == StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X) {
            self.record_traffic_safe_after_step()?;
        }
        if let Some(clock) = self.deferred_rollback.take() {
            self.rollback_act_and_plan(clock).await?;
        }
        match then {
            AfterFailure::Stop => {}
            AfterFailure::Pause => {
                let reason = format!("{}: {}", running.step, detail.unwrap_or_default());
                self.record(Who::Kongup, Entry::Paused { reason })?;
            }
            AfterFailure::Rollback => {
                let reason = format!(
                    "the gates failed on {} and the plan says on_fail: rollback",
                    running.step
                );
                self.rollback(Instant::now(), &reason, Who::Kongup).await?;
            }
        }
        if succeeded && gates_passed && self.plan.traffic.auto_advance {
            self.auto_advance()?;
        }
        Ok(())
    }

    /// `rollback/traffic-to-x` succeeded: time to safety, from the rollback's command.
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
        self.record(
            Who::Kongup,
            Entry::RollbackTrafficSafe {
                time_to_safety_ms: ms,
            },
        )?;
        self.emit(Event::RollbackProgress(RollbackProgress::TrafficSafe {
            time_to_safety_ms: ms,
        }));
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
    async fn rollback(
        &mut self,
        clock: Instant,
        reason: &str,
        who: Who,
    ) -> Result<(), EngineError> {
        if let Some(running) = &self.running
            && self.deferred_rollback.is_some()
        {
            let why = format!(
                "the rollback already waits for {} to end (a traffic step is stopping)",
                running.step
            );
            self.refuse(None, why);
            return Ok(());
        }
        match &self.view.rollback {
            Some(rollback) if rollback.finished => {
                self.refuse(None, "the run was already rolled back");
                return Ok(());
            }
            Some(rollback) if rollback.planned.is_some() => {
                if self.traffic_act_applies() && self.traffic_to_x_now(clock).await? {
                    let step = step_key(&StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X));
                    let planned = self.view.rollback_steps().iter().any(|s| s.step == step);
                    if planned && self.view.state_of(&step) == StepState::Pending {
                        self.record(
                            Who::Kongup,
                            Entry::StepSkipped {
                                step,
                                reason: "the rollback command moved all traffic to X".into(),
                                by_plan: false,
                            },
                        )?;
                    }
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
        self.emit(Event::RollbackProgress(RollbackProgress::Started));
        if let Some(running) = &self.running {
            let (step, key, cancel, sink, bake_only, touches_traffic) = (
                running.step.clone(),
                running.key.clone(),
                running.cancel.clone(),
                running.sink.clone(),
                running.bake_only,
                running.touches_traffic,
            );
            if bake_only {
                self.record(Who::Kongup, Entry::AbortRequested { step: key })?;
                sink.note("the rollback stops this bake");
                cancel.cancel();
            } else {
                self.warn(format!(
                    "{step} is running and is not cut short: the rollback steps wait for it to end"
                ));
            }
            if touches_traffic {
                // Its split must not land after the rollback's: act once it has ended.
                self.deferred_rollback = Some(clock);
                return Ok(());
            }
        }
        self.rollback_act_and_plan(clock).await
    }

    fn traffic_act_applies(&self) -> bool {
        self.view.traffic_moved
            && rollback::point_of_no_return(&self.expanded, &self.view).is_none()
            && self
                .view
                .rollback
                .as_ref()
                .is_none_or(|r| r.time_to_safety_ms.is_none())
    }

    /// The first act where it applies (all traffic to X), then the rollback plan.
    async fn rollback_act_and_plan(&mut self, clock: Instant) -> Result<(), EngineError> {
        let past_no_return = rollback::point_of_no_return(&self.expanded, &self.view);
        let mut traffic_safe = false;
        if self.traffic_act_applies() {
            traffic_safe = self.traffic_to_x_now(clock).await?;
        } else if let Some(finish) = &past_no_return {
            self.warn(format!(
                "{finish} ran on the database X shares: X cannot serve from it any more. \
                 Rollback is the database-restore path: restore the backup (irreversible), \
                 then bring X back; traffic stays where it is until then"
            ));
        }
        let steps = rollback::plan_rollback(&self.expanded, &self.view, traffic_safe);
        self.record(
            Who::Kongup,
            Entry::RollbackPlanned {
                steps,
                point_of_no_return: past_no_return.is_some(),
            },
        )?;
        self.emit_rollback_plan();
        Ok(())
    }

    /// The rollback's first act: all traffic to X, read back. True when the load balancer
    /// confirmed it; time to safety is measured from `clock` (the command's arrival).
    async fn traffic_to_x_now(&mut self, clock: Instant) -> Result<bool, EngineError> {
        self.record(
            Who::Kongup,
            Entry::TrafficRequested {
                split: Split::ALL_X,
                cause: "rollback".into(),
            },
        )?;
        let result = apply_split(self.toolbox.traffic.as_ref(), Split::ALL_X).await;
        let elapsed_ms = clock.elapsed().as_millis() as u64;
        self.record(
            Who::Kongup,
            Entry::TrafficApplied {
                requested: Split::ALL_X,
                applied: result.as_ref().ok().copied().flatten(),
                error: result.as_ref().err().map(|e| e.to_string()),
            },
        )?;
        if let Ok(applied) = &result {
            self.emit(Event::TrafficChanged {
                requested: Split::ALL_X,
                applied: *applied,
            });
        }
        let error = match result {
            Ok(Some(applied)) if applied == Split::ALL_X => {
                self.record(
                    Who::Kongup,
                    Entry::RollbackTrafficSafe {
                        time_to_safety_ms: elapsed_ms,
                    },
                )?;
                self.emit(Event::RollbackProgress(RollbackProgress::TrafficSafe {
                    time_to_safety_ms: elapsed_ms,
                }));
                return Ok(true);
            }
            Ok(Some(applied)) => {
                format!("asked for all traffic on X, but the load balancer reports {applied}")
            }
            Ok(None) => "the traffic driver cannot read the split back: check the load \
                         balancer, then confirm rollback/traffic-to-x"
                .to_string(),
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

    async fn set_traffic_by_hand(&mut self, y_percent: u8) -> Result<(), EngineError> {
        if let Some(running) = &self.running {
            let why = format!(
                "cannot set the traffic by hand while {} runs: wait for it or abort it",
                running.step
            );
            self.refuse(None, why);
            return Ok(());
        }
        let split = Split::to_y(y_percent);
        let cause = format!("set by hand by {}", self.operator);
        self.record(Who::Operator, Entry::TrafficRequested { split, cause })?;
        let result = apply_split(self.toolbox.traffic.as_ref(), split).await;
        self.record(
            Who::Kongup,
            Entry::TrafficApplied {
                requested: split,
                applied: result.as_ref().ok().copied().flatten(),
                error: result.as_ref().err().map(|e| e.to_string()),
            },
        )?;
        match result {
            Ok(applied) => {
                self.emit(Event::TrafficChanged {
                    requested: split,
                    applied,
                });
                if let Some(applied) = applied.filter(|a| *a != split) {
                    self.warn(format!(
                        "asked for {split}, but the load balancer reports {applied}"
                    ));
                }
            }
            Err(e) => self.warn(format!("could not set the traffic to {split}: {e}")),
        }
        Ok(())
    }
}

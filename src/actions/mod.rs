//! Step actions: what a confirmed step does.
//!
//! The engine runs a step as: the action registered for its kind (if any), then the
//! plan's `commands` for the step (if any), in order. A step with neither is a checklist
//! item: the operator does it by hand, and the confirm is the operator saying it is done.
//!
//! # Registering an action
//!
//! Built-in automation (backups, migrations, smoke tests, …) is a [`StepAction`] put into
//! the [`ActionRegistry`] of the engine's `Toolbox`, matched by what the step is:
//!
//! ```ignore
//! let mut actions = ActionRegistry::with_builtins();
//! actions.register(
//!     |target| matches!(target, ActionFor::Step(StepKind::Backup(BackupKind::Database))),
//!     Arc::new(PgDumpBackup::new(..)),
//! );
//! actions.register(
//!     |target| matches!(target, ActionFor::Rollback(RollbackKind::RestoreDatabase)),
//!     Arc::new(RestoreOverLive::new(..)),
//! );
//! ```
//!
//! The last registration that matches wins, so a lab or a test can replace a built-in.
//! Built in: `ShiftTraffic` (set the split, read it back, bake with gates), `Monitor`
//! (bake with gates) and the rollback's traffic-to-X.
//!
//! An action gets a [`StepContext`]: the step, the plan, the run directory, a log sink
//! (lines are redacted, shown live and kept in `logs/` of the run), the executors, the
//! traffic driver, the gate verdicts, a way to record facts in the journal, and a
//! cancellation token (the operator's abort). Use [`StepContext::run_command`] to run a
//! command: it streams the output into the log and honours abort and timeouts.

pub mod commands;
pub mod kong;
pub mod traffic;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::event::{Event, LogLine, LogStream};
use crate::engine::journal::{Entry, GateRecord};
use crate::engine::toolbox::Toolbox;
use crate::exec::{ExecError, ExecRequest, Executor, ExitOutcome};
use crate::lb::{LbError, Split, TrafficDriver};
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::{CommandSpec, Plan};
use crate::plan::steps::{ExpandedPlan, RollbackKind, Step, StepKind, StepRef};
use crate::secrets::Redactor;

/// What an action is looked up by: a forward step's kind, or what a rollback step undoes.
#[derive(Debug, Clone, Copy)]
pub enum ActionFor<'a> {
    Step(&'a StepKind),
    Rollback(&'a RollbackKind),
}

/// What a confirmed step does.
#[async_trait::async_trait]
pub trait StepAction: Send + Sync {
    /// What it will do and where, one line each, shown before the confirm
    /// (e.g. "set the split to X 75% | Y 25% through haproxy at /run/haproxy.sock").
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String>;

    /// Runs the step. `Ok(Failed)` is a step that failed for a reason the operator should
    /// read (an exit status, a gate); `Err` is something that stopped the action itself.
    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Succeeded {
        detail: Option<String>,
        /// A traffic stage whose bake passed its gates: `auto_advance` may go on.
        gates_passed: bool,
    },
    Failed {
        detail: String,
        then: AfterFailure,
    },
}

impl StepOutcome {
    pub fn succeeded(detail: impl Into<String>) -> StepOutcome {
        StepOutcome::Succeeded {
            detail: Some(detail.into()),
            gates_passed: false,
        }
    }

    pub fn failed(detail: impl Into<String>) -> StepOutcome {
        StepOutcome::Failed {
            detail: detail.into(),
            then: AfterFailure::Stop,
        }
    }
}

/// What the run does after a failed step, beyond waiting for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    Stop,
    /// Pause the run (a gate failed with `on_fail: pause`, or was inconclusive).
    Pause,
    /// Start the rollback (a gate failed with `on_fail: rollback`).
    Rollback,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("the plan names no executor '{name}' (it has: {known}); add it under `executors:`")]
    UnknownExecutor { name: String, known: String },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("traffic driver: {0}")]
    Traffic(#[from] LbError),
    #[error(
        "traffic driver {driver} did not answer within {}s (what it started was stopped): check \
         that the load balancer is up and reachable and see which split it holds now, then \
         retry the step, or set the split by hand (`traffic N`)",
        timeout.as_secs()
    )]
    TrafficTimeout { driver: String, timeout: Duration },
    #[error(
        "the call to traffic driver {driver} was stopped by an abort{}",
        if *changed {
            " while it ran: the split may be half-applied; check the load balancer, then \
             set the split again (`traffic N`)"
        } else {
            " before it started: the split was not changed"
        }
    )]
    TrafficStopped { driver: String, changed: bool },
    #[error("could not journal {what}: {message}; the step stops here")]
    Journal { what: String, message: String },
    #[error("could not create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

type Matcher = dyn Fn(&ActionFor<'_>) -> bool + Send + Sync;

/// Actions by what they act on. See the module documentation.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    entries: Vec<(Arc<Matcher>, Arc<dyn StepAction>)>,
}

impl std::fmt::Debug for ActionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ActionRegistry({} actions)", self.entries.len())
    }
}

impl ActionRegistry {
    /// No actions at all: every step runs only its plan commands.
    pub fn empty() -> Self {
        ActionRegistry::default()
    }

    /// Traffic shifts, monitoring and the rollback's traffic-to-X.
    pub fn with_builtins() -> Self {
        let mut registry = ActionRegistry::empty();
        registry
            .register(
                |t| matches!(t, ActionFor::Step(StepKind::ShiftTraffic { .. })),
                Arc::new(traffic::ShiftTraffic),
            )
            .register(
                |t| matches!(t, ActionFor::Step(StepKind::Monitor { .. })),
                Arc::new(traffic::Monitor),
            )
            .register(
                |t| matches!(t, ActionFor::Rollback(RollbackKind::TrafficToX)),
                Arc::new(traffic::TrafficToX),
            );
        registry
    }

    /// Adds an action for every step `matches` accepts; later registrations win.
    pub fn register(
        &mut self,
        matches: impl Fn(&ActionFor<'_>) -> bool + Send + Sync + 'static,
        action: Arc<dyn StepAction>,
    ) -> &mut Self {
        self.entries.push((Arc::new(matches), action));
        self
    }

    pub fn find(&self, target: ActionFor<'_>) -> Option<Arc<dyn StepAction>> {
        self.entries
            .iter()
            .rev()
            .find(|(matches, _)| matches(&target))
            .map(|(_, action)| action.clone())
    }
}

/// A request from a running action to journal something; answered once it is on disk.
#[derive(Debug)]
pub(crate) struct JournalRequest {
    pub entry: Entry,
    /// Recorded as the operator's (a split set by hand), not kongup's.
    pub by_operator: bool,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Journals `entry` through the engine and waits until it is on disk.
pub(crate) async fn journal_through(
    journal: &mpsc::UnboundedSender<JournalRequest>,
    what: &str,
    entry: Entry,
    by_operator: bool,
) -> Result<(), ActionError> {
    let (done, answer) = oneshot::channel();
    let failed = |message: String| ActionError::Journal {
        what: what.to_string(),
        message,
    };
    journal
        .send(JournalRequest {
            entry,
            by_operator,
            done,
        })
        .map_err(|_| failed("the engine has stopped".into()))?;
    answer
        .await
        .map_err(|_| failed("the engine has stopped".into()))?
        .map_err(failed)
}

/// Who moves traffic: it decides whether a call may still go through once a rollback is
/// under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mover {
    /// A forward step (a stage of the schedule): refused once a rollback is requested.
    Forward,
    /// The rollback (its first act, or `rollback/traffic-to-x`).
    Rollback,
    /// The operator, by hand.
    Operator,
}

/// The one way to the traffic driver, shared by the engine and the running steps: one
/// driver call at a time, and no forward step moves traffic once a rollback is
/// requested, so the rollback's split is always the last word.
#[derive(Clone)]
pub struct TrafficPath {
    pub driver: Arc<dyn TrafficDriver>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    /// Cancelled once a rollback is requested: forward stages no longer set the split,
    /// and bakes stop.
    rollback: CancellationToken,
    /// Bakes under way: while one runs, it acts on the gates' verdicts; otherwise the
    /// engine does.
    bakes: Arc<std::sync::atomic::AtomicUsize>,
}

impl TrafficPath {
    pub(crate) fn new(driver: Arc<dyn TrafficDriver>) -> TrafficPath {
        TrafficPath {
            driver,
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
            rollback: CancellationToken::new(),
            bakes: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// A bake is under way (it acts on failing gates itself).
    pub fn baking(&self) -> bool {
        self.bakes.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// A rollback is requested: from now on forward stages leave the split alone and
    /// bakes stop. A call already in flight finishes first (the rollback's waits for it).
    pub(crate) fn rollback_requested(&self) {
        self.rollback.cancel();
    }

    pub fn rolling_back(&self) -> bool {
        self.rollback.is_cancelled()
    }

    /// Sets the split and reads it back, one call at a time: journals the request
    /// before the driver is asked and the answer after, and tells the console. `cancel`
    /// (the operator's abort) stops the call and kills what the driver started.
    pub(crate) async fn set(
        &self,
        split: Split,
        cause: String,
        mover: Mover,
        journal: &mpsc::UnboundedSender<JournalRequest>,
        events: &mpsc::UnboundedSender<Event>,
        cancel: &CancellationToken,
    ) -> Result<TrafficReadback, ActionError> {
        let _turn = tokio::select! {
            turn = self.one_at_a_time.lock() => turn,
            _ = cancel.cancelled() => return Err(ActionError::TrafficStopped {
                driver: self.driver.describe(),
                changed: false,
            }),
        };
        if mover == Mover::Forward && self.rolling_back() {
            return Err(ActionError::Failed(format!(
                "a rollback was requested before {cause} set the split to {split}: the split \
                 was left alone"
            )));
        }
        let by_operator = mover == Mover::Operator;
        journal_through(
            journal,
            "the traffic request",
            Entry::TrafficRequested { split, cause },
            by_operator,
        )
        .await?;
        let result = tokio::select! {
            result = traffic::apply_split(self.driver.as_ref(), split) => result,
            _ = cancel.cancelled() => Err(ActionError::TrafficStopped {
                driver: self.driver.describe(),
                changed: true,
            }),
        };
        journal_through(
            journal,
            "the traffic answer",
            Entry::TrafficApplied {
                requested: split,
                applied: result.as_ref().ok().copied().flatten(),
                error: result.as_ref().err().map(|e| e.to_string()),
            },
            false,
        )
        .await?;
        let applied = result?;
        let _ = events.send(Event::TrafficChanged {
            requested: split,
            applied,
        });
        Ok(TrafficReadback {
            requested: split,
            applied,
        })
    }
}

/// Where a step's output goes: its log file in the run directory and the event stream,
/// redacted, with the last lines kept for the journal. The file is written by a thread of
/// its own, so a slow disk never holds up the task that produced the line.
#[derive(Clone)]
pub struct LogSink {
    step: String,
    redactor: Arc<Redactor>,
    events: mpsc::UnboundedSender<Event>,
    tail: Arc<Mutex<VecDeque<String>>>,
    writer: Option<std::sync::mpsc::Sender<LogWrite>>,
}

/// What the log writer thread is asked.
enum LogWrite {
    Line(String),
    /// Write out everything before this, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// How many of a step's last output lines the journal keeps.
pub const TAIL_LINES: usize = 20;

/// How long `LogSink::flush` waits for the log file (a stuck disk must not stop the run).
pub const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the thread that writes a step's log file; `None` (with a warning) when no
/// thread can be started.
fn spawn_log_writer(
    file: std::fs::File,
    step: &str,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<std::sync::mpsc::Sender<LogWrite>> {
    use std::io::Write;
    let (tx, rx) = std::sync::mpsc::channel::<LogWrite>();
    let (step_name, warnings) = (step.to_string(), events.clone());
    let spawned = std::thread::Builder::new()
        .name("kongup-log".into())
        .spawn(move || {
            let mut out = Some(std::io::BufWriter::new(file));
            let failed = |out: &mut Option<std::io::BufWriter<std::fs::File>>,
                          e: std::io::Error| {
                *out = None;
                let _ = warnings.send(Event::Warning(format!(
                    "could not write the log of {step_name}: {e}; its output is only shown"
                )));
            };
            while let Ok(first) = rx.recv() {
                let mut next = Some(first);
                while let Some(write) = next.take() {
                    match write {
                        LogWrite::Line(line) => {
                            if let Some(w) = &mut out
                                && let Err(e) = writeln!(w, "{line}")
                            {
                                failed(&mut out, e);
                            }
                        }
                        LogWrite::Flush(done) => {
                            if let Some(w) = &mut out
                                && let Err(e) = w.flush()
                            {
                                failed(&mut out, e);
                            }
                            let _ = done.send(());
                        }
                    }
                    next = rx.try_recv().ok();
                }
                // Nothing more waiting: put what was written on disk.
                if let Some(w) = &mut out
                    && let Err(e) = w.flush()
                {
                    failed(&mut out, e);
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            let _ = events.send(Event::Warning(format!(
                "could not start the log writer of {step}: {e}; its output is only shown"
            )));
            None
        }
    }
}

impl LogSink {
    pub(crate) fn new(
        step: String,
        file: Option<std::fs::File>,
        redactor: Arc<Redactor>,
        events: mpsc::UnboundedSender<Event>,
    ) -> LogSink {
        let writer = file.and_then(|file| spawn_log_writer(file, &step, &events));
        LogSink {
            step,
            redactor,
            events,
            tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
            writer,
        }
    }

    pub fn line(&self, stream: LogStream, text: &str) {
        let text = self.redactor.redact(text.trim_end_matches(['\n', '\r']));
        let at = Utc::now();
        if let Some(writer) = &self.writer {
            let tag = match stream {
                LogStream::Stdout => "stdout",
                LogStream::Stderr => "stderr",
                LogStream::Engine => "kongup",
            };
            // The writer only goes away after a failure it has already reported.
            let _ = writer.send(LogWrite::Line(format!(
                "{} {tag}| {text}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )));
        }
        {
            let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.to_string());
        }
        let _ = self.events.send(Event::Log(LogLine {
            at,
            step: Some(self.step.clone()),
            stream,
            text: text.into_owned(),
        }));
    }

    /// A line from kongup itself about the step.
    pub fn note(&self, text: &str) {
        self.line(LogStream::Engine, text);
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Waits (up to [`LOG_FLUSH_TIMEOUT`]) until every line so far is in the log file.
    /// Blocking: call it where blocking is allowed.
    pub fn flush(&self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let (done, answer) = std::sync::mpsc::channel();
        if writer.send(LogWrite::Flush(done)).is_ok() {
            let _ = answer.recv_timeout(LOG_FLUSH_TIMEOUT);
        }
    }
}

/// How a bake ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BakeResult {
    /// The last fresh verdict passed.
    Passed(GateVerdict),
    /// There is no gate source: the bake only counted down.
    NoGates,
    Failed(GateVerdict),
    /// No fresh verdict, or the last one was inconclusive.
    Inconclusive(Option<GateVerdict>),
    /// The operator aborted the step.
    Cancelled,
    /// A rollback was requested: a bake is always safe to stop.
    StoppedByRollback,
}

/// What a rollback step undoes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackOf {
    /// The forward step; `None` for `rollback/traffic-to-x`.
    pub undoes: Option<StepRef>,
    pub kind: RollbackKind,
}

/// The traffic split after a change: what was asked and what the load balancer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficReadback {
    pub requested: Split,
    pub applied: Option<Split>,
}

/// Everything a running step may use. Owned, because the step runs in its own task while
/// the engine keeps taking commands.
pub struct StepContext {
    pub step_ref: StepRef,
    pub step: Step,
    /// Set for a rollback step: what it undoes, and how.
    pub rollback: Option<RollbackOf>,
    pub attempt: u32,
    pub plan: Arc<Plan>,
    pub expanded: Arc<ExpandedPlan>,
    pub run_dir: PathBuf,
    pub executors: Arc<BTreeMap<String, Arc<dyn Executor>>>,
    pub traffic: Arc<dyn TrafficDriver>,
    pub gates: Option<watch::Receiver<Option<GateVerdict>>>,
    pub redactor: Arc<Redactor>,
    pub log: LogSink,
    /// Cancelled when the operator aborts the step.
    pub cancel: CancellationToken,
    pub(crate) traffic_path: TrafficPath,
    pub(crate) journal: mpsc::UnboundedSender<JournalRequest>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
}

/// The environment variable that names the node a command was placed on.
pub const NODE_VARIABLE: &str = "KONGUP_NODE";

/// What the engine allows a driver call beyond the driver's own timeouts
/// ([`TrafficDriver::call_timeout`]), so the driver's own error wins the race.
pub const DRIVER_MARGIN: Duration = Duration::from_secs(5);

impl StepContext {
    /// Sends an event to the console; a warning's text is redacted on the way.
    pub fn emit(&self, event: Event) {
        let event = match event {
            Event::Warning(text) => Event::Warning(self.redactor.redact(&text).into_owned()),
            other => other,
        };
        let _ = self.events.send(event);
    }

    async fn journal(&self, what: &str, entry: Entry) -> Result<(), ActionError> {
        journal_through(&self.journal, what, entry, false).await
    }

    /// Records a fact in the journal (e.g. `backup.path`, `backup.sha256`) before going on.
    pub async fn record_fact(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), ActionError> {
        let key = key.into();
        self.journal(
            &format!("the fact {key}"),
            Entry::Fact {
                step: self.step_ref.to_string(),
                key,
                value: value.into(),
            },
        )
        .await
    }

    /// The directory for what this run keeps (backups), created 0700 on first use.
    pub fn backups_dir(&self) -> Result<PathBuf, ActionError> {
        let dir = self.run_dir.join(crate::engine::rundir::BACKUPS_DIR);
        crate::engine::rundir::create_private_dir(&dir).map_err(|source| ActionError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    pub fn executor(&self, name: &str) -> Result<Arc<dyn Executor>, ActionError> {
        self.executors
            .get(name)
            .cloned()
            .ok_or_else(|| ActionError::UnknownExecutor {
                name: name.to_string(),
                known: self
                    .executors
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Runs one command on its executor (`local` when it names none), streaming its
    /// output into the log. `env` reaches the command's environment, never its argv; a
    /// command placed on a node also gets `KONGUP_NODE` (the node's name).
    pub async fn run_command(
        &self,
        spec: &CommandSpec,
        mut env: Vec<(String, String)>,
    ) -> Result<ExitOutcome, ActionError> {
        // The plan loader refuses these too; a plan built another way must not slip by.
        crate::kong::migrations::check_command(&spec.program)
            .map_err(|forbidden| ActionError::Failed(forbidden.to_string()))?;
        let executor = self.executor(spec.executor.as_deref().unwrap_or("local"))?;
        let timeout = spec.timeout.unwrap_or(self.plan.command_timeout);
        let place = match &spec.node {
            Some(node) => {
                env.push((NODE_VARIABLE.to_string(), node.clone()));
                format!("{node} ({})", executor.describe())
            }
            None => executor.describe(),
        };
        self.log.note(&format!(
            "$ {}   [on {place}, timeout {}]",
            spec.program.display(),
            humantime::format_duration(timeout)
        ));
        let (lines_tx, mut lines_rx) = mpsc::channel::<crate::exec::OutputLine>(256);
        let request = ExecRequest {
            command: spec.program.clone(),
            env,
            timeout,
        };
        let sink = self.log.clone();
        let forward = async move {
            while let Some(line) = lines_rx.recv().await {
                sink.line(line.stream, &line.text);
            }
        };
        let (outcome, ()) = tokio::join!(
            executor.run(request, lines_tx, self.cancel.clone()),
            forward
        );
        Ok(outcome?)
    }

    /// Sets the traffic split through the driver and reads it back, journaling the
    /// request before it is made and the answer after. One driver call at a time; once a
    /// rollback is requested, a forward step's call is refused (the rollback's split is
    /// the last word). The operator's abort stops the call.
    pub async fn set_traffic(&self, split: Split) -> Result<TrafficReadback, ActionError> {
        self.log.note(&format!(
            "setting the split to {split} through {}",
            self.traffic_path.driver.describe()
        ));
        let mover = if self.rollback.is_some() {
            Mover::Rollback
        } else {
            Mover::Forward
        };
        self.traffic_path
            .set(
                split,
                self.step_ref.to_string(),
                mover,
                &self.journal,
                &self.events,
                &self.cancel,
            )
            .await
    }

    /// Counts a bake down (an `Event::Bake` a second) while watching gate verdicts: a
    /// failing verdict ends it at once; at its end the last fresh verdict decides.
    /// Verdicts are fresh when evaluated after the bake began; each is journaled.
    pub async fn bake(&self, duration: Duration) -> Result<BakeResult, ActionError> {
        let began = Utc::now();
        let deadline = tokio::time::Instant::now() + duration;
        let mut gates = self.gates.clone();
        let had_gates = gates.is_some();
        if let Some(rx) = &mut gates {
            rx.borrow_and_update();
        }
        let mut latest: Option<GateVerdict> = None;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        self.log.note(&format!(
            "baking for {}{}",
            humantime::format_duration(duration),
            if had_gates {
                " with the gates on"
            } else {
                " (no gate source: the bake only counts down)"
            }
        ));
        let rollback = self.traffic_path.rollback.clone();
        let _baking = BakeMark::new(&self.traffic_path.bakes);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(BakeResult::Cancelled),
                _ = rollback.cancelled() => return Ok(BakeResult::StoppedByRollback),
                _ = tokio::time::sleep_until(deadline) => break,
                _ = ticks.tick() => {
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    self.emit(Event::Bake {
                        step: self.step_ref.clone(),
                        remaining_secs: remaining.as_secs_f64().ceil() as u64,
                    });
                }
                changed = next_verdict(&mut gates) => match changed {
                    Some(Some(verdict)) if verdict.at >= began => {
                        self.journal("a gate verdict", Entry::Gate {
                            step: self.step_ref.to_string(),
                            gate: gate_record(&verdict),
                        }).await?;
                        if verdict.verdict == Verdict::Fail {
                            return Ok(BakeResult::Failed(verdict));
                        }
                        latest = Some(verdict);
                    }
                    Some(_) => {}
                    None => {
                        gates = None;
                        self.log.note("the gate source stopped: the bake cannot pass its gates");
                    }
                },
            }
        }
        self.emit(Event::Bake {
            step: self.step_ref.clone(),
            remaining_secs: 0,
        });
        Ok(match latest {
            _ if !had_gates => BakeResult::NoGates,
            Some(v) if v.verdict == Verdict::Pass => BakeResult::Passed(v),
            other => BakeResult::Inconclusive(other),
        })
    }
}

/// Counts a bake as under way for as long as it lives.
struct BakeMark(Arc<std::sync::atomic::AtomicUsize>);

impl BakeMark {
    fn new(bakes: &Arc<std::sync::atomic::AtomicUsize>) -> BakeMark {
        bakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        BakeMark(bakes.clone())
    }
}

impl Drop for BakeMark {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The next verdict from the source; `None` when the source is gone (never resolves
/// when there is no source).
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

pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Fail => "fail",
    }
}

pub fn gate_record(verdict: &GateVerdict) -> GateRecord {
    GateRecord {
        evaluated_at: verdict.at,
        verdict: verdict_name(verdict.verdict).to_string(),
        checks: verdict.checks.clone(),
        requests_in_window: verdict.requests_in_window,
        consecutive_breaches: verdict.consecutive_breaches,
        figures: Some(verdict.figures),
    }
}

/// Says how a command ended, for a step's detail.
pub fn describe_exit(outcome: ExitOutcome, timeout: Duration) -> String {
    match outcome {
        ExitOutcome::Exited(code) => format!("exit status {code}"),
        ExitOutcome::Signalled(signal) => format!("killed by signal {signal}"),
        ExitOutcome::TimedOut => format!(
            "timed out after {} (its process group was killed)",
            humantime::format_duration(timeout)
        ),
        ExitOutcome::Aborted => "aborted by the operator (its process group was killed)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_that_stops_taking_writes_never_blocks_the_step() {
        // A pipe nobody reads: after its buffer fills, every write to it blocks.
        let (read, write) = nix::unistd::pipe().unwrap();
        let (events, _events_rx) = mpsc::unbounded_channel();
        let sink = LogSink::new(
            "cluster/a".into(),
            Some(std::fs::File::from(write)),
            Arc::new(Redactor::default()),
            events,
        );
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let line = "x".repeat(1000);
            for _ in 0..1000 {
                sink.line(LogStream::Stdout, &line);
            }
            let _ = done_tx.send(sink.tail().len());
        });
        let kept = done_rx.recv_timeout(Duration::from_secs(10));
        drop(read);
        assert_eq!(
            kept.expect("1 MB of output into a log nobody drains blocked the step"),
            TAIL_LINES
        );
    }
}

//! Shared by the engine tests: plans built in code, a traffic driver that remembers, a
//! stand-in action scripted per step, and a harness that collects events and waits for
//! conditions with a deadline.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kongup::engine::journal::{Entry, JOURNAL_FILE, Record, read_journal};
use kongup::engine::step::{ActionError, ActionFor, StepAction, StepContext, StepOutcome};
use kongup::engine::{
    Command, EngineError, Event, Operator, RunOptions, RunSetup, SessionEnd, StepState, Toolbox,
};
use kongup::exec::local::LocalExecutor;
use kongup::lb::{LbError, Split, TrafficDriver};
use kongup::plan::model::*;
use kongup::plan::steps::*;
use kongup::plan::version::KongVersion;
use kongup::secrets::Redactor;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn plan_named(name: &str) -> Plan {
    Plan {
        name: name.to_string(),
        from: KongVersion::new(3, 4, 0),
        to: KongVersion::new(3, 10, 0),
        mode: Mode::Traditional,
        database: DatabaseKind::Postgres,
        edition: None,
        strategy: StrategyChoice::Fixed(Strategy::InPlace),
        clusters: Clusters {
            x: Cluster {
                nodes: vec![],
                database: None,
            },
            y: Cluster {
                nodes: vec![],
                database: None,
            },
        },
        admin: AdminAccess::default(),
        executors: BTreeMap::from([("local".to_string(), ExecutorSpec::Local)]),
        traffic: TrafficSpec {
            driver: TrafficDriverSpec::Manual,
            driver_given: false,
            schedule: vec![50, 100],
            bake: Duration::from_secs(1),
            auto_advance: false,
        },
        gates: GateSpec {
            window: Duration::from_secs(30),
            max_error_ratio: Some(0.01),
            max_p99_ms: None,
            max_error_ratio_delta: None,
            max_p99_ratio: None,
            min_requests: 10,
            consecutive_breaches: 2,
            on_fail: FailAction::Pause,
        },
        smoke_tests: vec![],
        migrations: MigrationsSpec {
            kong_binary: "kong".into(),
            extra_args: vec![],
            db_timeout: 60,
            force: false,
            timeout: Duration::from_secs(600),
        },
        backup: BackupSpec::default(),
        steps: StepCustomisation::default(),
        command_timeout: Duration::from_secs(60),
        notify: Default::default(),
        rolling: None,
    }
}

pub fn step(id: &str, kind: StepKind) -> Step {
    Step {
        id: id.to_string(),
        guide_ref: "1".into(),
        title: format!("Step {id}"),
        instruction: format!("Do {id}."),
        kind,
        changes: true,
        irreversible: false,
        irreversible_because: None,
        rollback: None,
        commands: vec![],
        builtin: true,
        skip_reason: None,
    }
}

/// A step the stand-in action runs.
pub fn scripted(id: &str) -> Step {
    step(
        id,
        StepKind::StartNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
    )
}

pub fn with_rollback(mut step: Step, kind: RollbackKind) -> Step {
    step.rollback = Some(RollbackAction {
        title: format!("Undo {}", step.id),
        instruction: format!("Undo {}.", step.id),
        irreversible: kind == RollbackKind::RestoreDatabase,
        kind,
    });
    step
}

pub fn shell_command(script: &str) -> CommandSpec {
    CommandSpec {
        program: CommandLine::Shell(script.to_string()),
        executor: None,
        timeout: None,
        node: None,
    }
}

pub fn expanded(strategy: Strategy, steps: Vec<Step>) -> ExpandedPlan {
    ExpandedPlan {
        phases: vec![Phase {
            name: PhaseName::Cluster,
            strategy,
            steps,
        }],
        strategy_reason: "chosen by the test".into(),
        warnings: vec![],
    }
}

pub fn cluster(id: &str) -> StepRef {
    StepRef::new(PhaseName::Cluster, id)
}

pub fn rollback_ref(id: &str) -> StepRef {
    StepRef::new(PhaseName::Rollback, id)
}

/// A load balancer that remembers the split; it can be told to misreport or to go blind.
#[derive(Default)]
pub struct FakeDriver {
    pub split: Mutex<Option<Split>>,
    pub sets: Mutex<Vec<Split>>,
    pub blind: bool,
    pub misreport: Option<Split>,
    /// How long setting a split takes.
    pub delay: Option<Duration>,
    /// A slow first read: the split is read at once (`first_read_waiting` is notified),
    /// then answered when this is notified (`first_read_answered` is notified after), as a
    /// load balancer that answers late does. Later reads answer at once.
    pub first_read_gate: Option<Arc<Notify>>,
    pub first_read_waiting: Arc<Notify>,
    pub first_read_answered: Arc<Notify>,
    pub reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl TrafficDriver for FakeDriver {
    fn describe(&self) -> String {
        "the test's load balancer".into()
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        self.sets.lock().unwrap().push(split);
        *self.split.lock().unwrap() = Some(split);
        Ok(())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        if self.blind {
            return Ok(None);
        }
        let split = self.misreport.or(*self.split.lock().unwrap());
        let first = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        if let Some(gate) = self.first_read_gate.as_ref().filter(|_| first) {
            let answer = gate.notified();
            self.first_read_waiting.notify_one();
            answer.await;
            self.first_read_answered.notify_one();
        }
        Ok(split)
    }
}

#[derive(Clone)]
pub enum Behavior {
    Succeed,
    Fail(&'static str),
    /// Runs until released, or until aborted.
    Block(Arc<Notify>),
    /// Prints a line (to test redaction), records a fact, succeeds.
    Print(String),
}

/// The stand-in action: what it does is scripted per step id; it counts its runs.
#[derive(Default)]
pub struct StandIn {
    pub script: Mutex<HashMap<String, Behavior>>,
    pub runs: Mutex<Vec<String>>,
}

impl StandIn {
    pub fn set(&self, id: &str, behavior: Behavior) {
        self.script.lock().unwrap().insert(id.to_string(), behavior);
    }

    pub fn runs_of(&self, id: &str) -> usize {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| *r == id)
            .count()
    }
}

#[async_trait::async_trait]
impl StepAction for StandIn {
    fn describe(&self, step: &Step, _plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        vec![format!("the stand-in action for {}", step.id)]
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        self.runs.lock().unwrap().push(ctx.step.id.clone());
        let behavior = self
            .script
            .lock()
            .unwrap()
            .get(&ctx.step.id)
            .cloned()
            .unwrap_or(Behavior::Succeed);
        match behavior {
            Behavior::Succeed => Ok(StepOutcome::succeeded("stand-in done")),
            Behavior::Fail(why) => Ok(StepOutcome::failed(why)),
            Behavior::Block(release) => {
                ctx.log.note("blocking until released");
                tokio::select! {
                    _ = release.notified() => Ok(StepOutcome::succeeded("released")),
                    _ = ctx.cancel.cancelled() => Ok(StepOutcome::failed("aborted by the operator")),
                }
            }
            Behavior::Print(text) => {
                ctx.log
                    .line(kongup::engine::event::LogStream::Stdout, &text);
                ctx.record_fact("printed", text).await?;
                Ok(StepOutcome::succeeded("printed a line"))
            }
        }
    }
}

pub struct Kit {
    pub driver: Arc<FakeDriver>,
    pub stand_in: Arc<StandIn>,
    pub toolbox: Toolbox,
}

pub fn kit_with(driver: FakeDriver, redactor: Redactor) -> Kit {
    let driver = Arc::new(driver);
    let stand_in = Arc::new(StandIn::default());
    let mut toolbox = Toolbox::new(driver.clone(), redactor, kongup::actions::builtins(None))
        .with_executor("local", Arc::new(LocalExecutor::new()));
    toolbox.actions.register(
        |t| {
            matches!(
                t,
                ActionFor::Step(StepKind::StartNodes { .. })
                    | ActionFor::Step(StepKind::Migrations(_))
                    | ActionFor::Rollback(RollbackKind::StopNodes { .. })
                    | ActionFor::Rollback(RollbackKind::RestoreDatabase)
            )
        },
        stand_in.clone(),
    );
    Kit {
        driver,
        stand_in,
        toolbox,
    }
}

pub fn kit() -> Kit {
    kit_with(FakeDriver::default(), Redactor::default())
}

pub fn setup(
    dir: &Path,
    plan: Plan,
    expanded: ExpandedPlan,
    plan_text: &str,
    toolbox: Toolbox,
) -> RunSetup {
    RunSetup {
        plan: Arc::new(plan),
        expanded: Arc::new(expanded),
        plan_text: plan_text.to_string(),
        run_dir: dir.join("run"),
        operator: Operator("alice@test".into()),
        toolbox,
        options: RunOptions::default(),
        side_events: None,
        lock: None,
    }
}

/// A running engine whose events are collected as they come.
pub struct TestRun {
    pub commands: mpsc::Sender<Command>,
    pub events: Arc<Mutex<Vec<Event>>>,
    arrived: Arc<Notify>,
    cursor: usize,
    pub task: JoinHandle<Result<SessionEnd, EngineError>>,
    pub run_dir: PathBuf,
}

impl TestRun {
    pub fn start(setup: RunSetup) -> TestRun {
        let handle = kongup::engine::spawn(setup).expect("the engine starts");
        let events = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (sink, notify) = (events.clone(), arrived.clone());
        let mut rx = handle.events;
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                sink.lock().unwrap().push(event);
                notify.notify_waiters();
            }
        });
        TestRun {
            commands: handle.commands,
            events,
            arrived,
            cursor: 0,
            task: handle.task,
            run_dir: handle.run_dir,
        }
    }

    pub async fn send(&self, command: Command) {
        self.commands
            .send(command)
            .await
            .expect("the engine listens");
    }

    /// Waits for the next event (after the last one matched) that satisfies `pred`.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.arrived.notified();
            {
                let events = self.events.lock().unwrap();
                if let Some(offset) = events[self.cursor..].iter().position(&pred) {
                    let found = events[self.cursor + offset].clone();
                    self.cursor += offset + 1;
                    return found;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; events so far: {:#?}",
                    self.events.lock().unwrap()
                );
            }
        }
    }

    /// Waits until any event so far satisfies `pred`, wherever it is; the cursor stays.
    pub async fn wait_seen(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let notified = self.arrived.notified();
            if let Some(found) = self.events.lock().unwrap().iter().find(|e| pred(e)) {
                return found.clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; events so far: {:#?}",
                    self.events.lock().unwrap()
                );
            }
        }
    }

    /// Confirms `step` (no typed confirmation).
    pub async fn confirm(&self, step: &StepRef) {
        self.send(Command::Confirm {
            step: step.clone(),
            typed: None,
        })
        .await;
    }

    /// Retries `step` (no typed confirmation).
    pub async fn retry(&self, step: &StepRef) {
        self.send(Command::Retry {
            step: step.clone(),
            typed: None,
        })
        .await;
    }

    /// Confirms `step` and waits until it becomes `state` (running, or how it ended);
    /// returns the step's detail then.
    pub async fn confirm_and_wait(&mut self, step: &StepRef, state: StepState) -> Option<String> {
        self.confirm(step).await;
        self.wait_step(step, state).await
    }

    /// The engine dies without a word, as under kill -9 (its lock goes with it).
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    pub async fn wait_step(&mut self, step: &StepRef, state: StepState) -> Option<String> {
        let what = format!("{step} to become {}", state.as_str());
        match self
            .wait_for(&what, |e| {
                matches!(e, Event::StepChanged { step: s, state: st, .. } if s == step && *st == state)
            })
            .await
        {
            Event::StepChanged { detail, .. } => detail,
            _ => unreachable!(),
        }
    }

    /// A warning, or a refusal of a command, that says `containing`.
    pub async fn wait_warning(&mut self, containing: &str) -> String {
        match self
            .wait_for(
                &format!("a warning with '{containing}'"),
                |e| matches!(e, Event::Warning(w) | Event::Refused(w) if w.contains(containing)),
            )
            .await
        {
            Event::Warning(w) | Event::Refused(w) => w,
            _ => unreachable!(),
        }
    }

    pub fn journal(&self) -> Vec<Record> {
        read_journal(&self.run_dir.join(JOURNAL_FILE))
            .expect("the journal reads")
            .records
    }

    pub async fn quit(self) -> SessionEnd {
        self.send(Command::Quit).await;
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the engine stops")
            .expect("the engine task does not panic")
            .expect("the engine ends cleanly")
    }
}

/// Starts the run of `setup`, confirms its cluster step `id` (scripted to block until the
/// engine is gone) and crashes the engine while the step runs.
pub async fn crash_while_running(setup: RunSetup, stand_in: &StandIn, id: &str) {
    stand_in.set(id, Behavior::Block(Arc::new(Notify::new())));
    let mut run = TestRun::start(setup);
    run.confirm_and_wait(&cluster(id), StepState::Running).await;
    run.crash().await;
}

pub fn entries(records: &[Record]) -> Vec<&Entry> {
    records.iter().map(|r| &r.entry).collect()
}

/// The position of the first record that satisfies `pred`.
pub fn position(records: &[Record], pred: impl Fn(&Entry) -> bool) -> Option<usize> {
    records.iter().position(|r| pred(&r.entry))
}

#[derive(Clone, Default)]
/// What `--plain` printed, shared with the test.
pub struct SharedOut(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedOut {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub async fn wait_for(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !self.text().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for '{needle}' in:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

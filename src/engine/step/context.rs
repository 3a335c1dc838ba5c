//! What a running step may use ([`StepContext`]), and the engine's services it reaches
//! through it: running a command, moving traffic, baking with the gates on, journaling a
//! fact.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{
    ActionError, JournalRequest, LogSink, Mover, RollbackOf, TrafficPath, TrafficReadback,
    gate_record, journal_through,
};
use crate::engine::event::{Event, EventSender};
use crate::engine::journal::Entry;
use crate::exec::{ExecRequest, Executor, ExitOutcome, HostOutcome};
use crate::lb::{Split, TrafficDriver};
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::{CommandSpec, Plan};
use crate::plan::steps::{ExpandedPlan, Step, StepRef};
use crate::secrets::Redactor;

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

/// Everything a running step may use. Owned, because the step runs in its own task while
/// the engine keeps taking commands.
pub struct StepContext {
    pub step_ref: StepRef,
    pub step: Step,
    /// Set for a rollback step: what it undoes, and how.
    pub rollback: Option<RollbackOf>,
    pub attempt: u32,
    /// A wave's node step retried or resumed: the nodes its commands already ran on, to
    /// exit 0 (their `NodeOutcome` records); they are not run there again.
    pub nodes_done: std::collections::BTreeSet<String>,
    /// The nodes taken out of their wave so far in the run (`NodeTakenOut`), each with what
    /// to say of it: no command runs on them and no wait is for them.
    pub taken_out: BTreeMap<String, String>,
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
    pub(crate) events: EventSender,
    /// The nodes that failed in this attempt, each with why (what `record_node` journaled).
    pub(crate) nodes_failed: std::sync::Mutex<BTreeMap<String, String>>,
}

/// The environment variable that names the node a command was placed on.
pub const NODE_VARIABLE: &str = "KONGUP_NODE";

impl StepContext {
    /// A forward step that starts or stops one wave's nodes: a node that fails there fails
    /// alone (the others go on), each node's outcome is journaled, and a retry or a resume
    /// runs only the nodes not done. A rollback's copy of such a step acts on the whole wave.
    pub fn in_wave_node_step(&self) -> bool {
        self.rollback.is_none() && self.step.kind.is_wave_node_step()
    }

    /// Sends an event to the console; a warning's text is redacted on the way.
    pub fn emit(&self, event: Event) {
        let event = match event {
            Event::Warning(text) => Event::Warning(self.redactor.redact(&text).into_owned()),
            other => other,
        };
        self.events.send(event);
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

    /// Records how the step ended on `node` (a wave's node step): `Ok` once its commands
    /// there exited 0, `Err(why)` when it failed there.
    pub async fn record_node(
        &self,
        node: &str,
        outcome: Result<(), String>,
    ) -> Result<(), ActionError> {
        // The journal redacts the reason as it writes it.
        let (ok, reason) = match outcome {
            Ok(()) => (true, None),
            Err(why) => (false, Some(why)),
        };
        {
            let mut failed = self
                .nodes_failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &reason {
                Some(why) => failed.insert(node.to_string(), why.clone()),
                None => failed.remove(node),
            };
        }
        self.journal(
            &format!("the outcome on {node}"),
            Entry::NodeOutcome {
                step: self.step_ref.to_string(),
                attempt: self.attempt,
                node: node.to_string(),
                ok,
                reason,
            },
        )
        .await
    }

    /// The nodes that failed in this attempt so far, each with why.
    pub fn nodes_failed(&self) -> BTreeMap<String, String> {
        self.nodes_failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
        let (lines_tx, lines_rx) = mpsc::channel::<crate::exec::OutputLine>(256);
        let request = ExecRequest {
            command: spec.program.clone(),
            env,
            timeout,
        };
        let (outcome, ()) = tokio::join!(
            executor.run(request, lines_tx, self.cancel.clone()),
            self.log.take_output(lines_rx)
        );
        Ok(outcome?)
    }

    /// Runs one command placed on several nodes that share an executor (the copies
    /// `plan::placement` made, each naming its node) as one run of the executor's
    /// `run_per_host`: for `ansible`, one invocation limited to those hosts. The output
    /// streams into the log, each host's lines named by it.
    pub async fn run_command_on_nodes(
        &self,
        copies: &[CommandSpec],
        env: Vec<(String, String)>,
    ) -> Result<Vec<HostOutcome>, ActionError> {
        let Some(first) = copies.first() else {
            return Ok(Vec::new());
        };
        crate::kong::migrations::check_command(&first.program)
            .map_err(|forbidden| ActionError::Failed(forbidden.to_string()))?;
        let executor = self.executor(first.executor.as_deref().unwrap_or("local"))?;
        let timeout = first.timeout.unwrap_or(self.plan.command_timeout);
        let hosts: Vec<String> = copies.iter().filter_map(|c| c.node.clone()).collect();
        self.log.note(&format!(
            "$ {}   [on {} nodes ({}) through {}, timeout {}]",
            first.program.display(),
            hosts.len(),
            super::commands::some_nodes(&hosts),
            executor.describe(),
            humantime::format_duration(timeout)
        ));
        let (lines_tx, lines_rx) = mpsc::channel::<crate::exec::OutputLine>(256);
        let request = ExecRequest {
            command: first.program.clone(),
            env,
            timeout,
        };
        let (outcomes, ()) = tokio::join!(
            executor.run_per_host(&hosts, request, lines_tx, self.cancel.clone()),
            self.log.take_output(lines_rx)
        );
        Ok(outcomes?)
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

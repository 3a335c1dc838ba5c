//! A resumed demo (or rehearsal) starts a fresh lab, which knows nothing of the run so far.
//! Before the engine starts, the lab is brought to the state the journal implies: every
//! step that succeeded (or that the operator marked done) is replayed on the lab without
//! waiting, in the order the steps became done — its built-in action's twin (see
//! [`super::twins`]: a database backup filed again, a restore, `kong migrations`, nodes
//! brought where the step leaves them) and its commands, in the order the engine ran them —
//! then the last traffic split the journal recorded is set on the lab's balancer.
//!
//! Steps that failed or were interrupted are not replayed: how far they got is the
//! operator's call, as on a real run (retry, mark done, or roll back).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::actions::kong::facts::{DATABASE_BACKUP, RecordedBackup};
use crate::engine::journal::{
    Entry, JOURNAL_FILE, Record, StepResult, parse_step_key, read_journal,
};
use crate::engine::rollback::rollback_step;
use crate::engine::step::NODE_VARIABLE;
use crate::engine::step_details;
use crate::engine::view::RunView;
use crate::exec::{ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::kong::migrations::build_command;
use crate::lb::{Split, TrafficDriver};
use crate::plan::model::{CommandLine, Plan};
use crate::plan::placement::step_nodes;
use crate::plan::steps::{
    BackupKind, ClusterSide, ExpandedPlan, PhaseName, RollbackKind, Step, StepKind, StepRef,
};
use crate::sim::Lab;

use super::DemoError;
use super::database::LabDatabase;
use super::twins::{node_goal, node_names, node_twin, rollback_as_step};

/// What rebuilding the lab did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rebuilt {
    /// The steps replayed, in order.
    pub replayed: Vec<StepRef>,
    /// The split set on the balancer, when the journal had one.
    pub split: Option<Split>,
    /// What could not be replayed as the journal says: the lab may differ there.
    pub warnings: Vec<String>,
}

/// A replayed command runs without waiting; this only bounds a command that never ends.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// One command to run again, where.
struct Replay {
    program: CommandLine,
    executor: String,
    node: Option<String>,
}

/// The steps the journal says are done, in the order they became done, each with the
/// database backup the journal knew of by then.
fn done_steps(records: &[Record], run_dir: &Path) -> Vec<(String, Option<PathBuf>)> {
    let mut done: Vec<(String, Option<PathBuf>)> = Vec::new();
    let mut backup: Option<PathBuf> = None;
    for record in records {
        let step = match &record.entry {
            Entry::Fact { key, value, .. } if key == DATABASE_BACKUP => {
                if let Ok(recorded) = serde_json::from_str::<RecordedBackup>(value) {
                    backup = Some(run_dir.join(recorded.file));
                }
                continue;
            }
            Entry::StepFinished {
                step,
                result: StepResult::Succeeded,
                ..
            }
            | Entry::StepMarkedDone { step, .. } => step,
            _ => continue,
        };
        // A step done twice (retried, then marked done) acted once.
        if !done.iter().any(|(s, _)| s == step) {
            done.push((step.clone(), backup.clone()));
        }
    }
    done
}

/// Everything a replay reaches.
struct Rebuild<'a> {
    lab: &'a Lab,
    plan: &'a Plan,
    expanded: &'a ExpandedPlan,
    executors: &'a BTreeMap<String, Arc<dyn Executor>>,
    rebuilt: Rebuilt,
}

impl Rebuild<'_> {
    fn lab_wide(&self, argv: &[&str]) -> Replay {
        Replay {
            program: CommandLine::Argv(argv.iter().map(|a| a.to_string()).collect()),
            executor: "local".to_string(),
            node: None,
        }
    }

    fn database_name(&self, side: ClusterSide) -> Option<String> {
        LabDatabase::of(self.lab, side).map(|d| d.name().to_string())
    }

    /// `pg_restore` of the backup into the database of `side`.
    fn restore(&mut self, key: &str, side: ClusterSide, backup: Option<&Path>) -> Vec<Replay> {
        let (Some(database), Some(backup)) = (self.database_name(side), backup) else {
            self.rebuilt.warnings.push(format!(
                "{key}: no database backup in the journal to restore from"
            ));
            return Vec::new();
        };
        let file = backup.display().to_string();
        vec![self.lab_wide(&[
            "pg_restore",
            "--clean",
            "--if-exists",
            "-d",
            &database,
            &file,
        ])]
    }

    /// What the built-in action of a forward step did, as lab commands (run before the
    /// step's own commands).
    fn action_twin(
        &mut self,
        key: &str,
        phase: PhaseName,
        step: &Step,
        backup: Option<&Path>,
    ) -> Vec<Replay> {
        match step.kind {
            StepKind::Backup(BackupKind::Database) => {
                // The file is in the run directory already; the lab takes back its dump.
                if let (Some(database), Some(path)) =
                    (LabDatabase::of(self.lab, ClusterSide::X), backup)
                    && let Err(e) = database.adopt_dump(path)
                {
                    self.rebuilt.warnings.push(format!("{key}: {e}"));
                }
                Vec::new()
            }
            StepKind::RestoreDatabase => self.restore(key, ClusterSide::Y, backup),
            StepKind::Migrations(command) => {
                let node = step_nodes(self.plan, phase, &step.kind).first().copied();
                vec![Replay {
                    program: build_command(&self.plan.migrations, command),
                    executor: node
                        .and_then(|n| n.executor.clone())
                        .unwrap_or_else(|| "local".to_string()),
                    node: node.map(|n| n.name.clone()),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// Where a node step leaves its nodes, as a lab command (run after the step's commands;
    /// nothing when they are there already).
    fn node_twin(&self, phase: PhaseName, kind: &StepKind) -> Option<Replay> {
        let goal = node_goal(self.expanded, phase, kind)?;
        let nodes = node_names(self.plan, phase, kind);
        node_twin(self.lab, goal, &nodes).map(|program| Replay {
            program,
            executor: "local".to_string(),
            node: None,
        })
    }

    async fn run(&mut self, key: &str, replay: Replay) {
        let Some(executor) = self.executors.get(&replay.executor) else {
            self.rebuilt.warnings.push(format!(
                "{key}: no executor '{}' to replay `{}` on",
                replay.executor,
                replay.program.display()
            ));
            return;
        };
        let env = replay
            .node
            .iter()
            .map(|node| (NODE_VARIABLE.to_string(), node.clone()))
            .collect();
        let outcome = run_quietly(
            executor.as_ref(),
            ExecRequest {
                command: replay.program.clone(),
                env,
                timeout: REPLAY_TIMEOUT,
            },
        )
        .await;
        if outcome != Some(ExitOutcome::Exited(0)) {
            self.rebuilt.warnings.push(format!(
                "{key}: replaying `{}` on {} did not succeed ({}); the lab may differ from \
                 the journal there",
                replay.program.display(),
                replay.executor,
                outcome.map_or_else(|| "the executor failed".to_string(), |o| format!("{o:?}"))
            ));
        }
    }

    async fn replay_step(&mut self, key: &str, step_ref: &StepRef, backup: Option<&Path>) {
        let Some(step) = step_details(self.expanded, step_ref) else {
            self.rebuilt.warnings.push(format!(
                "{key} is done in the journal but not in the plan: the lab does not replay it"
            ));
            return;
        };
        let commands: Vec<Replay> = step
            .commands
            .iter()
            .map(|c| Replay {
                program: c.program.clone(),
                executor: c.executor.clone().unwrap_or_else(|| "local".to_string()),
                node: c.node.clone(),
            })
            .collect();
        let (before, after_phase_kind) = match rollback_step(self.expanded, step_ref) {
            Some(rollback) => {
                let phase = rollback.undoes.as_ref().map_or(step_ref.phase, |s| s.phase);
                let before = match rollback.kind {
                    RollbackKind::RestoreDatabase => self.restore(key, ClusterSide::X, backup),
                    _ => Vec::new(),
                };
                (before, rollback_as_step(&rollback.kind).map(|k| (phase, k)))
            }
            None => (
                self.action_twin(key, step_ref.phase, &step, backup),
                Some((step_ref.phase, step.kind.clone())),
            ),
        };
        for replay in before.into_iter().chain(commands) {
            self.run(key, replay).await;
        }
        if let Some((phase, kind)) = after_phase_kind
            && let Some(replay) = self.node_twin(phase, &kind)
        {
            self.run(key, replay).await;
        }
        self.rebuilt.replayed.push(step_ref.clone());
    }
}

/// Rebuilds the lab from the journal in `run_dir` (nothing to do for a new run).
/// `executors` are the run's lab executors at infinite speed.
pub async fn rebuild_from_journal(
    lab: &Lab,
    plan: &Plan,
    expanded: &ExpandedPlan,
    run_dir: &Path,
    executors: &BTreeMap<String, Arc<dyn Executor>>,
) -> Result<Rebuilt, DemoError> {
    let path = run_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Ok(Rebuilt::default());
    }
    let contents = read_journal(&path)?;
    let mut rebuild = Rebuild {
        lab,
        plan,
        expanded,
        executors,
        rebuilt: Rebuilt::default(),
    };
    for (key, backup) in done_steps(&contents.records, run_dir) {
        let Some(step_ref) = parse_step_key(&key) else {
            continue;
        };
        rebuild
            .replay_step(&key, &step_ref, backup.as_deref())
            .await;
    }
    let mut rebuilt = rebuild.rebuilt;
    if let Some(view) = RunView::replay(&contents.records)
        && let Some(split) = view.traffic()
    {
        lab.traffic_driver()
            .set_split(split)
            .await
            .map_err(|error| {
                DemoError::Rebuild(format!(
                    "could not set the lab's balancer to {split}, the journal's last split: {error}"
                ))
            })?;
        rebuilt.split = Some(split);
    }
    Ok(rebuilt)
}

/// Runs a command and drops its output (a replay is silent); `None` if the executor failed.
async fn run_quietly(executor: &dyn Executor, request: ExecRequest) -> Option<ExitOutcome> {
    let (tx, mut rx) = mpsc::channel::<OutputLine>(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let outcome = executor
        .run(request, tx, CancellationToken::new())
        .await
        .ok();
    let _ = drain.await;
    outcome
}

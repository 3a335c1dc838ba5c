//! A resumed demo (or rehearsal) starts a fresh lab, which knows nothing of the run so far.
//! Before the engine starts, the lab is brought to the state the journal implies: the
//! commands of every step that succeeded (or that the operator marked done), in the order
//! they finished, run again on the lab without waiting, then the last traffic split the
//! journal recorded is set on the lab's balancer.
//!
//! Steps that failed or were interrupted are not replayed: how far they got is the
//! operator's call, as on a real run (retry, mark done, or roll back).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::journal::{Entry, JOURNAL_FILE, StepResult, parse_step_key, read_journal};
use crate::engine::step_details;
use crate::engine::view::RunView;
use crate::exec::{ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::lb::{Split, TrafficDriver};
use crate::plan::steps::{ExpandedPlan, StepRef};

use super::DemoError;

/// What rebuilding the lab did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rebuilt {
    /// The steps whose commands ran again, in order.
    pub replayed: Vec<StepRef>,
    /// The split set on the balancer, when the journal had one.
    pub split: Option<Split>,
    /// Replayed commands that did not exit 0: the lab may differ from the journal there.
    pub warnings: Vec<String>,
}

/// A replayed command runs without waiting; this only bounds a command that never ends.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// The steps the journal says are done, in the order they became done.
fn done_steps(records: &[crate::engine::journal::Record]) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    for record in records {
        let step = match &record.entry {
            Entry::StepFinished {
                step,
                result: StepResult::Succeeded,
                ..
            } => step,
            Entry::StepMarkedDone { step, .. } => step,
            _ => continue,
        };
        // A step done twice (a retried step marked done, say) acted once.
        if !done.contains(step) {
            done.push(step.clone());
        }
    }
    done
}

/// Rebuilds the lab from the journal in `run_dir` (nothing to do for a new run).
/// `executors` are the run's lab executors at infinite speed; `traffic` the run's driver.
pub async fn rebuild_from_journal(
    run_dir: &Path,
    expanded: &ExpandedPlan,
    executors: &BTreeMap<String, Arc<dyn Executor>>,
    traffic: &dyn TrafficDriver,
) -> Result<Rebuilt, DemoError> {
    let path = run_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Ok(Rebuilt::default());
    }
    let contents = read_journal(&path)?;
    let mut rebuilt = Rebuilt::default();
    for key in done_steps(&contents.records) {
        let Some(step_ref) = parse_step_key(&key) else {
            continue;
        };
        let Some(step) = step_details(expanded, &step_ref) else {
            rebuilt.warnings.push(format!(
                "{key} is done in the journal but not in the plan: the lab does not replay it"
            ));
            continue;
        };
        for command in &step.commands {
            let name = command.executor.as_deref().unwrap_or("local");
            let Some(executor) = executors.get(name) else {
                rebuilt.warnings.push(format!(
                    "{key}: no executor '{name}' to replay `{}` on",
                    command.program.display()
                ));
                continue;
            };
            let mut env = Vec::new();
            if let Some(node) = &command.node {
                env.push((crate::actions::NODE_VARIABLE.to_string(), node.clone()));
            }
            let outcome = run_quietly(
                executor.as_ref(),
                ExecRequest {
                    command: command.program.clone(),
                    env,
                    timeout: REPLAY_TIMEOUT,
                },
            )
            .await;
            if outcome != Some(ExitOutcome::Exited(0)) {
                rebuilt.warnings.push(format!(
                    "{key}: replaying `{}` on {name} did not succeed ({}); the lab may differ \
                     from the journal there",
                    command.program.display(),
                    outcome.map_or_else(|| "the executor failed".to_string(), |o| format!("{o:?}"))
                ));
            }
        }
        rebuilt.replayed.push(step_ref);
    }
    if let Some(view) = RunView::replay(&contents.records)
        && let Some(split) = view.traffic()
    {
        traffic.set_split(split).await.map_err(|error| {
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

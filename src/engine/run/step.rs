//! A step's start and end: the confirm's step started on a task of its own (its action,
//! then its plan commands), its outcome journaled when it ends, then what follows without a
//! command (plan skips, the end of a rollback plan, `auto_advance`).

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

use super::{Engine, Running, Who, processes};
use crate::engine::event::{Event, RollbackProgress, StepState};
use crate::engine::journal::{ConfirmVia, Entry, StepResult, parse_step_key, step_key};
use crate::engine::rollback::TRAFFIC_TO_X;
use crate::engine::rundir;
use crate::engine::step::{
    AfterFailure, LogSink, StepAction, StepContext, StepOutcome, run_commands,
};
use crate::engine::{EngineError, blocking, wave};
use crate::exec::track::{self, StepTracking};
use crate::plan::steps::{PhaseName, StepKind, StepRef};

/// Runs a step: its action, then its plan commands; a step with neither is done by hand.
pub(super) async fn execute_step(
    action: Option<Arc<dyn StepAction>>,
    mut ctx: StepContext,
) -> StepOutcome {
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
    pub(super) fn start_step(
        &mut self,
        step: StepRef,
        who: Who,
        via: ConfirmVia,
    ) -> Result<(), EngineError> {
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
            Ok(file) => Some((file, log_path)),
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
        let how = match via {
            ConfirmVia::Wave => " (its wave goes on: confirmed as one)",
            _ => "",
        };
        sink.note(&format!(
            "{step}: attempt {attempt}, started by {}{how}",
            self.by(who)
        ));
        self.emit(Event::StepStarted {
            step: step.clone(),
            attempt,
            who: match who {
                Who::Operator => Some(self.operator.clone()),
                Who::Kongup => None,
            },
            via,
        });
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
            nodes_done: self
                .view
                .record(&key)
                .map(|r| r.nodes_done())
                .unwrap_or_default(),
            // A rollback puts a wave back whole: it acts on its taken-out nodes too.
            taken_out: if rollback_kind.is_none() {
                self.view
                    .taken_out
                    .iter()
                    .map(|(node, out)| (node.clone(), out.describe(node)))
                    .collect()
            } else {
                Default::default()
            },
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
            nodes_failed: Default::default(),
        };
        // Every program the step starts is tracked: journaled, found again after a crash.
        let tracking = Arc::new(StepTracking::new(
            self.run_dir.clone(),
            self.view.run_id.clone(),
            &step,
            attempt,
            processes::recorder(&key, attempt, self.journal_tx.clone()),
        ));
        let task = tokio::spawn(track::tracked(tracking, execute_step(action, ctx)));
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

    pub(super) fn finish_step(
        &mut self,
        ended: Result<StepOutcome, JoinError>,
    ) -> Result<(), EngineError> {
        let running = self.running.take().expect("a step was running");
        self.last_step_end = Some(chrono::Utc::now());
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
        let mut then = then;
        if then == AfterFailure::Rollback
            && self.view.rollback.is_none()
            && let Some(why) = self.rollback_refusal()
        {
            self.warn(format!(
                "{gate_rollback}, but {why}: the run pauses instead"
            ));
            then = AfterFailure::Pause;
        }
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
        // A program whose end is not known (the ssh connection was lost while it ran on
        // its host) is watched: the step is not run again while it may still run.
        self.watch_unended(&running.key)?;
        // Paused before the changes are said, so the run reads paused, not failed first.
        if matches!(then, AfterFailure::Pause) && self.view.paused.is_none() {
            let reason = format!("{}: {}", running.step, detail.unwrap_or_default());
            self.record(Who::Kongup, Entry::Paused { reason })?;
        }
        // A wave goes on before the changes are said, so its next step is never shown
        // waiting for a confirm it does not need.
        let went_on = result == StepResult::Succeeded
            && then == AfterFailure::Stop
            && self.continue_wave(&running.step, gates_passed)?;
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
        if succeeded && gates_passed && self.plan.traffic.auto_advance && !went_on {
            self.auto_advance()?;
        }
        Ok(())
    }

    /// What happens without a command: plan skips, and the end of a rollback plan.
    pub(super) fn advance(&mut self) -> Result<(), EngineError> {
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

    /// The plan's `auto_advance`: the next traffic stage starts after this one's bake
    /// passed its gates, with a confirm journaled by kongup.
    pub(super) fn auto_advance(&mut self) -> Result<(), EngineError> {
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
        // Only the operator may send traffic to a Y found unfit.
        let unfit = match self.expanded.step(&next) {
            Some(details) => self.y_unfit_for(&next, details),
            None => Vec::new(),
        };
        if !unfit.is_empty() {
            self.warn(format!(
                "auto_advance stopped before {next}: Y is not fit for more traffic: {}. \
                 Confirm it (typing '{}') or roll back",
                unfit.join("; "),
                crate::engine::health::OVERRIDE_WORD
            ));
            return Ok(());
        }
        self.record(
            Who::Kongup,
            Entry::StepConfirmed {
                step: step_key(&next),
                via: ConfirmVia::AutoAdvance,
                typed: false,
                overridden: Vec::new(),
            },
        )?;
        self.start_step(next, Who::Kongup, ConfirmVia::AutoAdvance)
    }

    /// A wave confirmed as one (`engine::wave`): after `done` succeeded, the next step of
    /// its wave starts with a confirm journaled as the wave's, on the operator's behalf,
    /// unless something an operator should weigh stands in the way (then it waits for the
    /// operator as any step, and a warning says why). Whether it went on.
    fn continue_wave(&mut self, done: &StepRef, gates_passed: bool) -> Result<bool, EngineError> {
        if !wave::confirmed_as_one(&self.plan)
            || self.quitting.is_some()
            || self.view.paused.is_some()
            || self.view.rollback.is_some()
            || wave::wave_of(&self.expanded, done).is_none()
        {
            return Ok(false);
        }
        self.advance()?;
        let Some(next) = self.view.next_step().and_then(|k| parse_step_key(&k)) else {
            return Ok(false);
        };
        if !wave::goes_on_into(&self.plan, &self.expanded, done, &next)
            || self.view.state_of(&step_key(&next)) != StepState::Pending
        {
            return Ok(false);
        }
        let Some(details) = self.expanded.step(&next).cloned() else {
            return Ok(false);
        };
        let baked = self.expanded.step(done).is_some_and(|s| {
            matches!(
                s.kind,
                StepKind::ShiftTraffic { .. } | StepKind::Monitor { .. }
            )
        });
        let by_hand = self.toolbox.by_hand(&details, None);
        let unfit = self.y_unfit_for(&next, &details);
        let stop = if baked && !gates_passed {
            Some(format!(
                "{done} baked without gates: nothing judged Y's share"
            ))
        } else if details.irreversible {
            Some(format!("{next} is irreversible"))
        } else if by_hand {
            Some(format!(
                "{next} is done by hand: its confirm says it was done"
            ))
        } else if !unfit.is_empty() {
            Some(format!(
                "Y is not fit for more traffic: {}; confirm it (typing '{}') or roll back",
                unfit.join("; "),
                crate::engine::health::OVERRIDE_WORD
            ))
        } else {
            None
        };
        if let Some(why) = stop {
            self.warn(format!("the wave stops before {next}: {why}"));
            return Ok(false);
        }
        self.record(
            Who::Operator,
            Entry::StepConfirmed {
                step: step_key(&next),
                via: ConfirmVia::Wave,
                typed: false,
                overridden: Vec::new(),
            },
        )?;
        self.start_step(next, Who::Operator, ConfirmVia::Wave)?;
        Ok(true)
    }
}

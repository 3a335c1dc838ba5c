//! The engine's own calls to the traffic driver: the one-key rollback (its first act, all
//! traffic to X, then its plan), a split set by hand, and the time to safety they record.
//! Each call runs on a task of its own, so the engine keeps taking commands meanwhile.

use std::time::Instant;

use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

use super::{Engine, Who};
use crate::engine::EngineError;
use crate::engine::event::{Event, RollbackProgress, RunState, TrafficVerification};
use crate::engine::health;
use crate::engine::journal::{Entry, step_key};
use crate::engine::rollback::{self, TRAFFIC_TO_X};
use crate::engine::step::{ActionError, Mover, TrafficReadback, safety_evidence};
use crate::lb::Split;
use crate::plan::steps::{PhaseName, StepRef};

/// A call to the traffic driver the engine itself makes, run as a task so that the
/// engine keeps taking commands (R, abort, quit) while the load balancer answers.
pub(super) struct TrafficCall {
    pub(super) purpose: TrafficPurpose,
    /// The operator's abort (and, for a split set by hand, a rollback) stops it.
    pub(super) cancel: CancellationToken,
    pub(super) task: tokio::task::JoinHandle<TrafficCallEnd>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum TrafficPurpose {
    /// The rollback's first act: all traffic to X. `clock` is when the operator asked
    /// (time to safety counts from it); the rollback plan follows its answer.
    RollbackAct { clock: Instant },
    /// `traffic N` from the operator.
    ByHand { split: Split },
}

pub(super) struct TrafficCallEnd {
    result: Result<TrafficReadback, ActionError>,
    /// When the driver answered (the time to safety ends here, not when the engine
    /// gets round to reading the answer).
    at: Instant,
}

pub(super) async fn traffic_call_end(
    call: &mut Option<TrafficCall>,
) -> Result<TrafficCallEnd, JoinError> {
    match call {
        Some(call) => (&mut call.task).await,
        None => std::future::pending().await,
    }
}

impl Engine {
    /// The one-key rollback. See `rollback.rs` for what it plans.
    pub(super) fn rollback(
        &mut self,
        clock: Instant,
        reason: &str,
        who: Who,
    ) -> Result<(), EngineError> {
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
                    "the rollback already waits for the split set by hand to be applied: all \
                     traffic goes to X right after",
                );
                return Ok(());
            }
            _ => {}
        }
        if self.view.rollback.is_none()
            && let Some(why) = self.rollback_refusal()
        {
            self.refuse(None, why);
            return Ok(());
        }
        match &self.view.rollback {
            Some(rollback) if rollback.finished => {
                self.refuse(
                    None,
                    "the run was already rolled back: nothing is left to roll back (`kongup \
                     report` tells what was done)",
                );
                return Ok(());
            }
            Some(rollback) if rollback.planned.is_some() => {
                // A second R does nothing new: where the first act could not put all
                // traffic on X, the plan's traffic-to-x step (confirmed) is the way on.
                self.warn("a rollback is already under way: its next step waits for a confirm");
                self.emit_rollback_plan();
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
            // The driver takes one call at a time, and a call cut short may leave the load
            // balancer half-changed: the split set by hand is applied whole, then the
            // rollback's all-to-X follows it, the last word.
            let split = call.purpose.describe();
            self.warn(format!(
                "the split set by hand ({split}) is being applied: the rollback sends all \
                 traffic to X as soon as the load balancer has answered (`abort` stops that \
                 call now)"
            ));
            self.deferred_rollback = Some(clock);
            return Ok(());
        }
        self.rollback_act_and_plan(clock)
    }

    /// Why a new rollback must not start, if it must not: the run is done (nothing is
    /// running or left to do, so there is no upgrade to back out of), or X can no longer
    /// take traffic and no step that ran has anything to undo (a rollback would change
    /// nothing, yet read as if the run went back to X).
    pub(super) fn rollback_refusal(&self) -> Option<String> {
        let blockers = rollback::x_blockers(&self.expanded, &self.view);
        let x = if blockers.is_empty() {
            String::new()
        } else {
            format!(
                " X cannot serve: {}.",
                rollback::describe_blockers(&blockers)
            )
        };
        if self.running.is_none() && self.view.run_state() == RunState::Done {
            return Some(format!(
                "nothing to roll back: the run is done, every step of the plan is settled.{x} \
                 To move traffic now, set the split by hand (`traffic N`) or at the load \
                 balancer"
            ));
        }
        let plan = rollback::plan_rollback(&self.expanded, &self.view, false);
        let traffic_cannot_go_back = !blockers.is_empty()
            && !plan
                .steps
                .iter()
                .any(|s| s.step == step_key(&StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X)));
        if plan.steps.is_empty() && traffic_cannot_go_back {
            return Some(format!(
                "nothing to roll back:{x} No step that ran has a rollback step, so a rollback \
                 would change nothing"
            ));
        }
        None
    }

    /// The rollback's first act applies: traffic moved, X can serve, and the rollback has
    /// not yet got it safely onto X.
    pub(super) fn traffic_act_applies(&self) -> bool {
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
    pub(super) fn rollback_act_and_plan(&mut self, clock: Instant) -> Result<(), EngineError> {
        if self.traffic_act_applies() {
            self.start_rollback_act(clock);
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

    pub(super) fn plan_rollback(&mut self, traffic_safe: bool) -> Result<(), EngineError> {
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
    pub(super) fn start_traffic_call(
        &mut self,
        purpose: TrafficPurpose,
        split: Split,
        cause: String,
    ) {
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
    pub(super) fn start_rollback_act(&mut self, clock: Instant) {
        self.start_traffic_call(
            TrafficPurpose::RollbackAct { clock },
            Split::ALL_X,
            "rollback".into(),
        );
    }

    pub(super) fn finish_traffic_call(
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
                let deferred = self.deferred_rollback.take();
                let left = match &result {
                    Ok(TrafficReadback {
                        applied: Some(applied),
                        ..
                    }) => {
                        if *applied != split && deferred.is_none() {
                            self.warn(format!(
                                "asked for {split}, but the load balancer reports {applied}"
                            ));
                        }
                        format!("the load balancer reported {applied}")
                    }
                    Ok(TrafficReadback { applied: None, .. }) => {
                        "the traffic driver cannot read the split back".to_string()
                    }
                    Err(e) => {
                        if deferred.is_none() {
                            self.warn(format!("could not set the traffic to {split}: {e}"));
                        }
                        format!("it did not complete ({e})")
                    }
                };
                if let Some(clock) = deferred {
                    self.warn(format!(
                        "the split set by hand ({split}) ended before the rollback's: {left}; \
                         the rollback now sends all traffic to X"
                    ));
                    self.rollback_act_and_plan(clock)?;
                }
            }
            TrafficPurpose::RollbackAct { clock } => {
                let elapsed_ms = at.saturating_duration_since(clock).as_millis() as u64;
                let safe = self.record_rollback_act(result, elapsed_ms)?;
                self.plan_rollback(safe)?;
            }
        }
        Ok(())
    }

    /// What the rollback's first act achieved: safe when the load balancer reports all
    /// traffic on X.
    pub(super) fn record_rollback_act(
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

    pub(super) fn set_traffic_by_hand(
        &mut self,
        y_percent: u8,
        override_health: bool,
    ) -> Result<(), EngineError> {
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
        // More to Y than it has: Y's health is checked as before a traffic stage.
        let y_now = self.view.traffic().map_or(0, |s| s.y);
        let unfit = if split.y > y_now {
            health::y_unfit(
                self.topology.as_ref(),
                self.last_verdict.as_ref(),
                self.last_step_end,
            )
        } else {
            Vec::new()
        };
        if !unfit.is_empty() && !override_health {
            let why = format!(
                "cannot set Y {}%: Y is not fit for more traffic: {}. Fix it, or give \
                 `{} {}` to send it anyway (journaled with your name)",
                split.y,
                unfit.join("; "),
                split.y,
                health::OVERRIDE_WORD
            );
            self.refuse(None, why);
            return Ok(());
        }
        let mut cause = format!("set by hand by {}", self.operator);
        if !unfit.is_empty() {
            cause.push_str(&format!(
                ", overriding Y's health check: {}",
                unfit.join("; ")
            ));
        }
        self.start_traffic_call(TrafficPurpose::ByHand { split }, split, cause);
        Ok(())
    }

    /// `rollback/traffic-to-x` succeeded: time to safety, from the rollback's command,
    /// with how it is known (the step's read-back, the operator's confirm, or nothing).
    pub(super) fn record_traffic_safe_after_step(&mut self) -> Result<(), EngineError> {
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

    pub(super) fn record_traffic_safe(
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
}

impl TrafficPurpose {
    pub(super) fn describe(&self) -> String {
        match self {
            TrafficPurpose::RollbackAct { .. } => "the rollback's all traffic to X".to_string(),
            TrafficPurpose::ByHand { split } => format!("{split}, set by hand"),
        }
    }
}

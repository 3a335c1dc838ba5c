//! The built-in traffic actions: a stage of the traffic schedule, a monitoring bake, and
//! the rollback's all-traffic-to-X. They move traffic and bake through the engine's own
//! traffic path (`StepContext::set_traffic`, `StepContext::bake`).

use std::time::Duration;

use crate::engine::step::{
    ActionError, AfterFailure, BakeResult, StepAction, StepContext, StepOutcome, Toolbox,
    TrafficReadback,
};
use crate::lb::Split;
use crate::metrics::GateVerdict;
use crate::metrics::gates::{window_clears_in, window_clears_words};
use crate::plan::model::{FailAction, Plan};
use crate::plan::steps::{Step, StepKind};

fn bake_line(plan: &Plan, toolbox: &Toolbox, bake: Duration) -> String {
    if toolbox.gates.is_some() {
        let on_fail = match plan.gates.on_fail {
            FailAction::Pause => "pause",
            FailAction::Rollback => "roll back",
        };
        format!(
            "bake {} with the gates on (a failed gate: {on_fail}; inconclusive: pause)",
            humantime::format_duration(bake)
        )
    } else {
        format!(
            "bake {} (no gate source: the bake only counts down)",
            humantime::format_duration(bake)
        )
    }
}

/// What a verdict compared, when not the whole clusters: `wave 2: Y 3 nodes vs X 7
/// serving, ` (to go before the rest of the parenthesis).
fn judged(verdict: &GateVerdict) -> String {
    verdict
        .figures
        .scope
        .map_or(String::new(), |scope| format!("{scope}, "))
}

/// What a finished bake means for the step.
fn bake_outcome(plan: &Plan, result: BakeResult, done: &str) -> StepOutcome {
    match result {
        BakeResult::Passed(verdict) => StepOutcome::Succeeded {
            detail: Some(match verdict.figures.scope {
                Some(scope) => format!(
                    "{done}; gates passed ({scope}): {}",
                    verdict.checks.join("; ")
                ),
                None => format!("{done}; gates passed: {}", verdict.checks.join("; ")),
            }),
            gates_passed: true,
        },
        BakeResult::NoGates => StepOutcome::succeeded(format!("{done}; baked without gates")),
        BakeResult::Failed(verdict) => StepOutcome::Failed {
            // A data plane without configuration fails at once, with no breach counted.
            detail: {
                let mut detail = match (verdict.consecutive_breaches, verdict.figures.scope) {
                    (0, None) => format!("{done}; gate failed: {}", verdict.checks.join("; ")),
                    (0, Some(scope)) => format!(
                        "{done}; gate failed ({scope}): {}",
                        verdict.checks.join("; ")
                    ),
                    (breaches, _) => format!(
                        "{done}; gate failed ({}{breaches} breaches in a row): {}",
                        judged(&verdict),
                        verdict.checks.join("; ")
                    ),
                };
                if let Some(secs) =
                    window_clears_in(&verdict, plan.gates.window, chrono::Utc::now())
                {
                    detail.push_str(&format!("; {}", window_clears_words(secs)));
                }
                detail
            },
            then: match plan.gates.on_fail {
                FailAction::Pause => AfterFailure::Pause,
                FailAction::Rollback => AfterFailure::Rollback,
            },
        },
        BakeResult::Inconclusive(verdict) => StepOutcome::Failed {
            detail: match verdict {
                Some(v) => format!(
                    "{done}; gates inconclusive ({}{} requests in the window): {}",
                    judged(&v),
                    v.requests_in_window,
                    v.checks.join("; ")
                ),
                None => format!("{done}; no gate verdict arrived during the bake"),
            },
            then: AfterFailure::Pause,
        },
        BakeResult::Cancelled => StepOutcome::failed(format!("{done}; the bake was stopped")),
        BakeResult::StoppedByRollback => {
            StepOutcome::failed(format!("{done}; the bake was stopped by the rollback"))
        }
    }
}

fn split_mismatch(readback: &TrafficReadback) -> Option<String> {
    match readback.applied {
        Some(applied) if applied != readback.requested => Some(format!(
            "asked the load balancer for {} but it reports {applied}",
            readback.requested
        )),
        _ => None,
    }
}

fn readback_text(readback: &TrafficReadback) -> String {
    match readback.applied {
        Some(applied) => format!("the load balancer reports {applied}"),
        None => format!(
            "asked for {}; the driver cannot read the split back, check the load balancer",
            readback.requested
        ),
    }
}

/// One stage of the schedule: set the split, read it back, bake with the gates.
pub struct ShiftTraffic;

#[async_trait::async_trait]
impl StepAction for ShiftTraffic {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let StepKind::ShiftTraffic { y_percent, bake } = step.kind else {
            return Vec::new();
        };
        let mut lines = vec![format!(
            "set the split to {} through {}, and read it back",
            Split::to_y(y_percent),
            toolbox.traffic.describe()
        )];
        if !bake.is_zero() {
            lines.push(bake_line(plan, toolbox, bake));
        }
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let StepKind::ShiftTraffic { y_percent, bake } = ctx.step.kind else {
            return Err(ActionError::Failed(format!(
                "{} is not a traffic step",
                ctx.step_ref
            )));
        };
        let readback = ctx.set_traffic(Split::to_y(y_percent)).await?;
        if let Some(mismatch) = split_mismatch(&readback) {
            return Ok(StepOutcome::failed(mismatch));
        }
        let done = readback_text(&readback);
        if bake.is_zero() {
            return Ok(StepOutcome::succeeded(done));
        }
        let result = ctx.bake(bake).await?;
        Ok(bake_outcome(&ctx.plan, result, &done))
    }
}

/// Watch the metrics for a while with the gates on.
pub struct Monitor;

#[async_trait::async_trait]
impl StepAction for Monitor {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        match step.kind {
            StepKind::Monitor { duration } => vec![bake_line(plan, toolbox, duration)],
            _ => Vec::new(),
        }
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let StepKind::Monitor { duration } = ctx.step.kind else {
            return Err(ActionError::Failed(format!(
                "{} is not a monitor step",
                ctx.step_ref
            )));
        };
        let result = ctx.bake(duration).await?;
        let done = format!("monitored {}", humantime::format_duration(duration));
        Ok(bake_outcome(&ctx.plan, result, &done))
    }
}

/// The rollback step that sends all traffic to X when the rollback's first act could not.
pub struct TrafficToX;

#[async_trait::async_trait]
impl StepAction for TrafficToX {
    fn describe(&self, _step: &Step, _plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        vec![format!(
            "set the split to {} through {}, and read it back",
            Split::ALL_X,
            toolbox.traffic.describe()
        )]
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let readback = ctx.set_traffic(Split::ALL_X).await?;
        Ok(match split_mismatch(&readback) {
            Some(mismatch) => StepOutcome::failed(mismatch),
            None => StepOutcome::succeeded(readback_text(&readback)),
        })
    }
}

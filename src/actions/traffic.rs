//! The built-in traffic actions: a stage of the traffic schedule, a monitoring bake, and
//! the rollback's all-traffic-to-X.

use std::time::Duration;

use super::{
    ActionError, AfterFailure, BakeResult, DRIVER_MARGIN, StepAction, StepContext, StepOutcome,
};
use crate::engine::event::TrafficVerification;
use crate::engine::toolbox::Toolbox;
use crate::exec::process::kill_on_drop;
use crate::lb::{ReadBackSource, Split, TrafficDriver};
use crate::plan::model::{FailAction, Plan};
use crate::plan::steps::{Step, StepKind};

/// How long the engine waits for one driver call: the driver's own timeouts added up,
/// and a margin.
pub fn driver_deadline(driver: &dyn TrafficDriver) -> Duration {
    driver.call_timeout() + DRIVER_MARGIN
}

/// Sets a split and reads back what the load balancer applied, each within
/// [`driver_deadline`]. `Ok(None)`: set, but the driver cannot read it back. A call given
/// up on kills what the driver started (see [`kill_on_drop`]).
pub async fn apply_split(
    driver: &dyn TrafficDriver,
    split: Split,
) -> Result<Option<Split>, ActionError> {
    let deadline = driver_deadline(driver);
    let timed_out = || ActionError::TrafficTimeout {
        driver: driver.describe(),
        timeout: deadline,
    };
    kill_on_drop(async {
        tokio::time::timeout(deadline, driver.set_split(split))
            .await
            .map_err(|_| timed_out())??;
        let applied = tokio::time::timeout(deadline, driver.read_split())
            .await
            .map_err(|_| timed_out())??;
        Ok(applied)
    })
    .await
}

/// How far all traffic being on X is known, and the evidence in words, from what the
/// driver read back (`applied`) and what its read-back is.
pub fn safety_evidence(
    source: &ReadBackSource,
    applied: Option<Split>,
) -> Option<(TrafficVerification, String)> {
    match (source, applied) {
        (_, Some(applied)) if applied != Split::ALL_X => None,
        (ReadBackSource::WrittenFile(file), Some(applied)) => Some((
            TrafficVerification::ReadBack,
            format!(
                "read back from {}, the file kongup wrote and told the load balancer to \
                 reload, which says {applied} (not a live read of the load balancer)",
                file.display()
            ),
        )),
        (_, Some(applied)) => Some((
            TrafficVerification::ReadBack,
            format!("confirmed by the load balancer, which reports {applied}"),
        )),
        (ReadBackSource::Operator, None) => Some((
            TrafficVerification::OperatorConfirmed,
            "confirmed by the operator, who sets the split by hand (kongup cannot read it \
             back)"
                .to_string(),
        )),
        (_, None) => Some((
            TrafficVerification::Unverified,
            "NOT verified: the traffic driver cannot read the split back; check the load \
             balancer"
                .to_string(),
        )),
    }
}

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

/// What a finished bake means for the step.
fn bake_outcome(plan: &Plan, result: BakeResult, done: &str) -> StepOutcome {
    match result {
        BakeResult::Passed(verdict) => StepOutcome::Succeeded {
            detail: Some(format!(
                "{done}; gates passed: {}",
                verdict.checks.join("; ")
            )),
            gates_passed: true,
        },
        BakeResult::NoGates => StepOutcome::succeeded(format!("{done}; baked without gates")),
        BakeResult::Failed(verdict) => StepOutcome::Failed {
            detail: format!(
                "{done}; gate failed ({} breaches in a row): {}",
                verdict.consecutive_breaches,
                verdict.checks.join("; ")
            ),
            then: match plan.gates.on_fail {
                FailAction::Pause => AfterFailure::Pause,
                FailAction::Rollback => AfterFailure::Rollback,
            },
        },
        BakeResult::Inconclusive(verdict) => StepOutcome::Failed {
            detail: match verdict {
                Some(v) => format!(
                    "{done}; gates inconclusive ({} requests in the window): {}",
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

fn split_mismatch(readback: &super::TrafficReadback) -> Option<String> {
    match readback.applied {
        Some(applied) if applied != readback.requested => Some(format!(
            "asked the load balancer for {} but it reports {applied}",
            readback.requested
        )),
        _ => None,
    }
}

fn readback_text(readback: &super::TrafficReadback) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_read_back_counts_as_confirmed_and_nginx_says_it_read_its_own_file() {
        let (verified, evidence) =
            safety_evidence(&ReadBackSource::LoadBalancer, Some(Split::ALL_X)).unwrap();
        assert_eq!(verified, TrafficVerification::ReadBack);
        assert!(
            evidence.starts_with("confirmed by the load balancer"),
            "{evidence}"
        );

        let file = std::path::PathBuf::from("/etc/nginx/kong-upstream.conf");
        let (verified, evidence) =
            safety_evidence(&ReadBackSource::WrittenFile(file), Some(Split::ALL_X)).unwrap();
        assert_eq!(verified, TrafficVerification::ReadBack);
        assert!(
            evidence.contains("/etc/nginx/kong-upstream.conf, the file kongup wrote")
                && evidence.contains("not a live read")
                && !evidence.contains("confirmed by the load balancer"),
            "{evidence}"
        );

        let (verified, _) = safety_evidence(&ReadBackSource::Operator, None).unwrap();
        assert_eq!(verified, TrafficVerification::OperatorConfirmed);
        for source in [ReadBackSource::Nothing, ReadBackSource::LoadBalancer] {
            let (verified, evidence) = safety_evidence(&source, None).unwrap();
            assert_eq!(verified, TrafficVerification::Unverified);
            assert!(evidence.starts_with("NOT verified"), "{evidence}");
        }
        assert_eq!(
            safety_evidence(&ReadBackSource::LoadBalancer, Some(Split::to_y(5))),
            None
        );
    }
}

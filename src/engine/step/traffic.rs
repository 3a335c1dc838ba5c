//! The engine's one way to the traffic driver, shared by the engine (the rollback's first
//! act, a split set by hand) and the running steps (`StepContext::set_traffic`): one call
//! at a time, each within a deadline, journaled before and after, and read back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ActionError, JournalRequest, journal_through};
use crate::engine::event::{Event, EventSender, TrafficVerification};
use crate::engine::journal::Entry;
use crate::exec::process::kill_on_drop;
use crate::lb::{ReadBackSource, Split, TrafficDriver};

/// What the engine allows a driver call beyond the driver's own timeouts
/// ([`TrafficDriver::call_timeout`]), so the driver's own error wins the race.
pub const DRIVER_MARGIN: Duration = Duration::from_secs(5);

/// The traffic split after a change: what was asked and what the load balancer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficReadback {
    pub requested: Split,
    pub applied: Option<Split>,
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
    pub(super) rollback: CancellationToken,
    /// Bakes under way: while one runs, it acts on the gates' verdicts; otherwise the
    /// engine does.
    pub(super) bakes: Arc<std::sync::atomic::AtomicUsize>,
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
        events: &EventSender,
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
            result = apply_split(self.driver.as_ref(), split) => result,
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
        events.send(Event::TrafficChanged {
            requested: split,
            applied,
        });
        Ok(TrafficReadback {
            requested: split,
            applied,
        })
    }
}

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

//! Which events are worth a notice: pure, fed one event at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Notice, NoticeKind};
use crate::engine::event::RollbackProgress;
use crate::engine::journal::ConfirmVia;
use crate::engine::{Event, RunState, StepState};
use crate::metrics::Verdict;
use crate::plan::steps::{ExpandedPlan, StepKind, StepRef};

/// A step that ran this long is a wait the operator may have stepped away from: the step
/// after it is announced when it becomes ready.
pub const LONG_STEP: Duration = Duration::from_secs(30);

/// What the event stream said so far, as far as notices need it.
pub struct Watch {
    expanded: Arc<ExpandedPlan>,
    plan_name: String,
    /// The run's state; `None` until the engine's opening snapshot said it (that first
    /// state is where the run stands, not news).
    run: Option<RunState>,
    /// When each running step started (as seen here).
    started: HashMap<StepRef, Instant>,
    /// The step that just ended after a bake or a long wait: the next ready step is news.
    waited: Option<StepRef>,
    /// Whether the gates' last verdict failed, so one breach is one notice.
    gate_failing: bool,
    /// Y's share of the traffic: a failing verdict matters only while Y carries some.
    y_share: u8,
    /// A rollback was seen under way: its end is news (a resumed run's snapshot also
    /// tells of a rollback that finished long ago).
    rolling_back: bool,
}

impl Watch {
    pub fn new(expanded: Arc<ExpandedPlan>, plan_name: &str) -> Watch {
        Watch {
            expanded,
            plan_name: plan_name.to_string(),
            run: None,
            started: HashMap::new(),
            waited: None,
            gate_failing: false,
            y_share: 0,
            rolling_back: false,
        }
    }

    fn notice(&self, kind: NoticeKind, what: String) -> Notice {
        Notice {
            kind,
            text: format!("kongup {}: {what}", self.plan_name),
        }
    }

    fn title(&self, step: &StepRef) -> String {
        match self.expanded.step(step) {
            Some(s) => format!("{step} ({})", s.title),
            None => step.to_string(),
        }
    }

    /// The notices `event` is worth (most are worth none).
    pub fn observe(&mut self, event: &Event) -> Vec<Notice> {
        let mut notices = Vec::new();
        match event {
            Event::StepStarted {
                step,
                attempt,
                who,
                via,
            } => {
                notices.push(self.confirmation(step, *attempt, who.as_deref(), *via));
            }
            Event::StepChanged {
                step,
                state,
                detail,
            } => notices.extend(self.step_changed(step, *state, detail.as_deref())),
            Event::TrafficChanged { requested, .. } => self.y_share = requested.y,
            Event::Gate(verdict) => {
                let failing = verdict.verdict == Verdict::Fail;
                if failing && !self.gate_failing && (self.y_share > 0 || self.baking()) {
                    // A breached check's line ends in ": BREACH" (metrics/gates.rs).
                    let mut failed: Vec<&str> = verdict
                        .checks
                        .iter()
                        .filter(|c| c.ends_with(": BREACH"))
                        .map(String::as_str)
                        .collect();
                    if failed.is_empty() {
                        failed = verdict.checks.iter().map(String::as_str).collect();
                    }
                    notices.push(self.notice(
                        NoticeKind::GateBreached,
                        format!("a gate breached: {}", failed.join("; ")),
                    ));
                }
                self.gate_failing = failing;
            }
            Event::RunChanged(state) => {
                self.rolling_back |= *state == RunState::RollingBack;
                let before = self.run.replace(*state);
                if before.is_some() && before != Some(*state) {
                    notices.extend(self.run_changed(*state));
                }
            }
            Event::RollbackProgress(RollbackProgress::Finished)
                if std::mem::take(&mut self.rolling_back) =>
            {
                notices.push(
                    self.notice(
                        NoticeKind::RolledBack,
                        "rolled back: the rollback's last step is done and all traffic is on X"
                            .to_string(),
                    ),
                )
            }
            _ => {}
        }
        notices
    }

    /// A bake runs: a traffic stage or a monitor step is running.
    fn baking(&self) -> bool {
        self.started.keys().any(|step| {
            self.expanded.step(step).is_some_and(|s| {
                matches!(
                    s.kind,
                    StepKind::ShiftTraffic { .. } | StepKind::Monitor { .. }
                )
            })
        })
    }

    /// Who confirmed which step, from the engine's step-start event.
    fn confirmation(
        &self,
        step: &StepRef,
        attempt: u32,
        who: Option<&str>,
        via: ConfirmVia,
    ) -> Notice {
        let what = match (attempt, who) {
            (_, Some(who)) if via == ConfirmVia::Wave => format!(
                "kongup went on to {} (its wave, confirmed as one by {who})",
                self.title(step)
            ),
            (_, None) => format!(
                "kongup started {} (the plan's traffic.auto_advance)",
                self.title(step)
            ),
            (1, Some(who)) => format!("{who} confirmed {}", self.title(step)),
            (n, Some(who)) => format!("{who} retried {} (attempt {n})", self.title(step)),
        };
        self.notice(NoticeKind::Confirmed, what)
    }

    fn step_changed(
        &mut self,
        step: &StepRef,
        state: StepState,
        detail: Option<&str>,
    ) -> Option<Notice> {
        match state {
            StepState::Running => {
                self.started.insert(step.clone(), Instant::now());
                None
            }
            StepState::Succeeded => {
                let ran = self.started.remove(step).map(|t| t.elapsed());
                let bake = self.expanded.step(step).is_some_and(|s| {
                    matches!(
                        s.kind,
                        StepKind::ShiftTraffic { .. } | StepKind::Monitor { .. }
                    )
                });
                if ran.is_some() && (bake || ran >= Some(LONG_STEP)) {
                    self.waited = Some(step.clone());
                }
                None
            }
            StepState::Ready => {
                let after = self.waited.take()?;
                let how = if self
                    .expanded
                    .step(&after)
                    .is_some_and(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }))
                {
                    "its bake passed"
                } else {
                    "it ended"
                };
                Some(self.notice(
                    NoticeKind::StepReady,
                    format!(
                        "{} is ready: {after} succeeded and {how}; kongup waits for your confirm",
                        self.title(step)
                    ),
                ))
            }
            StepState::Failed => {
                self.waited = None;
                self.started.remove(step).map(|_| {
                    self.notice(
                        NoticeKind::StepFailed,
                        format!(
                            "{step} failed{}; kongup waits for you (retry, mark done or roll \
                             back)",
                            detail.map(|d| format!(": {d}")).unwrap_or_default()
                        ),
                    )
                })
            }
            _ => {
                self.started.remove(step);
                None
            }
        }
    }

    fn run_changed(&mut self, state: RunState) -> Option<Notice> {
        let (kind, what) = match state {
            RunState::Paused => (
                NoticeKind::Paused,
                "the run is paused; kongup waits for you (resume, roll back or quit)",
            ),
            RunState::RollingBack => (
                NoticeKind::RollingBack,
                "rolling back: all traffic goes to cluster X first",
            ),
            RunState::Done => (NoticeKind::Ended, "the run is done"),
            // The rollback's end is told once, as it finishes (RolledBack); a step's
            // readiness, failure or abort by its own notice.
            RunState::Idle
            | RunState::Running
            | RunState::Waiting
            | RunState::Failed
            | RunState::Aborted
            | RunState::RolledBack => return None,
        };
        self.waited = None;
        Some(self.notice(kind, what.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::metrics::GateVerdict;
    use crate::plan::steps::PhaseName;
    use crate::testkit::hybrid;

    fn watch() -> Watch {
        Watch::new(Arc::new(hybrid::expanded()), "hybrid-upgrade")
    }

    fn stage() -> StepRef {
        hybrid::expanded()
            .steps()
            .find(|(_, s)| matches!(s.kind, StepKind::ShiftTraffic { .. }))
            .map(|(phase, s)| StepRef::new(phase.name, &s.id))
            .unwrap()
    }

    fn changed(step: &StepRef, state: StepState) -> Event {
        Event::StepChanged {
            step: step.clone(),
            state,
            detail: None,
        }
    }

    fn kinds(notices: Vec<Notice>) -> Vec<NoticeKind> {
        notices.into_iter().map(|n| n.kind).collect()
    }

    #[test]
    fn the_opening_snapshot_is_no_news_but_a_later_pause_is() {
        let mut watch = watch();
        assert!(
            watch
                .observe(&Event::RunChanged(RunState::Paused))
                .is_empty()
        );
        assert_eq!(
            kinds(watch.observe(&Event::RunChanged(RunState::Running))),
            vec![]
        );
        let paused = watch.observe(&Event::RunChanged(RunState::Paused));
        assert_eq!(kinds(paused.clone()), vec![NoticeKind::Paused]);
        assert!(paused[0].text.starts_with("kongup hybrid-upgrade: "));
        assert_eq!(
            kinds(watch.observe(&Event::RunChanged(RunState::Done))),
            vec![NoticeKind::Ended]
        );
    }

    #[test]
    fn a_rollback_finished_before_this_session_is_no_news() {
        let mut watch = watch();
        let finished = Event::RollbackProgress(RollbackProgress::Finished);
        // A resumed run's snapshot: the rollback ended in an earlier session.
        watch.observe(&Event::RunChanged(RunState::Failed));
        assert!(watch.observe(&finished).is_empty());
        assert_eq!(
            kinds(watch.observe(&Event::RunChanged(RunState::RollingBack))),
            vec![NoticeKind::RollingBack]
        );
        assert_eq!(
            kinds(watch.observe(&finished)),
            vec![NoticeKind::RolledBack]
        );
        assert!(watch.observe(&finished).is_empty());
    }

    #[test]
    fn the_step_after_a_bake_is_news_when_it_becomes_ready_a_quick_step_is_not() {
        let mut watch = watch();
        let stage = stage();
        let next = StepRef::new(PhaseName::Rollback, "next");
        watch.observe(&changed(&stage, StepState::Running));
        assert!(
            watch
                .observe(&changed(&stage, StepState::Succeeded))
                .is_empty()
        );
        let ready = watch.observe(&changed(&next, StepState::Ready));
        assert_eq!(kinds(ready.clone()), vec![NoticeKind::StepReady]);
        assert!(
            ready[0].text.contains("its bake passed"),
            "{}",
            ready[0].text
        );
        // Once only, and not for a step that was never seen running.
        assert!(watch.observe(&changed(&next, StepState::Ready)).is_empty());
        let manual = hybrid::expanded()
            .steps()
            .find(|(_, s)| matches!(s.kind, StepKind::Manual | StepKind::Review))
            .map(|(phase, s)| StepRef::new(phase.name, &s.id))
            .unwrap();
        watch.observe(&changed(&manual, StepState::Running));
        watch.observe(&changed(&manual, StepState::Succeeded));
        assert!(watch.observe(&changed(&next, StepState::Ready)).is_empty());
    }

    #[test]
    fn a_confirmation_says_who_and_which_step() {
        let mut watch = watch();
        let stage = stage();
        let started = |attempt: u32, who: Option<&str>| Event::StepStarted {
            step: stage.clone(),
            attempt,
            who: who.map(str::to_string),
            via: match (attempt, who) {
                (_, None) => ConfirmVia::AutoAdvance,
                (1, _) => ConfirmVia::Confirm,
                _ => ConfirmVia::Retry,
            },
        };
        let by_alice = watch.observe(&started(1, Some("alice@h")));
        assert_eq!(kinds(by_alice.clone()), vec![NoticeKind::Confirmed]);
        assert!(
            by_alice[0].text.contains("alice@h confirmed")
                && by_alice[0].text.contains(&stage.to_string()),
            "{}",
            by_alice[0].text
        );
        let retry = watch.observe(&started(2, Some("bob@h")));
        assert!(retry[0].text.contains("bob@h retried"), "{}", retry[0].text);
        let auto = watch.observe(&started(1, None));
        assert!(auto[0].text.contains("auto_advance"), "{}", auto[0].text);
        let with_wave = watch.observe(&Event::StepStarted {
            step: stage.clone(),
            attempt: 1,
            who: Some("alice@h".into()),
            via: ConfirmVia::Wave,
        });
        assert!(
            with_wave[0]
                .text
                .contains("its wave, confirmed as one by alice@h"),
            "{}",
            with_wave[0].text
        );
        // Text that reads like the engine's note says nothing: who comes from the event.
        let note = Event::Log(crate::engine::event::LogLine {
            at: Utc::now(),
            step: Some(crate::engine::journal::step_key(&stage)),
            stream: crate::engine::event::LogStream::Engine,
            text: format!("{stage}: attempt 1, started by mallory"),
        });
        assert!(watch.observe(&note).is_empty());
    }

    #[test]
    fn a_breach_is_one_notice_while_y_carries_traffic() {
        let mut watch = watch();
        let verdict = |verdict: Verdict| {
            Event::Gate(GateVerdict {
                at: Utc::now(),
                verdict,
                checks: vec![
                    "Y 5xx 26.6% ≤ 1.00%: BREACH".to_string(),
                    "Y p99 40 ms ≤ 3× X: ok".to_string(),
                ],
                requests_in_window: 100,
                consecutive_breaches: 3,
                figures: Default::default(),
                shown: Vec::new(),
            })
        };
        // No traffic on Y: nothing acts on the gates, nobody is woken.
        assert!(watch.observe(&verdict(Verdict::Fail)).is_empty());
        watch.observe(&verdict(Verdict::Pass));
        watch.observe(&Event::TrafficChanged {
            requested: crate::lb::Split { x: 90, y: 10 },
            applied: None,
        });
        let breach = watch.observe(&verdict(Verdict::Fail));
        assert_eq!(kinds(breach.clone()), vec![NoticeKind::GateBreached]);
        assert!(
            breach[0].text.contains("Y 5xx 26.6%") && !breach[0].text.contains("p99"),
            "{}",
            breach[0].text
        );
        assert!(watch.observe(&verdict(Verdict::Fail)).is_empty());
        watch.observe(&verdict(Verdict::Pass));
        assert_eq!(
            kinds(watch.observe(&verdict(Verdict::Fail))),
            vec![NoticeKind::GateBreached]
        );
    }
}

//! A request to take the run over (`kongup run --take-over`, see [`crate::engine::handover`]):
//! looked for every second, journaled, put to the operator, and answered: handed over (the
//! engine then stops as on quit, a running step first running to its end), declined, or
//! lapsed after a minute without an answer.

use std::collections::HashSet;

use chrono::Utc;

use super::{Engine, Who};
use crate::engine::EngineError;
use crate::engine::event::{Event, SessionEvent};
use crate::engine::handover::{CHECK_INTERVAL, HandoverRequest, read_request};
use crate::engine::journal::Entry;

/// The engine's side of handovers.
pub(super) struct Handovers {
    ticker: tokio::time::Interval,
    /// The request put to the operator, unanswered.
    open: Option<HandoverRequest>,
    /// Requests answered (or lapsed): never put again.
    answered: HashSet<String>,
}

impl Handovers {
    pub(super) fn new() -> Handovers {
        let mut ticker = tokio::time::interval(CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Handovers {
            ticker,
            open: None,
            answered: HashSet::new(),
        }
    }

    pub(super) async fn tick(&mut self) {
        self.ticker.tick().await;
    }
}

impl Engine {
    /// Looks at the run directory's request: a new one is journaled and put to the
    /// operator; the open one lapses, or is gone when its kongup withdrew it.
    pub(super) fn check_handover(&mut self) -> Result<(), EngineError> {
        let now = Utc::now();
        let found = read_request(&self.run_dir);
        if let Some(open) = self.handovers.open.clone() {
            let withdrawn = found.as_ref().is_none_or(|f| f.id != open.id);
            if withdrawn || open.lapsed(now) {
                let reason = if withdrawn {
                    "the request was withdrawn".to_string()
                } else {
                    "nobody answered within 60 s; the request lapsed".to_string()
                };
                self.close_handover(&open, reason, Who::Kongup)?;
            }
            return Ok(());
        }
        let Some(request) = found else {
            return Ok(());
        };
        if self.quitting.is_some()
            || request.lapsed(now)
            || self.handovers.answered.contains(&request.id)
        {
            return Ok(());
        }
        self.record_as(
            &request.operator.clone(),
            Entry::HandoverRequested {
                request: request.id.clone(),
                pid: request.pid,
            },
        )?;
        self.emit(Event::Session(SessionEvent::HandoverAsked {
            by: request.operator.clone(),
            until: request.lapses_at(),
        }));
        self.handovers.open = Some(request);
        Ok(())
    }

    /// The operator hands the run over: journaled, then the engine stops as on quit.
    pub(super) fn hand_over(&mut self) -> Result<(), EngineError> {
        let Some(open) = self.handovers.open.take() else {
            self.warn("nobody asks to take this run over: nothing to hand over");
            return Ok(());
        };
        self.handovers.answered.insert(open.id.clone());
        self.record(
            Who::Operator,
            Entry::HandedOver {
                request: open.id.clone(),
                to: open.operator.clone(),
            },
        )?;
        let reason = format!("handed over to {}", open.operator);
        let text = match &self.running {
            Some(running) => format!(
                "{reason}: {} runs to its end first, then {} drives",
                running.step, open.operator
            ),
            None => format!("{reason}: kongup stops and {} drives", open.operator),
        };
        self.emit(Event::Session(SessionEvent::HandoverClosed(text)));
        self.quit(reason);
        Ok(())
    }

    /// The operator keeps the run.
    pub(super) fn keep_run(&mut self) -> Result<(), EngineError> {
        let Some(open) = self.handovers.open.clone() else {
            self.warn("nobody asks to take this run over");
            return Ok(());
        };
        let reason = format!("{} keeps driving it", self.operator);
        self.close_handover(&open, reason, Who::Operator)
    }

    fn close_handover(
        &mut self,
        open: &HandoverRequest,
        reason: String,
        who: Who,
    ) -> Result<(), EngineError> {
        self.handovers.open = None;
        self.handovers.answered.insert(open.id.clone());
        self.record(
            who,
            Entry::HandoverDeclined {
                request: open.id.clone(),
                to: open.operator.clone(),
                reason: reason.clone(),
            },
        )?;
        self.emit(Event::Session(SessionEvent::HandoverClosed(format!(
            "the run was not handed over to {}: {reason}",
            open.operator
        ))));
        Ok(())
    }
}

//! The events that tell a reader where a run stands, derived from the run's view
//! ([`RunView`]) and what was said before. The engine sends [`Shown::update`]'s events when
//! it opens a run (the snapshot a console starts from), and its step and run changes
//! ([`Shown::changes`]) after every command and record; `kongup watch` sends
//! [`Shown::update`]'s after every record it reads from the journal. One derivation, so a
//! watcher's screen says what the driver's says.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::event::{Event, RollbackProgress, RunState, StepState};
use super::journal::parse_step_key;
use super::view::{NodeResult, RunView};
use crate::lb::Split;
use crate::plan::steps::{ExpandedPlan, PhaseName};

/// What the event stream has said so far.
#[derive(Debug, Default)]
pub struct Shown {
    steps: HashMap<String, StepState>,
    run: Option<RunState>,
    traffic: Option<(Split, Option<Split>)>,
    rollback: Option<ShownRollback>,
    /// Since when no cluster serves traffic, as last said.
    outage: Option<Option<DateTime<Utc>>>,
    /// Each step's node outcomes as last said, and the view's count of node changes then.
    nodes: HashMap<String, BTreeMap<String, NodeResult>>,
    node_changes: Option<u64>,
}

/// What was said of the rollback in force (one per `rollback-requested`).
#[derive(Debug, Clone, PartialEq)]
struct ShownRollback {
    requested_at: DateTime<Utc>,
    safe: bool,
    planned: Option<Vec<String>>,
    finished: bool,
}

impl Shown {
    /// Nothing said yet: the next [`Shown::update`] is a whole snapshot.
    pub fn clear(&mut self) {
        *self = Shown::default();
    }

    /// The step's state is said again at the next change (a refused command: the client
    /// sees where the step stands).
    pub fn forget_step(&mut self, key: &str) {
        self.steps.remove(key);
    }

    /// Everything that changed since last said: the run's state, the traffic split, the
    /// rollback's progress, then every step's state. After [`Shown::clear`], the snapshot.
    pub fn update(&mut self, view: &RunView, expanded: &ExpandedPlan) -> Vec<Event> {
        let mut events = Vec::new();
        let run_state = view.run_state();
        if self.run != Some(run_state) {
            self.run = Some(run_state);
            events.push(Event::RunChanged(run_state));
        }
        if let Some(requested) = view.traffic_requested {
            let traffic = (requested, view.traffic_applied);
            if self.traffic != Some(traffic) {
                self.traffic = Some(traffic);
                events.push(Event::TrafficChanged {
                    requested,
                    applied: view.traffic_applied,
                });
            }
        }
        self.rollback_update(view, &mut events);
        events.extend(self.changes(view, expanded));
        events
    }

    fn rollback_update(&mut self, view: &RunView, events: &mut Vec<Event>) {
        let Some(rollback) = &view.rollback else {
            self.rollback = None;
            return;
        };
        let shown = match &mut self.rollback {
            Some(shown) if shown.requested_at == rollback.requested_at => shown,
            _ => {
                events.push(Event::RollbackProgress(RollbackProgress::Started));
                self.rollback.insert(ShownRollback {
                    requested_at: rollback.requested_at,
                    safe: false,
                    planned: None,
                    finished: false,
                })
            }
        };
        if let Some(ms) = rollback.time_to_safety_ms
            && !shown.safe
        {
            shown.safe = true;
            let (verified, evidence) = rollback.traffic_verified.clone().unwrap_or_default();
            events.push(Event::RollbackProgress(RollbackProgress::TrafficSafe {
                time_to_safety_ms: ms,
                verified,
                evidence,
            }));
        }
        let planned: Option<Vec<String>> = rollback
            .planned
            .as_ref()
            .map(|steps| steps.iter().map(|s| s.step.clone()).collect());
        if planned.is_some() && shown.planned != planned {
            shown.planned = planned;
            events.push(rollback_plan_event(view));
        }
        if rollback.finished && !shown.finished {
            shown.finished = true;
            events.push(Event::RollbackProgress(RollbackProgress::Finished));
        }
    }

    /// A `StepChanged` for every step whose state changed since last said, then a
    /// `NodeOutcome` for every node outcome that did, then a `RunChanged` if the run's
    /// did, then an `Outage` if one started or ended.
    pub fn changes(&mut self, view: &RunView, expanded: &ExpandedPlan) -> Vec<Event> {
        let mut events = Vec::new();
        for key in view.step_keys() {
            let mut state = view.effective_state(&key);
            if state == StepState::Ready && plan_skips(expanded, &key) {
                // Its turn is only for the plan's skip, which the engine records next.
                state = StepState::Pending;
            }
            if self.steps.get(&key) == Some(&state) {
                continue;
            }
            self.steps.insert(key.clone(), state);
            let Some(step) = parse_step_key(&key) else {
                continue;
            };
            let record = view.record(&key);
            let detail = match state {
                StepState::Pending | StepState::Ready => None,
                StepState::Running => record.map(|r| format!("attempt {}", r.attempts)),
                _ => record.and_then(|r| r.detail.clone()),
            };
            events.push(Event::StepChanged {
                step,
                state,
                detail,
            });
        }
        self.node_changes(view, &mut events);
        let run_state = view.run_state();
        if self.run != Some(run_state) {
            self.run = Some(run_state);
            events.push(Event::RunChanged(run_state));
        }
        let since = view.open_outage().map(|o| o.from);
        if self.outage != Some(since) {
            self.outage = Some(since);
            events.push(Event::Outage { since });
        }
        events
    }
}

impl Shown {
    /// The node outcomes that changed since last said (compared, not copied: a wave of a
    /// thousand nodes is looked over once per outcome journaled, not once per event).
    fn node_changes(&mut self, view: &RunView, events: &mut Vec<Event>) {
        if self.node_changes == Some(view.node_changes) {
            return;
        }
        self.node_changes = Some(view.node_changes);
        for (key, record) in &view.records {
            let said = self.nodes.entry(key.clone()).or_default();
            // Forgotten by a fresh start of the step: the step's own change says so.
            said.retain(|node, _| record.nodes.contains_key(node));
            if record.nodes.is_empty() {
                continue;
            }
            let Some(step) = parse_step_key(key) else {
                continue;
            };
            for (node, result) in &record.nodes {
                if said.get(node) == Some(result) {
                    continue;
                }
                said.insert(node.clone(), result.clone());
                events.push(Event::NodeOutcome {
                    step: step.clone(),
                    node: node.clone(),
                    failed: result.failed.clone(),
                });
            }
        }
    }
}

/// The rollback plan in force, as an event.
pub fn rollback_plan_event(view: &RunView) -> Event {
    let steps = view
        .rollback_steps()
        .iter()
        .filter_map(|s| parse_step_key(&s.step))
        .collect();
    let note = view.rollback.as_ref().and_then(|r| r.note.clone());
    Event::RollbackProgress(RollbackProgress::Planned { steps, note })
}

/// Whether the plan skips the forward step `key` (`steps.skip`).
fn plan_skips(expanded: &ExpandedPlan, key: &str) -> bool {
    parse_step_key(key)
        .filter(|s| s.phase != PhaseName::Rollback)
        .and_then(|s| expanded.step(&s))
        .is_some_and(|s| s.skip_reason.is_some())
}

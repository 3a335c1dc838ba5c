//! The engine's side of the outage clock (`engine::outage`): after every change it asks the
//! rule whether any cluster serves traffic, and journals an outage's start and end.

use super::super::expected::StepAt;
use super::super::journal::Entry;
use super::super::outage::{self, Facts};
use super::{Engine, Who};
use crate::engine::EngineError;
use crate::engine::event::StepState;
use crate::plan::steps::{ExpandedPlan, Step, StepRef};
use crate::plan::waves::Wave;

/// What the engine keeps between checks.
#[derive(Debug, Default)]
pub(super) struct OutageWatch {
    /// The plan's waves, worked out once.
    waves: Option<Vec<Wave>>,
    /// The journal record the plan's answer was worked out at, and the answer.
    planned: Option<(u64, bool)>,
    /// The plan's answer when last checked: a change (a step stopped or started proxies)
    /// makes older snapshots stale.
    last_planned: Option<bool>,
    /// Snapshots received since the plan's answer last changed or an outage opened. The
    /// first may have been probed before (a snapshot is stamped when its probes end); the
    /// second started after the first ended, so it is the first to tell what followed.
    snapshots_since_change: u32,
}

impl OutageWatch {
    pub(super) fn snapshot_received(&mut self) {
        self.snapshots_since_change = self.snapshots_since_change.saturating_add(1);
    }
}

impl Engine {
    /// Journals the start or the end of an outage when the rule's answer differs from the
    /// journal's.
    pub(super) fn check_outage(&mut self) -> Result<(), EngineError> {
        let planned = match self.outage.planned {
            Some((seq, planned)) if seq == self.view.last_seq => planned,
            _ => {
                let planned = self.planned_outage();
                self.outage.planned = Some((self.view.last_seq, planned));
                planned
            }
        };
        if self.outage.last_planned != Some(planned) {
            self.outage.last_planned = Some(planned);
            self.outage.snapshots_since_change = 0;
        }
        let seen = self
            .topology
            .as_ref()
            .filter(|_| self.outage.snapshots_since_change >= 2)
            .and_then(|t| outage::seen(t, self.view.traffic()));
        let open = self.view.open_outage().is_some();
        let facts = Facts {
            open,
            planned,
            seen,
            watched: self.topology.is_some(),
        };
        match (open, outage::no_cluster_serves(&facts)) {
            (false, Some(why)) => {
                self.outage.snapshots_since_change = 0;
                self.record(Who::Kongup, Entry::OutageStarted { why })?;
            }
            (true, None) => {
                self.record(Who::Kongup, Entry::OutageEnded)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn planned_outage(&mut self) -> bool {
        let plan = self.plan.clone();
        let waves = self
            .outage
            .waves
            .get_or_insert_with(|| crate::plan::waves::waves(&plan))
            .clone();
        let steps = run_steps(&self.expanded, &self.view);
        let at = steps.iter().map(|(step_ref, step, state)| StepAt {
            step_ref,
            step,
            state: *state,
        });
        outage::planned(&plan, &waves, &self.expanded, at)
    }
}

/// The run's steps in run order with their states: the plan's, then the rollback's.
fn run_steps(
    expanded: &ExpandedPlan,
    view: &crate::engine::view::RunView,
) -> Vec<(StepRef, Step, StepState)> {
    let forward = expanded.steps().map(|(phase, step)| {
        let step_ref = StepRef::new(phase.name, &step.id);
        let state = view.effective_state(&step_ref.to_string());
        (step_ref, step.clone(), state)
    });
    let rollback = view.rollback_steps().iter().filter_map(|info| {
        let step_ref = crate::engine::journal::parse_step_key(&info.step)?;
        let step = crate::engine::rollback::step_details(expanded, &step_ref)?;
        Some((step_ref, step, view.effective_state(&info.step)))
    });
    forward.chain(rollback).collect()
}

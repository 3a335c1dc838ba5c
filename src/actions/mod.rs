//! Step actions: what a confirmed step does. They implement the engine's step contract
//! (`engine::step`: a `StepAction`, run with a `StepContext`), and [`builtins`] lists
//! every one kongup has, by what it acts on.
//!
//! - [`traffic`]: a stage of the traffic schedule (set the split, read it back, bake with
//!   the gates), a monitoring bake, and the rollback's all-traffic-to-X.
//! - [`kong`]: Kong's own steps (preflight, the freeze and its guard around traffic
//!   stages, backups, restores, migrations, smoke tests, the hybrid compatibility check,
//!   the waits for nodes).
//!
//! A real run's registry is `builtins(Some(access))`; the lab's is the same with some
//! entries replaced (`demo`), and a test's whatever it registers.

pub mod kong;
pub mod traffic;

use std::sync::Arc;

use crate::engine::step::{ActionFor, ActionRegistry};
use crate::plan::steps::{RollbackKind, StepKind};

use self::kong::{KongAccess, register_kong_actions};

/// Every built-in action: the traffic stages, monitoring and the rollback's traffic-to-X,
/// then, given access to Kong, the Kong actions (registered later, so they win: a traffic
/// stage then runs the freeze guard around the built-in shift). Without access (tests,
/// previews of a plan) only the traffic actions.
pub fn builtins(kong: Option<KongAccess>) -> ActionRegistry {
    let mut registry = ActionRegistry::empty();
    registry
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::ShiftTraffic { .. })),
            Arc::new(traffic::ShiftTraffic),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::Monitor { .. })),
            Arc::new(traffic::Monitor),
        )
        .register(
            |t| matches!(t, ActionFor::Rollback(RollbackKind::TrafficToX)),
            Arc::new(traffic::TrafficToX),
        );
    if let Some(access) = kong {
        register_kong_actions(&mut registry, access);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Toolbox;
    use crate::lb::manual::ManualTrafficDriver;
    use crate::secrets::Redactor;

    #[test]
    fn a_step_with_builtin_off_has_no_action_and_previews_as_a_checklist_item() {
        let toolbox = Toolbox::new(
            Arc::new(ManualTrafficDriver),
            Redactor::default(),
            builtins(None),
        );
        let plan = crate::plan::templates::sample::plan(
            crate::plan::model::Mode::Traditional,
            crate::plan::model::StrategyChoice::Fixed(crate::plan::model::Strategy::DualCluster),
        );
        let expanded = crate::plan::templates::expand(&plan).unwrap();
        let mut step = expanded
            .steps()
            .map(|(_, s)| s.clone())
            .find(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }))
            .unwrap();
        assert!(toolbox.action_for(&step, None).is_some());
        step.builtin = false;
        assert!(toolbox.action_for(&step, None).is_none());
        assert_eq!(
            toolbox.preview(&plan, &step, None),
            vec!["nothing runs: do this by hand; confirming records that it is done".to_string()]
        );
    }
}

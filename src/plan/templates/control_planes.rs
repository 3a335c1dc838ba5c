//! Where a hybrid deployment's control-plane phase departs from the traditional guides:
//! control planes proxy nothing, so "traffic" and "staging tests" mean Admin API work.

use super::common::Draft;
use crate::plan::model::Plan;
use crate::plan::steps::{RollbackAction, RollbackKind, Step, StepKind};

/// Added to `decommission-x` of the control-plane phase (Kong's hybrid overview).
pub(super) const DECOMMISSION_NOTE: &str = "In hybrid mode Kong lets you delay this to the very end of the data-plane upgrade: skip it here and decommission X's control planes together with X's data planes. Data planes still attached to X's control planes keep proxying with their last configuration.";

/// What decommissioning X's control planes cannot undo: their data planes stay.
pub(super) const DECOMMISSION_IRREVERSIBLE: &str = "X's control planes go away: X's data planes keep proxying with their last configuration, but no change reaches them from X again, and going back means rebuilding X's control planes from the backup.";

/// The guide's staging tests, for control planes: there is no proxy on them to test.
pub(super) fn staging_tests(guide_ref: &str, guide: &str, plan: &Plan) -> Step {
    Draft::new(
        "staging-tests",
        guide_ref,
        "Staging tests against control planes Y",
        StepKind::Manual,
    )
    .guide(guide)
    .note(format!(
        "Control planes proxy nothing, so the proxy smoke tests run in the data-plane phase. Here, check Y's control planes through their Admin API (services, routes, plugins and consumers are all there, as on X) and, if you can, connect a test data plane of version {} to them.",
        plan.to
    ))
    .build()
}

/// The guide's "divert traffic" step, for control planes: what moves is the Admin API
/// work and, optionally, X's data planes.
pub(super) fn switch_control_plane(guide_ref: &str, guide: &str, plan: &Plan) -> Step {
    let data_planes = if plan.from.major == plan.to.major {
        "X's data planes may stay on X's control planes or be pointed at Y's for a while (Kong guarantees a newer control-plane minor accepts older data planes), which lets the upgrade pause between phases."
    } else {
        "Across a major version X's data planes cannot connect to Y's control planes: leave them on X's until they are replaced in the data-plane phase."
    };
    Draft::new(
        "switch-control-plane",
        guide_ref,
        "Move Admin API work to control planes Y",
        StepKind::Manual,
    )
    .guide(guide)
    .note(format!(
        "In hybrid mode control planes carry no proxy traffic: what moves here is the Admin API work (Kong Manager, decK pipelines, automation), which stays frozen until the end of the upgrade. {data_planes} Proxy traffic moves in the data-plane phase."
    ))
    .changes()
    .rollback(RollbackAction {
        title: "Point Admin API clients back at control planes X".to_string(),
        instruction: "Point Kong Manager, decK pipelines and any data planes you moved back at X's control planes.".to_string(),
        kind: RollbackKind::Manual,
        irreversible: false,
    })
    .build()
}

//! Which nodes the plan has up at a point of the run: pure rules over the expanded plan
//! and the steps' states, beside the rollback's (`rollback.rs`). The console uses them so a
//! node down as planned does not read as a failure.

use super::event::StepState;
use crate::plan::model::{Mode, Plan, Role};
use crate::plan::steps::{ClusterSide, ExpandedPlan, PhaseName, Step, StepKind, StepRef};

/// One step of the run as far as it has got: a forward step of the plan, or a rollback
/// step as the engine planned it. The run's steps are given in run order, the rollback
/// steps last.
#[derive(Debug, Clone, Copy)]
pub struct StepAt<'a> {
    pub step_ref: &'a StepRef,
    pub step: &'a Step,
    pub state: StepState,
}

/// Whether `side`'s nodes of `role` should answer now. The steps that decide are those of
/// the node's phase (in hybrid mode control planes and data planes have a phase each, and
/// the data planes' decommissioning of X ends X's control planes too): Y's once the
/// phase's step starting them (else deploying them, else its first step that changes
/// anything) has begun; X's until a step stopping or decommissioning them has succeeded.
/// A rollback step stopping them puts them down; one starting them again, once begun, up.
/// In a plan that rolls in waves, `wave` is the node's wave on `side` (`plan::waves`): a
/// wave's step decides only for its own nodes; `None` asks of the role as a whole, which any
/// wave's step decides.
pub fn node_expected_up<'a, I>(
    mode: Mode,
    expanded: &ExpandedPlan,
    steps: I,
    side: ClusterSide,
    role: Role,
    wave: Option<usize>,
) -> bool
where
    I: DoubleEndedIterator<Item = StepAt<'a>> + Clone,
{
    let hybrid = mode == Mode::Hybrid;
    let phase = match (hybrid, role) {
        (true, Role::ControlPlane) => Some(PhaseName::ControlPlane),
        (true, Role::DataPlane) => Some(PhaseName::DataPlane),
        _ => None,
    };
    let in_phase = |step: &StepRef| phase.is_none_or(|phase| step.phase == phase);
    let begun = |e: &StepAt| !matches!(e.state, StepState::Pending | StepState::Ready);
    let for_node = |step_wave: Option<usize>| match (step_wave, wave) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    // Rollback steps undoing a step of the node's phase, newest decision first.
    let rollback = steps.clone().filter(|e| {
        e.step_ref.phase == PhaseName::Rollback
            && super::rollback::undone_step(expanded, e.step_ref)
                .is_some_and(|forward| in_phase(&forward))
    });
    for e in rollback.rev() {
        match e.step.kind {
            StepKind::StartNodes { cluster, wave }
                if cluster == side && for_node(wave) && begun(&e) =>
            {
                return true;
            }
            StepKind::StopNodes { cluster, wave }
                if cluster == side && for_node(wave) && e.state == StepState::Succeeded =>
            {
                return false;
            }
            _ => {}
        }
    }
    let forward = || {
        steps
            .clone()
            .filter(|e| e.step_ref.phase != PhaseName::Rollback && in_phase(e.step_ref))
    };
    match side {
        ClusterSide::Y => {
            // What brings Y's nodes up in the phase: its start, else its deployment,
            // else its first change.
            let rank = |e: &StepAt| match e.step.kind {
                StepKind::StartNodes {
                    cluster: ClusterSide::Y,
                    wave,
                } if for_node(wave) => Some(0),
                StepKind::DeployNodes {
                    cluster: ClusterSide::Y,
                } => Some(1),
                _ if e.step.changes => Some(2),
                _ => None,
            };
            let Some(best) = forward().filter_map(|e| rank(&e)).min() else {
                return false;
            };
            forward()
                .filter(|e| rank(e) == Some(best))
                .any(|e| begun(&e))
        }
        ClusterSide::X => !steps.clone().any(|e| {
            let takes_x_down = matches!(
                e.step.kind,
                StepKind::StopNodes {
                    cluster: ClusterSide::X,
                    wave,
                } if for_node(wave)
            ) || matches!(
                e.step.kind,
                StepKind::Decommission {
                    cluster: ClusterSide::X
                }
            );
            let of_the_phase = e.step_ref.phase != PhaseName::Rollback && in_phase(e.step_ref);
            // The data planes' decommissioning of X ends X's control planes too.
            let ends_x_control_planes = hybrid
                && role == Role::ControlPlane
                && e.step_ref.phase == PhaseName::DataPlane
                && matches!(e.step.kind, StepKind::Decommission { .. });
            takes_x_down
                && (of_the_phase || ends_x_control_planes)
                && e.state == StepState::Succeeded
        }),
    }
}

/// Whether any of `side`'s nodes should answer now (see [`node_expected_up`]). `waves`:
/// the plan's (`plan::waves::waves`), worked out once by the caller, as it does not change.
pub fn cluster_expected_up<'a, I>(
    plan: &Plan,
    waves: &[crate::plan::waves::Wave],
    expanded: &ExpandedPlan,
    steps: I,
    side: ClusterSide,
) -> bool
where
    I: DoubleEndedIterator<Item = StepAt<'a>> + Clone,
{
    let cluster = match side {
        ClusterSide::X => &plan.clusters.x,
        ClusterSide::Y => &plan.clusters.y,
    };
    cluster.nodes.iter().any(|node| {
        let wave = crate::plan::waves::wave_of(waves, side, &node.name);
        node_expected_up(plan.mode, expanded, steps.clone(), side, node.role, wave)
    })
}

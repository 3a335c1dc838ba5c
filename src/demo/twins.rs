//! What a step does to the lab, said as lab commands: the twin of a built-in action, for
//! rebuilding a lab from the journal, and the effect on the nodes of a node step whose
//! commands do not give it (a rehearsed plan's own install scripts, which the lab does not
//! simulate; the rollback steps of a demo, which have no commands).

use std::sync::Arc;

use crate::engine::step::{
    ActionError, StepAction, StepContext, StepOutcome, Toolbox, run_commands,
};
use crate::plan::model::{CommandLine, CommandSpec, Plan};
use crate::plan::placement::step_nodes;
use crate::plan::steps::{ExpandedPlan, PhaseName, RollbackKind, Step, StepKind};
use crate::sim::Lab;
use crate::sim::node::Lifecycle;

/// Where a node step leaves its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeGoal {
    /// Installed; a later step of the phase starts them.
    Installed,
    Running,
    Stopped,
    Absent,
}

impl NodeGoal {
    fn describe(self) -> &'static str {
        match self {
            NodeGoal::Installed => "installed",
            NodeGoal::Running => "running",
            NodeGoal::Stopped => "stopped",
            NodeGoal::Absent => "removed",
        }
    }
}

/// Where a forward step of `kind` in `phase` leaves its nodes; `None` for other steps.
pub fn node_goal(expanded: &ExpandedPlan, phase: PhaseName, kind: &StepKind) -> Option<NodeGoal> {
    Some(match *kind {
        StepKind::DeployNodes { cluster } => {
            let starts_later = expanded
                .phases
                .iter()
                .filter(|p| p.name == phase)
                .flat_map(|p| &p.steps)
                .any(|s| matches!(s.kind, StepKind::StartNodes { cluster: c, .. } if c == cluster));
            if starts_later {
                NodeGoal::Installed
            } else {
                NodeGoal::Running
            }
        }
        StepKind::StartNodes { .. } => NodeGoal::Running,
        StepKind::StopNodes { .. } => NodeGoal::Stopped,
        StepKind::Decommission { .. } => NodeGoal::Absent,
        _ => return None,
    })
}

/// The forward kind a node rollback step acts like (start or stop the same nodes).
pub fn rollback_as_step(kind: &RollbackKind) -> Option<StepKind> {
    match *kind {
        RollbackKind::StartNodes { cluster, wave } => Some(StepKind::StartNodes { cluster, wave }),
        RollbackKind::StopNodes { cluster, wave } => Some(StepKind::StopNodes { cluster, wave }),
        _ => None,
    }
}

/// The lab command that brings `nodes` to `goal`, or `None` when they are there already.
pub fn node_twin(lab: &Lab, goal: NodeGoal, nodes: &[String]) -> Option<CommandLine> {
    let states = lab.nodes();
    let lifecycle = |name: &str| states.iter().find(|n| n.name == name).map(|n| n.lifecycle);
    let (verb, pending): (&str, Vec<&String>) = match goal {
        NodeGoal::Installed => (
            "install",
            nodes
                .iter()
                .filter(|n| lifecycle(n) == Some(Lifecycle::Absent))
                .collect(),
        ),
        NodeGoal::Running => (
            "deploy",
            nodes
                .iter()
                .filter(|n| lifecycle(n).is_some_and(|l| l != Lifecycle::Running))
                .collect(),
        ),
        NodeGoal::Stopped => (
            "stop",
            nodes
                .iter()
                .filter(|n| lifecycle(n) == Some(Lifecycle::Running))
                .collect(),
        ),
        NodeGoal::Absent => (
            "decommission",
            nodes
                .iter()
                .filter(|n| lifecycle(n).is_some_and(|l| l != Lifecycle::Absent))
                .collect(),
        ),
    };
    if pending.is_empty() {
        return None;
    }
    let mut argv = vec!["lab".to_string(), verb.to_string()];
    argv.extend(pending.into_iter().cloned());
    Some(CommandLine::Argv(argv))
}

/// The plan's names of the nodes a step of `kind` in `phase` acts on.
pub fn node_names(plan: &Plan, phase: PhaseName, kind: &StepKind) -> Vec<String> {
    step_nodes(plan, phase, kind)
        .into_iter()
        .map(|n| n.name.clone())
        .collect()
}

/// Node steps on a lab: the plan's commands (which the lab simulates only when they are
/// Kong's own, `systemctl` or `lab`), then the lab brings the step's nodes where the step
/// leaves them, as the operator's scripts would on real hosts (nothing when the commands
/// did it), then the usual action (the Kong node wait) with nothing left to run.
pub struct LabNodes {
    pub lab: Lab,
    pub inner: Option<Arc<dyn StepAction>>,
}

impl LabNodes {
    /// The step kind and phase the step acts as (a node rollback acts like a forward
    /// start or stop of the same nodes).
    fn acts_as(ctx: &StepContext) -> Option<(PhaseName, StepKind)> {
        match &ctx.rollback {
            Some(of) => Some((
                of.undoes.as_ref().map_or(ctx.step_ref.phase, |s| s.phase),
                rollback_as_step(&of.kind)?,
            )),
            None => Some((ctx.step_ref.phase, ctx.step.kind.clone())),
        }
    }
}

#[async_trait::async_trait]
impl StepAction for LabNodes {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let mut lines = vec![
            "lab: after the plan's commands, the lab brings the step's nodes where the step \
             leaves them (what those commands do on real hosts)"
                .to_string(),
        ];
        if let Some(inner) = &self.inner {
            lines.extend(inner.describe(step, plan, toolbox));
        }
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let commands = std::mem::take(&mut ctx.step.commands);
        if !commands.is_empty()
            && let failed @ StepOutcome::Failed { .. } = run_commands(ctx, &commands).await?
        {
            return Ok(failed);
        }
        if let Some((phase, kind)) = Self::acts_as(ctx)
            && let Some(goal) = node_goal(&ctx.expanded, phase, &kind)
        {
            let mut nodes = node_names(&ctx.plan, phase, &kind);
            nodes.retain(|n| !ctx.taken_out.contains_key(n));
            match node_twin(&self.lab, goal, &nodes) {
                Some(program) => {
                    let spec = CommandSpec {
                        program,
                        executor: Some("local".to_string()),
                        timeout: None,
                        node: None,
                    };
                    let outcome = ctx.run_command(&spec, Vec::new()).await?;
                    if !outcome.success() {
                        return Ok(StepOutcome::failed(format!(
                            "the lab could not make {} {}: `{}` did not succeed",
                            nodes.join(", "),
                            goal.describe(),
                            spec.program.display()
                        )));
                    }
                }
                None => ctx.log.note(&format!(
                    "lab: {} already {}",
                    nodes.join(", "),
                    goal.describe()
                )),
            }
        }
        match &self.inner {
            Some(inner) => inner.execute(ctx).await,
            None => Ok(StepOutcome::succeeded(
                "the lab's nodes are where the step leaves them",
            )),
        }
    }
}

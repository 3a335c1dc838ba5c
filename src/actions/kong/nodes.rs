//! Starting, deploying, stopping and decommissioning nodes. The plan's commands (or the
//! operator) do the work; kongup then waits, with a deadline and a countdown in the log,
//! until the nodes answer with the expected version and `/status/ready` 200 (start, deploy),
//! or stop answering or report draining (stop, decommission).
//!
//! The engine runs a step's action before its commands, and this wait must come after
//! them: the action runs the step's commands itself, then leaves the step none to run.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{KongAccess, is_version, phase_for_preview, side_name, side_version};
use crate::engine::step::run_commands;
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::kong::client::{AdminError, Readiness};
use crate::plan::model::{Node, Plan, Role};
use crate::plan::placement::step_nodes;
use crate::plan::steps::{ClusterSide, ExpandedPlan, PhaseName, RollbackKind, Step, StepKind};
use crate::plan::version::KongVersion;

/// What the step waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Up,
    Down,
    /// Deploying only installs: a later step starts the nodes and waits for them there.
    Nothing(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    side: ClusterSide,
    want: Want,
    /// Which nodes of the side this phase acts on: control planes, data planes, or all.
    role: Option<Role>,
}

fn role_of_phase(phase: PhaseName) -> Option<Role> {
    match phase {
        PhaseName::ControlPlane => Some(Role::ControlPlane),
        PhaseName::DataPlane => Some(Role::DataPlane),
        PhaseName::Cluster | PhaseName::Rollback => None,
    }
}

/// What a step of `kind` in `phase` waits for.
fn target(expanded: &ExpandedPlan, phase: PhaseName, kind: &StepKind) -> Option<Target> {
    let role = role_of_phase(phase);
    let (side, want) = match *kind {
        StepKind::StartNodes { cluster } => (cluster, Want::Up),
        StepKind::StopNodes { cluster } | StepKind::Decommission { cluster } => {
            (cluster, Want::Down)
        }
        StepKind::DeployNodes { cluster } => {
            let starts_later = expanded
                .phases
                .iter()
                .find(|p| p.name == phase)
                .and_then(|p| {
                    p.steps
                        .iter()
                        .find(|s| s.kind == StepKind::StartNodes { cluster })
                });
            match starts_later {
                Some(start) => (
                    cluster,
                    Want::Nothing(format!(
                        "{}'s nodes start at {phase}/{}: kongup waits for them there",
                        side_name(cluster),
                        start.id
                    )),
                ),
                None => (cluster, Want::Up),
            }
        }
        _ => return None,
    };
    Some(Target { side, want, role })
}

fn scope_name(target: &Target) -> String {
    let what = match target.role {
        Some(Role::ControlPlane) => "control planes",
        Some(Role::DataPlane) => "data planes",
        _ => "nodes",
    };
    format!("{}'s {what}", side_name(target.side))
}

fn checkable(node: &Node) -> bool {
    node.admin_url.is_some() || node.status_url.is_some()
}

pub struct NodesWait {
    access: Arc<KongAccess>,
}

impl NodesWait {
    pub fn new(access: Arc<KongAccess>) -> NodesWait {
        NodesWait { access }
    }
}

#[async_trait::async_trait]
impl StepAction for NodesWait {
    fn describe(&self, step: &Step, plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        let (expanded, phase) = phase_for_preview(plan, step);
        let target = expanded.and_then(|e| target(&e, phase, &step.kind));
        let Some(target) = target else {
            return Vec::new();
        };
        let after = if step.commands.is_empty() {
            "once you confirm the nodes are done, ".to_string()
        } else {
            "after the plan's commands below, ".to_string()
        };
        // The nodes the step acts on: those its commands are placed on.
        let nodes = step_nodes(plan, phase, &step.kind);
        let names: Vec<&str> = nodes
            .iter()
            .filter(|n| checkable(n))
            .map(|n| n.name.as_str())
            .collect();
        let limit = humantime::format_duration(self.access.waits.nodes);
        let line = match &target.want {
            Want::Nothing(why) => format!("no wait here: {why}"),
            _ if names.is_empty() => format!(
                "no wait: none of {} has an Admin or Status URL in the plan, so the operator \
                 checks them",
                scope_name(&target)
            ),
            Want::Up => format!(
                "{after}wait up to {limit} until {} ({}) answer with Kong {} and /status/ready \
                 200",
                scope_name(&target),
                names.join(", "),
                side_version(plan, target.side)
            ),
            Want::Down => format!(
                "{after}wait up to {limit} until {} ({}) stop answering, report draining, or \
                 answer with another version than {}",
                scope_name(&target),
                names.join(", "),
                side_version(plan, target.side)
            ),
        };
        vec![line]
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let (phase, kind) = match &ctx.rollback {
            Some(of) => {
                let phase = of.undoes.as_ref().map_or(PhaseName::Cluster, |s| s.phase);
                let kind = match of.kind {
                    RollbackKind::StartNodes { cluster } => StepKind::StartNodes { cluster },
                    RollbackKind::StopNodes { cluster } => StepKind::StopNodes { cluster },
                    _ => ctx.step.kind.clone(),
                };
                (phase, kind)
            }
            None => (ctx.step_ref.phase, ctx.step.kind.clone()),
        };
        let Some(target) = target(&ctx.expanded, phase, &kind) else {
            return Err(ActionError::Failed(format!(
                "{} does not start or stop nodes",
                ctx.step_ref
            )));
        };
        // The commands first: the wait is for what they do.
        let commands = std::mem::take(&mut ctx.step.commands);
        let mut details = Vec::new();
        if !commands.is_empty() {
            match run_commands(ctx, &commands).await? {
                StepOutcome::Succeeded { detail, .. } => details.extend(detail),
                failed => return Ok(failed),
            }
        }
        let plan = ctx.plan.clone();
        let nodes: Vec<Node> = step_nodes(&plan, phase, &kind)
            .into_iter()
            .cloned()
            .collect();
        let waited = match &target.want {
            Want::Nothing(why) => {
                ctx.log.note(why);
                Ok(why.clone())
            }
            _ if !nodes.iter().any(checkable) => {
                let text = format!(
                    "none of {} has an Admin or Status URL in the plan: kongup cannot see them; \
                     your confirm says they are done",
                    scope_name(&target)
                );
                ctx.log.note(&text);
                Ok(text)
            }
            want => {
                self.wait(ctx, &target, want, &nodes, side_version(&plan, target.side))
                    .await
            }
        };
        match waited {
            Ok(text) => {
                details.push(text);
                Ok(StepOutcome::succeeded(details.join("; ")))
            }
            Err(failed) => Ok(failed),
        }
    }
}

/// Where one node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeState {
    Done,
    /// Why it is not there yet.
    Pending(String),
    /// The plan gives no way to look at it.
    Unchecked,
}

impl NodesWait {
    async fn state(&self, node: &Node, want: &Want, version: KongVersion) -> NodeState {
        if !checkable(node) {
            return NodeState::Unchecked;
        }
        let client = &self.access.probe;
        // What the Admin API says: `Some(Ok(version))`, `Some(Err(why))`, or no URL.
        let admin = match &node.admin_url {
            Some(url) => Some(
                client
                    .node_info(url)
                    .await
                    .map(|info| info.version)
                    .map_err(|e| e.to_string()),
            ),
            None => None,
        };
        let status = match &node.status_url {
            Some(url) => Some(match client.readiness(url).await {
                // Before 3.3 there is no /status/ready: /status answering means up.
                Err(AdminError::NotFound { .. }) => client
                    .node_status(url)
                    .await
                    .map(|_| Readiness::Ready)
                    .map_err(|e| e.to_string()),
                other => other.map_err(|e| e.to_string()),
            }),
            None => None,
        };
        match want {
            Want::Up => {
                let mut missing = Vec::new();
                match &admin {
                    Some(Ok(reported)) if !is_version(reported, version) => {
                        missing.push(format!("answers Kong {reported}, not {version}"))
                    }
                    Some(Err(why)) => missing.push(why.clone()),
                    _ => {}
                }
                match &status {
                    Some(Ok(Readiness::NotReady(reason))) => {
                        missing.push(format!("/status/ready says {reason}"))
                    }
                    Some(Err(why)) => missing.push(why.clone()),
                    _ => {}
                }
                if missing.is_empty() {
                    NodeState::Done
                } else {
                    NodeState::Pending(missing.join("; "))
                }
            }
            Want::Down | Want::Nothing(_) => {
                // Another version at the address: this side's Kong is gone from there (in
                // place, the same machines serve Y afterwards).
                if let Some(Ok(reported)) = &admin
                    && !is_version(reported, version)
                {
                    return NodeState::Done;
                }
                if let Some(Ok(Readiness::NotReady(_))) = &status {
                    return NodeState::Done;
                }
                if let Some(Ok(reported)) = &admin {
                    return NodeState::Pending(format!("still answers with Kong {reported}"));
                }
                if let Some(Ok(Readiness::Ready)) = &status {
                    return NodeState::Pending("/status/ready still answers 200".to_string());
                }
                NodeState::Done
            }
        }
    }

    /// Polls until every checkable node is where `want` says, the deadline passes, or the
    /// operator aborts. `Ok` says what was seen; `Err` is the failed step.
    async fn wait(
        &self,
        ctx: &StepContext,
        target: &Target,
        want: &Want,
        nodes: &[Node],
        version: KongVersion,
    ) -> Result<String, StepOutcome> {
        let waits = self.access.waits;
        let started = Instant::now();
        let deadline = started + waits.nodes;
        let mut next_progress = started;
        let (goal, reached) = match want {
            Want::Up => (
                format!("answer with Kong {version} and be ready"),
                format!("answer with Kong {version} and are ready"),
            ),
            _ => (
                format!(
                    "stop answering, report draining, or answer with another version than {version}"
                ),
                format!(
                    "stopped answering, report draining, or answer with another version than {version}"
                ),
            ),
        };
        ctx.log.note(&format!(
            "waiting up to {} for {} to {goal}",
            humantime::format_duration(waits.nodes),
            scope_name(target)
        ));
        loop {
            let states =
                futures::future::join_all(nodes.iter().map(|node| self.state(node, want, version)))
                    .await;
            let unchecked: Vec<&str> = nodes
                .iter()
                .zip(&states)
                .filter(|(_, s)| **s == NodeState::Unchecked)
                .map(|(n, _)| n.name.as_str())
                .collect();
            let pending: Vec<String> = nodes
                .iter()
                .zip(&states)
                .filter_map(|(n, s)| match s {
                    NodeState::Pending(why) => Some(format!("{} ({why})", n.name)),
                    _ => None,
                })
                .collect();
            let checked = nodes.len() - unchecked.len();
            if pending.is_empty() {
                let mut text = format!(
                    "{} {reached} ({checked} checked, after {})",
                    scope_name(target),
                    humantime::format_duration(round(started.elapsed()))
                );
                if !unchecked.is_empty() {
                    text.push_str(&format!(
                        "; not checked (no Admin or Status URL): {}",
                        unchecked.join(", ")
                    ));
                }
                ctx.log.note(&text);
                return Ok(text);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StepOutcome::failed(format!(
                    "after {}, {} of the {checked} checked of {} still do not {goal}: {}. Check \
                     them, then retry the step (its commands run again) or mark it done with a \
                     note",
                    humantime::format_duration(waits.nodes),
                    pending.len(),
                    scope_name(target),
                    pending.join("; ")
                )));
            }
            if now >= next_progress {
                ctx.log.note(&format!(
                    "{} of {checked} done; waiting for {}; {} left",
                    checked - pending.len(),
                    pending.join("; "),
                    humantime::format_duration(round(deadline - now))
                ));
                next_progress = now + waits.progress;
            }
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    return Err(StepOutcome::failed(format!(
                        "aborted by the operator while waiting for {}",
                        scope_name(target)
                    )));
                }
                _ = tokio::time::sleep(waits.poll.min(deadline - now)) => {}
            }
        }
    }
}

/// Whole seconds, for the log.
fn round(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}

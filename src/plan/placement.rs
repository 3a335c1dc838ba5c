//! Where a plan command without an `executor` runs.
//!
//! A step that acts on a cluster's nodes (deploy, start, stop, decommission) runs such a
//! command once per node it acts on, on that node's executor (`local` when the node has
//! none); a migrations step runs it on the first Y node of the phase's role; any other
//! step runs it on `local`. The templates apply this when they expand the plan, so
//! `kongup plan`, the preview before a confirm and the run itself show and do the same.

use super::model::{CommandSpec, Node, Plan, Role};
use super::steps::{ClusterSide, PhaseName, StepKind};
use super::waves::waves;

/// The executor every plan has, and the one for nodes and commands that name none.
const LOCAL: &str = "local";

/// The nodes of a phase: in hybrid mode each phase upgrades one role.
fn role_of(phase: PhaseName) -> Option<Role> {
    match phase {
        PhaseName::ControlPlane => Some(Role::ControlPlane),
        PhaseName::DataPlane => Some(Role::DataPlane),
        PhaseName::Cluster | PhaseName::Rollback => None,
    }
}

fn nodes_of(plan: &Plan, side: ClusterSide, phase: PhaseName) -> Vec<&Node> {
    let cluster = match side {
        ClusterSide::X => &plan.clusters.x,
        ClusterSide::Y => &plan.clusters.y,
    };
    let role = role_of(phase);
    cluster
        .nodes
        .iter()
        .filter(|node| role.is_none_or(|role| node.role == role))
        .collect()
}

/// The nodes of one wave of `side` (`rolling:`): those it starts on Y, stops on X.
fn wave_nodes(plan: &Plan, side: ClusterSide, phase: PhaseName, wave: usize) -> Vec<&Node> {
    let waves = waves(plan);
    let Some(wave) = waves.iter().find(|w| w.number == wave) else {
        return Vec::new();
    };
    let names = match side {
        ClusterSide::X => &wave.x_nodes,
        ClusterSide::Y => &wave.y_nodes,
    };
    nodes_of(plan, side, phase)
        .into_iter()
        .filter(|n| names.contains(&n.name))
        .collect()
}

/// The nodes a step of `phase` acts on, in plan order: every node of its cluster (of the
/// phase's role in hybrid mode) for deploy/start/stop/decommission, the first Y node for
/// migrations, none for the other kinds.
pub fn step_nodes<'p>(plan: &'p Plan, phase: PhaseName, kind: &StepKind) -> Vec<&'p Node> {
    match kind {
        StepKind::DeployNodes { cluster }
        | StepKind::StartNodes {
            cluster,
            wave: None,
        }
        | StepKind::StopNodes {
            cluster,
            wave: None,
        }
        | StepKind::Decommission { cluster } => nodes_of(plan, *cluster, phase),
        StepKind::StartNodes {
            cluster,
            wave: Some(wave),
        }
        | StepKind::StopNodes {
            cluster,
            wave: Some(wave),
        } => wave_nodes(plan, *cluster, phase, *wave),
        StepKind::Migrations(_) => nodes_of(plan, ClusterSide::Y, phase)
            .into_iter()
            .take(1)
            .collect(),
        StepKind::Preflight
        | StepKind::Manual
        | StepKind::Review
        | StepKind::FreezeWrites
        | StepKind::Backup(_)
        | StepKind::RestoreDatabase
        | StepKind::SmokeTests
        | StepKind::CompatibilityCheck
        | StepKind::ShiftTraffic { .. }
        | StepKind::Monitor { .. } => Vec::new(),
    }
}

/// The step's commands with each command that names no executor replaced by one copy per
/// node the step acts on, in node order, each on the node's executor and naming the node.
/// Commands that name an executor run once, where they say; on a step that acts on no
/// node, commands are left as they are (no executor: `local`).
pub fn place_commands(
    plan: &Plan,
    phase: PhaseName,
    kind: &StepKind,
    commands: Vec<CommandSpec>,
) -> Vec<CommandSpec> {
    let nodes = step_nodes(plan, phase, kind);
    if nodes.is_empty() {
        return commands;
    }
    commands
        .into_iter()
        .flat_map(|command| {
            if command.executor.is_some() {
                return vec![command];
            }
            nodes
                .iter()
                .map(|node| CommandSpec {
                    executor: Some(node.executor.clone().unwrap_or_else(|| LOCAL.to_string())),
                    node: Some(node.name.clone()),
                    ..command.clone()
                })
                .collect()
        })
        .collect()
}

/// The commands in runs that are shown as one: the copies of one command placed on
/// several nodes, one after the other, form one run; every other command is a run of its
/// own. For previews ("run `X` on kong-y-1 (…), kong-y-2 (…)").
pub fn command_runs(commands: &[CommandSpec]) -> Vec<&[CommandSpec]> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < commands.len() {
        let first = &commands[start];
        let mut end = start + 1;
        if first.node.is_some() {
            while end < commands.len()
                && commands[end].node.is_some()
                && commands[end].program == first.program
                && commands[end].timeout == first.timeout
            {
                end += 1;
            }
        }
        runs.push(&commands[start..end]);
        start = end;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{ExecutorSpec, Mode, Strategy, StrategyChoice};
    use crate::plan::steps::MigrationsCommand;
    use crate::plan::templates::sample::{argv, plan};

    fn placed(commands: &[CommandSpec]) -> Vec<(Option<&str>, Option<&str>)> {
        commands
            .iter()
            .map(|c| (c.node.as_deref(), c.executor.as_deref()))
            .collect()
    }

    #[test]
    fn node_steps_run_a_command_per_node_on_its_executor() {
        let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        p.executors.insert(
            "y1-ssh".into(),
            ExecutorSpec::Ssh {
                host: "10.0.2.11".into(),
                user: Some("deploy".into()),
                port: None,
                identity_file: None,
            },
        );
        p.clusters.y.nodes[0].executor = Some("y1-ssh".into());
        p.clusters.y.nodes[1].executor = None;
        let mut on_lb = argv(&["reload-lb"]);
        on_lb.executor = Some("local".into());
        let commands = place_commands(
            &p,
            PhaseName::Cluster,
            &StepKind::DeployNodes {
                cluster: ClusterSide::Y,
            },
            vec![argv(&["install"]), on_lb, argv(&["restart"])],
        );
        assert_eq!(
            placed(&commands),
            [
                (Some("y-1"), Some("y1-ssh")),
                (Some("y-2"), Some("local")),
                (None, Some("local")),
                (Some("y-1"), Some("y1-ssh")),
                (Some("y-2"), Some("local")),
            ]
        );
        assert_eq!(commands[0].program, argv(&["install"]).program);
        assert_eq!(commands[4].program, argv(&["restart"]).program);
        let runs: Vec<usize> = command_runs(&commands).iter().map(|r| r.len()).collect();
        assert_eq!(runs, [2, 1, 2]);
    }

    #[test]
    fn hybrid_phases_act_on_their_role_and_migrations_on_the_first_y_node() {
        let p = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::InPlace));
        let names = |phase, kind: StepKind| -> Vec<String> {
            step_nodes(&p, phase, &kind)
                .iter()
                .map(|n| n.name.clone())
                .collect()
        };
        let stop_x = StepKind::StopNodes {
            cluster: ClusterSide::X,
            wave: None,
        };
        assert_eq!(names(PhaseName::ControlPlane, stop_x.clone()), ["x-cp"]);
        assert_eq!(names(PhaseName::DataPlane, stop_x), ["x-dp-1", "x-dp-2"]);
        assert_eq!(
            names(
                PhaseName::DataPlane,
                StepKind::Decommission {
                    cluster: ClusterSide::Y
                }
            ),
            ["y-dp-1", "y-dp-2"]
        );
        assert_eq!(
            names(
                PhaseName::ControlPlane,
                StepKind::Migrations(MigrationsCommand::Up)
            ),
            ["y-cp"]
        );
        let t = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        let first: Vec<&str> = step_nodes(
            &t,
            PhaseName::Cluster,
            &StepKind::Migrations(MigrationsCommand::Finish),
        )
        .iter()
        .map(|n| n.name.as_str())
        .collect();
        assert_eq!(first, ["y-1"]);
    }

    #[test]
    fn other_steps_keep_their_commands_local() {
        let p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        for kind in [
            StepKind::Manual,
            StepKind::Preflight,
            StepKind::SmokeTests,
            StepKind::RestoreDatabase,
        ] {
            let commands = place_commands(&p, PhaseName::Cluster, &kind, vec![argv(&["x"])]);
            assert_eq!(placed(&commands), [(None, None)], "{kind:?}");
        }
    }
}

//! The plan's own commands for a step: run in order, each on its executor, output
//! streamed into the step's log; the first that does not exit 0 fails the step.
//!
//! Where each command runs was settled when the plan was expanded (`plan::placement`):
//! a command the plan gave a node step without an executor is already one copy per node,
//! each naming its node and that node's executor.

use super::{ActionError, StepContext, StepOutcome, Toolbox, describe_exit};
use std::collections::BTreeMap;

use crate::exec::ExitOutcome;
use crate::plan::model::{CommandSpec, ExecutorSpec, Plan};
use crate::plan::placement::command_runs;

/// Where one command runs, for people: "kong-y-1 (ssh deploy@10.0.2.11)" or "local".
fn place(spec: &CommandSpec, toolbox: &Toolbox) -> String {
    let name = spec.executor.as_deref().unwrap_or("local");
    let executor = toolbox
        .executors
        .get(name)
        .map_or_else(|| format!("unknown executor '{name}'"), |e| e.describe());
    match &spec.node {
        Some(node) => format!("{node} ({executor})"),
        None => executor,
    }
}

/// What each command will run and where, as shown before the confirm. The copies of one
/// command placed on several nodes share a line: "run `X` on kong-y-1 (…), kong-y-2 (…)".
pub fn describe_commands(commands: &[CommandSpec], plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
    command_runs(commands)
        .into_iter()
        .map(|run| {
            let first = &run[0];
            let timeout = humantime::format_duration(first.timeout.unwrap_or(plan.command_timeout));
            if runs_together(run, plan) {
                let nodes: Vec<&str> = run.iter().filter_map(|c| c.node.as_deref()).collect();
                return format!(
                    "run `{}` on {} nodes ({}) in one invocation of {} (timeout {timeout})",
                    first.program.display(),
                    nodes.len(),
                    some_nodes(&nodes),
                    place(
                        &CommandSpec {
                            node: None,
                            ..first.clone()
                        },
                        toolbox
                    ),
                );
            }
            let places: Vec<String> = run.iter().map(|spec| place(spec, toolbox)).collect();
            format!(
                "run `{}` on {} (timeout {timeout}{})",
                first.program.display(),
                places.join(", "),
                if run.len() > 1 { " each" } else { "" }
            )
        })
        .collect()
}

/// How many nodes a line names before it counts the rest: a fleet's thousand names would
/// bury the line.
const NODES_NAMED: usize = 5;

/// The first nodes by name, then how many more: "dp-1, dp-2, dp-3, dp-4, dp-5 and 995
/// more".
pub(crate) fn some_nodes<S: AsRef<str>>(nodes: &[S]) -> String {
    let shown: Vec<&str> = nodes.iter().take(NODES_NAMED).map(AsRef::as_ref).collect();
    let mut text = shown.join(", ");
    if nodes.len() > NODES_NAMED {
        text.push_str(&format!(" and {} more", nodes.len() - NODES_NAMED));
    }
    text
}

/// Whether the copies of one command placed on several nodes run as one invocation: all
/// on the same `ansible` executor, which reaches its hosts itself (`--limit`).
fn runs_together(run: &[CommandSpec], plan: &Plan) -> bool {
    // A retry with every node done (or taken out) has none left to run.
    let Some(first) = run.first() else {
        return false;
    };
    run.len() > 1
        && run
            .iter()
            .all(|c| c.executor == first.executor && c.node.is_some())
        && first
            .executor
            .as_ref()
            .and_then(|name| plan.executors.get(name))
            .is_some_and(|spec| matches!(spec, ExecutorSpec::Ansible(_)))
}

/// How many failed hosts a step's failure names; the rest are counted.
const FAILED_HOSTS_NAMED: usize = 3;

/// Runs the commands one after another; stops at the first failure or abort. The copies
/// of one command on nodes of one `ansible` executor run as one invocation, and a host
/// that failed there fails the step, named. A copy placed on a node taken out of its wave
/// does not run: the log and the step's detail say so.
pub async fn run_commands(
    ctx: &StepContext,
    commands: &[CommandSpec],
) -> Result<StepOutcome, ActionError> {
    let taken_out = |c: &CommandSpec| {
        c.node
            .as_ref()
            .is_some_and(|node| ctx.taken_out.contains_key(node))
    };
    if !commands.iter().any(taken_out) {
        return run_kept_commands(ctx, commands).await;
    }
    let mut left_out: Vec<&str> = commands
        .iter()
        .filter(|c| taken_out(c))
        .filter_map(|c| c.node.as_deref())
        .collect();
    left_out.dedup();
    for node in &left_out {
        ctx.log.note(&format!(
            "not run on {}",
            ctx.taken_out.get(*node).map_or(*node, String::as_str)
        ));
    }
    // What happened first (the take-out), then what ran on the others.
    let said = format!(
        "{} taken out of {} wave, not run there",
        some_nodes(&left_out),
        if left_out.len() == 1 { "its" } else { "their" }
    );
    let kept: Vec<CommandSpec> = commands.iter().filter(|c| !taken_out(c)).cloned().collect();
    if kept.is_empty() {
        return Ok(StepOutcome::succeeded(format!(
            "{said}; nothing else to run"
        )));
    }
    Ok(match run_kept_commands(ctx, &kept).await? {
        StepOutcome::Succeeded {
            detail,
            gates_passed,
        } => StepOutcome::Succeeded {
            detail: Some(match detail {
                Some(detail) => format!("{said}; {detail}"),
                None => said,
            }),
            gates_passed,
        },
        failed => failed,
    })
}

/// [`run_commands`] once the taken-out nodes' copies are left out.
async fn run_kept_commands(
    ctx: &StepContext,
    commands: &[CommandSpec],
) -> Result<StepOutcome, ActionError> {
    if ctx.in_wave_node_step() {
        return run_wave_commands(ctx, commands).await;
    }
    let mut n = 0;
    for run in command_runs(commands) {
        if ctx.cancel.is_cancelled() {
            return Ok(StepOutcome::failed("aborted by the operator"));
        }
        if runs_together(run, &ctx.plan) {
            let first = &run[0];
            n += run.len();
            let outcomes = ctx.run_command_on_nodes(run, Vec::new()).await?;
            let failed: Vec<_> = outcomes.iter().filter(|o| !o.outcome.success()).collect();
            if !failed.is_empty() {
                let which = if commands.len() > run.len() {
                    format!("commands {}-{n} of {} ", n + 1 - run.len(), commands.len())
                } else {
                    String::new()
                };
                // The one invocation timed out or was aborted: said once, not per host.
                if let Some(ended) = outcomes
                    .iter()
                    .map(|o| o.outcome)
                    .find(|o| matches!(o, ExitOutcome::TimedOut | ExitOutcome::Aborted))
                {
                    let timeout = first.timeout.unwrap_or(ctx.plan.command_timeout);
                    let unreported = outcomes.iter().filter(|o| o.outcome == ended).count();
                    return Ok(StepOutcome::failed(format!(
                        "{which}`{}` on {} nodes: {}; {unreported} of them had not reported by then",
                        first.program.display(),
                        run.len(),
                        describe_exit(ended, timeout)
                    )));
                }
                let mut named: Vec<String> = failed
                    .iter()
                    .take(FAILED_HOSTS_NAMED)
                    .map(|o| format!("on {}: {}", o.host, o.summary))
                    .collect();
                if failed.len() > FAILED_HOSTS_NAMED {
                    named.push(format!("and on {} more", failed.len() - FAILED_HOSTS_NAMED));
                }
                return Ok(StepOutcome::failed(format!(
                    "{which}`{}` failed on {} of {} nodes: {}",
                    first.program.display(),
                    failed.len(),
                    run.len(),
                    named.join("; ")
                )));
            }
            continue;
        }
        for spec in run {
            n += 1;
            if ctx.cancel.is_cancelled() {
                return Ok(StepOutcome::failed("aborted by the operator"));
            }
            let outcome = ctx.run_command(spec, Vec::new()).await?;
            if !outcome.success() {
                let timeout = spec.timeout.unwrap_or(ctx.plan.command_timeout);
                let which = if commands.len() > 1 {
                    format!("command {n} of {} ", commands.len())
                } else {
                    String::new()
                };
                let on = spec
                    .node
                    .as_ref()
                    .map(|node| format!(" on {node}"))
                    .unwrap_or_default();
                return Ok(StepOutcome::failed(format!(
                    "{which}`{}`{on}: {}",
                    spec.program.display(),
                    describe_exit(outcome, timeout)
                )));
            }
        }
    }
    Ok(StepOutcome::succeeded(match commands.len() {
        1 => "the command exited 0".to_string(),
        n => format!("all {n} commands exited 0"),
    }))
}

/// How many failed nodes a wave step's failure names; the rest are counted.
const FAILED_NODES_NAMED: usize = 5;

/// The commands of a wave's node step, node by node: every node not done runs its
/// commands in order until one fails there (a node that failed runs no more of them, the
/// other nodes go on); each node's outcome is journaled once its last command ran, or
/// when one failed. A command the plan placed on no node runs once, and its failure fails
/// the step as on any step.
async fn run_wave_commands(
    ctx: &StepContext,
    commands: &[CommandSpec],
) -> Result<StepOutcome, ActionError> {
    let runs = command_runs(commands);
    // The nodes in plan order, and the last run each has a command in: its outcome is
    // known after that one.
    let mut nodes: Vec<&str> = Vec::new();
    let mut last_run: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for node in run.iter().filter_map(|c| c.node.as_deref()) {
            if last_run.insert(node, i).is_none() {
                nodes.push(node);
            }
        }
    }
    let done: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|n| ctx.nodes_done.contains(*n))
        .collect();
    if !done.is_empty() {
        ctx.log.note(&format!(
            "already done on {} of {} nodes, not run there again: {}",
            done.len(),
            nodes.len(),
            some_nodes(&done)
        ));
    }
    let mut failed: Vec<(String, String)> = Vec::new();
    let aborted = |failed: &[(String, String)]| {
        let mut text = "aborted by the operator".to_string();
        if !failed.is_empty() {
            text.push_str(&format!(
                "; before that, {} failed",
                failed
                    .iter()
                    .map(|(n, why)| format!("{n} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        StepOutcome::failed(text)
    };
    for (i, run) in runs.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return Ok(aborted(&failed));
        }
        let todo: Vec<CommandSpec> = run
            .iter()
            .filter(|c| {
                c.node.as_deref().is_none_or(|node| {
                    !ctx.nodes_done.contains(node) && !failed.iter().any(|(f, _)| f == node)
                })
            })
            .cloned()
            .collect();
        let timeout = run[0].timeout.unwrap_or(ctx.plan.command_timeout);
        // How one invocation for many nodes ended on each of them, in order.
        let mut together: Vec<(String, Result<(), String>)> = Vec::new();
        let serial: &[CommandSpec] = if runs_together(&todo, &ctx.plan) {
            for o in ctx.run_command_on_nodes(&todo, Vec::new()).await? {
                together.push(match o.outcome {
                    ExitOutcome::Aborted => return Ok(aborted(&failed)),
                    ExitOutcome::TimedOut => (o.host, Err(describe_exit(o.outcome, timeout))),
                    code if !code.success() => (o.host, Err(o.summary)),
                    _ => (o.host, Ok(())),
                });
            }
            &[]
        } else {
            &todo
        };
        let mut together = together.into_iter();
        let mut serial = serial.iter();
        loop {
            // The invocation's outcomes, else each command as it ends: every node's outcome
            // is journaled as soon as it is known.
            let (node, outcome) = if let Some(ended) = together.next() {
                ended
            } else if let Some(spec) = serial.next() {
                if ctx.cancel.is_cancelled() {
                    return Ok(aborted(&failed));
                }
                let outcome = ctx.run_command(spec, Vec::new()).await?;
                if outcome == ExitOutcome::Aborted {
                    return Ok(aborted(&failed));
                }
                let result = if outcome.success() {
                    Ok(())
                } else {
                    Err(describe_exit(outcome, timeout))
                };
                match (&spec.node, result) {
                    (Some(node), result) => (node.clone(), result),
                    (None, Ok(())) => continue,
                    (None, Err(why)) => {
                        return Ok(StepOutcome::failed(format!(
                            "`{}` (placed on no node): {why}",
                            spec.program.display()
                        )));
                    }
                }
            } else {
                break;
            };
            match outcome {
                Err(why) => {
                    ctx.log.note(&format!("failed on {node}: {why}"));
                    ctx.record_node(&node, Err(why.clone())).await?;
                    failed.push((node, why));
                }
                // Done once its last command ran.
                Ok(()) if last_run.get(node.as_str()) == Some(&i) => {
                    ctx.record_node(&node, Ok(())).await?;
                }
                Ok(()) => {}
            }
        }
    }
    let ran = nodes.len() - done.len();
    if failed.is_empty() && ran == 0 {
        // A re-run with every node done (a take-out of the last failed one, a resume): "exited
        // 0 on 0 nodes" would read as if something ran.
        return Ok(StepOutcome::succeeded(format!(
            "nothing left to run: {} node{} done before",
            done.len(),
            if done.len() == 1 { "" } else { "s" }
        )));
    }
    if failed.is_empty() {
        let mut text = format!(
            "the commands exited 0 on {ran} node{}",
            if ran == 1 { "" } else { "s" }
        );
        if !done.is_empty() {
            text.push_str(&format!(" ({} done before)", done.len()));
        }
        return Ok(StepOutcome::succeeded(text));
    }
    let mut named: Vec<String> = failed
        .iter()
        .take(FAILED_NODES_NAMED)
        .map(|(node, why)| format!("{node} ({why})"))
        .collect();
    if failed.len() > FAILED_NODES_NAMED {
        named.push(format!("and {} more", failed.len() - FAILED_NODES_NAMED));
    }
    Ok(StepOutcome::failed(format!(
        "{} of {} nodes failed: {}. A retry runs the commands only on the failed nodes; the {} \
         done are not run again",
        failed.len(),
        nodes.len(),
        named.join(", "),
        nodes.len() - failed.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{ExecutorSpec, Mode, Strategy, StrategyChoice};
    use crate::plan::steps::{PhaseName, StepRef};
    use crate::plan::templates::expand;
    use crate::plan::templates::sample::{argv, plan, select};
    use crate::secrets::Redactor;

    #[test]
    fn a_fleet_is_named_by_its_first_nodes_and_counted() {
        assert_eq!(some_nodes(&["a", "b"]), "a, b");
        let fleet: Vec<String> = (1..=1000).map(|n| format!("dp-{n}")).collect();
        assert_eq!(
            some_nodes(&fleet),
            "dp-1, dp-2, dp-3, dp-4, dp-5 and 995 more"
        );
    }

    #[test]
    fn the_preview_names_each_node_and_where_it_runs() {
        let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        p.executors.insert(
            "kong-y-1".into(),
            ExecutorSpec::Ssh {
                host: "10.0.2.11".into(),
                user: Some("deploy".into()),
                port: None,
                identity_file: None,
            },
        );
        p.clusters.y.nodes[0].name = "kong-y-1".into();
        p.clusters.y.nodes[0].executor = Some("kong-y-1".into());
        p.clusters.y.nodes[1].name = "kong-y-2".into();
        p.clusters.y.nodes[1].executor = None;
        let mut on_lb = argv(&["reload-lb"]);
        on_lb.executor = Some("local".into());
        p.steps.overrides.push(crate::plan::model::StepOverride {
            step: select("start-y"),
            commands: vec![argv(&["systemctl", "start", "kong"]), on_lb],
            timeout: None,
            builtin: true,
        });
        let expanded = expand(&p).unwrap();
        let toolbox = Toolbox::for_plan(
            &p,
            Redactor::default(),
            super::super::ActionRegistry::empty(),
        )
        .unwrap();
        let preview = crate::engine::preview_step(
            &p,
            &expanded,
            &toolbox,
            &StepRef::new(PhaseName::Cluster, "start-y"),
        )
        .unwrap();
        assert_eq!(
            preview.runs,
            [
                "run `systemctl start kong` on kong-y-1 (ssh deploy@10.0.2.11), kong-y-2 (local) (timeout 5m each)",
                "run `reload-lb` on local (timeout 5m)",
            ]
        );
    }
}

//! The plan's own commands for a step: run in order, each on its executor, output
//! streamed into the step's log; the first that does not exit 0 fails the step.
//!
//! Where each command runs was settled when the plan was expanded (`plan::placement`):
//! a command the plan gave a node step without an executor is already one copy per node,
//! each naming its node and that node's executor.

use super::{ActionError, StepContext, StepOutcome, Toolbox, describe_exit};
use crate::plan::model::{CommandSpec, Plan};
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
            let places: Vec<String> = run.iter().map(|spec| place(spec, toolbox)).collect();
            format!(
                "run `{}` on {} (timeout {}{})",
                first.program.display(),
                places.join(", "),
                humantime::format_duration(first.timeout.unwrap_or(plan.command_timeout)),
                if run.len() > 1 { " each" } else { "" }
            )
        })
        .collect()
}

/// Runs the commands one after another; stops at the first failure or abort.
pub async fn run_commands(
    ctx: &StepContext,
    commands: &[CommandSpec],
) -> Result<StepOutcome, ActionError> {
    for (n, spec) in commands.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return Ok(StepOutcome::failed("aborted by the operator"));
        }
        let outcome = ctx.run_command(spec, Vec::new()).await?;
        if !outcome.success() {
            let timeout = spec.timeout.unwrap_or(ctx.plan.command_timeout);
            let which = if commands.len() > 1 {
                format!("command {} of {} ", n + 1, commands.len())
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
    Ok(StepOutcome::succeeded(match commands.len() {
        1 => "the command exited 0".to_string(),
        n => format!("all {n} commands exited 0"),
    }))
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

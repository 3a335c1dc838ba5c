//! The plan's own commands for a step: run in order, each on its executor, output
//! streamed into the step's log; the first that does not exit 0 fails the step.

use super::{ActionError, StepContext, StepOutcome, describe_exit};
use crate::engine::toolbox::Toolbox;
use crate::plan::model::{CommandSpec, Plan};

/// What each command will run and where, as shown before the confirm.
pub fn describe_commands(commands: &[CommandSpec], plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
    commands
        .iter()
        .map(|spec| {
            let name = spec.executor.as_deref().unwrap_or("local");
            let place = toolbox
                .executors
                .get(name)
                .map_or_else(|| format!("unknown executor '{name}'"), |e| e.describe());
            format!(
                "run `{}` on {place} (timeout {})",
                spec.program.display(),
                humantime::format_duration(spec.timeout.unwrap_or(plan.command_timeout))
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
            return Ok(StepOutcome::failed(format!(
                "{which}`{}`: {}",
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

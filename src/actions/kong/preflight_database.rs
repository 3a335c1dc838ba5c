//! Preflight's checks of X's database besides its migration state: the PostgreSQL version
//! against Kong's minimum (an error) and the range Kong's documentation lists for `from` and
//! `to` (a warning), and no `kong migrations` run in progress (its lock row, or Kong's
//! sessions running a migration). And, for a plan on Kubernetes, the warning about the Helm
//! chart's own migration Jobs. Nothing here changes anything.

use crate::engine::event::Event;
use crate::engine::step::StepContext;
use crate::kong::database::KongDatabase;
use crate::kong::helm::migration_hooks_warning;
use crate::kong::migrations::check_not_running;
use crate::kong::pg_version::{KONG_MIN, check_server};
use crate::plan::model::Plan;

/// The preview lines for these checks.
pub(super) fn describe(plan: &Plan, database: &str) -> Vec<String> {
    let mut lines = vec![
        format!(
            "check the PostgreSQL version of {database}: at least Kong's minimum {}.{}, and \
             within the range Kong's documentation lists for {} and {} (else a warning)",
            KONG_MIN.0, KONG_MIN.1, plan.from, plan.to
        ),
        format!(
            "look at the migrations lock and Kong's sessions on {database}: refuse while a \
             `kong migrations` run goes on"
        ),
    ];
    if migration_hooks_warning(plan).is_some() {
        lines.push(
            "warn that Kong's Helm chart runs `kong migrations up` and `finish` on its own \
             unless its migration Jobs are turned off"
                .to_string(),
        );
    }
    lines
}

fn warn(ctx: &StepContext, warning: String) {
    ctx.log.note(&format!("warning: {warning}"));
    ctx.emit(Event::Warning(warning));
}

/// The Helm chart's migration Jobs, for a plan with a kubectl executor.
pub(super) fn warn_helm(ctx: &StepContext) {
    if let Some(warning) = migration_hooks_warning(&ctx.plan) {
        warn(ctx, warning);
    }
}

/// The server version and the migrations in progress on X's database.
pub(super) async fn check(
    ctx: &StepContext,
    database: &dyn KongDatabase,
    problems: &mut Vec<String>,
    passed: &mut Vec<String>,
) {
    let name = database.describe();
    match database.server_version().await {
        Err(e) => problems.push(format!("X's database: cannot read its version: {e}")),
        Ok(None) => ctx.log.note(&format!(
            "{name} reports no PostgreSQL version (simulated): not checked"
        )),
        Ok(Some(server)) => {
            let check = check_server(server, ctx.plan.from, ctx.plan.to);
            ctx.log.note(&format!("{name}: {}", check.note));
            for warning in check.warnings {
                warn(ctx, format!("{name}: {warning}"));
            }
            match check.error {
                Some(error) => problems.push(format!("{name}: {error}")),
                None => passed.push(format!("PostgreSQL {server}")),
            }
        }
    }
    match database.migrations_activity().await {
        Err(e) => problems.push(format!(
            "X's database: cannot check for a `kong migrations` run in progress: {e}"
        )),
        Ok(activity) => match check_not_running(&activity, &name) {
            Err(running) => problems.push(running.to_string()),
            Ok(notes) => {
                for note in notes {
                    ctx.log.note(&note);
                }
                passed.push("no migrations run in progress".into());
            }
        },
    }
}

//! `kong migrations up` and `finish` on a Y node's executor, with the database settings in
//! the command's environment, then a read of `schema_meta` to check they did what they
//! should. Both first pass the freeze guard (`finish` is the point of no return), and
//! every attempt first looks at the migrations lock and at Kong's sessions: while another
//! run goes on, kongup refuses to start one beside it. After them the fingerprint is taken
//! again, because migrations rewrite rows by design and the guard of later steps must not
//! take that for a write.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{KongAccess, database_not_supported, facts, freeze, phase_for_preview, side_name};
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::exec::OutputLine;
use crate::kong::database::KongDatabase;
use crate::kong::migrations::{self, Conclusion, MigrationsError, build_command, check_command};
use crate::kong::pg;
use crate::kong::schema::SchemaState;
use crate::plan::model::Plan;
use crate::plan::placement::step_nodes;
use crate::plan::steps::{ClusterSide, MigrationsCommand, PhaseName, Step, StepKind};

pub struct Migrations {
    access: Arc<KongAccess>,
}

impl Migrations {
    pub fn new(access: Arc<KongAccess>) -> Migrations {
        Migrations { access }
    }
}

fn command_of(step: &Step) -> Option<MigrationsCommand> {
    match step.kind {
        StepKind::Migrations(command) => Some(command),
        _ => None,
    }
}

/// The executor `kong migrations` runs on: that of the node the step's commands are placed
/// on (Y's first node of the phase's role; `local` when it names none), else this machine.
fn executor_name(plan: &Plan, phase: PhaseName, kind: &StepKind) -> (String, Option<String>) {
    match step_nodes(plan, phase, kind).first() {
        Some(node) => (
            node.executor.clone().unwrap_or_else(|| "local".to_string()),
            Some(node.name.clone()),
        ),
        None => ("local".to_string(), None),
    }
}

#[async_trait::async_trait]
impl StepAction for Migrations {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let Some(command) = command_of(step) else {
            return Vec::new();
        };
        let mut lines = vec![freeze::describe_guard(&self.access, plan)];
        let (_, phase) = phase_for_preview(plan, step);
        let (executor, node) = executor_name(plan, phase, &step.kind);
        let place = toolbox
            .executors
            .get(&executor)
            .map_or_else(|| format!("executor '{executor}'"), |e| e.describe());
        if let Some(unsupported) = database_not_supported(plan, "migrations check") {
            return vec![format!("{unsupported}: the step will refuse")];
        }
        let database = self.access.y_runs_on().map_or_else(
            || "the database (none in the plan: the step will refuse)".to_string(),
            |d| d.describe(),
        );
        lines.push(format!(
            "look at the migrations lock and at Kong's sessions on {database}: refuse while \
             another `kong migrations` run goes on"
        ));
        lines.push(format!(
            "run `{}` on {}{place} (timeout {}), with the settings of {database} in its \
             environment (KONG_PG_*; the password only there)",
            build_command(&plan.migrations, command).display(),
            node.map(|n| format!("y/{n}: ")).unwrap_or_default(),
            humantime::format_duration(plan.migrations.timeout)
        ));
        lines.push(match command {
            MigrationsCommand::Up => format!(
                "then read schema_meta on {database}: the new migrations must be recorded, \
                 those with a teardown as pending"
            ),
            MigrationsCommand::Finish => {
                format!("then read schema_meta on {database}: no migration may be left pending")
            }
        });
        lines.push(
            "then take the configuration fingerprint again: migrations rewrite rows by design"
                .to_string(),
        );
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let Some(command) = command_of(&ctx.step) else {
            return Err(ActionError::Failed(format!(
                "{} is not a migrations step",
                ctx.step_ref
            )));
        };
        // The plan's own commands for this step run after the action: refuse them now.
        let forbidden: Vec<String> = ctx
            .step
            .commands
            .iter()
            .filter_map(|spec| check_command(&spec.program).err())
            .map(|e| e.to_string())
            .collect();
        if !forbidden.is_empty() {
            return Ok(StepOutcome::failed(forbidden.join("; ")));
        }
        let Some(database) = self.access.y_runs_on().cloned() else {
            if let Some(unsupported) = database_not_supported(&ctx.plan, "migrations check") {
                return Ok(StepOutcome::failed(format!(
                    "{unsupported}; give the step commands and `builtin: false`"
                )));
            }
            return Ok(StepOutcome::failed(
                "the plan names no database (clusters.x.database, or clusters.y.database for \
                 dual-cluster): kongup cannot check the migrations without it; add it",
            ));
        };
        if let Some(stopped) = freeze::guard_step(ctx, &self.access).await? {
            return Ok(stopped);
        }
        let before = match database.schema_state().await {
            Ok(state) => state,
            Err(e) => {
                return Ok(StepOutcome::failed(format!(
                    "cannot read schema_meta before the migrations: {e}"
                )));
            }
        };
        ctx.log.note(&format!(
            "{} before: {}",
            database.describe(),
            pg::summary(&before)
        ));
        // A retried `up` compares with the state its first attempt started from.
        let first_before = match command {
            MigrationsCommand::Up => state_before_first_attempt(ctx, &before).await?,
            MigrationsCommand::Finish => before.clone(),
        };
        let (after, up_to_date) = if command == MigrationsCommand::Up
            && migrations::up_already_done(&first_before, &before)
        {
            ctx.log.note(&format!(
                "an earlier attempt of this step ran `kong migrations up` to the end ({} \
                 migration(s) now wait for `kong migrations finish`): kongup does not run it \
                 again, Kong would refuse over the pending migrations",
                before.pending_total()
            ));
            (before.clone(), false)
        } else {
            let up_to_date = match self.run_kong(ctx, database.as_ref(), command).await? {
                Ok(up_to_date) => up_to_date,
                Err(failed) => return Ok(failed),
            };
            match database.schema_state().await {
                Ok(state) => (state, up_to_date),
                Err(e) => {
                    return Ok(StepOutcome::failed(format!(
                        "cannot check schema_meta after the migrations: {e}"
                    )));
                }
            }
        };
        let address = database.describe();
        let patch = ctx.plan.from.minor_line() == ctx.plan.to.minor_line();
        let verified = match command {
            // A patch upgrade may bring no migration at all: Kong says so, and nothing
            // changes. Elsewhere an unchanged database means `up` ran against another one.
            MigrationsCommand::Up if patch && up_to_date && after == first_before => Ok(format!(
                "Kong says the database is already up to date: {} -> {} brings no new \
                     migrations; schema generation {}",
                ctx.plan.from,
                ctx.plan.to,
                after.core_generation().unwrap_or("unknown")
            )),
            MigrationsCommand::Up => migrations::verify_after_up(&first_before, &after, &address),
            MigrationsCommand::Finish => migrations::verify_after_finish(&after, &address),
        };
        let note = match verified {
            Ok(note) => note,
            Err(e) => return Ok(StepOutcome::failed(e.to_string())),
        };
        ctx.log.note(&format!("{address} after: {note}"));
        let key = match command {
            MigrationsCommand::Up => "migrations.up",
            MigrationsCommand::Finish => "migrations.finish",
        };
        ctx.record_fact(key, pg::summary(&after)).await?;
        if let Some(summary) = freeze::retake(ctx, &self.access).await? {
            ctx.log.note(&format!(
                "configuration fingerprint taken again after the migrations ({summary}): later \
                 freeze checks compare with it"
            ));
        }
        Ok(StepOutcome::succeeded(note))
    }
}

impl Migrations {
    /// Runs `kong migrations up|finish` on the step's executor, its output into the step's
    /// log. `Ok(true)`: Kong said the database was already up to date; `Err` is the failed
    /// step, with the lock's owner when the lock was held.
    async fn run_kong(
        &self,
        ctx: &StepContext,
        database: &dyn KongDatabase,
        command: MigrationsCommand,
    ) -> Result<Result<bool, StepOutcome>, ActionError> {
        let (executor_name, node) = executor_name(&ctx.plan, ctx.step_ref.phase, &ctx.step.kind);
        let executor = ctx.executor(&executor_name)?;
        let plan = ctx.plan.clone();
        // Before every attempt, first or retry: Kong's own lock cannot be trusted to keep a
        // second run out (it is never renewed).
        match database.migrations_activity().await {
            Err(e) => {
                return Ok(Err(StepOutcome::failed(format!(
                    "cannot check for a `kong migrations` run in progress on {} before \
                     starting one: {e}. Fix the access to the database, then retry",
                    database.describe()
                ))));
            }
            Ok(activity) => match migrations::check_not_running(&activity, &database.describe()) {
                Err(running) => {
                    return Ok(Err(StepOutcome::failed(format!(
                        "kongup did not start `{}`: {running}",
                        build_command(&plan.migrations, command).display()
                    ))));
                }
                Ok(notes) => {
                    for note in notes {
                        ctx.log.note(&note);
                    }
                }
            },
        }
        ctx.log.note(&format!(
            "$ {}   [on {}{}, timeout {}]",
            build_command(&plan.migrations, command).display(),
            node.map(|n| format!("{} node {n}, ", side_name(ClusterSide::Y)))
                .unwrap_or_default(),
            executor.describe(),
            humantime::format_duration(plan.migrations.timeout)
        ));
        let (lines_tx, mut lines_rx) = mpsc::channel::<OutputLine>(256);
        let sink = ctx.log.clone();
        let forward = async move {
            while let Some(line) = lines_rx.recv().await {
                sink.line(line.stream, &line.text);
            }
        };
        let (result, ()) = tokio::join!(
            migrations::run(
                executor.as_ref(),
                &plan.migrations,
                command,
                database.kong_env(),
                lines_tx,
                ctx.cancel.clone(),
            ),
            forward
        );
        let up_to_date = result.as_ref().is_ok_and(|run| run.up_to_date());
        if let Err(error) = result {
            let mut detail = error.to_string();
            // What the lock and Kong's sessions show now, where another run or this one's
            // remains may be the cause.
            if matches!(error, MigrationsError::Failed { ref conclusion, .. }
                if !matches!(conclusion, Conclusion::PendingBlocksUp | Conclusion::NeedsBootstrap | Conclusion::UpFirst))
            {
                detail.push_str(&match database.migrations_activity().await {
                    Ok(activity) => {
                        format!(" Now: {}.", migrations::describe_activity(&activity))
                    }
                    Err(e) => format!(" The lock and sessions could not be read: {e}."),
                });
            }
            return Ok(Err(StepOutcome::failed(detail)));
        }
        Ok(Ok(up_to_date))
    }
}

/// The fact that holds the migration state before an `up` step's first attempt.
const UP_BEFORE: &str = "migrations.up.before";

/// The state before this `up` step's first attempt: journaled then, read back on a retry
/// (also one after kongup was restarted).
async fn state_before_first_attempt(
    ctx: &StepContext,
    now: &SchemaState,
) -> Result<SchemaState, ActionError> {
    let key = format!("{UP_BEFORE}:{}", ctx.step_ref);
    if let Some((step, value)) = facts::latest(&ctx.run_dir, &key)? {
        return facts::parse(&key, &step, &value);
    }
    let value = serde_json::to_string(now)
        .map_err(|e| ActionError::Failed(format!("cannot write the fact {key}: {e}")))?;
    ctx.record_fact(key, value).await?;
    Ok(now.clone())
}

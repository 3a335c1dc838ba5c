//! Restores of the database backup the run recorded: into Y's new database (dual-cluster),
//! and over the live database when a rollback comes after `kong migrations finish`.

use std::sync::Arc;

use super::facts::{self, DATABASE_BACKUP};
use super::{KongAccess, database_not_supported, unless_aborted};
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::kong::backup::BackupRecord;
use crate::kong::pg;
use crate::kong::restore::RestoreReport;
use crate::plan::model::Plan;
use crate::plan::steps::Step;

fn aborted() -> StepOutcome {
    StepOutcome::failed("aborted by the operator")
}

/// The database backup recorded earlier in the run, or why there is none to restore.
fn recorded(ctx: &StepContext) -> Result<Result<(String, BackupRecord), StepOutcome>, ActionError> {
    Ok(
        match facts::recorded_backup(&ctx.run_dir, DATABASE_BACKUP)? {
            Some(found) => Ok(found),
            None => Err(StepOutcome::failed(
                "no database backup is recorded in this run's journal: the backup step has not \
             succeeded, so there is nothing kongup can restore. Restore by hand from your own \
             backup, then mark this step done with a note",
            )),
        },
    )
}

fn schema_line(report: &RestoreReport) -> String {
    format!("schema_meta now: {}", pg::summary(&report.schema))
}

pub struct RestoreIntoY {
    access: Arc<KongAccess>,
}

impl RestoreIntoY {
    pub fn new(access: Arc<KongAccess>) -> RestoreIntoY {
        RestoreIntoY { access }
    }
}

#[async_trait::async_trait]
impl StepAction for RestoreIntoY {
    fn describe(&self, _step: &Step, _plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        match &self.access.y_database {
            Some(database) => vec![
                "check the database backup the run recorded (size, SHA-256, table of contents)"
                    .to_string(),
                format!(
                    "restore it into Y's database {} (created when missing, refused when it \
                     already holds tables), in one transaction",
                    database.describe()
                ),
            ],
            None => vec!["no restore: the plan names no database for Y".to_string()],
        }
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let Some(database) = &self.access.y_database else {
            if let Some(unsupported) = database_not_supported(&ctx.plan, "restore") {
                return Ok(StepOutcome::failed(format!(
                    "{unsupported}; give the step commands and `builtin: false`"
                )));
            }
            return Ok(StepOutcome::failed(
                "the plan names no database for Y (clusters.y.database): kongup does not know \
                 where to restore X's backup; add it",
            ));
        };
        let (step, record) = match recorded(ctx)? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        ctx.log.note(&format!(
            "restoring {} (recorded by {step}) into {}",
            record.path.display(),
            database.describe()
        ));
        match unless_aborted(ctx, database.verify(&record)).await {
            None => return Ok(aborted()),
            Some(Err(e)) => return Ok(StepOutcome::failed(format!("the backup: {e}"))),
            Some(Ok(verified)) => ctx.log.note(&format!("backup verified: {verified}")),
        }
        let report = match unless_aborted(ctx, database.restore_into_new(&record)).await {
            None => return Ok(aborted()),
            Some(Err(e)) => return Ok(StepOutcome::failed(e.to_string())),
            Some(Ok(report)) => report,
        };
        let line = format!(
            "restored {} into {}; {}",
            record.path.display(),
            report.database,
            schema_line(&report)
        );
        ctx.log.note(&line);
        ctx.record_fact("restore.y-database", line.clone()).await?;
        Ok(StepOutcome::succeeded(line))
    }
}

/// Rollback after `kong migrations finish`: the backup goes back over the live database.
pub struct RestoreOverLive {
    access: Arc<KongAccess>,
}

impl RestoreOverLive {
    pub fn new(access: Arc<KongAccess>) -> RestoreOverLive {
        RestoreOverLive { access }
    }
}

#[async_trait::async_trait]
impl StepAction for RestoreOverLive {
    fn describe(&self, _step: &Step, _plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        match self.access.y_runs_on() {
            Some(database) => vec![
                "check the database backup the run recorded (size, SHA-256, table of contents)"
                    .to_string(),
                format!(
                    "dump the current state of {} into backups/ first (the safety dump)",
                    database.describe()
                ),
                format!(
                    "restore the backup over {} in one transaction: everything written since \
                     the backup is replaced",
                    database.describe()
                ),
            ],
            None => vec!["no restore: the plan names no database".to_string()],
        }
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let Some(database) = self.access.y_runs_on() else {
            // A rollback step cannot be customised: the operator restores by hand.
            if let Some(unsupported) = database_not_supported(&ctx.plan, "restore") {
                return Ok(StepOutcome::failed(format!(
                    "{unsupported}; restore the backup by hand, then mark this step done with a \
                     note"
                )));
            }
            return Ok(StepOutcome::failed(
                "the plan names no database (clusters.x.database): kongup does not know what \
                 to restore over; restore by hand, then mark this step done with a note",
            ));
        };
        let (step, record) = match recorded(ctx)? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        match unless_aborted(ctx, database.verify(&record)).await {
            None => return Ok(aborted()),
            Some(Err(e)) => {
                return Ok(StepOutcome::failed(format!(
                    "the backup recorded by {step} cannot be used, nothing was restored: {e}"
                )));
            }
            Some(Ok(verified)) => ctx.log.note(&format!("backup verified: {verified}")),
        }
        let dir = ctx.backups_dir()?;
        ctx.log.note(&format!(
            "safety dump of {}, then restoring {} over it",
            database.describe(),
            record.path.display()
        ));
        let report = match unless_aborted(ctx, database.restore_over_live(&record, &dir)).await {
            None => return Ok(aborted()),
            Some(Err(e)) => return Ok(StepOutcome::failed(e.to_string())),
            Some(Ok(report)) => report,
        };
        if let Some(safety) = &report.safety_dump {
            facts::record_backup(ctx, "backup.safety-before-restore", safety).await?;
            ctx.log.note(&format!(
                "safety dump of the state before the restore: {} (SHA-256 {})",
                safety.path.display(),
                safety.sha256
            ));
        }
        if !report.extra_tables.is_empty() {
            ctx.log.note(&format!(
                "left in place, unknown to the backup (the newer version created them; the old \
                 version ignores them): {}",
                report.extra_tables.join(", ")
            ));
        }
        let line = format!(
            "restored {} over {}; {}",
            record.path.display(),
            report.database,
            schema_line(&report)
        );
        ctx.log.note(&line);
        ctx.record_fact("restore.over-live", line.clone()).await?;
        Ok(StepOutcome::succeeded(line))
    }
}

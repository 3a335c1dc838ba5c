//! What a lab run uses in place of what only the operator's hosts hold.
//!
//! - The DB-less declarative file (`backup.declarative_config`, e.g. `/etc/kong/kong.yml`):
//!   the backup copies a file of this machine, and the lab keeps no files here. In a lab
//!   run the file is read through X's node executor, whose `cat` prints the lab's
//!   configuration as a declarative file (see `sim::entities::declarative_config`); that
//!   copy, kept in the run directory's `lab-files/`, is what the backup copies, verifies and
//!   hashes, and its log says so.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::actions::{ActionError, StepAction, StepContext, StepOutcome};
use crate::engine::rundir::create_private_dir;
use crate::engine::toolbox::Toolbox;
use crate::kong::backup::fetch_file;
use crate::plan::model::Plan;
use crate::plan::steps::Step;

/// The run directory's folder for the lab's stand-in files.
pub const LAB_FILES_DIR: &str = "lab-files";

/// How long reading a stand-in file through a lab executor may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The executor X's declarative file is read through: X's first node's, else `local`.
fn x_executor(plan: &Plan) -> String {
    plan.clusters
        .x
        .nodes
        .iter()
        .find_map(|n| n.executor.clone())
        .unwrap_or_else(|| "local".to_string())
}

/// The declarative backup of a lab run: reads the plan's declarative file through X's lab
/// executor into `lab-files/`, then lets `inner` (the built-in backup) copy, verify and
/// hash that copy. A plan without `backup.declarative_config` goes to `inner` unchanged.
pub struct LabDeclarativeBackup {
    pub inner: Arc<dyn StepAction>,
}

#[async_trait::async_trait]
impl StepAction for LabDeclarativeBackup {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(file) = &plan.backup.declarative_config {
            lines.push(format!(
                "LAB: {} is the lab's stand-in (its configuration as a declarative file, read \
                 through executor '{}' into {LAB_FILES_DIR}/); the backup below copies that",
                file.display(),
                x_executor(plan)
            ));
        }
        lines.extend(self.inner.describe(step, plan, toolbox));
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let Some(file) = ctx.plan.backup.declarative_config.clone() else {
            return self.inner.execute(ctx).await;
        };
        let executor_name = x_executor(&ctx.plan);
        let executor = ctx.executor(&executor_name)?;
        let dir = ctx.run_dir.join(LAB_FILES_DIR);
        create_private_dir(&dir).map_err(|source| ActionError::Io {
            path: dir.clone(),
            source,
        })?;
        let name = file
            .file_name()
            .map_or_else(|| "kong.yml".into(), |n| n.to_string_lossy().into_owned());
        let fetched = fetch_file(
            executor.as_ref(),
            &file,
            "declarative-config",
            &dir,
            &name,
            READ_TIMEOUT,
        )
        .await;
        let stand_in: PathBuf = match fetched {
            Ok(record) => record.path,
            Err(e) => {
                return Ok(StepOutcome::failed(format!(
                    "the lab's stand-in for {}: {e}",
                    file.display()
                )));
            }
        };
        ctx.log.note(&format!(
            "LAB: {} is the lab's stand-in: the lab's configuration as a declarative file (no \
             credentials), read through {} into {}; a real run copies the operator's file",
            file.display(),
            executor.describe(),
            stand_in
                .strip_prefix(&ctx.run_dir)
                .unwrap_or(&stand_in)
                .display()
        ));
        let real_plan = ctx.plan.clone();
        let mut plan = (*real_plan).clone();
        plan.backup.declarative_config = Some(stand_in);
        ctx.plan = Arc::new(plan);
        let outcome = self.inner.execute(ctx).await;
        ctx.plan = real_plan;
        outcome
    }
}

//! What a lab run uses in place of what only the operator's hosts hold.
//!
//! - The DB-less declarative file (`backup.declarative_config`, e.g. `/etc/kong/kong.yml`):
//!   the backup reads it through X's node executor, and on the lab that executor's `cat`
//!   prints the lab's configuration as a declarative file (see
//!   `sim::entities::declarative_config`), which the backup verifies and hashes; the step's
//!   preview and log say so.

use std::path::Path;
use std::sync::Arc;

use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::plan::model::Plan;
use crate::plan::steps::Step;

/// The declarative backup of a lab run: the built-in backup (`inner`) reads the plan's
/// declarative file through X's node executor as in a real run; on the lab that executor's
/// `cat` prints the lab's configuration as a declarative file, and this says so.
pub struct LabDeclarativeBackup {
    pub inner: Arc<dyn StepAction>,
}

#[async_trait::async_trait]
impl StepAction for LabDeclarativeBackup {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(file) = &plan.backup.declarative_config {
            lines.push(format!("LAB: {}", stand_in_words(file)));
        }
        lines.extend(self.inner.describe(step, plan, toolbox));
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        if let Some(file) = &ctx.plan.backup.declarative_config {
            ctx.log.note(&format!(
                "LAB: {}; a real run reads the node's own file",
                stand_in_words(file)
            ));
        }
        self.inner.execute(ctx).await
    }
}

fn stand_in_words(file: &Path) -> String {
    format!(
        "{} is the lab's stand-in: the lab's configuration as a declarative file (no \
         credentials), printed by the lab executor's `cat`",
        file.display()
    )
}

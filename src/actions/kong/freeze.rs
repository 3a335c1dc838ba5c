//! The configuration freeze: `freeze-writes` records a fingerprint of the configuration
//! once the operator says writes are stopped; the guard compares it before every traffic
//! stage and before `kong migrations up` and `finish`, and stops the step, naming what
//! changed. The migrations take the fingerprint again after they ran.

use std::sync::Arc;

use super::facts::{self, FreezeVia};
use super::{KongAccess, cluster_nodes};
use crate::actions::traffic::ShiftTraffic;
use crate::engine::event::Event;
use crate::engine::step::Toolbox;
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome};
use crate::kong::freeze::{self, Fingerprint, FreezeSource};
use crate::plan::model::Plan;
use crate::plan::steps::{ClusterSide, Step};

/// Where the fingerprint is taken: X's database, else the Admin API of X's first node
/// that has one.
fn freeze_source(access: &KongAccess, plan: &Plan) -> Option<FreezeVia> {
    if access.x_database.is_some() {
        return Some(FreezeVia::Database);
    }
    x_admin_url(plan).map(|admin_url| FreezeVia::AdminApi { admin_url })
}

fn x_admin_url(plan: &Plan) -> Option<String> {
    cluster_nodes(plan, ClusterSide::X)
        .iter()
        .find_map(|n| n.admin_url.clone())
}

/// How the guard reads the configuration again: the way the freeze took it, at the
/// address the plan gives now rather than the one journaled. A demo or a rehearsal maps the
/// plan's node URLs to a new lab's ports in each process, so a resumed run would find the
/// journaled address gone; and an operator who moved X's Admin API changed the plan to
/// say so.
fn current_via(recorded: &FreezeVia, plan: &Plan) -> FreezeVia {
    match recorded {
        FreezeVia::Database => FreezeVia::Database,
        FreezeVia::AdminApi { admin_url } => FreezeVia::AdminApi {
            admin_url: x_admin_url(plan).unwrap_or_else(|| admin_url.clone()),
        },
    }
}

fn describe_via(access: &KongAccess, via: &FreezeVia) -> String {
    match via {
        FreezeVia::Database => format!(
            "X's database {}",
            access
                .x_database
                .as_ref()
                .map_or_else(String::new, |d| d.describe())
        ),
        FreezeVia::AdminApi { admin_url } => format!("X's Admin API {admin_url}"),
    }
}

async fn take(access: &KongAccess, via: &FreezeVia) -> Result<Fingerprint, String> {
    match via {
        FreezeVia::Database => match &access.x_database {
            Some(database) => database.fingerprint().await.map_err(|e| e.to_string()),
            None => Err("X's database is not reachable from this kongup".to_string()),
        },
        FreezeVia::AdminApi { admin_url } => freeze::take(&FreezeSource::AdminApi {
            client: access.admin.clone(),
            admin_url: admin_url.clone(),
        })
        .await
        .map_err(|e| e.to_string()),
    }
}

pub struct FreezeWrites {
    access: Arc<KongAccess>,
}

impl FreezeWrites {
    pub fn new(access: Arc<KongAccess>) -> FreezeWrites {
        FreezeWrites { access }
    }
}

#[async_trait::async_trait]
impl StepAction for FreezeWrites {
    fn describe(&self, _step: &Step, plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        match freeze_source(&self.access, plan) {
            Some(via) => vec![
                "your confirm says configuration writes (Admin API, Kong Manager, decK, the \
                 database) are stopped"
                    .to_string(),
                format!(
                    "record a fingerprint of the configuration from {} (entity counts, ids, \
                     newest changes, row contents) in the run directory and the journal",
                    describe_via(&self.access, &via)
                ),
            ],
            None => vec![
                "no fingerprint: the plan names neither X's database nor an Admin API of X"
                    .to_string(),
            ],
        }
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let Some(via) = freeze_source(&self.access, &ctx.plan) else {
            return Ok(StepOutcome::failed(
                "kongup cannot fingerprint the configuration: the plan names neither X's \
                 database (clusters.x.database) nor an Admin API of X (admin_url); add one, or \
                 skip this step with a reason and watch for writes yourself",
            ));
        };
        let from = describe_via(&self.access, &via);
        ctx.log
            .note(&format!("taking the configuration fingerprint from {from}"));
        let fingerprint = tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(StepOutcome::failed("aborted by the operator")),
            taken = take(&self.access, &via) => match taken {
                Ok(fingerprint) => fingerprint,
                Err(e) => return Ok(StepOutcome::failed(format!(
                    "cannot fingerprint the configuration from {from}: {e}"
                ))),
            },
        };
        let recorded = facts::record_freeze(ctx, via, &fingerprint).await?;
        ctx.log.note(&format!(
            "fingerprint {} (SHA-256 {}): {}",
            recorded.file.display(),
            recorded.sha256,
            recorded.summary
        ));
        Ok(StepOutcome::succeeded(format!(
            "configuration fingerprint recorded from {from} ({}); it is compared before every \
             traffic step and before `kong migrations up` and `finish`",
            recorded.summary
        )))
    }
}

/// What the guard found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Guard {
    Unchanged(String),
    Changed(String),
    /// No fingerprint was recorded: nothing to compare with.
    NoFreeze(String),
}

/// Compares the configuration with the recorded fingerprint, the same way it was taken.
pub(crate) async fn check(ctx: &StepContext, access: &KongAccess) -> Result<Guard, ActionError> {
    let Some((recorded, before)) = facts::recorded_freeze(&ctx.run_dir)? else {
        return Ok(Guard::NoFreeze(
            "no configuration fingerprint is recorded (freeze-writes was skipped or has not \
             run): the freeze guard cannot check that nobody wrote configuration"
                .to_string(),
        ));
    };
    let via = current_via(&recorded.via, &ctx.plan);
    let from = describe_via(access, &via);
    let changes = match &via {
        FreezeVia::Database => match &access.x_database {
            Some(database) => database
                .changes_since(&before)
                .await
                .map_err(|e| e.to_string()),
            None => Err(
                "the fingerprint was taken from X's database, which this kongup cannot reach"
                    .to_string(),
            ),
        },
        FreezeVia::AdminApi { admin_url } => {
            let source = FreezeSource::AdminApi {
                client: access.admin.clone(),
                admin_url: admin_url.clone(),
            };
            // Admin API prints are alike at any address; only the address moved (see
            // `current_via`), so the fingerprint is compared as if taken there.
            let before = Fingerprint {
                source: source.describe(),
                ..before.clone()
            };
            freeze::check(&before, &source)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let changes = changes.map_err(|e| {
        ActionError::Failed(format!(
            "the freeze guard cannot compare the configuration with the fingerprint from {from}: \
             {e}"
        ))
    })?;
    let taken = before.taken_at.format("%Y-%m-%d %H:%M:%S UTC");
    let moved = match (&recorded.via, &via) {
        (FreezeVia::AdminApi { admin_url: then }, FreezeVia::AdminApi { admin_url: now })
            if then != now =>
        {
            format!("; taken at {then}, compared at {now}, where the plan puts X's Admin API now")
        }
        _ => String::new(),
    };
    Ok(if changes.is_empty() {
        Guard::Unchanged(format!(
            "configuration unchanged since the freeze at {taken} ({}{moved})",
            recorded.summary
        ))
    } else {
        Guard::Changed(format!(
            "the configuration changed since the freeze at {taken} ({from}): {}. Someone wrote \
             configuration during the upgrade, so the backup no longer holds everything: stop \
             the writer, find out what changed and whether Y has it, then retry this step once \
             the configuration is back as it was, or roll back",
            changes.join("; ")
        ))
    })
}

/// Runs the guard for a step: `Some(failure)` stops it. A missing fingerprint is warned
/// about and lets the step go on.
pub(crate) async fn guard_step(
    ctx: &StepContext,
    access: &KongAccess,
) -> Result<Option<StepOutcome>, ActionError> {
    let verdict = tokio::select! {
        _ = ctx.cancel.cancelled() => return Ok(Some(StepOutcome::failed("aborted by the operator"))),
        verdict = check(ctx, access) => verdict?,
    };
    match verdict {
        Guard::Unchanged(text) => {
            ctx.log.note(&format!("freeze guard: {text}"));
            Ok(None)
        }
        Guard::NoFreeze(text) => {
            ctx.log.note(&format!("freeze guard: {text}"));
            ctx.emit(Event::Warning(format!("{}: {text}", ctx.step_ref)));
            Ok(None)
        }
        Guard::Changed(text) => {
            ctx.log.note(&format!("freeze guard: {text}"));
            Ok(Some(StepOutcome::failed(text)))
        }
    }
}

/// After `kong migrations up` or `finish`, which rewrite rows by design: takes the
/// fingerprint again, the way the freeze took it, so later checks compare with the
/// migrated configuration. `None` when no freeze was recorded.
pub(crate) async fn retake(
    ctx: &StepContext,
    access: &KongAccess,
) -> Result<Option<String>, ActionError> {
    let Some((recorded, _)) = facts::recorded_freeze(&ctx.run_dir)? else {
        return Ok(None);
    };
    let via = current_via(&recorded.via, &ctx.plan);
    let fingerprint = take(access, &via).await.map_err(|e| {
        ActionError::Failed(format!(
            "the migrations ran, but the configuration fingerprint cannot be taken again: {e}; \
             the freeze guard of later steps would compare with the configuration from before \
             the migrations"
        ))
    })?;
    let retaken = facts::record_freeze(ctx, via, &fingerprint).await?;
    Ok(Some(retaken.summary))
}

/// The line the guard adds to a step's preview.
pub(crate) fn describe_guard(access: &KongAccess, plan: &Plan) -> String {
    match freeze_source(access, plan) {
        Some(via) => format!(
            "check the configuration is unchanged since freeze-writes ({})",
            describe_via(access, &via)
        ),
        None => "the freeze guard has no source (neither X's database nor an Admin API of X)"
            .to_string(),
    }
}

/// A traffic stage behind the freeze guard: compare, then the built-in shift.
pub struct FreezeGuardedShift {
    access: Arc<KongAccess>,
}

impl FreezeGuardedShift {
    pub fn new(access: Arc<KongAccess>) -> FreezeGuardedShift {
        FreezeGuardedShift { access }
    }
}

#[async_trait::async_trait]
impl StepAction for FreezeGuardedShift {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let mut lines = vec![describe_guard(&self.access, plan)];
        lines.extend(ShiftTraffic.describe(step, plan, toolbox));
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        if let Some(stopped) = guard_step(ctx, &self.access).await? {
            return Ok(stopped);
        }
        ShiftTraffic.execute(ctx).await
    }
}

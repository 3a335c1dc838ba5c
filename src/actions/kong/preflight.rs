//! Preflight: nothing changes until these pass. The upgrade path, every X node's version
//! and role as the plan says, whether Y's nodes already answer, the database's migration
//! state (no upgrade over an unfinished one), its PostgreSQL version and no `kong
//! migrations` run in progress (see [`super::preflight_database`]), no plan command that
//! would destroy the database, the traffic driver's read-back and the series the gates read
//! from X's `/metrics` (see [`super::preflight_probes`]).

use std::sync::Arc;

use super::preflight_database;
use super::preflight_probes::{check_metrics, check_traffic, describe_metrics, describe_traffic};
use super::{KongAccess, cluster_nodes, is_version};
use crate::engine::event::Event;
use crate::engine::step::Toolbox;
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome};
use crate::kong::client::{AdminError, Readiness};
use crate::kong::migrations::check_command;
use crate::kong::pg;
use crate::plan::model::{DatabaseKind, Node, Plan, Role, Strategy};
use crate::plan::path::upgrade_path;
use crate::plan::steps::{ClusterSide, ExpandedPlan, Step, StepRef};

pub struct Preflight {
    access: Arc<KongAccess>,
}

impl Preflight {
    pub fn new(access: Arc<KongAccess>) -> Preflight {
        Preflight { access }
    }
}

/// The strategy of the phase a step belongs to.
pub(crate) fn phase_strategy(expanded: &ExpandedPlan, step: &StepRef) -> Option<Strategy> {
    expanded
        .phases
        .iter()
        .find(|p| p.name == step.phase)
        .map(|p| p.strategy)
}

/// Whether this preflight reads X's database: a database-backed strategy on PostgreSQL.
fn checks_database(plan: &Plan, strategy: Option<Strategy>) -> bool {
    plan.database == DatabaseKind::Postgres && strategy.is_some_and(Strategy::is_database_backed)
}

fn names(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the node's `configuration.database` should say.
fn expected_database(plan: &Plan, node: &Node) -> &'static str {
    if node.role == Role::DataPlane {
        DatabaseKind::Off.as_str()
    } else {
        plan.database.as_str()
    }
}

/// Every plan command kongup refuses to run, wherever it is.
fn forbidden_commands(expanded: &ExpandedPlan) -> Vec<String> {
    expanded
        .steps()
        .flat_map(|(phase, step)| {
            step.commands.iter().filter_map(move |spec| {
                check_command(&spec.program)
                    .err()
                    .map(|e| format!("{}/{}: {e}", phase.name, step.id))
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl StepAction for Preflight {
    fn describe(&self, _step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let mut lines = vec![format!(
            "check the upgrade path {} -> {} against Kong's rules",
            plan.from, plan.to
        )];
        let x_admin: Vec<&Node> = plan
            .clusters
            .x
            .nodes
            .iter()
            .filter(|n| n.admin_url.is_some())
            .collect();
        if !x_admin.is_empty() {
            lines.push(format!(
                "ask X's Admin API on {} for version {}, role and database as the plan says",
                names(&x_admin),
                plan.from
            ));
        }
        let x_status: Vec<&Node> = plan
            .clusters
            .x
            .nodes
            .iter()
            .filter(|n| n.admin_url.is_none() && n.status_url.is_some())
            .collect();
        if !x_status.is_empty() {
            lines.push(format!(
                "ask X's Status API on {} whether they are ready",
                names(&x_status)
            ));
        }
        lines.push("note which of Y's nodes already answer".to_string());
        if plan.database == DatabaseKind::Postgres {
            let database = self
                .access
                .x_database
                .as_ref()
                .map_or_else(|| "X's database".to_string(), |d| d.describe());
            lines.push(format!(
                "for a database strategy, read schema_meta on {database}: refuse pending \
                 migrations of an earlier upgrade"
            ));
            lines.extend(preflight_database::describe(plan, &database));
        }
        lines.push(
            "refuse any plan command that runs `kong migrations reset` or `bootstrap -f`"
                .to_string(),
        );
        lines.push(describe_traffic(toolbox.traffic.as_ref()));
        let expanded = crate::plan::templates::expand(plan).ok();
        lines.push(describe_metrics(
            plan,
            expanded.as_ref(),
            toolbox.gates.is_some(),
        ));
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let plan = ctx.plan.clone();
        let mut problems: Vec<String> = Vec::new();
        let mut passed: Vec<String> = Vec::new();

        for warning in &self.access.tls_warnings {
            ctx.log.note(&format!("warning: {warning}"));
            ctx.emit(Event::Warning(warning.clone()));
        }

        match upgrade_path(plan.from, plan.to, plan.mode, plan.database) {
            Err(refused) => problems.push(format!("upgrade path: {refused}")),
            Ok(path) if path.hops.len() > 1 => problems.push(format!(
                "{} cannot go straight to {}: Kong's rules stop at {} first ({}); write one plan \
                 per hop",
                plan.from, plan.to, path.hops[0].to, path.hops[0].why
            )),
            Ok(path) => {
                for line in path.to_string().lines() {
                    ctx.log.note(line);
                }
                passed.push("upgrade path".into());
            }
        }

        let x_ok = self.check_x(ctx, &plan, &mut problems).await;
        if x_ok > 0 {
            passed.push(format!("{x_ok} X node(s) as planned"));
        }
        self.note_y(ctx, &plan).await;

        let strategy = phase_strategy(&ctx.expanded, &ctx.step_ref);
        if checks_database(&plan, strategy) {
            let strategy = strategy.expect("checks_database needs a strategy");
            match &self.access.x_database {
                None => problems.push(
                    "the plan names no database for X (clusters.x.database), so kongup cannot \
                     check it for pending migrations: add it"
                        .to_string(),
                ),
                Some(database) => {
                    match database.schema_state().await {
                        Err(e) => problems.push(format!("X's database: {e}")),
                        Ok(state) => match pg::preflight(&state, strategy, &database.describe()) {
                            Ok(()) => {
                                ctx.log.note(&format!(
                                    "X's database {}: {}",
                                    database.describe(),
                                    pg::summary(&state)
                                ));
                                passed.push("no pending migrations".into());
                            }
                            Err(refusal) => problems.push(refusal.to_string()),
                        },
                    }
                    preflight_database::check(ctx, database.as_ref(), &mut problems, &mut passed)
                        .await;
                }
            }
        }
        preflight_database::warn_helm(ctx);

        check_traffic(ctx, &mut problems, &mut passed).await;
        check_metrics(ctx, &self.access.probe, &mut problems, &mut passed).await;

        let forbidden = forbidden_commands(&ctx.expanded);
        if forbidden.is_empty() {
            passed.push("no destructive migrations command".into());
        }
        problems.extend(forbidden);

        if ctx.cancel.is_cancelled() {
            return Ok(StepOutcome::failed("aborted by the operator"));
        }
        for problem in &problems {
            ctx.log.note(&format!("FAILED: {problem}"));
        }
        Ok(if problems.is_empty() {
            StepOutcome::succeeded(format!("passed: {}", passed.join(", ")))
        } else {
            StepOutcome::failed(format!(
                "{} check(s) failed: {}",
                problems.len(),
                problems.join("; ")
            ))
        })
    }
}

impl Preflight {
    /// Checks X's nodes; returns how many answered as planned.
    async fn check_x(&self, ctx: &StepContext, plan: &Plan, problems: &mut Vec<String>) -> usize {
        let client = &self.access.admin;
        let mut ok = 0;
        for node in cluster_nodes(plan, ClusterSide::X) {
            let label = format!("x/{}", node.name);
            if let Some(url) = &node.admin_url {
                let info = match client.node_info(url).await {
                    Ok(info) => info,
                    Err(e) => {
                        problems.push(format!("{label}: {e}"));
                        continue;
                    }
                };
                let mut node_problems = Vec::new();
                if !is_version(&info.version, plan.from) {
                    node_problems.push(format!(
                        "{label} at {url} reports Kong {}, but the plan says X runs {}: correct \
                         the plan's `from`, or upgrade that node to {} first",
                        info.version, plan.from, plan.from
                    ));
                }
                if info.configuration.role != node.role.as_str() {
                    node_problems.push(format!(
                        "{label} at {url} runs as {}, but the plan says {}: correct the node's \
                         role in the plan",
                        info.configuration.role,
                        node.role.as_str()
                    ));
                }
                let database = expected_database(plan, node);
                if info.configuration.database != database {
                    node_problems.push(format!(
                        "{label} at {url} has database = {}, but the plan says {database}",
                        info.configuration.database
                    ));
                }
                if node_problems.is_empty() {
                    ok += 1;
                    ctx.log.note(&format!(
                        "{label}: Kong {} ({}), role {}, database {}",
                        info.version,
                        info.edition.as_deref().unwrap_or("edition not reported"),
                        info.configuration.role,
                        info.configuration.database
                    ));
                }
                problems.extend(node_problems);
                if node.role == Role::ControlPlane {
                    self.note_data_planes(ctx, plan, &label, url).await;
                }
            } else if let Some(url) = &node.status_url {
                match self.access.admin.readiness(url).await {
                    Ok(Readiness::Ready) => {
                        ok += 1;
                        ctx.log.note(&format!(
                            "{label}: ready on its Status API (it has no Admin API to read its \
                             version from)"
                        ));
                    }
                    Ok(Readiness::NotReady(reason)) => problems.push(format!(
                        "{label} at {url} is not ready ({reason}): X must be healthy before the \
                         upgrade starts"
                    )),
                    Err(AdminError::NotFound { .. }) => {
                        ok += 1;
                        ctx.log.note(&format!(
                            "{label}: its Status API has no /status/ready (before 3.3); not checked"
                        ));
                    }
                    Err(e) => problems.push(format!("{label}: {e}")),
                }
            } else {
                ctx.log.note(&format!(
                    "{label}: no Admin or Status URL in the plan, kongup cannot check it: check \
                     it runs {} yourself",
                    plan.from
                ));
            }
        }
        ok
    }

    /// A control plane's data planes, as it lists them: versions and sync status.
    async fn note_data_planes(&self, ctx: &StepContext, plan: &Plan, label: &str, url: &str) {
        match self.access.admin.data_planes(url).await {
            Ok(planes) if planes.is_empty() => {
                ctx.log
                    .note(&format!("{label}: no data plane is connected to it"));
            }
            Ok(planes) => {
                for dp in planes {
                    let note = if is_version(&dp.version, plan.from) {
                        String::new()
                    } else {
                        format!(" (not {}: check it)", plan.from)
                    };
                    ctx.log.note(&format!(
                        "{label}: data plane {} ({}) Kong {}{note}, sync_status {}",
                        dp.hostname,
                        dp.ip,
                        dp.version,
                        dp.sync_status.as_str()
                    ));
                }
            }
            Err(e) => ctx
                .log
                .note(&format!("{label}: cannot list its data planes: {e}")),
        }
    }

    /// Notes which of Y's nodes already answer; none is expected to, except in place.
    async fn note_y(&self, ctx: &StepContext, plan: &Plan) {
        for node in cluster_nodes(plan, ClusterSide::Y) {
            let label = format!("y/{}", node.name);
            let Some(url) = &node.admin_url else { continue };
            let shared = plan
                .clusters
                .x
                .nodes
                .iter()
                .find(|x| x.admin_url.as_ref() == Some(url))
                .map(|x| format!(" (the address of x/{}: X's node until the upgrade)", x.name))
                .unwrap_or_default();
            match self.access.probe.node_info(url).await {
                Ok(info) => ctx.log.note(&format!(
                    "{label} at {url} already answers: Kong {}{shared}",
                    info.version
                )),
                Err(_) => ctx.log.note(&format!(
                    "{label} at {url} does not answer yet: a later step deploys it"
                )),
            }
        }
    }
}

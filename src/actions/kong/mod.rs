//! Kong's upgrade steps as step actions: preflight, the configuration freeze and its guard,
//! backups, restores, `kong migrations`, smoke tests, the hybrid compatibility check, and
//! the waits for nodes to start or stop. What each does is what the step's "kongup does"
//! note (`plan::templates`) promises.
//!
//! ```ignore
//! let access = KongAccess::for_plan(&plan)?;            // or KongAccess::new(..) in the lab
//! let actions = crate::actions::builtins(Some(access)); // registers them after the traffic ones
//! ```
//!
//! Actions find what earlier steps recorded (the database backup, the freeze fingerprint)
//! in the run's journal: see [`facts`].

mod backup;
mod compat;
mod drain;
mod drain_balancer;
pub mod facts;
mod freeze;
mod migrations;
mod nodes;
mod preflight;
mod preflight_database;
mod preflight_probes;
mod restore;
mod smoke;

use std::sync::Arc;
use std::time::Duration;

use crate::engine::step::{ActionFor, ActionRegistry, StepContext};
use crate::kong::client::{AdminClient, AdminClientOptions, AdminError};
use crate::kong::database::{KongDatabase, PgDatabase};
use crate::kong::pg::PgError;
use crate::kong::types::reported_version;
use crate::plan::model::{DatabaseKind, Node, Plan};
use crate::plan::steps::{
    BackupKind, ClusterSide, ExpandedPlan, PhaseName, RollbackKind, Step, StepKind,
};
use crate::plan::version::KongVersion;

pub use self::backup::{DatabaseBackup, DeclarativeBackup, FileBackup};
pub use self::compat::CompatibilityCheck;
pub use self::freeze::{FreezeGuardedShift, FreezeWrites};
pub use self::migrations::Migrations;
pub use self::nodes::NodesWait;
pub use self::preflight::Preflight;
pub use self::restore::{RestoreIntoY, RestoreOverLive};
pub use self::smoke::SmokeTests;

/// How long the actions wait, and how often they look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// How long start/deploy/stop/decommission wait for the nodes.
    pub nodes: Duration,
    /// Between two looks at the nodes.
    pub poll: Duration,
    /// Between two countdown lines in the step's log.
    pub progress: Duration,
    /// One smoke-test request, connect to last byte.
    pub smoke_request: Duration,
    /// decK, and fetching files through an executor.
    pub tools: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            nodes: Duration::from_secs(300),
            poll: Duration::from_secs(2),
            progress: Duration::from_secs(15),
            smoke_request: Duration::from_secs(10),
            tools: Duration::from_secs(300),
        }
    }
}

/// What the Kong actions reach Kong through. The CLI builds it from the plan
/// ([`KongAccess::for_plan`]); the lab builds its own with its simulated databases.
#[derive(Clone)]
pub struct KongAccess {
    /// Reads of the Admin and Status APIs (retries transient failures).
    pub admin: AdminClient,
    /// Polls while waiting: one try, short timeout, so a dead node cannot stall a wait.
    pub probe: AdminClient,
    /// What building the clients and the databases' access warned about (TLS verification
    /// off); shown by preflight.
    pub tls_warnings: Vec<String>,
    /// X's database (traditional mode, hybrid control planes).
    pub x_database: Option<Arc<dyn KongDatabase>>,
    /// Y's own database (dual-cluster). Other strategies run Y on X's database.
    pub y_database: Option<Arc<dyn KongDatabase>>,
    pub waits: Waits,
}

impl std::fmt::Debug for KongAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KongAccess")
            .field(
                "x_database",
                &self.x_database.as_ref().map(|d| d.describe()),
            )
            .field(
                "y_database",
                &self.y_database.as_ref().map(|d| d.describe()),
            )
            .field("waits", &self.waits)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KongAccessError {
    #[error("the Admin API client: {0}")]
    Admin(#[from] AdminError),
    #[error("cluster {}'s database: {source}", side.as_str().to_uppercase())]
    Database {
        side: ClusterSide,
        #[source]
        source: PgError,
    },
}

/// How long one `pg_dump` or `pg_restore` may take.
pub const DATABASE_TOOL_TIMEOUT: Duration = Duration::from_secs(3600);

impl KongAccess {
    /// The Admin API clients from `admin` (the probe client derives from it), and the
    /// databases as given.
    pub fn new(
        admin: AdminClientOptions,
        x_database: Option<Arc<dyn KongDatabase>>,
        y_database: Option<Arc<dyn KongDatabase>>,
    ) -> Result<KongAccess, KongAccessError> {
        let probe_options = AdminClientOptions {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            read_attempts: 1,
            // Every node is probed every few seconds: a kept connection each is a fleet's
            // worth of sockets and buffers for little gain.
            keep_idle_connections: false,
            ..admin.clone()
        };
        let (client, mut tls_warnings) = AdminClient::new(admin)?;
        let (probe, _) = AdminClient::new(probe_options)?;
        for database in x_database.iter().chain(&y_database) {
            tls_warnings.extend(database.tls_warnings());
        }
        Ok(KongAccess {
            admin: client,
            probe,
            tls_warnings,
            x_database,
            y_database,
            waits: Waits::default(),
        })
    }

    /// What a real run uses: the plan's Admin API access and, on PostgreSQL, its databases
    /// (passwords read from their sources now).
    pub fn for_plan(plan: &Plan) -> Result<KongAccess, KongAccessError> {
        let database = |side: ClusterSide| -> Result<Option<Arc<dyn KongDatabase>>, _> {
            let cluster = match side {
                ClusterSide::X => &plan.clusters.x,
                ClusterSide::Y => &plan.clusters.y,
            };
            match (&cluster.database, plan.database) {
                (Some(spec), DatabaseKind::Postgres) => {
                    PgDatabase::from_spec(spec, DATABASE_TOOL_TIMEOUT)
                        .map(Some)
                        .map_err(|source| KongAccessError::Database { side, source })
                }
                _ => Ok(None),
            }
        };
        KongAccess::new(
            AdminClientOptions::from_plan(&plan.admin),
            database(ClusterSide::X)?,
            database(ClusterSide::Y)?,
        )
    }

    pub fn with_waits(mut self, waits: Waits) -> KongAccess {
        self.waits = waits;
        self
    }

    /// The database Y runs on: its own (dual-cluster), else X's.
    pub fn y_runs_on(&self) -> Option<&Arc<dyn KongDatabase>> {
        self.y_database.as_ref().or(self.x_database.as_ref())
    }

    /// X's and Y's databases, for the topology pane (`session::LiveSources::databases`).
    pub fn databases(&self) -> Vec<(ClusterSide, Arc<dyn KongDatabase>)> {
        [
            (ClusterSide::X, &self.x_database),
            (ClusterSide::Y, &self.y_database),
        ]
        .into_iter()
        .filter_map(|(side, database)| database.clone().map(|d| (side, d)))
        .collect()
    }
}

/// Registers every Kong action; later registrations win, so call it after the traffic
/// actions (the traffic stages it registers run the freeze guard, then the built-in
/// shift). [`crate::actions::builtins`] does.
pub fn register_kong_actions(registry: &mut ActionRegistry, access: KongAccess) {
    let access = Arc::new(access);
    registry
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::Preflight)),
            Arc::new(Preflight::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::FreezeWrites)),
            Arc::new(FreezeWrites::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::ShiftTraffic { .. })),
            Arc::new(FreezeGuardedShift::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::Backup(BackupKind::Database))),
            Arc::new(DatabaseBackup::new(access.clone())),
        )
        .register(
            |t| {
                matches!(
                    t,
                    ActionFor::Step(StepKind::Backup(BackupKind::Declarative))
                )
            },
            Arc::new(DeclarativeBackup::new(access.clone())),
        )
        .register(
            |t| {
                matches!(
                    t,
                    ActionFor::Step(StepKind::Backup(
                        BackupKind::Keyring | BackupKind::StaticFiles
                    ))
                )
            },
            Arc::new(FileBackup::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::RestoreDatabase)),
            Arc::new(RestoreIntoY::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Rollback(RollbackKind::RestoreDatabase)),
            Arc::new(RestoreOverLive::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::Migrations(_))),
            Arc::new(Migrations::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::SmokeTests)),
            Arc::new(SmokeTests::new(access.clone())),
        )
        .register(
            |t| matches!(t, ActionFor::Step(StepKind::CompatibilityCheck)),
            Arc::new(CompatibilityCheck::new(access.clone())),
        )
        .register(is_node_step, Arc::new(NodesWait::new(access)));
}

/// Steps that start, stop, deploy or remove nodes: after them kongup waits for the nodes.
pub(crate) fn is_node_step(target: &ActionFor) -> bool {
    matches!(
        target,
        ActionFor::Step(
            StepKind::StartNodes { .. }
                | StepKind::DeployNodes { .. }
                | StepKind::StopNodes { .. }
                | StepKind::Decommission { .. }
        ) | ActionFor::Rollback(RollbackKind::StartNodes { .. } | RollbackKind::StopNodes { .. })
    )
}

/// Runs `work` unless the operator aborts the step first (`None`); dropping the work kills
/// the programs it started (they run with `kill_on_drop`).
pub(crate) async fn unless_aborted<T>(
    ctx: &StepContext,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        _ = ctx.cancel.cancelled() => None,
        done = work => Some(done),
    }
}

/// The nodes of one side of the plan.
/// When the plan's database is one kongup cannot open (only PostgreSQL is, see
/// [`KongAccess::for_plan`]): the start of the failure that says so, naming the built-in
/// `work` that needs it. `None` on PostgreSQL, where a missing database is the plan's gap.
pub(crate) fn database_not_supported(plan: &Plan, work: &str) -> Option<String> {
    (plan.database == DatabaseKind::Cassandra)
        .then(|| format!("database cassandra: kongup's built-in {work} supports PostgreSQL only"))
}

pub(crate) fn cluster_nodes(plan: &Plan, side: ClusterSide) -> &[Node] {
    match side {
        ClusterSide::X => &plan.clusters.x.nodes,
        ClusterSide::Y => &plan.clusters.y.nodes,
    }
}

/// The version a side runs: X the plan's `from`, Y its `to`.
pub(crate) fn side_version(plan: &Plan, side: ClusterSide) -> KongVersion {
    match side {
        ClusterSide::X => plan.from,
        ClusterSide::Y => plan.to,
    }
}

pub(crate) fn side_name(side: ClusterSide) -> &'static str {
    match side {
        ClusterSide::X => "X",
        ClusterSide::Y => "Y",
    }
}

/// Whether a node reports the version the plan expects (`3.4.3.12`, `3.9.1`, also
/// `2.8.1.1-enterprise-edition`; a missing build counts as 0).
pub(crate) fn is_version(reported: &str, expected: KongVersion) -> bool {
    reported_version(reported).is_ok_and(|v| v == expected)
}

/// The phase a step belongs to, for the preview (which gets the step, not its place):
/// a rollback step's id names it (`phase.id`), a forward step is found in the plan.
pub(crate) fn phase_for_preview(plan: &Plan, step: &Step) -> (Option<ExpandedPlan>, PhaseName) {
    let expanded = crate::plan::templates::expand(plan).ok();
    if let Some((phase, _)) = step.id.split_once('.')
        && let Some(phase) = PhaseName::parse(phase)
    {
        return (expanded, phase);
    }
    let phase = expanded
        .as_ref()
        .and_then(|e| {
            e.phases
                .iter()
                .find(|p| p.steps.iter().any(|s| s == step))
                .or_else(|| e.phases.first().filter(|_| e.phases.len() == 1))
                .map(|p| p.name)
        })
        .unwrap_or(PhaseName::Cluster);
    (expanded, phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_versions_kong_reports() {
        let ee = KongVersion::enterprise(3, 4, 3, 12);
        assert!(is_version("3.4.3.12", ee));
        assert!(!is_version("3.4.3.11", ee));
        assert!(is_version(
            "2.8.1.1-enterprise-edition",
            KongVersion::enterprise(2, 8, 1, 1)
        ));
        assert!(is_version("3.10.0", KongVersion::enterprise(3, 10, 0, 0)));
        assert!(!is_version("next", ee));
    }
}

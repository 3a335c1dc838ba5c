//! The lab: a scenario's nodes, databases, load balancer, traffic generator and faults, and
//! the handle (`Lab`) the demo, the console and the tests drive it through.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use tokio::task::JoinHandle;

use crate::kong::schema::SchemaState;
use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;
use crate::secrets::Secret;

use super::api::{self, EMPTY_CONFIG_HASH};
use super::balancer::SimBalancer;
use super::database::{DataPlaneRow, DatabaseSnapshot, LockRow, SimDatabase, StartRefusal};
use super::executor::{SimExecutor, SimScope};
use super::facts;
use super::faults::{Fault, FaultState};
use super::metrics::{MetricsFlags, RequestRecord};
use super::node::{Lifecycle, ListenerKind, NodeState, SimNode, Startup, loopback_address};
use super::proxy;
use super::scenarios::{self, Scenario, Topology};
use super::traffic::{DEFAULT_MIX, TrafficGenerator, TrafficStats};

/// How the lab starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LabOptions {
    /// Y deployed and running at the target version from the start, so both clusters can
    /// stand behind a load balancer (the headless `kongup lab`). Otherwise Y is absent
    /// until the plan deploys it (the demo). With a shared database, Y's `migrations up`
    /// has run (the blue-green state); with its own, Y's database is X's, fully migrated.
    pub y_deployed: bool,
    /// Requests a second the generator sends through the balancer; 0 sends none.
    pub traffic_rps: f64,
    pub faults: Vec<Fault>,
    pub metrics_flags: MetricsFlags,
    /// How many times faster than real time the simulated commands run (2.0: twice as
    /// fast); must be > 0.
    pub speed: f64,
    /// Routes besides the lab's own (a rehearsal's, fitted to the plan's smoke tests); one
    /// on a path the lab has replaces the lab's.
    pub routes: Vec<proxy::LabRoute>,
    /// Keys key-auth accepts besides [`proxy::DEMO_API_KEY`] (a rehearsal's smoke-test key,
    /// when the operator has it set): they never leave loopback.
    pub api_keys: Vec<Secret>,
    /// 3.10 control planes and data planes run with `cluster_rpc_sync = on` (Kong's default
    /// is off): such a data plane syncs by RPC, and its control plane records it under its
    /// node id as hostname, with a `v02_` configuration hash.
    pub rpc_sync: bool,
    /// Data planes per cluster of the hybrid lab (`--data-planes`); `None`: the scenario's
    /// own size. Checked by `scenarios::data_planes_for`.
    pub data_planes: Option<usize>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            y_deployed: false,
            traffic_rps: 0.0,
            faults: Vec::new(),
            metrics_flags: MetricsFlags::ALL_ON,
            speed: 1.0,
            routes: Vec::new(),
            api_keys: Vec::new(),
            rpc_sync: false,
            data_planes: None,
        }
    }
}

/// Where to reach one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    pub name: String,
    pub cluster: ClusterSide,
    pub role: Role,
    /// `database = off`.
    pub dbless: bool,
    pub version: KongVersion,
    /// `None` on data planes, which have no Admin API.
    pub admin: Option<String>,
    pub status: String,
    /// `None` on control planes, which do not proxy.
    pub proxy: Option<String>,
    /// Data planes: the control plane they report to.
    pub control_plane: Option<String>,
}

/// One database of the lab, for plans (`host`, `port`, `name`, `user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseEndpoint {
    pub name: String,
    pub cluster: ClusterSide,
    pub host: String,
    pub port: u16,
    pub user: String,
}

/// Everything a plan or a client needs to reach the lab.
#[derive(Debug, Clone, PartialEq)]
pub struct LabEndpoints {
    pub scenario: Scenario,
    pub mode: crate::plan::model::Mode,
    pub from: KongVersion,
    pub to: KongVersion,
    pub strategy: crate::plan::model::Strategy,
    pub nodes: Vec<NodeEndpoint>,
    pub databases: Vec<DatabaseEndpoint>,
    /// The key `/secure` accepts (`apikey` header).
    pub api_key: &'static str,
}

impl LabEndpoints {
    pub fn cluster(&self, side: ClusterSide) -> impl Iterator<Item = &NodeEndpoint> {
        self.nodes.iter().filter(move |n| n.cluster == side)
    }
}

/// A node as the lab sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub cluster: ClusterSide,
    pub role: Role,
    pub version: KongVersion,
    pub lifecycle: Lifecycle,
    pub draining: bool,
    /// Would receive traffic from a health-checking balancer.
    pub ready: bool,
    /// Proxied answers by status code.
    pub served_by_code: BTreeMap<u16, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("no node named '{0}' in the lab (see `kongup lab --scenario …` for the names)")]
    UnknownNode(String),
    #[error("{0} is not installed")]
    NotInstalled(String),
    #[error("Kong is already running in /usr/local/kong")]
    AlreadyRunning,
    #[error("nginx not running in prefix: /usr/local/kong")]
    NotRunning,
    #[error(transparent)]
    Refused(#[from] StartRefusal),
    #[error(
        "could not listen on loopback for {node}: {source} (is another program holding the port?)"
    )]
    Listen {
        node: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Fault(String),
    #[error(transparent)]
    Size(#[from] scenarios::SizeError),
}

/// A file a simulated command wrote (`pg_dump -f`, `deck gateway dump -o`, `cp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    DatabaseDump(DatabaseSnapshot),
    DeclarativeConfig {
        config_hash: String,
    },
    /// `kong.conf` and other static files.
    ConfigFile,
}

/// What a lab node's servers share.
#[derive(Clone)]
pub struct NodeCtx {
    pub(crate) lab: Arc<LabShared>,
    pub(crate) node: Arc<SimNode>,
}

pub(crate) struct LabShared {
    pub(crate) topology: Topology,
    pub(crate) nodes: Vec<Arc<SimNode>>,
    /// Each node's index in `nodes` by name: a fleet's lab looks nodes up by name on every
    /// command and every cluster ping, a scan of 2 000 names each time.
    by_name: HashMap<String, usize>,
    databases: Mutex<BTreeMap<String, SimDatabase>>,
    faults: Mutex<FaultState>,
    files: Mutex<BTreeMap<String, Artifact>>,
    pub(crate) balancer: Arc<SimBalancer>,
    traffic: Mutex<Option<TrafficGenerator>>,
    /// The hash of the lab's configuration (the same entities on every node).
    pub(crate) config_hash: String,
    /// When the data planes' cluster certificates expire.
    pub(crate) cert_expiry: i64,
    pub(crate) speed: f64,
    /// The lab's configuration: every route the proxies answer (see [`proxy::routes_with`]).
    pub(crate) routes: Vec<proxy::LabRoute>,
    /// Keys key-auth accepts besides the demo's.
    api_keys: Vec<Secret>,
    /// `LabOptions::rpc_sync`.
    rpc_sync: bool,
}

/// The version of the lab's configuration as RPC sync numbers it: the configuration never
/// changes, so it stays at its first version.
const RPC_SYNC_VERSION: u64 = 1;

/// The configuration hash of a data plane synced by RPC: `v02_` and the sync version in 28
/// hex digits (kong/clustering/services/sync/strategies/postgres.lua:11-16@master).
pub(crate) fn rpc_sync_hash() -> String {
    format!("v02_{RPC_SYNC_VERSION:028x}")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LabShared {
    pub(crate) fn node(&self, name: &str) -> Result<&Arc<SimNode>, LabError> {
        self.by_name
            .get(name)
            .map(|&index| &self.nodes[index])
            .ok_or_else(|| LabError::UnknownNode(name.to_string()))
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.faults)
    }

    pub(crate) fn files(&self) -> MutexGuard<'_, BTreeMap<String, Artifact>> {
        lock(&self.files)
    }

    pub(crate) fn databases(&self) -> MutexGuard<'_, BTreeMap<String, SimDatabase>> {
        lock(&self.databases)
    }

    /// Whether key-auth accepts `key`: the demo's, or one the lab was started with.
    pub(crate) fn accepts_key(&self, key: &str) -> bool {
        key == proxy::DEMO_API_KEY || self.api_keys.iter().any(|k| k.expose() == key)
    }

    /// Counts one proxied request into the node's series (Kong's log phase).
    pub(crate) fn record(&self, node: &SimNode, record: &RequestRecord) {
        let flags = node.state().flags;
        node.stats().record(node.spec.version, flags, record);
    }

    /// A worker's Lua VM: about 40 MiB, growing a little with the requests served.
    pub(crate) fn lua_vm_bytes(&self, node: &SimNode) -> u64 {
        let requests = node.counters.snapshot().total_requests;
        40 * 1_048_576 + (requests * 48).min(24 * 1_048_576)
    }

    /// The `clustering_data_planes` rows a control plane reads from its database.
    pub(crate) fn data_plane_rows(&self, cp: &SimNode) -> Vec<DataPlaneRow> {
        cp.spec
            .database
            .as_ref()
            .and_then(|db| self.databases().get(db).map(SimDatabase::data_planes))
            .unwrap_or_default()
    }

    /// Data planes ping their control plane: sync their configuration when compatible and
    /// record them in the control plane's database.
    pub(crate) fn sync_clustering(&self) {
        let now = chrono::Utc::now().timestamp();
        for dp in self.nodes.iter().filter(|n| n.spec.role == Role::DataPlane) {
            let (running, reports_to) = {
                let state = dp.state();
                (
                    state.lifecycle == Lifecycle::Running,
                    state.reports_to.clone(),
                )
            };
            let cp = reports_to.as_deref().and_then(|name| self.node(name).ok());
            let cp_running = cp.is_some_and(|cp| cp.state().lifecycle == Lifecycle::Running);
            let (Some(cp), true, true) = (cp, running, cp_running) else {
                dp.state().cp_connected = false;
                continue;
            };
            let compatible = facts::dp_compatible(cp.spec.version, dp.spec.version);
            let rpc = compatible && self.syncs_by_rpc(cp, dp);
            let config_hash = {
                let mut state = dp.state();
                if compatible {
                    state.config_hash = Some(if rpc {
                        rpc_sync_hash()
                    } else {
                        self.config_hash.clone()
                    });
                }
                state.cp_connected = compatible;
                state.rpc_synced = rpc;
                state
                    .config_hash
                    .clone()
                    .unwrap_or_else(|| EMPTY_CONFIG_HASH.to_string())
            };
            let row = DataPlaneRow {
                id: dp.node_id.clone(),
                hostname: if rpc {
                    dp.node_id.clone()
                } else {
                    dp.spec.name.clone()
                },
                ip: dp.ip.to_string(),
                version: facts::full_version(dp.spec.version),
                // An incompatible data plane is recorded before its socket is closed
                // (kong/clustering/control_plane.lua:271-280@3.9.1).
                sync_status: if compatible {
                    "normal"
                } else {
                    "kong_version_incompatible"
                },
                config_hash,
                last_seen: now,
                updated_at: now,
                // No `cluster_dp_labels` on the lab's data planes: `{}` from those that send
                // labels at all.
                labels: facts::data_plane_sends_labels(dp.spec.version).then(BTreeMap::new),
                cert_expiry: self.cert_expiry,
                rpc_capabilities: if rpc {
                    vec!["kong.sync.v2".to_string()]
                } else {
                    Vec::new()
                },
            };
            if let Some(db_name) = &cp.spec.database
                && let Some(db) = self.databases().get_mut(db_name)
            {
                db.upsert_data_plane(row);
            }
        }
    }

    /// Whether `dp` syncs from `cp` by RPC: both run 3.10 with `cluster_rpc_sync = on`, and
    /// the control plane offers `kong.sync.v2` only to data planes not older than itself
    /// (kong/clustering/rpc/manager.lua:255-273@master).
    fn syncs_by_rpc(&self, cp: &SimNode, dp: &SimNode) -> bool {
        self.rpc_sync
            && facts::has_rpc_sync(cp.spec.version)
            && facts::has_rpc_sync(dp.spec.version)
            && dp.spec.version >= cp.spec.version
    }

    /// Whether 3.10 nodes run with `cluster_rpc_sync = on` (`LabOptions::rpc_sync`).
    pub(crate) fn rpc_sync(&self) -> bool {
        self.rpc_sync
    }

    /// Whether the database `name` answers (an injected outage makes it time out).
    pub(crate) fn database_reachable(&self, name: &str) -> bool {
        !self.faults().databases_down.iter().any(|d| d == name)
    }

    fn router(self: &Arc<Self>, node: &Arc<SimNode>, kind: ListenerKind) -> Router {
        let ctx = NodeCtx {
            lab: self.clone(),
            node: node.clone(),
        };
        match kind {
            ListenerKind::Admin => api::admin_router(ctx),
            ListenerKind::Status => api::status_router(ctx),
            ListenerKind::Proxy => proxy::router(ctx),
        }
    }

    /// `kong start` on a node: refused as Kong refuses (not installed, already running,
    /// database not ready for its version); `warmup` is how long `/status/ready` still
    /// answers 503 afterwards.
    pub(crate) fn start_node(
        self: &Arc<Self>,
        name: &str,
        warmup: Duration,
    ) -> Result<(), LabError> {
        self.open_node(name, warmup)?;
        self.sync_clustering();
        Ok(())
    }

    /// [`start_node`](Self::start_node) without the data planes' ping that follows: the
    /// lab's start opens every node, then pings once (once per node is quadratic in a
    /// fleet).
    fn open_node(self: &Arc<Self>, name: &str, warmup: Duration) -> Result<(), LabError> {
        let node = self.node(name)?.clone();
        let lifecycle = node.state().lifecycle;
        match lifecycle {
            Lifecycle::Absent => return Err(LabError::NotInstalled(name.to_string())),
            Lifecycle::Running => return Err(LabError::AlreadyRunning),
            Lifecycle::Stopped | Lifecycle::Crashed => {}
        }
        if let Some(db) = &node.spec.database
            && let Some(db) = self.databases().get(db)
        {
            db.check_start(node.spec.version)?;
        }
        node.open(|kind| self.router(&node, kind))
            .map_err(|source| LabError::Listen {
                node: name.to_string(),
                source,
            })?;
        {
            let mut state = node.state();
            state.lifecycle = Lifecycle::Running;
            state.draining = false;
            state.startup = Some(Startup {
                began: Instant::now(),
                warmup,
            });
            state.held_build = None;
            if node.spec.dbless && node.spec.role != Role::DataPlane {
                // A DB-less node loads its declarative configuration at start.
                state.config_hash = Some(self.config_hash.clone());
            }
        }
        self.faults().crashed.retain(|n| n != name);
        Ok(())
    }

    /// `kong stop`: the node stops answering; a DB-less node forgets its configuration.
    pub(crate) async fn stop_node(&self, name: &str) -> Result<(), LabError> {
        let node = self.node(name)?.clone();
        if node.state().lifecycle != Lifecycle::Running {
            return Err(LabError::NotRunning);
        }
        self.halt(&node, Lifecycle::Stopped).await
    }

    async fn halt(&self, node: &SimNode, to: Lifecycle) -> Result<(), LabError> {
        node.close().await.map_err(|source| LabError::Listen {
            node: node.spec.name.clone(),
            source,
        })?;
        {
            let mut state = node.state();
            state.lifecycle = to;
            state.draining = false;
            state.startup = None;
            state.held_build = None;
            state.cp_connected = false;
            state.rpc_synced = false;
            if node.spec.dbless {
                state.config_hash = None;
            }
        }
        self.sync_clustering();
        Ok(())
    }

    /// The node stops answering at once, without `kong stop`.
    pub(crate) async fn crash_node(&self, name: &str) -> Result<(), LabError> {
        let node = self.node(name)?.clone();
        if node.state().lifecycle != Lifecycle::Running {
            return Err(LabError::NotRunning);
        }
        self.halt(&node, Lifecycle::Crashed).await?;
        let mut faults = self.faults();
        if !faults.crashed.iter().any(|n| n == name) {
            faults.crashed.push(name.to_string());
        }
        Ok(())
    }

    /// `kong drain`: `/status/ready` answers 503 `draining`; the node still proxies.
    pub(crate) fn drain_node(&self, name: &str) -> Result<(), LabError> {
        let node = self.node(name)?;
        let mut state = node.state();
        if state.lifecycle != Lifecycle::Running {
            return Err(LabError::NotRunning);
        }
        state.draining = true;
        Ok(())
    }

    /// Installs Kong on an absent node (stopped afterwards). `false` if it was installed.
    pub(crate) fn install_node(&self, name: &str) -> Result<bool, LabError> {
        let node = self.node(name)?;
        let mut state = node.state();
        if state.lifecycle != Lifecycle::Absent {
            return Ok(false);
        }
        state.lifecycle = Lifecycle::Stopped;
        Ok(true)
    }

    /// Stops a node if it runs and removes it.
    pub(crate) async fn decommission_node(&self, name: &str) -> Result<(), LabError> {
        let node = self.node(name)?.clone();
        // Read apart from the match: its arms lock the state again.
        let lifecycle = node.state().lifecycle;
        match lifecycle {
            Lifecycle::Absent => return Ok(()),
            Lifecycle::Running | Lifecycle::Crashed => {}
            Lifecycle::Stopped => {
                node.state().lifecycle = Lifecycle::Absent;
                return Ok(());
            }
        }
        self.halt(&node, Lifecycle::Absent).await?;
        self.faults().crashed.retain(|n| n != name);
        Ok(())
    }

    /// The database a cluster's nodes use (Y shares X's in place and blue-green).
    pub(crate) fn database_of(&self, side: ClusterSide) -> Option<String> {
        self.nodes
            .iter()
            .filter(|n| n.spec.cluster == side)
            .find_map(|n| n.spec.database.clone())
    }

    /// The headless lab's Y: its database made ready for the target version.
    fn prepare_y_database(&self) {
        let (Some(x_db), Some(y_db)) = (
            self.database_of(ClusterSide::X),
            self.database_of(ClusterSide::Y),
        ) else {
            return;
        };
        let to = self.topology.to;
        let mut dbs = self.databases();
        if x_db != y_db {
            let snapshot = dbs.get(&x_db).map(SimDatabase::snapshot);
            if let (Some(snapshot), Some(db)) = (snapshot, dbs.get_mut(&y_db)) {
                db.restore(&snapshot);
            }
        }
        let Some(db) = dbs.get_mut(&y_db) else {
            return;
        };
        for step in db.plan_up(to) {
            db.record_up(&step);
        }
        if x_db != y_db {
            for step in db.plan_finish(to) {
                db.record_teardown(&step, to);
            }
        }
    }
}

/// Stops everything the lab runs when the last `Lab` handle goes.
struct LabGuard {
    shared: Arc<LabShared>,
    ticker: JoinHandle<()>,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        self.ticker.abort();
        lock(&self.shared.traffic).take();
        for node in &self.shared.nodes {
            node.abort_serving();
        }
    }
}

/// The running lab. Cheap to clone; the lab stops when the last clone is dropped (or at
/// `shutdown`).
#[derive(Clone)]
pub struct Lab {
    shared: Arc<LabShared>,
    _guard: Arc<LabGuard>,
}

/// How often data planes ping their control plane in the lab (Kong: every 30 s).
const CLUSTER_PING: Duration = Duration::from_secs(1);

impl Lab {
    /// Starts the scenario's lab: binds every node's ports on loopback, starts X (and Y
    /// when `options.y_deployed`), applies the faults and starts the traffic.
    pub async fn start(scenario: Scenario, options: LabOptions) -> Result<Lab, LabError> {
        let data_planes = scenarios::data_planes_for(scenario, options.data_planes)?;
        Lab::start_with(scenarios::topology_sized(scenario, data_planes), options).await
    }

    /// Starts a lab of any topology (a rehearsal's, shaped like the operator's plan);
    /// `topology.scenario` only labels it.
    pub async fn start_with(topology: Topology, options: LabOptions) -> Result<Lab, LabError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if options.speed.is_nan() || options.speed <= 0.0 {
            return Err(LabError::Fault(format!(
                "speed {} is not a positive factor (1.0 is real time, 10 ten times faster)",
                options.speed
            )));
        }
        let seed = format!("kongup-lab/{}", topology.scenario);
        let databases = topology
            .databases
            .iter()
            .map(|plan| {
                let db = match plan.bootstrapped_by {
                    Some(version) => {
                        SimDatabase::bootstrapped(&plan.name, &plan.address(), version)
                    }
                    None => SimDatabase::empty(&plan.name, &plan.address()),
                };
                (plan.name.clone(), db)
            })
            .collect();
        let mut nodes = Vec::new();
        let mut data_planes: u8 = 0;
        for (index, spec) in topology.nodes.iter().enumerate() {
            let initial = NodeState {
                lifecycle: if spec.cluster == ClusterSide::X || options.y_deployed {
                    Lifecycle::Stopped
                } else {
                    Lifecycle::Absent
                },
                draining: false,
                startup: None,
                held_build: None,
                flags: options.metrics_flags,
                config_hash: None,
                reports_to: spec.control_plane.clone(),
                cp_connected: false,
                rpc_synced: false,
            };
            // Data planes on addresses of their own (127.0.0.2, …), as on hosts of their own.
            let ip = if spec.role == Role::DataPlane && data_planes < 250 {
                data_planes += 1;
                loopback_address(Ipv4Addr::new(127, 0, 0, 1 + data_planes))
            } else {
                Ipv4Addr::LOCALHOST
            };
            let node = SimNode::new(spec.clone(), index, &seed, ip, initial).map_err(|source| {
                LabError::Listen {
                    node: spec.name.clone(),
                    source,
                }
            })?;
            nodes.push(Arc::new(node));
        }
        let config_hash = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(format!("{seed}/config").as_bytes())[..16])
        };
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| (node.spec.name.clone(), index))
            .collect();
        let shared = Arc::new(LabShared {
            balancer: Arc::new(SimBalancer::new(&nodes, &topology.shared_backends)),
            topology,
            nodes,
            by_name,
            databases: Mutex::new(databases),
            faults: Mutex::new(FaultState::default()),
            files: Mutex::new(BTreeMap::from([
                (
                    "/etc/kong/kong.yml".to_string(),
                    Artifact::DeclarativeConfig {
                        config_hash: config_hash.clone(),
                    },
                ),
                ("/etc/kong/kong.conf".to_string(), Artifact::ConfigFile),
            ])),
            traffic: Mutex::new(None),
            config_hash,
            cert_expiry: chrono::Utc::now().timestamp() + 365 * 24 * 3600,
            speed: options.speed,
            routes: proxy::routes_with(&options.routes),
            api_keys: options.api_keys.clone(),
            rpc_sync: options.rpc_sync,
        });
        if options.y_deployed {
            shared.prepare_y_database();
        }
        // Control planes first, so data planes find them.
        let mut order: Vec<&Arc<SimNode>> = shared
            .nodes
            .iter()
            .filter(|n| n.state().lifecycle == Lifecycle::Stopped)
            .collect();
        order.sort_by_key(|n| n.spec.role != Role::ControlPlane);
        let names: Vec<String> = order.iter().map(|n| n.spec.name.clone()).collect();
        for name in names {
            shared.open_node(&name, Duration::ZERO)?;
        }
        shared.sync_clustering();
        let ticker = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(CLUSTER_PING);
                loop {
                    interval.tick().await;
                    shared.sync_clustering();
                }
            })
        };
        let lab = Lab {
            _guard: Arc::new(LabGuard {
                shared: shared.clone(),
                ticker,
            }),
            shared,
        };
        for fault in &options.faults {
            lab.apply_fault(fault).await?;
        }
        if options.traffic_rps > 0.0 {
            lab.start_traffic(options.traffic_rps);
        }
        Ok(lab)
    }

    pub(crate) fn shared(&self) -> &Arc<LabShared> {
        &self.shared
    }

    pub fn scenario(&self) -> Scenario {
        self.shared.topology.scenario
    }

    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// The routes the lab's proxies answer (its configuration, as the Admin API lists it).
    pub fn routes(&self) -> &[proxy::LabRoute] {
        &self.shared.routes
    }

    /// The lab's configuration as a DB-less declarative file (`kong.yml`).
    pub fn declarative_config(&self) -> String {
        super::entities::declarative_config(&self.shared.routes, &self.shared.config_hash)
    }

    pub fn endpoints(&self) -> LabEndpoints {
        let t = &self.shared.topology;
        LabEndpoints {
            scenario: t.scenario,
            mode: t.mode,
            from: t.from,
            to: t.to,
            strategy: t.strategy,
            nodes: self
                .shared
                .nodes
                .iter()
                .map(|n| NodeEndpoint {
                    name: n.spec.name.clone(),
                    cluster: n.spec.cluster,
                    role: n.spec.role,
                    dbless: n.spec.dbless,
                    version: n.spec.version,
                    admin: n.admin_url(),
                    status: n.status_url(),
                    proxy: n.proxy_url(),
                    control_plane: n.spec.control_plane.clone(),
                })
                .collect(),
            databases: t
                .databases
                .iter()
                .map(|d| DatabaseEndpoint {
                    name: d.name.clone(),
                    cluster: d.cluster,
                    host: d.host.clone(),
                    port: d.port,
                    user: d.user.clone(),
                })
                .collect(),
            api_key: proxy::DEMO_API_KEY,
        }
    }

    /// The lab's load balancer, as the engine's traffic driver.
    pub fn traffic_driver(&self) -> Arc<SimBalancer> {
        self.shared.balancer.clone()
    }

    /// The `sim` executor for the plan executor `name`: bound to the node of that name if
    /// the lab has one, else lab-wide (see `executor` for what each accepts).
    pub fn executor(&self, name: &str) -> SimExecutor {
        let scope = if self.shared.node(name).is_ok() {
            SimScope::Node(name.to_string())
        } else {
            SimScope::Lab
        };
        SimExecutor::new(self.clone(), scope)
    }

    pub fn nodes(&self) -> Vec<NodeView> {
        self.shared
            .nodes
            .iter()
            .map(|n| {
                let state = n.state().clone();
                NodeView {
                    name: n.spec.name.clone(),
                    cluster: n.spec.cluster,
                    role: n.spec.role,
                    version: n.spec.version,
                    lifecycle: state.lifecycle,
                    draining: state.draining,
                    ready: n.is_ready(),
                    served_by_code: n.stats().served_by_code.clone(),
                }
            })
            .collect()
    }

    /// Proxied answers of a cluster: (all, 5xx), whatever the metrics flags.
    pub fn served(&self, side: ClusterSide) -> (u64, u64) {
        self.shared
            .nodes
            .iter()
            .filter(|n| n.spec.cluster == side)
            .map(|n| {
                let stats = n.stats();
                (stats.served_total(), stats.served_with_code(500..600))
            })
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// The `schema_meta` rows of the database cluster `side` uses; `None` without one.
    pub fn schema_state(&self, side: ClusterSide) -> Option<SchemaState> {
        let name = self.shared.database_of(side)?;
        self.shared
            .databases()
            .get(&name)
            .map(SimDatabase::schema_state)
    }

    /// The live `locks` row of cluster `side`'s database (held while migrations run).
    pub fn migrations_lock(&self, side: ClusterSide) -> Option<LockRow> {
        let name = self.shared.database_of(side)?;
        self.shared
            .databases()
            .get(&name)
            .and_then(SimDatabase::lock)
    }

    /// Turns the prometheus plugin's flags on or off on every node.
    pub fn set_metrics_flags(&self, flags: MetricsFlags) {
        for node in &self.shared.nodes {
            node.state().flags = flags;
        }
    }

    /// Starts (or restarts at a new rate) the traffic generator.
    pub fn start_traffic(&self, rps: f64) {
        let generator = (rps > 0.0)
            .then(|| TrafficGenerator::start(self.shared.balancer.clone(), rps, DEFAULT_MIX));
        *lock(&self.shared.traffic) = generator;
    }

    /// Sends one request to each running X proxy that has served none, all at once (64
    /// at a time) and past the balancer, as a live X has served before an upgrade begins.
    /// Kong exports `kong_http_requests_total` and the latency histograms from a node's
    /// first request on (docs/kong/metrics.md, "Flag off" vs "no traffic yet"): without
    /// this, preflight would wait for the generator's round-robin to reach each of a
    /// fleet's proxies (4 s for 1 000 at 250 requests a second).
    pub async fn serve_first_requests(&self) {
        let urls: Vec<String> = self
            .shared
            .nodes
            .iter()
            .filter(|n| {
                n.spec.cluster == ClusterSide::X
                    && n.state().lifecycle == Lifecycle::Running
                    && n.stats().served_by_code.is_empty()
            })
            .filter_map(|n| n.proxy_url())
            .collect();
        super::traffic::serve_once(urls, DEFAULT_MIX).await;
    }

    pub fn stop_traffic(&self) {
        lock(&self.shared.traffic).take();
    }

    /// What the generator has sent and received; `None` when it is not running.
    pub fn traffic_stats(&self) -> Option<TrafficStats> {
        lock(&self.shared.traffic)
            .as_ref()
            .map(TrafficGenerator::stats)
    }

    pub fn faults(&self) -> FaultState {
        self.shared.faults().clone()
    }

    /// Injects a fault; returns what was done, for the log.
    pub async fn apply_fault(&self, fault: &Fault) -> Result<String, LabError> {
        let shared = &self.shared;
        match fault {
            Fault::ErrorRatio { cluster, ratio } => {
                shared.faults().cluster_mut(*cluster).error_ratio = *ratio;
                Ok(format!(
                    "{} now answers {:.0}% of requests with 500",
                    cluster.as_str().to_uppercase(),
                    ratio * 100.0
                ))
            }
            Fault::ExtraLatency { cluster, latency } => {
                shared.faults().cluster_mut(*cluster).extra_latency = *latency;
                Ok(format!(
                    "{} upstream latency now +{}",
                    cluster.as_str().to_uppercase(),
                    humantime::format_duration(*latency)
                ))
            }
            Fault::NodeErrorRatio { node, ratio } => {
                shared.node(node)?;
                shared.faults().node_errors.insert(node.clone(), *ratio);
                Ok(format!(
                    "{node} now answers {:.0}% of requests with 500",
                    ratio * 100.0
                ))
            }
            Fault::Crash { node } => {
                let name = match node {
                    Some(name) => name.clone(),
                    None => shared
                        .nodes
                        .iter()
                        .find(|n| {
                            n.spec.cluster == ClusterSide::Y
                                && n.spec.proxies()
                                && n.state().lifecycle == Lifecycle::Running
                        })
                        .map(|n| n.spec.name.clone())
                        .ok_or_else(|| {
                            LabError::Fault(
                                "crash: no Y proxy is running yet; name a node with crash=NODE"
                                    .to_string(),
                            )
                        })?,
                };
                shared.crash_node(&name).await?;
                Ok(format!("{name} crashed: it no longer answers"))
            }
            Fault::DpIncompatible => {
                let x_cp = shared.nodes.iter().find(|n| {
                    n.spec.cluster == ClusterSide::X && n.spec.role == Role::ControlPlane
                });
                let y_dp = shared
                    .nodes
                    .iter()
                    .find(|n| n.spec.cluster == ClusterSide::Y && n.spec.role == Role::DataPlane);
                let (Some(x_cp), Some(y_dp)) = (x_cp, y_dp) else {
                    return Err(LabError::Fault(format!(
                        "dp-incompatible needs control planes and data planes: use --scenario hybrid (this lab is {})",
                        self.scenario()
                    )));
                };
                y_dp.state().reports_to = Some(x_cp.spec.name.clone());
                shared.faults().misrouted_data_plane = Some(y_dp.spec.name.clone());
                shared.sync_clustering();
                Ok(format!(
                    "{} now reports to {} ({} > {}: kong_version_incompatible)",
                    y_dp.spec.name, x_cp.spec.name, y_dp.spec.version, x_cp.spec.version
                ))
            }
            Fault::DatabaseDown { cluster } => {
                let Some(database) = shared.database_of(*cluster) else {
                    return Err(LabError::Fault(format!(
                        "{fault}: cluster {} uses no database in this lab ({})",
                        cluster.as_str().to_uppercase(),
                        self.scenario()
                    )));
                };
                let mut faults = shared.faults();
                if !faults.databases_down.contains(&database) {
                    faults.databases_down.push(database.clone());
                }
                Ok(format!(
                    "database {database} no longer answers: nodes on it report it unreachable"
                ))
            }
        }
    }

    /// Lifts every fault: error ratios and latencies back to 0, the misrouted data plane
    /// back to its control plane, databases answering, crashed nodes started again.
    pub async fn clear_faults(&self) -> Result<(), LabError> {
        let (crashed, misrouted) = {
            let mut faults = self.shared.faults();
            faults.x = Default::default();
            faults.y = Default::default();
            faults.databases_down.clear();
            faults.node_errors.clear();
            (
                std::mem::take(&mut faults.crashed),
                faults.misrouted_data_plane.take(),
            )
        };
        if let Some(dp) = misrouted {
            let node = self.shared.node(&dp)?;
            node.state().reports_to = node.spec.control_plane.clone();
            self.shared.sync_clustering();
        }
        for name in crashed {
            self.shared.start_node(&name, Duration::ZERO)?;
        }
        Ok(())
    }

    /// Holds a running node's start where Kong's `/status/ready` reports `build`: its
    /// routers and plugins iterators built by that many workers, whatever the time.
    #[cfg(feature = "testkit")]
    pub fn hold_startup(&self, node: &str, build: super::node::Build) -> Result<(), LabError> {
        let node = self.shared.node(node)?;
        let mut state = node.state();
        if state.lifecycle != Lifecycle::Running {
            return Err(LabError::NotRunning);
        }
        state.held_build = Some(build);
        Ok(())
    }

    /// Takes the migrations lock of the database `database` as another node would, for
    /// `ttl`; `false` when someone else holds it.
    #[cfg(feature = "testkit")]
    pub fn hold_migrations_lock(&self, database: &str, owner: &str, ttl: Duration) -> bool {
        self.shared
            .databases()
            .get_mut(database)
            .is_some_and(|db| db.try_lock(owner, ttl).is_ok())
    }

    /// Stops the traffic and every node's servers.
    pub async fn shutdown(self) {
        self.stop_traffic();
        for node in &self.shared.nodes {
            let _ = node.close().await;
        }
    }
}

//! The topology refresher: every few seconds it asks each node of the plan what it runs and
//! whether it is ready, asks control planes for their data planes, reads the databases'
//! migration state, and reports a `TopologySnapshot` plus a warning for each new drift from
//! the plan (a node at an unexpected version, a data plane not in sync or with no
//! configuration, a node gone, a listing it could not read).
//! It returns data: the loop that runs it beside the engine and turns its answers into
//! engine events is `session`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::kong::client::{AdminClient, AdminError, Readiness};
use crate::kong::database::KongDatabase;
use crate::kong::pg;
use crate::kong::topology::{DatabaseView, NodeHealth, NodeView, TopologySnapshot, Unreadable};
use crate::kong::types::{DataPlane, SyncStatus, reported_version};
use crate::plan::model::{Node, Plan, Role};
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;

/// How often the topology pane refreshes by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// How long one host name may take to resolve when matching data planes by address.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a resolved (or unresolvable) host name is trusted before it is asked again.
const RESOLVED_FOR: Duration = Duration::from_secs(60);

/// Which plan node each data plane a control plane lists is.
///
/// By name first: the plan names it by its hostname, or by its node id. Failing that, by
/// address: the row's `ip` is an address of the plan node's name or of its URLs' hosts (an
/// IP as written, or a host name resolved within [`RESOLVE_TIMEOUT`]), and only when that
/// plan node is the one data plane with the address and the row the one unnamed row with
/// it (nodes on one host, or behind one NAT, share theirs). RPC sync (3.9's
/// `cluster_incremental_sync`, 3.10's `cluster_rpc_sync`) lists the node id as the hostname
/// (kong/clustering/services/sync/rpc.lua:86-94@3.9.1): such a row matches by id or by
/// address. A row no plan node takes is shown under its own label.
#[derive(Debug, Default)]
pub struct DataPlaneMatcher {
    resolved: HashMap<String, (Vec<IpAddr>, Instant)>,
}

impl DataPlaneMatcher {
    /// For each of `listed`, the index in `planned` of the plan node it is, if any.
    pub async fn assign(&mut self, planned: &[&Node], listed: &[&DataPlane]) -> Vec<Option<usize>> {
        let mut assigned: Vec<Option<usize>> = listed
            .iter()
            .map(|dp| planned.iter().position(|node| named(node, dp)))
            .collect();
        let unnamed: Vec<usize> = (0..listed.len())
            .filter(|&i| assigned[i].is_none())
            .collect();
        if unnamed.is_empty() {
            return assigned;
        }
        let taken: BTreeSet<usize> = assigned.iter().flatten().copied().collect();
        let free: Vec<usize> = (0..planned.len())
            .filter(|i| planned[*i].role == Role::DataPlane && !taken.contains(i))
            .collect();
        let mut addresses: BTreeMap<usize, Vec<IpAddr>> = BTreeMap::new();
        for &i in &free {
            addresses.insert(i, self.addresses(planned[i]).await);
        }
        for &row in &unnamed {
            let ip: Option<IpAddr> = listed[row].ip.parse().ok();
            let Some(ip) = ip else { continue };
            let holders: Vec<usize> = free
                .iter()
                .copied()
                .filter(|i| addresses[i].contains(&ip))
                .collect();
            let rows_with_ip = unnamed
                .iter()
                .filter(|&&r| listed[r].ip.parse::<IpAddr>().ok() == Some(ip))
                .count();
            if let [only] = holders.as_slice()
                && rows_with_ip == 1
            {
                assigned[row] = Some(*only);
            }
        }
        assigned
    }

    /// The addresses of a plan node: its name and its URLs' hosts, IPs as written and host
    /// names resolved.
    async fn addresses(&mut self, node: &Node) -> Vec<IpAddr> {
        let mut hosts: Vec<String> = vec![node.name.clone()];
        hosts.extend(
            [&node.status_url, &node.proxy_url, &node.admin_url]
                .into_iter()
                .flatten()
                .filter_map(|url| reqwest::Url::parse(url).ok())
                .filter_map(|url| {
                    url.host_str()
                        .map(|h| h.trim_matches(['[', ']']).to_string())
                }),
        );
        let mut found = Vec::new();
        for host in hosts {
            match host.parse::<IpAddr>() {
                Ok(ip) => found.push(ip),
                Err(_) => found.extend(self.resolve(&host).await),
            }
        }
        found
    }

    async fn resolve(&mut self, host: &str) -> Vec<IpAddr> {
        if let Some((ips, at)) = self.resolved.get(host)
            && at.elapsed() < RESOLVED_FOR
        {
            return ips.clone();
        }
        // A name that is no host name (spaces, say) is not looked up at all.
        let ips: Vec<IpAddr> = if host.is_empty() || host.contains(char::is_whitespace) {
            Vec::new()
        } else {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0))).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            }
        };
        self.resolved
            .insert(host.to_string(), (ips.clone(), Instant::now()));
        ips
    }
}

/// Nodes probed at once: a fleet's thousands all together would each wait the longer for
/// the others (the lab's nodes share kongup's process) and read as unreachable. The next
/// probe starts as soon as any ends, so a silent node holds one slot, not the others' turns
/// (as the metrics monitor's scrapes, `metrics::monitor::scrape_round`).
const PROBE_CONCURRENCY: usize = 64;

/// Polls the plan's nodes and databases. Build the client with a timeout shorter than the
/// interval and one read attempt, so a dead node cannot stall a refresh.
pub struct TopologyWatcher {
    client: AdminClient,
    plan: Arc<Plan>,
    databases: Vec<(ClusterSide, Arc<dyn KongDatabase>)>,
    previous: Option<TopologySnapshot>,
    /// Drift already reported, so each is warned about once while it lasts.
    reported: BTreeSet<String>,
    matcher: DataPlaneMatcher,
}

impl TopologyWatcher {
    pub fn new(
        client: AdminClient,
        plan: Arc<Plan>,
        databases: Vec<(ClusterSide, Arc<dyn KongDatabase>)>,
    ) -> TopologyWatcher {
        TopologyWatcher {
            client,
            plan,
            databases,
            previous: None,
            reported: BTreeSet::new(),
            matcher: DataPlaneMatcher::default(),
        }
    }

    /// One refresh: the snapshot and the warnings for drift that is new since the last.
    pub async fn poll(&mut self) -> (TopologySnapshot, Vec<String>) {
        let snapshot = self.snapshot().await;
        let conditions = drift(&self.plan, self.previous.as_ref(), &snapshot);
        let keys: BTreeSet<String> = conditions.iter().map(|(k, _)| k.clone()).collect();
        let warnings = conditions
            .into_iter()
            .filter(|(key, _)| !self.reported.contains(key))
            .map(|(_, message)| message)
            .collect();
        // Lasting drift (a version, a sync status) is warned about once while it lasts,
        // and again if it comes back; transitions (a node gone) come once by nature.
        self.reported = keys;
        self.previous = Some(snapshot.clone());
        (snapshot, warnings)
    }

    async fn snapshot(&mut self) -> TopologySnapshot {
        let plan = self.plan.clone();
        let sides = [
            (ClusterSide::X, &plan.clusters.x),
            (ClusterSide::Y, &plan.clusters.y),
        ];
        let planned: Vec<(ClusterSide, &Node)> = sides
            .iter()
            .flat_map(|(side, cluster)| cluster.nodes.iter().map(move |n| (*side, n)))
            .collect();
        // Collected first: a stream over a borrowing `map` is not `Send` for the spawned
        // watcher (rust-lang/rust#102211).
        let this = &*self;
        let probes: Vec<_> = planned
            .iter()
            .enumerate()
            .map(|(index, (side, node))| async move { (index, this.probe(*side, node).await) })
            .collect();
        // Unordered: `buffered` keeps a finished probe's slot until every probe before it
        // has finished, so one silent node stopped the next ones from starting.
        let mut probed: Vec<Option<NodeView>> = vec![None; probes.len()];
        let mut done = futures::stream::iter(probes).buffer_unordered(PROBE_CONCURRENCY);
        while let Some((index, view)) = done.next().await {
            probed[index] = Some(view);
        }
        drop(done);
        let mut views: Vec<NodeView> = probed
            .into_iter()
            .map(|view| view.expect("every probe ends with a view"))
            .collect();

        // Data planes as their control planes list them; what cannot be read is kept.
        let mut listed: BTreeMap<String, (ClusterSide, String, DataPlane)> = BTreeMap::new();
        let mut unreadable = Vec::new();
        let mut asked = BTreeSet::new();
        for (side, node) in &planned {
            if node.role != Role::ControlPlane {
                continue;
            }
            let Some(url) = &node.admin_url else { continue };
            if !asked.insert(url.clone()) {
                continue;
            }
            match self.client.data_plane_listing(url).await {
                Ok(listing) => {
                    for dp in listing.planes {
                        // Control planes sharing a database list the same rows: the
                        // freshest is kept.
                        let newer = listed
                            .get(&dp.id)
                            .is_none_or(|(_, _, seen)| seen.last_seen < dp.last_seen);
                        if newer {
                            listed.insert(dp.id.clone(), (*side, node.name.clone(), dp));
                        }
                    }
                    unreadable.extend(listing.unreadable.into_iter().map(|row| Unreadable {
                        cluster: *side,
                        control_plane: node.name.clone(),
                        row: Some(row.describe()),
                        error: row.error,
                    }));
                }
                Err(e) => unreadable.push(Unreadable {
                    cluster: *side,
                    control_plane: node.name.clone(),
                    row: None,
                    error: e.to_string(),
                }),
            }
        }
        let listed: Vec<(ClusterSide, String, DataPlane)> = listed.into_values().collect();
        let nodes: Vec<&Node> = planned.iter().map(|(_, node)| *node).collect();
        let rows: Vec<&DataPlane> = listed.iter().map(|(_, _, dp)| dp).collect();
        let assigned = self.matcher.assign(&nodes, &rows).await;
        let mut unplanned = Vec::new();
        for ((side, cp, dp), planned_index) in listed.iter().zip(assigned) {
            let view = match planned_index {
                Some(i) => &mut views[i],
                None => {
                    // Data planes the plan does not name are shown too: they take traffic
                    // all the same.
                    unplanned.push(NodeView {
                        name: dp.label(),
                        cluster: *side,
                        role: Role::DataPlane,
                        version: None,
                        health: NodeHealth::Unknown,
                        control_plane: None,
                        sync_status: None,
                        config_hash: None,
                    });
                    unplanned.last_mut().expect("just pushed")
                }
            };
            view.control_plane = Some(cp.clone());
            view.sync_status = Some(dp.sync_status);
            if view.version.is_none() && !dp.version.is_empty() {
                view.version = Some(dp.version.clone());
            }
            if !dp.config_hash.is_empty() {
                view.config_hash = Some(dp.config_hash.clone());
            }
            if matches!(view.health, NodeHealth::Unknown) {
                view.health = NodeHealth::Ready;
            }
        }
        views.extend(unplanned);

        let databases =
            futures::future::join_all(self.databases.iter().map(|(side, database)| async move {
                let schema = match database.schema_state().await {
                    Ok(state) => pg::summary(&state),
                    Err(e) => format!("unreachable: {e}"),
                };
                DatabaseView {
                    cluster: *side,
                    address: database.describe(),
                    schema: Some(schema),
                }
            }))
            .await;

        TopologySnapshot {
            at: Some(chrono::Utc::now()),
            nodes: views,
            databases,
            load_balancer: Some(self.plan.traffic.driver.describe()),
            unreadable,
        }
    }

    async fn probe(&self, side: ClusterSide, node: &Node) -> NodeView {
        let mut view = NodeView {
            name: node.name.clone(),
            cluster: side,
            role: node.role,
            version: None,
            health: NodeHealth::Unknown,
            control_plane: None,
            sync_status: None,
            config_hash: None,
        };
        let mut admin_error = None;
        if let Some(url) = &node.admin_url {
            match self.client.node_info(url).await {
                Ok(info) => {
                    view.version = Some(info.version);
                    view.health = NodeHealth::Ready;
                }
                Err(e) => admin_error = Some(e),
            }
        }
        if let Some(url) = &node.status_url {
            view.health = match self.client.readiness(url).await {
                Ok(Readiness::Ready) => NodeHealth::Ready,
                Ok(Readiness::NotReady(reason)) => NodeHealth::NotReady(reason),
                // Before 3.3 there is no /status/ready: /status answering means up, and
                // its configuration_hash says whether a DB-less node or data plane holds
                // a configuration.
                Err(AdminError::NotFound { .. }) => match self.client.node_status(url).await {
                    Ok(status) => {
                        view.config_hash = status.configuration_hash;
                        NodeHealth::Ready
                    }
                    Err(e) => NodeHealth::Unreachable(e.to_string()),
                },
                Err(e) => NodeHealth::Unreachable(e.to_string()),
            };
        } else if let Some(e) = admin_error {
            view.health = NodeHealth::Unreachable(e.to_string());
        }
        view
    }
}

/// Whether a data plane listed by a control plane is this plan node by host name (a real
/// one, not the node id RPC sync stores there) or by its node id.
fn named(node: &Node, dp: &DataPlane) -> bool {
    node.role == Role::DataPlane
        && ((!dp.hostname_is_id() && node.name == dp.hostname) || node.name == dp.id)
}

/// The drift conditions in `now`, each with a stable key (so it is warned about once while
/// it lasts) and its message. Pure, for tests.
pub fn drift(
    plan: &Plan,
    previous: Option<&TopologySnapshot>,
    now: &TopologySnapshot,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for unreadable in &now.unreadable {
        let cp = format!(
            "{}/{}",
            unreadable.cluster.as_str(),
            unreadable.control_plane
        );
        out.push(match &unreadable.row {
            None => (
                format!("unreadable:{cp}"),
                format!(
                    "cannot list the data planes of {cp}: {}. Their sync status is unknown \
                     until its /clustering/data-planes answers",
                    unreadable.error
                ),
            ),
            Some(row) => (
                format!("unreadable:{cp}:{row}"),
                format!(
                    "{cp} lists a data plane kongup cannot read, so it is not shown: {row}. \
                     Look at it with GET /clustering/data-planes on {cp}'s Admin API"
                ),
            ),
        });
    }
    for view in &now.nodes {
        let label = format!("{}/{}", view.cluster.as_str(), view.name);
        if let Some(why) = view.empty_config() {
            let role = if view.role == Role::DataPlane {
                "data plane "
            } else {
                ""
            };
            let source = view
                .control_plane
                .as_deref()
                .map(|cp| format!(" as {cp} lists it"))
                .unwrap_or_default();
            out.push((
                format!("emptyconfig:{label}"),
                format!(
                    "{role}{label} has no configuration ({why}{source}): it answers every \
                     request with 404 (Kong issue 12861). Keep traffic off it, check that its \
                     control plane holds the configuration (GET /services on its Admin API) \
                     and pushes it, or roll back"
                ),
            ));
        }
        if let Some(version) = &view.version {
            // Compared as versions: `3.4.3.0-enterprise-edition` is `3.4.3`.
            let expected = expected_versions(plan, view);
            let reported = reported_version(version).ok();
            if !expected.iter().any(|v| Some(*v) == reported) {
                let expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
                out.push((
                    format!("version:{label}:{version}"),
                    format!(
                        "{label} reports Kong {version}; the plan expects {}",
                        expected.join(" or ")
                    ),
                ));
            }
        }
        if let Some(status) = view.sync_status
            && status != SyncStatus::Normal
        {
            out.push((
                format!("sync:{label}:{}", status.as_str()),
                format!(
                    "data plane {label} reports sync_status {} to {}",
                    status.as_str(),
                    view.control_plane.as_deref().unwrap_or("its control plane")
                ),
            ));
        }
        let before = previous.and_then(|p| {
            p.nodes
                .iter()
                .find(|n| n.name == view.name && n.cluster == view.cluster)
        });
        if let (Some(before), NodeHealth::Unreachable(why)) = (before, &view.health)
            && matches!(before.health, NodeHealth::Ready | NodeHealth::NotReady(_))
        {
            out.push((
                format!("gone:{label}"),
                format!("{label} stopped answering: {why}"),
            ));
        }
        if let Some(before) = before
            && before.sync_status.is_some()
            && view.sync_status.is_none()
            && view.role == Role::DataPlane
            && !listing_failed(now, before.cluster, before.control_plane.as_deref())
        {
            out.push((
                format!("unlisted:{label}"),
                format!(
                    "data plane {label} is no longer listed by {}",
                    before
                        .control_plane
                        .as_deref()
                        .unwrap_or("its control plane")
                ),
            ));
        }
    }
    if let Some(previous) = previous {
        for gone in previous.nodes.iter().filter(|p| {
            p.role == Role::DataPlane
                && !listing_failed(now, p.cluster, p.control_plane.as_deref())
                && !now
                    .nodes
                    .iter()
                    .any(|n| n.name == p.name && n.cluster == p.cluster)
        }) {
            let label = format!("{}/{}", gone.cluster.as_str(), gone.name);
            out.push((
                format!("unlisted:{label}"),
                format!(
                    "data plane {label} is no longer listed by {}",
                    gone.control_plane.as_deref().unwrap_or("its control plane")
                ),
            ));
        }
    }
    out
}

/// Whether `now` could not read the listing of the control plane `cp` of `side` (so its
/// data planes are not "no longer listed", only unknown).
fn listing_failed(now: &TopologySnapshot, side: ClusterSide, cp: Option<&str>) -> bool {
    now.unreadable
        .iter()
        .any(|u| u.row.is_none() && u.cluster == side && Some(u.control_plane.as_str()) == cp)
}

/// X's nodes should run `from`, Y's `to`. A node that is the same machine on both sides
/// (in-place: same Admin or Status URL) may run either.
fn expected_versions(plan: &Plan, view: &NodeView) -> Vec<KongVersion> {
    let (own, other, own_version, other_version) = match view.cluster {
        ClusterSide::X => (&plan.clusters.x, &plan.clusters.y, plan.from, plan.to),
        ClusterSide::Y => (&plan.clusters.y, &plan.clusters.x, plan.to, plan.from),
    };
    let Some(node) = own.nodes.iter().find(|n| n.name == view.name) else {
        // A data plane the plan does not name: either version is plausible.
        return vec![plan.from, plan.to];
    };
    let mut expected = vec![own_version];
    let shares_machine = other.nodes.iter().any(|o| {
        (o.admin_url.is_some() && o.admin_url == node.admin_url)
            || (o.status_url.is_some() && o.status_url == node.status_url)
    });
    if shares_machine {
        expected.push(other_version);
    }
    expected
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kong::types::StatusName;

    fn plan(from: &str, to: &str) -> Plan {
        let yaml = format!(
            r#"
name: drift
from: {from}
to: {to}
mode: hybrid
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: cp-1
        role: control_plane
        admin_url: http://cp1:8001
      - name: dp-1
        role: data_plane
    database:
      host: db
  y:
    nodes:
      - name: cp-2
        role: control_plane
        admin_url: http://cp2:8001
      - name: dp-2
        role: data_plane
traffic:
  driver:
    type: manual
  schedule: [100]
  bake: 1m
"#
        );
        crate::plan::load::parse_plan(&yaml, "drift.yaml")
            .unwrap_or_else(|e| panic!("{e}"))
            .plan
    }

    fn view(name: &str, version: &str, sync: Option<SyncStatus>) -> NodeView {
        NodeView {
            name: name.into(),
            cluster: ClusterSide::X,
            role: if sync.is_some() {
                Role::DataPlane
            } else {
                Role::ControlPlane
            },
            version: Some(version.into()),
            health: NodeHealth::Ready,
            control_plane: sync.map(|_| "cp-1".to_string()),
            sync_status: sync,
            config_hash: None,
        }
    }

    fn warnings(plan: &Plan, nodes: Vec<NodeView>) -> Vec<String> {
        let now = TopologySnapshot {
            nodes,
            ..TopologySnapshot::default()
        };
        drift(plan, None, &now)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    #[test]
    fn versions_are_compared_as_versions_not_strings() {
        let plan = plan("3.4.3", "3.4.3.12");
        for same in ["3.4.3", "3.4.3.0", "3.4.3.0-enterprise-edition"] {
            assert!(
                warnings(&plan, vec![view("cp-1", same, None)]).is_empty(),
                "{same}"
            );
        }
        assert_eq!(
            warnings(&plan, vec![view("cp-1", "3.4.3.1", None)]),
            ["x/cp-1 reports Kong 3.4.3.1; the plan expects 3.4.3"]
        );
        assert_eq!(
            warnings(&plan, vec![view("cp-1", "next", None)]),
            ["x/cp-1 reports Kong next; the plan expects 3.4.3"]
        );
    }

    #[test]
    fn a_failed_listing_is_said_once_and_its_data_planes_are_not_called_unlisted() {
        let plan = plan("3.9.1", "3.10.0");
        let listed = TopologySnapshot {
            nodes: vec![view("dp-1", "3.9.1", Some(SyncStatus::Normal))],
            ..TopologySnapshot::default()
        };
        let mut unlisted = view("dp-1", "3.9.1", None);
        unlisted.role = Role::DataPlane;
        let failed = TopologySnapshot {
            nodes: vec![unlisted],
            unreadable: vec![Unreadable {
                cluster: ClusterSide::X,
                control_plane: "cp-1".into(),
                row: None,
                error: "timed out".into(),
            }],
            ..TopologySnapshot::default()
        };
        let messages: Vec<String> = drift(&plan, Some(&listed), &failed)
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            messages,
            [
                "cannot list the data planes of x/cp-1: timed out. Their sync status is unknown \
              until its /clustering/data-planes answers"
            ]
        );
    }

    #[test]
    fn an_unknown_sync_status_is_named_as_kong_sent_it() {
        let status = SyncStatus::Other(StatusName::new("wasm_filter_set_incompatible"));
        assert_eq!(
            warnings(
                &plan("3.9.1", "3.10.0"),
                vec![view("dp-1", "3.9.1", Some(status))]
            ),
            ["data plane x/dp-1 reports sync_status wasm_filter_set_incompatible to cp-1"]
        );
    }
}

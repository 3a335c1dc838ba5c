//! The topology refresher: every few seconds it asks each node of the plan what it runs and
//! whether it is ready, asks control planes for their data planes, reads the databases'
//! migration state, and reports a `TopologySnapshot` plus a warning for each new drift from
//! the plan (a node at an unexpected version, a data plane not in sync, a node gone).
//! It returns data: the loop that runs it beside the engine and turns its answers into
//! engine events is `session`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::kong::client::{AdminClient, AdminError, Readiness, join};
use crate::kong::database::KongDatabase;
use crate::kong::pg;
use crate::kong::topology::{DatabaseView, NodeHealth, NodeView, TopologySnapshot};
use crate::kong::types::{DataPlane, SyncStatus, reported_version};
use crate::plan::model::{Node, Plan, Role};
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;

/// How often the topology pane refreshes by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Polls the plan's nodes and databases. Build the client with a timeout shorter than the
/// interval and one read attempt, so a dead node cannot stall a refresh.
pub struct TopologyWatcher {
    client: AdminClient,
    plan: Arc<Plan>,
    databases: Vec<(ClusterSide, Arc<dyn KongDatabase>)>,
    previous: Option<TopologySnapshot>,
    /// Drift already reported, so each is warned about once while it lasts.
    reported: BTreeSet<String>,
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

    async fn snapshot(&self) -> TopologySnapshot {
        let sides = [
            (ClusterSide::X, &self.plan.clusters.x),
            (ClusterSide::Y, &self.plan.clusters.y),
        ];
        let planned: Vec<(ClusterSide, &Node)> = sides
            .iter()
            .flat_map(|(side, cluster)| cluster.nodes.iter().map(move |n| (*side, n)))
            .collect();
        let probes = planned.iter().map(|(side, node)| self.probe(*side, node));
        let mut views: Vec<NodeView> = futures::future::join_all(probes).await;

        // Data planes as their control planes list them.
        let mut listed: Vec<(ClusterSide, String, DataPlane)> = Vec::new();
        let mut asked = BTreeSet::new();
        for (side, node) in &planned {
            if node.role != Role::ControlPlane {
                continue;
            }
            let Some(url) = &node.admin_url else { continue };
            if !asked.insert(url.clone()) {
                continue;
            }
            if let Ok(planes) = self.client.data_planes(url).await {
                listed.extend(planes.into_iter().map(|dp| (*side, node.name.clone(), dp)));
            }
        }
        for (view, (_, node)) in views.iter_mut().zip(&planned) {
            if view.role != Role::DataPlane {
                continue;
            }
            // By name first; by IP only a data plane no plan node names (nodes on one host,
            // or behind one address, share their IP).
            let found = listed
                .iter()
                .find(|(_, _, dp)| named(node, dp))
                .or_else(|| {
                    listed.iter().find(|(_, _, dp)| {
                        !planned.iter().any(|(_, other)| named(other, dp)) && same_node(node, dp)
                    })
                });
            if let Some((_, cp, dp)) = found {
                view.control_plane = Some(cp.clone());
                view.sync_status = Some(dp.sync_status);
                if view.version.is_none() {
                    view.version = Some(dp.version.clone());
                }
                if matches!(view.health, NodeHealth::Unknown) {
                    view.health = NodeHealth::Ready;
                }
            }
        }
        // Data planes the plan does not name are shown too: they take traffic all the same.
        let mut unplanned = BTreeMap::new();
        for (side, cp, dp) in &listed {
            if planned.iter().any(|(_, node)| same_node(node, dp)) {
                continue;
            }
            unplanned.entry(dp.hostname.clone()).or_insert(NodeView {
                name: dp.hostname.clone(),
                cluster: *side,
                role: Role::DataPlane,
                version: Some(dp.version.clone()),
                health: NodeHealth::Ready,
                control_plane: Some(cp.clone()),
                sync_status: Some(dp.sync_status),
            });
        }
        views.extend(unplanned.into_values());

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
                // Before 3.3 there is no /status/ready: /status answering means up.
                Err(AdminError::NotFound { .. }) => match self.client.node_status(url).await {
                    Ok(_) => NodeHealth::Ready,
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

/// Whether a data plane listed by a control plane is this plan node by host name or id.
fn named(node: &Node, dp: &DataPlane) -> bool {
    node.role == Role::DataPlane && (node.name == dp.hostname || node.name == dp.id)
}

/// Whether a data plane listed by a control plane is this plan node: by host name, or by
/// the IP in one of its URLs.
fn same_node(node: &Node, dp: &DataPlane) -> bool {
    if node.role != Role::DataPlane {
        return false;
    }
    if named(node, dp) {
        return true;
    }
    [&node.status_url, &node.proxy_url, &node.admin_url]
        .into_iter()
        .flatten()
        .any(|url| {
            let probe = join(url, "/");
            probe.contains(&format!("//{}:", dp.ip)) || probe.contains(&format!("//{}/", dp.ip))
        })
}

/// The drift conditions in `now`, each with a stable key (so it is warned about once while
/// it lasts) and its message. Pure, for tests.
pub fn drift(
    plan: &Plan,
    previous: Option<&TopologySnapshot>,
    now: &TopologySnapshot,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for view in &now.nodes {
        let label = format!("{}/{}", view.cluster.as_str(), view.name);
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

//! Plans and labs fitted to each other.
//!
//! A lab's ports are ephemeral: they change with every process. A plan's text must not
//! (its SHA-256 is how a resumed run knows the plan is the one it started with). So the
//! plan a demo writes names each node at a stable address that never resolves
//! (`http://<node>.lab.invalid:8001`), and every process fits the plan it loaded to the lab
//! it started, in memory, before the engine sees it: each node's URLs become the lab
//! node's of the same name. A rehearsal fits the operator's plan the same way.

use crate::plan::model::{Mode, Node, Plan, Role, Strategy};
use crate::plan::steps::{ClusterSide, ExpandedPlan};
use crate::plan::version::KongVersion;
use crate::sim::lab::{DatabaseEndpoint, NodeEndpoint};
use crate::sim::node::NodeSpec;
use crate::sim::proxy::DEMO_API_KEY;
use crate::sim::scenarios::{DatabasePlan, Topology};
use crate::sim::{LabEndpoints, Scenario};

/// The host part of a demo plan's stable node addresses (RFC 6761: never resolves).
pub const STABLE_DOMAIN: &str = "lab.invalid";

/// The endpoints of a lab of `topology` as a demo plan names them: each node at a stable
/// address (`http://<node>.lab.invalid:8001` and so on), whatever ports the lab has.
pub fn stable_endpoints(topology: &Topology) -> LabEndpoints {
    LabEndpoints {
        scenario: topology.scenario,
        mode: topology.mode,
        from: topology.from,
        to: topology.to,
        strategy: topology.strategy,
        nodes: topology
            .nodes
            .iter()
            .map(|n| {
                let host = format!("http://{}.{STABLE_DOMAIN}", n.name);
                NodeEndpoint {
                    name: n.name.clone(),
                    cluster: n.cluster,
                    role: n.role,
                    dbless: n.dbless,
                    version: n.version,
                    admin: format!("{host}:8001"),
                    status: format!("{host}:8100"),
                    proxy: n.proxies().then(|| format!("{host}:8000")),
                    control_plane: n.control_plane.clone(),
                }
            })
            .collect(),
        databases: topology
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
        api_key: DEMO_API_KEY,
    }
}

/// Gives every plan node the URLs of the lab node of the same name (a node the lab lacks
/// keeps its own: [`misfits`] tells them).
pub fn fit_urls(plan: &mut Plan, lab: &LabEndpoints) {
    let nodes = plan
        .clusters
        .x
        .nodes
        .iter_mut()
        .chain(plan.clusters.y.nodes.iter_mut());
    for node in nodes {
        if let Some(lab_node) = lab.nodes.iter().find(|n| n.name == node.name) {
            set_urls(node, lab_node);
        }
    }
}

fn set_urls(node: &mut Node, lab: &NodeEndpoint) {
    node.admin_url = Some(lab.admin.clone());
    node.status_url = Some(lab.status.clone());
    node.proxy_url = lab.proxy.clone();
}

/// Why a plan does not fit a lab: a node it names that the lab lacks, or one that is in
/// another cluster or has another role there.
pub fn misfits(plan: &Plan, lab: &LabEndpoints) -> Vec<String> {
    let sides = [
        (ClusterSide::X, &plan.clusters.x.nodes),
        (ClusterSide::Y, &plan.clusters.y.nodes),
    ];
    let mut out = Vec::new();
    for (side, nodes) in sides {
        for node in nodes.iter() {
            match lab.nodes.iter().find(|n| n.name == node.name) {
                None => out.push(format!("node {} is not in the lab", node.name)),
                Some(lab_node) if lab_node.cluster != side || lab_node.role != node.role => out
                    .push(format!(
                        "node {} is a {} of cluster {} in the plan, a {} of cluster {} in the lab",
                        node.name,
                        node.role.as_str(),
                        side.as_str().to_uppercase(),
                        lab_node.role.as_str(),
                        lab_node.cluster.as_str().to_uppercase()
                    )),
                Some(_) => {}
            }
        }
    }
    out
}

/// The scenario whose lab behaves most like a plan's (it labels a rehearsal's lab).
fn scenario_like(mode: Mode, strategy: Strategy) -> Scenario {
    match (mode, strategy) {
        (Mode::Hybrid, _) => Scenario::Hybrid,
        (Mode::Dbless, _) | (_, Strategy::Rolling) => Scenario::DblessRolling,
        (Mode::Traditional, Strategy::DualCluster) => Scenario::DualCluster,
        (Mode::Traditional, Strategy::InPlace) => Scenario::InPlace,
        (Mode::Traditional, Strategy::BlueGreen) => Scenario::BlueGreen,
    }
}

/// The lab database standing in for one of the plan's.
fn database(
    name: &str,
    cluster: ClusterSide,
    bootstrapped_by: Option<KongVersion>,
) -> DatabasePlan {
    DatabasePlan {
        name: name.to_string(),
        cluster,
        host: format!("db-{}.{STABLE_DOMAIN}", cluster.as_str()),
        port: 5432,
        user: "kong".to_string(),
        bootstrapped_by,
    }
}

/// A lab shaped like the plan: the same nodes (names, clusters, roles), X at the plan's
/// `from` and Y at its `to`, the plan's mode and strategy, and its databases (named as in
/// the plan; X's bootstrapped at `from`, Y's own one empty, as before a dual-cluster
/// restore). Data planes report to their cluster's first control plane.
pub fn rehearsal_topology(plan: &Plan, expanded: &ExpandedPlan) -> Topology {
    let strategy = expanded
        .phases
        .first()
        .map_or(Strategy::InPlace, |p| p.strategy);
    let has_database = plan.mode != Mode::Dbless;
    let x_db = plan
        .clusters
        .x
        .database
        .as_ref()
        .map_or_else(|| "kong".to_string(), |d| d.name.clone());
    // Y's own database; a name X's already has gets a suffix, since the lab keys its
    // databases by name.
    let y_db = plan.clusters.y.database.as_ref().map(|d| {
        if d.name == x_db {
            format!("{}_y", d.name)
        } else {
            d.name.clone()
        }
    });
    let mut databases = Vec::new();
    if has_database {
        databases.push(database(&x_db, ClusterSide::X, Some(plan.from)));
        if let Some(y_db) = &y_db {
            databases.push(database(y_db, ClusterSide::Y, None));
        }
    }
    let mut nodes = Vec::new();
    let sides = [
        (ClusterSide::X, &plan.clusters.x.nodes, plan.from),
        (ClusterSide::Y, &plan.clusters.y.nodes, plan.to),
    ];
    for (side, cluster_nodes, version) in sides {
        let control_plane = cluster_nodes
            .iter()
            .find(|n| n.role == Role::ControlPlane)
            .map(|n| n.name.clone());
        let node_db = match side {
            ClusterSide::Y => y_db.clone().unwrap_or_else(|| x_db.clone()),
            ClusterSide::X => x_db.clone(),
        };
        for node in cluster_nodes.iter() {
            let dbless = !has_database || node.role == Role::DataPlane;
            nodes.push(NodeSpec {
                name: node.name.clone(),
                cluster: side,
                role: node.role,
                dbless,
                version,
                database: (!dbless).then(|| node_db.clone()),
                control_plane: (node.role == Role::DataPlane)
                    .then(|| control_plane.clone())
                    .flatten(),
            });
        }
    }
    Topology {
        scenario: scenario_like(plan.mode, strategy),
        mode: plan.mode,
        from: plan.from,
        to: plan.to,
        strategy,
        nodes,
        databases,
    }
}

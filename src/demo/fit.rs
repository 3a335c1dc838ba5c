//! Plans and labs fitted to each other.
//!
//! A lab's ports are ephemeral: they change with every process. A plan's text must not
//! (its SHA-256 is how a resumed run knows the plan is the one it started with). So the
//! plan a demo writes names each node at a stable address that never resolves
//! (`http://<node>.lab.invalid:8001`), and every process fits the plan it loaded to the lab
//! it started, in memory, before the engine sees it: each node's URLs become the lab
//! node's of the same name. A rehearsal fits the operator's plan the same way, and its lab
//! to the plan's smoke tests (see [`smoke_test_routes`]).

use crate::plan::model::{Mode, Node, Plan, Role, SmokeTest, Strategy};
use crate::plan::steps::{ClusterSide, ExpandedPlan};
use crate::plan::version::KongVersion;
use crate::sim::balancer::SharedBackend;
use crate::sim::lab::{DatabaseEndpoint, LabError, NodeEndpoint};
use crate::sim::node::NodeSpec;
use crate::sim::proxy::{DEMO_API_KEY, LabRoute, UpstreamAnswer};
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
                    admin: n.has_admin_api().then(|| format!("{host}:8001")),
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
    node.admin_url = lab.admin.clone();
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
        shared_backends: shared_backends(plan),
    }
}

/// Refuses a rehearsal lab larger than the lab runs: more than
/// [`MAX_DATA_PLANES`](crate::sim::scenarios::MAX_DATA_PLANES) nodes in a cluster.
pub fn check_rehearsal_size(topology: &Topology) -> Result<(), LabError> {
    use crate::sim::scenarios::MAX_DATA_PLANES;
    for side in [ClusterSide::X, ClusterSide::Y] {
        let nodes = topology.nodes.iter().filter(|n| n.cluster == side).count();
        if nodes > MAX_DATA_PLANES + 1 {
            return Err(LabError::Fault(format!(
                "the plan has {nodes} nodes in cluster {}: a rehearsal runs every node inside \
                 kongup's process, {MAX_DATA_PLANES} data planes and a control plane per \
                 cluster at most; rehearse a copy of the plan with fewer nodes",
                side.as_str().to_uppercase()
            )));
        }
    }
    Ok(())
}

/// Y nodes the plan puts at an X node's proxy address (in place, the same hosts run Y
/// after the upgrade): the lab's balancer treats each pair as one backend.
fn shared_backends(plan: &Plan) -> Vec<SharedBackend> {
    plan.clusters
        .y
        .nodes
        .iter()
        .filter_map(|y| {
            let address = y.proxy_url.as_ref()?;
            let x = plan
                .clusters
                .x
                .nodes
                .iter()
                .find(|x| x.proxy_url.as_ref() == Some(address))?;
            Some(SharedBackend {
                x_node: x.name.clone(),
                y_node: y.name.clone(),
            })
        })
        .collect()
}

/// Fields of the lab's upstream echo: a body text naming one (`"cluster":"y"`) is the
/// lab's to answer truly, never stood in for.
const ECHO_FIELDS: &[&str] = &[
    "node", "cluster", "version", "service", "route", "method", "path", "consumer",
];

fn names_an_echo_field(text: &str) -> bool {
    ECHO_FIELDS
        .iter()
        .any(|field| text.contains(&format!("\"{field}\":")))
}

/// A route name for a path: `plan-` and its words (`/accounts/me` → `plan-accounts-me`).
fn route_name(path: &str) -> String {
    let words: Vec<&str> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        "plan-root".to_string()
    } else {
        format!("plan-{}", words.join("-").to_ascii_lowercase())
    }
}

/// The routes a rehearsal's lab adds so that the plan's smoke tests find what they
/// request, as Kong would answer them: one per path (its query aside) that some test
/// expects more than a 404 from, in the order the tests name them.
///
/// - key-auth is on when a test of the path expects 401; it reads the key from the headers
///   the tests send their secrets in (`apikey` when none).
/// - The upstream stands in for the operator's service, whose answers the lab cannot know:
///   it answers the status the first test that passes key-auth expects (200 when none, or
///   when that is a 5xx), the headers the tests expect (Kong's own, such as `via`, stay the
///   lab's), and the body texts they look for after the lab's echo, except a text naming
///   an echo field (`"cluster":"y"`), which the echo answers truly.
pub fn smoke_test_routes(smoke_tests: &[SmokeTest]) -> Vec<LabRoute> {
    let mut paths: Vec<(String, Vec<&SmokeTest>)> = Vec::new();
    for test in smoke_tests {
        let path = test.path.split('?').next().unwrap_or_default().to_string();
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, tests)) => tests.push(test),
            None => paths.push((path, vec![test])),
        }
    }
    let mut routes: Vec<LabRoute> = Vec::new();
    for (path, tests) in paths {
        if tests.iter().all(|t| t.expect_status == 404) {
            continue;
        }
        let mut key_names = Vec::new();
        if tests.iter().any(|t| t.expect_status == 401) {
            for test in &tests {
                for name in test.secret_headers.keys() {
                    let name = name.to_ascii_lowercase();
                    if !key_names.contains(&name) {
                        key_names.push(name);
                    }
                }
            }
            if key_names.is_empty() {
                key_names.push("apikey".to_string());
            }
        }
        let passing: Vec<&SmokeTest> = tests
            .iter()
            .copied()
            .filter(|t| !matches!(t.expect_status, 401 | 404))
            .collect();
        let mut upstream = UpstreamAnswer::default();
        if let Some(first) = passing.first()
            && first.expect_status < 500
        {
            upstream.status = first.expect_status;
        }
        for test in &passing {
            for (name, value) in &test.expect_headers {
                let name = name.to_ascii_lowercase();
                if !upstream.headers.iter().any(|(n, _)| *n == name) {
                    upstream.headers.push((name, value.clone()));
                }
            }
            if let Some(text) = &test.expect_body_contains
                && !names_an_echo_field(text)
                && !upstream.body_texts.contains(text)
            {
                upstream.body_texts.push(text.clone());
            }
        }
        let mut name = route_name(&path);
        if routes.iter().any(|r| r.name == name) {
            name = format!("{name}-{}", routes.len() + 1);
        }
        routes.push(LabRoute {
            name,
            path,
            key_names,
            upstream,
        });
    }
    routes
}

/// One line for a rehearsal's intro: the routes the lab serves for the plan's smoke tests.
pub fn describe_smoke_test_routes(routes: &[LabRoute]) -> Option<String> {
    if routes.is_empty() {
        return None;
    }
    let each: Vec<String> = routes
        .iter()
        .map(|r| {
            let mut parts = Vec::new();
            if r.key_auth() {
                parts.push(format!("key-auth on {}", r.key_names.join(", ")));
            }
            let answer = &r.upstream;
            let mut upstream = vec![format!("{}", answer.status)];
            upstream.extend(answer.headers.iter().map(|(n, v)| format!("{n}: {v}")));
            upstream.extend(
                answer
                    .body_texts
                    .iter()
                    .map(|t| format!("a body with {t:?}")),
            );
            parts.push(format!("upstream stand-in answers {}", upstream.join(", ")));
            format!("{} ({})", r.path, parts.join("; "))
        })
        .collect();
    Some(format!(
        "REHEARSAL: the lab's proxies serve the plan's smoke-test routes {}; the lab cannot \
         know your services' answers, so its upstream answers what the smoke tests expect",
        each.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::model::SecretRef;

    fn test(path: &str, status: u16) -> SmokeTest {
        SmokeTest {
            name: format!("{path} {status}"),
            method: "GET".to_string(),
            path: path.to_string(),
            headers: BTreeMap::new(),
            secret_headers: BTreeMap::new(),
            body: None,
            expect_status: status,
            expect_headers: BTreeMap::new(),
            expect_body_contains: None,
        }
    }

    fn routes_for(tests: Vec<SmokeTest>) -> Vec<LabRoute> {
        smoke_test_routes(&tests)
    }

    #[test]
    fn a_path_tested_for_401_and_200_gets_key_auth_on_the_tests_key_header() {
        let mut with_key = test("/payments/health?deep=1", 200);
        with_key.secret_headers.insert(
            "X-Api-Key".to_string(),
            SecretRef::Env("SMOKE_TEST_API_KEY".to_string()),
        );
        with_key
            .expect_headers
            .insert("Content-Type".to_string(), "application/json".to_string());
        with_key.expect_body_contains = Some("ok".to_string());
        let routes = routes_for(vec![test("/payments/health", 401), with_key]);
        assert_eq!(routes.len(), 1);
        let route = &routes[0];
        assert_eq!(route.name, "plan-payments-health");
        assert_eq!(route.path, "/payments/health");
        assert_eq!(route.key_names, ["x-api-key"]);
        assert_eq!(route.upstream.status, 200);
        assert_eq!(
            route.upstream.headers,
            [("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(route.upstream.body_texts, ["ok"]);
    }

    #[test]
    fn a_public_path_gets_no_key_auth_and_a_404_path_no_route() {
        let mut cluster = test("/orders", 200);
        cluster.expect_body_contains = Some("\"cluster\":\"y\"".to_string());
        let routes = routes_for(vec![cluster, test("/gone", 404), test("/created", 201)]);
        let paths: Vec<&str> = routes.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/orders", "/created"]);
        assert!(!routes[0].key_auth());
        // The echo answers which cluster served: that is not stood in for.
        assert!(routes[0].upstream.body_texts.is_empty());
        assert_eq!(routes[1].upstream.status, 201);
    }

    #[test]
    fn key_auth_without_secret_headers_reads_apikey() {
        let routes = routes_for(vec![test("/secure-thing", 401)]);
        assert_eq!(routes[0].key_names, ["apikey"]);
        assert_eq!(routes[0].upstream.status, 200);
    }
}

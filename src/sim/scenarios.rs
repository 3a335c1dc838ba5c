//! The lab's scenarios: one topology per upgrade strategy, with versions on paths Kong
//! guarantees.
//!
//! | scenario | mode | X → Y | nodes per cluster | databases |
//! |---|---|---|---|---|
//! | `dual-cluster` | traditional | 3.4.3.12 → 3.10.0.1 (LTS to LTS) | 2 | X's, and Y's own |
//! | `in-place` | traditional | 3.5.0 → 3.6.1 (adjacent minors) | 2 | one, shared |
//! | `blue-green` | traditional | 3.4.3.11 → 3.4.3.12 (patch) | 2 | one, shared |
//! | `dbless-rolling` | DB-less | 3.9.1 → 3.10.0 (adjacent minors) | 3 | none |
//! | `hybrid` | hybrid | 3.4.3.12 → 3.10.0.1 (LTS to LTS) | 1 CP + 2 DP | X CP's, Y CP's own |

use std::fmt;
use std::str::FromStr;

use crate::plan::model::{Mode, Role, Strategy};
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;

use super::node::NodeSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    DualCluster,
    InPlace,
    BlueGreen,
    DblessRolling,
    Hybrid,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::DualCluster,
        Scenario::InPlace,
        Scenario::BlueGreen,
        Scenario::DblessRolling,
        Scenario::Hybrid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::DualCluster => "dual-cluster",
            Scenario::InPlace => "in-place",
            Scenario::BlueGreen => "blue-green",
            Scenario::DblessRolling => "dbless-rolling",
            Scenario::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a lab scenario (choose one of dual-cluster, in-place, blue-green, dbless-rolling, hybrid)"
)]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// A database of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabasePlan {
    /// `pg_database`, e.g. `kong`.
    pub name: String,
    /// The cluster that owns it (a shared database belongs to X).
    pub cluster: ClusterSide,
    /// A host that never resolves (RFC 6761 `.invalid`): nothing may mistake it for a
    /// real PostgreSQL.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `None`: created empty (Y's own database, restored from X's backup by the plan).
    pub bootstrapped_by: Option<KongVersion>,
}

impl DatabasePlan {
    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub scenario: Scenario,
    pub mode: Mode,
    pub from: KongVersion,
    pub to: KongVersion,
    /// The strategy of the database-backed part (hybrid: the control planes'); DB-less
    /// rolls.
    pub strategy: Strategy,
    pub nodes: Vec<NodeSpec>,
    pub databases: Vec<DatabasePlan>,
}

impl Topology {
    pub fn database(&self, name: &str) -> Option<&DatabasePlan> {
        self.databases.iter().find(|d| d.name == name)
    }
}

fn version(s: &str) -> KongVersion {
    s.parse().expect("scenario versions are valid")
}

fn db(name: &str, cluster: ClusterSide, bootstrapped_by: Option<KongVersion>) -> DatabasePlan {
    DatabasePlan {
        name: name.to_string(),
        cluster,
        host: format!("db-{}.lab.invalid", cluster.as_str()),
        port: 5432,
        user: "kong".to_string(),
        bootstrapped_by,
    }
}

fn traditional(
    prefix: &str,
    cluster: ClusterSide,
    count: usize,
    version: KongVersion,
    database: Option<&str>,
) -> Vec<NodeSpec> {
    (1..=count)
        .map(|i| NodeSpec {
            name: format!("{prefix}-{}-{i}", cluster.as_str()),
            cluster,
            role: Role::Traditional,
            dbless: database.is_none(),
            version,
            database: database.map(str::to_string),
            control_plane: None,
        })
        .collect()
}

fn hybrid_cluster(cluster: ClusterSide, version: KongVersion, database: &str) -> Vec<NodeSpec> {
    let side = cluster.as_str();
    let cp = format!("cp-{side}-1");
    let mut nodes = vec![NodeSpec {
        name: cp.clone(),
        cluster,
        role: Role::ControlPlane,
        dbless: false,
        version,
        database: Some(database.to_string()),
        control_plane: None,
    }];
    nodes.extend((1..=2).map(|i| NodeSpec {
        name: format!("dp-{side}-{i}"),
        cluster,
        role: Role::DataPlane,
        dbless: true,
        version,
        database: None,
        control_plane: Some(cp.clone()),
    }));
    nodes
}

/// The lab topology of a scenario.
pub fn topology(scenario: Scenario) -> Topology {
    use ClusterSide::{X, Y};
    match scenario {
        Scenario::DualCluster => {
            let (from, to) = (version("3.4.3.12"), version("3.10.0.1"));
            let mut nodes = traditional("kong", X, 2, from, Some("kong"));
            nodes.extend(traditional("kong", Y, 2, to, Some("kong_y")));
            Topology {
                scenario,
                mode: Mode::Traditional,
                from,
                to,
                strategy: Strategy::DualCluster,
                nodes,
                databases: vec![db("kong", X, Some(from)), db("kong_y", Y, None)],
            }
        }
        Scenario::InPlace | Scenario::BlueGreen => {
            let (from, to, strategy) = if scenario == Scenario::InPlace {
                (version("3.5.0"), version("3.6.1"), Strategy::InPlace)
            } else {
                (
                    version("3.4.3.11"),
                    version("3.4.3.12"),
                    Strategy::BlueGreen,
                )
            };
            let mut nodes = traditional("kong", X, 2, from, Some("kong"));
            nodes.extend(traditional("kong", Y, 2, to, Some("kong")));
            Topology {
                scenario,
                mode: Mode::Traditional,
                from,
                to,
                strategy,
                nodes,
                databases: vec![db("kong", X, Some(from))],
            }
        }
        Scenario::DblessRolling => {
            let (from, to) = (version("3.9.1"), version("3.10.0"));
            let mut nodes = traditional("kong", X, 3, from, None);
            nodes.extend(traditional("kong", Y, 3, to, None));
            Topology {
                scenario,
                mode: Mode::Dbless,
                from,
                to,
                strategy: Strategy::Rolling,
                nodes,
                databases: Vec::new(),
            }
        }
        Scenario::Hybrid => {
            let (from, to) = (version("3.4.3.12"), version("3.10.0.1"));
            let mut nodes = hybrid_cluster(X, from, "kong");
            nodes.extend(hybrid_cluster(Y, to, "kong_y"));
            Topology {
                scenario,
                mode: Mode::Hybrid,
                from,
                to,
                strategy: Strategy::DualCluster,
                nodes,
                databases: vec![db("kong", X, Some(from)), db("kong_y", Y, None)],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_back_from_its_name() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.as_str().parse::<Scenario>(), Ok(scenario));
        }
        assert!("canary".parse::<Scenario>().is_err());
    }

    #[test]
    fn blue_green_is_a_patch_upgrade_from_2_8_2_or_later() {
        let t = topology(Scenario::BlueGreen);
        assert_eq!(t.from.minor_line(), t.to.minor_line());
        assert!(t.from >= version("2.8.2"));
        assert!(t.to > t.from);
    }

    #[test]
    fn y_nodes_run_the_target_version_and_x_the_source() {
        for scenario in Scenario::ALL {
            let t = topology(scenario);
            for node in &t.nodes {
                let expected = if node.cluster == ClusterSide::X {
                    t.from
                } else {
                    t.to
                };
                assert_eq!(node.version, expected, "{} in {scenario}", node.name);
                if let Some(db) = &node.database {
                    assert!(
                        t.database(db).is_some(),
                        "{} names a missing database",
                        node.name
                    );
                }
            }
        }
    }
}

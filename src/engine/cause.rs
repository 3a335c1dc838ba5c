//! The likely cause of a failed step or a gate breach, where kongup can know it: one line,
//! read from what the topology watcher last saw, nothing guessed. Pure, so the console's
//! detail and metrics panes and `--plain` say the same.
//!
//! In order (the first that holds is said):
//! 1. a data plane of Y connected to a control plane of X: it fetches X's configuration
//!    from the `cluster_control_plane` it was given (kong.conf.default:378@3.4.2), and the
//!    control plane it connects to lists it in `/clustering/data-planes` (the row is upserted
//!    on connect, kong/clustering/control_plane.lua:224-252@3.4.2);
//! 2. a node with the empty configuration: its config hash is 32 zeros
//!    (`DECLARATIVE_EMPTY_CONFIG_HASH`, kong/constants.lua:190@2.8.5) or its
//!    `/status/ready` says `no configuration available` (kong/status/ready.lua:27-50@3.4.2);
//!    it answers every request with 404 (Kong issue 12861);
//! 3. a node that is not ready: `/status/ready` answered 503 with Kong's reason
//!    (kong/status/ready.lua:104-113@3.4.2), or the node did not answer;
//! 4. a data plane whose `sync_status` is not `normal` (the values: kong/constants.lua:
//!    208-215@3.4.2; an incompatible data plane still gets a row, control_plane.lua
//!    224-252@3.4.2).
//!
//! Y's nodes are looked at before X's, and a cluster the plan has down now is not blamed.
//! Where a step's failure detail names a node, a cause on that node goes first.

use crate::kong::topology::{NodeHealth, NodeView, TopologySnapshot};
use crate::kong::types::SyncStatus;
use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;

/// What the cause is read from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The watcher's latest snapshot.
    pub topology: Option<&'a TopologySnapshot>,
    /// The failed step's detail, or the breach's check lines joined.
    pub detail: Option<&'a str>,
    /// Whether the plan has each cluster up now (X, Y): a node down as planned is no cause.
    pub x_up: bool,
    pub y_up: bool,
}

/// The likely cause in one line, its node first (`Y DP dp-y2 uses X's CP cp-x1 …`), or
/// `None` when none is known. Callers say it as `likely cause: …`.
pub fn likely_cause(facts: &Facts) -> Option<String> {
    let topology = facts.topology?;
    let up = |side: ClusterSide| match side {
        ClusterSide::X => facts.x_up,
        ClusterSide::Y => facts.y_up,
    };
    let mut nodes: Vec<&NodeView> = topology.nodes.iter().filter(|n| up(n.cluster)).collect();
    // Y first; a node the detail names before the others.
    let named = |n: &NodeView| facts.detail.is_some_and(|d| names(d, &n.name));
    nodes.sort_by_key(|n| (!named(n), n.cluster != ClusterSide::Y));
    let rules: [fn(&TopologySnapshot, &NodeView) -> Option<String>; 4] = [
        on_the_other_control_plane,
        empty_configuration,
        not_ready,
        sync_off,
    ];
    rules
        .iter()
        .find_map(|rule| nodes.iter().find_map(|n| rule(topology, n)))
}

/// Whether `text` names `name` as a word (`dp-y1` is not named by `dp-y10`).
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let word = |c: char| c.is_alphanumeric() || c == '-' || c == '_' || c == '.';
        let before = text[..i].chars().next_back().is_none_or(|c| !word(c));
        let after = text[i + name.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c) || c == '.');
        before && after
    })
}

fn label(n: &NodeView) -> String {
    let role = match n.role {
        Role::DataPlane => "DP",
        Role::ControlPlane => "CP",
        Role::Traditional => "node",
    };
    format!("{} {role} {}", side(n.cluster), n.name)
}

fn side(side: ClusterSide) -> &'static str {
    match side {
        ClusterSide::X => "X",
        ClusterSide::Y => "Y",
    }
}

fn on_the_other_control_plane(topology: &TopologySnapshot, n: &NodeView) -> Option<String> {
    let cp_name = n.control_plane.as_deref()?;
    let cp = topology
        .nodes
        .iter()
        .find(|c| c.role == Role::ControlPlane && c.name == cp_name)?;
    (n.role == Role::DataPlane && cp.cluster != n.cluster).then(|| {
        format!(
            "{} uses {}'s CP {cp_name} (which lists it): it gets {}'s configuration; point \
             its cluster_control_plane at {}'s CP",
            label(n),
            side(cp.cluster),
            side(cp.cluster),
            side(n.cluster),
        )
    })
}

fn empty_configuration(_: &TopologySnapshot, n: &NodeView) -> Option<String> {
    n.empty_config().map(|why| {
        format!(
            "{} has the empty configuration ({why}): it answers every request with 404",
            label(n)
        )
    })
}

fn not_ready(_: &TopologySnapshot, n: &NodeView) -> Option<String> {
    match &n.health {
        NodeHealth::NotReady(reason) => Some(format!(
            "{} not ready: /status/ready says {reason}",
            label(n)
        )),
        NodeHealth::Unreachable(why) => Some(format!("{} does not answer: {why}", label(n))),
        NodeHealth::Ready | NodeHealth::Absent | NodeHealth::Unknown => None,
    }
}

fn sync_off(_: &TopologySnapshot, n: &NodeView) -> Option<String> {
    let status = n.sync_status.filter(|s| *s != SyncStatus::Normal)?;
    Some(format!(
        "{} has sync_status {} on {}, not normal",
        label(n),
        status.as_str(),
        n.control_plane.as_deref().unwrap_or("its control plane")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kong::types::EMPTY_CONFIG_HASH;

    fn node(name: &str, cluster: ClusterSide, role: Role) -> NodeView {
        NodeView {
            name: name.into(),
            cluster,
            role,
            version: Some("3.10.0".into()),
            health: NodeHealth::Ready,
            control_plane: None,
            sync_status: None,
            config_hash: None,
        }
    }

    fn dp(name: &str, cluster: ClusterSide, cp: &str) -> NodeView {
        NodeView {
            control_plane: Some(cp.into()),
            sync_status: Some(SyncStatus::Normal),
            config_hash: Some("a9f0e0c3b1d2e3f4a5b6c7d8e9f0a1b2".into()),
            ..node(name, cluster, Role::DataPlane)
        }
    }

    /// X: cp-x1, dp-x1; Y: cp-y1, dp-y1, dp-y2; all well.
    fn healthy() -> TopologySnapshot {
        TopologySnapshot {
            nodes: vec![
                node("cp-x1", ClusterSide::X, Role::ControlPlane),
                dp("dp-x1", ClusterSide::X, "cp-x1"),
                node("cp-y1", ClusterSide::Y, Role::ControlPlane),
                dp("dp-y1", ClusterSide::Y, "cp-y1"),
                dp("dp-y2", ClusterSide::Y, "cp-y1"),
            ],
            ..TopologySnapshot::default()
        }
    }

    fn cause_of(topology: &TopologySnapshot, detail: Option<&str>) -> Option<String> {
        likely_cause(&Facts {
            topology: Some(topology),
            detail,
            x_up: true,
            y_up: true,
        })
    }

    fn with(
        mut t: TopologySnapshot,
        name: &str,
        change: impl Fn(&mut NodeView),
    ) -> TopologySnapshot {
        change(t.nodes.iter_mut().find(|n| n.name == name).unwrap());
        t
    }

    #[test]
    fn a_healthy_topology_or_none_names_no_cause() {
        assert_eq!(cause_of(&healthy(), None), None);
        let none = likely_cause(&Facts {
            topology: None,
            detail: Some("exit status 1"),
            x_up: true,
            y_up: true,
        });
        assert_eq!(none, None);
    }

    #[test]
    fn a_y_data_plane_on_xs_control_plane() {
        let t = with(healthy(), "dp-y2", |n| {
            n.control_plane = Some("cp-x1".into())
        });
        let cause = cause_of(&t, None).unwrap();
        assert!(
            cause.starts_with("Y DP dp-y2 uses X's CP cp-x1 (which lists it)"),
            "{cause}"
        );
        assert!(cause.contains("cluster_control_plane"), "{cause}");
    }

    #[test]
    fn a_data_plane_with_the_empty_configuration() {
        let t = with(healthy(), "dp-y1", |n| {
            n.config_hash = Some(EMPTY_CONFIG_HASH.into());
        });
        let cause = cause_of(&t, None).unwrap();
        assert!(
            cause.starts_with("Y DP dp-y1 has the empty configuration"),
            "{cause}"
        );
        assert!(
            cause.contains(EMPTY_CONFIG_HASH) && cause.contains("404"),
            "{cause}"
        );
    }

    #[test]
    fn a_node_not_ready_or_not_answering() {
        let t = with(healthy(), "cp-y1", |n| {
            n.health = NodeHealth::NotReady("failed to connect to database".into());
        });
        assert_eq!(
            cause_of(&t, None).unwrap(),
            "Y CP cp-y1 not ready: /status/ready says failed to connect to database"
        );
        let t = with(healthy(), "dp-y2", |n| {
            n.health = NodeHealth::Unreachable("connection refused".into());
        });
        assert_eq!(
            cause_of(&t, None).unwrap(),
            "Y DP dp-y2 does not answer: connection refused"
        );
    }

    #[test]
    fn a_sync_status_that_is_not_normal() {
        let t = with(healthy(), "dp-y1", |n| {
            n.sync_status = Some(SyncStatus::KongVersionIncompatible);
        });
        assert_eq!(
            cause_of(&t, None).unwrap(),
            "Y DP dp-y1 has sync_status kong_version_incompatible on cp-y1, not normal"
        );
    }

    #[test]
    fn the_first_rule_wins_and_y_comes_before_x() {
        let t = with(healthy(), "dp-x1", |n| {
            n.health = NodeHealth::Unreachable("timed out".into());
        });
        let t = with(t, "dp-y1", |n| n.sync_status = Some(SyncStatus::Unknown));
        let t = with(t, "dp-y2", |n| n.control_plane = Some("cp-x1".into()));
        assert!(cause_of(&t, None).unwrap().contains("dp-y2 uses X's CP"));
        let t = with(t, "dp-y2", |n| n.control_plane = Some("cp-y1".into()));
        // Not ready (X's dp-x1) ranks above a sync status (Y's dp-y1).
        assert!(cause_of(&t, None).unwrap().contains("X DP dp-x1"));
        let unready_y = with(t, "dp-y2", |n| {
            n.health = NodeHealth::NotReady("draining".into());
        });
        assert!(cause_of(&unready_y, None).unwrap().contains("Y DP dp-y2"));
    }

    #[test]
    fn a_node_the_detail_names_comes_first_and_a_cluster_down_as_planned_is_no_cause() {
        let t = with(healthy(), "dp-y1", |n| {
            n.health = NodeHealth::Unreachable("refused".into());
        });
        let t = with(t, "dp-y2", |n| {
            n.health = NodeHealth::Unreachable("refused".into());
        });
        assert!(
            cause_of(&t, Some("kong health failed on dp-y2: exit status 1"))
                .unwrap()
                .contains("dp-y2")
        );
        assert!(cause_of(&t, Some("on dp-y20")).unwrap().contains("dp-y1"));
        let down = likely_cause(&Facts {
            topology: Some(&t),
            detail: None,
            x_up: true,
            y_up: false,
        });
        assert_eq!(down, None);
    }
}

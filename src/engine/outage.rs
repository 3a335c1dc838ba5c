//! Whether any cluster serves traffic (issue 15 item 8, the outage clock): pure rules over
//! what the engine already knows, the plan's steps and the watcher's topology. The engine
//! journals each outage's start and end (`outage-started`, `outage-ended`); the console's
//! header counts it, and `status` and `report` give its length.
//!
//! Kong's in-place guide (https://developer.konghq.com/gateway/upgrade/in-place/) says the
//! method has downtime: "There is business downtime as cluster X is stopped during the
//! upgrade process", and at its step 5, "Stop the Kong Gateway nodes of the old cluster X
//! but keep the database running. This will create a period of downtime until the upgrade
//! completes." Other outages are seen, not planned: both clusters' proxies down, or the
//! balancer sending every request to a cluster none of whose proxies is ready.

use chrono::{DateTime, Utc};

use super::expected::{StepAt, node_expected_up};
use crate::kong::topology::{NodeHealth, TopologySnapshot};
use crate::lb::Split;
use crate::plan::model::{Plan, Role};
use crate::plan::steps::{ClusterSide, ExpandedPlan};
use crate::plan::waves::{Wave, wave_of};

/// Whether a node of `role` proxies traffic. A control plane does not: in hybrid mode only
/// data planes serve clients (Kong's in-place guide upgrades control planes in place; the
/// template says "only the Admin API goes down: the data planes keep proxying"), and Kong
/// requires `proxy_listen` only of a data plane (kong/conf_loader/init.lua:1208-1210@3.4.2).
pub fn proxies(role: Role) -> bool {
    role != Role::ControlPlane
}

/// Whether the plan has no proxying node of either cluster up at this point: the in-place
/// window between stopping X and starting Y (`engine::expected` decides each node).
pub fn planned<'a, I>(plan: &Plan, waves: &[Wave], expanded: &ExpandedPlan, steps: I) -> bool
where
    I: DoubleEndedIterator<Item = StepAt<'a>> + Clone,
{
    let up = |side: ClusterSide| {
        let cluster = match side {
            ClusterSide::X => &plan.clusters.x,
            ClusterSide::Y => &plan.clusters.y,
        };
        cluster
            .nodes
            .iter()
            .filter(|node| proxies(node.role))
            .any(|node| {
                let wave = wave_of(waves, side, &node.name);
                node_expected_up(plan.mode, expanded, steps.clone(), side, node.role, wave)
            })
    };
    let has_proxies = [&plan.clusters.x, &plan.clusters.y]
        .iter()
        .any(|c| c.nodes.iter().any(|n| proxies(n.role)));
    has_proxies && !up(ClusterSide::X) && !up(ClusterSide::Y)
}

/// What a topology snapshot says: `Some(why)` when no cluster the balancer sends traffic to
/// (`split`; both when not known) has a proxying node that is ready (`/status/ready` 200, or
/// `/status` before 3.3; a 503 means the node does not take traffic: kong/status/ready.lua
/// @3.4.2, docs/kong/admin-and-status-api.md), `None` when one has. A node not yet probed
/// (`Unknown`) is no evidence: with one among the down nodes, nothing is said.
pub fn seen(topology: &TopologySnapshot, split: Option<Split>) -> Option<Seen> {
    let sides: Vec<ClusterSide> = match split {
        Some(split) => [(ClusterSide::X, split.x), (ClusterSide::Y, split.y)]
            .into_iter()
            .filter(|(_, share)| *share > 0)
            .map(|(side, _)| side)
            .collect(),
        None => vec![ClusterSide::X, ClusterSide::Y],
    };
    let nodes: Vec<_> = topology
        .nodes
        .iter()
        .filter(|n| proxies(n.role) && sides.contains(&n.cluster))
        .collect();
    if nodes.iter().any(|n| n.health == NodeHealth::Ready) {
        return Some(Seen::Serving);
    }
    if nodes.is_empty() || nodes.iter().any(|n| n.health == NodeHealth::Unknown) {
        return None;
    }
    let why = match split {
        Some(split) if sides.len() == 1 => format!(
            "the load balancer sends {split} and none of {}'s proxying nodes is ready",
            sides[0].as_str().to_uppercase()
        ),
        _ => "none of X's or Y's proxying nodes is ready".to_string(),
    };
    Some(Seen::Down(why))
}

/// What the latest topology says of the proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Serving,
    /// Nothing serves: why, in words.
    Down(String),
}

/// What the engine knows when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// An outage is open (journaled and not ended).
    pub open: bool,
    /// The plan has no proxying node up now ([`planned`]).
    pub planned: bool,
    /// What a topology taken since the last step ended says ([`seen`]); `None`: no such
    /// snapshot, or it proves nothing.
    pub seen: Option<Seen>,
    /// A topology watcher has reported. Without one, only the plan decides.
    pub watched: bool,
}

/// Whether no cluster serves traffic now: `Some(why)` when not. An outage starts when the
/// plan takes the last proxies down or a fresh topology sees none ready; it ends only when
/// the plan has proxies up and a fresh topology sees one ready, so that a snapshot older
/// than the step that started Y neither ends it early nor opens a second one.
pub fn no_cluster_serves(facts: &Facts) -> Option<String> {
    if facts.planned {
        return Some(
            "the plan has stopped X's proxying nodes and not yet started Y's (Kong's in-place \
             upgrade has downtime)"
                .to_string(),
        );
    }
    match &facts.seen {
        Some(Seen::Down(why)) => Some(why.clone()),
        Some(Seen::Serving) => None,
        None if facts.open && facts.watched => Some("no proxy seen ready yet".to_string()),
        None => None,
    }
}

/// One outage as the journal has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub from: DateTime<Utc>,
    /// `None`: still going at the journal's last record.
    pub to: Option<DateTime<Utc>>,
    pub why: String,
}

impl Outage {
    /// Its length in whole seconds; an open one up to `now`.
    pub fn secs(&self, now: DateTime<Utc>) -> u64 {
        let end = self.to.unwrap_or(now);
        (end - self.from).num_seconds().max(0) as u64
    }
}

/// `0:41`, `12:05`, `1:02:09`: m:ss, h:mm:ss past an hour.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `outage: 0:41 (from 03:12:05 to 03:12:46 UTC)`, every outage's span after the total, or
/// `outage: none`. An open one runs to `now` and says so.
pub fn summary(outages: &[Outage], now: DateTime<Utc>) -> String {
    if outages.is_empty() {
        return "none".to_string();
    }
    let total: u64 = outages.iter().map(|o| o.secs(now)).sum();
    let spans: Vec<String> = outages
        .iter()
        .map(|o| {
            let from = o.from.format("%H:%M:%S");
            match o.to {
                Some(to) => format!("from {from} to {} UTC", to.format("%H:%M:%S")),
                None => format!("from {from} UTC, still going"),
            }
        })
        .collect();
    let count = match outages.len() {
        1 => String::new(),
        n => format!(" in {n} outages"),
    };
    format!("{}{count} ({})", clock(total), spans.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kong::topology::NodeView;

    fn node(cluster: ClusterSide, role: Role, health: NodeHealth) -> NodeView {
        NodeView {
            name: format!("{}-{role:?}", cluster.as_str()),
            cluster,
            role,
            version: None,
            health,
            control_plane: None,
            sync_status: None,
            config_hash: None,
        }
    }

    fn topology(nodes: Vec<NodeView>) -> TopologySnapshot {
        TopologySnapshot {
            nodes,
            ..TopologySnapshot::default()
        }
    }

    fn down() -> NodeHealth {
        NodeHealth::Unreachable("connection refused".into())
    }

    #[test]
    fn both_clusters_proxies_down_is_an_outage_and_a_ready_one_is_not() {
        let t = topology(vec![
            node(ClusterSide::X, Role::Traditional, down()),
            node(ClusterSide::Y, Role::Traditional, NodeHealth::Absent),
        ]);
        assert!(matches!(seen(&t, None), Some(Seen::Down(_))));
        let t = topology(vec![
            node(ClusterSide::X, Role::Traditional, down()),
            node(ClusterSide::Y, Role::Traditional, NodeHealth::Ready),
        ]);
        assert_eq!(seen(&t, None), Some(Seen::Serving));
    }

    #[test]
    fn control_planes_down_are_no_outage_while_data_planes_proxy() {
        let t = topology(vec![
            node(ClusterSide::X, Role::ControlPlane, down()),
            node(ClusterSide::X, Role::DataPlane, NodeHealth::Ready),
        ]);
        assert_eq!(seen(&t, None), Some(Seen::Serving));
        // A ready control plane serves no client.
        let t = topology(vec![
            node(ClusterSide::Y, Role::ControlPlane, NodeHealth::Ready),
            node(ClusterSide::X, Role::DataPlane, down()),
        ]);
        assert!(matches!(seen(&t, None), Some(Seen::Down(_))));
    }

    #[test]
    fn the_balancer_sending_everything_to_a_cluster_with_no_ready_proxy_is_an_outage() {
        let t = topology(vec![
            node(ClusterSide::X, Role::Traditional, NodeHealth::Ready),
            node(
                ClusterSide::Y,
                Role::Traditional,
                NodeHealth::NotReady("draining".into()),
            ),
        ]);
        let Some(Seen::Down(why)) = seen(&t, Some(Split::to_y(100))) else {
            panic!("X is ready but gets nothing");
        };
        assert!(why.contains("none of Y's proxying nodes is ready"), "{why}");
        assert_eq!(seen(&t, Some(Split::to_y(50))), Some(Seen::Serving));
    }

    #[test]
    fn a_node_not_yet_probed_proves_nothing() {
        let t = topology(vec![
            node(ClusterSide::X, Role::Traditional, down()),
            node(ClusterSide::Y, Role::Traditional, NodeHealth::Unknown),
        ]);
        assert_eq!(seen(&t, None), None);
        assert_eq!(seen(&topology(vec![]), None), None);
    }

    #[test]
    fn an_outage_ends_only_on_a_fresh_sight_of_a_ready_proxy() {
        let facts = |open, planned, seen, watched| Facts {
            open,
            planned,
            seen,
            watched,
        };
        // The plan's in-place window opens it, whatever an older snapshot said.
        assert!(no_cluster_serves(&facts(false, true, Some(Seen::Serving), true)).is_some());
        // Y started, no fresh snapshot yet: still open.
        assert!(no_cluster_serves(&facts(true, false, None, true)).is_some());
        // Y seen ready: over.
        assert!(no_cluster_serves(&facts(true, false, Some(Seen::Serving), true)).is_none());
        // Without a watcher the plan alone decides.
        assert!(no_cluster_serves(&facts(true, false, None, false)).is_none());
        // Nothing planned, nothing seen: none starts.
        assert!(no_cluster_serves(&facts(false, false, None, true)).is_none());
        let down = Some(Seen::Down("x".into()));
        assert!(no_cluster_serves(&facts(false, false, down, true)).is_some());
    }

    #[test]
    fn the_summary_gives_the_total_and_each_span() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let one = Outage {
            from: at("2026-01-01T03:12:05Z"),
            to: Some(at("2026-01-01T03:12:46Z")),
            why: String::new(),
        };
        let now = at("2026-01-01T05:00:00Z");
        assert_eq!(summary(&[], now), "none");
        assert_eq!(
            summary(std::slice::from_ref(&one), now),
            "0:41 (from 03:12:05 to 03:12:46 UTC)"
        );
        let open = Outage {
            from: at("2026-01-01T04:00:00Z"),
            to: None,
            why: String::new(),
        };
        assert_eq!(
            summary(&[one, open], now),
            "1:00:41 in 2 outages (from 03:12:05 to 03:12:46 UTC; from 04:00:00 UTC, still going)"
        );
        assert_eq!(clock(3_729), "1:02:09");
    }
}

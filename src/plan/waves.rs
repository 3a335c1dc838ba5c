//! The waves of a rolling fleet (`rolling:`): which of Y's nodes start and which of X's
//! stop in each wave, and the share of traffic Y has after it.
//!
//! The fleet is the phase's nodes of each cluster in plan order: the data planes of a
//! hybrid plan, every node of a DB-less one. The waves are cumulative shares of Y's
//! fleet; X's nodes stop in the same proportion, rounded down so that X never shrinks
//! ahead of Y. The last wave stops none: X's remaining nodes stay up, taking no traffic,
//! through the monitoring and the go/no-go, so that a rollback still has an X to send
//! traffic to (and the relative gates an X to read), and go at `decommission-x`.

use super::model::{Mode, Node, Plan, Role, Share};
use super::steps::{ClusterSide, PhaseName};

/// One wave, resolved to nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// 1-based, as the checklist and the step ids say it.
    pub number: usize,
    /// Y's nodes this wave starts.
    pub y_nodes: Vec<String>,
    /// X's nodes this wave stops, once Y's are up and take their share (none in the last
    /// wave: the rest of X waits for `decommission-x`).
    pub x_nodes: Vec<String>,
    /// Y's share of traffic after this wave: its nodes up so far over Y's fleet, rounded
    /// up (the first wave of a large fleet still gets 1%), 100 at the last.
    pub y_percent: u8,
}

/// The phase that rolls: the data planes in hybrid mode, the one phase in DB-less mode;
/// `None` when the plan's mode rolls nothing.
pub fn rolling_phase(mode: Mode) -> Option<PhaseName> {
    match mode {
        Mode::Hybrid => Some(PhaseName::DataPlane),
        Mode::Dbless => Some(PhaseName::Cluster),
        Mode::Traditional => None,
    }
}

/// The rolling fleet of `side`: its data planes in hybrid mode, all its nodes otherwise.
pub fn fleet(plan: &Plan, side: ClusterSide) -> Vec<&Node> {
    let cluster = match side {
        ClusterSide::X => &plan.clusters.x,
        ClusterSide::Y => &plan.clusters.y,
    };
    cluster
        .nodes
        .iter()
        .filter(|n| plan.mode != Mode::Hybrid || n.role == Role::DataPlane)
        .collect()
}

/// The plan's waves, or none when it has no `rolling:` or its mode rolls nothing. The
/// loader has refused waves that do not rise over the fleet or end short of it; here a
/// wave past the fleet is capped, so nothing panics on a plan built by hand.
pub fn waves(plan: &Plan) -> Vec<Wave> {
    let Some(rolling) = &plan.rolling else {
        return Vec::new();
    };
    if rolling_phase(plan.mode).is_none() {
        return Vec::new();
    }
    let y = fleet(plan, ClusterSide::Y);
    let x = fleet(plan, ClusterSide::X);
    let count = rolling.waves.len();
    let (mut y_done, mut x_done) = (0, 0);
    let mut out = Vec::with_capacity(count);
    for (i, share) in rolling.waves.iter().enumerate() {
        let last = i + 1 == count;
        let y_to = if last {
            y.len()
        } else {
            share.of(y.len()).min(y.len())
        };
        let x_to = if last || y.is_empty() {
            x_done
        } else {
            x.len() * y_to / y.len()
        };
        let y_percent = if y.is_empty() {
            100
        } else {
            u8::try_from((y_to * 100).div_ceil(y.len())).unwrap_or(100)
        };
        let names = |nodes: &[&Node]| nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        out.push(Wave {
            number: i + 1,
            y_nodes: names(&y[y_done.min(y_to)..y_to]),
            x_nodes: names(&x[x_done.min(x_to)..x_to]),
            y_percent,
        });
        y_done = y_done.max(y_to);
        x_done = x_done.max(x_to);
    }
    out
}

/// How many of the rolling fleet's nodes may be out of service at once
/// (`rolling.max_unavailable`): a number of nodes, or a percentage of Y's fleet rounded
/// down but at least 1; `None` when the plan sets no bound.
pub fn max_unavailable(plan: &Plan) -> Option<usize> {
    let share = plan.rolling.as_ref()?.max_unavailable?;
    let fleet = fleet(plan, ClusterSide::Y).len();
    Some(
        match share {
            Share::Nodes(n) => n,
            Share::Percent(p) => fleet * usize::from(p) / 100,
        }
        .max(1),
    )
}

/// The wave a node of `side` is in (its start on Y, its stop on X), if the plan rolls in
/// waves and the node is in its fleet.
pub fn wave_of(waves: &[Wave], side: ClusterSide, node: &str) -> Option<usize> {
    waves
        .iter()
        .find(|w| {
            let nodes = match side {
                ClusterSide::X => &w.x_nodes,
                ClusterSide::Y => &w.y_nodes,
            };
            nodes.iter().any(|n| n == node)
        })
        .map(|w| w.number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::RollingSpec;
    use std::time::Duration;

    fn plan(x: usize, y: usize, waves: Vec<Share>) -> Plan {
        let mut plan = crate::plan::templates::sample::plan(
            Mode::Hybrid,
            crate::plan::model::StrategyChoice::Fixed(crate::plan::model::Strategy::DualCluster),
        );
        let template = plan.clusters.x.nodes[0].clone();
        let dp = |side: &str, i: usize| Node {
            name: format!("{side}-dp-{i}"),
            role: Role::DataPlane,
            ..template.clone()
        };
        plan.clusters.x.nodes.retain(|n| n.role != Role::DataPlane);
        plan.clusters.y.nodes.retain(|n| n.role != Role::DataPlane);
        plan.clusters.x.nodes.extend((1..=x).map(|i| dp("x", i)));
        plan.clusters.y.nodes.extend((1..=y).map(|i| dp("y", i)));
        plan.rolling = Some(RollingSpec {
            waves,
            between_waves: Duration::from_secs(60),
            confirm: Default::default(),
            drain: None,
            max_unavailable: None,
        });
        plan
    }

    #[test]
    fn max_unavailable_is_nodes_or_a_percentage_rounded_down_but_at_least_one() {
        let mut p = plan(8, 8, vec![Share::Percent(100)]);
        assert_eq!(max_unavailable(&p), None);
        for (share, nodes) in [
            (Share::Nodes(3), 3),
            (Share::Percent(25), 2),
            (Share::Percent(30), 2),
            (Share::Percent(10), 1),
            (Share::Percent(100), 8),
        ] {
            p.rolling.as_mut().unwrap().max_unavailable = Some(share);
            assert_eq!(max_unavailable(&p), Some(nodes), "{share}");
        }
    }

    #[test]
    fn eight_nodes_in_three_waves_each_once() {
        let p = plan(
            8,
            8,
            vec![Share::Nodes(1), Share::Percent(50), Share::Percent(100)],
        );
        let w = waves(&p);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].y_nodes, ["y-dp-1"]);
        assert_eq!(w[0].x_nodes, ["x-dp-1"]);
        assert_eq!(w[1].y_nodes, ["y-dp-2", "y-dp-3", "y-dp-4"]);
        assert_eq!(w[2].y_nodes.len(), 4);
        assert_eq!(
            w.iter().map(|w| w.y_percent).collect::<Vec<_>>(),
            [13, 50, 100]
        );
        // X's last four stay up until decommission-x.
        let all_x: Vec<_> = w.iter().flat_map(|w| w.x_nodes.clone()).collect();
        assert_eq!(
            all_x,
            (1..=4).map(|i| format!("x-dp-{i}")).collect::<Vec<_>>()
        );
        assert_eq!(wave_of(&w, ClusterSide::Y, "y-dp-3"), Some(2));
        assert_eq!(wave_of(&w, ClusterSide::X, "cp"), None);
    }

    #[test]
    fn x_never_shrinks_ahead_of_y() {
        // Fewer Y nodes than X: X leaves in proportion, rounded down.
        let p = plan(
            10,
            4,
            vec![Share::Nodes(1), Share::Nodes(2), Share::Percent(100)],
        );
        let w = waves(&p);
        let x_counts: Vec<usize> = w.iter().map(|w| w.x_nodes.len()).collect();
        assert_eq!(x_counts, [2, 3, 0]);
        assert_eq!(w[0].y_percent, 25);
    }

    #[test]
    fn no_rolling_key_no_waves() {
        let mut p = plan(2, 2, vec![Share::Percent(100)]);
        p.rolling = None;
        assert!(waves(&p).is_empty());
    }
}

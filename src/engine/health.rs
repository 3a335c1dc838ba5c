//! Whether Y is fit to take more traffic: the check before a traffic stage (or a split set
//! by hand) sends more to Y than it has. Pure: the engine, the console's confirm dialog
//! and `--plain` ask it of the same topology snapshot (the watcher's, `kong::watch`) and
//! the same gate verdict, so all three name the same nodes and reasons.
//!
//! What counts, from Kong's own interfaces (docs/kong/admin-and-status-api.md):
//! - a Y node that proxies answers `/status/ready` with 200 (kong/status/ready.lua@3.4.2),
//!   or `/status` before 3.3, where `/status/ready` does not exist (the watcher asks
//!   `/status` on its 404);
//! - a Y data plane is listed by a Y control plane with `sync_status` `normal`
//!   (kong/db/schema/entities/clustering_data_planes.lua@3.4.2), on the configuration
//!   its control plane's other data planes hold, and not on the empty configuration
//!   (`DECLARATIVE_EMPTY_CONFIG_HASH`, kong/constants.lua:217@master). A control plane
//!   does not report its own hash on `/status` (kong/api/routes/health.lua:52-56@3.4.2),
//!   so "its control plane's configuration" is the hash most of its data planes hold;
//! - the gate window holds no breaching sample.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::kong::topology::{NodeHealth, TopologySnapshot};
use crate::kong::types::SyncStatus;
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::Role;
use crate::plan::steps::{ClusterSide, PhaseName, StepKind, StepRef};

/// The word the operator types to send traffic to a Y found unfit (journaled with who
/// typed it and what was overridden).
pub const OVERRIDE_WORD: &str = "override";

/// The share of traffic `kind` sends to Y when that is more than Y has now (`y_now`);
/// `None` for any other step, and for rollback steps (they only take traffic from Y).
pub fn raises_y(step: &StepRef, kind: &StepKind, y_now: u8) -> Option<u8> {
    match kind {
        StepKind::ShiftTraffic { y_percent, .. }
            if step.phase != PhaseName::Rollback && *y_percent > y_now =>
        {
            Some(*y_percent)
        }
        _ => None,
    }
}

/// Why Y should not take more traffic now, one line per node and reason; empty when
/// nothing speaks against it. The nodes are judged on a snapshot the watcher took after
/// the last step ended (`since`): an older one shows Y as it was before that step (not yet
/// started, say), and the watcher looks again within `session::TOPOLOGY_INTERVAL`. With no
/// such snapshot (no watcher runs) only the gate is judged.
pub fn y_unfit(
    topology: Option<&TopologySnapshot>,
    gate: Option<&GateVerdict>,
    since: Option<DateTime<Utc>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let fresh = |t: &&TopologySnapshot| match (t.at, since) {
        (Some(at), Some(since)) => at >= since,
        _ => true,
    };
    if let Some(topology) = topology.filter(fresh) {
        problems.extend(node_problems(topology));
    }
    if let Some(gate) = gate
        && (gate.verdict == Verdict::Fail || gate.consecutive_breaches > 0)
    {
        let breached: Vec<&str> = gate
            .checks
            .iter()
            .filter(|c| !c.ends_with(": ok"))
            .map(String::as_str)
            .collect();
        problems.push(format!(
            "the gate window holds failing samples ({} in a row): {}",
            gate.consecutive_breaches,
            breached.join("; ")
        ));
    }
    problems
}

fn node_problems(topology: &TopologySnapshot) -> Vec<String> {
    let mut problems = Vec::new();
    let x_control_planes: Vec<&str> = topology
        .nodes
        .iter()
        .filter(|n| n.cluster == ClusterSide::X && n.role == Role::ControlPlane)
        .map(|n| n.name.as_str())
        .collect();
    let proxies = topology
        .nodes
        .iter()
        .filter(|n| n.cluster == ClusterSide::Y && n.role != Role::ControlPlane);
    // Data planes by the control plane listing them, with their hashes.
    let mut hashes: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for node in proxies {
        let name = &node.name;
        match &node.health {
            NodeHealth::Ready => {}
            NodeHealth::NotReady(reason) => {
                problems.push(format!(
                    "Y node {name} is not ready: /status/ready says {reason}"
                ));
            }
            NodeHealth::Unreachable(error) => {
                problems.push(format!("Y node {name} does not answer: {error}"));
            }
            // Not deployed, or nothing to ask it on: the watcher knows nothing to judge.
            NodeHealth::Absent | NodeHealth::Unknown => {}
        }
        if let Some(why) = node.empty_config() {
            problems.push(format!(
                "Y node {name} proxies with the empty configuration: {why}"
            ));
        }
        if node.role != Role::DataPlane {
            continue;
        }
        if let Some(cp) = node.control_plane.as_deref() {
            if x_control_planes.contains(&cp) {
                problems.push(format!(
                    "Y data plane {name} is connected to X's control plane {cp}"
                ));
            }
            if let Some(hash) = node.config_hash.as_deref() {
                hashes.entry(cp).or_default().push((name, hash));
            }
        }
        if let Some(status) = &node.sync_status
            && *status != SyncStatus::Normal
        {
            problems.push(format!(
                "Y data plane {name} reports sync_status {}",
                status.as_str()
            ));
        }
    }
    for (cp, planes) in hashes {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, hash) in &planes {
            *counts.entry(hash).or_default() += 1;
        }
        if counts.len() < 2 {
            continue;
        }
        match counts.iter().find(|(_, n)| **n * 2 > planes.len()) {
            Some((held, _)) => {
                for (name, hash) in planes.iter().filter(|(_, h)| h != held) {
                    problems.push(format!(
                        "Y data plane {name} is on config_hash {}, not on {cp}'s {}",
                        short(hash),
                        short(held)
                    ));
                }
            }
            None => problems.push(format!(
                "Y data planes of {cp} hold different configurations ({}): the latest has \
                 not reached them all",
                planes
                    .iter()
                    .map(|(name, hash)| format!("{name} {}", short(hash)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    problems
}

/// The first 8 characters of a hash: enough to tell two apart on screen.
fn short(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kong::topology::NodeView;
    use crate::metrics::GateFigures;

    fn node(name: &str, side: ClusterSide, role: Role, health: NodeHealth) -> NodeView {
        NodeView {
            name: name.into(),
            cluster: side,
            role,
            version: Some("3.10.0".into()),
            health,
            control_plane: None,
            sync_status: None,
            config_hash: None,
        }
    }

    fn dp(name: &str, cp: &str, hash: &str) -> NodeView {
        NodeView {
            control_plane: Some(cp.into()),
            sync_status: Some(SyncStatus::Normal),
            config_hash: Some(hash.into()),
            ..node(name, ClusterSide::Y, Role::DataPlane, NodeHealth::Ready)
        }
    }

    fn snapshot(nodes: Vec<NodeView>) -> TopologySnapshot {
        TopologySnapshot {
            nodes,
            ..TopologySnapshot::default()
        }
    }

    const A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const B: &str = "ffeeddccbbaa00998877665544332211";

    #[test]
    fn a_healthy_y_has_nothing_against_it() {
        let topology = snapshot(vec![
            node(
                "cp-x",
                ClusterSide::X,
                Role::ControlPlane,
                NodeHealth::Ready,
            ),
            node(
                "cp-y",
                ClusterSide::Y,
                Role::ControlPlane,
                NodeHealth::Ready,
            ),
            dp("dp-y-1", "cp-y", A),
            dp("dp-y-2", "cp-y", A),
            // X's troubles are not Y's.
            node(
                "dp-x-1",
                ClusterSide::X,
                Role::DataPlane,
                NodeHealth::Unreachable("refused".into()),
            ),
        ]);
        assert!(y_unfit(Some(&topology), None, None).is_empty());
        assert!(y_unfit(None, None, None).is_empty());
    }

    #[test]
    fn each_reason_names_the_node() {
        let mut crashed = dp("dp-y-2", "cp-y", A);
        crashed.health = NodeHealth::Unreachable("connection refused".into());
        let mut on_x = dp("dp-y-3", "cp-x", A);
        on_x.sync_status = Some(SyncStatus::PluginSetIncompatible);
        let topology = snapshot(vec![
            node(
                "cp-x",
                ClusterSide::X,
                Role::ControlPlane,
                NodeHealth::Ready,
            ),
            dp("dp-y-1", "cp-y", A),
            crashed,
            on_x,
            node(
                "kong-y-1",
                ClusterSide::Y,
                Role::Traditional,
                NodeHealth::NotReady(
                    "no configuration available (empty configuration present)".into(),
                ),
            ),
        ]);
        let problems = y_unfit(Some(&topology), None, None);
        assert_eq!(
            problems,
            [
                "Y node dp-y-2 does not answer: connection refused",
                "Y data plane dp-y-3 is connected to X's control plane cp-x",
                "Y data plane dp-y-3 reports sync_status plugin_set_incompatible",
                "Y node kong-y-1 is not ready: /status/ready says no configuration available \
                 (empty configuration present)",
                "Y node kong-y-1 proxies with the empty configuration: its /status/ready says \
                 no configuration available (empty configuration present)",
            ]
        );
    }

    #[test]
    fn a_data_plane_behind_its_control_plane_is_named_and_a_tie_is_said_as_one() {
        let topology = snapshot(vec![
            dp("dp-y-1", "cp-y", A),
            dp("dp-y-2", "cp-y", A),
            dp("dp-y-3", "cp-y", B),
        ]);
        assert_eq!(
            y_unfit(Some(&topology), None, None),
            ["Y data plane dp-y-3 is on config_hash ffeeddcc, not on cp-y's a1b2c3d4"]
        );
        let tie = snapshot(vec![dp("dp-y-1", "cp-y", A), dp("dp-y-2", "cp-y", B)]);
        let problems = y_unfit(Some(&tie), None, None);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("dp-y-1 a1b2c3d4, dp-y-2 ffeeddcc"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_snapshot_from_before_the_last_step_ended_does_not_judge_the_nodes() {
        let mut crashed = dp("dp-y-1", "cp-y", A);
        crashed.health = NodeHealth::Unreachable("connection refused".into());
        let step_end = chrono::Utc::now();
        let mut topology = snapshot(vec![crashed]);
        topology.at = Some(step_end - chrono::TimeDelta::seconds(3));
        assert!(y_unfit(Some(&topology), None, Some(step_end)).is_empty());
        topology.at = Some(step_end + chrono::TimeDelta::seconds(2));
        assert_eq!(y_unfit(Some(&topology), None, Some(step_end)).len(), 1);
    }

    #[test]
    fn a_gate_window_with_a_breach_speaks_against_y_until_it_clears() {
        let mut gate = GateVerdict {
            at: chrono::Utc::now(),
            verdict: Verdict::Inconclusive,
            checks: vec![
                "Y 5xx 4.00% ≤ 1.00%: BREACH".into(),
                "Y p99 120 ms ≤ 500 ms: ok".into(),
            ],
            requests_in_window: 400,
            consecutive_breaches: 1,
            figures: GateFigures::default(),
            shown: Vec::new(),
        };
        assert_eq!(
            y_unfit(None, Some(&gate), None),
            ["the gate window holds failing samples (1 in a row): Y 5xx 4.00% ≤ 1.00%: BREACH"]
        );
        gate.consecutive_breaches = 0;
        gate.verdict = Verdict::Pass;
        assert!(y_unfit(None, Some(&gate), None).is_empty());
    }

    #[test]
    fn only_a_forward_stage_that_sends_more_to_y_is_checked() {
        let stage = StepKind::ShiftTraffic {
            y_percent: 50,
            bake: std::time::Duration::ZERO,
        };
        let forward = StepRef::new(PhaseName::Cluster, "shift-traffic-50");
        assert_eq!(raises_y(&forward, &stage, 10), Some(50));
        assert_eq!(raises_y(&forward, &stage, 50), None);
        let back = StepRef::new(PhaseName::Rollback, "traffic-to-x");
        assert_eq!(raises_y(&back, &stage, 10), None);
        assert_eq!(raises_y(&forward, &StepKind::Manual, 0), None);
    }
}

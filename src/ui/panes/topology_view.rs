//! What the topology pane shows, worked out once per change (a snapshot from the watcher, a
//! step that changes which nodes are down as planned, the zoom's filter) rather than on
//! every frame: the one-node-per-row list, the nodes grouped for when that list does not
//! fit, and the rows the zoom's filter keeps. At a thousand nodes a cluster a frame then
//! draws only the rows it shows.

use std::collections::{BTreeMap, HashMap};

use crate::kong::topology::{NodeHealth, NodeView, TopologySnapshot};
use crate::kong::types::SyncStatus;
use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;
use crate::plan::waves::Wave;
use crate::ui::theme::{Tone, health_label, sync_tone};

/// How a node stands, worst first: the order of a group's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Unreachable, or a data plane out of sync with its control plane.
    Failed,
    /// Answers, not ready (e.g. draining).
    NotReady,
    /// Not known yet.
    Unknown,
    Ok,
    /// Does not answer because the plan has it down now.
    DownAsPlanned,
}

impl Standing {
    pub const ALL: [Standing; 5] = [
        Standing::Failed,
        Standing::NotReady,
        Standing::Unknown,
        Standing::Ok,
        Standing::DownAsPlanned,
    ];

    /// The symbol the node's own row shows for it, so a count and a row read alike.
    pub fn symbol(self) -> &'static str {
        match self {
            Standing::Failed => "✖",
            Standing::NotReady => "⚠",
            Standing::Unknown => "?",
            Standing::Ok => "✔",
            Standing::DownAsPlanned => "○",
        }
    }

    pub fn tone(self) -> Tone {
        match self {
            Standing::Failed => Tone::Bad,
            Standing::NotReady => Tone::Warn,
            Standing::Unknown | Standing::DownAsPlanned => Tone::Muted,
            Standing::Ok => Tone::Good,
        }
    }

    /// Whether `n`/`N` in the zoom stop at it.
    pub fn failing(self) -> bool {
        matches!(self, Standing::Failed | Standing::NotReady)
    }
}

/// A node's health, or for a ready data plane its sync status: symbol, words and tone.
pub fn node_status(node: &NodeView) -> (&'static str, String, Tone) {
    let (symbol, status, tone) = health_label(&node.health);
    match (&node.health, node.sync_status) {
        (NodeHealth::Ready, Some(sync)) if sync != SyncStatus::Normal => {
            let tone = sync_tone(sync);
            let symbol = if tone == Tone::Bad { "✖" } else { "?" };
            (symbol, sync.as_str().to_string(), tone)
        }
        (NodeHealth::Ready, Some(sync)) => (symbol, sync.as_str().to_string(), tone),
        _ => (symbol, status, tone),
    }
}

fn standing(node: &NodeView, tone: Tone) -> Standing {
    match (tone, &node.health) {
        (_, NodeHealth::Absent) => Standing::DownAsPlanned,
        (Tone::Bad, _) => Standing::Failed,
        (Tone::Warn, _) => Standing::NotReady,
        (Tone::Good, _) => Standing::Ok,
        _ => Standing::Unknown,
    }
}

/// A row of the one-node-per-row list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// The cluster's line: its version and how many nodes are ready.
    Cluster(ClusterSide),
    /// A node (an index into the snapshot's nodes); `under_cp`: a data plane listed under
    /// its control plane.
    Node {
        index: usize,
        under_cp: bool,
    },
    NoNodes(ClusterSide),
    /// A database (an index into the snapshot's databases).
    Database(usize),
    LoadBalancer,
}

/// The nodes of a cluster with one role, version and wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub side: ClusterSide,
    pub role: Role,
    pub version: Option<String>,
    pub wave: Option<usize>,
    /// How many stand each way, in [`Standing::ALL`]'s order.
    pub counts: [usize; 5],
    /// The failed nodes, then the not ready ones, in plan order (indexes into the nodes).
    pub failing: [Vec<usize>; 2],
    /// A node of the worst standing, whose words the group line ends with.
    pub worst: usize,
}

impl Group {
    pub fn count(&self, standing: Standing) -> usize {
        self.counts[standing as usize]
    }
}

/// A cluster's counts for its line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCount {
    pub nodes: usize,
    pub ready: usize,
}

#[derive(Debug, Clone, Default)]
pub struct TopologyView {
    snapshot: TopologySnapshot,
    live: bool,
    /// Each node's status (symbol, words, tone) and standing, by node index.
    statuses: Vec<((&'static str, String, Tone), Standing)>,
    /// What the filter looks in, by node index: name, version, role and status, lowercase.
    haystacks: Vec<String>,
    rows: Vec<Row>,
    groups: Vec<Group>,
    counts: [ClusterCount; 2],
    filter: String,
    /// The rows the zoom shows: every row, or with a filter the matching nodes under their
    /// cluster's line.
    shown: Vec<usize>,
    name_width: usize,
    show_roles: bool,
}

fn side_index(side: ClusterSide) -> usize {
    match side {
        ClusterSide::X => 0,
        ClusterSide::Y => 1,
    }
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::ControlPlane => "cp control plane",
        Role::DataPlane => "dp data plane",
        Role::Traditional => "traditional",
    }
}

impl TopologyView {
    /// The view of `snapshot` (`live`: the watcher's; else the plan's nodes, nothing known
    /// yet). `waves`: the plan's, to group a rolling fleet by wave.
    pub fn new(snapshot: TopologySnapshot, live: bool, waves: &[Wave]) -> Self {
        let mut wave_of: [HashMap<&str, usize>; 2] = [HashMap::new(), HashMap::new()];
        for wave in waves {
            for name in &wave.x_nodes {
                wave_of[0].insert(name, wave.number);
            }
            for name in &wave.y_nodes {
                wave_of[1].insert(name, wave.number);
            }
        }
        let statuses: Vec<_> = snapshot
            .nodes
            .iter()
            .map(|n| {
                let status = node_status(n);
                let standing = standing(n, status.2);
                (status, standing)
            })
            .collect();
        let haystacks = snapshot
            .nodes
            .iter()
            .zip(&statuses)
            .map(|(n, ((_, words, _), _))| {
                format!(
                    "{} {} {} {}",
                    n.name,
                    n.version.as_deref().unwrap_or("?"),
                    role_word(n.role),
                    words
                )
                .to_lowercase()
            })
            .collect();

        let mut counts = [ClusterCount::default(); 2];
        let mut grouped: BTreeMap<(usize, usize, bool, String, usize), Group> = BTreeMap::new();
        for (index, (node, (_, standing))) in snapshot.nodes.iter().zip(&statuses).enumerate() {
            let side = side_index(node.cluster);
            counts[side].nodes += 1;
            if node.health == NodeHealth::Ready {
                counts[side].ready += 1;
            }
            let wave = wave_of[side].get(node.name.as_str()).copied();
            let role_order = match node.role {
                Role::ControlPlane => 0,
                Role::DataPlane => 1,
                Role::Traditional => 2,
            };
            let key = (
                side,
                role_order,
                node.version.is_none(),
                node.version.clone().unwrap_or_default(),
                wave.unwrap_or(usize::MAX),
            );
            let group = grouped.entry(key).or_insert_with(|| Group {
                side: node.cluster,
                role: node.role,
                version: node.version.clone(),
                wave,
                counts: [0; 5],
                failing: [Vec::new(), Vec::new()],
                worst: index,
            });
            group.counts[*standing as usize] += 1;
            match standing {
                Standing::Failed => group.failing[0].push(index),
                Standing::NotReady => group.failing[1].push(index),
                _ => {}
            }
            if *standing < statuses[group.worst].1 {
                group.worst = index;
            }
        }

        let mut view = TopologyView {
            rows: rows(&snapshot),
            name_width: snapshot
                .nodes
                .iter()
                .map(|n| crate::ui::text::width(&n.name))
                .max()
                .unwrap_or(4),
            show_roles: snapshot.nodes.iter().any(|n| n.role != Role::Traditional),
            snapshot,
            live,
            statuses,
            haystacks,
            groups: grouped.into_values().collect(),
            counts,
            filter: String::new(),
            shown: Vec::new(),
        };
        view.shown = (0..view.rows.len()).collect();
        view
    }

    /// Keeps, for the zoom, the nodes whose name, version, role or status contains `filter`
    /// (any case), each under its cluster's line; an empty filter keeps every row.
    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.trim().to_lowercase();
        if self.filter.is_empty() {
            self.shown = (0..self.rows.len()).collect();
            return;
        }
        let mut shown = Vec::new();
        let mut cluster_row = None;
        for (i, row) in self.rows.iter().enumerate() {
            match row {
                Row::Cluster(_) => cluster_row = Some(i),
                Row::Node { index, .. } if self.haystacks[*index].contains(&self.filter) => {
                    // The cluster's line once, before its first match.
                    if let Some(c) = cluster_row.take() {
                        shown.push(c);
                    }
                    shown.push(i);
                }
                _ => {}
            }
        }
        self.shown = shown;
    }

    pub fn snapshot(&self) -> &TopologySnapshot {
        &self.snapshot
    }

    pub fn live(&self) -> bool {
        self.live
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Every row, in order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows the zoom shows (indexes into [`Self::rows`]).
    pub fn shown(&self) -> &[usize] {
        &self.shown
    }

    /// How many nodes the zoom shows.
    pub fn shown_nodes(&self) -> usize {
        self.shown
            .iter()
            .filter(|&&i| matches!(self.rows[i], Row::Node { .. }))
            .count()
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn cluster_count(&self, side: ClusterSide) -> ClusterCount {
        self.counts[side_index(side)]
    }

    pub fn status(&self, index: usize) -> &(&'static str, String, Tone) {
        &self.statuses[index].0
    }

    pub fn standing(&self, index: usize) -> Standing {
        self.statuses[index].1
    }

    pub fn node(&self, index: usize) -> &NodeView {
        &self.snapshot.nodes[index]
    }

    pub fn name_width(&self) -> usize {
        self.name_width
    }

    pub fn show_roles(&self) -> bool {
        self.show_roles
    }

    /// Whether the zoom's row at `position` (of [`Self::shown`]) is a failing node.
    pub fn shown_failing(&self, position: usize) -> bool {
        match self.shown.get(position).map(|&i| self.rows[i]) {
            Some(Row::Node { index, .. }) => self.standing(index).failing(),
            _ => false,
        }
    }

    /// The next failing node's position in the zoom after `from` (before it, `back`),
    /// round to the other end when there is none that way; `from` `None`: from the top
    /// (from the bottom, `back`).
    pub fn next_failing(&self, from: Option<usize>, back: bool) -> Option<usize> {
        let len = self.shown.len();
        if len == 0 {
            return None;
        }
        let start = match (from, back) {
            (Some(at), false) => at + 1,
            (Some(at), true) => at + len - 1,
            (None, false) => 0,
            (None, true) => len - 1,
        };
        (0..len)
            .map(|step| {
                if back {
                    (start + len - step % len) % len
                } else {
                    (start + step) % len
                }
            })
            .find(|&position| self.shown_failing(position))
    }
}

/// Every node: each cluster's line, its control planes with their data planes under
/// them, then the rest, its databases; the load balancer last.
fn rows(snapshot: &TopologySnapshot) -> Vec<Row> {
    let mut out = Vec::with_capacity(snapshot.nodes.len() + 8);
    for side in [ClusterSide::X, ClusterSide::Y] {
        out.push(Row::Cluster(side));
        let nodes: Vec<(usize, &NodeView)> = snapshot
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.cluster == side)
            .collect();
        let control_planes: HashMap<&str, usize> = nodes
            .iter()
            .filter(|(_, n)| n.role == Role::ControlPlane)
            .map(|(i, n)| (n.name.as_str(), *i))
            .collect();
        // Each control plane's data planes, in plan order.
        let mut under: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut rest = Vec::new();
        for (i, n) in &nodes {
            match n.role {
                Role::ControlPlane => {}
                Role::DataPlane => match n
                    .control_plane
                    .as_deref()
                    .and_then(|cp| control_planes.get(cp))
                {
                    Some(cp) => under.entry(*cp).or_default().push(*i),
                    None => rest.push(*i),
                },
                Role::Traditional => rest.push(*i),
            }
        }
        for (i, n) in &nodes {
            if n.role != Role::ControlPlane {
                continue;
            }
            out.push(Row::Node {
                index: *i,
                under_cp: false,
            });
            for dp in under.remove(i).unwrap_or_default() {
                out.push(Row::Node {
                    index: dp,
                    under_cp: true,
                });
            }
        }
        out.extend(rest.into_iter().map(|index| Row::Node {
            index,
            under_cp: false,
        }));
        if nodes.is_empty() {
            out.push(Row::NoNodes(side));
        }
        out.extend(
            snapshot
                .databases
                .iter()
                .enumerate()
                .filter(|(_, d)| d.cluster == side)
                .map(|(i, _)| Row::Database(i)),
        );
    }
    if snapshot.load_balancer.is_some() {
        out.push(Row::LoadBalancer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, side: ClusterSide, health: NodeHealth) -> NodeView {
        NodeView {
            name: name.into(),
            cluster: side,
            role: Role::DataPlane,
            version: Some("3.10.0".into()),
            health,
            control_plane: None,
            sync_status: None,
            config_hash: None,
        }
    }

    fn view() -> TopologyView {
        let nodes = vec![
            node("dp-1", ClusterSide::Y, NodeHealth::Ready),
            node(
                "dp-2",
                ClusterSide::Y,
                NodeHealth::Unreachable("refused".into()),
            ),
            node("dp-3", ClusterSide::Y, NodeHealth::Absent),
            node(
                "dp-4",
                ClusterSide::Y,
                NodeHealth::NotReady("draining".into()),
            ),
        ];
        TopologyView::new(
            TopologySnapshot {
                nodes,
                ..Default::default()
            },
            true,
            &[],
        )
    }

    #[test]
    fn a_group_counts_each_standing_and_names_the_worst() {
        let view = view();
        let [group] = view.groups() else {
            panic!("{:?}", view.groups())
        };
        assert_eq!(group.counts, [1, 1, 0, 1, 1]);
        assert_eq!(group.failing, [vec![1], vec![3]]);
        assert_eq!(group.worst, 1);
    }

    #[test]
    fn a_rolling_fleet_groups_by_wave() {
        let nodes = (1..=4)
            .map(|i| node(&format!("dp-{i}"), ClusterSide::Y, NodeHealth::Ready))
            .collect();
        let wave = |number: usize, y: &[&str]| Wave {
            number,
            y_nodes: y.iter().map(|n| n.to_string()).collect(),
            x_nodes: Vec::new(),
            y_percent: 50,
        };
        let view = TopologyView::new(
            TopologySnapshot {
                nodes,
                ..Default::default()
            },
            true,
            &[wave(1, &["dp-1"]), wave(2, &["dp-2", "dp-3"])],
        );
        let waves: Vec<(Option<usize>, usize)> = view
            .groups()
            .iter()
            .map(|g| (g.wave, g.count(Standing::Ok)))
            .collect();
        // dp-4 is in no wave: its group comes last.
        assert_eq!(waves, [(Some(1), 1), (Some(2), 2), (None, 1)]);
    }

    #[test]
    fn the_filter_keeps_matching_nodes_under_their_cluster() {
        let mut view = view();
        view.set_filter("DRAIN");
        let shown: Vec<Row> = view.shown().iter().map(|&i| view.rows()[i]).collect();
        assert_eq!(
            shown,
            [
                Row::Cluster(ClusterSide::Y),
                Row::Node {
                    index: 3,
                    under_cp: false
                }
            ]
        );
        view.set_filter("");
        assert_eq!(view.shown().len(), view.rows().len());
    }

    #[test]
    fn failing_nodes_are_found_both_ways_and_round() {
        let view = view();
        // Rows: X's line, X's "no nodes", Y's line, dp-1..dp-4.
        assert_eq!(view.next_failing(None, false), Some(4));
        assert_eq!(view.next_failing(Some(4), false), Some(6));
        assert_eq!(view.next_failing(Some(6), false), Some(4));
        assert_eq!(view.next_failing(Some(4), true), Some(6));
        assert_eq!(view.next_failing(None, true), Some(6));
    }
}

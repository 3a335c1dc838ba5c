//! Clusters X and Y: nodes with version, role and health, data planes under their control
//! plane with their sync status, the databases, the load balancer. From the engine's latest
//! topology snapshot, or from the plan until the first one arrives. When every node does
//! not fit, each cluster shrinks to a line per role (zoom shows every node).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::kong::topology::{DatabaseView, NodeHealth, NodeView, TopologySnapshot};
use crate::kong::types::SyncStatus;
use crate::plan::model::{Node, Role};
use crate::plan::steps::ClusterSide;
use crate::ui::describe;
use crate::ui::state::{ConsoleState, Pane};
use crate::ui::text;
use crate::ui::theme::{Theme, Tone, health_label, sync_tone};

use super::pane_block;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let planned;
    let topology = match state.topology() {
        Some(t) => t,
        None => {
            planned = from_plan(state);
            &planned
        }
    };
    let zoomed = state.zoomed() && state.focus() == Pane::Topology;
    let inner_width = area.width.saturating_sub(2) as usize;
    let height = area.height.saturating_sub(2) as usize;
    let full = full_lines(state, topology, inner_width);
    let (lines, summary) = if zoomed || full.len() <= height {
        (full, false)
    } else {
        (summary_lines(state, topology, inner_width), true)
    };
    let mut title = vec![Span::styled(
        if state.topology().is_some() {
            "live"
        } else {
            "from the plan"
        },
        state.theme().tone(Tone::Muted),
    )];
    if summary {
        title.push(Span::styled(" · z: nodes", state.theme().tone(Tone::Muted)));
    }
    let block = pane_block(state, Pane::Topology, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let first = state
        .topology_offset()
        .min(lines.len().saturating_sub(height));
    let visible: Vec<Line> = lines.into_iter().skip(first).take(height).collect();
    frame.render_widget(Paragraph::new(visible), inner);
}

/// The plan's nodes as a snapshot with nothing known yet.
fn from_plan(state: &ConsoleState) -> TopologySnapshot {
    let plan = state.plan();
    let node = |n: &Node, cluster| NodeView {
        name: n.name.clone(),
        cluster,
        role: n.role,
        version: None,
        health: NodeHealth::Unknown,
        control_plane: None,
        sync_status: None,
        config_hash: None,
    };
    let mut nodes: Vec<NodeView> = plan
        .clusters
        .x
        .nodes
        .iter()
        .map(|n| node(n, ClusterSide::X))
        .collect();
    nodes.extend(
        plan.clusters
            .y
            .nodes
            .iter()
            .map(|n| node(n, ClusterSide::Y)),
    );
    let databases = [
        (ClusterSide::X, &plan.clusters.x),
        (ClusterSide::Y, &plan.clusters.y),
    ]
    .into_iter()
    .filter_map(|(side, c)| {
        c.database.as_ref().map(|db| DatabaseView {
            cluster: side,
            address: describe::database_address(db),
            schema: None,
        })
    })
    .collect();
    TopologySnapshot {
        at: None,
        nodes,
        databases,
        load_balancer: Some(plan.traffic.driver.describe()),
        unreadable: Vec::new(),
    }
}

fn expected_version(state: &ConsoleState, side: ClusterSide) -> String {
    match side {
        ClusterSide::X => state.plan().from.to_string(),
        ClusterSide::Y => state.plan().to.to_string(),
    }
}

fn cluster_nodes(topology: &TopologySnapshot, side: ClusterSide) -> Vec<&NodeView> {
    topology
        .nodes
        .iter()
        .filter(|n| n.cluster == side)
        .collect()
}

fn schema(db: &DatabaseView) -> &str {
    db.schema.as_deref().unwrap_or("schema not read yet")
}

fn lb_line(topology: &TopologySnapshot, theme: Theme, width: usize) -> Option<Line<'static>> {
    topology.load_balancer.as_ref().map(|lb| {
        Line::from(vec![
            Span::styled("LB ", theme.bold()),
            Span::raw(text::truncate(lb, width.saturating_sub(3))),
        ])
    })
}

/// Every node: control planes with their data planes under them, then the rest.
fn full_lines(
    state: &ConsoleState,
    topology: &TopologySnapshot,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = state.theme();
    let name_width = topology
        .nodes
        .iter()
        .map(|n| text::width(&n.name))
        .max()
        .unwrap_or(4)
        .min(width / 3);
    let show_roles = topology.nodes.iter().any(|n| n.role != Role::Traditional);
    let mut out = Vec::new();
    for side in [ClusterSide::X, ClusterSide::Y] {
        let expected = expected_version(state, side);
        let nodes = cluster_nodes(topology, side);
        let ready = nodes
            .iter()
            .filter(|n| n.health == NodeHealth::Ready)
            .count();
        out.push(Line::from(Span::styled(
            text::truncate(
                &format!(
                    "{} {expected} · {ready}/{} ready",
                    describe::side(side),
                    nodes.len()
                ),
                width,
            ),
            theme.bold(),
        )));
        let row = |node: &NodeView, under_cp: bool| {
            let columns = NodeColumns {
                name_width,
                show_roles,
                expected: &expected,
                width,
            };
            node_line(theme, node, under_cp, &columns)
        };
        let control_planes: Vec<&&NodeView> = nodes
            .iter()
            .filter(|n| n.role == Role::ControlPlane)
            .collect();
        let reports_to_a_listed_cp = |n: &NodeView| {
            control_planes
                .iter()
                .any(|cp| n.control_plane.as_deref() == Some(cp.name.as_str()))
        };
        for cp in &control_planes {
            out.push(row(cp, false));
            for dp in nodes.iter().filter(|n| {
                n.role == Role::DataPlane && n.control_plane.as_deref() == Some(cp.name.as_str())
            }) {
                out.push(row(dp, true));
            }
        }
        for node in nodes.iter().filter(|n| {
            n.role == Role::Traditional || (n.role == Role::DataPlane && !reports_to_a_listed_cp(n))
        }) {
            out.push(row(node, false));
        }
        if nodes.is_empty() {
            out.push(Line::from(Span::styled(
                "  no nodes",
                theme.tone(Tone::Muted),
            )));
        }
        for db in topology.databases.iter().filter(|d| d.cluster == side) {
            out.push(Line::from(vec![
                Span::styled("  db ", theme.tone(Tone::Muted)),
                Span::raw(text::truncate(
                    &format!("{} · {}", db.address, schema(db)),
                    width.saturating_sub(5),
                )),
            ]));
        }
    }
    out.extend(lb_line(topology, theme, width));
    out
}

struct NodeColumns<'a> {
    name_width: usize,
    show_roles: bool,
    expected: &'a str,
    width: usize,
}

/// A node's health, or for a ready data plane its sync status, with symbol and tone.
fn node_status(node: &NodeView) -> (&'static str, String, Tone) {
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

fn node_line(
    theme: Theme,
    node: &NodeView,
    under_cp: bool,
    columns: &NodeColumns,
) -> Line<'static> {
    let (symbol, status, tone) = node_status(node);
    let role = match node.role {
        Role::ControlPlane => "CP ",
        Role::DataPlane => "DP ",
        Role::Traditional => "   ",
    };
    let version = node.version.clone().unwrap_or_else(|| "?".into());
    let version_tone = match &node.version {
        Some(v) if v != columns.expected => Tone::Warn,
        Some(_) => Tone::Plain,
        None => Tone::Muted,
    };
    // A data plane sits two columns in; its name column is two shorter, so versions align.
    let (lead, name_width) = if under_cp {
        ("  └ ", columns.name_width)
    } else {
        ("  ", columns.name_width + 2)
    };
    let mut spans = vec![
        Span::raw(lead),
        Span::styled(symbol, theme.tone(tone)),
        Span::raw(" "),
        Span::raw(text::fit(&node.name, name_width)),
        Span::raw(" "),
    ];
    if columns.show_roles {
        spans.push(Span::styled(role, theme.tone(Tone::Muted)));
    }
    spans.push(Span::styled(version, theme.tone(version_tone)));
    spans.push(Span::raw(" "));
    let used: usize = spans.iter().map(|s| s.width()).sum();
    spans.push(Span::styled(
        text::truncate(&status, columns.width.saturating_sub(used)),
        theme.tone(tone),
    ));
    Line::from(spans)
}

/// A line per cluster and per role: how many are healthy, on which versions, and the first
/// problem when there is one.
fn summary_lines(
    state: &ConsoleState,
    topology: &TopologySnapshot,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = state.theme();
    let mut out = Vec::new();
    for side in [ClusterSide::X, ClusterSide::Y] {
        let expected = expected_version(state, side);
        let nodes = cluster_nodes(topology, side);
        let mut head = format!("{} {expected}", describe::side(side));
        if let Some(db) = topology.databases.iter().find(|d| d.cluster == side) {
            head.push_str(&format!(" · db {}", schema(db)));
        }
        out.push(Line::from(Span::styled(
            text::truncate(&head, width),
            theme.bold(),
        )));
        let label_width = if nodes.iter().any(|n| n.role == Role::Traditional) {
            5
        } else {
            2
        };
        for (role, label) in [
            (Role::ControlPlane, "CP"),
            (Role::DataPlane, "DP"),
            (Role::Traditional, "nodes"),
        ] {
            let group: Vec<&&NodeView> = nodes.iter().filter(|n| n.role == role).collect();
            if group.is_empty() {
                continue;
            }
            let statuses: Vec<(&str, String, Tone)> =
                group.iter().map(|n| node_status(n)).collect();
            let healthy = statuses.iter().filter(|(_, _, t)| *t == Tone::Good).count();
            let worst = statuses
                .iter()
                .max_by_key(|(_, _, t)| severity(*t))
                .cloned()
                .unwrap_or(("?", String::new(), Tone::Muted));
            let mut versions: Vec<String> = group
                .iter()
                .map(|n| n.version.clone().unwrap_or_else(|| "?".into()))
                .collect();
            versions.sort();
            versions.dedup();
            let version_tone = if versions.iter().all(|v| *v == expected) {
                Tone::Plain
            } else {
                Tone::Warn
            };
            let mut spans = vec![
                Span::raw(format!("  {label:<label_width$} ")),
                Span::styled(worst.0, theme.tone(worst.2)),
                Span::raw(format!(" {healthy}/{} ", group.len())),
                Span::styled(versions.join("+"), theme.tone(version_tone)),
                Span::raw(" "),
            ];
            let used: usize = spans.iter().map(|s| s.width()).sum();
            spans.push(Span::styled(
                text::truncate(&worst.1, width.saturating_sub(used)),
                theme.tone(worst.2),
            ));
            out.push(Line::from(spans));
        }
    }
    out.extend(lb_line(topology, theme, width));
    out
}

fn severity(tone: Tone) -> u8 {
    match tone {
        Tone::Bad => 4,
        Tone::Warn => 3,
        Tone::Muted => 2,
        Tone::Good => 0,
        _ => 1,
    }
}

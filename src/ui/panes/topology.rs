//! Clusters X and Y: nodes with version, role and health, data planes under their control
//! plane with their sync status, the databases, the load balancer. From the engine's latest
//! topology snapshot, or from the plan until the first one arrives. When every node does
//! not fit one per row, the nodes are grouped by cluster, role, version and wave, each
//! group with its counts, worst first, and the names of its failing nodes where there is
//! room; zoom lists every node, with a filter (`/`) and jumps to the failing ones (`n N`).
//! What is shown is worked out when the topology changes (`topology_view`); a frame draws
//! only the rows it shows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::kong::topology::{DatabaseView, NodeHealth, NodeView, TopologySnapshot};
use crate::plan::model::{Node, Plan, Role};
use crate::plan::steps::ClusterSide;
use crate::ui::describe;
use crate::ui::state::{ConsoleState, Pane};
use crate::ui::text;
use crate::ui::theme::{Theme, Tone};

use super::pane_block;
use super::topology_view::{Group, Row, Standing, TopologyView};

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let view = state.topology_view();
    let theme = state.theme();
    let zoomed = state.zoomed() && state.focus() == Pane::Topology;
    let width = area.width.saturating_sub(2) as usize;
    let height = area.height.saturating_sub(2) as usize;
    let editing = state.topology_filter_input().filter(|_| zoomed);
    let list_height = height.saturating_sub(usize::from(editing.is_some()));
    let grouped = !zoomed && view.rows().len() > height;

    let muted = theme.tone(Tone::Muted);
    let mut title = vec![Span::styled(
        if view.live() { "live" } else { "from the plan" },
        muted,
    )];
    if zoomed && !view.filter().is_empty() {
        title.push(Span::styled(
            format!(
                " · /{} · {} of {} nodes",
                view.filter(),
                view.shown_nodes(),
                view.snapshot().nodes.len()
            ),
            muted,
        ));
    }
    if grouped {
        title.push(Span::styled(" · z: nodes", muted));
    }
    let block = pane_block(state, Pane::Topology, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let mut visible: Vec<Line> = if grouped {
        let lines = grouped_lines(state, view, width, height);
        let first = state
            .topology_offset()
            .min(lines.len().saturating_sub(height));
        lines.into_iter().skip(first).take(height).collect()
    } else {
        let rows: &[usize] = if zoomed { view.shown() } else { &[] };
        let count = if zoomed {
            rows.len()
        } else {
            view.rows().len()
        };
        let first = state
            .topology_offset()
            .min(count.saturating_sub(list_height));
        let name_width = view.name_width().min(width / 3);
        (first..count.min(first + list_height))
            .map(|position| {
                let row = match (zoomed, view.rows()) {
                    // Filtered, a data plane's control plane may not be listed above it.
                    (true, all) if !view.filter().is_empty() => match all[rows[position]] {
                        Row::Node { index, .. } => Row::Node {
                            index,
                            under_cp: false,
                        },
                        other => other,
                    },
                    (true, all) => all[rows[position]],
                    (false, all) => all[position],
                };
                let line = row_line(state, view, row, width, name_width);
                if zoomed && state.topology_mark() == Some(position) {
                    line.style(theme.selected())
                } else {
                    line
                }
            })
            .collect()
    };
    if zoomed && visible.is_empty() && !view.filter().is_empty() {
        visible.push(Line::from(Span::styled(
            text::truncate(
                &format!("  no node matches \"{}\" (Esc clears)", view.filter()),
                width,
            ),
            muted,
        )));
    }
    if let Some(input) = editing {
        while visible.len() < list_height {
            visible.push(Line::default());
        }
        // The end of what is typed stays in view, the cursor after it.
        let typed = input.value();
        let room = width.saturating_sub(2);
        let shown = text::truncate_start(typed, room);
        visible.push(Line::from(vec![
            Span::styled("/", theme.bold()),
            Span::raw(shown),
            Span::styled(
                " ",
                Style::default().add_modifier(ratatui::style::Modifier::REVERSED),
            ),
        ]));
    }
    frame.render_widget(Paragraph::new(visible), inner);
}

/// The plan's nodes as a snapshot with nothing known yet.
pub fn from_plan(plan: &Plan) -> TopologySnapshot {
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

/// One row of the one-node-per-row list.
fn row_line(
    state: &ConsoleState,
    view: &TopologyView,
    row: Row,
    width: usize,
    name_width: usize,
) -> Line<'static> {
    let theme = state.theme();
    let topology = view.snapshot();
    match row {
        Row::Cluster(side) => {
            let count = view.cluster_count(side);
            Line::from(Span::styled(
                text::truncate(
                    &format!(
                        "{} {} · {}/{} ready",
                        describe::side(side),
                        expected_version(state, side),
                        count.ready,
                        count.nodes
                    ),
                    width,
                ),
                theme.bold(),
            ))
        }
        Row::Node { index, under_cp } => {
            let node = view.node(index);
            let expected = expected_version(state, node.cluster);
            let columns = NodeColumns {
                name_width,
                show_roles: view.show_roles(),
                expected: &expected,
                width,
            };
            node_line(theme, node, view.status(index), under_cp, &columns)
        }
        Row::NoNodes(_) => Line::from(Span::styled("  no nodes", theme.tone(Tone::Muted))),
        Row::Database(i) => {
            let db = &topology.databases[i];
            Line::from(vec![
                Span::styled("  db ", theme.tone(Tone::Muted)),
                Span::raw(text::truncate(
                    &format!("{} · {}", db.address, schema(db)),
                    width.saturating_sub(5),
                )),
            ])
        }
        Row::LoadBalancer => lb_line(topology, theme, width).unwrap_or_default(),
    }
}

struct NodeColumns<'a> {
    name_width: usize,
    show_roles: bool,
    expected: &'a str,
    width: usize,
}

fn node_line(
    theme: Theme,
    node: &NodeView,
    status: &(&'static str, String, Tone),
    under_cp: bool,
    columns: &NodeColumns,
) -> Line<'static> {
    let (symbol, status, tone) = status;
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
        Span::styled(*symbol, theme.tone(*tone)),
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
        text::truncate(status, columns.width.saturating_sub(used)),
        theme.tone(*tone),
    ));
    Line::from(spans)
}

/// The nodes grouped: a line per cluster (its version and database), a line per group of
/// its nodes (role, version where it is not the cluster's, wave) with how many stand each
/// way, worst first, and the worst one's words; then, as far as `height` allows, the names
/// of each group's failed nodes, then of its not ready ones.
fn grouped_lines(
    state: &ConsoleState,
    view: &TopologyView,
    width: usize,
    height: usize,
) -> Vec<Line<'static>> {
    let theme = state.theme();
    let topology = view.snapshot();
    let groups = view.groups();
    // Each cluster's line (and "no nodes" under one without any), the load balancer's.
    let heads = [ClusterSide::X, ClusterSide::Y]
        .into_iter()
        .map(|side| 1 + usize::from(!groups.iter().any(|g| g.side == side)))
        .sum::<usize>()
        + usize::from(topology.load_balancer.is_some());
    // Which groups' names fit: the failed of every group first, then the not ready.
    let mut room = height.saturating_sub(heads + groups.len());
    let mut named = vec![[false; 2]; groups.len()];
    for kind in [0, 1] {
        for (named, group) in named.iter_mut().zip(groups) {
            if room > 0 && !group.failing[kind].is_empty() {
                named[kind] = true;
                room -= 1;
            }
        }
    }
    let label_width = if groups.iter().any(|g| g.role == Role::Traditional) {
        5
    } else {
        2
    };
    let mut out = Vec::new();
    for side in [ClusterSide::X, ClusterSide::Y] {
        let expected = expected_version(state, side);
        let mut head = format!("{} {expected}", describe::side(side));
        if let Some(db) = topology.databases.iter().find(|d| d.cluster == side) {
            head.push_str(&format!(" · db {}", schema(db)));
        }
        out.push(Line::from(Span::styled(
            text::truncate(&head, width),
            theme.bold(),
        )));
        for (i, group) in groups.iter().enumerate().filter(|(_, g)| g.side == side) {
            out.push(group_line(
                view,
                group,
                &expected,
                label_width,
                width,
                theme,
            ));
            for (kind, standing) in [Standing::Failed, Standing::NotReady]
                .into_iter()
                .enumerate()
            {
                if named[i][kind] {
                    out.push(names_line(
                        view,
                        &group.failing[kind],
                        standing,
                        width,
                        theme,
                    ));
                }
            }
        }
        if !groups.iter().any(|g| g.side == side) {
            out.push(Line::from(Span::styled(
                "  no nodes",
                theme.tone(Tone::Muted),
            )));
        }
    }
    out.extend(lb_line(topology, theme, width));
    out
}

/// `  DP w2 ✖ 3 · ✔ 640 · ○ 357 unreachable: …`
fn group_line(
    view: &TopologyView,
    group: &Group,
    expected: &str,
    label_width: usize,
    width: usize,
    theme: Theme,
) -> Line<'static> {
    let label = match group.role {
        Role::ControlPlane => "CP",
        Role::DataPlane => "DP",
        Role::Traditional => "nodes",
    };
    let mut spans = vec![Span::raw(format!("  {label:<label_width$} "))];
    if let Some(version) = group.version.as_deref().filter(|v| *v != expected) {
        spans.push(Span::styled(format!("{version} "), theme.tone(Tone::Warn)));
    }
    if let Some(wave) = group.wave {
        spans.push(Span::styled(format!("w{wave} "), theme.tone(Tone::Muted)));
    }
    let mut first = true;
    for standing in Standing::ALL {
        let count = group.count(standing);
        if count == 0 {
            continue;
        }
        if !first {
            spans.push(Span::styled(" · ", theme.tone(Tone::Muted)));
        }
        first = false;
        spans.push(Span::styled(standing.symbol(), theme.tone(standing.tone())));
        spans.push(Span::raw(format!(" {count}")));
    }
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let (_, words, tone) = view.status(group.worst);
    if width > used + 4 {
        spans.push(Span::styled(
            text::truncate(&format!(" {words}"), width - used),
            theme.tone(*tone),
        ));
    }
    Line::from(spans)
}

/// `    ✖ dp-0017, dp-0412, +1`: as many names as fit, and how many more.
fn names_line(
    view: &TopologyView,
    nodes: &[usize],
    standing: Standing,
    width: usize,
    theme: Theme,
) -> Line<'static> {
    let lead = 6; // "    ✖ "
    let mut names = String::new();
    for (shown, &index) in nodes.iter().enumerate() {
        let name = &view.node(index).name;
        let sep = if shown == 0 { "" } else { ", " };
        let left = nodes.len() - shown - 1;
        let more = if left == 0 {
            0
        } else {
            format!(", +{left}").len()
        };
        if lead + text::width(&names) + sep.len() + text::width(name) + more > width {
            let more = nodes.len() - shown;
            names.push_str(&format!("{sep}+{more}"));
            break;
        }
        names.push_str(sep);
        names.push_str(name);
    }
    Line::from(vec![
        Span::raw("    "),
        Span::styled(standing.symbol(), theme.tone(standing.tone())),
        Span::raw(" "),
        Span::styled(
            text::truncate(&names, width.saturating_sub(lead)),
            theme.tone(standing.tone()),
        ),
    ])
}

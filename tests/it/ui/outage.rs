//! The outage clock in the console (issue 15 item 8): while no cluster serves traffic the
//! header counts `✖ OUTAGE m:ss` in red (the symbol reads under NO_COLOR), and the topology
//! no longer calls the down nodes "down as planned".

use chrono::Duration;
use ratatui::style::Color;

use kongup::engine::event::Event;
use kongup::kong::topology::NodeHealth;
use kongup::plan::steps::ClusterSide;
use kongup::testkit::hybrid::{at, plan, topology_snapshot};
use kongup::testkit::scenarios::{self, draw, screen};
use kongup::ui::{ConsoleState, Theme};

macro_rules! assert_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("ui_snapshots__{}", $name), $value)
        })
    };
}

/// The finished hybrid run whose proxies then all go down: X's, decommissioned as planned,
/// and Y's, unreachable. Without the outage X's would read as absent.
fn all_down(theme: Theme) -> ConsoleState {
    let mut state = scenarios::done(theme);
    let mut topology = topology_snapshot(&plan(), Some("3.10.0.1"), NodeHealth::Ready);
    for node in &mut topology.nodes {
        node.health = NodeHealth::Unreachable("connection refused".into());
    }
    state.apply(&Event::Topology(topology));
    state
}

fn in_outage(theme: Theme) -> ConsoleState {
    let mut state = all_down(theme);
    let now = at(2200);
    state.apply(&Event::Outage {
        since: Some(now - Duration::seconds(41)),
    });
    state
}

fn x_health(state: &ConsoleState) -> Vec<NodeHealth> {
    state
        .topology()
        .unwrap()
        .nodes
        .iter()
        .filter(|n| n.cluster == ClusterSide::X)
        .map(|n| n.health.clone())
        .collect()
}

#[test]
fn an_outage_stops_the_topology_calling_stopped_nodes_down_as_planned() {
    let before = all_down(Theme::COLOUR);
    assert!(
        x_health(&before).iter().all(|h| *h == NodeHealth::Absent),
        "X was decommissioned as planned: {:?}",
        x_health(&before)
    );
    let during = in_outage(Theme::COLOUR);
    assert!(
        x_health(&during)
            .iter()
            .all(|h| matches!(h, NodeHealth::Unreachable(_))),
        "in an outage no down node is as planned: {:?}",
        x_health(&during)
    );
    let mut after = in_outage(Theme::COLOUR);
    after.apply(&Event::Outage { since: None });
    assert!(x_health(&after).iter().all(|h| *h == NodeHealth::Absent));
    let header = screen(&after, 80, 24).lines().next().unwrap().to_string();
    assert!(!header.contains("OUTAGE"), "{header}");
}

#[test]
fn the_header_counts_the_outage_in_red_with_its_symbol() {
    let state = in_outage(Theme::COLOUR);
    let buffer = draw(&state, 80, 24);
    let text = scenarios::buffer_text(&buffer);
    let header = text.lines().next().unwrap();
    assert!(header.contains("✖ OUTAGE 0:41"), "{header}");
    let x = header.find("OUTAGE").unwrap();
    let column = header[..x].chars().count() as u16;
    assert_eq!(buffer[(column, 0)].fg, Color::Red, "{header}");

    // Past an hour it reads h:mm:ss.
    let mut later = in_outage(Theme::COLOUR);
    later.set_now(at(2200 + 3_600));
    assert!(
        screen(&later, 80, 24)
            .lines()
            .next()
            .unwrap()
            .contains("✖ OUTAGE 1:00:41")
    );
}

#[test]
fn outage_snapshots() {
    let state = in_outage(Theme::COLOUR);
    assert_snapshot!("outage_80x24", screen(&state, 80, 24));
    assert_snapshot!("outage_160x48", screen(&state, 160, 48));
    let plain = in_outage(Theme::NO_COLOUR);
    let buffer = draw(&plain, 80, 24);
    assert!(
        buffer.content().iter().all(|c| c.fg == Color::Reset),
        "NO_COLOR draws no colour"
    );
    assert_snapshot!("outage_no_color_80x24", scenarios::buffer_text(&buffer));
}

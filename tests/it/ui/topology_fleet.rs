//! The topology pane at fleet size (issue 17): 1 000 data planes a cluster fold into
//! counted groups, worst first, with the failing nodes named; the zoom lists every node,
//! filtered with `/` and jumped through with `n`/`N`, all without a terminal.

use crossterm::event::KeyCode;
use kongup::kong::topology::NodeHealth;
use kongup::testkit::scenarios::{self, char_key, key, press, screen, type_text};
use kongup::ui::{ConsoleState, Theme};

/// The topology pane's rows at 80x24 (right half of the body, top).
fn topology_rows(text: &str) -> Vec<String> {
    text.lines()
        .skip(3)
        .take(10)
        .map(|line| line.chars().skip(46).collect())
        .collect()
}

fn focus_topology(state: &mut ConsoleState) {
    press(state, key(KeyCode::Tab));
    press(state, key(KeyCode::Tab));
}

#[test]
fn a_fleet_folds_into_counted_groups_worst_first_with_the_failing_named() {
    let state = scenarios::fleet(Theme::COLOUR);
    let text = screen(&state, 80, 24);
    let pane = topology_rows(&text).join("\n");
    assert!(pane.contains("DP ✖ 3 · ✔ 640 · ○ 357"), "{pane}");
    assert!(pane.contains("✖ dp-y17, dp-y412, dp-y601"), "{pane}");
    assert!(pane.contains("DP ⚠ 1 · ✔ 999"), "{pane}");
    // One row to spare at 80x24: the failed are named before the not ready.
    assert!(!pane.contains("⚠ dp-x12"), "{pane}");
    let wide = screen(&state, 160, 48);
    assert!(wide.contains("⚠ dp-x12"), "{wide}");
    assert!(wide.contains("✖ dp-y17, dp-y412, dp-y601"), "{wide}");
    // Worst first: the failed before the healthy, in the group's counts.
    let line = pane.lines().find(|l| l.contains("DP ✖")).unwrap();
    assert!(line.find('✖') < line.find('✔'), "{line}");
}

#[test]
fn names_that_do_not_fit_are_counted() {
    let mut state = scenarios::fleet(Theme::COLOUR);
    let mut snapshot = state.topology().unwrap().clone();
    for node in snapshot
        .nodes
        .iter_mut()
        .filter(|n| n.name.starts_with("dp-y1"))
    {
        node.health = NodeHealth::Unreachable("connection refused".into());
    }
    state.apply(&kongup::engine::event::Event::Topology(snapshot));
    let pane = topology_rows(&screen(&state, 80, 24)).join("\n");
    // dp-y1, dp-y10…dp-y19, dp-y100…dp-y199, dp-y1000, dp-y412, dp-y601: 114 failed.
    assert!(pane.contains("DP ✖ 114 ·"), "{pane}");
    let names = pane
        .lines()
        .find(|l| l.contains("✖ dp-y1,"))
        .expect("names");
    let more: usize = names
        .rsplit('+')
        .next()
        .and_then(|n| n.trim().trim_end_matches('│').trim().parse().ok())
        .unwrap_or_else(|| panic!("a count of the rest: {names}"));
    let named = names.matches("dp-y").count();
    assert_eq!(named + more, 114, "{names}");
}

#[test]
fn slash_on_the_topology_zooms_and_filters_as_typed_enter_keeps_esc_clears() {
    let mut state = scenarios::fleet(Theme::COLOUR);
    focus_topology(&mut state);
    press(&mut state, char_key('/'));
    assert!(state.zoomed());
    type_text(&mut state, "dp-y412");
    let text = screen(&state, 80, 24);
    assert!(text.contains("1 of 2004 nodes"), "{text}");
    assert!(text.contains("✖ dp-y412"), "{text}");
    assert!(!text.contains("dp-y17 "), "{text}");
    assert!(text.contains("⏎ keep"), "the footer while typing: {text}");

    press(&mut state, key(KeyCode::Enter));
    assert!(state.topology_filter_input().is_none());
    assert_eq!(state.topology_view().filter(), "dp-y412");
    // Kept: the keys are the main screen's again, and the list is still filtered.
    let text = screen(&state, 80, 24);
    assert!(text.contains("1 of 2004 nodes"), "{text}");

    // `/` again edits the kept filter; Esc clears it.
    press(&mut state, char_key('/'));
    press(&mut state, key(KeyCode::Esc));
    assert_eq!(state.topology_view().filter(), "");
    assert!(state.zoomed(), "Esc on the filter leaves the zoom open");
    let text = screen(&state, 80, 24);
    assert!(!text.contains("of 2004 nodes"), "{text}");
}

#[test]
fn the_filter_matches_version_role_and_state() {
    let mut state = scenarios::fleet(Theme::COLOUR);
    focus_topology(&mut state);
    press(&mut state, char_key('/'));
    type_text(&mut state, "draining");
    assert_eq!(state.topology_view().shown_nodes(), 1);
    press(&mut state, key(KeyCode::Esc));
    press(&mut state, char_key('/'));
    type_text(&mut state, "control plane");
    assert_eq!(state.topology_view().shown_nodes(), 4);
    press(&mut state, key(KeyCode::Esc));
    press(&mut state, char_key('/'));
    type_text(&mut state, "3.4.3.12");
    assert_eq!(state.topology_view().shown_nodes(), 1002);
}

#[test]
fn n_and_shift_n_jump_through_the_failing_nodes_in_the_zoom() {
    let mut state = scenarios::fleet(Theme::COLOUR);
    focus_topology(&mut state);
    press(&mut state, char_key('z'));
    let marked = |state: &ConsoleState| {
        let view = state.topology_view();
        let position = state.topology_mark().expect("a node marked");
        match view.rows()[view.shown()[position]] {
            kongup::ui::panes::topology_view::Row::Node { index, .. } => {
                view.node(index).name.clone()
            }
            other => panic!("{other:?}"),
        }
    };
    press(&mut state, char_key('n'));
    assert_eq!(marked(&state), "dp-x12");
    press(&mut state, char_key('n'));
    assert_eq!(marked(&state), "dp-y17");
    let text = screen(&state, 80, 24);
    assert!(
        text.contains("dp-y17"),
        "the marked node is in view: {text}"
    );
    // In the list's order: each control plane's data planes under it (dp-y601 is
    // cp-y1's, dp-y412 cp-y2's).
    press(&mut state, char_key('n'));
    assert_eq!(marked(&state), "dp-y601");
    press(&mut state, char_key('n'));
    assert_eq!(marked(&state), "dp-y412");
    press(&mut state, char_key('n'));
    assert_eq!(marked(&state), "dp-x12", "round to the first");
    press(&mut state, char_key('N'));
    assert_eq!(marked(&state), "dp-y412", "back round to the last");
    let text = screen(&state, 80, 24);
    assert!(text.contains("dp-y412"), "{text}");
}

#[test]
fn the_zoom_scrolls_to_its_last_node() {
    let mut state = scenarios::fleet(Theme::COLOUR);
    focus_topology(&mut state);
    press(&mut state, char_key('z'));
    let _ = screen(&state, 80, 24);
    state.set_screen(ratatui::layout::Rect::new(0, 0, 80, 24));
    press(&mut state, key(KeyCode::End));
    let text = screen(&state, 80, 24);
    assert!(text.contains("LB haproxy"), "{text}");
    assert!(text.contains("dp-y1000"), "{text}");
    press(&mut state, key(KeyCode::PageUp));
    press(&mut state, key(KeyCode::Home));
    let text = screen(&state, 80, 24);
    assert!(text.contains("X 3.4.3.12 · 1001/1002 ready"), "{text}");
}

/// Outside the topology zoom `N` is the caller's (the demo clears its faults with it).
#[test]
fn shift_n_outside_the_topology_zoom_stays_the_callers() {
    assert!(!kongup::ui::bindings::is_builtin('N'));
    assert!(!kongup::ui::bindings::is_builtin('n'));
    let state = scenarios::fleet(Theme::COLOUR);
    let outcome = kongup::ui::handle_key(&state, char_key('N'));
    assert!(outcome.ui.is_empty() && outcome.commands.is_empty());
}

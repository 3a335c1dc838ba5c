//! Issue 15, item 13: the header never cuts the plan name to repeat the versions (the
//! topology pane names each cluster's version), and the strategy fits by abbreviating
//! known words, never mid-word.

use kongup::engine::event::{Event, RunState};
use kongup::metrics::Verdict;
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios;

const LONG_NAME: &str = "payments-eu-west-1-kong-3-10-upgrade";

fn with_name(name: &str) -> ConsoleState {
    let mut plan = plan();
    plan.name = name.into();
    let expanded = expanded();
    let mut state = ConsoleState::new(
        &plan,
        &expanded,
        t0(),
        Theme::NO_COLOUR,
        previewer(&plan, &expanded),
    );
    state.set_now(at(3));
    state.apply(&Event::RunChanged(RunState::Waiting));
    state
}

fn header(state: &ConsoleState, width: u16, height: u16) -> String {
    let screen = scenarios::screen(state, width, height);
    screen.lines().next().unwrap_or_default().to_string()
}

/// Every word of the header's strategy is a whole one: the plan's words or their known
/// abbreviations.
fn assert_whole_words(row: &str) {
    assert!(!row.contains('…'), "something was cut: {row:?}");
    for word in ["dual-cl", "rol", "hyb"] {
        for (at, _) in row.match_indices(word) {
            let rest = &row[at..];
            let whole = ["dual-cluster", "dual", "rolling", "hybrid"]
                .iter()
                .any(|w| rest.starts_with(w));
            assert!(whole, "a word cut at {at}: {row:?}");
        }
    }
}

#[test]
fn a_long_plan_name_is_whole_at_80x24_and_the_versions_give_way() {
    let state = with_name(LONG_NAME);
    let row = header(&state, 80, 24);
    assert!(row.contains(LONG_NAME), "the name was cut: {row:?}");
    assert_whole_words(&row);
    assert!(row.contains("CP dual"), "the strategy is said: {row:?}");
    // With room, everything is said in full.
    let row = header(&state, 160, 48);
    assert!(
        row.contains(&format!(
            "{LONG_NAME} 3.4.3.12 → 3.10.0.1 · hybrid: CP dual-cluster, DP rolling"
        )),
        "{row:?}"
    );
}

#[test]
fn beside_an_alert_the_name_stays_whole_and_the_strategy_is_abbreviated() {
    let mut state = with_name(LONG_NAME);
    state.apply(&gate(
        60,
        Verdict::Fail,
        3,
        &["Y 5xx 26.60% > 1.00%: BREACH"],
    ));
    let row = header(&state, 80, 24);
    assert!(row.contains("✖ GATE BREACHED"), "{row:?}");
    assert!(row.contains(LONG_NAME), "the name was cut: {row:?}");
    assert_whole_words(&row);
}

#[test]
fn the_short_name_keeps_its_versions_at_80x24() {
    let state = with_name(PLAN_NAME);
    let row = header(&state, 80, 24);
    assert!(
        row.contains("prod-eu-hybrid 3.4.3.12 → 3.10.0.1"),
        "{row:?}"
    );
    assert_whole_words(&row);
}

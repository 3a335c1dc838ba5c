//! The checklist's wave row (issue 17): each wave one row with its progress, counted from
//! the engine's node outcomes; → lists the wave's nodes worst first, ← and Esc fold; all
//! without a terminal.

use crossterm::event::KeyCode;
use kongup::engine::event::{Event, StepState};
use kongup::plan::steps::{PhaseName, StepRef};
use kongup::testkit::hybrid::{at, changed, previewer, t0};
use kongup::testkit::scenarios::{self, apply_all, char_key, key, press, screen};
use kongup::ui::{ConsoleState, Theme};

fn dp(id: &str) -> StepRef {
    StepRef::new(PhaseName::DataPlane, id)
}

fn outcome(step: &str, node: &str, failed: Option<&str>) -> Event {
    Event::NodeOutcome {
        step: dp(step),
        node: node.into(),
        failed: failed.map(String::from),
    }
}

/// The checklist's rows at 80x24 (left column, inside the border).
fn checklist(text: &str) -> String {
    text.lines()
        .skip(3)
        .take(8)
        .map(|line| line.chars().skip(1).take(44).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_wave_row_counts_the_y_nodes_up_and_the_failed() {
    let state = scenarios::wave_failed(Theme::COLOUR);
    let progress = state.wave_progress(2).expect("wave 2");
    assert_eq!((progress.up, progress.y_nodes, progress.failed), (3, 5, 2));
    assert_eq!(progress.state, StepState::Failed);
    let rows = checklist(&screen(&state, 80, 24));
    assert!(
        rows.contains("✖  wave 2/4 · 3/5 up · 2 failed    [failed]"),
        "{rows}"
    );
    let wide = screen(&state, 160, 48);
    assert!(
        wide.contains("wave 2/4 · 3/5 nodes up · 2 failed"),
        "{wide}"
    );
    // The other waves: one row each, their steps folded away.
    assert!(
        rows.contains("✔  wave 1/4 · 5/5 nodes up           [done]"),
        "{rows}"
    );
    assert!(!rows.contains("staging"), "{rows}");
}

#[test]
fn right_lists_the_waves_nodes_failed_first_left_and_esc_fold() {
    let mut state = scenarios::wave_failed(Theme::COLOUR);
    press(&mut state, key(KeyCode::Right));
    assert_eq!(state.expanded_wave(), Some(2));
    let rows = checklist(&screen(&state, 80, 24));
    let failed_8 = rows.find("✖ dp-y-8 ").expect("dp-y-8 listed");
    let failed_10 = rows.find("✖ dp-y-10").expect("dp-y-10 listed");
    let more = rows
        .find("… 8 more, none failed")
        .expect("the rest counted");
    assert!(failed_8 < failed_10 && failed_10 < more, "{rows}");
    let wide = screen(&state, 160, 48);
    for row in ["○ dp-x-6   to stop", "✔ dp-y-6   up"] {
        assert!(wide.contains(row), "{row}: {wide}");
    }
    assert!(wide.find("✖ dp-y-10").unwrap() < wide.find("○ dp-x-6").unwrap());

    press(&mut state, key(KeyCode::Left));
    assert_eq!(state.expanded_wave(), None);
    press(&mut state, key(KeyCode::Right));
    press(&mut state, key(KeyCode::Esc));
    assert_eq!(state.expanded_wave(), None);
    assert!(!screen(&state, 80, 24).contains("dp-y-8 "));
}

#[test]
fn leaving_the_wave_folds_it_and_right_off_a_wave_says_why() {
    let mut state = scenarios::wave_failed(Theme::COLOUR);
    press(&mut state, key(KeyCode::Right));
    // Up past the wave's first step: out of wave 2, which folds and stays folded.
    press(&mut state, char_key('k'));
    press(&mut state, char_key('j'));
    assert_eq!(state.expanded_wave(), None);
    // The steps before the waves are no wave's.
    for _ in 0..20 {
        press(&mut state, char_key('k'));
    }
    press(&mut state, key(KeyCode::Right));
    assert_eq!(state.expanded_wave(), None);
    let flash = state.flash_message().expect("a word on why").text.clone();
    assert!(flash.contains("select a step of a wave"), "{flash}");
}

#[test]
fn the_footer_offers_the_nodes_then_the_fold() {
    let mut state = scenarios::wave_failed(Theme::COLOUR);
    assert!(screen(&state, 80, 24).contains("→ nodes"));
    press(&mut state, key(KeyCode::Right));
    let text = screen(&state, 80, 24);
    assert!(
        text.contains("← fold") && !text.contains("→ nodes"),
        "{text}"
    );
}

/// A retry goes on from the nodes done, as the engine does; a fresh start of the step (a
/// rollback, then the wave again) begins with none.
#[test]
fn a_retry_keeps_the_nodes_done_and_a_fresh_start_forgets_them() {
    let mut state = scenarios::wave_failed(Theme::COLOUR);
    state.apply(&changed(dp("wave-2-start-y"), StepState::Running));
    assert_eq!(state.wave_progress(2).unwrap().up, 3);
    apply_all(
        &mut state,
        &[
            outcome("wave-2-start-y", "dp-y-8", None),
            outcome("wave-2-start-y", "dp-y-10", None),
        ],
    );
    let progress = state.wave_progress(2).unwrap();
    assert_eq!((progress.up, progress.failed), (5, 0));

    state.apply(&changed(dp("wave-2-start-y"), StepState::Succeeded));
    state.apply(&changed(dp("wave-2-start-y"), StepState::RolledBack));
    state.apply(&changed(dp("wave-2-start-y"), StepState::Ready));
    state.apply(&changed(dp("wave-2-start-y"), StepState::Running));
    assert_eq!(state.wave_progress(2).unwrap().up, 0);
}

/// A failed stop of one of the wave's X nodes counts as failed, not as a node up.
#[test]
fn a_failed_stop_counts_among_the_failed() {
    let mut state = scenarios::wave_running(Theme::COLOUR);
    state.apply(&outcome(
        "wave-1-stop-x",
        "dp-x-3",
        Some("still answers after 2m"),
    ));
    let progress = state.wave_progress(1).unwrap();
    assert_eq!((progress.up, progress.failed), (5, 1));
}

/// At fleet size: 1 000 data planes a side in four waves ([1, 5%, 25%, 100%]), wave 3
/// starting 200 with 197 up and 3 failed. The row fits 80 columns in its short form;
/// expanded, the three failed come first.
#[test]
fn at_fleet_size_the_row_fits_80_columns_and_the_failed_come_first() {
    let loaded = kongup::testkit::fleet::fleet_plan(1000);
    let (plan, expanded) = (loaded.plan, loaded.expanded);
    let mut state = ConsoleState::new(
        &plan,
        &expanded,
        t0(),
        Theme::COLOUR,
        previewer(&plan, &expanded),
    );
    state.set_now(at(3));
    apply_all(
        &mut state,
        &kongup::testkit::hybrid::start_events(&expanded),
    );
    state.apply(&changed(dp("wave-3-start-y"), StepState::Running));
    let failed = [120, 201, 77];
    for i in 51..=250 {
        let why = failed.contains(&i).then_some("exit status 1");
        state.apply(&outcome("wave-3-start-y", &format!("dp-y-{i}"), why));
    }
    state.apply(&changed(dp("wave-3-start-y"), StepState::Failed));
    let progress = state.wave_progress(3).unwrap();
    assert_eq!(
        (progress.up, progress.y_nodes, progress.failed),
        (197, 200, 3)
    );
    let rows = checklist(&screen(&state, 80, 24));
    assert!(rows.contains("w3/4 197/200 up ✖3"), "{rows}");
    press(&mut state, key(KeyCode::Right));
    let failed_listed = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once("✖ dp-").map(|(_, rest)| rest))
            .map(|rest| format!("dp-{}", rest.split_whitespace().next().unwrap_or_default()))
            .collect()
    };
    // Three rows for nodes under the wave's row and steps at 80x24: the failed first,
    // and the one that did not fit counted as failed.
    let rows = checklist(&screen(&state, 80, 24));
    assert_eq!(failed_listed(&rows), ["dp-y-77", "dp-y-120"], "{rows}");
    assert!(rows.contains("… 398 more, 1 of them failed"), "{rows}");
    let wide = screen(&state, 160, 48);
    assert_eq!(
        failed_listed(&wide),
        ["dp-y-77", "dp-y-120", "dp-y-201"],
        "{wide}"
    );
    assert!(wide.contains("more, none failed"), "{wide}");
}

/// A wave node step with no command of its own (only the readiness wait) journals no
/// outcome for the nodes that passed: once it succeeded, its nodes count as up, not 0/N.
#[test]
fn a_wave_start_done_without_node_outcomes_counts_its_nodes_up() {
    let mut state = scenarios::wave_running(Theme::COLOUR);
    state.apply(&changed(dp("wave-2-start-y"), StepState::Succeeded));
    let progress = state.wave_progress(2).expect("wave 2");
    assert_eq!((progress.up, progress.y_nodes, progress.failed), (5, 5, 0));
    let progress = state.wave_progress(3).expect("wave 3");
    assert_eq!((progress.up, progress.failed), (0, 0), "wave 3 not started");
}

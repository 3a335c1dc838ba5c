//! Issue 15, item 11: the logs at 80x24. A gate that keeps breaching is one line that
//! updates, not a screenful of the same; `g`/Home shows the first entry and `G`/End the
//! last (following again); a pane scrolled up fills its rows.

use crossterm::event::KeyCode;
use kongup::engine::event::LogStream;
use kongup::metrics::Verdict;
use kongup::ui::layout;
use kongup::ui::state::Pane;
use kongup::ui::{ConsoleState, Theme};
use ratatui::layout::{Margin, Rect};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, char_key, key, press};

fn breaching(state: &mut ConsoleState, from: i64, times: usize) {
    for i in 0..times {
        let secs = from + 5 * i as i64;
        let ratio = format!("Y 5xx {:.2}% > 1.00%: BREACH", 20.0 + i as f64 * 0.6);
        state.apply(&gate(
            secs,
            Verdict::Fail,
            3 + i as u32,
            &[&ratio, "Y p99 162.0 ms ≤ 500.0 ms: ok"],
        ));
        // The step's own output goes on between the verdicts.
        state.apply(&log(secs, "traffic-50", LogStream::Stdout, "baking"));
    }
}

fn gate_lines(state: &ConsoleState) -> Vec<String> {
    state
        .logs()
        .iter()
        .filter(|e| e.text.contains("gate BREACHED"))
        .map(|e| e.text.clone())
        .collect()
}

#[test]
fn a_gate_breaching_again_and_again_is_one_line_that_updates() {
    let mut state = scenarios::awaiting_confirmation(Theme::NO_COLOUR);
    breaching(&mut state, 400, 12);
    let lines = gate_lines(&state);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("×12 · latest: Y 5xx 26.60% > 1.00%"),
        "{}",
        lines[0]
    );
    // The passing check is not the news.
    assert!(!lines[0].contains("p99"), "{}", lines[0]);
    // It is the newest gate news, so it is at the bottom of a following pane.
    let screen = scenarios::screen(&state, 80, 24);
    assert!(screen.contains("×12 · latest"), "{screen}");
}

#[test]
fn a_new_breach_after_the_gate_passed_again_is_a_new_line() {
    let mut state = scenarios::awaiting_confirmation(Theme::NO_COLOUR);
    state.apply(&traffic(50));
    breaching(&mut state, 400, 3);
    state.apply(&gate(470, Verdict::Pass, 0, &["Y 5xx 0.20% ≤ 1.00%: ok"]));
    breaching(&mut state, 480, 2);
    let lines = gate_lines(&state);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("×3"), "{lines:#?}");
    assert!(lines[1].contains("×2"), "{lines:#?}");
}

/// The logs pane's rows at 80x24, inside its border.
fn logs_rows(state: &ConsoleState) -> Vec<String> {
    let area = Rect::new(0, 0, 80, 24);
    let pane = layout::screen(area).unwrap().logs.inner(Margin::new(1, 1));
    let buffer = scenarios::draw(state, 80, 24);
    (pane.y..pane.bottom())
        .map(|y| {
            (pane.x..pane.right())
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

fn with_many_lines() -> ConsoleState {
    let mut state = scenarios::awaiting_confirmation(Theme::NO_COLOUR);
    for i in 0..40 {
        state.apply(&log(
            400 + i,
            "deploy-y",
            LogStream::Stdout,
            &format!("line {i:02}"),
        ));
    }
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Logs);
    // The pane was drawn once, as the console loop does before any key.
    let buffer = scenarios::draw(&state, 80, 24);
    state.set_screen(buffer.area);
    state
}

#[test]
fn g_shows_the_first_entry_on_a_full_pane_and_g_follows_again() {
    for top in [char_key('g'), key(KeyCode::Home)] {
        let mut state = with_many_lines();
        let first = state.logs().front().unwrap().text.clone();
        // Its first row: the entry wraps at 80x24.
        let first_words = first.split(' ').take(3).collect::<Vec<_>>().join(" ");
        press(&mut state, top);
        let rows = logs_rows(&state);
        assert!(
            rows[0].contains(&first_words),
            "the first entry on top: {rows:#?}"
        );
        assert!(
            rows.iter().all(|r| !r.is_empty()),
            "a scrolled pane fills its rows: {rows:#?}"
        );
        assert!(!state.log_follow());
        // One row down from the top moves the pane at once (no keys lost past the top).
        let before = logs_rows(&state);
        press(&mut state, key(KeyCode::Down));
        assert_ne!(logs_rows(&state), before, "Down after g moved nothing");

        for bottom in [char_key('G'), key(KeyCode::End)] {
            let mut state = state.clone();
            press(&mut state, bottom);
            assert!(state.log_follow());
            let rows = logs_rows(&state);
            assert!(rows.last().unwrap().contains("line 39"), "{rows:#?}");
        }
    }
}

#[test]
fn scrolled_up_a_page_the_pane_has_no_blank_rows() {
    let mut state = with_many_lines();
    for _ in 0..6 {
        press(&mut state, key(KeyCode::PageUp));
        let rows = logs_rows(&state);
        assert!(rows.iter().all(|r| !r.is_empty()), "{rows:#?}");
    }
}

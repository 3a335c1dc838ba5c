//! Issue 15, item 6: a message in the footer belongs to the moment. A refusal or hint
//! stays until the next key or the next change of the run or a step, and never outlives
//! the dialog it was about.

use crossterm::event::KeyCode;
use kongup::engine::event::{Event, RunState, StepState};
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, char_key, key, press};

fn flashed(state: &ConsoleState) -> Option<String> {
    state.flash_message().map(|f| f.text.clone())
}

fn footer(state: &ConsoleState) -> String {
    let screen = scenarios::screen(state, 80, 24);
    screen.lines().last().unwrap_or_default().to_string()
}

#[test]
fn the_plan_name_hint_goes_with_its_dialog() {
    let mut state = scenarios::irreversible_modal(Theme::COLOUR);
    press(&mut state, key(KeyCode::Enter));
    assert!(
        footer(&state).contains("type the plan name exactly"),
        "{}",
        footer(&state)
    );
    press(&mut state, key(KeyCode::Esc));
    assert!(state.modal().is_none());
    assert_eq!(flashed(&state), None);
    assert!(
        !footer(&state).contains("plan name"),
        "the dialog is closed, its hint is not: {}",
        footer(&state)
    );
}

#[test]
fn a_refusal_stays_until_the_next_key_whatever_the_clock() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    press(&mut state, key(KeyCode::Down));
    press(&mut state, char_key('s'));
    let refusal = flashed(&state).expect("s on a pending step is refused");
    assert!(refusal.contains("restore-db is pending"), "{refusal}");
    // Nothing happens for a minute: the operator who looked away still reads why.
    state.set_now(at(400));
    assert_eq!(flashed(&state).as_deref(), Some(refusal.as_str()));
    // Any key is the next moment: the refusal is gone (a key that says nothing itself).
    press(&mut state, key(KeyCode::Up));
    assert_eq!(flashed(&state), None);
}

#[test]
fn a_refusal_is_cleared_when_the_run_or_a_step_changes() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    press(&mut state, char_key('x'));
    assert!(flashed(&state).is_some_and(|f| f.contains("nothing to abort")));
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    assert_eq!(
        flashed(&state),
        None,
        "a step started: the refusal is old news"
    );

    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    press(&mut state, char_key('x'));
    state.apply(&Event::RunChanged(RunState::Paused));
    assert_eq!(
        flashed(&state),
        None,
        "the run paused: the refusal is old news"
    );
}

#[test]
fn a_key_that_says_something_replaces_the_last_message() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    press(&mut state, char_key('x'));
    press(&mut state, char_key('m'));
    let said = flashed(&state).unwrap_or_default();
    assert!(said.contains("marked done"), "{said}");
    assert!(!said.contains("abort"), "{said}");
}

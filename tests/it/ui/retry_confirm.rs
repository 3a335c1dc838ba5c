//! `r` on a step that changes something asks first, as Enter does, and the footer never
//! says a key is doing what the engine refused (issue 15, item 4).

use chrono::TimeDelta;
use crossterm::event::KeyCode;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, StepState};
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, buffer_text, char_key, draw, key, press};

fn flashed(state: &ConsoleState) -> String {
    state
        .flash_message()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

/// `deploy-y` (it changes Y) has failed: its retry waits for the operator.
fn failed_deploy() -> ConsoleState {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    state.apply(&changed(cp("deploy-y"), StepState::Failed));
    state
}

#[test]
fn r_on_a_step_that_changes_something_opens_the_confirm_dialog_and_sends_nothing() {
    for failure in [StepState::Failed, StepState::Interrupted] {
        let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
        state.apply(&changed(cp("deploy-y"), StepState::Running));
        state.apply(&changed(cp("deploy-y"), failure));
        assert!(
            press(&mut state, char_key('r')).is_empty(),
            "nothing is retried before the dialog"
        );
        assert!(
            matches!(state.modal(), Some(Modal::Confirm { step, retry: true, .. }) if *step == cp("deploy-y")),
            "{:?}",
            state.modal()
        );
        assert!(!flashed(&state).contains("retrying"), "{}", flashed(&state));
        // Esc: nothing is sent, nothing said to be under way.
        assert!(press(&mut state, key(KeyCode::Esc)).is_empty());
        assert!(!flashed(&state).contains("retrying"), "{}", flashed(&state));
        press(&mut state, char_key('r'));
        assert_eq!(
            press(&mut state, key(KeyCode::Enter)),
            [Command::Retry {
                step: cp("deploy-y"),
                typed: None,
            }]
        );
        assert!(state.modal().is_none());
    }
}

#[test]
fn the_retry_dialog_says_it_is_a_retry() {
    let mut state = failed_deploy();
    press(&mut state, char_key('r'));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(
        screen.contains("Retry · control-plane/deploy-y"),
        "{screen}"
    );
}

#[test]
fn retrying_is_said_only_once_the_engine_starts_the_step_again() {
    let mut state = failed_deploy();
    press(&mut state, char_key('r'));
    press(&mut state, key(KeyCode::Enter));
    assert!(
        !flashed(&state).contains("retrying"),
        "sent is not started: {}",
        flashed(&state)
    );
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    assert!(
        flashed(&state).contains("retrying control-plane/deploy-y"),
        "{}",
        flashed(&state)
    );
}

#[test]
fn an_engine_refusal_stays_in_the_footer_until_the_next_key() {
    let mut state = failed_deploy();
    press(&mut state, char_key('r'));
    press(&mut state, key(KeyCode::Enter));
    let why =
        "cannot retry control-plane/deploy-y: the run is paused (gate breached); resume it first";
    state.apply(&Event::Refused(why.into()));
    assert_eq!(flashed(&state), why);
    let later = state.now() + TimeDelta::minutes(5);
    state.set_now(later);
    assert_eq!(flashed(&state), why, "a refusal does not time out");
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(
        screen.contains("cannot retry control-plane/deploy-y"),
        "{screen}"
    );
    press(&mut state, key(KeyCode::Down));
    assert!(
        !flashed(&state).contains("cannot retry"),
        "{}",
        flashed(&state)
    );
}

#[test]
fn r_retries_a_step_that_changes_nothing_at_once() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    state.apply(&changed(cp("preflight"), StepState::Running));
    state.apply(&changed(cp("preflight"), StepState::Failed));
    while state.selected().map(|(s, _, _)| s.clone()) != Some(cp("preflight")) {
        press(&mut state, key(KeyCode::Up));
    }
    assert_eq!(
        press(&mut state, char_key('r')),
        [Command::Retry {
            step: cp("preflight"),
            typed: None,
        }]
    );
    assert!(!flashed(&state).contains("retrying"), "{}", flashed(&state));
}

#[test]
fn a_key_the_console_refuses_says_why_until_the_next_key() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    assert!(press(&mut state, char_key('r')).is_empty());
    let why = flashed(&state);
    assert!(
        why.contains("only a failed or interrupted step can be retried")
            && !why.contains("retrying"),
        "{why}"
    );
    let later = state.now() + TimeDelta::minutes(5);
    state.set_now(later);
    assert_eq!(flashed(&state), why, "a refusal does not time out");
    press(&mut state, key(KeyCode::Down));
    assert_eq!(flashed(&state), "");
}

/// The retry of a wave's node step that failed on some nodes names them: the retry runs
/// only there (issue 17).
#[test]
fn the_retry_of_a_wave_step_names_the_nodes_that_failed() {
    use kongup::plan::load::load_plan;
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_plan(&crate::demo::waves::fleet_plan().write(dir.path())).unwrap();
    let (plan, expanded) = (loaded.plan, loaded.expanded);
    let mut state = ConsoleState::new(
        &plan,
        &expanded,
        t0(),
        Theme::COLOUR,
        previewer(&plan, &expanded),
    );
    for event in start_events(&expanded) {
        state.apply(&event);
    }
    let wave_2 = dp("wave-2-start-y");
    let before: Vec<_> = expanded
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().map(move |s| step_ref(p.name, &s.id)))
        .take_while(|s| *s != wave_2)
        .collect();
    for event in complete(&before, 10) {
        state.apply(&event);
    }
    state.apply(&changed(wave_2.clone(), StepState::Running));
    state.apply(&Event::StepChanged {
        step: wave_2.clone(),
        state: StepState::Failed,
        detail: Some(
            "1 of 3 nodes failed: dp-y-3 (exit status 1). A retry runs the commands only on \
             the failed nodes; the 2 done are not run again"
                .into(),
        ),
    });
    state.apply(&Event::RunChanged(kongup::engine::event::RunState::Failed));
    press(&mut state, char_key('r'));
    assert!(
        matches!(state.modal(), Some(Modal::Confirm { step, retry: true, .. }) if *step == wave_2),
        "{:?}",
        state.modal()
    );
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(screen.contains("1 of 3 nodes failed: dp-y-3"), "{screen}");
    assert!(screen.contains("only on"), "{screen}");
}

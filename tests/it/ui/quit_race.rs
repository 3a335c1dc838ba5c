//! `q` right after a confirm (before the engine has said the step runs): the step counts as
//! running from the confirm on, so `q` opens the quit dialog rather than quitting at once
//! and leaving the operator on a blank screen while the step runs.

use crossterm::event::KeyCode;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, RunState, StepState};
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Theme, handle_key};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, char_key, key, press};

/// Deploying Y confirmed: the Confirm is sent, the engine has not answered.
fn just_confirmed() -> ConsoleState {
    let mut state = scenarios::confirm_modal(Theme::COLOUR);
    let sent = press(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(&sent[..], [Command::Confirm { step, .. }] if *step == cp("deploy-y")),
        "{sent:?}"
    );
    state
}

#[test]
fn q_at_once_after_a_confirm_opens_the_quit_dialog() {
    let mut state = just_confirmed();
    let outcome = handle_key(&state, char_key('q'));
    assert!(
        outcome.commands.is_empty() && !outcome.exits(),
        "q before the engine answered quit at once: {:?}",
        outcome.commands
    );
    press(&mut state, char_key('q'));
    assert!(
        matches!(state.modal(), Some(Modal::QuitWhileRunning { step }) if *step == cp("deploy-y")),
        "{:?}",
        state.modal()
    );
    // The engine's answer, the step running, keeps the dialog open.
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    state.apply(&Event::RunChanged(RunState::Running));
    assert!(matches!(
        state.modal(),
        Some(Modal::QuitWhileRunning { .. })
    ));
}

#[test]
fn a_refused_confirm_no_longer_counts_as_running() {
    let mut state = just_confirmed();
    state.apply(&Event::Refused(
        "cannot confirm deploy-y: the run is paused".into(),
    ));
    let outcome = handle_key(&state, char_key('q'));
    assert_eq!(outcome.commands, [Command::Quit]);
    assert!(outcome.exits());
}

#[test]
fn a_step_that_failed_at_once_no_longer_counts_as_running() {
    let mut state = just_confirmed();
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    state.apply(&changed(cp("deploy-y"), StepState::Failed));
    let outcome = handle_key(&state, char_key('q'));
    assert_eq!(outcome.commands, [Command::Quit]);
}

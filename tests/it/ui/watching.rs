//! A watcher's console (`kongup watch`): read-only keys, who drives, the driver gone; and the
//! driver's dialog when another kongup asks to take the run over.

use crossterm::event::KeyCode;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, SessionEvent};
use kongup::engine::lock::LockHolder;
use kongup::ui::state::{Modal, Pane};
use kongup::ui::{ConsoleState, Theme, UiAction, handle_key};

use kongup::testkit::scenarios::{self, char_key, key, press};

fn flashed(state: &ConsoleState) -> String {
    state
        .flash_message()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

fn watching() -> ConsoleState {
    scenarios::watching(Theme::COLOUR)
}

#[test]
fn the_keys_that_change_the_run_only_say_who_drives_it() {
    let mut state = watching();
    for key in [
        key(KeyCode::Enter),
        char_key('c'),
        char_key('s'),
        char_key('r'),
        char_key('m'),
        char_key('p'),
        char_key('x'),
        char_key('t'),
        char_key('R'),
    ] {
        let outcome = handle_key(&state, key);
        assert!(outcome.commands.is_empty(), "{key:?}: {outcome:?}");
        assert!(
            !outcome.ui.iter().any(|a| matches!(a, UiAction::Open(_))),
            "{key:?} opens no dialog: {outcome:?}"
        );
        assert!(press(&mut state, key).is_empty());
        assert_eq!(flashed(&state), "read-only: alice@ops1 drives this run");
        assert!(state.modal().is_none());
    }
}

#[test]
fn the_rest_works_and_q_leaves_without_a_word_to_the_driver() {
    let mut state = watching();
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Logs);
    press(&mut state, char_key('z'));
    assert!(state.zoomed());
    press(&mut state, char_key('?'));
    assert!(matches!(state.modal(), Some(Modal::Help)));
    press(&mut state, key(KeyCode::Esc));
    let outcome = handle_key(&state, char_key('q'));
    assert!(outcome.commands.is_empty(), "{outcome:?}");
    assert!(outcome.exits());
    // The rollback dialog shows the plan, but confirms nothing.
    state.apply(&Event::RollbackProgress(
        kongup::engine::event::RollbackProgress::Planned {
            steps: vec![],
            note: None,
        },
    ));
    if matches!(state.modal(), Some(Modal::Rollback)) {
        assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
        assert!(flashed(&state).starts_with("read-only:"));
    }
}

#[test]
fn the_footer_offers_no_key_that_changes_the_run() {
    let state = watching();
    let hints = kongup::ui::panes::footer::hints(&state);
    let words: Vec<&str> = hints.iter().map(|(_, w)| *w).collect();
    assert!(
        !words.contains(&"confirm") && !words.contains(&"rollback"),
        "{words:?}"
    );
    assert!(
        words.contains(&"quit") && words.contains(&"help"),
        "{words:?}"
    );
}

#[test]
fn a_driver_that_stops_is_said_and_taking_over_offered() {
    let mut state = watching();
    state.apply(&Event::Session(SessionEvent::Driver(None)));
    let text = flashed(&state);
    assert!(
        text.contains("alice@ops1 stopped driving this run")
            && text.contains("kongup run PLAN --journal"),
        "{text}"
    );
    assert!(state.watching().unwrap().driver.is_none());
    press(&mut state, key(KeyCode::Enter));
    assert!(flashed(&state).contains("nobody drives this run now"));
    state.apply(&Event::Session(SessionEvent::Driver(Some(LockHolder {
        operator: "bob@ops2".into(),
        pid: 7,
        since: chrono::Utc::now(),
    }))));
    press(&mut state, key(KeyCode::Enter));
    assert_eq!(flashed(&state), "read-only: bob@ops2 drives this run");
}

#[test]
fn the_driver_hands_over_with_y_and_keeps_the_run_with_n() {
    let mut state = scenarios::handover_modal(Theme::COLOUR);
    assert!(matches!(state.modal(), Some(Modal::Handover { by, .. }) if by == "bob@ops2"));
    let outcome = handle_key(&state, char_key('y'));
    assert_eq!(outcome.commands, [Command::HandOver]);
    assert!(outcome.exits(), "handing over leaves as quitting does");

    assert_eq!(press(&mut state, char_key('n')), [Command::KeepRun]);
    assert!(state.modal().is_none());
    // The request closed (lapsed, withdrawn) closes the dialog.
    let mut state = scenarios::handover_modal(Theme::COLOUR);
    state.apply(&Event::Session(SessionEvent::HandoverClosed(
        "the run was not handed over to bob@ops2: the request lapsed".into(),
    )));
    assert!(state.modal().is_none());
}

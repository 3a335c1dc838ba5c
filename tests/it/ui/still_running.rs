//! An interrupted step whose command still runs after kongup stopped (issue 14 item 1): the
//! console says so on its row, offers only waiting for it or killing it (asked first), and
//! frees the step once the engine says nothing of it runs any more.

use crossterm::event::KeyCode;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, StepState};
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, buffer_text, char_key, draw, key, press};

fn still_running() -> ConsoleState {
    scenarios::still_running(Theme::COLOUR)
}

fn flashed(state: &ConsoleState) -> String {
    state
        .flash_message()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

fn footer_words(state: &ConsoleState) -> Vec<&'static str> {
    kongup::ui::panes::footer::hints(state)
        .into_iter()
        .map(|(_, words)| words)
        .collect()
}

#[test]
fn its_row_says_still_running_and_the_footer_offers_wait_or_kill_only() {
    let state = still_running();
    assert_eq!(
        state.selected().map(|(step, _, _)| step.clone()),
        Some(cp("deploy-y")),
        "the step that still runs is selected"
    );
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(screen.contains("[still running]"), "{screen}");
    let words = footer_words(&state);
    assert!(
        words.contains(&"wait or kill") && words.contains(&"kill"),
        "{words:?}"
    );
    assert!(
        !words.contains(&"retry") && !words.contains(&"mark done") && !words.contains(&"skip"),
        "{words:?}"
    );
}

#[test]
fn r_m_and_s_open_the_wait_or_kill_dialog_and_send_nothing() {
    for pressed in ['r', 'm', 's'] {
        let mut state = still_running();
        assert!(press(&mut state, char_key(pressed)).is_empty(), "{pressed}");
        assert!(
            matches!(state.modal(), Some(Modal::StillRunning { step, kill: false }) if *step == cp("deploy-y")),
            "{pressed}: {:?}",
            state.modal()
        );
        let screen = buffer_text(&draw(&state, 80, 24));
        assert!(
            screen.contains("pid 12180") && screen.contains("wait for it"),
            "{screen}"
        );
        // Waiting closes the dialog and sends nothing: the engine records the end.
        assert!(press(&mut state, char_key('w')).is_empty());
        assert!(state.modal().is_none());
        assert!(
            flashed(&state).contains("waiting for"),
            "{}",
            flashed(&state)
        );
    }
}

#[test]
fn a_kill_is_asked_once_more_and_sent_only_on_y() {
    // From the dialog (x), and from the main screen (x on the selected step).
    for keys in [&['r', 'x'][..], &['x'][..]] {
        let mut state = still_running();
        for &k in keys {
            assert!(press(&mut state, char_key(k)).is_empty(), "{keys:?}");
        }
        assert!(
            matches!(state.modal(), Some(Modal::StillRunning { step, kill: true }) if *step == cp("deploy-y")),
            "{keys:?}: {:?}",
            state.modal()
        );
        let screen = buffer_text(&draw(&state, 80, 24));
        assert!(screen.contains("SIGTERM"), "{screen}");
        let mut declined = state.clone();
        assert!(press(&mut declined, key(KeyCode::Esc)).is_empty());
        assert!(declined.modal().is_none());
        assert_eq!(
            press(&mut state, char_key('y')),
            [Command::Kill {
                step: cp("deploy-y")
            }]
        );
        assert!(state.modal().is_none());
    }
}

#[test]
fn once_nothing_runs_the_dialog_closes_and_r_retries() {
    let mut state = still_running();
    press(&mut state, char_key('r'));
    state.apply(&Event::StillRunning {
        step: cp("deploy-y"),
        what: None,
    });
    assert!(state.modal().is_none(), "a stale dialog is closed");
    state.apply(&Event::StepChanged {
        step: cp("deploy-y"),
        state: StepState::Interrupted,
        detail: Some("its command `ansible-playbook` then ended: exit status 0".into()),
    });
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(!screen.contains("[still running]"), "{screen}");
    assert!(footer_words(&state).contains(&"retry"));
    press(&mut state, char_key('r'));
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Retry {
            step: cp("deploy-y"),
            typed: None
        }]
    );
}

#[test]
fn killing_kong_migrations_says_what_it_risks() {
    let mut state = still_running();
    let what = "`kong migrations up` is still running since 02:06 UTC, pid 12181 on local";
    state.apply(&Event::StillRunning {
        step: cp("migrations-up"),
        what: Some(what.into()),
    });
    state.apply(&Event::StepChanged {
        step: cp("migrations-up"),
        state: StepState::Interrupted,
        detail: None,
    });
    assert_eq!(
        state.selected().map(|(step, _, _)| step.clone()),
        Some(cp("migrations-up")),
        "the step found still running is selected"
    );
    assert!(press(&mut state, char_key('x')).is_empty());
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(
        screen.contains("half-migrated") && screen.contains("--lock-timeout"),
        "{screen}"
    );
    // Another step's command says nothing of the kind.
    let mut state = still_running();
    press(&mut state, char_key('x'));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(!screen.contains("half-migrated"), "{screen}");
}

//! The console's hook for keys of its caller's (the demo binds the lab's faults): they run
//! their action from the main screen, show in the help, and cannot take a built-in key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kongup::demo::{demo_plan_text, pacing_for_speed};
use kongup::engine::Command;
use kongup::plan::load::parse_plan;
use kongup::sim::Scenario;
use kongup::ui::{ConsoleState, ExtraKey, Previewer, Theme, UiAction, handle_key};

fn press(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn counting_key(key: char, count: &Arc<AtomicUsize>) -> ExtraKey {
    let count = count.clone();
    ExtraKey {
        key,
        label: format!("count with {key}"),
        action: Arc::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
            format!("{key} pressed")
        }),
    }
}

#[test]
fn extra_keys_run_their_action_are_listed_and_leave_built_in_keys_alone() {
    let text = demo_plan_text(Scenario::Hybrid, None, &pacing_for_speed(1.0)).unwrap();
    let loaded = parse_plan(&text, "plan.yaml").unwrap();
    let mut state = ConsoleState::new(
        &loaded.plan,
        &loaded.expanded,
        Utc::now(),
        Theme::COLOUR,
        Previewer::new(|_| None),
    );
    let pressed = Arc::new(AtomicUsize::new(0));
    state.set_extra_keys(vec![
        counting_key('E', &pressed),
        counting_key('q', &pressed),
    ]);

    let outcome = handle_key(&state, press('E'));
    assert!(outcome.commands.is_empty());
    assert!(matches!(outcome.ui.as_slice(), [UiAction::RunExtra('E')]));
    assert_eq!(state.run_extra_key('E').as_deref(), Some("E pressed"));
    assert_eq!(pressed.load(Ordering::SeqCst), 1);

    // `q` stays the console's: it quits, and no caller's action runs.
    let quit = handle_key(&state, press('q'));
    assert_eq!(quit.commands, [Command::Quit]);
    assert_eq!(state.run_extra_key('q'), None);
    assert_eq!(pressed.load(Ordering::SeqCst), 1);

    let help = state.help_lines();
    assert!(help.contains(&("E".to_string(), "count with E".to_string())));
    assert!(!help.iter().any(|(_, words)| words == "count with q"));

    // With a dialog open the key belongs to the dialog.
    for action in handle_key(&state, press('?')).ui {
        state.apply_ui(action);
    }
    assert!(state.modal().is_some());
    let in_help = handle_key(&state, press('E'));
    assert!(
        !in_help
            .ui
            .iter()
            .any(|a| matches!(a, UiAction::RunExtra(_)))
    );
}

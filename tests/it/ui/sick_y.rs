//! The confirm of a traffic stage onto a Y found unfit says which node and why, and runs
//! only with the override word typed (issue 15, item 1).

use crossterm::event::KeyCode;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, StepState};
use kongup::engine::health::OVERRIDE_WORD;
use kongup::kong::topology::NodeHealth;
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, buffer_text, char_key, draw, key, press, type_text};

fn sick() -> ConsoleState {
    scenarios::sick_y_confirm(Theme::COLOUR)
}

#[test]
fn the_confirm_names_the_crashed_node_and_why_at_80x24() {
    let state = sick();
    assert!(matches!(state.modal(), Some(Modal::Confirm { .. })));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(screen.contains("Y is not fit for more traffic"), "{screen}");
    assert!(screen.contains("Y node dp-y2 does not answer"), "{screen}");
    assert!(
        screen.contains(&format!("Type {OVERRIDE_WORD}")),
        "{screen}"
    );
}

#[test]
fn enter_y_and_c_do_not_confirm_until_the_override_word_is_typed() {
    let mut state = sick();
    for k in [key(KeyCode::Enter), char_key('y'), char_key('c')] {
        assert!(press(&mut state, k).is_empty(), "{k:?}");
    }
    assert!(state.modal().is_some(), "letters are typed, not keys");
    // "yc" went into the field: clear it, then type the word.
    press(&mut state, key(KeyCode::Backspace));
    press(&mut state, key(KeyCode::Backspace));
    type_text(&mut state, OVERRIDE_WORD);
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Confirm {
            step: cp("traffic-10"),
            typed: Some(OVERRIDE_WORD.into()),
        }]
    );
    assert!(state.modal().is_none());
}

#[test]
fn a_fit_y_is_confirmed_with_enter_as_before() {
    let mut state = sick();
    press(&mut state, key(KeyCode::Esc));
    state.apply(&topology(Some("3.10.0.1"), NodeHealth::Ready));
    press(&mut state, key(KeyCode::Enter));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(!screen.contains("not fit"), "{screen}");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Confirm {
            step: cp("traffic-10"),
            typed: None,
        }]
    );
}

#[test]
fn a_step_that_sends_y_nothing_more_is_not_held_by_y_health() {
    let mut state = sick();
    press(&mut state, key(KeyCode::Esc));
    // The stage ran and failed at Y 10%; a retry asks the same split again.
    state.apply(&changed(cp("traffic-10"), StepState::Running));
    state.apply(&Event::TrafficChanged {
        requested: kongup::lb::Split::to_y(10),
        applied: None,
    });
    state.apply(&changed(cp("traffic-10"), StepState::Failed));
    // The watcher looks again after the failure: dp-y2 still down.
    state.set_now(at(700));
    state.apply(&Event::Topology(crashed_dp_y2(&state, 700)));
    press(&mut state, char_key('r'));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(!screen.contains("not fit"), "{screen}");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Retry {
            step: cp("traffic-10"),
            typed: None,
        }]
    );
}

#[test]
fn a_look_at_y_from_before_the_last_step_ended_holds_nothing() {
    let mut state = sick();
    press(&mut state, key(KeyCode::Esc));
    // The next stage's turn comes after this one ended at 700; the last look is from 650.
    state.set_now(at(650));
    state.apply(&Event::Topology(crashed_dp_y2(&state, 650)));
    state.apply(&changed(cp("traffic-10"), StepState::Running));
    state.set_now(at(700));
    state.apply(&changed(cp("traffic-10"), StepState::Succeeded));
    state.apply(&changed(cp("traffic-50"), StepState::Ready));
    press(&mut state, key(KeyCode::Enter));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(!screen.contains("not fit"), "{screen}");
    // The watcher's next look, after the step ended, is judged.
    state.apply(&Event::Topology(crashed_dp_y2(&state, 702)));
    let screen = buffer_text(&draw(&state, 80, 24));
    assert!(screen.contains("Y node dp-y2 does not answer"), "{screen}");
}

fn crashed_dp_y2(state: &ConsoleState, secs: i64) -> kongup::kong::topology::TopologySnapshot {
    let mut snapshot = topology_snapshot(state.plan(), Some("3.10.0.1"), NodeHealth::Ready);
    snapshot.at = Some(at(secs));
    for node in &mut snapshot.nodes {
        if node.name == "dp-y2" {
            node.health = NodeHealth::Unreachable("connection refused".into());
        }
    }
    snapshot
}

#[test]
fn t_to_an_unfit_y_says_why_and_takes_the_override_word() {
    let mut state = sick();
    press(&mut state, key(KeyCode::Esc));
    press(&mut state, char_key('t'));
    type_text(&mut state, "50");
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    let said = state
        .flash_message()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert!(
        said.contains("Y node dp-y2 does not answer") && said.contains("`50 override`"),
        "{said}"
    );
    assert!(state.modal().is_some(), "the prompt stays to be corrected");
    type_text(&mut state, " override");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::SetTraffic {
            y_percent: 50,
            override_health: true,
        }]
    );
}

//! Every key, without a terminal: which command it sends, what it changes on screen.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use kongup::engine::command::Command;
use kongup::engine::event::{Event, RunState, StepState};
use kongup::ui::keys::ScrollDelta;
use kongup::ui::state::{Modal, Pane, PromptPurpose};
use kongup::ui::{ConsoleState, Theme, UiAction, handle_key};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, char_key, key, press, type_text};

fn awaiting() -> ConsoleState {
    scenarios::awaiting_confirmation(Theme::COLOUR)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn flashed(state: &ConsoleState) -> String {
    state
        .flash_message()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

#[test]
fn enter_shows_what_will_run_then_confirms_the_ready_step() {
    let mut state = awaiting();
    assert!(
        press(&mut state, key(KeyCode::Enter)).is_empty(),
        "nothing runs before the dialog"
    );
    assert!(matches!(state.modal(), Some(Modal::Confirm { step, .. }) if *step == cp("deploy-y")));
    let sent = press(&mut state, key(KeyCode::Enter));
    assert_eq!(
        sent,
        [Command::Confirm {
            step: cp("deploy-y"),
            typed: None
        }]
    );
    assert!(state.modal().is_none());
}

#[test]
fn c_and_y_confirm_too_and_esc_or_n_cancels() {
    let mut state = awaiting();
    press(&mut state, char_key('c'));
    assert_eq!(
        press(&mut state, char_key('y')),
        [Command::Confirm {
            step: cp("deploy-y"),
            typed: None
        }]
    );
    for cancel in [key(KeyCode::Esc), char_key('n')] {
        let mut state = awaiting();
        press(&mut state, char_key('c'));
        assert!(press(&mut state, cancel).is_empty());
        assert!(state.modal().is_none());
    }
}

/// Enter on a step that cannot be confirmed shows it read-only, with why (issue 15,
/// item 10): nothing is sent.
#[test]
fn only_a_ready_step_can_be_confirmed() {
    let mut state = awaiting();
    press(&mut state, key(KeyCode::Down));
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(matches!(state.modal(), Some(Modal::StepView { step }) if *step == cp("restore-db")));
    let why = kongup::ui::modals::step_view::why_not_now(&state, &cp("restore-db"));
    assert!(why.is_some_and(|w| w.contains("restore-db is pending")));
}

#[test]
fn a_paused_run_takes_no_confirm() {
    let mut state = awaiting();
    state.apply(&kongup::engine::event::Event::RunChanged(RunState::Paused));
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(matches!(state.modal(), Some(Modal::StepView { .. })));
    let why = kongup::ui::modals::step_view::why_not_now(&state, &cp("deploy-y"));
    assert!(why.is_some_and(|w| w.contains("paused")));
    // Read-only: Enter closes it and sends nothing.
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(state.modal().is_none());
}

#[test]
fn an_irreversible_step_needs_the_plan_name_typed() {
    let mut state = scenarios::irreversible_modal(Theme::COLOUR);
    assert!(matches!(state.modal(), Some(Modal::Irreversible { .. })));
    // "prod-eu" is typed so far: not the name, so nothing is sent.
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(flashed(&state).contains(PLAN_NAME));
    // `y` and `c` are text here, not a confirm.
    type_text(&mut state, "-hybridy");
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    press(&mut state, key(KeyCode::Backspace));
    let sent = press(&mut state, key(KeyCode::Enter));
    assert_eq!(
        sent,
        [Command::Confirm {
            step: cp("decommission-x"),
            typed: Some(PLAN_NAME.into())
        }]
    );
    assert!(state.modal().is_none());
}

#[test]
fn retrying_an_irreversible_step_needs_the_plan_name_typed_again() {
    let mut state = scenarios::irreversible_modal(Theme::COLOUR);
    press(&mut state, key(KeyCode::Esc));
    state.apply(&changed(cp("decommission-x"), StepState::Running));
    state.apply(&changed(cp("decommission-x"), StepState::Failed));
    assert!(press(&mut state, char_key('r')).is_empty());
    assert!(matches!(
        state.modal(),
        Some(Modal::Irreversible { retry: true, .. })
    ));
    type_text(&mut state, PLAN_NAME);
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Retry {
            step: cp("decommission-x"),
            typed: Some(PLAN_NAME.into()),
        }]
    );
}

#[test]
fn esc_abandons_the_typed_confirmation() {
    let mut state = scenarios::irreversible_modal(Theme::COLOUR);
    assert!(press(&mut state, key(KeyCode::Esc)).is_empty());
    assert!(state.modal().is_none());
}

#[test]
fn s_skips_with_a_reason() {
    let mut state = awaiting();
    press(&mut state, char_key('s'));
    assert!(matches!(
        state.modal(),
        Some(Modal::Prompt { purpose: PromptPurpose::Skip(step), .. }) if *step == cp("deploy-y")
    ));
    assert!(
        press(&mut state, key(KeyCode::Enter)).is_empty(),
        "a reason is required"
    );
    type_text(&mut state, "Y deployed by the platform team");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Skip {
            step: cp("deploy-y"),
            reason: "Y deployed by the platform team".into()
        }]
    );
    assert!(state.modal().is_none());
}

#[test]
fn s_on_a_step_that_is_not_ready_says_why() {
    let mut state = awaiting();
    press(&mut state, key(KeyCode::Up));
    assert!(press(&mut state, char_key('s')).is_empty());
    assert!(state.modal().is_none());
    assert!(
        flashed(&state).contains("backup-x is done"),
        "{}",
        flashed(&state)
    );
}

/// An interrupted step may be skipped (with a reason) as well as retried or marked done:
/// after a plan change it may be a step the operator no longer wants (issue 14, item 8).
#[test]
fn s_skips_an_interrupted_step_with_a_reason_but_not_a_failed_one() {
    let mut state = awaiting();
    state.apply(&changed(cp("deploy-y"), StepState::Interrupted));
    state.apply(&Event::RunChanged(RunState::Paused));
    press(&mut state, char_key('s'));
    type_text(&mut state, "the changed plan deploys Y another way");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Skip {
            step: cp("deploy-y"),
            reason: "the changed plan deploys Y another way".into()
        }]
    );
    let mut failed = awaiting();
    failed.apply(&changed(cp("deploy-y"), StepState::Failed));
    assert!(press(&mut failed, char_key('s')).is_empty());
    assert!(failed.modal().is_none());
}

#[test]
fn r_retries_a_failed_or_interrupted_step_only() {
    for failure in [StepState::Failed, StepState::Interrupted] {
        let mut state = awaiting();
        state.apply(&changed(cp("deploy-y"), StepState::Running));
        state.apply(&changed(cp("deploy-y"), failure));
        // deploy-y changes Y: the retry is confirmed first (tests/it/ui/retry_confirm.rs).
        assert!(press(&mut state, char_key('r')).is_empty());
        assert_eq!(
            press(&mut state, key(KeyCode::Enter)),
            [Command::Retry {
                step: cp("deploy-y"),
                typed: None,
            }]
        );
    }
    let mut state = awaiting();
    assert!(press(&mut state, char_key('r')).is_empty());
    assert!(state.modal().is_none());
}

#[test]
fn m_marks_an_interrupted_step_done_with_a_note() {
    let mut state = awaiting();
    state.apply(&changed(cp("deploy-y"), StepState::Interrupted));
    press(&mut state, char_key('m'));
    type_text(&mut state, "playbook finished, checked by hand");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::MarkDone {
            step: cp("deploy-y"),
            note: "playbook finished, checked by hand".into()
        }]
    );
    let mut failed = awaiting();
    failed.apply(&changed(cp("deploy-y"), StepState::Failed));
    assert!(press(&mut failed, char_key('m')).is_empty());
    assert!(failed.modal().is_none());
}

#[test]
fn p_pauses_a_running_run_and_resumes_a_paused_one() {
    let mut state = awaiting();
    assert_eq!(press(&mut state, char_key('p')), [Command::Pause]);
    state.apply(&kongup::engine::event::Event::RunChanged(RunState::Paused));
    assert_eq!(press(&mut state, char_key('p')), [Command::Resume]);
    let mut done = scenarios::done(Theme::COLOUR);
    assert!(press(&mut done, char_key('p')).is_empty());
}

#[test]
fn capital_r_rolls_back_at_once_and_shows_the_plan() {
    let mut state = scenarios::gate_breached(Theme::COLOUR);
    assert_eq!(press(&mut state, char_key('R')), [Command::Rollback]);
    assert!(matches!(state.modal(), Some(Modal::Rollback)));
    // Once rolling back, R only shows the plan again.
    let mut rolling = scenarios::rolling_back(Theme::COLOUR);
    press(&mut rolling, key(KeyCode::Esc));
    assert!(rolling.modal().is_none());
    assert!(press(&mut rolling, char_key('R')).is_empty());
    assert!(matches!(rolling.modal(), Some(Modal::Rollback)));
    // A run that is over has nothing to roll back: R says so, and asks nothing of the
    // engine.
    let mut done = scenarios::done(Theme::COLOUR);
    assert!(press(&mut done, char_key('R')).is_empty());
    assert!(done.modal().is_none());
    let said = flashed(&done);
    assert!(
        said.contains("nothing to roll back: the run is done"),
        "{said}"
    );
}

#[test]
fn the_rollback_plan_confirms_its_next_step() {
    let mut state = scenarios::rolling_back(Theme::COLOUR);
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(
        matches!(state.modal(), Some(Modal::Confirm { step, .. }) if *step == undoing("start-y"))
    );
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::Confirm {
            step: undoing("start-y"),
            typed: None
        }]
    );
    // The engine undid it and offers the next; R shows the plan, Enter goes on.
    state.apply(&changed(undoing("start-y"), StepState::Running));
    state.apply(&changed(undoing("start-y"), StepState::Succeeded));
    state.apply(&changed(cp("start-y"), StepState::RolledBack));
    press(&mut state, char_key('R'));
    assert!(
        press(&mut state, key(KeyCode::Enter)).is_empty(),
        "not offered yet"
    );
    assert!(matches!(state.modal(), Some(Modal::Rollback)));
    state.apply(&changed(undoing("deploy-y"), StepState::Ready));
    press(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(state.modal(), Some(Modal::Confirm { step, .. }) if *step == undoing("deploy-y"))
    );
}

#[test]
fn tab_and_shift_tab_move_the_focus() {
    let mut state = awaiting();
    assert_eq!(state.focus(), Pane::Checklist);
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Logs);
    press(&mut state, key(KeyCode::Tab));
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Metrics);
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Checklist);
    press(
        &mut state,
        KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT),
    );
    assert_eq!(state.focus(), Pane::Metrics);
}

#[test]
fn arrows_and_j_k_move_the_selection_in_the_checklist() {
    let mut state = awaiting();
    let start = state.selected_index();
    press(&mut state, char_key('j'));
    press(&mut state, key(KeyCode::Down));
    assert_eq!(state.selected_index(), start + 2);
    press(&mut state, char_key('k'));
    assert_eq!(state.selected_index(), start + 1);
    press(&mut state, char_key('g'));
    assert_eq!(state.selected_index(), 0);
    press(
        &mut state,
        KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT),
    );
    assert_eq!(state.selected_index(), state.step_count() - 1);
    press(&mut state, key(KeyCode::PageUp));
    assert_eq!(state.selected_index(), state.step_count() - 11);
    press(&mut state, key(KeyCode::Home));
    press(&mut state, key(KeyCode::PageDown));
    assert_eq!(state.selected_index(), 10);
}

#[test]
fn scrolling_the_logs_stops_following_and_f_or_end_resumes() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Logs);
    assert!(state.log_follow());
    press(&mut state, key(KeyCode::Up));
    press(&mut state, char_key('k'));
    assert!(!state.log_follow());
    assert_eq!(state.log_offset(), 2);
    // New lines arrive: what is on screen stays put.
    state.apply(&log(
        443,
        "restore-db",
        kongup::engine::event::LogStream::Stdout,
        "more",
    ));
    assert_eq!(state.log_offset(), 3);
    press(&mut state, key(KeyCode::End));
    assert!(state.log_follow());
    assert_eq!(state.log_offset(), 0);
    press(&mut state, char_key('f'));
    assert!(!state.log_follow());
    press(&mut state, char_key('f'));
    assert!(state.log_follow());
}

#[test]
fn z_zooms_the_focused_pane_and_esc_leaves_the_zoom() {
    let mut state = awaiting();
    press(&mut state, char_key('z'));
    assert!(state.zoomed());
    press(&mut state, key(KeyCode::Esc));
    assert!(!state.zoomed());
    press(&mut state, char_key('z'));
    press(&mut state, char_key('z'));
    assert!(!state.zoomed());
}

#[test]
fn slash_filters_the_logs_and_an_empty_filter_clears_it() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    press(&mut state, char_key('/'));
    assert!(matches!(
        state.modal(),
        Some(Modal::Prompt {
            purpose: PromptPurpose::LogFilter,
            ..
        })
    ));
    type_text(&mut state, "TABLE");
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert_eq!(state.log_filter(), Some("TABLE"));
    // Case-insensitive: 7 "creating TABLE", 2 "data for table", 1 "412 tables".
    assert_eq!(state.filtered_log_count(), 10);
    press(&mut state, char_key('/'));
    press(&mut state, ctrl('u'));
    press(&mut state, key(KeyCode::Enter));
    assert_eq!(state.log_filter(), None);
}

#[test]
fn question_mark_shows_the_keys_and_esc_or_q_closes_them() {
    let mut state = awaiting();
    press(&mut state, char_key('?'));
    assert!(matches!(state.modal(), Some(Modal::Help)));
    press(&mut state, key(KeyCode::Down));
    assert!(matches!(state.modal(), Some(Modal::Help)));
    assert_eq!(state.dialog_scroll(), 1);
    assert!(
        press(&mut state, char_key('q')).is_empty(),
        "q closes the help, it does not quit"
    );
    assert!(state.modal().is_none());
    press(&mut state, char_key('?'));
    press(&mut state, key(KeyCode::Esc));
    assert!(state.modal().is_none());
}

#[test]
fn q_quits_and_the_run_stays_resumable() {
    let state = awaiting();
    let outcome = handle_key(&state, char_key('q'));
    assert_eq!(outcome.commands, [Command::Quit]);
    assert!(outcome.exits());
    let outcome = handle_key(&state, ctrl('c'));
    assert_eq!(outcome.commands, [Command::Quit]);
    assert!(outcome.exits());
}

#[test]
fn q_while_a_step_runs_says_it_finishes_in_the_background() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    assert!(press(&mut state, char_key('q')).is_empty());
    assert!(matches!(
        state.modal(),
        Some(Modal::QuitWhileRunning { step }) if *step == cp("restore-db")
    ));
    assert!(press(&mut state, key(KeyCode::Esc)).is_empty());
    assert!(state.modal().is_none());
    press(&mut state, char_key('q'));
    let outcome = handle_key(&state, char_key('y'));
    assert_eq!(outcome.commands, [Command::Quit]);
    assert!(outcome.exits());
}

#[test]
fn x_asks_then_aborts_the_running_step() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    assert!(
        press(&mut state, char_key('x')).is_empty(),
        "nothing before the dialog"
    );
    assert!(matches!(
        state.modal(),
        Some(Modal::Abort { step }) if *step == cp("restore-db")
    ));
    for stay in [key(KeyCode::Esc), char_key('n'), key(KeyCode::Enter)] {
        let mut state = scenarios::running_with_logs(Theme::COLOUR);
        press(&mut state, char_key('x'));
        assert!(
            press(&mut state, stay).is_empty(),
            "{stay:?} must not abort"
        );
    }
    assert_eq!(press(&mut state, char_key('y')), [Command::Abort]);
    assert!(state.modal().is_none());
}

#[test]
fn x_with_nothing_running_says_so() {
    let mut state = awaiting();
    assert!(press(&mut state, char_key('x')).is_empty());
    assert!(state.modal().is_none());
    assert!(
        flashed(&state).contains("no step is running"),
        "{}",
        flashed(&state)
    );
}

#[test]
fn t_sets_the_traffic_split_by_hand() {
    let mut state = awaiting();
    assert!(press(&mut state, char_key('t')).is_empty());
    assert!(matches!(
        state.modal(),
        Some(Modal::Prompt {
            purpose: PromptPurpose::SetTraffic,
            ..
        })
    ));
    type_text(&mut state, "25%");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::SetTraffic {
            y_percent: 25,
            override_health: false,
        }]
    );
    assert!(state.modal().is_none());
}

#[test]
fn t_refuses_what_is_not_a_percentage_and_keeps_the_prompt() {
    for typed in ["150", "-1", "half", ""] {
        let mut state = awaiting();
        press(&mut state, char_key('t'));
        type_text(&mut state, typed);
        assert!(
            press(&mut state, key(KeyCode::Enter)).is_empty(),
            "{typed:?} sent"
        );
        assert!(state.modal().is_some(), "{typed:?}: the prompt stays open");
        assert!(
            flashed(&state).contains("0 (all on X) to 100"),
            "{}",
            flashed(&state)
        );
    }
}

#[test]
fn t_while_a_step_runs_says_to_wait() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    assert!(press(&mut state, char_key('t')).is_empty());
    assert!(state.modal().is_none());
    assert!(
        flashed(&state).contains("restore-db is running"),
        "{}",
        flashed(&state)
    );
}

#[test]
fn ctrl_l_redraws_and_key_releases_do_nothing() {
    let state = awaiting();
    assert!(matches!(
        handle_key(&state, ctrl('l')).ui[..],
        [UiAction::Redraw]
    ));
    let mut release = char_key('R');
    release.kind = KeyEventKind::Release;
    let outcome = handle_key(&state, release);
    assert!(outcome.commands.is_empty() && outcome.ui.is_empty());
}

#[test]
fn scroll_keys_go_to_the_focused_pane() {
    let mut state = awaiting();
    press(&mut state, key(KeyCode::Tab));
    press(&mut state, key(KeyCode::Tab));
    assert_eq!(state.focus(), Pane::Topology);
    let outcome = handle_key(&state, key(KeyCode::Down));
    assert!(matches!(
        outcome.ui[..],
        [UiAction::Scroll(Pane::Topology, ScrollDelta::Down(1))]
    ));
    press(&mut state, key(KeyCode::Down));
    assert_eq!(state.topology_offset(), 1);
}

#[test]
fn a_dialog_about_a_step_closes_when_the_step_moves_on() {
    let mut state = scenarios::confirm_modal(Theme::COLOUR);
    state.apply(&changed(cp("deploy-y"), StepState::Skipped));
    assert!(state.modal().is_none());
    assert!(flashed(&state).contains("dialog closed"));
}

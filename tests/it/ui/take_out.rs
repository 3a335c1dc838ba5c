//! `o` on a failed wave step: the node's name typed, then the reason, sends
//! `Command::TakeOut`; not offered on other steps. The dialog at 80x24 and 160x48.

use crossterm::event::KeyCode;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, RunState, StepState};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{PhaseName, StepRef};
use kongup::testkit::fleet::hybrid_plan_text;
use kongup::testkit::hybrid::{changed, previewer, start_events, t0};
use kongup::testkit::scenarios::{apply_all, char_key, key, press, screen, type_text};
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Theme};

macro_rules! assert_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("ui_snapshots__{}", $name), $value)
        })
    };
}

fn dp(id: &str) -> StepRef {
    StepRef::new(PhaseName::DataPlane, id)
}

/// A hybrid run of eight data planes a side in three waves, the data-plane phase's steps
/// done up to `failed`, which failed on dp-y-3.
fn failed_at(failed: &str) -> ConsoleState {
    let loaded = parse_plan(
        &hybrid_plan_text(8, "rolling:\n  waves: [1, 50%, 100%]\n"),
        "fleet.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (plan, expanded) = (loaded.plan, loaded.expanded);
    let mut state = ConsoleState::new(
        &plan,
        &expanded,
        t0(),
        Theme::NO_COLOUR,
        previewer(&plan, &expanded),
    );
    apply_all(&mut state, &start_events(&expanded));
    state.apply(&Event::RunChanged(RunState::Waiting));
    for (phase, step) in expanded.steps() {
        let step_ref = StepRef::new(phase.name, step.id.clone());
        if step_ref == dp(failed) {
            break;
        }
        state.apply(&changed(step_ref, StepState::Succeeded));
    }
    state.apply(&Event::StepChanged {
        step: dp(failed),
        state: StepState::Failed,
        detail: Some(
            "1 of 3 nodes failed: dp-y-3 (exit status 1). A retry runs the commands only on \
             the failed nodes; the 2 done are not run again"
                .into(),
        ),
    });
    state
}

#[test]
fn o_takes_a_failed_node_out_with_its_name_typed_and_a_reason() {
    let mut state = failed_at("wave-2-start-y");
    assert!(
        screen(&state, 160, 48).contains("o take out"),
        "the footer offers it"
    );
    assert!(press(&mut state, char_key('o')).is_empty());
    assert!(matches!(
        state.modal(),
        Some(Modal::TakeOut { reason: None, .. })
    ));
    // Enter with no name asks for it.
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    type_text(&mut state, "dp-y-3");
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(matches!(
        state.modal(),
        Some(Modal::TakeOut {
            reason: Some(_),
            ..
        })
    ));
    // Enter with no reason asks for one; nothing is sent.
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(state.modal().is_some());
    type_text(&mut state, "disk failure; OPS-1234");
    assert_eq!(
        press(&mut state, key(KeyCode::Enter)),
        [Command::TakeOut {
            step: dp("wave-2-start-y"),
            node: "dp-y-3".into(),
            reason: "disk failure; OPS-1234".into()
        }]
    );
    assert!(state.modal().is_none());
}

#[test]
fn esc_leaves_the_take_out_and_o_is_not_offered_elsewhere() {
    let mut state = failed_at("wave-2-start-y");
    press(&mut state, char_key('o'));
    type_text(&mut state, "dp-y");
    assert!(press(&mut state, key(KeyCode::Esc)).is_empty());
    assert!(state.modal().is_none());

    // A failed step that is not a wave's start or stop: o says why, opens nothing.
    let mut state = failed_at("wave-2-traffic");
    assert!(!screen(&state, 160, 48).contains("take out"));
    assert!(press(&mut state, char_key('o')).is_empty());
    assert!(state.modal().is_none());
    // The wave step succeeded: nothing to take out.
    let mut state = failed_at("wave-2-start-y");
    state.apply(&changed(dp("wave-2-start-y"), StepState::Succeeded));
    assert!(press(&mut state, char_key('o')).is_empty());
    assert!(state.modal().is_none());
}

#[test]
fn the_take_out_dialog_at_80x24_and_160x48() {
    for (width, height) in [(80, 24), (160, 48)] {
        let mut state = failed_at("wave-2-start-y");
        press(&mut state, char_key('o'));
        type_text(&mut state, "dp-y-3");
        assert_snapshot!(
            format!("take_out_name_{width}x{height}"),
            screen(&state, width, height)
        );
        press(&mut state, key(KeyCode::Enter));
        type_text(&mut state, "disk failure; OPS-1234");
        assert_snapshot!(
            format!("take_out_reason_{width}x{height}"),
            screen(&state, width, height)
        );
    }
}

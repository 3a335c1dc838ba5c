//! The confirm of a wave's first step lists what the wave runs, and each line is true: with
//! `rolling.drain` and `max_unavailable` it says the drain and the bound on the steps they
//! touch; with no gate source the wave stops after its traffic stage and the dialog says
//! so, not that X's nodes are stopped; `confirm: each-step` lists no wave. At 80x24 and
//! 160x48.

use std::sync::Arc;

use crossterm::event::KeyCode;
use kongup::engine::Toolbox;
use kongup::engine::event::{Event, RunState, StepState};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{PhaseName, StepRef};
use kongup::secrets::Redactor;
use kongup::testkit::hybrid::{changed, start_events, t0};
use kongup::testkit::scenarios::{apply_all, key, press, screen};
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Previewer, Theme};

use crate::support::waves::WavePlan;

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

/// The console of `plan` with every step before wave 2's start done and its confirm open;
/// `gated`: the toolbox has a gate source (a run's monitor), else none.
fn confirming_wave_2(plan: WavePlan, gated: bool) -> ConsoleState {
    let loaded = parse_plan(&plan.yaml(), "fleet.yaml").unwrap_or_else(|e| panic!("{e}"));
    let (plan, expanded) = (loaded.plan, loaded.expanded);
    let mut toolbox =
        Toolbox::for_plan(&plan, Redactor::default(), kongup::actions::builtins(None)).unwrap();
    let (_gates_tx, gates_rx) = tokio::sync::watch::channel(None);
    if gated {
        toolbox = toolbox.with_gates(gates_rx);
    }
    let previewer =
        Previewer::from_engine(Arc::new(plan.clone()), Arc::new(expanded.clone()), toolbox);
    let mut state = ConsoleState::new(&plan, &expanded, t0(), Theme::NO_COLOUR, previewer);
    apply_all(&mut state, &start_events(&expanded));
    state.apply(&Event::RunChanged(RunState::Waiting));
    for (phase, step) in expanded.steps() {
        let step_ref = StepRef::new(phase.name, step.id.clone());
        if step_ref == dp("wave-2-start-y") {
            break;
        }
        state.apply(&changed(step_ref, StepState::Succeeded));
    }
    state.apply(&changed(dp("wave-2-start-y"), StepState::Ready));
    press(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(state.modal(), Some(Modal::Confirm { step, retry: false, .. }) if *step == dp("wave-2-start-y")),
        "{:?}",
        state.modal()
    );
    state
}

/// Eight data planes a side, X on 3.9.1 (it has `kong drain`), at the lab's addresses;
/// wave 2's start and stop run a command on each of their nodes.
fn fleet() -> WavePlan {
    WavePlan::hybrid(8)
        .from("3.9.1")
        .lab_addresses()
        .shell("wave-2-start-y", "systemctl start kong")
        .shell("wave-2-stop-x", "kong quit")
}

#[test]
fn the_wave_confirm_says_the_drain_and_the_bound() {
    let state = confirming_wave_2(fleet().drain("30s").max_unavailable("2"), true);
    let wide = screen(&state, 160, 48);
    // (The dialog wraps its lines: each fragment is on one row.)
    for said in [
        "wave-2-start-y: starts 3 of Y's nodes, at most 2 at a time",
        "wave-2-traffic: Y to 50% of traffic, baked 5m with the gates",
        "wave-2-stop-x: stops 3 of X's nodes, at most 2 at a time",
        "first (rolling.drain, up to 30s)",
    ] {
        assert!(wide.contains(said), "{said}: {wide}");
    }
    assert_snapshot!("wave_confirm_drain_80x24", screen(&state, 80, 24));
    assert_snapshot!("wave_confirm_drain_160x48", wide);
}

#[test]
fn with_no_gate_source_the_wave_confirm_stops_at_the_bake() {
    let state = confirming_wave_2(fleet(), false);
    let wide = screen(&state, 160, 48);
    assert!(
        wide.contains("This confirm runs wave 2/3 as one: wave-2-start-y → wave-2-traffic"),
        "{wide}"
    );
    for said in [
        "baked 5m with no gate source",
        "data-plane/wave-2-stop-x waits for its own confirm: no gate judges",
        "data-plane/wave-2-traffic's bake.",
    ] {
        assert!(wide.contains(said), "{said}: {wide}");
    }
    assert!(!wide.contains("wave-2-stop-x: stops"), "{wide}");
    assert_snapshot!("wave_confirm_ungated_80x24", screen(&state, 80, 24));
    assert_snapshot!("wave_confirm_ungated_160x48", wide);

    // One confirm a step: no wave is listed.
    let state = confirming_wave_2(fleet().confirm("each-step"), true);
    assert!(!screen(&state, 160, 48).contains("as one"));
}

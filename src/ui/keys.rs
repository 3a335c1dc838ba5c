//! Keys to commands. `handle_key` is pure: it reads the view and says which `Command`s to
//! send to the engine and which `UiAction`s to apply to the view, so every key is tested
//! without a terminal. Which key does what on the main screen is the table in
//! `ui::bindings` (the footer and `?` read it too); here each action becomes its
//! commands, and each dialog handles its own keys.

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::{Input, InputRequest};

use crate::engine::command::Command;
use crate::engine::event::{RunState, StepState};
use crate::engine::health::OVERRIDE_WORD;
use crate::plan::steps::StepRef;

use super::bindings::{self, Action};
use super::state::{ConsoleState, Modal, Pane, PromptPurpose};
use super::theme::{Tone, step_symbol};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrollDelta {
    Up(usize),
    Down(usize),
    PageUp,
    PageDown,
    Top,
    Bottom,
}

/// A change to the view alone; nothing the engine hears of.
#[derive(Debug, Clone)]
pub enum UiAction {
    FocusNext,
    FocusPrev,
    ToggleZoom,
    Scroll(Pane, ScrollDelta),
    ScrollDialog(ScrollDelta),
    ToggleFollow,
    Open(Modal),
    Close,
    /// Edit the text field of the open dialog.
    Edit(InputRequest),
    SetLogFilter(Option<String>),
    Topology(TopologyAction),
    Flash(String, Tone),
    /// Why a key did nothing: stays in the footer until the next key.
    Refusal(String),
    /// Clear the terminal and draw everything again.
    Redraw,
    /// Leave the console (after sending the commands).
    Exit,
    /// Run the action of a key bound by the console's caller (`ExtraKey`).
    RunExtra(char),
    /// A confirm or retry of this step was sent: it counts as running until the engine
    /// answers (starts it, refuses, or fails it), so a `q` at once asks first.
    AwaitStart(StepRef),
    /// List the nodes of the selected step's wave in the checklist.
    ExpandWave,
    /// Fold the wave's nodes away.
    FoldWave,
}

/// The topology zoom's filter line and jumps.
#[derive(Debug, Clone, PartialEq)]
pub enum TopologyAction {
    /// Start typing the filter (it applies as it is typed).
    OpenFilter,
    EditFilter(InputRequest),
    /// Stop typing, keeping the filter.
    KeepFilter,
    /// Stop typing and show every node again.
    ClearFilter,
    NextFailing,
    PreviousFailing,
}

/// What a key asks for: commands for the engine, in order, then changes to the view.
#[derive(Debug, Clone, Default)]
pub struct KeyOutcome {
    pub commands: Vec<Command>,
    pub ui: Vec<UiAction>,
}

impl KeyOutcome {
    fn ui(action: UiAction) -> Self {
        KeyOutcome {
            commands: Vec::new(),
            ui: vec![action],
        }
    }

    fn send(command: Command) -> Self {
        KeyOutcome {
            commands: vec![command],
            ui: Vec::new(),
        }
    }

    /// The key is refused: why, kept in the footer until the next key.
    fn flash(text: impl Into<String>) -> Self {
        KeyOutcome::ui(UiAction::Refusal(text.into()))
    }

    fn and(mut self, action: UiAction) -> Self {
        self.ui.push(action);
        self
    }

    pub fn exits(&self) -> bool {
        self.ui.iter().any(|a| matches!(a, UiAction::Exit))
    }
}

/// Turns a key into commands and view changes. Reads `state`, changes nothing.
pub fn handle_key(state: &ConsoleState, key: KeyEvent) -> KeyOutcome {
    if key.kind == KeyEventKind::Release {
        return KeyOutcome::default();
    }
    if let Some(action) = bindings::everywhere(&key) {
        return act(state, action);
    }
    match state.modal() {
        Some(modal) => modal_key(state, modal, key),
        None if state.topology_filter_input().is_some() => topology_filter_key(key),
        None => main_key(state, key),
    }
}

/// A key while the topology zoom's filter is typed: Enter keeps it, Esc clears it, the
/// arrows and pages scroll the list, the rest edits the text.
fn topology_filter_key(key: KeyEvent) -> KeyOutcome {
    if key.code == KeyCode::Enter {
        KeyOutcome::ui(UiAction::Topology(TopologyAction::KeepFilter))
    } else if key.code == KeyCode::Esc || is_ctrl_c(&key) {
        KeyOutcome::ui(UiAction::Topology(TopologyAction::ClearFilter))
    } else if let Some(delta) = bindings::scroll_delta(&key, true) {
        KeyOutcome::ui(UiAction::Scroll(Pane::Topology, delta))
    } else {
        match tui_input::backend::crossterm::to_input_request(&TermEvent::Key(key)) {
            Some(request) => {
                KeyOutcome::ui(UiAction::Topology(TopologyAction::EditFilter(request)))
            }
            None => KeyOutcome::default(),
        }
    }
}

/// A letter (either case as given) with no Ctrl or Alt.
fn letter(key: &KeyEvent) -> Option<char> {
    match key.code {
        KeyCode::Char(c)
            if !key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c')
}

fn main_key(state: &ConsoleState, key: KeyEvent) -> KeyOutcome {
    if let Some(binding) = bindings::binding_now(state, &key) {
        return act(state, binding.action);
    }
    match letter(&key) {
        Some(c) if state.extra_key(c).is_some() => KeyOutcome::ui(UiAction::RunExtra(c)),
        _ => KeyOutcome::default(),
    }
}

/// What a bound key of the main screen does now.
fn act(state: &ConsoleState, action: Action) -> KeyOutcome {
    if let Some(because) = state.read_only_because() {
        // A watcher (`kongup watch`) changes nothing, and leaving it stops nothing.
        if action.changes_run() {
            return KeyOutcome::flash(because);
        }
        if action == Action::Quit {
            return KeyOutcome::ui(UiAction::Exit);
        }
    }
    match action {
        Action::Confirm => confirm_selected(state),
        Action::Skip => skip_selected(state),
        Action::Retry => retry_selected(state),
        Action::MarkDone => mark_done_selected(state),
        Action::TakeOut => take_out_selected(state),
        Action::PauseResume => pause_or_resume(state),
        Action::Abort => abort_running(state),
        Action::SetTraffic => set_traffic(state),
        Action::Rollback => rollback(state),
        Action::FocusNext => KeyOutcome::ui(UiAction::FocusNext),
        Action::FocusPrev => KeyOutcome::ui(UiAction::FocusPrev),
        Action::Scroll(delta) => KeyOutcome::ui(UiAction::Scroll(state.focus(), delta)),
        Action::ToggleZoom => KeyOutcome::ui(UiAction::ToggleZoom),
        Action::Filter if state.focus() == Pane::Topology => {
            let open = UiAction::Topology(TopologyAction::OpenFilter);
            if state.zoomed() {
                KeyOutcome::ui(open)
            } else {
                KeyOutcome::ui(UiAction::ToggleZoom).and(open)
            }
        }
        Action::Filter => KeyOutcome::ui(UiAction::Open(Modal::Prompt {
            purpose: PromptPurpose::LogFilter,
            input: Input::new(state.log_filter().unwrap_or_default().to_string()),
        })),
        Action::NextFailing => KeyOutcome::ui(UiAction::Topology(TopologyAction::NextFailing)),
        Action::PreviousFailing => {
            KeyOutcome::ui(UiAction::Topology(TopologyAction::PreviousFailing))
        }
        Action::ToggleFollow => KeyOutcome::ui(UiAction::ToggleFollow),
        Action::Help => KeyOutcome::ui(UiAction::Open(Modal::Help)),
        Action::LeaveZoom if state.zoomed() => KeyOutcome::ui(UiAction::ToggleZoom),
        Action::LeaveZoom if state.expanded_wave().is_some() => KeyOutcome::ui(UiAction::FoldWave),
        Action::ExpandWave => expand_wave(state),
        Action::FoldWave => KeyOutcome::ui(UiAction::FoldWave),
        Action::LeaveZoom => KeyOutcome::default(),
        Action::Redraw => KeyOutcome::ui(UiAction::Redraw),
        Action::Quit => quit(state),
    }
}

/// → on a step of a wave lists the wave's nodes under its row.
fn expand_wave(state: &ConsoleState) -> KeyOutcome {
    if state.wave_of_step(state.selected_index()).is_some() {
        KeyOutcome::ui(UiAction::ExpandWave)
    } else if !state.has_waves() {
        KeyOutcome::flash("→ lists a wave's nodes: this plan does not roll in waves")
    } else {
        KeyOutcome::flash("→ lists a wave's nodes: select a step of a wave first (↑↓)")
    }
}

fn quit(state: &ConsoleState) -> KeyOutcome {
    match state.running_or_starting() {
        Some(step) => KeyOutcome::ui(UiAction::Open(Modal::QuitWhileRunning {
            step: step.clone(),
        })),
        None => KeyOutcome::send(Command::Quit).and(UiAction::Exit),
    }
}

/// Why the selected step cannot take the key, for the footer.
fn not_eligible(step: &StepRef, state: StepState, wanted: &str) -> KeyOutcome {
    let (_, word, _) = step_symbol(state);
    KeyOutcome::flash(format!("{step} is {word}: {wanted}"))
}

/// The confirm dialog of the selected step; a step that cannot be confirmed now (not
/// ready, or the run paused) is shown read-only instead, with why.
fn confirm_selected(state: &ConsoleState) -> KeyOutcome {
    let Some((step_ref, step, _)) = state.selected() else {
        return KeyOutcome::default();
    };
    if super::modals::step_view::why_not_now(state, step_ref).is_some() {
        return KeyOutcome::ui(UiAction::Open(Modal::StepView {
            step: step_ref.clone(),
        }));
    }
    open_confirm(step_ref, step.irreversible)
}

/// The confirm dialog for a ready step: typed confirmation when it cannot be undone.
fn open_confirm(step_ref: &StepRef, irreversible: bool) -> KeyOutcome {
    let modal = if irreversible {
        Modal::Irreversible {
            step: step_ref.clone(),
            typed: Input::default(),
            retry: false,
        }
    } else {
        Modal::Confirm {
            step: step_ref.clone(),
            retry: false,
            typed: Input::default(),
        }
    };
    KeyOutcome::ui(UiAction::Open(modal))
}

fn skip_selected(state: &ConsoleState) -> KeyOutcome {
    let Some((step_ref, _, status)) = state.selected() else {
        return KeyOutcome::default();
    };
    // Skipping past a step whose command still runs would start the next one beside it.
    if status.still_running.is_some() {
        return still_running(step_ref, false);
    }
    if !matches!(status.state, StepState::Ready | StepState::Interrupted) {
        return not_eligible(
            step_ref,
            status.state,
            "only a ready or interrupted step can be skipped",
        );
    }
    KeyOutcome::ui(UiAction::Open(Modal::Prompt {
        purpose: PromptPurpose::Skip(step_ref.clone()),
        input: Input::default(),
    }))
}

fn retry_selected(state: &ConsoleState) -> KeyOutcome {
    let Some((step_ref, step, status)) = state.selected() else {
        return KeyOutcome::default();
    };
    if status.still_running.is_some() {
        return still_running(step_ref, false);
    }
    if !matches!(status.state, StepState::Failed | StepState::Interrupted) {
        return not_eligible(
            step_ref,
            status.state,
            "only a failed or interrupted step can be retried",
        );
    }
    // A retry runs the step again: what changes something is confirmed as Enter confirms
    // it (the plan name typed again where it cannot be undone). "retrying" is said when the
    // engine starts it, as it may refuse.
    let modal = if step.irreversible {
        Modal::Irreversible {
            step: step_ref.clone(),
            typed: Input::default(),
            retry: true,
        }
    } else if step.changes {
        Modal::Confirm {
            step: step_ref.clone(),
            retry: true,
            typed: Input::default(),
        }
    } else {
        return KeyOutcome::send(Command::Retry {
            step: step_ref.clone(),
            typed: None,
        })
        .and(UiAction::AwaitStart(step_ref.clone()));
    };
    KeyOutcome::ui(UiAction::Open(modal))
}

fn mark_done_selected(state: &ConsoleState) -> KeyOutcome {
    let Some((step_ref, _, status)) = state.selected() else {
        return KeyOutcome::default();
    };
    if status.still_running.is_some() {
        return still_running(step_ref, false);
    }
    if status.state != StepState::Interrupted {
        return not_eligible(
            step_ref,
            status.state,
            "only an interrupted step can be marked done",
        );
    }
    KeyOutcome::ui(UiAction::Open(Modal::Prompt {
        purpose: PromptPurpose::MarkDone(step_ref.clone()),
        input: Input::default(),
    }))
}

fn take_out_selected(state: &ConsoleState) -> KeyOutcome {
    let Some((step_ref, step, status)) = state.selected() else {
        return KeyOutcome::default();
    };
    if status.still_running.is_some() {
        return still_running(step_ref, false);
    }
    if !step.kind.is_wave_node_step() {
        return KeyOutcome::flash(format!(
            "{step_ref} is not a wave's start or stop step: a node is taken out only of those"
        ));
    }
    if !state.can_take_out_of(step_ref) {
        return not_eligible(
            step_ref,
            status.state,
            "a node is taken out only of a failed or interrupted wave step",
        );
    }
    KeyOutcome::ui(UiAction::Open(Modal::TakeOut {
        step: step_ref.clone(),
        node: Input::default(),
        reason: None,
    }))
}

fn pause_or_resume(state: &ConsoleState) -> KeyOutcome {
    match state.run_state() {
        RunState::Running | RunState::Waiting => KeyOutcome::send(Command::Pause),
        RunState::Paused => KeyOutcome::send(Command::Resume),
        other => {
            let (_, label, _) = super::theme::run_label(other);
            KeyOutcome::flash(format!("the run is {label}: nothing to pause or resume"))
        }
    }
}

/// Stopping a step is a change too: the dialog says what happens before anything is sent.
/// With no step running, `x` kills what still runs of the selected interrupted step.
fn abort_running(state: &ConsoleState) -> KeyOutcome {
    match state.running_step() {
        Some(step) => KeyOutcome::ui(UiAction::Open(Modal::Abort { step: step.clone() })),
        None => match state.selected() {
            Some((step, _, status)) if status.still_running.is_some() => still_running(step, true),
            _ => KeyOutcome::flash("no step is running: nothing to abort"),
        },
    }
}

/// The wait-or-kill dialog of a step whose command still runs (`kill`: at its `y`).
fn still_running(step: &StepRef, kill: bool) -> KeyOutcome {
    KeyOutcome::ui(UiAction::Open(Modal::StillRunning {
        step: step.clone(),
        kill,
    }))
}

/// The split by hand, as percent to Y; the engine refuses what is unsafe (X when X cannot
/// serve, while a step or a driver call runs) and says why.
fn set_traffic(state: &ConsoleState) -> KeyOutcome {
    if let Some(step) = state.running_step() {
        return KeyOutcome::flash(format!(
            "{step} is running: set the traffic when it has ended (x aborts it)"
        ));
    }
    KeyOutcome::ui(UiAction::Open(Modal::Prompt {
        purpose: PromptPurpose::SetTraffic,
        input: Input::default(),
    }))
}

/// One key: the engine puts all traffic on X at once; the plan that follows is confirmed.
/// A run that is over has nothing to roll back (the engine refuses it too); a second R
/// shows the rollback under way.
fn rollback(state: &ConsoleState) -> KeyOutcome {
    let open = UiAction::Open(Modal::Rollback);
    match state.run_state() {
        RunState::Done => KeyOutcome::flash(
            "nothing to roll back: the run is done (t sets the traffic split by hand)",
        ),
        RunState::RolledBack => {
            KeyOutcome::flash("nothing to roll back: the run was already rolled back")
        }
        RunState::RollingBack => KeyOutcome::ui(open),
        _ => KeyOutcome::send(Command::Rollback).and(open),
    }
}

/// A key in a dialog: the dialog's own keys, else the scrolling keys scroll its text
/// (only the arrows and the pages where a text field takes letters).
fn modal_key(state: &ConsoleState, modal: &Modal, key: KeyEvent) -> KeyOutcome {
    let typing = match modal {
        Modal::Irreversible { .. } | Modal::Prompt { .. } | Modal::TakeOut { .. } => true,
        // Traffic onto a Y found unfit: letters type the override word.
        Modal::Confirm { step, .. } => !state.y_unfit_for(step).is_empty(),
        _ => false,
    };
    if let Some(delta) = bindings::scroll_delta(&key, typing) {
        return KeyOutcome::ui(UiAction::ScrollDialog(delta));
    }
    dialog_key(state, modal, key)
}

fn dialog_key(state: &ConsoleState, modal: &Modal, key: KeyEvent) -> KeyOutcome {
    let esc = key.code == KeyCode::Esc;
    match modal {
        Modal::Help | Modal::StepView { .. } => {
            if esc || key.code == KeyCode::Enter || matches!(letter(&key), Some('?' | 'q')) {
                KeyOutcome::ui(UiAction::Close)
            } else {
                KeyOutcome::default()
            }
        }
        Modal::Confirm {
            step, retry, typed, ..
        } => {
            // Traffic onto a Y found unfit: letters type the override word.
            let unfit = !state.y_unfit_for(step).is_empty();
            let send = |typed: Option<String>| {
                let step = step.clone();
                KeyOutcome::send(if *retry {
                    Command::Retry {
                        step: step.clone(),
                        typed,
                    }
                } else {
                    Command::Confirm {
                        step: step.clone(),
                        typed,
                    }
                })
                .and(UiAction::Close)
                .and(UiAction::AwaitStart(step))
            };
            if esc || is_ctrl_c(&key) || (!unfit && matches!(letter(&key), Some('n' | 'q'))) {
                KeyOutcome::ui(UiAction::Close)
            } else if unfit && key.code == KeyCode::Enter {
                if typed.value().trim() == OVERRIDE_WORD {
                    send(Some(OVERRIDE_WORD.to_string()))
                } else {
                    KeyOutcome::flash(format!(
                        "Y is not fit: type {OVERRIDE_WORD} to send the traffic anyway, or Esc"
                    ))
                }
            } else if !unfit
                && (key.code == KeyCode::Enter || matches!(letter(&key), Some('y' | 'c')))
            {
                send(None)
            } else if unfit {
                edit(key)
            } else {
                KeyOutcome::default()
            }
        }
        Modal::Irreversible {
            step, typed, retry, ..
        } => {
            if esc || is_ctrl_c(&key) {
                KeyOutcome::ui(UiAction::Close)
            } else if key.code == KeyCode::Enter {
                let name = &state.plan().name;
                if typed.value() == name {
                    let step = step.clone();
                    let typed = Some(name.clone());
                    KeyOutcome::send(if *retry {
                        Command::Retry {
                            step: step.clone(),
                            typed,
                        }
                    } else {
                        Command::Confirm {
                            step: step.clone(),
                            typed,
                        }
                    })
                    .and(UiAction::Close)
                    .and(UiAction::AwaitStart(step))
                } else {
                    KeyOutcome::flash(format!("type the plan name exactly: {name}"))
                }
            } else {
                edit(key)
            }
        }
        Modal::Prompt { purpose, input } => {
            if esc || is_ctrl_c(&key) {
                KeyOutcome::ui(UiAction::Close)
            } else if key.code == KeyCode::Enter {
                submit_prompt(state, purpose, input.value().trim())
            } else {
                edit(key)
            }
        }
        Modal::TakeOut { step, node, reason } => {
            let name = node.value().trim();
            if esc || is_ctrl_c(&key) {
                KeyOutcome::ui(UiAction::Close)
            } else if key.code != KeyCode::Enter {
                edit(key)
            } else if name.is_empty() {
                KeyOutcome::flash("type the name of the node that failed")
            } else {
                match reason {
                    // The name is typed: now the reason.
                    None => KeyOutcome::ui(UiAction::Open(Modal::TakeOut {
                        step: step.clone(),
                        node: node.clone(),
                        reason: Some(Input::default()),
                    })),
                    Some(reason) if reason.value().trim().is_empty() => KeyOutcome::flash(format!(
                        "say why {name} is taken out: the reason goes into the journal"
                    )),
                    Some(reason) => KeyOutcome::send(Command::TakeOut {
                        step: step.clone(),
                        node: name.to_string(),
                        reason: reason.value().trim().to_string(),
                    })
                    .and(UiAction::Close),
                }
            }
        }
        Modal::Rollback => {
            if esc || matches!(letter(&key), Some('q')) {
                KeyOutcome::ui(UiAction::Close)
            } else if key.code == KeyCode::Enter || matches!(letter(&key), Some('c')) {
                match state.read_only_because() {
                    Some(because) => KeyOutcome::flash(because),
                    None => confirm_next_rollback_step(state),
                }
            } else if matches!(letter(&key), Some('?')) {
                KeyOutcome::ui(UiAction::Open(Modal::Help))
            } else {
                KeyOutcome::default()
            }
        }
        Modal::Abort { .. } => {
            if matches!(letter(&key), Some('y')) {
                KeyOutcome::send(Command::Abort).and(UiAction::Close)
            } else if esc || matches!(letter(&key), Some('n' | 'q')) || is_ctrl_c(&key) {
                KeyOutcome::ui(UiAction::Close)
            } else {
                KeyOutcome::default()
            }
        }
        Modal::StillRunning { step, kill: false } => {
            if esc || matches!(letter(&key), Some('w')) || is_ctrl_c(&key) {
                KeyOutcome::ui(UiAction::Close).and(UiAction::Flash(
                    format!("waiting for {step}'s command: its end is recorded when it comes"),
                    Tone::Plain,
                ))
            } else if matches!(letter(&key), Some('x')) {
                still_running(step, true)
            } else {
                KeyOutcome::default()
            }
        }
        Modal::StillRunning { step, kill: true } => {
            if matches!(letter(&key), Some('y')) {
                KeyOutcome::send(Command::Kill { step: step.clone() }).and(UiAction::Close)
            } else if esc || matches!(letter(&key), Some('n' | 'q')) || is_ctrl_c(&key) {
                KeyOutcome::ui(UiAction::Close)
            } else {
                KeyOutcome::default()
            }
        }
        Modal::Handover { .. } => {
            if matches!(letter(&key), Some('y')) {
                // Handing over leaves as quitting does: a running step ends first.
                KeyOutcome::send(Command::HandOver).and(UiAction::Exit)
            } else if esc || matches!(letter(&key), Some('n')) {
                KeyOutcome::send(Command::KeepRun).and(UiAction::Close)
            } else {
                KeyOutcome::default()
            }
        }
        Modal::QuitWhileRunning { .. } => {
            if key.code == KeyCode::Enter || matches!(letter(&key), Some('y' | 'q')) {
                KeyOutcome::send(Command::Quit).and(UiAction::Exit)
            } else if esc || matches!(letter(&key), Some('n')) {
                KeyOutcome::ui(UiAction::Close)
            } else {
                KeyOutcome::default()
            }
        }
    }
}

fn edit(key: KeyEvent) -> KeyOutcome {
    match tui_input::backend::crossterm::to_input_request(&TermEvent::Key(key)) {
        Some(request) => KeyOutcome::ui(UiAction::Edit(request)),
        None => KeyOutcome::default(),
    }
}

fn submit_prompt(state: &ConsoleState, purpose: &PromptPurpose, text: &str) -> KeyOutcome {
    match purpose {
        PromptPurpose::LogFilter => {
            let filter = (!text.is_empty()).then(|| text.to_string());
            KeyOutcome::ui(UiAction::SetLogFilter(filter)).and(UiAction::Close)
        }
        PromptPurpose::Skip(_) | PromptPurpose::MarkDone(_) if text.is_empty() => {
            KeyOutcome::flash("write a reason: it goes into the journal")
        }
        PromptPurpose::SetTraffic => {
            // `25 override`: more to a Y found unfit, as the prompt then asks.
            let (text, override_health) = match text.strip_suffix(OVERRIDE_WORD) {
                Some(rest) => (rest.trim(), true),
                None => (text, false),
            };
            let Some(y_percent) = parse_percent(text) else {
                return KeyOutcome::flash("a whole number from 0 (all on X) to 100 (all on Y)");
            };
            let unfit = state.y_unfit_at(y_percent);
            if !unfit.is_empty() && !override_health {
                return KeyOutcome::flash(format!(
                    "Y is not fit: {}. `{y_percent} {OVERRIDE_WORD}` sends it anyway",
                    unfit.join("; ")
                ));
            }
            KeyOutcome::send(Command::SetTraffic {
                y_percent,
                override_health,
            })
            .and(UiAction::Close)
            .and(UiAction::Flash(
                format!("asked the load balancer for Y {y_percent}%"),
                Tone::Plain,
            ))
        }
        PromptPurpose::Skip(step) => KeyOutcome::send(Command::Skip {
            step: step.clone(),
            reason: text.to_string(),
        })
        .and(UiAction::Close),
        PromptPurpose::MarkDone(step) => KeyOutcome::send(Command::MarkDone {
            step: step.clone(),
            note: text.to_string(),
        })
        .and(UiAction::Close),
    }
}

/// `25`, `25%` or ` 25 % ` to Y; anything else, or above 100, is no split.
fn parse_percent(text: &str) -> Option<u8> {
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    number.parse::<u8>().ok().filter(|percent| *percent <= 100)
}

fn confirm_next_rollback_step(state: &ConsoleState) -> KeyOutcome {
    let Some(next) = state.next_rollback_step() else {
        return KeyOutcome::flash("no rollback step is waiting for a confirm");
    };
    match state.step(next) {
        Some((step, _)) if state.can_confirm(next) => open_confirm(next, step.irreversible),
        _ => KeyOutcome::flash(format!("waiting for the engine to offer {next}")),
    }
}

//! Enter on a step that cannot be confirmed now: a read-only view of all of it (why it
//! cannot be confirmed, its state and outcome, what it runs and where, the guide's words),
//! so the detail pane's "Enter shows all" holds in every state. Nothing here changes the
//! run; the dialog scrolls like every other.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::event::{RunState, StepState};
use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::{Tone, step_symbol};

use super::{Dialog, confirm, keys_line, paragraph};

const WIDTH: u16 = 76;

/// Why `step` cannot be confirmed now, in the words the footer used to say it; `None`
/// when it can.
pub fn why_not_now(state: &ConsoleState, step: &StepRef) -> Option<String> {
    let status = state.step_state(step)?;
    if !state.can_confirm(step) {
        let (_, word, _) = step_symbol(status);
        let next = match status {
            StepState::Failed => "r retries it, R rolls back",
            StepState::Interrupted => "r retries it, m marks it done, s skips it",
            StepState::Running => "x aborts it",
            _ => "only a ready step can be confirmed",
        };
        return Some(format!("{step} is {word}: {next}"));
    }
    (state.run_state() == RunState::Paused).then(|| "the run is paused: p resumes it".into())
}

pub fn dialog(state: &ConsoleState, step_ref: &StepRef, area: Rect) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new(format!("Step · {step_ref}"), WIDTH);
    let width = dialog.inner_width(area);
    let Some((step, status)) = state.step(step_ref) else {
        dialog.body = vec![Line::from(format!("{step_ref} is not in this plan"))];
        return dialog;
    };
    let mut lines = confirm::heading(state, step_ref, width);
    lines.push(Line::default());
    let (symbol, word, tone) = step_symbol(status.state);
    let mut said = format!("{symbol} {word}");
    if let (StepState::Running, Some(secs)) = (status.state, state.running_secs()) {
        said.push_str(&format!(" for {}", text::duration(secs)));
    }
    if let Some(left) = status.bake_remaining {
        said.push_str(&format!(" · bake {} left", text::duration(left)));
    }
    if let Some(detail) = &status.detail {
        said.push_str(&format!(": {detail}"));
    }
    lines.extend(paragraph(&said, width, theme.tone(tone)));
    if let Some(what) = &status.still_running {
        lines.extend(paragraph(
            &format!("⚠ still running: {what}"),
            width,
            theme.tone(Tone::Warn),
        ));
    }
    if let Some(why) = why_not_now(state, step_ref) {
        lines.extend(paragraph(&why, width, theme.tone(Tone::Muted)));
    }
    if step.irreversible {
        let because = step
            .irreversible_because
            .as_deref()
            .unwrap_or("this step cannot be undone");
        lines.extend(paragraph(
            &format!("! irreversible: {because}"),
            width,
            theme.tone(Tone::Warn),
        ));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "What it runs, and where:",
        theme.bold(),
    )));
    lines.extend(confirm::run_lines(state, state.runs(step_ref), width));
    lines.push(Line::default());
    lines.extend(paragraph(&step.instruction, width, theme.tone(Tone::Plain)));
    dialog.body = lines;
    dialog.fixed = vec![
        Line::default(),
        keys_line(theme, &[("Esc", "close"), ("↑↓ PgUp PgDn", "scroll")]),
    ];
    dialog
}

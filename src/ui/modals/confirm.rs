//! Before a step runs: the guide's instruction, exactly what will run and where.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{Dialog, keys_line, paragraph};

pub const WIDTH: u16 = 76;

pub fn dialog(state: &ConsoleState, step: &StepRef, area: Rect) -> Dialog {
    let mut dialog = Dialog::new(title(state, step), WIDTH);
    let width = dialog.inner_width(area);
    dialog.body = body(state, step, width);
    // The traffic warning stays in view with the keys: it is what the operator must read.
    dialog.fixed = traffic_back(state, step, width);
    dialog.fixed.push(Line::default());
    dialog.fixed.push(keys_line(
        state.theme(),
        &[("⏎", "run it"), ("Esc", "cancel")],
    ));
    dialog
}

/// The warning of a traffic stage that would send less to Y than Y has now (the load
/// balancer's split when it reported one, else the one asked for): a blank, then the
/// warning wrapped; nothing for any other step.
pub fn traffic_back(state: &ConsoleState, step: &StepRef, width: usize) -> Vec<Line<'static>> {
    let y_now = state.traffic().map(|t| t.applied.unwrap_or(t.requested).y);
    let Some(warning) = state
        .step(step)
        .and_then(|(s, _)| crate::engine::plan_change::traffic_backwards(&s.kind, y_now))
    else {
        return Vec::new();
    };
    let mut rows = vec![Line::default()];
    rows.extend(paragraph(
        &format!("⚠ {warning}"),
        width,
        state.theme().tone(Tone::Warn),
    ));
    rows
}

/// What `runs` take on screen, wrapped to `width`: `  → ` before each, its further rows
/// indented under it.
pub fn run_lines(state: &ConsoleState, runs: &[String], width: usize) -> Vec<Line<'static>> {
    let theme = state.theme();
    runs.iter()
        .flat_map(|run| {
            text::wrap(run, width.saturating_sub(4))
                .into_iter()
                .enumerate()
                .map(move |(i, row)| {
                    let lead = if i == 0 { "  → " } else { "    " };
                    Line::from(vec![
                        Span::styled(lead, theme.tone(Tone::Accent)),
                        Span::raw(row),
                    ])
                })
        })
        .collect()
}

pub fn title(state: &ConsoleState, step: &StepRef) -> String {
    if state.is_rollback_step(step) {
        format!("Rollback step · {step}")
    } else {
        format!("Confirm · {step}")
    }
}

/// The step's title, what will run and where, then the guide's words for it: every word,
/// wrapped to `width` (the dialog scrolls them). What is confirmed comes first, so a long
/// instruction never pushes it out of the first page.
pub fn body(state: &ConsoleState, step_ref: &StepRef, width: usize) -> Vec<Line<'static>> {
    let theme = state.theme();
    let Some((step, _)) = state.step(step_ref) else {
        return vec![Line::from(format!("{step_ref} is not in this plan"))];
    };
    let mut lines = heading(state, step_ref, width);
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "What will run, and where:",
        theme.bold(),
    )));
    lines.extend(run_lines(state, state.runs(step_ref), width));
    lines.push(Line::default());
    lines.extend(paragraph(&step.instruction, width, theme.tone(Tone::Plain)));
    lines
}

/// The step's title (bold) and where it comes from (muted), wrapped.
pub fn heading(state: &ConsoleState, step_ref: &StepRef, width: usize) -> Vec<Line<'static>> {
    let theme = state.theme();
    let Some((step, _)) = state.step(step_ref) else {
        return Vec::new();
    };
    let guide = if step.guide_ref.is_empty() {
        "a step of kongup's own".to_string()
    } else {
        format!("Kong's guide, step {}", step.guide_ref)
    };
    let mut lines = paragraph(&step.title, width, theme.bold());
    lines.extend(paragraph(
        &format!("{guide} · {}", step.kind.as_str()),
        width,
        theme.tone(Tone::Muted),
    ));
    lines
}

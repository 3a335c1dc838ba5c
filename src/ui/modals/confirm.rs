//! Before a step runs: the guide's instruction, exactly what will run and where.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::event::StepState;
use crate::engine::health::OVERRIDE_WORD;
use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{Dialog, keys_line, paragraph};

pub const WIDTH: u16 = 76;

/// `retry`: the step failed or was interrupted and runs again. `typed`: the override word,
/// asked when the step would send more traffic to a Y found unfit.
pub fn dialog(
    state: &ConsoleState,
    step: &StepRef,
    retry: bool,
    typed: &tui_input::Input,
    area: Rect,
) -> Dialog {
    let mut dialog = Dialog::new(title(state, step, retry), WIDTH);
    let width = dialog.inner_width(area);
    dialog.body = body(state, step, width);
    if retry {
        let after_heading = heading(state, step, width).len() + 1;
        let failed = wave_failure(state, step, width);
        dialog.body.splice(after_heading..after_heading, failed);
    }
    // The traffic warning, Y's health and the keys stay in view: they are what the
    // operator must read before acting.
    dialog.fixed = traffic_back(state, step, width);
    let health = health(state, step, typed, width);
    let run_it = if health.is_empty() {
        "run it".to_string()
    } else if typed.value().trim() == OVERRIDE_WORD {
        "run it over Y's health".to_string()
    } else {
        format!("runs it once {OVERRIDE_WORD} is typed")
    };
    dialog.fixed.extend(health);
    dialog.fixed.push(Line::default());
    dialog.fixed.push(keys_line(
        state.theme(),
        &[("⏎", &run_it), ("Esc", "cancel")],
    ));
    dialog
}

/// The retry of a wave's node step that failed: the engine's failure, which names the
/// nodes that failed (the retry runs only on them), then a blank; nothing otherwise.
fn wave_failure(state: &ConsoleState, step: &StepRef, width: usize) -> Vec<Line<'static>> {
    let Some((s, status)) = state.step(step) else {
        return Vec::new();
    };
    let in_wave = s.kind.is_wave_node_step();
    match (&status.detail, status.state) {
        (Some(detail), StepState::Failed) if in_wave => {
            let mut rows = vec![Line::default()];
            rows.extend(paragraph(
                &format!("✖ {detail}"),
                width,
                state.theme().tone(Tone::Bad),
            ));
            rows
        }
        _ => Vec::new(),
    }
}

/// Y's health section of a traffic stage onto a Y found unfit (`engine::health`): why,
/// node by node, and the override word being `typed`; nothing when Y is fit or the step
/// sends Y no more traffic.
pub fn health(
    state: &ConsoleState,
    step: &StepRef,
    typed: &tui_input::Input,
    width: usize,
) -> Vec<Line<'static>> {
    let unfit = state.y_unfit_for(step);
    if unfit.is_empty() {
        return Vec::new();
    }
    let theme = state.theme();
    let mut rows = vec![Line::default()];
    rows.extend(paragraph(
        "⚠ Y is not fit for more traffic:",
        width,
        theme.tone(Tone::Bad),
    ));
    for why in &unfit {
        for (i, row) in text::wrap(why, width.saturating_sub(4))
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 { "  ✖ " } else { "    " };
            rows.push(Line::from(vec![
                Span::styled(lead, theme.tone(Tone::Bad)),
                Span::styled(row, theme.tone(Tone::Warn)),
            ]));
        }
    }
    rows.extend(paragraph(
        &format!("Type {OVERRIDE_WORD} to send the traffic anyway (journaled with your name):"),
        width,
        theme.tone(Tone::Plain),
    ));
    rows.push(super::irreversible::input_line(state, typed, width));
    rows
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

/// What the dialog asks: a retry, a rollback step's confirm, or a step's.
pub fn title(state: &ConsoleState, step: &StepRef, retry: bool) -> String {
    if retry {
        format!("Retry · {step}")
    } else if state.is_rollback_step(step) {
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
    lines.extend(wave_lines(state, step_ref, width));
    lines.push(Line::default());
    lines.extend(paragraph(&step.instruction, width, theme.tone(Tone::Plain)));
    lines
}

/// A wave confirmed as one (`engine::wave`): a blank, then what the confirm runs of the
/// wave (bold), each step indented, and where it pauses; nothing for any other step.
fn wave_lines(state: &ConsoleState, step: &StepRef, width: usize) -> Vec<Line<'static>> {
    let said = crate::engine::wave::confirm_lines(state.plan(), state.expanded(), step, |s| {
        state.wave_runs(s)
    });
    let Some((first, rest)) = said.split_first() else {
        return Vec::new();
    };
    let theme = state.theme();
    let mut lines = vec![Line::default()];
    lines.extend(paragraph(first, width, theme.bold()));
    for line in rest {
        match line.strip_prefix("  ") {
            Some(step_line) => lines.extend(run_lines(state, &[step_line.to_string()], width)),
            None => lines.extend(paragraph(line, width, theme.tone(Tone::Plain))),
        }
    }
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

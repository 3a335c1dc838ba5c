//! The steps, phase by phase, with their states; below them, the selected step: the guide's
//! instruction and what it will run.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::engine::event::StepState;
use crate::plan::steps::{PhaseName, Step, StepRef};
use crate::ui::state::{ConsoleState, Pane, StepStatus};
use crate::ui::text;
use crate::ui::theme::{Theme, Tone, step_symbol};

use super::pane_block;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let done = state
        .steps()
        .filter(|(_, _, s)| matches!(s.state, StepState::Succeeded | StepState::Skipped))
        .count();
    let block = pane_block(
        state,
        Pane::Checklist,
        vec![Span::raw(format!("{done}/{} done", state.step_count()))],
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 3 || inner.width < 10 {
        return;
    }
    let detail_rows = (inner.height * 2 / 5).clamp(4, 14);
    let list_rows = inner.height - detail_rows - 1;
    let list = Rect::new(inner.x, inner.y, inner.width, list_rows);
    let rule = Rect::new(inner.x, inner.y + list_rows, inner.width, 1);
    let detail = Rect::new(inner.x, rule.bottom(), inner.width, detail_rows);

    frame.render_widget(Paragraph::new(list_lines(state, list)), list);
    frame.render_widget(
        Paragraph::new("─".repeat(inner.width as usize)).style(state.theme().tone(Tone::Muted)),
        rule,
    );
    frame.render_widget(Paragraph::new(detail_lines(state, detail)), detail);
}

enum Row {
    Phase(PhaseName),
    Step(usize),
}

fn list_lines(state: &ConsoleState, area: Rect) -> Vec<Line<'static>> {
    let theme = state.theme();
    let width = area.width as usize;
    let mut rows = Vec::new();
    let mut last_phase = None;
    for (i, (step_ref, _, _)) in state.steps().enumerate() {
        if last_phase != Some(step_ref.phase) {
            rows.push(Row::Phase(step_ref.phase));
            last_phase = Some(step_ref.phase);
        }
        rows.push(Row::Step(i));
    }
    let selected_row = rows
        .iter()
        .position(|r| matches!(r, Row::Step(i) if *i == state.selected_index()))
        .unwrap_or(0);
    // Keep the selection in view, a third of the way down, so what comes next shows.
    let height = area.height as usize;
    let first = selected_row
        .saturating_sub(height / 3)
        .min(rows.len().saturating_sub(height));
    let steps: Vec<_> = state.steps().collect();
    rows.iter()
        .skip(first)
        .take(height)
        .map(|row| match row {
            Row::Phase(phase) => {
                let words = match state.expanded().phases.iter().find(|p| p.name == *phase) {
                    Some(p) => format!("{} · {}", p.name, p.strategy.as_str()),
                    None if *phase == PhaseName::Rollback => "rollback · newest first".into(),
                    None => phase.to_string(),
                };
                text_line(words, width, theme.bold())
            }
            Row::Step(i) => {
                let (_, step, status) = steps[*i];
                step_row(state, step, status, width, *i == state.selected_index())
            }
        })
        .collect()
}

fn text_line(s: String, width: usize, style: Style) -> Line<'static> {
    Line::from(Span::styled(text::truncate(&s, width), style))
}

/// The tag at the end of a step's row: its state in words, with a clock while it runs.
fn state_tag(state: &ConsoleState, status: &StepStatus) -> String {
    let (_, word, _) = step_symbol(status.state);
    if status.still_running.is_some() {
        return "[still running]".to_string();
    }
    match (status.state, status.bake_remaining, state.running_secs()) {
        (StepState::Running, Some(left), _) => format!("[bake {}]", text::duration(left)),
        (StepState::Running, None, Some(secs)) => format!("[running {}]", text::duration(secs)),
        _ => format!("[{word}]"),
    }
}

fn step_row(
    state: &ConsoleState,
    step: &Step,
    status: &StepStatus,
    width: usize,
    selected: bool,
) -> Line<'static> {
    let theme = state.theme();
    let (symbol, _, tone) = step_symbol(status.state);
    let tag = state_tag(state, status);
    let mark = if step.irreversible { "!" } else { " " };
    let title_room = width.saturating_sub(4 + text::width(&tag) + 1);
    let title = text::fit(&step.title, title_room);
    let row_style = if selected {
        theme.selected()
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::styled(format!(" {symbol}"), theme.tone(tone).patch(row_style)),
        Span::styled(format!("{mark} "), theme.tone(Tone::Warn).patch(row_style)),
        Span::styled(title, row_style),
        Span::styled(" ", row_style),
        Span::styled(tag, theme.tone(tone).patch(row_style)),
    ])
}

fn detail_lines(state: &ConsoleState, area: Rect) -> Vec<Line<'static>> {
    let theme = state.theme();
    let width = area.width as usize;
    let height = area.height as usize;
    let Some((step_ref, step, status)) = state.selected() else {
        return vec![Line::from("no steps")];
    };
    let mut lines = Vec::new();
    let guide = if step.guide_ref.is_empty() {
        "extra step".to_string()
    } else {
        format!("guide {}", step.guide_ref)
    };
    let kind = step.kind.as_str();
    let heading = if kind == step_ref.id {
        format!("{guide} · {kind}")
    } else {
        format!("{guide} · {kind} · {}", step_ref.id)
    };
    lines.push(text_line(heading, width, theme.tone(Tone::Muted)));
    if let Some(detail) = &status.detail {
        // What went wrong, where kongup can know it, above the details.
        if matches!(status.state, StepState::Failed | StepState::Interrupted)
            && let Some(cause) = state.likely_cause(Some(detail))
        {
            for row in text::wrap(&format!("likely cause: {cause}"), width)
                .into_iter()
                .take(2)
            {
                lines.push(Line::from(Span::styled(row, theme.tone(Tone::Warn))));
            }
        }
        let (symbol, _, tone) = step_symbol(status.state);
        for row in text::wrap(&format!("{symbol} {detail}"), width)
            .into_iter()
            .take(2)
        {
            lines.push(Line::from(Span::styled(row, theme.tone(tone))));
        }
    }
    if step.irreversible {
        let because = step
            .irreversible_because
            .as_deref()
            .unwrap_or("this step cannot be undone");
        lines.push(text_line(
            format!("! irreversible: {because}"),
            width,
            theme.tone(Tone::Warn),
        ));
    }
    // What runs matters more than the rest of the instruction: the instruction keeps one
    // row, the run lines take what they need (wrapped if they can, else a row each).
    let room = height.saturating_sub(lines.len());
    let runs_room = room.saturating_sub(1);
    let mut runs = run_rows(state, step_ref, width, theme, true);
    if runs.len() > runs_room {
        runs = run_rows(state, step_ref, width, theme, false);
    }
    if runs.len() > runs_room {
        let hidden = runs.len() - runs_room.saturating_sub(1);
        runs.truncate(runs_room.saturating_sub(1));
        runs.push(text_line(
            format!("… {hidden} more: Enter shows all"),
            width,
            theme.tone(Tone::Muted),
        ));
    }
    let instruction_room = room.saturating_sub(runs.len()).max(1);
    let instruction = text::wrap(&step.instruction, width);
    let cut = instruction.len() > instruction_room;
    for (i, row) in instruction.into_iter().take(instruction_room).enumerate() {
        if cut && i + 1 == instruction_room {
            lines.push(Line::from(text::truncate(&format!("{row} …"), width)));
        } else {
            lines.push(Line::from(row));
        }
    }
    lines.extend(runs);
    lines.truncate(height);
    lines
}

/// A row per thing the step runs, or several when `wrap` and the line is long.
fn run_rows(
    state: &ConsoleState,
    step_ref: &StepRef,
    width: usize,
    theme: Theme,
    wrap: bool,
) -> Vec<Line<'static>> {
    let style = theme.tone(Tone::Accent);
    let mut rows = Vec::new();
    for run in state.runs(step_ref) {
        let line = format!("→ {run}");
        if !wrap {
            rows.push(text_line(line, width, style));
            continue;
        }
        for (i, row) in text::wrap(&line, width.saturating_sub(2))
            .into_iter()
            .enumerate()
        {
            let row = if i == 0 { row } else { format!("  {row}") };
            rows.push(Line::from(Span::styled(row, style)));
        }
    }
    rows
}

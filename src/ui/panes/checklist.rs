//! The steps, phase by phase, with their states; a rolling fleet's waves one row each with
//! their progress (the selected step's wave open to its steps, and with → to its nodes);
//! below them, the selected step: the guide's instruction and what it will run.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::engine::event::StepState;
use crate::plan::steps::{ClusterSide, PhaseName, Step, StepRef};
use crate::ui::state::{ConsoleState, Pane, StepStatus, WaveNode, WaveNodeState};
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
    /// A wave's progress; its steps follow only while the selection is on one of them.
    Wave(usize),
    /// One of the expanded wave's nodes.
    Node(WaveNode),
    /// What of the expanded wave's nodes did not fit.
    MoreNodes {
        hidden: usize,
        failed: usize,
    },
}

/// The rows of the list: phases, steps, and each wave as one row. The wave holding the
/// selection shows its steps under its row (so they stay one ↑↓ away, confirmed as any
/// step), then, expanded (→), its nodes, worst first, as many as fill the list below its
/// row and steps.
fn rows(state: &ConsoleState, height: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut last_phase = None;
    let mut last_wave = None;
    let mut wave_row = 0;
    let open = state.wave_of_step(state.selected_index());
    let count = state.step_count();
    for (i, (step_ref, _, _)) in state.steps().enumerate() {
        if last_phase != Some(step_ref.phase) {
            rows.push(Row::Phase(step_ref.phase));
            last_phase = Some(step_ref.phase);
        }
        let wave = state.wave_of_step(i);
        if let Some(n) = wave.filter(|_| wave != last_wave) {
            wave_row = rows.len();
            rows.push(Row::Wave(n));
        }
        last_wave = wave;
        if wave.is_none() || wave == open {
            rows.push(Row::Step(i));
        }
        let wave_ends = i + 1 == count || state.wave_of_step(i + 1) != wave;
        if let Some(n) = wave.filter(|n| wave_ends && state.expanded_wave() == Some(*n)) {
            let room = height.saturating_sub(rows.len() - wave_row).max(2);
            node_rows(state, n, room, &mut rows);
        }
    }
    rows
}

/// The expanded wave's nodes in `room` rows, the last saying what did not fit.
fn node_rows(state: &ConsoleState, wave: usize, room: usize, rows: &mut Vec<Row>) {
    let nodes = state.wave_nodes(wave);
    if nodes.len() <= room {
        rows.extend(nodes.into_iter().map(Row::Node));
        return;
    }
    let shown = room - 1;
    let failed = nodes[shown..]
        .iter()
        .filter(|n| matches!(n.state, WaveNodeState::Failed(_)))
        .count();
    let hidden = nodes.len() - shown;
    rows.extend(nodes.into_iter().take(shown).map(Row::Node));
    rows.push(Row::MoreNodes { hidden, failed });
}

fn list_lines(state: &ConsoleState, area: Rect) -> Vec<Line<'static>> {
    let theme = state.theme();
    let width = area.width as usize;
    let height = area.height as usize;
    let rows = rows(state, height);
    let selected_row = rows
        .iter()
        .position(|r| matches!(r, Row::Step(i) if *i == state.selected_index()))
        .unwrap_or(0);
    // Keep the selection in view, a third of the way down, so what comes next shows; an
    // expanded wave from its row down, so its nodes fill the rest.
    let expanded_row = state.expanded_wave().and_then(|n| {
        rows.iter()
            .position(|r| matches!(r, Row::Wave(w) if *w == n))
    });
    let first = expanded_row.unwrap_or_else(|| {
        selected_row
            .saturating_sub(height / 3)
            .min(rows.len().saturating_sub(height))
    });
    let steps: Vec<_> = state.steps().collect();
    let name_width = rows
        .iter()
        .filter_map(|r| match r {
            Row::Node(node) => Some(text::width(&node.name)),
            _ => None,
        })
        .max()
        .unwrap_or(0);
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
                let indent = if state.wave_of_step(*i).is_some() {
                    2
                } else {
                    0
                };
                step_row(
                    state,
                    step,
                    status,
                    width,
                    indent,
                    *i == state.selected_index(),
                )
            }
            Row::Wave(n) => wave_row(state, *n, width),
            Row::Node(node) => node_row(theme, node, name_width, width),
            Row::MoreNodes { hidden, failed } => {
                let words = if *failed > 0 {
                    format!("     … {hidden} more, {failed} of them failed")
                } else {
                    format!("     … {hidden} more, none failed")
                };
                text_line(words, width, theme.tone(Tone::Muted))
            }
        })
        .collect()
}

/// `✖ wave 3/4 · 212/250 nodes up · 3 failed [failed]`, or where that does not fit,
/// `✖ wave 3/4 · 212/250 up · 3 failed [failed]`, or `✖ w3/4 212/250 up ✖3 [failed]`.
fn wave_row(state: &ConsoleState, number: usize, width: usize) -> Line<'static> {
    let theme = state.theme();
    let Some(wave) = state.wave_progress(number) else {
        return text_line(format!(" wave {number}"), width, Style::new());
    };
    let (symbol, word, tone) = step_symbol(wave.state);
    let tag = format!("[{word}]");
    let (n, of, up, all) = (wave.number, wave.of, wave.up, wave.y_nodes);
    let failed = |form: &str| match wave.failed {
        0 => String::new(),
        f => form.replace('#', &f.to_string()),
    };
    let room = width.saturating_sub(4 + text::width(&tag) + 1);
    let words = [
        format!(
            "wave {n}/{of} · {up}/{all} nodes up{}",
            failed(" · # failed")
        ),
        format!("wave {n}/{of} · {up}/{all} up{}", failed(" · # failed")),
        format!("w{n}/{of} {up}/{all} up{}", failed(" ✖#")),
    ]
    .into_iter()
    .find(|words| text::width(words) <= room)
    .unwrap_or_else(|| format!("w{n}/{of} {up}/{all}{}", failed(" ✖#")));
    let failed_style = if wave.failed > 0 {
        theme.tone(Tone::Bad)
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::styled(format!(" {symbol}  "), theme.tone(tone)),
        Span::styled(text::fit(&words, room), theme.bold().patch(failed_style)),
        Span::raw(" "),
        Span::styled(tag, theme.tone(tone)),
    ])
}

/// `     ✖ dp-y-3  start failed: exit status 1`, `✔ dp-y-2  up`, `○ dp-x-4  to stop`.
fn node_row(theme: Theme, node: &WaveNode, name_width: usize, width: usize) -> Line<'static> {
    let (symbol, words, tone) = match (&node.state, node.side) {
        (WaveNodeState::Failed(why), ClusterSide::Y) => {
            ("✖", format!("start failed: {why}"), Tone::Bad)
        }
        (WaveNodeState::Failed(why), ClusterSide::X) => {
            ("✖", format!("stop failed: {why}"), Tone::Bad)
        }
        (WaveNodeState::Waiting, ClusterSide::Y) => ("○", "to start".to_string(), Tone::Muted),
        (WaveNodeState::Waiting, ClusterSide::X) => ("○", "to stop".to_string(), Tone::Muted),
        (WaveNodeState::Done, ClusterSide::Y) => ("✔", "up".to_string(), Tone::Good),
        (WaveNodeState::Done, ClusterSide::X) => ("✔", "stopped".to_string(), Tone::Good),
    };
    let pad = " ".repeat(name_width.saturating_sub(text::width(&node.name)));
    let text = text::truncate(&format!("     {symbol} {}{pad}  {words}", node.name), width);
    Line::from(Span::styled(text, theme.tone(tone)))
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
    indent: usize,
    selected: bool,
) -> Line<'static> {
    let theme = state.theme();
    let (symbol, _, tone) = step_symbol(status.state);
    let tag = state_tag(state, status);
    let mark = if step.irreversible { "!" } else { " " };
    let title_room = width.saturating_sub(indent + 4 + text::width(&tag) + 1);
    // Under its wave's row, a wave step's title goes without its `Wave 2/4: `.
    let title = match step.title.split_once(": ") {
        Some((head, rest)) if indent > 0 && head.starts_with("Wave ") => rest,
        _ => step.title.as_str(),
    };
    let title = text::fit(title, title_room);
    let row_style = if selected {
        theme.selected()
    } else {
        Style::new()
    };
    Line::from(vec![
        Span::styled(
            format!("{} {symbol}", " ".repeat(indent)),
            theme.tone(tone).patch(row_style),
        ),
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

//! Before a step runs: the guide's instruction, exactly what will run and where.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{draw_dialog, inner_width, max_inner_height};

pub const WIDTH: u16 = 76;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, step: &StepRef, scroll: usize) {
    let width = inner_width(area, WIDTH);
    let room = max_inner_height(area);
    let footer = vec![
        Line::default(),
        Line::from(vec![
            Span::styled("⏎", state.theme().bold()),
            Span::raw(" run it · "),
            Span::styled("Esc", state.theme().bold()),
            Span::raw(" cancel"),
        ]),
    ];
    let lines = body(
        state,
        step,
        width,
        room.saturating_sub(footer.len()),
        Vec::new(),
        scroll,
    );
    let title = title(state, step);
    draw_dialog(
        frame,
        area,
        state.theme(),
        title,
        WIDTH,
        [lines, footer].concat(),
    );
}

pub fn title(state: &ConsoleState, step: &StepRef) -> String {
    if state.is_rollback_step(step) {
        format!("Rollback step · {step}")
    } else {
        format!("Confirm · {step}")
    }
}

/// The dialog's text for `step`, at most `room` rows, its run list scrolled past `scroll`
/// commands: `tail` (the irreversible warning and the typed field) always shows; the
/// instruction gives way first, then the run list.
pub fn body(
    state: &ConsoleState,
    step_ref: &StepRef,
    width: usize,
    room: usize,
    tail: Vec<Line<'static>>,
    scroll: usize,
) -> Vec<Line<'static>> {
    let theme = state.theme();
    let Some((step, _)) = state.step(step_ref) else {
        return vec![Line::from(format!("{step_ref} is not in this plan"))];
    };
    let instruction = step.instruction.as_str();

    let mut head = vec![Line::from(Span::styled(
        text::truncate(&step.title, width),
        theme.bold(),
    ))];
    let guide = if step.guide_ref.is_empty() {
        "a step of kongup's own".to_string()
    } else {
        format!("Kong's guide, step {}", step.guide_ref)
    };
    head.push(Line::from(Span::styled(
        text::truncate(&format!("{guide} · {}", step.kind.as_str()), width),
        theme.tone(Tone::Muted),
    )));

    // Each command's rows, whole: the list gives way by commands (the arrows scroll it),
    // before the tail (the warning, the typed field, the keys), for an operator who cannot
    // see how to confirm cannot act. One instruction row stays.
    let commands: Vec<Vec<String>> = state
        .runs(step_ref)
        .iter()
        .map(|run| text::wrap(run, width.saturating_sub(4)))
        .collect();
    let scroll = scroll.min(commands.len().saturating_sub(1));
    let runs_room = room.saturating_sub(head.len() + tail.len() + 4);
    let rows_from_scroll: usize = commands[scroll..].iter().map(Vec::len).sum();
    let above = usize::from(scroll > 0);
    // Without room for everything, one row says what is left out below.
    let limit = if above + rows_from_scroll <= runs_room {
        runs_room - above
    } else {
        runs_room.saturating_sub(above + 1).max(1)
    };
    let muted = |line: String| {
        Line::from(Span::styled(
            text::truncate(&line, width),
            theme.tone(Tone::Muted),
        ))
    };
    let mut runs = vec![
        Line::default(),
        Line::from(Span::styled("What will run, and where:", theme.bold())),
    ];
    if scroll > 0 {
        runs.push(muted(format!("  ↑ {scroll} more above")));
    }
    let mut used = 0;
    for (n, rows) in commands.iter().enumerate().skip(scroll) {
        if n > scroll && used + rows.len() > limit {
            let below = commands.len() - n;
            runs.push(muted(format!("  ↓ {below} more below: the arrows scroll")));
            break;
        }
        let mut rows = rows.clone();
        if rows.len() > limit {
            rows.truncate(limit);
            if let Some(last) = rows.last_mut() {
                *last = text::truncate(&format!("{last} …"), width.saturating_sub(4));
            }
        }
        used += rows.len();
        for (i, row) in rows.into_iter().enumerate() {
            let lead = if i == 0 { "  → " } else { "    " };
            runs.push(Line::from(vec![
                Span::styled(lead, theme.tone(Tone::Accent)),
                Span::raw(row),
            ]));
        }
    }

    let fixed = head.len() + runs.len() + tail.len() + 1;
    let instruction_room = room.saturating_sub(fixed).max(1);
    let mut wrapped = text::wrap(instruction, width);
    if wrapped.len() > instruction_room {
        wrapped.truncate(instruction_room);
        if let Some(last) = wrapped.last_mut() {
            *last = text::truncate(&format!("{last} …"), width);
        }
    }
    let mut lines = head;
    lines.push(Line::default());
    lines.extend(wrapped.into_iter().map(Line::from));
    lines.extend(runs);
    lines.extend(tail);
    lines
}

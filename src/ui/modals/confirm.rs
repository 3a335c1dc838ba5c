//! Before a step runs: the guide's instruction, exactly what will run and where.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::health::OVERRIDE_WORD;
use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{draw_dialog, inner_width, max_inner_height};

pub const WIDTH: u16 = 76;

/// Rows the dialog's head takes: the step's title and the guide line.
const HEAD_ROWS: usize = 2;
/// Rows around the run list that always stay: a blank, the list's heading, a blank and
/// one instruction row.
const FIXED_ROWS: usize = 4;
/// Rows of the confirm dialog's own footer (a blank and the keys).
const FOOTER_ROWS: usize = 2;

/// Rows the run list may take in a dialog of `room` rows whose tail takes `tail_rows`.
fn list_room(room: usize, tail_rows: usize) -> usize {
    room.saturating_sub(HEAD_ROWS + tail_rows + FIXED_ROWS)
        .max(1)
}

/// Where the last page of a list of `rows` starts: the "above" marker, then the rest.
fn last_start(rows: usize, list_room: usize) -> usize {
    if rows <= list_room {
        0
    } else {
        rows - list_room.saturating_sub(1).max(1)
    }
}

/// How far the arrows may scroll the run list of `step`'s dialog on a `screen`: the
/// irreversible one (with the name being `typed`) or the plain one.
pub fn max_scroll(
    state: &ConsoleState,
    step: &StepRef,
    screen: Rect,
    typed: Option<&tui_input::Input>,
) -> usize {
    let width = inner_width(screen, WIDTH);
    let (room, tail_rows) = match typed {
        Some(typed) => (
            max_inner_height(screen),
            super::irreversible::tail(state, step, typed, width).len(),
        ),
        None => (
            max_inner_height(screen).saturating_sub(FOOTER_ROWS),
            health(state, step, &tui_input::Input::default(), width).len(),
        ),
    };
    let tail_rows = tail_rows + traffic_back(state, step, width).len();
    let rows = run_rows(state.runs(step), width.saturating_sub(4)).len();
    last_start(rows, list_room(room, tail_rows))
}

/// The warning of a traffic stage that would send less to Y than Y has now (the load
/// balancer's split when it reported one, else the one asked for): a blank, then the
/// warning wrapped; nothing for any other step.
fn traffic_back(state: &ConsoleState, step: &StepRef, width: usize) -> Vec<Line<'static>> {
    let y_now = state.traffic().map(|t| t.applied.unwrap_or(t.requested).y);
    let Some(warning) = state
        .step(step)
        .and_then(|(s, _)| crate::engine::plan_change::traffic_backwards(&s.kind, y_now))
    else {
        return Vec::new();
    };
    let mut rows = vec![Line::default()];
    rows.extend(
        text::wrap(&format!("⚠ {warning}"), width)
            .into_iter()
            .map(|row| Line::from(Span::styled(row, state.theme().tone(Tone::Warn)))),
    );
    rows
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
    let mut rows = vec![
        Line::default(),
        Line::from(Span::styled(
            text::truncate("⚠ Y is not fit for more traffic:", width),
            theme.tone(Tone::Bad),
        )),
    ];
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
    rows.extend(
        text::wrap(
            &format!("Type {OVERRIDE_WORD} to send the traffic anyway (journaled with your name):"),
            width,
        )
        .into_iter()
        .map(Line::from),
    );
    rows.push(super::irreversible::input_line(state, typed, width));
    rows
}

/// A row of the run list: part of a command wrapped to the dialog.
pub struct RunRow {
    /// The command's first row (drawn with an arrow).
    pub first: bool,
    pub text: String,
}

/// What `runs` take on screen, wrapped at `width`.
pub fn run_rows(runs: &[String], width: usize) -> Vec<RunRow> {
    runs.iter()
        .flat_map(|run| {
            text::wrap(run, width)
                .into_iter()
                .enumerate()
                .map(|(i, text)| RunRow {
                    first: i == 0,
                    text,
                })
        })
        .collect()
}

pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &ConsoleState,
    step: &StepRef,
    retry: bool,
    typed: &tui_input::Input,
    scroll: usize,
) {
    let width = inner_width(area, WIDTH);
    let room = max_inner_height(area);
    let health = health(state, step, typed, width);
    let run_it = if health.is_empty() {
        " run it · ".to_string()
    } else if typed.value().trim() == OVERRIDE_WORD {
        " run it over Y's health · ".to_string()
    } else {
        format!(" runs it once {OVERRIDE_WORD} is typed · ")
    };
    let footer = vec![
        Line::default(),
        Line::from(vec![
            Span::styled("⏎", state.theme().bold()),
            Span::raw(run_it),
            Span::styled("Esc", state.theme().bold()),
            Span::raw(" cancel"),
        ]),
    ];
    let lines = body(
        state,
        step,
        width,
        room.saturating_sub(FOOTER_ROWS),
        health,
        scroll,
    );
    let title = title(state, step, retry);
    draw_dialog(
        frame,
        area,
        state.theme(),
        title,
        WIDTH,
        [lines, footer].concat(),
    );
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

/// The dialog's text for `step`, at most `room` rows, its run list scrolled past `scroll`
/// rows: `tail` (the irreversible warning and the typed field) always shows; the
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
    // The traffic warning stays with the tail: it is what the operator must read.
    let tail = [traffic_back(state, step_ref, width), tail].concat();
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

    // The run list gives way before the tail (the warning, the typed field, the keys), for
    // an operator who cannot see how to confirm cannot act; the arrows scroll it by rows,
    // so even one command taller than the dialog can be read to its end. One instruction
    // row stays.
    let rows = run_rows(state.runs(step_ref), width.saturating_sub(4));
    let list_room = list_room(room, tail.len());
    let (start, end) = if rows.len() <= list_room {
        (0, rows.len())
    } else {
        let start = scroll.min(last_start(rows.len(), list_room));
        let mut shown = list_room.saturating_sub(usize::from(start > 0));
        if start + shown < rows.len() {
            shown = shown.saturating_sub(1);
        }
        (start, (start + shown.max(1)).min(rows.len()))
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
    if start > 0 {
        runs.push(muted(format!("  ↑ {start} more rows above")));
    }
    for row in &rows[start..end] {
        let lead = if row.first { "  → " } else { "    " };
        runs.push(Line::from(vec![
            Span::styled(lead, theme.tone(Tone::Accent)),
            Span::raw(row.text.clone()),
        ]));
    }
    if end < rows.len() {
        runs.push(muted(format!(
            "  ↓ {} more rows below: the arrows scroll",
            rows.len() - end
        )));
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

//! A step that cannot be undone: what cannot be undone, and the plan name typed to go on.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use tui_input::Input;

use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{confirm, draw_dialog, inner_width, max_inner_height};

pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &ConsoleState,
    step: &StepRef,
    typed: &Input,
    retry: bool,
    scroll: usize,
) {
    let theme = state.theme();
    let width = inner_width(area, confirm::WIDTH);
    let tail = tail(state, step, typed, width);
    let room = max_inner_height(area);
    let lines = confirm::body(state, step, width, room, tail, scroll);
    let title = format!("IRREVERSIBLE · {}", confirm::title(state, step, retry));
    draw_dialog(frame, area, theme, title, confirm::WIDTH, lines);
}

/// What cannot be undone, the typed field and the keys: the rows under the run list.
pub fn tail(
    state: &ConsoleState,
    step: &StepRef,
    typed: &Input,
    width: usize,
) -> Vec<Line<'static>> {
    let theme = state.theme();
    let because = state
        .step(step)
        .and_then(|(s, _)| s.irreversible_because.clone())
        .unwrap_or_else(|| "this step cannot be undone".into());
    let mut tail = vec![Line::default()];
    for (i, row) in text::wrap(&format!("⚠ IRREVERSIBLE: {because}"), width)
        .into_iter()
        .enumerate()
    {
        let style = if i == 0 {
            theme.tone(Tone::Bad)
        } else {
            theme.tone(Tone::Warn)
        };
        tail.push(Line::from(Span::styled(row, style)));
    }
    let name = &state.plan().name;
    tail.push(Line::from(text::truncate(
        &format!("Type the plan name to confirm: {name}"),
        width,
    )));
    tail.push(input_line(state, typed, width));
    let matches = typed.value() == name;
    tail.push(Line::default());
    tail.push(Line::from(vec![
        Span::styled("⏎", theme.bold()),
        Span::raw(if matches {
            " run it · "
        } else {
            " runs it once the name matches · "
        }),
        Span::styled("Esc", theme.bold()),
        Span::raw(" cancel"),
    ]));
    tail
}

/// `> text` with a block cursor, drawn in the buffer (so it shows in any terminal).
pub fn input_line(state: &ConsoleState, input: &Input, width: usize) -> Line<'static> {
    let room = width.saturating_sub(3);
    let scroll = input.visual_scroll(room);
    let value: String = input.value().chars().skip(scroll).collect();
    let cursor = input.visual_cursor().saturating_sub(scroll);
    let before: String = value.chars().take(cursor).collect();
    let at: String = value.chars().nth(cursor).map_or(" ".into(), String::from);
    let after: String = value.chars().skip(cursor + 1).collect();
    Line::from(vec![
        Span::styled("> ", state.theme().bold()),
        Span::raw(before),
        Span::styled(at, state.theme().selected().add_modifier(Modifier::BOLD)),
        Span::raw(after),
    ])
}

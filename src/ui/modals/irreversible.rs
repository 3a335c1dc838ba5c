//! A step that cannot be undone: what cannot be undone, and the plan name typed to go on.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use tui_input::Input;

use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{Dialog, confirm, keys_line, paragraph};

pub fn dialog(
    state: &ConsoleState,
    step: &StepRef,
    typed: &Input,
    retry: bool,
    area: Rect,
) -> Dialog {
    let mut dialog = Dialog::new(
        format!("IRREVERSIBLE · {}", confirm::title(state, step, retry)),
        confirm::WIDTH,
    );
    let width = dialog.inner_width(area);
    dialog.body = confirm::body(state, step, width);
    dialog.fixed = confirm::traffic_back(state, step, width);
    dialog.fixed.extend(tail(state, step, typed, width));
    dialog
}

/// What cannot be undone, the typed field and the keys: always in view under the text.
fn tail(state: &ConsoleState, step: &StepRef, typed: &Input, width: usize) -> Vec<Line<'static>> {
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
        let tone = if i == 0 { Tone::Bad } else { Tone::Warn };
        tail.push(Line::from(Span::styled(row, theme.tone(tone))));
    }
    let name = &state.plan().name;
    tail.extend(paragraph(
        &format!("Type the plan name to confirm: {name}"),
        width,
        theme.tone(Tone::Plain),
    ));
    tail.push(input_line(state, typed, width));
    tail.push(Line::default());
    let action = if typed.value() == name {
        "run it"
    } else {
        "runs it once the name matches"
    };
    tail.push(keys_line(theme, &[("⏎", action), ("Esc", "cancel")]));
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

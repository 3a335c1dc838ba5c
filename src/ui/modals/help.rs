//! The keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{draw_dialog, inner_width, max_inner_height};

const WIDTH: u16 = 72;
const KEY_COLS: usize = 15;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, scroll: usize) {
    let theme = state.theme();
    let width = inner_width(area, WIDTH);
    let room = max_inner_height(area).saturating_sub(2);
    let keys = state.help_lines();
    let first = scroll.min(keys.len().saturating_sub(room));
    let mut lines: Vec<Line> = keys
        .iter()
        .skip(first)
        .take(room)
        .map(|(key, words)| {
            Line::from(vec![
                Span::styled(text::fit(key, KEY_COLS), theme.bold()),
                Span::raw(text::truncate(words, width.saturating_sub(KEY_COLS))),
            ])
        })
        .collect();
    lines.push(Line::default());
    let more = if first + room < keys.len() {
        "↓ more · "
    } else {
        ""
    };
    lines.push(Line::from(Span::styled(
        format!("{more}Esc closes · full logs are in the run directory"),
        theme.tone(Tone::Muted),
    )));
    draw_dialog(frame, area, theme, "Keys".into(), WIDTH, lines);
}

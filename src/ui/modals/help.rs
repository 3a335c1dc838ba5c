//! The keys.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::Dialog;

const WIDTH: u16 = 72;
const KEY_COLS: usize = 15;

pub fn dialog(state: &ConsoleState, area: Rect) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new("Keys", WIDTH);
    let width = dialog.inner_width(area);
    let words_width = width.saturating_sub(KEY_COLS);
    for (key, words) in state.help_lines() {
        for (i, row) in text::wrap(&words, words_width).into_iter().enumerate() {
            let key = if i == 0 { key.as_str() } else { "" };
            dialog.body.push(Line::from(vec![
                Span::styled(text::fit(key, KEY_COLS), theme.bold()),
                Span::raw(row),
            ]));
        }
    }
    dialog.fixed = vec![
        Line::default(),
        Line::from(Span::styled(
            "Esc closes · full logs are in the run directory",
            theme.tone(Tone::Muted),
        )),
    ];
    dialog
}

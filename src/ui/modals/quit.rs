//! `q` while a step runs: say what happens to it before leaving.

use ratatui::layout::Rect;
use ratatui::text::Line;

use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;

use super::{Dialog, keys_line};

const WIDTH: u16 = 64;

pub fn dialog(state: &ConsoleState, step: &StepRef, area: Rect) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new("Quit?", WIDTH);
    let width = dialog.inner_width(area);
    let words = format!(
        "{step} is running. If you quit now, it finishes in the background, its result goes \
         into the journal, and kongup exits after it. The run stays resumable: `kongup run` \
         with the same plan continues it."
    );
    dialog.body = text::wrap(&words, width)
        .into_iter()
        .map(Line::from)
        .collect();
    dialog.fixed = vec![
        Line::default(),
        keys_line(theme, &[("y", "quit"), ("Esc", "stay")]),
    ];
    dialog
}

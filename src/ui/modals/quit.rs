//! `q` while a step runs: say what happens to it before leaving.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::plan::steps::StepRef;
use crate::ui::state::ConsoleState;
use crate::ui::text;

use super::{draw_dialog, inner_width};

const WIDTH: u16 = 64;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, step: &StepRef) {
    let theme = state.theme();
    let width = inner_width(area, WIDTH);
    let words = format!(
        "{step} is running. If you quit now, it finishes in the background, its result goes \
         into the journal, and kongup exits after it. The run stays resumable: `kongup run` \
         with the same plan continues it."
    );
    let mut lines: Vec<Line> = text::wrap(&words, width)
        .into_iter()
        .map(Line::from)
        .collect();
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("y", theme.bold()),
        Span::raw(" quit · "),
        Span::styled("Esc", theme.bold()),
        Span::raw(" stay"),
    ]));
    draw_dialog(frame, area, theme, "Quit?".into(), WIDTH, lines);
}

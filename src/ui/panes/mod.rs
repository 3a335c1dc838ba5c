//! The screen's parts, one file each.

pub mod checklist;
pub mod footer;
pub mod header;
pub mod logs;
pub mod metrics;
pub mod topology;
pub mod topology_view;

use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType};

use super::state::{ConsoleState, Pane};

/// A pane's frame. The focused pane has a thick border, which reads without colour too.
pub fn pane_block<'a>(state: &ConsoleState, pane: Pane, extra: Vec<Span<'a>>) -> Block<'a> {
    let focused = state.focus() == pane;
    let theme = state.theme();
    let mut title = vec![Span::styled(format!(" {} ", pane.title()), theme.bold())];
    for span in extra {
        title.push(span);
    }
    if title.len() > 1 {
        title.push(Span::raw(" "));
    }
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(theme.border(focused))
        .title(Line::from(title))
}

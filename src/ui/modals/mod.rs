//! Dialogs drawn over the panes. Keys go to the open one first (see `keys`).

pub mod abort;
pub mod confirm;
pub mod handover;
pub mod help;
pub mod irreversible;
pub mod prompt;
pub mod quit;
pub mod rollback;
pub mod still_running;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::state::{ConsoleState, Modal};
use super::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, modal: &Modal) {
    match modal {
        Modal::Confirm {
            step,
            retry,
            typed,
            scroll,
        } => confirm::render(frame, area, state, step, *retry, typed, *scroll),
        Modal::Irreversible {
            step,
            typed,
            retry,
            scroll,
        } => irreversible::render(frame, area, state, step, typed, *retry, *scroll),
        Modal::Prompt { purpose, input } => prompt::render(frame, area, state, purpose, input),
        Modal::Rollback => rollback::render(frame, area, state),
        Modal::Help { scroll } => help::render(frame, area, state, *scroll),
        Modal::Abort { step } => abort::render(frame, area, state, step),
        Modal::QuitWhileRunning { step } => quit::render(frame, area, state, step),
        Modal::StillRunning { step, kill } => {
            still_running::render(frame, area, state, step, *kill)
        }
        Modal::Handover { by, until } => handover::render(frame, area, state, by, *until),
    }
}

/// A box of `width` x `height` (clamped to the screen, one cell of margin) in its middle.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width.saturating_sub(2));
    let height = height.min(area.height.saturating_sub(2));
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

/// Draws a dialog with `lines` in a box sized to them, over whatever is below.
pub fn draw_dialog(
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
    title: String,
    width: u16,
    lines: Vec<Line<'static>>,
) {
    let height = lines.len() as u16 + 2;
    let rect = centered(area, width, height);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(theme.border(true))
        .title(Span::styled(format!(" {title} "), theme.bold()));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

/// The inner width of a dialog `width` wide on `area`.
pub fn inner_width(area: Rect, width: u16) -> usize {
    width.min(area.width.saturating_sub(2)).saturating_sub(2) as usize
}

/// The inner height a dialog may use on `area`.
pub fn max_inner_height(area: Rect) -> usize {
    area.height.saturating_sub(4) as usize
}

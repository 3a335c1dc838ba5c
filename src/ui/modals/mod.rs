//! Dialogs drawn over the panes. Keys go to the open one first (see `keys`).

pub mod abort;
pub mod confirm;
pub mod handover;
pub mod help;
pub mod irreversible;
pub mod prompt;
pub mod quit;
pub mod rollback;
pub mod step_view;
pub mod still_running;
pub mod take_out;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::state::{ConsoleState, Modal};
use super::text;
use super::theme::{Theme, Tone};

/// Draws the open dialog, scrolled as far as the operator scrolled it.
pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, modal: &Modal) {
    dialog(state, modal, area).draw(frame, area, state.theme(), state.dialog_scroll());
}

/// The open dialog's text as it lays out on `area`.
pub fn dialog(state: &ConsoleState, modal: &Modal, area: Rect) -> Dialog {
    match modal {
        Modal::Confirm { step, retry, typed } => confirm::dialog(state, step, *retry, typed, area),
        Modal::Irreversible { step, typed, retry } => {
            irreversible::dialog(state, step, typed, *retry, area)
        }
        Modal::Prompt { purpose, input } => prompt::dialog(state, purpose, input, area),
        Modal::TakeOut { step, node, reason } => {
            take_out::dialog(state, step, node, reason.as_ref(), area)
        }
        Modal::Rollback => rollback::dialog(state, area),
        Modal::Help => help::dialog(state, area),
        Modal::StepView { step } => step_view::dialog(state, step, area),
        Modal::Abort { step } => abort::dialog(state, step, area),
        Modal::QuitWhileRunning { step } => quit::dialog(state, step, area),
        Modal::StillRunning { step, kill } => still_running::dialog(state, step, *kill, area),
        Modal::Handover { by, until } => handover::dialog(state, by, *until, area),
    }
}

/// A dialog: `body` is its text, wrapped to the dialog's width and never cut, and
/// scrolls as a whole (arrows, PgUp/PgDn) when it is taller than the screen; `fixed`
/// (what must be read before acting, the typed field, the keys) always stays in view
/// below it.
pub struct Dialog {
    pub title: String,
    pub width: u16,
    pub body: Vec<Line<'static>>,
    pub fixed: Vec<Line<'static>>,
}

/// Which rows of a body of `rows` show in `room` rows, scrolled `scroll` rows down: the
/// first and the end (exclusive), and whether a marker row says there is more above or
/// below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub end: usize,
    pub above: bool,
    pub below: bool,
}

impl Window {
    pub fn new(rows: usize, room: usize, scroll: usize) -> Window {
        if rows <= room {
            return Window {
                start: 0,
                end: rows,
                above: false,
                below: false,
            };
        }
        let room = room.max(3);
        let start = scroll.min(Window::last_start(rows, room));
        let above = start > 0;
        let mut end = start + room - usize::from(above);
        let below = end < rows;
        if below {
            end -= 1;
        }
        Window {
            start,
            end: end.min(rows),
            above,
            below,
        }
    }

    /// Where the last page starts: the marker above, then the rows to the end.
    pub fn last_start(rows: usize, room: usize) -> usize {
        if rows <= room {
            0
        } else {
            rows - (room.max(3) - 1)
        }
    }
}

impl Dialog {
    pub fn new(title: impl Into<String>, width: u16) -> Dialog {
        Dialog {
            title: title.into(),
            width,
            body: Vec::new(),
            fixed: Vec::new(),
        }
    }

    /// The columns inside the dialog on `area`.
    pub fn inner_width(&self, area: Rect) -> usize {
        inner_width(area, self.width)
    }

    /// Rows the body may take on `area`.
    fn room(&self, area: Rect) -> usize {
        max_inner_height(area).saturating_sub(self.fixed.len())
    }

    /// How far the body may scroll on `area`: until its last row is in view.
    pub fn max_scroll(&self, area: Rect) -> usize {
        Window::last_start(self.body.len(), self.room(area))
    }

    pub fn draw(self, frame: &mut Frame, area: Rect, theme: Theme, scroll: usize) {
        let window = Window::new(self.body.len(), self.room(area), scroll);
        let muted = |text: String| Line::from(Span::styled(text, theme.tone(Tone::Muted)));
        let mut lines = Vec::with_capacity(window.end - window.start + 2 + self.fixed.len());
        if window.above {
            lines.push(muted(format!("↑ {} more rows above", window.start)));
        }
        lines.extend(self.body[window.start..window.end].iter().cloned());
        if window.below {
            lines.push(muted(format!(
                "↓ {} more rows below: ↑↓ PgUp PgDn scroll",
                self.body.len() - window.end
            )));
        }
        lines.extend(self.fixed);
        draw_dialog(frame, area, theme, self.title, self.width, lines);
    }
}

/// `text` wrapped to `width`, a line per row, in `style`.
pub fn paragraph(text: &str, width: usize, style: Style) -> Vec<Line<'static>> {
    text::wrap(text, width)
        .into_iter()
        .map(|row| Line::from(Span::styled(row, style)))
        .collect()
}

/// The keys row of a dialog: `(key, words)` pairs, `key` in bold, ` · ` between them.
pub fn keys_line(theme: Theme, keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (key, words)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::styled(key.to_string(), theme.bold()));
        spans.push(Span::raw(format!(" {words}")));
    }
    Line::from(spans)
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
fn draw_dialog(
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
fn inner_width(area: Rect, width: u16) -> usize {
    width.min(area.width.saturating_sub(2)).saturating_sub(2) as usize
}

/// The inner height a dialog may use on `area`.
fn max_inner_height(area: Rect) -> usize {
    area.height.saturating_sub(4) as usize
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn a_window_shows_every_row_once_scrolled_to_the_end() {
        assert_eq!(
            Window::new(5, 10, 3),
            Window {
                start: 0,
                end: 5,
                above: false,
                below: false
            }
        );
        let top = Window::new(30, 10, 0);
        assert_eq!(
            (top.start, top.end, top.above, top.below),
            (0, 9, false, true)
        );
        let middle = Window::new(30, 10, 5);
        assert_eq!((middle.start, middle.end), (5, 13));
        let last = Window::new(30, 10, 100);
        assert_eq!(
            (last.start, last.end, last.above, last.below),
            (21, 30, true, false)
        );
        assert_eq!(Window::last_start(30, 10), 21);
    }
}

//! A backend that writes nothing for a frame in which no cell changed.
//!
//! ratatui's `Terminal` already sends the backend only the cells that differ from the last
//! frame, but around them it always writes: crossterm's `draw` ends with four attribute
//! resets (`SGR 39`, `49`, `59`, `0`) even for an empty diff, and every frame hides the
//! cursor again (`?25l`) or moves it (ratatui-crossterm 0.1.2 `draw`, ratatui-core 0.1.2
//! `Terminal::apply_buffer_with_cursor`). At 80x24 with the clock and metrics ticking, those
//! were about a quarter of the bytes sent over the operator's SSH link. This wrapper drops
//! them: an empty diff is not drawn, the cursor is hidden or shown only when that changes,
//! and moved only when it was moved since or asked to go elsewhere.

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};

pub struct QuietBackend<B: Backend> {
    inner: B,
    /// What the terminal was last told: `None` until the first call.
    cursor_hidden: Option<bool>,
    /// Where the cursor was last put, while nothing drawn since has moved it.
    cursor_at: Option<Position>,
}

impl<B: Backend> QuietBackend<B> {
    pub fn new(inner: B) -> Self {
        QuietBackend {
            inner,
            cursor_hidden: None,
            cursor_at: None,
        }
    }
}

impl<B: Backend> Backend for QuietBackend<B> {
    type Error = B::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut content = content.peekable();
        if content.peek().is_none() {
            return Ok(());
        }
        // Drawing moves the cursor.
        self.cursor_at = None;
        self.inner.draw(content)
    }

    fn append_lines(&mut self, n: u16) -> Result<(), Self::Error> {
        self.cursor_at = None;
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_hidden != Some(true) {
            self.inner.hide_cursor()?;
            self.cursor_hidden = Some(true);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        if self.cursor_hidden != Some(false) {
            self.inner.show_cursor()?;
            self.cursor_hidden = Some(false);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        let position = position.into();
        if self.cursor_at != Some(position) {
            self.inner.set_cursor_position(position)?;
            self.cursor_at = Some(position);
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        self.cursor_at = None;
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.cursor_at = None;
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }

    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    use ratatui::backend::CrosstermBackend;
    use ratatui::layout::Rect;
    use ratatui::widgets::Paragraph;
    use ratatui::{Terminal, TerminalOptions, Viewport};

    use super::*;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<u8>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<u8> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    fn terminal(recorder: &Recorder) -> Terminal<QuietBackend<CrosstermBackend<Recorder>>> {
        Terminal::with_options(
            QuietBackend::new(CrosstermBackend::new(recorder.clone())),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 20, 3)),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_frame_with_no_changed_cell_writes_nothing() {
        let recorder = Recorder::default();
        let mut terminal = terminal(&recorder);
        let draw = |terminal: &mut Terminal<_>, text: &str| {
            terminal
                .draw(|f| f.render_widget(Paragraph::new(text.to_string()), f.area()))
                .unwrap();
        };
        draw(&mut terminal, "12:00:01");
        assert!(!recorder.take().is_empty(), "the first frame is written");
        draw(&mut terminal, "12:00:01");
        let unchanged = recorder.take();
        assert!(
            unchanged.is_empty(),
            "a frame like the last wrote {:?}",
            String::from_utf8_lossy(&unchanged)
        );
        draw(&mut terminal, "12:00:02");
        let changed = String::from_utf8(recorder.take()).unwrap();
        assert!(changed.contains('2'), "{changed:?}");
        assert!(
            !changed.contains("?25l"),
            "the cursor was hidden already: {changed:?}"
        );
    }

    #[test]
    fn the_cursor_is_shown_and_placed_again_after_cells_were_drawn() {
        let recorder = Recorder::default();
        let mut terminal = terminal(&recorder);
        let draw = |terminal: &mut Terminal<_>, text: &str| {
            terminal
                .draw(|f| {
                    f.render_widget(Paragraph::new(text.to_string()), f.area());
                    f.set_cursor_position((3, 1));
                })
                .unwrap();
        };
        draw(&mut terminal, "a");
        let first = String::from_utf8(recorder.take()).unwrap();
        assert!(
            first.contains("?25h") && first.contains("\u{1b}[2;4H"),
            "{first:?}"
        );
        draw(&mut terminal, "a");
        assert!(recorder.take().is_empty());
        draw(&mut terminal, "b");
        let moved = String::from_utf8(recorder.take()).unwrap();
        assert!(
            moved.contains("\u{1b}[2;4H"),
            "the cursor put back after drawing: {moved:?}"
        );
        assert!(!moved.contains("?25h"), "{moved:?}");
    }
}

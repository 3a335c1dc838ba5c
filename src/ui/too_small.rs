//! Below 80x24 the panes cannot be read: say so, with the little that fits.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::layout::{MIN_HEIGHT, MIN_WIDTH};
use super::state::ConsoleState;
use super::theme::{Tone, run_label};

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let theme = state.theme();
    let (symbol, label, tone) = run_label(state.run_state());
    let mut lines = vec![
        Line::from(Span::styled("Terminal too small", theme.tone(Tone::Warn))),
        Line::from(format!(
            "{}x{}: kongup needs {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from(vec![
            Span::raw("run "),
            Span::styled(format!("{symbol} {label}"), theme.tone(tone)),
        ]),
    ];
    if let Some(step) = state.running_step() {
        lines.push(Line::from(format!("▶ {step}")));
    }
    lines.push(Line::from("q quits; the run stays resumable."));
    let height = (lines.len() as u16).min(area.height);
    let top = area.y + (area.height - height) / 2;
    frame.render_widget(
        Paragraph::new(lines).centered().wrap(Wrap { trim: true }),
        Rect::new(area.x, top, area.width, area.height - (top - area.y)),
    );
}

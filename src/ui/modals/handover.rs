//! Another kongup asks to take the run over (`kongup run --take-over`): y hands it over
//! (kongup then leaves as on quit), n keeps it; unanswered, the request lapses.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{draw_dialog, inner_width};

const WIDTH: u16 = 66;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, by: &str, until: DateTime<Utc>) {
    let theme = state.theme();
    let width = inner_width(area, WIDTH);
    let left = (until - state.now()).num_seconds().max(0);
    let mut lines = vec![Line::from(Span::styled(
        text::truncate(&format!("{by} asks to take over · y to hand over"), width),
        theme.tone(Tone::Warn),
    ))];
    let running = match state.running_step() {
        Some(step) => format!(
            "{step} is running: it runs to its end here, journaled, then {by} drives the run."
        ),
        None => format!("kongup journals the handover, leaves, and {by} drives the run."),
    };
    lines.extend(text::wrap(&running, width).into_iter().map(Line::from));
    lines.extend(
        text::wrap(
            &format!("Unanswered, the request lapses in {left} s and the run stays yours."),
            width,
        )
        .into_iter()
        .map(Line::from),
    );
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("y", theme.bold()),
        Span::raw(" hand over · "),
        Span::styled("n", theme.bold()),
        Span::raw(" keep driving"),
    ]));
    draw_dialog(frame, area, theme, "Take over?".to_string(), WIDTH, lines);
}

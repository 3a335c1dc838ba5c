//! Another kongup asks to take the run over (`kongup run --take-over`): y hands it over
//! (kongup then leaves as on quit), n keeps it; unanswered, the request lapses.

use chrono::{DateTime, Utc};
use ratatui::layout::Rect;
use ratatui::text::Line;

use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{Dialog, keys_line, paragraph};

const WIDTH: u16 = 66;

pub fn dialog(state: &ConsoleState, by: &str, until: DateTime<Utc>, area: Rect) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new("Take over?", WIDTH);
    let width = dialog.inner_width(area);
    let left = (until - state.now()).num_seconds().max(0);
    let mut lines = paragraph(
        &format!("{by} asks to take over · y to hand over"),
        width,
        theme.tone(Tone::Warn),
    );
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
    dialog.body = lines;
    dialog.fixed = vec![
        Line::default(),
        keys_line(theme, &[("y", "hand over"), ("n", "keep driving")]),
    ];
    dialog
}

//! `x` while a step runs: what stopping it does, and what stopping `kong migrations` midway
//! risks, before anything is sent.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::plan::steps::{StepKind, StepRef};
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{draw_dialog, inner_width};

const WIDTH: u16 = 66;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState, step: &StepRef) {
    let theme = state.theme();
    let width = inner_width(area, WIDTH);
    let mut lines: Vec<Line> = Vec::new();
    if let Some((s, _)) = state.step(step) {
        lines.push(Line::from(Span::styled(
            text::truncate(&s.title, width),
            theme.bold(),
        )));
        if matches!(s.kind, StepKind::Migrations(_)) {
            let warning = "⚠ This is `kong migrations`. Stopping it midway can leave the \
                           database half-migrated, with the migrations lock held; letting it \
                           finish is safer.";
            lines.extend(
                text::wrap(warning, width)
                    .into_iter()
                    .map(|line| Line::from(Span::styled(line, theme.tone(Tone::Warn)))),
            );
        }
    }
    let words = format!(
        "Abort stops {step}: its processes (the whole process group) are killed and the step \
         is marked failed. Then r retries it, or R rolls back."
    );
    lines.extend(text::wrap(&words, width).into_iter().map(Line::from));
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("y", theme.bold()),
        Span::raw(" abort it · "),
        Span::styled("Esc", theme.bold()),
        Span::raw(" let it run"),
    ]));
    draw_dialog(frame, area, theme, format!("Abort · {step}"), WIDTH, lines);
}

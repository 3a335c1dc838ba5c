//! `x` while a step runs: what stopping it does, and what stopping `kong migrations` midway
//! risks, before anything is sent.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::plan::steps::{StepKind, StepRef};
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{Dialog, keys_line, paragraph};

const WIDTH: u16 = 66;

pub fn dialog(state: &ConsoleState, step: &StepRef, area: Rect) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new(format!("Abort · {step}"), WIDTH);
    let width = dialog.inner_width(area);
    let mut lines: Vec<Line> = Vec::new();
    if let Some((s, _)) = state.step(step) {
        lines.extend(paragraph(&s.title, width, theme.bold()));
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
    dialog.body = lines;
    dialog.fixed = vec![
        Line::default(),
        keys_line(theme, &[("y", "abort it"), ("Esc", "let it run")]),
    ];
    dialog
}

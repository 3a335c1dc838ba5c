//! A line of text: the reason for a skip, the note for a step done by hand, the log filter.

use ratatui::layout::Rect;
use ratatui::text::Line;
use tui_input::Input;

use crate::ui::state::{ConsoleState, PromptPurpose};
use crate::ui::theme::Tone;

use super::{Dialog, irreversible::input_line, keys_line, paragraph};

const WIDTH: u16 = 70;

pub fn dialog(state: &ConsoleState, purpose: &PromptPurpose, input: &Input, area: Rect) -> Dialog {
    let theme = state.theme();
    let (title, question, action) = match purpose {
        PromptPurpose::Skip(step) => (
            format!("Skip · {step}"),
            "Why skip it? The reason goes into the journal.".to_string(),
            "skip it",
        ),
        PromptPurpose::MarkDone(step) => (
            format!("Mark done · {step}"),
            "What was done by hand? The note goes into the journal.".to_string(),
            "mark it done",
        ),
        PromptPurpose::SetTraffic => (
            "Set the traffic by hand".to_string(),
            match state.traffic() {
                Some(traffic) => format!(
                    "Now {}. Percent of requests to Y (0 sends all to X, 100 all to Y):",
                    traffic.shown()
                ),
                None => "Percent of requests to Y (0 sends all to X, 100 all to Y):".to_string(),
            },
            "send it to the load balancer",
        ),
        PromptPurpose::LogFilter => (
            "Filter the logs".to_string(),
            "Show the lines containing (empty: all lines):".to_string(),
            "apply",
        ),
    };
    let mut dialog = Dialog::new(title, WIDTH);
    let width = dialog.inner_width(area);
    if let PromptPurpose::Skip(step) | PromptPurpose::MarkDone(step) = purpose
        && let Some((s, _)) = state.step(step)
    {
        dialog.body = paragraph(&s.title, width, theme.bold());
    }
    dialog
        .body
        .extend(paragraph(&question, width, theme.tone(Tone::Plain)));
    // The field and the keys stay in view under the question.
    dialog.fixed = vec![
        input_line(state, input, width),
        Line::default(),
        keys_line(theme, &[("⏎", action), ("Esc", "cancel")]),
    ];
    dialog
}

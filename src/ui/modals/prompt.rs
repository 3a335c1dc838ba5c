//! A line of text: the reason for a skip, the note for a step done by hand, the log filter.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use tui_input::Input;

use crate::ui::state::{ConsoleState, PromptPurpose};
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{draw_dialog, inner_width, irreversible::input_line};

const WIDTH: u16 = 70;

pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &ConsoleState,
    purpose: &PromptPurpose,
    input: &Input,
) {
    let theme = state.theme();
    let width = inner_width(area, WIDTH);
    let (title, question, action) = match purpose {
        PromptPurpose::Skip(step) => (
            format!("Skip · {step}"),
            "Why skip it? The reason goes into the journal.".to_string(),
            " skip it · ",
        ),
        PromptPurpose::MarkDone(step) => (
            format!("Mark done · {step}"),
            "What was done by hand? The note goes into the journal.".to_string(),
            " mark it done · ",
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
            " send it to the load balancer · ",
        ),
        PromptPurpose::LogFilter => (
            "Filter the logs".to_string(),
            "Show the lines containing (empty: all lines):".to_string(),
            " apply · ",
        ),
    };
    let mut lines: Vec<Line> = text::wrap(&question, width)
        .into_iter()
        .map(Line::from)
        .collect();
    if let PromptPurpose::Skip(step) | PromptPurpose::MarkDone(step) = purpose
        && let Some((s, _)) = state.step(step)
    {
        lines.insert(
            0,
            Line::from(Span::styled(text::truncate(&s.title, width), theme.bold())),
        );
    }
    lines.push(input_line(state, input, width));
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("⏎", theme.bold()),
        Span::raw(action),
        Span::styled("Esc", theme.bold()),
        Span::styled(" cancel", theme.tone(Tone::Plain)),
    ]));
    draw_dialog(frame, area, theme, title, WIDTH, lines);
}

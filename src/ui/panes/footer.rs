//! One row of key hints for what can be done now; a passing message replaces them.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::bindings;
use crate::ui::state::{ConsoleState, Modal};
use crate::ui::text;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let theme = state.theme();
    let width = area.width as usize;
    if let Some(flash) = state.flash_message() {
        let line = Line::from(Span::styled(
            text::truncate(&format!(" {}", flash.text), width),
            theme.tone(flash.tone),
        ));
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let cost = |hints: &[(String, &str)]| {
        hints
            .iter()
            .map(|(key, words)| 3 + text::width(key) + 1 + text::width(words))
            .sum::<usize>()
    };
    let mut hints = hints(state);
    // Help and quit stay: what gives way is just before them.
    while cost(&hints) > width && hints.len() > 2 {
        hints.remove(hints.len() - 3);
    }
    let mut spans = vec![Span::raw(" ")];
    for (i, (key, words)) in hints.into_iter().enumerate() {
        let sep = if i == 0 { "" } else { " · " };
        spans.push(Span::raw(sep));
        spans.push(Span::styled(key, theme.bold()));
        spans.push(Span::raw(format!(" {words}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys that do something now, most useful first (the row keeps what fits). A
/// dialog's keys are its own; the main screen's come from `ui::bindings`.
pub fn hints(state: &ConsoleState) -> Vec<(String, &'static str)> {
    let dialog: &[(&str, &'static str)] = match state.modal() {
        Some(Modal::Help | Modal::StepView { .. }) => &[("Esc", "close"), ("↑↓", "scroll")],
        Some(Modal::Rollback) if state.watching().is_some() => &[("Esc", "close"), ("?", "help")],
        Some(Modal::Rollback) => &[
            ("⏎", "confirm the next rollback step"),
            ("Esc", "close"),
            ("?", "help"),
        ],
        Some(Modal::Handover { .. }) => &[("y", "hand over"), ("n", "keep driving")],
        Some(Modal::QuitWhileRunning { .. }) => &[("y", "quit"), ("Esc", "stay")],
        Some(Modal::Abort { .. }) => &[("y", "abort"), ("Esc", "let it run")],
        Some(Modal::StillRunning { kill: false, .. }) => &[("w", "wait"), ("x", "kill")],
        Some(Modal::StillRunning { kill: true, .. }) => &[("y", "kill"), ("Esc", "let it run")],
        Some(Modal::TakeOut { reason: None, .. }) => &[("⏎", "then the reason"), ("Esc", "cancel")],
        Some(Modal::TakeOut { .. }) => &[("⏎", "take it out"), ("Esc", "cancel")],
        Some(_) => &[("⏎", "confirm"), ("Esc", "cancel")],
        None if state.topology_filter_input().is_some() => &[
            ("⏎", "keep filter"),
            ("Esc", "clear filter"),
            ("↑↓", "scroll"),
        ],
        None => return bindings::footer_hints(state),
    };
    dialog
        .iter()
        .map(|(key, words)| (key.to_string(), *words))
        .collect()
}

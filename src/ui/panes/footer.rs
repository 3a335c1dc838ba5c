//! One row of key hints for what can be done now; a passing message replaces them.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::engine::event::{RunState, StepState};
use crate::ui::state::{ConsoleState, Modal, Pane};
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
    let cost = |hints: &[(&str, &str)]| {
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

/// The keys that do something now, most useful first (the row keeps what fits).
pub fn hints(state: &ConsoleState) -> Vec<(&'static str, &'static str)> {
    match state.modal() {
        Some(Modal::Help { .. }) => return vec![("Esc", "close"), ("↑↓", "scroll")],
        Some(Modal::Rollback) => {
            return vec![
                ("⏎", "confirm the next rollback step"),
                ("Esc", "close"),
                ("?", "help"),
            ];
        }
        Some(Modal::QuitWhileRunning { .. }) => return vec![("y", "quit"), ("Esc", "stay")],
        Some(Modal::Abort { .. }) => return vec![("y", "abort"), ("Esc", "let it run")],
        Some(_) => return vec![("⏎", "confirm"), ("Esc", "cancel")],
        None => {}
    }
    let mut hints = Vec::new();
    if let Some((step_ref, _, status)) = state.selected() {
        if state.can_confirm(step_ref) && state.run_state() != RunState::Paused {
            hints.push(("⏎", "confirm"));
            if status.state == StepState::Ready {
                hints.push(("s", "skip"));
            }
        }
        match status.state {
            StepState::Failed => hints.push(("r", "retry")),
            StepState::Interrupted => {
                hints.push(("r", "retry"));
                hints.push(("m", "mark done"));
            }
            _ => {}
        }
    }
    if state.running_step().is_some() {
        hints.push(("x", "abort"));
    }
    match state.run_state() {
        RunState::Running => hints.push(("p", "pause")),
        RunState::Paused => hints.push(("p", "resume")),
        _ => {}
    }
    hints.push(("R", "rollback"));
    if state.zoomed() {
        hints.push(("z", "unzoom"));
    } else {
        hints.push(("z", "zoom"));
    }
    hints.push(("Tab", "focus"));
    if state.focus() == Pane::Logs {
        hints.push(("/", "filter"));
        hints.push((
            "f",
            if state.log_follow() {
                "unfollow"
            } else {
                "follow"
            },
        ));
    }
    hints.push(("?", "help"));
    hints.push(("q", "quit"));
    hints
}

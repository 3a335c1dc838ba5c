//! The rollback: traffic to X first (the engine does it on `R`, at once), then the rest of
//! the plan, each step confirmed like any other.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::event::{StepState, TrafficVerification};
use crate::ui::state::{ConsoleState, RollbackTraffic};
use crate::ui::text;
use crate::ui::theme::{Tone, step_symbol};

use super::{Dialog, keys_line};

const WIDTH: u16 = 76;
/// Rows of the dialog under the list of steps: the "rollback finished" row, a blank and
/// the keys.
const AROUND_THE_LIST: usize = 3;

pub fn dialog(state: &ConsoleState, area: Rect) -> Dialog {
    let theme = state.theme();
    let mut dialog = Dialog::new("ROLLBACK", WIDTH);
    let width = dialog.inner_width(area);
    let rollback = state.rollback();
    let mut lines = Vec::new();

    let (traffic, tone) = match state.rollback_traffic() {
        RollbackTraffic::Safe { ms } => match &rollback.traffic_verified {
            Some((TrafficVerification::ReadBack, evidence)) => (
                format!("✔ all traffic on X in {ms} ms: {evidence}"),
                Tone::Good,
            ),
            Some((_, evidence)) => (
                format!("⚠ all traffic to X asked in {ms} ms: {evidence}"),
                Tone::Warn,
            ),
            None => (format!("✔ all traffic on X in {ms} ms"), Tone::Good),
        },
        RollbackTraffic::Moving => ("▶ sending all traffic to X…".to_string(), Tone::Active),
        RollbackTraffic::Asked => (
            "○ rollback asked; waiting for the engine".to_string(),
            Tone::Muted,
        ),
        RollbackTraffic::NeverMoved => (
            "✔ no traffic had moved to Y: the load balancer is left as it is".to_string(),
            Tone::Good,
        ),
        RollbackTraffic::AStepOfThePlan => (
            "⚠ X cannot serve yet: traffic goes back to X at its step below".to_string(),
            Tone::Warn,
        ),
        RollbackTraffic::Stays => (
            "⚠ X cannot serve: traffic stays where it is".to_string(),
            Tone::Bad,
        ),
    };
    lines.push(Line::from(Span::styled("1. Traffic to X", theme.bold())));
    let indented = |text: &str, tone: Tone| -> Vec<Line<'static>> {
        text::wrap(text, width.saturating_sub(3))
            .into_iter()
            .map(|row| Line::from(Span::styled(format!("   {row}"), theme.tone(tone))))
            .collect()
    };
    lines.extend(indented(&traffic, tone));
    if let Some(t) = state.traffic() {
        lines.extend(indented(&format!("now: {}", t.shown()), Tone::Plain));
    }
    // Why X cannot serve, or what is not undone: before the steps, so it is read first;
    // whole (the dialog scrolls), as in the logs, the journal and the report.
    if let Some(note) = &rollback.note {
        lines.extend(indented(&format!("⚠ {note}"), Tone::Warn));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        "2. Then, in this order, each confirmed:",
        theme.bold(),
    )));

    let next = state.next_rollback_step().cloned();
    match &rollback.planned {
        None => lines.push(Line::from(Span::styled(
            "   the plan comes once traffic is safe",
            theme.tone(Tone::Muted),
        ))),
        Some(steps) if steps.is_empty() => lines.push(Line::from("   nothing else to undo")),
        Some(steps) => {
            // The list keeps the next step in view on its own; the dialog scrolls the rest.
            let room = area
                .height
                .saturating_sub(4)
                .saturating_sub(AROUND_THE_LIST as u16) as usize;
            let room = room.saturating_sub(lines.len()).max(3);
            // A list longer than the room keeps the next step in view, one done step
            // above it, and says how many are out of view on each side.
            let total = steps.len();
            let (start, end) = if total <= room {
                (0, total)
            } else {
                let shown = room.saturating_sub(2).max(1);
                let focus = next
                    .as_ref()
                    .and_then(|next| steps.iter().position(|s| s == next))
                    .unwrap_or(total);
                let start = focus.saturating_sub(1).min(total - shown);
                (start, start + shown)
            };
            let muted = |text: String| Line::from(Span::styled(text, theme.tone(Tone::Muted)));
            if start > 0 {
                lines.push(muted(format!("   ↑ {start} earlier")));
            }
            for (i, step_ref) in steps.iter().enumerate().take(end).skip(start) {
                let Some((step, status)) = state.step(step_ref) else {
                    continue;
                };
                let waiting = matches!(status.state, StepState::Pending | StepState::Ready);
                let (symbol, word, tone) = if waiting && Some(step_ref) == next.as_ref() {
                    ("●", "next", Tone::Active)
                } else if waiting {
                    step_symbol(StepState::Pending)
                } else {
                    step_symbol(status.state)
                };
                let what = step.title.clone();
                let irreversible = step.irreversible;
                let tag = if irreversible {
                    format!(" ! irreversible [{word}]")
                } else {
                    format!(" [{word}]")
                };
                // A long title wraps under itself; the tag is on its first row.
                let room = width.saturating_sub(6 + text::width(&tag));
                for (row, words) in text::wrap(&format!("{}. {what}", i + 1), room)
                    .into_iter()
                    .enumerate()
                {
                    if row == 0 {
                        lines.push(Line::from(vec![
                            Span::styled(format!("   {symbol} "), theme.tone(tone)),
                            Span::raw(text::fit(&words, room)),
                            Span::styled(
                                tag.clone(),
                                theme.tone(if irreversible { Tone::Warn } else { tone }),
                            ),
                        ]));
                    } else {
                        lines.push(Line::from(format!("       {words}")));
                    }
                }
            }
            if end < total {
                lines.push(muted(format!("   ↓ {} more", total - end)));
            }
        }
    }
    if rollback.finished {
        lines.push(Line::from(Span::styled(
            "✔ rollback finished",
            theme.tone(Tone::Good),
        )));
    }
    dialog.body = lines;
    dialog.fixed = vec![
        Line::default(),
        keys_line(
            theme,
            &[
                ("⏎", "confirm the next step"),
                ("Esc", "close (R opens it again)"),
            ],
        ),
    ];
    dialog
}

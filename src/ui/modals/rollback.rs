//! The rollback: traffic to X first (the engine does it on `R`, at once), then the rest of
//! the plan, each step confirmed like any other.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::engine::event::{StepState, TrafficVerification};
use crate::ui::state::{ConsoleState, RollbackTraffic};
use crate::ui::text;
use crate::ui::theme::{Tone, step_symbol};

use super::{draw_dialog, inner_width, max_inner_height};

const WIDTH: u16 = 76;
/// The note's rows at most: the steps below must stay in view at 80x24 (the whole note
/// is in the logs, the journal and the report).
const NOTE_ROWS: usize = 4;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let theme = state.theme();
    let width = inner_width(area, WIDTH);
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
    lines.push(Line::from(Span::styled(
        text::truncate(&format!("   {traffic}"), width),
        theme.tone(tone),
    )));
    if let Some(t) = state.traffic() {
        lines.push(Line::from(text::truncate(
            &format!("   now: {}", t.shown()),
            width,
        )));
    }
    // Why X cannot serve, or what is not undone: before the steps, so it is read first.
    if let Some(note) = &rollback.note {
        let mut rows = text::wrap(&format!("⚠ {note}"), width.saturating_sub(3));
        if rows.len() > NOTE_ROWS {
            rows.truncate(NOTE_ROWS);
            if let Some(last) = rows.last_mut() {
                *last = text::truncate(&format!("{last} …"), width.saturating_sub(3));
            }
        }
        for row in rows {
            lines.push(Line::from(Span::styled(
                format!("   {row}"),
                theme.tone(Tone::Warn),
            )));
        }
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
            let room = max_inner_height(area).saturating_sub(lines.len() + 3);
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
                let room = width.saturating_sub(6 + text::width(&tag));
                lines.push(Line::from(vec![
                    Span::styled(format!("   {symbol} "), theme.tone(tone)),
                    Span::raw(text::fit(&format!("{}. {what}", i + 1), room)),
                    Span::styled(
                        tag,
                        theme.tone(if irreversible { Tone::Warn } else { tone }),
                    ),
                ]));
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
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("⏎", theme.bold()),
        Span::raw(" confirm the next step · "),
        Span::styled("Esc", theme.bold()),
        Span::raw(" close (R opens it again)"),
    ]));
    draw_dialog(frame, area, theme, "ROLLBACK".into(), WIDTH, lines);
}

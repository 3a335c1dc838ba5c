//! Two rows: what is being upgraded and how; where the run stands and where the traffic is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::engine::event::RunState;
use crate::engine::wave;
use crate::metrics::Verdict;
use crate::ui::describe;
use crate::ui::state::{ConsoleState, RollbackTraffic, Watching};
use crate::ui::text;
use crate::ui::theme::{Tone, run_label};

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let width = area.width as usize;
    let lines = vec![identity_line(state, width), status_line(state, width)];
    frame.render_widget(Paragraph::new(lines), area);
}

/// Alerts that must not scroll out of sight, right-aligned on the first row.
fn alerts(state: &ConsoleState) -> Vec<(String, Tone)> {
    let mut alerts = Vec::new();
    // First, as it matters most: with the symbol, it reads under NO_COLOR.
    if let Some(secs) = state.outage_secs() {
        alerts.push((
            format!("✖ OUTAGE {}", crate::engine::outage::clock(secs)),
            Tone::Bad,
        ));
    }
    if let Some(watching) = state.watching() {
        alerts.push((watching_alert(watching), Tone::Warn));
    } else if state.is_engine_stopped() {
        alerts.push(("⚠ ENGINE STOPPED".to_string(), Tone::Bad));
    }
    if state.gate().is_some_and(|g| g.verdict == Verdict::Fail) {
        alerts.push(("✖ GATE BREACHED".to_string(), Tone::Bad));
    }
    if state.rollback().started {
        let text = match state.rollback_traffic() {
            RollbackTraffic::Safe { ms } => format!("↺ traffic on X in {ms} ms"),
            RollbackTraffic::Asked | RollbackTraffic::Moving => "↺ moving traffic to X".to_string(),
            RollbackTraffic::NeverMoved => "↺ rolling back".to_string(),
            RollbackTraffic::AStepOfThePlan | RollbackTraffic::Stays => {
                "↺ traffic still on Y".to_string()
            }
        };
        alerts.push((text, Tone::Warn));
    }
    alerts
}

/// `WATCHING · driven by alice@ops1 pid 4242 since 04:12` (the driver's start, local time).
fn watching_alert(watching: &Watching) -> String {
    match &watching.driver {
        Some(driver) => format!(
            "WATCHING · driven by {} pid {} since {}",
            driver.operator,
            driver.pid,
            driver.since.with_timezone(&chrono::Local).format("%H:%M")
        ),
        None => "WATCHING · nobody drives it".to_string(),
    }
}

fn identity_line(state: &ConsoleState, width: usize) -> Line<'static> {
    let theme = state.theme();
    let plan = state.plan();
    let alerts = alerts(state);
    let alerts_width: usize = alerts.iter().map(|(t, _)| text::width(t) + 2).sum();
    let room = width.saturating_sub(alerts_width);

    // The name is whole unless it alone is wider than the room. What follows it gives way
    // in this order: the strategy's known words are abbreviated whole (never cut
    // mid-word), the mode goes, the versions go (the topology pane names each cluster's),
    // the strategy goes.
    let versions = format!(" {} → {}", plan.from, plan.to);
    let expanded = state.expanded();
    let (full, short) = (
        describe::strategies(expanded, false),
        describe::strategies(expanded, true),
    );
    let candidates = [
        format!("{versions} · {}: {full}", describe::mode(plan, false)),
        format!("{versions} · {}: {short}", describe::mode(plan, true)),
        format!("{versions} · {short}"),
        format!(" · {}: {short}", describe::mode(plan, true)),
        format!(" · {short}"),
    ];
    let name_width = text::width(&plan.name) + 1;
    let rest = candidates
        .into_iter()
        .find(|rest| name_width + text::width(rest) <= room)
        .unwrap_or_default();
    let name = text::truncate(&plan.name, room.saturating_sub(1).max(8));

    let mut spans = vec![
        Span::raw(" "),
        Span::styled(name, theme.bold()),
        Span::raw(rest),
    ];
    let used: usize = spans.iter().map(|s| s.width()).sum();
    if !alerts.is_empty() {
        spans.push(Span::raw(
            " ".repeat(width.saturating_sub(used + alerts_width)),
        ));
        for (text, tone) in alerts {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(text, theme.tone(tone)));
        }
    }
    Line::from(spans)
}

fn status_line(state: &ConsoleState, width: usize) -> Line<'static> {
    let theme = state.theme();
    let (symbol, label, tone) = run_label(state.run_state());
    let phase = state
        .current_phase()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // Waiting for the operator: the step whose turn it is says more than its phase.
    let at = match (state.run_state(), state.ready_step()) {
        (RunState::Waiting, Some(step)) => step.id.clone(),
        _ => wave_at(state).unwrap_or_else(|| format!("phase {phase}")),
    };
    let left = vec![
        Span::raw(" "),
        Span::styled(format!("{symbol} {label}"), theme.tone(tone)),
        Span::raw(format!(
            " · {at} · elapsed {}",
            text::duration(state.elapsed_secs())
        )),
    ];
    let left_width: usize = left.iter().map(|s| s.width()).sum();
    let room = width.saturating_sub(left_width + 3);
    let mut spans = left;
    let traffic = traffic_spans(state, room);
    let traffic_width: usize = traffic.iter().map(|s| s.width()).sum();
    spans.push(Span::raw(
        " ".repeat(width.saturating_sub(left_width + traffic_width + 1)),
    ));
    spans.extend(traffic);
    spans.into_iter().collect::<Line>()
}

/// `wave 2/3 as one, step 2/3`: a step of a wave confirmed as one runs (`engine::wave`),
/// so the operator reads that the steps after it go on without a confirm.
fn wave_at(state: &ConsoleState) -> Option<String> {
    if state.run_state() != RunState::Running || !wave::confirmed_as_one(state.plan()) {
        return None;
    }
    let step = state.running_step()?;
    let wave = wave::wave_of(state.expanded(), step)?;
    Some(format!(
        "wave {}/{} as one, step {}/{}",
        wave.number,
        wave.count,
        wave.position(step)?,
        wave.steps.len()
    ))
}

/// `X 75% ███████░░░ 25% Y`, at most `room` columns.
fn traffic_spans(state: &ConsoleState, room: usize) -> Vec<Span<'static>> {
    let theme = state.theme();
    let Some(traffic) = state.traffic() else {
        return vec![Span::styled(
            text::truncate("traffic not read yet", room),
            theme.tone(Tone::Muted),
        )];
    };
    let split = traffic.shown();
    let mut note = String::new();
    if traffic.applied.is_none() {
        note = " (unconfirmed)".into();
    } else if traffic.mismatch() {
        note = format!(" ⚠ asked Y {}%", traffic.requested.y);
    }
    let labels = format!("X {:>3}%  {:>3}% Y", split.x, split.y);
    let bar_width = room
        .saturating_sub(text::width(&labels) + text::width(&note))
        .clamp(0, 40);
    if bar_width < 6 {
        return vec![Span::raw(text::truncate(
            &format!("X {}% | Y {}%{note}", split.x, split.y),
            room,
        ))];
    }
    let x_cells = (bar_width * split.x as usize + 50) / 100;
    let y_cells = bar_width - x_cells;
    let mut spans = vec![
        Span::raw(format!("X {:>3}% ", split.x)),
        Span::styled("█".repeat(x_cells), theme.traffic_x()),
        Span::styled("░".repeat(y_cells), theme.traffic_y()),
        Span::raw(format!(" {:>3}% Y", split.y)),
    ];
    if !note.is_empty() {
        spans.push(Span::styled(note, theme.tone(Tone::Warn)));
    }
    spans
}

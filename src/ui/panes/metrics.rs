//! Per cluster: requests/s, 5xx ratio and p99 latency as sparklines over the running bake
//! (or the last 2 minutes when none runs), each with its latest value and, where the row has
//! room, its min and max (the p99 row its scale too); then the gate's verdict, the likely
//! cause of a breach, and its checks, the failing first with its figure marked. A figure
//! Kong does not export says why in the words of that cluster's Kong (`metrics::explain`:
//! no flag to name on 2.x, `status_code_metrics off, or none counted yet` on 3.x) instead
//! of drawing zeros.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, SparklineBar};

use crate::metrics::explain::{Figure, pane_words};
use crate::metrics::gates::CheckOutcome;
use crate::metrics::{ClusterFigures, MetricsSnapshot, Verdict};
use crate::plan::steps::ClusterSide;
use crate::ui::describe;
use crate::ui::state::{ConsoleState, Pane};
use crate::ui::text;
use crate::ui::theme::{DOWN_AS_PLANNED, IDLE, Tone, verdict_label};

use super::pane_block;

const LABEL_COLS: u16 = 8;
const VALUE_COLS: u16 = 7;
/// The min, max and scale after the latest value, where the row has room for them.
const EXTRA_COLS: u16 = 34;
/// The sparkline keeps at least this much before the extras are shown.
const MIN_SPARK_COLS: u16 = 16;

#[derive(Clone, Copy)]
enum Series {
    Rate,
    Errors,
    P99,
}

impl Series {
    const ALL: [Series; 3] = [Series::Rate, Series::Errors, Series::P99];

    fn label(self) -> &'static str {
        match self {
            Series::Rate => "req/s",
            Series::Errors => "5xx",
            Series::P99 => "p99",
        }
    }

    fn value(self, figures: &ClusterFigures) -> Option<f64> {
        match self {
            Series::Rate => figures.requests_per_s,
            Series::Errors => figures.error_ratio,
            Series::P99 => figures.p99_ms,
        }
    }

    /// The least full scale, so noise near zero does not fill the bars.
    fn scale_floor(self) -> f64 {
        match self {
            Series::Rate => 1.0,
            Series::Errors => 0.01,
            Series::P99 => 10.0,
        }
    }

    /// What the row says after its latest value: min and max over the window, and for the
    /// p99 the scale its bars are drawn on.
    fn extras(self, min: f64, max: f64, scale: f64) -> String {
        let mut s = format!("min {} max {}", self.format(min), self.format(max));
        if let Series::P99 = self {
            s.push_str(&format!(" · 0–{}", self.format(scale)));
        }
        s
    }

    fn format(self, v: f64) -> String {
        match self {
            Series::Rate => text::rate(v),
            Series::Errors => text::percent(v),
            Series::P99 => text::millis(v),
        }
    }

    /// Why there is no figure, when there is none, and how loudly to say it. Kong creates
    /// the request series at a node's first counted request: before Y takes traffic,
    /// their absence says nothing about the prometheus plugin.
    fn missing(
        self,
        figures: &ClusterFigures,
        no_traffic_yet: bool,
        down_as_planned: bool,
    ) -> Option<(&'static str, Tone)> {
        if figures.nodes_scraped == 0 {
            if down_as_planned {
                return Some((DOWN_AS_PLANNED, Tone::Muted));
            }
            return Some((
                if figures.nodes_total == 0 {
                    "no nodes to scrape yet"
                } else {
                    "no node answered the scrape"
                },
                Tone::Warn,
            ));
        }
        // Requests/s and the 5xx ratio both come from the status-code series.
        let no_series = match self {
            Series::Rate | Series::Errors => {
                (!figures.status_code_metrics).then_some(Figure::Errors)
            }
            Series::P99 => (!figures.latency_metrics).then_some(Figure::P99),
        };
        match no_series {
            Some(_) if no_traffic_yet => Some(("no traffic yet", Tone::Muted)),
            Some(figure) => Some((pane_words(figure, figures), Tone::Warn)),
            None if self.value(figures).is_none() => Some(("too little data yet", Tone::Warn)),
            None => None,
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let theme = state.theme();
    let block = pane_block(state, Pane::Metrics, title(state, area.width));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let history = state.metrics_history();
    let Some(newest) = history.back() else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "waiting for the first scrape",
                theme.tone(Tone::Muted),
            )),
            inner,
        );
        return;
    };

    let checks = state.gate().map_or(0, |g| g.shown.len());
    let reserve = 1
        + u16::from(wave_line(state, inner.width as usize).is_some())
        + u16::from(breach_cause(state).is_some())
        + u16::from(not_scraped_line(state).is_some())
        + checks.min(4) as u16;
    // Taller sparklines and a line per cluster when the pane has room for them.
    let tall = inner.height >= 6 * 2 + 2 + reserve;
    let series_rows = if tall {
        ((inner.height - reserve - 2) / 6).min(3)
    } else {
        1
    };
    let mut y = inner.y;
    for side in [ClusterSide::X, ClusterSide::Y] {
        let figures = newest.cluster(side);
        let down_as_planned = !state.cluster_expected_up(side);
        if tall {
            let line = cluster_line(side, figures, inner.width as usize);
            frame.render_widget(
                Paragraph::new(Span::styled(line, theme.bold())),
                Rect::new(inner.x, y, inner.width, 1),
            );
            y += 1;
        }
        for (i, series) in Series::ALL.into_iter().enumerate() {
            if y + series_rows > inner.bottom() {
                return;
            }
            let label = if i == 0 && !tall {
                format!("{} {}", describe::side(side), series.label())
            } else {
                format!("  {}", series.label())
            };
            let row = Rect::new(inner.x, y, inner.width, series_rows);
            let plotted = Plotted {
                side,
                series,
                down_as_planned,
            };
            render_series(frame, row, state, history, plotted, &label);
            y += series_rows;
        }
    }
    render_gate(
        frame,
        Rect::new(inner.x, y, inner.width, inner.bottom().saturating_sub(y)),
        state,
    );
}

/// One line per cluster above its sparklines, most telling first (the pane truncates it).
fn cluster_line(side: ClusterSide, f: &ClusterFigures, width: usize) -> String {
    let mut line = format!(
        "{} · {}/{} scraped",
        describe::side(side),
        f.nodes_scraped,
        f.nodes_total
    );
    if let Some((node, took)) = f.slowest_scrapes.first() {
        line.push_str(&format!(", slowest {node} {} ms", took.as_millis()));
    }
    for empty in &f.empty_configuration {
        let dp = &empty.data_plane;
        if dp.compatible == Some(false) {
            line.push_str(&format!(" · ⚠ {} incompatible, no config", dp.hostname));
        } else {
            line.push_str(&format!(" · ⚠ {} has the empty config", dp.hostname));
        }
    }
    if f.datastore_reachable == Some(false) {
        line.push_str(" · ⚠ datastore unreachable");
    }
    if let (Some(p50), Some(p95)) = (f.p50_ms, f.p95_ms) {
        line.push_str(&format!(
            " · p50 {} p95 {}",
            text::millis(p50),
            text::millis(p95)
        ));
    }
    // Kong's own time against the upstream's: which side a slower Y comes from.
    if let (Some(kong), Some(upstream)) = (f.kong_latency.p99_ms, f.upstream_latency.p99_ms) {
        line.push_str(&format!(
            " · p99 kong {} upstream {}",
            text::millis(kong),
            text::millis(upstream)
        ));
    }
    if let Some(c) = f.active_connections {
        line.push_str(&format!(" · {c:.0} conn"));
    }
    text::truncate(&line, width)
}

/// One series of one cluster, and whether that cluster is down as the plan has it now.
#[derive(Clone, Copy)]
struct Plotted {
    side: ClusterSide,
    series: Series,
    down_as_planned: bool,
}

fn render_series(
    frame: &mut Frame,
    row: Rect,
    state: &ConsoleState,
    history: &VecDeque<MetricsSnapshot>,
    plotted: Plotted,
    label: &str,
) {
    let Plotted {
        side,
        series,
        down_as_planned,
    } = plotted;
    let theme = state.theme();
    let Some(newest) = history.back() else {
        return;
    };
    let figures = newest.cluster(side);
    let label_area = Rect::new(row.x, row.y, LABEL_COLS.min(row.width), 1);
    frame.render_widget(
        Paragraph::new(text::fit(label, LABEL_COLS as usize)),
        label_area,
    );
    let rest = Rect::new(
        row.x + label_area.width,
        row.y,
        row.width - label_area.width,
        row.height,
    );
    // Y serves nothing before its first traffic stage.
    let no_traffic_yet = side == ClusterSide::Y && state.traffic().is_none_or(|t| t.shown().y == 0);
    if let Some((why, tone)) = series.missing(figures, no_traffic_yet, down_as_planned) {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::truncate(why, rest.width as usize),
                theme.tone(tone),
            )),
            Rect::new(rest.x, rest.y, rest.width, 1),
        );
        return;
    }
    let extras = rest.width > MIN_SPARK_COLS + VALUE_COLS + 1 + EXTRA_COLS;
    let spark_width = rest
        .width
        .saturating_sub(VALUE_COLS + 1 + if extras { EXTRA_COLS + 1 } else { 0 });
    let (window_secs, _) = state.sparkline_window();
    let value = |s: &MetricsSnapshot| series.value(s.cluster(side));
    let bars = buckets(history, spark_width as usize, window_secs, value);
    // Min and max over the samples of the window, not over the bars' means.
    let horizon = newest.at.timestamp() - window_secs;
    let (min, max) = history
        .iter()
        .filter(|s| s.at.timestamp() > horizon)
        .filter_map(value)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let scale = max.max(series.scale_floor());
    let data: Vec<SparklineBar> = bars
        .iter()
        .map(|b| SparklineBar::from(b.map(|v| (v / scale * 1000.0).round() as u64)))
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(data)
            .max(1000)
            .absent_value_symbol("·")
            .absent_value_style(theme.tone(Tone::Muted)),
        Rect::new(rest.x, rest.y, spark_width, rest.height),
    );
    let value = series
        .value(figures)
        .map(|v| series.format(v))
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(format!("{value:>width$}", width = VALUE_COLS as usize)),
        Rect::new(
            rest.x + spark_width + 1,
            rest.y + rest.height - 1,
            VALUE_COLS,
            1,
        ),
    );
    if extras && min <= max {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::truncate(&series.extras(min, max, scale), EXTRA_COLS as usize),
                theme.tone(Tone::Muted),
            )),
            Rect::new(
                rest.x + spark_width + 1 + VALUE_COLS + 1,
                rest.y + rest.height - 1,
                EXTRA_COLS,
                1,
            ),
        );
    }
}

/// The mean of each time bucket, oldest first. Buckets are aligned on the clock (not on
/// the newest sample), so between bucket edges only the last bar can change: a steady
/// screen writes little to the terminal.
pub fn buckets(
    history: &VecDeque<MetricsSnapshot>,
    bars: usize,
    window_secs: i64,
    value: impl Fn(&MetricsSnapshot) -> Option<f64>,
) -> Vec<Option<f64>> {
    if bars == 0 {
        return Vec::new();
    }
    let Some(newest) = history.back() else {
        return vec![None; bars];
    };
    let bucket_secs = (window_secs.max(1) as usize).div_ceil(bars).max(1) as i64;
    let last = newest.at.timestamp().div_euclid(bucket_secs);
    let first = last - bars as i64 + 1;
    let mut sums = vec![(0.0, 0u32); bars];
    for sample in history {
        let k = sample.at.timestamp().div_euclid(bucket_secs);
        if k < first {
            continue;
        }
        if let Some(v) = value(sample) {
            let slot = &mut sums[(k - first) as usize];
            slot.0 += v;
            slot.1 += 1;
        }
    }
    let mut means: Vec<Option<f64>> = sums
        .into_iter()
        .map(|(sum, n)| (n > 0).then(|| sum / f64::from(n)))
        .collect();
    // Buckets narrower than the scrape interval fall between samples: each holds the
    // sample before it, so a wide sparkline is not striped with gaps. A longer gap (a
    // scrape that failed, no data yet) stays a gap.
    let in_window: Vec<i64> = history
        .iter()
        .map(|s| s.at.timestamp())
        .filter(|t| t.div_euclid(bucket_secs) >= first)
        .collect();
    if let (Some(oldest), Some(newest), n) = (in_window.first(), in_window.last(), in_window.len())
        && n > 1
    {
        let step = (newest - oldest).div_euclid(n as i64 - 1).max(1);
        let mut last: Option<(usize, f64)> = None;
        for (i, slot) in means.iter_mut().enumerate() {
            match (*slot, last) {
                (Some(v), _) => last = Some((i, v)),
                (None, Some((j, v))) if ((i - j) as i64) * bucket_secs < step + bucket_secs => {
                    *slot = Some(v);
                }
                _ => {}
            }
        }
    }
    means
}

/// What the sparklines cover (where the title has room), then the gate's verdict.
fn title(state: &ConsoleState, width: u16) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    if width >= 50 {
        let mut covers = match state.sparkline_window() {
            (_, Some(bake)) => format!("bake {}", humantime::format_duration(bake)),
            (secs, None) => format!(
                "last {}",
                humantime::format_duration(std::time::Duration::from_secs(secs as u64))
            ),
        };
        if state.gate().is_some() {
            covers.push_str(" · ");
        }
        spans.push(Span::styled(covers, state.theme().tone(Tone::Muted)));
    }
    if let Some(gate) = state.gate() {
        let (symbol, label, tone) = verdict_label(gate.verdict, state.gate_watched());
        spans.push(Span::styled(
            format!("gate {symbol} {label}"),
            state.theme().tone(tone),
        ));
    }
    spans
}

/// What the gate judged, when a wave's nodes and not the whole clusters: `judged: wave 2:
/// Y 3 nodes vs X 7 serving`, or in 80 columns `wave 2: Y 3 vs X 7 serving`. The sparklines
/// above stay the clusters'.
fn wave_line(state: &ConsoleState, width: usize) -> Option<String> {
    let scope = state.gate()?.figures.scope?;
    let full = format!("judged: {scope}");
    Some(if full.chars().count() <= width {
        full
    } else {
        format!(
            "wave {}: Y {} vs X {} serving",
            scope.wave, scope.y_nodes, scope.x_serving
        )
    })
}

/// The likely cause of a breach, while the gate reads breached.
fn breach_cause(state: &ConsoleState) -> Option<String> {
    let gate = state.gate().filter(|g| g.verdict == Verdict::Fail)?;
    state.likely_cause(Some(&gate.checks.join("; ")))
}

fn render_gate(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    if area.height == 0 {
        return;
    }
    let theme = state.theme();
    let width = area.width as usize;
    let mut lines = Vec::new();
    let not_scraped = |lines: &mut Vec<Line<'static>>| {
        if let Some(line) = not_scraped_line(state).filter(|_| area.height > lines.len() as u16 + 1)
        {
            lines.push(Line::from(Span::styled(
                text::truncate(&line, width),
                theme.tone(Tone::Bad),
            )));
        }
    };
    match state.gate() {
        None => {
            lines.push(Line::from(Span::styled(
                "gate: no verdict yet",
                theme.tone(Tone::Muted),
            )));
            not_scraped(&mut lines);
        }
        Some(gate) => {
            let (symbol, label, tone) = verdict_label(gate.verdict, state.gate_watched());
            let mut summary = if label == IDLE {
                format!("{symbol} gate {label}: {}", state.gate_idle_because())
            } else {
                format!(
                    "{symbol} gate {label} · {} req in window",
                    gate.requests_in_window
                )
            };
            if let Some(secs) = state.gate_window_clears_in() {
                // In place of the request count, so 80 columns keep it.
                summary = format!("{symbol} {label} · clears in {secs} s");
            }
            if gate.consecutive_breaches > 0 {
                summary.push_str(&format!(" · {} in a row", gate.consecutive_breaches));
            }
            lines.push(Line::from(Span::styled(
                text::truncate(&summary, width),
                theme.tone(tone),
            )));
            if let Some(wave) = wave_line(state, width).filter(|_| area.height > 1) {
                lines.push(Line::from(Span::styled(
                    text::truncate(&wave, width),
                    theme.tone(Tone::Muted),
                )));
            }
            if let Some(cause) = breach_cause(state).filter(|_| area.height > 2) {
                lines.push(Line::from(Span::styled(
                    text::truncate(&format!("⚠ {cause}"), width),
                    theme.tone(Tone::Warn),
                )));
            }
            not_scraped(&mut lines);
            let room = (area.height as usize).saturating_sub(lines.len());
            let offset = state
                .metrics_offset()
                .min(gate.shown.len().saturating_sub(room));
            for check in gate.shown.iter().skip(offset).take(room) {
                lines.push(check_line(state, check, width));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `✖ 3 not scraped: dp-0017 (timeout 800 ms), dp-0230 (unreachable), …`: the nodes of
/// the clusters that should be up whose last scrape failed, X's first; `None` when there
/// are none. A cluster down as planned is left out: its nodes are not expected to answer.
fn not_scraped_line(state: &ConsoleState) -> Option<String> {
    let newest = state.metrics_history().back()?;
    let failed: Vec<&(String, String)> = [ClusterSide::X, ClusterSide::Y]
        .into_iter()
        .filter(|side| state.cluster_expected_up(*side))
        .flat_map(|side| &newest.cluster(side).not_scraped)
        .collect();
    if failed.is_empty() {
        return None;
    }
    let named: Vec<String> = failed
        .iter()
        .map(|(node, brief)| format!("{node} ({brief})"))
        .collect();
    Some(format!(
        "✖ {} not scraped: {}",
        failed.len(),
        named.join(", ")
    ))
}

/// `✖ Y p99 398ms > 1.5× X 130ms`: the symbol in the outcome's tone, a breaching figure
/// in red (bold, so it stands out without colour too).
fn check_line(
    state: &ConsoleState,
    check: &crate::metrics::gates::ShownCheck,
    width: usize,
) -> Line<'static> {
    let theme = state.theme();
    let (symbol, tone) = match check.outcome {
        CheckOutcome::Breached => ("✖", Tone::Bad),
        CheckOutcome::Unknown => ("?", Tone::Warn),
        CheckOutcome::Held => ("✔", Tone::Good),
        CheckOutcome::Skipped => ("·", Tone::Muted),
    };
    let figure_style = match check.outcome {
        CheckOutcome::Breached => theme.tone(Tone::Bad),
        _ => ratatui::style::Style::new(),
    };
    let head = format!("{symbol} {} ", check.subject);
    let figure = text::truncate(&check.figure, width.saturating_sub(text::width(&head)));
    let rest = text::truncate(
        &format!(" {}", check.rule),
        width.saturating_sub(text::width(&head) + text::width(&figure)),
    );
    Line::from(vec![
        Span::styled(text::truncate(&head, width), theme.tone(tone)),
        Span::styled(figure, figure_style),
        Span::raw(rest),
    ])
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn snapshot(secs: i64, rps: Option<f64>) -> MetricsSnapshot {
        MetricsSnapshot {
            at: Utc.timestamp_opt(secs, 0).unwrap(),
            x: ClusterFigures {
                requests_per_s: rps,
                ..ClusterFigures::default()
            },
            y: ClusterFigures::default(),
        }
    }

    #[test]
    fn buckets_average_samples_on_clock_aligned_edges() {
        // 60 bars over 600 s: 10 s buckets.
        let history: VecDeque<_> = [
            snapshot(1_000, Some(10.0)),
            snapshot(1_005, Some(20.0)),
            snapshot(1_012, None),
            snapshot(1_019, Some(40.0)),
        ]
        .into();
        let bars = buckets(&history, 60, 600, |s| s.x.requests_per_s);
        assert_eq!(bars.len(), 60);
        assert_eq!(bars[59], Some(40.0), "bucket 1010..1020");
        assert_eq!(bars[58], Some(15.0), "bucket 1000..1010");
        assert!(bars[..58].iter().all(Option::is_none));
    }

    #[test]
    fn a_new_sample_inside_a_bucket_changes_only_the_last_bar() {
        let mut history: VecDeque<_> = (0..300)
            .map(|i| snapshot(10_000 + i, Some((i % 7) as f64)))
            .collect();
        let before = buckets(&history, 20, 600, |s| s.x.requests_per_s);
        history.push_back(snapshot(10_300, Some(99.0)));
        let after = buckets(&history, 20, 600, |s| s.x.requests_per_s);
        // 30 s buckets: 10_300 is not a multiple of 30, so no shift happened.
        assert_eq!(before[..19], after[..19]);
        assert_ne!(before[19], after[19]);
    }
}

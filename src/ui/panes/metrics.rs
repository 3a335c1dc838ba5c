//! Per cluster: requests/s, 5xx ratio and p99 latency as sparklines over the last ten
//! minutes, then the gate's verdict and its checks. A figure Kong does not export says why
//! in the words of that cluster's Kong (`metrics::explain`: no flag to name on 2.x,
//! `status_code_metrics off, or none counted yet` on 3.x) instead of drawing zeros.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, SparklineBar};

use crate::metrics::explain::{Figure, pane_words};
use crate::metrics::{ClusterFigures, MetricsSnapshot};
use crate::plan::steps::ClusterSide;
use crate::ui::describe;
use crate::ui::state::{ConsoleState, METRICS_WINDOW_SECS, Pane};
use crate::ui::text;
use crate::ui::theme::{DOWN_AS_PLANNED, IDLE, Tone, verdict_label};

use super::pane_block;

const LABEL_COLS: u16 = 8;
const VALUE_COLS: u16 = 7;

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
    let block = pane_block(state, Pane::Metrics, gate_title(state));
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

    let checks = state.gate().map_or(0, |g| g.checks.len());
    let reserve = 1 + checks.min(4) as u16;
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
    let spark_width = rest.width.saturating_sub(VALUE_COLS + 1);
    let bars = buckets(history, spark_width as usize, |s| {
        series.value(s.cluster(side))
    });
    let scale = bars
        .iter()
        .flatten()
        .fold(series.scale_floor(), |m, v| m.max(*v));
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
}

/// The mean of each time bucket, oldest first. Buckets are aligned on the clock (not on
/// the newest sample), so between bucket edges only the last bar can change: a steady
/// screen writes little to the terminal.
pub fn buckets(
    history: &VecDeque<MetricsSnapshot>,
    bars: usize,
    value: impl Fn(&MetricsSnapshot) -> Option<f64>,
) -> Vec<Option<f64>> {
    if bars == 0 {
        return Vec::new();
    }
    let Some(newest) = history.back() else {
        return vec![None; bars];
    };
    let bucket_secs = (METRICS_WINDOW_SECS as usize).div_ceil(bars).max(1) as i64;
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
    sums.into_iter()
        .map(|(sum, n)| (n > 0).then(|| sum / f64::from(n)))
        .collect()
}

fn gate_title(state: &ConsoleState) -> Vec<Span<'static>> {
    match state.gate() {
        Some(gate) => {
            let (symbol, label, tone) = verdict_label(gate.verdict, state.gate_watched());
            vec![Span::styled(
                format!("gate {symbol} {label}"),
                state.theme().tone(tone),
            )]
        }
        None => vec![],
    }
}

fn render_gate(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    if area.height == 0 {
        return;
    }
    let theme = state.theme();
    let width = area.width as usize;
    let mut lines = Vec::new();
    match state.gate() {
        None => lines.push(Line::from(Span::styled(
            "gate: no verdict yet",
            theme.tone(Tone::Muted),
        ))),
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
            if gate.consecutive_breaches > 0 {
                summary.push_str(&format!(" · {} in a row", gate.consecutive_breaches));
            }
            lines.push(Line::from(Span::styled(
                text::truncate(&summary, width),
                theme.tone(tone),
            )));
            let room = area.height as usize - 1;
            let offset = state
                .metrics_offset()
                .min(gate.checks.len().saturating_sub(room));
            for check in gate.checks.iter().skip(offset).take(room) {
                lines.push(Line::from(text::truncate(&format!(" {check}"), width)));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
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
        let bars = buckets(&history, 60, |s| s.x.requests_per_s);
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
        let before = buckets(&history, 20, |s| s.x.requests_per_s);
        history.push_back(snapshot(10_300, Some(99.0)));
        let after = buckets(&history, 20, |s| s.x.requests_per_s);
        // 30 s buckets: 10_300 is not a multiple of 30, so no shift happened.
        assert_eq!(before[..19], after[..19]);
        assert_ne!(before[19], after[19]);
    }
}

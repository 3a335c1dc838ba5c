//! The plan's gates, judged on each snapshot's window: Y on its own (absolute) and Y
//! against X (relative), with a minimum request count and a number of breaches in a row
//! before a failure.
//!
//! An evaluation is:
//! - `Inconclusive` when Y has no data, too few requests, or a figure a gate needs is
//!   unknown (its Kong flag is off) — and also while breaches have not yet reached the
//!   number in a row that makes a failure, since that is not yet known either;
//! - `Fail` on the Nth breaching evaluation in a row;
//! - `Pass` when every configured gate was judged and held.
//!
//! Only a passing evaluation resets the run of breaches; an inconclusive one leaves it
//! as it was. A relative gate is skipped (not inconclusive) when X served fewer than
//! `min_requests` in the window — at 100 % to Y there is no baseline to compare with.
//!
//! Whatever the figures, a data plane of Y whose control plane reports the empty
//! configuration fails the evaluation at once: it answers every request with a 404
//! while its sync status can still read `normal` (Kong issue 12861), and waiting for the
//! 5xx ratio would wait for a window of 404s that are not even 5xx.
//!
//! Kong 2.x and 3.x nodes are judged alike (each sample maps its exporter's families onto
//! the same figures), except for the p99: 2.x's request latency has 26 bucket bounds,
//! 3.x's 13, and a quantile interpolated inside different buckets differs by the bucket
//! widths alone. Each cluster's own p99 (for the absolute gate and the screen) is read on
//! its own bounds; the relative gate, when X's and Y's bounds differ, compares both
//! re-bucketed onto the bounds they share (11 between 2.x and 3.x: 25, 50, 80, 100, 400,
//! 1000, 2000, 5000, 10000, 30000, 60000), so that the same traffic gives the same p99 on
//! both sides, at the shared bounds' coarser resolution.

use crate::plan::model::{FailAction, GateSpec};

use super::explain::{Figure, why_unknown};
use super::histogram::Histogram;
use super::{
    ClusterFigures, ClusterWindow, GateFigures, GateThresholds, GateVerdict, MetricsSnapshot,
    ScopeCounts, SharedBoundsP99, Verdict,
};

/// Judges snapshots against one `GateSpec`, counting breaches in a row.
#[derive(Debug, Clone)]
pub struct GateEvaluator {
    spec: GateSpec,
    consecutive_breaches: u32,
}

/// How one check came out. The order is the order they are shown in: what failed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckOutcome {
    Breached,
    Unknown,
    Held,
    Skipped,
}

/// One check as the metrics pane shows it, short enough for 80 columns:
/// `Y p99` `398 ms` `> 1.5× X 130 ms`. The figure is apart so the pane can mark it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownCheck {
    pub outcome: CheckOutcome,
    pub subject: String,
    pub figure: String,
    pub rule: String,
}

impl ShownCheck {
    fn new(subject: &str, figure: String, rule: String) -> ShownCheck {
        ShownCheck {
            outcome: CheckOutcome::Held,
            subject: subject.to_string(),
            figure,
            rule,
        }
    }
}

struct Check {
    line: String,
    shown: ShownCheck,
}

impl Check {
    fn judged(line: String, held: bool, shown: ShownCheck) -> Check {
        let outcome = if held {
            CheckOutcome::Held
        } else {
            CheckOutcome::Breached
        };
        let status = if held { "ok" } else { "BREACH" };
        Check {
            line: format!("{line}: {status}"),
            shown: ShownCheck { outcome, ..shown },
        }
    }

    fn unknown(line: String, shown: ShownCheck) -> Check {
        Check {
            line: format!("{line}: inconclusive"),
            shown: ShownCheck {
                outcome: CheckOutcome::Unknown,
                ..shown
            },
        }
    }

    fn skipped(line: String, subject: &str) -> Check {
        Check {
            line: format!("{line}: skipped"),
            shown: ShownCheck {
                outcome: CheckOutcome::Skipped,
                ..ShownCheck::new(subject, "skipped".into(), "(X has no baseline)".into())
            },
        }
    }

    fn outcome(&self) -> CheckOutcome {
        self.shown.outcome
    }
}

/// A figure kongup cannot know, and why (`metrics::explain`): the pane shows `Y p99
/// unknown` and the reason after it, the words an operator acts on first.
fn unknown_check(figure: Figure, side: &str, f: &ClusterFigures) -> Check {
    let why = why_unknown(figure, side, f);
    let subject = format!("{side} {}", figure.label());
    let rule = why
        .strip_prefix(&format!("{subject} unknown "))
        .map_or_else(|| format!("· {why}"), str::to_string);
    Check::unknown(
        why.clone(),
        ShownCheck::new(&subject, "unknown".into(), rule),
    )
}

/// Milliseconds as the pane shows them: `398 ms`.
fn short_ms(value: f64) -> String {
    format!("{value:.0} ms")
}

/// A ratio of the plan's as written: `1.5×`, `3×`.
fn times(ratio: f64) -> String {
    format!("{ratio}×")
}

/// While `verdict` failed: the whole seconds until its failing samples have left the gate
/// window (`window` after it was judged), if no new failure comes.
pub fn window_clears_in(
    verdict: &GateVerdict,
    window: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<u64> {
    if verdict.verdict != Verdict::Fail {
        return None;
    }
    let window = chrono::TimeDelta::from_std(window).ok()?;
    let left = (verdict.at + window - now).num_milliseconds();
    (left > 0).then(|| (left as u64).div_ceil(1000))
}

/// How the pause text and the resume say it.
pub fn window_clears_words(secs: u64) -> String {
    format!("the gate window still holds the failing samples: window clears in {secs} s")
}

/// A ratio as the gates show it: `0.80%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

/// Milliseconds as the gates show them: `312.0 ms`.
pub fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}

/// The data planes of Y whose control plane reports the empty configuration's hash, as
/// check lines. Two cases, said apart by `kong_data_plane_version_compatible`:
/// - a compatible data plane pinged that hash: it runs the empty configuration;
/// - an incompatible one never got to ping: the control plane closed its connection and
///   recorded the hash it starts every connection with (control_plane.lua 2.8.5:598-620,
///   3.4.2:224-252), and sends it no configuration.
fn empty_configuration_checks(y: &ClusterFigures) -> Vec<Check> {
    y.empty_configuration
        .iter()
        .map(|empty| {
            let dp = &empty.data_plane;
            let cp = &empty.control_plane;
            let line = if dp.compatible == Some(false) {
                format!(
                    "data plane {} ({}) gets no configuration: Y's control plane {cp} refuses \
                     it as incompatible{} and reports its config hash as 0 (the empty \
                     configuration's) on two scrapes in a row. It serves an old configuration \
                     or none",
                    dp.hostname,
                    dp.ip,
                    dp.kong_version
                        .as_ref()
                        .map_or(String::new(), |v| format!(" (it runs Kong {v})")),
                )
            } else {
                format!(
                    "data plane {} ({}) has the empty configuration: Y's control plane {cp} \
                     reports its config hash as 0 (the empty configuration's) on two scrapes \
                     in a row. It answers every request with 404 while its sync status can \
                     still read normal (Kong issue 12861)",
                    dp.hostname, dp.ip
                )
            };
            let shown = ShownCheck::new(
                &format!("Y DP {}", dp.hostname),
                if dp.compatible == Some(false) {
                    "no config".into()
                } else {
                    "empty config".into()
                },
                if dp.compatible == Some(false) {
                    "(refused as incompatible)".into()
                } else {
                    "(404 to every request)".into()
                },
            );
            Check::judged(line, false, shown)
        })
        .collect()
}

/// The p99s the relative gate compares: each cluster's own, or, when their latency
/// bounds differ, both on the bounds they share (with how many there are). `None`
/// inside when a side has no p99 there.
fn comparable_p99(
    x: &ClusterFigures,
    y: &ClusterFigures,
) -> (Option<f64>, Option<f64>, Option<SharedBoundsP99>) {
    let bounds = |h: &Histogram| h.finite_bounds().collect::<Vec<f64>>();
    let (x_bounds, y_bounds) = (bounds(&x.request_latency), bounds(&y.request_latency));
    if x_bounds == y_bounds || x_bounds.is_empty() || y_bounds.is_empty() {
        return (x.p99_ms, y.p99_ms, None);
    }
    let shared: Vec<f64> = x_bounds
        .iter()
        .copied()
        .filter(|le| y_bounds.contains(le))
        .collect();
    let p99 = |h: &Histogram| h.on_bounds(&shared).quantile(0.99);
    let (x_p99, y_p99) = (p99(&x.request_latency), p99(&y.request_latency));
    let recorded = match (x_p99, y_p99) {
        (Some(x_p99_ms), Some(y_p99_ms)) if !shared.is_empty() => Some(SharedBoundsP99 {
            x_p99_ms,
            y_p99_ms,
            bounds: shared.len() as u32,
        }),
        _ => None,
    };
    (x_p99, y_p99, recorded)
}

fn cluster_window(figures: &ClusterFigures) -> ClusterWindow {
    ClusterWindow {
        requests: figures.requests_in_window,
        error_ratio: figures.error_ratio,
        p99_ms: figures.p99_ms,
    }
}

impl GateEvaluator {
    pub fn new(spec: GateSpec) -> Self {
        GateEvaluator {
            spec,
            consecutive_breaches: 0,
        }
    }

    pub fn spec(&self) -> &GateSpec {
        &self.spec
    }

    /// What the engine does on `Fail`: pause (default) or roll back.
    pub fn on_fail(&self) -> FailAction {
        self.spec.on_fail
    }

    /// Breaching evaluations in a row so far.
    pub fn consecutive_breaches(&self) -> u32 {
        self.consecutive_breaches
    }

    /// Forgets earlier breaches: call when a new traffic stage starts.
    pub fn reset(&mut self) {
        self.consecutive_breaches = 0;
    }

    /// Judges one snapshot of the whole clusters (its figures already cover the gate
    /// window).
    pub fn evaluate(&mut self, snapshot: &MetricsSnapshot) -> GateVerdict {
        self.evaluate_in(snapshot, None)
    }

    /// Judges one snapshot whose figures are `scope`'s nodes (a wave's), or the whole
    /// clusters' when `None`. A wave with no X node serving has no baseline: its relative
    /// gates are skipped and Y is judged by the absolute ones alone (inconclusive when the
    /// plan sets none), as at 100 % to Y.
    pub fn evaluate_in(
        &mut self,
        snapshot: &MetricsSnapshot,
        scope: Option<ScopeCounts>,
    ) -> GateVerdict {
        let spec = &self.spec;
        let (x, y) = (&snapshot.x, &snapshot.y);
        let min_requests = spec.min_requests;
        let needed = self.spec.consecutive_breaches.max(1);
        let mut checks: Vec<Check> = Vec::new();
        let y_requests = y.requests_in_window;

        // Enough data on Y to judge at all?
        let enough_requests = match y_requests {
            _ if y.nodes_scraped == 0 && scope.is_some() => {
                let wave = scope.map_or(0, |s| s.wave);
                let why = if y.nodes_total == 0 {
                    format!("no Y node left in wave {wave} (all taken out)")
                } else {
                    format!("0 of wave {wave}'s {} Y nodes scraped yet", y.nodes_total)
                };
                checks.push(Check::unknown(
                    format!("Y: no data ({why}): nothing of the wave to judge"),
                    ShownCheck::new("Y", "no data".into(), format!("({why})")),
                ));
                false
            }
            _ if y.nodes_scraped == 0 => {
                checks.push(Check::unknown(
                    format!("Y: no data (0 of {} nodes scraped)", y.nodes_total),
                    ShownCheck::new(
                        "Y",
                        "no data".into(),
                        format!("(0 of {} nodes scraped)", y.nodes_total),
                    ),
                ));
                false
            }
            None => {
                checks.push(unknown_check(Figure::Requests, "Y", y));
                false
            }
            Some(count) if count < min_requests => {
                checks.push(Check::unknown(
                    format!("Y requests in window {count} < {min_requests}: too few to judge"),
                    ShownCheck::new(
                        "Y requests",
                        count.to_string(),
                        format!("< {min_requests}: too few"),
                    ),
                ));
                false
            }
            Some(count) => {
                checks.push(Check::judged(
                    format!("Y requests in window {count} ≥ {min_requests}"),
                    true,
                    ShownCheck::new("Y requests", count.to_string(), format!("≥ {min_requests}")),
                ));
                true
            }
        };

        if let Some(max) = spec.max_error_ratio {
            checks.push(match y.error_ratio {
                Some(ratio) => {
                    let op = if ratio <= max { "≤" } else { ">" };
                    Check::judged(
                        format!("Y 5xx {} {op} {}", percent(ratio), percent(max)),
                        ratio <= max,
                        ShownCheck::new("Y 5xx", percent(ratio), format!("{op} {}", percent(max))),
                    )
                }
                None => unknown_check(Figure::Errors, "Y", y),
            });
        }
        if let Some(max) = spec.max_p99_ms {
            checks.push(match y.p99_ms {
                Some(p99) => {
                    let op = if p99 <= max { "≤" } else { ">" };
                    Check::judged(
                        format!("Y p99 {} {op} {}", ms(p99), ms(max)),
                        p99 <= max,
                        ShownCheck::new("Y p99", short_ms(p99), format!("{op} {}", short_ms(max))),
                    )
                }
                None => unknown_check(Figure::P99, "Y", y),
            });
        }

        let x_baseline = x
            .requests_in_window
            .is_some_and(|n| n >= min_requests.max(1));
        // A wave whose X nodes have all stopped (or been taken out) has nothing to compare
        // with, like X at 0 % of the traffic.
        let no_x_serving = scope.filter(|s| s.x_serving == 0).map(|s| s.wave);
        let no_x = |subject: &str, what: &str| {
            Check::skipped(
                format!(
                    "{what}: no X node serving in wave {}: no baseline (Y is judged by the \
                     absolute gates alone)",
                    no_x_serving.unwrap_or_default()
                ),
                subject,
            )
        };
        let no_baseline = || {
            format!(
                "X served {} requests in the window (< {}): no baseline",
                x.requests_in_window.unwrap_or(0),
                min_requests.max(1)
            )
        };
        if let Some(max_delta) = spec.max_error_ratio_delta {
            checks.push(match (y.error_ratio, x.error_ratio) {
                _ if no_x_serving.is_some() => no_x("Y 5xx vs X", "Y 5xx − X 5xx"),
                _ if !x_baseline && x.nodes_scraped > 0 && x.status_code_metrics => {
                    Check::skipped(format!("Y 5xx − X 5xx: {}", no_baseline()), "Y 5xx vs X")
                }
                (Some(y_ratio), Some(x_ratio)) => {
                    let delta = y_ratio - x_ratio;
                    let op = if delta <= max_delta { "≤" } else { ">" };
                    Check::judged(
                        format!(
                            "Y 5xx {} − X 5xx {} = {:+.2} pp {op} {:.2} pp",
                            percent(y_ratio),
                            percent(x_ratio),
                            delta * 100.0,
                            max_delta * 100.0
                        ),
                        delta <= max_delta,
                        ShownCheck::new(
                            "Y 5xx",
                            percent(y_ratio),
                            format!("{op} X {} + {} pp", percent(x_ratio), max_delta * 100.0),
                        ),
                    )
                }
                (None, _) => unknown_check(Figure::Errors, "Y", y),
                (_, None) => unknown_check(Figure::Errors, "X", x),
            });
        }
        let mut p99_on_shared_bounds = None;
        if let Some(max_ratio) = spec.max_p99_ratio {
            let (x_p99, y_p99, shared) = comparable_p99(x, y);
            p99_on_shared_bounds = shared;
            let on_shared = shared.map_or(String::new(), |s| {
                format!(
                    " (both on the {} latency bounds X and Y share: their exporters bucket \
                     differently)",
                    s.bounds
                )
            });
            checks.push(match (y_p99, x_p99) {
                _ if no_x_serving.is_some() => no_x("Y p99 vs X", "Y p99 vs X p99"),
                _ if !x_baseline && x.nodes_scraped > 0 && x.latency_metrics => {
                    Check::skipped(format!("Y p99 vs X p99: {}", no_baseline()), "Y p99 vs X")
                }
                (Some(y_p99), Some(x_p99)) => {
                    let limit = max_ratio * x_p99;
                    let op = if y_p99 <= limit { "≤" } else { ">" };
                    Check::judged(
                        format!(
                            "Y p99 {} {op} {max_ratio:.2} × X p99 {} = {}{on_shared}",
                            ms(y_p99),
                            ms(x_p99),
                            ms(limit)
                        ),
                        y_p99 <= limit,
                        ShownCheck::new(
                            "Y p99",
                            short_ms(y_p99),
                            format!("{op} {} X {}", times(max_ratio), short_ms(x_p99)),
                        ),
                    )
                }
                (None, _) => unknown_check(Figure::P99, "Y", y),
                (_, None) => unknown_check(Figure::P99, "X", x),
            });
        }

        let thresholds = checks.len() - 1;
        let breached = checks.iter().any(|c| c.outcome() == CheckOutcome::Breached);
        let unknown = checks.iter().any(|c| c.outcome() == CheckOutcome::Unknown);
        let judged = checks
            .iter()
            .skip(1)
            .any(|c| matches!(c.outcome(), CheckOutcome::Held | CheckOutcome::Breached));

        let empty = empty_configuration_checks(y);
        let no_configuration = !empty.is_empty();
        // What failed first, then what is unknown, then what held (a stable sort: the
        // plan's order within each), so a short screen or a log line leads with the cause.
        // With too few requests nothing counts: the request line, which says so, stays
        // first.
        let mut all: Vec<Check> = empty.into_iter().chain(checks).collect();
        if enough_requests {
            all.sort_by_key(Check::outcome);
        }
        let shown: Vec<ShownCheck> = all.iter().map(|c| c.shown.clone()).collect();
        let mut lines: Vec<String> = all.into_iter().map(|c| c.line).collect();
        let verdict = if no_configuration {
            // Not a threshold's breach: it neither waits for `consecutive_breaches` nor
            // counts towards them.
            lines.push(
                "a data plane of Y has no configuration: fail at once, without waiting for \
                 the 5xx ratio"
                    .into(),
            );
            Verdict::Fail
        } else if !enough_requests {
            // Figures from too few requests are shown but not counted.
            Verdict::Inconclusive
        } else if breached {
            self.consecutive_breaches += 1;
            if self.consecutive_breaches >= needed {
                lines.push(format!(
                    "{} breaches in a row ({needed} make a failure): fail",
                    self.consecutive_breaches
                ));
                Verdict::Fail
            } else {
                lines.push(format!(
                    "{} breach(es) in a row ({needed} make a failure): not yet a failure",
                    self.consecutive_breaches
                ));
                Verdict::Inconclusive
            }
        } else if unknown || (thresholds > 0 && !judged) {
            Verdict::Inconclusive
        } else {
            self.consecutive_breaches = 0;
            if thresholds == 0 {
                lines.push("no threshold configured: only the request count is checked".into());
            }
            Verdict::Pass
        };

        GateVerdict {
            at: snapshot.at,
            verdict,
            checks: lines,
            requests_in_window: y_requests.unwrap_or(0),
            consecutive_breaches: self.consecutive_breaches,
            shown,
            figures: GateFigures {
                x: cluster_window(x),
                y: cluster_window(y),
                thresholds: GateThresholds {
                    max_error_ratio: spec.max_error_ratio,
                    max_p99_ms: spec.max_p99_ms,
                    max_error_ratio_delta: spec.max_error_ratio_delta,
                    max_p99_ratio: spec.max_p99_ratio,
                    min_requests,
                    breaches_to_fail: needed,
                },
                p99_on_shared_bounds,
                scope,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Exporter;

    fn spec(max_error_ratio: Option<f64>) -> GateSpec {
        GateSpec {
            max_error_ratio,
            max_p99_ms: None,
            min_requests: 10,
            consecutive_breaches: 1,
            ..GateSpec::default()
        }
    }

    fn figures(requests: u64, error_ratio: f64, nodes: usize) -> ClusterFigures {
        ClusterFigures {
            error_ratio: Some(error_ratio),
            p99_ms: Some(40.0),
            requests_in_window: Some(requests),
            status_code_metrics: true,
            latency_metrics: true,
            exporter: Some(Exporter::Kong3),
            nodes_scraped: nodes,
            nodes_total: nodes,
            ..Default::default()
        }
    }

    fn wave(y_nodes: u32, x_serving: u32) -> Option<ScopeCounts> {
        Some(ScopeCounts {
            wave: 3,
            waves: 3,
            y_nodes,
            x_serving,
        })
    }

    #[test]
    fn a_wave_whose_y_nodes_have_no_sample_yet_is_inconclusive_and_says_why() {
        let y = ClusterFigures {
            nodes_total: 3,
            ..Default::default()
        };
        let snapshot = MetricsSnapshot {
            at: chrono::Utc::now(),
            x: figures(500, 0.0, 4),
            y,
        };
        let verdict = GateEvaluator::new(spec(Some(0.05))).evaluate_in(&snapshot, wave(3, 4));
        assert_eq!(verdict.verdict, Verdict::Inconclusive);
        assert_eq!(
            verdict.checks[0],
            "Y: no data (0 of wave 3's 3 Y nodes scraped yet): nothing of the wave to judge: \
             inconclusive"
        );
        assert_eq!(verdict.figures.scope, wave(3, 4));
        // Every Y node of the wave taken out: nothing to judge either.
        let none_left = MetricsSnapshot {
            y: ClusterFigures::default(),
            ..snapshot
        };
        let verdict = GateEvaluator::new(spec(Some(0.05))).evaluate_in(&none_left, wave(0, 4));
        assert_eq!(verdict.verdict, Verdict::Inconclusive);
        assert!(
            verdict.checks[0].contains("no Y node left in wave 3 (all taken out)"),
            "{:?}",
            verdict.checks
        );
    }

    #[test]
    fn a_wave_with_no_x_node_serving_judges_y_by_the_absolute_gates_alone() {
        let empty_x = ClusterFigures::default();
        let snapshot = |y_ratio| MetricsSnapshot {
            at: chrono::Utc::now(),
            x: empty_x.clone(),
            y: figures(200, y_ratio, 3),
        };
        // The relative gates (the defaults) are skipped, saying why; the absolute judges.
        let verdict = GateEvaluator::new(spec(Some(0.05))).evaluate_in(&snapshot(0.01), wave(3, 0));
        assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.checks);
        assert!(
            verdict.checks.iter().any(|c| c
                == "Y 5xx − X 5xx: no X node serving in wave 3: no baseline (Y is judged by \
                    the absolute gates alone): skipped"),
            "{:?}",
            verdict.checks
        );
        let verdict = GateEvaluator::new(spec(Some(0.05))).evaluate_in(&snapshot(0.2), wave(3, 0));
        assert_eq!(verdict.verdict, Verdict::Fail, "{:?}", verdict.checks);
        // Without an absolute gate nothing is judged: inconclusive, never a pass.
        let verdict = GateEvaluator::new(spec(None)).evaluate_in(&snapshot(0.0), wave(3, 0));
        assert_eq!(
            verdict.verdict,
            Verdict::Inconclusive,
            "{:?}",
            verdict.checks
        );
    }

    #[test]
    fn the_scope_reads_as_the_comparison_it_judged() {
        let scope = ScopeCounts {
            wave: 2,
            waves: 3,
            y_nodes: 3,
            x_serving: 7,
        };
        assert_eq!(scope.to_string(), "wave 2: Y 3 nodes vs X 7 serving");
        let one = ScopeCounts {
            y_nodes: 1,
            ..scope
        };
        assert_eq!(one.to_string(), "wave 2: Y 1 node vs X 7 serving");
    }
}

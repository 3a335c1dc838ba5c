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

use crate::plan::model::{FailAction, GateSpec};

use super::{
    ClusterFigures, ClusterWindow, GateFigures, GateThresholds, GateVerdict, MetricsSnapshot,
    Verdict,
};

/// Judges snapshots against one `GateSpec`, counting breaches in a row.
#[derive(Debug, Clone)]
pub struct GateEvaluator {
    spec: GateSpec,
    consecutive_breaches: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Held,
    Breached,
    Unknown,
    Skipped,
}

struct Check {
    line: String,
    outcome: Outcome,
}

impl Check {
    fn judged(line: String, held: bool) -> Check {
        let outcome = if held {
            Outcome::Held
        } else {
            Outcome::Breached
        };
        let status = if held { "ok" } else { "BREACH" };
        Check {
            line: format!("{line}: {status}"),
            outcome,
        }
    }

    fn unknown(line: String) -> Check {
        Check {
            line: format!("{line}: inconclusive"),
            outcome: Outcome::Unknown,
        }
    }

    fn skipped(line: String) -> Check {
        Check {
            line: format!("{line}: skipped"),
            outcome: Outcome::Skipped,
        }
    }
}

/// A ratio as the gates show it: `0.80%`.
pub fn percent(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

/// Milliseconds as the gates show them: `312.0 ms`.
pub fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}

/// Why a cluster's 5xx ratio or p99 is unknown, for a check line.
// Kong creates a series at a node's first request: a missing one means the flag is off
// only when the other flag's series show requests were served.
fn why_errors_unknown(side: &str, figures: &ClusterFigures) -> String {
    if figures.nodes_scraped == 0 {
        format!("{side} 5xx unknown (no node of {side} scraped)")
    } else if !figures.status_code_metrics && figures.latency_metrics {
        format!(
            "{side} 5xx unknown (no kong_http_requests_total on {side}: turn on status_code_metrics)"
        )
    } else if !figures.status_code_metrics {
        format!(
            "{side} 5xx unknown (no kong_http_requests_total on {side}: no request served yet, or status_code_metrics is off)"
        )
    } else {
        format!("{side} 5xx unknown (no requests in the window yet)")
    }
}

fn why_p99_unknown(side: &str, figures: &ClusterFigures) -> String {
    if figures.nodes_scraped == 0 {
        format!("{side} p99 unknown (no node of {side} scraped)")
    } else if !figures.latency_metrics && figures.requests_in_window.is_some_and(|n| n > 0) {
        format!(
            "{side} p99 unknown (no kong_request_latency_ms on {side}: turn on latency_metrics)"
        )
    } else if !figures.latency_metrics {
        format!(
            "{side} p99 unknown (no kong_request_latency_ms on {side}: no request served yet, or latency_metrics is off)"
        )
    } else {
        format!("{side} p99 unknown (no requests in the window yet)")
    }
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

    /// Judges one snapshot (its figures already cover the gate window).
    pub fn evaluate(&mut self, snapshot: &MetricsSnapshot) -> GateVerdict {
        let spec = &self.spec;
        let (x, y) = (&snapshot.x, &snapshot.y);
        let min_requests = spec.min_requests;
        let needed = self.spec.consecutive_breaches.max(1);
        let mut checks: Vec<Check> = Vec::new();
        let y_requests = y.requests_in_window;

        // Enough data on Y to judge at all?
        let enough_requests = match y_requests {
            _ if y.nodes_scraped == 0 => {
                checks.push(Check::unknown(format!(
                    "Y: no data (0 of {} nodes scraped)",
                    y.nodes_total
                )));
                false
            }
            None => {
                checks.push(Check::unknown(
                    "Y requests unknown (no request series on Y: no request served yet, or \
                     status_code_metrics and latency_metrics are off)"
                        .to_string(),
                ));
                false
            }
            Some(count) if count < min_requests => {
                checks.push(Check::unknown(format!(
                    "Y requests in window {count} < {min_requests}: too few to judge"
                )));
                false
            }
            Some(count) => {
                checks.push(Check::judged(
                    format!("Y requests in window {count} ≥ {min_requests}"),
                    true,
                ));
                true
            }
        };

        if let Some(max) = spec.max_error_ratio {
            checks.push(match y.error_ratio {
                Some(ratio) => Check::judged(
                    format!(
                        "Y 5xx {} {} {}",
                        percent(ratio),
                        if ratio <= max { "≤" } else { ">" },
                        percent(max)
                    ),
                    ratio <= max,
                ),
                None => Check::unknown(why_errors_unknown("Y", y)),
            });
        }
        if let Some(max) = spec.max_p99_ms {
            checks.push(match y.p99_ms {
                Some(p99) => Check::judged(
                    format!(
                        "Y p99 {} {} {}",
                        ms(p99),
                        if p99 <= max { "≤" } else { ">" },
                        ms(max)
                    ),
                    p99 <= max,
                ),
                None => Check::unknown(why_p99_unknown("Y", y)),
            });
        }

        let x_baseline = x
            .requests_in_window
            .is_some_and(|n| n >= min_requests.max(1));
        let no_baseline = || {
            format!(
                "X served {} requests in the window (< {}): no baseline",
                x.requests_in_window.unwrap_or(0),
                min_requests.max(1)
            )
        };
        if let Some(max_delta) = spec.max_error_ratio_delta {
            checks.push(match (y.error_ratio, x.error_ratio) {
                _ if !x_baseline && x.nodes_scraped > 0 && x.status_code_metrics => {
                    Check::skipped(format!("Y 5xx − X 5xx: {}", no_baseline()))
                }
                (Some(y_ratio), Some(x_ratio)) => {
                    let delta = y_ratio - x_ratio;
                    Check::judged(
                        format!(
                            "Y 5xx {} − X 5xx {} = {:+.2} pp {} {:.2} pp",
                            percent(y_ratio),
                            percent(x_ratio),
                            delta * 100.0,
                            if delta <= max_delta { "≤" } else { ">" },
                            max_delta * 100.0
                        ),
                        delta <= max_delta,
                    )
                }
                (None, _) => Check::unknown(why_errors_unknown("Y", y)),
                (_, None) => Check::unknown(why_errors_unknown("X", x)),
            });
        }
        if let Some(max_ratio) = spec.max_p99_ratio {
            checks.push(match (y.p99_ms, x.p99_ms) {
                _ if !x_baseline && x.nodes_scraped > 0 && x.latency_metrics => {
                    Check::skipped(format!("Y p99 vs X p99: {}", no_baseline()))
                }
                (Some(y_p99), Some(x_p99)) => {
                    let limit = max_ratio * x_p99;
                    Check::judged(
                        format!(
                            "Y p99 {} {} {max_ratio:.2} × X p99 {} = {}",
                            ms(y_p99),
                            if y_p99 <= limit { "≤" } else { ">" },
                            ms(x_p99),
                            ms(limit)
                        ),
                        y_p99 <= limit,
                    )
                }
                (None, _) => Check::unknown(why_p99_unknown("Y", y)),
                (_, None) => Check::unknown(why_p99_unknown("X", x)),
            });
        }

        let thresholds = checks.len() - 1;
        let breached = checks.iter().any(|c| c.outcome == Outcome::Breached);
        let unknown = checks.iter().any(|c| c.outcome == Outcome::Unknown);
        let judged = checks
            .iter()
            .skip(1)
            .any(|c| matches!(c.outcome, Outcome::Held | Outcome::Breached));

        let mut lines: Vec<String> = checks.into_iter().map(|c| c.line).collect();
        let verdict = if !enough_requests {
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
            },
        }
    }
}

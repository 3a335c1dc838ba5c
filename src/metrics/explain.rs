//! Why a figure is unknown, in the words of the Kong at hand: the gates' check lines,
//! `kongup scrape`'s notes and the metrics pane all say it from here.
//!
//! Which Kong it is comes from the exposition itself ([`super::Exporter`], told from the
//! families each node prints), not from the plan: a node mid-upgrade says what it runs.
//! The facts (docs/kong/metrics.md, "Flags" and "Flag off vs no traffic yet"):
//! - Kong 2.x has no metric flags: `kong_http_status` and `kong_latency` count every
//!   request a prometheus plugin instance logs (exporter.lua 2.8.5 `log`).
//! - Kong 3.x exports `kong_http_requests_total` only with `status_code_metrics` and the
//!   latency histograms only with `latency_metrics`, both off by default since 3.0
//!   (schema.lua 3.4.2:19-23).
//! - In both, a series appears at its first count: a flag off and no counted request yet
//!   print the same exposition. 3.x's one tell: without an enabled prometheus plugin
//!   instance `kong_nginx_metric_errors_total` is absent (prometheus.lua 3.4.2:916-941).

use super::{ClusterFigures, Exporter};

/// A figure the gates and the pane show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Requests counted in the window (status codes, else request latency).
    Requests,
    /// The 5xx ratio (status codes).
    Errors,
    /// The request-latency p99.
    P99,
}

impl Figure {
    pub fn label(self) -> &'static str {
        match self {
            Figure::Requests => "requests",
            Figure::Errors => "5xx",
            Figure::P99 => "p99",
        }
    }

    /// Its series exist on some node of the cluster.
    fn has_series(self, f: &ClusterFigures) -> bool {
        match self {
            Figure::Requests => f.status_code_metrics || f.latency_metrics,
            Figure::Errors => f.status_code_metrics,
            Figure::P99 => f.latency_metrics,
        }
    }

    /// The other family shows the cluster counts requests: this one's flag is off.
    fn other_family_counts(self, f: &ClusterFigures) -> bool {
        match self {
            Figure::Requests => false,
            Figure::Errors => f.latency_metrics,
            Figure::P99 => f.status_code_metrics && f.requests_in_window.is_some_and(|n| n > 0),
        }
    }

    /// The 3.x flag behind it.
    fn flag(self) -> &'static str {
        match self {
            Figure::Requests => "status_code_metrics and latency_metrics",
            Figure::Errors => "status_code_metrics",
            Figure::P99 => "latency_metrics",
        }
    }

    /// Its family in `exporter`'s words.
    fn family(self, exporter: Exporter) -> String {
        match self {
            Figure::Requests => match exporter {
                Exporter::Kong2 => exporter.status_family().to_string(),
                Exporter::Kong3 => format!(
                    "neither {} nor {}",
                    exporter.status_family(),
                    exporter.request_latency_family()
                ),
            },
            Figure::Errors => exporter.status_family().to_string(),
            Figure::P99 => exporter.request_latency_family().to_string(),
        }
    }
}

/// Why `figure` of cluster (or endpoint) `side` is unknown: one line, for the gates'
/// checks and `kongup scrape`'s notes.
pub fn why_unknown(figure: Figure, side: &str, f: &ClusterFigures) -> String {
    let what = figure.label();
    if f.nodes_scraped == 0 {
        return format!("{side} {what} unknown (no node of {side} scraped)");
    }
    if figure.has_series(f) {
        return format!("{side} {what} unknown (no requests in the window yet)");
    }
    // The words an operator acts on come first: a pane shows the start of the line.
    let why = match f.exporter {
        Some(Exporter::Kong2) => {
            let verb = if figure == Figure::P99 {
                "observes"
            } else {
                "counts"
            };
            format!(
                "Kong 2.x: nothing counted yet, no {family} on {side}. 2.x has no metric \
                 flags: it {verb} every request a prometheus plugin instance logs, so none has \
                 been proxied yet, or no prometheus plugin applies to {side}'s routes",
                family = figure.family(Exporter::Kong2)
            )
        }
        Some(Exporter::Kong3) if f.prometheus_plugin == Some(false) => format!(
            "Kong 3.x: no prometheus plugin is enabled on {side} (its /metrics has no \
             kong_nginx_metric_errors_total), so it exports no request series at all: enable \
             the plugin with status_code_metrics and latency_metrics on (both off by default \
             since 3.0)"
        ),
        Some(Exporter::Kong3) if figure.other_family_counts(f) => {
            let counting = match figure {
                Figure::P99 => "kong_http_requests_total counts requests",
                _ => "its latency histograms count requests",
            };
            format!(
                "Kong 3.x: turn on {flag} in the prometheus plugin's config (off by default \
                 since 3.0): no {family} on {side} while {counting}",
                family = figure.family(Exporter::Kong3),
                flag = figure.flag()
            )
        }
        Some(Exporter::Kong3) => {
            let (verb, default) = if figure == Figure::Requests {
                ("are", "both off by default since 3.0")
            } else {
                ("is", "off by default since 3.0")
            };
            let nginx = f.nginx_requests_per_s.map_or(String::new(), |rate| {
                format!(
                    "; meanwhile nginx served {rate:.1} req/s on {side}, Admin API calls and \
                     scrapes included"
                )
            });
            let family = match figure {
                Figure::Requests => figure.family(Exporter::Kong3),
                _ => format!("no {}", figure.family(Exporter::Kong3)),
            };
            format!(
                "Kong 3.x: {flag} {verb} off ({default}), or no request has been counted yet: \
                 the two look the same in /metrics, which has {family} on {side}. GET /plugins \
                 shows the plugin's config{nginx}",
                flag = figure.flag()
            )
        }
        None => format!(
            "no request series on {side}: no request counted yet, or on Kong 3.x {} {} off",
            figure.flag(),
            if figure == Figure::Requests {
                "are"
            } else {
                "is"
            }
        ),
    };
    format!("{side} {what} unknown ({why})")
}

/// A few words for the metrics pane when a cluster's `figure` has no series: the same
/// reasons as [`why_unknown`], cut to fit beside a sparkline.
pub fn pane_words(figure: Figure, f: &ClusterFigures) -> &'static str {
    match (f.exporter, figure) {
        (Some(Exporter::Kong2), _) => "no request counted yet",
        (Some(Exporter::Kong3), _) if f.prometheus_plugin == Some(false) => {
            "prometheus plugin not enabled"
        }
        (Some(Exporter::Kong3), Figure::P99) if figure.other_family_counts(f) => {
            "latency_metrics off"
        }
        (Some(Exporter::Kong3), Figure::P99) => "latency_metrics off, or none counted yet",
        (Some(Exporter::Kong3), _) if figure.other_family_counts(f) => "status_code_metrics off",
        (Some(Exporter::Kong3), _) => "status_code_metrics off, or none counted yet",
        (None, _) => "no request series yet",
    }
}

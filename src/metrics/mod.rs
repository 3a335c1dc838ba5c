//! Live metrics of both clusters and the gates that compare Y with X.
//!
//! `parse` reads Prometheus text; `sample` keeps the series kongup uses from one scrape
//! of one node (Kong 2.x's families and 3.x's); `aggregate` turns scrapes into
//! per-cluster figures over a window; `gates` judges Y against the plan's gates;
//! `explain` says why a figure is unknown, in the words of the Kong at hand; `monitor`
//! scrapes every node on an interval; `history` keeps the snapshots for sparklines.

pub mod aggregate;
pub mod explain;
pub mod gates;
pub mod histogram;
pub mod history;
pub mod monitor;
pub mod parse;
pub mod sample;
pub mod scrape;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::steps::ClusterSide;

use histogram::Histogram;
use sample::DataPlaneReport;

/// The generation of Kong's prometheus exporter a node's families come from, told from
/// the families themselves (docs/kong/metrics.md, "Families and labels per version").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exporter {
    /// Kong 2.x: `kong_http_status`, `kong_latency{type}`, always on, no metric flags.
    Kong2,
    /// Kong 3.x: `kong_http_requests_total` and the `*_latency_ms` histograms, behind
    /// `status_code_metrics` and `latency_metrics` (off by default since 3.0).
    Kong3,
}

impl Exporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Exporter::Kong2 => "2.x",
            Exporter::Kong3 => "3.x",
        }
    }

    /// The family of requests by status code.
    pub fn status_family(self) -> &'static str {
        match self {
            Exporter::Kong2 => sample::HTTP_STATUS,
            Exporter::Kong3 => sample::HTTP_REQUESTS_TOTAL,
        }
    }

    /// The request-latency histogram, as the operator would look it up.
    pub fn request_latency_family(self) -> &'static str {
        match self {
            Exporter::Kong2 => "kong_latency{type=\"request\"}",
            Exporter::Kong3 => "kong_request_latency_ms",
        }
    }
}

/// A data plane whose configuration is the empty one, as a control plane of the cluster
/// reported it on two scrapes in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct EmptyConfiguration {
    /// The control plane's node name in the plan.
    pub control_plane: String,
    pub data_plane: DataPlaneReport,
}

/// Figures of one cluster over the latest window. A field is `None` when Kong does not
/// export it (the flag is off) or there was too little data: never a zero posing as data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterFigures {
    pub requests_per_s: Option<f64>,
    pub error_ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests counted in the window (the status-code counter, else the request
    /// latency histogram's count); what the gates' `min_requests` is compared with.
    pub requests_in_window: Option<u64>,
    /// The request-latency histogram's increase over the window, all nodes, on the
    /// bounds its exporter has: what the relative p99 gate re-buckets when X's and Y's
    /// bounds differ.
    pub request_latency: Histogram,
    /// `kong_upstream_latency_ms` (3.x), `kong_latency{type="upstream"}` (2.x).
    pub upstream_latency: Quantiles,
    /// `kong_kong_latency_ms` (3.x), `kong_latency{type="kong"}` (2.x).
    pub kong_latency: Quantiles,
    pub active_connections: Option<f64>,
    pub datastore_reachable: Option<bool>,
    /// The status-code series exist: `kong_http_status` (2.x, always exported once a
    /// request is counted) or `kong_http_requests_total` (3.x, `status_code_metrics`).
    pub status_code_metrics: bool,
    /// The latency histograms exist (2.x always once a request is counted; 3.x
    /// `latency_metrics`).
    pub latency_metrics: bool,
    /// The exporter generation every scraped node that tells agrees on; `None` when none
    /// tells or they differ.
    pub exporter: Option<Exporter>,
    /// 3.x only: whether a prometheus plugin instance is enabled on some node (its
    /// `/metrics` prints `kong_nginx_metric_errors_total`); `None` without a 3.x node.
    pub prometheus_plugin: Option<bool>,
    /// Every HTTP request nginx served per second, all nodes (Admin and Status API calls,
    /// scrapes and unmatched 404s included): says traffic is flowing when the plugin's
    /// own series say nothing.
    pub nginx_requests_per_s: Option<f64>,
    /// Data planes the cluster's control planes report with the empty configuration.
    pub empty_configuration: Vec<EmptyConfiguration>,
    /// Nodes scraped successfully out of the nodes tried.
    pub nodes_scraped: usize,
    pub nodes_total: usize,
    /// Why each node not scraped was not, as `node: reason`.
    pub scrape_errors: Vec<String>,
    /// The nodes whose last scrape failed, with why in a few words (`timeout 800 ms`), in
    /// the plan's order.
    pub not_scraped: Vec<(String, String)>,
    /// The nodes whose last scrape took longest (request to the body's end), slowest
    /// first, at most `aggregate::SLOWEST_NAMED`.
    pub slowest_scrapes: Vec<(String, std::time::Duration)>,
}

/// Latency quantiles in milliseconds; `None` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quantiles {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    pub at: DateTime<Utc>,
    pub x: ClusterFigures,
    pub y: ClusterFigures,
}

impl MetricsSnapshot {
    pub fn cluster(&self, side: ClusterSide) -> &ClusterFigures {
        match side {
            ClusterSide::X => &self.x,
            ClusterSide::Y => &self.y,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// No data, too few requests, a figure a gate needs is unknown (its Kong flag is
    /// off), or breaches not yet `consecutive_breaches` in a row: the run pauses.
    Inconclusive,
    Fail,
}

/// A gate evaluation, with the numbers that produced it (journaled and shown).
#[derive(Debug, Clone, PartialEq)]
pub struct GateVerdict {
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    /// One line per check, e.g. "Y 5xx 0.80% ≤ 1.00%: ok".
    pub checks: Vec<String>,
    pub requests_in_window: u64,
    /// Breaching evaluations in a row so far.
    pub consecutive_breaches: u32,
    /// The figures and thresholds the checks were judged on, as data.
    pub figures: GateFigures,
    /// The checks as the metrics pane shows them, the failing first (`checks` has them in
    /// the same order, in full). Not journaled: `checks` and `figures` are the record.
    pub shown: Vec<gates::ShownCheck>,
}

/// What a gate verdict was computed from: each cluster over the gate window and the
/// plan's thresholds. Journaled with the verdict, so an audit reads numbers, not prose.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GateFigures {
    pub x: ClusterWindow,
    pub y: ClusterWindow,
    pub thresholds: GateThresholds,
    /// When X's and Y's request-latency bounds differ (Kong 2.x's 26 against 3.x's 13),
    /// the p99s the relative gate compared: both re-bucketed onto the bounds they share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_on_shared_bounds: Option<SharedBoundsP99>,
    /// In a wave, whose nodes `x` and `y` are: `None` when they are the whole clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeCounts>,
}

/// The nodes the gates judge while a wave of `rolling:` bakes (issue 17): Y is the wave's
/// own Y nodes (not those of earlier waves, whose health would dilute the wave's), X the
/// rolling fleet's X nodes still serving (not stopped by an earlier wave). Both leave out
/// the nodes taken out of their wave. Set by the engine (`engine::wave::gate_scope`); the
/// monitor still scrapes every node, only the gates' figures are the subset's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveScope {
    /// 1-based.
    pub wave: usize,
    pub waves: usize,
    pub y: std::collections::BTreeSet<String>,
    pub x: std::collections::BTreeSet<String>,
}

impl WaveScope {
    pub fn counts(&self) -> ScopeCounts {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        ScopeCounts {
            wave: n(self.wave),
            waves: n(self.waves),
            y_nodes: n(self.y.len()),
            x_serving: n(self.x.len()),
        }
    }
}

/// A [`WaveScope`] in numbers, journaled with the figures it produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeCounts {
    pub wave: u32,
    pub waves: u32,
    pub y_nodes: u32,
    pub x_serving: u32,
}

impl std::fmt::Display for ScopeCounts {
    /// `wave 2: Y 3 nodes vs X 7 serving`: what the verdict compared.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.y_nodes == 1 { "" } else { "s" };
        write!(
            f,
            "wave {}: Y {} node{plural} vs X {} serving",
            self.wave, self.y_nodes, self.x_serving
        )
    }
}

/// X's and Y's p99 on the latency bounds both clusters have.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharedBoundsP99 {
    pub x_p99_ms: f64,
    pub y_p99_ms: f64,
    /// How many finite bounds they share (11 between Kong 2.x and 3.x).
    pub bounds: u32,
}

/// One cluster over the gate window; `None` when unknown (a Kong flag off, no node
/// scraped, no requests), never a zero posing as data.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ClusterWindow {
    pub requests: Option<u64>,
    /// 5xx responses over all responses, 0.0–1.0.
    pub error_ratio: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The plan's gate thresholds as they applied; `None` where the plan sets none.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GateThresholds {
    pub max_error_ratio: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub max_error_ratio_delta: Option<f64>,
    pub max_p99_ratio: Option<f64>,
    pub min_requests: u64,
    /// Breaching evaluations in a row that make a failure.
    pub breaches_to_fail: u32,
}

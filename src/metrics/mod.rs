//! Live metrics of both clusters and the gates that compare Y with X.
//!
//! `parse` reads Prometheus text; `sample` keeps the series kongup uses from one scrape
//! of one node; `aggregate` turns scrapes into per-cluster figures over a window;
//! `gates` judges Y against the plan's gates; `monitor` scrapes every node on an
//! interval; `history` keeps the snapshots for sparklines; `http` builds the HTTP client.

pub mod aggregate;
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

/// Figures of one cluster over the latest window. A field is `None` when Kong does not
/// export it (the flag is off) or there was too little data: never a zero posing as data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterFigures {
    pub requests_per_s: Option<f64>,
    pub error_ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests counted in the window (`kong_http_requests_total`, else the request
    /// latency histogram's count); what the gates' `min_requests` is compared with.
    pub requests_in_window: Option<u64>,
    /// `kong_upstream_latency_ms`.
    pub upstream_latency: Quantiles,
    /// `kong_kong_latency_ms`.
    pub kong_latency: Quantiles,
    pub active_connections: Option<f64>,
    pub datastore_reachable: Option<bool>,
    /// `status_code_metrics` is on (the `kong_http_requests_total` series exist).
    pub status_code_metrics: bool,
    /// `latency_metrics` is on (the latency histograms exist).
    pub latency_metrics: bool,
    /// Nodes scraped successfully out of the nodes tried.
    pub nodes_scraped: usize,
    pub nodes_total: usize,
    /// Why each node not scraped was not, as `node: reason`.
    pub scrape_errors: Vec<String>,
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
}

/// What a gate verdict was computed from: each cluster over the gate window and the
/// plan's thresholds. Journaled with the verdict, so an audit reads numbers, not prose.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GateFigures {
    pub x: ClusterWindow,
    pub y: ClusterWindow,
    pub thresholds: GateThresholds,
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

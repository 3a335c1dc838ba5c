//! Per-cluster figures over a sliding window, from successive scrapes of each node.
//!
//! Each successful scrape is compared with the node's previous one (`NodeDelta`); the
//! figures of a cluster sum the deltas of its nodes that ended inside the window:
//! requests/s is the sum of each node's increase over the time it covers, the 5xx ratio
//! is 5xx over all requests, quantiles come from the summed bucket increases. Kong 2.x
//! and 3.x nodes are read alike: each sample has already mapped its exporter's families
//! onto the same series.
//!
//! A control plane's data planes with the empty configuration are taken from its last
//! two scrapes: a data plane that has just connected pings with the empty hash until
//! its first configuration is applied, and pings again at once then
//! (`ping_immediately`, kong/clustering/data_plane.lua 2.8.5:311, 3.4.2:221), so one
//! scrape alone may catch a healthy data plane starting.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::histogram::Histogram;
use super::sample::{DataPlaneReport, Latency, NodeDelta, NodeSample, RequestCounts};
use super::{ClusterFigures, EmptyConfiguration, Exporter, Quantiles};

#[derive(Debug, Clone, PartialEq)]
enum NodeStatus {
    NotScrapedYet,
    Scraped,
    Failed(ScrapeFailure),
}

/// Why a node was not scraped: in full, and in a few words for a line that names many
/// nodes (`timeout 800 ms`, `HTTP 404`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeFailure {
    pub brief: String,
    pub reason: String,
}

impl ScrapeFailure {
    pub fn new(brief: impl Into<String>, reason: impl Into<String>) -> ScrapeFailure {
        ScrapeFailure {
            brief: brief.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ScrapeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

#[derive(Debug, Clone)]
struct NodeTrack {
    name: String,
    last: Option<NodeSample>,
    deltas: VecDeque<NodeDelta>,
    status: NodeStatus,
    /// Data planes (node ids) the last scrape reported connected with the empty
    /// configuration.
    empty_seen: BTreeSet<String>,
    /// Those the last two scrapes in a row reported so.
    empty_confirmed: Vec<DataPlaneReport>,
}

/// The scrapes of one cluster's nodes, kept for one window.
#[derive(Debug, Clone)]
pub struct ClusterTracker {
    window: Duration,
    nodes: Vec<NodeTrack>,
}

impl ClusterTracker {
    /// `nodes` names the nodes in the order `record` will refer to them.
    pub fn new(nodes: impl IntoIterator<Item = impl Into<String>>, window: Duration) -> Self {
        ClusterTracker {
            window,
            nodes: nodes
                .into_iter()
                .map(|name| NodeTrack {
                    name: name.into(),
                    last: None,
                    deltas: VecDeque::new(),
                    status: NodeStatus::NotScrapedYet,
                    empty_seen: BTreeSet::new(),
                    empty_confirmed: Vec::new(),
                })
                .collect(),
        }
    }

    /// Records one scrape of node `index` (its place in `new`): a sample, or why there
    /// is none. Out-of-range indexes are ignored.
    pub fn record(&mut self, index: usize, outcome: Result<NodeSample, String>) {
        self.record_scrape(
            index,
            outcome.map_err(|reason| ScrapeFailure::new("not scraped", reason)),
        );
    }

    /// [`record`](Self::record), with the failure's few words for the pane.
    pub fn record_scrape(&mut self, index: usize, outcome: Result<NodeSample, ScrapeFailure>) {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let Some(node) = self.nodes.get_mut(index) else {
            return;
        };
        match outcome {
            Ok(sample) => {
                if let Some(previous) = &node.last {
                    // A baseline older than the window (the node was away) would smear
                    // old traffic over the window: start afresh instead.
                    if previous.at < sample.at && sample.at - previous.at <= window {
                        node.deltas.push_back(sample.delta_since(previous));
                    }
                }
                let oldest_kept = sample.at - window;
                while node.deltas.front().is_some_and(|d| d.to <= oldest_kept) {
                    node.deltas.pop_front();
                }
                // Rows the control plane keeps for data planes long gone do not count.
                let now = sample.server_time.unwrap_or(sample.at);
                let empty: Vec<&DataPlaneReport> = sample
                    .data_planes()
                    .iter()
                    .filter(|dp| dp.has_empty_configuration() && dp.connected_at(now))
                    .collect();
                node.empty_confirmed = empty
                    .iter()
                    .filter(|dp| node.empty_seen.contains(&dp.node_id))
                    .map(|dp| (*dp).clone())
                    .collect();
                node.empty_seen = empty.iter().map(|dp| dp.node_id.clone()).collect();
                node.last = Some(sample);
                node.status = NodeStatus::Scraped;
            }
            Err(failure) => {
                node.status = NodeStatus::Failed(failure);
                node.empty_seen.clear();
                node.empty_confirmed.clear();
            }
        }
    }

    /// The cluster's figures over the window ending at `now`.
    pub fn figures(&self, now: DateTime<Utc>) -> ClusterFigures {
        self.figures_of(now, |_| true)
    }

    /// The figures of the nodes whose name `include` accepts (a wave's, say): counters
    /// summed and histograms merged over those nodes only, as [`figures`](Self::figures)
    /// does over all of them.
    pub fn figures_of(&self, now: DateTime<Utc>, include: impl Fn(&str) -> bool) -> ClusterFigures {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let window_start = now - window;
        let nodes: Vec<&NodeTrack> = self.nodes.iter().filter(|n| include(&n.name)).collect();
        let scraped: Vec<&NodeSample> = nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Scraped)
            .filter_map(|n| n.last.as_ref())
            .collect();
        let status_code_metrics = scraped.iter().any(|s| s.status_code_metrics());
        let latency_metrics = scraped.iter().any(|s| s.latency_metrics());
        let mut exporters = scraped.iter().filter_map(|s| s.exporter());
        let exporter: Option<Exporter> = exporters
            .next()
            .filter(|first| exporters.all(|other| other == *first));
        let plugin: Vec<bool> = scraped
            .iter()
            .filter_map(|s| s.prometheus_plugin_enabled())
            .collect();
        let prometheus_plugin = (!plugin.is_empty()).then(|| plugin.iter().any(|on| *on));

        let mut requests = RequestCounts::default();
        let mut requests_per_s = 0.0;
        let mut nodes_with_request_data = 0;
        let mut nginx_requests_per_s: Option<f64> = None;
        let mut latency: [Histogram; 3] = Default::default();
        for node in &nodes {
            let in_window = node.deltas.iter().filter(|d| d.to > window_start);
            let mut node_requests = RequestCounts::default();
            let mut node_seconds = 0.0;
            let (mut nginx, mut nginx_seconds) = (0.0, 0.0);
            for delta in in_window {
                if let Some(counts) = delta.requests {
                    node_requests.total += counts.total;
                    node_requests.server_errors += counts.server_errors;
                    node_seconds += delta.seconds();
                }
                if let Some(served) = delta.nginx_requests {
                    nginx += served;
                    nginx_seconds += delta.seconds();
                }
                for kind in Latency::ALL {
                    if let Some(h) = delta.latency(kind) {
                        latency[kind as usize].add(h);
                    }
                }
            }
            if nginx_seconds > 0.0 {
                *nginx_requests_per_s.get_or_insert(0.0) += nginx / nginx_seconds;
            }
            if node_seconds > 0.0 {
                nodes_with_request_data += 1;
                requests.total += node_requests.total;
                requests.server_errors += node_requests.server_errors;
                requests_per_s += node_requests.total / node_seconds;
            }
        }
        let have_requests = status_code_metrics && nodes_with_request_data > 0;
        let [request_latency, upstream_latency, kong_latency] = latency;
        let requests_in_window = if have_requests {
            Some(requests.total.round() as u64)
        } else if latency_metrics {
            request_latency.count().map(|c| c.round() as u64)
        } else {
            None
        };
        let quantiles = |h: &Histogram| {
            if latency_metrics && h.count().is_some_and(|c| c > 0.0) {
                Quantiles {
                    p50_ms: h.quantile(0.50),
                    p95_ms: h.quantile(0.95),
                    p99_ms: h.quantile(0.99),
                }
            } else {
                Quantiles::default()
            }
        };
        let request_quantiles = quantiles(&request_latency);

        let active_connections = scraped
            .iter()
            .filter_map(|s| s.active_connections)
            .reduce(|a, b| a + b);
        let reachability: Vec<bool> = scraped
            .iter()
            .filter_map(|s| s.datastore_reachable)
            .collect();
        let datastore_reachable =
            (!reachability.is_empty()).then(|| reachability.iter().all(|r| *r));

        let empty_configuration = nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Scraped)
            .flat_map(|n| {
                n.empty_confirmed.iter().map(|dp| EmptyConfiguration {
                    control_plane: n.name.clone(),
                    data_plane: dp.clone(),
                })
            })
            .collect();

        let scrape_errors = nodes
            .iter()
            .filter_map(|n| match &n.status {
                NodeStatus::Failed(failure) => Some(format!("{}: {}", n.name, failure.reason)),
                NodeStatus::NotScrapedYet => Some(format!("{}: not scraped yet", n.name)),
                NodeStatus::Scraped => None,
            })
            .collect();
        let not_scraped = nodes
            .iter()
            .filter_map(|n| match &n.status {
                NodeStatus::Failed(failure) => Some((n.name.clone(), failure.brief.clone())),
                _ => None,
            })
            .collect();

        ClusterFigures {
            requests_per_s: have_requests.then_some(requests_per_s),
            error_ratio: (have_requests && requests.total > 0.0)
                .then(|| requests.server_errors / requests.total),
            p50_ms: request_quantiles.p50_ms,
            p95_ms: request_quantiles.p95_ms,
            p99_ms: request_quantiles.p99_ms,
            requests_in_window,
            upstream_latency: quantiles(&upstream_latency),
            kong_latency: quantiles(&kong_latency),
            request_latency,
            active_connections,
            datastore_reachable,
            status_code_metrics,
            latency_metrics,
            exporter,
            prometheus_plugin,
            nginx_requests_per_s,
            empty_configuration,
            nodes_scraped: scraped.len(),
            nodes_total: nodes.len(),
            scrape_errors,
            not_scraped,
            slowest_scrapes: slowest(&nodes),
        }
    }
}

/// How many of the slowest scrapes the figures name.
pub const SLOWEST_NAMED: usize = 3;

/// The nodes whose last scrape took longest, slowest first.
fn slowest(nodes: &[&NodeTrack]) -> Vec<(String, Duration)> {
    let mut timed: Vec<(String, Duration)> = nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Scraped)
        .filter_map(|n| Some((n.name.clone(), n.last.as_ref()?.scrape_time?)))
        .collect();
    timed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    timed.truncate(SLOWEST_NAMED);
    timed
}

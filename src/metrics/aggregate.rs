//! Per-cluster figures over a sliding window, from successive scrapes of each node.
//!
//! Each successful scrape is compared with the node's previous one (`NodeDelta`); the
//! figures of a cluster sum the deltas of its nodes that ended inside the window:
//! requests/s is the sum of each node's increase over the time it covers, the 5xx ratio
//! is 5xx over all requests, quantiles come from the summed bucket increases.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::histogram::Histogram;
use super::sample::{Latency, NodeDelta, NodeSample, RequestCounts};
use super::{ClusterFigures, Quantiles};

#[derive(Debug, Clone, PartialEq)]
enum NodeStatus {
    NotScrapedYet,
    Scraped,
    Failed(String),
}

#[derive(Debug, Clone)]
struct NodeTrack {
    name: String,
    last: Option<NodeSample>,
    deltas: VecDeque<NodeDelta>,
    status: NodeStatus,
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
                })
                .collect(),
        }
    }

    /// Records one scrape of node `index` (its place in `new`): a sample, or why there
    /// is none. Out-of-range indexes are ignored.
    pub fn record(&mut self, index: usize, outcome: Result<NodeSample, String>) {
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
                node.last = Some(sample);
                node.status = NodeStatus::Scraped;
            }
            Err(reason) => node.status = NodeStatus::Failed(reason),
        }
    }

    /// The cluster's figures over the window ending at `now`.
    pub fn figures(&self, now: DateTime<Utc>) -> ClusterFigures {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        let window_start = now - window;
        let scraped: Vec<&NodeSample> = self
            .nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Scraped)
            .filter_map(|n| n.last.as_ref())
            .collect();
        let status_code_metrics = scraped.iter().any(|s| s.status_code_metrics());
        let latency_metrics = scraped.iter().any(|s| s.latency_metrics());

        let mut requests = RequestCounts::default();
        let mut requests_per_s = 0.0;
        let mut nodes_with_request_data = 0;
        let mut latency: [Histogram; 3] = Default::default();
        for node in &self.nodes {
            let in_window = node.deltas.iter().filter(|d| d.to > window_start);
            let mut node_requests = RequestCounts::default();
            let mut node_seconds = 0.0;
            for delta in in_window {
                if let Some(counts) = delta.requests {
                    node_requests.total += counts.total;
                    node_requests.server_errors += counts.server_errors;
                    node_seconds += delta.seconds();
                }
                for kind in Latency::ALL {
                    if let Some(h) = delta.latency(kind) {
                        latency[kind as usize].add(h);
                    }
                }
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

        let scrape_errors = self
            .nodes
            .iter()
            .filter_map(|n| match &n.status {
                NodeStatus::Failed(reason) => Some(format!("{}: {reason}", n.name)),
                NodeStatus::NotScrapedYet => Some(format!("{}: not scraped yet", n.name)),
                NodeStatus::Scraped => None,
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
            active_connections,
            datastore_reachable,
            status_code_metrics,
            latency_metrics,
            nodes_scraped: scraped.len(),
            nodes_total: self.nodes.len(),
            scrape_errors,
        }
    }
}

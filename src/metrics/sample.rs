//! One scrape of one Kong node, cut down to the series kongup uses, and the difference
//! between two scrapes of the same node (counter resets handled).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::histogram::{Bucket, Histogram};
use super::parse::{self, Entry, ParseError};

/// `status_code_metrics`: requests by status code (counter).
pub const HTTP_REQUESTS_TOTAL: &str = "kong_http_requests_total";
/// Always exported: nginx connections by `state`.
pub const NGINX_CONNECTIONS_TOTAL: &str = "kong_nginx_connections_total";
/// Traditional nodes and control planes: 1 when the database answers.
pub const DATASTORE_REACHABLE: &str = "kong_datastore_reachable";

/// The latency histograms behind `latency_metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Latency {
    /// `kong_request_latency_ms`: the whole request as the client sees it.
    Request,
    /// `kong_upstream_latency_ms`: waiting for the upstream service.
    Upstream,
    /// `kong_kong_latency_ms`: Kong's own processing (plugins, routing).
    Kong,
}

impl Latency {
    pub const ALL: [Latency; 3] = [Latency::Request, Latency::Upstream, Latency::Kong];

    pub fn family(self) -> &'static str {
        match self {
            Latency::Request => "kong_request_latency_ms",
            Latency::Upstream => "kong_upstream_latency_ms",
            Latency::Kong => "kong_kong_latency_ms",
        }
    }

    fn bucket_series(self) -> &'static str {
        match self {
            Latency::Request => "kong_request_latency_ms_bucket",
            Latency::Upstream => "kong_upstream_latency_ms_bucket",
            Latency::Kong => "kong_kong_latency_ms_bucket",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a scrape error says when the body parsed but holds nothing of Kong's.
#[derive(Debug, thiserror::Error)]
pub enum ExpositionError {
    #[error("not Prometheus text: {0}")]
    Parse(#[from] ParseError),
    #[error(
        "no kong_* series in the exposition: is this Kong's /metrics with the prometheus plugin enabled?"
    )]
    NotKong,
}

#[derive(Debug, Clone, PartialEq)]
struct RequestSeries {
    value: f64,
    server_error: bool,
    /// Carries a `code` label: what the 5xx ratio is computed from.
    has_code: bool,
}

/// The series kongup needs from one scrape of one node, owned (the body is dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSample {
    pub at: DateTime<Utc>,
    /// `kong_http_requests_total` by raw label text.
    requests: HashMap<Box<str>, RequestSeries>,
    /// Per latency histogram: buckets by raw label text without `le`.
    latency: [HashMap<Box<str>, Vec<Bucket>>; 3],
    /// Sum of `kong_nginx_connections_total{state="active"}` over subsystems.
    pub active_connections: Option<f64>,
    pub datastore_reachable: Option<bool>,
}

/// Whether kongup reads a series at all: the parser skips every other line unread.
pub fn is_needed_series(name: &str) -> bool {
    name.starts_with("kong_")
        && (name == HTTP_REQUESTS_TOTAL
            || name == NGINX_CONNECTIONS_TOTAL
            || name == DATASTORE_REACHABLE
            || Latency::ALL.iter().any(|l| name == l.bucket_series()))
}

impl NodeSample {
    /// Reads an exposition body scraped at `at`.
    pub fn parse(text: &str, at: DateTime<Utc>) -> Result<NodeSample, ExpositionError> {
        let mut sample = NodeSample {
            at,
            requests: HashMap::new(),
            latency: Default::default(),
            active_connections: None,
            datastore_reachable: None,
        };
        let mut saw_kong_series = false;
        // Kong writes a histogram's buckets on consecutive lines: remember the series
        // being filled to look it up once, not once per bucket.
        let mut current: Option<(Latency, String)> = None;
        let mut pending: Vec<Bucket> = Vec::new();
        parse::for_each_entry(
            text,
            |name| {
                saw_kong_series |= name.starts_with("kong_");
                is_needed_series(name)
            },
            |entry| {
                let Entry::Sample(s) = entry else { return };
                if s.name == HTTP_REQUESTS_TOTAL {
                    if s.value.is_finite() {
                        let code = s.labels.get("code");
                        let server_error = code
                            .as_ref()
                            .is_some_and(|code| code.len() == 3 && code.starts_with('5'));
                        sample.requests.insert(
                            s.labels.raw().into(),
                            RequestSeries {
                                value: s.value,
                                server_error,
                                has_code: code.is_some(),
                            },
                        );
                    }
                } else if s.name == NGINX_CONNECTIONS_TOTAL {
                    if s.value.is_finite() && s.labels.get("state").as_deref() == Some("active") {
                        *sample.active_connections.get_or_insert(0.0) += s.value;
                    }
                } else if s.name == DATASTORE_REACHABLE {
                    if !s.value.is_nan() {
                        sample.datastore_reachable = Some(s.value == 1.0);
                    }
                } else if let Some(kind) = Latency::ALL
                    .into_iter()
                    .find(|l| s.name == l.bucket_series())
                {
                    let Some((le, key)) = s.labels.split_off("le") else {
                        return;
                    };
                    let Ok(le) = le.parse::<f64>() else { return };
                    let same_series = current
                        .as_ref()
                        .is_some_and(|(k, series)| *k == kind && series.as_str() == key);
                    if !same_series {
                        if let Some((k, series)) = current.take() {
                            sample.store_series(k, series, std::mem::take(&mut pending));
                        }
                        current = Some((kind, key.into_owned()));
                    }
                    pending.push(Bucket { le, count: s.value });
                }
            },
        )?;
        if let Some((kind, series)) = current.take() {
            sample.store_series(kind, series, pending);
        }
        if !saw_kong_series {
            return Err(ExpositionError::NotKong);
        }
        Ok(sample)
    }

    fn store_series(&mut self, kind: Latency, series: String, buckets: Vec<Bucket>) {
        // A bucket count of NaN makes the series unusable for this scrape.
        if buckets.iter().any(|b| b.count.is_nan()) {
            return;
        }
        // Bounds that are negative or do not increase: the series is refused for this scrape.
        let Ok(histogram) = Histogram::checked(buckets) else {
            return;
        };
        if histogram.count().is_none() {
            return;
        }
        let map = &mut self.latency[kind.index()];
        match map.get_mut(series.as_str()) {
            // The same series in two runs of lines: keep every bucket, sorted; a bound
            // written twice refuses it.
            Some(existing) => {
                existing.extend_from_slice(histogram.buckets());
                existing.sort_by(|a, b| a.le.total_cmp(&b.le));
                match Histogram::checked(std::mem::take(existing)) {
                    Ok(merged) => *existing = merged.buckets().to_vec(),
                    Err(_) => {
                        map.remove(series.as_str());
                    }
                }
            }
            None => {
                map.insert(series.into_boxed_str(), histogram.buckets().to_vec());
            }
        }
    }

    /// `status_code_metrics` is on (or has counted anything yet): the series exist.
    pub fn status_code_metrics(&self) -> bool {
        !self.requests.is_empty()
    }

    /// A `kong_http_requests_total` series with a `code` label exists: the 5xx ratio can be
    /// computed from this node.
    pub fn counts_status_codes(&self) -> bool {
        self.requests.values().any(|series| series.has_code)
    }

    /// The buckets of latency histogram `kind` exist.
    pub fn has_latency(&self, kind: Latency) -> bool {
        !self.latency[kind.index()].is_empty()
    }

    /// `latency_metrics` is on (or has observed anything yet): a latency histogram exists.
    pub fn latency_metrics(&self) -> bool {
        self.latency.iter().any(|series| !series.is_empty())
    }

    /// What happened on the node between `earlier` and this scrape. A counter that went
    /// down means the node restarted: it counted from zero, so its whole value is new. A
    /// series that did not exist before counts from zero too.
    pub fn delta_since(&self, earlier: &NodeSample) -> NodeDelta {
        let requests = self.status_code_metrics().then(|| {
            let mut counts = RequestCounts::default();
            for (key, series) in &self.requests {
                let before = earlier.requests.get(key).map(|s| s.value);
                let increase = counter_increase(before, series.value);
                counts.total += increase;
                if series.server_error {
                    counts.server_errors += increase;
                }
            }
            counts
        });
        let latency = Latency::ALL.map(|kind| {
            let now = &self.latency[kind.index()];
            if now.is_empty() {
                return None;
            }
            let before_all = &earlier.latency[kind.index()];
            let mut merged = Histogram::default();
            for (key, buckets) in now {
                let increase = histogram_increase(before_all.get(key), buckets);
                merged.add(&increase);
            }
            Some(merged)
        });
        NodeDelta {
            from: earlier.at,
            to: self.at,
            requests,
            latency,
        }
    }
}

fn counter_increase(before: Option<f64>, now: f64) -> f64 {
    match before {
        Some(before) if now >= before => now - before,
        _ => now,
    }
}

/// The observations a histogram series gained; a lower `+Inf` count than before means
/// the node restarted, and then every current count is new.
fn histogram_increase(before: Option<&Vec<Bucket>>, now: &[Bucket]) -> Histogram {
    let total = |buckets: &[Bucket]| buckets.last().map_or(0.0, |b| b.count);
    let Some(before) = before.filter(|before| total(before) <= total(now)) else {
        return Histogram::from_buckets(now.to_vec());
    };
    let same_bounds =
        before.len() == now.len() && before.iter().zip(now).all(|(a, b)| a.le == b.le);
    let buckets = now
        .iter()
        .enumerate()
        .map(|(index, bucket)| {
            let earlier = if same_bounds {
                before[index].count
            } else {
                before
                    .iter()
                    .find(|b| b.le == bucket.le)
                    .map_or(0.0, |b| b.count)
            };
            Bucket {
                le: bucket.le,
                count: (bucket.count - earlier).max(0.0),
            }
        })
        .collect();
    Histogram::from_buckets(buckets)
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestCounts {
    pub total: f64,
    /// Responses with a 5xx status code.
    pub server_errors: f64,
}

/// The increase of a node's counters between two scrapes.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDelta {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None` when the node exports no `kong_http_requests_total`.
    pub requests: Option<RequestCounts>,
    /// Indexed like [`Latency::ALL`]; `None` when the node exports no such histogram.
    pub latency: [Option<Histogram>; 3],
}

impl NodeDelta {
    pub fn seconds(&self) -> f64 {
        (self.to - self.from).num_milliseconds() as f64 / 1000.0
    }

    pub fn latency(&self, kind: Latency) -> Option<&Histogram> {
        self.latency[kind.index()].as_ref()
    }
}

//! One scrape of one Kong node, cut down to the series kongup uses, and the difference
//! between two scrapes of the same node (counter resets handled).
//!
//! Kong's prometheus exporter comes in two generations (docs/kong/metrics.md, "Families
//! and labels per version"; `kong/plugins/prometheus/exporter.lua` at each tag), and a
//! sample reads both, saying which one it saw ([`Exporter`]):
//! - 2.x (2.8.5): `kong_http_status{service,route,code}`, one histogram
//!   `kong_latency{service,route,type}` whose `type` is `request`, `upstream` or `kong`
//!   (26 bounds), nginx's counters in `kong_nginx_http_current_connections{state}`. All
//!   on, with no flag (the only option is `per_consumer`).
//! - 3.x (3.0 on): `kong_http_requests_total{service,route,code,source,[workspace,]
//!   consumer}` (`status_code_metrics`), `kong_request_latency_ms`,
//!   `kong_upstream_latency_ms`, `kong_kong_latency_ms` (`latency_metrics`), both flags
//!   off by default; `kong_nginx_requests_total` and `kong_nginx_connections_total{state}`.
//!
//! A control plane (both generations) also reports each data plane's configuration hash
//! and last contact (`kong_data_plane_*`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::Exporter;
use super::histogram::{Bucket, Histogram};
use super::parse::{self, Entry, ParseError};

/// 3.x, behind `status_code_metrics`: requests by status code (counter), one series per
/// service, route, code, source, [workspace,] consumer (exporter.lua 3.4.2:154, 3.9.1:105).
pub const HTTP_REQUESTS_TOTAL: &str = "kong_http_requests_total";
/// 2.x, always on: requests by status code (counter), one series per service, route,
/// code (exporter.lua 2.8.5:88-95).
pub const HTTP_STATUS: &str = "kong_http_status";
/// 2.x: the three latency histograms in one family, told apart by `type`
/// (exporter.lua 2.8.5:96-101).
pub const LATENCY_2X: &str = "kong_latency";
/// 3.x, always exported: nginx connections by `state` (exporter.lua 3.4.2:100).
pub const NGINX_CONNECTIONS_TOTAL: &str = "kong_nginx_connections_total";
/// 3.x, always exported: every request nginx served, by `subsystem` (exporter.lua
/// 3.4.2:104; a gauge that only grows: stub_status's request counter).
pub const NGINX_REQUESTS_TOTAL: &str = "kong_nginx_requests_total";
/// 2.x, always exported: nginx's stub_status by `state`; `total` is every request nginx
/// served, `active` the open connections (exporter.lua 2.8.5:45, 301-316).
pub const NGINX_HTTP_CURRENT_CONNECTIONS: &str = "kong_nginx_http_current_connections";
/// Printed by 3.x only when the exporter holds a prometheus plugin instance enabled
/// (`metric_data(write_fn, local_only)`, prometheus.lua 3.4.2:916-941); 2.x always prints
/// it.
pub const NGINX_METRIC_ERRORS_TOTAL: &str = "kong_nginx_metric_errors_total";
/// Traditional nodes and control planes: 1 when the database answers (always 1 on a
/// DB-less data plane).
pub const DATASTORE_REACHABLE: &str = "kong_datastore_reachable";
/// Control planes: each data plane's configuration hash, the md5 read as a hex number
/// (`config_hash_to_number`, exporter.lua 2.8.5:143-146, 3.4.2:241).
pub const DATA_PLANE_CONFIG_HASH: &str = "kong_data_plane_config_hash";
/// Control planes: when each data plane last pinged, unix seconds.
pub const DATA_PLANE_LAST_SEEN: &str = "kong_data_plane_last_seen";
/// Control planes: 0 when a data plane's version or plugins are incompatible.
pub const DATA_PLANE_VERSION_COMPATIBLE: &str = "kong_data_plane_version_compatible";

/// A data plane pings its control plane every `CLUSTERING_PING_INTERVAL` = 30 s
/// (kong/constants.lua 2.8.5:202, 3.9.1:230); Kong takes one not seen for two intervals as
/// not connected (kong/clustering/rpc/manager.lua master:152). The control plane keeps
/// its row for `cluster_data_plane_purge_delay` (14 days) all the same.
const DATA_PLANE_GONE_AFTER_SECS: f64 = 2.0 * 30.0;

/// 2.x `kong_latency` bounds, all three types (`DEFAULT_BUCKETS`, exporter.lua 2.8.5:21).
const KONG2_LATENCY_BOUNDS: [f64; 26] = [
    1.0, 2.0, 5.0, 7.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0,
    200.0, 300.0, 400.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0, 60000.0,
];
/// 3.x request and upstream latency bounds (`UPSTREAM_LATENCY_BUCKETS`, exporter.lua
/// 3.4.2:21, 3.9.1:24, master:25).
const KONG3_REQUEST_BOUNDS: [f64; 13] = [
    25.0, 50.0, 80.0, 100.0, 250.0, 400.0, 700.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0, 60000.0,
];
/// 3.x Kong latency bounds (`KONG_LATENCY_BUCKETS`): the first 15 to 3.8.0 (exporter.lua
/// 3.4.2:20), 3000 and 6000 added in 3.8.1 (3.9.1:23).
const KONG3_KONG_BOUNDS: [f64; 17] = [
    1.0, 2.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 500.0, 750.0, 1000.0,
    3000.0, 6000.0,
];

/// The latency histograms: `kong_latency{type=…}` in 2.x, one family each in 3.x
/// (behind `latency_metrics`). All in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Latency {
    /// The whole request as the client sees it.
    Request,
    /// Waiting for the upstream service.
    Upstream,
    /// Kong's own processing (plugins, routing).
    Kong,
}

impl Latency {
    pub const ALL: [Latency; 3] = [Latency::Request, Latency::Upstream, Latency::Kong];

    /// The 3.x family.
    pub fn family(self) -> &'static str {
        match self {
            Latency::Request => "kong_request_latency_ms",
            Latency::Upstream => "kong_upstream_latency_ms",
            Latency::Kong => "kong_kong_latency_ms",
        }
    }

    /// The series that holds its buckets in `exporter`'s words, for messages.
    pub fn buckets_in(self, exporter: Exporter) -> String {
        match exporter {
            Exporter::Kong2 => format!("{LATENCY_2X}_bucket{{type=\"{}\"}}", self.type_2x()),
            Exporter::Kong3 => format!("{}_bucket", self.family()),
        }
    }

    /// The `type` label of 2.x's `kong_latency`.
    fn type_2x(self) -> &'static str {
        match self {
            Latency::Request => "request",
            Latency::Upstream => "upstream",
            Latency::Kong => "kong",
        }
    }

    fn bucket_series(self) -> &'static str {
        match self {
            Latency::Request => "kong_request_latency_ms_bucket",
            Latency::Upstream => "kong_upstream_latency_ms_bucket",
            Latency::Kong => "kong_kong_latency_ms_bucket",
        }
    }

    /// The bounds Kong gives this histogram, to put back the leading buckets it did not
    /// print.
    fn bounds(self, exporter: Exporter) -> &'static [f64] {
        match (exporter, self) {
            (Exporter::Kong2, _) => &KONG2_LATENCY_BOUNDS,
            (Exporter::Kong3, Latency::Kong) => &KONG3_KONG_BOUNDS,
            (Exporter::Kong3, _) => &KONG3_REQUEST_BOUNDS,
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
    #[error("line {line} is not UTF-8 text: is this Kong's /metrics?")]
    NotText { line: usize },
}

#[derive(Debug, Clone, PartialEq)]
struct RequestSeries {
    value: f64,
    server_error: bool,
    /// Carries a `code` label: what the 5xx ratio is computed from.
    has_code: bool,
}

/// One data plane as a control plane's `/metrics` reports it: the rows of its
/// `clustering_data_planes` table (exporter.lua 2.8.5:370-396, 3.4.2 `metric_data`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataPlaneReport {
    pub node_id: String,
    pub hostname: String,
    pub ip: String,
    /// `kong_data_plane_config_hash`; 0 is the empty configuration's hash, 32 zeros
    /// (`DECLARATIVE_EMPTY_CONFIG_HASH`, kong/constants.lua 2.8.5:190, 3.4.2:204).
    pub config_hash: Option<f64>,
    /// `kong_data_plane_last_seen`, unix seconds.
    pub last_seen: Option<f64>,
    /// `kong_data_plane_version_compatible`.
    pub compatible: Option<bool>,
    /// The `kong_version` label of `kong_data_plane_version_compatible`.
    pub kong_version: Option<String>,
}

impl DataPlaneReport {
    fn new(node_id: String) -> DataPlaneReport {
        DataPlaneReport {
            node_id,
            hostname: String::new(),
            ip: String::new(),
            config_hash: None,
            last_seen: None,
            compatible: None,
            kong_version: None,
        }
    }

    /// Its configuration hash is the empty configuration's: it has no routes, so every
    /// request to it answers 404 (Kong issue 12861), whatever its sync status says.
    pub fn has_empty_configuration(&self) -> bool {
        self.config_hash == Some(0.0)
    }

    /// It pinged its control plane within two ping intervals of `now` (the control
    /// plane's clock). A row without `last_seen` counts as connected.
    pub fn connected_at(&self, now: DateTime<Utc>) -> bool {
        self.last_seen
            .is_none_or(|seen| now.timestamp() as f64 - seen <= DATA_PLANE_GONE_AFTER_SECS)
    }
}

/// The series kongup needs from one scrape of one node, owned (the body is dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSample {
    pub at: DateTime<Utc>,
    /// The node's own clock when it answered (its HTTP `Date`), when known: what a
    /// control plane's `last_seen` is compared with.
    pub server_time: Option<DateTime<Utc>>,
    /// How long the scrape took, from the request to the body's end, when scraped.
    pub scrape_time: Option<std::time::Duration>,
    /// `kong_http_status` (2.x) or `kong_http_requests_total` (3.x) by raw label text.
    requests: HashMap<Box<str>, RequestSeries>,
    /// Per latency histogram: each series by its raw label text without `le`.
    latency: [HashMap<Box<str>, Histogram>; 3],
    /// Sum of the `active` connections over subsystems.
    pub active_connections: Option<f64>,
    pub datastore_reachable: Option<bool>,
    /// nginx's own count of the HTTP requests it served.
    nginx_requests: Option<f64>,
    /// `kong_nginx_metric_errors_total` is in the exposition.
    metric_errors_printed: bool,
    saw_kong2: bool,
    saw_kong3: bool,
    /// Control planes: the data planes they report, by node id.
    data_planes: Vec<DataPlaneReport>,
}

/// Whether kongup reads a series at all: the parser skips every other line unread.
pub fn is_needed_series(name: &str) -> bool {
    name.starts_with("kong_")
        && (name == HTTP_REQUESTS_TOTAL
            || name == HTTP_STATUS
            || name == NGINX_CONNECTIONS_TOTAL
            || name == NGINX_REQUESTS_TOTAL
            || name == NGINX_HTTP_CURRENT_CONNECTIONS
            || name == NGINX_METRIC_ERRORS_TOTAL
            || name == DATASTORE_REACHABLE
            || name == DATA_PLANE_CONFIG_HASH
            || name == DATA_PLANE_LAST_SEEN
            || name == DATA_PLANE_VERSION_COMPATIBLE
            || name == "kong_latency_bucket"
            || Latency::ALL.iter().any(|l| name == l.bucket_series()))
}

/// The histogram series whose bucket lines are being read.
struct OpenSeries {
    kind: Latency,
    exporter: Exporter,
    key: String,
    buckets: Vec<Bucket>,
}

/// Reads one node's exposition as its body arrives, chunk by chunk: each whole line is
/// parsed as soon as its end is there and only the series kongup keeps are held (the
/// [`NodeSample`]), never the body; the start of a line cut by a chunk boundary waits,
/// copied, for its end. What bounds the body's size is the caller's (`BodyLimit`).
pub struct SampleReader {
    kept: Kept,
    saw_kong_series: bool,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Lines read so far, for errors' line numbers.
    lines: usize,
}

/// What the reader keeps of the lines read so far.
struct Kept {
    sample: NodeSample,
    data_planes: BTreeMap<String, DataPlaneReport>,
    /// Kong writes a series' buckets on consecutive lines (its keys are sorted): one
    /// series is filled at a time and stored once, not once per bucket.
    open: Option<OpenSeries>,
}

impl SampleReader {
    /// A reader for a scrape made at `at`.
    pub fn new(at: DateTime<Utc>) -> SampleReader {
        SampleReader {
            kept: Kept {
                sample: NodeSample {
                    at,
                    server_time: None,
                    scrape_time: None,
                    requests: HashMap::new(),
                    latency: Default::default(),
                    active_connections: None,
                    datastore_reachable: None,
                    nginx_requests: None,
                    metric_errors_printed: false,
                    saw_kong2: false,
                    saw_kong3: false,
                    data_planes: Vec::new(),
                },
                data_planes: BTreeMap::new(),
                open: None,
            },
            saw_kong_series: false,
            partial: Vec::new(),
            lines: 0,
        }
    }

    /// The next bytes of the body, cut anywhere (within a line, within a UTF-8 character).
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), ExpositionError> {
        if !self.partial.is_empty() {
            let Some(end) = chunk.iter().position(|&b| b == b'\n') else {
                self.partial.extend_from_slice(chunk);
                return Ok(());
            };
            self.partial.extend_from_slice(&chunk[..=end]);
            chunk = &chunk[end + 1..];
            let line = std::mem::take(&mut self.partial);
            let read = self.read_lines(&line);
            // The buffer is kept for the next cut line.
            self.partial = line;
            self.partial.clear();
            read?;
        }
        let whole = match chunk.iter().rposition(|&b| b == b'\n') {
            Some(last) => {
                self.partial.extend_from_slice(&chunk[last + 1..]);
                &chunk[..=last]
            }
            None => {
                self.partial.extend_from_slice(chunk);
                return Ok(());
            }
        };
        self.read_lines(whole)
    }

    /// The sample, once the body has ended (a last line without a newline is read here).
    pub fn finish(mut self) -> Result<NodeSample, ExpositionError> {
        let last = std::mem::take(&mut self.partial);
        self.read_lines(&last)?;
        let mut kept = self.kept;
        if let Some(done) = kept.open.take() {
            kept.sample.store_series(done);
        }
        if !self.saw_kong_series {
            return Err(ExpositionError::NotKong);
        }
        kept.sample.data_planes = kept.data_planes.into_values().collect();
        Ok(kept.sample)
    }

    /// Whole lines (a newline, where there is one, ends them: a line and its newline never
    /// part, so a UTF-8 character never straddles two calls).
    fn read_lines(&mut self, bytes: &[u8]) -> Result<(), ExpositionError> {
        let text = std::str::from_utf8(bytes).map_err(|error| ExpositionError::NotText {
            line: self.lines
                + 1
                + bytes[..error.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count(),
        })?;
        let saw_kong_series = &mut self.saw_kong_series;
        let kept = &mut self.kept;
        self.lines += parse::for_each_entry_from(
            text,
            self.lines,
            |name| {
                *saw_kong_series |= name.starts_with("kong_");
                is_needed_series(name)
            },
            |entry| {
                if let Entry::Sample(s) = entry {
                    kept.take(s);
                }
            },
        )?;
        Ok(())
    }
}

impl Kept {
    fn take(&mut self, s: parse::Sample<'_>) {
        match s.name {
            HTTP_REQUESTS_TOTAL | HTTP_STATUS => {
                if s.name == HTTP_STATUS {
                    self.sample.saw_kong2 = true;
                } else {
                    self.sample.saw_kong3 = true;
                }
                if s.value.is_finite() {
                    let code = s.labels.get("code");
                    let server_error = code
                        .as_ref()
                        .is_some_and(|code| code.len() == 3 && code.starts_with('5'));
                    // 3.x: one series per source, consumer and workspace too; they
                    // are added up like every other series.
                    self.sample.requests.insert(
                        s.labels.raw().into(),
                        RequestSeries {
                            value: s.value,
                            server_error,
                            has_code: code.is_some(),
                        },
                    );
                }
            }
            NGINX_CONNECTIONS_TOTAL => {
                self.sample.saw_kong3 = true;
                if s.value.is_finite() && s.labels.get("state").as_deref() == Some("active") {
                    *self.sample.active_connections.get_or_insert(0.0) += s.value;
                }
            }
            NGINX_REQUESTS_TOTAL => {
                self.sample.saw_kong3 = true;
                let http = s.labels.get("subsystem").is_none_or(|sub| sub == "http");
                if s.value.is_finite() && http {
                    *self.sample.nginx_requests.get_or_insert(0.0) += s.value;
                }
            }
            NGINX_HTTP_CURRENT_CONNECTIONS => {
                self.sample.saw_kong2 = true;
                if s.value.is_finite() {
                    match s.labels.get("state").as_deref() {
                        Some("active") => self.sample.active_connections = Some(s.value),
                        Some("total") => self.sample.nginx_requests = Some(s.value),
                        _ => {}
                    }
                }
            }
            NGINX_METRIC_ERRORS_TOTAL => self.sample.metric_errors_printed = true,
            DATASTORE_REACHABLE => {
                if !s.value.is_nan() {
                    self.sample.datastore_reachable = Some(s.value == 1.0);
                }
            }
            DATA_PLANE_CONFIG_HASH | DATA_PLANE_LAST_SEEN | DATA_PLANE_VERSION_COMPATIBLE => {
                let Some(node_id) = s.labels.get("node_id") else {
                    return;
                };
                let report = self
                    .data_planes
                    .entry(node_id.to_string())
                    .or_insert_with(|| DataPlaneReport::new(node_id.into_owned()));
                if let Some(hostname) = s.labels.get("hostname") {
                    report.hostname = hostname.into_owned();
                }
                if let Some(ip) = s.labels.get("ip") {
                    report.ip = ip.into_owned();
                }
                let value = (!s.value.is_nan()).then_some(s.value);
                match s.name {
                    DATA_PLANE_CONFIG_HASH => report.config_hash = value,
                    DATA_PLANE_LAST_SEEN => report.last_seen = value,
                    _ => {
                        report.compatible = value.map(|v| v == 1.0);
                        report.kong_version = s.labels.get("kong_version").map(|v| v.into_owned());
                    }
                }
            }
            name => {
                let (kind, exporter) = if name == "kong_latency_bucket" {
                    let kind = match s.labels.get("type").as_deref() {
                        Some("request") => Latency::Request,
                        Some("upstream") => Latency::Upstream,
                        Some("kong") => Latency::Kong,
                        _ => return,
                    };
                    (kind, Exporter::Kong2)
                } else {
                    let Some(kind) = Latency::ALL.into_iter().find(|l| name == l.bucket_series())
                    else {
                        return;
                    };
                    (kind, Exporter::Kong3)
                };
                match exporter {
                    Exporter::Kong2 => self.sample.saw_kong2 = true,
                    Exporter::Kong3 => self.sample.saw_kong3 = true,
                }
                let Some((le, key)) = s.labels.split_off("le") else {
                    return;
                };
                let Ok(le) = le.parse::<f64>() else { return };
                let same_series = self
                    .open
                    .as_ref()
                    .is_some_and(|o| o.kind == kind && o.key.as_str() == key);
                if !same_series {
                    if let Some(done) = self.open.take() {
                        self.sample.store_series(done);
                    }
                    self.open = Some(OpenSeries {
                        kind,
                        exporter,
                        key: key.into_owned(),
                        buckets: Vec::new(),
                    });
                }
                if let Some(series) = self.open.as_mut() {
                    series.buckets.push(Bucket { le, count: s.value });
                }
            }
        }
    }
}

impl NodeSample {
    /// Reads a whole exposition body scraped at `at`.
    pub fn parse(text: &str, at: DateTime<Utc>) -> Result<NodeSample, ExpositionError> {
        let mut reader = SampleReader::new(at);
        reader.feed(text.as_bytes())?;
        reader.finish()
    }

    fn store_series(&mut self, series: OpenSeries) {
        // A bucket count of NaN makes the series unusable for this scrape.
        if series.buckets.iter().any(|b| b.count.is_nan()) {
            return;
        }
        // Bounds that are negative or do not increase: the series is refused for this scrape.
        let Ok(mut histogram) = Histogram::checked(series.buckets) else {
            return;
        };
        if histogram.count().is_none() {
            return;
        }
        histogram.fill_leading_bounds(series.kind.bounds(series.exporter));
        let map = &mut self.latency[series.kind.index()];
        match map.get_mut(series.key.as_str()) {
            // The same series in two runs of lines (the stream subsystem's exposition
            // appended after the http one's): both runs' observations.
            Some(existing) => existing.add(&histogram),
            None => {
                map.insert(series.key.into_boxed_str(), histogram);
            }
        }
    }

    /// Which exporter the families come from; `None` when the exposition has none of
    /// either's own families, or has both.
    pub fn exporter(&self) -> Option<Exporter> {
        match (self.saw_kong2, self.saw_kong3) {
            (true, false) => Some(Exporter::Kong2),
            (false, true) => Some(Exporter::Kong3),
            _ => None,
        }
    }

    /// Whether a prometheus plugin instance is enabled on the node, as far as the
    /// exposition tells: 3.x prints `kong_nginx_metric_errors_total` only then, and
    /// per-request series only come from an enabled instance's `log`; 2.x always prints
    /// the former, so `None` there (and when the exporter is unknown).
    pub fn prometheus_plugin_enabled(&self) -> Option<bool> {
        (self.exporter() == Some(Exporter::Kong3)).then(|| {
            self.metric_errors_printed || self.status_code_metrics() || self.latency_metrics()
        })
    }

    /// nginx's own count of the HTTP requests it served since it started: every request,
    /// the Admin and Status APIs', the scrapes and unmatched 404s included.
    pub fn nginx_requests_total(&self) -> Option<f64> {
        self.nginx_requests
    }

    /// The data planes a control plane reports (none on other nodes).
    pub fn data_planes(&self) -> &[DataPlaneReport] {
        &self.data_planes
    }

    /// The status-code counter exists (`kong_http_status` in 2.x; in 3.x
    /// `kong_http_requests_total`, behind `status_code_metrics`). Kong creates a series at
    /// its first count, so without it the node has counted nothing yet (or, in 3.x, the
    /// flag is off).
    pub fn status_code_metrics(&self) -> bool {
        !self.requests.is_empty()
    }

    /// A status-code series with a `code` label exists: the 5xx ratio can be computed
    /// from this node.
    pub fn counts_status_codes(&self) -> bool {
        self.requests.values().any(|series| series.has_code)
    }

    /// The buckets of latency histogram `kind` exist.
    pub fn has_latency(&self, kind: Latency) -> bool {
        !self.latency[kind.index()].is_empty()
    }

    /// A latency histogram exists (in 3.x, `latency_metrics` is on and something was
    /// observed).
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
            for (key, histogram) in now {
                let increase = histogram_increase(before_all.get(key), histogram);
                merged.add(&increase);
            }
            // No observation: no buckets. The tracker keeps every node's deltas over the
            // gates' window (a fleet's 2 000 nodes × 30 rounds), and an idle node's
            // zero-count buckets were most of its memory; adding an empty histogram changes
            // no count.
            if merged.count() == Some(0.0) {
                merged = Histogram::default();
            }
            Some(merged)
        });
        NodeDelta {
            from: earlier.at,
            to: self.at,
            requests,
            latency,
            nginx_requests: self
                .nginx_requests
                .map(|now| counter_increase(earlier.nginx_requests, now)),
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
/// the node restarted, and then every current count is new. A bucket absent before
/// (Kong had not printed it yet) counted 0 then.
fn histogram_increase(before: Option<&Histogram>, now: &Histogram) -> Histogram {
    let total = |h: &Histogram| h.buckets().last().map_or(0.0, |b| b.count);
    let Some(before) = before.filter(|before| total(before) <= total(now)) else {
        return now.clone();
    };
    let (before, now) = (before.buckets(), now.buckets());
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
    /// `None` when the node exports no status-code counter.
    pub requests: Option<RequestCounts>,
    /// Indexed like [`Latency::ALL`]; `None` when the node exports no such histogram.
    pub latency: [Option<Histogram>; 3],
    /// nginx's own request count's increase; `None` when the node exports none.
    pub nginx_requests: Option<f64>,
}

impl NodeDelta {
    pub fn seconds(&self) -> f64 {
        (self.to - self.from).num_milliseconds() as f64 / 1000.0
    }

    pub fn latency(&self, kind: Latency) -> Option<&Histogram> {
        self.latency[kind.index()].as_ref()
    }
}

//! What a lab node counts, and the Prometheus text it serves on `/metrics`, as Kong's
//! `prometheus` plugin of the node's version writes it (kong/plugins/prometheus/exporter.lua
//! and prometheus.lua at 2.8.5, 3.4.2, 3.9.1 and master; `docs/kong/metrics.md`):
//!
//! - 2.8: `kong_http_status{service,route,code}`, `kong_latency{service,route,type}` (26
//!   bounds, `type` request/upstream/kong), `kong_bandwidth{service,route,type}`,
//!   `kong_nginx_http_current_connections{state}`, always on (no flags);
//! - 3.x: `kong_http_requests_total{service,route,code,source,[workspace],consumer}` with
//!   `status_code_metrics`, `kong_request_latency_ms`/`kong_upstream_latency_ms` (13 bounds)
//!   and `kong_kong_latency_ms` (15, then 17 from 3.8.1) with `latency_metrics`, `workspace`
//!   from 3.7, `kong_nginx_connections_total`, `kong_nginx_requests_total`, `kong_node_info`,
//!   `kong_control_plane_connected` on 3.10 data planes;
//! - control planes: `kong_data_plane_*` per data plane; data planes:
//!   `kong_data_plane_cluster_cert_expiry_timestamp`.
//!
//! Written as Kong writes it: every sample key sorted bytewise (bucket bounds zero-padded
//! for the sort, so a histogram prints all its `_bucket` lines, then `_count`, then `_sum`),
//! `# HELP`/`# TYPE` before a family's first sample, sparse cumulative buckets (a bucket
//! only once something fell at or below it), numbers as LuaJIT's `tostring` (`%.14g`).
//! Series behind a flag that is off are absent. No upstream target health: the lab's
//! services name hosts, not upstream entities, so Kong would export none.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::model::Role;
use crate::plan::version::KongVersion;

use super::facts;
use super::lab::NodeCtx;

/// The two plugin flags kongup's gates depend on (3.x; both off by default in Kong, on by
/// default in the lab). 2.8 has no flags: it always records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsFlags {
    pub status_code_metrics: bool,
    pub latency_metrics: bool,
}

impl MetricsFlags {
    pub const ALL_ON: MetricsFlags = MetricsFlags {
        status_code_metrics: true,
        latency_metrics: true,
    };
    pub const ALL_OFF: MetricsFlags = MetricsFlags {
        status_code_metrics: false,
        latency_metrics: false,
    };
}

/// Labels of the per-request counters (service, route, code, source, consumer; the
/// workspace is always `default` in the lab).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    pub service: String,
    pub route: String,
    pub code: u16,
    /// `service` when the upstream answered, `kong` when Kong did (auth, errors).
    pub source: &'static str,
    pub consumer: String,
}

/// Labels of the latency histograms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    pub service: String,
    pub route: String,
}

/// A Prometheus histogram with Kong's fixed bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: Vec<u64>,
    count: u64,
    sum: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            count: 0,
            sum: 0,
        }
    }

    pub fn observe(&mut self, value_ms: u64) {
        let slot = self
            .bounds
            .iter()
            .position(|&b| value_ms <= b)
            .unwrap_or(self.bounds.len());
        self.counts[slot] += 1;
        self.count += 1;
        self.sum += value_ms;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The buckets Kong has a key for, with their cumulative counts: only from the first
    /// bound something fell at or below (prometheus.lua `observe` increments every bucket
    /// whose bound is at least the value, creating it then), and `+Inf` (`None`).
    fn sparse_buckets(&self) -> Vec<(Option<u64>, u64)> {
        let mut out = Vec::new();
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i];
            if cumulative > 0 {
                out.push((Some(*bound), cumulative));
            }
        }
        out.push((None, self.count));
        out
    }
}

/// The per-route series a node has counted since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyStats {
    /// Every proxied answer by status code, whatever the flags: the lab's own count, for
    /// tests and the console (never rendered).
    pub served_by_code: BTreeMap<u16, u64>,
    pub requests: BTreeMap<RequestKey, u64>,
    pub request_latency: BTreeMap<RouteKey, Histogram>,
    pub upstream_latency: BTreeMap<RouteKey, Histogram>,
    pub kong_latency: BTreeMap<RouteKey, Histogram>,
    /// 2.8's `kong_bandwidth`: (ingress, egress) bytes.
    pub bandwidth: BTreeMap<RouteKey, (u64, u64)>,
}

/// One proxied request as Kong's log phase sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub key: RequestKey,
    pub request_ms: u64,
    /// `None` when Kong answered without proxying (auth failure, Kong error).
    pub upstream_ms: Option<u64>,
    pub kong_ms: u64,
    /// The request's and the response's sizes in bytes (2.8's `kong_bandwidth`).
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl ProxyStats {
    pub fn record(&mut self, version: KongVersion, flags: MetricsFlags, record: &RequestRecord) {
        *self.served_by_code.entry(record.key.code).or_insert(0) += 1;
        let route = RouteKey {
            service: record.key.service.clone(),
            route: record.key.route.clone(),
        };
        // 2.8 records everything; 3.x what the plugin instance's flags ask for
        // (kong/plugins/prometheus/handler.lua:25-55@3.4.2).
        let old = !facts::prometheus_3x(version);
        if old || flags.status_code_metrics {
            *self.requests.entry(record.key.clone()).or_insert(0) += 1;
        }
        if old {
            let bytes = self.bandwidth.entry(route.clone()).or_default();
            bytes.0 += record.request_bytes;
            bytes.1 += record.response_bytes;
        }
        if old || flags.latency_metrics {
            let (request_bounds, kong_bounds) = if old {
                (facts::LATENCY_BUCKETS_2_8, facts::LATENCY_BUCKETS_2_8)
            } else {
                (
                    facts::UPSTREAM_LATENCY_BUCKETS,
                    facts::kong_latency_buckets(version),
                )
            };
            self.request_latency
                .entry(route.clone())
                .or_insert_with(|| Histogram::new(request_bounds))
                .observe(record.request_ms);
            if let Some(upstream_ms) = record.upstream_ms {
                self.upstream_latency
                    .entry(route.clone())
                    .or_insert_with(|| Histogram::new(request_bounds))
                    .observe(upstream_ms);
            }
            self.kong_latency
                .entry(route)
                .or_insert_with(|| Histogram::new(kong_bounds))
                .observe(record.kong_ms);
        }
    }

    /// Answers served with a status code in `range` (e.g. `500..600`), whatever the flags.
    pub fn served_with_code(&self, range: std::ops::Range<u16>) -> u64 {
        self.served_by_code
            .iter()
            .filter(|(code, _)| range.contains(code))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn served_total(&self) -> u64 {
        self.served_by_code.values().sum()
    }
}

/// nginx's connection statistics (`kong.nginx.get_statistics()`, stub_status on 2.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NginxStats {
    pub connections_accepted: u64,
    pub connections_handled: u64,
    pub connections_active: u64,
    pub connections_reading: u64,
    pub connections_writing: u64,
    pub connections_waiting: u64,
    pub total_requests: u64,
}

/// One sample: its key as Kong sorts it and its line as Kong prints it.
struct Sample {
    family: &'static str,
    sort_key: String,
    line: String,
}

/// The exposition being written: families by name, samples in any order until `finish`.
#[derive(Default)]
struct Exposition {
    families: BTreeMap<&'static str, (&'static str, &'static str)>,
    samples: Vec<Sample>,
}

fn escape_label(value: &str) -> String {
    // prometheus.lua `full_metric_name`: only `\` and `"`; newlines are not escaped.
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn label_text(labels: &[(&str, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// LuaJIT's `tostring` of a number (`%.14g`).
pub fn lua_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let exponent = value.abs().log10().floor() as i32;
    if (-4..14).contains(&exponent) {
        let decimals = usize::try_from(13 - exponent).unwrap_or(0);
        let text = format!("{value:.decimals$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    } else {
        let text = format!("{value:.13e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let exp: i32 = exp.parse().unwrap_or(0);
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// `construct_bucket_format`: the width bounds are zero-padded to for the sort
/// (prometheus.lua:310@3.4.2), with one decimal for integer bounds.
fn bucket_width(bounds: &[u64]) -> usize {
    let order = bounds
        .iter()
        .map(|b| b.to_string().len())
        .max()
        .unwrap_or(1);
    order + 2
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: &'static str, help: &'static str) {
        self.families.insert(name, (kind, help));
    }

    fn sample(&mut self, family: &'static str, name: &str, labels: &[(&str, String)], value: f64) {
        let text = label_text(labels);
        let key = if text.is_empty() {
            format!("kong_{name}")
        } else {
            format!("kong_{name}{{{text}}}")
        };
        self.samples.push(Sample {
            family,
            sort_key: key.clone(),
            line: format!("{key} {}", lua_number(value)),
        });
    }

    fn histogram(
        &mut self,
        family: &'static str,
        labels: &[(&str, String)],
        histogram: &Histogram,
    ) {
        let width = bucket_width(histogram.bounds);
        for (bound, cumulative) in histogram.sparse_buckets() {
            let (padded, printed) = match bound {
                Some(b) => (format!("{:0width$.1}", b as f64), b.to_string()),
                None => ("Inf".to_string(), "+Inf".to_string()),
            };
            let mut sort_labels = labels.to_vec();
            sort_labels.push(("le", padded));
            let mut printed_labels = labels.to_vec();
            printed_labels.push(("le", printed));
            self.samples.push(Sample {
                family,
                sort_key: format!("kong_{family}_bucket{{{}}}", label_text(&sort_labels)),
                line: format!(
                    "kong_{family}_bucket{{{}}} {}",
                    label_text(&printed_labels),
                    lua_number(cumulative as f64)
                ),
            });
        }
        for (suffix, value) in [("count", histogram.count), ("sum", histogram.sum)] {
            self.sample(family, &format!("{family}_{suffix}"), labels, value as f64);
        }
    }

    /// Kong's text: keys sorted bytewise, `# HELP`/`# TYPE` before a family's first sample.
    fn finish(mut self) -> String {
        self.samples.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
        let mut seen = BTreeSet::new();
        let mut out = String::new();
        for sample in &self.samples {
            if seen.insert(sample.family)
                && let Some((kind, help)) = self.families.get(sample.family)
            {
                out.push_str(&format!("# HELP kong_{} {help}\n", sample.family));
                out.push_str(&format!("# TYPE kong_{} {kind}\n", sample.family));
            }
            out.push_str(&sample.line);
            out.push('\n');
        }
        out
    }
}

/// `tonumber("0x" .. hash)` (exporter.lua `config_hash_to_number`): `None` for a hash that
/// is not hex (RPC sync's `v02_…`), which the gauge then refuses and leaves unset.
fn config_hash_number(hash: &str) -> Option<f64> {
    hash.chars().try_fold(0.0, |acc, c| {
        c.to_digit(16).map(|d| acc * 16.0 + f64::from(d))
    })
}

/// The `/metrics` text of a lab node.
pub fn render(ctx: &NodeCtx) -> String {
    let node = &ctx.node;
    let v = node.spec.version;
    let role = node.spec.role;
    let state = node.state().clone();
    let stats = node.stats().clone();
    let nginx = node.counters.snapshot();
    let node_id = node.node_id.clone();
    let three = facts::prometheus_3x(v);
    let mut e = Exposition::default();
    // Labels 3.x adds to the node-wide gauges; 2.8 has none of them.
    let with_node = |labels: Vec<(&'static str, String)>| -> Vec<(&'static str, String)> {
        if three {
            let mut all = vec![("node_id", node_id.clone())];
            all.extend(labels);
            all
        } else {
            labels
        }
    };

    e.family(
        "datastore_reachable",
        "gauge",
        "Datastore reachable from Kong, 0 is unreachable",
    );
    let reachable = node
        .spec
        .database
        .as_ref()
        .is_none_or(|d| ctx.lab.database_reachable(d));
    e.sample(
        "datastore_reachable",
        "datastore_reachable",
        &[],
        f64::from(u8::from(reachable)),
    );

    // Memory (kong.node.get_memory_stats).
    e.family(
        "memory_lua_shared_dict_bytes",
        "gauge",
        "Allocated slabs in bytes in a shared_dict",
    );
    e.family(
        "memory_lua_shared_dict_total_bytes",
        "gauge",
        "Total capacity in bytes of a shared_dict",
    );
    for (dict, allocated, capacity) in facts::shared_dicts(v, node.spec.dbless) {
        let labels = with_node(vec![
            ("shared_dict", dict.to_string()),
            ("kong_subsystem", "http".to_string()),
        ]);
        e.sample(
            "memory_lua_shared_dict_bytes",
            "memory_lua_shared_dict_bytes",
            &labels,
            allocated as f64,
        );
        e.sample(
            "memory_lua_shared_dict_total_bytes",
            "memory_lua_shared_dict_total_bytes",
            &labels,
            capacity as f64,
        );
    }
    e.family(
        "memory_workers_lua_vms_bytes",
        "gauge",
        "Allocated bytes in worker Lua VM",
    );
    for pid in &node.worker_pids {
        let labels = with_node(vec![
            ("pid", pid.to_string()),
            ("kong_subsystem", "http".to_string()),
        ]);
        e.sample(
            "memory_workers_lua_vms_bytes",
            "memory_workers_lua_vms_bytes",
            &labels,
            ctx.lab.lua_vm_bytes(node) as f64,
        );
    }

    // nginx's counters.
    let states = [
        ("accepted", nginx.connections_accepted),
        ("active", nginx.connections_active),
        ("handled", nginx.connections_handled),
        ("reading", nginx.connections_reading),
        ("total", nginx.total_requests),
        ("waiting", nginx.connections_waiting),
        ("writing", nginx.connections_writing),
    ];
    if three {
        e.family(
            "nginx_connections_total",
            "gauge",
            "Number of connections by subsystem",
        );
        for (state_name, value) in states {
            let labels = with_node(vec![
                ("subsystem", "http".to_string()),
                ("state", state_name.to_string()),
            ]);
            e.sample(
                "nginx_connections_total",
                "nginx_connections_total",
                &labels,
                value as f64,
            );
        }
        e.family("nginx_requests_total", "gauge", "Number of requests total");
        e.sample(
            "nginx_requests_total",
            "nginx_requests_total",
            &with_node(vec![("subsystem", "http".to_string())]),
            nginx.total_requests as f64,
        );
        e.family("node_info", "gauge", "Kong Node metadata information");
        e.sample(
            "node_info",
            "node_info",
            &[
                ("node_id", node_id.clone()),
                ("version", facts::full_version(v)),
            ],
            1.0,
        );
    } else {
        e.family(
            "nginx_http_current_connections",
            "gauge",
            "Number of HTTP connections",
        );
        for (state_name, value) in states {
            e.sample(
                "nginx_http_current_connections",
                "nginx_http_current_connections",
                &[("state", state_name.to_string())],
                value as f64,
            );
        }
    }
    e.family("nginx_timers", "gauge", "Number of nginx timers");
    e.sample(
        "nginx_timers",
        "nginx_timers",
        &[("state", "pending".to_string())],
        17.0,
    );
    e.sample(
        "nginx_timers",
        "nginx_timers",
        &[("state", "running".to_string())],
        1.0,
    );
    // The lab's configuration enables prometheus globally; 3.5+ control planes never learn
    // it (no `configure` there), so they print no shm keys of the plugin at all.
    if !three || role != Role::ControlPlane || facts::control_plane_prints_metric_errors(v) {
        e.family(
            "nginx_metric_errors_total",
            "counter",
            "Number of nginx-lua-prometheus errors",
        );
        e.sample(
            "nginx_metric_errors_total",
            "nginx_metric_errors_total",
            &[],
            0.0,
        );
    }

    match role {
        Role::ControlPlane => data_plane_series(ctx, &mut e),
        Role::DataPlane => {
            e.family(
                "data_plane_cluster_cert_expiry_timestamp",
                "gauge",
                "Unix timestamp of Data Plane's cluster_cert expiry time",
            );
            e.sample(
                "data_plane_cluster_cert_expiry_timestamp",
                "data_plane_cluster_cert_expiry_timestamp",
                &[],
                ctx.lab.cert_expiry as f64,
            );
            if facts::has_control_plane_connected_metric(v) {
                // The v1 ping writes the shm key this reads; a data plane synced by RPC runs
                // no v1 ping, so it reads 0 while connected (kong/clustering/data_plane.lua
                // master:77-81, 97-125: read from the code, unverified at runtime).
                let connected = state.cp_connected && !state.rpc_synced;
                e.family(
                    "control_plane_connected",
                    "gauge",
                    "Kong connected to control plane, 0 is unconnected",
                );
                e.sample(
                    "control_plane_connected",
                    "control_plane_connected",
                    &[],
                    f64::from(u8::from(connected)),
                );
            }
        }
        Role::Traditional => {}
    }

    if three {
        requests_3x(v, &stats, &mut e);
    } else {
        requests_2_8(&stats, &mut e);
    }
    e.finish()
}

/// A control plane's view of its data planes (exporter.lua `metric_data`, the rows of
/// `clustering_data_planes`).
fn data_plane_series(ctx: &NodeCtx, e: &mut Exposition) {
    e.family(
        "data_plane_last_seen",
        "gauge",
        "Last time data plane contacted control plane",
    );
    e.family(
        "data_plane_config_hash",
        "gauge",
        "Config hash numeric value of the data plane",
    );
    e.family(
        "data_plane_version_compatible",
        "gauge",
        "Version compatible status of the data plane, 0 is incompatible",
    );
    for row in ctx.lab.data_plane_rows(&ctx.node) {
        let labels = vec![
            ("node_id", row.id.clone()),
            ("hostname", row.hostname.clone()),
            ("ip", row.ip.clone()),
        ];
        e.sample(
            "data_plane_last_seen",
            "data_plane_last_seen",
            &labels,
            row.last_seen as f64,
        );
        if let Some(number) = config_hash_number(&row.config_hash) {
            e.sample(
                "data_plane_config_hash",
                "data_plane_config_hash",
                &labels,
                number,
            );
        }
        let mut with_version = labels.clone();
        with_version.push(("kong_version", row.version.clone()));
        let compatible = !matches!(
            row.sync_status,
            "kong_version_incompatible" | "plugin_set_incompatible" | "plugin_version_incompatible"
        );
        e.sample(
            "data_plane_version_compatible",
            "data_plane_version_compatible",
            &with_version,
            f64::from(u8::from(compatible)),
        );
    }
}

fn route_labels(route: &RouteKey) -> Vec<(&'static str, String)> {
    vec![
        ("service", route.service.clone()),
        ("route", route.route.clone()),
    ]
}

/// 2.8's per-request families (exporter.lua:88-106@2.8.5).
fn requests_2_8(stats: &ProxyStats, e: &mut Exposition) {
    e.family(
        "http_status",
        "counter",
        "HTTP status codes per service/route in Kong",
    );
    let mut by_code: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
    for (key, count) in &stats.requests {
        *by_code
            .entry((key.service.clone(), key.route.clone(), key.code))
            .or_insert(0) += count;
    }
    for ((service, route, code), count) in by_code {
        e.sample(
            "http_status",
            "http_status",
            &[
                ("service", service),
                ("route", route),
                ("code", code.to_string()),
            ],
            count as f64,
        );
    }
    e.family(
        "bandwidth",
        "counter",
        "Total bandwidth in bytes consumed per service/route in Kong",
    );
    for (route, (ingress, egress)) in &stats.bandwidth {
        for (direction, bytes) in [("ingress", ingress), ("egress", egress)] {
            if *bytes > 0 {
                let mut labels = route_labels(route);
                labels.push(("type", direction.to_string()));
                e.sample("bandwidth", "bandwidth", &labels, *bytes as f64);
            }
        }
    }
    e.family(
        "latency",
        "histogram",
        "Latency added by Kong, total request time and upstream latency for each service/route in Kong",
    );
    for (kind, series) in [
        ("request", &stats.request_latency),
        ("upstream", &stats.upstream_latency),
        ("kong", &stats.kong_latency),
    ] {
        for (route, histogram) in series {
            let mut labels = route_labels(route);
            labels.push(("type", kind.to_string()));
            e.histogram("latency", &labels, histogram);
        }
    }
}

/// 3.x's per-request families (exporter.lua:154-189@3.4.2, :105-126@3.9.1).
fn requests_3x(version: KongVersion, stats: &ProxyStats, e: &mut Exposition) {
    let workspace = facts::has_workspace_label(version);
    e.family(
        "http_requests_total",
        "counter",
        "HTTP status codes per consumer/service/route in Kong",
    );
    for (key, count) in &stats.requests {
        let mut labels = vec![
            ("service", key.service.clone()),
            ("route", key.route.clone()),
            ("code", key.code.to_string()),
            ("source", key.source.to_string()),
        ];
        if workspace {
            labels.push(("workspace", "default".to_string()));
        }
        labels.push(("consumer", key.consumer.clone()));
        e.sample(
            "http_requests_total",
            "http_requests_total",
            &labels,
            *count as f64,
        );
    }
    for (family, help, series) in [
        (
            "kong_latency_ms",
            "Latency added by Kong and enabled plugins for each service/route in Kong",
            &stats.kong_latency,
        ),
        (
            "request_latency_ms",
            "Total latency incurred during requests for each service/route in Kong",
            &stats.request_latency,
        ),
        (
            "upstream_latency_ms",
            "Latency added by upstream response for each service/route in Kong",
            &stats.upstream_latency,
        ),
    ] {
        e.family(family, "histogram", help);
        for (route, histogram) in series {
            let mut labels = route_labels(route);
            if workspace {
                labels.push(("workspace", "default".to_string()));
            }
            e.histogram(family, &labels, histogram);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_sparse_cumulative_and_end_with_inf() {
        let mut h = Histogram::new(&[10, 100, 1000]);
        for v in [50, 500, 5000] {
            h.observe(v);
        }
        assert_eq!(
            h.sparse_buckets(),
            vec![(Some(100), 1), (Some(1000), 2), (None, 3)]
        );
        let mut e = Exposition::default();
        e.family("request_latency_ms", "histogram", "help");
        let labels = vec![("service", "orders".to_string())];
        e.histogram("request_latency_ms", &labels, &h);
        let text = e.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "# HELP kong_request_latency_ms help",
                "# TYPE kong_request_latency_ms histogram",
                "kong_request_latency_ms_bucket{service=\"orders\",le=\"100\"} 1",
                "kong_request_latency_ms_bucket{service=\"orders\",le=\"1000\"} 2",
                "kong_request_latency_ms_bucket{service=\"orders\",le=\"+Inf\"} 3",
                "kong_request_latency_ms_count{service=\"orders\"} 3",
                "kong_request_latency_ms_sum{service=\"orders\"} 5550",
            ]
        );
    }

    #[test]
    fn numbers_print_like_lua() {
        assert_eq!(lua_number(255.0), "255");
        assert_eq!(lua_number(0.5), "0.5");
        assert_eq!(lua_number(99_999_999_999_999.0), "99999999999999");
        assert_eq!(lua_number(123_456_789_012_345.0), "1.2345678901234e+14");
        assert_eq!(
            lua_number(config_hash_number("ffffffffffffffffffffffffffffffff").unwrap()),
            "3.4028236692094e+38"
        );
        assert_eq!(config_hash_number("v02_0000000000000000000000000001"), None);
    }
}

//! What a lab node counts, and the Prometheus text it serves on `/metrics`, series for
//! series as Kong's `prometheus` plugin writes them (`kong/plugins/prometheus/exporter.lua`):
//! names, label names and order, bucket boundaries, `# HELP`/`# TYPE` lines, and the
//! per-version differences (`workspace` label from 3.7, more Kong-latency buckets from 3.9).
//! Series behind `status_code_metrics`/`latency_metrics` are absent when the flag is off,
//! as in Kong.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plan::version::KongVersion;

use super::facts;

/// The two plugin flags kongup's gates depend on (both off by default in Kong since 3.0;
/// on by default in the lab).
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

/// Labels of `kong_http_requests_total` (service, route, code, source, consumer; the
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

/// A Prometheus histogram with Kong's fixed boundaries.
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
}

/// One proxied request as Kong's log phase sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub key: RequestKey,
    pub request_ms: u64,
    /// `None` when Kong answered without proxying (auth failure, Kong error).
    pub upstream_ms: Option<u64>,
    pub kong_ms: u64,
}

impl ProxyStats {
    pub fn record(&mut self, version: KongVersion, flags: MetricsFlags, record: &RequestRecord) {
        *self.served_by_code.entry(record.key.code).or_insert(0) += 1;
        if flags.status_code_metrics {
            *self.requests.entry(record.key.clone()).or_insert(0) += 1;
        }
        if flags.latency_metrics {
            let route = RouteKey {
                service: record.key.service.clone(),
                route: record.key.route.clone(),
            };
            self.request_latency
                .entry(route.clone())
                .or_insert_with(|| Histogram::new(facts::UPSTREAM_LATENCY_BUCKETS))
                .observe(record.request_ms);
            if let Some(upstream_ms) = record.upstream_ms {
                self.upstream_latency
                    .entry(route.clone())
                    .or_insert_with(|| Histogram::new(facts::UPSTREAM_LATENCY_BUCKETS))
                    .observe(upstream_ms);
            }
            self.kong_latency
                .entry(route)
                .or_insert_with(|| Histogram::new(facts::kong_latency_buckets(version)))
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

/// nginx's connection statistics (`kong.nginx.get_statistics()`).
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

/// What a control plane knows of one data plane (`clustering_data_planes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlaneSeries {
    pub node_id: String,
    pub hostname: String,
    pub ip: String,
    pub version: String,
    pub last_seen: i64,
    pub config_hash: String,
    pub compatible: bool,
}

/// Everything `/metrics` shows of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMetrics<'a> {
    pub node_id: &'a str,
    pub version: KongVersion,
    pub role: crate::plan::model::Role,
    pub nginx: NginxStats,
    pub datastore_reachable: bool,
    /// Data planes only.
    pub control_plane_connected: Option<bool>,
    pub worker_pids: &'a [u32],
    pub lua_vm_bytes: u64,
    pub stats: &'a ProxyStats,
    /// Control planes only.
    pub data_planes: &'a [DataPlaneSeries],
}

struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP kong_{name} {help}");
        let _ = writeln!(self.out, "# TYPE kong_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str("kong_");
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        series: &BTreeMap<RouteKey, Histogram>,
        workspace: bool,
    ) {
        if series.is_empty() {
            return;
        }
        self.family(name, "histogram", help);
        for (route, hist) in series {
            let mut labels: Vec<(&str, &str)> = vec![
                ("service", route.service.as_str()),
                ("route", route.route.as_str()),
            ];
            if workspace {
                labels.push(("workspace", "default"));
            }
            let mut cumulative = 0;
            let bucket_name = format!("{name}_bucket");
            for (i, bound) in hist.bounds.iter().enumerate() {
                cumulative += hist.counts[i];
                let le = bound.to_string();
                let mut with_le = labels.clone();
                with_le.push(("le", &le));
                self.sample(&bucket_name, &with_le, cumulative);
            }
            let mut with_le = labels.clone();
            with_le.push(("le", "+Inf"));
            self.sample(&bucket_name, &with_le, hist.count);
            self.sample(&format!("{name}_count"), &labels, hist.count);
            self.sample(&format!("{name}_sum"), &labels, hist.sum);
        }
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Lua's `tostring` of a large number (`%.14g`), as Kong prints the numeric config hash.
fn lua_number(value: f64) -> String {
    if value.abs() < 1e15 && value.fract() == 0.0 {
        return format!("{value:.0}");
    }
    let formatted = format!("{value:.13e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

/// `tonumber("0x" .. hash)`: the config hash as Kong exports it.
fn config_hash_number(hash: &str) -> f64 {
    hash.chars()
        .filter_map(|c| c.to_digit(16))
        .fold(0.0, |acc, d| acc * 16.0 + f64::from(d))
}

/// The Prometheus text of one node.
pub fn render(node: &NodeMetrics<'_>) -> String {
    use crate::plan::model::Role;

    let mut w = Writer { out: String::new() };
    let node_id = node.node_id;
    let subsystem = "http";
    let workspace = facts::has_workspace_label(node.version);

    if let Some(connected) = node.control_plane_connected {
        w.family(
            "control_plane_connected",
            "gauge",
            "Kong connected to control plane, 0 is unconnected",
        );
        w.sample("control_plane_connected", &[], u8::from(connected));
    }

    if node.role == Role::ControlPlane {
        w.family(
            "data_plane_config_hash",
            "gauge",
            "Config hash numeric value of the data plane",
        );
        for dp in node.data_planes {
            w.sample(
                "data_plane_config_hash",
                &[
                    ("node_id", &dp.node_id),
                    ("hostname", &dp.hostname),
                    ("ip", &dp.ip),
                ],
                lua_number(config_hash_number(&dp.config_hash)),
            );
        }
        w.family(
            "data_plane_last_seen",
            "gauge",
            "Last time data plane contacted control plane",
        );
        for dp in node.data_planes {
            w.sample(
                "data_plane_last_seen",
                &[
                    ("node_id", &dp.node_id),
                    ("hostname", &dp.hostname),
                    ("ip", &dp.ip),
                ],
                dp.last_seen,
            );
        }
        w.family(
            "data_plane_version_compatible",
            "gauge",
            "Version compatible status of the data plane, 0 is incompatible",
        );
        for dp in node.data_planes {
            w.sample(
                "data_plane_version_compatible",
                &[
                    ("node_id", &dp.node_id),
                    ("hostname", &dp.hostname),
                    ("ip", &dp.ip),
                    ("kong_version", &dp.version),
                ],
                u8::from(dp.compatible),
            );
        }
    }

    w.family(
        "datastore_reachable",
        "gauge",
        "Datastore reachable from Kong, 0 is unreachable",
    );
    w.sample(
        "datastore_reachable",
        &[],
        u8::from(node.datastore_reachable),
    );

    if !node.stats.requests.is_empty() {
        w.family(
            "http_requests_total",
            "counter",
            "HTTP status codes per consumer/service/route in Kong",
        );
        for (key, count) in &node.stats.requests {
            let code = key.code.to_string();
            let mut labels: Vec<(&str, &str)> = vec![
                ("service", &key.service),
                ("route", &key.route),
                ("code", &code),
                ("source", key.source),
            ];
            if workspace {
                labels.push(("workspace", "default"));
            }
            labels.push(("consumer", &key.consumer));
            w.sample("http_requests_total", &labels, count);
        }
    }

    w.histogram(
        "kong_latency_ms",
        "Latency added by Kong and enabled plugins for each service/route in Kong",
        &node.stats.kong_latency,
        workspace,
    );

    w.family(
        "memory_lua_shared_dict_bytes",
        "gauge",
        "Allocated slabs in bytes in a shared_dict",
    );
    for (dict, bytes) in SHARED_DICTS {
        w.sample(
            "memory_lua_shared_dict_bytes",
            &[
                ("node_id", node_id),
                ("shared_dict", dict),
                ("kong_subsystem", subsystem),
            ],
            bytes.0,
        );
    }
    w.family(
        "memory_lua_shared_dict_total_bytes",
        "gauge",
        "Total capacity in bytes of a shared_dict",
    );
    for (dict, bytes) in SHARED_DICTS {
        w.sample(
            "memory_lua_shared_dict_total_bytes",
            &[
                ("node_id", node_id),
                ("shared_dict", dict),
                ("kong_subsystem", subsystem),
            ],
            bytes.1,
        );
    }
    w.family(
        "memory_workers_lua_vms_bytes",
        "gauge",
        "Allocated bytes in worker Lua VM",
    );
    for pid in node.worker_pids {
        let pid = pid.to_string();
        w.sample(
            "memory_workers_lua_vms_bytes",
            &[
                ("node_id", node_id),
                ("pid", &pid),
                ("kong_subsystem", subsystem),
            ],
            node.lua_vm_bytes,
        );
    }

    let n = &node.nginx;
    w.family(
        "nginx_connections_total",
        "gauge",
        "Number of connections by subsystem",
    );
    for (state, value) in [
        ("accepted", n.connections_accepted),
        ("active", n.connections_active),
        ("handled", n.connections_handled),
        ("reading", n.connections_reading),
        ("total", n.total_requests),
        ("waiting", n.connections_waiting),
        ("writing", n.connections_writing),
    ] {
        w.sample(
            "nginx_connections_total",
            &[
                ("node_id", node_id),
                ("subsystem", subsystem),
                ("state", state),
            ],
            value,
        );
    }
    w.family("nginx_requests_total", "gauge", "Number of requests total");
    w.sample(
        "nginx_requests_total",
        &[("node_id", node_id), ("subsystem", subsystem)],
        n.total_requests,
    );
    w.family("nginx_timers", "gauge", "Number of nginx timers");
    w.sample("nginx_timers", &[("state", "pending")], 1);
    w.sample("nginx_timers", &[("state", "running")], 18);

    w.family("node_info", "gauge", "Kong Node metadata information");
    let version = node.version.to_string();
    w.sample(
        "node_info",
        &[("node_id", node_id), ("version", &version)],
        1,
    );

    w.histogram(
        "request_latency_ms",
        "Total latency incurred during requests for each service/route in Kong",
        &node.stats.request_latency,
        workspace,
    );
    w.histogram(
        "upstream_latency_ms",
        "Latency added by upstream response for each service/route in Kong",
        &node.stats.upstream_latency,
        workspace,
    );
    w.out
}

/// The shared dictionaries a Kong node reports, with (allocated, capacity) bytes.
pub const SHARED_DICTS: &[(&str, (u64, u64))] = &[
    ("kong", (40_960, 5_242_880)),
    ("kong_core_db_cache", (802_816, 134_217_728)),
    ("kong_db_cache", (794_624, 134_217_728)),
    ("kong_locks", (61_440, 8_388_608)),
    ("prometheus_metrics", (49_152, 5_242_880)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::new(&[10, 100]);
        for v in [5, 50, 500] {
            h.observe(v);
        }
        let mut stats = BTreeMap::new();
        stats.insert(
            RouteKey {
                service: "orders".into(),
                route: "orders".into(),
            },
            h,
        );
        let mut w = Writer { out: String::new() };
        w.histogram("request_latency_ms", "help", &stats, true);
        assert!(w.out.contains(
            "kong_request_latency_ms_bucket{service=\"orders\",route=\"orders\",workspace=\"default\",le=\"100\"} 2"
        ));
        assert!(w.out.contains("le=\"+Inf\"} 3"));
        assert!(w.out.contains(
            "kong_request_latency_ms_sum{service=\"orders\",route=\"orders\",workspace=\"default\"} 555"
        ));
    }

    #[test]
    fn config_hash_prints_like_lua() {
        assert_eq!(lua_number(255.0), "255");
        assert_eq!(
            lua_number(config_hash_number("ffffffffffffffffffffffffffffffff")),
            "3.4028236692094e+38"
        );
    }
}

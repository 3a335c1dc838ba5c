//! Parse throughput on a generated 10 000-series Kong exposition: kongup's parser (all
//! series, only kongup's series, and the full per-node sample) against `prometheus-parse`
//! and `openmetrics-parser` in the same run. Run: `cargo bench --bench metrics_parse`.

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kongup::metrics::parse;
use kongup::metrics::sample::{NodeSample, is_needed_series};

const SERIES: usize = 10_000;
/// Kong's default latency buckets (ms).
const BUCKETS: [&str; 26] = [
    "00001.0", "00002.0", "00005.0", "00007.0", "00010.0", "00015.0", "00020.0", "00025.0",
    "00030.0", "00040.0", "00050.0", "00060.0", "00070.0", "00080.0", "00090.0", "00100.0",
    "00200.0", "00300.0", "00400.0", "00500.0", "01000.0", "02000.0", "05000.0", "10000.0",
    "30000.0", "60000.0",
];
const CODES: [&str; 6] = ["200", "201", "301", "404", "500", "503"];

/// A Kong 3.x node with every metrics flag on: 20 services × 5 routes, requests by six
/// codes, the three latency histograms, bandwidth, node gauges, then upstream target
/// health until the exposition holds `SERIES` sample lines.
fn kong_exposition() -> String {
    let node = "5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10";
    let routes: Vec<(String, String)> = (0..20)
        .flat_map(|s| {
            (0..5).map(move |r| {
                let route = if r == 4 {
                    // Operators' names: quotes and backslashes arrive escaped.
                    format!("svc{s}-legacy \\\"v1\\\" C:\\\\r{r}")
                } else {
                    format!("svc{s}-route{r}")
                };
                (format!("service-{s}"), route)
            })
        })
        .collect();
    let mut out = String::new();
    let mut lines = 0;
    out += "# HELP kong_bandwidth_bytes Total bandwidth (ingress/egress) throughput in bytes\n# TYPE kong_bandwidth_bytes counter\n";
    for (i, (service, route)) in routes.iter().enumerate() {
        for direction in ["egress", "ingress"] {
            writeln!(out, "kong_bandwidth_bytes{{service=\"{service}\",route=\"{route}\",direction=\"{direction}\",workspace=\"default\",consumer=\"\"}} {}", 1_000_000 + i * 7919).unwrap();
            lines += 1;
        }
    }
    out += "# HELP kong_datastore_reachable Datastore reachable from Kong, 0 is unreachable\n# TYPE kong_datastore_reachable gauge\nkong_datastore_reachable 1\n";
    lines += 1;
    out += "# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong\n# TYPE kong_http_requests_total counter\n";
    for (i, (service, route)) in routes.iter().enumerate() {
        for (c, code) in CODES.iter().enumerate() {
            writeln!(out, "kong_http_requests_total{{service=\"{service}\",route=\"{route}\",code=\"{code}\",source=\"service\",workspace=\"default\",consumer=\"\"}} {}", (i + 1) * 1000 / (c + 1)).unwrap();
            lines += 1;
        }
    }
    for (family, help) in [
        (
            "kong_kong_latency_ms",
            "Latency added by Kong and enabled plugins for each service/route in Kong",
        ),
        (
            "kong_request_latency_ms",
            "Total latency incurred during requests for each service/route in Kong",
        ),
        (
            "kong_upstream_latency_ms",
            "Latency added by upstream response for each service/route in Kong",
        ),
    ] {
        writeln!(out, "# HELP {family} {help}\n# TYPE {family} histogram").unwrap();
        for (i, (service, route)) in routes.iter().enumerate() {
            let labels = format!("service=\"{service}\",route=\"{route}\",workspace=\"default\"");
            let total = 10_000 + i * 13;
            for (b, le) in BUCKETS.iter().enumerate() {
                writeln!(
                    out,
                    "{family}_bucket{{{labels},le=\"{le}\"}} {}",
                    total * (b + 1) / BUCKETS.len()
                )
                .unwrap();
            }
            writeln!(out, "{family}_bucket{{{labels},le=\"+Inf\"}} {total}").unwrap();
            writeln!(out, "{family}_count{{{labels}}} {total}").unwrap();
            writeln!(out, "{family}_sum{{{labels}}} {}", total * 23).unwrap();
            lines += BUCKETS.len() + 3;
        }
    }
    out += "# HELP kong_memory_lua_shared_dict_bytes Allocated slabs in bytes in a shared_dict\n# TYPE kong_memory_lua_shared_dict_bytes gauge\n";
    for dict in [
        "kong",
        "kong_core_db_cache",
        "kong_db_cache",
        "kong_locks",
        "kong_healthchecks",
        "prometheus_metrics",
    ] {
        writeln!(out, "kong_memory_lua_shared_dict_bytes{{node_id=\"{node}\",shared_dict=\"{dict}\",kong_subsystem=\"http\"}} 45056").unwrap();
        lines += 1;
    }
    out += "# HELP kong_memory_workers_lua_vms_bytes Allocated bytes in worker Lua VM\n# TYPE kong_memory_workers_lua_vms_bytes gauge\n";
    for pid in 0..4 {
        writeln!(out, "kong_memory_workers_lua_vms_bytes{{node_id=\"{node}\",pid=\"{}\",kong_subsystem=\"http\"}} 5.3e7", 1200 + pid).unwrap();
        lines += 1;
    }
    out += "# HELP kong_nginx_connections_total Number of connections by subsystem\n# TYPE kong_nginx_connections_total gauge\n";
    for state in [
        "accepted", "active", "handled", "reading", "total", "waiting", "writing",
    ] {
        writeln!(out, "kong_nginx_connections_total{{node_id=\"{node}\",subsystem=\"http\",state=\"{state}\"}} 12").unwrap();
        lines += 1;
    }
    out += "# HELP kong_node_info Kong Node metadata information\n# TYPE kong_node_info gauge\n";
    writeln!(
        out,
        "kong_node_info{{node_id=\"{node}\",version=\"3.9.1\"}} 1"
    )
    .unwrap();
    lines += 1;
    out += "# HELP kong_upstream_target_health Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.\n# TYPE kong_upstream_target_health gauge\n";
    let mut target = 0;
    while lines < SERIES {
        let state = ["healthchecks_off", "healthy", "unhealthy", "dns_error"][target % 4];
        writeln!(out, "kong_upstream_target_health{{upstream=\"up-{}\",target=\"10.0.{}.{}:8080\",address=\"10.0.{}.{}:8080\",state=\"{state}\",subsystem=\"http\"}} {}", target / 40, target / 250, target % 250, target / 250, target % 250, u8::from(target % 4 == 1)).unwrap();
        lines += 1;
        target += 1;
    }
    out
}

fn parsers(c: &mut Criterion) {
    let text = kong_exposition();
    // Every parser must accept the text, or its timing would be of an error path.
    let all = parse::parse_samples(&text, |_| true).expect("kongup parses the exposition");
    assert_eq!(all.len(), SERIES);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus-parse parses the exposition");
    assert!(!scrape.samples.is_empty());
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .expect("openmetrics-parser parses the exposition");
    eprintln!(
        "exposition: {SERIES} series, {} bytes; kongup keeps {} of them",
        text.len(),
        parse::parse_samples(&text, is_needed_series).unwrap().len()
    );

    let mut group = c.benchmark_group("parse 10k-series Kong exposition");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("kongup: all series", |b| {
        b.iter(|| {
            parse::parse_samples(black_box(&text), |_| true)
                .unwrap()
                .len()
        })
    });
    group.bench_function("kongup: kongup's series only", |b| {
        b.iter(|| {
            parse::parse_samples(black_box(&text), is_needed_series)
                .unwrap()
                .len()
        })
    });
    let now = Utc::now();
    group.bench_function("kongup: NodeSample (parse + keep)", |b| {
        b.iter(|| NodeSample::parse(black_box(&text), now).unwrap())
    });
    group.bench_function("prometheus-parse 0.2.5", |b| {
        b.iter(|| {
            prometheus_parse::Scrape::parse(black_box(&text).lines().map(|l| Ok(l.to_owned())))
                .unwrap()
                .samples
                .len()
        })
    });
    group.bench_function("openmetrics-parser 0.5.1", |b| {
        b.iter(|| openmetrics_parser::prometheus::parse_prometheus(black_box(&text)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);

//! The exposition parser and the per-node sample on Kong-format text (shapes from
//! docs/kong/metrics.md: Kong 3.x with status_code_metrics and latency_metrics on).

use chrono::{TimeZone, Utc};
use kongup::metrics::parse::{self, Entry, MetricType};
use kongup::metrics::sample::{ExpositionError, NodeSample};

/// One Kong 3.9 node, written by hand in the order and format Kong's exporter uses:
/// families sorted by name, zero-padded `le`, `consumer=""`, a route name with a quote,
/// a backslash and a comma, a service name with an escaped newline.
const KONG_NODE: &str = r#"# HELP kong_bandwidth_bytes Total bandwidth (ingress/egress) throughput in bytes
# TYPE kong_bandwidth_bytes counter
kong_bandwidth_bytes{service="orders",route="orders-v1",direction="egress",workspace="default",consumer=""} 128734
kong_bandwidth_bytes{service="orders",route="orders-v1",direction="ingress",workspace="default",consumer=""} 20451
# HELP kong_datastore_reachable Datastore reachable from Kong, 0 is unreachable
# TYPE kong_datastore_reachable gauge
kong_datastore_reachable 1
# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong
# TYPE kong_http_requests_total counter
kong_http_requests_total{service="orders",route="orders-v1",code="200",source="service",workspace="default",consumer=""} 970
kong_http_requests_total{service="orders",route="orders-v1",code="503",source="kong",workspace="default",consumer=""} 20
kong_http_requests_total{service="pay\nments",route="say \"hi\", C:\\pay",code="500",source="service",workspace="default",consumer="bob"} 10
# HELP kong_kong_latency_ms Latency added by Kong and enabled plugins for each service/route in Kong
# TYPE kong_kong_latency_ms histogram
kong_kong_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="00001.0"} 900
kong_kong_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="00005.0"} 1000
kong_kong_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="+Inf"} 1000
kong_kong_latency_ms_count{service="orders",route="orders-v1",workspace="default"} 1000
kong_kong_latency_ms_sum{service="orders",route="orders-v1",workspace="default"} 1300
# HELP kong_memory_lua_shared_dict_bytes Allocated slabs in bytes in a shared_dict
# TYPE kong_memory_lua_shared_dict_bytes gauge
kong_memory_lua_shared_dict_bytes{node_id="5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10",shared_dict="kong",kong_subsystem="http"} 45056
# HELP kong_nginx_connections_total Number of connections by subsystem
# TYPE kong_nginx_connections_total gauge
kong_nginx_connections_total{node_id="5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10",subsystem="http",state="accepted"} 1204
kong_nginx_connections_total{node_id="5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10",subsystem="http",state="active"} 7
kong_nginx_connections_total{node_id="5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10",subsystem="stream",state="active"} 2
# HELP kong_node_info Kong Node metadata information
# TYPE kong_node_info gauge
kong_node_info{node_id="5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10",version="3.9.1"} 1
# HELP kong_request_latency_ms Total latency incurred during requests for each service/route in Kong
# TYPE kong_request_latency_ms histogram
kong_request_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="00010.0"} 500
kong_request_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="00050.0"} 900
kong_request_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="00100.0"} 1000
kong_request_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="+Inf"} 1000
kong_request_latency_ms_count{service="orders",route="orders-v1",workspace="default"} 1000
kong_request_latency_ms_sum{service="orders",route="orders-v1",workspace="default"} 21000
# HELP kong_upstream_latency_ms Latency added by upstream response for each service/route in Kong
# TYPE kong_upstream_latency_ms histogram
kong_upstream_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="00010.0"} 600
kong_upstream_latency_ms_bucket{service="orders",route="orders-v1",workspace="default",le="+Inf"} 1000
kong_upstream_latency_ms_count{service="orders",route="orders-v1",workspace="default"} 1000
kong_upstream_latency_ms_sum{service="orders",route="orders-v1",workspace="default"} 19000
# HELP kong_memory_workers_lua_vms_bytes Allocated bytes in worker Lua VM
# TYPE kong_memory_workers_lua_vms_bytes gauge
kong_memory_workers_lua_vms_bytes{node_id="5f1c9b1e-8a5e-4d38-9d4c-7b9d5a1e2f10",pid="1234",kong_subsystem="http"} NaN
"#;

/// The same node with both flags off (Kong's default since 3.0), on a DB-less node.
const KONG_NODE_FLAGS_OFF: &str = r#"# HELP kong_nginx_connections_total Number of connections by subsystem
# TYPE kong_nginx_connections_total gauge
kong_nginx_connections_total{node_id="a",subsystem="http",state="active"} 3
# HELP kong_nginx_requests_total Number of requests total
# TYPE kong_nginx_requests_total gauge
kong_nginx_requests_total{node_id="a",subsystem="http"} 5120
# HELP kong_node_info Kong Node metadata information
# TYPE kong_node_info gauge
kong_node_info{node_id="a",version="3.9.1"} 1
"#;

fn at(second: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap()
}

#[test]
fn reads_every_line_of_a_kong_exposition() {
    let samples = parse::parse_samples(KONG_NODE, |_| true).unwrap();
    assert_eq!(samples.len(), 27);

    let escaped = samples
        .iter()
        .find(|s| s.labels.get("consumer").as_deref() == Some("bob"))
        .unwrap();
    assert_eq!(escaped.name, "kong_http_requests_total");
    assert_eq!(escaped.labels.get("service").unwrap(), "pay\nments");
    assert_eq!(escaped.labels.get("route").unwrap(), "say \"hi\", C:\\pay");
    assert_eq!(escaped.labels.get("code").unwrap(), "500");
    assert_eq!(escaped.value, 10.0);
    let names: Vec<String> = escaped
        .labels
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "service",
            "route",
            "code",
            "source",
            "workspace",
            "consumer"
        ]
    );

    let inf_bucket = samples
        .iter()
        .find(|s| s.labels.get("le").as_deref() == Some("+Inf"))
        .unwrap();
    assert_eq!(inf_bucket.name, "kong_kong_latency_ms_bucket");
    assert_eq!(inf_bucket.value, 1000.0);

    let lua_vm = samples.last().unwrap();
    assert_eq!(lua_vm.name, "kong_memory_workers_lua_vms_bytes");
    assert!(lua_vm.value.is_nan());
}

#[test]
fn help_and_type_lines_are_read_for_kept_families_only() {
    let mut seen = Vec::new();
    parse::for_each_entry(
        "# HELP kong_x Line one\\nline two \\\\ done\n# TYPE kong_x counter\n# HELP other skipped\n# just a comment\nkong_x 1\n",
        |name| name.starts_with("kong_"),
        |entry| seen.push(entry),
    )
    .unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        matches!(&seen[0], Entry::Help { name: "kong_x", text } if text == "Line one\nline two \\ done")
    );
    assert!(matches!(
        &seen[1],
        Entry::Type {
            name: "kong_x",
            kind: MetricType::Counter
        }
    ));
    assert!(matches!(&seen[2], Entry::Sample(s) if s.value == 1.0));
}

#[test]
fn values_timestamps_and_blanks_follow_the_text_format() {
    let text = "a 1\nb +Inf\nc -Inf 1700000000123\nd{x=\"1\"}\t2.5e3\ne { x = \"1\" , } 7\r\n\n   f 0.25\ng{} NaN\n";
    let samples = parse::parse_samples(text, |_| true).unwrap();
    let values: Vec<(&str, f64)> = samples.iter().map(|s| (s.name, s.value)).collect();
    assert_eq!(values[0], ("a", 1.0));
    assert_eq!(values[1], ("b", f64::INFINITY));
    assert_eq!(values[2], ("c", f64::NEG_INFINITY));
    assert_eq!(samples[2].timestamp_ms, Some(1_700_000_000_123));
    assert_eq!(values[3], ("d", 2500.0));
    assert_eq!(values[4], ("e", 7.0));
    assert_eq!(samples[4].labels.get("x").unwrap(), "1");
    assert_eq!(values[5], ("f", 0.25));
    assert!(samples[6].value.is_nan() && samples[6].labels.is_empty());
}

#[test]
fn a_filter_skips_lines_without_reading_them() {
    // The skipped line's label list is broken: a filter that does not want it never
    // looks past its name.
    let text = "kong_bandwidth_bytes{service=\"unclosed} 1\nkong_datastore_reachable 1\n";
    let kept = parse::parse_samples(text, |name| name == "kong_datastore_reachable").unwrap();
    assert_eq!(kept.len(), 1);
    assert!(parse::parse_samples(text, |_| true).is_err());
}

#[test]
fn broken_lines_say_where_and_what() {
    let cases = [
        ("<!DOCTYPE html>\n<html>", 1, 1, "not Prometheus text"),
        (
            "{\"message\":\"no Route matched\"}",
            1,
            1,
            "not Prometheus text",
        ),
        ("ok 1\nkong_x{a=\"1\" 2\n", 2, 14, "expected `,` or `}`"),
        ("kong_x{a=\"b\\q\"} 1", 1, 12, "invalid escape"),
        ("kong_x{a=\"b} 1", 1, 15, "not closed by a quote"),
        ("kong_x{1a=\"b\"} 1", 1, 8, "expected a label name"),
        ("kong_x{a=b} 1", 1, 10, "expected a quoted label value"),
        ("kong_x one", 1, 8, "not a number"),
        ("kong_x 1 soon", 1, 10, "timestamp"),
        ("kong_x 1 2 3", 1, 12, "after the timestamp"),
        ("kong_x", 1, 7, "expected a blank or `{`"),
        ("# TYPE kong_x histogramm", 1, 15, "unknown metric type"),
    ];
    for (text, line, column, message) in cases {
        let error = parse::parse_samples(text, |_| true).unwrap_err();
        assert_eq!(
            (error.line, error.column),
            (line, column),
            "{text:?}: {error}"
        );
        assert!(
            error.to_string().contains(message),
            "{text:?}: {error} should say {message:?}"
        );
    }
}

#[test]
fn a_node_sample_keeps_what_kongup_uses() {
    let sample = NodeSample::parse(KONG_NODE, at(0)).unwrap();
    assert!(sample.status_code_metrics());
    assert!(sample.latency_metrics());
    // http and stream subsystems together.
    assert_eq!(sample.active_connections, Some(9.0));
    assert_eq!(sample.datastore_reachable, Some(true));

    let flags_off = NodeSample::parse(KONG_NODE_FLAGS_OFF, at(0)).unwrap();
    assert!(!flags_off.status_code_metrics());
    assert!(!flags_off.latency_metrics());
    assert_eq!(flags_off.active_connections, Some(3.0));
    assert_eq!(flags_off.datastore_reachable, None);

    let unreachable = KONG_NODE.replace("kong_datastore_reachable 1", "kong_datastore_reachable 0");
    assert_eq!(
        NodeSample::parse(&unreachable, at(0))
            .unwrap()
            .datastore_reachable,
        Some(false)
    );
}

#[test]
fn a_body_that_is_not_kong_is_refused() {
    let html = NodeSample::parse("<html><body>502 Bad Gateway</body></html>", at(0)).unwrap_err();
    assert!(matches!(html, ExpositionError::Parse(ref e) if e.line == 1));
    assert!(html.to_string().contains("not Prometheus text"));

    let other_exporter = "# TYPE go_goroutines gauge\ngo_goroutines 12\n";
    let error = NodeSample::parse(other_exporter, at(0)).unwrap_err();
    assert!(matches!(error, ExpositionError::NotKong));
    assert!(error.to_string().contains("prometheus plugin"));

    assert!(matches!(
        NodeSample::parse("", at(0)).unwrap_err(),
        ExpositionError::NotKong
    ));
}

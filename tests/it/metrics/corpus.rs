//! Kong's own expositions, version by version (`tests/fixtures/kong/*/metrics_*.txt`,
//! written by hand from Kong's exporter at each tag: see that directory's README), read
//! by the per-node sample and the cluster figures, with the totals docs/kong/metrics.md
//! gives for them ("Expected totals in the fixtures").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::{DateTime, TimeZone, Utc};
use kongup::metrics::aggregate::ClusterTracker;
use kongup::metrics::gates::GateEvaluator;
use kongup::metrics::sample::NodeSample;
use kongup::metrics::{ClusterFigures, Exporter, GateVerdict, MetricsSnapshot, Verdict};
use kongup::plan::model::{FailAction, GateSpec};
use kongup::testkit::corpus;

use crate::support::http::serve;

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + second, 0).unwrap()
}

/// What docs/kong/metrics.md says a fixture holds.
#[derive(Debug, Clone, Copy)]
struct Expected {
    /// Requests the prometheus plugin counted, and how many of them were 5xx; `None`
    /// where no per-request family is exported (a control plane, flags off).
    counted: Option<(u64, u64)>,
    /// nginx's own request count (`kong_nginx_http_current_connections{state="total"}`
    /// in 2.x, `kong_nginx_requests_total` in 3.x).
    nginx: u64,
    /// The interval the request-latency p99 falls in, where the doc gives it.
    p99: Option<(f64, f64)>,
    exporter: Exporter,
}

fn expected(version: &str, name: &str) -> Expected {
    let exporter = if version.starts_with("2.") {
        Exporter::Kong2
    } else {
        Exporter::Kong3
    };
    let (counted, nginx, p99) = match name {
        "metrics_traditional.txt" | "metrics_flags_on.txt" => (
            Some((2885, 20)),
            2949,
            match version {
                "2.8.5" => Some((1000.0, 2000.0)),
                "3.4.2" | "3.10.0" => Some((700.0, 1000.0)),
                _ => None,
            },
        ),
        "metrics_flags_off.txt" => (None, 2949, None),
        "metrics_dp.txt" => (Some((1442, 10)), 1506, None),
        "metrics_cp.txt" => (None, 5318, None),
        other => panic!("{version}/{other}: no expected totals: add a row to this table"),
    };
    Expected {
        counted,
        nginx,
        p99,
        exporter,
    }
}

/// Whether a sample line is one Kong only ever counts up: the per-request counters and
/// histograms, and nginx's own counters (which Kong prints as gauges).
fn monotonic(line: &str) -> bool {
    let name = line.split(['{', ' ']).next().unwrap_or_default();
    match name {
        "kong_nginx_http_current_connections" | "kong_nginx_connections_total" => {
            ["total", "accepted", "handled"]
                .iter()
                .any(|state| line.contains(&format!("state=\"{state}\"")))
        }
        "kong_http_status"
        | "kong_http_consumer_status"
        | "kong_http_requests_total"
        | "kong_bandwidth"
        | "kong_bandwidth_bytes"
        | "kong_nginx_requests_total" => true,
        _ => [
            "kong_latency_",
            "kong_request_latency_ms_",
            "kong_upstream_latency_ms_",
            "kong_kong_latency_ms_",
        ]
        .iter()
        .any(|family| name.starts_with(family)),
    }
}

/// The same node `factor` times further on: every counter multiplied, gauges as they were.
/// With `factor` 2 the increase between the two is the fixture itself.
pub fn later(text: &str, factor: f64) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with('#') || !monotonic(line) {
                return format!("{line}\n");
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a number");
            format!("{series} {}\n", value * factor)
        })
        .collect()
}

/// The figures of one node scraped as the fixture says, then 10 s later with twice the
/// counts: the window's increase is the fixture's whole content.
fn figures_of(text: &str) -> ClusterFigures {
    let mut tracker = ClusterTracker::new(["node"], Duration::from_secs(60));
    tracker.record(0, Ok(NodeSample::parse(text, at(0)).unwrap()));
    tracker.record(0, Ok(NodeSample::parse(&later(text, 2.0), at(10)).unwrap()));
    tracker.figures(at(10))
}

#[test]
fn every_corpus_exposition_reads_with_the_totals_the_doc_gives() {
    let files = corpus::files("metrics_", ".txt");
    assert_eq!(files.len(), 15, "{files:?}");
    for file in files {
        let label = format!("{}/{}", file.version, file.name);
        let text = file.text();
        let want = expected(file.version, &file.name);
        let sample = NodeSample::parse(&text, at(0)).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(sample.exporter(), Some(want.exporter), "{label}");
        assert_eq!(
            sample.nginx_requests_total(),
            Some(want.nginx as f64),
            "{label}"
        );

        let f = figures_of(&text);
        assert_eq!(f.exporter, Some(want.exporter), "{label}");
        assert_eq!(
            f.nginx_requests_per_s,
            Some(want.nginx as f64 / 10.0),
            "{label}"
        );
        match want.counted {
            Some((counted, server_errors)) => {
                assert_eq!(f.requests_in_window, Some(counted), "{label}");
                assert_eq!(f.requests_per_s, Some(counted as f64 / 10.0), "{label}");
                assert_eq!(
                    f.error_ratio,
                    Some(server_errors as f64 / counted as f64),
                    "{label}"
                );
                let p99 = f.p99_ms.unwrap_or_else(|| panic!("{label}: no p99"));
                if let Some((above, at_most)) = want.p99 {
                    assert!(above < p99 && p99 <= at_most, "{label}: p99 {p99}");
                }
            }
            None => {
                assert_eq!(f.requests_in_window, None, "{label}");
                assert_eq!((f.error_ratio, f.p99_ms), (None, None), "{label}");
            }
        }
    }
}

fn fixture(version: &'static str, name: &str) -> String {
    corpus::file(version, name).text()
}

/// A node's exposition without the lines of some families: what Kong prints when those
/// were never created (no counted request yet, or a flag off).
fn without(text: &str, families: &[&str]) -> String {
    text.lines()
        .filter(|line| {
            let name = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .split(['{', ' '])
                .next()
                .unwrap_or_default();
            !families.iter().any(|family| {
                name == *family
                    || ["_bucket", "_count", "_sum"]
                        .iter()
                        .any(|suffix| name == format!("{family}{suffix}"))
            })
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn gates() -> GateSpec {
    GateSpec {
        window: Duration::from_secs(60),
        max_error_ratio: Some(0.01),
        max_p99_ms: Some(5000.0),
        max_error_ratio_delta: Some(0.005),
        max_p99_ratio: Some(3.0),
        min_requests: 100,
        consecutive_breaches: 1,
        on_fail: FailAction::Pause,
    }
}

fn judge(x: ClusterFigures, y: ClusterFigures) -> GateVerdict {
    GateEvaluator::new(gates()).evaluate(&MetricsSnapshot { at: at(10), x, y })
}

/// A 2.8 X (kong_http_status, kong_latency with 26 bounds) against a 3.4 Y
/// (kong_http_requests_total, kong_request_latency_ms with 13): both judged, figure by
/// figure.
#[test]
fn a_kong_2_x_and_a_kong_3_y_are_compared_series_by_series() {
    let x = figures_of(&fixture("2.8.5", "metrics_traditional.txt"));
    let y = figures_of(&fixture("3.4.2", "metrics_flags_on.txt"));
    let verdict = judge(x, y);
    let checks = verdict.checks.join("\n");
    assert_eq!(verdict.verdict, Verdict::Pass, "{checks}");
    assert!(
        checks.contains("Y 5xx 0.69% − X 5xx 0.69% = +0.00 pp ≤ 0.50 pp: ok"),
        "{checks}"
    );
    assert_eq!(verdict.figures.x.requests, Some(2885));
    assert_eq!(verdict.figures.y.requests, Some(2885));
    // Each p99 on its own bounds (as docs/kong/metrics.md gives them) ...
    let (x_p99, y_p99) = (
        verdict.figures.x.p99_ms.unwrap(),
        verdict.figures.y.p99_ms.unwrap(),
    );
    assert!(1000.0 < x_p99 && x_p99 <= 2000.0, "{x_p99}");
    assert!(700.0 < y_p99 && y_p99 <= 1000.0, "{y_p99}");
    // ... and compared on the 11 bounds 2.x's 26 and 3.x's 13 share.
    let shared = verdict
        .figures
        .p99_on_shared_bounds
        .expect("the p99s compared on shared bounds");
    assert_eq!(shared.bounds, 11);
    assert!(
        checks.contains("(both on the 11 latency bounds X and Y share"),
        "{checks}"
    );
    // Re-bucketing keeps each p99 in the shared bucket that holds its own.
    assert!(
        1000.0 < shared.x_p99_ms && shared.x_p99_ms <= 2000.0,
        "{shared:?}"
    );
    assert!(
        400.0 < shared.y_p99_ms && shared.y_p99_ms <= 1000.0,
        "{shared:?}"
    );

    // Two 3.x clusters bucket alike: their own p99s are compared.
    let verdict = judge(
        figures_of(&fixture("3.4.2", "metrics_flags_on.txt")),
        figures_of(&fixture("3.10.0", "metrics_flags_on.txt")),
    );
    assert_eq!(verdict.figures.p99_on_shared_bounds, None);
}

/// The same traffic on both sides reads as the same p99 once both sides are on the shared
/// bounds, though each side's own p99 differs by its bucketing alone.
#[test]
fn the_same_latencies_bucketed_by_2_x_and_3_x_compare_equal() {
    // 1000 requests: 985 at 20 ms, 15 at 320 ms. 2.x counts them at le=20 and le=400
    // (after 300), 3.x at le=25 and le=400.
    let kong2 = |n: u64| {
        let mut text = String::from("# TYPE kong_latency histogram\n");
        for le in [
            "20", "25", "30", "40", "50", "60", "70", "80", "90", "100", "200", "300",
        ] {
            text += &format!(
                "kong_latency_bucket{{service=\"s\",route=\"r\",type=\"request\",le=\"{le}\"}} {}\n",
                985 * n
            );
        }
        for le in [
            "400", "500", "1000", "2000", "5000", "10000", "30000", "60000", "+Inf",
        ] {
            text += &format!(
                "kong_latency_bucket{{service=\"s\",route=\"r\",type=\"request\",le=\"{le}\"}} {}\n",
                1000 * n
            );
        }
        text + &format!(
            "kong_http_status{{service=\"s\",route=\"r\",code=\"200\"}} {}\n",
            1000 * n
        )
    };
    let kong3 = |n: u64| {
        let mut text = String::from("# TYPE kong_request_latency_ms histogram\n");
        for le in ["25", "50", "80", "100", "250"] {
            text += &format!(
                "kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",le=\"{le}\"}} {}\n",
                985 * n
            );
        }
        for le in [
            "400", "700", "1000", "2000", "5000", "10000", "30000", "60000", "+Inf",
        ] {
            text += &format!(
                "kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",le=\"{le}\"}} {}\n",
                1000 * n
            );
        }
        text + &format!(
            "kong_http_requests_total{{service=\"s\",route=\"r\",code=\"200\",source=\"service\",consumer=\"\"}} {}\n",
            1000 * n
        )
    };
    let two = |text: &dyn Fn(u64) -> String| {
        let mut tracker = ClusterTracker::new(["node"], Duration::from_secs(60));
        tracker.record(0, Ok(NodeSample::parse(&text(1), at(0)).unwrap()));
        tracker.record(0, Ok(NodeSample::parse(&text(2), at(10)).unwrap()));
        tracker.figures(at(10))
    };
    let (x, y) = (two(&kong2), two(&kong3));
    // Own bounds: 2.x puts the p99 in (300, 400], 3.x in (250, 400].
    assert!((x.p99_ms.unwrap() - (300.0 + 100.0 * 5.0 / 15.0)).abs() < 1e-9);
    assert!((y.p99_ms.unwrap() - (250.0 + 150.0 * 5.0 / 15.0)).abs() < 1e-9);
    let verdict = judge(x, y);
    let shared = verdict.figures.p99_on_shared_bounds.unwrap();
    assert_eq!(shared.x_p99_ms, shared.y_p99_ms, "{shared:?}");
}

/// Kong 2.x has no metric flags: a 2.8 node without kong_http_status has counted no
/// request yet (or no prometheus plugin applies to its routes), and the words say so.
#[test]
fn a_kong_2_node_is_never_told_to_turn_on_a_flag() {
    let counted_nothing = without(
        &fixture("2.8.5", "metrics_traditional.txt"),
        &["kong_http_status", "kong_latency", "kong_bandwidth"],
    );
    let x = figures_of(&counted_nothing);
    let y = figures_of(&fixture("3.4.2", "metrics_flags_on.txt"));
    let verdict = judge(x, y);
    let checks = verdict.checks.join("\n");
    assert_eq!(verdict.verdict, Verdict::Inconclusive, "{checks}");
    assert!(checks.contains("X 5xx unknown (Kong 2.x"), "{checks}");
    assert!(checks.contains("no kong_http_status on X"), "{checks}");
    assert!(checks.contains("X p99 unknown (Kong 2.x"), "{checks}");
    for flag in ["status_code_metrics", "latency_metrics", "turn on"] {
        assert!(!checks.contains(flag), "{flag}: {checks}");
    }
}

/// Kong 3.x: the words name the flag, say it is off by default since 3.0 and that a flag
/// off and no counted request look the same; without `kong_nginx_metric_errors_total`
/// no prometheus plugin is enabled at all.
#[test]
fn a_kong_3_node_is_told_which_flag_and_that_off_and_not_yet_look_the_same() {
    let x = figures_of(&fixture("3.4.2", "metrics_flags_on.txt"));
    for version in ["3.4.2", "3.9.1", "3.10.0"] {
        let y = figures_of(&fixture(version, "metrics_flags_off.txt"));
        let checks = judge(x.clone(), y).checks.join("\n");
        assert!(checks.contains("Y requests unknown (Kong 3.x"), "{checks}");
        for words in [
            "status_code_metrics",
            "latency_metrics",
            "off by default since 3.0",
            "look the same",
        ] {
            assert!(checks.contains(words), "{version}: {words}: {checks}");
        }

        let no_plugin = without(
            &fixture(version, "metrics_flags_off.txt"),
            &["kong_nginx_metric_errors_total"],
        );
        let checks = judge(x.clone(), figures_of(&no_plugin)).checks.join("\n");
        assert!(
            checks.contains("no prometheus plugin is enabled on Y")
                && checks.contains("kong_nginx_metric_errors_total"),
            "{version}: {checks}"
        );
    }
}

/// 2.8's `per_consumer` adds `kong_http_consumer_status`: the same requests again, by
/// consumer (exporter.lua 2.8.5:106, 218-224). They are not counted twice.
#[test]
fn kong_2_consumer_status_is_not_counted_twice() {
    let text = fixture("2.8.5", "metrics_traditional.txt");
    let consumers: String = text
        .lines()
        .filter(|line| line.starts_with("kong_http_status{"))
        .map(|line| {
            line.replacen("kong_http_status{", "kong_http_consumer_status{", 1)
                .replacen("\"} ", "\",consumer=\"alice\"} ", 1)
                + "\n"
        })
        .collect();
    let with_consumers = format!(
        "# HELP kong_http_consumer_status HTTP status codes for customer per service/route in Kong\n\
         # TYPE kong_http_consumer_status counter\n{consumers}{text}"
    );
    let f = figures_of(&with_consumers);
    assert_eq!(f.requests_in_window, Some(2885));
    assert_eq!(f.error_ratio, Some(20.0 / 2885.0));
}

/// Kong prints a histogram series' buckets from the first that counted anything
/// (prometheus.lua `observe`): `reports` starts at `le="400"`. The bounds below are 0,
/// and the lowest printed bucket starts at the bound below it (250), not at 0.
#[test]
fn sparse_buckets_read_as_zero_below_the_first_printed_bound() {
    let text = |n: u64| {
        let mut text = String::from(
            "# HELP kong_request_latency_ms Total latency incurred during requests for each service/route in Kong\n\
             # TYPE kong_request_latency_ms histogram\n",
        );
        for (le, count) in [
            ("400", 30),
            ("700", 36),
            ("1000", 40),
            ("2000", 42),
            ("5000", 42),
            ("10000", 42),
            ("30000", 42),
            ("60000", 42),
            ("+Inf", 42),
        ] {
            text += &format!(
                "kong_request_latency_ms_bucket{{service=\"reports\",route=\"reports-export\",le=\"{le}\"}} {}\n",
                count * n
            );
        }
        text
    };
    let mut tracker = ClusterTracker::new(["node"], Duration::from_secs(60));
    tracker.record(0, Ok(NodeSample::parse(&text(1), at(0)).unwrap()));
    tracker.record(0, Ok(NodeSample::parse(&text(2), at(10)).unwrap()));
    let f = tracker.figures(at(10));
    // Rank 21 of 42 is in (250, 400], which holds the first 30.
    let p50 = f.p50_ms.unwrap();
    assert!((p50 - (250.0 + 150.0 * 21.0 / 30.0)).abs() < 1e-9, "{p50}");
}

// ---- `kongup scrape` of a Kong 2.8 node ----

/// Serves `first` on the first request and `second` on every later one.
async fn two_expositions(first: String, second: String) -> String {
    let hits = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let hits = Arc::clone(&hits);
            let (first, second) = (first.clone(), second.clone());
            async move {
                match hits.fetch_add(1, Ordering::SeqCst) {
                    0 => first,
                    _ => second,
                }
            }
        }),
    );
    serve(router).await
}

async fn kongup_scrape(args: &[&str]) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kongup"));
    command.arg("scrape").args(args).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("kongup scrape finishes")
        .expect("kongup runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stderr.is_empty(), "{stderr}");
    (output.status.code(), stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_of_a_kong_2_8_node_gives_requests_errors_and_p99() {
    let text = fixture("2.8.5", "metrics_traditional.txt");
    let node = two_expositions(text.clone(), later(&text, 2.0)).await;
    let (code, stdout) = kongup_scrape(&[&node, "--interval", "500ms", "--json"]).await;
    assert_eq!(code, Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let endpoint = &report["endpoints"][0];
    assert_eq!(endpoint["kong_exporter"], "2.x");
    // 2885 counted requests between the two scrapes, --interval apart from start to
    // start (so a little less between the two answers).
    let rate = endpoint["requests_per_s"].as_f64().expect("requests/s");
    assert!((2885.0 / 5.0..=2885.0 / 0.25).contains(&rate), "{rate}");
    assert_eq!(endpoint["error_ratio"].as_f64(), Some(20.0 / 2885.0));
    let p99 = endpoint["p99_ms"].as_f64().expect("p99");
    assert!(1000.0 < p99 && p99 <= 2000.0, "{p99}");
    assert_eq!(report["total"]["error_ratio"], endpoint["error_ratio"]);

    // A 2.8 node that has counted nothing: the notes say so in 2.x's words.
    let idle = without(
        &text,
        &["kong_http_status", "kong_latency", "kong_bandwidth"],
    );
    let node = two_expositions(idle.clone(), idle).await;
    let (code, table) = kongup_scrape(&[&node, "--interval", "100ms"]).await;
    assert_eq!(code, Some(0), "{table}");
    assert!(table.contains("Kong 2.x"), "{table}");
    assert!(table.contains("kong_http_status"), "{table}");
    assert!(!table.contains("status_code_metrics"), "{table}");
    assert!(!table.contains("latency_metrics"), "{table}");
}

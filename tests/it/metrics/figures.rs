//! Cluster figures from successive scrapes (rates, resets, quantiles, missing flags) and
//! the gates' verdicts.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kongup::metrics::aggregate::ClusterTracker;
use kongup::metrics::gates::GateEvaluator;
use kongup::metrics::sample::NodeSample;
use kongup::metrics::{
    ClusterFigures, ClusterWindow, Exporter, GateFigures, GateThresholds, MetricsSnapshot, Verdict,
};
use kongup::plan::model::{FailAction, GateSpec};

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap()
}

/// A Kong node's exposition: `ok` 200s and `errors` 500s on one route, `buckets` of the
/// request latency histogram as (le, cumulative count), active connections.
fn kong_text(ok: u64, errors: u64, buckets: &[(&str, u64)], active: u64) -> String {
    let mut text = String::from(
        "# HELP kong_http_requests_total HTTP status codes per consumer/service/route in Kong\n# TYPE kong_http_requests_total counter\n",
    );
    text += &format!(
        "kong_http_requests_total{{service=\"s\",route=\"r\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"}} {ok}\n"
    );
    text += &format!(
        "kong_http_requests_total{{service=\"s\",route=\"r\",code=\"500\",source=\"service\",workspace=\"default\",consumer=\"\"}} {errors}\n"
    );
    text += &format!(
        "# TYPE kong_nginx_connections_total gauge\nkong_nginx_connections_total{{node_id=\"n\",subsystem=\"http\",state=\"active\"}} {active}\n"
    );
    text += "# TYPE kong_request_latency_ms histogram\n";
    for (le, count) in buckets {
        text += &format!(
            "kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"{le}\"}} {count}\n"
        );
    }
    text
}

fn sample(text: &str, second: i64) -> NodeSample {
    NodeSample::parse(text, at(second)).unwrap()
}

const WINDOW: Duration = Duration::from_secs(60);

#[test]
fn rates_ratios_and_quantiles_come_from_the_increase_between_scrapes() {
    let mut tracker = ClusterTracker::new(["x1"], WINDOW);
    let before = [
        ("00010.0", 100),
        ("00050.0", 150),
        ("00100.0", 200),
        ("+Inf", 200),
    ];
    tracker.record(0, Ok(sample(&kong_text(1000, 10, &before, 5), 0)));
    let first = tracker.figures(at(0));
    assert_eq!(first.nodes_scraped, 1);
    assert!(first.status_code_metrics && first.latency_metrics);
    // One scrape is no rate: unknown, not zero.
    assert_eq!(first.requests_per_s, None);
    assert_eq!(first.error_ratio, None);
    assert_eq!(first.p99_ms, None);

    // In 10 s: 190 OK + 10 errors; latency: 10 in (0,10], 80 in (10,50], 10 in (50,100].
    let after = [
        ("00010.0", 110),
        ("00050.0", 240),
        ("00100.0", 300),
        ("+Inf", 300),
    ];
    tracker.record(0, Ok(sample(&kong_text(1190, 20, &after, 7), 10)));
    let f = tracker.figures(at(10));
    assert_eq!(f.requests_per_s, Some(20.0));
    assert_eq!(f.requests_in_window, Some(200));
    assert_eq!(f.error_ratio, Some(0.05));
    assert_eq!(f.p50_ms, Some(30.0));
    assert_eq!(f.p95_ms, Some(75.0));
    assert_eq!(f.p99_ms, Some(95.0));
    assert_eq!(f.active_connections, Some(7.0));
    assert!(f.scrape_errors.is_empty());
}

#[test]
fn a_counter_that_goes_down_restarted_from_zero() {
    let mut tracker = ClusterTracker::new(["x1"], WINDOW);
    let buckets = |n| [("00010.0", n), ("+Inf", n)];
    tracker.record(0, Ok(sample(&kong_text(5000, 50, &buckets(5050), 1), 0)));
    // The node restarted: 80 OK and 20 errors since, 100 fast requests.
    tracker.record(0, Ok(sample(&kong_text(80, 20, &buckets(100), 1), 10)));
    let f = tracker.figures(at(10));
    assert_eq!(f.requests_in_window, Some(100));
    assert_eq!(f.requests_per_s, Some(10.0));
    assert_eq!(f.error_ratio, Some(0.2));
    assert_eq!(f.p50_ms, Some(5.0));
}

#[test]
fn a_series_that_appears_between_scrapes_counts_from_zero() {
    let mut tracker = ClusterTracker::new(["x1"], WINDOW);
    let only_ok = "kong_http_requests_total{service=\"s\",code=\"200\"} 100\n";
    let with_errors = "kong_http_requests_total{service=\"s\",code=\"200\"} 130\nkong_http_requests_total{service=\"s\",code=\"502\"} 10\n";
    tracker.record(0, Ok(sample(only_ok, 0)));
    tracker.record(0, Ok(sample(with_errors, 10)));
    let f = tracker.figures(at(10));
    assert_eq!(f.requests_in_window, Some(40));
    assert_eq!(f.error_ratio, Some(0.25));
}

#[test]
fn flags_off_give_unknown_figures_not_zeros() {
    let flags_off = "kong_nginx_connections_total{node_id=\"n\",subsystem=\"http\",state=\"active\"} 4\nkong_datastore_reachable 1\n";
    let mut tracker = ClusterTracker::new(["y1"], WINDOW);
    tracker.record(0, Ok(sample(flags_off, 0)));
    tracker.record(0, Ok(sample(flags_off, 10)));
    let f = tracker.figures(at(10));
    assert!(!f.status_code_metrics);
    assert!(!f.latency_metrics);
    assert_eq!(f.requests_per_s, None);
    assert_eq!(f.error_ratio, None);
    assert_eq!(f.requests_in_window, None);
    assert_eq!((f.p50_ms, f.p95_ms, f.p99_ms), (None, None, None));
    assert_eq!(f.upstream_latency.p99_ms, None);
    // What is always exported is still there.
    assert_eq!(f.active_connections, Some(4.0));
    assert_eq!(f.datastore_reachable, Some(true));
}

#[test]
fn latency_only_still_counts_requests_from_the_histogram() {
    let text = |n| {
        format!(
            "kong_request_latency_ms_bucket{{service=\"s\",le=\"00010.0\"}} {n}\nkong_request_latency_ms_bucket{{service=\"s\",le=\"+Inf\"}} {n}\n"
        )
    };
    let mut tracker = ClusterTracker::new(["y1"], WINDOW);
    tracker.record(0, Ok(sample(&text(10), 0)));
    tracker.record(0, Ok(sample(&text(70), 10)));
    let f = tracker.figures(at(10));
    assert!(!f.status_code_metrics && f.latency_metrics);
    assert_eq!(f.requests_in_window, Some(60));
    assert_eq!(f.requests_per_s, None);
    assert_eq!(f.p50_ms, Some(5.0));
}

#[test]
fn nodes_add_up_and_a_failed_node_says_why() {
    let buckets = |n| [("00010.0", n), ("+Inf", n)];
    let mut tracker = ClusterTracker::new(["x1", "x2", "x3"], WINDOW);
    tracker.record(0, Ok(sample(&kong_text(0, 0, &buckets(0), 2), 0)));
    tracker.record(1, Ok(sample(&kong_text(0, 0, &buckets(0), 3), 0)));
    tracker.record(2, Err("no answer within 1.5s".to_string()));
    tracker.record(0, Ok(sample(&kong_text(100, 0, &buckets(100), 2), 10)));
    tracker.record(1, Ok(sample(&kong_text(280, 20, &buckets(300), 3), 10)));
    tracker.record(2, Err("no answer within 1.5s".to_string()));
    let f = tracker.figures(at(10));
    assert_eq!((f.nodes_scraped, f.nodes_total), (2, 3));
    assert_eq!(f.scrape_errors, ["x3: no answer within 1.5s"]);
    assert_eq!(f.requests_per_s, Some(40.0));
    assert_eq!(f.error_ratio, Some(0.05));
    assert_eq!(f.active_connections, Some(5.0));
}

#[test]
fn old_increases_leave_the_window() {
    let buckets = |n| [("00010.0", n), ("+Inf", n)];
    let mut tracker = ClusterTracker::new(["x1"], Duration::from_secs(20));
    tracker.record(0, Ok(sample(&kong_text(0, 0, &buckets(0), 0), 0)));
    tracker.record(0, Ok(sample(&kong_text(100, 100, &buckets(200), 0), 10)));
    tracker.record(0, Ok(sample(&kong_text(200, 100, &buckets(300), 0), 20)));
    assert_eq!(tracker.figures(at(20)).error_ratio, Some(100.0 / 300.0));
    tracker.record(0, Ok(sample(&kong_text(300, 100, &buckets(400), 0), 30)));
    // The errors were in (0 s, 10 s], now outside the 20 s window.
    let f = tracker.figures(at(30));
    assert_eq!(f.error_ratio, Some(0.0));
    assert_eq!(f.requests_in_window, Some(200));
}

// ---- gates ----

fn spec() -> GateSpec {
    GateSpec {
        window: WINDOW,
        max_error_ratio: Some(0.01),
        max_p99_ms: Some(500.0),
        max_error_ratio_delta: None,
        max_p99_ratio: None,
        min_requests: 100,
        consecutive_breaches: 3,
        on_fail: FailAction::Pause,
    }
}

fn figures(requests: u64, error_ratio: f64, p99_ms: f64) -> ClusterFigures {
    ClusterFigures {
        requests_per_s: Some(requests as f64 / 60.0),
        error_ratio: Some(error_ratio),
        p50_ms: Some(p99_ms / 4.0),
        p95_ms: Some(p99_ms / 2.0),
        p99_ms: Some(p99_ms),
        requests_in_window: Some(requests),
        status_code_metrics: true,
        latency_metrics: true,
        exporter: Some(Exporter::Kong3),
        nodes_scraped: 2,
        nodes_total: 2,
        ..Default::default()
    }
}

fn snapshot(x: ClusterFigures, y: ClusterFigures) -> MetricsSnapshot {
    MetricsSnapshot { at: at(0), x, y }
}

#[test]
fn gates_pass_with_the_numbers_that_made_them_pass() {
    let mut gates = GateEvaluator::new(spec());
    let verdict = gates.evaluate(&snapshot(
        figures(5000, 0.0, 100.0),
        figures(1200, 0.008, 312.0),
    ));
    assert_eq!(verdict.verdict, Verdict::Pass);
    assert_eq!(verdict.requests_in_window, 1200);
    assert_eq!(
        verdict.checks,
        [
            "Y requests in window 1200 ≥ 100: ok",
            "Y 5xx 0.80% ≤ 1.00%: ok",
            "Y p99 312.0 ms ≤ 500.0 ms: ok",
        ]
    );
}

#[test]
fn a_verdict_carries_the_figures_and_thresholds_it_was_judged_on() {
    let mut gates = GateEvaluator::new(GateSpec {
        max_error_ratio_delta: Some(0.005),
        ..spec()
    });
    let verdict = gates.evaluate(&snapshot(
        figures(5000, 0.002, 100.0),
        figures(1200, 0.03, 312.0),
    ));
    assert_eq!(
        verdict.figures,
        GateFigures {
            x: ClusterWindow {
                requests: Some(5000),
                error_ratio: Some(0.002),
                p99_ms: Some(100.0),
            },
            y: ClusterWindow {
                requests: Some(1200),
                error_ratio: Some(0.03),
                p99_ms: Some(312.0),
            },
            thresholds: GateThresholds {
                max_error_ratio: Some(0.01),
                max_p99_ms: Some(500.0),
                max_error_ratio_delta: Some(0.005),
                max_p99_ratio: None,
                min_requests: 100,
                breaches_to_fail: 3,
            },
            p99_on_shared_bounds: None,
            scope: None,
        }
    );

    // What Kong does not export stays unknown in the figures, not zero.
    let mut y = figures(1200, 0.0, 100.0);
    y.latency_metrics = false;
    y.p99_ms = None;
    y.status_code_metrics = false;
    y.error_ratio = None;
    let verdict = gates.evaluate(&snapshot(figures(5000, 0.0, 100.0), y));
    assert_eq!(
        verdict.figures.y,
        ClusterWindow {
            requests: Some(1200),
            error_ratio: None,
            p99_ms: None,
        }
    );
}

#[test]
fn no_data_is_inconclusive() {
    let mut gates = GateEvaluator::new(spec());
    let nothing = ClusterFigures {
        nodes_total: 2,
        scrape_errors: vec!["y1: refused".into(), "y2: refused".into()],
        ..Default::default()
    };
    let verdict = gates.evaluate(&snapshot(figures(5000, 0.0, 100.0), nothing));
    assert_eq!(verdict.verdict, Verdict::Inconclusive);
    assert_eq!(
        verdict.checks[0],
        "Y: no data (0 of 2 nodes scraped): inconclusive"
    );
    assert!(verdict.checks[1].contains("no node of Y scraped"));
}

#[test]
fn too_few_requests_is_inconclusive_and_does_not_count_a_breach() {
    let mut gates = GateEvaluator::new(spec());
    let verdict = gates.evaluate(&snapshot(
        figures(5000, 0.0, 100.0),
        figures(40, 0.5, 900.0),
    ));
    assert_eq!(verdict.verdict, Verdict::Inconclusive);
    assert_eq!(
        verdict.checks[0],
        "Y requests in window 40 < 100: too few to judge: inconclusive"
    );
    assert_eq!(verdict.checks[1], "Y 5xx 50.00% > 1.00%: BREACH");
    assert_eq!(verdict.consecutive_breaches, 0);
}

#[test]
fn flags_off_for_a_gate_that_needs_them_is_inconclusive() {
    let mut gates = GateEvaluator::new(spec());
    let mut y = figures(1200, 0.0, 100.0);
    y.latency_metrics = false;
    y.p50_ms = None;
    y.p95_ms = None;
    y.p99_ms = None;
    let verdict = gates.evaluate(&snapshot(figures(5000, 0.0, 100.0), y));
    assert_eq!(verdict.verdict, Verdict::Inconclusive);
    // What is unknown comes before what held.
    assert!(
        verdict.checks[0].contains("turn on latency_metrics"),
        "{:?}",
        verdict.checks
    );
}

/// Kong creates the series at a node's first request: a Y that has served nothing has
/// none, and that is no reason to tell the operator to turn a flag on.
#[test]
fn no_series_before_any_request_is_not_called_a_flag_off() {
    let mut gates = GateEvaluator::new(spec());
    let mut y = figures(0, 0.0, 100.0);
    y.status_code_metrics = false;
    y.latency_metrics = false;
    y.requests_in_window = None;
    y.error_ratio = None;
    y.p50_ms = None;
    y.p95_ms = None;
    y.p99_ms = None;
    let verdict = gates.evaluate(&snapshot(figures(5000, 0.0, 100.0), y));
    assert_eq!(verdict.verdict, Verdict::Inconclusive);
    let checks = verdict.checks.join("\n");
    assert!(!checks.contains("turn on"), "{checks}");
    assert!(
        checks.contains("no request has been counted yet"),
        "{checks}"
    );
    assert!(checks.contains("look the same"), "{checks}");
}

#[test]
fn fail_only_after_the_configured_breaches_in_a_row() {
    let mut gates = GateEvaluator::new(spec());
    let healthy_x = figures(5000, 0.0, 100.0);
    let bad_y = figures(1200, 0.03, 100.0);
    let good_y = figures(1200, 0.001, 100.0);

    let first = gates.evaluate(&snapshot(healthy_x.clone(), bad_y.clone()));
    assert_eq!(first.verdict, Verdict::Inconclusive);
    assert_eq!(first.consecutive_breaches, 1);
    assert!(
        first
            .checks
            .contains(&"Y 5xx 3.00% > 1.00%: BREACH".to_string())
    );
    assert_eq!(
        first.checks.last().unwrap(),
        "1 breach(es) in a row (3 make a failure): not yet a failure"
    );
    // A pass in between starts the count again.
    assert_eq!(
        gates.evaluate(&snapshot(healthy_x.clone(), good_y)).verdict,
        Verdict::Pass
    );
    assert_eq!(gates.consecutive_breaches(), 0);
    for expected in [1, 2] {
        let v = gates.evaluate(&snapshot(healthy_x.clone(), bad_y.clone()));
        assert_eq!(
            (v.verdict, v.consecutive_breaches),
            (Verdict::Inconclusive, expected)
        );
    }
    let third = gates.evaluate(&snapshot(healthy_x.clone(), bad_y.clone()));
    assert_eq!(third.verdict, Verdict::Fail);
    assert_eq!(third.consecutive_breaches, 3);
    assert_eq!(
        third.checks.last().unwrap(),
        "3 breaches in a row (3 make a failure): fail"
    );

    gates.reset();
    assert_eq!(
        gates
            .evaluate(&snapshot(healthy_x, bad_y))
            .consecutive_breaches,
        1
    );
}

#[test]
fn relative_gates_compare_y_with_x() {
    let relative = GateSpec {
        max_error_ratio: None,
        max_p99_ms: None,
        max_error_ratio_delta: Some(0.005),
        max_p99_ratio: Some(1.5),
        consecutive_breaches: 1,
        ..spec()
    };
    let mut gates = GateEvaluator::new(relative.clone());
    let x = figures(5000, 0.010, 200.0);
    let pass = gates.evaluate(&snapshot(x.clone(), figures(1200, 0.012, 290.0)));
    assert_eq!(pass.verdict, Verdict::Pass);
    assert_eq!(
        pass.checks[1..],
        [
            "Y 5xx 1.20% − X 5xx 1.00% = +0.20 pp ≤ 0.50 pp: ok",
            "Y p99 290.0 ms ≤ 1.50 × X p99 200.0 ms = 300.0 ms: ok",
        ]
    );
    let fail = gates.evaluate(&snapshot(x, figures(1200, 0.020, 310.0)));
    assert_eq!(fail.verdict, Verdict::Fail);
    // The breaches first.
    assert_eq!(
        fail.checks[0..2],
        [
            "Y 5xx 2.00% − X 5xx 1.00% = +1.00 pp > 0.50 pp: BREACH",
            "Y p99 310.0 ms > 1.50 × X p99 200.0 ms = 300.0 ms: BREACH",
        ]
    );

    // At 100 % to Y, X serves nothing: there is no baseline, and no gate left to judge.
    let idle_x = ClusterFigures {
        requests_in_window: Some(0),
        error_ratio: None,
        p99_ms: None,
        ..figures(0, 0.0, 0.0)
    };
    let mut gates = GateEvaluator::new(relative);
    let verdict = gates.evaluate(&snapshot(idle_x, figures(1200, 0.0, 100.0)));
    assert_eq!(verdict.verdict, Verdict::Inconclusive);
    assert!(
        verdict.checks[1].ends_with("no baseline: skipped"),
        "{:?}",
        verdict.checks
    );
}

#[test]
fn a_relative_gate_without_x_baseline_leaves_the_absolute_ones_to_decide() {
    let mixed = GateSpec {
        max_error_ratio_delta: Some(0.005),
        ..spec()
    };
    let idle_x = ClusterFigures {
        requests_in_window: Some(0),
        error_ratio: None,
        ..figures(0, 0.0, 0.0)
    };
    let verdict =
        GateEvaluator::new(mixed).evaluate(&snapshot(idle_x, figures(1200, 0.002, 100.0)));
    assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.checks);
}

#[test]
fn the_failure_action_is_the_plans() {
    assert_eq!(GateEvaluator::new(spec()).on_fail(), FailAction::Pause);
    let rollback = GateSpec {
        on_fail: FailAction::Rollback,
        ..spec()
    };
    assert_eq!(GateEvaluator::new(rollback).on_fail(), FailAction::Rollback);
}

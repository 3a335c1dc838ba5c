//! A cluster's figures over some of its nodes (a wave's): counters summed and the
//! request-latency histograms merged over those nodes only; and the slowest scrapes named.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kongup::metrics::aggregate::ClusterTracker;
use kongup::metrics::sample::NodeSample;

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap()
}

/// A Kong 3.x node: `ok` 200s, `errors` 500s, all its requests' latency in the bucket
/// `le` (3.x request-latency bounds, exporter.lua@3.9.1:24; docs/kong/metrics.md).
fn node_text(ok: u64, errors: u64, le: &str) -> String {
    let total = ok + errors;
    let mut text = String::from("# TYPE kong_http_requests_total counter\n");
    text += &format!(
        "kong_http_requests_total{{service=\"s\",route=\"r\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"}} {ok}\n"
    );
    text += &format!(
        "kong_http_requests_total{{service=\"s\",route=\"r\",code=\"500\",source=\"service\",workspace=\"default\",consumer=\"\"}} {errors}\n"
    );
    text += "# TYPE kong_request_latency_ms histogram\n";
    for bound in ["00025.0", "01000.0", "02000.0"] {
        let count = if bound >= le { total } else { 0 };
        text += &format!(
            "kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"{bound}\"}} {count}\n"
        );
    }
    text += &format!(
        "kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"+Inf\"}} {total}\n"
    );
    text
}

fn sample(text: &str, second: i64, took_ms: u64) -> NodeSample {
    let mut sample = NodeSample::parse(text, at(second)).unwrap();
    sample.scrape_time = Some(Duration::from_millis(took_ms));
    sample
}

#[test]
fn a_waves_figures_are_its_nodes_alone_summed_and_merged() {
    let names = ["dp-1", "dp-2", "dp-3", "dp-4"];
    let mut tracker = ClusterTracker::new(names, Duration::from_secs(60));
    // In 10 s each node serves 100 requests; dp-3 answers 20 of them with a 500, all in
    // (1 000, 2 000] ms; the others within 25 ms.
    let took = [5, 40, 700, 12];
    for (i, _) in names.iter().enumerate() {
        tracker.record(i, Ok(sample(&node_text(0, 0, "00025.0"), 0, took[i])));
    }
    for (i, _) in names.iter().enumerate() {
        let text = if i == 2 {
            node_text(80, 20, "02000.0")
        } else {
            node_text(100, 0, "00025.0")
        };
        tracker.record(i, Ok(sample(&text, 10, took[i])));
    }

    let all = tracker.figures(at(10));
    assert_eq!(all.requests_in_window, Some(400));
    assert_eq!(all.error_ratio, Some(0.05));
    assert!(all.p99_ms.unwrap() > 1000.0, "{:?}", all.p99_ms);
    assert_eq!(
        all.slowest_scrapes,
        [
            ("dp-3".to_string(), Duration::from_millis(700)),
            ("dp-2".to_string(), Duration::from_millis(40)),
            ("dp-4".to_string(), Duration::from_millis(12)),
        ]
    );

    let wave = tracker.figures_of(at(10), |name| name == "dp-3" || name == "dp-4");
    assert_eq!((wave.nodes_scraped, wave.nodes_total), (2, 2));
    assert_eq!(wave.requests_in_window, Some(200));
    assert_eq!(wave.requests_per_s, Some(20.0));
    assert_eq!(wave.error_ratio, Some(0.1));
    // dp-3's 100 of the wave's 200 requests are slow: the merged histogram's p99 is theirs.
    assert!(wave.p99_ms.unwrap() > 1000.0, "{:?}", wave.p99_ms);
    assert_eq!(wave.slowest_scrapes[0].0, "dp-3");

    let healthy = tracker.figures_of(at(10), |name| name != "dp-3");
    assert_eq!(healthy.error_ratio, Some(0.0));
    assert!(healthy.p99_ms.unwrap() <= 25.0, "{:?}", healthy.p99_ms);
}

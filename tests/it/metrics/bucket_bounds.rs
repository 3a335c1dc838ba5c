//! Bucket bounds a latency histogram cannot have (issue 14, item 9): a negative `le` made
//! p99 −5 ms, and bounds written out of order were sorted into a histogram that never
//! was. Such a series is refused for the scrape; the node's other series still count.
//! Kong's exporter writes its buckets from fixed, positive lists (KONG_LATENCY_BUCKETS and
//! UPSTREAM_LATENCY_BUCKETS in kong/plugins/prometheus/exporter.lua, tag 3.9.1) in
//! increasing order, which "Prometheus server expects" (kong/plugins/prometheus/
//! prometheus.lua, near line 939, tag 3.9.1).

use chrono::{TimeZone, Utc};
use kongup::metrics::sample::{Latency, NodeSample};

/// One node's kong latency: a good series (route `good`) and `bad`, written as given.
fn exposition(bad: &[(&str, u64)], scale: u64) -> String {
    let mut text = String::from("# TYPE kong_kong_latency_ms histogram\n");
    for (le, count) in [("1", 10), ("5", 90), ("10", 100), ("+Inf", 100)] {
        text.push_str(&format!(
            "kong_kong_latency_ms_bucket{{route=\"good\",le=\"{le}\"}} {}\n",
            count * scale
        ));
    }
    for (le, count) in bad {
        text.push_str(&format!(
            "kong_kong_latency_ms_bucket{{route=\"bad\",le=\"{le}\"}} {}\n",
            count * scale
        ));
    }
    text
}

/// p99 of kong latency between two scrapes, 100 requests on `good` each time.
fn p99(bad: &[(&str, u64)]) -> f64 {
    let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    let first = NodeSample::parse(&exposition(bad, 1), at(0)).unwrap();
    let second = NodeSample::parse(&exposition(bad, 2), at(10)).unwrap();
    let delta = second.delta_since(&first);
    let histogram = delta
        .latency(Latency::Kong)
        .expect("the good series counts");
    assert_eq!(
        histogram.count(),
        Some(100.0),
        "only the good series counts"
    );
    histogram.quantile(0.99).unwrap()
}

#[test]
fn a_negative_bound_refuses_its_series_and_the_good_one_still_counts() {
    let good_only = p99(&[]);
    assert!(good_only > 5.0 && good_only <= 10.0, "{good_only}");
    assert_eq!(
        p99(&[("-5", 50), ("1", 60), ("+Inf", 60)]),
        good_only,
        "a series with le=\"-5\" must not count"
    );
}

#[test]
fn bounds_that_do_not_increase_refuse_their_series() {
    let good_only = p99(&[]);
    assert_eq!(p99(&[("10", 50), ("5", 60), ("+Inf", 60)]), good_only);
    assert_eq!(p99(&[("5", 50), ("5", 60), ("+Inf", 60)]), good_only);
}

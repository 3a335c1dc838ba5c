//! The Prometheus parser, the per-node sample and its histograms on mutations of the
//! corpus's expositions (tests/fixtures/kong/*/metrics_*.txt): never a panic.
//! `scripts/fuzz.sh` runs it longer.

use chrono::{TimeZone, Utc};
use kongup::metrics::parse::parse_samples;
use kongup::metrics::sample::{Latency, NodeSample};

use crate::support::mutate::no_panics;

#[test]
fn fuzz_the_prometheus_parser_never_panics() {
    let mut seeds = Vec::new();
    for version in std::fs::read_dir("tests/fixtures/kong").unwrap() {
        let dir = version.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("metrics_") && name.ends_with(".txt") {
                seeds.push(std::fs::read(&path).unwrap());
            }
        }
    }
    seeds.sort();
    assert!(seeds.len() >= 12, "the corpus's expositions are the seeds");
    let earlier = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let later = Utc.timestamp_opt(1_700_000_010, 0).unwrap();
    let baselines: Vec<Option<NodeSample>> = seeds
        .iter()
        .map(|s| NodeSample::parse(std::str::from_utf8(s).unwrap(), earlier).ok())
        .collect();
    no_panics("metrics", &seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _ = parse_samples(&text, |_| true);
        let Ok(sample) = NodeSample::parse(&text, later) else {
            return;
        };
        // The difference with every seed's sample, and its quantiles: what the gates read.
        for baseline in baselines.iter().flatten() {
            let delta = sample.delta_since(baseline);
            for kind in Latency::ALL {
                if let Some(histogram) = delta.latency(kind) {
                    for q in [0.5, 0.95, 0.99] {
                        let _ = histogram.quantile(q);
                    }
                }
            }
        }
    });
}

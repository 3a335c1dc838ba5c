//! A round of the monitor over a fleet of `/metrics` endpoints (`testkit::scrape_fleet`,
//! one loopback listener per node serving the corpus's 3.10.0 data plane): silent nodes
//! cost their own scrape's timeout, not the round, and are named with it.

use std::time::{Duration, Instant};

use kongup::metrics::monitor::{ScrapeTarget, scrape_round};
use kongup::testkit::scrape_fleet::{Answer, ScrapeFleet, data_plane_exposition};

fn targets(fleet: &ScrapeFleet) -> Vec<ScrapeTarget> {
    (0..fleet.addrs.len())
        .map(|i| ScrapeTarget {
            node: format!("dp-{i:04}"),
            url: Some(fleet.url(i)),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_nodes_spread_through_the_fleet_do_not_hold_the_round_up() {
    const NODES: usize = 400;
    let silent = |i: usize| i.is_multiple_of(50);
    let fleet = ScrapeFleet::start(NODES, data_plane_exposition(), |i| {
        if silent(i) {
            Answer::Never
        } else {
            Answer::Now
        }
    })
    .await;
    let targets = targets(&fleet);
    let client = kongup::kong::http::client(
        &Default::default(),
        Duration::from_secs(10),
        Duration::from_secs(5),
    )
    .unwrap()
    .0;
    // Long enough for a debug build on a loaded machine to read the others.
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let results = scrape_round(
        &client,
        targets.iter(),
        None,
        timeout,
        Duration::from_secs(30),
    )
    .await;
    let took = started.elapsed();
    // Eight silent nodes one after the other would take 8 × 2 s; side by side, 2 s and the
    // others' time.
    assert!(took < Duration::from_secs(8), "the round took {took:?}");
    for (i, result) in results.iter().enumerate() {
        if silent(i) {
            let error = result.as_ref().unwrap_err();
            assert!(
                error.reason.contains("no answer") && error.reason.contains("2s"),
                "dp-{i:04}: {error}"
            );
            assert_eq!(error.brief, "timeout 2000 ms");
        } else {
            assert!(result.is_ok(), "dp-{i:04}: {result:?}");
        }
    }
}

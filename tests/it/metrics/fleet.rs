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

/// X's nodes come first in the plan; a round that runs out before the last of them (here
/// X's silent nodes hold every slot for two turns) must not leave Y, whose figures the
/// gates judge, unread: the monitor takes X's and Y's nodes in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_runs_out_on_x_still_reads_y() {
    use kongup::metrics::monitor::{self, MonitorConfig};
    const X_SILENT: usize = 300;
    const Y: usize = 10;
    let x_fleet = ScrapeFleet::start(X_SILENT, data_plane_exposition(), |_| Answer::Never).await;
    let y_fleet = ScrapeFleet::start(Y, data_plane_exposition(), |_| Answer::Now).await;
    // 2 s rounds: each scrape 800 ms, the round 1.5 s, so X's 300 silent nodes read 128
    // at a time take more than the round.
    let interval = Duration::from_secs(2);
    let config = MonitorConfig {
        x: targets(&x_fleet),
        y: targets(&y_fleet),
        interval,
        timeout: monitor::scrape_timeout(interval),
        window: Duration::from_secs(30),
        history: interval,
        gates: None,
        admin_token: None,
    };
    let client = kongup::kong::http::client(
        &Default::default(),
        Duration::from_secs(10),
        Duration::from_secs(5),
    )
    .unwrap()
    .0;
    let handle = monitor::spawn(config, client);
    let mut watch = handle.watch();
    let snapshot = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            watch.changed().await.unwrap();
            if let Some(snapshot) = watch.borrow_and_update().latest().cloned() {
                return snapshot;
            }
        }
    })
    .await
    .expect("a first round within 60 s");
    assert_eq!(snapshot.x.nodes_total, X_SILENT);
    assert_eq!(
        (snapshot.y.nodes_scraped, snapshot.y.nodes_total),
        (Y, Y),
        "Y's nodes not read: {:?}",
        snapshot.y.not_scraped
    );
}

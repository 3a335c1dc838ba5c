//! What the monitor's scrape client keeps open between rounds (`monitor::scrape_client`).
//! A kept connection costs hyper ~26 KB of buffers and channels whether it is used or not:
//! at 1 000 data planes per cluster, 2 000 idle connections were some 50 MB of `kongup
//! run`'s memory. So a fleet larger than the scrapes in flight at once
//! (`SCRAPE_CONCURRENCY`) is read over a connection per scrape, closed by the node; a
//! smaller one keeps its connections and spares the handshakes.

use std::time::Duration;

use kongup::metrics::monitor::{
    self, MonitorConfig, SCRAPE_CONCURRENCY, ScrapeTarget, scrape_round,
};
use kongup::testkit::scrape_fleet::{Answer, ScrapeFleet, data_plane_exposition};

fn config(fleet: &ScrapeFleet) -> MonitorConfig {
    let interval = Duration::from_secs(2);
    MonitorConfig {
        x: (0..fleet.addrs.len())
            .map(|i| ScrapeTarget {
                node: format!("dp-{i:04}"),
                url: Some(fleet.url(i)),
            })
            .collect(),
        y: Vec::new(),
        interval,
        // Long enough for a debug build on a loaded machine.
        timeout: Duration::from_secs(5),
        window: Duration::from_secs(30),
        history: interval,
        gates: None,
        admin_token: None,
    }
}

/// One round of the monitor's over the fleet with `client`; every node must answer.
async fn round(client: &reqwest::Client, config: &MonitorConfig) {
    let results = scrape_round(
        client,
        config.x.iter(),
        None,
        config.timeout,
        Duration::from_secs(30),
    )
    .await;
    for (target, result) in config.x.iter().zip(results) {
        assert!(result.is_ok(), "{}: {result:?}", target.node);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_larger_than_the_scrape_slots_keeps_no_connection_between_rounds() {
    let nodes = SCRAPE_CONCURRENCY + 32;
    let fleet = ScrapeFleet::start(nodes, data_plane_exposition(), |_| Answer::Now).await;
    let config = config(&fleet);
    let (client, _) = monitor::scrape_client(&Default::default(), &config).unwrap();
    round(&client, &config).await;
    // Each scrape's connection closes once its answer is read (the node closes it, asked
    // to by `Connection: close`), where a pooled client keeps one per node.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while fleet.open() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{} connections of {nodes} nodes still open 10 s after the round",
        fleet.open()
    );
    round(&client, &config).await;
    assert_eq!(fleet.accepted(), 2 * nodes, "a connection per scrape");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_fleet_keeps_its_connections() {
    let nodes = 12;
    let fleet = ScrapeFleet::start(nodes, data_plane_exposition(), |_| Answer::Now).await;
    let config = config(&fleet);
    let (client, _) = monitor::scrape_client(&Default::default(), &config).unwrap();
    for _ in 0..3 {
        round(&client, &config).await;
    }
    assert_eq!(fleet.accepted(), nodes, "a connection per node, reused");
    assert_eq!(fleet.open(), nodes);
}

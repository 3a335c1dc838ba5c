//! Issue 17 (memory at fleet size): the console keeps ten minutes of metrics for the
//! sparklines, and with a fleet each snapshot named every node it could not scrape (a
//! thousand down-as-planned data planes of Y: ~130 KB a snapshot). Only the newest
//! snapshot's per-node lists are drawn, so only the newest keeps them.

use std::sync::Arc;
use std::time::Duration;

use kongup::engine::event::Event;
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::metrics::sample::DataPlaneReport;
use kongup::metrics::{EmptyConfiguration, MetricsSnapshot};
use kongup::session::{self, LiveSources};
use kongup::testkit::hybrid;
use kongup::testkit::scenarios;
use kongup::ui::Theme;

const NODES: usize = 1_000;

fn fleet_snapshot(secs: i64) -> MetricsSnapshot {
    let x = hybrid::figures(1_000.0 + secs as f64, Some(0.001), Some(120.0));
    let mut y = hybrid::figures(0.0, None, None);
    y.nodes_total = NODES + 1;
    y.nodes_scraped = 0;
    y.scrape_errors = (1..=NODES)
        .map(|i| format!("dp-y-{i}: http://127.0.0.9:8100/metrics: connection refused"))
        .collect();
    y.empty_configuration = vec![EmptyConfiguration {
        control_plane: "cp-y-1".into(),
        data_plane: DataPlaneReport {
            node_id: format!("node-{secs}"),
            hostname: "dp-y-1".into(),
            ip: "127.0.0.9".into(),
            config_hash: Some(0.0),
            last_seen: None,
            compatible: Some(true),
            kong_version: Some("3.10.0".into()),
        },
    }];
    MetricsSnapshot {
        at: hybrid::at(secs),
        x,
        y,
    }
}

#[test]
fn only_the_newest_metrics_snapshot_keeps_the_per_node_lists() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    for secs in 0..300 {
        state.apply(&Event::Metrics(fleet_snapshot(secs)));
    }
    let history = state.metrics_history();
    // Ten minutes are kept: the scenario's own snapshots, then the fleet's 300.
    assert!(history.len() >= 300, "{} snapshots kept", history.len());
    let fleet: Vec<&MetricsSnapshot> = history.iter().skip(history.len() - 300).collect();
    let (newest, older) = fleet.split_last().expect("snapshots");
    assert_eq!(newest.y.scrape_errors.len(), NODES);
    assert_eq!(newest.y.empty_configuration.len(), 1);
    for (secs, snapshot) in older.iter().enumerate() {
        assert!(
            snapshot.y.scrape_errors.is_empty() && snapshot.y.empty_configuration.is_empty(),
            "the snapshot of {secs} s still holds {} scrape errors and {} empty configurations",
            snapshot.y.scrape_errors.len(),
            snapshot.y.empty_configuration.len()
        );
        // What the sparklines draw is kept.
        assert_eq!(snapshot.x.requests_per_s, Some(1_000.0 + secs as f64));
        assert_eq!(snapshot.y.nodes_total, NODES + 1);
    }
}

/// The live support's monitor kept ten minutes of snapshots too, though what runs beside
/// the engine reads only its latest: it keeps one.
#[tokio::test]
async fn the_live_supports_monitor_keeps_only_its_latest_snapshot() {
    let plan = Arc::new(hybrid::plan());
    let (admin, _) = AdminClient::new(AdminClientOptions::default()).expect("an Admin client");
    let interval = Duration::from_secs(1);
    let (live, _events) = session::start_watching(
        &plan,
        LiveSources {
            admin,
            admin_token: None,
            databases: Vec::new(),
            metrics_interval: interval,
            topology_interval: Duration::from_secs(60),
        },
    )
    .expect("the live support starts");
    assert_eq!(live.monitor().history().capacity(), 1);
}

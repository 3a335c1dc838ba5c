//! Each scenario's demo, driven through the real engine to done (every step confirmed, the
//! plan name typed for irreversible ones): the lab ends with X gone, Y serving, and the
//! balancer sending everything to Y.

use crate::support::demo as demo_support;

use kongup::lb::{Split, TrafficDriver};
use kongup::plan::steps::ClusterSide;
use kongup::sim::Scenario;
use kongup::sim::node::Lifecycle;

async fn walks_to_done(scenario: Scenario) {
    let mut demo = demo_support::start(scenario).await;
    let y_before = demo.run.lab.served(ClusterSide::Y).0;
    demo.walk_to_done().await;
    let lab = demo.run.lab.clone();
    for node in lab.nodes() {
        let expected = match node.cluster {
            ClusterSide::X => Lifecycle::Absent,
            ClusterSide::Y => Lifecycle::Running,
        };
        assert_eq!(node.lifecycle, expected, "{scenario}: {}", node.name);
    }
    assert_eq!(
        lab.traffic_driver().read_split().await.unwrap(),
        Some(Split::to_y(100)),
        "{scenario}"
    );
    // Y's proxies answered the generator's traffic, as counted by the lab itself.
    assert!(lab.served(ClusterSide::Y).0 > y_before, "{scenario}");
    demo.served_more(ClusterSide::Y, 20).await;
    // The topology watcher tells Y's nodes from X's, though all listen on 127.0.0.1.
    let from = lab.topology().from.to_string();
    let confused: Vec<&String> = demo
        .events
        .iter()
        .filter_map(|e| match e {
            kongup::engine::Event::Warning(text) => Some(text),
            _ => None,
        })
        .filter(|text| text.starts_with("y/") && text.contains(&format!("reports Kong {from};")))
        .collect();
    assert!(confused.is_empty(), "{scenario}: {confused:?}");
    if let Some(schema) = lab.schema_state(ClusterSide::Y) {
        assert_eq!(schema.pending_total(), 0, "{scenario}: migrations finished");
    }
    demo.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hybrid_demo_walks_to_done() {
    walks_to_done(Scenario::Hybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dual_cluster_demo_walks_to_done() {
    walks_to_done(Scenario::DualCluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traditional_2_8_demo_walks_to_done() {
    walks_to_done(Scenario::Traditional28).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blue_green_demo_walks_to_done() {
    walks_to_done(Scenario::BlueGreen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dbless_rolling_demo_walks_to_done() {
    walks_to_done(Scenario::DblessRolling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_place_demo_walks_to_done() {
    walks_to_done(Scenario::InPlace).await;
}

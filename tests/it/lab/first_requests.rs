//! A fleet's X has served before the upgrade began: every running X proxy answers one
//! request at once (`Lab::serve_first_requests`), not after the traffic generator's
//! round-robin has reached it, so a demo or a rehearsal of a thousand data planes does not
//! wait seconds for preflight's metrics.

use kongup::plan::model::Role;
use kongup::plan::steps::ClusterSide;
use kongup::sim::node::Lifecycle;
use kongup::sim::{Lab, LabOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_running_x_proxy_serves_a_first_request_without_the_generator() {
    let options = LabOptions {
        data_planes: Some(20),
        ..LabOptions::default()
    };
    let lab = Lab::start(Scenario::Hybrid, options).await.unwrap();
    lab.serve_first_requests().await;
    assert!(lab.traffic_stats().is_none(), "no generator runs");
    for node in lab.nodes() {
        let x_proxy = node.cluster == ClusterSide::X
            && node.role != Role::ControlPlane
            && node.lifecycle == Lifecycle::Running;
        assert_eq!(
            !node.served_by_code.is_empty(),
            x_proxy,
            "{}: {:?} {:?}, served {:?}",
            node.name,
            node.role,
            node.lifecycle,
            node.served_by_code
        );
    }
    // Once: a second call finds nothing left to serve.
    let before: u64 = lab.served(ClusterSide::X).0;
    lab.serve_first_requests().await;
    assert_eq!(lab.served(ClusterSide::X).0, before);
    lab.shutdown().await;
}

//! The HAProxy driver against a real HAProxy in front of the lab's Kong proxies (two X,
//! three Y; told apart by the `Via` header Kong sends): every stage of a schedule is set
//! through the runtime API, read back from HAProxy, and checked with real requests (and
//! once in Kong's own counters); then rollback.

use kongup::lb::haproxy::HaproxyTrafficDriver;
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::model::HaproxyDriver;
use kongup::testkit::lb::{Haproxy, LabUpstreams, assert_counted_by_kong, assert_observed};

fn driver(socket: String, haproxy: &Haproxy) -> HaproxyTrafficDriver {
    HaproxyTrafficDriver::new(HaproxyDriver {
        socket,
        backend: "kong".into(),
        x_servers: haproxy.x_names.clone(),
        y_servers: haproxy.y_names.clone(),
        node_servers: Default::default(),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stage_is_applied_read_back_and_observed_then_rollback_sends_all_to_x() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(2, 3).await;
    let haproxy = Haproxy::start(dir.path(), &upstreams.x_proxies(), &upstreams.y_proxies());
    let lb = driver(haproxy.socket.display().to_string(), &haproxy);

    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    for percent in [1, 5, 25, 50, 100] {
        let split = Split::to_y(percent);
        lb.set_split(split).await.unwrap();
        assert_eq!(
            lb.read_split().await.unwrap(),
            Some(split),
            "read back from HAProxy"
        );
        let counted_before = upstreams.requests_counted_by_kong().await;
        let observed = assert_observed(haproxy.front, split, &upstreams).await;
        if percent == 25 {
            assert_counted_by_kong(&upstreams, counted_before, observed).await;
        }
    }
    lb.set_split(Split::ALL_X).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    assert_observed(haproxy.front, Split::ALL_X, &upstreams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_over_tcp_works_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 1).await;
    let haproxy = Haproxy::start(dir.path(), &upstreams.x_proxies(), &upstreams.y_proxies());
    let lb = driver(haproxy.admin_tcp.clone(), &haproxy);
    lb.set_split(Split::to_y(25)).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::to_y(25)));
    assert_observed(haproxy.front, Split::to_y(25), &upstreams).await;
}

/// HAProxy applies the commands of a batch that it can, so a wrong name must stop the
/// driver before it changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_backend_lacks_changes_nothing_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 1).await;
    let haproxy = Haproxy::start(dir.path(), &upstreams.x_proxies(), &upstreams.y_proxies());
    let lb = HaproxyTrafficDriver::new(HaproxyDriver {
        socket: haproxy.socket.display().to_string(),
        backend: "kong".into(),
        x_servers: vec!["x1".into()],
        y_servers: vec!["y1".into(), "y-typo".into()],
        node_servers: Default::default(),
    })
    .unwrap();
    let error = lb.set_split(Split::to_y(50)).await.unwrap_err().to_string();
    assert!(error.contains("y-typo"), "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    let good = driver(haproxy.socket.display().to_string(), &haproxy);
    assert_eq!(good.read_split().await.unwrap(), Some(Split::ALL_X));
    assert_observed(haproxy.front, Split::ALL_X, &upstreams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_split_read_back_counts_only_servers_that_take_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 2).await;
    let haproxy = Haproxy::start(dir.path(), &upstreams.x_proxies(), &upstreams.y_proxies());
    let lb = driver(haproxy.socket.display().to_string(), &haproxy);
    lb.set_split(Split::to_y(50)).await.unwrap();
    // Put both Y servers in maintenance behind kongup's back.
    let mut admin = tokio::net::UnixStream::connect(&haproxy.socket)
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    admin
        .write_all(b"disable server kong/y1; disable server kong/y2\n")
        .await
        .unwrap();
    let mut answer = String::new();
    admin.read_to_string(&mut answer).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    assert_observed(haproxy.front, Split::ALL_X, &upstreams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_backend_and_a_dead_socket_say_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = LabUpstreams::start(1, 1).await;
    let haproxy = Haproxy::start(dir.path(), &upstreams.x_proxies(), &upstreams.y_proxies());
    let lb = HaproxyTrafficDriver::new(HaproxyDriver {
        socket: haproxy.socket.display().to_string(),
        backend: "nope".into(),
        x_servers: vec!["x1".into()],
        y_servers: vec!["y1".into()],
        node_servers: Default::default(),
    })
    .unwrap();
    let error = lb.read_split().await.unwrap_err().to_string();
    assert!(error.contains("no backend \"nope\""), "{error}");

    let dead = driver(
        dir.path().join("missing.sock").display().to_string(),
        &haproxy,
    );
    let error = dead.set_split(Split::ALL_X).await.unwrap_err().to_string();
    assert!(error.contains("could not connect"), "{error}");
    assert!(error.contains("missing.sock"), "{error}");
}

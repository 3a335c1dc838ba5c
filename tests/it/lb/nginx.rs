//! The nginx driver against a real nginx in front of the lab's Kong proxies (two X, three
//! Y; told apart by the `Via` header Kong sends): each stage rewrites the upstream
//! include, checks it with `nginx -t`, reloads, reads the split back, and real requests
//! show it (once also in Kong's own counters); then rollback. A configuration nginx refuses
//! puts the previous file back.

use std::net::SocketAddr;
use std::path::Path;

use kongup::lb::nginx::NginxTrafficDriver;
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::model::NginxDriver;
use kongup::testkit::lb::{LabUpstreams, Nginx, assert_counted_by_kong, assert_observed};

fn spec(upstream_file: &Path, x: &[SocketAddr], y: &[SocketAddr]) -> NginxDriver {
    NginxDriver {
        upstream_file: upstream_file.to_path_buf(),
        upstream_name: "kong".into(),
        x_servers: x.iter().map(|a| a.to_string()).collect(),
        y_servers: y.iter().map(|a| a.to_string()).collect(),
        // A bare name on purpose: the driver finds it in /usr/sbin when PATH lacks it.
        binary: "nginx".into(),
        config: None,
    }
}

/// nginx running with kongup's upstream file at 100 % X in front of the lab's proxies, and
/// the driver for it.
async fn setup(dir: &Path, xs: usize, ys: usize) -> (LabUpstreams, Nginx, NginxTrafficDriver) {
    let upstreams = LabUpstreams::start(xs, ys).await;
    let upstream_file = dir.join("kong-upstream.conf");
    let mut spec = spec(
        &upstream_file,
        &upstreams.x_proxies(),
        &upstreams.y_proxies(),
    );
    std::fs::write(
        &upstream_file,
        NginxTrafficDriver::new(spec.clone())
            .unwrap()
            .render(Split::ALL_X),
    )
    .unwrap();
    let nginx = Nginx::start(dir, &upstream_file);
    spec.config = Some(nginx.config.clone());
    (upstreams, nginx, NginxTrafficDriver::new(spec).unwrap())
}

/// Sets the split and waits until nginx's workers were replaced, so the requests that
/// follow meet the reloaded configuration.
async fn set_and_wait_for_reload(nginx: &Nginx, lb: &NginxTrafficDriver, split: Split) {
    let before = nginx.workers();
    lb.set_split(split).await.unwrap();
    nginx.wait_for_reload(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stage_is_applied_read_back_and_observed_then_rollback_sends_all_to_x() {
    let dir = tempfile::tempdir().unwrap();
    let (upstreams, nginx, lb) = setup(dir.path(), 2, 3).await;
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    assert_observed(nginx.front, Split::ALL_X, &upstreams).await;
    for percent in [1, 5, 25, 50, 100] {
        let split = Split::to_y(percent);
        set_and_wait_for_reload(&nginx, &lb, split).await;
        assert_eq!(lb.read_split().await.unwrap(), Some(split));
        let counted_before = upstreams.requests_counted_by_kong().await;
        let observed = assert_observed(nginx.front, split, &upstreams).await;
        if percent == 25 {
            assert_counted_by_kong(&upstreams, counted_before, observed).await;
        }
    }
    set_and_wait_for_reload(&nginx, &lb, Split::ALL_X).await;
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    assert_observed(nginx.front, Split::ALL_X, &upstreams).await;
    // The file before the last change is kept.
    let previous = std::fs::read_to_string(lb.previous_file()).unwrap();
    assert!(previous.contains("X 0% | Y 100%"), "{previous}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_nginx_refuses_is_rolled_back_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let (upstreams, nginx, lb) = setup(dir.path(), 1, 1).await;
    set_and_wait_for_reload(&nginx, &lb, Split::to_y(25)).await;
    let good = std::fs::read_to_string(&nginx.upstream_file).unwrap();

    // A plan whose Y address nginx cannot parse.
    let mut broken = spec(&nginx.upstream_file, &[], &[]);
    broken.x_servers = vec![lb_x_server(&good)];
    broken.y_servers = vec!["127.0.0.1:notaport".into()];
    broken.config = Some(nginx.config.clone());
    let broken = NginxTrafficDriver::new(broken).unwrap();
    let error = broken
        .set_split(Split::to_y(50))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("nginx -t"), "{error}");
    assert!(
        error.contains("[emerg]"),
        "nginx's own message is reported: {error}"
    );
    assert!(error.contains("was put back"), "{error}");
    assert_eq!(std::fs::read_to_string(&nginx.upstream_file).unwrap(), good);
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::to_y(25)));
    assert_observed(nginx.front, Split::to_y(25), &upstreams).await;
}

/// The X server's address as the good file lists it.
fn lb_x_server(file: &str) -> String {
    file.lines()
        .find(|l| l.ends_with("# X"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_puts_the_previous_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstreams, nginx, lb) = setup(dir.path(), 1, 1).await;
    let before = std::fs::read_to_string(&nginx.upstream_file).unwrap();
    // nginx -s reload signals the pid in the pid file; with nginx stopped it fails.
    drop(nginx);
    let error = lb.set_split(Split::to_y(5)).await.unwrap_err().to_string();
    assert!(error.contains("reload"), "{error}");
    assert!(error.contains("was put back"), "{error}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kong-upstream.conf")).unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_file_with_a_stranger_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kong-upstream.conf");
    std::fs::write(
        &file,
        "upstream kong {\n    server 127.0.0.1:1 weight=3;\n    server 10.9.9.9:80;\n}\n",
    )
    .unwrap();
    let lb = NginxTrafficDriver::new(NginxDriver {
        upstream_file: file,
        upstream_name: "kong".into(),
        x_servers: vec!["127.0.0.1:1".into()],
        y_servers: vec!["127.0.0.1:2".into()],
        binary: "nginx".into(),
        config: None,
    })
    .unwrap();
    let error = lb.read_split().await.unwrap_err().to_string();
    assert!(error.contains("10.9.9.9:80"), "{error}");
}

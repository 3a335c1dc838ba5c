//! Time to safety: from `set_split(ALL_X)` to a read-back that reports 100 % X, against
//! a real HAProxy (goal ≤ 50 ms) and a real nginx (goal ≤ 500 ms). Before each timed
//! round the split is put at 50 % (untimed). For nginx a second figure waits, after the
//! read-back, until its old workers are gone: from then on no request can meet the old
//! weights.
//!
//! The balancers stand in front of the lab's Kong proxies, as in the tests. No request is
//! sent while timing, and the lab runs no traffic generator, so its idle nodes (and its
//! once-a-second cluster tick) take no part in the figure.
//!
//! `cargo bench --bench time_to_safety`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kongup::lb::haproxy::HaproxyTrafficDriver;
use kongup::lb::nginx::NginxTrafficDriver;
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::model::{HaproxyDriver, NginxDriver};
use kongup::testkit::lb::{Haproxy, LabUpstreams, Nginx};

const HALF: Split = Split { x: 50, y: 50 };

/// Sets ALL_X and polls the read-back until it says so; returns the time taken.
async fn to_safety(lb: &dyn TrafficDriver) -> Duration {
    let started = Instant::now();
    lb.set_split(Split::ALL_X).await.expect("set 100 % X");
    while lb.read_split().await.expect("read back") != Some(Split::ALL_X) {}
    started.elapsed()
}

fn haproxy(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (upstreams, haproxy, lb) = runtime.block_on(async {
        let upstreams = LabUpstreams::start(2, 2).await;
        let haproxy = Haproxy::start(dir.path(), &upstreams.x_proxies(), &upstreams.y_proxies());
        let lb = HaproxyTrafficDriver::new(HaproxyDriver {
            socket: haproxy.socket.display().to_string(),
            backend: "kong".into(),
            x_servers: haproxy.x_names.clone(),
            y_servers: haproxy.y_names.clone(),
            node_servers: Default::default(),
        })
        .unwrap();
        (upstreams, haproxy, lb)
    });
    let mut group = c.benchmark_group("time_to_safety");
    group.bench_function("haproxy (runtime API, read back)", |b| {
        b.iter_custom(|rounds| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..rounds {
                    lb.set_split(HALF).await.unwrap();
                    total += to_safety(&lb).await;
                }
                total
            })
        })
    });
    group.finish();
    drop(haproxy);
    drop(upstreams);
}

fn nginx(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let upstream_file: PathBuf = dir.path().join("kong-upstream.conf");
    let (upstreams, nginx, lb) = runtime.block_on(async {
        let upstreams = LabUpstreams::start(2, 2).await;
        let mut spec = NginxDriver {
            upstream_file: upstream_file.clone(),
            upstream_name: "kong".into(),
            x_servers: upstreams.x.iter().map(|n| n.proxy.to_string()).collect(),
            y_servers: upstreams.y.iter().map(|n| n.proxy.to_string()).collect(),
            binary: "nginx".into(),
            config: None,
        };
        std::fs::write(
            &upstream_file,
            NginxTrafficDriver::new(spec.clone())
                .unwrap()
                .render(Split::ALL_X),
        )
        .unwrap();
        let nginx = Nginx::start(dir.path(), &upstream_file);
        spec.config = Some(nginx.config.clone());
        (upstreams, nginx, NginxTrafficDriver::new(spec).unwrap())
    });
    let mut group = c.benchmark_group("time_to_safety");
    // Each round reloads nginx twice; fewer samples keep the run to a minute or so.
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("nginx (nginx -t, reload, read back)", |b| {
        b.iter_custom(|rounds| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..rounds {
                    let before = nginx.workers();
                    lb.set_split(HALF).await.unwrap();
                    nginx.wait_for_reload(&before).await;
                    let before = nginx.workers();
                    total += to_safety(&lb).await;
                    nginx.wait_for_reload(&before).await;
                }
                total
            })
        })
    });
    group.bench_function("nginx (… until old workers are gone)", |b| {
        b.iter_custom(|rounds| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..rounds {
                    let before = nginx.workers();
                    lb.set_split(HALF).await.unwrap();
                    nginx.wait_for_reload(&before).await;
                    let before = nginx.workers();
                    let started = Instant::now();
                    to_safety(&lb).await;
                    nginx.wait_for_reload(&before).await;
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    drop(nginx);
    drop(upstreams);
}

criterion_group!(benches, haproxy, nginx);
criterion_main!(benches);

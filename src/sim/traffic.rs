//! The traffic generator: real HTTP requests at a steady rate, spread over a mix of routes,
//! sent through the lab's balancer to X's and Y's proxies, so the nodes' own counters (and
//! so `/metrics`) move as the split moves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::plan::steps::ClusterSide;

use super::balancer::SimBalancer;
use super::proxy::DEMO_API_KEY;

/// One kind of request in the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteShare {
    pub path: &'static str,
    /// Send the demo API key (`apikey` header).
    pub with_key: bool,
    /// Relative weight in the mix.
    pub weight: u32,
}

/// The default mix: mostly public routes, some authenticated, a few without a key (401).
pub const DEFAULT_MIX: &[RouteShare] = &[
    RouteShare {
        path: "/orders",
        with_key: false,
        weight: 6,
    },
    RouteShare {
        path: "/users",
        with_key: false,
        weight: 3,
    },
    RouteShare {
        path: "/secure",
        with_key: true,
        weight: 1,
    },
];

/// What the generator has seen, per cluster and status code; `failed` counts requests
/// that got no answer (refused, timed out, no ready proxy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficStats {
    pub sent: u64,
    pub by_cluster: BTreeMap<&'static str, BTreeMap<u16, u64>>,
    pub failed: u64,
}

impl TrafficStats {
    pub fn answered(&self, side: ClusterSide) -> u64 {
        self.by_cluster
            .get(side.as_str())
            .map_or(0, |codes| codes.values().sum())
    }
}

/// At most this many requests in flight; beyond, the generator skips a beat rather than
/// pile up.
const MAX_IN_FLIGHT: usize = 256;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the generator keeps a proxy's idle connection for its next request.
const POOL_IDLE: Duration = Duration::from_secs(2);

pub struct TrafficGenerator {
    task: JoinHandle<()>,
    stats: Arc<Mutex<TrafficStats>>,
    rps: f64,
}

impl TrafficGenerator {
    /// Starts sending `rps` requests a second (must be > 0) through `balancer`.
    pub fn start(balancer: Arc<SimBalancer>, rps: f64, mix: &'static [RouteShare]) -> Self {
        let stats = Arc::new(Mutex::new(TrafficStats::default()));
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            // A small lab's proxies see a request every few hundred milliseconds and keep
            // their connection; a fleet's, one every few seconds in the round-robin: kept,
            // a thousand idle connections' buffers on both their ends held 46 MB of a
            // 1 000-node demo's RSS at 3 min (`scripts/fleet_rss.sh demo 1000 3 15`).
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let task_stats = stats.clone();
        let period = Duration::from_secs_f64(1.0 / rps.max(0.001));
        let total_weight: u32 = mix.iter().map(|r| r.weight).sum();
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let share = pick_share(mix, total_weight);
                let target = balancer.pick();
                let client = client.clone();
                let stats = task_stats.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let outcome = match target {
                        None => None,
                        Some(target) => {
                            let mut request =
                                client.get(format!("{}{}", target.proxy_url, share.path));
                            if share.with_key {
                                request = request.header("apikey", DEMO_API_KEY);
                            }
                            request
                                .send()
                                .await
                                .ok()
                                .map(|r| (target.cluster, r.status().as_u16()))
                        }
                    };
                    let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
                    stats.sent += 1;
                    match outcome {
                        Some((cluster, code)) => {
                            *stats
                                .by_cluster
                                .entry(cluster.as_str())
                                .or_default()
                                .entry(code)
                                .or_insert(0) += 1;
                        }
                        None => stats.failed += 1,
                    }
                });
            }
        });
        TrafficGenerator { task, stats, rps }
    }

    pub fn rps(&self) -> f64 {
        self.rps
    }

    pub fn stats(&self) -> TrafficStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for TrafficGenerator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Requests [`serve_once`] keeps in flight at once.
const SERVE_ONCE_AT_ONCE: usize = 64;

/// Sends one request of the mix's first route to each of `proxy_urls`, 64 at a time, past
/// the balancer; what they answer is not kept (each node counts it).
pub async fn serve_once(proxy_urls: Vec<String>, mix: &[RouteShare]) {
    use futures::StreamExt;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let Some(share) = mix.first() else {
        return;
    };
    futures::stream::iter(proxy_urls)
        .map(|url| {
            let mut request = client.get(format!("{url}{}", share.path));
            if share.with_key {
                request = request.header("apikey", DEMO_API_KEY);
            }
            // A proxy that does not answer counts nothing; the traffic generator reaches
            // it later, as before.
            async move { drop(request.send().await) }
        })
        .buffer_unordered(SERVE_ONCE_AT_ONCE)
        .collect::<()>()
        .await;
}

fn pick_share(mix: &'static [RouteShare], total_weight: u32) -> &'static RouteShare {
    let mut point = rand::random_range(0..total_weight.max(1));
    for share in mix {
        if point < share.weight {
            return share;
        }
        point -= share.weight;
    }
    &mix[0]
}

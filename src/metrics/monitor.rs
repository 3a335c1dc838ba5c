//! The scraper: a tokio task that scrapes `/metrics` of every node of X and Y at an
//! interval, a bounded number at once, each within a timeout shorter than the round's, and
//! publishes a snapshot (with its history) and a gate verdict after every round. Nothing waits on it: readers take
//! the latest value from a `watch` channel, verdicts go out on a `broadcast` channel.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::kong::http::{self, HttpClientError};
use crate::plan::model::{FailAction, GateSpec, Node, Plan, TlsOptions};
use crate::plan::steps::ClusterSide;
use crate::secrets::Secret;

use super::aggregate::{ClusterTracker, ScrapeFailure};
use super::gates::GateEvaluator;
use super::history::{DEFAULT_HISTORY, SnapshotHistory};
use super::sample::NodeSample;
use super::scrape::{metrics_url, release_freed_memory, scrape_node};
use super::{GateVerdict, MetricsSnapshot, WaveScope};

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Verdicts kept for a slow reader before it starts missing some (it is told how many).
const VERDICT_BACKLOG: usize = 256;

/// One node to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub node: String,
    /// The full `/metrics` URL; `None` when the plan gives the node neither a Status API
    /// nor an Admin API URL (it counts as not scraped, with that reason).
    pub url: Option<String>,
}

impl ScrapeTarget {
    /// The node's Status API `/metrics`, else its Admin API `/metrics`.
    pub fn from_node(node: &Node) -> ScrapeTarget {
        ScrapeTarget {
            node: node.name.clone(),
            url: node
                .status_url
                .as_deref()
                .or(node.admin_url.as_deref())
                .map(metrics_url),
        }
    }
}

/// What the monitor scrapes and how often. The Admin token is held resolved, as a
/// [`Secret`] that `Debug` never shows.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub x: Vec<ScrapeTarget>,
    pub y: Vec<ScrapeTarget>,
    pub interval: Duration,
    /// Bound on one node's scrape, body included ([`scrape_timeout`]). A round ends after
    /// the longer of this and three quarters of the interval ([`round_timeout`]).
    pub timeout: Duration,
    /// The sliding window the figures (and gates) are computed over.
    pub window: Duration,
    /// How much snapshot history to keep for sparklines.
    pub history: Duration,
    /// Gates to judge after every round; `None` publishes no verdicts.
    pub gates: Option<GateSpec>,
    /// Sent as `Kong-Admin-Token`.
    pub admin_token: Option<Secret>,
}

impl MonitorConfig {
    /// Every node of X and Y, the default interval, the plan's gates and their window.
    /// `admin_token` is the resolved `plan.admin.token`.
    pub fn from_plan(plan: &Plan, admin_token: Option<Secret>) -> MonitorConfig {
        let targets = |nodes: &[Node]| nodes.iter().map(ScrapeTarget::from_node).collect();
        MonitorConfig {
            x: targets(&plan.clusters.x.nodes),
            y: targets(&plan.clusters.y.nodes),
            interval: DEFAULT_INTERVAL,
            timeout: scrape_timeout(DEFAULT_INTERVAL),
            window: plan.gates.window,
            history: DEFAULT_HISTORY,
            gates: Some(plan.gates.clone()),
            admin_token,
        }
    }
}

/// One node's scrape: two fifths of the interval (800 ms at the default 2 s), at least
/// 400 ms. Shorter than the round, so that a silent node costs one of the
/// [`SCRAPE_CONCURRENCY`] slots for that long, not the round, and is named with its timeout.
pub fn scrape_timeout(interval: Duration) -> Duration {
    interval.mul_f64(0.4).max(Duration::from_millis(400))
}

/// A round: three quarters of the interval, so that it ends before the next, and never
/// shorter than one scrape's `timeout`.
pub fn round_timeout(interval: Duration, timeout: Duration) -> Duration {
    interval.mul_f64(0.75).max(timeout)
}

/// The client the monitor scrapes with: `kong::http`'s, with the plan's TLS options and
/// `config.timeout`. It keeps a connection to each node between rounds only when the nodes
/// are no more than the scrapes in flight at once ([`SCRAPE_CONCURRENCY`]); a larger fleet
/// is read over a connection per scrape, which the node closes after its answer. A kept
/// connection holds hyper's buffers and channels (~26 KB, heaptrack) idle between rounds:
/// at 1 000 data planes per cluster, 2 000 of them were some 50 MB of `kongup run`. So
/// kongup holds at most [`SCRAPE_CONCURRENCY`] connections, and pays a TCP (and TLS)
/// handshake per scrape instead (README, "Figures"). The second value holds the warnings
/// to show the operator.
pub fn scrape_client(
    tls: &TlsOptions,
    config: &MonitorConfig,
) -> Result<(reqwest::Client, Vec<String>), HttpClientError> {
    let keep_idle = config.x.len() + config.y.len() <= SCRAPE_CONCURRENCY;
    http::client_pooled(tls, config.timeout, config.timeout, keep_idle)
}

#[derive(Debug)]
enum Control {
    ResetGates,
}

/// The running monitor. Dropping it stops the task.
#[derive(Debug)]
pub struct MonitorHandle {
    history: watch::Receiver<Arc<SnapshotHistory>>,
    verdicts: broadcast::Sender<GateVerdict>,
    control: mpsc::UnboundedSender<Control>,
    scope: watch::Sender<Option<WaveScope>>,
    on_fail: Option<FailAction>,
    task: tokio::task::JoinHandle<()>,
}

impl MonitorHandle {
    /// The newest snapshot; `None` before the first round has finished.
    pub fn latest(&self) -> Option<MetricsSnapshot> {
        self.history.borrow().latest().cloned()
    }

    /// The snapshots kept so far, oldest first (cheap: shared, not copied).
    pub fn history(&self) -> Arc<SnapshotHistory> {
        Arc::clone(&self.history.borrow())
    }

    /// A receiver that wakes on every new snapshot (`changed().await`), for the engine
    /// to turn into `Event::Metrics` and for the console to redraw.
    pub fn watch(&self) -> watch::Receiver<Arc<SnapshotHistory>> {
        self.history.clone()
    }

    /// Every gate verdict from now on, one per round.
    pub fn subscribe_verdicts(&self) -> broadcast::Receiver<GateVerdict> {
        self.verdicts.subscribe()
    }

    /// Forgets earlier breaches (a new traffic stage starts); takes effect before the
    /// next round's verdict.
    pub fn reset_gates(&self) {
        let _ = self.control.send(Control::ResetGates);
    }

    /// Where to say which wave bakes: the gates then judge that wave's nodes (`Some`), or
    /// the whole clusters (`None`, the start). A change forgets earlier breaches and takes
    /// effect at the next verdict; the snapshots still cover every node.
    pub fn scope(&self) -> watch::Sender<Option<WaveScope>> {
        self.scope.clone()
    }

    /// What the plan says to do on a failed gate; `None` when no gates are judged.
    pub fn on_fail(&self) -> Option<FailAction> {
        self.on_fail
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the monitor on the current tokio runtime. `client` comes from
/// `kong::http::client` with the plan's TLS options.
pub fn spawn(config: MonitorConfig, client: reqwest::Client) -> MonitorHandle {
    let history = SnapshotHistory::for_span(config.history, config.interval);
    let (history_tx, history_rx) = watch::channel(Arc::new(history));
    let (verdict_tx, _) = broadcast::channel(VERDICT_BACKLOG);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (scope_tx, scope_rx) = watch::channel(None);
    let on_fail = config.gates.as_ref().map(|g| g.on_fail);
    let task = tokio::spawn(run(
        config,
        client,
        history_tx,
        verdict_tx.clone(),
        control_rx,
        scope_rx,
    ));
    MonitorHandle {
        history: history_rx,
        verdicts: verdict_tx,
        control: control_tx,
        scope: scope_tx,
        on_fail,
        task,
    }
}

async fn run(
    config: MonitorConfig,
    client: reqwest::Client,
    history_tx: watch::Sender<Arc<SnapshotHistory>>,
    verdict_tx: broadcast::Sender<GateVerdict>,
    mut control_rx: mpsc::UnboundedReceiver<Control>,
    mut scope_rx: watch::Receiver<Option<WaveScope>>,
) {
    let names =
        |targets: &[ScrapeTarget]| targets.iter().map(|t| t.node.clone()).collect::<Vec<_>>();
    let mut x = ClusterTracker::new(names(&config.x), config.window);
    let mut y = ClusterTracker::new(names(&config.y), config.window);
    let mut evaluator = config.gates.clone().map(GateEvaluator::new);
    let mut history = Arc::clone(&history_tx.borrow());
    let token = config.admin_token.as_ref();

    // tokio's interval refuses a zero period; a tenth of a second is already plenty.
    let mut ticker = tokio::time::interval(config.interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(control) = control_rx.recv() => {
                match control {
                    Control::ResetGates => {
                        if let Some(evaluator) = evaluator.as_mut() {
                            evaluator.reset();
                        }
                    }
                }
                continue;
            }
        }
        let order = in_turn(config.x.len(), config.y.len());
        let results = scrape_round(
            &client,
            order.iter().map(|&(side, index)| match side {
                ClusterSide::X => &config.x[index],
                ClusterSide::Y => &config.y[index],
            }),
            token,
            config.timeout,
            round_timeout(config.interval, config.timeout),
        )
        .await;
        for (&(side, index), outcome) in order.iter().zip(results) {
            match side {
                ClusterSide::X => x.record_scrape(index, outcome),
                ClusterSide::Y => y.record_scrape(index, outcome),
            }
        }
        let now = Utc::now();
        let snapshot = MetricsSnapshot {
            at: now,
            x: x.figures(now),
            y: y.figures(now),
        };
        let verdict = evaluator.as_mut().map(|evaluator| {
            // Breaches counted over other nodes say nothing of these.
            if scope_rx.has_changed().unwrap_or(false) {
                evaluator.reset();
            }
            let scope = scope_rx.borrow_and_update();
            match scope.as_ref() {
                None => evaluator.evaluate(&snapshot),
                Some(wave) => evaluator
                    .evaluate_in(&wave_snapshot(&snapshot, &x, &y, wave), Some(wave.counts())),
            }
        });
        Arc::make_mut(&mut history).push(snapshot);
        history_tx.send_replace(Arc::clone(&history));
        if let Some(verdict) = verdict {
            // Sending fails only while nobody subscribes, and then nobody needs it.
            let _ = verdict_tx.send(verdict);
        }
    }
}

/// The figures of `wave`'s nodes over the window ending at `snapshot.at`. Y's empty
/// configurations stay the whole cluster's: its control planes report them, for any of its
/// data planes, and a data plane without configuration fails the gates in any wave.
fn wave_snapshot(
    snapshot: &MetricsSnapshot,
    x: &ClusterTracker,
    y: &ClusterTracker,
    wave: &WaveScope,
) -> MetricsSnapshot {
    let mut y_figures = y.figures_of(snapshot.at, |node| wave.y.contains(node));
    y_figures
        .empty_configuration
        .clone_from(&snapshot.y.empty_configuration);
    MetricsSnapshot {
        at: snapshot.at,
        x: x.figures_of(snapshot.at, |node| wave.x.contains(node)),
        y: y_figures,
    }
}

/// X's and Y's nodes taken in turn (then the larger cluster's rest): a round that runs out
/// before its end leaves some of each unread, never all of Y, whose figures the gates judge
/// against X's.
fn in_turn(x: usize, y: usize) -> Vec<(ClusterSide, usize)> {
    let mut order = Vec::with_capacity(x + y);
    for index in 0..x.max(y) {
        if index < x {
            order.push((ClusterSide::X, index));
        }
        if index < y {
            order.push((ClusterSide::Y, index));
        }
    }
    order
}

/// Scrapes in flight at once. A fleet's thousands of nodes all at once would open as many
/// connections at once and the machine kongup runs on (the lab's nodes too, in a demo)
/// would answer each the slower. Since bodies are parsed as they stream in, a scrape in
/// flight holds a few chunks, not its body, so the bound is set by latency: 1 000 nodes at
/// 128 at a time are 8 turns, under a second while a node answers within ~100 ms (a
/// remote region's round trip plus Kong's exposition); on loopback it is CPU-bound, and
/// `cargo bench --bench scrape_cycle` reads 1 000 nodes in well under that.
pub const SCRAPE_CONCURRENCY: usize = 128;

/// Scrapes the targets, [`SCRAPE_CONCURRENCY`] at a time (the next starts as soon as any
/// ends: a slow node holds one slot, never the others), results in the targets' order;
/// each result is a sample or why there is none. Each scrape has `timeout`, the round as a
/// whole `round`: a node whose turn comes after it is not scraped this round (said so), so
/// that slow nodes cannot push a round past the next.
pub async fn scrape_round(
    client: &reqwest::Client,
    targets: impl Iterator<Item = &ScrapeTarget>,
    token: Option<&Secret>,
    timeout: Duration,
    round: Duration,
) -> Vec<Result<NodeSample, ScrapeFailure>> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + round;
    // Collected first: a stream over a borrowing `map` is not `Send` for the spawned
    // monitor (rust-lang/rust#102211).
    let scrapes: Vec<_> = targets
        .enumerate()
        .map(|(index, target)| async move {
            let outcome = async {
                let Some(url) = &target.url else {
                    return Err(ScrapeFailure::new(
                        "no URL",
                        "no status_url or admin_url in the plan: nothing to scrape",
                    ));
                };
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(ScrapeFailure::new(
                        "round over",
                        format!(
                            "not scraped this round: the round's {round:?} ran out before its turn (nodes are read {SCRAPE_CONCURRENCY} at a time; slow or silent nodes hold a slot each until their {timeout:?})"
                        ),
                    ));
                }
                scrape_node(client, url, token, left.min(timeout))
                    .await
                    .map_err(|error| ScrapeFailure::new(error.brief(), error.to_string()))
            }
            .await;
            (index, outcome)
        })
        .collect();
    let count = scrapes.len();
    let mut results: Vec<Option<Result<NodeSample, ScrapeFailure>>> = Vec::new();
    results.resize_with(count, || None);
    let mut done = futures::stream::iter(scrapes).buffer_unordered(SCRAPE_CONCURRENCY);
    while let Some((index, outcome)) = done.next().await {
        results[index] = Some(outcome);
    }
    drop(done);
    if count > SCRAPE_CONCURRENCY {
        // The round's connections were opened and closed one per scrape.
        release_freed_memory();
    }
    results
        .into_iter()
        .map(|outcome| outcome.expect("every scrape ends with an outcome"))
        .collect()
}

// The test server is the lab's HTTP stack (axum), there with the `lab` feature.
#[cfg(all(test, feature = "lab"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A `/metrics` that counts the requests it holds at once (each held 20 ms).
    async fn counting_server() -> (String, Arc<AtomicUsize>) {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let app = {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let (in_flight, peak) = (in_flight.clone(), peak.clone());
                    async move {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        "kong_nginx_connections_total{node_id=\"n\",subsystem=\"http\",state=\"active\"} 1\n"
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, peak)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fleet_is_scraped_a_bounded_number_at_a_time_and_in_order() {
        let (url, peak) = counting_server().await;
        let targets: Vec<ScrapeTarget> = (0..300)
            .map(|i| ScrapeTarget {
                node: format!("dp-{i}"),
                url: Some(url.clone()),
            })
            .chain(std::iter::once(ScrapeTarget {
                node: "no-url".to_string(),
                url: None,
            }))
            .collect();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let results = scrape_round(
            &client,
            targets.iter(),
            None,
            Duration::from_secs(20),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(results.len(), 301);
        assert!(results[..300].iter().all(Result::is_ok), "{:?}", results[0]);
        assert!(
            results[300]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("nothing to scrape")
        );
        let peak = peak.load(Ordering::SeqCst);
        assert!(
            peak <= SCRAPE_CONCURRENCY,
            "{peak} scrapes held at once, more than {SCRAPE_CONCURRENCY}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_ends_on_time_and_names_the_nodes_it_could_not_reach() {
        let (url, _) = counting_server().await;
        // 20 ms each, 128 at a time: 1 280 nodes need 200 ms; the round has 50.
        let targets: Vec<ScrapeTarget> = (0..1280)
            .map(|i| ScrapeTarget {
                node: format!("dp-{i}"),
                url: Some(url.clone()),
            })
            .collect();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        let results = scrape_round(
            &client,
            targets.iter(),
            None,
            Duration::from_millis(50),
            Duration::from_millis(50),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
        let last = results.last().unwrap().as_ref().unwrap_err();
        assert!(last.reason.contains("not scraped this round"), "{last}");
        assert_eq!(last.brief, "round over");
    }
}

//! The scraper: a tokio task that scrapes `/metrics` of every node of X and Y at an
//! interval, all nodes at once and each within a timeout, and publishes a snapshot (with
//! its history) and a gate verdict after every round. Nothing waits on it: readers take
//! the latest value from a `watch` channel, verdicts go out on a `broadcast` channel.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::plan::model::{FailAction, GateSpec, Node, Plan};
use crate::secrets::Secret;

use super::aggregate::ClusterTracker;
use super::gates::GateEvaluator;
use super::history::{DEFAULT_HISTORY, SnapshotHistory};
use super::sample::NodeSample;
use super::scrape::{metrics_url, scrape_node};
use super::{GateVerdict, MetricsSnapshot};

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
    /// Bound on one node's scrape, body included.
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
            timeout: default_timeout(DEFAULT_INTERVAL),
            window: plan.gates.window,
            history: DEFAULT_HISTORY,
            gates: Some(plan.gates.clone()),
            admin_token,
        }
    }
}

/// Three quarters of the interval, at least half a second: a round ends before the next.
pub fn default_timeout(interval: Duration) -> Duration {
    interval.mul_f64(0.75).max(Duration::from_millis(500))
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
    let on_fail = config.gates.as_ref().map(|g| g.on_fail);
    let task = tokio::spawn(run(
        config,
        client,
        history_tx,
        verdict_tx.clone(),
        control_rx,
    ));
    MonitorHandle {
        history: history_rx,
        verdicts: verdict_tx,
        control: control_tx,
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
        let (x_results, y_results) = tokio::join!(
            scrape_targets(&client, &config.x, token, config.timeout),
            scrape_targets(&client, &config.y, token, config.timeout)
        );
        for (index, outcome) in x_results.into_iter().enumerate() {
            x.record(index, outcome);
        }
        for (index, outcome) in y_results.into_iter().enumerate() {
            y.record(index, outcome);
        }
        let now = Utc::now();
        let snapshot = MetricsSnapshot {
            at: now,
            x: x.figures(now),
            y: y.figures(now),
        };
        let verdict = evaluator.as_mut().map(|e| e.evaluate(&snapshot));
        Arc::make_mut(&mut history).push(snapshot);
        history_tx.send_replace(Arc::clone(&history));
        if let Some(verdict) = verdict {
            // Sending fails only while nobody subscribes, and then nobody needs it.
            let _ = verdict_tx.send(verdict);
        }
    }
}

/// Scrapes every target at once; each result is a sample or why there is none.
async fn scrape_targets(
    client: &reqwest::Client,
    targets: &[ScrapeTarget],
    token: Option<&Secret>,
    timeout: Duration,
) -> Vec<Result<NodeSample, String>> {
    futures::future::join_all(targets.iter().map(|target| async move {
        match &target.url {
            Some(url) => scrape_node(client, url, token, timeout)
                .await
                .map_err(|error| error.to_string()),
            None => Err("no status_url or admin_url in the plan: nothing to scrape".to_string()),
        }
    }))
    .await
}

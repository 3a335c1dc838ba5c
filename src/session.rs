//! What runs beside the engine during a live run: the metrics monitor, whose gate verdicts
//! the engine's bakes wait on, and the topology watcher. Both feed the engine's side-event
//! channel, so the console and `--plain` see them like any other event.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::Toolbox;
use crate::engine::event::Event;
use crate::fd_limit;
use crate::kong::client::AdminClient;
use crate::kong::database::KongDatabase;
use crate::kong::watch::TopologyWatcher;
use crate::metrics::GateVerdict;
use crate::metrics::monitor::{self, MonitorConfig, MonitorHandle};
use crate::plan::model::Plan;
use crate::plan::steps::ClusterSide;
use crate::secrets::Secret;

/// How often the console's topology is refreshed.
pub const TOPOLOGY_INTERVAL: Duration = Duration::from_secs(5);

/// Where the live figures come from.
pub struct LiveSources {
    /// Reads the Admin APIs for the topology pane (short timeout, no retries: a slow node
    /// must not delay the next refresh).
    pub admin: AdminClient,
    /// The resolved `admin.token`, sent with every scrape.
    pub admin_token: Option<Secret>,
    /// Databases whose migration state the topology pane shows (`KongAccess::databases`).
    pub databases: Vec<(ClusterSide, Arc<dyn KongDatabase>)>,
    pub metrics_interval: Duration,
    pub topology_interval: Duration,
}

/// The running monitor and watcher; dropping it stops them.
pub struct LiveSupport {
    monitor: MonitorHandle,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl LiveSupport {
    pub fn monitor(&self) -> &MonitorHandle {
        &self.monitor
    }
}

impl Drop for LiveSupport {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client that scrapes /metrics: {0}; check admin.tls in the plan")]
pub struct LiveSupportError(String);

/// Starts the monitor and the watcher on the current runtime, gives the toolbox the gate
/// verdicts, and returns the side events for `RunSetup::side_events`.
pub fn start(
    plan: &Arc<Plan>,
    sources: LiveSources,
    toolbox: &mut Toolbox,
) -> Result<(LiveSupport, mpsc::UnboundedReceiver<Event>), LiveSupportError> {
    let (gate_tx, gate_rx) = watch::channel::<Option<GateVerdict>>(None);
    toolbox.gates = Some(gate_rx);
    let (live, side_events) = start_with(plan, sources, |monitor, _, cancel| {
        forward_verdicts(monitor, gate_tx, cancel)
    })?;
    // The engine says which wave bakes; the gates then judge its nodes.
    toolbox.gate_scope = Some(live.monitor.scope());
    Ok((live, side_events))
}

/// Starts the monitor and the watcher for `kongup watch`: the verdicts go to the events
/// (`Event::Gate`), as the engine passes them on to a driver's console; nothing acts on them.
pub fn start_watching(
    plan: &Arc<Plan>,
    sources: LiveSources,
) -> Result<(LiveSupport, mpsc::UnboundedReceiver<Event>), LiveSupportError> {
    start_with(plan, sources, |monitor, side_tx, cancel| {
        let mut verdicts = monitor.subscribe_verdicts();
        tokio::spawn(async move {
            loop {
                let verdict = tokio::select! {
                    _ = cancel.cancelled() => return,
                    verdict = verdicts.recv() => verdict,
                };
                match verdict {
                    Ok(verdict) => {
                        if side_tx.send(Event::Gate(verdict)).is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    })
}

/// The monitor, the snapshots' forwarding and the topology watcher; `verdicts` starts what
/// takes the gate verdicts.
fn start_with(
    plan: &Arc<Plan>,
    sources: LiveSources,
    verdicts: impl FnOnce(
        &MonitorHandle,
        mpsc::UnboundedSender<Event>,
        CancellationToken,
    ) -> JoinHandle<()>,
) -> Result<(LiveSupport, mpsc::UnboundedReceiver<Event>), LiveSupportError> {
    let (side_tx, side_rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let mut config = MonitorConfig::from_plan(plan, sources.admin_token);
    config.interval = sources.metrics_interval;
    config.timeout = monitor::scrape_timeout(sources.metrics_interval);
    // What runs here reads the monitor's latest snapshot only (the console keeps its own
    // history for the sparklines): ten minutes of a fleet's snapshots were held twice.
    config.history = sources.metrics_interval;
    let (client, warnings) = monitor::scrape_client(&plan.admin.tls, &config)
        .map_err(|error| LiveSupportError(error.to_string()))?;
    for warning in warnings {
        // The receiver is ours until it is returned: this cannot fail.
        let _ = side_tx.send(Event::Warning(format!("metrics: {warning}")));
    }
    if let Some(warning) = fd_limit::shortfall(plan, fd_limit::needed_live(plan)) {
        let _ = side_tx.send(Event::Warning(warning));
    }
    let monitor = monitor::spawn(config, client);

    let mut tasks = vec![
        verdicts(&monitor, side_tx.clone(), cancel.clone()),
        forward_snapshots(&monitor, side_tx.clone(), cancel.clone()),
    ];

    let watcher = TopologyWatcher::new(sources.admin, plan.clone(), sources.databases);
    tasks.push(spawn_topology_watcher(
        watcher,
        sources.topology_interval,
        side_tx,
        cancel.clone(),
    ));
    Ok((
        LiveSupport {
            monitor,
            cancel,
            tasks,
        },
        side_rx,
    ))
}

/// Every verdict goes to the engine with its fresh `at`: a bake trusts only verdicts
/// evaluated after it began.
fn forward_verdicts(
    monitor: &MonitorHandle,
    gate_tx: watch::Sender<Option<GateVerdict>>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut verdicts = monitor.subscribe_verdicts();
    tokio::spawn(async move {
        loop {
            let verdict = tokio::select! {
                _ = cancel.cancelled() => return,
                verdict = verdicts.recv() => verdict,
            };
            match verdict {
                Ok(verdict) => {
                    if gate_tx.send(Some(verdict)).is_err() {
                        return;
                    }
                }
                // Only the newest verdict matters to a bake; skipped ones are not lost
                // from the record, the monitor keeps evaluating.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// The metrics monitor's latest snapshot, as an `Event::Metrics`, each time it changes.
fn forward_snapshots(
    monitor: &MonitorHandle,
    side_tx: mpsc::UnboundedSender<Event>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut history = monitor.watch();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = history.changed() => if changed.is_err() { return },
            }
            let latest = history.borrow_and_update().latest().cloned();
            if let Some(snapshot) = latest
                && side_tx.send(Event::Metrics(snapshot)).is_err()
            {
                return;
            }
        }
    })
}

/// Runs the watcher every `interval` until `cancel`, sending `Event::Topology` each time and
/// `Event::Warning` for each new drift (into the engine's `side_events`, for one). Stops
/// when the receiver is gone.
pub fn spawn_topology_watcher(
    mut watcher: TopologyWatcher,
    interval: Duration,
    events: mpsc::UnboundedSender<Event>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let (snapshot, warnings) = tokio::select! {
                _ = cancel.cancelled() => return,
                polled = watcher.poll() => polled,
            };
            if events.send(Event::Topology(snapshot)).is_err() {
                return;
            }
            for warning in warnings {
                if events.send(Event::Warning(warning)).is_err() {
                    return;
                }
            }
        }
    })
}

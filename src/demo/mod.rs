//! `kongup demo` and `kongup run --rehearse`: a run of the real engine against the
//! simulated lab. Nothing is installed and nothing leaves loopback.
//!
//! A demo starts the lab of a scenario (Y not yet deployed), writes the scenario's plan
//! into the run directory (or reads it back there, when the run is resumed), loads it with
//! the real loader, fits its node URLs to the lab (see [`fit`]), starts the traffic (X
//! serves first, as before any upgrade), rebuilds the lab from the journal when there is
//! one (see [`replay`]), applies the faults asked for, and starts the metrics monitor, the
//! topology watcher and the engine, all as `kongup run` would, with lab executors in place
//! of real ones (see [`executors`]).
//!
//! ```ignore
//! let demo = demo::start(DemoOptions::new(Scenario::Hybrid, run_dir)).await?;
//! // demo.engine: the engine's handle (commands, events); demo.lab: the lab itself.
//! ```

#[cfg(feature = "console")]
pub mod console;
pub mod database;
pub mod executors;
pub mod fit;
pub mod rehearse;
pub mod replay;
pub mod stand_ins;
pub mod twins;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::actions::{
    self,
    kong::{DeclarativeBackup, KongAccess, NodesWait, Waits, is_node_step},
};
use crate::engine::journal::JournalError;
use crate::engine::lock::RunLock;
use crate::engine::rundir::{create_private_dir, default_run_dir};
use crate::engine::step::{ActionFor, ActionRegistry, StepAction, resolve_plan_secrets};
use crate::engine::{
    EngineError, EngineHandle, Event, Operator, RunOptions, RunSetup, RunState, SessionEnd,
    Toolbox, local_operator,
};
use crate::kong::client::{AdminClient, AdminClientOptions};
use crate::kong::database::KongDatabase;
use crate::lb::{TrafficDriver, driver_for};
use crate::plain::{self, PlainSetup};
use crate::plan::load::{LoadedPlan, PlanErrors, parse_plan};
use crate::plan::model::{Plan, Role};
use crate::plan::steps::{BackupKind, ClusterSide, ExpandedPlan, StepKind};
use crate::secrets::{Redactor, Secret};
use crate::session::{self, LiveSources, LiveSupport, LiveSupportError};
use crate::sim::node::Lifecycle;
use crate::sim::scenarios::{self, DEMO_SCHEDULE, DemoPacing, demo_plan_yaml_with};
use crate::sim::{Fault, Lab, LabError, LabOptions, MetricsFlags, Scenario};

use self::database::LabDatabase;
pub use self::replay::Rebuilt;

/// The plan file a demo keeps in its run directory.
pub const PLAN_FILE: &str = "plan.yaml";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{errors}\n{}: the plan has errors; nothing was run", path.display())]
    Plan { path: PathBuf, errors: PlanErrors },
    #[error(
        "{} is not a plan for the {scenario} lab ({}); pass the scenario it was written for \
         with --scenario, or another --journal DIR",
        path.display(),
        why.join("; ")
    )]
    NotThisLab {
        path: PathBuf,
        scenario: Scenario,
        why: Vec<String>,
    },
    #[error("could not start the lab: {0}")]
    Lab(#[from] LabError),
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read the run's journal to rebuild the lab: {0}")]
    Journal(#[from] JournalError),
    #[error("could not rebuild the lab from the journal: {0}")]
    Rebuild(String),
    #[error("could not inject the fault {fault}: {source}")]
    Fault {
        fault: Fault,
        #[source]
        source: LabError,
    },
    #[error("{0}")]
    Toolbox(String),
    #[error(transparent)]
    Live(#[from] LiveSupportError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the console: {0}")]
    Console(String),
}

/// How a demo starts.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub scenario: Scenario,
    /// The run directory: the plan, the journal, the logs.
    pub run_dir: PathBuf,
    /// How many times faster than real time the lab's commands run; a new demo's plan
    /// also bakes that much shorter (see [`pacing_for_speed`]).
    pub speed: f64,
    /// Injected once the lab is up (and rebuilt).
    pub faults: Vec<Fault>,
    /// Resume even though the plan in the run directory changed.
    pub accept_plan_change: bool,
    /// The engine handles SIGHUP, SIGTERM and SIGINT (a process of its own; not in tests).
    pub handle_signals: bool,
    pub operator: Operator,
    /// The lab's prometheus plugin flags (on unless a test turns one off, as Kong's
    /// defaults would).
    pub metrics_flags: MetricsFlags,
    /// Values the redactor hides besides the plan's secrets: the `--notify-webhook` URLs.
    pub secrets: Vec<Secret>,
    /// Data planes per cluster of the hybrid lab (`--data-planes`); `None`: the scenario's.
    pub data_planes: Option<usize>,
}

impl DemoOptions {
    pub fn new(scenario: Scenario, run_dir: PathBuf) -> DemoOptions {
        DemoOptions {
            scenario,
            run_dir,
            speed: 1.0,
            faults: Vec::new(),
            accept_plan_change: false,
            handle_signals: false,
            operator: local_operator(),
            metrics_flags: MetricsFlags::ALL_ON,
            secrets: Vec::new(),
            data_planes: None,
        }
    }
}

/// A started demo (or rehearsal). Dropping it stops the monitor and, once the engine has
/// stopped and the last handle is gone, the lab.
pub struct DemoRun {
    pub lab: Lab,
    pub engine: EngineHandle,
    /// The plan as the engine runs it: node URLs fitted to the lab.
    pub plan: Arc<Plan>,
    pub expanded: Arc<ExpandedPlan>,
    pub toolbox: Toolbox,
    pub live: LiveSupport,
    /// Where the plan's text is (a demo's `plan.yaml`, a rehearsal's own plan file).
    pub plan_path: PathBuf,
    /// What rebuilding the lab from the journal did (empty for a new run).
    pub rebuilt: Rebuilt,
    /// Into the engine's side events: a line the console and `--plain` show (the lab's
    /// answer to a fault key).
    pub notices: mpsc::UnboundedSender<Event>,
    /// What the lab stands in for (a rehearsal's smoke-test routes and key), for the intro.
    pub stand_ins: Vec<String>,
}

/// The bakes and gates of a new demo at `speed`: real time at 1 (20 s bakes, a 15 s
/// window), shorter as the speed goes up, never under 2 s, with fewer requests needed for
/// a verdict once the window is short.
pub fn pacing_for_speed(speed: f64) -> DemoPacing {
    let real = DemoPacing::default();
    if !speed.is_finite() || speed <= 1.0 {
        return real;
    }
    let floor = Duration::from_secs(2);
    let gate_window = real.gate_window.div_f64(speed).max(floor);
    DemoPacing {
        // Longer than the window, so the last verdict of a bake judges only its stage.
        bake: real.bake.div_f64(speed).max(gate_window.mul_f64(1.5)),
        gate_window,
        min_requests: if gate_window < Duration::from_secs(5) {
            10
        } else {
            real.min_requests
        },
    }
}

/// `pacing` for a hybrid demo of `data_planes` that rolls in waves: the first wave gets a
/// small share of the traffic (5 %), so the gate window widens (up to the real-time one)
/// until that share gets six times the requests a verdict needs, and to three of the fleet's scrape
/// rounds; each bake outlasts the window by half, as
/// [`pacing_for_speed`] has it.
fn fleet_pacing(scenario: Scenario, data_planes: usize, pacing: &DemoPacing) -> DemoPacing {
    let waves = match scenario {
        Scenario::Hybrid => scenarios::demo_waves(data_planes),
        _ => None,
    };
    let Some(first) = waves.as_ref().and_then(|w| w.first()) else {
        return *pacing;
    };
    // Y's share rounded up to a whole percent, as plan::waves has it.
    let percent = (first.of(data_planes).min(data_planes) * 100).div_ceil(data_planes);
    let first_share = percent as f64 / 100.0;
    // And three scrapes of the whole lab (both clusters' data planes, a control plane
    // each) in a window, whole seconds.
    let scrapes = fleet_scrape_interval(2 * data_planes + 2).mul_f64(3.0);
    // Six times the requests a verdict needs rather than twice, as the default demo's
    // first stage has about (10 % of the traffic in a 2 s window): on a loaded machine the
    // lab's traffic falls well short of its rate (a quarter of it, seen with two fleet
    // demos at once at a load average of 12).
    let gate_window = window_for_share(
        pacing.gate_window,
        3 * pacing.min_requests,
        first_share,
        DemoPacing::default().gate_window,
    )
    .max(Duration::from_secs(scrapes.as_secs_f64().ceil() as u64));
    DemoPacing {
        gate_window,
        bake: pacing.bake.max(gate_window.mul_f64(1.5)),
        min_requests: pacing.min_requests,
    }
}

/// The plan a new demo of `scenario` writes: the scenario's demo plan (sim executors, the
/// lab's balancer behind a command driver) with stable node addresses, for a lab of
/// `data_planes` per cluster (`None`: the scenario's own size).
pub fn demo_plan_text(
    scenario: Scenario,
    data_planes: Option<usize>,
    pacing: &DemoPacing,
) -> Result<String, DemoError> {
    let size = scenarios::data_planes_for(scenario, data_planes).map_err(LabError::from)?;
    let stable = fit::stable_endpoints(&scenarios::topology_sized(scenario, size));
    let pacing = fleet_pacing(scenario, size, pacing);
    let yaml = demo_plan_yaml_with(scenario, &stable, &pacing);
    Ok(format!(
        "# Node URLs are stable names, not addresses: each kongup process maps them to the\n\
         # lab's loopback ports, so this file (and its hash in the journal) never changes.\n{yaml}"
    ))
}

/// The run directory `kongup run` would use for the scenario's demo plan.
pub fn default_demo_run_dir(
    scenario: Scenario,
    data_planes: Option<usize>,
) -> Result<Option<PathBuf>, DemoError> {
    let text = demo_plan_text(scenario, data_planes, &DemoPacing::default())?;
    let loaded = load_text(&text, Path::new(PLAN_FILE))?;
    Ok(default_run_dir(&loaded.plan.name))
}

fn load_text(text: &str, path: &Path) -> Result<LoadedPlan, DemoError> {
    parse_plan(text, &path.display().to_string()).map_err(|errors| DemoError::Plan {
        path: path.to_path_buf(),
        errors,
    })
}

/// The demo's plan: the one in the run directory when there is one (a resumed demo),
/// else a new one written there. The run's lock is taken first, so a second demo on the
/// same directory is told who holds it and never sees a plan half-written.
async fn plan_in_run_dir(options: &DemoOptions) -> Result<(PathBuf, String, RunLock), DemoError> {
    if !options.run_dir.exists() {
        create_private_dir(&options.run_dir).map_err(|source| DemoError::Io {
            what: "create the run directory",
            path: options.run_dir.clone(),
            source,
        })?;
    }
    let lock = RunLock::acquire(&options.run_dir, &options.operator.0)
        .map_err(|e| DemoError::Engine(e.into()))?;
    let path = options.run_dir.join(PLAN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok((path, text, lock)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DemoError::Io {
                what: "read",
                path,
                source,
            });
        }
    }
    let text = demo_plan_text(
        options.scenario,
        options.data_planes,
        &pacing_for_speed(options.speed),
    )?;
    write_private(&path, &text)?;
    Ok((path, text, lock))
}

/// Writes `text` to `path` whole or not at all: through a temporary file beside it, synced,
/// then renamed over (a full disk leaves no empty plan that would block every resume).
fn write_private(path: &Path, text: &str) -> Result<(), DemoError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension(format!("yaml.{}.tmp", std::process::id()));
    let io = |what: &'static str, at: &Path| {
        let at = at.to_path_buf();
        move |source| DemoError::Io {
            what,
            path: at,
            source,
        }
    };
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .map_err(io("write", &temporary));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::rename(&temporary, path).map_err(io("rename into place", path))?;
    // The new name must survive a power loss too.
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the directory", dir)),
        None => Ok(()),
    }
}

/// The most requests a second a lab run sends: more would load the machine it runs on.
pub const LAB_MAX_RPS: f64 = 250.0;

/// Y's share of the traffic at the plan's first stage, as a fraction: its first wave's
/// when it rolls in waves (one node of a fleet: 1 %, say), else its schedule's.
pub fn first_stage_share(plan: &Plan) -> f64 {
    let waves = crate::plan::waves::waves(plan);
    let stages: Vec<u8> = if waves.is_empty() {
        plan.traffic.schedule.clone()
    } else {
        waves.iter().map(|w| w.y_percent).collect()
    };
    let percent = stages
        .into_iter()
        .filter(|y| *y > 0)
        .min()
        .unwrap_or(DEMO_SCHEDULE[0]);
    f64::from(percent) / 100.0
}

/// The gate window that gives Y, at `first_share` of the lab's traffic at its most, twice
/// the requests a verdict needs (so a verdict does not hang on chance): `window` widened
/// up to `cap`, never narrowed.
pub fn window_for_share(
    window: Duration,
    min_requests: u64,
    first_share: f64,
    cap: Duration,
) -> Duration {
    let enough_for_y =
        Duration::from_secs_f64(2.0 * min_requests.max(1) as f64 / (LAB_MAX_RPS * first_share));
    window.max(enough_for_y.min(cap))
}

/// Requests a second that give Y, at the first traffic stage, three times the requests its
/// gates need in a window; between 20 and [`LAB_MAX_RPS`].
pub fn traffic_rps_for(plan: &Plan) -> f64 {
    let window = plan.gates.window.as_secs_f64().max(1.0);
    let needed = 3.0 * plan.gates.min_requests.max(1) as f64;
    (needed / (first_stage_share(plan) * window)).clamp(20.0, LAB_MAX_RPS)
}

/// The longest a lab run waits for X's proxies to serve their first requests.
const FIRST_REQUESTS_WAIT: Duration = Duration::from_secs(5);

/// Has every running X node that proxies serve a request (while the balancer sends X any:
/// one each at once, [`Lab::serve_first_requests`]), and waits until they have or
/// [`FIRST_REQUESTS_WAIT`] has passed. Kong exports `kong_http_requests_total` and the
/// latency histograms from a node's first request on, and preflight looks for them as on a
/// live X: a lab X that has served nothing yet would look like one with the prometheus
/// flags off.
async fn wait_for_first_requests(lab: &Lab) {
    let sends_to_x = lab
        .traffic_driver()
        .read_split()
        .await
        .is_ok_and(|split| split.is_some_and(|s| s.x > 0));
    if !sends_to_x {
        return;
    }
    lab.serve_first_requests().await;
    let idle_x_proxy = || {
        lab.nodes().iter().any(|node| {
            node.cluster == ClusterSide::X
                && node.role != Role::ControlPlane
                && node.lifecycle == Lifecycle::Running
                && node.served_by_code.is_empty()
        })
    };
    let deadline = tokio::time::Instant::now() + FIRST_REQUESTS_WAIT;
    while idle_x_proxy() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How often the monitor scrapes: six times a window, between 250 ms and 2 s; for a
/// fleet, no less than [`fleet_scrape_interval`] of its nodes.
fn metrics_interval(plan: &Plan) -> Duration {
    let nodes = plan.clusters.x.nodes.len() + plan.clusters.y.nodes.len();
    (plan.gates.window / 6)
        .clamp(Duration::from_millis(250), Duration::from_secs(2))
        .max(fleet_scrape_interval(nodes))
}

/// A scrape interval whose round (three quarters of it) reads every one of `nodes` lab
/// nodes: each lab node serves its own `/metrics` in this process, and a round over 402
/// of them took about 1 s (a debug build, the machine's load average 13; 64 at a time,
/// measured from outside). A shorter round ends before Y's nodes, read after X's, have
/// their turn, and the gates then have nothing of Y to judge.
fn fleet_scrape_interval(nodes: usize) -> Duration {
    Duration::from_millis(10).saturating_mul(u32::try_from(nodes).unwrap_or(u32::MAX))
}

/// How the lab's Admin APIs are read: loopback answers at once, or not at all.
fn lab_admin_options() -> AdminClientOptions {
    AdminClientOptions {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        read_attempts: 1,
        ..AdminClientOptions::default()
    }
}

fn lab_admin_client() -> Result<AdminClient, DemoError> {
    let (client, _) = AdminClient::new(lab_admin_options())
        .map_err(|e| DemoError::Toolbox(format!("the Admin API client for the lab: {e}")))?;
    Ok(client)
}

/// How the Kong actions reach the lab: its Admin APIs and its simulated databases, with
/// waits that suit nodes that start in seconds.
fn kong_access(lab: &Lab) -> Result<KongAccess, DemoError> {
    let database = |side| LabDatabase::of(lab, side).map(|d| Arc::new(d) as Arc<dyn KongDatabase>);
    let access = KongAccess::new(
        lab_admin_options(),
        database(ClusterSide::X),
        database(ClusterSide::Y),
    )
    .map_err(|e| DemoError::Toolbox(format!("the Kong actions' access to the lab: {e}")))?;
    Ok(access.with_waits(Waits {
        nodes: Duration::from_secs(60),
        poll: Duration::from_millis(250),
        progress: Duration::from_secs(5),
        smoke_request: Duration::from_secs(5),
        tools: Duration::from_secs(60),
    }))
}

/// The built-in actions, with the lab's stand-ins replacing two of them.
fn lab_actions(lab: &Lab, access: &KongAccess) -> ActionRegistry {
    let mut registry = actions::builtins(Some(access.clone()));
    // Replaces the Kong node waits: node steps go through [`twins::LabNodes`], which acts
    // on the lab's nodes, then waits as the Kong action does.
    let wait: Arc<dyn StepAction> = Arc::new(NodesWait::new(Arc::new(access.clone())));
    registry.register(
        is_node_step,
        Arc::new(twins::LabNodes {
            lab: lab.clone(),
            inner: Some(wait),
        }),
    );
    // Replaces the declarative backup: it reads the lab's stand-in for the plan's file
    // (see [`stand_ins`]).
    registry.register(
        |t| {
            matches!(
                t,
                ActionFor::Step(StepKind::Backup(BackupKind::Declarative))
            )
        },
        Arc::new(stand_ins::LabDeclarativeBackup {
            inner: Arc::new(DeclarativeBackup::new(Arc::new(access.clone()))),
        }),
    );
    registry
}

/// What [`launch`] needs beyond the lab: the plan, where its run lives, and the traffic
/// driver the engine moves traffic with.
struct Launch {
    loaded: LoadedPlan,
    plan_path: PathBuf,
    run_dir: PathBuf,
    traffic: TrafficChoice,
    redactor: Redactor,
    faults: Vec<Fault>,
    options: RunOptions,
    operator: Operator,
    /// The run's lock, when the caller took it (a demo, before writing its plan).
    lock: Option<RunLock>,
}

/// Which traffic driver a lab run uses.
enum TrafficChoice {
    /// The plan's own driver, built over the lab executors (a demo plan's `lab split`).
    PlanDriver,
    /// The lab's balancer in place of the plan's driver (a rehearsal).
    LabBalancer,
}

/// Everything after the lab is up: fit the plan, traffic, rebuild the lab, faults, live
/// support, the engine.
async fn launch(lab: Lab, launch: Launch) -> Result<DemoRun, DemoError> {
    let Launch {
        loaded,
        plan_path,
        run_dir,
        traffic,
        redactor,
        faults,
        options,
        operator,
        lock,
    } = launch;
    let mut plan = loaded.plan;
    let endpoints = lab.endpoints();
    fit::fit_urls(&mut plan, &endpoints);
    let expanded = Arc::new(loaded.expanded);

    // X serves before anything is rebuilt, as a live X served before the upgrade began:
    // its proxies' request counters and latency histograms exist from then on, for
    // preflight and for the gates that compare Y with X, even once a resumed run's journal
    // has moved all the traffic to Y.
    lab.start_traffic(traffic_rps_for(&plan));
    wait_for_first_requests(&lab).await;
    let replay_executors = executors::lab_executors(&lab, &plan, Some(f64::INFINITY));
    let rebuilt =
        replay::rebuild_from_journal(&lab, &plan, &expanded, &run_dir, &replay_executors).await?;
    for fault in &faults {
        lab.apply_fault(fault)
            .await
            .map_err(|source| DemoError::Fault {
                fault: fault.clone(),
                source,
            })?;
    }

    let executors = executors::lab_executors(&lab, &plan, None);
    let driver: Arc<dyn TrafficDriver> = match traffic {
        TrafficChoice::PlanDriver => driver_for(&plan.traffic.driver, &executors)
            .map_err(|e| DemoError::Toolbox(format!("{}: {e}", plan_path.display())))?,
        TrafficChoice::LabBalancer => lab.traffic_driver(),
    };
    let access = kong_access(&lab)?;
    let mut toolbox = Toolbox::new(driver, redactor, lab_actions(&lab, &access));
    toolbox.executors = executors;

    let plan = Arc::new(plan);
    let (live, side_events) = session::start(
        &plan,
        LiveSources {
            admin: lab_admin_client()?,
            admin_token: None,
            databases: access.databases(),
            metrics_interval: metrics_interval(&plan),
            topology_interval: Duration::from_secs(2),
        },
        &mut toolbox,
    )?;
    // The engine reads one side channel: the live support's events and the demo's own.
    let (notices, merged) = mpsc::unbounded_channel();
    let forward = notices.clone();
    let mut side_events = side_events;
    tokio::spawn(async move {
        while let Some(event) = side_events.recv().await {
            if forward.send(event).is_err() {
                return;
            }
        }
    });
    let engine = crate::engine::spawn(RunSetup {
        plan: plan.clone(),
        expanded: expanded.clone(),
        plan_text: loaded.source,
        run_dir,
        operator,
        toolbox: toolbox.clone(),
        options,
        side_events: Some(merged),
        lock,
    })?;
    Ok(DemoRun {
        lab,
        engine,
        plan,
        expanded,
        toolbox,
        live,
        plan_path,
        rebuilt,
        notices,
        stand_ins: Vec::new(),
    })
}

/// Starts a demo: see the module documentation. Call it inside a tokio runtime.
pub async fn start(options: DemoOptions) -> Result<DemoRun, DemoError> {
    if !options.speed.is_finite() || options.speed <= 0.0 {
        return Err(DemoError::Lab(LabError::Fault(format!(
            "--speed {} is not a positive factor (1 is real time, 10 ten times faster)",
            options.speed
        ))));
    }
    // Before the run directory is made: a size the lab refuses leaves nothing behind.
    scenarios::data_planes_for(options.scenario, options.data_planes).map_err(LabError::from)?;
    let (plan_path, text, lock) = plan_in_run_dir(&options).await?;
    let loaded = load_text(&text, &plan_path)?;
    let lab = Lab::start(
        options.scenario,
        LabOptions {
            y_deployed: false,
            traffic_rps: 0.0,
            faults: Vec::new(),
            metrics_flags: options.metrics_flags,
            speed: options.speed,
            data_planes: options.data_planes,
            ..LabOptions::default()
        },
    )
    .await?;
    let why = fit::misfits(&loaded.plan, &lab.endpoints());
    if !why.is_empty() {
        return Err(DemoError::NotThisLab {
            path: plan_path,
            scenario: options.scenario,
            why,
        });
    }
    // A demo plan names no secrets; one edited to name some still gets them redacted.
    let mut redactor = resolve_plan_secrets(&loaded.plan).map_err(|errors| {
        DemoError::Toolbox(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    for secret in &options.secrets {
        redactor.add(secret.expose().to_string());
    }
    launch(
        lab,
        Launch {
            loaded,
            plan_path,
            run_dir: options.run_dir,
            traffic: TrafficChoice::PlanDriver,
            redactor,
            faults: options.faults,
            options: RunOptions {
                accept_plan_change: options.accept_plan_change,
                handle_signals: options.handle_signals,
            },
            operator: options.operator,
            lock: Some(lock),
        },
    )
    .await
}

/// A lab run's exit status, as `kongup run`'s: 1 when it could not start (`started` is
/// false); once it opened, 0 when done, 3 when it ended by a completed rollback, else 2
/// (stopped before the end, resumable), also when it failed (its journal holds every
/// record written before the failure).
pub fn exit_code(started: bool, end: &Result<SessionEnd, DemoError>) -> i32 {
    match end {
        Ok(end) if end.state == RunState::Done => 0,
        Ok(end) if end.state == RunState::RolledBack => 3,
        Err(_) if !started => 1,
        _ => 2,
    }
}

/// Drives a started lab run with line commands on stdin (`--plain`), `intro` first.
pub async fn drive_plain(run: DemoRun, intro: &[String]) -> Result<SessionEnd, DemoError> {
    use std::io::{IsTerminal, Write};
    let DemoRun {
        lab,
        engine,
        plan,
        expanded,
        toolbox,
        live,
        ..
    } = run;
    {
        let mut out = std::io::stdout().lock();
        for line in intro {
            let _ = writeln!(out, "{line}");
        }
    }
    let end = plain::drive(
        engine,
        PlainSetup {
            plan,
            expanded,
            toolbox,
            interactive: std::io::stdin().is_terminal(),
        },
        std::io::BufReader::new(std::io::stdin()),
        std::io::stdout(),
    )
    .await;
    // The engine has stopped: the monitor and the lab go with it.
    drop(live);
    lab.shutdown().await;
    Ok(end?)
}

/// The lab's nodes counted by cluster, role and state, as a rebuilt lab has them (a
/// fleet's run resumed mid-rollout: which of each wave's nodes run):
/// `lab nodes: X control planes 1 running; X data planes 190 running, 10 stopped; …`.
pub fn lab_nodes_line(lab: &Lab) -> String {
    let nodes = lab.nodes();
    let mut groups: Vec<String> = Vec::new();
    for side in [ClusterSide::X, ClusterSide::Y] {
        for role in [Role::Traditional, Role::ControlPlane, Role::DataPlane] {
            let of: Vec<_> = nodes
                .iter()
                .filter(|n| n.cluster == side && n.role == role)
                .collect();
            if of.is_empty() {
                continue;
            }
            let counts: Vec<String> = [
                Lifecycle::Running,
                Lifecycle::Stopped,
                Lifecycle::Crashed,
                Lifecycle::Absent,
            ]
            .into_iter()
            .filter_map(|state| {
                let count = of.iter().filter(|n| n.lifecycle == state).count();
                (count > 0).then(|| format!("{count} {}", state.as_str()))
            })
            .collect();
            let what = match role {
                Role::Traditional => "nodes",
                Role::ControlPlane => "control planes",
                Role::DataPlane => "data planes",
            };
            groups.push(format!(
                "{} {what} {}",
                side.as_str().to_uppercase(),
                counts.join(", ")
            ));
        }
    }
    format!("lab nodes: {}", groups.join("; "))
}

/// What a lab run says before it starts: the lab, the plan, what was rebuilt (and then
/// where the lab's nodes are).
pub fn intro_lines(run: &DemoRun, what: &str) -> Vec<String> {
    let endpoints = run.lab.endpoints();
    let mut lines = vec![format!(
        "{what}: {} nodes on 127.0.0.1 ({} {} -> {}), plan {}",
        endpoints.nodes.len(),
        endpoints.mode.as_str(),
        endpoints.from,
        endpoints.to,
        run.plan_path.display()
    )];
    let rebuilt = &run.rebuilt;
    if !rebuilt.replayed.is_empty() || rebuilt.split.is_some() {
        lines.push(format!(
            "lab rebuilt from the journal: {} steps replayed{}",
            rebuilt.replayed.len(),
            rebuilt
                .split
                .map(|s| format!(", traffic {s}"))
                .unwrap_or_default()
        ));
    }
    if !rebuilt.replayed.is_empty() {
        lines.push(lab_nodes_line(&run.lab));
    }
    lines.extend(rebuilt.warnings.iter().map(|w| format!("! {w}")));
    // The lab's nodes and kongup's connections to them share this process's descriptors.
    let needed = crate::fd_limit::needed_with_lab(&run.plan);
    lines.extend(crate::fd_limit::shortfall(&run.plan, needed).map(|w| format!("! {w}")));
    let over = crate::engine::status::read_run(&run.engine.run_dir)
        .ok()
        .map(|r| r.view.run_state())
        .filter(|state| state.is_over());
    if let Some(state) = over {
        let how = match state {
            RunState::RolledBack => "was rolled back",
            _ => "is done",
        };
        lines.push(format!(
            "this run {how}: `kongup report --journal {0}` tells it; for a new one, pass \
             another --journal DIR or remove {0}",
            run.engine.run_dir.display()
        ));
    }
    for fault in run.lab.faults().describe() {
        lines.push(format!("fault: {fault}"));
    }
    lines.extend(run.stand_ins.iter().cloned());
    lines
}

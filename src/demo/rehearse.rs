//! `kongup run PLAN --rehearse`: the operator's own plan, step for step, against a lab
//! shaped like the plan's topology (see [`super::fit::rehearsal_topology`]).
//!
//! - Every executor the plan names (and `local`) acts on the lab: nothing runs on a host.
//! - The lab's balancer stands in for the plan's traffic driver.
//! - The plan's node URLs are fitted to the lab in memory; the plan file is not touched,
//!   and its hash is the real one, so a changed plan is noticed as on a real run.
//! - The run directory is the real run's with `-rehearsal` appended (with `--journal DIR`:
//!   `DIR-rehearsal`), so a rehearsal never touches the real run's journal. A rehearsal
//!   resumes like a demo: the lab is rebuilt from its own journal.
//! - Secrets the plan names are read if they can be (to redact them), never required, and
//!   the Admin API token is never sent to the lab.
//! - The lab serves the routes the plan's smoke tests request (see
//!   [`fit::smoke_test_routes`]). A smoke-test key that is set is one the lab's key-auth
//!   accepts (on loopback; redacted as every secret); one that is not set here is replaced
//!   by the lab's stand-in key (see [`fit_smoke_test_keys`]). The intro says both.
//! - The plan's DB-less declarative file is the lab's stand-in (see
//!   [`super::stand_ins`]).
//! - Faster than real time (`--speed`), the waits shrink with the lab's commands: bakes,
//!   monitor steps and the gate window (see [`pace`]). The sequence is the plan's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::notify::NotifyArgs;
use crate::engine::rundir::default_run_dir;
use crate::engine::step::plan_secrets;
use crate::engine::{RunOptions, local_operator};
use crate::notify::{self, NotifySettings, TerminalTarget, cli_webhooks};
use crate::plan::load::LoadedPlan;
use crate::plan::model::Plan;
use crate::plan::steps::StepKind;
use crate::secrets::{Redactor, Secret};
use crate::sim::{DEMO_API_KEY, Lab, LabOptions, MetricsFlags};

use super::{DemoError, DemoRun, Launch, TrafficChoice, fit, launch};

/// What a rehearsal's run directory is named after.
pub const REHEARSAL_SUFFIX: &str = "-rehearsal";

/// The rehearsal's run directory: the real run's (`journal`, else the default for the
/// plan's name) with `-rehearsal` appended to its last component.
pub fn rehearsal_run_dir(journal: Option<&Path>, plan_name: &str) -> Option<PathBuf> {
    let real = match journal {
        Some(dir) => dir.to_path_buf(),
        None => default_run_dir(plan_name)?,
    };
    let mut name = real.file_name()?.to_os_string();
    name.push(REHEARSAL_SUFFIX);
    Some(real.with_file_name(name))
}

/// Every secret of the plan that can be read now, for the redactor; missing ones are no
/// obstacle to a rehearsal.
fn readable_secrets(loaded: &LoadedPlan) -> Redactor {
    Redactor::new(
        plan_secrets(&loaded.plan)
            .iter()
            .filter_map(|secret| crate::secrets::resolve(secret).ok())
            .map(|secret| secret.expose().to_string()),
    )
}

/// The smoke tests' keys in a rehearsal: the values set here, which the lab accepts, and
/// one line per key source saying what the rehearsal sends.
#[derive(Debug, Default)]
pub struct SmokeTestKeys {
    pub accepted: Vec<Secret>,
    pub notes: Vec<String>,
}

/// Fits the plan's smoke-test credentials to a rehearsal: a secret header whose source can
/// be read keeps it (the lab will accept the value); one whose source cannot (not set on
/// this machine) becomes a plain header with the lab's stand-in key, since the rehearsal
/// never reaches the host that needs the real one.
pub fn fit_smoke_test_keys(plan: &mut Plan) -> SmokeTestKeys {
    let mut keys = SmokeTestKeys::default();
    let mut note = |line: String| {
        if !keys.notes.contains(&line) {
            keys.notes.push(line);
        }
    };
    let mut accepted = Vec::new();
    for test in &mut plan.smoke_tests {
        for (name, source) in std::mem::take(&mut test.secret_headers) {
            match crate::secrets::resolve(&source) {
                Ok(value) => {
                    note(format!(
                        "REHEARSAL: the smoke tests send their {name} header from {}; the lab's \
                         key-auth accepts it (on loopback, redacted in the logs)",
                        source.describe()
                    ));
                    if !accepted.contains(&value) {
                        accepted.push(value);
                    }
                    test.secret_headers.insert(name, source);
                }
                Err(_) => {
                    note(format!(
                        "REHEARSAL: {} (the smoke tests' {name} header) is not set here: they \
                         send the lab's stand-in key instead, which the lab's key-auth accepts; \
                         the real run needs the real key",
                        source.describe()
                    ));
                    test.headers.insert(name, DEMO_API_KEY.to_string());
                }
            }
        }
    }
    keys.accepted = accepted;
    keys
}

/// The plan's waits at `speed` (above 1), as a demo's: the gate window shrinks but stays
/// at least 2 s, each bake and monitor step shrinks but outlasts the window by half (so
/// its last verdict judges it alone), and a window under 5 s needs at most 10 requests on
/// Y for a verdict (the lab's traffic could not give more). The window then widens, up to
/// the plan's own, until Y's share at the first stage (1 % say) gets twice the requests a
/// verdict needs from the lab's traffic at its most, so a verdict does not hang on chance.
pub fn pace(loaded: &mut LoadedPlan, speed: f64) {
    if !speed.is_finite() || speed <= 1.0 {
        return;
    }
    let first_share = super::first_stage_share(&loaded.plan);
    let gates = &mut loaded.plan.gates;
    let planned_window = gates.window;
    gates.window = gates.window.div_f64(speed).max(Duration::from_secs(2));
    if gates.window < Duration::from_secs(5) {
        gates.min_requests = gates.min_requests.min(10);
    }
    gates.window = super::window_for_share(
        gates.window,
        gates.min_requests,
        first_share,
        planned_window,
    );
    let shortest = gates.window.mul_f64(1.5);
    let shrink = |wait: &mut Duration| *wait = wait.div_f64(speed).max(shortest);
    shrink(&mut loaded.plan.traffic.bake);
    for phase in &mut loaded.expanded.phases {
        for step in &mut phase.steps {
            match &mut step.kind {
                StepKind::ShiftTraffic { bake, .. } => shrink(bake),
                StepKind::Monitor { duration } => shrink(duration),
                _ => {}
            }
        }
    }
}

/// Starts a rehearsal of `loaded` (read from `plan_path`) in `run_dir`; the lab's commands
/// and its waits (see [`pace`]) run `speed` times faster than real time.
pub async fn start(
    loaded: LoadedPlan,
    plan_path: PathBuf,
    run_dir: PathBuf,
    options: RunOptions,
    speed: f64,
) -> Result<DemoRun, DemoError> {
    start_redacting(loaded, plan_path, run_dir, options, speed, &[]).await
}

/// [`start`], with `secrets` (the `--notify-webhook` URLs) hidden as the plan's are.
pub async fn start_redacting(
    mut loaded: LoadedPlan,
    plan_path: PathBuf,
    run_dir: PathBuf,
    options: RunOptions,
    speed: f64,
    secrets: &[Secret],
) -> Result<DemoRun, DemoError> {
    let mut redactor = readable_secrets(&loaded);
    for secret in secrets {
        redactor.add(secret.expose().to_string());
    }
    pace(&mut loaded, speed);
    // The lab speaks plain HTTP on loopback and needs no token: the plan's Admin API
    // access (TLS files, token) is for the real clusters.
    loaded.plan.admin = Default::default();
    let keys = fit_smoke_test_keys(&mut loaded.plan);
    let routes = fit::smoke_test_routes(&loaded.plan.smoke_tests);
    let mut stand_ins: Vec<String> = fit::describe_smoke_test_routes(&routes)
        .into_iter()
        .collect();
    stand_ins.extend(keys.notes);
    let topology = fit::rehearsal_topology(&loaded.plan, &loaded.expanded);
    fit::check_rehearsal_size(&topology)?;
    let lab = Lab::start_with(
        topology,
        LabOptions {
            y_deployed: false,
            traffic_rps: 0.0,
            faults: Vec::new(),
            metrics_flags: MetricsFlags::ALL_ON,
            speed,
            routes,
            api_keys: keys.accepted,
            rpc_sync: false,
            data_planes: None,
        },
    )
    .await?;
    let mut run = launch(
        lab,
        Launch {
            loaded,
            plan_path,
            run_dir,
            traffic: TrafficChoice::LabBalancer,
            redactor,
            faults: Vec::new(),
            options,
            operator: local_operator(),
            lock: None,
        },
    )
    .await?;
    run.stand_ins = stand_ins;
    Ok(run)
}

/// `kongup run PLAN --rehearse`: see the module documentation. Exit codes as `kongup run`.
pub fn run(
    plan_path: &Path,
    loaded: LoadedPlan,
    journal: Option<&Path>,
    accept_plan_change: bool,
    plain: bool,
    speed: f64,
    notify: &NotifyArgs,
) -> color_eyre::Result<i32> {
    use color_eyre::eyre::WrapErr;
    use std::io::IsTerminal;
    if !plain && cfg!(not(feature = "console")) {
        eprintln!(
            "this kongup was built without the console (cargo feature `console`): run with \
             --plain for line prompts"
        );
        return Ok(1);
    }
    if !plain && !std::io::stdout().is_terminal() {
        eprintln!("the console needs a terminal on stdout: run with --plain for line prompts");
        return Ok(1);
    }
    if !speed.is_finite() || speed <= 0.0 {
        eprintln!("--speed {speed} is not a positive factor (1 is real time, 10 ten times faster)");
        return Ok(1);
    }
    let Some(run_dir) = rehearsal_run_dir(journal, &loaded.plan.name) else {
        eprintln!("no state directory is known (HOME is not set): pass --journal DIR");
        return Ok(1);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("could not start the async runtime for the rehearsal")?;
    let plan_path = plan_path.to_path_buf();
    let resume_dir = run_dir.clone();
    // A rehearsal rings the terminal and posts to the command line's webhooks; the plan's
    // `notify:` is for the real run (practice must not page the team).
    let settings = NotifySettings {
        terminal: TerminalTarget::for_front_end(notify.no_notify, plain),
        webhooks: cli_webhooks(&notify.notify_webhooks),
        command: None,
        redactor: Redactor::default(),
    };
    let secrets = notify.notify_webhooks.clone();
    let (started, end) = runtime.block_on(async move {
        let options = RunOptions {
            accept_plan_change,
            handle_signals: true,
        };
        let started =
            start_redacting(loaded, plan_path, run_dir.clone(), options, speed, &secrets).await;
        let mut run = match started {
            Ok(run) => run,
            Err(error) => return (false, Err(error)),
        };
        let settings = NotifySettings {
            redactor: (*run.toolbox.redactor).clone(),
            ..settings
        };
        let notifier = notify::attach(
            &mut run.engine,
            run.expanded.clone(),
            &run.plan.name,
            settings,
        );
        let mut intro = super::intro_lines(&run, "kongup run --rehearse: a simulated lab");
        intro.push(format!(
            "REHEARSAL: every command acts on the lab and the lab's balancer stands in for \
             the traffic driver; nothing reaches a real host. Run directory {} (the real \
             run's journal is not touched).",
            run_dir.display()
        ));
        #[cfg(feature = "console")]
        if !plain {
            let alerts = notifier.console_alerts();
            let end = super::console::drive_console(run, Vec::new(), &intro, alerts).await;
            notifier.finish().await;
            return (true, end);
        }
        let end = super::drive_plain(run, &intro).await;
        notifier.finish().await;
        (true, end)
    });
    runtime.shutdown_background();
    if let Err(error) = &end {
        eprintln!("{error}");
        if started {
            let resume = "the same command";
            eprintln!("{}", crate::engine::failed_run_line(&resume_dir, resume));
        }
    }
    Ok(super::exit_code(started, &end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::load::load_plan;

    fn example(file: &str) -> LoadedPlan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/plans")
            .join(file);
        load_plan(&path).unwrap()
    }

    /// traditional-dual-cluster starts at 1 % with a 2 min window: at 100× the window
    /// would be 2 s, in which 1 % of the lab's traffic is 5 requests, under the 10 a
    /// verdict needs; it widens to 8 s, and each bake outlasts it by half.
    #[test]
    fn a_one_percent_first_stage_widens_the_window_to_get_enough_requests_on_y() {
        let mut plan = example("traditional-dual-cluster.yaml");
        pace(&mut plan, 100.0);
        assert_eq!(plan.plan.gates.min_requests, 10);
        assert_eq!(plan.plan.gates.window, Duration::from_secs(8));
        assert_eq!(plan.plan.traffic.bake, Duration::from_secs(12));
        let at_most = super::super::LAB_MAX_RPS * 0.01 * 8.0;
        assert!(at_most >= 2.0 * 10.0, "{at_most}");
    }

    /// A first stage of 5 % gets enough in the shortest window; nothing widens.
    #[test]
    fn a_larger_first_stage_keeps_the_shortest_window() {
        let mut plan = example("traditional-blue-green.yaml");
        pace(&mut plan, 100.0);
        assert_eq!(plan.plan.gates.window, Duration::from_secs(2));
    }

    /// Never wider than the plan's own window.
    #[test]
    fn the_window_never_outgrows_the_plans() {
        let mut plan = example("traditional-dual-cluster.yaml");
        plan.plan.gates.window = Duration::from_secs(300);
        plan.plan.gates.min_requests = 10_000;
        pace(&mut plan, 2.0);
        assert_eq!(plan.plan.gates.window, Duration::from_secs(300));
    }
}

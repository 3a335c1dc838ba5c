//! `kongup demo`: the whole program against the simulated lab, with nothing installed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use color_eyre::eyre::WrapErr;

use crate::cli::notify::NotifyArgs;
use crate::demo::{self, DemoOptions};
use crate::engine::{RunState, failed_run_line};
use crate::notify::{self, NotifySettings, TerminalTarget};
use crate::sim::{Fault, Scenario};

#[derive(Debug, Args)]
#[command(
    after_help = "The demo's run directory holds its plan (plan.yaml) and journal: \
`kongup demo` again resumes it, `kongup status --journal DIR` and `kongup report --journal \
DIR` read it. Exit status: 0 the run is done (upgraded); 1 it could not start; 2 it stopped \
before the end and is resumable; 3 it ended by a completed rollback."
)]
pub struct DemoArgs {
    /// The lab and its upgrade: dual-cluster, traditional-2.8, in-place, blue-green,
    /// dbless-rolling or hybrid.
    #[arg(long, default_value = "hybrid", value_parser = parse_scenario)]
    pub scenario: Scenario,

    /// Inject a fault once the lab is up: y-errors=0.2 (or 20%), y-latency=300ms, crash,
    /// crash=NODE, dp-incompatible (hybrid), y-db-down. Repeat for several.
    #[arg(long = "fault", value_name = "FAULT", value_parser = parse_fault)]
    pub faults: Vec<Fault>,

    /// How many times faster than real time the lab's commands run; a new demo's bakes
    /// and gate window shrink as much (not under 2 s).
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub speed: f64,

    /// No console: print each step and read commands as lines on stdin (`help` lists
    /// them). End of input quits; the demo stays resumable. In the console, `?` lists the
    /// keys, the lab's faults among them.
    #[arg(long)]
    pub plain: bool,

    /// The run directory (plan, journal, logs). Default: where `kongup run` keeps the run
    /// of the demo's plan, $XDG_STATE_HOME/kongup/runs/demo-<scenario>-<from>-to-<to>/.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,

    /// Resume even though the plan in the run directory changed since the run started
    /// (the change is journaled).
    #[arg(long)]
    pub accept_plan_change: bool,

    /// Data planes per cluster of the hybrid lab (default 2, at most 1000): a fleet to try
    /// and rehearse on. A fleet's demo has a plan and a run directory of its own.
    #[arg(long, value_name = "N")]
    pub data_planes: Option<usize>,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    s.parse()
        .map_err(|e: crate::sim::scenarios::UnknownScenario| e.to_string())
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
        .map_err(|e: crate::sim::faults::FaultParseError| e.to_string())
}

pub fn run(args: DemoArgs) -> color_eyre::Result<i32> {
    if !args.plain && cfg!(not(feature = "console")) {
        eprintln!(
            "this kongup was built without the console (cargo feature `console`): run with \
             --plain for line prompts"
        );
        return Ok(1);
    }
    if !args.plain && !std::io::stdout().is_terminal() {
        eprintln!("the console needs a terminal on stdout: run with --plain for line prompts");
        return Ok(1);
    }
    let run_dir = match args.journal.clone() {
        Some(dir) => dir,
        None => match demo::default_demo_run_dir(args.scenario, args.data_planes)? {
            Some(dir) => dir,
            None => {
                eprintln!("no state directory is known (HOME is not set): pass --journal DIR");
                return Ok(1);
            }
        },
    };
    let options = DemoOptions {
        speed: args.speed,
        faults: args.faults,
        accept_plan_change: args.accept_plan_change,
        handle_signals: true,
        secrets: args.notify.notify_webhooks.clone(),
        data_planes: args.data_planes,
        ..DemoOptions::new(args.scenario, run_dir.clone())
    };
    let terminal = TerminalTarget::for_front_end(args.notify.no_notify, args.plain);
    let webhooks = args.notify.notify_webhooks;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("could not start the async runtime for the demo")?;
    let scenario = args.scenario;
    #[cfg(feature = "console")]
    let plain = args.plain;
    let (started, end) = runtime.block_on(async move {
        let mut run = match demo::start(options).await {
            Ok(run) => run,
            Err(error) => return (false, Err(error)),
        };
        // A demo plan has no `notify:`; one edited to have one is heard like a real run's.
        let mut settings = match NotifySettings::for_plan(&run.plan, &webhooks, terminal) {
            Ok(settings) => settings,
            Err(e) => return (false, Err(demo::DemoError::Toolbox(e.to_string()))),
        };
        settings.redactor = (*run.toolbox.redactor).clone();
        let notifier = notify::attach(
            &mut run.engine,
            run.expanded.clone(),
            &run.plan.name,
            settings,
        );
        let intro = demo::intro_lines(&run, &format!("kongup demo {scenario}"));
        #[cfg(feature = "console")]
        if !plain {
            let mut intro = intro;
            intro.push(
                "keys E L X D inject the lab's faults, N clears them; ? lists every key"
                    .to_string(),
            );
            let keys = demo::console::fault_keys(&run.lab, &run.notices);
            let alerts = notifier.console_alerts();
            let end = demo::console::drive_console(run, keys, &intro, alerts).await;
            notifier.finish().await;
            return (true, end);
        }
        let end = demo::drive_plain(run, &intro).await;
        notifier.finish().await;
        (true, end)
    });
    // The stdin reader may sit in a blocking read, and nothing of the lab may outlive the
    // session: do not wait for either.
    runtime.shutdown_background();
    let journal = args
        .journal
        .as_ref()
        .map(|dir| format!(" --journal {}", dir.display()))
        .unwrap_or_default();
    let size = args
        .data_planes
        .map(|n| format!(" --data-planes {n}"))
        .unwrap_or_default();
    let resume = format!("`kongup demo --scenario {scenario}{size}{journal}`");
    // The terminal may be gone (SIGHUP): a failed write is no reason to panic.
    let mut stderr = std::io::stderr();
    match &end {
        Err(error) if started => {
            let _ = writeln!(stderr, "{error}");
            let _ = writeln!(stderr, "{}", failed_run_line(&run_dir, &resume));
        }
        Err(error) => {
            let _ = writeln!(stderr, "{error}");
        }
        Ok(end) if end.state != RunState::Done => {
            let _ = writeln!(stderr, "{}", end.stopped_line(&resume));
        }
        Ok(_) => {}
    }
    Ok(demo::exit_code(started, &end))
}

//! `kongup run PLAN`: drives an upgrade run, new or resumed, one confirmed step at a time.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use crate::actions::{self, kong::KongAccess};
use crate::cli::notify::NotifyArgs;
use crate::engine::handover::take_over;
use crate::engine::rundir::default_run_dir;
use crate::engine::step::resolve_plan_secrets;
use crate::engine::{
    RunOptions, RunSetup, RunState, SessionEnd, Toolbox, failed_run_line, local_operator, spawn,
};
use crate::metrics;
use crate::notify::{self, NotifySettings, TerminalTarget};
use crate::plain::{PlainSetup, drive};
use crate::plan::load::load_plan;
use crate::session::{self, LiveSources};
#[cfg(feature = "console")]
use crate::ui::run::console_on_engine;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 the run is done (upgraded); 1 it could not start (plan \
errors, a missing secret, the run is driven by another kongup, the plan changed); 2 it \
stopped before the end and is resumable; 3 it ended by a completed rollback."
)]
pub struct RunArgs {
    /// The plan file (YAML); the run id comes from its `name`, so the same plan resumes
    /// the same run.
    pub plan: PathBuf,
    /// The run directory (journal, lock, step logs, backups). Default:
    /// $XDG_STATE_HOME/kongup/runs/<run-id>/, else ~/.local/state/kongup/runs/<run-id>/.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Resume even though the plan file changed since the run started (the change is
    /// journaled).
    #[arg(long)]
    pub accept_plan_change: bool,
    /// No console: print each step and read commands as lines on stdin (`help` lists
    /// them). End of input quits; the run stays resumable.
    #[arg(long)]
    pub plain: bool,
    /// The run is driven by another kongup: ask it to hand the run over (its operator
    /// answers; unanswered, the request lapses in 60 s), then drive it from here.
    #[arg(long)]
    pub take_over: bool,
    /// Practise the plan against a simulated lab shaped like its topology: every executor
    /// acts on the lab, the lab's balancer stands in for the traffic driver, and the run
    /// lives in its own directory (the real one's name + `-rehearsal`).
    #[cfg(feature = "lab")]
    #[arg(long)]
    pub rehearse: bool,
    /// With --rehearse: how many times faster than real time the lab's commands, the
    /// bakes, the monitor steps and the gate window run (the window not under 2 s).
    #[cfg(feature = "lab")]
    #[arg(long, default_value_t = 1.0, value_name = "X", requires = "rehearse")]
    pub speed: f64,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Exit codes: 0 the run is done (upgraded); 1 it could not start (bad plan, missing
/// secret, lock held, changed plan); 2 it stopped before the end and is resumable; 3 it
/// ended by a completed rollback.
pub fn run(args: RunArgs) -> color_eyre::Result<i32> {
    let loaded = match load_plan(&args.plan) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: the plan has errors; nothing was run",
                args.plan.display()
            );
            return Ok(1);
        }
    };
    #[cfg(feature = "lab")]
    if args.rehearse {
        return crate::demo::rehearse::run(
            &args.plan,
            loaded,
            args.journal.as_deref(),
            args.accept_plan_change,
            args.plain,
            args.speed,
            &args.notify,
        );
    }
    if !args.plain && cfg!(not(feature = "console")) {
        eprintln!(
            "this kongup was built without the console (cargo feature `console`); run with \
             --plain to drive the run with line commands"
        );
        return Ok(1);
    }
    if !args.plain && !std::io::stdout().is_terminal() {
        eprintln!(
            "the console needs a terminal; run with --plain to drive the run with line commands"
        );
        return Ok(1);
    }
    let mut redactor = match resolve_plan_secrets(&loaded.plan) {
        Ok(redactor) => redactor,
        Err(errors) => {
            for error in errors {
                eprintln!("{error}");
            }
            eprintln!("kongup needs every secret the plan names before it starts");
            return Ok(1);
        }
    };
    let terminal = TerminalTarget::for_front_end(args.notify.no_notify, args.plain);
    let mut notify_settings =
        match NotifySettings::for_plan(&loaded.plan, &args.notify.notify_webhooks, terminal) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("{error}");
                return Ok(1);
            }
        };
    // The command line's webhook URLs are secrets too: no step's output or note shows one.
    for url in &args.notify.notify_webhooks {
        redactor.add(url.expose().to_string());
    }
    notify_settings.redactor = redactor.clone();
    let admin_token = match &loaded.plan.admin.token {
        Some(source) => Some(crate::secrets::resolve(source)?),
        None => None,
    };
    // The Kong actions reach Kong as the plan says; the access also serves the topology
    // pane (`probe`, `databases()`).
    let access = match KongAccess::for_plan(&loaded.plan) {
        Ok(access) => access,
        Err(error) => {
            eprintln!("{}: {error}", args.plan.display());
            return Ok(1);
        }
    };
    let actions = actions::builtins(Some(access.clone()));
    let mut toolbox = match Toolbox::for_plan(&loaded.plan, redactor, actions) {
        Ok(toolbox) => toolbox,
        Err(error) => {
            eprintln!("{}: {error}", args.plan.display());
            return Ok(1);
        }
    };
    let Some(run_dir) = args
        .journal
        .clone()
        .or_else(|| default_run_dir(&loaded.plan.name))
    else {
        eprintln!("no state directory is known (HOME is not set): pass --journal DIR");
        return Ok(1);
    };
    let plan = Arc::new(loaded.plan);
    let expanded = Arc::new(loaded.expanded);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let operator = local_operator();
    let resume_dir = run_dir.clone();
    let outcome: color_eyre::Result<Ran> = runtime.block_on(async {
        if args.take_over {
            take_over(&run_dir, &operator.0, |line| eprintln!("{line}")).await?;
        }
        // Live metrics (the gates' verdicts) and the topology run beside the engine for
        // as long as it runs.
        let (_live, side_events) = session::start(
            &plan,
            LiveSources {
                admin: access.probe.clone(),
                admin_token,
                databases: access.databases(),
                metrics_interval: metrics::monitor::DEFAULT_INTERVAL,
                topology_interval: session::TOPOLOGY_INTERVAL,
            },
            &mut toolbox,
        )?;
        let mut handle = spawn(RunSetup {
            plan: plan.clone(),
            expanded: expanded.clone(),
            plan_text: loaded.source,
            run_dir,
            operator,
            toolbox: toolbox.clone(),
            options: RunOptions {
                accept_plan_change: args.accept_plan_change,
                handle_signals: true,
            },
            side_events: Some(side_events),
            lock: None,
        })?;
        let notifier = notify::attach(&mut handle, expanded.clone(), &plan.name, notify_settings);
        // From here on the run is open: whatever stops it, it stays resumable.
        #[cfg(feature = "console")]
        if !args.plain {
            let alerts = notifier.console_alerts();
            let console =
                console_on_engine(handle, plan, expanded, toolbox, Vec::new(), alerts).await;
            notifier.finish().await;
            return Ok(match console {
                Ok(console) => {
                    if !console.terminal_gone {
                        eprintln!("{}", console.end.stopped_line("the same command"));
                    }
                    Ran::Ended(console.end)
                }
                Err(error) => Ran::Failed(error),
            });
        }
        let setup = PlainSetup {
            plan,
            expanded,
            toolbox,
            interactive: std::io::stdin().is_terminal(),
        };
        let input = std::io::BufReader::new(std::io::stdin());
        let end = drive(handle, setup, input, std::io::stdout()).await;
        notifier.finish().await;
        Ok(match end {
            Ok(end) => Ran::Ended(end),
            Err(error) => Ran::Failed(error.into()),
        })
    });
    // The stdin reader may sit in a blocking read: do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(Ran::Ended(end)) if end.state == RunState::Done => Ok(0),
        Ok(Ran::Ended(end)) if end.state == RunState::RolledBack => Ok(3),
        Ok(Ran::Ended(_)) => Ok(2),
        Ok(Ran::Failed(error)) => {
            eprintln!("{error}");
            eprintln!("{}", failed_run_line(&resume_dir, "the same command"));
            Ok(2)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(1)
        }
    }
}

/// How a run that opened ended.
enum Ran {
    /// Its session ended (done, or left resumable).
    Ended(SessionEnd),
    /// It failed after it opened (a full disk under the journal, the console lost): the
    /// journal holds every record up to the failure, so the run is resumable.
    Failed(color_eyre::Report),
}

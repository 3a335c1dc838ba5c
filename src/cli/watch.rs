//! `kongup watch [PLAN | --journal DIR]`: the console, read-only, on a run another kongup
//! drives (or drove): it follows the journal as it grows and scrapes the clusters' metrics
//! itself with the plan's settings. `--plain` prints the journal's records as lines. A
//! watcher never takes the run's lock and never writes to its directory.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use chrono::Local;
use tokio::signal::unix::{SignalKind, signal};

use crate::engine::event::{Event, SessionEvent};
use crate::engine::journal::Record;
use crate::engine::lock::LockHolder;
use crate::engine::report::describe;
use crate::engine::watcher::{Wake, Watcher};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Any number of watchers may follow a run at once, from other terminals and \
other Unix users who can read its directory; none takes the run's lock or writes to it. Keys \
that would change the run only say who drives it. Exit status: 0 the watcher was left; 1 the \
run could not be read."
)]
pub struct WatchArgs {
    /// The plan file of the run to watch: its run under the default state directory.
    /// Without PLAN or --journal: the run there whose journal changed last.
    pub plan: Option<PathBuf>,
    /// The run directory (as given to `kongup run --journal`).
    #[arg(long, value_name = "DIR", conflicts_with = "plan")]
    pub journal: Option<PathBuf>,
    /// No console: print each record of the journal as a line (time, who, what) as it is
    /// written, for a chat bot or a log. Stops on SIGINT, SIGTERM or SIGHUP.
    #[arg(long)]
    pub plain: bool,
}

pub fn run(args: WatchArgs) -> color_eyre::Result<i32> {
    let run_dir = match super::status::locate_run(args.journal.as_deref(), args.plan.as_deref()) {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("{error}");
            return Ok(1);
        }
    };
    if !args.plain && cfg!(not(feature = "console")) {
        eprintln!(
            "this kongup was built without the console (cargo feature `console`); run with \
             --plain to print the run's records as lines"
        );
        return Ok(1);
    }
    if !args.plain && !std::io::stdout().is_terminal() {
        eprintln!("the console needs a terminal; run with --plain to print the records as lines");
        return Ok(1);
    }
    let watcher = match Watcher::open(&run_dir) {
        Ok(watcher) => watcher,
        Err(error) => {
            eprintln!("{error}");
            return Ok(1);
        }
    };
    let take_over = match &args.plan {
        Some(plan) => format!("`kongup run {}`", plan.display()),
        None => format!("`kongup run PLAN --journal {}`", run_dir.display()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async move {
        #[cfg(feature = "console")]
        if !args.plain {
            return console::watch(watcher, take_over).await;
        }
        Ok(watch_plain(watcher, &take_over, std::io::stdout()).await)
    });
    // The console's terminal reader may sit in a blocking read: do not wait for it.
    runtime.shutdown_background();
    code
}

/// A line of `--plain`: when, who, what.
fn record_line(record: &Record) -> String {
    format!(
        "{} {}: {}",
        record.at.with_timezone(&Local).format("%H:%M:%S"),
        record.by,
        describe(&record.entry)
    )
}

fn driver_line(driver: Option<&LockHolder>, take_over: &str) -> String {
    match driver {
        Some(driver) => format!(
            "driven by {} (pid {}) since {}",
            driver.operator,
            driver.pid,
            driver.since.with_timezone(&Local).format("%H:%M:%S")
        ),
        None => format!("nobody drives this run now: {take_over} takes it over"),
    }
}

/// `--plain`: where the run stands, then each record as it is written, until a signal.
/// Returns the exit code.
pub async fn watch_plain(mut watcher: Watcher, take_over: &str, out: impl Write) -> i32 {
    let mut out = LineOut { out, gone: false };
    let view = watcher.view();
    let next = view
        .next_step()
        .map(|step| format!("; next: {step} ({})", view.effective_state(&step).as_str()))
        .unwrap_or_default();
    let traffic = view
        .traffic()
        .map(|split| format!("; traffic {split}"))
        .unwrap_or_default();
    out.say(&format!(
        "watching run {} (plan {}) in {}: {}{next}{traffic}",
        view.run_id,
        view.plan_name,
        watcher.run_dir().display(),
        view.run_state().as_str().to_uppercase(),
    ));
    let mut driver = watcher.driver();
    out.say(&driver_line(driver.as_ref(), take_over));
    let signals = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(signal);
    let [Ok(mut int), Ok(mut term), Ok(mut hup)] = signals else {
        out.say("could not listen for SIGINT, SIGTERM and SIGHUP: not watching");
        return 1;
    };
    let mut wake = Wake::new(watcher.run_dir());
    loop {
        tokio::select! {
            _ = wake.next() => {}
            _ = int.recv() => return 0,
            _ = term.recv() => return 0,
            _ = hup.recv() => return 0,
        }
        let (records, events) = match watcher.poll() {
            Ok(polled) => polled,
            Err(error) => {
                out.say(&format!("kongup stopped watching: {error}"));
                return 1;
            }
        };
        for record in &records {
            out.say(&record_line(record));
        }
        for event in events {
            match event {
                Event::Session(SessionEvent::Driver(now)) if now != driver => {
                    out.say(&driver_line(now.as_ref(), take_over));
                    driver = now;
                }
                Event::Warning(text) if !records.iter().any(|r| is_warning(r, &text)) => {
                    out.say(&format!("! {text}"))
                }
                _ => {}
            }
        }
        if !out.open() {
            return 0;
        }
    }
}

/// Whether the record is the warning `text` (already printed as its record's line).
fn is_warning(record: &Record, text: &str) -> bool {
    matches!(&record.entry, crate::engine::journal::Entry::Warning { text: t } if t == text)
}

/// Lines to the output; a reader that went away (`| head`) ends the watch quietly.
struct LineOut<W: Write> {
    out: W,
    gone: bool,
}

impl<W: Write> LineOut<W> {
    fn say(&mut self, line: &str) {
        if !self.gone
            && writeln!(self.out, "{line}")
                .and_then(|()| self.out.flush())
                .is_err()
        {
            self.gone = true;
        }
    }

    fn open(&self) -> bool {
        !self.gone
    }
}

#[cfg(feature = "console")]
mod console {
    use std::sync::Arc;

    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::actions::{self, kong::KongAccess};
    use crate::engine::{Toolbox, wave};
    use crate::metrics::{self, WaveScope};
    use crate::secrets::Redactor;
    use crate::session::{self, LiveSources};
    use crate::ui::state::Watching;
    use crate::ui::{ConsoleOptions, Previewer, run_console};

    /// The console, read-only, until the operator leaves it.
    pub(super) async fn watch(mut watcher: Watcher, take_over: String) -> color_eyre::Result<i32> {
        let loaded = watcher.plan().clone();
        let plan = Arc::new(loaded.plan);
        let expanded = Arc::new(loaded.expanded);
        let started_at = watcher.started_at();
        let (journal_tx, journal_rx) = mpsc::unbounded_channel();
        let (live, live_rx, mut warnings) = live_events(&plan);
        for warning in warnings.drain(..) {
            let _ = journal_tx.send(Event::Warning(warning));
        }
        let driver = watcher.driver();
        let scope = live.as_ref().map(|live| live.monitor().scope());
        let follow = tokio::spawn(follow(watcher, journal_tx, scope));
        // Neither floods: the journal holds no output lines, and the scrapes come at their
        // interval (the engine's own event stream is bounded for a step's output).
        let events = futures::stream::select(stream(journal_rx), stream(live_rx));
        // Nothing is ever sent: a watcher's keys make no command (the loop's Quit on a
        // signal goes nowhere).
        let (commands, _unread) = mpsc::channel(1);
        let mut options = ConsoleOptions::new(started_at, previewer(&plan, &expanded));
        options.watching = Some(Watching { driver, take_over });
        let exit = run_console(&plan, &expanded, commands, events, options).await;
        follow.abort();
        drop(live);
        exit?;
        Ok(0)
    }

    fn stream(mut events: mpsc::UnboundedReceiver<Event>) -> impl futures::Stream<Item = Event> {
        futures::stream::poll_fn(move |cx| events.poll_recv(cx))
    }

    /// The journal's events as they are written, until the journal cannot be trusted.
    /// `scope`: where this watcher's own monitor learns which wave bakes, read from the
    /// journal by the engine's rule, so its gates judge what the driver's judge.
    async fn follow(
        mut watcher: Watcher,
        events: mpsc::UnboundedSender<Event>,
        scope: Option<watch::Sender<Option<WaveScope>>>,
    ) {
        let judge_as_the_driver = |watcher: &Watcher| {
            if let Some(scope_tx) = &scope {
                let loaded = watcher.plan();
                let now = wave::gate_scope(&loaded.plan, &loaded.expanded, watcher.view());
                scope_tx.send_if_modified(|current| {
                    let changed = *current != now;
                    if changed {
                        *current = now;
                    }
                    changed
                });
            }
        };
        let mut wake = Wake::new(watcher.run_dir());
        for event in watcher.snapshot() {
            let _ = events.send(event);
        }
        judge_as_the_driver(&watcher);
        loop {
            wake.next().await;
            match watcher.poll() {
                Ok((_, new)) => {
                    judge_as_the_driver(&watcher);
                    for event in new {
                        if events.send(event).is_err() {
                            return;
                        }
                    }
                }
                Err(error) => {
                    let _ = events.send(Event::Warning(format!(
                        "kongup stopped following the journal: {error}; the screen no longer \
                         changes"
                    )));
                    return;
                }
            }
        }
    }

    /// The metrics and topology, scraped by the watcher itself with the plan's settings;
    /// what it cannot reach as the driver does (a secret not set here) is said.
    fn live_events(
        plan: &Arc<crate::plan::model::Plan>,
    ) -> (
        Option<session::LiveSupport>,
        mpsc::UnboundedReceiver<Event>,
        Vec<String>,
    ) {
        let mut warnings = Vec::new();
        let admin_token = match &plan.admin.token {
            Some(source) => match crate::secrets::resolve(source) {
                Ok(token) => Some(token),
                Err(error) => {
                    warnings.push(format!(
                        "the metrics and topology are read without the Admin token: {error}"
                    ));
                    None
                }
            },
            None => None,
        };
        let started = KongAccess::for_plan(plan)
            .map_err(|e| e.to_string())
            .and_then(|access| {
                session::start_watching(
                    plan,
                    LiveSources {
                        admin: access.probe.clone(),
                        admin_token,
                        databases: access.databases(),
                        metrics_interval: metrics::monitor::DEFAULT_INTERVAL,
                        topology_interval: session::TOPOLOGY_INTERVAL,
                    },
                )
                .map_err(|e| e.to_string())
            });
        match started {
            Ok((live, events)) => (Some(live), events, warnings),
            Err(error) => {
                warnings.push(format!("no live metrics or topology: {error}"));
                (None, mpsc::unbounded_channel().1, warnings)
            }
        }
    }

    /// What confirming a step runs, in the engine's words; nothing when the plan's
    /// toolbox cannot be built here.
    fn previewer(
        plan: &Arc<crate::plan::model::Plan>,
        expanded: &Arc<crate::plan::steps::ExpandedPlan>,
    ) -> Previewer {
        let toolbox = KongAccess::for_plan(plan).ok().and_then(|access| {
            // Previews name secrets by their source, never their value: no redactor needed.
            Toolbox::for_plan(plan, Redactor::default(), actions::builtins(Some(access))).ok()
        });
        match toolbox {
            Some(toolbox) => Previewer::from_engine(plan.clone(), expanded.clone(), toolbox),
            None => Previewer::new(|_| None),
        }
    }
}

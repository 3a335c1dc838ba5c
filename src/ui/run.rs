//! The terminal loop. One `select!` over the operator's input, the engine's events, command
//! delivery and a one-second clock. Keys come first; engine events are applied in bounded
//! batches so a flood of log lines cannot hold a key back; the screen is drawn only when
//! something changed, at most ~30 times a second, from the state alone (no I/O, no waiting
//! on the engine). Commands queue locally and are handed to the engine as its channel has
//! room, so a busy engine never freezes the screen.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{FutureExt, Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, CrosstermBackend};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::engine::command::Command;
use crate::engine::event::{Event, LogLine};
use crate::engine::journal::{JOURNAL_FILE, read_journal};
use crate::engine::{EngineHandle, SessionEnd, Toolbox};
use crate::notify::Alerts;
use crate::notify::terminal::AlertWriter;
use crate::plan::model::Plan;
use crate::plan::steps::{ExpandedPlan, StepRef};
use crate::ui::quiet::QuietBackend;

use super::input::{ConsoleInput, ExitSignal, TerminalReader, TtyFd};
use super::keys::{UiAction, handle_key};
use super::state::{ConsoleState, ExtraKey, Previewer, Watching};
use super::theme::{Theme, Tone};

/// The shortest time between two frames (~30 frames/s).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// Engine events applied between two looks at the keyboard.
pub const EVENT_BATCH: usize = 512;
/// How long leaving waits for the engine to take the last commands (Quit among them).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// When the run began (from the journal): the header's elapsed time counts from it.
    pub started_at: DateTime<Utc>,
    pub theme: Theme,
    /// What confirming a step runs: `Previewer::from_engine` with the run's toolbox.
    pub previewer: Previewer,
    /// Keys of the caller's, listed in the help (the demo's lab faults).
    pub extra_keys: Vec<ExtraKey>,
    /// Set for `kongup watch`: the console is read-only and names who drives the run.
    pub watching: Option<Watching>,
    /// The notifier's bell and desktop notifications, written after a frame (`None`:
    /// none, as with `--no-notify`).
    pub alerts: Option<Alerts>,
}

impl ConsoleOptions {
    /// A run that began at `started_at`, coloured unless `NO_COLOR` is set.
    pub fn new(started_at: DateTime<Utc>, previewer: Previewer) -> Self {
        ConsoleOptions {
            started_at,
            theme: Theme::from_env(),
            previewer,
            extra_keys: Vec::new(),
            watching: None,
            alerts: None,
        }
    }
}

/// How the console ended. In every case but `EngineStopped`, `Command::Quit` (the
/// operator's) or `Command::Stop` (with the signal or the lost terminal as the reason) was
/// handed to the engine (or the engine was already gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleExit {
    /// The operator quit. `step_running`: the step the engine lets finish before it exits.
    Quit { step_running: Option<StepRef> },
    /// SIGHUP, SIGTERM or SIGINT arrived. After SIGHUP the terminal is most likely gone:
    /// treat it as `TerminalLost` for printing.
    Signal(ExitSignal),
    /// The terminal went away. Nothing may be written to stdout or stderr any more (a write
    /// to a hung-up tty fails, and `println!` panics on that).
    TerminalLost { reason: String },
    /// The engine's event stream had ended, then the operator left.
    EngineStopped,
}

/// Runs the console on the process's terminal until the operator quits, a signal arrives or
/// the terminal goes away.
///
/// `events` is the engine's event stream (`EngineHandle::events`). It must never lose a
/// state change (a broadcast that drops events when the reader lags would lose a
/// `StepChanged` and leave the screen wrong); the engine's own stream keeps every one and
/// thins only a flood of output, saying how much it left out. The console drains it
/// continuously, in bounded batches between looks at the keyboard.
/// `commands` goes to the engine; the console never blocks on it.
pub async fn run_console<E>(
    plan: &Plan,
    expanded: &ExpandedPlan,
    commands: mpsc::Sender<Command>,
    events: E,
    options: ConsoleOptions,
) -> color_eyre::Result<ConsoleExit>
where
    E: Stream<Item = Event> + Unpin,
{
    use color_eyre::eyre::WrapErr;

    if !nix::unistd::isatty(std::io::stdout()).unwrap_or(false) {
        color_eyre::eyre::bail!(
            "the console needs a terminal on stdout; run with --plain to use line prompts"
        );
    }
    let tty = TtyFd::open()?;
    let signals = exit_signals().wrap_err("installing the signal handlers for the console")?;
    let mut reader = TerminalReader::spawn(tty).wrap_err("starting the terminal reader")?;
    let inputs = futures::stream::select(
        futures::stream::poll_fn(move |cx| reader.poll_recv(cx)),
        signals,
    );

    let mut state = ConsoleState::new(
        plan,
        expanded,
        options.started_at,
        options.theme,
        options.previewer,
    );
    state.set_extra_keys(options.extra_keys);
    if let Some(watching) = options.watching {
        state.set_watching(watching);
    }
    state.set_now(Utc::now());
    let mut terminal = init_terminal(options.alerts).wrap_err("setting up the terminal")?;
    let exit = drive(
        &mut terminal,
        &mut state,
        &commands,
        events,
        inputs,
        &Utc::now,
    )
    .await;
    // Dropping a terminal whose cursor is hidden shows it again, and reports a failure with
    // `eprintln!`, which panics on a hung-up tty: show it here, and if the tty is gone, do
    // not drop the terminal at all (the process is about to end).
    if terminal.show_cursor().is_err() {
        std::mem::forget(terminal);
    }
    match &exit {
        // Restoring writes to the terminal; after a hang-up or on a dead one it only fails,
        // and that must not hide how the console ended.
        ConsoleExit::TerminalLost { .. } | ConsoleExit::Signal(_) => {
            let _ = ratatui::try_restore();
        }
        _ => ratatui::try_restore().wrap_err("restoring the terminal")?,
    }
    Ok(exit)
}

/// `ratatui::try_init` (a panic hook that restores the terminal, raw mode, the alternate
/// screen), with the notifier's alerts written by the console's own writer between frames.
fn init_terminal(
    alerts: Option<Alerts>,
) -> std::io::Result<Terminal<QuietBackend<CrosstermBackend<AlertWriter<std::io::Stdout>>>>> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = ratatui::try_restore();
        hook(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    Terminal::new(QuietBackend::new(CrosstermBackend::new(AlertWriter::new(
        std::io::stdout(),
        alerts,
    ))))
}

/// How a console on a spawned engine ended: the engine's end, and whether the terminal is
/// gone (then nothing more may be printed).
#[derive(Debug)]
pub struct EngineConsoleEnd {
    pub end: SessionEnd,
    pub terminal_gone: bool,
}

/// Runs the console on a spawned engine until the operator leaves, then waits for the
/// engine: a step still running finishes (and is journaled) before this returns.
/// `extra_keys`: the caller's keys (the demo's lab faults); `alerts`: the notifier's.
pub async fn console_on_engine(
    handle: EngineHandle,
    plan: Arc<Plan>,
    expanded: Arc<ExpandedPlan>,
    toolbox: Toolbox,
    extra_keys: Vec<ExtraKey>,
    alerts: Option<Alerts>,
) -> color_eyre::Result<EngineConsoleEnd> {
    let EngineHandle {
        commands,
        mut events,
        task,
        run_dir,
        ..
    } = handle;
    let mut options = ConsoleOptions::new(
        run_started_at(&run_dir),
        Previewer::from_engine(plan.clone(), expanded.clone(), toolbox),
    );
    options.extra_keys = extra_keys;
    options.alerts = alerts;
    let exit = run_console(&plan, &expanded, commands, &mut events, options).await;
    let terminal_gone = matches!(
        exit,
        Ok(ConsoleExit::TerminalLost { .. } | ConsoleExit::Signal(_))
    );
    if let Ok(ConsoleExit::Quit {
        step_running: Some(step),
    }) = &exit
    {
        // A long step (a migration) must not look hung: its output and end go on.
        eprintln!(
            "{step} is still running: kongup waits for it to end, journals its result, then \
             exits. Its output follows (the full log is in {}).",
            run_dir.display()
        );
        while let Some(event) = events.next().await {
            if let Some(line) = after_quit_line(&event) {
                eprintln!("{line}");
            }
        }
    }
    let end = task.await.map_err(|error| {
        color_eyre::eyre::eyre!(
            "the engine stopped unexpectedly: {error}; the run is resumable from its journal"
        )
    })??;
    exit?;
    Ok(EngineConsoleEnd { end, terminal_gone })
}

/// What the terminal shows of an event once the console has closed on a running step: the
/// step's output and its end (the engine's own chatter, drift and metrics stay in the
/// journal).
fn after_quit_line(event: &Event) -> Option<String> {
    match event {
        Event::Log(LogLine {
            at,
            step: Some(step),
            text,
            ..
        }) => Some(format!(
            "{} {step} │ {text}",
            at.with_timezone(&chrono::Local).format("%H:%M:%S"),
        )),
        Event::StepChanged {
            step,
            state,
            detail,
        } => Some(match detail {
            Some(detail) => format!("{step}: {} ({detail})", state.as_str()),
            None => format!("{step}: {}", state.as_str()),
        }),
        _ => None,
    }
}

/// When the run began: its first journal record (now, for a run too new to have one).
fn run_started_at(run_dir: &Path) -> DateTime<Utc> {
    read_journal(&run_dir.join(JOURNAL_FILE))
        .ok()
        .and_then(|journal| journal.records.first().map(|record| record.at))
        .unwrap_or_else(Utc::now)
}

/// SIGHUP, SIGTERM and SIGINT as console inputs. (In raw mode Ctrl-C is a key, not SIGINT.)
fn exit_signals() -> std::io::Result<impl Stream<Item = ConsoleInput> + Unpin> {
    let mut resize = signal(SignalKind::window_change())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(futures::stream::poll_fn(move |cx| {
        use std::task::Poll;
        if hangup.poll_recv(cx).is_ready() {
            return Poll::Ready(Some(ConsoleInput::Signal(ExitSignal::Hangup)));
        }
        if terminate.poll_recv(cx).is_ready() {
            return Poll::Ready(Some(ConsoleInput::Signal(ExitSignal::Terminate)));
        }
        if interrupt.poll_recv(cx).is_ready() {
            return Poll::Ready(Some(ConsoleInput::Signal(ExitSignal::Interrupt)));
        }
        if resize.poll_recv(cx).is_ready() {
            return Poll::Ready(Some(ConsoleInput::Resize));
        }
        Poll::Pending
    }))
}

/// The console loop on any backend, with its inputs and clock given: `run_console` uses the
/// real terminal, tests a `TestBackend` and synthetic streams.
pub async fn drive<B, E, I>(
    terminal: &mut Terminal<B>,
    state: &mut ConsoleState,
    commands: &mpsc::Sender<Command>,
    mut events: E,
    mut inputs: I,
    clock: &dyn Fn() -> DateTime<Utc>,
) -> ConsoleExit
where
    B: Backend,
    E: Stream<Item = Event> + Unpin,
    I: Stream<Item = ConsoleInput> + Unpin,
{
    let mut outbox: VecDeque<Command> = VecDeque::new();
    let mut dirty = true;
    let mut clear_first = false;
    let mut last_draw: Option<Instant> = None;
    let mut events_open = true;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let exit = loop {
        let draw_at = last_draw.map_or_else(Instant::now, |t| t + FRAME_INTERVAL);
        tokio::select! {
            biased;

            input = inputs.next() => match input {
                Some(ConsoleInput::Key(key)) => {
                    state.set_now(clock());
                    let outcome = handle_key(state, key);
                    state.key_pressed(&key);
                    outbox.extend(outcome.commands);
                    let mut leave = false;
                    for action in outcome.ui {
                        match action {
                            UiAction::Exit => leave = true,
                            UiAction::Redraw => clear_first = true,
                            UiAction::RunExtra(key) => {
                                if let Some(answer) = state.run_extra_key(key) {
                                    state.flash(answer, Tone::Warn);
                                }
                            }
                            other => state.apply_ui(other),
                        }
                    }
                    dirty = true;
                    if leave {
                        break if state.is_engine_stopped() {
                            ConsoleExit::EngineStopped
                        } else {
                            ConsoleExit::Quit { step_running: state.running_step().cloned() }
                        };
                    }
                }
                Some(ConsoleInput::Resize) => dirty = true,
                Some(ConsoleInput::Signal(signal)) => {
                    outbox.push_back(stop_for(signal));
                    break ConsoleExit::Signal(signal);
                }
                Some(ConsoleInput::TerminalLost(reason)) => {
                    break terminal_lost(&mut inputs, &mut outbox, reason).await;
                }
                None => {
                    break terminal_lost(&mut inputs, &mut outbox, "the terminal input ended".into()).await;
                }
            },

            permit = commands.reserve(), if !outbox.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(command) = outbox.pop_front() {
                        permit.send(command);
                    }
                }
                Err(_) => {
                    outbox.clear();
                    state.engine_stopped();
                    state.flash("the engine is gone: the command was not delivered", Tone::Bad);
                    dirty = true;
                }
            },

            _ = tokio::time::sleep_until(draw_at), if dirty => {
                let drawn = if std::mem::take(&mut clear_first) {
                    force_full_redraw(terminal)
                } else {
                    Ok(())
                }
                .and_then(|()| {
                    terminal
                        .draw(|frame| super::render(frame, state))
                        .map(|frame| frame.area)
                        .map_err(|e| e.to_string())
                })
                .map(|screen| state.set_screen(screen));
                if let Err(e) = drawn {
                    let reason = format!("drawing on the terminal failed: {e}");
                    break terminal_lost(&mut inputs, &mut outbox, reason).await;
                }
                dirty = false;
                last_draw = Some(Instant::now());
            },

            event = events.next(), if events_open => {
                state.set_now(clock());
                match event {
                    Some(event) => {
                        state.apply(&event);
                        // Take what is already waiting, up to a batch, then look at keys again.
                        for _ in 1..EVENT_BATCH {
                            match events.next().now_or_never() {
                                Some(Some(event)) => state.apply(&event),
                                Some(None) => {
                                    events_open = false;
                                    state.engine_stopped();
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                    None => {
                        events_open = false;
                        state.engine_stopped();
                    }
                }
                dirty = true;
                // A stream that is always ready (not a tokio channel) must not keep the
                // task from yielding, or timers (the next frame) would never fire.
                tokio::task::coop::consume_budget().await;
            },

            _ = second.tick() => {
                if state.set_now(clock()) {
                    dirty = true;
                }
            },
        }
    };
    flush(commands, outbox).await;
    exit
}

/// What the engine is told when a signal ends the console: the engine's own words for it.
fn stop_for(signal: ExitSignal) -> Command {
    Command::Stop {
        reason: crate::engine::signal_reason(signal.name()),
    }
}

/// The terminal is gone: waits up to [`crate::engine::HANGUP_WAIT`] for the signal a hang-up brings, so
/// that the engine is told the signal rather than only the lost terminal.
async fn terminal_lost<I>(
    inputs: &mut I,
    outbox: &mut VecDeque<Command>,
    reason: String,
) -> ConsoleExit
where
    I: Stream<Item = ConsoleInput> + Unpin,
{
    let deadline = Instant::now() + crate::engine::HANGUP_WAIT;
    while let Ok(Some(input)) = tokio::time::timeout_at(deadline, inputs.next()).await {
        if let ConsoleInput::Signal(signal) = input {
            outbox.push_back(stop_for(signal));
            return ConsoleExit::Signal(signal);
        }
    }
    outbox.push_back(Command::Stop {
        reason: format!("the terminal was lost: {reason}"),
    });
    ConsoleExit::TerminalLost { reason }
}

/// Clears the screen and makes the next frame write every cell. (`Terminal::clear` would
/// ask the terminal where its cursor is, and the answer would arrive on the input that
/// kongup's reader owns.)
fn force_full_redraw<B: Backend>(terminal: &mut Terminal<B>) -> Result<(), String> {
    terminal
        .backend_mut()
        .clear_region(ClearType::All)
        .map_err(|e| e.to_string())?;
    // An empty frame: the next one differs from it wherever there is something to show.
    terminal.draw(|_| {}).map(|_| ()).map_err(|e| e.to_string())
}

/// Hands the last commands to the engine, waiting a little for room; a gone engine is fine.
async fn flush(commands: &mpsc::Sender<Command>, outbox: VecDeque<Command>) {
    let deadline = Instant::now() + FLUSH_TIMEOUT;
    for command in outbox {
        match tokio::time::timeout_at(deadline, commands.send(command)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

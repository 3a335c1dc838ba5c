//! The console loop on a test terminal with synthetic inputs and engine events: keys come
//! before a flood of log lines, frames are coalesced, signals and a lost terminal end it
//! cleanly with `Quit` sent, and a busy engine never blocks the screen.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::KeyCode;
use futures::Stream;
use kongup::engine::command::Command;
use kongup::engine::event::{Event, LogStream};
use kongup::ui::input::{ConsoleInput, ExitSignal};
use kongup::ui::run::{EVENT_BATCH, drive};
use kongup::ui::{ConsoleExit, Theme};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use tokio::sync::mpsc;

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, buffer_text, char_key, key};

/// A test terminal that counts the frames flushed to it.
struct CountingBackend {
    inner: TestBackend,
    frames: usize,
}

impl Backend for CountingBackend {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.frames += 1;
        self.inner.flush()
    }
}

fn terminal() -> Terminal<CountingBackend> {
    Terminal::new(CountingBackend {
        inner: TestBackend::new(80, 24),
        frames: 0,
    })
    .unwrap()
}

fn fixed_clock() -> DateTime<Utc> {
    at(312)
}

fn inputs() -> (
    mpsc::UnboundedSender<ConsoleInput>,
    impl Stream<Item = ConsoleInput> + Unpin,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    (tx, futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

fn log_line(n: usize) -> Event {
    log(
        400,
        "restore-db",
        LogStream::Stdout,
        &format!("row batch {n}"),
    )
}

/// Log lines without end, always ready. At line `key_at` the operator presses `p`; the
/// stream notes at which line the engine has the `Pause`, then the operator presses `q`.
struct Flood {
    yielded: usize,
    key_at: usize,
    keys: mpsc::UnboundedSender<ConsoleInput>,
    engine: Arc<Mutex<mpsc::Receiver<Command>>>,
    paused_at: Arc<AtomicUsize>,
}

impl Stream for Flood {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Event>> {
        self.yielded += 1;
        let n = self.yielded;
        if n > self.key_at + 100 * EVENT_BATCH {
            // The key was never handled: end, so the test fails instead of hanging.
            self.keys.send(ConsoleInput::Key(char_key('q'))).unwrap();
            self.keys.send(ConsoleInput::Key(char_key('y'))).unwrap();
            return Poll::Ready(None);
        }
        if n == self.key_at {
            self.keys.send(ConsoleInput::Key(char_key('p'))).unwrap();
        }
        if n > self.key_at && self.paused_at.load(Ordering::SeqCst) == 0 {
            let received = self.engine.lock().unwrap().try_recv();
            if let Ok(command) = received {
                assert_eq!(command, Command::Pause);
                self.paused_at.store(n, Ordering::SeqCst);
                // A step runs: q asks first, y leaves.
                self.keys.send(ConsoleInput::Key(char_key('q'))).unwrap();
                self.keys.send(ConsoleInput::Key(char_key('y'))).unwrap();
            }
        }
        Poll::Ready(Some(log_line(n)))
    }
}

#[tokio::test]
async fn a_flood_of_log_lines_does_not_hold_a_key_back() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    state.apply(&kongup::engine::event::Event::RunChanged(
        kongup::engine::event::RunState::Running,
    ));
    let (commands, engine) = mpsc::channel(16);
    let engine = Arc::new(Mutex::new(engine));
    let (keys, inputs) = inputs();
    let paused_at = Arc::new(AtomicUsize::new(0));
    let key_at = 20_000;
    let flood = Flood {
        yielded: 0,
        key_at,
        keys,
        engine: engine.clone(),
        paused_at: paused_at.clone(),
    };
    let mut terminal = terminal();
    let exit = drive(
        &mut terminal,
        &mut state,
        &commands,
        flood,
        inputs,
        &fixed_clock,
    )
    .await;
    let paused_at = paused_at.load(Ordering::SeqCst);
    assert!(paused_at > key_at, "the Pause never reached the engine");
    // The key waits at most for the batch being applied, then the command goes out.
    assert!(
        paused_at - key_at <= 2 * EVENT_BATCH,
        "the key waited for {} log lines",
        paused_at - key_at
    );
    assert_eq!(
        exit,
        ConsoleExit::Quit {
            step_running: Some(cp("restore-db"))
        }
    );
    assert_eq!(engine.lock().unwrap().try_recv(), Ok(Command::Quit));
    assert!(state.logs().len() <= kongup::ui::state::LOG_CAPACITY);
}

/// Time stands still while the console is busy (paused tokio clock): twenty thousand
/// lines make a frame or two, not one each, and the last line is on screen.
#[tokio::test(start_paused = true)]
async fn frames_are_coalesced_while_events_pour_in() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    let (commands, mut engine) = mpsc::channel(16);
    let (events_tx, mut events_rx) = mpsc::channel(100_000);
    for n in 1..=20_000 {
        events_tx.try_send(log_line(n)).unwrap();
    }
    drop(events_tx);
    let (keys, inputs) = inputs();
    let events = futures::stream::poll_fn(move |cx| events_rx.poll_recv(cx));
    let mut terminal = terminal();
    let console = drive(
        &mut terminal,
        &mut state,
        &commands,
        events,
        inputs,
        &fixed_clock,
    );
    let operator = async {
        // Once the engine has gone quiet, leave (a step runs: q asks, y confirms).
        tokio::time::sleep(Duration::from_secs(2)).await;
        keys.send(ConsoleInput::Key(char_key('q'))).unwrap();
        keys.send(ConsoleInput::Key(char_key('y'))).unwrap();
    };
    let (exit, ()) = tokio::join!(console, operator);
    assert_eq!(
        exit,
        ConsoleExit::EngineStopped,
        "the event stream ended first"
    );
    let frames = terminal.backend().frames;
    // One at start, one after the flood, one per second of the idle clock, one for q.
    assert!(frames <= 6, "{frames} frames for one burst of events");
    let screen = buffer_text(terminal.backend().inner.buffer());
    assert!(screen.contains("row batch 20000"), "{screen}");
    assert_eq!(engine.try_recv(), Ok(Command::Quit));
}

#[tokio::test(start_paused = true)]
async fn an_idle_console_draws_only_when_the_clock_changes_the_screen() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    let (commands, _engine) = mpsc::channel(16);
    let (_events_tx, mut events_rx) = mpsc::channel::<Event>(16);
    let events = futures::stream::poll_fn(move |cx| events_rx.poll_recv(cx));
    let (keys, inputs) = inputs();
    let start = tokio::time::Instant::now();
    let clock = move || at(312 + start.elapsed().as_secs() as i64);
    let mut terminal = terminal();
    let console = drive(&mut terminal, &mut state, &commands, events, inputs, &clock);
    let operator = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        keys.send(ConsoleInput::Key(char_key('q'))).unwrap();
    };
    let (exit, ()) = tokio::join!(console, operator);
    assert_eq!(exit, ConsoleExit::Quit { step_running: None });
    let frames = terminal.backend().frames;
    // The elapsed time shows seconds: about one frame a second, never thirty.
    assert!(
        (55..=63).contains(&frames),
        "{frames} frames in 60 idle seconds"
    );
}

#[tokio::test]
async fn a_signal_ends_the_console_and_tells_the_engine() {
    for signal in [
        ExitSignal::Hangup,
        ExitSignal::Terminate,
        ExitSignal::Interrupt,
    ] {
        let mut state = scenarios::running_with_logs(Theme::COLOUR);
        let (commands, mut engine) = mpsc::channel(16);
        let (keys, inputs) = inputs();
        keys.send(ConsoleInput::Signal(signal)).unwrap();
        let exit = drive(
            &mut terminal(),
            &mut state,
            &commands,
            futures::stream::pending(),
            inputs,
            &fixed_clock,
        )
        .await;
        assert_eq!(exit, ConsoleExit::Signal(signal));
        // The session's end names the signal, not the operator.
        assert_eq!(
            engine.recv().await,
            Some(Command::Stop {
                reason: kongup::engine::signal_reason(signal.name())
            })
        );
    }
}

#[tokio::test]
async fn a_lost_terminal_ends_the_console_and_tells_the_engine() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    let (commands, mut engine) = mpsc::channel(16);
    let (keys, inputs) = inputs();
    keys.send(ConsoleInput::TerminalLost("the terminal hung up".into()))
        .unwrap();
    let exit = drive(
        &mut terminal(),
        &mut state,
        &commands,
        futures::stream::pending(),
        inputs,
        &fixed_clock,
    )
    .await;
    assert_eq!(
        exit,
        ConsoleExit::TerminalLost {
            reason: "the terminal hung up".into()
        }
    );
    assert_eq!(
        engine.recv().await,
        Some(Command::Stop {
            reason: "the terminal was lost: the terminal hung up".into()
        })
    );
}

/// A hang-up ends the terminal's input a moment before its SIGHUP arrives: the console
/// waits for the signal, so the session's end names it every time.
#[tokio::test(start_paused = true)]
async fn a_hangup_that_ends_the_input_before_its_sighup_is_named_sighup() {
    let mut state = scenarios::running_with_logs(Theme::COLOUR);
    let (commands, mut engine) = mpsc::channel(16);
    let (keys, inputs) = inputs();
    keys.send(ConsoleInput::TerminalLost("the terminal hung up".into()))
        .unwrap();
    let mut terminal = terminal();
    let console = drive(
        &mut terminal,
        &mut state,
        &commands,
        futures::stream::pending(),
        inputs,
        &fixed_clock,
    );
    let hangup = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        keys.send(ConsoleInput::Signal(ExitSignal::Hangup)).unwrap();
    };
    let (exit, ()) = tokio::join!(console, hangup);
    assert_eq!(exit, ConsoleExit::Signal(ExitSignal::Hangup));
    assert_eq!(
        engine.recv().await,
        Some(Command::Stop {
            reason: "SIGHUP: the terminal went away".into()
        })
    );
}

/// The engine is busy and its command channel full: keys still work, the screen still
/// changes, and the command goes out once there is room.
#[tokio::test]
async fn a_busy_engine_does_not_freeze_the_console() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    let (commands, mut engine) = mpsc::channel(1);
    commands.try_send(Command::Resume).unwrap();
    let (keys, inputs) = inputs();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(16);
    let events = futures::stream::poll_fn(move |cx| events_rx.poll_recv(cx));
    let mut terminal = terminal();
    let console = drive(
        &mut terminal,
        &mut state,
        &commands,
        events,
        inputs,
        &fixed_clock,
    );
    let operator = async {
        keys.send(ConsoleInput::Key(char_key('p'))).unwrap();
        keys.send(ConsoleInput::Key(char_key('?'))).unwrap();
        // The console took both keys although the Pause could not be delivered.
        events_tx
            .send(log(313, "deploy-y", LogStream::Stdout, "still drawing"))
            .await
            .unwrap();
        assert_eq!(engine.recv().await, Some(Command::Resume));
        assert_eq!(engine.recv().await, Some(Command::Pause));
        keys.send(ConsoleInput::Key(key(KeyCode::Esc))).unwrap();
        keys.send(ConsoleInput::Key(char_key('q'))).unwrap();
        assert_eq!(engine.recv().await, Some(Command::Quit));
    };
    let (exit, ()) = tokio::join!(console, operator);
    assert_eq!(exit, ConsoleExit::Quit { step_running: None });
    assert!(state.logs().iter().any(|l| l.text == "still drawing"));
}

#[tokio::test(start_paused = true)]
async fn when_the_engine_stops_the_screen_says_so_and_q_leaves() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    let (commands, engine) = mpsc::channel(16);
    drop(engine);
    let (keys, inputs) = inputs();
    let mut terminal = terminal();
    let console = drive(
        &mut terminal,
        &mut state,
        &commands,
        futures::stream::empty(),
        inputs,
        &fixed_clock,
    );
    let operator = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        keys.send(ConsoleInput::Key(char_key('q'))).unwrap();
    };
    let (exit, ()) = tokio::join!(console, operator);
    assert_eq!(exit, ConsoleExit::EngineStopped);
    assert!(state.is_engine_stopped());
    let screen = buffer_text(terminal.backend().inner.buffer());
    assert!(screen.contains("ENGINE STOPPED"), "{screen}");
}

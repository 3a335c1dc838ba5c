//! A step's output on its way to the step log and the console, handed on in batches: every
//! line in the order printed (the console's view left out only what its documented bounds
//! leave out, and says how much), a last line without a newline kept, and a secret cut
//! across two reads of the output still hidden.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use kongup::engine::event::LogStream;
use kongup::engine::journal::{JOURNAL_FILE, step_key};
use kongup::engine::rundir::step_log_path;
use kongup::engine::{Command, EngineHandle, Event, StepState};
use kongup::secrets::Redactor;
use kongup::testkit::flood::{command_run, flood_run, flood_step, logged_numbers};
use kongup::testkit::scenarios::char_key;
use kongup::ui::input::ConsoleInput;
use kongup::ui::run::drive;
use kongup::ui::state::{ConsoleState, LOG_CAPACITY, LogKind, Previewer};
use kongup::ui::{ConsoleExit, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

/// The engine's events on their way to the console, with what they showed of the flood
/// step's output: its numbers in the order they came, the lines shown, the lines said to
/// be left out. Once the step has ended, the operator presses `q`.
struct Watched<S> {
    events: S,
    keys: mpsc::UnboundedSender<ConsoleInput>,
    numbers: Vec<u64>,
    shown: u64,
    skipped: u64,
}

impl<S: Stream<Item = Event> + Unpin> Stream for Watched<S> {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let next = Pin::new(&mut self.events).poll_next(cx);
        let flood = step_key(&flood_step());
        match &next {
            Poll::Ready(Some(Event::Log(line))) if line.step.as_ref() == Some(&flood) => {
                self.shown += 1;
                if line.stream == LogStream::Stdout {
                    let number = line.text.parse().expect("the command prints numbers");
                    self.numbers.push(number);
                }
            }
            Poll::Ready(Some(Event::LogSkipped { step, lines })) => {
                assert_eq!(step.as_ref(), Some(&flood), "only the flood step prints");
                self.skipped += lines;
            }
            Poll::Ready(Some(Event::StepChanged { step, state, .. }))
                if *step == flood_step()
                    && matches!(state, StepState::Succeeded | StepState::Failed) =>
            {
                let _ = self.keys.send(ConsoleInput::Key(char_key('q')));
            }
            _ => {}
        }
        next
    }
}

fn confirm_flood() -> Command {
    Command::Confirm {
        step: flood_step(),
        typed: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbered_lines_reach_the_step_log_and_the_console_in_order() {
    const LINES: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let setup = flood_run(dir.path(), LINES);
    let (plan, expanded) = (setup.plan.clone(), setup.expanded.clone());
    let previewer = Previewer::from_engine(plan.clone(), expanded.clone(), setup.toolbox.clone());
    let handle = kongup::engine::spawn(setup).unwrap();
    let mut state = ConsoleState::new(&plan, &expanded, Utc::now(), Theme::COLOUR, previewer);
    let (keys, mut keys_rx) = mpsc::unbounded_channel();
    let inputs = futures::stream::poll_fn(move |cx| keys_rx.poll_recv(cx));
    handle.commands.send(confirm_flood()).await.unwrap();
    let mut events = Watched {
        events: handle.events,
        keys,
        numbers: Vec::new(),
        shown: 0,
        skipped: 0,
    };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let exit = tokio::time::timeout(
        Duration::from_secs(300),
        drive(
            &mut terminal,
            &mut state,
            &handle.commands,
            &mut events,
            inputs,
            &Utc::now,
        ),
    )
    .await
    .expect("the flood ends within five minutes");
    assert_eq!(exit, ConsoleExit::Quit { step_running: None });
    tokio::time::timeout(Duration::from_secs(20), handle.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let (logged, in_order, all) = logged_numbers(&handle.run_dir);
    assert_eq!(logged, LINES, "lines of the command in its step log");
    assert!(
        in_order,
        "the step log holds the lines in the order printed"
    );

    // What reached the console: in the order printed, the newest never left out, and
    // every line of the log either shown or counted in a notice.
    let numbers = &events.numbers;
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "the console got the lines out of order"
    );
    assert_eq!(
        numbers.last(),
        Some(&LINES),
        "the last line reached the console"
    );
    assert_eq!(
        events.shown + events.skipped,
        all,
        "every line of the log is shown or counted as left out"
    );

    // The logs pane's ring: the newest lines, in order, within its cap.
    let kept: Vec<u64> = state
        .logs()
        .iter()
        .filter(|entry| entry.kind == LogKind::Stdout)
        .map(|entry| entry.text.parse().unwrap())
        .collect();
    assert!(state.logs().len() <= LOG_CAPACITY);
    assert_eq!(kept.last(), Some(&LINES));
    assert!(kept.windows(2).all(|pair| pair[0] < pair[1]));
}

/// Runs the one step of `command_run` to its end with nobody reading the events, then
/// returns every event and the step log's text.
async fn run_to_end(mut handle: EngineHandle) -> (Vec<Event>, String) {
    handle.commands.send(confirm_flood()).await.unwrap();
    // The step runs to its end first, then the engine stops.
    handle.commands.send(Command::Quit).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), &mut handle.task)
        .await
        .expect("the step ends within a minute")
        .unwrap()
        .unwrap();
    let mut events = Vec::new();
    while let Some(event) = handle.events.recv().await {
        events.push(event);
    }
    let log = std::fs::read_to_string(step_log_path(&handle.run_dir, &flood_step())).unwrap();
    (events, log)
}

/// The command's own lines as the events showed them, in order.
fn output_lines(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Log(line) if line.stream == LogStream::Stdout => Some(line.text.as_str()),
            _ => None,
        })
        .collect()
}

/// The command's own lines as the step log has them, in order.
fn logged_output(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|line| line.split_once(" stdout| ").map(|(_, text)| text))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_line_without_a_newline_reaches_the_log_and_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let setup = command_run(
        dir.path(),
        &["printf", "first\\nsecond\\nthe last, without a newline"],
        Redactor::default(),
    );
    let (events, log) = run_to_end(kongup::engine::spawn(setup).unwrap()).await;
    let expected = ["first", "second", "the last, without a newline"];
    assert_eq!(output_lines(&events), expected);
    assert_eq!(logged_output(&log), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_cut_across_two_reads_of_the_output_is_still_hidden() {
    let dir = tempfile::tempdir().unwrap();
    // Half the secret, then (after kongup has read that half: it reads the output as it
    // comes) the rest of it and the end of the line.
    let setup = command_run(
        dir.path(),
        &[
            "sh",
            "-c",
            "printf 'token=hunt'; sleep 0.3; printf 'er2-value ok\\nnext\\n'",
        ],
        Redactor::new(["hunter2-value".to_string()]),
    );
    let handle = kongup::engine::spawn(setup).unwrap();
    let run_dir = handle.run_dir.clone();
    let (events, log) = run_to_end(handle).await;
    let expected = ["token=[REDACTED] ok", "next"];
    assert_eq!(output_lines(&events), expected);
    assert_eq!(logged_output(&log), expected);
    let journal = std::fs::read_to_string(run_dir.join(JOURNAL_FILE)).unwrap();
    // (The plan, in the journal, holds the two halves apart, as the command has them.)
    for (what, text) in [("the step log", &log), ("the journal", &journal)] {
        assert!(!text.contains("hunter2"), "{what} holds the secret");
    }
}

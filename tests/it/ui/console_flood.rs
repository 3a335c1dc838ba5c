//! The console on the real engine while a step floods its output: the console keeps up
//! as it can, and the step log still gets every line.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::Utc;
use futures::Stream;
use kongup::engine::{Command, Event, StepState};
use kongup::ui::input::ConsoleInput;
use kongup::ui::run::drive;
use kongup::ui::state::{ConsoleState, Previewer};
use kongup::ui::{ConsoleExit, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

use kongup::testkit::flood::{FLOOD_LINES, flood_run, flood_step, logged_numbers};
use kongup::testkit::scenarios::char_key;

/// The engine's events on their way to the console; once the flood step has ended, the
/// operator presses `q`.
struct QuitWhenDone<S> {
    events: S,
    keys: mpsc::UnboundedSender<ConsoleInput>,
}

impl<S: Stream<Item = Event> + Unpin> Stream for QuitWhenDone<S> {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let next = Pin::new(&mut self.events).poll_next(cx);
        if let Poll::Ready(Some(Event::StepChanged { step, state, .. })) = &next
            && *step == flood_step()
            && matches!(state, StepState::Succeeded | StepState::Failed)
        {
            let _ = self.keys.send(ConsoleInput::Key(char_key('q')));
        }
        next
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_reaches_the_step_log_whole_with_the_console_open() {
    let dir = tempfile::tempdir().unwrap();
    let setup = flood_run(dir.path(), FLOOD_LINES);
    let (plan, expanded) = (setup.plan.clone(), setup.expanded.clone());
    let previewer = Previewer::from_engine(plan.clone(), expanded.clone(), setup.toolbox.clone());
    let handle = kongup::engine::spawn(setup).unwrap();
    let mut state = ConsoleState::new(&plan, &expanded, Utc::now(), Theme::COLOUR, previewer);
    let (keys, mut keys_rx) = mpsc::unbounded_channel();
    let inputs = futures::stream::poll_fn(move |cx| keys_rx.poll_recv(cx));
    handle
        .commands
        .send(Command::Confirm {
            step: flood_step(),
            typed: None,
        })
        .await
        .unwrap();
    let events = QuitWhenDone {
        events: handle.events,
        keys,
    };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let exit = tokio::time::timeout(
        Duration::from_secs(300),
        drive(
            &mut terminal,
            &mut state,
            &handle.commands,
            events,
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
    let (numbers, in_order, _) = logged_numbers(&handle.run_dir);
    assert_eq!(numbers, FLOOD_LINES, "lines of the command in its step log");
    assert!(
        in_order,
        "the step log holds the lines in the order printed"
    );
}

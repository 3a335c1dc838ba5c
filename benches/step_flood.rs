//! Memory and CPU while a step floods its output: a step runs `seq 1 1000000` (as fast as
//! it can print) and kongup's peak resident memory (`VmHWM` in /proc/self/status) is read
//! before and after, with nobody reading the engine's events until the step has ended
//! (`no-reader`), with a reader that takes 512 events every 10 ms (`slow-reader`), and with
//! the console loop on an 80x24 test terminal (`console`). Each runs in a process of its
//! own, so each high-water mark is its own. It also says how many of the command's lines
//! reached the step log, and the CPU the process spent (its utime + stime from
//! /proc/self/stat, `seq` not counted) per 100 000 lines: the share of a core a step
//! printing 100 000 lines a second costs, the output path being batched (one hand-off per
//! read of the output, not per line: `engine::step::log`).
//!
//! `cargo bench --bench step_flood`

use std::pin::Pin;
use std::process::Command as Process;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{FutureExt, Stream};
use kongup::engine::{Command, EngineHandle, Event, StepState};
use kongup::testkit::flood::{FLOOD_LINES, flood_run, flood_step, logged_numbers};
use kongup::testkit::scenarios::char_key;
use kongup::ui::input::ConsoleInput;
use kongup::ui::state::{ConsoleState, Previewer};
use kongup::ui::{ConsoleExit, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

const SCENARIOS: [&str; 3] = ["no-reader", "slow-reader", "console"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--scenario") {
        scenario(&args[at + 1]);
        return;
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    for name in SCENARIOS {
        let out = Process::new(&exe)
            .args(["--scenario", name])
            .output()
            .expect("the bench runs itself");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{name} failed");
    }
}

/// The CPU this process has spent (user + system, every thread), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = Process::new("getconf").arg("CLK_TCK").output().unwrap();
    ticks as f64
        / String::from_utf8_lossy(&hz.stdout)
            .trim()
            .parse::<f64>()
            .unwrap()
}

/// A line of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn scenario(name: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let setup = flood_run(dir.path(), FLOOD_LINES);
    let (plan, expanded, toolbox) = (
        setup.plan.clone(),
        setup.expanded.clone(),
        setup.toolbox.clone(),
    );
    let before = status_kb("VmHWM");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let (run_dir, shown) = runtime.block_on(async move {
        let handle = kongup::engine::spawn(setup).expect("the engine starts");
        handle
            .commands
            .send(Command::Confirm {
                step: flood_step(),
                typed: None,
            })
            .await
            .unwrap();
        match name {
            "no-reader" => no_reader(handle).await,
            "slow-reader" => slow_reader(handle).await,
            "console" => {
                let previewer = Previewer::from_engine(plan.clone(), expanded.clone(), toolbox);
                let mut state =
                    ConsoleState::new(&plan, &expanded, Utc::now(), Theme::COLOUR, previewer);
                console(handle, &mut state).await
            }
            other => panic!("no scenario {other}"),
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let after = status_kb("VmHWM");
    let (numbers, _, _) = logged_numbers(&run_dir);
    println!(
        "{name:>11}: VmHWM {before} kB before, {after} kB after (+{} MB); the step log has \
         {numbers} of {FLOOD_LINES} lines; {shown} log events reached the reader; {wall:.1} s; \
         CPU {cpu:.2} s, {:.1} % of a core per 100 000 lines/s",
        (after.saturating_sub(before)) / 1024,
        100.0 * cpu * 100_000.0 / FLOOD_LINES as f64
    );
}

async fn no_reader(mut handle: EngineHandle) -> (std::path::PathBuf, u64) {
    handle.commands.send(Command::Quit).await.unwrap();
    (&mut handle.task).await.unwrap().unwrap();
    let mut shown = 0;
    while let Some(event) = handle.events.recv().await {
        shown += u64::from(matches!(event, Event::Log(_)));
    }
    (handle.run_dir, shown)
}

async fn slow_reader(mut handle: EngineHandle) -> (std::path::PathBuf, u64) {
    let mut shown = 0;
    'reading: loop {
        for _ in 0..512 {
            let Some(event) = handle.events.recv().now_or_never() else {
                break;
            };
            match event {
                Some(Event::Log(_)) => shown += 1,
                Some(Event::StepChanged { step, state, .. })
                    if step == flood_step()
                        && matches!(state, StepState::Succeeded | StepState::Failed) =>
                {
                    break 'reading;
                }
                Some(_) => {}
                None => break 'reading,
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.commands.send(Command::Quit).await.unwrap();
    (&mut handle.task).await.unwrap().unwrap();
    (handle.run_dir, shown)
}

/// The engine's events on their way to the console, counted; once the step has ended,
/// the operator presses `q`.
struct QuitWhenDone<S> {
    events: S,
    keys: mpsc::UnboundedSender<ConsoleInput>,
    shown: u64,
}

impl<S: Stream<Item = Event> + Unpin> Stream for QuitWhenDone<S> {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let next = Pin::new(&mut self.events).poll_next(cx);
        match &next {
            Poll::Ready(Some(Event::Log(_))) => self.shown += 1,
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

async fn console(handle: EngineHandle, state: &mut ConsoleState) -> (std::path::PathBuf, u64) {
    let (keys, mut keys_rx) = mpsc::unbounded_channel();
    let inputs = futures::stream::poll_fn(move |cx| keys_rx.poll_recv(cx));
    let mut events = QuitWhenDone {
        events: handle.events,
        keys,
        shown: 0,
    };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let exit = kongup::ui::run::drive(
        &mut terminal,
        state,
        &handle.commands,
        &mut events,
        inputs,
        &Utc::now,
    )
    .await;
    assert_eq!(exit, ConsoleExit::Quit { step_running: None });
    handle.task.await.unwrap().unwrap();
    (handle.run_dir, events.shown)
}

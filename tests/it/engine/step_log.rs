//! The step log is the audit trail: every line a command prints reaches
//! `logs/<step>.log`, whoever reads the event stream and however slowly; the live view may
//! thin a flood, and says how much it left out.

use std::time::Duration;

use kongup::engine::event::LOG_BACKLOG_LINES;
use kongup::engine::journal::step_key;
use kongup::engine::{Command, Event};
use kongup::testkit::flood::{FLOOD_LINES, flood_run, flood_step, logged_numbers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_reaches_the_step_log_whole_while_nobody_reads_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut handle = kongup::engine::spawn(flood_run(dir.path(), FLOOD_LINES)).unwrap();
    handle
        .commands
        .send(Command::Confirm {
            step: flood_step(),
            typed: None,
        })
        .await
        .unwrap();
    // The step runs to its end first, then the engine stops.
    handle.commands.send(Command::Quit).await.unwrap();
    tokio::time::timeout(Duration::from_secs(300), &mut handle.task)
        .await
        .expect("the flood ends within five minutes")
        .unwrap()
        .unwrap();
    let (numbers, in_order, all) = logged_numbers(&handle.run_dir);
    assert_eq!(numbers, FLOOD_LINES, "lines of the command in its step log");
    assert!(
        in_order,
        "the step log holds the lines in the order printed"
    );

    // Nobody read the events while the command printed: what waited for a reader is
    // bounded, and says how many lines it left out, exactly.
    let (mut shown, mut skipped, mut states) = (0, 0, 0);
    while let Some(event) = handle.events.recv().await {
        match event {
            Event::Log(_) => shown += 1,
            Event::LogSkipped { step, lines } => {
                assert_eq!(step, Some(step_key(&flood_step())));
                skipped += lines;
            }
            Event::StepChanged { .. } => states += 1,
            _ => {}
        }
    }
    assert!(
        shown <= LOG_BACKLOG_LINES as u64,
        "{shown} log events waited for a reader"
    );
    assert_eq!(
        shown + skipped,
        all,
        "every line of the log is shown or counted"
    );
    // ready, running, succeeded: no state is left out.
    assert_eq!(states, 3);
}

/// A terminal that takes a line every 100 µs: far slower than `seq`.
struct SlowTerminal(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SlowTerminal {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::thread::sleep(Duration::from_micros(100));
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_on_a_slow_terminal_thins_a_flood_and_says_how_much_the_log_has() {
    let dir = tempfile::tempdir().unwrap();
    let setup = flood_run(dir.path(), FLOOD_LINES);
    let plain = kongup::plain::PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: setup.toolbox.clone(),
        interactive: false,
    };
    let handle = kongup::engine::spawn(setup).unwrap();
    let run_dir = handle.run_dir.clone();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // `y`, then the end of input: quit, once the step has ended.
    let input = std::io::Cursor::new(b"y\n".to_vec());
    tokio::time::timeout(
        Duration::from_secs(300),
        kongup::plain::drive(handle, plain, input, SlowTerminal(printed.clone())),
    )
    .await
    .expect("the flood ends within five minutes")
    .unwrap();
    let (numbers, in_order, all) = logged_numbers(&run_dir);
    assert_eq!((numbers, in_order), (FLOOD_LINES, true));

    let text = String::from_utf8(printed.lock().unwrap().clone()).unwrap();
    let log = kongup::engine::rundir::step_log_path(&run_dir, &flood_step());
    let mut shown = 0;
    let mut skipped = 0;
    for line in text.lines() {
        if line.contains(" out| ") || line.contains(" kongup| ") {
            shown += 1;
        } else if let Some(notice) = line.strip_prefix("  … ") {
            let (count, rest) = notice.split_once(' ').unwrap();
            assert!(
                rest.ends_with(&format!("{} has every line", log.display())),
                "{line}"
            );
            skipped += count.parse::<u64>().unwrap();
        }
    }
    assert!(skipped > 0, "a slow terminal is not shown every line");
    assert_eq!(
        shown + skipped,
        all,
        "every line of the log is shown or counted"
    );
}

//! `kongup watch` end to end, as a colleague meets it: one tmux session drives the demo
//! with `--plain` (answers typed with `send-keys`), a second watches it at 80x24 with
//! `kongup watch --journal DIR`. The watcher's checklist follows each confirmed step within
//! a second of its record, its Enter changes nothing, and the journal holds no record of
//! the watcher's.

use std::path::Path;
use std::time::{Duration, Instant};

use kongup::engine::journal::{Entry, JOURNAL_FILE, Record, read_journal};
use kongup::testkit::tmux::{Tmux, done_count};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How soon the watcher shows what the driver journaled.
const FOLLOWS_WITHIN: Duration = Duration::from_secs(1);

fn records(run_dir: &Path) -> Vec<Record> {
    read_journal(&run_dir.join(JOURNAL_FILE))
        .map(|c| c.records)
        .unwrap_or_default()
}

/// Polls the journal until `ready` holds; the moment it was seen.
fn wait_journal(run_dir: &Path, what: &str, ready: impl Fn(&[Record]) -> bool) -> Instant {
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    loop {
        let records = records(run_dir);
        if ready(&records) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "waited for {what}: {records:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn settled(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| {
            matches!(
                r.entry,
                Entry::StepFinished { .. } | Entry::StepSkipped { .. }
            )
        })
        .count()
}

#[test]
fn a_watcher_follows_a_plain_demo_live_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let kongup = env!("CARGO_BIN_EXE_kongup");
    let driver = Tmux::start(
        "watched",
        &format!(
            "{kongup} demo --scenario dual-cluster --speed 20 --plain --journal {}",
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    driver.wait_for("the first prompt", |s| {
        s.contains("kongup> cluster/preflight")
    });
    let watcher = Tmux::start(
        "watcher",
        &format!("{kongup} watch --journal {}", run_dir.display()),
        SCREEN_TIMEOUT,
    );
    let screen = watcher.wait_for("the watcher's console", |s| {
        s.contains("WATCHING") && s.contains("[ready]") && done_count(s).is_some()
    });
    assert!(screen.contains("driven by"), "{screen}");

    // Enter (and the other keys that change a run) only say who drives it.
    let before = records(&run_dir);
    watcher.keys(&["Enter"]);
    let screen = watcher.wait_for("the refusal", |s| s.contains("read-only:"));
    assert!(screen.contains("drives this run"), "{screen}");
    assert!(
        !screen.contains("Confirm ·"),
        "no confirm dialog:\n{screen}"
    );
    for key in ["s", "R", "p", "t"] {
        watcher.keys(&[key]);
    }
    watcher.wait_for("still the main screen", |s| {
        s.contains("read-only:") && !s.contains("ROLLBACK") && !s.contains("Skip")
    });

    for step in 0..4 {
        let done = done_count(&watcher.screen()).unwrap();
        let settled_before = settled(&records(&run_dir));
        driver.keys(&["y", "Enter"]);
        let journaled = wait_journal(&run_dir, "the step's end", |r| settled(r) > settled_before);
        let shown = watcher.wait_for("the watcher to follow", |s| {
            done_count(s).is_some_and(|d| d > done)
        });
        let late = journaled.elapsed();
        assert!(
            late <= FOLLOWS_WITHIN,
            "step {step}: the watcher showed it {late:?} after its record:\n{shown}"
        );
    }

    // Only the driver wrote: its one session, and no confirm that it did not type.
    let after = records(&run_dir);
    assert!(after.starts_with(&before), "the journal was not rewritten");
    let sessions = after
        .iter()
        .filter(|r| matches!(r.entry, Entry::SessionOpened { .. }))
        .count();
    assert_eq!(sessions, 1, "{after:#?}");
    let confirmed = after
        .iter()
        .filter(|r| matches!(r.entry, Entry::StepConfirmed { .. }))
        .count();
    assert_eq!(
        confirmed, 4,
        "four y from the driver, none from the watcher"
    );
    assert!(!run_dir.join("handover").exists());

    // The driver leaves: the watcher says so and offers to take over.
    driver.keys(&["quit", "Enter"]);
    let screen = watcher.wait_for("the driver gone", |s| s.contains("nobody drives it"));
    assert!(screen.contains("WATCHING"), "{screen}");
    watcher.keys(&["q"]);
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while watcher.alive() {
        assert!(Instant::now() < deadline, "the watcher still runs after q");
        std::thread::sleep(Duration::from_millis(50));
    }
}

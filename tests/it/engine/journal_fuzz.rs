//! The journal reader (and the run folded from what it accepts) on mutations of journals
//! written by short engine runs: it refuses or reads, never panics. `scripts/fuzz.sh` runs
//! it longer.

use std::path::Path;

use crate::support::engine::*;
use crate::support::mutate::no_panics;
use kongup::engine::journal::{JOURNAL_FILE, check_lines};
use kongup::engine::view::RunView;
use kongup::engine::{Command, StepState};
use kongup::plan::model::Strategy;

/// Journals of two runs: one confirms a step, skips one and quits; one is killed while
/// a step runs, then resumed with a changed plan and the step marked done.
async fn written_journals() -> Vec<Vec<u8>> {
    let steps = || expanded(Strategy::InPlace, vec![scripted("a"), scripted("b")]);
    let first = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        first.path(),
        plan_named("p"),
        steps(),
        "v1",
        kit.toolbox.clone(),
    ));
    run.confirm_and_wait(&cluster("a"), StepState::Succeeded)
        .await;
    run.send(Command::Skip {
        step: cluster("b"),
        reason: "not needed".into(),
    })
    .await;
    run.wait_step(&cluster("b"), StepState::Skipped).await;
    run.quit().await;

    let second = tempfile::tempdir().unwrap();
    crash_while_running(
        setup(
            second.path(),
            plan_named("p"),
            steps(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "a",
    )
    .await;
    let mut resumed = setup(second.path(), plan_named("p"), steps(), "v2", kit.toolbox);
    resumed.options.accept_plan_change = true;
    let mut run = TestRun::start(resumed);
    run.wait_step(&cluster("a"), StepState::Interrupted).await;
    run.send(Command::MarkDone {
        step: cluster("a"),
        note: "done by hand".into(),
    })
    .await;
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.quit().await;

    [first, second]
        .iter()
        .map(|dir| std::fs::read(dir.path().join("run").join(JOURNAL_FILE)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_the_journal_reader_never_panics() {
    let seeds = written_journals().await;
    for seed in &seeds {
        let contents = check_lines(Path::new("journal.jsonl"), seed, None).expect("a valid seed");
        assert!(contents.records.len() > 4);
    }
    tokio::task::spawn_blocking(move || {
        no_panics("journal", &seeds, |bytes| {
            if let Ok(contents) = check_lines(Path::new("journal.jsonl"), bytes, None) {
                let _ = RunView::replay(&contents.records);
            }
        });
    })
    .await
    .unwrap();
}

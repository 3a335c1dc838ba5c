//! A rollback right after a split set by hand: the split being applied finishes first,
//! then the rollback sends all traffic to X, so the safe act is the last word; what the
//! load balancer was left with is said, read back; and the session ends for the reason
//! it really ended.

use std::io::{BufReader, Cursor};
use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::event::RollbackProgress;
use kongup::engine::journal::Entry;
use kongup::engine::{Command, Event};
use kongup::lb::Split;
use kongup::plain::{PlainSetup, drive};
use kongup::plan::model::Strategy;
use kongup::plan::steps::StepKind;

/// A load balancer that takes a while to answer each change.
fn slow_kit() -> Kit {
    kit_with(
        FakeDriver {
            delay: Some(Duration::from_millis(300)),
            ..FakeDriver::default()
        },
        kongup::secrets::Redactor::default(),
    )
}

fn review_only() -> kongup::plan::steps::ExpandedPlan {
    expanded(Strategy::BlueGreen, vec![step("review", StepKind::Review)])
}

#[tokio::test]
async fn a_rollback_right_after_a_split_set_by_hand_lets_it_finish_then_sends_all_traffic_to_x() {
    let dir = tempfile::tempdir().unwrap();
    let kit = slow_kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        review_only(),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::SetTraffic {
        y_percent: 50,
        override_health: false,
    })
    .await;
    run.send(Command::Rollback).await;
    run.wait_for("the rollback's traffic on X", |e| {
        matches!(
            e,
            Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
        )
    })
    .await;
    // The split set by hand reached the load balancer whole, and X's came after it.
    assert_eq!(
        *kit.driver.sets.lock().unwrap(),
        [Split::to_y(50), Split::ALL_X]
    );
    let journal = run.journal();
    let applied: Vec<(Split, Option<Split>, Option<String>)> = journal
        .iter()
        .filter_map(|r| match &r.entry {
            Entry::TrafficApplied {
                requested,
                applied,
                error,
            } => Some((*requested, *applied, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        applied,
        [
            (Split::to_y(50), Some(Split::to_y(50)), None),
            (Split::ALL_X, Some(Split::ALL_X), None)
        ]
    );
    let events = run.events.lock().unwrap().clone();
    let warnings: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Warning(w) => Some(w),
            _ => None,
        })
        .collect();
    assert!(
        warnings
            .iter()
            .all(|w| !w.contains("stopped by an abort") && !w.contains("half-applied")),
        "nobody aborted: {warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains(
            "the load balancer reported X 50% | Y 50%; the rollback now sends all traffic to X"
        )),
        "what the split set by hand left is said: {warnings:#?}"
    );
    let end = run.quit().await;
    assert_eq!(end.reason, "the operator quit");
}

#[tokio::test]
async fn plain_says_the_session_ended_with_its_input_not_that_the_operator_quit() {
    let dir = tempfile::tempdir().unwrap();
    let kit = slow_kit();
    let setup = setup(
        dir.path(),
        plan_named("p"),
        review_only(),
        "v1",
        kit.toolbox.clone(),
    );
    let plain = PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: kit.toolbox.clone(),
        interactive: false,
    };
    let handle = kongup::engine::spawn(setup).unwrap();
    let run_dir = handle.run_dir.clone();
    let out = SharedOut::default();
    let input = BufReader::new(Cursor::new(b"traffic 50\nrollback\n".to_vec()));
    let end = tokio::time::timeout(DEADLINE, drive(handle, plain, input, out.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.reason, "the input ended");
    let text = out.text();
    assert!(text.contains("stopped: the input ended."), "{text}");
    assert!(!text.contains("the operator quit"), "{text}");
    assert_eq!(
        *kit.driver.sets.lock().unwrap(),
        [Split::to_y(50), Split::ALL_X]
    );
    let journal =
        kongup::engine::journal::read_journal(&run_dir.join(kongup::engine::journal::JOURNAL_FILE))
            .unwrap();
    assert!(journal.records.iter().any(|r| matches!(
        &r.entry,
        Entry::SessionClosed { reason } if reason == "the input ended"
    )));
}

/// At a terminal, a hang-up ends the input a moment before its SIGHUP reaches kongup:
/// `--plain` holds the end of input back for up to a second, so the signal names the
/// session's end; with no signal, the end of input does after that second.
#[tokio::test]
async fn at_a_terminal_the_end_of_input_waits_for_the_hangups_signal() {
    for signalled in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let kit = slow_kit();
        let setup = setup(
            dir.path(),
            plan_named("p"),
            review_only(),
            "v1",
            kit.toolbox.clone(),
        );
        let plain = PlainSetup {
            plan: setup.plan.clone(),
            expanded: setup.expanded.clone(),
            toolbox: kit.toolbox.clone(),
            interactive: true,
        };
        let handle = kongup::engine::spawn(setup).unwrap();
        let commands = handle.commands.clone();
        let out = SharedOut::default();
        let started = std::time::Instant::now();
        let input = BufReader::new(Cursor::new(Vec::new()));
        let plain = tokio::spawn(drive(handle, plain, input, out.clone()));
        out.wait_for("type `help` for the commands").await;
        let sighup = kongup::engine::signal_reason("SIGHUP");
        if signalled {
            // What the engine's own handler does with the hang-up's SIGHUP.
            let reason = sighup.clone();
            commands.send(Command::Stop { reason }).await.unwrap();
        }
        let end = tokio::time::timeout(DEADLINE, plain)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if signalled {
            assert_eq!(end.reason, sighup, "{}", out.text());
        } else {
            assert_eq!(end.reason, "the input ended", "{}", out.text());
            assert!(started.elapsed() >= kongup::engine::HANGUP_WAIT);
        }
    }
}

//! The engine with stand-in actions: every transition of the step lifecycle, and the
//! rules around them (turns, confirms, typed confirmation, pause, abort, quit, resume).

use crate::support::engine::*;
use kongup::engine::journal::{ConfirmVia, Entry, StepResult};
use kongup::engine::{Command, EngineError, Event, RunState, StepState};
use kongup::plan::model::Strategy;
use kongup::plan::steps::{MigrationsCommand, RollbackKind, StepKind};
use std::sync::Arc;
use tokio::sync::Notify;

fn two_steps() -> kongup::plan::steps::ExpandedPlan {
    expanded(Strategy::InPlace, vec![scripted("a"), scripted("b")])
}

#[tokio::test]
async fn the_first_events_are_the_run_state_and_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.wait_step(&cluster("b"), StepState::Pending).await;
    let events = run.events.lock().unwrap().clone();
    assert_eq!(events[0], Event::RunChanged(RunState::Idle));
    assert!(
        matches!(&events[1], Event::StepChanged { step, state: StepState::Ready, .. } if *step == cluster("a"))
    );
    assert!(
        matches!(&events[2], Event::StepChanged { step, state: StepState::Pending, .. } if *step == cluster("b"))
    );
    run.quit().await;
}

// The multi-threaded runtime, as `kongup run` uses: journal writes hand the worker's
// other tasks over while they block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_ready_confirm_running_succeeded_then_done() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.wait_step(&cluster("a"), StepState::Ready).await;
    run.confirm(&cluster("a")).await;
    assert_eq!(
        run.wait_step(&cluster("a"), StepState::Running)
            .await
            .as_deref(),
        Some("attempt 1")
    );
    assert_eq!(
        run.wait_step(&cluster("a"), StepState::Succeeded)
            .await
            .as_deref(),
        Some("stand-in done")
    );
    run.wait_step(&cluster("b"), StepState::Ready).await;
    run.confirm_and_wait(&cluster("b"), StepState::Succeeded)
        .await;
    run.wait_for("the run to be done", |e| {
        *e == Event::RunChanged(RunState::Done)
    })
    .await;

    let journal = run.journal();
    let confirmed = position(&journal, |e| matches!(e, Entry::StepConfirmed { step, via: ConfirmVia::Confirm, .. } if step == "cluster/a")).unwrap();
    let started = position(
        &journal,
        |e| matches!(e, Entry::StepStarted { step, .. } if step == "cluster/a"),
    )
    .unwrap();
    let finished = position(&journal, |e| matches!(e, Entry::StepFinished { step, result: StepResult::Succeeded, .. } if step == "cluster/a")).unwrap();
    assert!(confirmed < started && started < finished);
    assert_eq!(journal[confirmed].by, "alice@test");
    assert!(
        matches!(&journal[started].entry, Entry::StepStarted { runs, .. } if runs == &["the stand-in action for a"])
    );
    assert_eq!(kit.stand_in.runs_of("a"), 1);
    let end = run.quit().await;
    assert_eq!(end.state, RunState::Done);
}

#[tokio::test]
async fn a_step_out_of_turn_is_refused_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.confirm(&cluster("b")).await;
    let warning = run.wait_warning("cluster/b").await;
    assert!(warning.contains("it is cluster/a's turn"), "{warning}");
    run.retry(&cluster("a")).await;
    let warning = run.wait_warning("cannot retry").await;
    assert!(warning.contains("it is pending"), "{warning}");
    let end = run.quit().await;
    assert_eq!(end.state, RunState::Idle);
    assert_eq!(kit.stand_in.runs.lock().unwrap().len(), 0);
    assert!(
        position(&run_journal(&dir), |e| matches!(
            e,
            Entry::StepStarted { .. }
        ))
        .is_none()
    );
}

fn run_journal(dir: &tempfile::TempDir) -> Vec<kongup::engine::journal::Record> {
    kongup::engine::journal::read_journal(&dir.path().join("run").join("journal.jsonl"))
        .unwrap()
        .records
}

#[tokio::test]
async fn failed_then_retry_runs_again_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    kit.stand_in.set("a", Behavior::Fail("exit status 3"));
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.confirm(&cluster("a")).await;
    assert_eq!(
        run.wait_step(&cluster("a"), StepState::Failed)
            .await
            .as_deref(),
        Some("exit status 3")
    );
    run.wait_for("the run to fail", |e| {
        *e == Event::RunChanged(RunState::Failed)
    })
    .await;
    // A failed step keeps its turn: the next one cannot be confirmed.
    run.confirm(&cluster("b")).await;
    run.wait_warning("it is cluster/a's turn").await;

    kit.stand_in.set("a", Behavior::Succeed);
    run.retry(&cluster("a")).await;
    assert_eq!(
        run.wait_step(&cluster("a"), StepState::Running)
            .await
            .as_deref(),
        Some("attempt 2")
    );
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.wait_step(&cluster("b"), StepState::Ready).await;
    assert_eq!(kit.stand_in.runs_of("a"), 2);
    let journal = run.journal();
    assert!(
        position(&journal, |e| matches!(
            e,
            Entry::StepConfirmed {
                via: ConfirmVia::Retry,
                ..
            }
        ))
        .is_some()
    );
    assert!(
        position(&journal, |e| matches!(
            e,
            Entry::StepStarted { attempt: 2, .. }
        ))
        .is_some()
    );
    run.quit().await;
}

#[tokio::test]
async fn failed_then_marked_done_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    kit.stand_in.set("a", Behavior::Fail("boom"));
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.confirm_and_wait(&cluster("a"), StepState::Failed).await;
    run.send(Command::MarkDone {
        step: cluster("a"),
        note: "  ".into(),
    })
    .await;
    run.wait_warning("needs a note").await;
    run.send(Command::MarkDone {
        step: cluster("a"),
        note: "restarted it by hand".into(),
    })
    .await;
    let detail = run
        .wait_step(&cluster("a"), StepState::Succeeded)
        .await
        .unwrap();
    assert!(
        detail.contains("restarted it by hand") && detail.contains("alice@test"),
        "{detail}"
    );
    run.wait_step(&cluster("b"), StepState::Ready).await;
    assert_eq!(kit.stand_in.runs_of("a"), 1);
    run.quit().await;
}

#[tokio::test]
async fn ready_then_skipped_with_a_reason_and_plan_skips_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut planned_skip = scripted("c");
    planned_skip.skip_reason = Some("the plan says so".into());
    let steps = expanded(
        Strategy::InPlace,
        vec![scripted("a"), scripted("b"), planned_skip],
    );
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.send(Command::Skip {
        step: cluster("a"),
        reason: "".into(),
    })
    .await;
    run.wait_warning("needs a reason").await;
    run.send(Command::Skip {
        step: cluster("a"),
        reason: "done last week".into(),
    })
    .await;
    assert_eq!(
        run.wait_step(&cluster("a"), StepState::Skipped)
            .await
            .as_deref(),
        Some("done last week")
    );
    run.confirm_and_wait(&cluster("b"), StepState::Succeeded)
        .await;
    assert_eq!(
        run.wait_step(&cluster("c"), StepState::Skipped)
            .await
            .as_deref(),
        Some("the plan says so")
    );
    run.wait_for("done", |e| *e == Event::RunChanged(RunState::Done))
        .await;
    let journal = run.journal();
    assert!(
        position(
            &journal,
            |e| matches!(e, Entry::StepSkipped { step, by_plan: true, .. } if step == "cluster/c")
        )
        .is_some()
    );
    assert!(
        position(
            &journal,
            |e| matches!(e, Entry::StepSkipped { step, by_plan: false, .. } if step == "cluster/a")
        )
        .is_some()
    );
    assert_eq!(kit.stand_in.runs_of("a"), 0);
    assert_eq!(kit.stand_in.runs_of("c"), 0);
    run.quit().await;
}

#[tokio::test]
async fn manual_steps_complete_on_confirm_as_done_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(Strategy::InPlace, vec![step("review", StepKind::Review)]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.confirm(&cluster("review")).await;
    let detail = run
        .wait_step(&cluster("review"), StepState::Succeeded)
        .await
        .unwrap();
    assert!(detail.contains("done by hand"), "{detail}");
    let journal = run.journal();
    assert!(
        position(
            &journal,
            |e| matches!(e, Entry::StepStarted { runs, .. } if runs[0].contains("nothing runs"))
        )
        .is_some()
    );
    run.quit().await;
}

#[tokio::test]
async fn an_irreversible_step_needs_the_plan_name_typed() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut finish = step(
        "migrations-finish",
        StepKind::Migrations(MigrationsCommand::Finish),
    );
    finish.irreversible = true;
    finish.irreversible_because = Some("X cannot use the database afterwards".into());
    let steps = expanded(Strategy::InPlace, vec![finish]);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("prod-eu"),
        steps,
        "v1",
        kit.toolbox,
    ));
    let step_ref = cluster("migrations-finish");
    run.confirm(&step_ref).await;
    let warning = run.wait_warning("irreversible").await;
    assert!(
        warning.contains("X cannot use the database") && warning.contains("'prod-eu'"),
        "{warning}"
    );
    run.send(Command::Confirm {
        step: step_ref.clone(),
        typed: Some("y".into()),
    })
    .await;
    run.wait_warning("does not match").await;
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 0);
    run.send(Command::Confirm {
        step: step_ref.clone(),
        typed: Some("prod-eu".into()),
    })
    .await;
    run.wait_step(&step_ref, StepState::Succeeded).await;
    assert!(
        position(&run.journal(), |e| matches!(
            e,
            Entry::StepConfirmed { typed: true, .. }
        ))
        .is_some()
    );
    run.quit().await;
}

#[tokio::test]
async fn retrying_an_irreversible_step_needs_the_plan_name_typed_too() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut finish = with_rollback(
        step(
            "migrations-finish",
            StepKind::Migrations(MigrationsCommand::Finish),
        ),
        RollbackKind::RestoreDatabase,
    );
    finish.irreversible = true;
    kit.stand_in
        .set("migrations-finish", Behavior::Fail("boom"));
    // A step after the finish: the run is not done, so it can still be rolled back.
    let steps = expanded(Strategy::InPlace, vec![finish, scripted("tidy-up")]);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("prod-eu"),
        steps,
        "v1",
        kit.toolbox,
    ));
    let step_ref = cluster("migrations-finish");
    run.send(Command::Confirm {
        step: step_ref.clone(),
        typed: Some("prod-eu".into()),
    })
    .await;
    run.wait_step(&step_ref, StepState::Failed).await;
    kit.stand_in.set("migrations-finish", Behavior::Succeed);
    run.retry(&step_ref).await;
    let warning = run.wait_warning("irreversible").await;
    assert!(warning.contains("'prod-eu'"), "{warning}");
    run.send(Command::Retry {
        step: step_ref.clone(),
        typed: Some("prod".into()),
    })
    .await;
    run.wait_warning("was not retried: the typed name does not match")
        .await;
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 1);
    run.send(Command::Retry {
        step: step_ref.clone(),
        typed: Some("prod-eu".into()),
    })
    .await;
    run.wait_step(&step_ref, StepState::Succeeded).await;
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 2);
    let confirms: Vec<_> = run
        .journal()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::StepConfirmed { via, typed, .. } => Some((via, typed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        confirms,
        [(ConfirmVia::Confirm, true), (ConfirmVia::Retry, true)]
    );

    // The rollback's restore is irreversible too: its retry takes the name as well.
    kit.stand_in
        .set("migrations-finish", Behavior::Fail("restore failed"));
    run.send(Command::Rollback).await;
    let restore = rollback_ref("migrations-finish");
    run.wait_step(&restore, StepState::Ready).await;
    run.send(Command::Confirm {
        step: restore.clone(),
        typed: Some("prod-eu".into()),
    })
    .await;
    run.wait_step(&restore, StepState::Failed).await;
    run.retry(&restore).await;
    run.wait_warning("irreversible").await;
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 3);
    kit.stand_in.set("migrations-finish", Behavior::Succeed);
    run.send(Command::Retry {
        step: restore.clone(),
        typed: Some("prod-eu".into()),
    })
    .await;
    run.wait_step(&restore, StepState::Succeeded).await;
    run.quit().await;
}

#[tokio::test]
async fn paused_runs_start_nothing_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.send(Command::Pause).await;
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    run.confirm(&cluster("a")).await;
    run.wait_warning("the run is paused").await;
    assert_eq!(kit.stand_in.runs_of("a"), 0);
    run.send(Command::Resume).await;
    run.wait_for("resumed", |e| *e == Event::RunChanged(RunState::Idle))
        .await;
    run.confirm_and_wait(&cluster("a"), StepState::Succeeded)
        .await;
    run.quit().await;
}

#[tokio::test]
async fn abort_stops_the_running_step_and_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    kit.stand_in
        .set("a", Behavior::Block(Arc::new(Notify::new())));
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.confirm_and_wait(&cluster("a"), StepState::Running)
        .await;
    run.confirm(&cluster("b")).await;
    run.wait_warning("cluster/a is running").await;
    run.send(Command::Abort).await;
    assert_eq!(
        run.wait_step(&cluster("a"), StepState::Failed)
            .await
            .as_deref(),
        Some("aborted by alice@test"),
        "the step says who aborted it"
    );
    let journal = run.journal();
    let abort = position(&journal, |e| matches!(e, Entry::AbortRequested { .. })).unwrap();
    let finished = position(&journal, |e| matches!(e, Entry::StepFinished { .. })).unwrap();
    assert!(abort < finished);
    run.quit().await;
}

#[tokio::test]
async fn quit_lets_the_running_step_finish_and_journals_its_result_first() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let release = Arc::new(Notify::new());
    kit.stand_in.set("a", Behavior::Block(release.clone()));
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.confirm_and_wait(&cluster("a"), StepState::Running)
        .await;
    run.send(Command::Quit).await;
    run.wait_warning("still running").await;
    assert!(!run.task.is_finished(), "the engine waits for the step");
    release.notify_one();
    let end = tokio::time::timeout(DEADLINE, run.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(end.reason, "the operator quit");
    let journal = run_journal(&dir);
    let finished = position(&journal, |e| {
        matches!(
            e,
            Entry::StepFinished {
                result: StepResult::Succeeded,
                ..
            }
        )
    })
    .unwrap();
    let closed = position(&journal, |e| matches!(e, Entry::SessionClosed { .. })).unwrap();
    assert!(finished < closed);
    assert_eq!(kit.stand_in.runs_of("b"), 0);
}

#[tokio::test]
async fn a_step_running_when_the_engine_died_is_interrupted_and_retry_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    crash_while_running(
        setup(
            dir.path(),
            plan_named("p"),
            two_steps(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "a",
    )
    .await;

    kit.stand_in.set("a", Behavior::Succeed);
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.wait_for("paused", |e| *e == Event::RunChanged(RunState::Paused))
        .await;
    let detail = run
        .wait_step(&cluster("a"), StepState::Interrupted)
        .await
        .unwrap();
    assert!(detail.contains("retry"), "{detail}");
    run.wait_warning("interrupted").await;
    assert_eq!(kit.stand_in.runs_of("b"), 0);
    run.confirm(&cluster("a")).await;
    run.wait_warning("cannot confirm").await;
    run.retry(&cluster("a")).await;
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.confirm_and_wait(&cluster("b"), StepState::Succeeded)
        .await;
    let journal = run.journal();
    assert!(
        position(
            &journal,
            |e| matches!(e, Entry::StepInterrupted { step } if step == "cluster/a")
        )
        .is_some()
    );
    assert_eq!(run.quit().await.state, RunState::Done);
}

#[tokio::test]
async fn an_interrupted_step_can_be_marked_done() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    crash_while_running(
        setup(
            dir.path(),
            plan_named("p"),
            two_steps(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "a",
    )
    .await;

    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.wait_step(&cluster("a"), StepState::Interrupted).await;
    run.send(Command::MarkDone {
        step: cluster("a"),
        note: "checked: Y is up".into(),
    })
    .await;
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.wait_step(&cluster("b"), StepState::Ready).await;
    assert_eq!(kit.stand_in.runs_of("a"), 1);
    run.quit().await;
}

#[tokio::test]
async fn a_second_engine_on_the_same_run_is_refused_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = kit();
    let run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        first.toolbox,
    ));
    let second = kit();
    let mut other = setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        second.toolbox,
    );
    other.operator = kongup::engine::Operator("bob@elsewhere".into());
    let err = kongup::engine::spawn(other).err().expect("refused");
    assert!(matches!(err, EngineError::Lock(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("alice@test") && message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    run.quit().await;
}

#[tokio::test]
async fn a_changed_plan_is_refused_with_a_summary_unless_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let text = "name: p\ntraffic:\n  bake: 30s\n";
    let run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        text,
        kit.toolbox.clone(),
    ));
    run.quit().await;

    let changed = "name: p\ntraffic:\n  bake: 60s\n";
    let err = kongup::engine::spawn(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        changed,
        kit.toolbox.clone(),
    ))
    .err()
    .expect("refused");
    let message = err.to_string();
    assert!(matches!(err, EngineError::PlanChanged { .. }), "{message}");
    assert!(
        message.contains("traffic.bake (line 3): - bake: 30s"),
        "{message}"
    );
    assert!(
        message.contains("traffic.bake (line 3): + bake: 60s"),
        "{message}"
    );
    assert!(message.contains("--accept-plan-change"), "{message}");

    let mut accepting = setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        changed,
        kit.toolbox,
    );
    accepting.options.accept_plan_change = true;
    let mut run = TestRun::start(accepting);
    run.wait_warning("plan changed").await;
    let journal = run.journal();
    let accepted = journal.iter().find_map(|r| match &r.entry {
        Entry::PlanChangeAccepted {
            summary, plan_text, ..
        } => Some((summary.clone(), plan_text.clone(), r.by.clone())),
        _ => None,
    });
    let (summary, plan_text, by) = accepted.expect("the acceptance is journaled");
    assert_eq!(summary.len(), 2);
    assert_eq!(plan_text, changed);
    assert_eq!(by, "alice@test");
    run.quit().await;
}

#[tokio::test]
async fn a_torn_last_line_is_ignored_with_a_warning_and_the_run_goes_on() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox.clone(),
    ));
    run.confirm_and_wait(&cluster("a"), StepState::Succeeded)
        .await;
    run.quit().await;
    let path = dir.path().join("run").join("journal.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(br#"{"seq":99,"at":"2025-01-01T00:00:00Z","by":"x","event":"step-conf"#)
        .unwrap();
    drop(file);

    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.wait_warning("torn").await;
    run.confirm_and_wait(&cluster("b"), StepState::Succeeded)
        .await;
    run.quit().await;
    let contents = kongup::engine::journal::read_journal(&path).unwrap();
    assert!(contents.torn_tail.is_none(), "the torn tail was cut off");
    assert!(
        contents
            .records
            .windows(2)
            .all(|w| w[1].seq == w[0].seq + 1)
    );
}

#[tokio::test]
async fn a_secret_never_reaches_events_logs_or_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-t0ken-value";
    let kit = kit_with(
        FakeDriver::default(),
        kongup::secrets::Redactor::new([secret.to_string()]),
    );
    kit.stand_in
        .set("a", Behavior::Print(format!("token={secret}")));
    let mut with_command = scripted("b");
    with_command.commands = vec![shell_command(&format!(
        "echo the token is {secret}; echo {secret} >&2"
    ))];
    let steps = expanded(Strategy::InPlace, vec![scripted("a"), with_command]);
    let mut run = TestRun::start(setup(dir.path(), plan_named("p"), steps, "v1", kit.toolbox));
    run.confirm_and_wait(&cluster("a"), StepState::Succeeded)
        .await;
    run.confirm_and_wait(&cluster("b"), StepState::Succeeded)
        .await;
    let events = run.events.clone();
    run.quit().await;

    let events = format!("{:?}", events.lock().unwrap());
    assert!(events.contains("token=[REDACTED]"), "{events}");
    assert!(!events.contains(secret), "{events}");
    for entry in walk(&dir.path().join("run")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains(secret),
            "{} holds the secret:\n{text}",
            entry.display()
        );
    }
    let log = std::fs::read_to_string(dir.path().join("run/logs/cluster-b.log")).unwrap();
    assert!(log.contains("the token is [REDACTED]"), "{log}");
    assert!(log.contains("stderr| [REDACTED]"), "{log}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn events_of_other_tasks_reach_the_same_stream_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver::default(),
        kongup::secrets::Redactor::new(["t0ken".to_string()]),
    );
    let (side, side_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut setup = setup(dir.path(), plan_named("p"), two_steps(), "v1", kit.toolbox);
    setup.side_events = Some(side_rx);
    let mut run = TestRun::start(setup);
    side.send(Event::Warning("node kong-1 answered with t0ken".into()))
        .unwrap();
    let warning = run.wait_warning("kong-1").await;
    assert_eq!(warning, "node kong-1 answered with [REDACTED]");
    drop(side);
    run.confirm_and_wait(&cluster("a"), StepState::Succeeded)
        .await;
    run.quit().await;
}

#[tokio::test]
async fn a_command_that_would_reset_the_database_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let ran = dir.path().join("ran");
    let mut reset = step("reset", StepKind::Manual);
    reset.commands = vec![shell_command(&format!(
        "touch '{}'; kong migrations reset --yes",
        ran.display()
    ))];
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        expanded(Strategy::InPlace, vec![reset]),
        "v1",
        kit.toolbox,
    ));
    run.confirm(&cluster("reset")).await;
    let detail = run
        .wait_step(&cluster("reset"), StepState::Failed)
        .await
        .unwrap();
    assert!(detail.contains("kongup will not run"), "{detail}");
    assert!(!ran.exists(), "the command ran");
    run.quit().await;
}

#[tokio::test]
async fn a_short_secret_is_warned_about_and_step_keys_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit_with(
        FakeDriver::default(),
        kongup::secrets::Redactor::new(["key".to_string()]),
    );
    kit.stand_in
        .set("backup-keyring", Behavior::Print("the key is safe".into()));
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        expanded(Strategy::InPlace, vec![scripted("backup-keyring")]),
        "name: p\nbackup:\n  keyring: [/etc/kong/key.pem]\n",
        kit.toolbox,
    ));
    let warning = run.wait_warning("shorter than 8 characters").await;
    assert!(warning.contains("1 of the plan's secrets is"), "{warning}");
    run.confirm_and_wait(&cluster("backup-keyring"), StepState::Succeeded)
        .await;
    let journal = run.journal();
    let text = std::fs::read_to_string(run.run_dir.join("journal.jsonl")).unwrap();
    // Structure stays whole: every record's step key, and the fact's.
    for record in &journal {
        match &record.entry {
            Entry::StepConfirmed { step, .. }
            | Entry::StepStarted { step, .. }
            | Entry::StepFinished { step, .. } => {
                assert_eq!(step, "cluster/backup-keyring", "{text}")
            }
            Entry::Fact { step, key, value } => {
                assert_eq!(
                    (step.as_str(), key.as_str()),
                    ("cluster/backup-keyring", "printed")
                );
                assert_eq!(value, "the [REDACTED] is safe");
            }
            _ => {}
        }
    }
    assert!(!text.contains("the key is safe"), "{text}");
    assert!(matches!(
        &journal[0].entry,
        Entry::RunCreated { plan_text, .. } if plan_text.contains("key.pem")
    ));
    run.quit().await;
}

/// The notifier learns who started a step from the event, not from the log's wording.
#[tokio::test]
async fn a_step_start_says_who_confirmed_it_and_which_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut run = TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit.toolbox,
    ));
    run.confirm(&cluster("a")).await;
    let started = run
        .wait_for("the step's start", |e| {
            matches!(e, Event::StepStarted { .. })
        })
        .await;
    assert_eq!(
        started,
        Event::StepStarted {
            step: cluster("a"),
            attempt: 1,
            who: Some("alice@test".into()),
            via: kongup::engine::journal::ConfirmVia::Confirm,
        }
    );
}

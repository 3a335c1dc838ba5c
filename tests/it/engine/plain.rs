//! The `--plain` driver in process: scripted lines in order, the one-command rollback,
//! typed confirmation, and a person's early `y` refused rather than held.

use std::io::{BufReader, Cursor, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::{RunState, SessionEnd};
use kongup::lb::Split;
use kongup::plain::{PlainSetup, drive};
use kongup::plan::model::Strategy;
use kongup::plan::steps::{ClusterSide, MigrationsCommand, RollbackKind, StepKind};
use tokio::sync::Notify;

fn plain_run(
    dir: &std::path::Path,
    plan: kongup::plan::model::Plan,
    steps: kongup::plan::steps::ExpandedPlan,
    kit: &Kit,
    interactive: bool,
    input: impl std::io::BufRead + Send + 'static,
    out: SharedOut,
) -> tokio::task::JoinHandle<Result<SessionEnd, kongup::engine::EngineError>> {
    let setup = setup(dir, plan, steps, "v1", kit.toolbox.clone());
    let plain = PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: kit.toolbox.clone(),
        interactive,
    };
    let handle = kongup::engine::spawn(setup).unwrap();
    tokio::spawn(drive(handle, plain, input, out))
}

async fn end(
    task: tokio::task::JoinHandle<Result<SessionEnd, kongup::engine::EngineError>>,
) -> SessionEnd {
    tokio::time::timeout(DEADLINE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn scripted_lines_confirm_in_order_and_rollback_takes_traffic_back() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(
        Strategy::BlueGreen,
        vec![
            with_rollback(
                scripted("start-y"),
                RollbackKind::StopNodes {
                    cluster: ClusterSide::Y,
                    wave: None,
                },
            ),
            with_rollback(
                step(
                    "shift-traffic-50",
                    StepKind::ShiftTraffic {
                        y_percent: 50,
                        bake: Duration::ZERO,
                    },
                ),
                RollbackKind::TrafficToX,
            ),
            step(
                "shift-traffic-100",
                StepKind::ShiftTraffic {
                    y_percent: 100,
                    bake: Duration::ZERO,
                },
            ),
        ],
    );
    let out = SharedOut::default();
    let (mut keyboard, pipe) = UnixStream::pair().unwrap();
    let task = plain_run(
        dir.path(),
        plan_named("bg"),
        steps,
        &kit,
        false,
        BufReader::new(pipe),
        out.clone(),
    );
    keyboard.write_all(b"y\ny\n").unwrap();
    out.wait_for("succeeded cluster/shift-traffic-50").await;
    keyboard.write_all(b"rollback\n").unwrap();
    out.wait_for("kongup> rollback/start-y").await;
    keyboard.write_all(b"y\n").unwrap();
    drop(keyboard);
    let end = end(task).await;
    let text = out.text();
    assert_eq!(end.state, RunState::RolledBack, "{text}");
    for expected in [
        "== cluster/start-y: Step start-y",
        "     - the stand-in action for start-y",
        "traffic: asked for X 50% | Y 50%; the load balancer reports X 50% | Y 50%",
        "ROLLBACK started",
        "all traffic is on X, confirmed by the load balancer",
        "rollback plan, each step confirmed like any other: rollback/start-y",
        "== rollback/start-y: Undo start-y",
        "rolled-back cluster/start-y",
        "rollback finished",
        "run: ROLLED BACK",
        "The run was rolled back: the upgrade did not go through.",
    ] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
    assert_eq!(*kit.driver.split.lock().unwrap(), Some(Split::ALL_X));
    assert!(
        !text.contains("-> cluster/shift-traffic-100 running"),
        "{text}"
    );
}

#[tokio::test]
async fn an_irreversible_step_takes_the_plan_name_and_never_y() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut finish = step(
        "migrations-finish",
        StepKind::Migrations(MigrationsCommand::Finish),
    );
    finish.irreversible = true;
    finish.irreversible_because = Some("X cannot use the database afterwards".into());
    let steps = expanded(Strategy::InPlace, vec![finish]);
    let out = SharedOut::default();
    let input = Cursor::new(b"y\nprod\nprod-eu\n".to_vec());
    let task = plain_run(
        dir.path(),
        plan_named("prod-eu"),
        steps,
        &kit,
        false,
        input,
        out.clone(),
    );
    let end = end(task).await;
    let text = out.text();
    assert_eq!(end.state, RunState::Done, "{text}");
    assert!(
        text.contains("   IRREVERSIBLE: X cannot use the database afterwards"),
        "{text}"
    );
    assert!(
        text.contains("cluster/migrations-finish cannot be undone: type the plan name (prod-eu)"),
        "{text}"
    );
    assert!(
        text.contains(
            "! cluster/migrations-finish was not confirmed: the typed name does not match"
        ),
        "{text}"
    );
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 1);
}

#[tokio::test]
async fn from_a_terminal_an_early_y_is_refused_not_kept_for_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let release = Arc::new(Notify::new());
    kit.stand_in.set("a", Behavior::Block(release.clone()));
    let steps = expanded(Strategy::InPlace, vec![scripted("a"), scripted("b")]);
    let (mut keyboard, terminal) = UnixStream::pair().unwrap();
    let out = SharedOut::default();
    let task = plain_run(
        dir.path(),
        plan_named("p"),
        steps,
        &kit,
        true,
        BufReader::new(terminal),
        out.clone(),
    );
    out.wait_for("kongup> cluster/a: y").await;
    keyboard.write_all(b"y\n").unwrap();
    out.wait_for("-> cluster/a running").await;
    keyboard.write_all(b"y\n").unwrap();
    out.wait_for("'y' answers a step, but none is waiting for an answer now")
        .await;
    release.notify_one();
    out.wait_for("kongup> cluster/b: y").await;
    keyboard.write_all(b"quit\n").unwrap();
    let end = end(task).await;
    assert_eq!(end.state, RunState::Waiting);
    assert_eq!(kit.stand_in.runs_of("b"), 0, "{}", out.text());
}

#[tokio::test]
async fn retrying_an_irreversible_step_asks_for_the_plan_name_like_a_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let mut finish = step(
        "migrations-finish",
        StepKind::Migrations(MigrationsCommand::Finish),
    );
    finish.irreversible = true;
    kit.stand_in
        .set("migrations-finish", Behavior::Fail("boom"));
    let steps = expanded(Strategy::InPlace, vec![finish]);
    let (mut keyboard, terminal) = UnixStream::pair().unwrap();
    let out = SharedOut::default();
    let task = plain_run(
        dir.path(),
        plan_named("prod-eu"),
        steps,
        &kit,
        true,
        BufReader::new(terminal),
        out.clone(),
    );
    out.wait_for("kongup> cluster/migrations-finish: type the plan name")
        .await;
    keyboard.write_all(b"prod-eu\n").unwrap();
    out.wait_for("FAILED cluster/migrations-finish").await;
    kit.stand_in.set("migrations-finish", Behavior::Succeed);
    keyboard.write_all(b"retry\n").unwrap();
    out.wait_for(
        "cluster/migrations-finish cannot be undone: type the plan name (prod-eu) to run it again",
    )
    .await;
    assert_eq!(
        kit.stand_in.runs_of("migrations-finish"),
        1,
        "a bare retry ran the irreversible step again:\n{}",
        out.text()
    );
    keyboard.write_all(b"prod\n").unwrap();
    out.wait_for("! cluster/migrations-finish was not retried: the typed name does not match")
        .await;
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 1);
    keyboard.write_all(b"prod-eu\n").unwrap();
    out.wait_for("The run is done.").await;
    assert_eq!(kit.stand_in.runs_of("migrations-finish"), 2);
    drop(keyboard);
    assert_eq!(end(task).await.state, RunState::Done);
}

/// Output that takes nothing until opened, like a terminal that stopped reading.
#[derive(Clone)]
struct StuckOut {
    open: Arc<(Mutex<bool>, std::sync::Condvar)>,
    inner: SharedOut,
}

impl Write for StuckOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (open, opened) = &*self.open;
        let mut is_open = open.lock().unwrap();
        while !*is_open {
            is_open = opened.wait(is_open).unwrap();
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_terminal_that_stops_reading_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(Strategy::InPlace, vec![scripted("a")]);
    let out = StuckOut {
        open: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
        inner: SharedOut::default(),
    };
    let (mut keyboard, pipe) = UnixStream::pair().unwrap();
    let task = plain_run_to(
        dir.path(),
        plan_named("p"),
        steps,
        &kit,
        BufReader::new(pipe),
        out.clone(),
    );
    keyboard.write_all(b"y\n").unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while kit.stand_in.runs_of("a") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step never ran while the output was stuck"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    {
        let (open, opened) = &*out.open;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
    drop(keyboard);
    assert_eq!(end(task).await.state, RunState::Done);
    assert!(
        out.inner.text().contains("succeeded cluster/a"),
        "{}",
        out.inner.text()
    );
}

fn plain_run_to(
    dir: &std::path::Path,
    plan: kongup::plan::model::Plan,
    steps: kongup::plan::steps::ExpandedPlan,
    kit: &Kit,
    input: impl std::io::BufRead + Send + 'static,
    out: impl Write + Send + 'static,
) -> tokio::task::JoinHandle<Result<SessionEnd, kongup::engine::EngineError>> {
    let setup = setup(dir, plan, steps, "v1", kit.toolbox.clone());
    let plain = PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: kit.toolbox.clone(),
        interactive: false,
    };
    let handle = kongup::engine::spawn(setup).unwrap();
    tokio::spawn(drive(handle, plain, input, out))
}

#[tokio::test]
async fn an_engine_that_dies_says_the_run_is_resumable_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let (commands, _commands_rx) = tokio::sync::mpsc::channel(1);
    let (events_tx, events) = kongup::engine::event::channel();
    let handle = kongup::engine::EngineHandle {
        commands,
        events,
        // Its event stream ends when it dies, as the engine's does.
        task: tokio::spawn(async move {
            let _events = events_tx;
            panic!("an engine bug")
        }),
        run_dir: dir.path().join("run"),
        run_id: "p".into(),
    };
    let plain = PlainSetup {
        plan: Arc::new(plan_named("p")),
        expanded: Arc::new(expanded(Strategy::InPlace, vec![scripted("a")])),
        toolbox: kit.toolbox.clone(),
        interactive: false,
    };
    let out = SharedOut::default();
    let ended = tokio::time::timeout(
        DEADLINE,
        drive(handle, plain, Cursor::new(Vec::new()), out.clone()),
    )
    .await
    .expect("drive ends");
    let error = ended.expect_err("the engine died").to_string();
    assert!(error.contains("The run is resumable"), "{error}");
    assert!(error.contains("kongup run"), "{error}");
    assert!(
        out.text()
            .contains("kongup stopped: kongup's engine stopped unexpectedly"),
        "{}",
        out.text()
    );
}

/// A stage that sends less to Y than Y has says so before its prompt (issue 14, item 8).
#[tokio::test]
async fn a_stage_that_sends_less_to_y_says_so_before_its_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let stage = |id: &str, y_percent| {
        step(
            id,
            StepKind::ShiftTraffic {
                y_percent,
                bake: Duration::ZERO,
            },
        )
    };
    let steps = expanded(
        Strategy::BlueGreen,
        vec![stage("shift-traffic-50", 50), stage("shift-traffic-5", 5)],
    );
    let out = SharedOut::default();
    let (mut keyboard, pipe) = UnixStream::pair().unwrap();
    let task = plain_run(
        dir.path(),
        plan_named("bg"),
        steps,
        &kit,
        false,
        BufReader::new(pipe),
        out.clone(),
    );
    keyboard.write_all(b"y\n").unwrap();
    // The colons: `cluster/shift-traffic-50` starts with the same letters.
    out.wait_for("kongup> cluster/shift-traffic-5:").await;
    let text = out.text();
    let (first, second) = text.split_once("== cluster/shift-traffic-5:").unwrap();
    assert!(!first.contains("moves traffic BACK"), "{text}");
    assert!(
        second.contains("This stage moves traffic BACK: Y has 50 % now and gets 5 %"),
        "{text}"
    );
    keyboard.write_all(b"y\n").unwrap();
    drop(keyboard);
    assert_eq!(end(task).await.state, RunState::Done);
}

/// An interrupted step offers a skip with a reason, beside retry and done.
#[tokio::test]
async fn an_interrupted_step_can_be_skipped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = || expanded(Strategy::InPlace, vec![scripted("a"), scripted("b")]);
    crash_while_running(
        setup(
            dir.path(),
            plan_named("p"),
            steps(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "a",
    )
    .await;
    let out = SharedOut::default();
    let (mut keyboard, pipe) = UnixStream::pair().unwrap();
    let task = plain_run(
        dir.path(),
        plan_named("p"),
        steps(),
        &kit,
        false,
        BufReader::new(pipe),
        out.clone(),
    );
    out.wait_for("kongup> cluster/a: retry | done NOTE | skip REASON")
        .await;
    keyboard.write_all(b"skip done by hand\ny\n").unwrap();
    drop(keyboard);
    assert_eq!(end(task).await.state, RunState::Done, "{}", out.text());
    assert!(out.text().contains("skipped cluster/a"), "{}", out.text());
}

/// A paused run offers no `y`, and a confirm sent anyway is refused once with no new
/// prompt: a script that answers every prompt waits instead of spinning (it sent millions
/// of refused answers before).
#[tokio::test]
async fn while_paused_the_prompt_offers_resume_and_a_refused_answer_brings_no_new_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    let steps = expanded(
        Strategy::BlueGreen,
        vec![scripted("first"), scripted("second")],
    );
    let out = SharedOut::default();
    let (mut script, pipe) = UnixStream::pair().unwrap();
    let task = plain_run(
        dir.path(),
        plan_named("bg"),
        steps,
        &kit,
        false,
        BufReader::new(pipe),
        out.clone(),
    );
    out.wait_for("kongup> cluster/first: y | skip REASON").await;
    script.write_all(b"pause\n").unwrap();
    out.wait_for("kongup> cluster/first: paused: resume | rollback | quit")
        .await;
    // A script that answers each prompt with `y`.
    script.write_all(b"y\n").unwrap();
    out.wait_for("'y' not taken: the run is paused and cluster/first waits for `resume`")
        .await;
    script.write_all(b"help\n").unwrap();
    out.wait_for("traffic N    set the split by hand").await;
    let text = out.text();
    let refused = text.find("'y' not taken").unwrap();
    assert_eq!(
        text[refused..].matches("kongup>").count(),
        0,
        "a prompt followed the refused answer:\n{text}"
    );
    assert_eq!(text.matches("y | skip REASON").count(), 1, "{text}");
    // Resumed, the step offers `y` again and takes it.
    script.write_all(b"resume\ny\ny\n").unwrap();
    drop(script);
    let end = end(task).await;
    let text = out.text();
    assert_eq!(end.state, RunState::Done, "{text}");
    assert!(
        text.contains("kongup> cluster/first: y | skip REASON | pause | rollback | quit\n")
            && text.matches("kongup> cluster/first: y |").count() == 2,
        "{text}"
    );
}

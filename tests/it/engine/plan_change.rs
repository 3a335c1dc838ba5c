//! A plan changed under a run (issue 14, item 8): the change is shown as steps added,
//! removed and changed, with the split each traffic stage sets; a step that was running
//! or interrupted is decided (retry, mark done, skip; journaled) before anything else, and
//! a changed plan that drops such a step is refused.

use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::journal::Entry;
use kongup::engine::{Command, EngineError, StepState};
use kongup::plan::model::Strategy;
use kongup::plan::steps::{RollbackKind, StepKind};

fn shift(id: &str, y_percent: u8) -> kongup::plan::steps::Step {
    with_rollback(
        step(
            id,
            StepKind::ShiftTraffic {
                y_percent,
                bake: Duration::from_secs(60),
            },
        ),
        RollbackKind::TrafficToX,
    )
}

fn before() -> kongup::plan::steps::ExpandedPlan {
    expanded(
        Strategy::InPlace,
        vec![scripted("a"), shift("shift-traffic-50", 50), scripted("b")],
    )
}

#[tokio::test]
async fn the_change_is_shown_by_steps_and_the_interrupted_step_is_decided_first() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    crash_while_running(
        setup(
            dir.path(),
            plan_named("p"),
            before(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "a",
    )
    .await;

    // A check inserted before `a`, the 50 % stage now 5 %, `b` retitled.
    let mut retitled = scripted("b");
    retitled.title = "Step b, retitled".into();
    let after = expanded(
        Strategy::InPlace,
        vec![
            scripted("check"),
            scripted("a"),
            shift("shift-traffic-5", 5),
            retitled,
        ],
    );
    let mut accepting = setup(dir.path(), plan_named("p"), after, "v2", kit.toolbox);
    accepting.options.accept_plan_change = true;
    let mut run = TestRun::start(accepting);
    run.wait_step(&cluster("a"), StepState::Interrupted).await;
    let head = run.wait_warning("the plan changed").await;
    assert!(head.contains("2 added, 1 removed, 1 changed"), "{head}");
    run.wait_warning("+ added cluster/check").await;
    let added = run.wait_warning("+ added cluster/shift-traffic-5").await;
    assert!(added.contains("sets Y to 5 %"), "{added}");
    let changed = run.wait_warning("~ changed cluster/b").await;
    assert!(changed.contains("Step b, retitled"), "{changed}");
    let removed = run.wait_warning("- removed cluster/shift-traffic-50").await;
    assert!(removed.contains("set Y to 50 %"), "{removed}");

    // The interrupted step comes before the step the new plan put first.
    run.confirm(&cluster("check")).await;
    let refused = run.wait_warning("cannot confirm cluster/check").await;
    assert!(refused.contains("cluster/a"), "{refused}");
    assert_eq!(kit.stand_in.runs_of("check"), 0);

    // Skipping it is a decision too, with its reason journaled.
    run.send(Command::Skip {
        step: cluster("a"),
        reason: "done by hand after the change".into(),
    })
    .await;
    run.wait_step(&cluster("check"), StepState::Ready).await;
    run.wait_step(&cluster("a"), StepState::Skipped).await;
    let journal = run.journal();
    assert!(
        position(&journal, |e| matches!(
            e,
            Entry::StepSkipped { step, reason, by_plan: false }
                if step == "cluster/a" && reason == "done by hand after the change"
        ))
        .is_some()
    );
    run.quit().await;
}

#[tokio::test]
async fn a_change_that_drops_an_interrupted_step_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kit = kit();
    crash_while_running(
        setup(
            dir.path(),
            plan_named("p"),
            before(),
            "v1",
            kit.toolbox.clone(),
        ),
        &kit.stand_in,
        "a",
    )
    .await;
    let after = expanded(Strategy::InPlace, vec![scripted("b")]);
    let mut accepting = setup(dir.path(), plan_named("p"), after, "v2", kit.toolbox);
    accepting.options.accept_plan_change = true;
    let err = kongup::engine::spawn(accepting).err().expect("refused");
    let message = err.to_string();
    assert!(
        matches!(err, EngineError::PlanDropsUndecided { .. }),
        "{message}"
    );
    assert!(message.contains("cluster/a"), "{message}");
    assert!(message.contains("interrupted"), "{message}");
    assert!(message.contains("retry"), "{message}");
}

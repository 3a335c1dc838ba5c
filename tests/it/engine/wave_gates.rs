//! Gates per wave (issue 17: "bake with the gates comparing this wave's Y nodes with the X
//! nodes still serving"). On a rehearsal lab of eight data planes a side in three waves
//! ([4, 5, 100%]: wave 1 starts four of Y's nodes, wave 2 one, dp-y-5), wave 1 rolls clean;
//! then dp-y-5 answers most of its requests with 500. Over the whole of Y, wave 1's four
//! healthy nodes dilute that below the gate (~12 % of Y's requests against 20 %); over
//! wave 2's own node it is far above. The wave's bake must judge the wave.

use crate::support::demo as demo_support;

use std::path::Path;

use kongup::engine::journal::{Entry, JOURNAL_FILE, Record};
use kongup::engine::{Event, StepState};
use kongup::plan::steps::{PhaseName, StepRef};
use kongup::sim::Fault;

fn dp(id: &str) -> StepRef {
    StepRef::new(PhaseName::DataPlane, id)
}

fn is(event: &Event, step: &StepRef, state: StepState) -> bool {
    matches!(event, Event::StepChanged { step: s, state: st, .. } if s == step && *st == state)
}

/// `demo::waves`'s fleet plan in waves [4, 5, 100%], judged by one absolute gate (20 % of
/// 5xx) with the relative ones off, so that only Y's own figures decide; `on_fail:
/// rollback`. Few requests make a verdict (the lab's Y node of wave 2 serves a fifth of Y's
/// share), and one breach fails: a loaded machine may see only a verdict or two in a bake.
async fn rehearsal(dir: &Path) -> demo_support::Demo {
    let path = crate::demo::waves::fleet_plan()
        .waves("[4, 5, 100%]")
        .gates(
            "  max_error_ratio: 0.2\n  max_error_ratio_delta: null\n  max_p99_ratio: null\n  \
             min_requests: 3\n  consecutive_breaches: 1\n  on_fail: rollback\n",
        )
        .write(dir);
    crate::demo::waves::rehearsal(path, dir).await
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("fleet-rehearsal").join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::to_value(serde_json::from_str::<Record>(l).unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_s_bake_judges_its_own_y_nodes_not_all_of_y() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = rehearsal(dir.path()).await;
    let first = dp("wave-1-start-y");
    demo.confirm_until("wave 1 to wait for its confirm", |e| {
        is(e, &first, StepState::Ready)
    })
    .await;
    demo.send(demo.confirm_for(&first)).await;
    let second = dp("wave-2-start-y");
    let stopped = demo
        .wait_for("wave 1 to roll to wave 2's confirm", |e| {
            is(e, &second, StepState::Ready)
                || matches!(
                    e,
                    Event::StepChanged {
                        state: StepState::Failed,
                        ..
                    }
                )
        })
        .await;
    assert!(is(&stopped, &second, StepState::Ready), "{stopped:?}");

    // dp-y-5 is wave 2's one Y node.
    demo.run
        .lab
        .apply_fault(&Fault::NodeErrorRatio {
            node: "dp-y-5".into(),
            ratio: 0.6,
        })
        .await
        .unwrap();
    demo.send(demo.confirm_for(&second)).await;
    let stage = dp("wave-2-traffic");
    let third = dp("wave-3-start-y");
    let ended = demo
        .wait_for("wave 2's bake to end", |e| {
            is(e, &stage, StepState::Failed) || is(e, &third, StepState::Ready)
        })
        .await;
    let Event::StepChanged {
        state: StepState::Failed,
        detail: Some(detail),
        ..
    } = &ended
    else {
        panic!("wave 2's bake passed with its own node failing 60% of requests: {ended:?}");
    };
    assert!(detail.contains("gate failed"), "{detail}");
    // The verdict names the comparison it judged: the wave's one Y node against the four
    // X nodes wave 1 left serving.
    assert!(
        detail.contains("wave 2: Y 1 node vs X 4 serving"),
        "{detail}"
    );
    assert!(detail.contains("Y 5xx"), "{detail}");

    // on_fail: rollback: the rollback is asked for, and the wave's X node is not stopped.
    let journal = records(dir.path());
    assert!(
        journal.iter().any(|r| r["event"] == "rollback-requested"
            && r["reason"]
                .as_str()
                .is_some_and(|s| s.contains("wave-2-traffic"))),
        "no rollback naming wave 2 was requested"
    );
    let gates: Vec<&serde_json::Value> = journal
        .iter()
        .filter(|r| r["event"] == "gate" && r["step"] == "data-plane/wave-2-traffic")
        .collect();
    assert!(!gates.is_empty());
    for gate in &gates {
        let scope = &gate["gate"]["figures"]["scope"];
        assert_eq!(scope["wave"], 2, "{gate}");
        assert_eq!(scope["y_nodes"], 1, "{gate}");
        assert_eq!(scope["x_serving"], 4, "{gate}");
    }
    // The report's lines say it too.
    let said: Vec<String> = std::fs::read_to_string(
        dir.path().join("fleet-rehearsal").join(JOURNAL_FILE),
    )
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str::<Record>(l).unwrap())
    .filter(|r| matches!(&r.entry, Entry::Gate { step, .. } if step.ends_with("wave-2-traffic")))
    .map(|r| kongup::engine::report::describe(&r.entry))
    .collect();
    assert!(
        said.iter().all(|line| line.starts_with("gate ")
            && line
                .contains("during data-plane/wave-2-traffic (wave 2: Y 1 node vs X 4 serving, ")),
        "{said:#?}"
    );
    assert!(
        !demo
            .events
            .iter()
            .any(|e| is(e, &dp("wave-2-stop-x"), StepState::Running)),
        "wave 2's X node was stopped after the breach"
    );
    demo.quit().await;
}

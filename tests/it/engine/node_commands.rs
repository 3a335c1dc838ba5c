//! A plan command without an executor on a step that acts on nodes: loaded from YAML,
//! previewed and run by the engine, it runs once per node, on the node's executor, with
//! the node named in the preview, the log and `KONGUP_NODE`.

use crate::support::engine::*;
use kongup::engine::{Command, StepState, Toolbox, preview_step};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{ExpandedPlan, Phase};
use kongup::secrets::Redactor;

/// In place, two X nodes without executors, Y's first node on an executor of its own.
/// `stop-x` writes the node it runs for (and every KONGUP_ variable it sees) into
/// `DIR/stopped`, failing on `fail_on`; `deploy-y` writes into `DIR/deployed`.
fn plan_text(dir: &std::path::Path, fail_on: &str) -> String {
    let d = dir.display();
    format!(
        r#"name: node-commands
from: 3.4.0
to: 3.4.2
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - {{name: x1, admin_url: "http://127.0.0.1:8001"}}
      - {{name: x2, admin_url: "http://127.0.0.1:8002"}}
  y:
    nodes:
      - {{name: y1, admin_url: "http://127.0.0.1:8001", executor: y1-host}}
      - {{name: y2, admin_url: "http://127.0.0.1:8002"}}
executors:
  y1-host: {{type: local}}
command_timeout: 1m
steps:
  stop-x:
    commands:
      - shell: 'env | grep "^KONGUP_" >> {d}/stopped; test "$KONGUP_NODE" != "{fail_on}" || exit 3'
  deploy-y:
    commands:
      - shell: 'echo "$KONGUP_NODE" >> {d}/deployed'
      - shell: 'echo once >> {d}/deployed'
        executor: local
"#
    )
}

/// The real expansion of the plan, cut down to the two steps under test.
fn load(text: &str) -> (kongup::plan::model::Plan, ExpandedPlan) {
    let loaded = parse_plan(text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let phase = &loaded.expanded.phases[0];
    let steps = phase
        .steps
        .iter()
        .filter(|s| s.id == "stop-x" || s.id == "deploy-y")
        .cloned()
        .collect();
    let expanded = ExpandedPlan {
        phases: vec![Phase {
            name: phase.name,
            strategy: phase.strategy,
            steps,
        }],
        ..loaded.expanded.clone()
    };
    (loaded.plan, expanded)
}

#[tokio::test]
async fn each_node_of_the_step_runs_the_command_on_its_executor() {
    let dir = tempfile::tempdir().unwrap();
    let text = plan_text(dir.path(), "none");
    let (plan, expanded) = load(&text);
    let toolbox =
        Toolbox::for_plan(&plan, Redactor::default(), kongup::actions::builtins(None)).unwrap();

    let preview = preview_step(&plan, &expanded, &toolbox, &cluster("deploy-y")).unwrap();
    assert_eq!(preview.runs.len(), 2, "{:?}", preview.runs);
    assert!(
        preview.runs[0].ends_with("on y1 (local), y2 (local) (timeout 1m each)"),
        "{:?}",
        preview.runs
    );
    assert!(
        preview.runs[1].ends_with("on local (timeout 1m)"),
        "{:?}",
        preview.runs
    );

    let mut run = TestRun::start(setup(dir.path(), plan, expanded, &text, toolbox));
    for (id, ran) in [("stop-x", 2), ("deploy-y", 3)] {
        run.send(Command::Confirm {
            step: cluster(id),
            typed: None,
        })
        .await;
        let detail = run.wait_step(&cluster(id), StepState::Succeeded).await;
        let expected = format!("all {ran} commands exited 0");
        assert_eq!(detail.as_deref(), Some(expected.as_str()), "{id}");
    }
    run.quit().await;

    // Only the node's name reaches the command from kongup; nothing else (no secrets).
    let stopped = std::fs::read_to_string(dir.path().join("stopped")).unwrap();
    assert_eq!(stopped, "KONGUP_NODE=x1\nKONGUP_NODE=x2\n");
    let deployed = std::fs::read_to_string(dir.path().join("deployed")).unwrap();
    assert_eq!(deployed, "y1\ny2\nonce\n");
    let log = std::fs::read_to_string(dir.path().join("run/logs/cluster-deploy-y.log")).unwrap();
    for place in ["[on y1 (local), timeout 1m]", "[on y2 (local), timeout 1m]"] {
        assert!(log.contains(place), "{place} not in:\n{log}");
    }
}

#[tokio::test]
async fn a_failure_names_the_node_it_failed_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = plan_text(dir.path(), "x2");
    let (plan, expanded) = load(&text);
    let toolbox =
        Toolbox::for_plan(&plan, Redactor::default(), kongup::actions::builtins(None)).unwrap();
    let mut run = TestRun::start(setup(dir.path(), plan, expanded, &text, toolbox));
    run.send(Command::Confirm {
        step: cluster("stop-x"),
        typed: None,
    })
    .await;
    let detail = run.wait_step(&cluster("stop-x"), StepState::Failed).await;
    let detail = detail.unwrap_or_default();
    assert!(detail.starts_with("command 2 of 2 `sh -c"), "{detail}");
    assert!(detail.ends_with("` on x2: exit status 3"), "{detail}");
    run.quit().await;
}

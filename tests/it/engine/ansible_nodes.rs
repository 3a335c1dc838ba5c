//! A node step's command on nodes that share an `ansible` executor: loaded from YAML,
//! previewed and run by the engine as ONE Ansible invocation limited to those nodes (the
//! real Ansible, on local hosts), and a host that failed there is named in the step's
//! failure.

use crate::exec::ansible::{inventory, require_ansible};
use crate::support::engine::*;
use kongup::engine::{StepState, Toolbox, preview_step};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{ExpandedPlan, Phase};
use kongup::secrets::Redactor;

/// In place; X's four nodes on the ansible executor `fleet`. `stop-x` appends the host it
/// runs on to `DIR/stopped` and fails (exit 3) on `fail_on`; on `hang`, the command never
/// ends within its 6 s.
fn plan_text(dir: &std::path::Path, inventory: &std::path::Path, fail_on: &str) -> String {
    let d = dir.display();
    let i = inventory.display();
    let (hang, timeout) = match fail_on {
        "hang" => ("sleep 300; ", "6s"),
        _ => ("", "2m"),
    };
    format!(
        r#"name: ansible-nodes
from: 3.4.0
to: 3.4.2
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - {{name: x1, admin_url: "http://127.0.0.1:8001", executor: fleet}}
      - {{name: x2, admin_url: "http://127.0.0.1:8002", executor: fleet}}
      - {{name: x3, admin_url: "http://127.0.0.1:8003", executor: fleet}}
      - {{name: x4, admin_url: "http://127.0.0.1:8004", executor: fleet}}
  y:
    nodes:
      - {{name: y1, admin_url: "http://127.0.0.1:8001"}}
executors:
  fleet: {{type: ansible, inventory: {i}, module: shell, forks: 4}}
command_timeout: {timeout}
steps:
  stop-x:
    commands:
      - shell: '{hang}echo {{{{ inventory_hostname }}}} >> {d}/stopped; test {{{{ inventory_hostname }}}} != {fail_on} || exit 3'
"#
    )
}

/// The real expansion of the plan, cut down to `stop-x`.
fn load(text: &str) -> (kongup::plan::model::Plan, ExpandedPlan) {
    let loaded = parse_plan(text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let phase = &loaded.expanded.phases[0];
    let steps = phase
        .steps
        .iter()
        .filter(|s| s.id == "stop-x")
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

/// Runs `stop-x` failing on `fail_on` until it becomes `state`: the run directory, the
/// step's detail, its preview.
async fn stop_x(
    fail_on: &str,
    state: StepState,
) -> (tempfile::TempDir, Option<String>, Vec<String>) {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["x1", "x2", "x3", "x4"], &[]);
    let text = plan_text(dir.path(), &inventory, fail_on);
    let (plan, expanded) = load(&text);
    let toolbox =
        Toolbox::for_plan(&plan, Redactor::default(), kongup::actions::builtins(None)).unwrap();
    let preview = preview_step(&plan, &expanded, &toolbox, &cluster("stop-x")).unwrap();
    let mut run = TestRun::start(setup(dir.path(), plan, expanded, &text, toolbox));
    let detail = run.confirm_and_wait(&cluster("stop-x"), state).await;
    run.quit().await;
    (dir, detail, preview.runs)
}

fn ran_on(dir: &std::path::Path) -> Vec<String> {
    let mut ran: Vec<String> = std::fs::read_to_string(dir.join("stopped"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    ran.sort();
    ran
}

#[tokio::test]
async fn the_nodes_of_one_ansible_executor_run_in_one_invocation() {
    let (dir, detail, preview) = stop_x("none", StepState::Succeeded).await;
    assert_eq!(preview.len(), 1, "{preview:?}");
    assert!(
        preview[0].contains("on 4 nodes (x1, x2, x3, x4) in one invocation of ansible -m shell"),
        "{preview:?}"
    );
    assert_eq!(detail.as_deref(), Some("all 4 commands exited 0"));
    assert_eq!(ran_on(dir.path()), ["x1", "x2", "x3", "x4"]);
    let log = std::fs::read_to_string(dir.path().join("run/logs/cluster-stop-x.log")).unwrap();
    // One invocation: one command line in the log, for the four nodes.
    assert_eq!(
        log.matches("[on 4 nodes (x1, x2, x3, x4) through ansible -m shell")
            .count(),
        1,
        "{log}"
    );
    assert!(!log.contains("[on x1 ("), "{log}");
    for host in ["x1", "x2", "x3", "x4"] {
        assert!(
            log.contains(&format!("kongup: {host}: changed")),
            "{host} not in:\n{log}"
        );
    }
}

#[tokio::test]
async fn a_failed_host_is_named_in_the_step_failure_and_the_others_ran() {
    let (dir, detail, _) = stop_x("x3", StepState::Failed).await;
    let detail = detail.unwrap_or_default();
    assert!(
        detail.ends_with("failed on 1 of 4 nodes: on x3: failed (rc=3): non-zero return code"),
        "{detail}"
    );
    // Ansible ran the command on every host: a failed host does not stop the others.
    assert_eq!(ran_on(dir.path()), ["x1", "x2", "x3", "x4"]);
}

#[tokio::test]
async fn a_timed_out_invocation_is_said_once_for_the_nodes() {
    let (_dir, detail, _) = stop_x("hang", StepState::Failed).await;
    let detail = detail.unwrap_or_default();
    assert!(
        detail.ends_with(
            "on 4 nodes: timed out after 6s (its process group was killed); 4 of them had not reported by then"
        ),
        "{detail}"
    );
}

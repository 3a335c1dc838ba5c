//! `rolling.max_unavailable`: a wave's node step works through its nodes in batches of at
//! most that many, each waited for before the next, so no more are out of service at once.
//! Observed through the real `ansible` executor (forks 4, local hosts): each node's command
//! writes when it starts and ends, and the most that overlap is the bound, reached.

use crate::exec::ansible::{inventory, require_ansible};
use crate::support::engine::*;
use crate::support::waves::{WavePlan, cut_to, toolbox_with_kong};
use kongup::engine::StepState;
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{PhaseName, StepRef};

/// Hybrid, four data planes a side in one wave, on the ansible executor `fleet`;
/// `wave-1-start-y` appends `start NODE T` and `end NODE T` to `DIR/spans` around a sleep.
fn plan_text(dir: &std::path::Path, max_unavailable: Option<&str>) -> String {
    let inventory = inventory(dir, &["dp-y-1", "dp-y-2", "dp-y-3", "dp-y-4"], &[]);
    let plan = WavePlan::hybrid(4)
        .name("bound")
        .control_plane("")
        .ansible(Some(&inventory))
        .waves("[100%]");
    let plan = match max_unavailable {
        Some(bound) => plan.max_unavailable(bound),
        None => plan,
    };
    let (d, n) = (dir.display(), plan.node_var());
    plan.shell(
        "wave-1-start-y",
        &format!(
            r#"echo "start {n} $(date +%s.%N)" >> {d}/spans; sleep 1; echo "end {n} $(date +%s.%N)" >> {d}/spans"#
        ),
    )
    .yaml()
}

fn start_y() -> StepRef {
    StepRef::new(PhaseName::DataPlane, "wave-1-start-y")
}

async fn run_start_y(dir: &std::path::Path, max_unavailable: Option<&str>) -> String {
    let text = plan_text(dir, max_unavailable);
    let loaded = parse_plan(&text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let expanded = cut_to(&loaded, PhaseName::DataPlane, &["wave-1-start-y"]);
    let toolbox = toolbox_with_kong(&loaded.plan);
    if max_unavailable.is_some() {
        // The confirm says the bound.
        let preview =
            kongup::engine::preview_step(&loaded.plan, &expanded, &toolbox, &start_y()).unwrap();
        assert!(
            preview.runs[0]
                .starts_with("at most 2 of the wave's nodes at a time (rolling.max_unavailable)"),
            "{:?}",
            preview.runs
        );
    }
    let mut run = TestRun::start(setup(dir, loaded.plan, expanded, &text, toolbox));
    let detail = run
        .confirm_and_wait(&start_y(), StepState::Succeeded)
        .await
        .unwrap_or_default();
    run.quit().await;
    detail
}

/// The most commands running at once, from `DIR/spans`; and the nodes that ran.
fn most_at_once(dir: &std::path::Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(dir.join("spans")).unwrap();
    let mut marks: Vec<(f64, i32)> = Vec::new();
    let mut nodes = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at: f64 = fields[2].parse().unwrap();
        match fields[0] {
            "start" => {
                marks.push((at, 1));
                nodes.push(fields[1].to_string());
            }
            _ => marks.push((at, -1)),
        }
    }
    // An end before a start at the same instant: they did not overlap.
    marks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in marks {
        now += step;
        most = most.max(now);
    }
    nodes.sort();
    (usize::try_from(most).unwrap(), nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_unavailable_nodes_run_their_commands_at_once() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let detail = run_start_y(dir.path(), Some("2")).await;
    let (most, nodes) = most_at_once(dir.path());
    assert_eq!(nodes, ["dp-y-1", "dp-y-2", "dp-y-3", "dp-y-4"], "{detail}");
    assert_eq!(most, 2, "at most 2 at once, and 2 reached: {detail}");
    let log =
        std::fs::read_to_string(dir.path().join("run/logs/data-plane-wave-1-start-y.log")).unwrap();
    assert!(
        log.contains("batch 1/2 (rolling.max_unavailable: 2): dp-y-1, dp-y-2")
            && log.contains("batch 2/2 (rolling.max_unavailable: 2): dp-y-3, dp-y-4"),
        "{log}"
    );
}

//! A run whose one step floods its output (`seq 1 N` at once): for the tests that the step
//! log holds every line whoever reads the events, and for the bench that measures memory
//! and CPU while it runs (benches/step_flood.rs). `command_run` is the same run with any
//! command, for the tests of how a step's output reaches its log and the console.

use std::path::Path;
use std::sync::Arc;

use crate::engine::rundir::step_log_path;
use crate::engine::step::ActionRegistry;
use crate::engine::{Operator, RunOptions, RunSetup, Toolbox};
use crate::plan::load::parse_plan;
use crate::plan::steps::{ExpandedPlan, Phase, PhaseName, StepRef};
use crate::secrets::Redactor;

/// What the tests flood with: a million lines.
pub const FLOOD_LINES: u64 = 1_000_000;

/// The flooding step.
pub fn flood_step() -> StepRef {
    StepRef::new(PhaseName::Cluster, "preflight")
}

/// A new run in `dir/run` of an in-place plan cut down to its first step, `preflight`,
/// whose built-in checks are off and whose one command is `seq 1 lines`.
pub fn flood_run(dir: &Path, lines: u64) -> RunSetup {
    command_run(dir, &["seq", "1", &lines.to_string()], Redactor::default())
}

/// The same one-step run with `command` (an argument vector) as the step's command, and
/// `redactor` hiding the run's secrets in its output.
pub fn command_run(dir: &Path, command: &[&str], redactor: Redactor) -> RunSetup {
    let run: Vec<String> = command
        .iter()
        .map(|arg| serde_json::to_string(arg).expect("a string is JSON"))
        .collect();
    let run = run.join(", ");
    let text = format!(
        r#"name: flood
from: 3.4.0
to: 3.4.2
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - {{name: x1, admin_url: "http://127.0.0.1:1"}}
  y:
    nodes:
      - {{name: y1, admin_url: "http://127.0.0.1:1"}}
executors:
  local: {{type: local}}
command_timeout: 10m
steps:
  preflight:
    builtin: false
    commands:
      - run: [{run}]
"#
    );
    let loaded = parse_plan(&text, "flood.yaml").unwrap_or_else(|e| panic!("{e}"));
    let phase = &loaded.expanded.phases[0];
    let expanded = ExpandedPlan {
        phases: vec![Phase {
            name: phase.name,
            strategy: phase.strategy,
            steps: vec![phase.steps[0].clone()],
        }],
        ..loaded.expanded.clone()
    };
    let toolbox = Toolbox::for_plan(&loaded.plan, redactor, ActionRegistry::empty())
        .expect("the flood plan's toolbox");
    RunSetup {
        plan: Arc::new(loaded.plan),
        expanded: Arc::new(expanded),
        plan_text: text,
        run_dir: dir.join("run"),
        operator: Operator("flood@test".into()),
        toolbox,
        options: RunOptions::default(),
        side_events: None,
        lock: None,
    }
}

/// What the flood step's log holds: how many of the command's lines, whether they are
/// 1, 2, 3… in order, and how many lines the log has in all (kongup's own among them).
pub fn logged_numbers(run_dir: &Path) -> (u64, bool, u64) {
    let path = step_log_path(run_dir, &flood_step());
    let log = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let (mut numbers, mut in_order, mut all) = (0u64, true, 0u64);
    for line in log.lines() {
        all += 1;
        if let Some((_, number)) = line.split_once(" stdout| ") {
            numbers += 1;
            in_order &= number == numbers.to_string();
        }
    }
    (numbers, in_order, all)
}

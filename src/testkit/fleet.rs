//! A fleet-sized hybrid plan and a long journal of it, for the benchmarks at fleet size
//! (benches/plan_expand.rs, benches/journal_replay.rs) and their tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::journal::{
    ConfirmVia, Entry, GateRecord, Journal, StepResult, read_journal, step_key,
};
use crate::engine::lock::RunLock;
use crate::engine::step::ActionRegistry;
use crate::engine::{Command, Operator, RunOptions, RunSetup, Toolbox};
use crate::lb::Split;
use crate::metrics::{ClusterWindow, GateFigures, GateThresholds};
use crate::plan::load::{LoadedPlan, parse_plan};
use crate::plan::steps::{StepKind, StepRef};
use crate::secrets::Redactor;

/// The operator the fleet's journal names.
pub const FLEET_OPERATOR: &str = "oncall@bastion";

/// A hybrid plan with one control plane and `data_planes` data planes per cluster, the
/// data-plane phase rolled in four waves, the traffic driver manual (nothing to reach).
pub fn fleet_plan_text(data_planes: usize) -> String {
    hybrid_plan_text(
        data_planes,
        "rolling:\n  waves: [1, 5%, 25%, 100%]\n  between_waves: 5m\n",
    )
}

/// A hybrid plan with one control plane and `data_planes` data planes per cluster
/// (`dp-x-1`…, `dp-y-1`…), the traffic driver manual, ending with `tail` (its `rolling:`,
/// or nothing).
pub fn hybrid_plan_text(data_planes: usize, tail: &str) -> String {
    let dps = |side: &str, base: usize| {
        (1..=data_planes)
            .map(|i| {
                format!(
                    "      - {{name: dp-{side}-{i}, role: data_plane, status_url: http://10.{base}.{}.{}:8100}}\n",
                    (i - 1) / 250,
                    (i - 1) % 250 + 1
                )
            })
            .collect::<String>()
    };
    format!(
        "\
name: fleet
from: 3.4.3
to: 3.5.0
mode: hybrid
strategy: in-place
clusters:
  x:
    nodes:
      - {{name: cp-x, role: control_plane, admin_url: http://10.0.0.1:8001}}
{}  y:
    nodes:
      - {{name: cp-y, role: control_plane, admin_url: http://10.0.0.3:8001}}
{}traffic:
  driver: {{type: manual}}
{tail}",
        dps("x", 1),
        dps("y", 2)
    )
}

/// [`fleet_plan_text`], loaded.
pub fn fleet_plan(data_planes: usize) -> LoadedPlan {
    parse_plan(&fleet_plan_text(data_planes), "fleet.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The run of `loaded` in `run_dir`, driven by the engine with no built-in actions.
pub fn fleet_run(loaded: &LoadedPlan, run_dir: &Path) -> RunSetup {
    let toolbox = Toolbox::for_plan(&loaded.plan, Redactor::default(), ActionRegistry::empty())
        .expect("the fleet plan's toolbox");
    RunSetup {
        plan: Arc::new(loaded.plan.clone()),
        expanded: Arc::new(loaded.expanded.clone()),
        plan_text: loaded.source.clone(),
        run_dir: run_dir.to_path_buf(),
        operator: Operator(FLEET_OPERATOR.into()),
        toolbox,
        options: RunOptions::default(),
        side_events: None,
        lock: None,
    }
}

/// Opens the run of `loaded` in `run_dir` with the engine (creating it, or resuming it),
/// waits for its first event (the run is open: journal read, replayed and locked), quits,
/// and returns how long the engine took to that first event.
pub async fn open_and_quit(loaded: &LoadedPlan, run_dir: &Path) -> Duration {
    let started = std::time::Instant::now();
    let mut engine = crate::engine::spawn(fleet_run(loaded, run_dir)).expect("the engine");
    engine
        .events
        .recv()
        .await
        .expect("the engine's first event");
    let opened = started.elapsed();
    engine.commands.send(Command::Quit).await.expect("quit");
    while engine.events.recv().await.is_some() {}
    engine
        .task
        .await
        .expect("the engine task")
        .expect("the engine's session");
    opened
}

/// Appends to the engine's journal in `run_dir` (the run exists, nobody drives it) what a
/// long rollout writes, through the engine's own writer, until it holds `records`: step
/// by step, each confirmed, started, its traffic set where it sets some, the gate
/// verdicts of its bake or wave (most of the records, as in a long rollout), a fact, and
/// its end with its last output lines;
/// an operator who quits and comes back every few steps; the last step left running, as
/// a crash leaves it. Panics if the plan has too few steps to reach `records` that way.
pub fn write_long_journal(loaded: &LoadedPlan, run_dir: &Path, records: u64) {
    let lock = RunLock::acquire(run_dir, FLEET_OPERATOR).expect("the run's lock");
    let contents = read_journal(lock.journal_path()).expect("the run's journal");
    let next_seq = contents.records.last().map_or(0, |r| r.seq + 1);
    let mut journal = Journal::open(
        lock,
        contents.valid_len,
        next_seq,
        Arc::new(Redactor::default()),
    )
    .expect("the journal, for appending");
    let count = std::cell::Cell::new(next_seq);
    let written = || count.get();
    let mut append = |entry: Entry| {
        journal.append(FLEET_OPERATOR, entry).expect("append");
        count.set(count.get() + 1);
    };
    let steps: Vec<_> = loaded
        .expanded
        .phases
        .iter()
        .flat_map(|phase| {
            phase
                .steps
                .iter()
                .map(move |step| (StepRef::new(phase.name, step.id.clone()), step))
        })
        .collect();
    // What is left for gate verdicts once every step has its own records (about 8 each),
    // spread over the steps that bake or roll a wave.
    let baking = steps.iter().filter(|(_, s)| bakes(&s.kind)).count().max(1) as u64;
    let structural = steps.len() as u64 * 8;
    let gates_per_step = records.saturating_sub(written() + structural) / baking;
    let mut gate = 0u64;
    for (index, (step, definition)) in steps.iter().enumerate() {
        let key = step_key(step);
        if index % 5 == 4 {
            append(Entry::SessionClosed {
                reason: "the operator quit (q)".into(),
            });
            append(Entry::SessionOpened { pid: 4242 });
        }
        append(Entry::StepConfirmed {
            step: key.clone(),
            via: ConfirmVia::Confirm,
            typed: definition.irreversible,
            overridden: Vec::new(),
        });
        append(Entry::StepStarted {
            step: key.clone(),
            attempt: 1,
            runs: vec![format!(
                "{}: the built-in automation on the lab",
                definition.title
            )],
        });
        if let StepKind::ShiftTraffic { y_percent, .. } = definition.kind {
            let split = Split {
                x: 100 - y_percent,
                y: y_percent,
            };
            append(Entry::TrafficRequested {
                split,
                cause: key.clone(),
            });
            append(Entry::TrafficApplied {
                requested: split,
                applied: None,
                error: None,
            });
        }
        if bakes(&definition.kind) {
            for _ in 0..gates_per_step {
                if written() + 2 >= records {
                    break;
                }
                gate += 1;
                append(Entry::Gate {
                    step: key.clone(),
                    gate: gate_record(gate),
                });
            }
        }
        if written() + 4 >= records || index + 1 == steps.len() {
            // The run stops here with the step running: a resume finds it interrupted.
            break;
        }
        append(Entry::Fact {
            step: key.clone(),
            key: "nodes".into(),
            value: format!("{} of the wave's nodes answered ready", 50 + index),
        });
        append(Entry::StepFinished {
            step: key,
            attempt: 1,
            result: StepResult::Succeeded,
            detail: None,
            duration_ms: 1_000 + index as u64,
            last_lines: (0..20)
                .map(|line| format!("dp-y-{line}: ready (200) after {line} s, config hash 8f1c…"))
                .collect(),
        });
    }
    while written() < records {
        gate += 1;
        append(Entry::Warning {
            text: format!("dp-x-{gate}: /status answered 503 once; retried"),
        });
    }
}

/// Steps during which the gates judge Y: traffic stages, monitoring and the waves.
fn bakes(kind: &StepKind) -> bool {
    matches!(
        kind,
        StepKind::ShiftTraffic { .. } | StepKind::Monitor { .. } | StepKind::StartNodes { .. }
    )
}

fn gate_record(n: u64) -> GateRecord {
    let window = |errors: f64, p99: f64| ClusterWindow {
        requests: Some(12_000 + n % 500),
        error_ratio: Some(errors),
        p99_ms: Some(p99),
    };
    GateRecord {
        evaluated_at: chrono::Utc::now(),
        verdict: "pass".into(),
        checks: vec![
            "Y 5xx 0.10% ≤ 1.00%: ok".into(),
            "Y p99 41.0 ms ≤ 500.0 ms: ok".into(),
            "Y 5xx − X 5xx +0.02 pt ≤ +0.50 pt: ok".into(),
            "Y p99 / X p99 1.05 ≤ 1.50: ok".into(),
        ],
        requests_in_window: 12_000 + n % 500,
        consecutive_breaches: 0,
        figures: Some(GateFigures {
            x: window(0.0008, 39.0),
            y: window(0.001, 41.0),
            thresholds: GateThresholds {
                max_error_ratio: Some(0.01),
                max_p99_ms: Some(500.0),
                max_error_ratio_delta: Some(0.005),
                max_p99_ratio: Some(1.5),
                min_requests: 100,
                breaches_to_fail: 3,
            },
            p99_on_shared_bounds: None,
            scope: None,
        }),
    }
}

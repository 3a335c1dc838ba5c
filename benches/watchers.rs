//! The driver's time to safety with watchers attached: the real engine drives a small run
//! (a load balancer in memory, so the figure is the engine's own: its commands, its
//! journal's fsyncs), sets Y to 50 % by hand, then rolls back; the engine's journaled time
//! to safety is taken, with no watcher and with five `kongup watch --plain` processes
//! following the journal (each woken by every record the rollback writes). Prints each
//! case's median and 90th percentile, and the ratio of the medians.
//!
//! `cargo bench --bench watchers` (ROUNDS=N to change the rounds per case, 30 by default)

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kongup::engine::event::RollbackProgress;
use kongup::engine::{
    Command as EngineCommand, Event, Operator, RunOptions, RunSetup, Toolbox, spawn,
};
use kongup::exec::local::LocalExecutor;
use kongup::lb::{LbError, Split, TrafficDriver};
use kongup::plan::load::parse_plan;
use kongup::secrets::Redactor;

const PLAN: &str = r#"name: watchers-bench
from: 3.4.0
to: 3.4.2
mode: traditional
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        admin_url: http://127.0.0.1:9
    database:
      host: 127.0.0.1
      name: kong
      user: kong
      password: {env: KONGUP_BENCH_UNUSED}
  y:
    nodes:
      - name: y1
        admin_url: http://127.0.0.1:9
steps:
  preflight:
    builtin: false
"#;

/// A load balancer in memory: the split is what was last set.
#[derive(Default)]
struct Memory(Mutex<Option<Split>>);

#[async_trait::async_trait]
impl TrafficDriver for Memory {
    fn describe(&self) -> String {
        "a load balancer in memory".into()
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        *self.0.lock().unwrap() = Some(split);
        Ok(())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        Ok(*self.0.lock().unwrap())
    }
}

/// `kongup watch --plain` on the run, once it has printed where the run stands.
fn watcher(run_dir: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kongup"))
        .args(["watch", "--plain", "--journal"])
        .arg(run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kongup watch starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        lines
            .next()
            .expect("the watcher says where the run stands")
            .unwrap();
    }
    // Its later lines are read and dropped, so it never waits on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// One round: a new run, Y at 50 %, `watchers` attached, the rollback. Its time to
/// safety: from the command to the engine's word that all traffic is on X (what the
/// journal records in whole ms, measured here in µs).
async fn round(watchers: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let loaded = parse_plan(PLAN, "bench.yaml").unwrap();
    let toolbox = Toolbox::new(
        Arc::new(Memory::default()),
        Redactor::default(),
        kongup::actions::builtins(None),
    )
    .with_executor("local", Arc::new(LocalExecutor::new()));
    let run_dir = dir.path().join("run");
    let mut handle = spawn(RunSetup {
        plan: Arc::new(loaded.plan),
        expanded: Arc::new(loaded.expanded),
        plan_text: loaded.source,
        run_dir: run_dir.clone(),
        operator: Operator("bench@local".into()),
        toolbox,
        options: RunOptions::default(),
        side_events: None,
        lock: None,
    })
    .unwrap();
    let send = |command| handle.commands.try_send(command).unwrap();
    send(EngineCommand::SetTraffic {
        y_percent: 50,
        override_health: false,
    });
    while !matches!(
        handle.events.recv().await,
        Some(Event::TrafficChanged { requested, .. }) if requested.y == 50
    ) {}
    let mut attached: Vec<Child> = (0..watchers).map(|_| watcher(&run_dir)).collect();
    let asked = Instant::now();
    send(EngineCommand::Rollback);
    let took = loop {
        match handle.events.recv().await {
            Some(Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })) => {
                break asked.elapsed();
            }
            Some(_) => {}
            None => panic!("the engine stopped before traffic was safe"),
        }
    };
    send(EngineCommand::Quit);
    while handle.events.recv().await.is_some() {}
    let _ = handle.task.await;
    for child in &mut attached {
        let _ = child.kill();
        let _ = child.wait();
    }
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut medians = Vec::new();
    for watchers in [0, 5] {
        let mut times: Vec<Duration> = (0..rounds)
            .map(|_| runtime.block_on(round(watchers)))
            .collect();
        times.sort_unstable();
        let median = percentile(&times, 0.5);
        println!(
            "time to safety with {watchers} watcher(s): median {median:?}, p90 {:?}, max {:?} \
             ({rounds} rounds)",
            percentile(&times, 0.9),
            times[times.len() - 1]
        );
        medians.push(median);
    }
    println!(
        "ratio (5 watchers / none, medians): {:.2}",
        medians[1].as_secs_f64() / medians[0].as_secs_f64()
    );
}

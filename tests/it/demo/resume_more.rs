//! An operator may quit a demo at any point, and a colleague resume it: each test walks a
//! scenario's demo through `kongup demo --plain` (answers typed on stdin, `--journal DIR`)
//! to a point, types `quit`, then resumes the run in the same directory, where a new lab is
//! rebuilt from the journal. The rebuilt lab is checked through its own state (databases,
//! nodes, balancer, counters) and the run through its engine and `kongup status --json`:
//! the resumed run goes on from where it was, redoing nothing.

use crate::support::demo as demo_support;

use std::path::Path;
use std::time::Duration;

use demo_support::cli::{PlainDemo, status_json, step_state};
use demo_support::{Demo, SPEED, resume};
use kongup::demo::{demo_plan_text, pacing_for_speed, rehearse};
use kongup::engine::RunOptions;
use kongup::engine::event::RollbackProgress;
use kongup::engine::journal::{Entry, JOURNAL_FILE, read_journal};
use kongup::engine::{Event, RunState, StepState};
use kongup::exec::{ExecRequest, Executor, ExitOutcome};
use kongup::lb::Split;
use kongup::plan::load::load_plan;
use kongup::plan::model::CommandLine;
use kongup::plan::steps::{ClusterSide, StepRef};
use kongup::sim::node::Lifecycle;
use kongup::sim::{Lab, Scenario};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Walks the scenario's demo (in `dir/run`) through `--plain` until `last` (`"phase/id"`)
/// has succeeded, types `quit`, and checks kongup left the run resumable. Returns what it
/// printed.
fn quit_after(scenario: Scenario, dir: &tempfile::TempDir, last: &str) -> String {
    quit_plain_after(PlainDemo::start(scenario, &dir.path().join("run")), last)
}

fn quit_plain_after(mut plain: PlainDemo, last: &str) -> String {
    plain.confirm_through(last);
    let ended = plain.quit();
    assert_eq!(
        ended.status.code(),
        Some(2),
        "quitting leaves the run resumable\n{}\n{}",
        ended.stdout,
        ended.stderr
    );
    ended.stdout
}

/// Runs `argv` on the lab as the sim executor of `node` does; its exit and its output.
async fn on_lab_node(lab: &Lab, node: &str, argv: &[&str]) -> (ExitOutcome, String) {
    let (tx, mut rx) = mpsc::channel(64);
    let collect = tokio::spawn(async move {
        let mut text = Vec::new();
        while let Some(line) = rx.recv().await {
            let line: kongup::exec::OutputLine = line;
            text.push(line.text);
        }
        text.join("\n")
    });
    let outcome = lab
        .executor(node)
        .run(
            ExecRequest {
                command: CommandLine::Argv(argv.iter().map(|a| a.to_string()).collect()),
                env: Vec::new(),
                timeout: Duration::from_secs(10),
            },
            tx,
            CancellationToken::new(),
        )
        .await
        .expect("the sim executor runs");
    (outcome, collect.await.unwrap())
}

fn lifecycles(lab: &Lab, side: ClusterSide) -> Vec<(String, Lifecycle)> {
    lab.nodes()
        .into_iter()
        .filter(|n| n.cluster == side)
        .map(|n| (n.name, n.lifecycle))
        .collect()
}

fn all_in(lab: &Lab, side: ClusterSide, lifecycle: Lifecycle) -> bool {
    let nodes = lifecycles(lab, side);
    !nodes.is_empty() && nodes.iter().all(|(_, l)| *l == lifecycle)
}

/// How many times the journal in `run_dir` says `step` (`"phase/id"`) started.
fn starts_of(run_dir: &Path, step: &str) -> usize {
    let journal = read_journal(&run_dir.join(JOURNAL_FILE)).unwrap();
    journal
        .records
        .iter()
        .filter(|r| matches!(&r.entry, Entry::StepStarted { step: s, .. } if s == step))
        .count()
}

/// The first step the resumed engine runs (confirming each that becomes ready).
async fn first_step_run(demo: &mut Demo) -> StepRef {
    let event = demo
        .confirm_until("the resumed run to start a step", |e| {
            matches!(
                e,
                Event::StepChanged {
                    state: StepState::Running,
                    ..
                }
            )
        })
        .await;
    let Event::StepChanged { step, .. } = event else {
        unreachable!()
    };
    step
}

/// Confirms steps until `step` has succeeded.
async fn confirm_through(demo: &mut Demo, step: &StepRef) {
    demo.confirm_until(&format!("{step} to succeed"), |e| {
        matches!(e, Event::StepChanged { step: s, state: StepState::Succeeded, .. } if s == step)
    })
    .await;
}

/// The rollback plan `--plain` prints once the rollback started: its steps, in order.
fn rollback_plan(plain: &mut PlainDemo) -> Vec<String> {
    let planned = plain.wait_for("the rollback plan", |l| l.starts_with("rollback plan"));
    planned
        .split(": ")
        .nth(1)
        .expect("the plan lists its steps")
        .split(", ")
        .map(str::to_string)
        .collect()
}

fn step(phase_and_id: &str) -> StepRef {
    kongup::engine::journal::parse_step_key(phase_and_id).unwrap()
}

/// In place, `kong migrations finish` is the point of no return. Resumed after it, the
/// lab's database is still finished by Y: X's nodes stay stopped and refuse to start on it,
/// and the run goes on with the next step (Y starts on that database), never finishing
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_resumed_after_finish_keeps_the_database_finished_and_starts_y() {
    let dir = tempfile::tempdir().unwrap();
    let before = quit_after(Scenario::InPlace, &dir, "cluster/migrations-finish");
    let generation = before
        .lines()
        .find_map(|l| l.strip_prefix("succeeded cluster/migrations-finish: "))
        .and_then(|detail| detail.split("schema generation ").nth(1))
        .expect("finish tells the schema generation")
        .to_string();

    let mut demo = resume(Scenario::InPlace, dir).await;
    let rebuilt = demo.run.rebuilt.clone();
    assert!(rebuilt.warnings.is_empty(), "{:?}", rebuilt.warnings);
    assert!(
        rebuilt
            .replayed
            .contains(&step("cluster/migrations-finish")),
        "{rebuilt:?}"
    );
    let lab = demo.run.lab.clone();
    let schema = lab.schema_state(ClusterSide::X).unwrap();
    assert_eq!(schema.pending_total(), 0, "{schema:?}");
    assert_eq!(schema.core_generation(), Some(generation.as_str()));
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Stopped),
        "{:?}",
        lab.nodes()
    );
    assert!(
        all_in(&lab, ClusterSide::Y, Lifecycle::Stopped),
        "{:?}",
        lab.nodes()
    );
    for (node, _) in lifecycles(&lab, ClusterSide::X) {
        let (outcome, output) = on_lab_node(&lab, &node, &["kong", "start"]).await;
        assert_ne!(outcome, ExitOutcome::Exited(0), "{node}: {output}");
        assert!(
            output.contains("was migrated by Kong 3.6.1"),
            "{node}: {output}"
        );
    }
    assert!(all_in(&lab, ClusterSide::X, Lifecycle::Stopped));

    let start_y = step("cluster/start-y");
    assert_eq!(first_step_run(&mut demo).await, start_y);
    confirm_through(&mut demo, &start_y).await;
    assert!(
        all_in(&lab, ClusterSide::Y, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    let dir = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;

    let run_dir = dir.path().join("run");
    assert_eq!(starts_of(&run_dir, "cluster/migrations-finish"), 1);
    let status = status_json(&run_dir);
    assert_eq!(
        step_state(&status, "cluster/migrations-finish"),
        "succeeded"
    );
    assert_eq!(step_state(&status, "cluster/start-y"), "succeeded");
}

/// What `migrations up` left pending, as its step said when it succeeded.
fn pending_after_up(output: &str) -> usize {
    let detail = output
        .lines()
        .find_map(|l| l.strip_prefix("succeeded cluster/migrations-up: "))
        .expect("migrations-up succeeded");
    if detail.contains("brings no new migrations") {
        return 0;
    }
    detail
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("up tells how many migrations are pending: {detail}"))
}

/// A blue-green run resumed after its traffic moved half-way, between `migrations up` and
/// `finish`: the shared database holds what `up` left pending (not finished, not run
/// again), both clusters run and serve their share, and the run goes on with the last
/// traffic stage, `finish` running (once) only when its turn comes.
async fn blue_green_goes_on_between_up_and_finish(mut demo: Demo, before: &str, run_dir: &Path) {
    let pending = pending_after_up(before);
    let rebuilt = demo.run.rebuilt.clone();
    assert!(rebuilt.warnings.is_empty(), "{:?}", rebuilt.warnings);
    let lab = demo.run.lab.clone();
    let schema = lab.schema_state(ClusterSide::X).unwrap();
    assert_eq!(schema.pending_total(), pending, "{schema:?}");
    assert_eq!(lab.schema_state(ClusterSide::Y), Some(schema.clone()));
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert!(
        all_in(&lab, ClusterSide::Y, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert_eq!(lab.traffic_driver().split(), Split::to_y(50));
    demo.served_more(ClusterSide::X, 10).await;
    demo.served_more(ClusterSide::Y, 10).await;

    assert_eq!(
        first_step_run(&mut demo).await,
        step("cluster/shift-traffic-100")
    );
    // Still pending while the last stage runs: only `finish` clears them.
    assert_eq!(
        lab.schema_state(ClusterSide::X).unwrap().pending_total(),
        pending
    );
    let finish = step("cluster/migrations-finish");
    confirm_through(&mut demo, &finish).await;
    assert_eq!(lab.schema_state(ClusterSide::X).unwrap().pending_total(), 0);
    // The run directory outlives the engine, to be read afterwards.
    let _kept = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;

    assert_eq!(starts_of(run_dir, "cluster/migrations-up"), 1);
    assert_eq!(starts_of(run_dir, "cluster/migrations-finish"), 1);
    let status = status_json(run_dir);
    assert_eq!(
        step_state(&status, "cluster/migrations-finish"),
        "succeeded"
    );
    assert_eq!(status["traffic"]["y"], 100, "{status:#}");
}

/// The blue-green demo (a patch upgrade, which brings no migrations: `up` leaves nothing
/// pending, as with Kong) resumed between `up` and `finish`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_demo_resumed_between_up_and_finish_goes_on_from_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let before = quit_after(Scenario::BlueGreen, &dir, "cluster/shift-traffic-50");
    let run_dir = dir.path().join("run");
    let demo = resume(Scenario::BlueGreen, dir).await;
    blue_green_goes_on_between_up_and_finish(demo, &before, &run_dir).await;
}

/// A blue-green plan across a minor (3.5.0 to 3.6.1, which Kong advises against but
/// allows), rehearsed: `up` leaves migrations pending, and they are still pending when the
/// rehearsal is resumed between `up` and `finish`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_rehearsal_resumed_between_up_and_finish_keeps_the_migrations_pending() {
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("blue-green-minor.yaml");
    let text = demo_plan_text(Scenario::BlueGreen, None, &pacing_for_speed(SPEED))
        .unwrap()
        .replace("3.4.3.11", "3.5.0")
        .replace("3.4.3.12", "3.6.1");
    std::fs::write(&plan_path, text).unwrap();
    let loaded = load_plan(&plan_path).unwrap();
    let journal = dir.path().join("blue-green");
    let plan_arg = plan_path.display().to_string();
    let before = quit_plain_after(
        PlainDemo::spawn(
            &["run", &plan_arg, "--rehearse"],
            &journal,
            &loaded.plan.name,
        ),
        "cluster/shift-traffic-50",
    );
    assert!(pending_after_up(&before) > 0, "{before}");

    let run_dir = rehearse::rehearsal_run_dir(Some(&journal), &loaded.plan.name).unwrap();
    let run = rehearse::start(
        loaded,
        plan_path,
        run_dir.clone(),
        RunOptions::default(),
        SPEED,
    )
    .await
    .expect("the rehearsal resumes");
    let demo = Demo::from_run(run, tempfile::tempdir().unwrap());
    blue_green_goes_on_between_up_and_finish(demo, &before, &run_dir).await;
}

/// A rollback quit half-way, and resumed twice: once from `--plain` (the run shows
/// ROLLING BACK and asks for the next rollback step, not one already done), then again
/// in-process, where the rebuilt lab keeps all traffic on X (Y serves nothing) and the
/// rest of the rollback runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_resumed_mid_rollback_goes_on_with_the_rollback_and_traffic_on_x() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut plain = PlainDemo::start(Scenario::BlueGreen, &run_dir);
    plain.confirm_through("cluster/shift-traffic-10");
    plain.wait_for("the next stage to ask for a confirm", |l| {
        l.starts_with("kongup> cluster/shift-traffic-50:")
    });
    plain.send("rollback");
    let rollback_steps = rollback_plan(&mut plain);
    assert!(rollback_steps.len() >= 3, "{rollback_steps:?}");
    quit_plain_after(plain, &rollback_steps[0]);

    // Resumed by a colleague from --plain: still rolling back, the next rollback step.
    let mut plain = PlainDemo::start(Scenario::BlueGreen, &run_dir);
    let prompt = plain.wait_for("the first prompt", |l| l.starts_with("kongup> "));
    assert!(
        prompt.starts_with(&format!("kongup> {}:", rollback_steps[1])),
        "{prompt}\n{}",
        plain.output.join("\n")
    );
    let shown = plain.output.join("\n");
    assert!(shown.contains("run: ROLLING BACK"), "{shown}");
    assert!(
        shown.contains("traffic X 100% | Y 0%"),
        "the lab is rebuilt with all traffic on X: {shown}"
    );
    assert!(!shown.contains("\n! "), "nothing to warn about: {shown}");
    plain.send("y");
    let ended = quit_plain_after(plain, &rollback_steps[1]);
    assert!(
        !ended.contains(&format!("-> {} running", rollback_steps[0])),
        "{ended}"
    );
    let status = status_json(&run_dir);
    assert_eq!(status["state"], "rolling-back", "{status:#}");
    assert_eq!(status["traffic"]["x"], 100, "{status:#}");
    assert_eq!(step_state(&status, &rollback_steps[0]), "succeeded");
    assert_eq!(step_state(&status, &rollback_steps[1]), "succeeded");
    assert_eq!(step_state(&status, "cluster/shift-traffic-50"), "pending");

    // Resumed again: the lab as the rollback left it so far, all traffic on X.
    let mut demo = resume(Scenario::BlueGreen, dir).await;
    let rebuilt = demo.run.rebuilt.clone();
    assert!(rebuilt.warnings.is_empty(), "{:?}", rebuilt.warnings);
    assert_eq!(rebuilt.split, Some(Split::ALL_X));
    let lab = demo.run.lab.clone();
    assert_eq!(lab.traffic_driver().split(), Split::ALL_X);
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert!(
        lifecycles(&lab, ClusterSide::Y)
            .iter()
            .all(|(_, l)| *l != Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    let y_served = lab.served(ClusterSide::Y);
    demo.served_more(ClusterSide::X, 30).await;
    assert_eq!(lab.served(ClusterSide::Y), y_served, "Y serves nothing");
    demo.wait_until("the run to be rolling back", |run, _| {
        run == Some(RunState::RollingBack)
    })
    .await;

    let rest = step(&rollback_steps[2]);
    assert_eq!(first_step_run(&mut demo).await, rest);
    demo.confirm_until("the rollback to finish", |e| {
        matches!(e, Event::RollbackProgress(RollbackProgress::Finished))
    })
    .await;
    assert_eq!(lab.traffic_driver().split(), Split::ALL_X);
    let _kept = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;

    for done in &rollback_steps {
        assert_eq!(starts_of(&run_dir, done), 1, "{done} ran once");
    }
    let status = status_json(&run_dir);
    assert_eq!(status["traffic"]["x"], 100, "{status:#}");
    assert_eq!(step_state(&status, "cluster/shift-traffic-50"), "pending");
}

/// In place, X comes back only through the database: the rollback restores the backup
/// over the finished database, then starts X, then sends the traffic. Quit right after the
/// restore and resumed, the rebuilt lab's database is the backup's again (X's schema, no
/// trace of Y's finish), and the rollback goes on: X starts on it and takes the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_resumed_after_the_rollback_restored_the_database_starts_x_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut plain = PlainDemo::start(Scenario::InPlace, &run_dir);
    plain.confirm_through("cluster/switch-traffic");
    plain.wait_for("the next step to ask for a confirm", |l| {
        l.starts_with("kongup> cluster/monitor:")
    });
    plain.send("rollback");
    let rollback_steps = rollback_plan(&mut plain);
    let restore = rollback_steps
        .iter()
        .position(|s| s == "rollback/migrations-finish")
        .expect("the rollback restores the database");
    let before = quit_plain_after(plain, "rollback/migrations-finish");
    let backup_generation = before
        .lines()
        .find_map(|l| l.strip_prefix("succeeded cluster/backup: "))
        .and_then(|detail| detail.split("schema_meta ").nth(1))
        .and_then(|s| s.split(',').next())
        .expect("the backup tells its schema generation")
        .to_string();

    let mut demo = resume(Scenario::InPlace, dir).await;
    let rebuilt = demo.run.rebuilt.clone();
    assert!(rebuilt.warnings.is_empty(), "{:?}", rebuilt.warnings);
    let lab = demo.run.lab.clone();
    let schema = lab.schema_state(ClusterSide::X).unwrap();
    assert_eq!(schema.core_generation(), Some(backup_generation.as_str()));
    assert_eq!(schema.pending_total(), 0, "{schema:?}");
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Stopped),
        "{:?}",
        lab.nodes()
    );
    demo.wait_until("the run to be rolling back", |run, _| {
        run == Some(RunState::RollingBack)
    })
    .await;

    assert_eq!(
        first_step_run(&mut demo).await,
        step(&rollback_steps[restore + 1])
    );
    demo.confirm_until("the rollback to finish", |e| {
        matches!(e, Event::RollbackProgress(RollbackProgress::Finished))
    })
    .await;
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert_eq!(lab.traffic_driver().split(), Split::ALL_X);
    demo.served_more(ClusterSide::X, 20).await;
    let y_served = lab.served(ClusterSide::Y);
    demo.served_more(ClusterSide::X, 30).await;
    assert_eq!(lab.served(ClusterSide::Y), y_served, "Y serves nothing");
    let _kept = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;
    assert_eq!(starts_of(&run_dir, "rollback/migrations-finish"), 1);
}

/// A GET on the lab that succeeded.
async fn lab_get(url: &str) -> reqwest::Response {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let response = client.get(url).send().await.expect("the lab answers");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response
}

/// A GET on the lab, as JSON.
async fn lab_json(url: &str) -> serde_json::Value {
    lab_get(url).await.json().await.expect("a JSON body")
}

/// DB-less, rolling: Y's nodes were deployed beside X's and took half the traffic when the
/// operator quit. Resumed, the rebuilt lab has Y's nodes up at the new version with X's
/// declarative configuration loaded (their Admin and Status APIs say so), X's nodes still
/// up, the split as it was; the run goes on to the last stage and to X's decommissioning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbless_rolling_resumed_after_y_took_half_the_traffic_goes_on_to_done() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    quit_after(Scenario::DblessRolling, &dir, "cluster/shift-traffic-50");

    let mut demo = resume(Scenario::DblessRolling, dir).await;
    let rebuilt = demo.run.rebuilt.clone();
    assert!(rebuilt.warnings.is_empty(), "{:?}", rebuilt.warnings);
    let lab = demo.run.lab.clone();
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert!(
        all_in(&lab, ClusterSide::Y, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert_eq!(lab.traffic_driver().split(), Split::to_y(50));
    // The resumed run reads the split back at once, before any traffic step: the header
    // says where traffic is for whoever takes the run over.
    demo.wait_for(
        "the split read back on resume",
        |e| matches!(e, Event::TrafficRead(split) if *split == Split::to_y(50)),
    )
    .await;
    let endpoints = lab.endpoints();
    let hash_of =
        |status: &serde_json::Value| status["configuration_hash"].as_str().map(String::from);
    let x_first = endpoints.cluster(ClusterSide::X).next().unwrap();
    let x_hash = hash_of(&lab_json(&format!("{}/status", x_first.status)).await);
    assert!(x_hash.is_some(), "X's nodes report their configuration");
    for node in endpoints.cluster(ClusterSide::Y) {
        let info = lab_json(&format!("{}/", node.admin.as_deref().unwrap())).await;
        assert_eq!(
            info["version"],
            lab.topology().to.to_string(),
            "{}",
            node.name
        );
        let status = lab_json(&format!("{}/status", node.status)).await;
        assert_eq!(hash_of(&status), x_hash, "{}: {status}", node.name);
    }
    demo.served_more(ClusterSide::Y, 20).await;
    demo.served_more(ClusterSide::X, 20).await;

    assert_eq!(
        first_step_run(&mut demo).await,
        step("cluster/shift-traffic-100")
    );
    demo.walk_to_done().await;
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Absent),
        "{:?}",
        lab.nodes()
    );
    assert!(
        all_in(&lab, ClusterSide::Y, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    assert_eq!(lab.traffic_driver().split(), Split::to_y(100));
    let _kept = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;

    assert_eq!(starts_of(&run_dir, "cluster/deploy-y"), 1);
    let status = status_json(&run_dir);
    assert_eq!(status["state"], "done", "{status:#}");
}

/// A GET on the lab, as text.
async fn lab_text(url: &str) -> String {
    lab_get(url).await.text().await.expect("a text body")
}

/// Dual-cluster resumed once all the traffic is on Y: X's nodes in the rebuilt lab get no
/// traffic, yet they export their request counters and latency histograms as a live X that
/// served before the upgrade does, so the monitor's gates, which compare Y with X, can
/// judge, and the run goes on to done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_cluster_resumed_with_all_traffic_on_y_still_compares_y_with_x() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    quit_after(Scenario::DualCluster, &dir, "cluster/shift-traffic-100");

    let mut demo = resume(Scenario::DualCluster, dir).await;
    let rebuilt = demo.run.rebuilt.clone();
    assert!(rebuilt.warnings.is_empty(), "{:?}", rebuilt.warnings);
    let lab = demo.run.lab.clone();
    assert_eq!(lab.traffic_driver().split(), Split::to_y(100));
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Running),
        "{:?}",
        lab.nodes()
    );
    for node in lab.endpoints().cluster(ClusterSide::X) {
        let metrics = lab_text(&format!("{}/metrics", node.status)).await;
        for series in [
            "kong_http_requests_total{",
            "kong_request_latency_ms_bucket{",
        ] {
            assert!(metrics.contains(series), "{}: no {series}", node.name);
        }
    }
    demo.served_more(ClusterSide::Y, 20).await;

    assert_eq!(first_step_run(&mut demo).await, step("cluster/monitor"));
    demo.walk_to_done().await;
    assert!(
        all_in(&lab, ClusterSide::X, Lifecycle::Absent),
        "{:?}",
        lab.nodes()
    );
    let _kept = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;
    let status = status_json(&run_dir);
    assert_eq!(status["state"], "done", "{status:#}");
    assert_eq!(step_state(&status, "cluster/monitor"), "succeeded");
}

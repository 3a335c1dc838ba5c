//! `kongup run PLAN --rehearse`: an operator's own plan (ssh executors, HAProxy, secrets
//! that are not set here, TLS to the Admin API, install commands the lab does not simulate)
//! walks to done against a lab shaped like it, in a run directory of its own; every
//! example plan in assets/plans rehearses from line commands on stdin through its backups
//! and smoke tests, to done or to a gate the lab's synthetic traffic cannot satisfy.

use crate::support::demo as demo_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kongup::demo::rehearse;
use kongup::engine::RunOptions;
use kongup::engine::journal::JOURNAL_FILE;
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::load::load_plan;
use kongup::plan::steps::ClusterSide;
use kongup::sim::node::Lifecycle;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rehearsal-payments.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_plan_rehearses_to_done_on_a_lab_of_its_shape() {
    let loaded = load_plan(&fixture()).unwrap();
    let plan_sha = loaded.source_sha256.clone();
    let dir = tempfile::tempdir().unwrap();
    let run_dir =
        rehearse::rehearsal_run_dir(Some(&dir.path().join("payments")), "ignored").unwrap();
    assert_eq!(run_dir, dir.path().join("payments-rehearsal"));
    let run = rehearse::start(
        loaded,
        fixture(),
        run_dir.clone(),
        RunOptions::default(),
        demo_support::SPEED,
    )
    .await
    .expect("the rehearsal starts though the plan's secrets and CA file are not here");
    // The lab has the plan's nodes, versions and databases.
    let endpoints = run.lab.endpoints();
    let names: Vec<(&str, ClusterSide, String)> = endpoints
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.cluster, n.version.to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("kong-x-1", ClusterSide::X, "3.4.3.12".to_string()),
            ("kong-x-2", ClusterSide::X, "3.4.3.12".to_string()),
            ("kong-y-1", ClusterSide::Y, "3.10.0.2".to_string()),
            ("kong-y-2", ClusterSide::Y, "3.10.0.2".to_string()),
        ]
    );
    // The engine runs the plan fitted to the lab: loopback URLs, no token.
    assert!(
        run.plan.clusters.x.nodes[0]
            .admin_url
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(run.plan.admin.token, None);

    // The support keeps a directory of its own; the run's stays here, to read afterwards.
    let mut demo = demo_support::Demo::from_run(run, tempfile::tempdir().unwrap());
    demo.walk_to_done().await;
    let lab = demo.run.lab.clone();
    for node in lab.nodes() {
        let expected = match node.cluster {
            ClusterSide::X => Lifecycle::Absent,
            ClusterSide::Y => Lifecycle::Running,
        };
        assert_eq!(node.lifecycle, expected, "{}", node.name);
    }
    assert_eq!(
        lab.traffic_driver().read_split().await.unwrap(),
        Some(Split::to_y(100))
    );
    assert_eq!(lab.schema_state(ClusterSide::Y).unwrap().pending_total(), 0);
    demo.quit().await;

    // The rehearsal's journal records the plan file's own hash.
    let journal = std::fs::read_to_string(run_dir.join(JOURNAL_FILE)).unwrap();
    assert!(journal.contains(&plan_sha));
}

#[test]
fn the_rehearsal_never_touches_the_real_runs_directory() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("payments");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kongup"))
        .arg("run")
        .arg(fixture())
        .args(["--rehearse", "--plain", "--journal"])
        .arg(&real)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kongup run --rehearse did not end on end of input");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // End of input quits at once: the rehearsal stopped before the end and is resumable.
    assert_eq!(
        status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("REHEARSAL"), "{stdout}");
    assert!(
        dir.path()
            .join("payments-rehearsal")
            .join(JOURNAL_FILE)
            .exists()
    );
    assert!(!real.exists(), "the real run's directory was created");
}

/// The example plans, each rehearsed by a test below.
const EXAMPLE_PLANS: [&str; 7] = [
    "dbless-rolling.yaml",
    "hybrid-blue-green.yaml",
    "hybrid-dual-cluster.yaml",
    "hybrid-in-place.yaml",
    "traditional-blue-green.yaml",
    "traditional-dual-cluster.yaml",
    "traditional-in-place.yaml",
];

/// Fast enough that a plan with minutes of bakes rehearses in seconds: the gate window at
/// its 2 s floor, 3 s bakes.
const REHEARSAL_SPEED: &str = "100";

fn example_plan(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/plans")
        .join(file)
}

#[test]
fn every_example_plan_has_a_rehearsal_test() {
    let mut found: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".yaml"))
            .collect();
    found.sort();
    assert_eq!(found, EXAMPLE_PLANS);
}

/// Steps the lab's synthetic traffic judges: a traffic stage's bake or a monitor step,
/// whose gates compare Y's figures with X's.
fn gate_judged(id: &str) -> bool {
    id.starts_with("shift-traffic") || id == "monitor"
}

/// `kongup run PLAN --rehearse --plain` with an operator's answers on stdin (`y` for each
/// step the plan does not skip, the plan's name for an irreversible one), fast, with `env`
/// added to the process. Every backup and the smoke tests succeed on the lab fitted to the
/// plan. The rehearsal reaches done (exit 0, every step succeeded or skipped), or stops
/// resumable (exit 2) at a traffic stage or monitor whose gates judged the lab's synthetic
/// traffic (a few requests on Y at a 1% stage, a p99 from a handful of them: see the
/// report), every step before it succeeded or skipped. Returns the output and the journal.
fn rehearse_example(file: &str, env: &[(&str, &str)]) -> (String, String) {
    let plan = example_plan(file);
    let loaded = load_plan(&plan).unwrap_or_else(|e| panic!("{file}: {e}"));
    let answers: String = loaded
        .expanded
        .steps()
        .filter(|(_, step)| step.skip_reason.is_none())
        .map(|(_, step)| {
            if step.irreversible {
                format!("{}\n", loaded.plan.name)
            } else {
                "y\n".to_string()
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kongup"))
        .arg("run")
        .arg(&plan)
        .args([
            "--rehearse",
            "--plain",
            "--speed",
            REHEARSAL_SPEED,
            "--journal",
        ])
        .arg(&run_dir)
        .env_remove("SMOKE_TEST_API_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{file}: the rehearsal did not end in time:\n{}",
                stdout.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(stdout.contains("REHEARSAL"), "{file}:\n{stdout}");
    let rehearsal_dir = dir.path().join("run-rehearsal");
    let out = Command::new(env!("CARGO_BIN_EXE_kongup"))
        .args(["status", "--json", "--journal"])
        .arg(&rehearsal_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = json["steps"].as_array().unwrap();
    let id = |s: &serde_json::Value| s["id"].as_str().unwrap().to_string();
    let passed = |s: &serde_json::Value| s["state"] == "succeeded" || s["state"] == "skipped";
    let stop = steps.iter().position(|s| !passed(s));
    match (status.code(), stop) {
        (Some(0), None) => {}
        (Some(2), Some(at)) => {
            let stopped = &steps[at];
            assert!(
                stopped["state"] == "failed" && gate_judged(&id(stopped)),
                "{file}: stopped at {stopped}, not at a gate:\n{stdout}\n{stderr}"
            );
            let failed = format!(
                "FAILED {}/{}: ",
                stopped["phase"].as_str().unwrap(),
                id(stopped)
            );
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&failed))
                .unwrap_or_else(|| panic!("{file}: no {failed} line:\n{stdout}"));
            assert!(line.contains("gate"), "{file}: {line}");
        }
        (code, stop) => panic!("{file}: exit {code:?}, stop {stop:?}:\n{stdout}\n{stderr}"),
    }
    let reached = &steps[..stop.unwrap_or(steps.len())];
    let smoke_tests = reached.iter().filter(|s| id(s) == "staging-tests").count();
    let expected_smoke_tests = steps.iter().filter(|s| id(s) == "staging-tests").count();
    assert!(expected_smoke_tests > 0, "{file}: no smoke tests step");
    assert_eq!(smoke_tests, expected_smoke_tests, "{file}:\n{stdout}");
    for step in reached
        .iter()
        .filter(|s| id(s) == "staging-tests" || id(s).starts_with("backup"))
    {
        assert_eq!(step["state"], "succeeded", "{file}: {step}");
    }
    let journal = std::fs::read_to_string(rehearsal_dir.join(JOURNAL_FILE)).unwrap();
    (stdout, journal)
}

/// The smoke tests' key is not set here: the rehearsal says it sends the lab's stand-in,
/// and the lab serves the plan's own smoke-test path with key-auth.
fn rehearses_with_the_stand_in_key(file: &str, path: &str) -> String {
    let (stdout, _) = rehearse_example(file, &[]);
    assert!(
        stdout.contains("is not set here: they send the lab's stand-in key instead"),
        "{file}:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("smoke-test routes {path} (key-auth on apikey")),
        "{file}:\n{stdout}"
    );
    stdout
}

/// The lab keeps no files here: the backup copies the lab's stand-in for kong.yml, read
/// through X's node executor, and says so.
#[test]
fn dbless_rolling_rehearses_past_its_backup_and_smoke_tests() {
    let stdout = rehearses_with_the_stand_in_key("dbless-rolling.yaml", "/v1/catalog");
    assert!(
        stdout.contains("/etc/kong/kong.yml is the lab's stand-in"),
        "{stdout}"
    );
    assert!(stdout.contains("YAML with _format_version 3.0"), "{stdout}");
}

#[test]
fn hybrid_blue_green_rehearses_past_its_smoke_tests() {
    rehearses_with_the_stand_in_key("hybrid-blue-green.yaml", "/mobile/profile");
}

#[test]
fn hybrid_dual_cluster_rehearses_past_its_smoke_tests() {
    rehearses_with_the_stand_in_key("hybrid-dual-cluster.yaml", "/accounts/me");
}

#[test]
fn hybrid_in_place_rehearses_past_its_smoke_tests() {
    rehearses_with_the_stand_in_key("hybrid-in-place.yaml", "/partners/v2/orders");
}

/// Its key comes from a file that is not on this machine.
#[test]
fn traditional_blue_green_rehearses_past_its_smoke_tests() {
    let stdout = rehearses_with_the_stand_in_key("traditional-blue-green.yaml", "/cart");
    assert!(
        stdout.contains("file /etc/kongup/smoke-test-apikey (the smoke tests' apikey header)"),
        "{stdout}"
    );
}

/// The smoke test looks for `ok` in the body: the lab's upstream stands in for the
/// operator's service and says so.
#[test]
fn traditional_dual_cluster_rehearses_past_its_smoke_tests() {
    let stdout =
        rehearses_with_the_stand_in_key("traditional-dual-cluster.yaml", "/payments/health");
    assert!(stdout.contains("a body with \"ok\""), "{stdout}");
}

/// With the key set, the lab accepts that very key; it never shows in the output or the
/// journal.
#[test]
fn traditional_in_place_rehearses_past_its_smoke_tests_with_the_operators_key() {
    const KEY: &str = "operator-smoke-key-4f1c9a";
    let (stdout, journal) =
        rehearse_example("traditional-in-place.yaml", &[("SMOKE_TEST_API_KEY", KEY)]);
    assert!(
        stdout.contains(
            "the smoke tests send their apikey header from environment variable \
             SMOKE_TEST_API_KEY; the lab's key-auth accepts it"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("stand-in key"), "{stdout}");
    assert!(
        stdout.contains("content-type: application/json"),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY) && !journal.contains(KEY));
}

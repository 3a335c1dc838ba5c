//! `kongup plan`: the example plans expanded, as an operator sees them and as JSON.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::str::contains;
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/plans")
        .join(name)
}

fn plan_json(path: &Path) -> Value {
    let output = cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(path)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn phase_names(json: &Value) -> Vec<&str> {
    json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

fn find_step<'a>(phase: &'a Value, id: &str) -> &'a Value {
    phase["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in phase {}", phase["name"]))
}

/// A copy of an example with `extra` YAML appended, in a temporary directory.
fn customised(example_name: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(example_name);
    let mut text = std::fs::read_to_string(example(example_name)).unwrap();
    assert!(
        !text.contains("\nsteps:"),
        "{example_name} already has steps"
    );
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn in_place_and_blue_green_have_an_irreversible_migrations_finish() {
    for name in [
        "traditional-in-place.yaml",
        "traditional-blue-green.yaml",
        "hybrid-in-place.yaml",
        "hybrid-blue-green.yaml",
    ] {
        let json = plan_json(&example(name));
        let finish = find_step(&json["phases"][0], "migrations-finish");
        assert_eq!(finish["kind"], "migrations-finish", "{name}");
        assert_eq!(finish["irreversible"], true, "{name}");
        assert_eq!(finish["changes"], true, "{name}");
    }
}

fn step_ids(phase: &Value) -> Vec<&str> {
    phase["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

#[test]
fn dual_cluster_migrates_ys_database_between_configure_y_and_start_y() {
    for name in ["traditional-dual-cluster.yaml", "hybrid-dual-cluster.yaml"] {
        let json = plan_json(&example(name));
        let phase = &json["phases"][0];
        let ids = step_ids(phase);
        let at = |id: &str| ids.iter().position(|s| *s == id).unwrap();
        assert_eq!(
            [at("migrations-up"), at("migrations-finish"), at("start-y")],
            [
                at("configure-y") + 1,
                at("configure-y") + 2,
                at("configure-y") + 3
            ],
            "{name}: {ids:?}"
        );
        for (id, kind) in [
            ("migrations-up", "migrations-up"),
            ("migrations-finish", "migrations-finish"),
        ] {
            let step = find_step(phase, id);
            assert_eq!(step["kind"], kind, "{name}");
            assert_eq!(step["guide_ref"], "", "{name}");
            // X keeps its own database: not the point of no return here.
            assert_eq!(step["irreversible"], false, "{name} {id}");
            assert_eq!(step["rollback"], Value::Null, "{name} {id}");
        }
    }
    cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(example("traditional-dual-cluster.yaml"))
        .assert()
        .code(0)
        .stdout(
            predicates::str::is_match(
                r"\[5\.4\]\s+configure-y .*\n.*\*\s+migrations-up\s+Migrate Y's database: kong migrations up\n\s+kongup runs: kong migrations up .*--lock-timeout 3600\n.*\*\s+migrations-finish\s+Finish the migrations on Y's database.*\n\s+kongup runs: kong migrations finish .*\n.*\[5\.5\]\s+start-y",
            )
            .unwrap(),
        );
}

#[test]
fn in_place_sends_traffic_to_y_only_when_the_plan_names_a_driver() {
    let json = plan_json(&example("traditional-in-place.yaml"));
    assert!(!step_ids(&json["phases"][0]).contains(&"switch-traffic"));

    // The same plan with Y on machines of its own, behind HAProxy.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in-place-elsewhere.yaml");
    let text = std::fs::read_to_string(example("traditional-in-place.yaml")).unwrap();
    assert!(!text.contains("\ntraffic:"));
    let text = text.replacen(
        "\ngates:",
        "
traffic:
  driver:
    type: haproxy
    socket: /run/haproxy/admin.sock
    backend: kong_proxy
    x_servers: [kong-1-old, kong-2-old]
    y_servers: [kong-1-new, kong-2-new]
  bake: 2m

gates:",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let json = plan_json(&path);
    let phase = &json["phases"][0];
    let ids = step_ids(phase);
    let start = ids.iter().position(|s| *s == "start-y").unwrap();
    assert_eq!(
        ids[start + 1..start + 3],
        ["staging-tests", "switch-traffic"],
        "{ids:?}"
    );
    let switch = find_step(phase, "switch-traffic");
    assert_eq!(switch["kind"], "shift-traffic");
    assert_eq!(switch["irreversible"], false);
    assert_eq!(switch["rollback"], "Send all traffic back to X");
    let instruction = switch["instruction"].as_str().unwrap();
    assert!(instruction.contains("X 0% / Y 100%"), "{instruction}");
    assert!(
        instruction.contains("through the haproxy driver"),
        "{instruction}"
    );
    assert!(instruction.contains("bakes for 2m"), "{instruction}");
    assert!(
        instruction.contains("restored from the backup and X started again"),
        "{instruction}"
    );

    cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(&path)
        .assert()
        .code(0)
        .stdout(
            predicates::str::is_match(
                r"\n\s+11\.\s+staging-tests\s+Smoke-test cluster Y\n\s+12\. \*\s+switch-traffic\s+Send all traffic to Y\n",
            )
            .unwrap(),
        );
}

#[test]
fn hybrid_examples_have_control_plane_before_data_plane() {
    for (name, cp_strategy) in [
        ("hybrid-dual-cluster.yaml", "dual-cluster"),
        ("hybrid-in-place.yaml", "in-place"),
        ("hybrid-blue-green.yaml", "blue-green"),
    ] {
        let json = plan_json(&example(name));
        assert_eq!(json["mode"], "hybrid");
        assert_eq!(
            phase_names(&json),
            ["control-plane", "data-plane"],
            "{name}"
        );
        assert_eq!(json["phases"][0]["strategy"], cp_strategy);
        assert_eq!(json["phases"][1]["strategy"], "rolling");
        assert_eq!(json["phases"][1]["steps"][0]["id"], "compat-check");
        assert_eq!(json["phases"][1]["steps"][0]["kind"], "compatibility-check");
    }
}

#[test]
fn single_phase_examples_use_the_cluster_phase() {
    for (name, strategy) in [
        ("traditional-dual-cluster.yaml", "dual-cluster"),
        ("traditional-in-place.yaml", "in-place"),
        ("traditional-blue-green.yaml", "blue-green"),
        ("dbless-rolling.yaml", "rolling"),
    ] {
        let json = plan_json(&example(name));
        assert_eq!(phase_names(&json), ["cluster"], "{name}");
        assert_eq!(json["phases"][0]["strategy"], strategy, "{name}");
        // The documented fields of every step, with their types.
        for step in json["phases"][0]["steps"].as_array().unwrap() {
            assert!(
                step["id"].is_string() && step["title"].is_string(),
                "{step}"
            );
            assert!(step["kind"].is_string(), "{step}");
            assert!(step["irreversible"].is_boolean() && step["changes"].is_boolean());
        }
        assert!(json["name"].is_string() && json["from"].is_string() && json["to"].is_string());
        assert!(json["strategy_reason"].as_str().unwrap().len() > 20);
    }
}

#[test]
fn plan_customisation_in_the_example_shows_in_the_steps() {
    // traditional-dual-cluster.yaml inserts snapshot-pg-x after backup and gives deploy-y
    // its install commands.
    let json = plan_json(&example("traditional-dual-cluster.yaml"));
    let steps: Vec<&str> = json["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let at = |id: &str| steps.iter().position(|s| *s == id).unwrap();
    assert_eq!(at("backup") + 1, at("snapshot-pg-x"));
    // Its one install command names no executor: it runs on each Y node, through the
    // node's executor.
    let deploy = find_step(&json["phases"][0], "deploy-y");
    let placed: Vec<(&str, &str, &str)> = deploy["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["node"].as_str().unwrap(),
                c["executor"].as_str().unwrap(),
                c["timeout"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("kong-y-1", "kong-y-1", "10m"),
            ("kong-y-2", "kong-y-2", "10m")
        ]
    );
    assert_eq!(
        deploy["commands"][0]["run"],
        "sudo apt-get install -y kong-enterprise-edition=3.10.0.2"
    );
}

#[test]
fn text_output_numbers_steps_with_guide_refs_and_markers() {
    cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(example("hybrid-blue-green.yaml"))
        .assert()
        .code(0)
        .stdout(contains("Phase control-plane (blue-green)"))
        .stdout(contains("Phase data-plane (rolling)"))
        .stdout(contains(
            "Strategy: The plan names blue-green for the control planes",
        ))
        .stdout(predicates::str::is_match(r"\*!\s+\[8\]\s+migrations-finish").unwrap())
        .stdout(contains("! irreversible"));
}

#[test]
fn skips_inserts_and_phase_qualified_ids_through_the_file() {
    let (_dir, path) = customised(
        "hybrid-blue-green.yaml",
        "steps:
  insert:
    - before: compat-check
      id: page-dp-owners
      title: Tell the data-plane owners
  skip:
    - step: control-plane/decommission-x
      reason: decommissioned with the data planes
",
    );
    let json = plan_json(&path);
    let dp = &json["phases"][1];
    assert_eq!(dp["steps"][0]["id"], "page-dp-owners");
    assert_eq!(dp["steps"][1]["id"], "compat-check");
    let cp_decommission = find_step(&json["phases"][0], "decommission-x");
    assert_eq!(
        cp_decommission["skip_reason"],
        "decommissioned with the data planes"
    );
    assert_eq!(find_step(dp, "decommission-x")["skip_reason"], Value::Null);

    cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(&path)
        .assert()
        .code(0)
        .stdout(contains("skipped: decommissioned with the data planes"));
}

#[test]
fn ambiguous_and_unknown_step_ids_are_refused_with_their_position() {
    let (_dir, path) = customised(
        "hybrid-blue-green.yaml",
        "steps:
  skip:
    - step: decommission-x
      reason: later
    - step: shift-traffic
      reason: no
",
    );
    let output = cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(&path)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!("{file}:")) && stderr.contains("ambiguous"),
        "{stderr}"
    );
    assert!(
        stderr.contains("control-plane/decommission-x or data-plane/decommission-x"),
        "{stderr}"
    );
    assert!(stderr.contains("no step `shift-traffic`"), "{stderr}");
    assert!(stderr.contains("2 errors"), "{stderr}");
}

#[test]
fn a_broken_plan_exits_1_with_each_error_at_its_line() {
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans/broken.yaml");
    let file = broken.display().to_string();
    cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(&broken)
        .assert()
        .code(1)
        .stderr(contains(format!("{file}:4:")))
        .stderr(contains("kongup validate"));
}

#[test]
fn a_missing_file_says_so() {
    cargo_bin_cmd!("kongup")
        .args(["plan", "/nonexistent/plan.yaml"])
        .assert()
        .code(1)
        .stderr(contains("cannot read the plan file"));
}

/// `--json` carries the plan's `rolling:` settings as the run applies them: the waves as
/// written, the bake, how a wave is confirmed, the drain and the bound on nodes out of
/// service (as written and in nodes); `null` where the plan sets none.
#[test]
fn json_carries_the_rolling_settings() {
    use crate::support::waves::WavePlan;
    let dir = tempfile::tempdir().unwrap();
    let path = WavePlan::hybrid(8)
        .from("3.9.1")
        .lab_addresses()
        .between_waves("2m")
        .confirm("each-step")
        .drain("30s")
        .max_unavailable("25%")
        .write(dir.path());
    let json = plan_json(&path);
    let rolling = &json["rolling"];
    assert_eq!(rolling["waves"], serde_json::json!(["1", "50%", "100%"]));
    assert_eq!(rolling["between_waves"], "2m");
    assert_eq!(rolling["confirm"], "each-step");
    assert_eq!(rolling["drain"], "30s");
    assert_eq!(rolling["max_unavailable"], "25%");
    assert_eq!(rolling["max_unavailable_nodes"], 2);
    // The text says them too.
    cargo_bin_cmd!("kongup")
        .arg("plan")
        .arg(&path)
        .assert()
        .success()
        .stdout(contains(
            "Waves (rolling.waves [1, 50%, 100%], each baked 2m before the next; each step \
             confirmed):",
        ))
        .stdout(contains(
            "  each X node drained before its stop: `kong drain`, then up to 30s for its \
             /status/ready to answer 503 with no request in flight (rolling.drain)",
        ))
        .stdout(contains(
            "  at most 2 nodes out of service at once (rolling.max_unavailable: 25%)",
        ));

    // The defaults: one confirm a wave, no drain, no bound.
    let path = WavePlan::hybrid(8).write(dir.path());
    let rolling = &plan_json(&path)["rolling"];
    assert_eq!(rolling["confirm"], "wave");
    assert_eq!(rolling["between_waves"], "5m");
    assert!(rolling["drain"].is_null(), "{rolling}");
    assert!(rolling["max_unavailable"].is_null(), "{rolling}");
    assert!(rolling["max_unavailable_nodes"].is_null(), "{rolling}");

    // A plan with no waves has no `rolling`.
    let json = plan_json(&example("hybrid-in-place.yaml"));
    assert!(json["rolling"].is_null(), "{}", json["rolling"]);
}

//! `kongup path`: the cases the foundation issue names, through the real binary.

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::str::contains;
use serde_json::Value;

/// Runs `kongup path ARGS --json`, checks the exit code, returns the parsed JSON.
fn path_json(args: &[&str], expected_code: i32) -> Value {
    let output = cargo_bin_cmd!("kongup")
        .arg("path")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(expected_code),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn hop_targets(json: &Value) -> Vec<&str> {
    json["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect()
}

#[test]
fn patch_upgrade_is_one_guaranteed_hop() {
    let json = path_json(&["3.4.1", "3.4.3"], 0);
    assert_eq!(json["from"], "3.4.1");
    assert_eq!(json["to"], "3.4.3");
    assert_eq!(hop_targets(&json), ["3.4.3"]);
    assert_eq!(json["guaranteed"], true);
    assert_eq!(json["warnings"], Value::Array(vec![]));
    assert!(json["hops"][0]["why"].as_str().unwrap().contains("Patch"));
}

#[test]
fn lts_to_lts_is_guaranteed() {
    let json = path_json(&["2.8.4", "3.4.0"], 0);
    assert_eq!(hop_targets(&json), ["3.4.0"]);
    assert_eq!(json["guaranteed"], true);
    assert!(
        json["hops"][0]["why"]
            .as_str()
            .unwrap()
            .contains("LTS to LTS")
    );
}

#[test]
fn one_x_goes_to_two_x_first() {
    let json = path_json(&["1.5.0", "3.4.0"], 0);
    let targets = hop_targets(&json);
    let first: kongup::plan::version::KongVersion = targets[0].parse().unwrap();
    assert_eq!(first.major, 2);
    assert!(first >= "2.1.0".parse().unwrap());
    assert_eq!(*targets.last().unwrap(), "3.4.0");
}

#[test]
fn enterprise_hybrid_on_3_1_1_1_goes_to_3_1_1_3_first() {
    let json = path_json(&["3.1.1.1", "3.4.0.0", "--mode", "hybrid"], 0);
    let targets = hop_targets(&json);
    assert_eq!(targets[0], "3.1.1.3");
    assert_eq!(*targets.last().unwrap(), "3.4.0.0");
    // The same jump in traditional mode needs no stop.
    let json = path_json(&["3.1.1.1", "3.4.0.0"], 0);
    assert_eq!(hop_targets(&json), ["3.4.0.0"]);
}

#[test]
fn cassandra_cannot_reach_3_4() {
    let json = path_json(&["3.2.0", "3.5.0", "--database", "cassandra"], 1);
    assert_eq!(json["from"], "3.2.0");
    assert_eq!(json["to"], "3.5.0");
    let error = json["error"].as_str().unwrap();
    assert!(error.contains("Cassandra"), "{error}");
    assert!(error.contains("PostgreSQL"), "{error}");
    assert!(json.get("hops").is_none());

    cargo_bin_cmd!("kongup")
        .args(["path", "3.2.0", "3.5.0", "--database", "cassandra"])
        .assert()
        .code(1)
        .stderr(contains("No upgrade path from 3.2.0 to 3.5.0"))
        .stderr(contains("removed Cassandra support in 3.4.0"));
}

#[test]
fn multi_minor_jump_is_not_guaranteed_and_warns() {
    let json = path_json(&["3.4.0", "3.9.0"], 0);
    assert_eq!(hop_targets(&json), ["3.9.0"]);
    assert_eq!(json["guaranteed"], false);
    let warnings = json["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("3.4.0 -> 3.5.x -> 3.6.x -> 3.7.x -> 3.8.x -> 3.9.0")
    );

    cargo_bin_cmd!("kongup")
        .args(["path", "3.4.0", "3.9.0"])
        .assert()
        .code(0)
        .stdout(contains("allowed, not guaranteed"))
        .stdout(contains("warning: 3.4.0 -> 3.9.0"));
}

#[test]
fn downgrade_is_refused() {
    let json = path_json(&["3.5.0", "3.4.0"], 1);
    assert!(json["error"].as_str().unwrap().contains("older than"));
    cargo_bin_cmd!("kongup")
        .args(["path", "3.5.0", "3.4.0"])
        .assert()
        .code(1)
        .stderr(contains("3.4.0 is older than 3.5.0"));
}

#[test]
fn human_output_lists_each_hop_with_why() {
    cargo_bin_cmd!("kongup")
        .args(["path", "2.8.4", "3.4.0"])
        .assert()
        .code(0)
        .stdout(contains("Upgrade path 2.8.4 -> 3.4.0: guaranteed by Kong"))
        .stdout(contains("1. 2.8.4 -> 3.4.0"))
        .stdout(contains("--lts_34_compatibility"));
}

#[test]
fn a_malformed_version_is_a_usage_error() {
    cargo_bin_cmd!("kongup")
        .args(["path", "3.4", "3.5.0"])
        .assert()
        .code(2)
        .stderr(contains("'3.4' is not a Kong version"));
}

#[test]
fn open_source_3_1_hybrid_is_warned_not_sent_to_an_enterprise_release() {
    for from in ["3.1.0", "3.1.1"] {
        let json = path_json(&[from, "3.4.2", "--mode", "hybrid"], 0);
        assert_eq!(hop_targets(&json), ["3.4.2"], "{from}");
        let warnings = json["warnings"].as_array().unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("speak only wRPC")),
            "{from}: {warnings:?}"
        );
    }
}

#[test]
fn a_three_part_target_past_3_9_is_an_enterprise_path() {
    cargo_bin_cmd!("kongup")
        .args(["path", "3.9.1", "3.10.0"])
        .assert()
        .code(0)
        .stdout(contains(
            "warning: no open-source 3.10+ release is known (the newest OSS tag is 3.9.3)",
        ));
}

#[test]
fn three_x_from_below_2_8_stops_at_2_8_1() {
    let json = path_json(&["2.7.0", "3.0.0"], 0);
    assert_eq!(hop_targets(&json), ["2.8.1", "3.0.0"]);
}

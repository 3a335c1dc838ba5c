//! `kongup validate` as an operator runs it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

/// The binary Cargo built for these tests (found at compile time, like the other CLI tests).
fn kongup() -> Command {
    cargo_bin_cmd!("kongup")
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans");
    let mut plans: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    plans.sort();
    plans
}

#[test]
fn every_example_plan_is_valid() {
    let plans = examples();
    assert_eq!(plans.len(), 7, "{plans:?}");
    for plan in plans {
        let output = kongup().arg("validate").arg(&plan).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{} failed:\n{}",
            plan.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = stdout.lines().next().unwrap_or_default();
        assert!(
            summary.starts_with(&format!("{}: valid: \"", plan.display())),
            "{summary}"
        );
        let stem = plan.file_stem().unwrap().to_string_lossy();
        let (mode, strategy) = stem.split_once('-').unwrap();
        assert!(summary.contains(&format!("{mode} mode")), "{summary}");
        assert!(summary.contains(strategy), "{summary}");
        assert!(summary.contains(" steps, "), "{summary}");
    }
}

#[test]
fn hybrid_examples_name_both_phases() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans/hybrid-in-place.yaml");
    kongup()
        .arg("validate")
        .arg(&plan)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "strategy control-plane in-place, data-plane rolling",
        ));
}

#[test]
fn a_broken_plan_prints_every_error_with_line_and_column() {
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans/broken.yaml");
    let shown = plan.display().to_string();
    let output = kongup().arg("validate").arg(&plan).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = [
        format!("{shown}:4:7: `from`: `3.4.x` is not a Kong version"),
        format!("{shown}:7:11: strategy `in-place` does not fit mode `dbless`"),
        format!("{shown}:16:9: unknown key `proxyurl` in `clusters.y.nodes[0]`"),
    ];
    for line in &expected {
        assert!(
            stderr.contains(line.as_str()),
            "missing `{line}` in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("hint: did you mean `proxy_url`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{shown}: 3 errors; the plan was not accepted")),
        "{stderr}"
    );
    // In file order.
    let at = |needle: &str| stderr.find(needle).unwrap();
    assert!(at(&expected[0]) < at(&expected[1]) && at(&expected[1]) < at(&expected[2]));
}

#[test]
fn an_unreadable_plan_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.yaml");
    kongup()
        .arg("validate")
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{}: cannot read the plan file",
            missing.display()
        )))
        .stderr(predicate::str::contains(
            "check the path and its permissions",
        ));
}

#[test]
fn help_describes_the_argument() {
    kongup()
        .args(["validate", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("The plan file (YAML) to check"));
}

#[test]
fn a_valid_plan_with_warnings_lists_them_after_the_summary() {
    let plan =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plans/unguaranteed-jump.yaml");
    let output = kongup().arg("validate").arg(&plan).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains("3.4.0 -> 3.9.0, traditional mode, strategy in-place (chosen by auto), "),
        "{stdout}"
    );
    assert!(lines[0].ends_with(" steps, 2 warnings"), "{stdout}");
    assert!(
        lines[1]
            .starts_with("  warning: 3.4.0 -> 3.9.0 is allowed but not a guaranteed upgrade path"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 3, "{stdout}");
}

//! `kongup validate` warns a plan that runs on Kubernetes about the migration Jobs of
//! Kong's Helm chart, which would run `up` and `finish` behind kongup's back.

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;

/// An example plan with a kubectl executor added, validated; returns stdout.
fn validate_with_kubectl(example: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/plans")
            .join(example),
    )
    .unwrap();
    assert!(text.contains("\nexecutors:\n"), "{example}");
    let text = text.replacen(
        "\nexecutors:\n",
        "\nexecutors:\n  k8s-kong: {type: kubectl, namespace: kong, selector: app=kong}\n",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(example);
    std::fs::write(&path, text).unwrap();
    let output = cargo_bin_cmd!("kongup")
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_kubernetes_plan_is_told_which_chart_values_turn_the_jobs_off() {
    let stdout = validate_with_kubectl("hybrid-in-place.yaml");
    let warning = stdout
        .lines()
        .find(|l| l.contains("Helm chart"))
        .unwrap_or_else(|| panic!("no Helm warning in\n{stdout}"));
    assert!(warning.starts_with("  warning: "), "{warning}");
    for needed in [
        "kubectl executor(s): k8s-kong",
        "--set migrations.preUpgrade=false --set migrations.postUpgrade=false",
        "--set migrations.init=false",
        "charts/kong/values.yaml, chart 3.4.1",
    ] {
        assert!(warning.contains(needed), "{needed}: {warning}");
    }
    // DB-less nodes have no migrations: the chart renders no Job for them.
    assert!(!validate_with_kubectl("dbless-rolling.yaml").contains("Helm chart"));
}

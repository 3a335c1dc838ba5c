//! `rolling:`: the waves of a rolling fleet, as the loader reads and refuses them and as
//! the data-plane phase expands them.

use kongup::plan::load::parse_plan;
use kongup::plan::steps::{ClusterSide, PhaseName, RollbackKind, StepKind};
use kongup::plan::waves::waves;
use kongup::testkit::fleet::hybrid_plan_text;

/// A hybrid plan with eight data planes on each side.
fn hybrid(rolling: &str) -> String {
    hybrid_plan_text(8, rolling)
}

/// The only error of a refused plan: (line, column, message, hint).
fn refused(source: &str) -> (usize, usize, String, String) {
    match parse_plan(source, "plan.yaml") {
        Ok(_) => panic!("the plan was accepted:\n{source}"),
        Err(errors) => {
            assert_eq!(errors.diagnostics.len(), 1, "{errors}");
            let d = &errors.diagnostics[0];
            (
                d.line,
                d.column,
                d.message.clone(),
                d.hint.clone().unwrap_or_default(),
            )
        }
    }
}

fn line_of(source: &str, needle: &str) -> usize {
    source
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle in the source")
        + 1
}

#[test]
fn eight_data_planes_in_three_waves_expand_into_wave_steps_in_order() {
    let source = hybrid("rolling:\n  waves: [1, 50%, 100%]\n  between_waves: 2m\n");
    let loaded = parse_plan(&source, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let resolved = waves(&loaded.plan);
    let sizes: Vec<(usize, usize, u8)> = resolved
        .iter()
        .map(|w| (w.y_nodes.len(), w.x_nodes.len(), w.y_percent))
        .collect();
    // The last wave stops no X node: X's other four wait for decommission-x.
    assert_eq!(sizes, [(1, 1, 13), (3, 3, 50), (4, 0, 100)]);
    assert_eq!(resolved[1].y_nodes, ["dp-y-2", "dp-y-3", "dp-y-4"]);

    let phase = loaded
        .expanded
        .phases
        .iter()
        .find(|p| p.name == PhaseName::DataPlane)
        .unwrap();
    let ids: Vec<&str> = phase.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "compat-check",
            "writes-frozen",
            "wave-1-start-y",
            "staging-tests",
            "wave-1-traffic",
            "wave-1-stop-x",
            "wave-2-start-y",
            "wave-2-traffic",
            "wave-2-stop-x",
            "wave-3-start-y",
            "wave-3-traffic",
            "monitor",
            "go-no-go",
            "decommission-x",
            "resume-writes",
        ]
    );
    let step = |id: &str| phase.steps.iter().find(|s| s.id == id).unwrap();
    assert_eq!(
        step("wave-2-traffic").kind,
        StepKind::ShiftTraffic {
            y_percent: 50,
            bake: std::time::Duration::from_secs(120)
        }
    );
    assert_eq!(
        step("wave-2-stop-x").rollback.as_ref().map(|r| &r.kind),
        Some(&RollbackKind::StartNodes {
            cluster: ClusterSide::X,
            wave: Some(2)
        })
    );
    assert!(
        step("wave-3-start-y")
            .title
            .starts_with("Wave 3/3: start 4 of Y's data planes (3.5.0)")
    );
}

#[test]
fn a_wave_command_runs_on_the_wave_s_nodes_only() {
    let source = format!(
        "{}steps:\n  wave-2-start-y:\n    commands:\n      - run: [systemctl, start, kong]\n",
        hybrid("rolling:\n  waves: [1, 50%, 100%]\n")
    );
    let loaded = parse_plan(&source, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let step = loaded
        .expanded
        .steps()
        .find(|(_, s)| s.id == "wave-2-start-y")
        .unwrap()
        .1;
    let nodes: Vec<&str> = step
        .commands
        .iter()
        .filter_map(|c| c.node.as_deref())
        .collect();
    assert_eq!(nodes, ["dp-y-2", "dp-y-3", "dp-y-4"]);
}

#[test]
fn without_rolling_the_data_planes_roll_as_one_cluster() {
    let loaded = parse_plan(&hybrid(""), "plan.yaml").unwrap();
    assert!(waves(&loaded.plan).is_empty());
    assert!(loaded.expanded.steps().any(|(_, s)| s.id == "deploy-y"));
    assert!(
        !loaded
            .expanded
            .steps()
            .any(|(_, s)| s.id.starts_with("wave-"))
    );
}

#[test]
fn a_last_wave_short_of_the_fleet_is_refused_naming_the_value() {
    let source = hybrid("rolling:\n  waves: [1, 25%, 90%]\n");
    let (line, _, message, hint) = refused(&source);
    assert_eq!(line, line_of(&source, "waves:"), "{message}");
    // 90% of 8 rounds up to all 8: still refused, as written it leaves part of the fleet.
    assert!(
        message.contains("`rolling.waves` ends at 90%: the last wave must be the whole fleet"),
        "{message}"
    );
    assert!(hint.contains("100%"), "{hint}");
}

#[test]
fn a_wave_that_adds_no_node_is_refused_naming_both_values() {
    // 5% of 8 data planes is one node, as is the wave before it.
    let source = hybrid("rolling:\n  waves: [1, 5%, 100%]\n");
    let (_, _, message, _) = refused(&source);
    assert!(message.contains("`rolling.waves[1]`: 5%"), "{message}");
    assert!(message.contains("(1: 1)"), "{message}");
}

#[test]
fn a_wave_larger_than_the_fleet_is_refused() {
    let (_, _, message, _) = refused(&hybrid("rolling:\n  waves: [12, 100%]\n"));
    assert!(
        message.contains("`rolling.waves[0]`: 12 nodes, but Y has 8 data planes"),
        "{message}"
    );
}

#[test]
fn a_share_that_is_not_a_count_or_a_percentage_is_refused_naming_it() {
    for (written, shown) in [("0", "`0`"), ("150%", "`150%`"), ("half", "`half`")] {
        let source = hybrid(&format!("rolling:\n  waves: [1, {written}, 100%]\n"));
        let (line, column, message, _) = refused(&source);
        assert!(
            message.contains(&format!("`rolling.waves[1]`: {shown} is not a share")),
            "{message}"
        );
        let text = source.lines().nth(line - 1).unwrap();
        assert!(
            text[column - 1..].starts_with(written),
            "{text} at {column}"
        );
    }
}

#[test]
fn max_unavailable_is_a_number_of_nodes_or_a_percentage_of_the_fleet() {
    for (written, nodes) in [("3", 3), ("25%", 2), ("10%", 1), ("100%", 8)] {
        let source = hybrid(&format!(
            "rolling:\n  waves: [1, 100%]\n  max_unavailable: {written}\n"
        ));
        let loaded = parse_plan(&source, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            kongup::plan::waves::max_unavailable(&loaded.plan),
            Some(nodes),
            "{written} of 8"
        );
    }
}

#[test]
fn a_max_unavailable_past_the_fleet_or_not_a_share_is_refused_naming_the_key() {
    let source = hybrid("rolling:\n  waves: [1, 100%]\n  max_unavailable: 9\n");
    let (line, _, message, _) = refused(&source);
    assert_eq!(line, line_of(&source, "max_unavailable: 9"));
    assert!(
        message.contains("`rolling.max_unavailable`: 9 nodes, but Y has 8 data planes"),
        "{message}"
    );
    for written in ["0", "0%", "101%", "half"] {
        let source = hybrid(&format!(
            "rolling:\n  waves: [1, 100%]\n  max_unavailable: {written}\n"
        ));
        let (line, _, message, _) = refused(&source);
        assert_eq!(line, line_of(&source, "max_unavailable:"), "{message}");
        assert!(
            message.contains(&format!(
                "`rolling.max_unavailable`: `{written}` is not a share"
            )),
            "{message}"
        );
    }
}

#[test]
fn a_traditional_plan_has_no_waves() {
    let source = "\
name: t
from: 3.4.3
to: 3.5.0
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        proxy_url: http://127.0.0.1:8000
  y:
    nodes:
      - name: y1
        proxy_url: http://127.0.0.1:9000
rolling:
  waves: [100%]
";
    let (line, _, message, _) = refused(source);
    assert_eq!(line, 15);
    assert!(message.contains("a traditional plan has none"), "{message}");
}

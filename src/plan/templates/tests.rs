use std::time::Duration;

use super::sample::{argv, plan, select};
use super::*;
use crate::plan::model::{ExecutorSpec, SkippedStep, StepOverride};
use crate::plan::steps::{ClusterSide, MigrationsCommand, RollbackKind};

fn fixed(mode: Mode, strategy: Strategy) -> ExpandedPlan {
    expand(&plan(mode, StrategyChoice::Fixed(strategy))).unwrap()
}

fn ids(phase: &Phase) -> Vec<&str> {
    phase.steps.iter().map(|s| s.id.as_str()).collect()
}

fn refs(phase: &Phase) -> Vec<&str> {
    phase.steps.iter().map(|s| s.guide_ref.as_str()).collect()
}

fn step<'a>(phase: &'a Phase, id: &str) -> &'a Step {
    phase
        .steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id} in {}", phase.name))
}

const SHIFTS: [&str; 5] = [
    "shift-traffic-1",
    "shift-traffic-5",
    "shift-traffic-25",
    "shift-traffic-50",
    "shift-traffic-100",
];

#[test]
fn dual_cluster_has_every_guide_step_in_order() {
    let expanded = fixed(Mode::Traditional, Strategy::DualCluster);
    assert_eq!(expanded.phases.len(), 1);
    let phase = &expanded.phases[0];
    assert_eq!(phase.name, PhaseName::Cluster);
    assert_eq!(phase.strategy, Strategy::DualCluster);
    let mut expected = vec![
        "preflight",
        "freeze-writes",
        "backup",
        "review-considerations",
        "review-breaking-changes",
        "deploy-y",
        "provision-db-y",
        "restore-db",
        "configure-y",
        "migrations-up",
        "migrations-finish",
        "start-y",
        "staging-tests",
    ];
    expected.extend(SHIFTS);
    expected.extend(["monitor", "go-no-go", "decommission-x", "resume-writes"]);
    assert_eq!(ids(phase), expected);
    // The migrations are kongup's: the guide leaves them implicit between 5.4 and 5.5.
    let mut guide = vec![
        "", "1", "2", "3", "4", "5.1", "5.2", "5.3", "5.4", "", "", "5.5", "5.6",
    ];
    guide.extend(["6"; 5]);
    guide.extend(["7", "8", "9", ""]);
    assert_eq!(refs(phase), guide);
    assert!(matches!(
        step(phase, "restore-db").kind,
        StepKind::RestoreDatabase
    ));
    assert!(!step(phase, "restore-db").irreversible);
}

#[test]
fn in_place_has_every_guide_step_in_order_and_no_traffic_shift() {
    let expanded = fixed(Mode::Traditional, Strategy::InPlace);
    let phase = &expanded.phases[0];
    assert_eq!(
        ids(phase),
        [
            "preflight",
            "freeze-writes",
            "backup",
            "review-considerations",
            "review-breaking-changes",
            "stop-x",
            "deploy-y",
            "migrations-up",
            "migrations-finish",
            "start-y",
            "staging-tests",
            "monitor",
            "go-no-go",
            "decommission-x",
            "resume-writes"
        ]
    );
    assert_eq!(
        refs(phase),
        [
            "", "1", "2", "3", "4", "5", "6", "7", "8", "9", "", "10", "11", "12", ""
        ]
    );
    assert!(
        !phase
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }))
    );
}

#[test]
fn in_place_with_a_traffic_driver_sends_the_traffic_to_y_once_it_is_started_and_tested() {
    let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
    p.traffic.driver_given = true;
    p.traffic.bake = Duration::from_secs(42);
    let expanded = expand(&p).unwrap();
    let phase = &expanded.phases[0];
    let order = ids(phase);
    let at = |id: &str| order.iter().position(|s| *s == id).unwrap();
    // After start-y and Y's smoke tests, before the monitoring.
    assert_eq!(at("start-y") + 1, at("staging-tests"));
    assert_eq!(at("staging-tests") + 1, at("switch-traffic"));
    assert_eq!(at("switch-traffic") + 1, at("monitor"));
    let switch = step(phase, "switch-traffic");
    assert_eq!(
        switch.kind,
        StepKind::ShiftTraffic {
            y_percent: 100,
            bake: Duration::from_secs(42)
        }
    );
    assert_eq!(switch.guide_ref, "");
    assert!(switch.changes && !switch.irreversible);
    assert!(switch.instruction.contains("X 0% / Y 100%"));
    assert!(
        switch
            .instruction
            .contains("restored from the backup and X started again"),
        "{}",
        switch.instruction
    );
    let rollback = switch.rollback.as_ref().unwrap();
    assert_eq!(rollback.kind, RollbackKind::TrafficToX);
    assert!(rollback.instruction.contains("database is restored"));
    assert!(
        step(phase, "start-y")
            .instruction
            .contains("switch-traffic")
    );
    // The other guide steps keep their order around it.
    let mut without: Vec<&str> = order.clone();
    without.retain(|id| *id != "switch-traffic");
    assert_eq!(
        without,
        ids(&fixed(Mode::Traditional, Strategy::InPlace).phases[0])
    );

    // Without a driver Y takes X's addresses: no step moves traffic, and start-y says so.
    p.traffic.driver_given = false;
    let expanded = expand(&p).unwrap();
    assert!(!ids(&expanded.phases[0]).contains(&"switch-traffic"));
    assert!(
        step(&expanded.phases[0], "start-y")
            .instruction
            .contains("names no traffic driver")
    );

    // Hybrid control planes carry no proxy traffic, driver or not.
    let hybrid = fixed(Mode::Hybrid, Strategy::InPlace);
    assert!(!ids(&hybrid.phases[0]).contains(&"switch-traffic"));
}

#[test]
fn blue_green_has_every_guide_step_in_order() {
    let expanded = fixed(Mode::Traditional, Strategy::BlueGreen);
    let phase = &expanded.phases[0];
    let mut expected = vec![
        "preflight",
        "freeze-writes",
        "backup-db",
        "backup-declarative",
        "backup-keyring",
        "backup-static",
        "review-considerations",
        "review-breaking-changes",
        "deploy-y",
        "migrations-up",
        "start-y",
        "staging-tests",
    ];
    expected.extend(SHIFTS);
    expected.extend([
        "monitor",
        "go-no-go",
        "migrations-finish",
        "decommission-x",
        "resume-writes",
    ]);
    assert_eq!(ids(phase), expected);
    let mut guide = vec![
        "", "1", "2.1", "2.2", "2.3", "2.4", "3", "", "4.1", "4.2", "4.3", "4.4",
    ];
    guide.extend(["5"; 5]);
    guide.extend(["6", "7", "8", "9", ""]);
    assert_eq!(refs(phase), guide);
}

#[test]
fn rolling_has_every_guide_step_in_order() {
    let expanded = fixed(Mode::Dbless, Strategy::Rolling);
    let phase = &expanded.phases[0];
    assert_eq!(phase.name, PhaseName::Cluster);
    let mut expected = vec![
        "preflight",
        "freeze-writes",
        "backup",
        "review-considerations",
        "review-breaking-changes",
        "deploy-y",
        "staging-tests",
        "scale-y",
    ];
    expected.extend(SHIFTS);
    expected.extend(["monitor", "go-no-go", "decommission-x", "resume-writes"]);
    assert_eq!(ids(phase), expected);
    assert!(matches!(
        step(phase, "backup").kind,
        StepKind::Backup(crate::plan::steps::BackupKind::Declarative)
    ));
}

#[test]
fn migrations_finish_is_irreversible_in_in_place_and_blue_green() {
    for strategy in [Strategy::InPlace, Strategy::BlueGreen] {
        let expanded = fixed(Mode::Traditional, strategy);
        let finish = step(&expanded.phases[0], "migrations-finish");
        assert_eq!(finish.kind, StepKind::Migrations(MigrationsCommand::Finish));
        assert!(finish.irreversible && finish.changes);
        assert!(
            finish
                .irreversible_because
                .as_deref()
                .unwrap()
                .contains("can no longer use this database")
        );
        let rollback = finish.rollback.as_ref().unwrap();
        assert_eq!(rollback.kind, RollbackKind::RestoreDatabase);
        assert!(rollback.irreversible);
        // `up` alone keeps X working.
        assert!(!step(&expanded.phases[0], "migrations-up").irreversible);
    }
}

#[test]
fn dual_cluster_migrates_ys_database_before_starting_y_and_it_is_reversible() {
    for mode in [Mode::Traditional, Mode::Hybrid] {
        let expanded = fixed(mode, Strategy::DualCluster);
        let phase = &expanded.phases[0];
        let order = ids(phase);
        let at = |id: &str| order.iter().position(|s| *s == id).unwrap();
        assert_eq!(at("configure-y") + 1, at("migrations-up"), "{mode:?}");
        assert_eq!(at("migrations-up") + 1, at("migrations-finish"), "{mode:?}");
        assert_eq!(at("migrations-finish") + 1, at("start-y"), "{mode:?}");
        let up = step(phase, "migrations-up");
        let finish = step(phase, "migrations-finish");
        assert_eq!(up.kind, StepKind::Migrations(MigrationsCommand::Up));
        assert_eq!(finish.kind, StepKind::Migrations(MigrationsCommand::Finish));
        for migrations in [up, finish] {
            assert_eq!(migrations.guide_ref, "", "{mode:?}");
            assert!(migrations.changes);
            // X keeps its own database: nothing here is the point of no return, and a
            // rollback has nothing to restore (X's database was never migrated).
            assert!(!migrations.irreversible, "{mode:?} {}", migrations.id);
            assert_eq!(migrations.rollback, None, "{mode:?} {}", migrations.id);
            assert!(
                migrations.instruction.contains("leaves it implicit"),
                "{}",
                migrations.instruction
            );
        }
        assert!(finish.instruction.contains("not the point of no return"));
        assert!(finish.instruction.contains("restore-db"));
    }
}

#[test]
fn decommissioning_hybrid_control_planes_says_their_data_planes_stay() {
    for strategy in [
        Strategy::DualCluster,
        Strategy::InPlace,
        Strategy::BlueGreen,
    ] {
        let expanded = fixed(Mode::Hybrid, strategy);
        let because = |phase: &Phase| {
            step(phase, "decommission-x")
                .irreversible_because
                .clone()
                .unwrap()
        };
        let control_planes = because(&expanded.phases[0]);
        assert!(
            control_planes.contains("X's data planes keep proxying"),
            "{strategy:?}: {control_planes}"
        );
        let data_planes = because(&expanded.phases[1]);
        assert!(
            data_planes.contains("no old cluster to send traffic back to"),
            "{strategy:?}: {data_planes}"
        );
    }
}

#[test]
fn decommission_is_irreversible_everywhere() {
    for (mode, strategy) in [
        (Mode::Traditional, Strategy::DualCluster),
        (Mode::Traditional, Strategy::InPlace),
        (Mode::Traditional, Strategy::BlueGreen),
        (Mode::Dbless, Strategy::Rolling),
        (Mode::Hybrid, Strategy::DualCluster),
    ] {
        for phase in &fixed(mode, strategy).phases {
            let step = step(phase, "decommission-x");
            assert!(step.irreversible, "{mode:?} {strategy:?} {}", phase.name);
            assert!(step.irreversible_because.is_some());
            assert_eq!(
                step.kind,
                StepKind::Decommission {
                    cluster: ClusterSide::X
                }
            );
        }
    }
}

#[test]
fn rollback_counterparts() {
    let dual = fixed(Mode::Traditional, Strategy::DualCluster);
    let phase = &dual.phases[0];
    let kind = |id: &str| step(phase, id).rollback.as_ref().map(|r| r.kind.clone());
    assert_eq!(kind("freeze-writes"), Some(RollbackKind::UnfreezeWrites));
    assert_eq!(
        kind("deploy-y"),
        Some(RollbackKind::StopNodes {
            cluster: ClusterSide::Y,
            wave: None,
        })
    );
    assert_eq!(
        kind("start-y"),
        Some(RollbackKind::StopNodes {
            cluster: ClusterSide::Y,
            wave: None,
        })
    );
    for id in SHIFTS {
        assert_eq!(kind(id), Some(RollbackKind::TrafficToX));
    }
    for id in [
        "backup",
        "review-considerations",
        "staging-tests",
        "monitor",
    ] {
        assert_eq!(kind(id), None, "{id}");
    }
    let in_place = fixed(Mode::Traditional, Strategy::InPlace);
    assert_eq!(
        step(&in_place.phases[0], "stop-x")
            .rollback
            .as_ref()
            .map(|r| r.kind.clone()),
        Some(RollbackKind::StartNodes {
            cluster: ClusterSide::X,
            wave: None,
        })
    );
}

#[test]
fn shift_traffic_follows_the_schedule_with_the_bake() {
    let mut p = plan(
        Mode::Traditional,
        StrategyChoice::Fixed(Strategy::DualCluster),
    );
    p.traffic.schedule = vec![10, 100];
    p.traffic.bake = Duration::from_secs(42);
    let expanded = expand(&p).unwrap();
    let shifts: Vec<&Step> = expanded.phases[0]
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }))
        .collect();
    assert_eq!(shifts.len(), 2);
    assert_eq!(shifts[0].id, "shift-traffic-10");
    assert_eq!(
        shifts[1].kind,
        StepKind::ShiftTraffic {
            y_percent: 100,
            bake: Duration::from_secs(42)
        }
    );
    assert!(shifts[0].instruction.contains("X 90% / Y 10%"));
}

#[test]
fn every_step_has_a_title_and_an_instruction_with_kongups_part() {
    for (mode, strategy) in [
        (Mode::Traditional, Strategy::DualCluster),
        (Mode::Traditional, Strategy::InPlace),
        (Mode::Traditional, Strategy::BlueGreen),
        (Mode::Dbless, Strategy::Rolling),
        (Mode::Hybrid, Strategy::DualCluster),
        (Mode::Hybrid, Strategy::InPlace),
        (Mode::Hybrid, Strategy::BlueGreen),
    ] {
        let expanded = fixed(mode, strategy);
        for (phase, step) in expanded.steps() {
            let at = format!("{mode:?} {strategy:?} {}/{}", phase.name, step.id);
            assert!(!step.title.is_empty(), "{at}");
            assert!(step.instruction.contains("kongup"), "{at}");
            assert!(!step.instruction.contains("{{"), "{at}");
            assert_eq!(
                step.irreversible,
                step.irreversible_because.is_some(),
                "{at}"
            );
            if step.irreversible {
                assert!(step.changes, "{at}");
            }
        }
        // Ids are unique within each phase.
        for phase in &expanded.phases {
            let mut seen = std::collections::HashSet::new();
            for step in &phase.steps {
                assert!(
                    seen.insert(&step.id),
                    "duplicate {} in {}",
                    step.id,
                    phase.name
                );
            }
        }
    }
}

#[test]
fn hybrid_has_control_plane_then_data_plane_with_compat_check_first() {
    for strategy in [
        Strategy::DualCluster,
        Strategy::InPlace,
        Strategy::BlueGreen,
    ] {
        let expanded = fixed(Mode::Hybrid, strategy);
        let names: Vec<PhaseName> = expanded.phases.iter().map(|p| p.name).collect();
        assert_eq!(names, [PhaseName::ControlPlane, PhaseName::DataPlane]);
        assert_eq!(expanded.phases[0].strategy, strategy);
        assert_eq!(expanded.phases[1].strategy, Strategy::Rolling);
        let cp = &expanded.phases[0];
        let dp = &expanded.phases[1];
        assert_eq!(dp.steps[0].id, "compat-check");
        assert_eq!(dp.steps[0].kind, StepKind::CompatibilityCheck);
        // Control planes proxy nothing: no traffic split, no proxy smoke tests there.
        assert!(
            !cp.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::ShiftTraffic { .. } | StepKind::SmokeTests)),
            "{strategy:?}"
        );
        assert_eq!(step(dp, "staging-tests").kind, StepKind::SmokeTests);
        // Writes are frozen once, in the control-plane phase, and lifted at the very end.
        assert_eq!(step(cp, "freeze-writes").kind, StepKind::FreezeWrites);
        assert!(!dp.steps.iter().any(|s| s.kind == StepKind::FreezeWrites));
        assert_eq!(step(dp, "writes-frozen").kind, StepKind::Manual);
        assert!(!step(dp, "writes-frozen").changes);
        assert!(!cp.steps.iter().any(|s| s.id == "resume-writes"));
        assert_eq!(dp.steps.last().unwrap().id, "resume-writes");
        // The data planes' configuration was backed up with the control planes.
        assert!(
            !dp.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Backup(_)))
        );
        assert!(expanded.strategy_reason.contains("data planes roll"));
    }
    let dp_ids = ids(&fixed(Mode::Hybrid, Strategy::InPlace).phases[1]).join(" ");
    assert_eq!(
        dp_ids,
        "compat-check writes-frozen deploy-y staging-tests scale-y shift-traffic-1 shift-traffic-5 shift-traffic-25 shift-traffic-50 shift-traffic-100 monitor go-no-go decommission-x resume-writes"
    );
}

#[test]
fn hybrid_control_plane_phases_follow_their_guides() {
    let cp_ids = |strategy| ids(&fixed(Mode::Hybrid, strategy).phases[0]).join(" ");
    assert_eq!(
        cp_ids(Strategy::DualCluster),
        "preflight freeze-writes backup review-considerations review-breaking-changes deploy-y provision-db-y restore-db configure-y migrations-up migrations-finish start-y staging-tests switch-control-plane monitor go-no-go decommission-x"
    );
    assert_eq!(
        cp_ids(Strategy::InPlace),
        "preflight freeze-writes backup review-considerations review-breaking-changes stop-x deploy-y migrations-up migrations-finish start-y staging-tests monitor go-no-go decommission-x"
    );
    assert_eq!(
        cp_ids(Strategy::BlueGreen),
        "preflight freeze-writes backup-db backup-declarative backup-keyring backup-static review-considerations review-breaking-changes deploy-y migrations-up start-y staging-tests switch-control-plane monitor go-no-go migrations-finish decommission-x"
    );
    let expanded = fixed(Mode::Hybrid, Strategy::DualCluster);
    let switch = step(&expanded.phases[0], "switch-control-plane");
    assert_eq!(switch.guide_ref, "6");
    assert_eq!(
        switch.rollback.as_ref().map(|r| r.kind.clone()),
        Some(RollbackKind::Manual)
    );
}

#[test]
fn hybrid_control_planes_are_watched_by_hand_and_data_planes_by_the_gates() {
    for strategy in [
        Strategy::DualCluster,
        Strategy::InPlace,
        Strategy::BlueGreen,
    ] {
        let expanded = fixed(Mode::Hybrid, strategy);
        let cp_monitor = step(&expanded.phases[0], "monitor");
        assert_eq!(cp_monitor.kind, StepKind::Manual, "{strategy:?}");
        assert!(
            cp_monitor.title.contains("data planes' sync"),
            "{strategy:?}"
        );
        let dp_monitor = step(&expanded.phases[1], "monitor");
        assert!(
            matches!(dp_monitor.kind, StepKind::Monitor { .. }),
            "{strategy:?}"
        );
    }
    let traditional = fixed(Mode::Traditional, Strategy::DualCluster);
    assert!(matches!(
        step(&traditional.phases[0], "monitor").kind,
        StepKind::Monitor { .. }
    ));
}

#[test]
fn auto_uses_the_chooser_and_says_why() {
    let expanded = expand(&plan(
        Mode::Traditional,
        StrategyChoice::Auto {
            spare_capacity: false,
        },
    ))
    .unwrap();
    // 3.4.1 -> 3.4.3 is a patch upgrade from >= 2.8.2.
    assert_eq!(expanded.phases[0].strategy, Strategy::BlueGreen);
    assert!(expanded.strategy_reason.starts_with("Chosen by kongup"));
    assert!(expanded.strategy_reason.contains("patch upgrade"));
    let expanded = expand(&plan(
        Mode::Hybrid,
        StrategyChoice::Auto {
            spare_capacity: true,
        },
    ))
    .unwrap();
    assert_eq!(expanded.phases[0].strategy, Strategy::DualCluster);
    assert_eq!(expanded.phases[1].strategy, Strategy::Rolling);
}

#[test]
fn fixed_strategy_reason_and_warnings() {
    let expanded = fixed(Mode::Traditional, Strategy::InPlace);
    assert!(
        expanded
            .strategy_reason
            .starts_with("The plan names in-place")
    );
    assert!(
        expanded
            .warnings
            .iter()
            .any(|w| w.contains("proxy is down"))
    );
    let expanded = fixed(Mode::Traditional, Strategy::DualCluster);
    assert!(expanded.warnings.iter().any(|w| w.contains("not synced")));
}

#[test]
fn path_warnings_reach_the_plan() {
    let mut p = plan(
        Mode::Traditional,
        StrategyChoice::Fixed(Strategy::DualCluster),
    );
    p.to = "3.9.0".parse().unwrap();
    let expanded = expand(&p).unwrap();
    assert!(
        expanded
            .warnings
            .iter()
            .any(|w| w.contains("not a guaranteed upgrade path")),
        "{:?}",
        expanded.warnings
    );
    p.from = "1.5.0".parse().unwrap();
    p.to = "3.4.0".parse().unwrap();
    let expanded = expand(&p).unwrap();
    assert!(
        expanded.warnings[0].contains("stop at 2.8.1"),
        "{:?}",
        expanded.warnings
    );
}

#[test]
fn override_gives_a_step_commands_and_timeout() {
    let mut p = plan(
        Mode::Traditional,
        StrategyChoice::Fixed(Strategy::DualCluster),
    );
    let mut with_own_timeout = argv(&["systemctl", "start", "kong"]);
    with_own_timeout.timeout = Some(Duration::from_secs(5));
    p.steps.overrides.push(StepOverride {
        step: select("start-y"),
        commands: vec![argv(&["true"]), with_own_timeout],
        timeout: Some(Duration::from_secs(60)),
        builtin: true,
    });
    let expanded = expand(&p).unwrap();
    let start = step(&expanded.phases[0], "start-y");
    // Neither command names an executor: each runs on both Y nodes, node by node.
    let placed: Vec<(Option<&str>, Option<Duration>)> = start
        .commands
        .iter()
        .map(|c| (c.node.as_deref(), c.timeout))
        .collect();
    let (step_default, own) = (Duration::from_secs(60), Duration::from_secs(5));
    assert_eq!(
        placed,
        [
            (Some("y-1"), Some(step_default)),
            (Some("y-2"), Some(step_default)),
            (Some("y-1"), Some(own)),
            (Some("y-2"), Some(own)),
        ]
    );
    assert!(
        start
            .instruction
            .contains("runs the commands the plan gives this step")
    );
    // The kind keeps its automation.
    assert!(matches!(start.kind, StepKind::StartNodes { .. }));
}

#[test]
fn commands_without_an_executor_run_on_the_nodes_of_the_phase() {
    let mut p = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::InPlace));
    p.executors
        .insert("dp-1-host".to_string(), ExecutorSpec::Local);
    p.clusters.y.nodes[1].executor = Some("dp-1-host".to_string());
    p.clusters.y.nodes[2].executor = None;
    let given = |phase, id: &str| StepOverride {
        step: StepSelector {
            phase: Some(phase),
            id: id.to_string(),
        },
        commands: vec![argv(&["true"])],
        timeout: None,
        builtin: true,
    };
    p.steps.overrides = vec![
        given(PhaseName::ControlPlane, "deploy-y"),
        given(PhaseName::DataPlane, "deploy-y"),
        given(PhaseName::ControlPlane, "migrations-up"),
        given(PhaseName::ControlPlane, "review-considerations"),
    ];
    let expanded = expand(&p).unwrap();
    let placed = |phase: usize, id: &str| -> Vec<(Option<String>, Option<String>)> {
        step(&expanded.phases[phase], id)
            .commands
            .iter()
            .map(|c| (c.node.clone(), c.executor.clone()))
            .collect()
    };
    let on = |node: &str, executor: &str| (Some(node.to_string()), Some(executor.to_string()));
    assert_eq!(placed(0, "deploy-y"), [on("y-cp", "local")]);
    assert_eq!(
        placed(1, "deploy-y"),
        [on("y-dp-1", "dp-1-host"), on("y-dp-2", "local")]
    );
    assert_eq!(placed(0, "migrations-up"), [on("y-cp", "local")]);
    assert_eq!(placed(0, "review-considerations"), [(None, None)]);
}

#[test]
fn insert_before_and_after_keep_plan_order() {
    let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
    let insert = |id: &str, position: InsertPosition, commands| InsertedStep {
        position,
        id: id.to_string(),
        title: format!("Inserted {id}"),
        instruction: "Drain the node from the pool.".to_string(),
        commands,
        changes: true,
        irreversible: false,
    };
    p.steps.inserts = vec![
        insert(
            "drain-x",
            InsertPosition::Before(select("stop-x")),
            vec![argv(&["kong", "drain"])],
        ),
        insert("notify", InsertPosition::After(select("start-y")), vec![]),
        insert(
            "page-team",
            InsertPosition::After(select("start-y")),
            vec![],
        ),
        insert(
            "check-drain",
            InsertPosition::After(select("drain-x")),
            vec![],
        ),
    ];
    let expanded = expand(&p).unwrap();
    let phase = &expanded.phases[0];
    let order = ids(phase);
    let at = |id: &str| order.iter().position(|s| *s == id).unwrap();
    assert_eq!(at("drain-x") + 1, at("check-drain"));
    assert_eq!(at("check-drain") + 1, at("stop-x"));
    assert_eq!(at("start-y") + 1, at("notify"));
    assert_eq!(at("notify") + 1, at("page-team"));
    let drain = step(phase, "drain-x");
    assert_eq!(drain.kind, StepKind::Manual);
    assert_eq!(drain.guide_ref, "");
    assert!(drain.changes);
    assert_eq!(drain.commands.len(), 1);
    assert!(drain.instruction.starts_with("Drain the node"));
    assert!(drain.instruction.contains("runs the commands"));
    assert!(step(phase, "notify").instruction.contains("do it yourself"));
}

#[test]
fn skip_sets_the_reason() {
    let mut p = plan(
        Mode::Traditional,
        StrategyChoice::Fixed(Strategy::DualCluster),
    );
    p.steps.skips.push(SkippedStep {
        step: select("review-considerations"),
        reason: "read during the change review".to_string(),
    });
    let expanded = expand(&p).unwrap();
    assert_eq!(
        step(&expanded.phases[0], "review-considerations")
            .skip_reason
            .as_deref(),
        Some("read during the change review")
    );
    assert_eq!(step(&expanded.phases[0], "backup").skip_reason, None);
}

#[test]
fn unknown_ids_are_errors_with_valid_ids_and_every_error_is_reported() {
    let mut p = plan(
        Mode::Traditional,
        StrategyChoice::Fixed(Strategy::DualCluster),
    );
    p.steps.skips.push(SkippedStep {
        step: select("shift-traffic"),
        reason: "x".to_string(),
    });
    p.steps.overrides.push(StepOverride {
        step: select("strat-y"),
        commands: vec![argv(&["true"])],
        timeout: None,
        builtin: true,
    });
    p.steps.inserts.push(InsertedStep {
        position: InsertPosition::After(StepSelector {
            phase: Some(PhaseName::DataPlane),
            id: "deploy-y".to_string(),
        }),
        id: "extra".to_string(),
        title: "Extra".to_string(),
        instruction: String::new(),
        commands: vec![],
        changes: false,
        irreversible: false,
    });
    let errors = expand(&p).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    let by_entry = |entry| errors.iter().find(|e| e.entry == entry).unwrap();
    let skip = by_entry(CustomisationEntry::Skip(0));
    assert_eq!(skip.message, "no step `shift-traffic` in this plan");
    assert!(
        skip.hint.contains("did you mean `shift-traffic-1`"),
        "{}",
        skip.hint
    );
    assert!(
        skip.hint
            .contains("valid step ids: preflight, freeze-writes")
    );
    let over = by_entry(CustomisationEntry::Override(0));
    assert!(
        over.hint.contains("did you mean `start-y`"),
        "{}",
        over.hint
    );
    let insert = by_entry(CustomisationEntry::Insert(0));
    assert!(
        insert.message.contains("no data-plane phase"),
        "{}",
        insert.message
    );
    assert!(insert.hint.contains("its phases are: cluster"));
    assert!(errors[0].to_string().contains("hint:"));
}

#[test]
fn bare_id_in_both_hybrid_phases_is_ambiguous() {
    let mut p = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::DualCluster));
    p.steps.skips.push(SkippedStep {
        step: select("decommission-x"),
        reason: "later".to_string(),
    });
    p.steps.skips.push(SkippedStep {
        step: select("monitr"),
        reason: "typo".to_string(),
    });
    let errors = expand(&p).unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[1]
            .hint
            .starts_with("did you mean `monitor`? valid steps"),
        "{}",
        errors[1].hint
    );
    assert!(
        errors[0].message.contains("ambiguous"),
        "{}",
        errors[0].message
    );
    assert!(
        errors[0]
            .hint
            .contains("control-plane/decommission-x or data-plane/decommission-x"),
        "{}",
        errors[0].hint
    );
    // Naming the phase works; so does a bare id only one phase has.
    p.steps.skips.pop();
    p.steps.skips[0].step.phase = Some(PhaseName::ControlPlane);
    p.steps.skips.push(SkippedStep {
        step: select("compat-check"),
        reason: "checked by hand".to_string(),
    });
    let expanded = expand(&p).unwrap();
    let cp = &expanded.phases[0];
    let dp = &expanded.phases[1];
    assert!(step(cp, "decommission-x").skip_reason.is_some());
    assert!(step(dp, "decommission-x").skip_reason.is_none());
    assert!(step(dp, "compat-check").skip_reason.is_some());
}

#[test]
fn conflicting_customisation_is_refused() {
    let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
    let over = |commands| StepOverride {
        step: select("stop-x"),
        commands,
        timeout: Some(Duration::from_secs(1)),
        builtin: true,
    };
    p.steps.overrides = vec![over(vec![argv(&["a"])]), over(vec![argv(&["b"])])];
    p.steps.inserts.push(InsertedStep {
        position: InsertPosition::Before(select("backup")),
        id: "monitor".to_string(),
        title: "Clash".to_string(),
        instruction: String::new(),
        commands: vec![],
        changes: false,
        irreversible: false,
    });
    let errors = expand(&p).unwrap_err();
    let entries: Vec<CustomisationEntry> = errors.iter().map(|e| e.entry).collect();
    assert_eq!(
        entries,
        [
            CustomisationEntry::Insert(0),
            CustomisationEntry::Override(1)
        ]
    );
    assert!(errors[0].message.contains("already used"));
    assert!(errors[1].message.contains("steps.overrides[0]"));

    let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
    p.steps.overrides = vec![over(vec![])];
    let errors = expand(&p).unwrap_err();
    assert!(errors[0].message.contains("timeout but no commands"));
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("start-y", "strat-y"), 2);
    assert_eq!(edit_distance("backup", "backup"), 0);
    assert_eq!(edit_distance("", "abc"), 3);
}

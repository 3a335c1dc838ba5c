//! The view model folds the engine's events into what the console shows.

use chrono::TimeDelta;
use kongup::engine::event::{Event, LogStream, RollbackProgress, RunState, StepState};
use kongup::lb::Split;
use kongup::metrics::{ClusterFigures, Exporter};
use kongup::plan::steps::{PhaseName, StepRef};
use kongup::ui::state::{LOG_CAPACITY, LogKind, METRICS_WINDOW_SECS, Modal};
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, apply_all, screen};

fn fresh() -> ConsoleState {
    let expanded = expanded();
    let plan = plan();
    let previewer = previewer(&plan, &expanded);
    let mut state = ConsoleState::new(&plan, &expanded, t0(), Theme::COLOUR, previewer);
    apply_all(&mut state, &start_events(&expanded));
    state
}

#[test]
fn the_start_of_a_run_reports_every_step_without_flooding_the_logs() {
    let state = fresh();
    assert_eq!(state.run_state(), RunState::Idle);
    assert_eq!(state.step_state(&cp("preflight")), Some(StepState::Ready));
    assert_eq!(state.step_state(&dp("stop-dp-x")), Some(StepState::Pending));
    let texts: Vec<&str> = state.logs().iter().map(|l| l.text.as_str()).collect();
    // The plan's warning, the first step ready: no line per pending step.
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("preflight ready"));
}

#[test]
fn a_resumed_run_points_at_the_interrupted_step() {
    let mut state = fresh();
    apply_all(
        &mut state,
        &complete(&[cp("preflight"), cp("review-changes")], 10),
    );
    state.apply(&changed(cp("freeze-writes"), StepState::Interrupted));
    assert_eq!(state.selected().unwrap().0, &cp("freeze-writes"));
    assert!(
        state
            .logs()
            .back()
            .unwrap()
            .text
            .contains("freeze-writes interrupted")
    );
}

#[test]
fn the_log_ring_keeps_the_newest_lines() {
    let mut state = fresh();
    for n in 0..LOG_CAPACITY + 1_000 {
        state.apply(&log(
            10,
            "backup-x",
            LogStream::Stdout,
            &format!("line {n}"),
        ));
    }
    assert_eq!(state.logs().len(), LOG_CAPACITY);
    assert_eq!(state.logs().front().unwrap().text, "line 1000");
    assert_eq!(
        state.logs().back().unwrap().text,
        format!("line {}", LOG_CAPACITY + 999)
    );
}

#[test]
fn metrics_history_keeps_ten_minutes() {
    let mut state = fresh();
    apply_all(&mut state, &metrics_history(0, 1_800, 0, 0.0));
    let history = state.metrics_history();
    let span = history.back().unwrap().at - history.front().unwrap().at;
    assert!(span <= TimeDelta::seconds(METRICS_WINDOW_SECS), "{span}");
    assert!(
        span >= TimeDelta::seconds(METRICS_WINDOW_SECS - 5),
        "{span}"
    );
}

#[test]
fn the_clock_redraws_only_when_the_shown_second_changes_and_stops_at_the_end() {
    let mut state = fresh();
    assert!(state.set_now(at(1)));
    assert!(!state.set_now(at(1) + TimeDelta::milliseconds(400)));
    assert!(state.set_now(at(2)));
    state.apply(&Event::RunChanged(RunState::Done));
    assert!(
        !state.set_now(at(3_600)),
        "a finished run's time stands still"
    );
    assert_eq!(state.elapsed_secs(), 2);
}

#[test]
fn the_rollback_plan_opens_by_itself_but_not_over_another_dialog() {
    let mut state = scenarios::awaiting_confirmation(Theme::COLOUR);
    state.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![undoing("freeze-writes")],
        note: None,
    }));
    assert!(matches!(state.modal(), Some(Modal::Rollback)));

    let mut busy = scenarios::help(Theme::COLOUR);
    busy.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![],
        note: None,
    }));
    assert!(matches!(busy.modal(), Some(Modal::Help)));
}

#[test]
fn a_load_balancer_that_disagrees_is_shown() {
    let mut state = fresh();
    state.apply(&Event::TrafficChanged {
        requested: Split::to_y(25),
        applied: Some(Split::to_y(20)),
    });
    let line = state.logs().back().unwrap();
    assert_eq!(line.kind, LogKind::Event(kongup::ui::theme::Tone::Warn));
    assert!(line.text.contains("load balancer reports X 80% | Y 20%"));
    let text = screen(&state, 80, 24);
    assert!(text.contains("⚠ asked Y 25%"), "{text}");
}

/// Preflight's read-back fills the header before any traffic step; it adds no log line
/// of its own (the step's log has it).
#[test]
fn a_split_read_back_shows_in_the_header() {
    let mut state = fresh();
    assert!(screen(&state, 80, 24).contains("traffic not read yet"));
    let logs_before = state.logs().len();
    state.apply(&Event::TrafficRead(Split::ALL_X));
    let text = screen(&state, 80, 24);
    assert!(!text.contains("traffic not read yet"), "{text}");
    assert!(text.contains("X 100%"), "{text}");
    assert_eq!(state.logs().len(), logs_before);
}

#[test]
fn an_unconfirmed_split_says_so() {
    let mut state = fresh();
    state.apply(&Event::TrafficChanged {
        requested: Split::to_y(10),
        applied: None,
    });
    assert!(screen(&state, 80, 24).contains("(unconfirmed)"));
}

#[test]
fn a_step_the_plan_does_not_have_is_a_warning_not_a_crash() {
    let mut state = fresh();
    state.apply(&changed(
        StepRef::new(PhaseName::Cluster, "nowhere"),
        StepState::Running,
    ));
    let line = state.logs().back().unwrap();
    assert_eq!(line.kind, LogKind::Warning);
    assert!(line.text.contains("cluster/nowhere"));
}

/// The cluster's figures with no request series: what Kong exports before a node's first
/// counted request, and (3.x) with the prometheus plugin's flags off.
fn without_series(figures: &mut ClusterFigures, exporter: Exporter) {
    figures.error_ratio = None;
    figures.status_code_metrics = false;
    figures.p99_ms = None;
    figures.latency_metrics = false;
    figures.exporter = Some(exporter);
}

/// Y (Kong 3.x, as the hybrid plan has it) without request series.
fn y_without_series() -> Event {
    let mut snapshot = match metrics(10, 10, 0.0) {
        Event::Metrics(s) => s,
        _ => unreachable!(),
    };
    without_series(&mut snapshot.y, Exporter::Kong3);
    Event::Metrics(snapshot)
}

fn y_takes_traffic(state: &mut ConsoleState) {
    state.apply(&Event::TrafficChanged {
        requested: Split { x: 90, y: 10 },
        applied: Some(Split { x: 90, y: 10 }),
    });
}

#[test]
fn figures_kong_does_not_export_say_which_flag_is_off() {
    let mut state = fresh();
    y_takes_traffic(&mut state);
    state.apply(&y_without_series());
    let text = screen(&state, 80, 24);
    assert!(text.contains("status_code_metrics off"), "{text}");
    assert!(text.contains("latency_metrics off"), "{text}");
    // With room for it: a flag off and nothing counted yet look the same in /metrics.
    let wide = screen(&state, 160, 48);
    assert!(
        wide.contains("status_code_metrics off, or none counted yet")
            && wide.contains("latency_metrics off, or none counted yet"),
        "{wide}"
    );
}

/// Kong 2.x has no metric flags: a 2.x cluster without request series has counted none,
/// and the pane never names a flag for it.
#[test]
fn a_kong_2_cluster_without_series_is_never_told_of_a_flag() {
    let mut state = fresh();
    y_takes_traffic(&mut state);
    let mut snapshot = match metrics(10, 10, 0.0) {
        Event::Metrics(s) => s,
        _ => unreachable!(),
    };
    without_series(&mut snapshot.x, Exporter::Kong2);
    state.apply(&Event::Metrics(snapshot));
    for (width, height) in [(80, 24), (160, 48)] {
        let text = screen(&state, width, height);
        // req/s, 5xx and p99 alike.
        assert_eq!(text.matches("no request counted yet").count(), 3, "{text}");
        assert!(!text.contains("_metrics"), "{text}");
    }
}

/// Before Y's first traffic stage its nodes have served nothing, so Kong has not created
/// the series yet: that is no sign of a flag turned off.
#[test]
fn before_y_takes_traffic_missing_series_are_no_traffic_not_a_flag_off() {
    let mut state = fresh();
    state.apply(&y_without_series());
    let text = screen(&state, 80, 24);
    assert!(!text.contains("_metrics off"), "{text}");
    assert_eq!(text.matches("no traffic yet").count(), 3, "{text}");
}

#[test]
fn the_bake_countdown_shows_on_the_running_step() {
    let mut state = scenarios::paused(Theme::COLOUR);
    state.apply(&Event::Bake {
        step: cp("traffic-10"),
        remaining_secs: 61,
    });
    assert!(screen(&state, 80, 24).contains("[bake 1:01]"));
    state.apply(&changed(cp("traffic-10"), StepState::Succeeded));
    assert!(!screen(&state, 80, 24).contains("[bake"));
}

#[test]
fn the_zoomed_pane_takes_the_whole_body() {
    let mut state = scenarios::gate_breached(Theme::COLOUR);
    scenarios::press(&mut state, scenarios::key(crossterm::event::KeyCode::Tab));
    scenarios::press(&mut state, scenarios::key(crossterm::event::KeyCode::Tab));
    scenarios::press(&mut state, scenarios::char_key('z'));
    let text = screen(&state, 80, 24);
    // Every node is listed when the topology pane is zoomed.
    for node in ["cp-x1", "dp-x3", "cp-y2", "dp-y3"] {
        assert!(text.contains(node), "{node} missing:\n{text}");
    }
    assert!(!text.contains("Checklist"), "{text}");
}

/// The engine plans the rest of the rollback after its first act: a plan with no time to
/// safety means it did not move traffic, and the console says why instead of "moving".
#[test]
fn a_rollback_that_moved_no_traffic_says_why() {
    use kongup::ui::state::RollbackTraffic;
    let rollback_step = |id: &str| StepRef::new(PhaseName::Rollback, id.to_string());
    let started = |state: &mut ConsoleState| {
        state.apply(&Event::RunChanged(RunState::RollingBack));
        state.apply(&Event::RollbackProgress(RollbackProgress::Started));
    };

    let mut state = fresh();
    started(&mut state);
    assert_eq!(state.rollback_traffic(), RollbackTraffic::Moving);
    state.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![rollback_step("deploy-y")],
        note: None,
    }));
    assert_eq!(state.rollback_traffic(), RollbackTraffic::NeverMoved);
    assert!(screen(&state, 80, 24).contains("no traffic had moved to Y"));

    let mut state = fresh();
    state.apply(&traffic(50));
    started(&mut state);
    state.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![rollback_step("stop-x"), rollback_step("traffic-to-x")],
        note: None,
    }));
    assert_eq!(state.rollback_traffic(), RollbackTraffic::AStepOfThePlan);
    assert!(screen(&state, 80, 24).contains("traffic still on Y"));

    let mut state = fresh();
    state.apply(&traffic(50));
    started(&mut state);
    state.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![rollback_step("deploy-y")],
        note: None,
    }));
    assert_eq!(state.rollback_traffic(), RollbackTraffic::Stays);

    // The engine's note says why, in the dialog itself, above the steps that stay in view.
    state.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![undoing("freeze-writes")],
        note: Some(
            "traffic stays where it is: X cannot serve. cluster/decommission-x decommissioned \
             X: rebuild X (install the old version on its nodes, restore its database from \
             the backup if Y's migrations finished on it, start it and check it answers) \
             before any traffic goes back to it. Then send traffic back with `traffic 0`"
                .into(),
        ),
    }));
    let text = screen(&state, 80, 24);
    assert!(
        text.contains("⚠ traffic stays where it is: X cannot serve"),
        "{text}"
    );
    assert!(
        text.contains("…"),
        "a long note is cut at four rows:\n{text}"
    );
    assert!(text.contains("2. Then, in this order"), "{text}");
    assert!(text.contains("[next]"), "{text}");
}

/// Before Y takes traffic the engine does not act on the gates: the verdict reads idle,
/// not as a warning, and the log says nothing of it; once Y takes traffic the same verdict
/// is a warning again, said once in the log.
#[test]
fn the_gate_is_idle_until_y_takes_traffic() {
    use kongup::metrics::Verdict;

    let mut state = fresh();
    state.apply(&traffic(0));
    let logged = |state: &ConsoleState| {
        state
            .logs()
            .iter()
            .filter(|l| l.text.contains("gate"))
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
    };
    apply_all(
        &mut state,
        &[gate(10, Verdict::Inconclusive, 0, &["too few requests"])],
    );
    apply_all(
        &mut state,
        &[gate(12, Verdict::Inconclusive, 0, &["too few requests"])],
    );
    let idle = screen(&state, 160, 48);
    assert!(
        idle.contains("gate · idle ━") || idle.contains("gate · idle ─"),
        "{idle}"
    );
    assert!(idle.contains("· gate idle: Y takes no traffic"), "{idle}");
    assert!(!idle.contains("INCONCLUSIVE"), "{idle}");
    assert_eq!(logged(&state), ["· gate idle: Y takes no traffic"]);

    state.apply(&traffic(10));
    apply_all(
        &mut state,
        &[gate(14, Verdict::Inconclusive, 0, &["too few requests"])],
    );
    apply_all(
        &mut state,
        &[gate(16, Verdict::Inconclusive, 0, &["too few requests"])],
    );
    let watched = screen(&state, 160, 48);
    assert!(watched.contains("INCONCLUSIVE"), "{watched}");
    assert_eq!(
        logged(&state),
        ["· gate idle: Y takes no traffic", "? gate INCONCLUSIVE"]
    );

    // A failure reads as one whatever the split (the rollback has moved traffic to X).
    state.apply(&traffic(0));
    apply_all(
        &mut state,
        &[gate(18, Verdict::Fail, 3, &["Y 5xx 20% > 1%"])],
    );
    assert!(screen(&state, 160, 48).contains("BREACHED"));
}

/// Y's nodes do not answer before they are started, as planned: the topology says so
/// quietly; once their start has begun, not answering is a failure again.
#[test]
fn y_not_deployed_yet_reads_as_planned_not_as_unreachable() {
    use kongup::kong::topology::NodeHealth;

    let y_health = |state: &ConsoleState| {
        state
            .topology()
            .unwrap()
            .nodes
            .iter()
            .filter(|n| n.cluster == kongup::plan::steps::ClusterSide::Y)
            .map(|n| n.health.clone())
            .collect::<Vec<_>>()
    };
    let refused = NodeHealth::Unreachable("connection refused".into());
    let mut state = fresh();
    state.apply(&topology(None, refused.clone()));
    let before = y_health(&state);
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|h| *h == NodeHealth::Absent),
        "{before:?}"
    );
    let text = screen(&state, 160, 48);
    assert!(text.contains("down, as planned"), "{text}");
    assert!(!text.contains("unreachable"), "{text}");

    // The metrics pane says the same of the scrape Y's nodes cannot answer.
    apply_all(&mut state, &[metrics_unscraped_y(30)]);
    let text = screen(&state, 160, 48);
    assert!(!text.contains("no node answered the scrape"), "{text}");

    // Deployed is not started: the plan starts Y's control planes in a step of its own.
    apply_all(&mut state, &complete(&[cp("deploy-y")], 40));
    state.apply(&topology(None, refused.clone()));
    assert!(y_health(&state).contains(&NodeHealth::Absent));
    state.apply(&changed(cp("start-y"), StepState::Running));
    state.apply(&topology(None, refused.clone()));
    apply_all(&mut state, &[metrics_unscraped_y(32)]);
    let text = screen(&state, 160, 48);
    assert!(text.contains("no node answered the scrape"), "{text}");
    // The control planes: their data planes come up in the data-plane phase.
    let control_planes: Vec<NodeHealth> = state
        .topology()
        .unwrap()
        .nodes
        .iter()
        .filter(|n| {
            n.cluster == kongup::plan::steps::ClusterSide::Y
                && n.role == kongup::plan::model::Role::ControlPlane
        })
        .map(|n| n.health.clone())
        .collect();
    assert!(!control_planes.is_empty());
    assert!(
        control_planes.iter().all(|h| *h == refused),
        "{control_planes:?}"
    );
}

/// A scrape in which X answered and none of Y's three nodes did.
fn metrics_unscraped_y(secs: i64) -> Event {
    let Event::Metrics(mut snapshot) = metrics(secs, 0, 0.0) else {
        unreachable!("metrics() makes a metrics event")
    };
    snapshot.y = kongup::metrics::ClusterFigures {
        nodes_total: 3,
        nodes_scraped: 0,
        ..Default::default()
    };
    Event::Metrics(snapshot)
}

/// In hybrid mode control planes and data planes have a phase each: starting Y's control
/// planes says nothing of Y's data planes, and decommissioning X's control planes leaves
/// X's data planes serving (down would be a failure there).
#[test]
fn hybrid_nodes_are_expected_up_by_their_own_phase() {
    use kongup::plan::model::Role;
    use kongup::plan::steps::ClusterSide::{X, Y};

    let mut state = fresh();
    assert!(!state.node_expected_up(Y, Role::ControlPlane));
    apply_all(
        &mut state,
        &complete(&[cp("deploy-y"), cp("start-y"), cp("decommission-x")], 100),
    );
    assert!(state.node_expected_up(Y, Role::ControlPlane));
    assert!(!state.node_expected_up(Y, Role::DataPlane));
    assert!(!state.node_expected_up(X, Role::ControlPlane));
    assert!(state.node_expected_up(X, Role::DataPlane));
    assert!(state.cluster_expected_up(X) && state.cluster_expected_up(Y));

    state.apply(&changed(dp("roll-dp"), StepState::Running));
    assert!(state.node_expected_up(Y, Role::DataPlane));
    apply_all(
        &mut state,
        &complete(&[dp("roll-dp"), dp("stop-dp-x")], 200),
    );
    assert!(!state.node_expected_up(X, Role::DataPlane));
    assert!(!state.cluster_expected_up(X));

    // The rollback step that stops Y's control planes (undoing their start) puts them down
    // as planned too; Y's data planes are another phase's.
    apply_all(&mut state, &rollback_events(300, vec![undoing("start-y")]));
    apply_all(&mut state, &complete(&[undoing("start-y")], 300));
    assert!(!state.node_expected_up(Y, Role::ControlPlane));
    assert!(state.node_expected_up(Y, Role::DataPlane));
}

/// A rollback that starts X again (undoing its stop) expects X up from the moment that
/// step begins: if it fails, X not answering is the failure it is, not "as planned".
#[test]
fn a_rollback_starting_x_again_expects_x_up() {
    use kongup::plan::model::Role;
    use kongup::plan::steps::{ClusterSide::X, RollbackAction, RollbackKind};

    let mut expanded = expanded();
    let decommission = expanded
        .phases
        .iter_mut()
        .flat_map(|p| p.steps.iter_mut())
        .find(|s| s.id == "decommission-x")
        .unwrap();
    decommission.rollback = Some(RollbackAction {
        title: "Start X's control planes again".into(),
        instruction: "Start them.".into(),
        kind: RollbackKind::StartNodes {
            cluster: X,
            wave: None,
        },
        irreversible: false,
    });
    let plan = plan();
    let mut state = ConsoleState::new(
        &plan,
        &expanded,
        t0(),
        Theme::COLOUR,
        previewer(&plan, &expanded),
    );
    apply_all(&mut state, &start_events(&expanded));
    apply_all(&mut state, &complete(&[cp("decommission-x")], 100));
    assert!(!state.node_expected_up(X, Role::ControlPlane));

    let start_x_again = kongup::engine::rollback::rollback_ref(&expanded, &cp("decommission-x"));
    apply_all(
        &mut state,
        &rollback_events(300, vec![start_x_again.clone()]),
    );
    state.apply(&changed(start_x_again.clone(), StepState::Ready));
    assert!(
        !state.node_expected_up(X, Role::ControlPlane),
        "not begun yet"
    );
    state.apply(&changed(start_x_again.clone(), StepState::Running));
    assert!(state.node_expected_up(X, Role::ControlPlane));
    state.apply(&changed(start_x_again, StepState::Failed));
    assert!(state.node_expected_up(X, Role::ControlPlane));
    assert!(state.node_expected_up(X, Role::DataPlane));
}

/// What the plan has up is redone when a step changes, not only at the next topology
/// poll: Y's control planes read red as soon as their start has begun.
#[test]
fn the_shown_topology_follows_the_steps_between_polls() {
    use kongup::kong::topology::NodeHealth;
    use kongup::plan::model::Role;

    let mut state = fresh();
    state.apply(&topology(
        None,
        NodeHealth::Unreachable("connection refused".into()),
    ));
    let y_cp_health = |state: &ConsoleState| {
        state
            .topology()
            .unwrap()
            .nodes
            .iter()
            .find(|n| {
                n.cluster == kongup::plan::steps::ClusterSide::Y && n.role == Role::ControlPlane
            })
            .unwrap()
            .health
            .clone()
    };
    assert_eq!(y_cp_health(&state), NodeHealth::Absent);
    state.apply(&changed(cp("start-y"), StepState::Running));
    assert!(matches!(y_cp_health(&state), NodeHealth::Unreachable(_)));
}

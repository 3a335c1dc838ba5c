//! The console as the operator sees it, at 80x24 and 160x48, at each moment of a run.
//! Review changes with `cargo insta review`.

use kongup::ui::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use kongup::engine::event::{Event, StepState};
use kongup::metrics::gates::GateEvaluator;
use kongup::metrics::sample::DataPlaneReport;
use kongup::metrics::{ClusterFigures, EmptyConfiguration, Exporter, MetricsSnapshot};
use kongup::plan::version::KongVersion;
use kongup::testkit::hybrid;
use kongup::testkit::scenarios::{self, apply_all, buffer_text, draw, screen};
use kongup::ui::ConsoleState;

/// `insta::assert_snapshot!` under the names and in the directory the snapshots had when
/// these tests were a binary of their own (`tests/snapshots/ui_snapshots__NAME.snap`).
macro_rules! assert_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(format!("ui_snapshots__{}", $name), $value)
        })
    };
}

fn snapshot_all(width: u16, height: u16) {
    for (name, build) in scenarios::all() {
        let state = build(Theme::COLOUR);
        assert_snapshot!(
            format!("{name}_{width}x{height}"),
            screen(&state, width, height)
        );
    }
}

#[test]
fn snapshots_at_80x24() {
    snapshot_all(80, 24);
}

#[test]
fn snapshots_at_160x48() {
    snapshot_all(160, 48);
}

#[test]
fn too_small_says_so() {
    let state = scenarios::running_with_logs(Theme::COLOUR);
    assert_snapshot!("too_small_60x20", screen(&state, 60, 20));
    assert_snapshot!("too_small_79x24", screen(&state, 79, 24));
    let text = screen(&state, 80, 23);
    assert!(text.contains("Terminal too small"), "{text}");
}

#[test]
fn tiny_and_odd_sizes_draw_without_panicking() {
    for (_, build) in scenarios::all() {
        let state = build(Theme::COLOUR);
        for (w, h) in [
            (1, 1),
            (2, 40),
            (200, 3),
            (80, 24),
            (81, 25),
            (97, 31),
            (120, 30),
            (255, 80),
        ] {
            let text = screen(&state, w, h);
            assert_eq!(text.lines().count(), h as usize);
        }
    }
}

/// Without colour every state still reads: the same text, only the styles differ.
#[test]
fn no_color_changes_only_the_style() {
    for (name, build) in scenarios::all() {
        let coloured = draw(&build(Theme::COLOUR), 80, 24);
        let plain = draw(&build(Theme::NO_COLOUR), 80, 24);
        assert_eq!(
            buffer_text(&coloured),
            buffer_text(&plain),
            "{name}: text differs"
        );
        assert!(
            plain
                .content()
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
            "{name}: NO_COLOR output has colours"
        );
        assert!(
            coloured.content().iter().any(|c| c.fg != Color::Reset),
            "{name}: the coloured screen has no colour"
        );
    }
}

/// Only the 16 named ANSI colours, so the terminal's theme applies.
#[test]
fn colours_are_the_named_ansi_ones() {
    for (name, build) in scenarios::all() {
        for cell in draw(&build(Theme::COLOUR), 160, 48).content() {
            for colour in [cell.fg, cell.bg] {
                assert!(
                    !matches!(colour, Color::Rgb(..) | Color::Indexed(_)),
                    "{name}: {colour:?}"
                );
            }
        }
    }
}

/// A terminal resized down, up and below the minimum redraws exactly as a fresh one would.
#[test]
fn resizing_redraws_correctly() {
    let state = scenarios::gate_breached(Theme::COLOUR);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for (w, h) in [(160, 48), (80, 24), (60, 20), (120, 40), (80, 24)] {
        terminal.backend_mut().resize(w, h);
        terminal.draw(|f| kongup::ui::render(f, &state)).unwrap();
        assert_eq!(
            buffer_text(terminal.backend().buffer()),
            screen(&state, w, h),
            "after resizing to {w}x{h}"
        );
    }
}

/// The hybrid fixture with Y's deployment given `commands` (argv each), as a plan may
/// customise the step.
fn plan_deploying_y_with(
    commands: Vec<Vec<String>>,
) -> (kongup::plan::model::Plan, kongup::plan::steps::ExpandedPlan) {
    let mut expanded = hybrid::expanded();
    let deploy = expanded
        .phases
        .iter_mut()
        .flat_map(|phase| phase.steps.iter_mut())
        .find(|step| step.id == "deploy-y")
        .expect("the fixture deploys Y");
    let template = deploy.commands[0].clone();
    deploy.commands = commands
        .into_iter()
        .map(|argv| kongup::plan::model::CommandSpec {
            program: kongup::plan::model::CommandLine::Argv(argv),
            ..template.clone()
        })
        .collect();
    (hybrid::plan(), expanded)
}

/// Y deployed in eight batches, a command each.
fn plan_with_a_long_run_list() -> (kongup::plan::model::Plan, kongup::plan::steps::ExpandedPlan) {
    plan_deploying_y_with(
        (1..=8)
            .map(|batch| {
                [
                    "ansible-playbook",
                    "-i",
                    "inventories/prod-eu",
                    "kong-dp.yml",
                    "--limit",
                    &format!("dp_y_batch{batch}"),
                ]
                .map(String::from)
                .to_vec()
            })
            .collect(),
    )
}

/// A new run of `plan` with `step` ready and Enter pressed on it.
fn confirm_open(
    plan: &kongup::plan::model::Plan,
    expanded: &kongup::plan::steps::ExpandedPlan,
    step: &kongup::plan::steps::StepRef,
) -> kongup::ui::ConsoleState {
    use kongup::engine::event::StepState;
    use kongup::testkit::hybrid::{changed, previewer, start_events, t0, traffic};

    let mut state = kongup::ui::ConsoleState::new(
        plan,
        expanded,
        t0(),
        Theme::NO_COLOUR,
        previewer(plan, expanded),
    );
    scenarios::apply_all(&mut state, &start_events(expanded));
    state.apply(&traffic(0));
    state.apply(&changed(step.clone(), StepState::Ready));
    scenarios::press(&mut state, scenarios::key(crossterm::event::KeyCode::Enter));
    state
}

/// However long a step's run list, the dialog at 80x24 keeps the line that says how to
/// confirm: the run list gives way, not the keys.
#[test]
fn confirm_dialog_keeps_its_keys_with_a_long_run_list() {
    let (plan, expanded) = plan_with_a_long_run_list();
    let mut longest = (0, String::new());
    for (phase, step) in expanded.steps() {
        let step_ref = kongup::plan::steps::StepRef::new(phase.name, &step.id);
        let state = confirm_open(&plan, &expanded, &step_ref);
        let text = screen(&state, 80, 24);
        assert!(
            text.contains("run it ·") || text.contains("runs it once the name matches"),
            "{step_ref}: the dialog lost its keys\n{text}"
        );
        let rows = state.runs(&step_ref).len();
        if rows > longest.0 {
            longest = (rows, text);
        }
    }
    assert!(longest.0 >= 8, "no step had a long run list: {}", longest.0);
    assert_snapshot!("confirm_modal_long_run_list_80x24", longest.1);
}

/// The arrows scroll a long run list by rows, down to the last and back.
#[test]
fn the_arrows_scroll_a_long_run_list() {
    use crossterm::event::KeyCode;

    let (plan, expanded) = plan_with_a_long_run_list();
    let deploy = hybrid::cp("deploy-y");
    let mut state = confirm_open(&plan, &expanded, &deploy);
    let first = screen(&state, 80, 24);
    assert!(
        first.contains("dp_y_batch1") && !first.contains("dp_y_batch8"),
        "{first}"
    );
    assert!(first.contains("more rows below"), "{first}");
    for _ in 0..40 {
        scenarios::press(&mut state, scenarios::key(KeyCode::Down));
    }
    let last = screen(&state, 80, 24);
    // The dialog scrolls as a whole (issue 15, item 10): its end is the last command.
    assert!(last.contains("dp_y_batch8"), "{last}");
    assert!(
        last.contains("more rows above") && !last.contains("more rows below"),
        "{last}"
    );
    assert!(last.contains("run it ·"), "{last}");
    assert_snapshot!("confirm_modal_long_run_list_scrolled_80x24", last);
    // One row up from the end shows the row before, whatever Down went past.
    scenarios::press(&mut state, scenarios::key(KeyCode::Up));
    assert_ne!(screen(&state, 80, 24), last);
    scenarios::press(&mut state, scenarios::key(KeyCode::Home));
    assert_eq!(screen(&state, 80, 24), first);
    // Enter still confirms the step, wherever the list is scrolled.
    scenarios::press(&mut state, scenarios::key(KeyCode::End));
    let commands = scenarios::press(&mut state, scenarios::key(KeyCode::Enter));
    assert!(
        matches!(&commands[..], [kongup::engine::command::Command::Confirm { step, typed: None }] if *step == deploy),
        "{commands:?}"
    );
}

/// One command taller than the dialog can still be read to its last argument.
#[test]
fn a_command_taller_than_the_dialog_scrolls_to_its_end() {
    use crossterm::event::KeyCode;

    let mut argv = vec!["/opt/kong/bin/deploy".to_string()];
    argv.extend((1..=80).map(|n| format!("--extra-var=setting_{n}=value")));
    let (plan, expanded) = plan_deploying_y_with(vec![argv]);
    let deploy = hybrid::cp("deploy-y");
    let mut state = confirm_open(&plan, &expanded, &deploy);
    let first = screen(&state, 80, 24);
    assert!(!first.contains("setting_80="), "{first}");
    scenarios::press(&mut state, scenarios::key(KeyCode::End));
    let last = screen(&state, 80, 24);
    assert!(last.contains("setting_80="), "{last}");
    assert!(last.contains("run it ·"), "{last}");
}

/// A rollback longer than the dialog keeps its next step in view, says how many are out
/// of view, and shows the steps already done as done.
#[test]
fn a_long_rollback_keeps_its_next_step_in_view() {
    use kongup::engine::event::StepState;
    use kongup::plan::steps::{RollbackAction, RollbackKind, StepRef};
    use kongup::testkit::hybrid::{
        changed, complete, plan, previewer, rollback_events, start_events, t0, traffic,
    };

    // Every control-plane step undone by hand: a rollback of fifteen steps.
    let mut expanded = hybrid::expanded();
    for step in expanded.phases.iter_mut().flat_map(|p| p.steps.iter_mut()) {
        step.rollback.get_or_insert_with(|| RollbackAction {
            title: format!("Undo: {}", step.title),
            instruction: "By hand.".into(),
            kind: RollbackKind::Manual,
            irreversible: false,
        });
    }
    let plan = plan();
    let mut state = kongup::ui::ConsoleState::new(
        &plan,
        &expanded,
        t0(),
        Theme::NO_COLOUR,
        previewer(&plan, &expanded),
    );
    scenarios::apply_all(&mut state, &start_events(&expanded));
    state.apply(&traffic(10));
    scenarios::press(&mut state, scenarios::char_key('R'));
    let planned: Vec<StepRef> = expanded
        .phases
        .iter()
        .flat_map(|phase| {
            phase
                .steps
                .iter()
                .map(|step| StepRef::new(phase.name, &step.id))
        })
        .filter(|forward| forward.phase == kongup::plan::steps::PhaseName::ControlPlane)
        .map(|forward| kongup::engine::rollback::rollback_ref(&expanded, &forward))
        .rev()
        .collect();
    assert!(planned.len() >= 12, "{} rollback steps", planned.len());
    scenarios::apply_all(&mut state, &rollback_events(412, planned.clone()));
    let done = planned.len() - 2;
    scenarios::apply_all(&mut state, &complete(&planned[..done], 1090));
    state.apply(&changed(planned[done].clone(), StepState::Ready));
    assert_eq!(state.next_rollback_step(), Some(&planned[done]));
    let text = screen(&state, 80, 24);
    let next_row = text
        .lines()
        .find(|row| row.contains("[next]"))
        .unwrap_or_else(|| panic!("the next step is out of view:\n{text}"));
    assert!(
        next_row.contains(&format!("{}. Undo", done + 1)),
        "{next_row}\n{text}"
    );
    assert!(text.contains("earlier"), "{text}");
    assert!(text.contains("[done]"), "done steps read done:\n{text}");
    assert!(text.contains("confirm the next step"), "{text}");
    assert_snapshot!("rollback_long_80x24", text);
}

/// A traffic stage that would send less to Y than Y has (a changed plan can put a 5 %
/// stage after a 50 % one that ran) says so in its confirm dialog, at both sizes; with Y
/// at or below the stage, the dialog does not.
#[test]
fn a_stage_that_sends_less_to_y_says_so_in_its_confirm() {
    use kongup::engine::event::StepState;
    use kongup::plan::steps::StepKind;
    use kongup::testkit::hybrid::{changed, previewer, start_events, t0, traffic};

    let (plan, expanded) = (hybrid::plan(), hybrid::expanded());
    let (stage, percent) = expanded
        .steps()
        .find_map(|(phase, step)| match step.kind {
            StepKind::ShiftTraffic { y_percent, .. } => Some((
                kongup::plan::steps::StepRef::new(phase.name, &step.id),
                y_percent,
            )),
            _ => None,
        })
        .expect("the fixture shifts traffic");
    let open_with_y_at = |y: u8| {
        let mut state = kongup::ui::ConsoleState::new(
            &plan,
            &expanded,
            t0(),
            Theme::NO_COLOUR,
            previewer(&plan, &expanded),
        );
        scenarios::apply_all(&mut state, &start_events(&expanded));
        state.apply(&traffic(y));
        state.apply(&changed(stage.clone(), StepState::Ready));
        // A run that has moved traffic and whose next step is ready waits for the operator.
        state.apply(&kongup::engine::event::Event::RunChanged(
            kongup::engine::event::RunState::Waiting,
        ));
        scenarios::press(&mut state, scenarios::key(crossterm::event::KeyCode::Enter));
        state
    };
    let backwards = open_with_y_at(50);
    assert!(percent < 50, "the fixture's first stage is below 50 %");
    for (width, height) in [(80, 24), (160, 48)] {
        let text = screen(&backwards, width, height);
        assert!(text.contains("moves traffic BACK"), "{text}");
        assert!(text.contains("run it ·"), "{text}");
        assert_snapshot!(format!("confirm_modal_traffic_back_{width}x{height}"), text);
    }
    let forwards = screen(&open_with_y_at(percent), 160, 48);
    assert!(!forwards.contains("moves traffic BACK"), "{forwards}");
}

// ---- the metrics pane in the words of each Kong version ----

/// One scrape every 5 s from `from` to `to`, each cluster's figures made by `x` and `y`.
fn metrics_between(
    from: i64,
    to: i64,
    x: impl Fn(i64) -> ClusterFigures,
    y: impl Fn(i64) -> ClusterFigures,
) -> Vec<Event> {
    (from..=to)
        .step_by(5)
        .map(|s| {
            Event::Metrics(MetricsSnapshot {
                at: hybrid::at(s),
                x: x(s),
                y: y(s),
            })
        })
        .collect()
}

/// The verdict the gates give on `snapshot`, as the engine forwards it.
fn judged(snapshot: &MetricsSnapshot) -> Event {
    let plan = hybrid::plan();
    Event::Gate(GateEvaluator::new(plan.gates).evaluate(snapshot))
}

/// The hybrid run's 10 % stage baking, with figures from `metrics`.
fn baking_at_10(
    theme: Theme,
    plan: &kongup::plan::model::Plan,
    metrics: Vec<Event>,
) -> ConsoleState {
    let expanded = hybrid::expanded();
    let mut state = ConsoleState::new(
        plan,
        &expanded,
        hybrid::t0(),
        theme,
        hybrid::previewer(plan, &expanded),
    );
    apply_all(&mut state, &hybrid::start_events(&expanded));
    apply_all(
        &mut state,
        &hybrid::complete(
            &[
                "preflight",
                "review-changes",
                "freeze-writes",
                "backup-x",
                "deploy-y",
                "restore-db",
                "migrations-up",
                "migrations-finish",
                "start-y",
                "smoke-tests",
            ]
            .map(hybrid::cp),
            20,
        ),
    );
    state.apply(&hybrid::traffic(10));
    state.apply(&hybrid::changed(
        hybrid::cp("traffic-10"),
        StepState::Running,
    ));
    state.apply(&Event::RunChanged(kongup::engine::RunState::Running));
    let last = metrics.iter().rev().find_map(|e| match e {
        Event::Metrics(s) => Some(s.clone()),
        _ => None,
    });
    apply_all(&mut state, &metrics);
    if let Some(last) = last {
        state.apply(&judged(&last));
        state.set_now(last.at);
    }
    state.apply(&Event::Bake {
        step: hybrid::cp("traffic-10"),
        remaining_secs: 240,
    });
    state
}

/// An upgrade from Kong 2.8: X counts with 2.x's families (no flags); Y, on 3.4 with the
/// prometheus plugin enabled but no request series, may have `status_code_metrics` and
/// `latency_metrics` off, or have counted nothing yet: the pane and the gate say so.
fn from_kong_2_8(theme: Theme) -> ConsoleState {
    let mut plan = hybrid::plan();
    plan.from = KongVersion::new(2, 8, 5);
    plan.to = KongVersion::new(3, 4, 2);
    let x = |s: i64| ClusterFigures {
        exporter: Some(Exporter::Kong2),
        requests_in_window: Some(30_000 + s as u64),
        ..hybrid::figures(1100.0 + (s % 7) as f64 * 9.0, Some(0.0009), Some(190.0))
    };
    let y = |_| {
        let mut y = hybrid::figures(0.0, None, None);
        y.requests_per_s = None;
        y.exporter = Some(Exporter::Kong3);
        y.prometheus_plugin = Some(true);
        y.nginx_requests_per_s = Some(121.5);
        y
    };
    baking_at_10(theme, &plan, metrics_between(300, 600, x, y))
}

/// Y's control plane reports a data plane with the empty configuration: the gate fails at
/// once, though the 5xx ratio is fine.
fn empty_configuration(theme: Theme) -> ConsoleState {
    let plan = hybrid::plan();
    let x = |s: i64| ClusterFigures {
        exporter: Some(Exporter::Kong3),
        requests_in_window: Some(30_000 + s as u64),
        ..hybrid::figures(1080.0, Some(0.0008), Some(180.0))
    };
    let y = |s: i64| {
        let mut y = ClusterFigures {
            exporter: Some(Exporter::Kong3),
            requests_in_window: Some(3_000 + s as u64),
            ..hybrid::figures(120.0, Some(0.0007), Some(150.0))
        };
        if s >= 590 {
            y.empty_configuration = vec![EmptyConfiguration {
                control_plane: "cp-y1".into(),
                data_plane: DataPlaneReport {
                    node_id: "c0ffee00-4d2b-4e6a-b1c3-7d8e9f0a1b03".into(),
                    hostname: "dp-y3".into(),
                    ip: "10.0.3.23".into(),
                    config_hash: Some(0.0),
                    last_seen: Some(hybrid::at(s).timestamp() as f64),
                    compatible: Some(true),
                    kong_version: Some("3.10.0.1".into()),
                },
            }];
        }
        y
    };
    baking_at_10(theme, &plan, metrics_between(300, 600, x, y))
}

#[test]
fn the_metrics_pane_speaks_the_version_of_each_cluster() {
    for (name, build) in [
        ("from_kong_2_8", from_kong_2_8 as fn(Theme) -> ConsoleState),
        ("empty_configuration", empty_configuration),
    ] {
        let state = build(Theme::COLOUR);
        for (width, height) in [(80, 24), (160, 48)] {
            assert_snapshot!(
                format!("{name}_{width}x{height}"),
                screen(&state, width, height)
            );
        }
    }
}

/// The wave row without colour: the failed nodes still read from the symbol and the
/// words, and nothing but bold and the selection's reverse is styled.
#[test]
fn a_failed_wave_reads_without_colour() {
    let buffer = draw(&scenarios::wave_expanded(Theme::NO_COLOUR), 80, 24);
    assert_snapshot!("wave_expanded_no_color_80x24", format!("{buffer:?}"));
}

//! Issue 15, items 2, 3 and 12: after a breach the metrics pane shows the failing check
//! first, its figure marked; a failed step names its likely cause above its details; the
//! sparklines cover the bake (or the last 2 minutes) with their latest value, min and max.

use crossterm::event::KeyCode;
use kongup::engine::event::{Event, RunState, StepState};
use kongup::kong::topology::NodeHealth;
use kongup::kong::types::SyncStatus;
use kongup::metrics::gates::GateEvaluator;
use kongup::metrics::{MetricsSnapshot, Verdict};
use kongup::plan::steps::ClusterSide;
use kongup::testkit::hybrid;
use kongup::testkit::scenarios::{self, apply_all, buffer_text, char_key, draw, key, press};
use kongup::ui::state::Pane;
use kongup::ui::{ConsoleState, Theme};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// X at ~130 ms, Y at ~398 ms: only the relative p99 check (1.5 × X) breaches.
fn slow_y(secs: i64) -> MetricsSnapshot {
    let mut x = hybrid::figures(600.0, Some(0.0008), Some(130.0));
    x.requests_in_window = Some(36_000);
    let mut y = hybrid::figures(600.0, Some(0.0009), Some(398.0));
    y.requests_in_window = Some(36_000);
    MetricsSnapshot {
        at: hybrid::at(secs),
        x,
        y,
    }
}

/// The 50 % stage bakes; Y's p99 breaches until the gate fails; the run pauses.
fn breached_on_p99(theme: Theme) -> ConsoleState {
    let mut state = scenarios::awaiting_confirmation(theme);
    apply_all(
        &mut state,
        &hybrid::complete(
            &[
                "deploy-y",
                "restore-db",
                "migrations-up",
                "migrations-finish",
                "start-y",
                "smoke-tests",
                "traffic-10",
            ]
            .map(hybrid::cp),
            320,
        ),
    );
    state.apply(&hybrid::topology(Some("3.10.0.1"), NodeHealth::Ready));
    state.apply(&hybrid::traffic(50));
    state.apply(&hybrid::changed(
        hybrid::cp("traffic-50"),
        StepState::Running,
    ));
    state.apply(&Event::RunChanged(RunState::Running));
    let mut gates = GateEvaluator::new(hybrid::plan().gates);
    let mut verdict = None;
    for s in (900..=1080).step_by(5) {
        let snapshot = slow_y(s);
        state.apply(&Event::Metrics(snapshot.clone()));
        verdict = Some(gates.evaluate(&snapshot));
    }
    let verdict = verdict.unwrap();
    assert_eq!(verdict.verdict, Verdict::Fail, "{:?}", verdict.checks);
    state.apply(&Event::Gate(verdict));
    state.set_now(hybrid::at(1082));
    state.apply(&Event::RunChanged(RunState::Paused));
    state
}

/// The (x, y) of the first cell of `needle` on the screen.
fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let text = buffer_text(buffer);
    text.lines().enumerate().find_map(|(y, line)| {
        let byte = line.find(needle)?;
        Some((line[..byte].chars().count() as u16, y as u16))
    })
}

#[test]
fn after_a_breach_the_failing_check_comes_first_at_80x24() {
    let state = breached_on_p99(Theme::COLOUR);
    let buffer = draw(&state, 80, 24);
    let text = buffer_text(&buffer);
    let Some((x, y)) = find(&buffer, "✖ Y p99 398 ms > 1.5× X 130 ms") else {
        panic!("no failing check on the screen:\n{text}");
    };
    // In the metrics pane, right under the gate's summary line.
    let summary = find(&buffer, "✖ BREACHED · clears in 58 s").expect("the gate's summary");
    assert!(x > 40 && y == summary.1 + 1, "({x}, {y}):\n{text}");
    // The breaching figure is red.
    let figure = buffer[(x + "✖ Y p99 ".chars().count() as u16, y)].style();
    assert_eq!(figure.fg, Some(Color::Red), "{text}");
    // The passing checks come after it.
    let passing = find(&buffer, "✔ Y ").expect("a passing check below");
    assert!(passing.1 > y, "{text}");
}

#[test]
fn without_colour_the_breach_keeps_its_symbol_and_its_figure_stands_out() {
    let state = breached_on_p99(Theme::NO_COLOUR);
    let buffer = draw(&state, 80, 24);
    let (x, y) = find(&buffer, "✖ Y p99 398 ms").expect("the failing check");
    let figure = buffer[(x + "✖ Y p99 ".chars().count() as u16, y)].style();
    assert!(matches!(figure.fg, None | Some(Color::Reset)), "{figure:?}");
    assert!(figure.add_modifier.contains(Modifier::BOLD));
}

#[test]
fn the_failing_check_comes_first_in_the_verdict_lines_too() {
    let mut gates = GateEvaluator::new(hybrid::plan().gates);
    let mut verdict = None;
    for s in 0..5 {
        verdict = Some(gates.evaluate(&slow_y(s * 5)));
    }
    let verdict = verdict.unwrap();
    // The log, the journal, the pause text and --plain read these in this order.
    assert!(
        verdict.checks[0].starts_with("Y p99 398.0 ms > 1.50 × X p99 130.0 ms"),
        "{:?}",
        verdict.checks
    );
}

/// The 50 % stage's bake failed on the gate; Y's data plane dp-y1 is listed by X's
/// control plane.
fn failed_with_a_y_dp_on_x(theme: Theme) -> ConsoleState {
    let mut state = breached_on_p99(theme);
    let plan = hybrid::plan();
    let mut topology = hybrid::topology_snapshot(&plan, Some("3.10.0.1"), NodeHealth::Ready);
    let x_cp = topology
        .nodes
        .iter()
        .find(|n| n.cluster == ClusterSide::X && n.control_plane.is_none())
        .map(|n| n.name.clone())
        .unwrap();
    let dp = topology
        .nodes
        .iter_mut()
        .find(|n| n.cluster == ClusterSide::Y && n.control_plane.is_some())
        .unwrap();
    dp.control_plane = Some(x_cp.clone());
    dp.sync_status = Some(SyncStatus::Normal);
    let dp_name = dp.name.clone();
    state.apply(&Event::Topology(topology));
    state.apply(&Event::StepChanged {
        step: hybrid::cp("traffic-50"),
        state: StepState::Failed,
        detail: Some(
            "the load balancer reports X 50% | Y 50%; gate failed (3 breaches in a row): Y \
             p99 398.0 ms > 1.50 × X p99 130.0 ms = 195.0 ms: BREACH"
                .into(),
        ),
    });
    state.apply(&Event::RunChanged(RunState::Paused));
    assert!(dp_name.starts_with("dp-y"), "{dp_name} {x_cp}");
    state
}

#[test]
fn a_failed_step_names_its_likely_cause_above_its_details() {
    let state = failed_with_a_y_dp_on_x(Theme::COLOUR);
    for (w, h) in [(80, 24), (160, 48)] {
        let buffer = draw(&state, w, h);
        let text = buffer_text(&buffer);
        let (_, cause) = find(&buffer, "likely cause:").unwrap_or_else(|| panic!("{text}"));
        let (_, detail) = find(&buffer, "✖ the load balancer").unwrap_or_else(|| panic!("{text}"));
        // Right above the details, wrapped to two rows at most.
        assert!(detail > cause && detail <= cause + 2, "{text}");
        let line = text.lines().nth(cause as usize).unwrap();
        assert!(line.contains("likely cause: Y DP dp-y"), "{line}");
    }
}

/// Y's p99 spikes to 900 ms four minutes ago, otherwise ~150 ms.
fn spike_long_ago(theme: Theme) -> ConsoleState {
    let mut state = scenarios::awaiting_confirmation(theme);
    state.apply(&hybrid::traffic(10));
    let snapshot = |s: i64, p99: f64| {
        let mut y = hybrid::figures(120.0, Some(0.001), Some(p99));
        y.requests_in_window = Some(7_200);
        Event::Metrics(MetricsSnapshot {
            at: hybrid::at(s),
            x: hybrid::figures(1080.0, Some(0.0008), Some(180.0)),
            y,
        })
    };
    let mut events = Vec::new();
    for s in (320..=700).step_by(5) {
        let p99 = if (440..=460).contains(&s) {
            900.0
        } else {
            150.0 + (s % 3) as f64 * 10.0
        };
        events.push(snapshot(s, p99));
    }
    apply_all(&mut state, &events);
    state.set_now(hybrid::at(700));
    state
}

/// The metrics pane zoomed (Tab to it, then z), as an operator reads the figures.
fn zoomed_on_metrics(mut state: ConsoleState) -> ConsoleState {
    while state.focus() != Pane::Metrics {
        press(&mut state, key(KeyCode::Tab));
    }
    press(&mut state, char_key('z'));
    assert!(state.zoomed());
    state
}

#[test]
fn with_no_bake_the_sparklines_cover_the_last_two_minutes_with_min_max_and_a_scale() {
    let state = spike_long_ago(Theme::COLOUR);
    let text = buffer_text(&draw(&zoomed_on_metrics(state), 160, 48));
    let y_p99 = text
        .lines()
        .filter(|l| l.contains("min") && l.contains("0–"))
        .nth(1)
        .unwrap_or_else(|| panic!("no min/max on Y's p99 row:\n{text}"));
    // The spike is four minutes old: neither the max nor the scale shows it.
    assert!(!y_p99.contains("900"), "{y_p99}");
    assert!(y_p99.contains("max 170ms"), "{y_p99}");
    assert!(y_p99.contains("min 150ms"), "{y_p99}");
    assert!(y_p99.contains("0–170ms"), "{y_p99}");
    assert!(
        text.contains("last 2m"),
        "the pane says what the sparklines cover:\n{text}"
    );
}

#[test]
fn during_a_bake_the_sparklines_cover_the_bake() {
    let mut state = spike_long_ago(Theme::COLOUR);
    // traffic-10 bakes 5 m: the spike four minutes ago is inside it.
    state.apply(&hybrid::changed(
        hybrid::cp("traffic-10"),
        StepState::Running,
    ));
    state.apply(&Event::Bake {
        step: hybrid::cp("traffic-10"),
        remaining_secs: 60,
    });
    let text = buffer_text(&draw(&state, 160, 48));
    assert!(text.contains("bake 5m"), "{text}");
    let y_p99 = text
        .lines()
        .filter(|l| l.contains("min") && l.contains("0–"))
        .nth(1)
        .unwrap_or_else(|| panic!("no min/max on Y's p99 row:\n{text}"));
    assert!(y_p99.contains("max 900ms"), "{y_p99}");
    assert!(y_p99.contains("0–900ms"), "{y_p99}");
}

//! `cargo bench --bench render`
//!
//! - Time to draw a full frame at 160x48 with 10 000 log lines sent (the ring keeps the
//!   newest 5 000) and 200 nodes, with the logs pane unfiltered and filtered.
//! - A fleet of 2 000 nodes (`scenarios::fleet`): one frame at 160x48 with the topology
//!   grouped, zoomed, and zoomed with a filter; and what a new topology snapshot of the
//!   fleet costs the console (the pane's view is worked out then, not per frame). Goal:
//!   a frame < 5 ms.
//! - Bytes written to the terminal per second at 80x24 in a steady state where only the
//!   metrics (and the clock) tick once a second, measured through crossterm's real escape
//!   sequences into a counting writer, through the console's `QuietBackend`. Goal: no more
//!   than htop's ~210 B/s.

use std::hint::black_box;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::Criterion;
use kongup::engine::event::{Event, LogStream, StepState};
use kongup::kong::topology::NodeHealth;
use kongup::ui::keys::UiAction;
use kongup::ui::quiet::QuietBackend;
use kongup::ui::{ConsoleState, Theme};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, apply_all, char_key, press};

/// Discards what it is given and counts it.
#[derive(Clone, Default)]
struct CountingWriter {
    bytes: Arc<AtomicUsize>,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn terminal(
    width: u16,
    height: u16,
) -> (
    Terminal<QuietBackend<CrosstermBackend<CountingWriter>>>,
    Arc<AtomicUsize>,
) {
    let writer = CountingWriter::default();
    let bytes = writer.bytes.clone();
    // As the console draws: nothing written for a frame in which no cell changed.
    let terminal = Terminal::with_options(
        QuietBackend::new(CrosstermBackend::new(writer)),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, width, height)),
        },
    )
    .expect("terminal");
    (terminal, bytes)
}

/// A big hybrid run: 200 nodes, 10 000 log lines sent, ten minutes of metrics, a gate.
fn big_state() -> ConsoleState {
    let plan = plan_with_nodes(98);
    let expanded = expanded();
    let previewer = previewer(&plan, &expanded);
    let mut state = ConsoleState::new(&plan, &expanded, t0(), Theme::COLOUR, previewer);
    apply_all(&mut state, &start_events(&expanded));
    apply_all(
        &mut state,
        &complete(
            &[cp("preflight"), cp("review-changes"), cp("freeze-writes")],
            10,
        ),
    );
    state.apply(&Event::Topology(topology_snapshot(
        &plan,
        Some("3.10.0.1"),
        NodeHealth::Ready,
    )));
    state.apply(&changed(cp("backup-x"), StepState::Running));
    for n in 0..10_000 {
        state.apply(&log(
            100 + n / 20,
            "backup-x",
            if n % 17 == 0 {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            &format!("pg_dump: dumping contents of table \"public.routes\" part {n} of 10000"),
        ));
    }
    apply_all(&mut state, &metrics_history(0, 600, 10, 0.002));
    state.apply(&gate(
        600,
        kongup::metrics::Verdict::Pass,
        0,
        &["Y 5xx 0.20% <= 1.00%: ok", "Y p99 150ms <= 500ms: ok"],
    ));
    state.set_now(at(601));
    state
}

fn press_tab(state: &mut ConsoleState) {
    press(state, scenarios::key(crossterm::event::KeyCode::Tab));
}

fn bench_frames(c: &mut Criterion) {
    let state = big_state();
    let mut filtered = state.clone();
    filtered.apply_ui(UiAction::SetLogFilter(Some("part 99".into())));
    let mut zoomed = state.clone();
    press(&mut zoomed, char_key('z'));

    // What every frame costs: render the whole screen and compare it with the last one.
    let mut test_terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for (name, state) in [
        ("render 160x48, 10k log lines sent, 200 nodes", &state),
        ("render 160x48, logs filtered", &filtered),
        ("render 160x48, checklist zoomed", &zoomed),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                test_terminal
                    .draw(|f| kongup::ui::render(f, black_box(state)))
                    .unwrap();
            })
        });
    }

    // A fleet of 2 000 nodes: the topology grouped, zoomed, and zoomed with a filter.
    let fleet = scenarios::fleet(Theme::COLOUR);
    let mut fleet_zoomed = fleet.clone();
    press_tab(&mut fleet_zoomed);
    press_tab(&mut fleet_zoomed);
    press(&mut fleet_zoomed, char_key('z'));
    let fleet_filtered = scenarios::fleet_filtered(Theme::COLOUR);
    for (name, state) in [
        ("render 160x48, 2000 nodes, topology grouped", &fleet),
        ("render 160x48, 2000 nodes, topology zoomed", &fleet_zoomed),
        (
            "render 160x48, 2000 nodes, topology filtered",
            &fleet_filtered,
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                test_terminal
                    .draw(|f| kongup::ui::render(f, black_box(state)))
                    .unwrap();
            })
        });
    }
    let snapshot = fleet.topology().expect("the fleet's topology").clone();
    let mut changing = fleet.clone();
    let mut flip = false;
    c.bench_function("apply a topology snapshot of 2000 nodes", |b| {
        b.iter(|| {
            // A node's health changes each time, so the view is worked out again.
            let mut next = snapshot.clone();
            flip = !flip;
            if flip {
                next.nodes[5].health = NodeHealth::NotReady("draining".into());
            }
            changing.apply(black_box(&Event::Topology(next)));
        })
    });

    // The worst case: the whole screen written through crossterm (after a blank frame).
    let (mut terminal, _) = terminal(160, 48);
    c.bench_function("full repaint 160x48 through crossterm", |b| {
        b.iter(|| {
            terminal.draw(|_| {}).unwrap();
            terminal
                .draw(|f| kongup::ui::render(f, black_box(&state)))
                .unwrap();
        })
    });
}

/// Bytes per second over `seconds` of steady state, each second: the clock moves, one
/// metrics scrape arrives (and `extra` events), one frame is drawn.
fn steady_bytes_per_second(
    mut state: ConsoleState,
    from: i64,
    seconds: i64,
    extra: impl Fn(i64) -> Vec<Event>,
) -> f64 {
    let (mut terminal, bytes) = terminal(80, 24);
    terminal.draw(|f| kongup::ui::render(f, &state)).unwrap();
    let first_frame = bytes.swap(0, Ordering::Relaxed);
    println!("  first full frame at 80x24: {first_frame} bytes");
    for s in from..from + seconds {
        state.set_now(at(s));
        state.apply(&metrics(s, 10, 0.002));
        for event in extra(s) {
            state.apply(&event);
        }
        terminal.draw(|f| kongup::ui::render(f, &state)).unwrap();
    }
    bytes.load(Ordering::Relaxed) as f64 / seconds as f64
}

fn report_bytes_per_second() {
    println!("steady state at 80x24, one metrics scrape and one frame a second:");
    // Waiting for a confirm, 10% of traffic on Y, metrics ticking.
    let mut waiting = scenarios::paused(Theme::COLOUR);
    waiting.apply(&changed(cp("traffic-10"), StepState::Succeeded));
    waiting.apply(&changed(cp("traffic-50"), StepState::Ready));
    waiting.apply(&Event::RunChanged(kongup::engine::event::RunState::Running));
    let start = 720;
    let waiting_rate = steady_bytes_per_second(waiting.clone(), start, 600, |_| Vec::new());
    println!("  awaiting a confirm, metrics ticking: {waiting_rate:.0} B/s (goal <= 210 B/s)");

    // A bake counting down as well: the step's tag changes every second too.
    let mut baking = scenarios::paused(Theme::COLOUR);
    baking.apply(&Event::RunChanged(kongup::engine::event::RunState::Running));
    let baking_rate = steady_bytes_per_second(baking, start, 180, |s| {
        vec![Event::Bake {
            step: cp("traffic-10"),
            remaining_secs: (900 - s) as u64,
        }]
    });
    println!("  during a bake (countdown ticking too): {baking_rate:.0} B/s");
}

fn main() {
    report_bytes_per_second();
    let mut criterion = Criterion::default().configure_from_args();
    bench_frames(&mut criterion);
    criterion.final_summary();
}

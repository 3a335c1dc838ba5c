//! The console as the operator sees it, at 80x24 and 160x48, at each moment of a run.
//! Review changes with `cargo insta review`.

mod support;

use kongup::ui::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use support::scenarios::{self, buffer_text, draw, screen};

fn snapshot_all(width: u16, height: u16) {
    for (name, build) in scenarios::all() {
        let state = build(Theme::COLOUR);
        insta::assert_snapshot!(
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
    insta::assert_snapshot!("too_small_60x20", screen(&state, 60, 20));
    insta::assert_snapshot!("too_small_79x24", screen(&state, 79, 24));
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

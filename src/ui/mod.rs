//! The operator console: a read-only view of the engine's run, and keys that become
//! `Command`s. One file per pane and per dialog.
//!
//! - `state`: the view model, folded from the plan and the engine's `Event`s;
//! - `bindings`: the main screen's keys, one table that the keys, the footer and `?` read;
//! - `keys`: keys to commands and view changes, pure;
//! - `run`: the terminal loop (`run_console`), which never waits on the engine to draw;
//! - `input`: the terminal's bytes to keys, ending cleanly when the terminal goes away.

pub mod bindings;
pub mod describe;
pub mod input;
pub mod keys;
pub mod layout;
pub mod modals;
pub mod panes;
pub mod quiet;
pub mod run;
pub mod state;
pub mod text;
pub mod theme;
pub mod too_small;

use ratatui::Frame;

pub use keys::{KeyOutcome, UiAction, handle_key};
pub use run::{ConsoleExit, ConsoleOptions, run_console};
pub use state::{ConsoleState, ExtraKey, Previewer};
pub use theme::Theme;

/// Draws the whole screen from the view. No I/O, no waiting: a pure function of `state`.
pub fn render(frame: &mut Frame, state: &ConsoleState) {
    let area = frame.area();
    let Some(screen) = layout::screen(area) else {
        too_small::render(frame, area, state);
        return;
    };
    panes::header::render(frame, screen.header, state);
    let zoomed = state.zoomed().then_some(state.focus());
    for (pane, rect) in screen.visible(zoomed) {
        match pane {
            state::Pane::Checklist => panes::checklist::render(frame, rect, state),
            state::Pane::Logs => panes::logs::render(frame, rect, state),
            state::Pane::Topology => panes::topology::render(frame, rect, state),
            state::Pane::Metrics => panes::metrics::render(frame, rect, state),
        }
    }
    panes::footer::render(frame, screen.footer, state);
    if let Some(modal) = state.modal() {
        modals::render(frame, area, state, modal);
    }
}

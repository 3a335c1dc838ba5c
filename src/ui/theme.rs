//! Colours and state symbols. Only the 16 named ANSI colours, so the terminal's own theme
//! applies (also over SSH); with `NO_COLOR` every colour goes and the symbols and words,
//! which are the same in both modes, carry the meaning alone.

use ratatui::style::{Color, Modifier, Style};

use crate::engine::event::{RunState, StepState};
use crate::kong::topology::NodeHealth;
use crate::kong::types::SyncStatus;
use crate::metrics::Verdict;

/// What a piece of text means, which decides its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Good,
    Bad,
    Warn,
    Active,
    Muted,
    Accent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    colour: bool,
}

impl Theme {
    pub const COLOUR: Theme = Theme { colour: true };
    pub const NO_COLOUR: Theme = Theme { colour: false };

    /// Colours unless `NO_COLOR` is set to a non-empty value (https://no-color.org).
    pub fn from_env() -> Theme {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_colour {
            Theme::NO_COLOUR
        } else {
            Theme::COLOUR
        }
    }

    fn fg(self, colour: Color) -> Style {
        if self.colour {
            Style::new().fg(colour)
        } else {
            Style::new()
        }
    }

    pub fn tone(self, tone: Tone) -> Style {
        match tone {
            Tone::Plain => Style::new(),
            Tone::Good => self.fg(Color::Green),
            Tone::Bad => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Tone::Warn => self.fg(Color::Yellow),
            Tone::Active => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Tone::Muted => Style::new().add_modifier(Modifier::DIM),
            Tone::Accent => self.fg(Color::Magenta),
        }
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The selected row: reverse video reads the same with and without colour.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn border(self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    }

    /// Traffic on X and on Y in the header's bar.
    pub fn traffic_x(self) -> Style {
        self.fg(Color::Blue)
    }

    pub fn traffic_y(self) -> Style {
        self.fg(Color::Green)
    }
}

/// Symbol and word for a step state: they differ in text, so they survive `NO_COLOR`.
pub fn step_symbol(state: StepState) -> (&'static str, &'static str, Tone) {
    match state {
        StepState::Pending => ("○", "pending", Tone::Muted),
        StepState::Ready => ("●", "ready", Tone::Active),
        StepState::Running => ("▶", "running", Tone::Active),
        StepState::Succeeded => ("✔", "done", Tone::Good),
        StepState::Failed => ("✖", "failed", Tone::Bad),
        StepState::Interrupted => ("⚠", "interrupted", Tone::Warn),
        StepState::Skipped => ("»", "skipped", Tone::Muted),
        StepState::RolledBack => ("↺", "rolled back", Tone::Warn),
    }
}

pub fn run_label(state: RunState) -> (&'static str, &'static str, Tone) {
    match state {
        RunState::Idle => ("○", "IDLE", Tone::Plain),
        RunState::Running => ("▶", "RUNNING", Tone::Active),
        RunState::Waiting => ("●", "WAITING FOR YOU", Tone::Active),
        RunState::Paused => ("⏸", "PAUSED", Tone::Warn),
        RunState::RollingBack => ("↺", "ROLLING BACK", Tone::Bad),
        RunState::Done => ("✔", "DONE", Tone::Good),
        RunState::RolledBack => ("↺", "ROLLED BACK", Tone::Warn),
        RunState::Failed => ("✖", "FAILED", Tone::Bad),
        RunState::Aborted => ("■", "ABORTED", Tone::Warn),
    }
}

pub fn health_label(health: &NodeHealth) -> (&'static str, String, Tone) {
    match health {
        NodeHealth::Ready => ("✔", "ready".into(), Tone::Good),
        NodeHealth::NotReady(reason) => ("⚠", format!("not ready: {reason}"), Tone::Warn),
        NodeHealth::Unreachable(why) => ("✖", format!("unreachable: {why}"), Tone::Bad),
        NodeHealth::Absent => ("○", DOWN_AS_PLANNED.into(), Tone::Muted),
        NodeHealth::Unknown => ("?", "unknown".into(), Tone::Muted),
    }
}

pub fn sync_tone(status: SyncStatus) -> Tone {
    match status {
        SyncStatus::Normal => Tone::Good,
        SyncStatus::Unknown => Tone::Muted,
        _ => Tone::Bad,
    }
}

/// A node (or a cluster's scrape) that does not answer because the plan has it down now.
pub const DOWN_AS_PLANNED: &str = "down, as planned";

/// The gate's label while Y takes no traffic.
pub const IDLE: &str = "idle";

/// Why the gate is idle, where there is room to say it.
pub const IDLE_BECAUSE: &str = "Y takes no traffic";

/// Why the gate is idle once the run is over (done or rolled back).
pub const IDLE_AFTER_THE_RUN: &str = "the run is over";

/// How a gate verdict reads. While Y takes no traffic the engine does not act on the gates,
/// so anything short of a failure reads idle rather than as a warning.
pub fn verdict_label(verdict: Verdict, watched: bool) -> (&'static str, &'static str, Tone) {
    match verdict {
        Verdict::Pass | Verdict::Inconclusive if !watched => ("·", IDLE, Tone::Muted),
        Verdict::Pass => ("✔", "PASS", Tone::Good),
        Verdict::Inconclusive => ("?", "INCONCLUSIVE", Tone::Warn),
        Verdict::Fail => ("✖", "BREACHED", Tone::Bad),
    }
}

//! The console's keys, in one table. The main screen's dispatch (`keys::handle_key`), the
//! footer's hints (`panes::footer`) and the `?` help (`modals::help`) are all read from
//! [`MAIN`], so a key, what it does and what the screen says about it cannot drift apart
//! (gitui derives its help from its key bindings the same way).
//!
//! A dialog's own keys (y/n, typing a name) stay with the dialog in `keys`; the scrolling
//! a dialog does is the scrolling bound here ([`scroll_delta`]).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::engine::event::{RunState, StepState};

use super::keys::ScrollDelta;
use super::state::{ConsoleState, Pane};

use Key::{Char, Code, Ctrl};

/// A key as the operator presses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A key by its code, whatever the modifiers: Enter, Tab, Esc, the arrows, the pages.
    Code(KeyCode),
    /// A character typed without Ctrl or Alt (Shift is how `R`, `G` and `?` are typed).
    Char(char),
    /// Ctrl and a letter.
    Ctrl(char),
}

impl Key {
    pub fn matches(self, key: &KeyEvent) -> bool {
        match self {
            Key::Code(code) => key.code == code,
            Key::Char(c) => {
                key.code == KeyCode::Char(c)
                    && !key
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
            }
            Key::Ctrl(c) => {
                key.code == KeyCode::Char(c) && key.modifiers.contains(KeyModifiers::CONTROL)
            }
        }
    }

    /// The key as the help spells it: `Enter`, `S-Tab`, `↑`, `PgUp`, `q`, `Ctrl-C`.
    pub fn name(self) -> String {
        match self {
            Key::Code(code) => match code {
                KeyCode::Enter => "Enter".into(),
                KeyCode::Tab => "Tab".into(),
                KeyCode::BackTab => "S-Tab".into(),
                KeyCode::Esc => "Esc".into(),
                KeyCode::Up => "↑".into(),
                KeyCode::Down => "↓".into(),
                KeyCode::PageUp => "PgUp".into(),
                KeyCode::PageDown => "PgDn".into(),
                KeyCode::Home => "Home".into(),
                KeyCode::End => "End".into(),
                KeyCode::Left => "←".into(),
                KeyCode::Right => "→".into(),
                other => other.to_string(),
            },
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
        }
    }

    /// The key as the footer shows it: as the help spells it, but Enter is `⏎`.
    pub fn symbol(self) -> String {
        match self {
            Key::Code(KeyCode::Enter) => "⏎".into(),
            other => other.name(),
        }
    }

    /// Whether a text field takes this key (a letter, or moving in the text), so a dialog
    /// with one scrolls only by the other keys.
    pub fn edits_text(self) -> bool {
        matches!(
            self,
            Key::Char(_) | Key::Code(KeyCode::Home | KeyCode::End | KeyCode::Left | KeyCode::Right)
        )
    }
}

/// What a key of the main screen does; `keys` turns it into commands and view changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Skip,
    Retry,
    MarkDone,
    TakeOut,
    PauseResume,
    Abort,
    SetTraffic,
    Rollback,
    FocusNext,
    FocusPrev,
    Scroll(ScrollDelta),
    ToggleZoom,
    /// The focused pane's filter: the logs', or the topology zoom's (zooming it first).
    Filter,
    ToggleFollow,
    NextFailing,
    PreviousFailing,
    Help,
    /// Esc on the main screen: leave the zoom, else fold a wave's nodes (a dialog closes
    /// on Esc by its own keys).
    LeaveZoom,
    /// The checklist: list the nodes of the selected step's wave.
    ExpandWave,
    FoldWave,
    Redraw,
    Quit,
}

impl Action {
    /// Whether the action changes the run (a command to the engine, or a dialog that
    /// leads to one): a watcher's console (`kongup watch`) refuses it.
    pub fn changes_run(self) -> bool {
        match self {
            Action::Confirm
            | Action::Skip
            | Action::Retry
            | Action::MarkDone
            | Action::TakeOut
            | Action::PauseResume
            | Action::Abort
            | Action::SetTraffic
            | Action::Rollback => true,
            Action::FocusNext
            | Action::FocusPrev
            | Action::Scroll(_)
            | Action::ToggleZoom
            | Action::Filter
            | Action::ToggleFollow
            | Action::NextFailing
            | Action::PreviousFailing
            | Action::Help
            | Action::LeaveZoom
            | Action::ExpandWave
            | Action::FoldWave
            | Action::Redraw
            | Action::Quit => false,
        }
    }
}

/// What `?` says after the keys: watching a run, and handing one over.
pub static SESSION_HELP: &[(&str, &str)] = &[
    ("y, n", "another kongup asks to take the run over"),
    ("", "(kongup run --take-over): hand it over (kongup"),
    ("", "leaves as on q) / keep driving"),
    ("watching", "kongup watch: the keys that change the run"),
    ("", "only say who drives it; q leaves"),
];

/// How `?` lists a binding.
#[derive(Debug, Clone, Copy)]
pub enum Help {
    /// An entry of its own: the keys as shown, then the text, a line each (the first
    /// beside the keys).
    Entry {
        keys: &'static str,
        lines: &'static [&'static str],
    },
    /// Told by the entry of the binding before it (`S-Tab` in `Tab, S-Tab`).
    WithPrevious,
}

/// When a footer hint shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// The selected step can be confirmed now (ready, and the run not paused).
    SelectedConfirmable,
    /// As `SelectedConfirmable` with the step ready (not a rollback step offered), or the
    /// step interrupted: skipping it is one of its decisions.
    SelectedSkippable,
    SelectedFailedOrInterrupted,
    SelectedInterrupted,
    /// The selected step is a wave's start or stop step that failed or was interrupted: a
    /// node that failed there may be taken out.
    SelectedWaveNodeFailed,
    /// The selected step's command still runs though kongup no longer waits on it.
    SelectedStillRunning,
    StepRunning,
    /// The run is under way: a step runs, or the next waits for the operator.
    RunRunning,
    RunPaused,
    /// The run is not over (done or rolled back).
    RunNotOver,
    Zoomed,
    LogsFocused,
    TopologyFocused,
    /// The topology pane is focused and zoomed: its list of every node shows.
    TopologyZoomed,
    LogsFocusedAndFollowing,
    /// The selected step is a wave's, its nodes not listed.
    SelectedInFoldedWave,
    /// A wave's nodes are listed.
    WaveExpanded,
}

impl When {
    pub fn holds(self, state: &ConsoleState) -> bool {
        let selected = state
            .selected()
            .map(|(step_ref, _, status)| (step_ref, status.state));
        let confirmable = selected.is_some_and(|(step_ref, _)| {
            state.can_confirm(step_ref) && state.run_state() != RunState::Paused
        });
        let selected_is = |states: &[StepState]| {
            selected.is_some_and(|(_, step_state)| states.contains(&step_state))
        };
        match self {
            When::Always => true,
            When::SelectedConfirmable => confirmable,
            When::SelectedSkippable => {
                (confirmable && selected_is(&[StepState::Ready]))
                    || selected_is(&[StepState::Interrupted])
            }
            When::SelectedFailedOrInterrupted => {
                selected_is(&[StepState::Failed, StepState::Interrupted])
            }
            When::SelectedInterrupted => selected_is(&[StepState::Interrupted]),
            When::SelectedWaveNodeFailed => state
                .selected()
                .is_some_and(|(step_ref, _, _)| state.can_take_out_of(step_ref)),
            When::SelectedStillRunning => {
                state.running_step().is_none()
                    && state
                        .selected()
                        .is_some_and(|(_, _, status)| status.still_running.is_some())
            }
            When::StepRunning => state.running_step().is_some(),
            When::RunRunning => {
                matches!(state.run_state(), RunState::Running | RunState::Waiting)
            }
            When::RunPaused => state.run_state() == RunState::Paused,
            When::RunNotOver => !state.run_state().is_over(),
            When::Zoomed => state.zoomed(),
            When::LogsFocused => state.focus() == Pane::Logs,
            When::TopologyFocused => state.focus() == Pane::Topology,
            When::TopologyZoomed => state.focus() == Pane::Topology && state.zoomed(),
            When::LogsFocusedAndFollowing => state.focus() == Pane::Logs && state.log_follow(),
            When::SelectedInFoldedWave => {
                state.expanded_wave().is_none()
                    && state.wave_of_step(state.selected_index()).is_some()
            }
            When::WaveExpanded => state.expanded_wave().is_some(),
        }
    }
}

/// What the footer says of a binding.
#[derive(Debug, Clone, Copy)]
pub struct Footer {
    /// Its place in the footer, most useful first (the help keeps the table's order).
    pub rank: u8,
    /// The words beside the key: the first whose condition holds; none, no hint.
    pub says: &'static [(When, &'static str)],
}

/// One key binding of the main screen.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys that do it; the footer shows the first.
    pub keys: &'static [Key],
    pub action: Action,
    pub help: Help,
    pub footer: Option<Footer>,
    /// Bound in every dialog too, before the dialog's own keys.
    pub everywhere: bool,
    /// Bound only while this holds; otherwise the key is the console's caller's, if it
    /// binds it (the demo's `N`).
    pub only: Option<When>,
}

const fn entry(keys: &'static str, lines: &'static [&'static str]) -> Help {
    Help::Entry { keys, lines }
}

const fn footer(rank: u8, says: &'static [(When, &'static str)]) -> Option<Footer> {
    Some(Footer { rank, says })
}

const fn bind(keys: &'static [Key], action: Action, help: Help, footer: Option<Footer>) -> Binding {
    Binding {
        keys,
        action,
        help,
        footer,
        everywhere: false,
        only: None,
    }
}

/// The main screen's keys, in the order `?` lists them.
pub static MAIN: &[Binding] = &[
    bind(
        &[Code(KeyCode::Enter), Char('c')],
        Action::Confirm,
        entry(
            "Enter, c",
            &[
                "confirm the selected ready step; shows what runs",
                "and where; irreversible: type the plan name;",
                "a wave's step: the rest of its wave runs on;",
                "any other step: all of it, read-only",
            ],
        ),
        footer(0, &[(When::SelectedConfirmable, "confirm")]),
    ),
    bind(
        &[Char('s')],
        Action::Skip,
        entry("s", &["skip a ready or interrupted step (asks a reason)"]),
        footer(
            1,
            &[
                (When::SelectedStillRunning, ""),
                (When::SelectedSkippable, "skip"),
            ],
        ),
    ),
    bind(
        &[Char('r')],
        Action::Retry,
        entry(
            "r",
            &[
                "retry the selected failed or interrupted step: a step",
                "that changes something is confirmed first, as with ⏎",
                "(while its command still runs: wait or kill)",
            ],
        ),
        footer(
            2,
            &[
                (When::SelectedStillRunning, "wait or kill"),
                (When::SelectedFailedOrInterrupted, "retry"),
            ],
        ),
    ),
    bind(
        &[Char('m')],
        Action::MarkDone,
        entry("m", &["mark the interrupted step done (asks a note)"]),
        footer(
            3,
            &[
                (When::SelectedStillRunning, ""),
                (When::SelectedInterrupted, "mark done"),
            ],
        ),
    ),
    bind(
        &[Char('o')],
        Action::TakeOut,
        entry("o", &["take a failed node out of its wave (name, why)"]),
        footer(
            4,
            &[
                (When::SelectedStillRunning, ""),
                (When::SelectedWaveNodeFailed, "take out"),
            ],
        ),
    ),
    bind(
        &[Char('p')],
        Action::PauseResume,
        entry(
            "p",
            &[
                "pause / resume the run",
                "(after a breach: when the gate window clears)",
            ],
        ),
        footer(
            6,
            &[(When::RunRunning, "pause"), (When::RunPaused, "resume")],
        ),
    ),
    bind(
        &[Char('x')],
        Action::Abort,
        entry(
            "x",
            &[
                "abort the running step (kills its processes;",
                "asks first); then r retries it or R rolls back;",
                "kill an interrupted step's command that still",
                "runs after kongup stopped (asks first)",
            ],
        ),
        footer(
            5,
            &[
                (When::StepRunning, "abort"),
                (When::SelectedStillRunning, "kill"),
            ],
        ),
    ),
    bind(
        &[Char('t')],
        Action::SetTraffic,
        entry(
            "t",
            &[
                "set the traffic split by hand (asks % to Y; more",
                "to a Y found unfit: `50 override`)",
            ],
        ),
        None,
    ),
    bind(
        &[Char('R')],
        Action::Rollback,
        entry(
            "R",
            &[
                "ROLLBACK: all traffic to X at once, then the",
                "rest of the rollback plan, each step confirmed",
                "(not once the run is over; again: the plan)",
            ],
        ),
        footer(7, &[(When::RunNotOver, "rollback")]),
    ),
    bind(
        &[Code(KeyCode::Tab)],
        Action::FocusNext,
        entry("Tab, S-Tab", &["focus the next / previous pane"]),
        footer(11, &[(When::Always, "focus")]),
    ),
    bind(
        &[Code(KeyCode::BackTab)],
        Action::FocusPrev,
        Help::WithPrevious,
        None,
    ),
    bind(
        &[Code(KeyCode::Up), Char('k')],
        Action::Scroll(ScrollDelta::Up(1)),
        entry(
            "↑↓ j k",
            &[
                "move the selection, scroll the focused pane",
                "or the open dialog's text (arrows and pages",
                "only where a name or a reason is typed)",
            ],
        ),
        None,
    ),
    bind(
        &[Code(KeyCode::Down), Char('j')],
        Action::Scroll(ScrollDelta::Down(1)),
        Help::WithPrevious,
        None,
    ),
    bind(
        &[Code(KeyCode::PageUp)],
        Action::Scroll(ScrollDelta::PageUp),
        entry(
            "PgUp PgDn",
            &[
                "a page up / down; g G, Home End: first / last",
                "(logs: g the first line, G the last, following)",
            ],
        ),
        None,
    ),
    bind(
        &[Code(KeyCode::PageDown)],
        Action::Scroll(ScrollDelta::PageDown),
        Help::WithPrevious,
        None,
    ),
    bind(
        &[Code(KeyCode::Home), Char('g')],
        Action::Scroll(ScrollDelta::Top),
        Help::WithPrevious,
        None,
    ),
    bind(
        &[Code(KeyCode::End), Char('G')],
        Action::Scroll(ScrollDelta::Bottom),
        Help::WithPrevious,
        None,
    ),
    bind(
        &[Code(KeyCode::Right)],
        Action::ExpandWave,
        entry(
            "→ ←",
            &[
                "on a wave's step: its nodes, the failed first,",
                "under the wave's row / fold them (Esc too)",
            ],
        ),
        footer(8, &[(When::SelectedInFoldedWave, "nodes")]),
    ),
    bind(
        &[Code(KeyCode::Left)],
        Action::FoldWave,
        Help::WithPrevious,
        footer(9, &[(When::WaveExpanded, "fold")]),
    ),
    bind(
        &[Char('z')],
        Action::ToggleZoom,
        entry("z", &["zoom the focused pane (again to go back)"]),
        footer(10, &[(When::Zoomed, "unzoom"), (When::Always, "zoom")]),
    ),
    bind(
        &[Char('/')],
        Action::Filter,
        entry(
            "/  f",
            &[
                "filter the logs / follow them (on, off); on the",
                "topology: its zoom, nodes by name, version, role",
                "or state (⏎ keeps the filter, Esc clears it)",
            ],
        ),
        footer(
            12,
            &[
                (When::LogsFocused, "filter"),
                (When::TopologyFocused, "filter nodes"),
            ],
        ),
    ),
    bind(
        &[Char('f')],
        Action::ToggleFollow,
        Help::WithPrevious,
        footer(
            13,
            &[
                (When::LogsFocusedAndFollowing, "unfollow"),
                (When::LogsFocused, "follow"),
            ],
        ),
    ),
    Binding {
        only: Some(When::TopologyZoomed),
        ..bind(
            &[Char('n')],
            Action::NextFailing,
            entry("n N", &["topology zoom: the next / previous failing node"]),
            footer(14, &[(When::TopologyZoomed, "next failing")]),
        )
    },
    Binding {
        only: Some(When::TopologyZoomed),
        ..bind(
            &[Char('N')],
            Action::PreviousFailing,
            Help::WithPrevious,
            None,
        )
    },
    bind(
        &[Char('?')],
        Action::Help,
        entry("?", &["this help"]),
        footer(15, &[(When::Always, "help")]),
    ),
    bind(
        &[Code(KeyCode::Esc)],
        Action::LeaveZoom,
        entry("Esc", &["close a dialog, leave the zoom, fold a wave"]),
        None,
    ),
    Binding {
        everywhere: true,
        ..bind(
            &[Ctrl('l')],
            Action::Redraw,
            entry("Ctrl-L", &["redraw the screen"]),
            None,
        )
    },
    bind(
        &[Char('q'), Ctrl('c')],
        Action::Quit,
        entry(
            "q, Ctrl-C",
            &[
                "quit; the run stays resumable and a running",
                "step finishes in the background",
            ],
        ),
        footer(16, &[(When::Always, "quit")]),
    ),
];

/// The main screen's binding of `key`, if any (whether it holds now or not).
pub fn binding(key: &KeyEvent) -> Option<&'static Binding> {
    MAIN.iter()
        .find(|binding| binding.keys.iter().any(|k| k.matches(key)))
}

/// The main screen's binding of `key` now: as [`binding`], less one bound only at other
/// times.
pub fn binding_now(state: &ConsoleState, key: &KeyEvent) -> Option<&'static Binding> {
    binding(key).filter(|binding| binding.only.is_none_or(|when| when.holds(state)))
}

/// The action of `key` where it is bound in every dialog too (Ctrl-L).
pub fn everywhere(key: &KeyEvent) -> Option<Action> {
    binding(key)
        .filter(|binding| binding.everywhere)
        .map(|binding| binding.action)
}

/// How `key` scrolls, as bound on the main screen; `typing`: a dialog whose text field
/// takes letters and Home/End, so only the arrows and the pages scroll.
pub fn scroll_delta(key: &KeyEvent, typing: bool) -> Option<ScrollDelta> {
    MAIN.iter().find_map(|binding| match binding.action {
        Action::Scroll(delta)
            if binding
                .keys
                .iter()
                .any(|k| k.matches(key) && !(typing && k.edits_text())) =>
        {
            Some(delta)
        }
        _ => None,
    })
}

/// Whether a character is one of the console's own keys (which a caller cannot rebind);
/// one bound only at times is the caller's the rest of the time.
pub fn is_builtin(c: char) -> bool {
    MAIN.iter()
        .filter(|binding| binding.only.is_none())
        .flat_map(|binding| binding.keys)
        .any(|key| *key == Key::Char(c))
}

/// The lines of `?`: the keys (on an entry's first line) and the text, then
/// [`SESSION_HELP`].
pub fn help_lines() -> Vec<(&'static str, &'static str)> {
    let keys = MAIN
        .iter()
        .filter_map(|binding| match binding.help {
            Help::Entry { keys, lines } => Some((keys, lines)),
            Help::WithPrevious => None,
        })
        .flat_map(|(keys, lines)| {
            lines
                .iter()
                .enumerate()
                .map(move |(i, line)| (if i == 0 { keys } else { "" }, *line))
        });
    keys.chain(SESSION_HELP.iter().copied()).collect()
}

/// The footer's hints for the main screen now, most useful first: the key and its words.
pub fn footer_hints(state: &ConsoleState) -> Vec<(String, &'static str)> {
    let watching = state.watching().is_some();
    let mut shown: Vec<(u8, String, &'static str)> = MAIN
        .iter()
        .filter(|binding| !(watching && binding.action.changes_run()))
        .filter(|binding| binding.only.is_none_or(|when| when.holds(state)))
        .filter_map(|binding| {
            let footer = binding.footer?;
            let words = footer
                .says
                .iter()
                .find(|(when, _)| when.holds(state))
                .map(|(_, words)| *words)
                // No words: the key does nothing worth a hint now.
                .filter(|words| !words.is_empty())?;
            Some((footer.rank, binding.keys[0].symbol(), words))
        })
        .collect();
    shown.sort_by_key(|(rank, _, _)| *rank);
    shown
        .into_iter()
        .map(|(_, key, words)| (key, words))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of a help entry, split as a reader would: `g G, Home End:` is g, G,
    /// Home, End.
    fn words(text: &str) -> Vec<&str> {
        text.split(|c: char| c.is_whitespace() || ",;:()".contains(c))
            .filter(|w| !w.is_empty())
            .collect()
    }

    /// Whether the help entry (keys and text) names `key`.
    fn names(keys: &str, lines: &[&str], key: Key) -> bool {
        let name = key.name();
        if matches!(key, Key::Code(KeyCode::Up | KeyCode::Down)) {
            return keys.contains(&name);
        }
        words(keys)
            .into_iter()
            .chain(lines.iter().flat_map(|line| words(line)))
            .any(|word| word == name)
    }

    #[test]
    fn every_key_is_named_by_the_help_entry_that_tells_it() {
        let mut entry: Option<(&str, &[&str])> = None;
        for binding in MAIN {
            if let Help::Entry { keys, lines } = binding.help {
                entry = Some((keys, lines));
            }
            let (keys, lines) = entry.expect("the first binding has a help entry");
            for key in binding.keys {
                assert!(
                    names(keys, lines, *key),
                    "{:?}: `?` says `{keys}` {lines:?}, which does not name {}",
                    binding.action,
                    key.name()
                );
            }
        }
    }

    #[test]
    fn no_key_is_bound_twice() {
        let keys: Vec<Key> = MAIN.iter().flat_map(|b| b.keys.iter().copied()).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(key), "{key:?} is bound twice");
        }
    }

    #[test]
    fn footer_ranks_are_distinct() {
        let mut ranks: Vec<u8> = MAIN
            .iter()
            .filter_map(|b| b.footer)
            .map(|f| f.rank)
            .collect();
        let count = ranks.len();
        ranks.sort_unstable();
        ranks.dedup();
        assert_eq!(ranks.len(), count);
    }

    /// The keys a watcher refuses are exactly those that change the run.
    #[test]
    fn the_keys_that_change_the_run_are_the_watchers_refused_ones() {
        let changing: Vec<Key> = MAIN
            .iter()
            .filter(|b| b.action.changes_run())
            .flat_map(|b| b.keys.iter().copied())
            .collect();
        let refused = [
            Code(KeyCode::Enter),
            Char('c'),
            Char('s'),
            Char('r'),
            Char('m'),
        ]
        .into_iter()
        .chain([Char('p'), Char('x'), Char('t'), Char('R')]);
        for key in refused {
            assert!(changing.contains(&key), "{key:?} changes the run");
        }
        let free = [
            Code(KeyCode::Tab),
            Char('j'),
            Char('k'),
            Char('z'),
            Char('/'),
        ]
        .into_iter()
        .chain([
            Char('f'),
            Char('?'),
            Char('q'),
            Ctrl('l'),
            Code(KeyCode::Esc),
        ]);
        for key in free {
            assert!(!changing.contains(&key), "{key:?} changes nothing");
        }
    }

    #[test]
    fn the_builtin_letters_are_the_tables() {
        for c in "qcsrmpxtRzf?/jkgG".chars() {
            assert!(is_builtin(c), "{c}");
        }
        assert!(!is_builtin('E'));
    }
}

//! Issue 15, item 10: a dialog's text wraps and scrolls as a whole (arrows, PgUp/PgDn),
//! and no sentence of a dialog ends in "…" at 80x24; Enter on a step that cannot be
//! confirmed opens a read-only view of all of it, which scrolls too.

use crossterm::event::KeyCode;
use kongup::engine::event::{Event, RollbackProgress, StepState};
use kongup::plan::steps::{ExpandedPlan, StepRef};
use kongup::ui::state::Modal;
use kongup::ui::{ConsoleState, Theme};

use kongup::testkit::hybrid::*;
use kongup::testkit::scenarios::{self, key, press};

/// The rows inside the open dialog's box at 80x24 (the panes are at columns 0 and 46; a
/// dialog is centred between them).
fn dialog_rows(state: &ConsoleState) -> Vec<String> {
    let buffer = scenarios::draw(state, 80, 24);
    let cell = |x: u16, y: u16| buffer[(x, y)].symbol().to_string();
    let (left, top) = (0..24u16)
        .flat_map(|y| (1..46u16).map(move |x| (x, y)))
        .find(|&(x, y)| cell(x, y) == "┏")
        .expect("a dialog is open");
    let right = (left + 1..80).find(|&x| cell(x, top) == "┓").unwrap();
    let bottom = (top + 1..24).find(|&y| cell(left, y) == "┗").unwrap();
    (top + 1..bottom)
        .map(|y| {
            (left + 1..right)
                .map(|x| cell(x, y))
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

fn assert_nothing_cut(what: &str, rows: &[String]) {
    for row in rows {
        assert!(
            !row.ends_with('…'),
            "{what}: a row ends in \"…\": {row:?}\n{}",
            rows.join("\n")
        );
    }
}

/// The hybrid fixture with long words where a dialog shows them: the instruction of
/// every step, and what decommissioning X cannot undo.
fn wordy() -> ExpandedPlan {
    let mut expanded = expanded();
    for step in expanded.phases.iter_mut().flat_map(|p| p.steps.iter_mut()) {
        step.instruction = format!(
            "{} Before you go on, tell the on-call lead which step you are at and when you \
             expect the next one, and write it in the change ticket; if anything on the \
             dashboards looks different from the rehearsal in staging, stop here and ask \
             the lead before going on, whatever the clock says. Before you go on, read the runbook's section on this step, check with the \
             owner of every service behind the gateway that they watch their own error \
             rates, and keep the incident channel open: this sentence is long on purpose \
             and ends with the word LAST.",
            step.instruction
        );
        if step.irreversible {
            step.irreversible_because = Some(
                "X's control planes are removed and their database dropped; after this a \
                 rollback means rebuilding X from its backup, which takes hours and needs \
                 the database team on call, so be sure the whole of Y is healthy first \
                 (END)"
                    .into(),
            );
        }
    }
    expanded
}

fn opened(expanded: &ExpandedPlan, step: StepRef) -> ConsoleState {
    let plan = plan();
    let mut state = ConsoleState::new(
        &plan,
        expanded,
        t0(),
        Theme::NO_COLOUR,
        previewer(&plan, expanded),
    );
    scenarios::apply_all(&mut state, &start_events(expanded));
    state.apply(&traffic(0));
    state.apply(&changed(step, StepState::Ready));
    press(&mut state, key(KeyCode::Enter));
    state
}

/// Every row the dialog shows, from its top to its end by `Down`.
fn read_through(state: &mut ConsoleState) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..60 {
        for row in dialog_rows(state) {
            if !seen.contains(&row) {
                seen.push(row);
            }
        }
        press(state, key(KeyCode::Down));
    }
    seen
}

#[test]
fn no_dialog_of_the_scenarios_ends_a_sentence_in_an_ellipsis_at_80x24() {
    for (name, scenario) in scenarios::all() {
        let state = scenario(Theme::NO_COLOUR);
        if state.modal().is_some() {
            assert_nothing_cut(name, &dialog_rows(&state));
        }
    }
}

#[test]
fn a_long_irreversible_dialog_is_read_whole_by_scrolling_and_keeps_its_field() {
    let mut state = opened(&wordy(), cp("decommission-x"));
    assert!(matches!(state.modal(), Some(Modal::Irreversible { .. })));
    let first = dialog_rows(&state);
    assert_nothing_cut("irreversible", &first);
    // What cannot be undone, the field and the keys stay in view on every page.
    assert!(first.iter().any(|r| r.contains("(END)")), "{first:#?}");
    assert!(first.iter().any(|r| r.starts_with('>')), "{first:#?}");
    let seen = read_through(&mut state);
    assert_nothing_cut("irreversible, scrolled", &seen);
    assert!(seen.iter().any(|r| r.contains("LAST.")), "{seen:#?}");
    assert!(
        seen.iter().any(|r| r.contains("What will run")),
        "{seen:#?}"
    );
    assert!(dialog_rows(&state).iter().any(|r| r.starts_with('>')));
}

#[test]
fn page_keys_scroll_a_long_confirm_as_a_whole_and_back() {
    let mut state = opened(&wordy(), cp("deploy-y"));
    assert!(matches!(state.modal(), Some(Modal::Confirm { .. })));
    let first = dialog_rows(&state);
    assert!(
        first.iter().any(|r| r.contains("more rows below")),
        "{first:#?}"
    );
    // What is confirmed is on the first page, however long the instruction.
    assert!(
        first.iter().any(|r| r.contains("What will run")) && first.iter().any(|r| r.contains("→ ")),
        "{first:#?}"
    );
    press(&mut state, key(KeyCode::PageDown));
    press(&mut state, key(KeyCode::PageDown));
    let end = dialog_rows(&state);
    assert!(
        end.iter().any(|r| r.contains("more rows above")),
        "{end:#?}"
    );
    assert!(
        !end.iter().any(|r| r.contains("more rows below")),
        "{end:#?}"
    );
    assert!(
        end.iter().any(|r| r.contains("LAST.")),
        "the instruction ends it: {end:#?}"
    );
    press(&mut state, key(KeyCode::PageUp));
    press(&mut state, key(KeyCode::PageUp));
    assert_eq!(dialog_rows(&state), first);
}

#[test]
fn a_long_rollback_note_is_whole_and_scrolls() {
    let mut state = scenarios::rolling_back(Theme::NO_COLOUR);
    state.apply(&Event::RollbackProgress(RollbackProgress::Planned {
        steps: vec![
            undoing("start-y"),
            undoing("deploy-y"),
            undoing("freeze-writes"),
        ],
        note: Some(
            "X's database was migrated by `kong migrations finish`: X cannot read it \
             any more, so traffic goes back to X only once X's database is restored from \
             the backup taken before the migrations; restoring it loses every write made \
             since, which the report lists; the data planes of X stay stopped until then, \
             and Y keeps serving what it serves now. (NOTE END)"
                .into(),
        ),
    }));
    let seen = read_through(&mut state);
    assert_nothing_cut("rollback", &seen);
    assert!(seen.iter().any(|r| r.contains("(NOTE END)")), "{seen:#?}");
    assert!(
        dialog_rows(&state)
            .iter()
            .any(|r| r.contains("confirm the next step"))
    );
}

#[test]
fn enter_on_a_step_that_cannot_be_confirmed_shows_all_of_it_read_only() {
    let mut state = scenarios::awaiting_confirmation(Theme::NO_COLOUR);
    press(&mut state, key(KeyCode::Down));
    let sent = press(&mut state, key(KeyCode::Enter));
    assert!(sent.is_empty());
    assert!(
        matches!(state.modal(), Some(Modal::StepView { step }) if *step == cp("restore-db")),
        "{:?}",
        state.modal()
    );
    let rows = dialog_rows(&state);
    assert!(
        rows.iter().any(|r| r.contains("restore-db is pending")),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("What it runs, and where")),
        "{rows:#?}"
    );
    // Nothing in it changes the run: Enter and y close it, nothing is sent.
    assert!(press(&mut state, scenarios::char_key('y')).is_empty());
    assert!(press(&mut state, key(KeyCode::Enter)).is_empty());
    assert!(state.modal().is_none());
}

#[test]
fn a_failed_steps_view_says_its_failure_and_scrolls_to_its_commands() {
    let mut state = opened(&wordy(), cp("deploy-y"));
    press(&mut state, key(KeyCode::Enter));
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    state.apply(&Event::StepChanged {
        step: cp("deploy-y"),
        state: StepState::Failed,
        detail: Some("exit status 2: ansible-playbook could not reach dp-y-3".into()),
    });
    press(&mut state, key(KeyCode::Enter));
    assert!(matches!(state.modal(), Some(Modal::StepView { .. })));
    let first = dialog_rows(&state);
    assert!(
        first.iter().any(|r| r.contains("could not reach dp-y-3")),
        "{first:#?}"
    );
    assert!(
        first.iter().any(|r| r.contains("r retries it")),
        "{first:#?}"
    );
    let seen = read_through(&mut state);
    assert_nothing_cut("step view", &seen);
    assert!(seen.iter().any(|r| r.contains("LAST.")), "{seen:#?}");
    assert!(seen.iter().any(|r| r.contains("→ ")), "{seen:#?}");
}

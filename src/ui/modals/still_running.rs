//! An interrupted step whose command still runs (kongup stopped while it ran, and it went
//! on): `r`, `m` or `x` on it. Wait for it (its output shows in the logs, its end is
//! recorded), or kill it; the kill is asked once more before anything is sent.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::exec::process::DEFAULT_KILL_GRACE;
use crate::plan::steps::{StepKind, StepRef};
use crate::ui::state::ConsoleState;
use crate::ui::text;
use crate::ui::theme::Tone;

use super::{Dialog, keys_line};

const WIDTH: u16 = 66;

pub fn dialog(state: &ConsoleState, step: &StepRef, kill: bool, area: Rect) -> Dialog {
    let theme = state.theme();
    let title = if kill { "Kill?" } else { "Still running" };
    let mut dialog = Dialog::new(format!("{title} · {step}"), WIDTH);
    let width = dialog.inner_width(area);
    let mut lines: Vec<Line> = Vec::new();
    let paragraph = |lines: &mut Vec<Line<'static>>, words: &str, tone: Option<Tone>| {
        lines.extend(text::wrap(words, width).into_iter().map(|row| match tone {
            Some(tone) => Line::from(Span::styled(row, theme.tone(tone))),
            None => Line::from(row),
        }));
    };
    if let Some(what) = state.still_running(step) {
        paragraph(&mut lines, &format!("{what}."), Some(Tone::Warn));
    }
    let migrations = state
        .step(step)
        .is_some_and(|(s, _)| matches!(s.kind, StepKind::Migrations(_)));
    if kill {
        if migrations {
            // Kong records each migration in `schema_meta` as it runs (`DB:run_migrations`,
            // `record_migration`, `kong/db/init.lua` 3.9.1 l.573), and a killed runner
            // leaves its row in `locks` until its `--lock-timeout` expires: nothing renews
            // or cleans it (`kong/db/init.lua` `DB:cluster_mutex`, 3.9.1 l.285; see
            // docs/kong/migrations-and-paths.md §1, items 5 and 6).
            paragraph(
                &mut lines,
                "⚠ This is `kong migrations`. Killing it midway can leave the database \
                 half-migrated, and Kong's migrations lock held until its --lock-timeout \
                 ends; letting it finish is safer.",
                Some(Tone::Warn),
            );
        }
        paragraph(
            &mut lines,
            &format!(
                "Kill sends SIGTERM to its whole process group (on its host, over ssh), then \
                 SIGKILL after {}. The step stays interrupted: once the command has ended, r \
                 retries it, m marks it done, R rolls back.",
                humantime::format_duration(DEFAULT_KILL_GRACE)
            ),
            None,
        );
        dialog.fixed = vec![
            Line::default(),
            keys_line(theme, &[("y", "kill it"), ("Esc", "let it run")]),
        ];
    } else {
        paragraph(
            &mut lines,
            "kongup will not start it again, nor mark it done, while it runs: a second copy \
             beside it could do the same work twice. Its output shows in the logs, and its \
             end is recorded when it comes.",
            None,
        );
        dialog.fixed = vec![
            Line::default(),
            keys_line(
                theme,
                &[("w", "wait for it"), ("x", "kill it (asks first)")],
            ),
        ];
    }
    dialog.body = lines;
    dialog
}

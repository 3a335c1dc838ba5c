//! The running step's output and what the engine did, newest at the bottom, timestamped
//! (UTC). A bounded ring: the full logs are in the run directory.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::state::{ConsoleState, LogEntry, LogKind, Pane, step_label};
use crate::ui::text;
use crate::ui::theme::{Theme, Tone};

/// From this width on, each line names its step.
const STEP_COLUMN_FROM: usize = 100;
const STEP_COLUMN: usize = 18;

pub fn render(frame: &mut Frame, area: Rect, state: &ConsoleState) {
    let theme = state.theme();
    let mut title = Vec::new();
    if let Some(step) = state.running_step() {
        title.push(Span::styled(
            format!("▶ {} ", step_label(step)),
            theme.tone(Tone::Active),
        ));
    }
    if state.log_follow() {
        title.push(Span::raw("following"));
    } else {
        title.push(Span::styled(
            format!("paused ↑{}", state.log_offset()),
            theme.tone(Tone::Warn),
        ));
    }
    if let Some(filter) = state.log_filter() {
        title.push(Span::raw(format!(
            " · filter \"{}\"",
            text::truncate(filter, 16)
        )));
    }
    let block = super::pane_block(state, Pane::Logs, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(lines(state, inner)), inner);
}

fn marker(kind: LogKind) -> (&'static str, Tone) {
    match kind {
        LogKind::Stdout => ("│", Tone::Plain),
        LogKind::Stderr => ("!", Tone::Warn),
        LogKind::Engine => ("»", Tone::Muted),
        LogKind::Event(tone) => ("•", tone),
        LogKind::Warning => ("⚠", Tone::Warn),
    }
}

/// How the pane lays an entry out at `width`: the time (and the step, when wide), the mark,
/// then the text wrapped beside them.
#[derive(Clone, Copy)]
struct Columns {
    step_column: bool,
    prefix: usize,
    text_width: usize,
}

impl Columns {
    fn at(width: usize) -> Option<Columns> {
        if width < 12 {
            return None;
        }
        let step_column = width >= STEP_COLUMN_FROM;
        let prefix = 9 + 2 + if step_column { STEP_COLUMN + 1 } else { 0 };
        Some(Columns {
            step_column,
            prefix,
            text_width: width - prefix,
        })
    }

    fn rows(&self, entry: &LogEntry) -> usize {
        text::wrap(&entry.text, self.text_width).len()
    }
}

/// How far up the pane `area` (inside its border) may scroll: until the first entry is
/// on its top row. Further up would only leave rows blank at the bottom.
pub fn max_offset(state: &ConsoleState, area: Rect) -> usize {
    let Some(columns) = Columns::at(area.width as usize) else {
        return 0;
    };
    let height = area.height as usize;
    let entries: Vec<&LogEntry> = state
        .logs()
        .iter()
        .filter(|e| state.log_matches(e))
        .collect();
    // The fewest entries, oldest first, that fill the pane; when they overflow it, one
    // more step up shows the first of them whole.
    let mut rows = 0;
    let mut top = 0;
    for entry in &entries {
        if rows >= height {
            break;
        }
        rows += columns.rows(entry);
        top += 1;
    }
    if rows < height {
        return 0;
    }
    entries.len() - top + usize::from(rows > height)
}

/// The rows that fill `area`, newest at the bottom, `log_offset` matching lines up. When
/// the lines up to there do not fill it, the pane shows its top: the first entry on the
/// top row, the rows below filled.
fn lines(state: &ConsoleState, area: Rect) -> Vec<Line<'static>> {
    let height = area.height as usize;
    let Some(columns) = Columns::at(area.width as usize).filter(|_| height > 0) else {
        return Vec::new();
    };
    let theme = state.theme();
    let entries: Vec<&LogEntry> = state
        .logs()
        .iter()
        .filter(|e| state.log_matches(e))
        .collect();
    let end = entries.len() - state.log_offset().min(entries.len());
    let mut rows: Vec<Line<'static>> = Vec::with_capacity(height);
    for entry in entries[..end].iter().rev() {
        let mut entry_rows = entry_lines(entry, theme, &columns);
        while let Some(row) = entry_rows.pop() {
            rows.push(row);
            if rows.len() == height {
                break;
            }
        }
        if rows.len() == height {
            break;
        }
    }
    rows.reverse();
    if rows.len() < height {
        rows.clear();
        for entry in &entries {
            rows.extend(entry_lines(entry, theme, &columns));
            if rows.len() >= height {
                break;
            }
        }
        rows.truncate(height);
    }
    if rows.is_empty() {
        let empty = if state.log_filter().is_some() {
            "no line matches the filter"
        } else {
            "no output yet"
        };
        rows.push(Line::from(Span::styled(empty, theme.tone(Tone::Muted))));
    }
    rows
}

fn entry_lines(entry: &LogEntry, theme: Theme, columns: &Columns) -> Vec<Line<'static>> {
    let Columns {
        step_column,
        prefix,
        text_width,
    } = *columns;
    let (mark, tone) = marker(entry.kind);
    let style = theme.tone(tone);
    let wrapped = text::wrap(&entry.text, text_width);
    let mut out = Vec::with_capacity(wrapped.len());
    for (i, row) in wrapped.into_iter().enumerate() {
        let mut spans = Vec::with_capacity(4);
        if i == 0 {
            spans.push(Span::styled(
                entry.at.format("%H:%M:%S ").to_string(),
                theme.tone(Tone::Muted),
            ));
            if step_column {
                let step = entry.step.as_deref().unwrap_or("");
                spans.push(Span::styled(
                    format!("{} ", text::fit(step, STEP_COLUMN)),
                    theme.tone(Tone::Muted),
                ));
            }
            spans.push(Span::styled(format!("{mark} "), style));
        } else {
            spans.push(Span::raw(" ".repeat(prefix)));
        }
        let body_style = match entry.kind {
            LogKind::Stdout | LogKind::Engine => theme.tone(Tone::Plain),
            _ => style,
        };
        spans.push(Span::styled(row, body_style));
        out.push(Line::from(spans));
    }
    out
}

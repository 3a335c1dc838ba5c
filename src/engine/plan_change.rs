//! What changed between the plan a run started with and the plan given now: the changed
//! lines, each with its line number and the YAML key it sits under; the steps added,
//! removed and changed, with the split each traffic stage sets; and what a traffic stage's
//! confirm says when it would send less to Y than Y has.

use std::collections::HashMap;

use crate::engine::journal::StepInfo;
use crate::plan::steps::StepKind;

/// How many changed lines a summary shows before it says how many more there are.
const MAX_LINES: usize = 40;

/// One line per removed (`-`) or added (`+`) line, e.g.
/// `traffic.bake (line 14): - bake: 30s` / `traffic.bake (line 14): + bake: 60s`.
pub fn summarise(old: &str, new: &str) -> Vec<String> {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let old_keys = key_paths(&old_lines);
    let new_keys = key_paths(&new_lines);
    let mut out = Vec::new();
    for change in diff(&old_lines, &new_lines) {
        let (sign, line_no, text, key) = match change {
            Change::Removed(i) => ('-', i + 1, old_lines[i], &old_keys[i]),
            Change::Added(j) => ('+', j + 1, new_lines[j], &new_keys[j]),
        };
        let place = if key.is_empty() {
            format!("line {line_no}")
        } else {
            format!("{key} (line {line_no})")
        };
        out.push(format!("{place}: {sign} {}", text.trim()));
    }
    if out.is_empty() && old != new {
        out.push("only whitespace at line ends or the final newline changed".to_string());
    }
    if out.len() > MAX_LINES {
        let more = out.len() - MAX_LINES;
        out.truncate(MAX_LINES);
        out.push(format!("… and {more} more changed lines"));
    }
    out
}

/// The percentage of traffic a step sends to Y: a traffic stage's.
pub fn y_percent_of(kind: &StepKind) -> Option<u8> {
    match kind {
        StepKind::ShiftTraffic { y_percent, .. } => Some(*y_percent),
        _ => None,
    }
}

/// What a changed plan does to a run's steps: a head that counts them, then one line per
/// step added (`+`), removed (`-`) or changed (`~`), at most [`MAX_LINES`].
pub fn step_changes(old: &[StepInfo], new: &[StepInfo]) -> (String, Vec<String>) {
    let old_by_key: HashMap<&str, &StepInfo> = old.iter().map(|s| (s.step.as_str(), s)).collect();
    let new_keys: HashMap<&str, ()> = new.iter().map(|s| (s.step.as_str(), ())).collect();
    let (mut added, mut removed, mut changed) = (0, 0, 0);
    let mut lines = Vec::new();
    for step in new {
        match old_by_key.get(step.step.as_str()) {
            None => {
                added += 1;
                let sets = step
                    .y_percent
                    .map(|y| format!(" (sets Y to {y} %)"))
                    .unwrap_or_default();
                lines.push(format!("+ added {}: {}{sets}", step.step, step.title));
            }
            Some(before) => {
                let differences = differences(before, step);
                if !differences.is_empty() {
                    changed += 1;
                    lines.push(format!(
                        "~ changed {}: {}",
                        step.step,
                        differences.join("; ")
                    ));
                }
            }
        }
    }
    for step in old
        .iter()
        .filter(|s| !new_keys.contains_key(s.step.as_str()))
    {
        removed += 1;
        let set = step
            .y_percent
            .map(|y| format!(" (would have set Y to {y} %)"))
            .unwrap_or_default();
        lines.push(format!("- removed {}: {}{set}", step.step, step.title));
    }
    let head = if lines.is_empty() {
        "the plan changed since the run started; the change is accepted and journaled. Its \
         steps are the same (what changed is in how they run: commands, timeouts, gates…)"
            .to_string()
    } else {
        format!(
            "the plan changed since the run started; the change is accepted and journaled. \
             Its steps: {added} added, {removed} removed, {changed} changed"
        )
    };
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!(
            "… and {more} more changed steps (`kongup plan` lists them)"
        ));
    }
    (head, lines)
}

/// How a step kept by a changed plan differs, in words.
fn differences(before: &StepInfo, after: &StepInfo) -> Vec<String> {
    let mut out = Vec::new();
    if before.title != after.title {
        out.push(format!("title `{}` → `{}`", before.title, after.title));
    }
    if before.kind != after.kind {
        out.push(format!("kind {} → {}", before.kind, after.kind));
    }
    match (before.y_percent, after.y_percent) {
        (Some(was), Some(now)) if was != now => {
            out.push(format!("sets Y to {now} % (was {was} %)"))
        }
        (None, Some(now)) => out.push(format!("sets Y to {now} %")),
        _ => {}
    }
    if before.irreversible != after.irreversible {
        out.push(
            if after.irreversible {
                "now irreversible"
            } else {
                "no longer irreversible"
            }
            .to_string(),
        );
    }
    if before.changes != after.changes {
        out.push(
            if after.changes {
                "now changes something"
            } else {
                "now changes nothing"
            }
            .to_string(),
        );
    }
    out
}

/// What a traffic stage's confirm says when it would send less to Y than Y has `y_now`
/// (a changed plan can put a 5 % stage after a 50 % one that ran); `None` otherwise.
pub fn traffic_backwards(kind: &StepKind, y_now: Option<u8>) -> Option<String> {
    let y_percent = y_percent_of(kind)?;
    let now = y_now?;
    (y_percent < now).then(|| {
        format!(
            "This stage moves traffic BACK: Y has {now} % now and gets {y_percent} %, so \
             {} % returns to X.",
            now - y_percent
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Removed(usize),
    Added(usize),
}

/// A line diff: common head and tail are cut first, the middle goes through a longest
/// common subsequence (plans are small, and edits between runs smaller).
fn diff(old: &[&str], new: &[&str]) -> Vec<Change> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let a = &old[head..old.len() - tail];
    let b = &new[head..new.len() - tail];
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut changes = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            changes.push(Change::Removed(head + i));
            i += 1;
        } else {
            changes.push(Change::Added(head + j));
            j += 1;
        }
    }
    changes
}

/// The dotted YAML key path each line sits under (its own key included), found from
/// indentation; list items count as one level deeper than their dash.
fn key_paths(lines: &[&str]) -> Vec<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    lines
        .iter()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return join(&stack);
            }
            let mut indent = line.len() - trimmed.len();
            let mut body = trimmed;
            while let Some(rest) = body.strip_prefix("- ") {
                indent += 2;
                body = rest.trim_start();
            }
            // A flow collection (`{a: 1}`, `[1, 2]`) is a value, not a key.
            let key = body
                .split_once(':')
                .filter(|_| !body.starts_with(['{', '[']))
                .map(|(k, _)| k.trim().trim_matches(['"', '\'']))
                .filter(|k| !k.is_empty() && !k.contains(' '));
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            match key {
                Some(key) => {
                    stack.push((indent, key.to_string()));
                    join(&stack)
                }
                None => join(&stack),
            }
        })
        .collect()
}

fn join(stack: &[(usize, String)]) -> String {
    stack
        .iter()
        .map(|(_, k)| k.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_value_is_shown_with_its_key_and_line() {
        let old = "name: prod\ntraffic:\n  schedule: [1, 50, 100]\n  bake: 30s\ngates:\n  min_requests: 10\n";
        let new = "name: prod\ntraffic:\n  schedule: [1, 50, 100]\n  bake: 60s\ngates:\n  min_requests: 10\n";
        assert_eq!(
            summarise(old, new),
            [
                "traffic.bake (line 4): - bake: 30s",
                "traffic.bake (line 4): + bake: 60s"
            ]
        );
    }

    #[test]
    fn added_and_removed_lines_in_lists_are_placed() {
        let old = "steps:\n  skip:\n    - step: backup\n      reason: done\n";
        let new = "steps:\n  skip: []\n";
        let summary = summarise(old, new);
        assert_eq!(
            summary,
            [
                "steps.skip (line 2): - skip:",
                "steps.skip.step (line 3): - - step: backup",
                "steps.skip.reason (line 4): - reason: done",
                "steps.skip (line 2): + skip: []",
            ]
        );
    }

    #[test]
    fn flow_mappings_sit_under_their_list() {
        let old = "steps:\n  skip:\n    - {step: a, reason: x}\n";
        let new = "steps:\n  skip:\n    - {step: a, reason: y}\n";
        assert_eq!(
            summarise(old, new),
            [
                "steps.skip (line 3): - - {step: a, reason: x}",
                "steps.skip (line 3): + - {step: a, reason: y}"
            ]
        );
    }

    #[test]
    fn identical_plans_have_no_summary_and_long_ones_are_cut() {
        assert!(summarise("a: 1\n", "a: 1\n").is_empty());
        assert_eq!(
            summarise("a: 1\n", "a: 1"),
            ["only whitespace at line ends or the final newline changed"]
        );
        let old: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        let new: String = (0..100).map(|i| format!("k{i}: x{i}\n")).collect();
        let summary = summarise(&old, &new);
        assert_eq!(summary.len(), MAX_LINES + 1);
        assert_eq!(summary.last().unwrap(), "… and 160 more changed lines");
    }
}

//! What is wrong with a plan, and where: `FILE:LINE:COL: message` plus a hint.

use std::fmt;

use super::yaml::Pos;

/// One problem in a plan file. Lines and columns are 1-based; both are 0 when the problem
/// is with the file as a whole (it cannot be read), and then they are not printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// A problem with the file as a whole, e.g. it cannot be read.
    pub fn whole_file(file: &str, message: String, hint: Option<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: 0,
            column: 0,
            message,
            hint,
        }
    }
}

/// Every problem found in a plan, in the order they appear in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}

/// Collects diagnostics for one file while the loader walks it.
#[derive(Debug)]
pub(super) struct Diagnostics {
    file: String,
    found: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &str) -> Self {
        Diagnostics {
            file: file.to_string(),
            found: Vec::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, message.into(), None);
    }

    pub fn error_with_hint(
        &mut self,
        pos: Pos,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(pos, message.into(), Some(hint.into()));
    }

    fn push(&mut self, pos: Pos, message: String, hint: Option<String>) {
        self.found.push(Diagnostic {
            file: self.file.clone(),
            line: pos.line.max(1),
            column: pos.column.max(1),
            message,
            hint,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The diagnostics sorted by position (stable, so one spot keeps its order).
    pub fn into_errors(mut self) -> PlanErrors {
        self.found.sort_by_key(|d| (d.line, d.column));
        PlanErrors {
            diagnostics: self.found,
        }
    }
}

/// The allowed word closest to a misspelt one, when it is close enough to be a likely typo.
pub(super) fn did_you_mean<'a>(written: &str, allowed: &[&'a str]) -> Option<&'a str> {
    // An edit distance of at most 3 needs lengths within 3 of each other: a longer text
    // is no typo of any word, and is not copied or compared (the table is len × len).
    let longest = allowed.iter().map(|a| a.chars().count()).max()?;
    if written.chars().nth(longest + 3).is_some() {
        return None;
    }
    let normalised = written.to_ascii_lowercase().replace('-', "_");
    allowed
        .iter()
        .map(|candidate| {
            let distance = if candidate.replace('-', "_") == normalised {
                0
            } else {
                edit_distance(&normalised, &candidate.replace('-', "_"))
            };
            (distance, *candidate)
        })
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).clamp(1, 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of two neighbours
/// (optimal string alignment), so `nmae` is one edit from `name`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

/// `a`, `a or b`, `a, b or c`: allowed values in a message.
pub(super) fn one_of(allowed: &[&str]) -> String {
    match allowed {
        [] => String::new(),
        [only] => format!("`{only}`"),
        [init @ .., last] => format!(
            "{} or `{last}`",
            init.iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_col_message_then_hint() {
        let diagnostic = Diagnostic {
            file: "plan.yaml".into(),
            line: 3,
            column: 5,
            message: "unknown key `nmae`".into(),
            hint: Some("did you mean `name`?".into()),
        };
        assert_eq!(
            diagnostic.to_string(),
            "plan.yaml:3:5: unknown key `nmae`\n  hint: did you mean `name`?"
        );
        let errors = PlanErrors {
            diagnostics: vec![
                diagnostic.clone(),
                Diagnostic {
                    hint: None,
                    line: 9,
                    ..diagnostic
                },
            ],
        };
        assert_eq!(
            errors.to_string(),
            "plan.yaml:3:5: unknown key `nmae`\n  hint: did you mean `name`?\nplan.yaml:9:5: unknown key `nmae`"
        );
    }

    #[test]
    fn suggests_only_close_words() {
        let keys = ["name", "admin_url", "status_url", "executor"];
        assert_eq!(did_you_mean("nmae", &keys), Some("name"));
        assert_eq!(did_you_mean("admin-url", &keys), Some("admin_url"));
        assert_eq!(did_you_mean("Executor", &keys), Some("executor"));
        assert_eq!(did_you_mean("statusurl", &keys), Some("status_url"));
        assert_eq!(did_you_mean("banana", &keys), None);
    }

    #[test]
    fn lists_allowed_values_in_prose() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}

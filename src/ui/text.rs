//! Text that fits: width-aware truncation and wrapping, and the console's number formats.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` columns, ending in `…` when something was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// As [`truncate`], but keeping the end: `…rations` (the end of what is being typed).
pub fn truncate_start(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut tail = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        used += w;
        tail.push(c);
    }
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}

/// `s` padded with spaces (or truncated) to exactly `cols` columns.
pub fn fit(s: &str, cols: usize) -> String {
    let mut out = truncate(s, cols);
    let w = width(&out);
    out.extend(std::iter::repeat_n(' ', cols.saturating_sub(w)));
    out
}

/// Splits `s` into rows of at most `cols` columns, breaking at spaces where it can and
/// inside a word only when the word alone is wider than a row. Never returns no rows.
pub fn wrap(s: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(1);
    let mut rows = Vec::new();
    for paragraph in s.split('\n') {
        let mut row = String::new();
        let mut row_width = 0;
        for word in paragraph.split(' ') {
            let word_width = width(word);
            let gap = usize::from(!row.is_empty());
            if row_width + gap + word_width <= cols {
                if gap == 1 {
                    row.push(' ');
                }
                row.push_str(word);
                row_width += gap + word_width;
                continue;
            }
            if !row.is_empty() {
                rows.push(std::mem::take(&mut row));
                row_width = 0;
            }
            // A word wider than a row is cut at the row's edge.
            for c in word.chars() {
                let w = c.width().unwrap_or(0);
                if row_width + w > cols {
                    rows.push(std::mem::take(&mut row));
                    row_width = 0;
                }
                row.push(c);
                row_width += w;
            }
        }
        rows.push(row);
    }
    rows
}

/// `h:mm:ss`, or `m:ss` under an hour.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Requests per second with two or three significant digits.
pub fn rate(per_s: f64) -> String {
    if per_s >= 9_999.5 {
        format!("{:.0}k/s", per_s / 1000.0)
    } else if per_s >= 999.5 {
        format!("{:.1}k/s", per_s / 1000.0)
    } else if per_s >= 9.95 {
        format!("{per_s:.0}/s")
    } else {
        format!("{per_s:.1}/s")
    }
}

/// A ratio (0.0–1.0) as a percentage.
pub fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p >= 9.995 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

pub fn millis(ms: f64) -> String {
    if ms >= 9_995.0 {
        format!("{:.0}s", ms / 1000.0)
    } else if ms >= 999.5 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        format!("{ms:.0}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_columns_with_an_ellipsis() {
        assert_eq!(truncate("kong migrations", 20), "kong migrations");
        assert_eq!(truncate("kong migrations", 6), "kong …");
        assert_eq!(truncate("日本語テキスト", 5), "日本…");
        assert_eq!(truncate_start("kong migrations", 6), "…tions");
        assert_eq!(truncate_start("kong", 6), "kong");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit("abcdef", 4), "abc…");
    }

    #[test]
    fn wraps_at_spaces_and_cuts_long_words() {
        assert_eq!(
            wrap("stop any configuration updates", 12),
            ["stop any", "configuratio", "n updates"]
        );
        assert_eq!(wrap("a\nb", 10), ["a", "b"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn formats_figures_compactly() {
        assert_eq!(duration(42), "0:42");
        assert_eq!(duration(3723), "1:02:03");
        assert_eq!(rate(1234.0), "1.2k/s");
        assert_eq!(rate(85.2), "85/s");
        assert_eq!(rate(0.25), "0.2/s");
        assert_eq!(rate(15_000.0), "15k/s");
        assert_eq!(percent(0.001), "0.10%");
        assert_eq!(percent(0.25), "25.0%");
        assert_eq!(millis(45.4), "45ms");
        assert_eq!(millis(1500.0), "1.5s");
    }
}

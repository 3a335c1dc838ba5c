//! A parser for the Prometheus text exposition format (0.0.4), as Kong's `prometheus`
//! plugin emits it: `# HELP`/`# TYPE` lines, other comments, label values with `\"`, `\\`
//! and `\n` escapes, `NaN`/`+Inf`/`-Inf` values, optional millisecond timestamps.
//!
//! Why our own and not a crate (figures from `cargo bench --bench metrics_parse`):
//! - `prometheus-parse` 0.2.5 matches each line with a regex and splits label lists on `,`
//!   and `=`: a label value holding a comma, `=`, `}` or an escaped quote is misread, and
//!   Kong's label values are service, route and consumer names that operators choose. It
//!   also allocates a `String` and a `HashMap` for every sample.
//! - `openmetrics-parser` 0.5.1 has a correct grammar (pest) but builds the whole
//!   exposition with owned strings for every family, and is LGPL-3.0.
//! - `prometheus-client` only encodes; it has no parser.
//!
//! Kong's exposition is mostly series kongup never looks at (memory, timers, bandwidth,
//! upstream health, one histogram line per bucket). So this parser reads a line's metric
//! name first and, when the caller's filter does not want it, jumps to the next line
//! without reading the rest; a kept line borrows its name and labels from the input and
//! unescapes a label value only when asked for it (and only if it has an escape).
//! Skipped lines have their name checked only: a body that is not an exposition at all
//! (an HTML error page, JSON) still fails on its first line with the line and column.

use std::borrow::Cow;
use std::fmt;

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message} (in `{excerpt}`)")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    pub message: &'static str,
    /// The start of the offending line, cut to 80 characters.
    pub excerpt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    fn parse(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => return None,
        })
    }
}

/// One sample line, borrowed from the exposition text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Labels<'a>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

/// What a kept line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    Help { name: &'a str, text: Cow<'a, str> },
    Type { name: &'a str, kind: MetricType },
    Sample(Sample<'a>),
}

/// The label list of a sample: the text between its braces, already validated.
/// Values are unescaped on access.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Labels<'a> {
    raw: &'a str,
}

impl<'a> Labels<'a> {
    /// The text between the braces, escapes and all (the same series gives the same text
    /// on every scrape of a node, so it serves as the series' key).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The unescaped value of a label.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.spans()
            .find(|span| span.name == name)
            .map(|span| unescape_label_value(span.raw_value))
    }

    /// Label names and unescaped values, in the order of the line.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + 'a {
        self.spans()
            .map(|span| (span.name, unescape_label_value(span.raw_value)))
    }

    /// The raw label text without one label: the key of a histogram series without its
    /// `le`. Borrowed when that label comes last or first, as Kong writes `le`.
    pub fn raw_without(&self, name: &str) -> Cow<'a, str> {
        self.split_off(name)
            .map_or(Cow::Borrowed(self.raw), |(_, rest)| rest)
    }

    /// One label's unescaped value and the raw text of the others, in one pass.
    pub fn split_off(&self, name: &str) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        let span = self.spans().find(|span| span.name == name)?;
        let before = self.raw[..span.start].trim_end_matches([' ', '\t', ',']);
        let after = self.raw[span.end..].trim_start_matches([' ', '\t', ',']);
        let rest = match (before.is_empty(), after.is_empty()) {
            (_, true) => Cow::Borrowed(before),
            (true, false) => Cow::Borrowed(after),
            (false, false) => Cow::Owned(format!("{before},{after}")),
        };
        Some((unescape_label_value(span.raw_value), rest))
    }

    fn spans(&self) -> LabelSpans<'a> {
        LabelSpans {
            raw: self.raw,
            pos: 0,
        }
    }
}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

struct LabelSpan<'a> {
    name: &'a str,
    raw_value: &'a str,
    /// Byte range of the whole `name="value"` within the raw label text.
    start: usize,
    end: usize,
}

/// Walks a validated label list. Never panics on text it did not validate: it stops.
struct LabelSpans<'a> {
    raw: &'a str,
    pos: usize,
}

impl<'a> Iterator for LabelSpans<'a> {
    type Item = LabelSpan<'a>;

    fn next(&mut self) -> Option<LabelSpan<'a>> {
        let bytes = self.raw.as_bytes();
        let mut pos = skip_blanks_and_commas(bytes, self.pos);
        let start = pos;
        let name_end = scan_label_name(bytes, pos);
        if name_end == pos {
            self.pos = bytes.len();
            return None;
        }
        let name = &self.raw[pos..name_end];
        pos = skip_blanks(bytes, name_end);
        if bytes.get(pos) != Some(&b'=') {
            self.pos = bytes.len();
            return None;
        }
        pos = skip_blanks(bytes, pos + 1);
        if bytes.get(pos) != Some(&b'"') {
            self.pos = bytes.len();
            return None;
        }
        let value_start = pos + 1;
        let Ok(value_end) = scan_quoted(bytes, value_start) else {
            self.pos = bytes.len();
            return None;
        };
        self.pos = value_end + 1;
        Some(LabelSpan {
            name,
            raw_value: &self.raw[value_start..value_end],
            start,
            end: value_end + 1,
        })
    }
}

fn unescape_label_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// HELP text escapes are `\\` and `\n`; any other backslash stays as written.
fn unescape_help(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('n')) => {
                out.push('\n');
                chars.next();
            }
            ('\\', Some('\\')) => {
                out.push('\\');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && is_blank(bytes[pos]) {
        pos += 1;
    }
    pos
}

fn skip_blanks_and_commas(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && (is_blank(bytes[pos]) || bytes[pos] == b',') {
        pos += 1;
    }
    pos
}

fn is_metric_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_metric_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// End of a metric name starting at `pos` (`pos` itself when there is none).
fn scan_metric_name(bytes: &[u8], pos: usize) -> usize {
    if pos >= bytes.len() || !is_metric_name_start(bytes[pos]) {
        return pos;
    }
    let mut end = pos + 1;
    while end < bytes.len() && is_metric_name_char(bytes[end]) {
        end += 1;
    }
    end
}

fn scan_label_name(bytes: &[u8], pos: usize) -> usize {
    if pos >= bytes.len() || !(bytes[pos].is_ascii_alphabetic() || bytes[pos] == b'_') {
        return pos;
    }
    let mut end = pos + 1;
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
    }
    end
}

/// From just after an opening quote: the index of the closing quote.
fn scan_quoted(bytes: &[u8], mut pos: usize) -> Result<usize, (usize, &'static str)> {
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => return Ok(pos),
            b'\\' => match bytes.get(pos + 1) {
                Some(b'\\' | b'"' | b'n') => pos += 2,
                Some(_) => {
                    return Err((
                        pos,
                        "invalid escape in a label value (only \\\\, \\\" and \\n are allowed)",
                    ));
                }
                None => return Err((pos, "label value not closed by a quote")),
            },
            _ => pos += 1,
        }
    }
    Err((pos, "label value not closed by a quote"))
}

/// A sample value: integers (most of Kong's values) without the float parser, the rest
/// (`1.5e3`, `NaN`, `+Inf`, `-Inf`) with it.
fn parse_value(token: &str) -> Option<f64> {
    let bytes = token.as_bytes();
    if !bytes.is_empty() && bytes.len() <= 15 && bytes.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &b in bytes {
            n = n * 10 + u64::from(b - b'0');
        }
        // Exact: at most 15 digits fit in an f64's mantissa.
        return Some(n as f64);
    }
    // Rust's float syntax accepts what Go's ParseFloat does here (NaN, +Inf, -Inf, Inf,
    // exponents), and rejects hex floats and underscores, which the format never uses.
    token.parse::<f64>().ok()
}

struct LineContext<'a> {
    line: &'a str,
    number: usize,
}

impl LineContext<'_> {
    fn error(&self, at: usize, message: &'static str) -> ParseError {
        let excerpt: String = self.line.chars().take(80).collect();
        ParseError {
            line: self.number,
            column: at + 1,
            message,
            excerpt,
        }
    }
}

/// Reads an exposition and hands every entry whose metric name `keep` accepts to `visit`.
/// `keep` sees sample names as written (`kong_request_latency_ms_bucket`) and family
/// names on `# HELP`/`# TYPE` lines (`kong_request_latency_ms`).
pub fn for_each_entry<'a>(
    text: &'a str,
    keep: impl FnMut(&str) -> bool,
    visit: impl FnMut(Entry<'a>),
) -> Result<(), ParseError> {
    for_each_entry_from(text, 0, keep, visit).map(|_| ())
}

/// [`for_each_entry`] over a piece of an exposition that starts after `lines_before`
/// lines (errors number lines from the exposition's start); returns the lines read. A
/// streamed body is read this way, piece by piece, each piece whole lines.
pub fn for_each_entry_from<'a>(
    text: &'a str,
    lines_before: usize,
    mut keep: impl FnMut(&str) -> bool,
    mut visit: impl FnMut(Entry<'a>),
) -> Result<usize, ParseError> {
    let mut rest = text;
    let mut number = lines_before;
    while !rest.is_empty() {
        number += 1;
        let (line, next) = match rest.find('\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, ""),
        };
        rest = next;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let context = LineContext { line, number };
        let bytes = line.as_bytes();
        let start = skip_blanks(bytes, 0);
        match bytes.get(start) {
            None => continue,
            Some(b'#') => parse_comment(&context, start + 1, &mut keep, &mut visit)?,
            Some(_) => parse_sample_line(&context, start, &mut keep, &mut visit)?,
        }
    }
    Ok(number - lines_before)
}

/// All samples whose name `keep` accepts.
pub fn parse_samples<'a>(
    text: &'a str,
    keep: impl FnMut(&str) -> bool,
) -> Result<Vec<Sample<'a>>, ParseError> {
    let mut samples = Vec::new();
    for_each_entry(text, keep, |entry| {
        if let Entry::Sample(sample) = entry {
            samples.push(sample);
        }
    })?;
    Ok(samples)
}

fn parse_comment<'a>(
    context: &LineContext<'a>,
    pos: usize,
    keep: &mut impl FnMut(&str) -> bool,
    visit: &mut impl FnMut(Entry<'a>),
) -> Result<(), ParseError> {
    let line = context.line;
    let bytes = line.as_bytes();
    let keyword_start = skip_blanks(bytes, pos);
    let keyword_end = keyword_start
        + bytes[keyword_start..]
            .iter()
            .take_while(|b| !is_blank(**b))
            .count();
    let keyword = &line[keyword_start..keyword_end];
    if (keyword != "HELP" && keyword != "TYPE") || keyword_end == bytes.len() {
        // Any other comment, or a bare `# HELP`: free text.
        return Ok(());
    }
    let name_start = skip_blanks(bytes, keyword_end);
    let name_end = scan_metric_name(bytes, name_start);
    if name_end == name_start {
        return Err(context.error(name_start, "expected a metric name after the keyword"));
    }
    let name = &line[name_start..name_end];
    if !keep(name) {
        return Ok(());
    }
    if name_end < bytes.len() && !is_blank(bytes[name_end]) {
        return Err(context.error(name_end, "unexpected character in a metric name"));
    }
    if keyword == "HELP" {
        let text_start = (name_end + 1).min(bytes.len());
        visit(Entry::Help {
            name,
            text: unescape_help(&line[text_start..]),
        });
        return Ok(());
    }
    let kind_start = skip_blanks(bytes, name_end);
    let kind_word = line[kind_start..].trim_end_matches([' ', '\t']);
    let Some(kind) = MetricType::parse(kind_word) else {
        return Err(context.error(
            kind_start,
            "unknown metric type (expected counter, gauge, histogram, summary or untyped)",
        ));
    };
    visit(Entry::Type { name, kind });
    Ok(())
}

fn parse_sample_line<'a>(
    context: &LineContext<'a>,
    start: usize,
    keep: &mut impl FnMut(&str) -> bool,
    visit: &mut impl FnMut(Entry<'a>),
) -> Result<(), ParseError> {
    let line = context.line;
    let bytes = line.as_bytes();
    let name_end = scan_metric_name(bytes, start);
    if name_end == start {
        return Err(context.error(
            start,
            "expected a metric name, a `#` comment or a blank line: this is not Prometheus text",
        ));
    }
    let name = &line[start..name_end];
    if !matches!(bytes.get(name_end), Some(b' ' | b'\t' | b'{')) {
        return Err(context.error(
            name_end,
            "expected a blank or `{` after the metric name: this is not Prometheus text",
        ));
    }
    if !keep(name) {
        return Ok(());
    }
    let after_name = skip_blanks(bytes, name_end);
    let mut labels = Labels::default();
    let mut pos = name_end;
    if bytes.get(after_name) == Some(&b'{') {
        let labels_start = after_name + 1;
        let labels_end = scan_label_list(context, labels_start)?;
        labels = Labels {
            raw: &line[labels_start..labels_end],
        };
        pos = labels_end + 1;
    }
    let value_start = skip_blanks(bytes, pos);
    if value_start == pos && pos < bytes.len() {
        return Err(context.error(
            pos,
            "expected a blank and then the value (is there a stray character in the name?)",
        ));
    }
    let value_end = value_start
        + bytes[value_start..]
            .iter()
            .take_while(|b| !is_blank(**b))
            .count();
    if value_end == value_start {
        return Err(context.error(value_start, "expected a value after the metric"));
    }
    let Some(value) = parse_value(&line[value_start..value_end]) else {
        return Err(context.error(
            value_start,
            "the value is not a number (expected e.g. 12, 0.5, 1e3, NaN, +Inf)",
        ));
    };
    let timestamp_start = skip_blanks(bytes, value_end);
    let mut timestamp_ms = None;
    if timestamp_start < bytes.len() {
        let timestamp_end = timestamp_start
            + bytes[timestamp_start..]
                .iter()
                .take_while(|b| !is_blank(**b))
                .count();
        let Ok(timestamp) = line[timestamp_start..timestamp_end].parse::<i64>() else {
            return Err(context.error(
                timestamp_start,
                "the timestamp is not an integer number of milliseconds",
            ));
        };
        timestamp_ms = Some(timestamp);
        let trailing = skip_blanks(bytes, timestamp_end);
        if trailing < bytes.len() {
            return Err(context.error(trailing, "unexpected text after the timestamp"));
        }
    }
    visit(Entry::Sample(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    }));
    Ok(())
}

/// Validates `name="value", …}` from just after `{`; returns the index of `}`.
fn scan_label_list(context: &LineContext<'_>, mut pos: usize) -> Result<usize, ParseError> {
    let bytes = context.line.as_bytes();
    loop {
        pos = skip_blanks(bytes, pos);
        match bytes.get(pos) {
            Some(b'}') => return Ok(pos),
            None => return Err(context.error(pos, "label list not closed by `}`")),
            Some(_) => {}
        }
        let name_end = scan_label_name(bytes, pos);
        if name_end == pos {
            return Err(context.error(pos, "expected a label name"));
        }
        pos = skip_blanks(bytes, name_end);
        if bytes.get(pos) != Some(&b'=') {
            return Err(context.error(pos, "expected `=` after the label name"));
        }
        pos = skip_blanks(bytes, pos + 1);
        if bytes.get(pos) != Some(&b'"') {
            return Err(context.error(pos, "expected a quoted label value"));
        }
        let close =
            scan_quoted(bytes, pos + 1).map_err(|(at, message)| context.error(at, message))?;
        pos = skip_blanks(bytes, close + 1);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b'}') => return Ok(pos),
            None => return Err(context.error(pos, "label list not closed by `}`")),
            Some(_) => return Err(context.error(pos, "expected `,` or `}` after a label")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<Sample<'_>> {
        parse_samples(text, |_| true).expect("valid exposition")
    }

    #[test]
    fn label_value_escapes_are_undone_on_access() {
        let samples = all(r#"m{a="x\"y",b="c\\d",c="e\nf",d="}=,"} 1"#);
        let labels = samples[0].labels;
        assert_eq!(labels.get("a").unwrap(), "x\"y");
        assert_eq!(labels.get("b").unwrap(), "c\\d");
        assert_eq!(labels.get("c").unwrap(), "e\nf");
        assert_eq!(labels.get("d").unwrap(), "}=,");
        assert!(matches!(labels.get("d").unwrap(), Cow::Borrowed(_)));
        assert_eq!(labels.get("missing"), None);
    }

    #[test]
    fn raw_without_removes_one_label_wherever_it_is() {
        let samples = all(
            "h{service=\"s\",le=\"5\"} 1\nh{le=\"5\",service=\"s\"} 1\nh{a=\"1\", le=\"5\", b=\"2\"} 1\nh{le=\"5\"} 1",
        );
        let keys: Vec<_> = samples
            .iter()
            .map(|s| s.labels.raw_without("le").into_owned())
            .collect();
        assert_eq!(
            keys,
            ["service=\"s\"", "service=\"s\"", "a=\"1\",b=\"2\"", ""]
        );
    }

    #[test]
    fn integer_fast_path_agrees_with_the_float_parser() {
        for token in ["0", "7", "123456789012345", "1234567890123456789"] {
            assert_eq!(parse_value(token), token.parse::<f64>().ok(), "{token}");
        }
    }
}

//! Reading a journal back, checking all it can: each line one record, the first a
//! `run-created` numbered 0, then every number once and in order, each record's `prev`
//! the SHA-256 of the line before it. What fails is named by its line and refused; only a
//! torn last line (no newline, or not complete JSON: a write cut short) is dropped.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{Entry, JournalError, Record, line_sha256};

/// What reading a journal found.
#[derive(Debug)]
pub struct JournalContents {
    pub records: Vec<Record>,
    /// Bytes of complete, valid lines; anything after is a torn tail.
    pub valid_len: u64,
    /// Set when a torn last line was dropped.
    pub torn_tail: Option<String>,
    /// Set when records were written before kongup chained them: edits to those lines
    /// cannot be detected.
    pub unchained: Option<String>,
    /// The last record kept, which a record appended later is checked against
    /// ([`read_appended`]); `None` for an empty journal.
    pub tail: Option<Tail>,
}

/// The last record of a journal as read: where it is, its number, and the hash the next
/// record must carry as `prev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Its line, counted from 1.
    pub line: usize,
    pub seq: u64,
    /// SHA-256 of its line: the next record's `prev`.
    pub sha256: String,
    event: String,
    /// Whether a record so far carried `prev` (from then on every record must).
    chained: bool,
}

impl JournalContents {
    /// What to tell the operator about the journal itself.
    pub fn warnings(&self) -> Vec<String> {
        self.torn_tail
            .iter()
            .chain(&self.unchained)
            .cloned()
            .collect()
    }
}

/// Reads every record, and refuses a journal it cannot trust (see the module's doc),
/// naming the line. A torn last line is dropped and reported in `torn_tail`.
pub fn read_journal(path: &Path) -> Result<JournalContents, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })?;
    check(path, &bytes, None)
}

/// Checks `bytes` as [`read_journal`] checks a whole journal: the journal's first lines
/// when `after` is `None`, else what was appended to the journal at `path` after the record
/// `after` (every number in turn, every `prev` the hash of the line before; lines are
/// numbered as in the whole file). `path` is for the messages.
pub fn check_lines(
    path: &Path,
    bytes: &[u8],
    after: Option<&Tail>,
) -> Result<JournalContents, JournalError> {
    check(path, bytes, after)
}

fn check(path: &Path, bytes: &[u8], after: Option<&Tail>) -> Result<JournalContents, JournalError> {
    let path_buf = || path.to_path_buf();
    let lines = split_lines(bytes);
    let first_line = after.map_or(1, |t| t.line + 1);
    let mut records: Vec<Record> = Vec::new();
    let mut valid_len = 0usize;
    let mut torn_tail = None;
    let mut previous: Option<Tail> = after.cloned();
    // Whether a record so far carried `prev`; the lines without it before it did.
    let mut chained = after.is_some_and(|t| t.chained);
    let mut unchained_lines: Option<(usize, usize)> = None;
    for (index, &(bytes, complete)) in lines.iter().enumerate() {
        let line = first_line + index;
        let is_last = index + 1 == lines.len();
        if !complete {
            torn_tail = Some(torn(path, bytes, "it has no end"));
            break;
        }
        let value = match one_value(bytes) {
            Ok(value) => value,
            Err(NotOne::Glued) => {
                return Err(JournalError::Interleaved {
                    path: path_buf(),
                    line,
                    detail: format!(
                        "line {line} holds two records glued together (or a record and part \
                         of another)"
                    ),
                });
            }
            Err(NotOne::NotJson(message)) if is_last => {
                torn_tail = Some(torn(
                    path,
                    bytes,
                    &format!("it is not complete JSON: {message}"),
                ));
                break;
            }
            Err(NotOne::NotJson(message)) => {
                return Err(JournalError::Corrupt {
                    path: path_buf(),
                    line,
                    message,
                });
            }
        };
        let prev = match value.get("prev") {
            None => None,
            Some(Value::String(hash)) if is_sha256(hash) => Some(hash.as_str()),
            Some(other) => {
                return Err(JournalError::Corrupt {
                    path: path_buf(),
                    line,
                    message: format!("its prev, {other}, is not a SHA-256 in hex"),
                });
            }
        };
        let event = value.get("event").and_then(Value::as_str).unwrap_or("");
        let record = Record::deserialize(&value)
            .map_err(|e| not_a_record(path, line, &value, e, &records))?;
        match &previous {
            None => {
                if !matches!(record.entry, Entry::RunCreated { .. }) {
                    return Err(JournalError::NoHeader { path: path_buf() });
                }
                if record.seq != 0 {
                    return Err(JournalError::Edited {
                        path: path_buf(),
                        line,
                        detail: format!(
                            "its first record is numbered {}, not 0: the records before it \
                             were cut off",
                            record.seq
                        ),
                    });
                }
                if prev.is_some() {
                    return Err(JournalError::Edited {
                        path: path_buf(),
                        line,
                        detail: "its first line carries the hash of a line before it: the \
                                 journal's start was cut off"
                            .into(),
                    });
                }
            }
            Some(before) => {
                in_sequence(path, before, line, record.seq, &lines[index + 1..])?;
                match prev {
                    Some(hash) => {
                        let actual = &before.sha256;
                        if hash != actual {
                            return Err(JournalError::Edited {
                                path: path_buf(),
                                line: before.line,
                                detail: format!(
                                    "its record ({}) is not the one that was written: line \
                                     {line} records {hash} as the SHA-256 of line {}, which \
                                     hashes to {actual} now (line {} was altered, or the hash \
                                     on line {line} was)",
                                    what_record(&before.event),
                                    before.line,
                                    before.line,
                                ),
                            });
                        }
                        chained = true;
                    }
                    None if chained => {
                        return Err(JournalError::Edited {
                            path: path_buf(),
                            line,
                            detail: format!(
                                "its record ({}) carries no hash of the line before it, though \
                                 the records before it do: its hash was removed, or kongup did \
                                 not write it",
                                what_record(event)
                            ),
                        });
                    }
                    None => {
                        unchained_lines = Some((unchained_lines.map_or(line, |(a, _)| a), line))
                    }
                }
            }
        }
        previous = Some(Tail {
            line,
            seq: record.seq,
            sha256: line_sha256(bytes),
            event: event.to_string(),
            chained,
        });
        records.push(record);
        valid_len += bytes.len() + 1;
    }
    let unchained = unchained_lines.map(|(first, last)| {
        let one = first == last;
        format!(
            "{} of the journal {} {} written before kongup chained its records: edits to {} \
             cannot be detected (every record kongup writes now carries the SHA-256 of the \
             line before it)",
            if one {
                format!("line {first}")
            } else {
                format!("lines {first} to {last}")
            },
            path.display(),
            if one { "was" } else { "were" },
            if one { "it" } else { "them" },
        )
    });
    Ok(JournalContents {
        records,
        valid_len: valid_len as u64,
        torn_tail,
        unchained,
        tail: previous,
    })
}

/// The lines of the file, each with whether it ends with a newline (only the last may
/// not).
fn split_lines(bytes: &[u8]) -> Vec<(&[u8], bool)> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                lines.push((&rest[..end], true));
                rest = &rest[end + 1..];
            }
            None => {
                lines.push((rest, false));
                rest = &[];
            }
        }
    }
    lines
}

fn torn(path: &Path, bytes: &[u8], why: &str) -> String {
    format!(
        "the last line of the journal {} ({} bytes) is torn, a write cut short ({why}), and \
         was ignored",
        path.display(),
        bytes.len()
    )
}

enum NotOne {
    /// One JSON value, then more.
    Glued,
    NotJson(String),
}

/// The line as exactly one JSON value.
fn one_value(bytes: &[u8]) -> Result<Value, NotOne> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(NotOne::NotJson(e.to_string())),
        None => return Err(NotOne::NotJson("the line is empty".into())),
    };
    let rest = &bytes[values.byte_offset()..];
    if rest.iter().all(u8::is_ascii_whitespace) {
        Ok(value)
    } else {
        Err(NotOne::Glued)
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A record's kind, for messages.
fn what_record(event: &str) -> String {
    match event {
        "" => "no event".into(),
        "run-created" => "run-created: the run's plan and its hash".into(),
        event => event.into(),
    }
}

/// Complete JSON that is not a record this kongup reads: a newer kongup's, or damage.
fn not_a_record(
    path: &Path,
    line: usize,
    value: &Value,
    error: serde_json::Error,
    records: &[Record],
) -> JournalError {
    if let Some(event) = value.get("event").and_then(Value::as_str)
        && let Err(unknown) = Entry::deserialize(value)
        && unknown
            .to_string()
            .starts_with(&format!("unknown variant `{event}`"))
    {
        let started_by = records.first().and_then(|first| match &first.entry {
            Entry::RunCreated { kongup_version, .. }
                if kongup_version != env!("CARGO_PKG_VERSION") =>
            {
                Some(kongup_version.clone())
            }
            _ => None,
        });
        return JournalError::Newer {
            path: path.to_path_buf(),
            line,
            event: event.to_string(),
            started_by,
        };
    }
    JournalError::Corrupt {
        path: path.to_path_buf(),
        line,
        message: error.to_string(),
    }
}

/// Checks that the record on `line`, numbered `seq`, follows `before`; `rest` are the
/// lines after it, where a record that seems missing may be found out of place.
fn in_sequence(
    path: &Path,
    before: &Tail,
    line: usize,
    seq: u64,
    rest: &[(&[u8], bool)],
) -> Result<(), JournalError> {
    if seq == before.seq + 1 {
        return Ok(());
    }
    let path = path.to_path_buf();
    if seq == before.seq {
        return Err(JournalError::Interleaved {
            path,
            line,
            detail: format!("lines {} and {line} both hold record {seq}", before.line),
        });
    }
    if seq < before.seq {
        return Err(JournalError::OutOfOrder {
            path,
            line,
            detail: format!(
                "line {line} holds record {seq} after record {} on line {}: the numbers go back",
                before.seq, before.line
            ),
        });
    }
    #[derive(Deserialize)]
    struct Numbered {
        seq: u64,
    }
    let missing = before.seq + 1;
    let later = rest.iter().position(|(bytes, _)| {
        serde_json::from_slice::<Numbered>(bytes).is_ok_and(|n| n.seq == missing)
    });
    match later {
        Some(offset) => Err(JournalError::OutOfOrder {
            path,
            line,
            detail: format!(
                "line {line} holds record {seq} right after record {} on line {}, and record \
                 {missing} comes later, on line {}",
                before.seq,
                before.line,
                line + 1 + offset
            ),
        }),
        None => Err(JournalError::Missing {
            path,
            line,
            before: before.seq,
            after: seq,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{JOURNAL_FILE, Journal};
    use super::*;
    use crate::engine::lock::RunLock;
    use crate::secrets::Redactor;

    fn header() -> Entry {
        Entry::RunCreated {
            run_id: "r".into(),
            plan_name: "p".into(),
            plan_sha256: "00".into(),
            plan_text: "name: p\n".into(),
            steps: vec![],
            kongup_version: "0".into(),
        }
    }

    fn warning(n: usize) -> Entry {
        Entry::Warning {
            text: format!("warning {n}"),
        }
    }

    /// The journal of the run in `dir`, locked, for appending after `valid_len` bytes.
    fn open(dir: &Path, valid_len: u64, next_seq: u64) -> Journal {
        let lock = RunLock::acquire(dir, "a@b").unwrap();
        Journal::open(lock, valid_len, next_seq, Arc::new(Redactor::default())).unwrap()
    }

    /// A journal in `dir` of the run's first record and `n` warnings: its lines.
    fn written(dir: &Path, n: usize) -> Vec<String> {
        let mut journal = open(dir, 0, 0);
        journal.append("a@b", header()).unwrap();
        for i in 0..n {
            journal.append("kongup", warning(i)).unwrap();
        }
        lines(dir)
    }

    fn lines(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join(JOURNAL_FILE))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rewrite(dir: &Path, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(JOURNAL_FILE), text).unwrap();
    }

    fn read(dir: &Path) -> Result<JournalContents, JournalError> {
        read_journal(&dir.join(JOURNAL_FILE))
    }

    /// The line without its `prev`, as kongup wrote records before it chained them.
    fn unchained(line: &str) -> String {
        let mut value: Value = serde_json::from_str(line).unwrap();
        value.as_object_mut().unwrap().remove("prev");
        value.to_string()
    }

    #[test]
    fn each_record_carries_its_number_and_the_hash_of_the_line_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let lines = written(dir.path(), 2);
        assert!(
            lines[0].starts_with(r#"{"seq":0,"at":"#),
            "the first record has no prev: {}",
            lines[0]
        );
        for (n, pair) in lines.windows(2).enumerate() {
            let expected = format!(
                r#"{{"seq":{},"prev":"{}","at":"#,
                n + 1,
                line_sha256(pair[0].as_bytes())
            );
            assert!(pair[1].starts_with(&expected), "{}", pair[1]);
        }
        let contents = read(dir.path()).unwrap();
        assert_eq!(contents.records.len(), 3);
        assert!(contents.warnings().is_empty(), "{:?}", contents.warnings());
    }

    #[test]
    fn a_journal_from_before_the_chain_reads_with_a_warning_and_is_chained_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let old: Vec<String> = written(dir.path(), 2)
            .iter()
            .map(|l| unchained(l))
            .collect();
        rewrite(dir.path(), &old);
        let contents = read(dir.path()).unwrap();
        let warning = contents.unchained.clone().unwrap();
        assert!(
            warning.contains("lines 2 to 3")
                && warning.contains("written before kongup chained its records")
                && warning.contains("cannot be detected"),
            "{warning}"
        );
        assert_eq!(contents.warnings(), vec![warning.clone()]);

        // Resumed: what is written next chains to the last line written before.
        let mut journal = open(dir.path(), contents.valid_len, 3);
        journal.append("kongup", Entry::Resumed).unwrap();
        drop(journal);
        let mut now = lines(dir.path());
        assert!(
            now[3].contains(&line_sha256(old[2].as_bytes())),
            "{}",
            now[3]
        );
        assert_eq!(read(dir.path()).unwrap().unchained, Some(warning));

        // The old line the new one chains to is covered; the ones before it are not.
        let edited = now[2].replace("warning 1", "warning X");
        let kept = std::mem::replace(&mut now[2], edited);
        rewrite(dir.path(), &now);
        assert!(
            matches!(read(dir.path()), Err(JournalError::Edited { line: 3, .. })),
            "{:?}",
            read(dir.path())
        );
        now[2] = kept;
        now[1] = now[1].replace("warning 0", "warning X");
        rewrite(dir.path(), &now);
        assert!(read(dir.path()).is_ok());

        // A hash removed from a chained record is an edit, not an old journal.
        now.push(unchained(&now[3]).replace("\"seq\":3", "\"seq\":4"));
        rewrite(dir.path(), &now);
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, JournalError::Edited { line: 5, .. }), "{err}");
        assert!(err.to_string().contains("carries no hash"), "{err}");
    }

    #[test]
    fn a_record_a_newer_kongup_wrote_is_refused_wherever_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = written(dir.path(), 2);
        lines[1] = lines[1].replace("\"event\":\"warning\"", "\"event\":\"quorum-lost\"");
        rewrite(dir.path(), &lines);
        let err = read(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Newer { line: 2, event, started_by: Some(v), .. }
                if event == "quorum-lost" && v == "0"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("newer kongup (the run was started by kongup 0)")
                && message.contains("upgrade kongup to resume this run"),
            "{message}"
        );
    }

    #[test]
    fn a_complete_last_line_that_is_not_a_record_is_refused_not_dropped_as_torn() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = written(dir.path(), 1);
        let prev = line_sha256(lines[1].as_bytes());
        // A known event without its fields: written whole, so not torn.
        lines.push(format!(
            r#"{{"seq":2,"prev":"{prev}","at":"2025-01-01T00:00:00Z","by":"a@b","event":"step-confirmed"}}"#
        ));
        rewrite(dir.path(), &lines);
        let err = read(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 3, message, .. } if message.contains("missing field")),
            "{err:?}"
        );
        // Written without its newline, it is torn.
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), text.trim_end()).unwrap();
        let torn = read(dir.path()).unwrap().torn_tail.unwrap();
        assert!(torn.contains("torn") && torn.contains("no end"), "{torn}");
    }

    #[test]
    fn several_missing_records_are_named_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = written(dir.path(), 4);
        lines.drain(1..3);
        rewrite(dir.path(), &lines);
        let err = read(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::Missing {
                    line: 2,
                    before: 0,
                    after: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(
                "records 0 and 3 are adjacent (lines 1 and 2): records 1 to 2 are missing"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_journal_must_start_with_record_0_of_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let lines = written(dir.path(), 2);
        rewrite(dir.path(), &lines[1..]);
        assert!(matches!(
            read(dir.path()),
            Err(JournalError::NoHeader { .. })
        ));
        rewrite(dir.path(), &[lines[0].replace("\"seq\":0", "\"seq\":5")]);
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, JournalError::Edited { line: 1, .. }), "{err}");
        assert!(err.to_string().contains("numbered 5, not 0"), "{err}");
    }

    #[test]
    fn an_empty_journal_has_no_records() {
        let dir = tempfile::tempdir().unwrap();
        drop(RunLock::acquire(dir.path(), "a@b").unwrap());
        let contents = read(dir.path()).unwrap();
        assert!(contents.records.is_empty() && contents.valid_len == 0);
    }

    #[test]
    fn bytes_the_writer_did_not_write_stop_it_before_its_next_record() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut journal = open(dir.path(), 0, 0);
        journal.append("a@b", header()).unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{}\n")
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = journal.append("a@b", Entry::Resumed).unwrap_err();
        assert!(matches!(err, JournalError::Interfered { .. }), "{err}");
        assert!(err.to_string().contains("its last 3 bytes"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // Nor does a journal shorter than when it was read get written.
        drop(journal);
        let lock = RunLock::acquire(dir.path(), "a@b").unwrap();
        let err = Journal::open(lock, 10_000, 1, Arc::new(Redactor::default())).unwrap_err();
        assert!(
            matches!(err, JournalError::Interfered { .. })
                && err.to_string().contains("cut it short"),
            "{err}"
        );
    }
}

//! Following a journal while another process writes it (`kongup watch`, and `kongup run
//! --take-over` waiting for its answer): the records appended since the last look, checked
//! as [`read_journal`] checks a whole journal (numbers in turn, each `prev` the hash of the
//! line before). It only reads: no lock, nothing written, so the driver never waits on it.
//!
//! The driver writes each record in one `write(2)`, newline last, but a reader may see the
//! start of a write before its end: bytes after the last newline are left for the next
//! look, which reads again from the last complete line. A journal whose path names another
//! file (removed and re-created, copied over) or that got shorter than what was read is
//! read again from its start, and said so ([`Update::Replaced`]).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

#[cfg(doc)]
use super::journal::read_journal;
use super::journal::{JournalContents, JournalError, Record, Tail, check_lines};

/// What changed since the last look.
#[derive(Debug)]
pub enum Update {
    /// Records appended after those read before.
    Appended(Vec<Record>),
    /// The journal is not the one read before: every record of the one there now, and why.
    Replaced {
        contents: JournalContents,
        why: String,
    },
}

/// A journal read so far, and where to read on.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    /// The file read, opened once (read-only): a replaced journal is told by its inode.
    file: File,
    identity: (u64, u64),
    /// Bytes of complete records read; anything after is read again next time.
    offset: u64,
    tail: Option<Tail>,
}

impl Follower {
    /// Reads the journal at `path` (as [`read_journal`] does, but a last line without its
    /// newline is a write under way, not a torn one) and follows it from its last complete
    /// record.
    pub fn open(path: &Path) -> Result<(Follower, JournalContents), JournalError> {
        let io = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| JournalError::Io { what, path, source }
        };
        let mut file = File::open(path).map_err(io("open"))?;
        let meta = file.metadata().map_err(io("inspect"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io("read"))?;
        let contents = check_lines(path, whole_lines(&bytes), None)?;
        let follower = Follower {
            path: path.to_path_buf(),
            file,
            identity: (meta.dev(), meta.ino()),
            offset: contents.valid_len,
            tail: contents.tail.clone(),
        };
        Ok((follower, contents))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was appended since the last look (`None`: nothing whole yet), or the journal
    /// read again when it was replaced or cut short. A record that does not follow the last
    /// one read is refused as when reading the whole journal.
    pub fn poll(&mut self) -> Result<Option<Update>, JournalError> {
        let io = |what: &'static str| {
            let path = self.path.clone();
            move |source| JournalError::Io { what, path, source }
        };
        let meta = std::fs::metadata(&self.path).map_err(io("inspect"))?;
        if (meta.dev(), meta.ino()) != self.identity {
            return self
                .reopen("it was replaced (removed and written again, or copied over)")
                .map(Some);
        }
        let len = self.file.metadata().map_err(io("inspect"))?.len();
        if len < self.offset {
            return self
                .reopen(&format!(
                    "it was cut short ({len} bytes, where {} had been read)",
                    self.offset
                ))
                .map(Some);
        }
        if len == self.offset {
            return Ok(None);
        }
        let mut bytes = vec![0; (len - self.offset) as usize];
        let read = self
            .file
            .read_at(&mut bytes, self.offset)
            .map_err(io("read"))?;
        bytes.truncate(read);
        let contents = check_lines(&self.path, whole_lines(&bytes), self.tail.as_ref())?;
        if contents.records.is_empty() {
            return Ok(None);
        }
        self.offset += contents.valid_len;
        self.tail = contents.tail;
        Ok(Some(Update::Appended(contents.records)))
    }

    fn reopen(&mut self, why: &str) -> Result<Update, JournalError> {
        let (follower, contents) = Follower::open(&self.path)?;
        *self = follower;
        Ok(Update::Replaced {
            contents,
            why: format!(
                "the journal {} is not the one read before: {why}; it was read again from its \
                 start",
                self.path.display()
            ),
        })
    }
}

/// The bytes up to the last newline: what follows is a write not finished yet.
fn whole_lines(bytes: &[u8]) -> &[u8] {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use super::*;
    use crate::engine::journal::{Entry, JOURNAL_FILE, Journal};
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

    /// A journal in `dir`, as the engine writes it: the run's first record and `n` more.
    fn journal(dir: &Path, n: usize) -> Journal {
        let lock = RunLock::acquire(dir, "a@b").unwrap();
        let mut journal = Journal::open(lock, 0, 0, Arc::new(Redactor::default())).unwrap();
        journal.append("a@b", header()).unwrap();
        for i in 0..n {
            journal.append("kongup", warning(i)).unwrap();
        }
        journal
    }

    fn appended(update: Option<Update>) -> Vec<Record> {
        match update {
            Some(Update::Appended(records)) => records,
            other => panic!("expected appended records, got {other:?}"),
        }
    }

    #[test]
    fn records_appended_by_the_driver_are_read_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let mut driver = journal(dir.path(), 1);
        let (mut follower, contents) = Follower::open(&dir.path().join(JOURNAL_FILE)).unwrap();
        assert_eq!(contents.records.len(), 2);
        assert!(follower.poll().unwrap().is_none(), "nothing new yet");

        driver.append("kongup", warning(1)).unwrap();
        driver.append("kongup", warning(2)).unwrap();
        let records = appended(follower.poll().unwrap());
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(records[1].entry, warning(2));
        assert!(follower.poll().unwrap().is_none());
        // The driver goes on undisturbed: the follower wrote nothing and locked nothing.
        driver.append("kongup", warning(3)).unwrap();
        assert_eq!(appended(follower.poll().unwrap())[0].seq, 4);
    }

    #[test]
    fn a_line_still_being_written_is_read_again_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        drop(journal(dir.path(), 2));
        let path = dir.path().join(JOURNAL_FILE);
        let whole = std::fs::read(&path).unwrap();
        let lines: Vec<&[u8]> = whole.split_inclusive(|&b| b == b'\n').collect();
        // The first record, and half of the second: a write under way.
        let half = lines[1].len() / 2;
        std::fs::write(&path, [lines[0], &lines[1][..half]].concat()).unwrap();

        let (mut follower, contents) = Follower::open(&path).unwrap();
        assert_eq!(contents.records.len(), 1);
        assert!(
            contents.torn_tail.is_none(),
            "a write under way is no torn line"
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&lines[1][half..lines[1].len() - 1]).unwrap();
        assert!(follower.poll().unwrap().is_none(), "still no newline");
        file.write_all(b"\n").unwrap();
        file.write_all(&lines[2][..3]).unwrap();
        let records = appended(follower.poll().unwrap());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].entry, warning(0));
        file.write_all(&lines[2][3..]).unwrap();
        assert_eq!(appended(follower.poll().unwrap())[0].entry, warning(1));
    }

    #[test]
    fn a_journal_replaced_or_cut_short_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        drop(journal(dir.path(), 2));
        let path = dir.path().join(JOURNAL_FILE);
        let (mut follower, _) = Follower::open(&path).unwrap();

        // Another run's journal put in its place.
        std::fs::remove_file(&path).unwrap();
        drop(journal(dir.path(), 0));
        match follower.poll().unwrap() {
            Some(Update::Replaced { contents, why }) => {
                assert_eq!(contents.records.len(), 1);
                assert!(why.contains("replaced"), "{why}");
            }
            other => panic!("expected the journal read again, got {other:?}"),
        }
        assert!(follower.poll().unwrap().is_none());

        // The same file, cut short.
        let bytes = std::fs::read(&path).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(0).unwrap();
        match follower.poll().unwrap() {
            Some(Update::Replaced { contents, why }) => {
                assert!(contents.records.is_empty());
                assert!(why.contains("cut short"), "{why}");
            }
            other => panic!("expected the journal read again, got {other:?}"),
        }
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(appended(follower.poll().unwrap()).len(), 1);
    }

    #[test]
    fn an_appended_record_that_does_not_follow_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(journal(dir.path(), 1));
        let path = dir.path().join(JOURNAL_FILE);
        let (mut follower, _) = Follower::open(&path).unwrap();
        let last = std::fs::read_to_string(&path).unwrap();
        let last = last.lines().last().unwrap();
        // The last line again, renumbered: its prev is not the hash of the line before.
        let forged = last.replace("\"seq\":1", "\"seq\":2");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(file, "{forged}").unwrap();
        let err = follower.poll().unwrap_err();
        assert!(
            matches!(err, JournalError::Edited { line: 2, .. }),
            "{err:?}"
        );
    }
}

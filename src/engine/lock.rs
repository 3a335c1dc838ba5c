//! One process drives a run at a time: an exclusive `flock` on the run's journal itself
//! (`<run dir>/journal.jsonl`), taken before the journal is read and held until the engine
//! stops. The kernel drops it when the holder dies, even by `kill -9`.
//!
//! Why the journal and not a lock file of its own: the file that must have one writer is
//! the file that is locked, and the engine writes its records through the very descriptor
//! that holds the lock. A separate lock file can be removed while held (a second kongup then
//! locks a new one and appends to the same journal); removing or replacing the journal
//! instead leaves its holder writing to a file that is no longer the journal, which
//! [`RunLock::check`] sees before every record: the holder stops, and no two processes ever
//! append to the same file.
//!
//! Who holds the run (user@host, pid, since when) is written to `<run dir>/lock`, so a
//! second process can name the holder. Removing that file frees nothing; while it is gone
//! the holder is named by the journal's last `session-opened` record (when no
//! `session-closed` follows it).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::journal::{Entry, JOURNAL_FILE, Record};

/// Says who holds the run; the lock itself is on the journal.
pub const LOCK_FILE: &str = "lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// `user@host`.
    pub operator: String,
    pub pid: u32,
    pub since: DateTime<Utc>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {}) since {}",
            self.operator,
            self.pid,
            self.since.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the run in {} is being driven by {}; only one kongup may drive a run (it holds a lock \
         on the run's {JOURNAL_FILE}). Watch it live with `kongup watch --journal {}`; ask its \
         driver to hand it over with `kongup run PLAN --journal {} --take-over`; or wait for \
         it to quit",
        run_dir.display(),
        holder.as_ref().map_or("another process (it has not written its name yet)".to_string(), |h| h.to_string()),
        run_dir.display(),
        run_dir.display(),
    )]
    Held {
        run_dir: PathBuf,
        holder: Option<LockHolder>,
    },
    #[error(
        "could not {what} {}: {source}. Fix the run directory's permissions or free space on \
         its disk, or pass --journal DIR to use another directory",
        path.display()
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the journal {} was replaced while kongup locked it; nothing was written. Run kongup \
         again (and see what replaced the file)",
        path.display()
    )]
    Replaced { path: PathBuf },
}

/// Held for as long as the engine drives the run; the journal writes through it.
#[derive(Debug)]
pub struct RunLock {
    /// The journal, opened to append (`O_APPEND`), exclusively locked.
    journal: Flock<File>,
    path: PathBuf,
    /// Device and inode of the journal that was locked.
    identity: (u64, u64),
    /// The `lock` file as it was written; emptied when the lock goes.
    holder_file: File,
}

impl RunLock {
    /// Locks the journal of the run in `run_dir` (created, empty and mode 0600, if the run
    /// is new) and writes who holds it to `run_dir/lock`.
    pub fn acquire(run_dir: &Path, operator: &str) -> Result<RunLock, LockError> {
        let path = run_dir.join(JOURNAL_FILE);
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { what, path, source }
        };
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open the journal", &path))?;
        let journal = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    run_dir: run_dir.to_path_buf(),
                    holder: holder_of(run_dir),
                });
            }
            Err((_, errno)) => {
                return Err(io_err("lock the journal", &path)(io::Error::from(errno)));
            }
        };
        let meta = journal
            .metadata()
            .map_err(io_err("inspect the journal", &path))?;
        let identity = (meta.dev(), meta.ino());
        // Between the open and the lock, another file may have taken the journal's name
        // (and another kongup its lock): then this lock is on nothing, and the `lock` file
        // names that kongup, so it is left alone.
        if still_named(&path, identity).is_err() {
            return Err(LockError::Replaced { path });
        }
        let lock_path = run_dir.join(LOCK_FILE);
        let mut lock = RunLock {
            journal,
            identity,
            holder_file: OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o600)
                .open(&lock_path)
                .map_err(io_err("open the lock file", &lock_path))?,
            path,
        };
        if created && let Some(dir) = lock.path.parent() {
            // The new journal's directory entry must survive a power loss too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("sync the directory", dir))?;
        }
        let holder = LockHolder {
            operator: operator.to_string(),
            pid: std::process::id(),
            since: Utc::now(),
        };
        let text = serde_json::to_string(&holder).expect("lock holders serialize");
        let file = &mut lock.holder_file;
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(io_err("write the lock file", &lock_path))?;
        Ok(lock)
    }

    /// The journal this lock is on.
    pub fn journal_path(&self) -> &Path {
        &self.path
    }

    /// The locked journal, opened to append: records are written through it.
    pub(super) fn journal_file(&self) -> &File {
        &self.journal
    }

    /// Whether this process still holds the run: the lock is still ours, and the journal's
    /// path still names the file that was locked (not removed, moved away or replaced).
    /// Says what happened when not.
    pub fn check(&self) -> Result<(), String> {
        match self.journal.relock(FlockArg::LockExclusiveNonblock) {
            Ok(()) => {}
            Err(Errno::EWOULDBLOCK) => {
                return Err("its lock was lost, and another process holds it now".into());
            }
            Err(errno) => return Err(format!("its lock cannot be confirmed ({errno})")),
        }
        still_named(&self.path, self.identity)
    }
}

/// Whether `path` still names the file with this device and inode.
fn still_named(path: &Path, identity: (u64, u64)) -> Result<(), String> {
    let replaced = "the file at that path is no longer the one this kongup locked (it was \
                    removed, moved or replaced: copied over, re-created) while this kongup \
                    drove the run";
    match std::fs::metadata(path) {
        Ok(meta) if (meta.dev(), meta.ino()) == identity => Ok(()),
        Ok(_) => Err(replaced.into()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(replaced.into()),
        Err(e) => Err(format!("it cannot be inspected ({e})")),
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The name of a holder that is gone would only mislead; the flock itself goes
        // with the file descriptor, after this.
        let _ = self.holder_file.set_len(0);
    }
}

/// Who holds the run: the `lock` file, else the journal's last open session.
fn holder_of(run_dir: &Path) -> Option<LockHolder> {
    let from_file = || {
        let mut text = String::new();
        File::open(run_dir.join(LOCK_FILE))
            .ok()?
            .read_to_string(&mut text)
            .ok()?;
        serde_json::from_str(&text).ok()
    };
    from_file().or_else(|| last_open_session(&run_dir.join(JOURNAL_FILE)))
}

/// The journal's last `session-opened` record, unless a `session-closed` follows it.
fn last_open_session(journal: &Path) -> Option<LockHolder> {
    let text = std::fs::read_to_string(journal).ok()?;
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Record>(line).ok())
        .find_map(|record| match record.entry {
            Entry::SessionOpened { pid } => Some(Some(LockHolder {
                operator: record.by,
                pid,
                since: record.at,
            })),
            Entry::SessionClosed { .. } => Some(None),
            _ => None,
        })
        .flatten()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStatus {
    Free,
    /// Held; the holder is `None` in the instant between its lock and its name.
    Held(Option<LockHolder>),
}

/// Whether a process drives the run right now, and who.
pub fn lock_status(run_dir: &Path) -> io::Result<LockStatus> {
    let file = match File::open(run_dir.join(JOURNAL_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockStatus::Free),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => Ok(LockStatus::Free),
        Err((_, Errno::EWOULDBLOCK)) => Ok(LockStatus::Held(holder_of(run_dir))),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

/// Whether a process drives the run right now, and who, found without touching the lock:
/// for `kongup watch`, which must never take it (a lock taken only to look, shared and for
/// an instant, would refuse a kongup that starts driving in that instant).
///
/// On Linux the kernel lists every `flock` in `/proc/locks` (proc(5)): an exclusive one on
/// the journal's inode means it is held. Elsewhere, or where that list cannot say (a file
/// system that reports other device numbers), the named holder is asked: its pid still
/// runs (`kill(pid, 0)`, which sends nothing), or it is on another host, where kongup cannot
/// look, and is taken at its word.
pub fn driver_status(run_dir: &Path) -> LockStatus {
    let journal = run_dir.join(JOURNAL_FILE);
    let Ok(meta) = std::fs::metadata(&journal) else {
        return LockStatus::Free;
    };
    let holder = holder_of(run_dir);
    if flock_listed(meta.dev(), meta.ino()) {
        return LockStatus::Held(holder);
    }
    match holder {
        Some(holder) if holder_runs(&holder) => LockStatus::Held(Some(holder)),
        _ => LockStatus::Free,
    }
}

/// Whether `/proc/locks` lists an exclusive `flock` on this device and inode.
fn flock_listed(dev: u64, ino: u64) -> bool {
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return false;
    };
    // `1: FLOCK  ADVISORY  WRITE 4242 fe:00:10010957 0 EOF`; a waiter's line has `->`.
    let id = format!(
        "{:02x}:{:02x}:{ino}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(fields.as_slice(), [_, "FLOCK", _, "WRITE", _, file, ..] if *file == id)
    })
}

/// Whether the named holder still runs: its pid on this host, or a holder on another host
/// (which kongup cannot see).
fn holder_runs(holder: &LockHolder) -> bool {
    let this_host = super::local_operator().0;
    let host = |operator: &str| operator.rsplit_once('@').map(|(_, h)| h.to_string());
    if host(&holder.operator) != host(&this_host) {
        return true;
    }
    let pid = nix::unistd::Pid::from_raw(holder.pid as i32);
    !matches!(nix::sys::signal::kill(pid, None), Err(Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "alice@cp1").unwrap();
        let err = RunLock::acquire(dir.path(), "bob@cp2").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("alice@cp1"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        let LockStatus::Held(Some(holder)) = lock_status(dir.path()).unwrap() else {
            panic!("the lock should be held by alice");
        };
        assert_eq!(holder.operator, "alice@cp1");

        drop(lock);
        assert_eq!(lock_status(dir.path()).unwrap(), LockStatus::Free);
        let again = RunLock::acquire(dir.path(), "bob@cp2");
        assert!(again.is_ok());
    }

    #[test]
    fn the_lock_is_on_the_journal_so_removing_the_lock_file_frees_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "alice@cp1").unwrap();
        assert_eq!(lock.journal_path(), dir.path().join(JOURNAL_FILE));
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        let err = RunLock::acquire(dir.path(), "bob@cp2").unwrap_err();
        // Nothing names alice now (her journal has no session yet), but she still holds it.
        assert!(matches!(err, LockError::Held { holder: None, .. }), "{err}");
        assert_eq!(lock_status(dir.path()).unwrap(), LockStatus::Held(None));
        assert!(lock.check().is_ok());
    }

    #[test]
    fn a_removed_or_replaced_journal_is_no_longer_held() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), "alice@cp1").unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::remove_file(&path).unwrap();
        let why = lock.check().unwrap_err();
        assert!(why.contains("removed, moved or replaced"), "{why}");
        std::fs::write(&path, "").unwrap();
        assert!(lock.check().is_err());
    }

    #[test]
    fn a_run_directory_that_cannot_hold_a_journal_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let message = RunLock::acquire(&dir.path().join("missing"), "alice@cp1")
            .unwrap_err()
            .to_string();
        assert!(message.contains("could not open the journal"), "{message}");
        assert!(message.contains("--journal DIR"), "{message}");
    }
}

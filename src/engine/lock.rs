//! One process drives a run at a time: an exclusive `flock` on `<run dir>/lock`, whose
//! content says who holds it (user@host, pid, since when) so a second process can name
//! the holder. The kernel drops the lock when the holder dies, even by `kill -9`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

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
        "the run in {} is being driven by {}; only one kongup may drive a run: wait for it \
         to quit, or stop that process",
        run_dir.display(),
        holder.as_ref().map_or("another process (it has not written its name yet)".to_string(), |h| h.to_string())
    )]
    Held {
        run_dir: PathBuf,
        holder: Option<LockHolder>,
    },
    #[error("could not {what} the lock file {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Held for as long as the engine drives the run.
#[derive(Debug)]
pub struct RunLock {
    file: Flock<File>,
}

impl RunLock {
    pub fn acquire(run_dir: &Path, operator: &str) -> Result<RunLock, LockError> {
        let path = run_dir.join(LOCK_FILE);
        let io_err = |what: &'static str| {
            let path = path.clone();
            move |source| LockError::Io { what, path, source }
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open"))?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    run_dir: run_dir.to_path_buf(),
                    holder: read_holder(&path),
                });
            }
            Err((_, errno)) => return Err(io_err("lock")(io::Error::from(errno))),
        };
        let holder = LockHolder {
            operator: operator.to_string(),
            pid: std::process::id(),
            since: Utc::now(),
        };
        let text = serde_json::to_string(&holder).expect("lock holders serialize");
        file.set_len(0).map_err(io_err("write"))?;
        file.rewind().map_err(io_err("write"))?;
        file.write_all(text.as_bytes()).map_err(io_err("write"))?;
        file.sync_data().map_err(io_err("sync"))?;
        Ok(RunLock { file })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The name of a holder that is gone would only mislead; the flock itself goes
        // with the file descriptor.
        let _ = self.file.set_len(0);
    }
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStatus {
    Free,
    /// Held; the holder is `None` in the instant between its lock and its name.
    Held(Option<LockHolder>),
}

/// Whether a process drives the run right now, and who.
pub fn lock_status(run_dir: &Path) -> io::Result<LockStatus> {
    let path = run_dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockStatus::Free),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => Ok(LockStatus::Free),
        Err((_, Errno::EWOULDBLOCK)) => Ok(LockStatus::Held(read_holder(&path))),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
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
}

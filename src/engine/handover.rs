//! Handing a run over: `kongup run --take-over` asks the kongup that drives the run to let
//! it go, and waits for the answer.
//!
//! The request is a file in the run directory, `handover`, created with `O_EXCL` by the
//! kongup that asks (a would-be driver, so it may write there; a watcher never does). The
//! driver looks for it every second ([`CHECK_INTERVAL`]), journals it and asks its operator;
//! the answer is journaled (`handed-over`, `handover-declined`), and the asking kongup,
//! which follows the journal, reads it there. No signal is sent: one would kill a kongup
//! from before handovers (SIGUSR1's default action), or an unrelated process that took the
//! holder's pid, and cannot reach a driver of another Unix user; a stat a second costs the
//! driver nothing. Unanswered after [`REQUEST_LAPSES`], the request lapses; the asking
//! kongup removes its file however it ends, and a file older than that (its kongup died)
//! is ignored by the driver and replaced by the next request.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::follow::{Follower, Update};
use super::journal::{Entry, JOURNAL_FILE, JournalError};
use super::lock::{LockStatus, driver_status};
use super::watcher::Wake;

/// The request's file in the run directory.
pub const HANDOVER_FILE: &str = "handover";
/// How long a request waits for the driver's answer.
pub const REQUEST_LAPSES: Duration = Duration::from_secs(60);
/// How often the driver looks for a request.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A request to take the run over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverRequest {
    /// Names this request in the journal's records.
    pub id: String,
    /// `user@host` of the kongup that asks.
    pub operator: String,
    pub pid: u32,
    pub at: DateTime<Utc>,
}

impl HandoverRequest {
    /// When it lapses unanswered.
    pub fn lapses_at(&self) -> DateTime<Utc> {
        self.at + TimeDelta::from_std(REQUEST_LAPSES).expect("60 s is a time delta")
    }

    pub fn lapsed(&self, now: DateTime<Utc>) -> bool {
        now >= self.lapses_at()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error(
        "{} already asks to take this run over (since {}): wait for that request to be \
         answered (it lapses within a minute), then try again",
        .0.operator,
        .0.at.with_timezone(&chrono::Local).format("%H:%M:%S")
    )]
    AlreadyAsked(HandoverRequest),
    #[error(
        "could not {what} {}: {source}. Asking to take a run over needs write access to its \
         directory (a kongup that drives it writes there); watch it with `kongup watch \
         --journal {}` instead",
        path.display(),
        path.parent().unwrap_or(Path::new(".")).display()
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The open request in `run_dir`, if any (whatever its age).
pub fn read_request(run_dir: &Path) -> Option<HandoverRequest> {
    let text = std::fs::read_to_string(run_dir.join(HANDOVER_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Asks the driver of the run in `run_dir` to hand it over to `operator`.
pub fn ask(run_dir: &Path, operator: &str) -> Result<HandoverRequest, HandoverError> {
    let path = run_dir.join(HANDOVER_FILE);
    let request = HandoverRequest {
        id: uuid::Uuid::new_v4().to_string(),
        operator: operator.to_string(),
        pid: std::process::id(),
        at: Utc::now(),
    };
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            // Read by the driver, who may be another Unix user; it holds no secret.
            .mode(0o644)
            .open(&path)
    };
    let mut file = match create() {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match read_request(run_dir) {
                Some(open) if !open.lapsed(request.at) => {
                    return Err(HandoverError::AlreadyAsked(open));
                }
                // Lapsed, or not a request at all: its kongup is gone.
                _ => {
                    let _ = std::fs::remove_file(&path);
                    create().map_err(|source| HandoverError::Io {
                        what: "create",
                        path: path.clone(),
                        source,
                    })?
                }
            }
        }
        Err(source) => {
            return Err(HandoverError::Io {
                what: "create",
                path,
                source,
            });
        }
    };
    let text = serde_json::to_string(&request).expect("requests serialize");
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| HandoverError::Io {
            what: "write",
            path: path.clone(),
            source,
        })?;
    Ok(request)
}

/// Removes the request's file, if it is still this request's.
pub fn withdraw(run_dir: &Path, request: &HandoverRequest) {
    if read_request(run_dir).is_some_and(|open| open.id == request.id) {
        let _ = std::fs::remove_file(run_dir.join(HANDOVER_FILE));
    }
}

/// Why the run was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum TakeOverError {
    #[error(transparent)]
    Ask(#[from] HandoverError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(
        "{driver} did not hand the run over: {reason}. Watch it with `kongup watch --journal \
         {}`, or ask again later",
        run_dir.display()
    )]
    Declined {
        driver: String,
        reason: String,
        run_dir: PathBuf,
    },
    #[error(
        "{driver} did not answer within {} s: the request lapsed and the run stays theirs. \
         Watch it with `kongup watch --journal {}`; if that kongup is gone for good (its \
         terminal lost, nobody at it), stop it (kill {pid}: a running step ends first) and \
         run again",
        REQUEST_LAPSES.as_secs(),
        run_dir.display()
    )]
    Lapsed {
        driver: String,
        pid: u32,
        run_dir: PathBuf,
    },
    #[error("the request to take the run over was withdrawn (interrupted)")]
    Withdrawn,
}

/// Removes the request's file however the wait ends.
struct Asked<'a> {
    run_dir: &'a Path,
    request: HandoverRequest,
}

impl Drop for Asked<'_> {
    fn drop(&mut self) {
        withdraw(self.run_dir, &self.request);
    }
}

/// `kongup run --take-over`: asks the kongup that drives the run in `run_dir` to hand it
/// over to `operator`, and returns once nobody drives it (at once when nobody did). The
/// answer is read in the journal; `say` tells the operator what happens meanwhile.
pub async fn take_over(
    run_dir: &Path,
    operator: &str,
    mut say: impl FnMut(&str),
) -> Result<(), TakeOverError> {
    let LockStatus::Held(holder) = driver_status(run_dir) else {
        return Ok(());
    };
    let (driver, pid) = holder
        .map(|h| (h.operator, h.pid))
        .unwrap_or_else(|| ("the kongup that drives it".to_string(), 0));
    let (mut follower, _) = Follower::open(&run_dir.join(JOURNAL_FILE))?;
    let asked = Asked {
        run_dir,
        request: ask(run_dir, operator)?,
    };
    say(&format!(
        "asked {driver} (pid {pid}) to hand the run over; waiting up to {} s for the answer \
         (Ctrl-C withdraws the request)",
        REQUEST_LAPSES.as_secs()
    ));
    let mut wake = Wake::new(run_dir);
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|source| HandoverError::Io {
        what: "listen for SIGINT while waiting on",
        path: run_dir.join(HANDOVER_FILE),
        source,
    })?;
    // A moment more than the driver's own count, so its lapse is journaled first.
    let deadline = tokio::time::Instant::now() + REQUEST_LAPSES + CHECK_INTERVAL * 2;
    let mut handed = false;
    loop {
        tokio::select! {
            _ = wake.next() => {}
            _ = interrupt.recv() => return Err(TakeOverError::Withdrawn),
        }
        if let Some(Update::Appended(records)) = follower.poll()? {
            for record in records {
                match record.entry {
                    Entry::HandedOver { request, .. } if request == asked.request.id => {
                        handed = true;
                        say(&format!(
                            "{driver} hands the run over; waiting for its kongup to stop (a \
                             running step runs to its end first)"
                        ));
                    }
                    Entry::HandoverDeclined {
                        request, reason, ..
                    } if request == asked.request.id => {
                        return Err(TakeOverError::Declined {
                            driver,
                            reason,
                            run_dir: run_dir.to_path_buf(),
                        });
                    }
                    _ => {}
                }
            }
        }
        if driver_status(run_dir) == LockStatus::Free {
            return Ok(());
        }
        if !handed && tokio::time::Instant::now() >= deadline {
            return Err(TakeOverError::Lapsed {
                driver,
                pid,
                run_dir: run_dir.to_path_buf(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_and_a_lapsed_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = ask(dir.path(), "bob@b").unwrap();
        assert_eq!(read_request(dir.path()), Some(first.clone()));
        let err = ask(dir.path(), "carol@c").unwrap_err();
        assert!(
            matches!(&err, HandoverError::AlreadyAsked(open) if open.operator == "bob@b"),
            "{err}"
        );

        // Bob's kongup died a minute ago and left its file.
        let mut old = first.clone();
        old.at -= TimeDelta::seconds(61);
        std::fs::write(
            dir.path().join(HANDOVER_FILE),
            serde_json::to_string(&old).unwrap(),
        )
        .unwrap();
        let second = ask(dir.path(), "carol@c").unwrap();
        assert_eq!(read_request(dir.path()).unwrap().operator, "carol@c");

        // Withdrawing someone else's request leaves it.
        withdraw(dir.path(), &first);
        assert!(read_request(dir.path()).is_some());
        withdraw(dir.path(), &second);
        assert!(read_request(dir.path()).is_none());
    }
}

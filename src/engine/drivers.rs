//! Who drove a run, from when to when, and how each stopped: read from the journal's
//! session records (`session-opened`, `handed-over`, `session-closed`, `lock-taken-over`),
//! for `kongup status` and `kongup report`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::journal::{Entry, Record};

/// One kongup's turn at driving the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    /// `user@host`.
    pub operator: String,
    pub pid: u32,
    pub from: DateTime<Utc>,
    /// When its session closed (or its successor found it gone); `None` while it drives,
    /// or when nothing says when it stopped.
    pub to: Option<DateTime<Utc>>,
    /// How its turn ended, in words; `None` while it drives.
    pub ended: Option<String>,
    /// Whom it handed the run to.
    pub handed_to: Option<String>,
}

/// Every session of the run, in order.
pub fn drivers(records: &[Record]) -> Vec<Driver> {
    let mut drivers: Vec<Driver> = Vec::new();
    let open = |drivers: &mut Vec<Driver>| -> Option<usize> {
        drivers
            .last()
            .filter(|d| d.ended.is_none())
            .map(|_| drivers.len() - 1)
    };
    for record in records {
        match &record.entry {
            Entry::SessionOpened { pid } => {
                if let Some(last) = open(&mut drivers) {
                    // Only a crash leaves a session open; a kongup that journaled nothing
                    // of it (before `lock-taken-over` existed) still says so.
                    drivers[last].ended = Some(format!(
                        "stopped without closing its session; {} drove next",
                        record.by
                    ));
                }
                drivers.push(Driver {
                    operator: record.by.clone(),
                    pid: *pid,
                    from: record.at,
                    to: None,
                    ended: None,
                    handed_to: None,
                });
            }
            Entry::LockTakenOver { .. } => {
                if let Some(last) = open(&mut drivers) {
                    drivers[last].ended = Some(format!(
                        "stopped without closing its session (a crash, kill -9 or power \
                         loss); {} took the run over at {}",
                        record.by,
                        super::status::time(&record.at)
                    ));
                }
            }
            Entry::HandedOver { to, .. } => {
                if let Some(last) = open(&mut drivers) {
                    drivers[last].handed_to = Some(to.clone());
                }
            }
            Entry::SessionClosed { reason } => {
                if let Some(last) = open(&mut drivers) {
                    let driver = &mut drivers[last];
                    driver.to = Some(record.at);
                    driver.ended = Some(match &driver.handed_to {
                        Some(to) => format!("handed over to {to}"),
                        None => reason.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    drivers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, minute: u32, by: &str, entry: Entry) -> Record {
        Record {
            seq,
            at: format!("2025-03-01T04:{minute:02}:00Z").parse().unwrap(),
            by: by.into(),
            entry,
        }
    }

    #[test]
    fn sessions_handovers_and_crashes_make_the_drivers() {
        let records = vec![
            record(1, 0, "alice@a", Entry::SessionOpened { pid: 1 }),
            record(
                2,
                10,
                "bob@b",
                Entry::HandoverRequested {
                    request: "r1".into(),
                    pid: 2,
                },
            ),
            record(
                3,
                10,
                "alice@a",
                Entry::HandedOver {
                    request: "r1".into(),
                    to: "bob@b".into(),
                },
            ),
            record(
                4,
                11,
                "kongup",
                Entry::SessionClosed {
                    reason: "handed over to bob@b".into(),
                },
            ),
            record(5, 11, "bob@b", Entry::SessionOpened { pid: 2 }),
            record(
                6,
                30,
                "carol@c",
                Entry::LockTakenOver {
                    from: "bob@b".into(),
                    pid: 2,
                    since: "2025-03-01T04:11:00Z".parse().unwrap(),
                },
            ),
            record(7, 30, "carol@c", Entry::SessionOpened { pid: 3 }),
        ];
        let drivers = drivers(&records);
        assert_eq!(drivers.len(), 3, "{drivers:#?}");
        assert_eq!(drivers[0].operator, "alice@a");
        assert_eq!(drivers[0].ended.as_deref(), Some("handed over to bob@b"));
        assert_eq!(drivers[0].to, Some(records[3].at));
        assert_eq!(drivers[1].operator, "bob@b");
        assert!(
            drivers[1]
                .ended
                .as_deref()
                .is_some_and(|e| e.contains("carol@c took the run over")),
            "{:?}",
            drivers[1].ended
        );
        assert_eq!(drivers[2].ended, None, "carol still drives");
    }
}

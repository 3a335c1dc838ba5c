//! The PostgreSQL versions Kong runs on: the minimum its source enforces, and the range its
//! documentation says was tested (docs/kong/migrations-and-paths.md §4).

use std::fmt;

use crate::kong::pg::{PgError, PgTarget};
use crate::plan::version::KongVersion;

/// A PostgreSQL server's version, as `SHOW server_version_num` gives it (`150004`,
/// `90624`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PgServerVersion {
    pub num: u32,
}

impl PgServerVersion {
    /// The release line: `(15, 0)` for 15.x, `(9, 6)` for 9.6.x (before 10 a release line
    /// had two numbers; Kong reads it the same way, connector.lua:296-304 @ 3.9.1).
    pub fn line(self) -> (u32, u32) {
        let major = self.num / 10000;
        if major < 10 {
            (major, self.num / 100 % 100)
        } else {
            (major, 0)
        }
    }

    /// Asks the server.
    pub async fn read(target: &PgTarget) -> Result<PgServerVersion, PgError> {
        let client = target.connect().await?;
        let rows = target
            .query(
                &client,
                "reading the server's version",
                "SELECT current_setting('server_version_num')::int",
            )
            .await?;
        let num: i32 = rows.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(PgServerVersion {
            num: u32::try_from(num).unwrap_or(0),
        })
    }
}

impl fmt::Display for PgServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let major = self.num / 10000;
        if major < 10 {
            write!(f, "{major}.{}.{}", self.num / 100 % 100, self.num % 100)
        } else {
            write!(f, "{major}.{}", self.num % 100)
        }
    }
}

/// Kong's minimum: `DATABASE.POSTGRES.MIN = "9.5"` in kong/constants.lua (2.8.5 l.177,
/// 3.4.2 l.191, 3.9.1 and master l.201), enforced by `DB:check_version_compat`
/// (kong/db/init.lua @ 3.9.1) on every connection. No maximum is enforced anywhere.
pub const KONG_MIN: (u32, u32) = (9, 5);

/// The PostgreSQL majors Kong's documentation lists as supported for a Kong line: from the
/// docs, not from Kong's source. Lines before 2.8 have no table kongup knows.
fn documented_range(kong: KongVersion) -> Option<(u32, u32, &'static str)> {
    match kong.minor_line() {
        // docs.konghq.com source (github.com/Kong/docs.konghq.com @ f9d47c57ff, 2025-04-29):
        // app/_data/tables/support/gateway/third-party.yml (the default list, used by
        // versions/28.yml and 32.yml) and versions/33.yml.
        (2, 8) | (3, 0..=3) => Some((
            12,
            15,
            "docs.konghq.com/gateway/<version>/support/third-party/ (docs, not source)",
        )),
        // versions/34.yml through versions/310.yml, same commit.
        (3, 4..=10) => Some((
            12,
            16,
            "docs.konghq.com/gateway/<version>/support/third-party/ (docs, not source)",
        )),
        // The current releases' page; not checked per release.
        (3, 11..) => Some((
            13,
            17,
            "https://developer.konghq.com/gateway/third-party-support (docs, current releases)",
        )),
        _ => None,
    }
}

/// What the server's version means for an upgrade from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgVersionCheck {
    /// Below Kong's minimum: every `kong` command would fail on it.
    pub error: Option<String>,
    /// Outside the range Kong's documentation lists for one of the versions.
    pub warnings: Vec<String>,
    /// One line on what was checked.
    pub note: String,
}

pub fn check_server(server: PgServerVersion, from: KongVersion, to: KongVersion) -> PgVersionCheck {
    let mut check = PgVersionCheck::default();
    if server.line() < KONG_MIN {
        check.error = Some(format!(
            "the database runs PostgreSQL {server}, below Kong's minimum {}.{}: every `kong` command on it fails with \"Kong requires postgres {}.{} or greater\" (kong/constants.lua). Upgrade PostgreSQL first",
            KONG_MIN.0, KONG_MIN.1, KONG_MIN.0, KONG_MIN.1
        ));
    }
    let major = server.line().0;
    let mut ranges = Vec::new();
    let versions = if from.minor_line() == to.minor_line() {
        vec![to]
    } else {
        vec![from, to]
    };
    for kong in versions {
        let line = format!("{}.{}", kong.major, kong.minor);
        match documented_range(kong) {
            Some((low, high, source)) => {
                ranges.push(format!("{line}: {low} to {high}"));
                if !(low..=high).contains(&major) {
                    check.warnings.push(format!(
                        "the database runs PostgreSQL {server}, outside the PostgreSQL versions Kong's documentation lists for Kong {line} ({low} to {high}; {source}): Kong only requires {}.{} or later, but this combination is not one Kong says it tested. Rehearse the upgrade on a copy first",
                        KONG_MIN.0, KONG_MIN.1
                    ));
                }
            }
            None => ranges.push(format!("{line}: no documented range known to kongup")),
        }
    }
    check.note = format!(
        "PostgreSQL {server}: Kong's minimum is {}.{}; documented for Kong {}",
        KONG_MIN.0,
        KONG_MIN.1,
        ranges.join(", ")
    );
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KongVersion {
        s.parse().unwrap()
    }

    #[test]
    fn server_version_num_reads_as_postgresql_prints_it() {
        assert_eq!(PgServerVersion { num: 150004 }.to_string(), "15.4");
        assert_eq!(PgServerVersion { num: 90624 }.to_string(), "9.6.24");
        assert_eq!(PgServerVersion { num: 90624 }.line(), (9, 6));
        assert_eq!(PgServerVersion { num: 170002 }.line(), (17, 0));
    }

    #[test]
    fn below_the_minimum_is_an_error_outside_the_documented_range_a_warning() {
        let old = check_server(PgServerVersion { num: 90412 }, v("3.4.2"), v("3.9.1"));
        assert!(
            old.error
                .as_deref()
                .unwrap()
                .contains("below Kong's minimum 9.5"),
            "{old:?}"
        );
        let fine = check_server(
            PgServerVersion { num: 150004 },
            v("3.4.3.12"),
            v("3.10.0.2"),
        );
        assert_eq!((fine.error, fine.warnings.len()), (None, 0));
        assert_eq!(
            fine.note,
            "PostgreSQL 15.4: Kong's minimum is 9.5; documented for Kong 3.4: 12 to 16, 3.10: 12 to 16"
        );
        // 17 is newer than what the docs list for 3.4 and 3.10.
        let new = check_server(
            PgServerVersion { num: 170002 },
            v("3.4.3.12"),
            v("3.10.0.2"),
        );
        assert_eq!(new.error, None);
        assert_eq!(new.warnings.len(), 2, "{new:?}");
        assert!(new.warnings[0].contains("Kong 3.4 (12 to 16"), "{new:?}");
        assert!(new.warnings[0].contains("(docs, not source)"), "{new:?}");
        // 9.6 is above the minimum but below every documented range.
        let old = check_server(PgServerVersion { num: 90624 }, v("2.8.4"), v("3.4.0"));
        assert_eq!(old.error, None);
        assert_eq!(old.warnings.len(), 2);
        // A line kongup has no table for is only checked against the minimum.
        let unknown = check_server(PgServerVersion { num: 110000 }, v("2.5.0"), v("2.6.0"));
        assert!(unknown.warnings.is_empty());
        assert!(
            unknown
                .note
                .contains("2.6: no documented range known to kongup")
        );
    }
}

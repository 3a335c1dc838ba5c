//! What kongup's own automation of steps reads: `migrations` (the `kong migrations`
//! runner) and `backup` (what the backup steps copy besides the database).

use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::read::{boolean, duration, file_path, integer, mapping, string_list, text};
use super::yaml::{Node, Value};
use super::{Loader, optional};
use crate::plan::model::defaults;
use crate::plan::model::{BackupSpec, MigrationsSpec};

impl Loader {
    pub(super) fn migrations(&mut self, node: &Node) -> Option<MigrationsSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "migrations",
            Some(&[
                "kong_binary",
                "extra_args",
                "db_timeout",
                "force",
                "timeout",
            ]),
        )?;
        let kong_binary = optional(
            f.get("kong_binary"),
            defaults::KONG_BINARY.to_string(),
            |n| text(d, n, "migrations.kong_binary"),
        );
        let extra_args = optional(f.get("extra_args"), Vec::new(), |n| {
            string_list(d, n, "migrations.extra_args")
        });
        let db_timeout = optional(f.get("db_timeout"), defaults::DB_TIMEOUT_SECS, |n| {
            seconds(d, n, "migrations.db_timeout")
        });
        let force = optional(f.get("force"), false, |n| boolean(d, n, "migrations.force"));
        let timeout = optional(f.get("timeout"), defaults::MIGRATIONS_TIMEOUT, |n| {
            duration(d, n, "migrations.timeout")
        });
        if let (Some(db_timeout), Some(timeout)) = (db_timeout, timeout)
            && timeout <= Duration::from_secs(u64::from(db_timeout))
        {
            d.error_with_hint(
                f.key_pos("timeout").or(f.key_pos("db_timeout")).unwrap_or(f.pos),
                format!(
                    "`migrations.timeout` ({}) is not longer than `migrations.db_timeout` ({db_timeout}s): kongup would stop the migration while Kong still waits for the database",
                    humantime::format_duration(timeout)
                ),
                "make `timeout` longer than `db_timeout`",
            );
            return None;
        }
        Some(MigrationsSpec {
            kong_binary: kong_binary?,
            extra_args: extra_args?,
            db_timeout: db_timeout?,
            force: force?,
            timeout: timeout?,
        })
    }

    pub(super) fn backup(&mut self, node: &Node) -> Option<BackupSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "backup",
            Some(&["declarative_config", "kong_conf", "keyring"]),
        )?;
        let declarative_config = match f.get("declarative_config") {
            Some(n) => file_path(d, n, "backup.declarative_config").map(Some),
            None => Some(None),
        };
        let kong_conf = match f.get("kong_conf") {
            Some(n) => file_path(d, n, "backup.kong_conf").map(Some),
            None => Some(None),
        };
        let keyring = optional(f.get("keyring"), Vec::new(), |n| {
            string_list(d, n, "backup.keyring").map(|v| v.into_iter().map(Into::into).collect())
        });
        Some(BackupSpec {
            declarative_config: declarative_config?,
            kong_conf: kong_conf?,
            keyring: keyring?,
        })
    }
}

/// Whole seconds, written as a number (`600`) or a duration (`10m`).
fn seconds(d: &mut Diagnostics, node: &Node, path: &str) -> Option<u32> {
    if let Value::Scalar {
        text,
        quoted: false,
    } = &node.value
        && text.bytes().all(|b| b.is_ascii_digit())
    {
        return integer(d, node, path, 1u32..=u32::MAX);
    }
    let value = duration(d, node, path)?;
    if value.subsec_nanos() != 0 || value.as_secs() > u64::from(u32::MAX) {
        d.error(
            node.pos,
            format!("`{path}` must be a whole number of seconds"),
        );
        return None;
    }
    Some(value.as_secs() as u32)
}

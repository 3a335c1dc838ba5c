//! What kongup's own automation of steps reads: `migrations` (the `kong migrations`
//! runner) and `backup` (what the backup steps copy besides the database).

use std::time::Duration;

use super::diagnostics::Diagnostics;
use super::read::{boolean, duration, file_path, integer, mapping, string_list, text};
use super::yaml::{Node, Value};
use super::{Loader, optional};
use crate::kong::migrations::{effective_timeouts, option_in};
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
        let spec = MigrationsSpec {
            kong_binary: kong_binary?,
            extra_args: extra_args?,
            db_timeout: db_timeout?,
            force: force?,
            timeout: timeout?,
        };
        let args_pos = f.key_pos("extra_args").unwrap_or(f.pos);
        for name in ["db-timeout", "lock-timeout"] {
            if let Some(value) = option_in(&spec.extra_args, name)
                && value.parse::<u64>().is_err()
            {
                d.error_with_hint(
                    args_pos,
                    format!(
                        "`--{name} {value}` in `migrations.extra_args` is not a whole number of seconds"
                    ),
                    format!("write `--{name}` and a number of seconds, e.g. `[--{name}, '600']`"),
                );
                return None;
            }
        }
        let timeouts = effective_timeouts(&spec);
        if spec.timeout <= Duration::from_secs(timeouts.db_secs) {
            let (db, pos) = if timeouts.db_in_args {
                (
                    format!(
                        "the database timeout ({}s, `--db-timeout` in `migrations.extra_args`)",
                        timeouts.db_secs
                    ),
                    args_pos,
                )
            } else {
                (
                    format!("`migrations.db_timeout` ({}s)", timeouts.db_secs),
                    f.key_pos("timeout")
                        .or(f.key_pos("db_timeout"))
                        .unwrap_or(f.pos),
                )
            };
            d.error_with_hint(
                pos,
                format!(
                    "`migrations.timeout` ({}) is not longer than {db}: kongup would stop the migration while Kong still waits for the database",
                    humantime::format_duration(spec.timeout)
                ),
                "make `timeout` longer than the database timeout",
            );
            return None;
        }
        // Kong's lock expires after --lock-timeout and is never renewed: a lock shorter
        // than one query lets a second `up` start beside a running one
        // (docs/kong/migrations-and-paths.md §1).
        if timeouts.lock_in_args && timeouts.lock_secs < timeouts.db_secs {
            d.error_with_hint(
                args_pos,
                format!(
                    "`--lock-timeout {}` in `migrations.extra_args` is shorter than the database timeout ({}s): Kong's migrations lock expires after --lock-timeout and is never renewed, so another `kong migrations up` could start beside a migration still running",
                    timeouts.lock_secs, timeouts.db_secs
                ),
                "leave --lock-timeout out (kongup passes `migrations.timeout`), or make it at least the database timeout",
            );
            return None;
        }
        Some(spec)
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

//! `kong migrations up` / `finish`: the command kongup runs on a Y node's executor, what
//! Kong's output means, and the check of `schema_meta` afterwards.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::kong::pg::{self, PgError, PgTarget};
use crate::kong::schema::SchemaState;
use crate::plan::model::{CommandLine, MigrationsSpec};
use crate::plan::steps::MigrationsCommand;

/// Kong prints this (and exits 0) when another node holds the migrations lock.
pub const LOCK_HELD_MESSAGE: &str = "aborted: another node is performing database changes";
/// Kong's error when `up` finds migrations of an earlier `up` still pending.
pub const PENDING_BLOCKS_UP_MESSAGE: &str =
    "Database has pending migrations; run 'kong migrations finish'";

/// What the `locks` table is, how to look at it and how to clear it safely.
pub const LOCKS_EXPLANATION: &str = "`kong migrations` takes a cluster-wide lock: a row with key 'migrations' in the `locks` table of Kong's database, with the owner's id and an expiry time (`ttl`). Another migrations command is running (another host, a Kubernetes Job or Helm hook, an init container), or one was killed and left its row behind. Look at it with: SELECT key, owner, ttl, ttl < now() AS expired FROM locks WHERE key = 'migrations'; An expired row is removed by Kong itself on the next attempt, so waiting past `ttl` and retrying is the safe fix. Delete it by hand (DELETE FROM locks WHERE key = 'migrations';) only once you are sure no migrations command runs anywhere: two running at once can corrupt the schema.";

/// What a line of `kong migrations` output means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnosis {
    /// Another node holds the migrations lock (Kong exits 0 all the same).
    LockHeld,
    /// `up` refused: an earlier `up` was never finished.
    PendingBlocksUp,
    /// The database has no Kong schema.
    NeedsBootstrap,
    /// A database call timed out half-way.
    DbTimeout,
}

impl Diagnosis {
    /// Reads one output line.
    pub fn of_line(line: &str) -> Option<Diagnosis> {
        if line.contains(LOCK_HELD_MESSAGE) {
            Some(Diagnosis::LockHeld)
        } else if line.contains(PENDING_BLOCKS_UP_MESSAGE) && !line.contains("when ready") {
            // "…run 'kong migrations finish' when ready" is what a successful `up` says.
            Some(Diagnosis::PendingBlocksUp)
        } else if line.contains("Database needs bootstrapping") {
            Some(Diagnosis::NeedsBootstrap)
        } else if line.contains("timeout") && (line.contains("Error") || line.contains("error")) {
            Some(Diagnosis::DbTimeout)
        } else {
            None
        }
    }

    pub fn explain(self) -> String {
        match self {
            Diagnosis::LockHeld => format!(
                "Kong did not run the migrations: \"{LOCK_HELD_MESSAGE}\". {LOCKS_EXPLANATION}"
            ),
            Diagnosis::PendingBlocksUp => "Kong refused `migrations up`: migrations from an earlier `up` are still pending, because `kong migrations finish` of that upgrade never ran. Finish the earlier upgrade first (with the version that ran its `up`), then retry.".to_string(),
            Diagnosis::NeedsBootstrap => "Kong says the database needs bootstrapping: Y's kong.conf points at an empty database, or at the wrong one. Check pg_host, pg_port and pg_database on Y; kongup never runs `bootstrap` over an upgrade.".to_string(),
            Diagnosis::DbTimeout => "A database call timed out during the migrations. Raise the plan's migrations.db_timeout (passed as --db-timeout), check the database's load, then look at `kongup db status` before retrying: a migration cut off half-way may need Kong support.".to_string(),
        }
    }
}

/// A plan command kongup will not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "kongup will not run `{shown}`: `kong migrations {verb}` destroys the database's contents. An upgrade never needs it; remove it from the plan"
)]
pub struct ForbiddenCommand {
    pub shown: String,
    pub verb: &'static str,
}

const MIGRATIONS_VERBS: &[&str] = &[
    "bootstrap",
    "up",
    "finish",
    "list",
    "status",
    "reset",
    "migrate-apis",
];

/// Refuses `kong migrations reset` and `kong migrations bootstrap -f/--force`, whether
/// written as an argument vector or inside a shell string.
pub fn check_command(command: &CommandLine) -> Result<(), ForbiddenCommand> {
    let words: Vec<String> = match command {
        CommandLine::Argv(argv) => argv.clone(),
        CommandLine::Shell(script) => script
            .split(|c: char| c.is_whitespace() || ";&|()`'\"".contains(c))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect(),
    };
    // Each `migrations` word starts a candidate; in a shell string the command ends at a
    // separator, so look only until the next `migrations` (or the end).
    for (index, word) in words.iter().enumerate() {
        if word != "migrations" {
            continue;
        }
        let rest: Vec<&str> = words[index + 1..]
            .iter()
            .map(String::as_str)
            .take_while(|w| *w != "migrations")
            .collect();
        let verb = rest.iter().find(|w| MIGRATIONS_VERBS.contains(w)).copied();
        let forced = rest.iter().any(|w| *w == "-f" || *w == "--force");
        let forbidden = match verb {
            Some("reset") => Some("reset"),
            Some("bootstrap") if forced => Some("bootstrap -f"),
            _ => None,
        };
        if let Some(verb) = forbidden {
            return Err(ForbiddenCommand {
                shown: command.display(),
                verb,
            });
        }
    }
    Ok(())
}

/// `kong migrations up|finish` from the plan: the binary, the extra arguments, then
/// `--db-timeout N` unless the extra arguments set it, and `-f` when plugins were added.
pub fn build_command(spec: &MigrationsSpec, command: MigrationsCommand) -> CommandLine {
    let verb = match command {
        MigrationsCommand::Up => "up",
        MigrationsCommand::Finish => "finish",
    };
    let mut argv = vec![spec.kong_binary.clone(), "migrations".into(), verb.into()];
    argv.extend(spec.extra_args.iter().cloned());
    let sets_timeout = spec
        .extra_args
        .iter()
        .any(|a| a == "--db-timeout" || a.starts_with("--db-timeout="));
    if !sets_timeout {
        argv.push("--db-timeout".into());
        argv.push(spec.db_timeout.to_string());
    }
    let forced = spec.extra_args.iter().any(|a| a == "-f" || a == "--force");
    if spec.force && !forced {
        argv.push("-f".into());
    }
    CommandLine::Argv(argv)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationsError {
    #[error(transparent)]
    Forbidden(#[from] ForbiddenCommand),
    #[error("could not run `{command}`: {source}")]
    Exec {
        command: String,
        #[source]
        source: ExecError,
    },
    #[error("`{command}` on {executor} {how}. {explanation}")]
    Failed {
        command: String,
        executor: String,
        how: String,
        diagnosis: Option<Diagnosis>,
        explanation: String,
    },
}

/// A run that ended well: what it printed that matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationsRun {
    pub command: String,
    pub outcome: ExitOutcome,
    /// Kong said "Database is already up-to-date": `up` found nothing new to run.
    pub up_to_date: bool,
}

/// What `kong migrations up` prints when the version brings no new migrations.
pub const UP_TO_DATE_MESSAGE: &str = "Database is already up-to-date";

/// Runs `kong migrations up|finish` on `executor` (a Y node's), streaming its output to
/// `lines` as it comes. `env` carries the database settings and password (e.g.
/// `PgTarget::kong_env`), never argv. Fails when Kong fails, times out, or says it did
/// nothing because another node holds the lock (Kong exits 0 then).
pub async fn run(
    executor: &dyn Executor,
    spec: &MigrationsSpec,
    command: MigrationsCommand,
    env: Vec<(String, String)>,
    lines: mpsc::Sender<OutputLine>,
    cancel: CancellationToken,
) -> Result<MigrationsRun, MigrationsError> {
    let command_line = build_command(spec, command);
    check_command(&command_line)?;
    let shown = command_line.display();
    let (tx, mut rx) = mpsc::channel::<OutputLine>(256);
    let request = ExecRequest {
        command: command_line,
        env,
        timeout: spec.timeout,
    };
    let forward = async {
        let mut found: Option<Diagnosis> = None;
        let mut up_to_date = false;
        while let Some(line) = rx.recv().await {
            if let Some(d) = Diagnosis::of_line(&line.text) {
                // The lock and the pending refusal say more than a later generic error.
                if found.is_none() || d == Diagnosis::LockHeld {
                    found = Some(d);
                }
            }
            up_to_date |= line.text.contains(UP_TO_DATE_MESSAGE);
            // The receiver going away must not stop the migrations.
            let _ = lines.send(line).await;
        }
        (found, up_to_date)
    };
    let (outcome, (diagnosis, up_to_date)) =
        tokio::join!(executor.run(request, tx, cancel), forward);
    let outcome = outcome.map_err(|source| MigrationsError::Exec {
        command: shown.clone(),
        source,
    })?;
    let failed = |how: String, diagnosis: Option<Diagnosis>| {
        let explanation = match diagnosis {
            Some(d) => d.explain(),
            None => "Read its output above, then `kongup db status` before retrying.".into(),
        };
        MigrationsError::Failed {
            command: shown.clone(),
            executor: executor.describe(),
            how,
            diagnosis,
            explanation,
        }
    };
    match outcome {
        ExitOutcome::Exited(0) if diagnosis == Some(Diagnosis::LockHeld) => Err(failed(
            "did nothing: another node holds the migrations lock".into(),
            diagnosis,
        )),
        ExitOutcome::Exited(0) => Ok(MigrationsRun {
            command: shown,
            outcome,
            up_to_date,
        }),
        ExitOutcome::Exited(code) => Err(failed(format!("exited with {code}"), diagnosis)),
        ExitOutcome::Signalled(signal) => {
            Err(failed(format!("was killed by signal {signal}"), diagnosis))
        }
        ExitOutcome::TimedOut => Err(failed(
            format!(
                "did not finish within {} and was stopped",
                humantime::format_duration(spec.timeout)
            ),
            diagnosis.or(Some(Diagnosis::DbTimeout)),
        )),
        ExitOutcome::Aborted => Err(failed("was aborted by the operator".into(), diagnosis)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot check schema_meta after `kong migrations {verb}`: {source}")]
    Read {
        verb: &'static str,
        #[source]
        source: PgError,
    },
    #[error(
        "after `kong migrations up`, schema_meta on {address} is unchanged and nothing is pending: `up` ran against another database, or did nothing. Check Y's pg_host/pg_database and the output above"
    )]
    NothingRecorded { address: String },
    #[error(
        "after `kong migrations finish`, {count} migration(s) are still pending on {address} ({list}): finish did not complete. Read its output, then retry it"
    )]
    StillPending {
        address: String,
        count: usize,
        list: String,
    },
    #[error(
        "the database at {address} needs bootstrapping after `kong migrations {verb}`: it is not Kong's database"
    )]
    NotBootstrapped { address: String, verb: &'static str },
}

/// Whether a retried `up` finds its work already done: the state before the first attempt
/// had nothing pending (preflight refuses an unfinished earlier upgrade), and now migrations
/// wait for `finish`, so the first attempt's `up` ran to the end even though the step failed
/// (the executor's connection dropped, kongup stopped). Running `up` again would only meet
/// Kong's refusal ("Database has pending migrations"); the retry verifies instead.
pub fn up_already_done(first_before: &SchemaState, now: &SchemaState) -> bool {
    !first_before.needs_bootstrap
        && first_before.pending_total() == 0
        && !now.needs_bootstrap
        && now.pending_total() > 0
}

/// Checks the state after `up`: pending migrations are what blue-green and in-place expect
/// (X keeps running on the old schema until `finish`). When nothing is pending, `up` must at
/// least have recorded something new, else it ran against another database. `before` is the
/// state before the step's first attempt: a retry after an attempt whose `up` did the work
/// finds Kong "already up-to-date", and compares with the state that work started from.
pub fn verify_after_up(
    before: &SchemaState,
    after: &SchemaState,
    address: &str,
) -> Result<String, VerifyError> {
    if after.needs_bootstrap {
        return Err(VerifyError::NotBootstrapped {
            address: address.to_string(),
            verb: "up",
        });
    }
    let pending = after.pending_total();
    if pending > 0 {
        return Ok(format!(
            "{pending} migration(s) pending, as expected until `kong migrations finish`: {}",
            pg::pending_list(after)
        ));
    }
    if after == before {
        return Err(VerifyError::NothingRecorded {
            address: address.to_string(),
        });
    }
    Ok(format!(
        "new migrations ran to the end and none is pending (none of them has a teardown); schema generation {}",
        after.core_generation().unwrap_or("unknown")
    ))
}

/// Checks the state after `finish`: nothing may be pending.
pub fn verify_after_finish(after: &SchemaState, address: &str) -> Result<String, VerifyError> {
    if after.needs_bootstrap {
        return Err(VerifyError::NotBootstrapped {
            address: address.to_string(),
            verb: "finish",
        });
    }
    let count = after.pending_total();
    if count > 0 {
        return Err(VerifyError::StillPending {
            address: address.to_string(),
            count,
            list: pg::pending_list(after),
        });
    }
    Ok(format!(
        "no pending migrations; schema generation {}",
        after.core_generation().unwrap_or("unknown")
    ))
}

/// Reads the state and applies the check that fits `command`.
pub async fn verify(
    target: &PgTarget,
    command: MigrationsCommand,
    before: &SchemaState,
) -> Result<String, VerifyError> {
    let verb = match command {
        MigrationsCommand::Up => "up",
        MigrationsCommand::Finish => "finish",
    };
    let after = pg::schema_state(target)
        .await
        .map_err(|source| VerifyError::Read { verb, source })?;
    match command {
        MigrationsCommand::Up => verify_after_up(before, &after, &target.address()),
        MigrationsCommand::Finish => verify_after_finish(&after, &target.address()),
    }
}

/// The `locks` row of `kong migrations`, when one is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationsLock {
    pub owner: Option<String>,
    /// As PostgreSQL prints it.
    pub ttl: Option<String>,
    pub expired: bool,
}

/// Reads the migrations lock (for the operator, after a "lock held" failure). A database
/// without a `locks` table has no lock.
pub async fn read_lock(target: &PgTarget) -> Result<Option<MigrationsLock>, PgError> {
    let client = target.connect().await?;
    let exists = target
        .query(
            &client,
            "looking for the locks table",
            "SELECT to_regclass('locks') IS NOT NULL",
        )
        .await?;
    if !exists.first().is_some_and(|row| row.get::<_, bool>(0)) {
        return Ok(None);
    }
    let rows = target
        .query(
            &client,
            "reading the migrations lock",
            "SELECT owner, ttl::text, COALESCE(ttl < now(), true) FROM locks WHERE key = 'migrations'",
        )
        .await?;
    Ok(rows.first().map(|row| MigrationsLock {
        owner: row.get(0),
        ttl: row.get(1),
        expired: row.get(2),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(extra: &[&str], force: bool) -> MigrationsSpec {
        MigrationsSpec {
            kong_binary: "/usr/local/bin/kong".into(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            db_timeout: 120,
            force,
            timeout: Duration::from_secs(1800),
        }
    }

    #[test]
    fn builds_up_and_finish_with_db_timeout_and_force() {
        assert_eq!(
            build_command(
                &spec(&["-c", "/etc/kong/kong.conf"], false),
                MigrationsCommand::Up
            ),
            CommandLine::Argv(
                [
                    "/usr/local/bin/kong",
                    "migrations",
                    "up",
                    "-c",
                    "/etc/kong/kong.conf",
                    "--db-timeout",
                    "120"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(
            build_command(
                &spec(&["--db-timeout", "600"], true),
                MigrationsCommand::Finish
            )
            .display(),
            "/usr/local/bin/kong migrations finish --db-timeout 600 -f"
        );
    }

    #[test]
    fn refuses_reset_and_forced_bootstrap_anywhere() {
        let argv = |a: &[&str]| CommandLine::Argv(a.iter().map(|s| s.to_string()).collect());
        assert!(check_command(&argv(&["kong", "migrations", "reset", "-y"])).is_err());
        assert!(check_command(&argv(&["kong", "migrations", "bootstrap", "--force"])).is_err());
        assert!(
            check_command(&argv(&["kong", "migrations", "-c", "x", "bootstrap", "-f"])).is_err()
        );
        let shell = CommandLine::Shell("kong migrations up && kong migrations reset --yes".into());
        let error = check_command(&shell).unwrap_err();
        assert_eq!(error.verb, "reset");
        assert!(check_command(&argv(&["kong", "migrations", "bootstrap"])).is_ok());
        assert!(check_command(&argv(&["kong", "migrations", "up", "-f"])).is_ok());
        assert!(
            check_command(&CommandLine::Shell(
                "kong migrations up -f; kong migrations finish".into()
            ))
            .is_ok()
        );
    }

    #[test]
    fn reads_kongs_messages() {
        assert_eq!(
            Diagnosis::of_line("aborted: another node is performing database changes"),
            Some(Diagnosis::LockHeld)
        );
        assert_eq!(
            Diagnosis::of_line(
                "Error: Database has pending migrations; run 'kong migrations finish'"
            ),
            Some(Diagnosis::PendingBlocksUp)
        );
        assert_eq!(
            Diagnosis::of_line(
                "Database has pending migrations; run 'kong migrations finish' when ready"
            ),
            None
        );
        assert!(Diagnosis::LockHeld.explain().contains("DELETE FROM locks"));
    }
}

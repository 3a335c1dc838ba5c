//! `kong migrations up` / `finish`: the command kongup runs on a Y node's executor, what
//! Kong's output means, the migrations lock and the sessions that show a run in progress,
//! and the check of `schema_meta` afterwards.
//!
//! What Kong prints, on which stream, with which exit code, and how its lock works is in
//! docs/kong/migrations-and-paths.md §0-§1, read from Kong's source (kong/cmd/migrations.lua,
//! kong/cmd/utils/migrations.lua, kong/db/init.lua `cluster_mutex`,
//! kong/db/strategies/postgres/connector.lua, tags 2.8.5, 3.4.2, 3.9.1 and master 3.10.0);
//! the corpus tests/fixtures/kong/*/migrations/*.cli holds its outputs, and
//! tests/it/kong/migrations_corpus.rs checks [`conclude`] against every one of them.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::{ExecError, ExecRequest, Executor, ExitOutcome, LogStream, OutputLine};
use crate::kong::pg::{self, PgError, PgTarget};
use crate::kong::schema::SchemaState;
use crate::plan::model::{CommandLine, MigrationsSpec};
use crate::plan::steps::MigrationsCommand;

/// `NOT_LEADER_MSG` (kong/cmd/utils/migrations.lua): printed on stdout, exit 0, when the
/// lock kept this run from doing anything.
pub const LOCK_HELD_MESSAGE: &str = "aborted: another node is performing database changes";
/// `up` refusing migrations an earlier `up` left pending (checked before the lock).
pub const PENDING_BLOCKS_UP_MESSAGE: &str =
    "Database has pending migrations; run 'kong migrations finish'";
/// `up` with nothing new to run.
pub const UP_TO_DATE_MESSAGE: &str = "Database is already up-to-date";
/// `finish` with nothing pending, also printed after a finish that ran its teardowns.
pub const NOTHING_TO_FINISH_MESSAGE: &str = "No pending migrations to finish";
/// `finish` finding migrations that `up` never ran (exit 0, nothing of them done).
pub const UP_FIRST_MESSAGE: &str = "New migrations available; run 'kong migrations up' to proceed";
/// `NEEDS_BOOTSTRAP_MSG`, its first words: `list` exits 3 with it, `up`/`finish` raise it.
pub const NEEDS_BOOTSTRAP_MESSAGE: &str = "Database needs bootstrapping";
/// What `up` raises when it waited its `--lock-timeout` and the lock was still held:
/// `cluster_mutex` returns `prefix_err(self, "timeout")` (kong/db/init.lua @ 3.9.1), and
/// kong/cmd/init.lua prints it after `Error: `.
pub const LOCK_WAIT_TIMEOUT_ERROR: &str = "Error: [PostgreSQL error] timeout";

/// The key of the `locks` row `up` and `finish` take (`MIGRATIONS_MUTEX_KEY`).
pub const LOCK_KEY: &str = "migrations";

/// The `application_name` of Kong's PostgreSQL sessions: `kong` from 3.4.0
/// (kong/db/strategies/postgres/connector.lua:950 @ 3.9.1, commit ae6ca2572d), pgmoon's
/// default `pgmoon` before (2.8.5 sets none; pgmoon's default, not verified for the exact
/// pgmoon release 2.8 ships).
pub const KONG_APPLICATION_NAMES: [&str; 2] = ["kong", "pgmoon"];

/// Which `kong migrations` subcommand produced an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KongVerb {
    Up,
    Finish,
    List,
}

impl KongVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            KongVerb::Up => "up",
            KongVerb::Finish => "finish",
            KongVerb::List => "list",
        }
    }
}

impl From<MigrationsCommand> for KongVerb {
    fn from(command: MigrationsCommand) -> Self {
        match command {
            MigrationsCommand::Up => KongVerb::Up,
            MigrationsCommand::Finish => KongVerb::Finish,
        }
    }
}

/// What `kong migrations list` reports (kong/cmd/migrations.lua, exit codes 0, 4, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    /// Exit 0: every migration of this version ran.
    UpToDate,
    /// Exit 4: an `up` ran, its `finish` did not.
    Pending,
    /// Exit 4 with a "New migrations available:" section too: an earlier upgrade was never
    /// finished and this version brings more.
    PendingAndNew,
    /// Exit 5: this version brings migrations `up` has not run.
    New,
}

/// What kongup concludes from one `kong migrations` run: its exit code and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion {
    /// `up` or `finish` ran migrations (`N migration(s) processed`); `pending` of them wait
    /// for `finish`.
    Ran {
        processed: u32,
        executed: u32,
        pending: u32,
    },
    /// `up`: "Database is already up-to-date"; `finish`: "No pending migrations to finish".
    NothingToDo,
    /// `finish` found migrations `up` never ran and left them (exit 0).
    UpFirst,
    /// "aborted: another node is performing database changes" (exit 0): another run held
    /// the lock, nothing ran. `finish` gives up at once; `up` after waiting, once the lock
    /// was released or its ttl passed.
    LockHeld,
    /// `up` waited its `--lock-timeout` for the lock, which was still held:
    /// `Error: [PostgreSQL error] timeout` (exit 1). Nothing ran.
    LockWaitTimedOut,
    /// `up` refused: migrations of an earlier `up` are still pending (exit 1).
    PendingBlocksUp,
    /// No `schema_meta`: `list` exits 3, `up`/`finish` raise it (exit 1).
    NeedsBootstrap,
    /// A query ran past the database timeout (`--db-timeout`, else kong.conf's
    /// `pg_timeout`): `receive_message: failed to get type: timeout` and the like (exit 1).
    DbTimeout,
    /// `list`: the state it reports.
    Listed(ListState),
    /// Anything else: Kong's `Error:` line, or what was missing.
    Failed(String),
}

impl Conclusion {
    /// Whether the command did what it was run for.
    pub fn is_success(&self) -> bool {
        matches!(self, Conclusion::Ran { .. } | Conclusion::NothingToDo)
    }
}

/// A line without the `YYYY/MM/DD HH:MM:SS [level] ` prefix Kong's CLI logger adds to
/// `warn`/`error` lines and, with `--v`, to every line (kong/cmd/utils/log.lua).
fn message(line: &str) -> &str {
    let bytes = line.as_bytes();
    let stamped = bytes.len() > 21
        && bytes[4] == b'/'
        && bytes[7] == b'/'
        && bytes[10] == b' '
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b' '
        && bytes[20] == b'[';
    if !stamped {
        return line;
    }
    line[20..].split_once("] ").map_or(line, |(_, rest)| rest)
}

/// `N <what>` as Kong counts in `run_migrations` ("5 migrations processed", "4 executed").
fn count(line: &str, what: &[&str]) -> Option<u32> {
    let (number, rest) = line.split_once(' ')?;
    what.contains(&rest).then(|| number.parse().ok()).flatten()
}

/// What a `kong migrations` run means, from its exit code and its two streams.
pub fn conclude(verb: KongVerb, exit: i32, stdout: &str, stderr: &str) -> Conclusion {
    let out: Vec<&str> = stdout.lines().map(message).collect();
    let err: Vec<&str> = stderr.lines().map(message).collect();
    let all = || out.iter().chain(err.iter());
    let errors: Vec<&str> = err
        .iter()
        .copied()
        .filter(|l| l.starts_with("Error:"))
        .collect();
    if all().any(|l| l.contains(LOCK_HELD_MESSAGE)) {
        return Conclusion::LockHeld;
    }
    if all().any(|l| l.contains(NEEDS_BOOTSTRAP_MESSAGE)) {
        return Conclusion::NeedsBootstrap;
    }
    // Only `up` waits for the lock; `finish` gives up at once, `list` takes none.
    if verb == KongVerb::Up && err.contains(&LOCK_WAIT_TIMEOUT_ERROR) {
        return Conclusion::LockWaitTimedOut;
    }
    if errors.iter().any(|l| l.contains(PENDING_BLOCKS_UP_MESSAGE)) {
        return Conclusion::PendingBlocksUp;
    }
    if errors.iter().any(|l| l.contains("timeout")) {
        return Conclusion::DbTimeout;
    }
    if verb == KongVerb::List {
        let new = out.contains(&"New migrations available:");
        return match exit {
            0 => Conclusion::Listed(ListState::UpToDate),
            4 if new => Conclusion::Listed(ListState::PendingAndNew),
            4 => Conclusion::Listed(ListState::Pending),
            5 => Conclusion::Listed(ListState::New),
            code => failed(code, &errors),
        };
    }
    if exit != 0 {
        return failed(exit, &errors);
    }
    if out.iter().any(|l| l.contains(UP_FIRST_MESSAGE)) {
        return Conclusion::UpFirst;
    }
    let processed = out
        .iter()
        .find_map(|l| count(l, &["migration processed", "migrations processed"]));
    if let Some(processed) = processed {
        let of = |what: &str| out.iter().find_map(|l| count(l, &[what])).unwrap_or(0);
        return Conclusion::Ran {
            processed,
            executed: of("executed"),
            pending: of("pending"),
        };
    }
    let nothing = match verb {
        KongVerb::Up => UP_TO_DATE_MESSAGE,
        KongVerb::Finish | KongVerb::List => NOTHING_TO_FINISH_MESSAGE,
    };
    if out.iter().any(|l| l.contains(nothing)) {
        return Conclusion::NothingToDo;
    }
    Conclusion::Failed(format!(
        "Kong exited 0 but printed none of the messages of a `{}` that did its work (with -q \
         it prints nothing, and kongup cannot tell a run from one the lock stopped: remove -q \
         from migrations.extra_args)",
        verb.as_str()
    ))
}

fn failed(code: i32, errors: &[&str]) -> Conclusion {
    Conclusion::Failed(match errors.first() {
        Some(line) => format!("exit {code}, \"{line}\""),
        None => format!("exit {code}, and no `Error:` line"),
    })
}

/// How to look for a run in progress, and why an expired lock proves nothing.
pub const LOCKS_EXPLANATION: &str = "`kong migrations up|finish` takes a cluster-wide lock: a row with key 'migrations' in the `locks` table, whose `ttl` is the instant it expires (now + --lock-timeout, 60 s unless set). Kong never renews it: a run longer than its --lock-timeout goes on without the lock, and the next `up` deletes the expired row and runs beside it. So an expired row does not mean nothing runs. Look at the row (SELECT key, owner, ttl, ttl >= now() AS live FROM locks WHERE key = 'migrations';) and at Kong's sessions (SELECT pid, state, now() - query_start AS running_for, query FROM pg_stat_activity WHERE application_name IN ('kong', 'pgmoon');), and find the run: `kong migrations` on another host, a Kubernetes Job or Helm hook, an init container. Retry only when none runs; kongup checks both before every attempt and refuses while one does.";

impl Conclusion {
    /// What it means for the operator and what to do next; `spec` gives the timeouts
    /// kongup passed.
    pub fn explain(&self, verb: KongVerb, spec: &MigrationsSpec) -> String {
        let timeouts = effective_timeouts(spec);
        match self {
            Conclusion::Ran { .. } | Conclusion::NothingToDo | Conclusion::Listed(_) => {
                String::new()
            }
            Conclusion::LockHeld => {
                let how = match verb {
                    KongVerb::Up => format!(
                        "`up` waited for the migrations lock, held by another run, until the row was released or its ttl passed (within its --lock-timeout of {}s), then gave up",
                        timeouts.lock_secs
                    ),
                    KongVerb::Finish | KongVerb::List => {
                        "`finish` found the migrations lock held by another run and gave up at once".to_string()
                    }
                };
                format!(
                    "Kong ran nothing: {how}, printing \"{LOCK_HELD_MESSAGE}\" and exiting 0, which kongup does not count as done. {LOCKS_EXPLANATION}"
                )
            }
            Conclusion::LockWaitTimedOut => format!(
                "Kong ran nothing: `up` waited its --lock-timeout ({}s) for the migrations lock, which another run still held (\"[PostgreSQL error] timeout\" here is that wait, not a slow query). {LOCKS_EXPLANATION}",
                timeouts.lock_secs
            ),
            Conclusion::PendingBlocksUp => "Kong refused `migrations up`: migrations from an earlier `up` are still pending, because `kong migrations finish` of that upgrade never ran. Finish the earlier upgrade first (with the version that ran its `up`), then retry.".to_string(),
            Conclusion::NeedsBootstrap => "Kong says the database needs bootstrapping: Y's kong.conf points at an empty database, or at the wrong one. Check pg_host, pg_port and pg_database on Y; kongup never runs `bootstrap` over an upgrade.".to_string(),
            Conclusion::DbTimeout => format!(
                "A database query ran past Kong's database timeout (--db-timeout {}s): Kong gave up on it, but PostgreSQL may still run or even commit it. Before retrying, look at `kongup db status` and at Kong's sessions (SELECT pid, state, query FROM pg_stat_activity WHERE application_name IN ('kong', 'pgmoon');), and check the database's load; raise migrations.db_timeout if one migration needs longer.",
                timeouts.db_secs
            ),
            Conclusion::UpFirst => "`kong migrations finish` found migrations that `kong migrations up` never ran, and did nothing about them: run the up step first. If it already ran, it ran with another Kong version or against another database: check Y's kong binary and pg_* settings.".to_string(),
            Conclusion::Failed(what) => format!(
                "{what}. Read its output above, then `kongup db status` before retrying."
            ),
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

/// The value of `--NAME N` or `--NAME=N` among `args`, as written.
pub fn option_in<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let flag = format!("--{name}");
    let prefix = format!("--{name}=");
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            arg.strip_prefix(&prefix)
        }
    })
}

/// The database and lock timeouts `kong migrations` runs with, in seconds, and whether
/// the plan's `extra_args` set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub db_secs: u64,
    pub lock_secs: u64,
    pub db_in_args: bool,
    pub lock_in_args: bool,
}

/// `--db-timeout` is the plan's `migrations.db_timeout`; `--lock-timeout` is kongup's own
/// limit on the command (`migrations.timeout`), so the lock row outlives every run kongup
/// lets go on: Kong never renews the row, and once it expires another `up` starts beside
/// the run (docs/kong/migrations-and-paths.md §1). Either may be set in `extra_args`
/// instead; the plan loader refuses a lock timeout shorter than the database timeout.
pub fn effective_timeouts(spec: &MigrationsSpec) -> Timeouts {
    let given = |name| option_in(&spec.extra_args, name).and_then(|v| v.parse::<u64>().ok());
    let db = given("db-timeout");
    let lock = given("lock-timeout");
    Timeouts {
        db_secs: db.unwrap_or(u64::from(spec.db_timeout)),
        lock_secs: lock.unwrap_or(spec.timeout.as_secs()),
        db_in_args: option_in(&spec.extra_args, "db-timeout").is_some(),
        lock_in_args: option_in(&spec.extra_args, "lock-timeout").is_some(),
    }
}

/// `kong migrations up|finish` from the plan: the binary, the extra arguments, then
/// `--db-timeout N` and `--lock-timeout N` unless the extra arguments set them, and `-f`
/// when plugins were added. `--db-timeout` is always explicit: from Kong 3.7.0 its
/// default is kong.conf's `pg_timeout`, 5 s (kong/cmd/migrations.lua:93 @ 3.9.1).
pub fn build_command(spec: &MigrationsSpec, command: MigrationsCommand) -> CommandLine {
    let verb = KongVerb::from(command).as_str();
    let timeouts = effective_timeouts(spec);
    let mut argv = vec![spec.kong_binary.clone(), "migrations".into(), verb.into()];
    argv.extend(spec.extra_args.iter().cloned());
    if !timeouts.db_in_args {
        argv.push("--db-timeout".into());
        argv.push(timeouts.db_secs.to_string());
    }
    if !timeouts.lock_in_args {
        argv.push("--lock-timeout".into());
        argv.push(timeouts.lock_secs.to_string());
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
        conclusion: Conclusion,
        explanation: String,
    },
}

/// A run that did its work: the command and what Kong said it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationsRun {
    pub command: String,
    pub outcome: ExitOutcome,
    /// [`Conclusion::Ran`] or [`Conclusion::NothingToDo`].
    pub conclusion: Conclusion,
}

impl MigrationsRun {
    /// `up` found nothing new to run ("Database is already up-to-date").
    pub fn up_to_date(&self) -> bool {
        self.conclusion == Conclusion::NothingToDo
    }
}

/// Runs `kong migrations up|finish` on `executor` (a Y node's), streaming its output to
/// `lines` as it comes. `env` carries the database settings and password (e.g.
/// `PgTarget::kong_env`), never argv. Fails unless Kong says it ran the migrations or had
/// nothing to do: in particular when the lock kept it from running, though Kong exits 0.
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
    let verb = KongVerb::from(command);
    let (tx, mut rx) = mpsc::channel::<OutputLine>(256);
    let request = ExecRequest {
        command: command_line,
        env,
        timeout: spec.timeout,
    };
    let forward = async {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(line) = rx.recv().await {
            let stream = match line.stream {
                LogStream::Stdout => Some(&mut stdout),
                LogStream::Stderr => Some(&mut stderr),
                LogStream::Engine => None,
            };
            if let Some(stream) = stream {
                stream.push_str(&line.text);
                stream.push('\n');
            }
            // The receiver going away must not stop the migrations.
            let _ = lines.send(line).await;
        }
        (stdout, stderr)
    };
    let (outcome, (stdout, stderr)) = tokio::join!(executor.run(request, tx, cancel), forward);
    let outcome = outcome.map_err(|source| MigrationsError::Exec {
        command: shown.clone(),
        source,
    })?;
    let code = match outcome {
        ExitOutcome::Exited(code) => code,
        ExitOutcome::Signalled(_) | ExitOutcome::TimedOut | ExitOutcome::Aborted => -1,
    };
    let conclusion = conclude(verb, code, &stdout, &stderr);
    let failed =
        |how: String, conclusion: Conclusion, explanation: String| MigrationsError::Failed {
            command: shown.clone(),
            executor: executor.describe(),
            how,
            conclusion,
            explanation,
        };
    let stopped = "It may have left its lock row and a migration half-run: retrying checks the \
                   lock and Kong's sessions first; look at `kongup db status` too.";
    match outcome {
        ExitOutcome::Exited(0) if conclusion.is_success() => Ok(MigrationsRun {
            command: shown,
            outcome,
            conclusion,
        }),
        ExitOutcome::Exited(code) => {
            let how = match &conclusion {
                Conclusion::LockHeld | Conclusion::UpFirst => {
                    format!("exited {code} but did nothing")
                }
                _ => format!("exited with {code}"),
            };
            let explanation = conclusion.explain(verb, spec);
            Err(failed(how, conclusion, explanation))
        }
        ExitOutcome::Signalled(signal) => Err(failed(
            format!("was killed by signal {signal}"),
            conclusion,
            stopped.to_string(),
        )),
        ExitOutcome::TimedOut => Err(failed(
            format!(
                "did not finish within {} (migrations.timeout) and was stopped",
                humantime::format_duration(spec.timeout)
            ),
            conclusion,
            format!(
                "{stopped} If the migrations need longer, raise migrations.timeout (the lock \
                 then lives as long), or migrations.db_timeout if one query does."
            ),
        )),
        ExitOutcome::Aborted => Err(failed(
            "was aborted by the operator".into(),
            conclusion,
            stopped.to_string(),
        )),
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
    let verb = KongVerb::from(command).as_str();
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
    /// The instant it expires, as PostgreSQL prints it.
    pub ttl: Option<String>,
    /// Past its ttl: Kong's next `insert_lock` deletes it. Its run may still go on.
    pub expired: bool,
}

/// A PostgreSQL session that is running a Kong migration.
#[derive(Debug, Clone, PartialEq)]
pub struct MigratingSession {
    pub pid: i32,
    pub application_name: String,
    /// The client's address, or "local socket".
    pub client: String,
    /// `pg_stat_activity.state`: active, idle, idle in transaction, …
    pub state: String,
    /// Since its current (or, when idle, its last) statement started.
    pub running_for: Duration,
    /// That statement, whitespace folded, cut to 160 characters.
    pub query: String,
}

/// What shows a `kong migrations up|finish` in progress on a database.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MigrationsActivity {
    pub lock: Option<MigrationsLock>,
    pub sessions: Vec<MigratingSession>,
    /// What kongup could not see: sessions whose statement it may not read, or a database
    /// that has no sessions to list (the simulated one).
    pub unseen: Option<String>,
}

/// Whether a statement of a Kong session is a migration's. Running Kong nodes send neither
/// DDL nor writes to `schema_meta`; `up` runs each migration's SQL (`CREATE TABLE`,
/// `ALTER TABLE`, `DO $$ … $$` blocks) wrapped as "BEGIN; … COMMIT;" (`run_up_migration`)
/// and records it with `INSERT INTO schema_meta` (`record_migration`,
/// kong/db/strategies/postgres/connector.lua:850-930 @ 3.9.1). A teardown's rewrite of
/// entity rows looks like any update: the live lock row covers that, which is why kongup's
/// `--lock-timeout` is as long as its own limit on the run.
pub fn is_migration_statement(query: &str) -> bool {
    let folded = query
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    [
        "INSERT INTO SCHEMA_META",
        "UPDATE SCHEMA_META",
        "CREATE TABLE",
        "CREATE INDEX",
        "CREATE UNIQUE INDEX",
        "ALTER TABLE",
        "DROP TABLE",
        "DROP INDEX",
        "CREATE OR REPLACE FUNCTION",
        "CREATE TRIGGER",
        "DROP TRIGGER",
        "DO $$",
    ]
    .iter()
    .any(|ddl| folded.contains(ddl))
}

/// Reads the migrations lock and Kong's sessions that run a migration. A database without a
/// `locks` table has no lock.
pub async fn read_activity(target: &PgTarget) -> Result<MigrationsActivity, PgError> {
    let client = target.connect().await?;
    let exists = target
        .query(
            &client,
            "looking for the locks table",
            "SELECT to_regclass('locks') IS NOT NULL",
        )
        .await?;
    let lock = if exists.first().is_some_and(|row| row.get::<_, bool>(0)) {
        // Kong's read_lock says `ttl >= CURRENT_TIMESTAMP AT TIME ZONE 'UTC'`, right only in
        // its own UTC sessions; now() is right in any time zone (ttl is timestamptz).
        let rows = target
            .query_with(
                &client,
                "reading the migrations lock",
                "SELECT owner, ttl::text, COALESCE(ttl < now(), true) FROM locks WHERE key = $1",
                &[&LOCK_KEY],
            )
            .await?;
        rows.first().map(|row| MigrationsLock {
            owner: row.get(0),
            ttl: row.get(1),
            expired: row.get(2),
        })
    } else {
        None
    };
    let names: Vec<&str> = KONG_APPLICATION_NAMES.to_vec();
    let rows = target
        .query_with(
            &client,
            "listing Kong's sessions in pg_stat_activity",
            "SELECT pid, application_name, coalesce(host(client_addr), 'local socket'), \
                    coalesce(state, 'unknown'), \
                    coalesce(extract(epoch FROM now() - query_start), 0)::float8, \
                    coalesce(query, '') \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND application_name = ANY($1)",
            &[&names],
        )
        .await?;
    let mut sessions = Vec::new();
    let mut hidden = 0;
    for row in rows {
        let query: String = row.get(5);
        // Without pg_read_all_stats, another role's statements read like this.
        if query == "<insufficient privilege>" {
            hidden += 1;
            continue;
        }
        if !is_migration_statement(&query) {
            continue;
        }
        let folded = query.split_whitespace().collect::<Vec<_>>().join(" ");
        sessions.push(MigratingSession {
            pid: row.get(0),
            application_name: row.get(1),
            client: row.get(2),
            state: row.get(3),
            running_for: Duration::from_secs_f64(row.get::<_, f64>(4).max(0.0)),
            query: folded.chars().take(160).collect(),
        });
    }
    let unseen = (hidden > 0).then(|| {
        format!(
            "{hidden} Kong session(s) belong to another role, and {} may not read their statements: grant it pg_read_all_stats to see whether they migrate",
            target.user
        )
    });
    Ok(MigrationsActivity {
        lock,
        sessions,
        unseen,
    })
}

fn describe_sessions(sessions: &[MigratingSession]) -> String {
    sessions
        .iter()
        .map(|s| {
            format!(
                "pid {} from {} ({}, {} for {}): {}",
                s.pid,
                s.client,
                s.application_name,
                s.state,
                humantime::format_duration(Duration::from_secs(s.running_for.as_secs())),
                s.query
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why kongup will not start `kong migrations up|finish` now: another run holds the lock,
/// or still runs after its lock expired. Says what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StillRunning(pub String);

/// Refuses while a migrations run is in progress on `address`; otherwise the notes worth
/// showing (an expired row left behind, sessions kongup could not see).
pub fn check_not_running(
    activity: &MigrationsActivity,
    address: &str,
) -> Result<Vec<String>, StillRunning> {
    let owner = |lock: &MigrationsLock| lock.owner.clone().unwrap_or_else(|| "unknown".into());
    let ttl = |lock: &MigrationsLock| lock.ttl.clone().unwrap_or_else(|| "none".into());
    let sessions = if activity.sessions.is_empty() {
        String::new()
    } else {
        format!(
            "PostgreSQL shows {} Kong session(s) running migrations: {}",
            activity.sessions.len(),
            describe_sessions(&activity.sessions)
        )
    };
    if let Some(lock) = activity.lock.as_ref().filter(|l| !l.expired) {
        let seen = if sessions.is_empty() {
            "no Kong session runs a migration statement right now (pg_stat_activity)".to_string()
        } else {
            sessions
        };
        return Err(StillRunning(format!(
            "another `kong migrations` run holds the migrations lock on {address}: the `locks` row 'migrations' of owner {owner} is live until {ttl}, and {seen}. Started now, `up` would wait for it and `finish` would do nothing; and once that row expires Kong lets a second run start beside the first. Find the run (`kong migrations` on another host, a Kubernetes Job or Helm hook: kubectl get jobs -A, an init container), let it end, then retry. If none runs anywhere (a killed run leaves its row until the ttl), delete the row (DELETE FROM locks WHERE key = 'migrations' AND owner = '{owner}';) and retry",
            owner = owner(lock),
            ttl = ttl(lock),
        )));
    }
    if !activity.sessions.is_empty() {
        let lock = match &activity.lock {
            Some(lock) => format!(
                "its lock row (owner {}) expired at {}",
                owner(lock),
                ttl(lock)
            ),
            None => "no lock row is left".to_string(),
        };
        return Err(StillRunning(format!(
            "a `kong migrations` run is still going on {address} although {lock}: {sessions}. Kong never renews its lock, so a run longer than its --lock-timeout goes on without it, and a second run started now would run beside it (the failure of Kong issue 12978). Wait until it ends (SELECT pid, state, now() - query_start, query FROM pg_stat_activity WHERE application_name IN ('kong', 'pgmoon');), check `kongup db status`, then retry; cancel it (SELECT pg_cancel_backend(PID);) only if you know that run was abandoned"
        )));
    }
    let mut notes = Vec::new();
    if let Some(lock) = &activity.lock {
        notes.push(format!(
            "an expired migrations lock row of owner {} (ttl {}) is left on {address}, and no Kong session runs a migration: Kong deletes it when it takes the lock",
            owner(lock),
            ttl(lock)
        ));
    }
    notes.extend(activity.unseen.clone());
    Ok(notes)
}

/// One line on the lock and the sessions, for a failure's message.
pub fn describe_activity(activity: &MigrationsActivity) -> String {
    let lock = match &activity.lock {
        None => "no migrations lock row".to_string(),
        Some(lock) => format!(
            "the lock row: owner {}, ttl {} ({})",
            lock.owner.as_deref().unwrap_or("unknown"),
            lock.ttl.as_deref().unwrap_or("none"),
            if lock.expired { "expired" } else { "live" }
        ),
    };
    let sessions = if activity.sessions.is_empty() {
        "no Kong session running a migration".to_string()
    } else {
        format!(
            "Kong sessions running migrations: {}",
            describe_sessions(&activity.sessions)
        )
    };
    format!("{lock}; {sessions}")
}

#[cfg(test)]
mod tests {
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
    fn builds_up_and_finish_with_both_timeouts_and_force() {
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
                    "120",
                    "--lock-timeout",
                    "1800"
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
            "/usr/local/bin/kong migrations finish --db-timeout 600 --lock-timeout 1800 -f"
        );
        assert_eq!(
            build_command(&spec(&["--lock-timeout=900"], false), MigrationsCommand::Up).display(),
            "/usr/local/bin/kong migrations up --lock-timeout=900 --db-timeout 120"
        );
    }

    #[test]
    fn the_lock_outlives_the_database_timeout() {
        for (extra, db, lock) in [
            (&[][..], 120, 1800),
            (&["--db-timeout", "600"][..], 600, 1800),
            (&["--db-timeout=600", "--lock-timeout", "700"][..], 600, 700),
        ] {
            let t = effective_timeouts(&spec(extra, false));
            assert_eq!((t.db_secs, t.lock_secs), (db, lock), "{extra:?}");
            assert!(t.lock_secs >= t.db_secs);
        }
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
    fn kongs_log_prefix_is_read_past() {
        assert_eq!(
            message("2025/06/10 09:14:03 [info] Database is already up-to-date"),
            "Database is already up-to-date"
        );
        assert_eq!(message("core: 000_base"), "core: 000_base");
        assert_eq!(
            conclude(
                KongVerb::Up,
                0,
                "2025/06/10 09:14:03 [info] 1 migration processed\n2025/06/10 09:14:03 [info] 1 executed\n",
                ""
            ),
            Conclusion::Ran {
                processed: 1,
                executed: 1,
                pending: 0
            }
        );
    }

    #[test]
    fn a_quiet_run_is_not_taken_for_a_done_one() {
        let conclusion = conclude(KongVerb::Finish, 0, "", "");
        assert!(!conclusion.is_success(), "{conclusion:?}");
    }

    #[test]
    fn migration_statements_are_told_from_a_nodes_queries() {
        assert!(is_migration_statement(
            "BEGIN;\n      DO $$\n      BEGIN\n      ALTER TABLE IF EXISTS ONLY \"clustering_data_planes\" ADD \"labels\" JSONB;"
        ));
        assert!(is_migration_statement(
            "INSERT INTO schema_meta (key, subsystem, last_executed, executed)\n VALUES ('schema_meta', 'core', '024_380_to_390', '{024_380_to_390}')"
        ));
        // A running node's reads and rate-limiting counters are not migrations.
        assert!(!is_migration_statement(
            "SELECT * FROM schema_meta WHERE key = 'schema_meta'"
        ));
        assert!(!is_migration_statement(
            "BEGIN; INSERT INTO ratelimiting_metrics (identifier, period) VALUES ('a', 'second') ON CONFLICT DO UPDATE SET value = ratelimiting_metrics.value + 1; COMMIT;"
        ));
    }

    fn session() -> MigratingSession {
        MigratingSession {
            pid: 4242,
            application_name: "kong".into(),
            client: "10.0.2.11".into(),
            state: "active".into(),
            running_for: Duration::from_secs(95),
            query: "BEGIN; DO $$ BEGIN ALTER TABLE ...".into(),
        }
    }

    fn lock(expired: bool) -> MigrationsLock {
        MigrationsLock {
            owner: Some("a1b2".into()),
            ttl: Some("2026-07-01 10:00:00+00".into()),
            expired,
        }
    }

    #[test]
    fn a_live_lock_or_a_run_past_its_lock_is_refused() {
        let live = MigrationsActivity {
            lock: Some(lock(false)),
            ..Default::default()
        };
        let refusal = check_not_running(&live, "db:5432/kong").unwrap_err().0;
        assert!(
            refusal.contains("owner a1b2 is live until 2026-07-01 10:00:00+00"),
            "{refusal}"
        );
        assert!(
            refusal.contains("DELETE FROM locks WHERE key = 'migrations' AND owner = 'a1b2'"),
            "{refusal}"
        );
        let outlived = MigrationsActivity {
            lock: Some(lock(true)),
            sessions: vec![session()],
            unseen: None,
        };
        let refusal = check_not_running(&outlived, "db:5432/kong").unwrap_err().0;
        assert!(
            refusal.contains("expired at 2026-07-01 10:00:00+00")
                && refusal.contains("pid 4242 from 10.0.2.11 (kong, active for 1m 35s)")
                && refusal.contains("12978"),
            "{refusal}"
        );
        let left = MigrationsActivity {
            lock: Some(lock(true)),
            ..Default::default()
        };
        let notes = check_not_running(&left, "db:5432/kong").unwrap();
        assert!(
            notes[0].contains("Kong deletes it when it takes the lock"),
            "{notes:?}"
        );
        assert_eq!(
            check_not_running(&MigrationsActivity::default(), "db"),
            Ok(vec![])
        );
    }
}

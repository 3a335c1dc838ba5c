//! The `sim` executor: runs a plan's commands on the lab instead of on hosts. Each command
//! acts on the lab's state and prints what the real program prints, with its exit code,
//! over a few (simulated) seconds; the lab's `speed` (or `with_speed`) scales the waits.
//! It honours the request's timeout and the cancellation token; a migration cut short
//! stays half-done and its lock row stays until it expires, as with Kong.
//!
//! An executor is bound to one lab node (`SimScope::Node`, what `Lab::executor(name)` gives
//! when `name` is a node's) or lab-wide (`SimScope::Lab`). Commands are argument vectors;
//! a `shell:` string is split on `&&`, `;` and newlines (quotes respected; pipes are not
//! simulated). A leading `sudo` (with its options) and `VAR=value` words are skipped.
//!
//! Vocabulary:
//!
//! | command | on a node executor | lab-wide |
//! |---|---|---|
//! | `kong start\|stop\|quit\|restart\|reload\|health\|version\|check\|drain` | that node | refused (exit 1) |
//! | `kong migrations bootstrap\|up\|finish\|list\|status\|reset` (`-f`, `-y`, `--db-timeout N`, `--lock-timeout N`) | the node's database, as the node's version | Y's database, as Y's version |
//! | `kong config parse FILE` | checks a declarative file | same |
//! | `systemctl start\|stop\|restart\|reload\|is-active\|status kong` | as `kong …` | refused |
//! | `pg_dump [-Fc] [-d DB\|DB] -f FILE` | snapshot of DB (default: the node's, else X's) into FILE | same |
//! | `pg_restore [--clean] -d DB FILE` | FILE over DB | same |
//! | `deck gateway dump -o FILE`, `deck gateway validate\|diff\|sync`, `deck file validate FILE` | the lab's configuration | same |
//! | `cp SRC DST`, `sleep N`, `echo …`, `true`, `false` | as in a shell | same |
//! | `cat FILE…` | the node's `kong.conf`, the lab's declarative configuration (`/etc/kong/kong.yml`, no credentials) and other files; a stand-in line for others | same |
//! | `lab install\|deploy\|decommission\|start\|stop\|drain [NODE…] [--cluster x\|y]` | that node when none named | the named nodes |
//! | `lab status` | the lab's nodes and databases | same |
//! | `lab split [X Y]` | prints the balancer's split as `X Y`, or sets it | same |
//!
//! `lab install` puts Kong on an absent node (Y before its deployment) without starting
//! it; `lab deploy` installs and starts; `lab decommission` stops and removes. Any other
//! program is not simulated: the executor says so on stderr, names what a real host would
//! run, and exits 0 (rehearsals of plans with site-specific commands still go through).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::LogStream;
use crate::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::lb::{Split, TrafficDriver};
use crate::plan::model::{CommandLine, Role};
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;

use super::database::{
    self, KongSchemaView, MigrationStep, NEEDS_BOOTSTRAP_MSG, NOT_LEADER_MSG, SimDatabase,
};
use super::facts;
use super::lab::{Artifact, Lab, LabError, LabShared};
use super::node::Lifecycle;

/// Where a sim executor's commands act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimScope {
    Node(String),
    Lab,
}

pub struct SimExecutor {
    lab: Lab,
    scope: SimScope,
    speed: Option<f64>,
}

impl SimExecutor {
    pub fn new(lab: Lab, scope: SimScope) -> Self {
        SimExecutor {
            lab,
            scope,
            speed: None,
        }
    }

    /// Overrides the lab's speed for this executor; `f64::INFINITY` runs without waiting
    /// (replaying a journal to rebuild the lab's state).
    pub fn with_speed(mut self, speed: f64) -> Self {
        self.speed = Some(speed);
        self
    }
}

/// Why a command stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
}

/// One command's run: where its output goes and when it must stop.
struct Session<'a> {
    lines: &'a mpsc::Sender<OutputLine>,
    cancel: &'a CancellationToken,
    deadline: Instant,
    speed: f64,
}

impl Session<'_> {
    async fn emit(&self, stream: LogStream, text: impl Into<String>) {
        // A closed receiver means nobody reads any more; the command still completes.
        let _ = self
            .lines
            .send(OutputLine {
                stream,
                text: text.into(),
            })
            .await;
    }

    async fn out(&self, text: impl Into<String>) {
        self.emit(LogStream::Stdout, text).await;
    }

    async fn err(&self, text: impl Into<String>) {
        self.emit(LogStream::Stderr, text).await;
    }

    /// Kong's CLI error: `Error: …` and the verbosity hint, on stderr; exit 1.
    async fn kong_error(&self, message: &str) -> i32 {
        for (i, line) in message.trim_end().lines().enumerate() {
            if i == 0 {
                self.err(format!("Error: {line}")).await;
            } else {
                self.err(line).await;
            }
        }
        self.err("").await;
        self.err("  Run with --v (verbose) or --vv (debug) for more details")
            .await;
        1
    }

    /// A simulated duration in real time.
    fn scaled(&self, base: Duration) -> Duration {
        if self.speed.is_infinite() {
            Duration::ZERO
        } else {
            base.div_f64(self.speed)
        }
    }

    /// Waits a simulated `base` (scaled by the speed), or stops on cancel or deadline.
    async fn pause(&self, base: Duration) -> Result<(), Stop> {
        let wait = self.scaled(base);
        let now = Instant::now();
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if now >= self.deadline {
            return Err(Stop::TimedOut);
        }
        let until_deadline = self.deadline - now;
        tokio::select! {
            _ = self.cancel.cancelled() => Err(Stop::Cancelled),
            _ = tokio::time::sleep(wait.min(until_deadline)) => {
                if wait > until_deadline { Err(Stop::TimedOut) } else { Ok(()) }
            }
        }
    }
}

/// How one command of a sequence is joined to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joiner {
    /// `&&`: run the next only on success.
    And,
    /// `;` or a newline: run the next anyway.
    Then,
}

/// Splits a shell string into commands (`None` when it uses what the lab does not
/// simulate: pipes, `||`, redirections, substitutions).
fn split_shell(script: &str) -> Option<Vec<(Vec<String>, Joiner)>> {
    let mut commands = Vec::new();
    let mut argv: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let finish_word = |argv: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            argv.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        '$' | '`' => return None,
                        _ => word.push(q),
                    }
                }
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                finish_word(&mut argv, &mut word, &mut in_word);
                commands.push((std::mem::take(&mut argv), Joiner::And));
            }
            ';' | '\n' => {
                finish_word(&mut argv, &mut word, &mut in_word);
                if !argv.is_empty() {
                    commands.push((std::mem::take(&mut argv), Joiner::Then));
                }
            }
            '|' | '>' | '<' | '`' | '$' | '&' | '(' | ')' => return None,
            c if c.is_whitespace() => finish_word(&mut argv, &mut word, &mut in_word),
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish_word(&mut argv, &mut word, &mut in_word);
    if !argv.is_empty() {
        commands.push((argv, Joiner::Then));
    }
    Some(commands)
}

/// Drops `sudo` (and its options) and leading `VAR=value` words.
fn strip_wrappers(argv: &[String]) -> &[String] {
    let mut rest = argv;
    loop {
        match rest.first().map(String::as_str) {
            Some("sudo") => {
                rest = &rest[1..];
                while let Some(flag) = rest.first().filter(|f| f.starts_with('-')) {
                    let takes_value = matches!(flag.as_str(), "-u" | "-g" | "-C" | "-D");
                    rest = &rest[if takes_value { 2.min(rest.len()) } else { 1 }..];
                }
            }
            Some(word) if word.contains('=') && !word.starts_with('-') => rest = &rest[1..],
            _ => return rest,
        }
    }
}

/// The value of `-x VALUE`, `--long VALUE` or `--long=VALUE` among `args`.
fn option_value<'a>(args: &'a [String], short: Option<&str>, long: &str) -> Option<&'a str> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            return Some(value);
        }
        if arg == long || short.is_some_and(|s| arg == s) {
            return iter.next().map(String::as_str);
        }
        if let Some(s) = short
            && let Some(value) = arg.strip_prefix(s)
            && !value.is_empty()
            && s.len() == 2
        {
            return Some(value);
        }
    }
    None
}

fn has_flag(args: &[String], short: Option<&str>, long: &str) -> bool {
    args.iter()
        .any(|a| a == long || short.is_some_and(|s| a == s))
}

/// Arguments that are not options (and not the values of the options named).
fn positionals<'a>(args: &'a [String], valued: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if valued.contains(&arg.as_str()) {
            iter.next();
        } else if !arg.starts_with('-') {
            out.push(arg.as_str());
        }
    }
    out
}

/// systemd's report of a unit that failed to start, on stderr; exit 1.
async fn systemd_failed(unit_name: &str, s: &Session<'_>) -> i32 {
    let unit = format!("{unit_name}.service");
    s.err(format!(
        "Job for {unit} failed because the control process exited with error code."
    ))
    .await;
    s.err(format!(
        "See \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details."
    ))
    .await;
    1
}

/// Where `kong migrations` runs: a database, as a version, with a lock owner.
struct MigrationsTarget {
    database: String,
    version: KongVersion,
    owner: String,
}

const KONG_PREFIX: &str = "/usr/local/kong";
const START_TIME: Duration = Duration::from_millis(2500);
const WARMUP: Duration = Duration::from_millis(1500);

impl SimExecutor {
    fn shared(&self) -> &Arc<LabShared> {
        self.lab.shared()
    }

    fn node_name(&self) -> Option<&str> {
        match &self.scope {
            SimScope::Node(name) => Some(name),
            SimScope::Lab => None,
        }
    }

    async fn run_sequence(
        &self,
        commands: Vec<(Vec<String>, Joiner)>,
        session: &Session<'_>,
    ) -> Result<i32, Stop> {
        let mut code = 0;
        for (argv, joiner) in commands {
            code = self.run_one(&argv, session).await?;
            if joiner == Joiner::And && code != 0 {
                return Ok(code);
            }
        }
        Ok(code)
    }

    async fn run_one(&self, argv: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let argv = strip_wrappers(argv);
        let Some(program) = argv.first() else {
            return Ok(0);
        };
        let args = &argv[1..];
        let name = program.rsplit('/').next().unwrap_or(program);
        match name {
            "kong" => self.kong(args, s).await,
            "systemctl" => self.systemctl(args, s).await,
            "pg_dump" => self.pg_dump(args, s).await,
            "pg_restore" => self.pg_restore(args, s).await,
            "deck" => self.deck(args, s).await,
            "lab" => self.lab_command(args, s).await,
            "cp" => self.cp(args, s).await,
            "cat" => self.cat(args, s).await,
            "sleep" => {
                let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                s.pause(Duration::from_secs_f64(secs.max(0.0))).await?;
                Ok(0)
            }
            "echo" => {
                s.out(args.join(" ")).await;
                Ok(0)
            }
            "true" => Ok(0),
            "false" => Ok(1),
            _ => {
                s.err(format!(
                    "sim: '{name}' is not simulated by the lab; on a real host this would run: {}",
                    CommandLine::Argv(argv.to_vec()).display()
                ))
                .await;
                Ok(0)
            }
        }
    }

    /// The node a node-only command acts on, or the exit code after saying why not.
    async fn require_node(&self, what: &str, s: &Session<'_>) -> Result<String, i32> {
        let Some(name) = self.node_name() else {
            s.err(format!(
                "sim: '{what}' needs a node, and this executor is lab-wide: name the plan's executor after a lab node (e.g. {}), or use 'lab {} NODE'",
                self.shared()
                    .nodes
                    .first()
                    .map_or("kong-y-1", |n| n.spec.name.as_str()),
                what.split_whitespace().nth(1).unwrap_or("start")
            ))
            .await;
            return Err(1);
        };
        let installed = self
            .shared()
            .node(name)
            .map(|n| n.state().lifecycle != Lifecycle::Absent)
            .unwrap_or(false);
        if !installed {
            s.err(format!(
                "bash: line 1: {}: command not found",
                what.split_whitespace().next().unwrap_or("kong")
            ))
            .await;
            return Err(127);
        }
        Ok(name.to_string())
    }

    async fn kong(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let rest = args.get(1..).unwrap_or(&[]);
        if sub == "migrations" {
            return self.migrations(rest, s).await;
        }
        if sub == "config" {
            return self.kong_config(rest, s).await;
        }
        let node = match self.require_node(&format!("kong {sub}"), s).await {
            Ok(node) => node,
            Err(code) => return Ok(code),
        };
        let version = self.shared().node(&node).map(|n| n.spec.version).ok();
        let version = version.unwrap_or(self.shared().topology.to);
        match sub {
            "start" => self.kong_start(&node, s).await,
            "stop" => self.kong_stop(&node, false, s).await,
            "quit" => self.kong_stop(&node, true, s).await,
            "restart" => {
                if self.is_running(&node) {
                    s.pause(Duration::from_secs(1)).await?;
                    if let Err(e) = self.shared().stop_node(&node).await {
                        return Ok(s.kong_error(&e.to_string()).await);
                    }
                }
                self.kong_start(&node, s).await
            }
            "reload" => {
                s.pause(Duration::from_millis(800)).await?;
                if !self.is_running(&node) {
                    return Ok(s
                        .kong_error(&format!("nginx not running in prefix: {KONG_PREFIX}"))
                        .await);
                }
                s.out("Kong reloaded").await;
                Ok(0)
            }
            "health" => {
                s.pause(Duration::from_millis(300)).await?;
                if !self.is_running(&node) {
                    return Ok(s
                        .kong_error(&format!("Kong is not running at {KONG_PREFIX}"))
                        .await);
                }
                s.out("nginx.......running").await;
                s.out("").await;
                s.out(format!("Kong is healthy at {KONG_PREFIX}")).await;
                Ok(0)
            }
            "version" => {
                s.out(facts::full_version(version)).await;
                Ok(0)
            }
            "check" => {
                let conf = positionals(rest, &[])
                    .first()
                    .map_or("/etc/kong/kong.conf", |c| c);
                s.pause(Duration::from_millis(400)).await?;
                s.out(format!("configuration at {conf} is valid")).await;
                Ok(0)
            }
            "drain" => {
                if !facts::has_drain_command(version) {
                    s.err(format!("No such command: drain (Kong {version} has no 'kong drain'; it arrived in 3.9)"))
                        .await;
                    return Ok(1);
                }
                s.pause(Duration::from_millis(300)).await?;
                let status_url = self
                    .shared()
                    .node(&node)
                    .map(|n| n.status_url())
                    .unwrap_or_default();
                match self.shared().drain_node(&node) {
                    Ok(()) => {
                        s.out("Kong's status successfully changed to 'draining'")
                            .await;
                    }
                    Err(_) => {
                        // Kong prints this and still exits 0.
                        s.out(format!(
                            "Failed to send request to {status_url}/status/ready: connection refused"
                        ))
                        .await;
                    }
                }
                Ok(0)
            }
            "" => {
                s.err("Usage: kong COMMAND [OPTIONS]").await;
                Ok(1)
            }
            other => {
                s.err(format!("No such command: {other}")).await;
                Ok(1)
            }
        }
    }

    fn is_running(&self, node: &str) -> bool {
        self.shared()
            .node(node)
            .is_ok_and(|n| n.state().lifecycle == Lifecycle::Running)
    }

    async fn kong_start(&self, node: &str, s: &Session<'_>) -> Result<i32, Stop> {
        s.pause(START_TIME).await?;
        match self.lab.shared().start_node(node, s.scaled(WARMUP)) {
            Ok(()) => {
                s.out("Kong started").await;
                Ok(0)
            }
            Err(LabError::AlreadyRunning) => Ok(s
                .kong_error(&format!("Kong is already running in {KONG_PREFIX}"))
                .await),
            Err(e) => Ok(s.kong_error(&e.to_string()).await),
        }
    }

    async fn kong_stop(&self, node: &str, graceful: bool, s: &Session<'_>) -> Result<i32, Stop> {
        s.pause(if graceful {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(1)
        })
        .await?;
        match self.shared().stop_node(node).await {
            Ok(()) => {
                s.out(if graceful {
                    "Kong stopped (gracefully)"
                } else {
                    "Kong stopped"
                })
                .await;
                Ok(0)
            }
            Err(e) => Ok(s.kong_error(&e.to_string()).await),
        }
    }

    async fn kong_config(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let file = args.get(1).map(String::as_str);
        match (sub, file) {
            ("parse", Some(file)) => {
                s.pause(Duration::from_millis(500)).await?;
                let known = self.shared().files().contains_key(file);
                if known {
                    s.out("parse successful").await;
                    Ok(0)
                } else {
                    Ok(s.kong_error(&format!("{file}: No such file or directory"))
                        .await)
                }
            }
            _ => {
                s.err("sim: only 'kong config parse FILE' is simulated")
                    .await;
                Ok(1)
            }
        }
    }

    fn migrations_target(&self) -> Result<MigrationsTarget, String> {
        let shared = self.shared();
        match self.node_name() {
            Some(name) => {
                let node = shared.node(name).map_err(|e| e.to_string())?;
                let database = node.spec.database.clone().ok_or_else(|| {
                    format!(
                        "{name} runs without a database (database = off): there are no migrations to run on it"
                    )
                })?;
                Ok(MigrationsTarget {
                    database,
                    version: node.spec.version,
                    owner: name.to_string(),
                })
            }
            None => {
                let database = shared.database_of(ClusterSide::Y).ok_or_else(|| {
                    "this lab has no database (DB-less): there are no migrations to run".to_string()
                })?;
                Ok(MigrationsTarget {
                    database,
                    version: shared.topology.to,
                    owner: "kongup-sim".to_string(),
                })
            }
        }
    }

    fn with_db<R>(&self, name: &str, f: impl FnOnce(&mut SimDatabase) -> R) -> Option<R> {
        self.shared().databases().get_mut(name).map(f)
    }

    async fn migrations(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let opts = args.get(1..).unwrap_or(&[]);
        if self.node_name().is_some()
            && let Err(code) = self.require_node("kong migrations", s).await
        {
            return Ok(code);
        }
        let target = match self.migrations_target() {
            Ok(t) => t,
            Err(message) => return Ok(s.kong_error(&message).await),
        };
        let force = has_flag(opts, Some("-f"), "--force");
        let lock_ttl = option_value(opts, None, "--lock-timeout")
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        // Connecting and reading the schema state.
        s.pause(Duration::from_millis(700)).await?;
        let Some(view) = self.with_db(&target.database, |db| db.view(target.version)) else {
            return Ok(s
                .kong_error(&format!(
                    "[postgres error] database \"{}\" does not exist",
                    target.database
                ))
                .await);
        };
        match sub {
            "list" => Ok(self.migrations_list(&view, &target, s).await),
            "status" => {
                s.out(serde_json::to_string(&view).unwrap_or_default())
                    .await;
                Ok(0)
            }
            "up" => self.migrations_up(&target, force, lock_ttl, s).await,
            "finish" => self.migrations_finish(&target, force, lock_ttl, s).await,
            "bootstrap" => self.migrations_bootstrap(&target, force, lock_ttl, s).await,
            "reset" => {
                if !has_flag(opts, Some("-y"), "--yes") {
                    return Ok(s
                        .kong_error(
                            "not a tty: invoke 'reset' non-interactively with the --yes flag",
                        )
                        .await);
                }
                if view.needs_bootstrap {
                    s.out("Database not bootstrapped, nothing to reset").await;
                    return Ok(1);
                }
                s.out("Resetting database...").await;
                s.pause(Duration::from_secs(1)).await?;
                self.with_db(&target.database, SimDatabase::reset);
                s.out("Database successfully reset").await;
                Ok(0)
            }
            "" => {
                s.err("Usage: kong migrations COMMAND [OPTIONS]").await;
                Ok(1)
            }
            other => {
                s.err(format!("No such command for migrations: {other}"))
                    .await;
                Ok(1)
            }
        }
    }

    async fn migrations_list(
        &self,
        view: &KongSchemaView,
        target: &MigrationsTarget,
        s: &Session<'_>,
    ) -> i32 {
        if view.needs_bootstrap {
            for line in NEEDS_BOOTSTRAP_MSG.trim_end().lines() {
                s.out(line).await;
            }
            return 3;
        }
        let mut separated = false;
        for (title, list) in [
            ("Executed migrations:", &view.executed_migrations),
            ("Pending migrations:", &view.pending_migrations),
            ("New migrations available:", &view.new_migrations),
        ] {
            if list.is_empty() {
                continue;
            }
            if separated {
                s.out("").await;
            }
            s.out(title).await;
            for line in database::format_migrations(list) {
                s.out(line).await;
            }
            separated = true;
        }
        let pending = !view.pending_migrations.is_empty();
        let new = !view.new_migrations.is_empty();
        if pending && new {
            s.out("").await;
            s.out(format!(
                "Warning: Database has pending migrations from a previous upgrade, and new migrations from this upgrade (version {})",
                facts::full_version(target.version)
            ))
            .await;
            s.out("").await;
            s.out(format!(
                "Run 'kong migrations finish' when ready to complete pending migrations (postgres database '{}' will be incompatible with the previous Kong version)",
                target.database
            ))
            .await;
            return 4;
        }
        if pending {
            s.out("").await;
            s.out("Run 'kong migrations finish' when ready").await;
            return 4;
        }
        if new {
            s.out("").await;
            s.out("Run 'kong migrations up' to proceed").await;
            return 5;
        }
        0
    }

    /// Takes the migrations lock, or prints Kong's message when another node holds it.
    async fn take_lock(&self, target: &MigrationsTarget, ttl: Duration, s: &Session<'_>) -> bool {
        let ttl = s.scaled(ttl);
        let taken = self
            .with_db(&target.database, |db| db.try_lock(&target.owner, ttl))
            .is_some_and(|r| r.is_ok());
        if !taken {
            s.out(NOT_LEADER_MSG).await;
        }
        taken
    }

    fn release_lock(&self, target: &MigrationsTarget) {
        self.with_db(&target.database, |db| db.unlock(&target.owner));
    }

    /// Runs migration steps as Kong logs them (`migrating SUB on database 'DB'...`, one
    /// line per migration), applying each as it is logged.
    async fn run_steps(
        &self,
        target: &MigrationsTarget,
        steps: &[MigrationStep],
        teardown: bool,
        s: &Session<'_>,
    ) -> Result<(), Stop> {
        let mut current: Option<&str> = None;
        for step in steps {
            if current != Some(step.subsystem.as_str()) {
                s.out(format!(
                    "migrating {} on database '{}'...",
                    step.subsystem, target.database
                ))
                .await;
                current = Some(step.subsystem.as_str());
            }
            s.pause(Duration::from_millis(if teardown { 900 } else { 600 }))
                .await?;
            self.with_db(&target.database, |db| {
                if teardown {
                    db.record_teardown(step, target.version);
                } else {
                    db.record_up(step);
                }
            });
            s.out(format!(
                "{} migrated up to: {} ({})",
                step.subsystem,
                step.name,
                if step.pending { "pending" } else { "executed" }
            ))
            .await;
        }
        let n = steps.len();
        let pending = steps.iter().filter(|st| st.pending).count();
        s.out(format!(
            "{n} migration{} processed",
            if n > 1 { "s" } else { "" }
        ))
        .await;
        if n > pending {
            s.out(format!("{} executed", n - pending)).await;
        }
        if pending > 0 {
            s.out(format!("{pending} pending")).await;
        }
        Ok(())
    }

    async fn migrations_up(
        &self,
        target: &MigrationsTarget,
        force: bool,
        lock_ttl: Duration,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        let view = self
            .with_db(&target.database, |db| db.view(target.version))
            .unwrap_or_default();
        if view.needs_bootstrap {
            return Ok(s
                .kong_error(&format!("Cannot run migrations: {NEEDS_BOOTSTRAP_MSG}"))
                .await);
        }
        if !force && !view.pending_migrations.is_empty() {
            return Ok(s
                .kong_error("Database has pending migrations; run 'kong migrations finish'")
                .await);
        }
        if !self.take_lock(target, lock_ttl, s).await {
            return Ok(0);
        }
        if force {
            let executed: Vec<MigrationStep> = view
                .executed_migrations
                .iter()
                .flat_map(|g| {
                    g.migrations.iter().map(|name| MigrationStep {
                        subsystem: g.subsystem.clone(),
                        name: name.clone(),
                        pending: false,
                    })
                })
                .collect();
            self.run_steps(target, &executed, false, s).await?;
        }
        let steps = self
            .with_db(&target.database, |db| db.plan_up(target.version))
            .unwrap_or_default();
        if steps.is_empty() {
            if !force {
                s.out("Database is already up-to-date").await;
            }
            self.release_lock(target);
            return Ok(0);
        }
        self.run_steps(target, &steps, false, s).await?;
        let pending = self
            .with_db(&target.database, |db| {
                db.view(target.version).pending_count()
            })
            .unwrap_or(0);
        if pending > 0 {
            s.out("").await;
            s.out("Database has pending migrations; run 'kong migrations finish' when ready")
                .await;
        }
        self.release_lock(target);
        Ok(0)
    }

    async fn migrations_finish(
        &self,
        target: &MigrationsTarget,
        force: bool,
        lock_ttl: Duration,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        let view = self
            .with_db(&target.database, |db| db.view(target.version))
            .unwrap_or_default();
        if view.needs_bootstrap {
            return Ok(s
                .kong_error(&format!("Cannot run migrations: {NEEDS_BOOTSTRAP_MSG}"))
                .await);
        }
        if !self.take_lock(target, lock_ttl, s).await {
            return Ok(0);
        }
        let steps = self
            .with_db(&target.database, |db| db.plan_finish(target.version))
            .unwrap_or_default();
        if !steps.is_empty() {
            self.run_steps(target, &steps, true, s).await?;
        }
        let after = self
            .with_db(&target.database, |db| db.view(target.version))
            .unwrap_or_default();
        if after.new_count() > 0 {
            s.out("").await;
            s.out("New migrations available; run 'kong migrations up' to proceed")
                .await;
        } else if !force && steps.is_empty() {
            s.out("No pending migrations to finish").await;
        }
        self.release_lock(target);
        Ok(0)
    }

    async fn migrations_bootstrap(
        &self,
        target: &MigrationsTarget,
        force: bool,
        lock_ttl: Duration,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        if force {
            self.with_db(&target.database, SimDatabase::reset);
        }
        let needs = self
            .with_db(&target.database, |db| {
                db.view(target.version).needs_bootstrap
            })
            .unwrap_or(false);
        if !needs {
            s.out("Database already bootstrapped").await;
            return Ok(0);
        }
        s.out("Bootstrapping database...").await;
        if !self.take_lock(target, lock_ttl, s).await {
            return Ok(0);
        }
        let steps: Vec<MigrationStep> = database::shipped_by(target.version)
            .map(|m| MigrationStep {
                subsystem: m.subsystem.to_string(),
                name: m.name.to_string(),
                pending: false,
            })
            .collect();
        let mut current = None;
        for step in &steps {
            if current != Some(step.subsystem.clone()) {
                s.out(format!(
                    "migrating {} on database '{}'...",
                    step.subsystem, target.database
                ))
                .await;
                current = Some(step.subsystem.clone());
            }
            s.pause(Duration::from_millis(100)).await?;
            s.out(format!(
                "{} migrated up to: {} (executed)",
                step.subsystem, step.name
            ))
            .await;
        }
        self.with_db(&target.database, |db| db.bootstrap(target.version));
        s.out(format!("{} migrations processed", steps.len())).await;
        s.out(format!("{} executed", steps.len())).await;
        s.out("Database is up-to-date").await;
        self.release_lock(target);
        Ok(0)
    }

    async fn systemctl(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let action = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str);
        let unit = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .nth(1)
            .map(String::as_str)
            .unwrap_or("");
        let unit_name = unit.trim_end_matches(".service");
        if !matches!(unit_name, "kong" | "kong-enterprise-edition") {
            s.err(format!("Unit {unit_name}.service not found.")).await;
            return Ok(5);
        }
        let node = match self
            .require_node(&format!("systemctl {}", action.unwrap_or("")), s)
            .await
        {
            Ok(node) => node,
            Err(code) => return Ok(code),
        };
        match action {
            Some("start") => {
                if self.is_running(&node) {
                    return Ok(0);
                }
                s.pause(START_TIME).await?;
                match self.shared().start_node(&node, s.scaled(WARMUP)) {
                    Ok(()) => Ok(0),
                    Err(_) => Ok(systemd_failed(unit_name, s).await),
                }
            }
            Some("stop") => {
                if self.is_running(&node) {
                    s.pause(Duration::from_secs(1)).await?;
                    let _ = self.shared().stop_node(&node).await;
                }
                Ok(0)
            }
            Some("restart") => {
                s.pause(Duration::from_secs(1)).await?;
                if self.is_running(&node) {
                    let _ = self.shared().stop_node(&node).await;
                }
                s.pause(START_TIME).await?;
                match self.shared().start_node(&node, s.scaled(WARMUP)) {
                    Ok(()) => Ok(0),
                    Err(_) => Ok(systemd_failed(unit_name, s).await),
                }
            }
            Some("reload") => {
                if self.is_running(&node) {
                    Ok(0)
                } else {
                    Ok(systemd_failed(unit_name, s).await)
                }
            }
            Some("is-active") => {
                let state = self
                    .shared()
                    .node(&node)
                    .map(|n| n.state().lifecycle)
                    .unwrap_or(Lifecycle::Absent);
                let (word, code) = match state {
                    Lifecycle::Running => ("active", 0),
                    Lifecycle::Crashed => ("failed", 3),
                    _ => ("inactive", 3),
                };
                s.out(word).await;
                Ok(code)
            }
            Some("status") => {
                let lifecycle = self
                    .shared()
                    .node(&node)
                    .map(|n| n.state().lifecycle)
                    .unwrap_or(Lifecycle::Absent);
                s.out(format!("● {unit_name}.service - Kong")).await;
                s.out(format!(
                    "     Loaded: loaded (/lib/systemd/system/{unit_name}.service; enabled)"
                ))
                .await;
                let active = match lifecycle {
                    Lifecycle::Running => "active (running)",
                    Lifecycle::Crashed => "failed (Result: signal)",
                    _ => "inactive (dead)",
                };
                s.out(format!("     Active: {active}")).await;
                Ok(if lifecycle == Lifecycle::Running {
                    0
                } else {
                    3
                })
            }
            _ => {
                s.err(format!("Unknown command verb {}.", action.unwrap_or("")))
                    .await;
                Ok(1)
            }
        }
    }

    /// The database a `pg_dump`/`pg_restore` names (`-d`, `--dbname`, or the positional),
    /// else the node's, else X's.
    fn database_named(&self, explicit: Option<&str>) -> Option<String> {
        if let Some(name) = explicit {
            return Some(name.to_string());
        }
        let shared = self.shared();
        self.node_name()
            .and_then(|n| shared.node(n).ok())
            .and_then(|n| n.spec.database.clone())
            .or_else(|| shared.database_of(ClusterSide::X))
    }

    async fn pg_dump(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let valued = [
            "-f",
            "--file",
            "-h",
            "--host",
            "-p",
            "--port",
            "-U",
            "--username",
            "-d",
            "--dbname",
            "-F",
            "--format",
        ];
        let explicit = option_value(args, Some("-d"), "--dbname")
            .or_else(|| positionals(args, &valued).first().copied());
        let Some(file) = option_value(args, Some("-f"), "--file") else {
            s.err("pg_dump: error: the lab keeps dumps in files only: add -f FILE")
                .await;
            return Ok(1);
        };
        let Some(db_name) = self.database_named(explicit) else {
            s.err("pg_dump: error: this lab has no database (DB-less)")
                .await;
            return Ok(1);
        };
        s.pause(Duration::from_secs(2)).await?;
        let Some(snapshot) = self.with_db(&db_name, |db| db.snapshot()) else {
            s.err(format!(
                "pg_dump: error: connection to server failed: FATAL:  database \"{db_name}\" does not exist"
            ))
            .await;
            return Ok(1);
        };
        self.shared()
            .files()
            .insert(file.to_string(), Artifact::DatabaseDump(snapshot));
        if has_flag(args, Some("-v"), "--verbose") {
            s.err(format!(
                "pg_dump: saving database definition of \"{db_name}\" to {file}"
            ))
            .await;
        }
        Ok(0)
    }

    async fn pg_restore(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let valued = [
            "-h",
            "--host",
            "-p",
            "--port",
            "-U",
            "--username",
            "-d",
            "--dbname",
            "-j",
            "--jobs",
        ];
        let Some(db_name) = option_value(args, Some("-d"), "--dbname") else {
            s.err("pg_restore: error: the lab restores into a database only: add -d DBNAME")
                .await;
            return Ok(1);
        };
        let Some(file) = positionals(args, &valued).last().map(|f| f.to_string()) else {
            s.err("pg_restore: error: no input file named").await;
            return Ok(1);
        };
        let artifact = self.shared().files().get(&file).cloned();
        let snapshot = match artifact {
            Some(Artifact::DatabaseDump(snapshot)) => snapshot,
            Some(_) => {
                s.err("pg_restore: error: input file does not appear to be a valid archive")
                    .await;
                return Ok(1);
            }
            None => {
                s.err(format!(
                    "pg_restore: error: could not open input file \"{file}\": No such file or directory"
                ))
                .await;
                return Ok(1);
            }
        };
        s.pause(Duration::from_secs(3)).await?;
        match self.with_db(db_name, |db| db.restore(&snapshot)) {
            Some(()) => Ok(0),
            None => {
                s.err(format!(
                    "pg_restore: error: connection to server failed: FATAL:  database \"{db_name}\" does not exist"
                ))
                .await;
                Ok(1)
            }
        }
    }

    async fn deck(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let words: Vec<&str> = positionals(
            args,
            &[
                "-o",
                "--output-file",
                "--kong-addr",
                "--headers",
                "--workspace",
                "-w",
                "--ca-cert-file",
            ],
        );
        match words.as_slice() {
            ["gateway", "dump", ..] | ["dump", ..] => {
                let file = option_value(args, Some("-o"), "--output-file").unwrap_or("kong.yaml");
                s.pause(Duration::from_millis(1500)).await?;
                let config_hash = self.lab.shared().config_hash.clone();
                self.shared().files().insert(
                    file.to_string(),
                    Artifact::DeclarativeConfig { config_hash },
                );
                Ok(0)
            }
            ["gateway", "validate", ..] | ["validate", ..] => {
                s.pause(Duration::from_millis(1000)).await?;
                Ok(0)
            }
            ["file", "validate", files @ ..] => {
                s.pause(Duration::from_millis(500)).await?;
                let missing: Vec<&str> = files
                    .iter()
                    .copied()
                    .filter(|f| !self.shared().files().contains_key(*f))
                    .collect();
                if let Some(file) = missing.first() {
                    s.err(format!(
                        "Error: reading file {file}: open {file}: no such file or directory"
                    ))
                    .await;
                    return Ok(1);
                }
                Ok(0)
            }
            ["gateway", "diff" | "sync", ..] | ["diff" | "sync", ..] => {
                s.pause(Duration::from_millis(1500)).await?;
                s.out("Summary:").await;
                s.out("  Created: 0").await;
                s.out("  Updated: 0").await;
                s.out("  Deleted: 0").await;
                Ok(0)
            }
            _ => {
                s.err("sim: deck: only 'gateway dump|validate|diff|sync' and 'file validate' are simulated")
                    .await;
                Ok(1)
            }
        }
    }

    async fn cp(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let paths = positionals(args, &[]);
        let [src, dst] = paths.as_slice() else {
            s.err("cp: missing destination file operand").await;
            return Ok(1);
        };
        let artifact = self.shared().files().get(*src).cloned();
        match artifact {
            Some(artifact) => {
                s.pause(Duration::from_millis(200)).await?;
                self.shared().files().insert(dst.to_string(), artifact);
                Ok(0)
            }
            None => {
                s.err(format!(
                    "cp: cannot stat '{src}': No such file or directory"
                ))
                .await;
                Ok(1)
            }
        }
    }

    /// The nodes a `lab` subcommand names: explicit names, `--cluster x|y`, or this
    /// executor's node.
    fn lab_targets(&self, args: &[String]) -> Result<Vec<String>, String> {
        let shared = self.shared();
        if let Some(side) = option_value(args, None, "--cluster") {
            let side = match side {
                "x" => ClusterSide::X,
                "y" => ClusterSide::Y,
                other => return Err(format!("--cluster takes x or y, not '{other}'")),
            };
            // Control planes first, so data planes find them.
            let mut nodes: Vec<_> = shared
                .nodes
                .iter()
                .filter(|n| n.spec.cluster == side)
                .collect();
            nodes.sort_by_key(|n| n.spec.role != Role::ControlPlane);
            return Ok(nodes.iter().map(|n| n.spec.name.clone()).collect());
        }
        let names: Vec<String> = positionals(args, &["--cluster"])
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !names.is_empty() {
            for name in &names {
                shared.node(name).map_err(|e| e.to_string())?;
            }
            return Ok(names);
        }
        match self.node_name() {
            Some(name) => Ok(vec![name.to_string()]),
            None => Err(
                "name the nodes (lab deploy kong-y-1 kong-y-2) or a cluster (--cluster y)"
                    .to_string(),
            ),
        }
    }

    async fn lab_command(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let rest = args.get(1..).unwrap_or(&[]);
        if sub == "split" {
            return Ok(self.lab_split(rest, s).await);
        }
        if sub == "status" {
            for node in self.lab.nodes() {
                s.out(format!(
                    "{:<8} {:<2} {:<14} {:<12} {}{}",
                    node.name,
                    node.cluster.as_str(),
                    node.role.as_str(),
                    node.version,
                    node.lifecycle.as_str(),
                    if node.draining { " (draining)" } else { "" }
                ))
                .await;
            }
            let states: Vec<(String, crate::kong::schema::SchemaState)> = self
                .shared()
                .databases()
                .iter()
                .map(|(name, db)| (name.clone(), db.schema_state()))
                .collect();
            for (name, state) in states {
                s.out(format!(
                    "database {name}: {}",
                    if state.needs_bootstrap {
                        "needs bootstrap".to_string()
                    } else {
                        format!(
                            "{}, {} pending",
                            state.core_generation().unwrap_or("-"),
                            state.pending_total()
                        )
                    }
                ))
                .await;
            }
            return Ok(0);
        }
        let targets = match self.lab_targets(rest) {
            Ok(t) => t,
            Err(message) => {
                s.err(format!("lab {sub}: {message}")).await;
                return Ok(1);
            }
        };
        for name in targets {
            let code = match sub {
                "install" => self.lab_install(&name, s).await?,
                "deploy" => {
                    let code = self.lab_install(&name, s).await?;
                    if code != 0 {
                        code
                    } else if self.is_running(&name) {
                        s.out(format!("{name}: Kong is already running")).await;
                        0
                    } else {
                        s.out(format!("{name}: kong start")).await;
                        self.kong_start(&name, s).await?
                    }
                }
                "start" => {
                    s.out(format!("{name}: kong start")).await;
                    self.kong_start(&name, s).await?
                }
                "stop" => {
                    s.out(format!("{name}: kong stop")).await;
                    self.kong_stop(&name, false, s).await?
                }
                "drain" => {
                    s.pause(Duration::from_millis(300)).await?;
                    match self.shared().drain_node(&name) {
                        Ok(()) => {
                            s.out(format!(
                                "{name}: Kong's status successfully changed to 'draining'"
                            ))
                            .await;
                            0
                        }
                        Err(e) => {
                            s.err(format!("{name}: {e}")).await;
                            1
                        }
                    }
                }
                "decommission" => {
                    s.out(format!("{name}: stopping Kong and removing the node"))
                        .await;
                    s.pause(Duration::from_secs(2)).await?;
                    match self.shared().decommission_node(&name).await {
                        Ok(()) => {
                            s.out(format!("{name}: decommissioned")).await;
                            0
                        }
                        Err(e) => {
                            s.err(format!("{name}: {e}")).await;
                            1
                        }
                    }
                }
                other => {
                    s.err(format!(
                        "lab: no such command '{other}' (install, deploy, decommission, start, stop, drain, status, split)"
                    ))
                    .await;
                    1
                }
            };
            if code != 0 {
                return Ok(code);
            }
        }
        Ok(0)
    }

    /// `lab split` prints the balancer's split as `X Y`; `lab split X Y` sets it (the
    /// demo plans' `command` traffic driver).
    async fn lab_split(&self, args: &[String], s: &Session<'_>) -> i32 {
        let driver = self.lab.traffic_driver();
        match args {
            [] => {
                let split = driver.split();
                s.out(format!("{} {}", split.x, split.y)).await;
                0
            }
            [x, y] => {
                let parsed = (x.parse::<u8>(), y.parse::<u8>());
                let (Ok(x), Ok(y)) = parsed else {
                    s.err(format!("lab split: '{x} {y}' are not two percentages"))
                        .await;
                    return 2;
                };
                match driver.set_split(Split { x, y }).await {
                    Ok(()) => 0,
                    Err(e) => {
                        s.err(format!("lab split: {e}")).await;
                        1
                    }
                }
            }
            _ => {
                s.err("lab split: give nothing (to print the split) or X and Y percentages")
                    .await;
                2
            }
        }
    }

    /// `cat FILE…`: the lab's files as a real host would print them (a node's `kong.conf`,
    /// the declarative configuration); a file the lab does not have gets a stand-in line
    /// and a note, as for programs the lab does not simulate.
    async fn cat(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let paths = positionals(args, &[]);
        if paths.is_empty() {
            s.err("sim: cat reads files only: name one").await;
            return Ok(1);
        }
        for path in paths {
            let artifact = self.shared().files().get(path).cloned();
            let lines = match artifact {
                Some(Artifact::ConfigFile) => {
                    let shared = self.shared();
                    match self.node_name().and_then(|n| shared.node(n).ok()) {
                        Some(node) => kong_conf(shared, &node.spec),
                        None => vec!["# kong.conf (no node: a lab-wide executor)".to_string()],
                    }
                }
                Some(Artifact::DeclarativeConfig { config_hash }) => {
                    super::entities::declarative_config(&self.shared().routes, &config_hash)
                        .lines()
                        .map(str::to_string)
                        .collect()
                }
                Some(Artifact::DatabaseDump(_)) => {
                    vec!["PGDMP (a custom-format pg_dump archive of the lab)".to_string()]
                }
                None => {
                    s.err(format!(
                        "sim: the lab has no file {path}; on a real host `cat` would print it"
                    ))
                    .await;
                    vec![format!(
                        "# kongup lab: a stand-in for {path}, which the lab does not have"
                    )]
                }
            };
            for line in lines {
                s.out(line).await;
            }
        }
        Ok(0)
    }

    async fn lab_install(&self, name: &str, s: &Session<'_>) -> Result<i32, Stop> {
        let shared = self.shared();
        let Ok(node) = shared.node(name) else {
            s.err(format!("lab: no node named '{name}'")).await;
            return Ok(1);
        };
        let spec = node.spec.clone();
        if node.state().lifecycle != Lifecycle::Absent {
            s.out(format!(
                "{name}: Kong {} is installed",
                facts::full_version(spec.version)
            ))
            .await;
            return Ok(0);
        }
        let package = if spec.version.is_enterprise_form() {
            "kong-enterprise-edition"
        } else {
            "kong"
        };
        s.out(format!("{name}: installing {package} {}", spec.version))
            .await;
        s.pause(Duration::from_secs(3)).await?;
        let conf = kong_conf(shared, &spec);
        s.out(format!(
            "{name}: writing /etc/kong/kong.conf ({})",
            conf.join(", ")
        ))
        .await;
        s.pause(Duration::from_millis(500)).await?;
        let _ = shared.install_node(name);
        s.out(format!("{name}: installed")).await;
        Ok(0)
    }
}

/// The settings of a node's `kong.conf` that the lab decides.
fn kong_conf(shared: &LabShared, spec: &super::node::NodeSpec) -> Vec<String> {
    let mut conf = vec![format!("role = {}", spec.role.as_str())];
    match &spec.database {
        Some(db) => {
            conf.push("database = postgres".to_string());
            if let Some(plan) = shared.topology.database(db) {
                conf.push(format!("pg_host = {}", plan.host));
                conf.push(format!("pg_database = {}", plan.name));
            }
        }
        None => {
            conf.push("database = off".to_string());
            if spec.role != Role::DataPlane {
                conf.push("declarative_config = /etc/kong/kong.yml".to_string());
            }
        }
    }
    if let Some(cp) = &spec.control_plane {
        conf.push(format!("cluster_control_plane = {cp}:8005"));
    }
    conf
}

#[async_trait::async_trait]
impl Executor for SimExecutor {
    fn describe(&self) -> String {
        match &self.scope {
            SimScope::Node(name) => format!("sim {name} (lab {})", self.lab.scenario()),
            SimScope::Lab => format!("sim (lab {}, lab-wide)", self.lab.scenario()),
        }
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let session = Session {
            lines: &lines,
            cancel: &cancel,
            deadline: Instant::now() + request.timeout,
            speed: self.speed.unwrap_or(self.lab.shared().speed),
        };
        let commands = match &request.command {
            CommandLine::Argv(argv) => vec![(argv.clone(), Joiner::Then)],
            CommandLine::Shell(script) => match split_shell(script) {
                Some(commands) => commands,
                None => {
                    session
                        .err(format!(
                            "sim: pipes, redirections and substitutions are not simulated by the lab; on a real host this would run: {}",
                            request.command.display()
                        ))
                        .await;
                    return Ok(ExitOutcome::Exited(0));
                }
            },
        };
        Ok(match self.run_sequence(commands, &session).await {
            Ok(code) => ExitOutcome::Exited(code),
            Err(Stop::Cancelled) => ExitOutcome::Aborted,
            Err(Stop::TimedOut) => ExitOutcome::TimedOut,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_shell_strings_on_and_and_semicolons() {
        let cmds = split_shell(
            "kong migrations up --db-timeout 60 && kong migrations finish; echo 'all done'",
        )
        .unwrap();
        assert_eq!(
            cmds,
            vec![
                (
                    words(&["kong", "migrations", "up", "--db-timeout", "60"]),
                    Joiner::And
                ),
                (words(&["kong", "migrations", "finish"]), Joiner::Then),
                (words(&["echo", "all done"]), Joiner::Then),
            ]
        );
        assert!(split_shell("kong health | grep healthy").is_none());
        assert!(split_shell("echo $HOME").is_none());
    }

    #[test]
    fn strips_sudo_and_environment_words() {
        let argv = words(&[
            "sudo",
            "-u",
            "kong",
            "-E",
            "KONG_DATABASE=postgres",
            "kong",
            "start",
        ]);
        assert_eq!(strip_wrappers(&argv), &words(&["kong", "start"])[..]);
    }

    #[test]
    fn reads_short_long_and_joined_options() {
        let args = words(&["-Fc", "-f", "/tmp/x.dump", "--dbname=kong", "-h", "db"]);
        assert_eq!(
            option_value(&args, Some("-f"), "--file"),
            Some("/tmp/x.dump")
        );
        assert_eq!(option_value(&args, Some("-d"), "--dbname"), Some("kong"));
        assert_eq!(option_value(&args, Some("-F"), "--format"), Some("c"));
        assert_eq!(
            positionals(&words(&["-d", "kong", "/tmp/x.dump"]), &["-d"]),
            vec!["/tmp/x.dump"]
        );
    }
}

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
//!
//! Each program has its file: `kong`, `migrations` (`kong migrations`), `systemctl`,
//! `pg_tools` (`pg_dump`, `pg_restore`), `deck`, `lab_commands` (`lab …`), and `shell`
//! (shell strings, wrappers, option reading, `cp`, `cat`). This file holds the executor,
//! a command's `Session`, and the dispatch by program name.

mod deck;
mod kong;
mod lab_commands;
mod migrations;
mod pg_tools;
mod shell;
mod systemctl;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::LogStream;
use crate::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::plan::model::CommandLine;

use self::shell::{Joiner, split_shell, strip_wrappers};
use super::database::SimDatabase;
use super::lab::{Lab, LabShared};
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

    /// Lua's `print(text)` on stdout (what Kong's `log` does at the default level): every
    /// line of `text`, empty ones included.
    async fn out_text(&self, text: &str) {
        for line in text.split('\n') {
            self.out(line).await;
        }
    }

    /// Kong's CLI error (kong/cmd/init.lua:31@3.4.2): `Error: <message>` then a blank line and
    /// the verbosity hint, on stderr, the message's own blank lines kept; exit 1.
    async fn kong_error(&self, message: &str) -> i32 {
        for line in format!("Error: {message}").split('\n') {
            self.err(line).await;
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

    fn with_db<R>(&self, name: &str, f: impl FnOnce(&mut SimDatabase) -> R) -> Option<R> {
        self.shared().databases().get_mut(name).map(f)
    }
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

//! `--plain`: the engine driven by lines on stdin, with events printed as lines. No
//! terminal needed: for terminals that can't take the console, for scripts and for tests.
//!
//! Each step whose turn comes is printed (title, the guide's instruction, exactly what
//! will run and where), then a line is read: `y` confirm, `skip REASON`, `retry`,
//! `done NOTE`, `pause`, `resume`, `rollback`, `abort`, `traffic N` (N% to Y), `quit`,
//! `help`. An irreversible step is confirmed, or retried, only by typing the plan's name,
//! never `y` or a bare `retry`. A traffic stage onto a Y found unfit (`engine::health`) is
//! shown with why, node by node, and confirmed only by typing `override`. An interrupted
//! step whose command still runs (kongup stopped while it ran) takes `wait` or `kill`
//! (then `y` to confirm the kill) until it has ended. A failed wave start or stop step
//! takes `take-out NODE REASON`: the node's name typed is the confirmation.
//! End of input is `quit`: the run stays resumable.
//!
//! Step lines (`y`, `skip …`, `retry`, `done …`, a typed plan name) answer the step that
//! waits for a decision. From a terminal, such a line typed while nothing waits is
//! refused, so nobody confirms a step they have not seen. From a pipe, lines are taken in
//! order: a step line waits until a step waits for it, so a script can say `y` three times.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Local, Utc};
use tokio::sync::mpsc;

use crate::engine::cause::{Facts, likely_cause};
use crate::engine::event::{LogStream, RollbackProgress, SessionEvent, TrafficVerification};
use crate::engine::expected::{StepAt, cluster_expected_up};
use crate::engine::health::{self, OVERRIDE_WORD};
use crate::engine::{
    Command, EngineError, EngineHandle, Event, RunState, SessionEnd, StepPreview, StepState,
    Toolbox, preview_step, step_details,
};
use crate::exec::process::DEFAULT_KILL_GRACE;
use crate::kong::topology::TopologySnapshot;
use crate::lb::Split;
use crate::metrics::{GateVerdict, Verdict};
use crate::plan::model::Plan;
use crate::plan::steps::{ClusterSide, ExpandedPlan, StepRef};

/// What the plain driver needs besides the engine.
pub struct PlainSetup {
    pub plan: Arc<Plan>,
    pub expanded: Arc<ExpandedPlan>,
    pub toolbox: Toolbox,
    /// Input from a person at a terminal (rather than a pipe or a file).
    pub interactive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Line(String),
    End,
}

#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    /// Sent at once, whatever the engine is doing.
    Run(Command),
    /// Answers the step that waits for a decision.
    Step(StepAnswer),
    Help,
    Blank,
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq)]
enum StepAnswer {
    Yes,
    Skip(String),
    Retry,
    Done(String),
    /// Take a node that failed out of the wave step: its name typed, and why.
    TakeOut {
        node: String,
        reason: String,
    },
    /// Wait for what still runs of an interrupted step.
    Wait,
    /// Kill what still runs of an interrupted step (asks for `y` first).
    Kill,
    /// Any other text: a typed plan name for an irreversible step.
    Typed(String),
}

fn parse(line: &str) -> Parsed {
    let line = line.trim();
    let (word, rest) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(w, r)| (w, r.trim()));
    match word.to_ascii_lowercase().as_str() {
        "" => Parsed::Blank,
        "y" | "yes" if rest.is_empty() => Parsed::Step(StepAnswer::Yes),
        "skip" => Parsed::Step(StepAnswer::Skip(rest.to_string())),
        "retry" if rest.is_empty() => Parsed::Step(StepAnswer::Retry),
        "done" => Parsed::Step(StepAnswer::Done(rest.to_string())),
        "take-out" => {
            let (node, reason) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(n, r)| (n, r.trim()));
            Parsed::Step(StepAnswer::TakeOut {
                node: node.to_string(),
                reason: reason.to_string(),
            })
        }
        "wait" if rest.is_empty() => Parsed::Step(StepAnswer::Wait),
        "kill" if rest.is_empty() => Parsed::Step(StepAnswer::Kill),
        "pause" if rest.is_empty() => Parsed::Run(Command::Pause),
        "resume" if rest.is_empty() => Parsed::Run(Command::Resume),
        "rollback" if rest.is_empty() => Parsed::Run(Command::Rollback),
        "abort" if rest.is_empty() => Parsed::Run(Command::Abort),
        "quit" | "q" if rest.is_empty() => Parsed::Run(Command::Quit),
        "handover" if rest.is_empty() => Parsed::Run(Command::HandOver),
        "keep" if rest.is_empty() => Parsed::Run(Command::KeepRun),
        "help" | "?" if rest.is_empty() => Parsed::Help,
        "traffic" => match traffic_args(rest) {
            Some((y, override_health)) => Parsed::Run(Command::SetTraffic {
                y_percent: y,
                override_health,
            }),
            _ => Parsed::Unknown(format!(
                "traffic takes the percentage for Y, 0 to 100 (e.g. `traffic 25`; `traffic 25 \
                 {OVERRIDE_WORD}` onto a Y found unfit), not '{rest}'"
            )),
        },
        _ => Parsed::Step(StepAnswer::Typed(line.to_string())),
    }
}

/// `25`, `25%`, and either followed by the override word: the percent to Y, and whether
/// Y's health check is overridden.
fn traffic_args(rest: &str) -> Option<(u8, bool)> {
    let mut words = rest.split_whitespace();
    let y = words.next()?.trim_end_matches('%').parse::<u8>().ok()?;
    let override_health = match words.next() {
        None => false,
        Some(word) if word == OVERRIDE_WORD => true,
        Some(_) => return None,
    };
    (y <= 100 && words.next().is_none()).then_some((y, override_health))
}

const HELP: &str = "\
  y            confirm the step shown (irreversible steps: type the plan name instead)
  skip REASON  skip the step shown (ready or interrupted), saying why
  retry        run a failed or interrupted step again (irreversible steps: type the plan name)
  override     confirm (or retry) a traffic stage onto a Y found unfit: the reasons shown
               are journaled with your name
  done NOTE    record a failed or interrupted step as done by hand, saying what was done
  take-out NODE REASON
               a failed wave start or stop step: take NODE, which failed there, out of
               its wave, saying why (journaled); the step then runs again on its other
               nodes once they are done, and later steps leave NODE out
  wait         an interrupted step whose command still runs: let it end (kongup shows its
               output and records how it ended), then retry or done NOTE; from a script,
               the lines after `wait` are read once it has ended
  kill         an interrupted step whose command still runs: kill its process group
               (asks for y first)
  pause        start nothing new until `resume`
  resume       go on after a pause
  rollback     all traffic to X where that is safe, then the rollback plan
  abort        stop the running step (kills its process group) or a traffic change
  traffic N    set the split by hand: N% to Y (`traffic N override`: more to a Y found
               unfit, journaled with your name)
  quit         leave; the run stays resumable (a running step finishes first)
  handover     hand the run over to the kongup that asks for it (kongup run --take-over),
               then leave as on quit
  keep         keep the run: decline the request to take it over";

/// How long the end of `--plain` waits for its output to be written (a terminal that
/// stopped reading must not keep kongup from exiting).
pub const OUTPUT_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Lines that may wait for a slow terminal before a step's output lines are left out (the
/// step's log file has them all); kongup's own lines always wait.
pub const OUTPUT_BACKLOG: usize = 1_000;

/// The output, written by a thread of its own: a terminal that is slow or stopped
/// reading never holds up the engine's events or the operator's commands.
struct Output {
    lines: std::sync::mpsc::Sender<String>,
    drained: std::sync::mpsc::Receiver<()>,
    /// Lines handed to the thread and not yet written.
    waiting: Arc<AtomicUsize>,
}

impl Output {
    fn spawn(mut out: impl Write + Send + 'static) -> Output {
        let (lines, rx) = std::sync::mpsc::channel::<String>();
        let (drained_tx, drained) = std::sync::mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let written = waiting.clone();
        std::thread::spawn(move || {
            // A terminal that went away must not stop the run: errors are ignored.
            while let Ok(line) = rx.recv() {
                let _ = writeln!(out, "{line}");
                written.fetch_sub(1, Ordering::SeqCst);
                while let Ok(line) = rx.try_recv() {
                    let _ = writeln!(out, "{line}");
                    written.fetch_sub(1, Ordering::SeqCst);
                }
                let _ = out.flush();
            }
            let _ = drained_tx.send(());
        });
        Output {
            lines,
            drained,
            waiting,
        }
    }

    fn send(&self, line: String) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = self.lines.send(line);
    }

    /// The terminal is behind by a backlog.
    fn behind(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) >= OUTPUT_BACKLOG
    }

    /// Waits (up to [`OUTPUT_DRAIN_TIMEOUT`]) until everything said is written.
    async fn finish(self) {
        let Output { lines, drained, .. } = self;
        drop(lines);
        let _ =
            tokio::task::spawn_blocking(move || drained.recv_timeout(OUTPUT_DRAIN_TIMEOUT)).await;
    }
}

struct Plain {
    out: Output,
    run_dir: PathBuf,
    /// Output lines not shown (the engine's stream or this terminal fell behind), not yet
    /// said: whose (a step key; `None` for several steps') and how many.
    skipped: Option<(Option<String>, u64)>,
    setup: PlainSetup,
    /// The step waiting for a decision, and in which state.
    awaiting: Option<(StepRef, StepState)>,
    states: HashMap<StepRef, StepState>,
    queue: VecDeque<Input>,
    run_state: Option<RunState>,
    last_gate: Option<(Verdict, Vec<String>)>,
    /// The split last known (asked for, or reported by the load balancer).
    split: Option<Split>,
    /// The latest topology and gate verdict the engine sent: what Y's health check before a
    /// traffic stage reads (`engine::health`), said with the step, and the likely cause of a
    /// failure (`engine::cause`).
    topology: Option<TopologySnapshot>,
    gate: Option<GateVerdict>,
    /// When a step was last seen to end: an older snapshot is not Y now.
    last_step_end: Option<chrono::DateTime<chrono::Utc>>,
    /// A bake is counting down (a traffic stage's or a monitor step's): its gates act.
    baking: bool,
    quit_sent: bool,
    /// What still runs of steps kongup no longer waits on, as the engine says.
    still_running: HashMap<StepRef, String>,
    /// Since when no cluster serves traffic, as the engine said.
    outage_since: Option<DateTime<Utc>>,
    /// A kill asked for, waiting for its `y`.
    kill_asked: Option<StepRef>,
    /// From a script: `wait` holds the lines after it until this step's command ended.
    waiting_for: Option<StepRef>,
    /// A `resume` went to the engine and the run has not yet left its pause: a script's
    /// next answer waits for it.
    resume_sent: bool,
    /// The run reads as paused because a step is interrupted, not for a pause (the run's
    /// state says the same for both; the engine judges answers then).
    paused_by_interruption: bool,
}

/// Waits until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads `input` line by line on its own thread (a blocked read never holds up the exit).
fn spawn_reader(input: impl BufRead + Send + 'static) -> mpsc::UnboundedReceiver<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in input.lines() {
            match line {
                Ok(line) => {
                    if tx.send(Input::Line(line)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(Input::End);
    });
    rx
}

/// Drives a spawned engine from `input`, printing to `out`, until the engine stops.
pub async fn drive(
    handle: EngineHandle,
    setup: PlainSetup,
    input: impl BufRead + Send + 'static,
    out: impl Write + Send + 'static,
) -> Result<SessionEnd, EngineError> {
    let EngineHandle {
        commands,
        mut events,
        task,
        run_dir,
        run_id,
    } = handle;
    let mut plain = Plain {
        out: Output::spawn(out),
        run_dir: run_dir.clone(),
        skipped: None,
        setup,
        awaiting: None,
        states: HashMap::new(),
        queue: VecDeque::new(),
        run_state: None,
        last_gate: None,
        split: None,
        topology: None,
        gate: None,
        last_step_end: None,
        baking: false,
        quit_sent: false,
        still_running: HashMap::new(),
        outage_since: None,
        kill_asked: None,
        waiting_for: None,
        resume_sent: false,
        paused_by_interruption: false,
    };
    let steps = plain.setup.expanded.steps().count();
    plain.say(&format!(
        "kongup run {run_id}: plan {} ({} -> {}), {steps} steps; run directory {}",
        plain.setup.plan.name,
        plain.setup.plan.from,
        plain.setup.plan.to,
        run_dir.display()
    ));
    plain.say("type `help` for the commands");
    let mut lines = spawn_reader(input);
    let mut input_open = true;
    // The end of a terminal's input, held back for the SIGHUP that may follow it.
    let mut input_end: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => plain.on_event(event),
                None => break,
            },
            line = lines.recv(), if input_open => {
                let line = line.unwrap_or(Input::End);
                input_open = line != Input::End;
                if !input_open && plain.setup.interactive {
                    input_end = Some(tokio::time::Instant::now() + crate::engine::HANGUP_WAIT);
                } else {
                    plain.queue.push_back(line);
                }
            }
            () = sleep_until_some(input_end) => {
                input_end = None;
                plain.queue.push_back(Input::End);
            }
        }
        plain.work_queue(&commands).await;
        if let Some(state) = plain.run_state.filter(|s| s.is_over())
            && !plain.quit_sent
        {
            let how = match state {
                RunState::RolledBack => "was rolled back",
                _ => "is done",
            };
            plain.say(&format!(
                "the run {how}: `kongup report` gives the audit report"
            ));
            plain.send(&commands, Command::Quit).await;
        }
    }
    let ended = task.await.unwrap_or_else(|e| {
        Err(EngineError::Crashed {
            run_dir: run_dir.clone(),
            reason: e.to_string(),
        })
    });
    let end = match ended {
        Ok(end) => end,
        Err(error) => {
            plain.say(&format!("kongup stopped: {error}"));
            plain.out.finish().await;
            return Err(error);
        }
    };
    if end.state == RunState::Done {
        plain.say(&format!("stopped: {}. The run is done.", end.reason));
    } else if end.state == RunState::RolledBack {
        plain.say(&format!(
            "stopped: {}. The run was rolled back: the upgrade did not go through.",
            end.reason
        ));
    } else {
        plain.say(&format!(
            "stopped: {}. The run is {}; `kongup run` with the same plan resumes it.",
            end.reason,
            end.state.as_str()
        ));
    }
    plain.out.finish().await;
    Ok(end)
}

impl Plain {
    /// Prints a line (through the output thread), after saying what output was left out.
    fn say(&mut self, text: &str) {
        self.say_skipped();
        self.out.send(text.to_string());
    }

    /// Prints a line of a step's output, unless the terminal is a backlog behind: then it
    /// is counted, and said once the terminal catches up.
    fn say_output(&mut self, step: Option<String>, text: String) {
        if self.out.behind() {
            self.skip(step, 1);
            return;
        }
        self.say_skipped();
        self.out.send(text);
    }

    fn skip(&mut self, step: Option<String>, lines: u64) {
        match &mut self.skipped {
            Some((whose, count)) if *whose == step => *count += lines,
            Some(_) => {
                self.say_skipped();
                self.skipped = Some((step, lines));
            }
            None => self.skipped = Some((step, lines)),
        }
    }

    fn say_skipped(&mut self) {
        let Some((step, lines)) = self.skipped.take() else {
            return;
        };
        let log = step
            .as_deref()
            .and_then(crate::engine::journal::parse_step_key)
            .map(|step| crate::engine::rundir::step_log_path(&self.run_dir, &step))
            .map_or_else(
                || {
                    format!(
                        "the step logs in {}",
                        self.run_dir.join(crate::engine::rundir::LOGS_DIR).display()
                    )
                },
                |path| path.display().to_string(),
            );
        self.out.send(format!(
            "  … {lines} lines of output not shown here (kongup fell behind them); {log} has \
             every line"
        ));
    }

    async fn send(&mut self, commands: &mpsc::Sender<Command>, command: Command) {
        match command {
            Command::Quit | Command::Stop { .. } => self.quit_sent = true,
            Command::Resume => self.resume_sent = true,
            _ => {}
        }
        if commands.send(command).await.is_err() {
            self.say("kongup has stopped taking commands");
        }
    }

    /// Applies queued input lines as far as the engine's state allows.
    async fn work_queue(&mut self, commands: &mpsc::Sender<Command>) {
        while let Some(input) = self.queue.front().cloned() {
            if self.waiting_for.is_some() {
                return;
            }
            let line = match input {
                Input::End => {
                    self.queue.pop_front();
                    if !self.quit_sent {
                        self.say("end of input: quitting (the run stays resumable)");
                        let reason = "the input ended".to_string();
                        self.send(commands, Command::Stop { reason }).await;
                    }
                    continue;
                }
                Input::Line(line) => line,
            };
            match parse(&line) {
                Parsed::Run(command) => {
                    self.queue.pop_front();
                    self.send(commands, command).await;
                }
                Parsed::Help => {
                    self.queue.pop_front();
                    self.say(HELP);
                }
                Parsed::Blank => {
                    self.queue.pop_front();
                    self.prompt();
                }
                Parsed::Unknown(why) => {
                    self.queue.pop_front();
                    self.say(&why);
                }
                Parsed::Step(answer) => {
                    if let Some(step) = self.held_by_pause()
                        && matches!(
                            answer,
                            StepAnswer::Yes | StepAnswer::Retry | StepAnswer::Typed(_)
                        )
                    {
                        if self.resume_sent && !self.setup.interactive {
                            // From a script, `resume` then `y`: the answer waits for the
                            // engine to take the resume.
                            return;
                        }
                        // Said once, with no new prompt: a script that answers each prompt
                        // must not spin against the pause.
                        self.queue.pop_front();
                        self.say(&format!(
                            "'{line}' not taken: the run is paused and {step} waits for `resume`"
                        ));
                        continue;
                    }
                    let Some((step, state)) = self.awaiting.clone() else {
                        if self.setup.interactive {
                            self.queue.pop_front();
                            self.say(&format!(
                                "'{line}' answers a step, but none is waiting for an answer now"
                            ));
                            continue;
                        }
                        // From a script: wait until a step waits.
                        return;
                    };
                    self.queue.pop_front();
                    if let Some(command) = self.answer(step, state, answer) {
                        self.awaiting = None;
                        self.send(commands, command).await;
                    }
                }
            }
        }
    }

    /// The command an answer makes for the waiting step, or `None` (and why) when it
    /// does not fit.
    fn answer(&mut self, step: StepRef, state: StepState, answer: StepAnswer) -> Option<Command> {
        if self.kill_asked.take().as_ref() == Some(&step) {
            if answer == StepAnswer::Yes {
                return Some(Command::Kill { step });
            }
            self.say(&format!("{step}: not killed; it goes on running"));
        }
        match (self.still_running.get(&step).cloned(), &answer) {
            (Some(what), StepAnswer::Kill) => {
                self.say(&format!(
                    "kill {step}? {what}. Its whole process group gets SIGTERM, then SIGKILL \
                     after {}; the step stays interrupted, to retry or mark done once it \
                     has ended. Type y to kill it, anything else to let it run",
                    humantime::format_duration(DEFAULT_KILL_GRACE)
                ));
                self.kill_asked = Some(step);
                return None;
            }
            (Some(what), StepAnswer::Wait) => {
                self.say(&format!(
                    "waiting: {what}. kongup shows its output and records how it ends; then \
                     retry, or done NOTE"
                ));
                // A script's next lines are for after its end.
                if !self.setup.interactive {
                    self.waiting_for = Some(step);
                }
                return None;
            }
            (None, StepAnswer::Wait | StepAnswer::Kill) => {
                self.say(&format!("nothing of {step} is still running"));
                return None;
            }
            // The engine says why a retry or a note waits for the end.
            _ => {}
        }
        let irreversible =
            step_details(&self.setup.expanded, &step).is_some_and(|s| s.irreversible);
        let waiting_for_confirm = state == StepState::Ready;
        match answer {
            // The engine judges Y's health again and refuses a stage onto an unfit Y
            // without it; with it, the override is journaled.
            StepAnswer::Typed(text) if text.trim() == OVERRIDE_WORD && !irreversible => {
                let typed = Some(OVERRIDE_WORD.to_string());
                Some(if waiting_for_confirm {
                    Command::Confirm { step, typed }
                } else {
                    Command::Retry { step, typed }
                })
            }
            StepAnswer::Yes if waiting_for_confirm && irreversible => {
                self.say(&format!(
                    "{step} cannot be undone: type the plan name ({}) to confirm it",
                    self.setup.plan.name
                ));
                None
            }
            StepAnswer::Yes if waiting_for_confirm => Some(Command::Confirm { step, typed: None }),
            StepAnswer::Typed(text) if waiting_for_confirm && irreversible => {
                Some(Command::Confirm {
                    step,
                    typed: Some(text),
                })
            }
            StepAnswer::Skip(reason) => Some(Command::Skip { step, reason }),
            StepAnswer::Retry if !waiting_for_confirm && irreversible => {
                self.say(&format!(
                    "{step} cannot be undone: type the plan name ({}) to run it again",
                    self.setup.plan.name
                ));
                None
            }
            StepAnswer::Retry if !waiting_for_confirm => Some(Command::Retry { step, typed: None }),
            StepAnswer::Typed(text) if irreversible => Some(Command::Retry {
                step,
                typed: Some(text),
            }),
            StepAnswer::Done(note) if !waiting_for_confirm => {
                Some(Command::MarkDone { step, note })
            }
            StepAnswer::TakeOut { node, .. } if node.is_empty() => {
                self.say("take-out needs the node's name and why: take-out NODE REASON");
                None
            }
            // The engine judges whether NODE failed there, and refuses an empty reason.
            StepAnswer::TakeOut { node, reason } if !waiting_for_confirm => {
                Some(Command::TakeOut { step, node, reason })
            }
            StepAnswer::Typed(text) => {
                self.say(&format!("unknown command '{text}': type `help`"));
                None
            }
            _ if waiting_for_confirm => {
                self.say(&format!(
                    "{step} waits for a confirm: y, skip REASON, or `help`"
                ));
                None
            }
            _ if state == StepState::Interrupted => {
                self.say(&format!(
                    "{step} is interrupted: retry, done NOTE, skip REASON, rollback, or `help`"
                ));
                None
            }
            _ => {
                self.say(&format!(
                    "{step} is {}: retry, rollback, or `help`",
                    state.as_str()
                ));
                None
            }
        }
    }

    /// The waiting step, when the pause holds it: a forward step (a pause holds the
    /// upgrade, not its rollback) in a paused run takes no confirm or retry. An interrupted
    /// next step reads as a paused run too, without a pause: that one the engine judges.
    fn held_by_pause(&self) -> Option<StepRef> {
        let (step, state) = self.awaiting.as_ref()?;
        let held = self.run_state == Some(RunState::Paused)
            && !self.paused_by_interruption
            && *state != StepState::Interrupted
            && step.phase != crate::plan::steps::PhaseName::Rollback;
        held.then(|| step.clone())
    }

    fn prompt(&mut self) {
        if let Some(step) = self.held_by_pause() {
            self.say(&format!("kongup> {step}: paused: resume | rollback | quit"));
            return;
        }
        let Some((step, state)) = self.awaiting.clone() else {
            return;
        };
        let irreversible =
            step_details(&self.setup.expanded, &step).is_some_and(|s| s.irreversible);
        if self.still_running.contains_key(&step) {
            self.say(&format!("kongup> {step}: wait | kill | rollback | quit"));
            return;
        }
        let choices = match state {
            StepState::Ready if irreversible => format!(
                "type the plan name ({}) to confirm | skip REASON | pause | rollback | quit",
                self.setup.plan.name
            ),
            StepState::Ready if !self.y_unfit_for(&step).is_empty() => format!(
                "Y is not fit: type `{OVERRIDE_WORD}` to confirm anyway | skip REASON | pause | \
                 rollback | quit"
            ),
            StepState::Ready => "y | skip REASON | pause | rollback | quit".to_string(),
            StepState::Interrupted if irreversible => format!(
                "type the plan name ({}) to retry | done NOTE | skip REASON | rollback | quit",
                self.setup.plan.name
            ),
            StepState::Interrupted => "retry | done NOTE | skip REASON | rollback | quit".into(),
            _ if irreversible => format!(
                "type the plan name ({}) to retry | rollback | quit",
                self.setup.plan.name
            ),
            _ => "retry | rollback | quit".to_string(),
        };
        let wave_node_step =
            step_details(&self.setup.expanded, &step).is_some_and(|s| s.kind.is_wave_node_step());
        let choices = match state {
            StepState::Failed | StepState::Interrupted if wave_node_step => {
                format!("{choices} | take-out NODE REASON")
            }
            _ => choices,
        };
        self.say(&format!("kongup> {step}: {choices}"));
    }

    fn show_step(&mut self, step: &StepRef) {
        let preview = preview_step(
            &self.setup.plan,
            &self.setup.expanded,
            &self.setup.toolbox,
            step,
        );
        let Some(StepPreview {
            step: details,
            runs,
            ..
        }) = preview
        else {
            self.say(&format!("== {step} (not described by this plan)"));
            return;
        };
        let guide = if details.guide_ref.is_empty() {
            String::new()
        } else {
            format!("  [guide {}]", details.guide_ref)
        };
        self.say("");
        self.say(&format!("== {step}: {}{guide}", details.title));
        for line in details.instruction.lines() {
            self.say(format!("   {line}").trim_end());
        }
        self.say("   what runs:");
        for line in runs {
            self.say(&format!("     - {line}"));
        }
        let runs_of = |s: &StepRef| {
            preview_step(
                &self.setup.plan,
                &self.setup.expanded,
                &self.setup.toolbox,
                s,
            )
            .map_or(
                crate::engine::wave::WaveStepRuns {
                    by_hand: true,
                    bakes_without_gates: false,
                },
                |p| p.wave_runs(),
            )
        };
        for line in crate::engine::wave::confirm_lines(
            &self.setup.plan,
            &self.setup.expanded,
            step,
            runs_of,
        ) {
            self.say(&format!("   {line}"));
        }
        let y_now = self.split.map(|split| split.y);
        if let Some(warning) = crate::engine::plan_change::traffic_backwards(&details.kind, y_now) {
            self.say(&format!("   {warning}"));
        }
        let unfit = self.y_unfit_for(step);
        if !unfit.is_empty() {
            self.say("   Y IS NOT FIT for more traffic:");
            for why in &unfit {
                self.say(&format!("     ✖ {why}"));
            }
            self.say(&format!(
                "   type `{OVERRIDE_WORD}` to send the traffic anyway (journaled with your name)"
            ));
        }
        if details.irreversible {
            self.say(&format!(
                "   IRREVERSIBLE: {}",
                details
                    .irreversible_because
                    .as_deref()
                    .unwrap_or("this cannot be undone")
            ));
        }
    }

    /// Why Y should not take the traffic `step` sends it now, by the engine's rule.
    fn y_unfit_for(&self, step: &StepRef) -> Vec<String> {
        let Some(details) = step_details(&self.setup.expanded, step) else {
            return Vec::new();
        };
        let y_now = self.split.map_or(0, |split| split.y);
        match health::raises_y(step, &details.kind, y_now) {
            Some(_) => health::y_unfit(
                self.topology.as_ref(),
                self.gate.as_ref(),
                self.last_step_end,
            ),
            None => Vec::new(),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::StepChanged {
                step,
                state,
                detail,
            } => self.on_step(step, state, detail),
            Event::RunChanged(state) => {
                // A step's start and end have lines of their own: from running to waiting
                // for the operator and back is not said again at every step.
                let between_steps = [self.run_state, Some(state)]
                    .iter()
                    .all(|s| matches!(s, Some(RunState::Running | RunState::Waiting)));
                if self.run_state != Some(state) {
                    let was_paused = self.run_state == Some(RunState::Paused);
                    if !between_steps {
                        self.say(&format!("run: {}", state.title()));
                    }
                    self.run_state = Some(state);
                    self.resume_sent = false;
                    self.paused_by_interruption = state == RunState::Paused
                        && self.states.values().any(|s| *s == StepState::Interrupted);
                    // What the waiting step can take changes with the pause.
                    if was_paused || state == RunState::Paused {
                        self.prompt();
                    }
                }
            }
            Event::Log(line) => {
                let stream = match line.stream {
                    LogStream::Stdout => "out",
                    LogStream::Stderr => "err",
                    LogStream::Engine => "kongup",
                };
                let at = line.at.with_timezone(&Local).format("%H:%M:%S");
                self.say_output(line.step, format!("  {at} {stream}| {}", line.text));
            }
            Event::LogSkipped { step, lines } => self.skip(step, lines),
            Event::TrafficChanged { requested, applied } => {
                self.split = Some(applied.unwrap_or(requested));
                self.say(&match applied {
                    Some(applied) => {
                        format!(
                            "traffic: asked for {requested}; the load balancer reports {applied}"
                        )
                    }
                    None => format!("traffic: asked for {requested}; the load balancer cannot say"),
                })
            }
            // Said when it is news (the read as the run opens); preflight logs its own.
            Event::TrafficRead(split) => {
                if self.split != Some(split) {
                    self.split = Some(split);
                    self.say(&format!("traffic: the load balancer reports {split}"));
                }
            }
            Event::Bake {
                step,
                remaining_secs,
            } => {
                self.baking = remaining_secs > 0;
                if remaining_secs == 0 {
                    self.say(&format!("{step}: bake over"));
                } else if remaining_secs % 30 == 0 || remaining_secs <= 3 {
                    self.say(&format!("{step}: baking, {remaining_secs}s left"));
                }
            }
            Event::Gate(verdict) => {
                self.gate = Some(verdict.clone());
                // While Y takes no traffic and no bake counts down, the engine does not act
                // on the gates: only a failure is worth a line then.
                let watched = self.baking || self.split.is_some_and(|split| split.y > 0);
                let key = (verdict.verdict, verdict.checks.clone());
                if (watched || verdict.verdict == Verdict::Fail)
                    && self.last_gate.as_ref() != Some(&key)
                {
                    if verdict.verdict == Verdict::Fail {
                        self.say_cause(&verdict.checks.join("; "));
                    }
                    self.say(&format!(
                        "gate: {} ({}{} requests): {}",
                        crate::engine::step::verdict_name(verdict.verdict),
                        verdict
                            .figures
                            .scope
                            .map_or(String::new(), |scope| format!("{scope}, ")),
                        verdict.requests_in_window,
                        verdict.checks.join("; ")
                    ));
                    self.last_gate = Some(key);
                }
            }
            Event::RollbackProgress(progress) => self.say(&match progress {
                RollbackProgress::Started => "ROLLBACK started".to_string(),
                RollbackProgress::TrafficSafe {
                    time_to_safety_ms,
                    verified: TrafficVerification::Unverified,
                    evidence,
                } => format!(
                    "all traffic was asked of X, {evidence} (time to safety {time_to_safety_ms} ms, unverified)"
                ),
                RollbackProgress::TrafficSafe {
                    time_to_safety_ms,
                    evidence,
                    ..
                } => format!(
                    "all traffic is on X, {evidence} (time to safety {time_to_safety_ms} ms)"
                ),
                RollbackProgress::Planned { steps, .. } if steps.is_empty() => {
                    "rollback plan: nothing to undo".to_string()
                }
                RollbackProgress::Planned { steps, .. } => format!(
                    "rollback plan, each step confirmed like any other: {}",
                    steps.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
                ),
                RollbackProgress::Finished => "rollback finished".to_string(),
            }),
            Event::Warning(text) | Event::Refused(text) => self.say(&format!("! {text}")),
            Event::StillRunning { step, what } => self.on_still_running(step, what),
            Event::Outage { since } => self.on_outage(since),
            Event::Session(SessionEvent::HandoverAsked { by, until }) => self.say(&format!(
                "{by} asks to take over · `handover` hands the run over, `keep` keeps it (the \
                 request lapses at {})",
                until.with_timezone(&Local).format("%H:%M:%S")
            )),
            Event::Session(SessionEvent::HandoverClosed(text)) => self.say(&text),
            Event::Topology(snapshot) => self.topology = Some(snapshot),
            // The engine's note in the log says who started the step; a wave's failed
            // nodes are named in its step's failure.
            Event::StepStarted { .. }
            | Event::NodeOutcome { .. }
            | Event::Metrics(_)
            | Event::Session(SessionEvent::Driver(_)) => {}
        }
    }

    /// `✖ OUTAGE since 03:12:05: no cluster serves traffic`, and its end with its length.
    fn on_outage(&mut self, since: Option<DateTime<Utc>>) {
        match (since, self.outage_since) {
            (Some(since), None) => self.say(&format!(
                "✖ OUTAGE since {}: no cluster serves traffic",
                since.with_timezone(&Local).format("%H:%M:%S")
            )),
            (None, Some(from)) => self.say(&format!(
                "outage over after {}: a cluster serves traffic again",
                crate::engine::outage::clock((Utc::now() - from).num_seconds().max(0) as u64)
            )),
            _ => {}
        }
        self.outage_since = since;
    }

    fn on_still_running(&mut self, step: StepRef, what: Option<String>) {
        match what {
            Some(what) => {
                self.say(&format!("! {step}: {what}"));
                self.still_running.insert(step, what);
            }
            None => {
                if self.still_running.remove(&step).is_some() {
                    self.say(&format!("{step}: nothing of it runs any more"));
                    if self.kill_asked.as_ref() == Some(&step) {
                        self.kill_asked = None;
                    }
                    if self.waiting_for.as_ref() == Some(&step) {
                        self.waiting_for = None;
                    }
                    if self.awaiting.as_ref().is_some_and(|(s, _)| *s == step) {
                        self.prompt();
                    }
                }
            }
        }
    }

    /// `likely cause: …` (`engine::cause`), the line above a failure's details, when the
    /// watcher's topology shows one.
    fn say_cause(&mut self, detail: &str) {
        let expanded = &self.setup.expanded;
        let steps: Vec<(StepRef, &crate::plan::steps::Step, StepState)> = expanded
            .steps()
            .map(|(phase, step)| {
                let step_ref = StepRef::new(phase.name, step.id.clone());
                let state = self
                    .states
                    .get(&step_ref)
                    .copied()
                    .unwrap_or(StepState::Pending);
                (step_ref, step, state)
            })
            .collect();
        let at = steps.iter().map(|(step_ref, step, state)| StepAt {
            step_ref,
            step,
            state: *state,
        });
        let waves = crate::plan::waves::waves(&self.setup.plan);
        let up = |side| cluster_expected_up(&self.setup.plan, &waves, expanded, at.clone(), side);
        let cause = likely_cause(&Facts {
            topology: self.topology.as_ref(),
            detail: Some(detail),
            x_up: up(ClusterSide::X),
            y_up: up(ClusterSide::Y),
        });
        if let Some(cause) = cause {
            self.say(&format!("likely cause: {cause}"));
        }
    }

    fn on_step(&mut self, step: StepRef, state: StepState, detail: Option<String>) {
        let previous = self.states.insert(step.clone(), state);
        if state == StepState::Interrupted && self.run_state == Some(RunState::Paused) {
            self.paused_by_interruption = true;
        }
        if previous == Some(StepState::Running) && state != StepState::Running {
            // A step that stops running (its bake with it, if it baked).
            self.baking = false;
            self.last_step_end = Some(chrono::Utc::now());
        }
        let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
        match state {
            StepState::Pending => {
                // Its turn went (a rollback took it): an answer must not reach it.
                if self.awaiting.as_ref().is_some_and(|(s, _)| *s == step) {
                    self.awaiting = None;
                }
            }
            StepState::Ready => {
                if previous != Some(StepState::Ready) {
                    self.show_step(&step);
                }
                self.awaiting = Some((step, state));
                self.prompt();
            }
            StepState::Running => {
                if self.awaiting.as_ref().is_some_and(|(s, _)| *s == step) {
                    self.awaiting = None;
                }
                self.say(&format!("-> {step} running{detail}"));
            }
            StepState::Failed | StepState::Interrupted => {
                if previous != Some(state) {
                    self.say_cause(&detail);
                    self.say(&format!("{} {step}{detail}", state.as_str().to_uppercase()));
                }
                // During a rollback a forward step that ends badly (a stage the rollback
                // stopped) waits for nobody: the rollback's steps have the turn.
                let forward = step.phase != crate::plan::steps::PhaseName::Rollback;
                if forward && self.run_state == Some(RunState::RollingBack) {
                    if self.awaiting.as_ref().is_some_and(|(s, _)| *s == step) {
                        self.awaiting = None;
                    }
                    return;
                }
                self.awaiting = Some((step, state));
                self.prompt();
            }
            StepState::Succeeded | StepState::Skipped | StepState::RolledBack => {
                if self.awaiting.as_ref().is_some_and(|(s, _)| *s == step) {
                    self.awaiting = None;
                }
                self.say(&format!("{} {step}{detail}", state.as_str()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_takes_a_percent_and_the_override_word() {
        assert_eq!(traffic_args("25"), Some((25, false)));
        assert_eq!(traffic_args("25% override"), Some((25, true)));
        assert_eq!(traffic_args("25 yes"), None);
        assert_eq!(traffic_args("101"), None);
    }

    #[test]
    fn lines_parse_into_commands_and_answers() {
        assert_eq!(parse(" y "), Parsed::Step(StepAnswer::Yes));
        assert_eq!(
            parse("skip done last week"),
            Parsed::Step(StepAnswer::Skip("done last week".into()))
        );
        assert_eq!(parse("retry"), Parsed::Step(StepAnswer::Retry));
        assert_eq!(
            parse("done fixed by hand"),
            Parsed::Step(StepAnswer::Done("fixed by hand".into()))
        );
        assert_eq!(parse("rollback"), Parsed::Run(Command::Rollback));
        assert_eq!(parse("QUIT"), Parsed::Run(Command::Quit));
        assert_eq!(parse("handover"), Parsed::Run(Command::HandOver));
        assert_eq!(parse("keep"), Parsed::Run(Command::KeepRun));
        assert_eq!(
            parse("traffic 25%"),
            Parsed::Run(Command::SetTraffic {
                y_percent: 25,
                override_health: false,
            })
        );
        assert!(matches!(parse("traffic 250"), Parsed::Unknown(_)));
        assert_eq!(
            parse("prod-eu"),
            Parsed::Step(StepAnswer::Typed("prod-eu".into()))
        );
        assert_eq!(parse(""), Parsed::Blank);
        assert_eq!(parse("wait"), Parsed::Step(StepAnswer::Wait));
        assert_eq!(parse("kill"), Parsed::Step(StepAnswer::Kill));
        assert_eq!(
            parse("take-out dp-y-3 disk failure; OPS-1234"),
            Parsed::Step(StepAnswer::TakeOut {
                node: "dp-y-3".into(),
                reason: "disk failure; OPS-1234".into()
            })
        );
        assert_eq!(
            parse("take-out dp-y-3"),
            Parsed::Step(StepAnswer::TakeOut {
                node: "dp-y-3".into(),
                reason: String::new()
            })
        );
    }
}

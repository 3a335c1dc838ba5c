//! The console's view model. The engine owns the run; this is what the console knows of it,
//! built only from the plan and the engine's events (`apply`), plus what is the console's
//! own business: focus, selection, scrolling, the open dialog. Rendering reads it and never
//! changes it; keys turn into `UiAction`s that `apply_ui` applies.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::layout::Rect;
use tui_input::Input;

use crate::engine::event::{
    Event, LogLine, LogStream, RollbackProgress, RunState, StepState, TrafficVerification,
};
use crate::engine::expected::{self, StepAt};
use crate::engine::rollback::TRAFFIC_TO_X;
use crate::engine::{StepPreview, Toolbox};
use crate::kong::topology::{NodeHealth, TopologySnapshot};
use crate::lb::Split;
use crate::metrics::{GateVerdict, MetricsSnapshot, Verdict};
use crate::plan::model::{Plan, Role};
use crate::plan::steps::{ClusterSide, ExpandedPlan, PhaseName, Step, StepRef};

use super::keys::{ScrollDelta, TopologyAction, UiAction};
use super::layout::{MIN_HEIGHT, MIN_WIDTH};
use super::panes::topology_view::TopologyView;
use super::theme::{Theme, Tone, step_symbol};

mod read;
mod session;
mod waves;

pub use session::Watching;
pub use waves::{WaveNode, WaveNodeState, WaveProgress};

/// Log lines kept in memory; the full logs are in the run directory.
pub const LOG_CAPACITY: usize = 5_000;
/// How much metrics history the sparklines draw from.
pub const METRICS_WINDOW_SECS: i64 = 600;

/// What the sparklines cover when no bake runs.
pub const SPARKLINE_SECS: i64 = 120;
/// Beyond this many samples the oldest go, even inside the window (fast scrapes).
const METRICS_CAPACITY: usize = 3_600;
/// Rows moved by PgUp/PgDn.
const PAGE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Checklist,
    Logs,
    Topology,
    Metrics,
}

impl Pane {
    /// Tab order: the left column, then the right one.
    pub const ORDER: [Pane; 4] = [Pane::Checklist, Pane::Logs, Pane::Topology, Pane::Metrics];

    pub fn next(self) -> Pane {
        let i = Pane::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        Pane::ORDER[(i + 1) % Pane::ORDER.len()]
    }

    pub fn prev(self) -> Pane {
        let i = Pane::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        Pane::ORDER[(i + Pane::ORDER.len() - 1) % Pane::ORDER.len()]
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Checklist => "Checklist",
            Pane::Logs => "Logs",
            Pane::Topology => "Topology",
            Pane::Metrics => "Metrics",
        }
    }
}

/// What the console knows of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatus {
    pub state: StepState,
    /// Exit status, failure reason, skip reason or note, as the engine said it.
    pub detail: Option<String>,
    /// When the console saw the step start running.
    pub running_since: Option<DateTime<Utc>>,
    /// Seconds left of a bake, while one counts down.
    pub bake_remaining: Option<u64>,
    /// What still runs of it though kongup no longer waits on it (its command, found
    /// running after kongup stopped), in the engine's words.
    pub still_running: Option<String>,
    /// A wave's node step: how it last ended on each of its nodes (`None`: done there,
    /// else why it failed), as the engine journaled it.
    pub nodes: BTreeMap<String, Option<String>>,
}

/// Says exactly what confirming a step runs and where. Called once per step, when the
/// console first meets it, never while drawing.
#[derive(Clone)]
pub struct Previewer(Arc<PreviewFn>);

type PreviewFn = dyn Fn(&StepRef) -> Option<StepPreview> + Send + Sync;

impl Previewer {
    pub fn new(preview: impl Fn(&StepRef) -> Option<StepPreview> + Send + Sync + 'static) -> Self {
        Previewer(Arc::new(preview))
    }

    /// The engine's own words (`engine::preview_step`) from the run's toolbox.
    pub fn from_engine(plan: Arc<Plan>, expanded: Arc<ExpandedPlan>, toolbox: Toolbox) -> Self {
        Previewer::new(move |step| crate::engine::preview_step(&plan, &expanded, &toolbox, step))
    }

    fn preview(&self, step: &StepRef) -> Option<StepPreview> {
        (self.0)(step)
    }
}

impl std::fmt::Debug for Previewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Previewer")
    }
}

/// A key bound by whoever starts the console (the demo binds the lab's faults): listed in
/// the help under the built-in keys; pressed with no dialog open, it runs `action` and the
/// footer shows its answer. Built-in keys cannot be rebound.
#[derive(Clone)]
pub struct ExtraKey {
    pub key: char,
    pub label: String,
    pub action: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for ExtraKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtraKey({:?}, {:?})", self.key, self.label)
    }
}

/// A step as the console knows it: a forward step of the plan, or a rollback step
/// (`rollback/…`) as the engine offers it.
#[derive(Debug, Clone)]
pub struct StepEntry {
    pub step_ref: StepRef,
    pub step: Step,
    /// What confirming it runs and where, one line each (the engine's words).
    pub runs: Vec<String>,
    /// Nothing runs: the operator does it, and the confirm records it.
    pub by_hand: bool,
    /// A bake no gate source judges: a wave does not go on past it.
    pub bakes_without_gates: bool,
    pub status: StepStatus,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Stdout,
    Stderr,
    /// A line from the engine.
    Engine,
    /// A transition the console saw in the engine's events (step, run, traffic, gate).
    Event(Tone),
    Warning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub step: Option<String>,
    pub kind: LogKind,
    pub text: String,
}

/// The traffic split as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficView {
    pub requested: Split,
    pub applied: Option<Split>,
}

impl TrafficView {
    /// The split to draw: what the load balancer reports, else what was asked of it.
    pub fn shown(&self) -> Split {
        self.applied.unwrap_or(self.requested)
    }

    pub fn mismatch(&self) -> bool {
        self.applied.is_some_and(|a| a != self.requested)
    }
}

/// The rollback's first act, as the console tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackTraffic {
    /// `R` was pressed; the engine has not answered yet.
    Asked,
    /// The engine is sending all traffic to X.
    Moving,
    /// All traffic is on X, `ms` after the command.
    Safe { ms: u64 },
    /// No traffic had moved to Y: the load balancer is left alone.
    NeverMoved,
    /// X cannot serve yet: traffic goes back at a step of the rollback plan.
    AStepOfThePlan,
    /// X cannot serve and nothing in the plan gives it back: traffic stays.
    Stays,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollbackView {
    pub started: bool,
    pub time_to_safety_ms: Option<u64>,
    /// How the first act was verified, and the engine's words for it.
    pub traffic_verified: Option<(TrafficVerification, String)>,
    /// The rollback steps, in the order the engine offers them (`rollback/…`).
    pub planned: Option<Vec<StepRef>>,
    /// The engine's note on the plan (why X cannot serve, a phase not undone).
    pub note: Option<String>,
    pub finished: bool,
}

/// What a text prompt is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPurpose {
    Skip(StepRef),
    MarkDone(StepRef),
    LogFilter,
    /// The traffic split by hand: percent to Y.
    SetTraffic,
}

/// The open dialog, if any. Keys go to it first. Every dialog's text scrolls as a whole
/// (the console's `dialog_scroll`, back to the top whenever another dialog opens).
#[derive(Debug, Clone)]
pub enum Modal {
    /// Shows what a step will run and where; Enter runs it. `retry`: the step failed or
    /// was interrupted and runs again. `typed`: the override word, asked when the step
    /// would send traffic to a Y found unfit.
    Confirm {
        step: StepRef,
        retry: bool,
        typed: Input,
    },
    /// Like `Confirm`, plus the plan name typed, and what cannot be undone. `retry`: the
    /// step failed or was interrupted and runs again (a retry needs the name typed too).
    Irreversible {
        step: StepRef,
        typed: Input,
        retry: bool,
    },
    /// Enter on a step that cannot be confirmed now: all of it, read-only.
    StepView {
        step: StepRef,
    },
    Prompt {
        purpose: PromptPurpose,
        input: Input,
    },
    /// `o` on a failed wave start or stop step: the failed node's name typed, then the
    /// reason (`reason` is `None` while the name is typed).
    TakeOut {
        step: StepRef,
        node: Input,
        reason: Option<Input>,
    },
    /// The rollback: traffic to X first, then the steps to confirm.
    Rollback,
    Help,
    /// `x` while a step runs: what stopping it means, before anything is sent.
    Abort {
        step: StepRef,
    },
    /// `q` while a step runs: it finishes in the background.
    QuitWhileRunning {
        step: StepRef,
    },
    /// An interrupted step whose command still runs: wait for it, or kill it. `kill`: the
    /// kill was chosen and waits for its `y`.
    StillRunning {
        step: StepRef,
        kill: bool,
    },
    /// Another kongup asks to take the run over (`kongup run --take-over`); the request
    /// lapses at `until`.
    Handover {
        by: String,
        until: DateTime<Utc>,
    },
}

/// A message in the footer: it belongs to the moment it answers, so it stays until the
/// next key or the next change of the run or of a step (not a timer: an operator who
/// looked away still reads why a key was refused).
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub tone: Tone,
}

/// The console's whole view of a run.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    plan: Plan,
    expanded: ExpandedPlan,
    /// The plan's waves (`rolling:`), resolved once: nodes by wave, for the checklist and
    /// for which nodes are up as planned.
    waves: Vec<crate::plan::waves::Wave>,
    /// The wave of each entry (`entries`' order), if any.
    wave_numbers: Vec<Option<usize>>,
    /// The wave whose nodes the checklist lists (→), while the selection is in it.
    expanded_wave: Option<usize>,
    /// Every step in run order; rollback steps join at the end as the engine plans them.
    entries: Vec<StepEntry>,
    index: HashMap<StepRef, usize>,
    previewer: Previewer,
    run: RunState,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    traffic: Option<TrafficView>,
    topology: Option<TopologySnapshot>,
    /// The snapshot as the engine sent it; `topology` is it as shown, redone when a step
    /// changes what the plan has up.
    topology_sent: Option<TopologySnapshot>,
    metrics: VecDeque<MetricsSnapshot>,
    gate: Option<GateVerdict>,
    /// The gate label last written to the log, so the log says each change once.
    gate_logged: Option<&'static str>,
    /// The log line of the gate breaching now (its text, found again from the newest) and
    /// how many breaching verdicts it stands for. Each new one updates it, so a gate that
    /// keeps breaching is one line, not a screenful of the same.
    breach_line: Option<(String, u32)>,
    /// The screen last drawn on, so a dialog scrolls no further than its last page.
    screen: Rect,
    /// When a step was last seen to end: a topology snapshot older than that is not Y now
    /// (`engine::health`).
    last_step_end: Option<DateTime<Utc>>,
    /// Since when no cluster serves traffic, as the engine journaled it
    /// (`engine::outage`).
    outage_since: Option<DateTime<Utc>>,
    /// A step whose confirm or retry was sent and that the engine has not answered yet
    /// (started, refused or failed): it counts as running for `q`.
    starting: Option<StepRef>,
    rollback: RollbackView,
    logs: VecDeque<LogEntry>,
    engine_stopped: bool,
    theme: Theme,
    focus: Pane,
    zoomed: bool,
    selected: usize,
    log_follow: bool,
    /// Lines between the newest shown line and the newest matching line.
    log_offset: usize,
    log_filter: Option<String>,
    topology_offset: usize,
    /// The topology as the pane shows it, redone when `topology` or the filter changes.
    topology_view: TopologyView,
    /// The zoom's filter line while it is typed in (the filter applies as it is typed).
    topology_filter_input: Option<Input>,
    /// The row of the zoom (a position in the view's shown rows) `n`/`N` last jumped to.
    topology_mark: Option<usize>,
    metrics_offset: usize,
    modal: Option<Modal>,
    /// Rows the open dialog's text is scrolled down.
    dialog_scroll: usize,
    flash: Option<Flash>,
    extra_keys: Vec<ExtraKey>,
    /// Set when the console watches a run another kongup drives (`kongup watch`).
    watching: Option<Watching>,
}

impl ConsoleState {
    /// The view of a run that began at `started_at` (from the journal), before any event.
    pub fn new(
        plan: &Plan,
        expanded: &ExpandedPlan,
        started_at: DateTime<Utc>,
        theme: Theme,
        previewer: Previewer,
    ) -> Self {
        let mut state = ConsoleState {
            plan: plan.clone(),
            expanded: expanded.clone(),
            waves: crate::plan::waves::waves(plan),
            wave_numbers: Vec::new(),
            expanded_wave: None,
            entries: Vec::new(),
            index: HashMap::new(),
            previewer,
            run: RunState::Idle,
            started_at,
            now: started_at,
            ended_at: None,
            traffic: None,
            topology: None,
            topology_sent: None,
            metrics: VecDeque::new(),
            gate: None,
            gate_logged: None,
            breach_line: None,
            screen: Rect::new(0, 0, MIN_WIDTH, MIN_HEIGHT),
            outage_since: None,
            starting: None,
            last_step_end: None,
            rollback: RollbackView::default(),
            logs: VecDeque::new(),
            engine_stopped: false,
            theme,
            focus: Pane::Checklist,
            zoomed: false,
            selected: 0,
            log_follow: true,
            log_offset: 0,
            log_filter: None,
            topology_offset: 0,
            topology_view: TopologyView::new(
                super::panes::topology::from_plan(plan),
                false,
                &crate::plan::waves::waves(plan),
            ),
            topology_filter_input: None,
            topology_mark: None,
            metrics_offset: 0,
            modal: None,
            dialog_scroll: 0,
            flash: None,
            extra_keys: Vec::new(),
            watching: None,
        };
        for (phase, step) in expanded.steps() {
            state.add_step(StepRef::new(phase.name, step.id.clone()), step.clone());
        }
        let rolling =
            crate::plan::waves::rolling_phase(plan.mode).filter(|_| !state.waves.is_empty());
        state.wave_numbers = waves::wave_numbers(&state.entries, rolling);
        for warning in &expanded.warnings {
            state.push_log(None, LogKind::Warning, warning.clone());
        }
        state
    }

    fn add_step(&mut self, step_ref: StepRef, step: Step) -> usize {
        let (runs, by_hand, bakes_without_gates) = self
            .previewer
            .preview(&step_ref)
            .map(|p| (p.runs, p.by_hand, p.bakes_without_gates))
            .unwrap_or_else(|| {
                (
                    vec!["(kongup cannot say what this step runs)".to_string()],
                    true,
                    false,
                )
            });
        self.index.insert(step_ref.clone(), self.entries.len());
        self.wave_numbers.push(None);
        self.entries.push(StepEntry {
            step_ref,
            step,
            runs,
            by_hand,
            bakes_without_gates,
            status: StepStatus {
                state: StepState::Pending,
                detail: None,
                running_since: None,
                bake_remaining: None,
                still_running: None,
                nodes: BTreeMap::new(),
            },
        });
        self.entries.len() - 1
    }

    /// The step's place, adding a rollback step the first time the engine names it.
    fn entry_index(&mut self, step: &StepRef) -> Option<usize> {
        if let Some(&i) = self.index.get(step) {
            return Some(i);
        }
        if step.phase != PhaseName::Rollback {
            return None;
        }
        let details = crate::engine::step_details(&self.expanded, step)?;
        Some(self.add_step(step.clone(), details))
    }

    // ---- the reducer -------------------------------------------------------------------

    /// Folds one engine event into the view.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::StepChanged {
                step,
                state,
                detail,
            } => self.step_changed(step, *state, detail.clone()),
            Event::RunChanged(run) => {
                let previous = self.run;
                self.run = *run;
                if previous != *run {
                    self.flash = None;
                }
                // The clock stops when the run is over (a failed step waits for the operator:
                // the clock goes on).
                self.ended_at = if run.is_over() {
                    self.ended_at.or(Some(self.now))
                } else {
                    None
                };
                // A step's start and end are in the log already: going from running to
                // waiting for the operator and back is not said again each time.
                let between_steps = [previous, *run]
                    .iter()
                    .all(|s| matches!(s, RunState::Idle | RunState::Running | RunState::Waiting));
                if previous != *run && !between_steps {
                    let (symbol, label, tone) = super::theme::run_label(*run);
                    self.push_log(None, LogKind::Event(tone), format!("{symbol} run {label}"));
                }
            }
            // The engine's note in the log says who started the step.
            Event::StepStarted { .. } => {}
            Event::NodeOutcome { step, node, failed } => {
                if let Some(&i) = self.index.get(step) {
                    self.entries[i]
                        .status
                        .nodes
                        .insert(node.clone(), failed.clone());
                }
            }
            Event::Log(line) => self.push_engine_log(line),
            Event::LogSkipped { step, lines } => self.push_log(
                step.clone(),
                LogKind::Engine,
                format!(
                    "… {lines} lines not shown: the screen fell behind the output (the step's \
                     log file has every line)"
                ),
            ),
            Event::TrafficChanged { requested, applied } => {
                self.traffic = Some(TrafficView {
                    requested: *requested,
                    applied: *applied,
                });
                let (text, tone) = match applied {
                    Some(a) if a == requested => (
                        format!("traffic {a} (load balancer confirmed)"),
                        Tone::Plain,
                    ),
                    Some(a) => (
                        format!("⚠ traffic requested {requested}, load balancer reports {a}"),
                        Tone::Warn,
                    ),
                    None => (
                        format!("traffic requested {requested} (load balancer cannot report)"),
                        Tone::Plain,
                    ),
                };
                self.push_log(None, LogKind::Event(tone), text);
            }
            // A fresh read-back: what the load balancer applies now (the step's own log
            // says so).
            Event::TrafficRead(split) => {
                self.traffic = Some(TrafficView {
                    requested: self.traffic.map_or(*split, |t| t.requested),
                    applied: Some(*split),
                });
            }
            Event::Bake {
                step,
                remaining_secs,
            } => {
                if let Some(&i) = self.index.get(step) {
                    self.entries[i].status.bake_remaining = Some(*remaining_secs);
                }
            }
            Event::Gate(verdict) => {
                let watched = self.gate_watched();
                let label = super::theme::verdict_label(verdict.verdict, watched);
                let changed = self.gate_logged != Some(label.1);
                if changed {
                    self.breach_line = None;
                }
                if verdict.verdict == Verdict::Fail && self.breach_line.is_some() {
                    self.gate_logged = Some(label.1);
                    self.breach_again(verdict, label);
                } else if changed || verdict.verdict == Verdict::Fail {
                    self.gate_logged = Some(label.1);
                    let (symbol, label, tone) = label;
                    let mut text = format!("{symbol} gate {label}");
                    if label == super::theme::IDLE {
                        text.push_str(&format!(": {}", self.gate_idle_because()));
                    } else if let Some(scope) = verdict.figures.scope {
                        text.push_str(&format!(" · {scope}"));
                    }
                    if verdict.verdict == Verdict::Fail {
                        text.push_str(&format!(
                            " ({} in a row): {}",
                            verdict.consecutive_breaches,
                            verdict.checks.join("; ")
                        ));
                    }
                    if verdict.verdict == Verdict::Fail {
                        self.breach_line = Some((text.clone(), 1));
                    }
                    self.push_log(None, LogKind::Event(tone), text);
                }
                self.gate = Some(verdict.clone());
            }
            Event::Metrics(snapshot) => self.push_metrics(snapshot.clone()),
            Event::Topology(snapshot) => {
                self.topology_sent = Some(snapshot.clone());
                self.refresh_topology();
            }
            Event::RollbackProgress(progress) => self.rollback_progress(progress),
            Event::Warning(text) => self.push_log(None, LogKind::Warning, text.clone()),
            Event::Refused(text) => {
                // The engine answers commands in order: a refusal answers the confirm.
                self.starting = None;
                self.push_log(None, LogKind::Warning, text.clone());
                self.flash(text.clone(), Tone::Warn);
            }
            Event::StillRunning { step, what } => self.still_running_changed(step, what),
            Event::Outage { since } => self.outage_changed(*since),
            Event::Session(event) => self.session_event(event),
        }
    }

    fn outage_changed(&mut self, since: Option<DateTime<Utc>>) {
        match (since, self.outage_since) {
            (Some(_), None) => self.push_log(
                None,
                LogKind::Event(Tone::Bad),
                "✖ OUTAGE: no cluster serves traffic".to_string(),
            ),
            (None, Some(from)) => {
                let secs = (self.now - from).num_seconds().max(0) as u64;
                self.push_log(
                    None,
                    LogKind::Event(Tone::Good),
                    format!(
                        "✔ outage over after {}: a cluster serves traffic again",
                        crate::engine::outage::clock(secs)
                    ),
                );
            }
            _ => {}
        }
        self.outage_since = since;
        self.refresh_topology();
    }

    fn still_running_changed(&mut self, step: &StepRef, what: &Option<String>) {
        let Some(i) = self.entry_index(step) else {
            return;
        };
        let status = &mut self.entries[i].status;
        let was = status
            .still_running
            .replace(what.clone().unwrap_or_default());
        if what.is_none() {
            status.still_running = None;
        }
        match what {
            Some(what) if was.as_ref() != Some(what) => {
                self.selected = i;
                self.push_log(
                    Some(step_label(step)),
                    LogKind::Event(Tone::Warn),
                    format!("⚠ {}: {what}", step_label(step)),
                );
            }
            None if was.is_some() => {
                self.push_log(
                    Some(step_label(step)),
                    LogKind::Event(Tone::Plain),
                    format!("{}: nothing of it runs any more", step_label(step)),
                );
            }
            _ => {}
        }
        self.close_stale_modal();
    }

    fn step_changed(&mut self, step: &StepRef, new: StepState, detail: Option<String>) {
        let Some(i) = self.entry_index(step) else {
            self.push_log(
                None,
                LogKind::Warning,
                format!("the engine reports step {step}, which is not in this plan"),
            );
            return;
        };
        let old = self.entries[i].status.state;
        if self.starting.as_ref() == Some(step) && new != StepState::Ready {
            self.starting = None;
        }
        if old == StepState::Running && new != StepState::Running {
            self.last_step_end = Some(self.now);
        }
        let status = &mut self.entries[i].status;
        status.state = new;
        status.detail = detail.clone();
        if new == StepState::Running {
            if old != StepState::Running {
                status.running_since = Some(self.now);
            }
            // As the engine's view: a retry or a resume goes on from the nodes done, any
            // other start begins with none.
            if !matches!(
                old,
                StepState::Running | StepState::Failed | StepState::Interrupted
            ) {
                status.nodes.clear();
            }
        } else {
            status.bake_remaining = None;
        }
        if old == new {
            return;
        }
        // A message of the moment before is about a step that has moved on.
        self.flash = None;
        // Said when the engine starts it again, not when the key was pressed: the engine
        // may refuse the retry.
        if new == StepState::Running && matches!(old, StepState::Failed | StepState::Interrupted) {
            self.flash(format!("retrying {step}"), Tone::Plain);
        }
        // Steps that ask something of the operator take the selection.
        if matches!(
            new,
            StepState::Ready | StepState::Running | StepState::Failed | StepState::Interrupted
        ) {
            self.selected = i;
        }
        self.close_stale_modal();
        // The start of a run reports every step; only transitions worth reading are logged.
        let worth_logging = matches!(
            new,
            StepState::Ready | StepState::Running | StepState::Failed | StepState::Interrupted
        ) || old == StepState::Running
            || (new == StepState::Skipped && old == StepState::Ready)
            || (new == StepState::RolledBack && old != StepState::Pending);
        if worth_logging {
            let (symbol, word, tone) = step_symbol(new);
            let mut text = format!("{symbol} {} {word}", step_label(step));
            if let Some(detail) = detail {
                text.push_str(": ");
                text.push_str(&detail);
            }
            self.push_log(Some(step_label(step)), LogKind::Event(tone), text);
        }
        self.refresh_topology();
    }

    /// The topology as shown: a node that does not answer because the plan does not have it
    /// up at this point (see [`Self::node_expected_up`]) reads as absent, not as a failure.
    /// Not during an outage: then no node down is "as planned", it is why nothing serves.
    fn refresh_topology(&mut self) {
        let Some(mut snapshot) = self.topology_sent.clone() else {
            return;
        };
        let outage = self.outage_since.is_some();
        for node in &mut snapshot.nodes {
            if !outage
                && matches!(node.health, NodeHealth::Unreachable(_))
                && !self.named_node_expected_up(node.cluster, node.role, &node.name)
            {
                node.health = NodeHealth::Absent;
            }
        }
        // Nothing the pane shows changed: keep the view (and the zoom's place in it).
        if self.topology.as_ref() == Some(&snapshot) {
            return;
        }
        let mut view = TopologyView::new(snapshot.clone(), true, &self.waves);
        view.set_filter(self.topology_view.filter());
        self.topology_view = view;
        let shown = self.topology_view.shown().len();
        self.topology_mark = self.topology_mark.filter(|&m| m < shown);
        self.topology = Some(snapshot);
    }

    /// A dialog about a step whose state moved on no longer asks the right question.
    fn close_stale_modal(&mut self) {
        let stale = match &self.modal {
            Some(Modal::Confirm { step, retry, .. })
            | Some(Modal::Irreversible { step, retry, .. }) => {
                if *retry {
                    !self.can_retry(step)
                } else {
                    !self.can_confirm(step)
                }
            }
            Some(Modal::Prompt {
                purpose: PromptPurpose::Skip(step),
                ..
            }) => self.step_state(step) != Some(StepState::Ready),
            Some(Modal::Prompt {
                purpose: PromptPurpose::MarkDone(step),
                ..
            }) => self.step_state(step) != Some(StepState::Interrupted),
            Some(Modal::TakeOut { step, .. }) => !self.can_take_out_of(step),
            Some(Modal::QuitWhileRunning { step }) => {
                self.step_state(step) != Some(StepState::Running)
                    && self.starting.as_ref() != Some(step)
            }
            Some(Modal::StillRunning { step, .. }) => self.still_running(step).is_none(),
            _ => false,
        };
        if stale {
            self.set_modal(None);
            self.flash("the step's state changed: dialog closed", Tone::Warn);
        }
    }

    fn rollback_progress(&mut self, progress: &RollbackProgress) {
        let text = match progress {
            RollbackProgress::Started => {
                self.rollback = RollbackView {
                    started: true,
                    ..RollbackView::default()
                };
                "↺ rollback started: all traffic to X first".to_string()
            }
            RollbackProgress::TrafficSafe {
                time_to_safety_ms,
                verified,
                evidence,
            } => {
                self.rollback.started = true;
                self.rollback.time_to_safety_ms = Some(*time_to_safety_ms);
                self.rollback.traffic_verified = Some((*verified, evidence.clone()));
                match verified {
                    TrafficVerification::ReadBack => {
                        format!("✔ all traffic on X in {time_to_safety_ms} ms: {evidence}")
                    }
                    TrafficVerification::OperatorConfirmed | TrafficVerification::Unverified => {
                        format!("⚠ all traffic to X asked in {time_to_safety_ms} ms: {evidence}")
                    }
                }
            }
            RollbackProgress::Planned { steps, note } => {
                self.rollback.started = true;
                self.rollback.note = note.clone();
                for step in steps {
                    self.entry_index(step);
                }
                self.rollback.planned = Some(steps.clone());
                if self.modal.is_none() {
                    self.set_modal(Some(Modal::Rollback));
                }
                format!("↺ rollback plan: {} step(s) to confirm", steps.len())
            }
            RollbackProgress::Finished => {
                self.rollback.finished = true;
                "✔ rollback finished".to_string()
            }
        };
        self.push_log(None, LogKind::Event(Tone::Warn), text);
    }

    /// The gate breached again: its line says how many times and the latest breaching
    /// checks, and moves to the bottom (the newest news), `✖ gate BREACHED ×12 · latest: Y
    /// 5xx 26.60% > 1.00%`.
    fn breach_again(&mut self, verdict: &GateVerdict, label: (&str, &str, Tone)) {
        let Some((last, count)) = self.breach_line.take() else {
            return;
        };
        let (symbol, word, tone) = label;
        let latest = breaching_checks(&verdict.checks).join("; ");
        let text = format!("{symbol} gate {word} ×{} · latest: {latest}", count + 1);
        // Its place now (from the newest: it is rarely far); gone, older than the ring
        // keeps, it is written anew.
        let at = self
            .logs
            .iter()
            .rposition(|e| e.kind == LogKind::Event(tone) && e.text == last);
        if let Some(i) = at
            && let Some(old) = self.logs.remove(i)
        {
            // Reading back through the logs: what is on screen must not move. The pane's
            // offset counts matching lines from the newest; a line taken from below the
            // view shortens it by one (pushing the new one adds it back).
            if !self.log_follow && self.log_matches(&old) {
                let below = self
                    .logs
                    .iter()
                    .skip(i)
                    .filter(|e| self.log_matches(e))
                    .count();
                if below < self.log_offset {
                    self.log_offset -= 1;
                }
            }
        }
        self.breach_line = Some((text.clone(), count + 1));
        self.push_log(None, LogKind::Event(tone), text);
    }

    fn push_engine_log(&mut self, line: &LogLine) {
        let kind = match line.stream {
            LogStream::Stdout => LogKind::Stdout,
            LogStream::Stderr => LogKind::Stderr,
            LogStream::Engine => LogKind::Engine,
        };
        self.push_entry(LogEntry {
            at: line.at,
            step: line.step.clone(),
            kind,
            text: line.text.clone(),
        });
    }

    fn push_log(&mut self, step: Option<String>, kind: LogKind, text: String) {
        self.push_entry(LogEntry {
            at: self.now,
            step,
            kind,
            text,
        });
    }

    fn push_entry(&mut self, entry: LogEntry) {
        if self.logs.len() == LOG_CAPACITY {
            self.logs.pop_front();
        }
        // Reading back through the logs: new lines must not move what is on screen.
        if !self.log_follow && self.log_matches(&entry) {
            self.log_offset += 1;
        }
        self.logs.push_back(entry);
    }

    fn push_metrics(&mut self, snapshot: MetricsSnapshot) {
        let newest = snapshot.at;
        // Only the newest snapshot's per-node lists are drawn; kept in every snapshot of
        // the window, a fleet's (a thousand unreachable nodes named each round) held
        // ~130 KB a snapshot, most of the console's memory.
        if let Some(previous) = self.metrics.back_mut() {
            for figures in [&mut previous.x, &mut previous.y] {
                figures.scrape_errors = Vec::new();
                figures.empty_configuration = Vec::new();
            }
        }
        self.metrics.push_back(snapshot);
        let horizon = newest - TimeDelta::seconds(METRICS_WINDOW_SECS);
        while self
            .metrics
            .front()
            .is_some_and(|s| s.at < horizon || self.metrics.len() > METRICS_CAPACITY)
        {
            self.metrics.pop_front();
        }
    }

    /// Tells the view what time it is (the clock is injected, so tests are deterministic).
    /// Returns whether anything on screen changes with it.
    pub fn set_now(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.elapsed_secs();
        let running_before = self.running_secs();
        self.now = now;
        before != self.elapsed_secs() || running_before != self.running_secs()
    }

    /// The engine's event stream ended: nothing on screen will change any more.
    pub fn engine_stopped(&mut self) {
        self.starting = None;
        if !self.engine_stopped {
            self.engine_stopped = true;
            self.push_log(
                None,
                LogKind::Warning,
                "the engine stopped: the screen no longer changes; q to leave".into(),
            );
        }
    }

    pub fn flash(&mut self, text: impl Into<String>, tone: Tone) {
        self.flash = Some(Flash {
            text: text.into(),
            tone,
        });
    }

    /// A key was pressed: the last message answered the moment before it. Called before
    /// the key's own actions are applied, so a key that answers replaces it. (A key's
    /// release, where the terminal reports one, is not a new moment.)
    pub fn key_pressed(&mut self, key: &crossterm::event::KeyEvent) {
        if key.kind != crossterm::event::KeyEventKind::Release {
            self.flash = None;
        }
    }

    // ---- the console's own actions -----------------------------------------------------

    /// Applies what a key asked of the view. `Exit` and `Redraw` are the loop's business.
    pub fn apply_ui(&mut self, action: UiAction) {
        match action {
            UiAction::FocusNext => self.focus = self.focus.next(),
            UiAction::FocusPrev => self.focus = self.focus.prev(),
            UiAction::ToggleZoom => self.zoomed = !self.zoomed,
            UiAction::Scroll(pane, delta) => self.scroll(pane, delta),
            UiAction::ScrollDialog(delta) => self.scroll_dialog(delta),
            UiAction::ToggleFollow => {
                self.log_follow = !self.log_follow;
                if self.log_follow {
                    self.log_offset = 0;
                }
            }
            UiAction::Open(modal) => self.set_modal(Some(modal)),
            UiAction::Close => self.set_modal(None),
            UiAction::Edit(request) => {
                if let Some(
                    Modal::Irreversible { typed: input, .. }
                    | Modal::Confirm { typed: input, .. }
                    | Modal::Prompt { input, .. }
                    | Modal::TakeOut {
                        reason: Some(input),
                        ..
                    }
                    | Modal::TakeOut {
                        node: input,
                        reason: None,
                        ..
                    },
                ) = &mut self.modal
                {
                    input.handle(request);
                }
            }
            UiAction::SetLogFilter(filter) => {
                self.log_filter = filter.filter(|f| !f.trim().is_empty());
                self.log_offset = 0;
                self.log_follow = true;
            }
            UiAction::Topology(action) => self.topology_action(action),
            UiAction::Flash(text, tone) => self.flash(text, tone),
            UiAction::Refusal(text) => self.flash(text, Tone::Warn),
            UiAction::AwaitStart(step) => self.starting = Some(step),
            UiAction::ExpandWave => self.expanded_wave = self.wave_of_step(self.selected),
            UiAction::FoldWave => self.expanded_wave = None,
            UiAction::Redraw | UiAction::Exit | UiAction::RunExtra(_) => {}
        }
    }

    fn scroll(&mut self, pane: Pane, delta: ScrollDelta) {
        fn moved(at: usize, delta: ScrollDelta, max: usize) -> usize {
            match delta {
                ScrollDelta::Up(n) => at.saturating_sub(n),
                ScrollDelta::Down(n) => (at + n).min(max),
                ScrollDelta::PageUp => at.saturating_sub(PAGE),
                ScrollDelta::PageDown => (at + PAGE).min(max),
                ScrollDelta::Top => 0,
                ScrollDelta::Bottom => max,
            }
        }
        match pane {
            Pane::Checklist => {
                self.selected = moved(self.selected, delta, self.entries.len().saturating_sub(1));
                // Out of the wave expanded: it folds, and does not open again on return.
                if self.expanded_wave != self.wave_of_step(self.selected) {
                    self.expanded_wave = None;
                }
            }
            Pane::Logs => {
                // The offset counts up from the newest line; at zero the pane follows. At
                // its greatest, the first line is on the pane's top row.
                let max = super::panes::logs::max_offset(self, self.logs_area());
                let offset = self.log_offset;
                self.log_offset = match delta {
                    ScrollDelta::Up(n) => (offset + n).min(max),
                    ScrollDelta::Down(n) => offset.saturating_sub(n),
                    ScrollDelta::PageUp => (offset + PAGE).min(max),
                    ScrollDelta::PageDown => offset.saturating_sub(PAGE),
                    ScrollDelta::Top => max,
                    ScrollDelta::Bottom => 0,
                };
                self.log_follow = self.log_offset == 0;
            }
            Pane::Topology => {
                let max = self.topology_max_offset();
                self.topology_offset = moved(self.topology_offset.min(max), delta, max);
                self.topology_mark = None;
            }
            Pane::Metrics => {
                let max = self.gate.as_ref().map_or(0, |g| g.checks.len());
                self.metrics_offset = moved(self.metrics_offset, delta, max);
            }
        }
    }

    /// The zoom's filter line and its jumps to failing nodes.
    fn topology_action(&mut self, action: TopologyAction) {
        match action {
            TopologyAction::OpenFilter => {
                self.topology_filter_input =
                    Some(Input::new(self.topology_view.filter().to_string()));
            }
            TopologyAction::EditFilter(request) => {
                if let Some(input) = &mut self.topology_filter_input {
                    input.handle(request);
                    let filter = input.value().to_string();
                    self.set_topology_filter(&filter);
                }
            }
            TopologyAction::KeepFilter => self.topology_filter_input = None,
            TopologyAction::ClearFilter => {
                self.topology_filter_input = None;
                self.set_topology_filter("");
            }
            TopologyAction::NextFailing | TopologyAction::PreviousFailing => {
                let back = action == TopologyAction::PreviousFailing;
                let from = self.topology_mark.or_else(|| {
                    // Unmarked: from the top row shown, so `n` finds the first below it.
                    (self.topology_offset > 0).then(|| self.topology_offset - 1)
                });
                let Some(position) = self.topology_view.next_failing(from, back) else {
                    return;
                };
                self.topology_mark = Some(position);
                let rows = self.topology_pane_rows();
                if position < self.topology_offset || position >= self.topology_offset + rows {
                    self.topology_offset = position.min(self.topology_max_offset());
                }
            }
        }
    }

    fn set_topology_filter(&mut self, filter: &str) {
        self.topology_view.set_filter(filter);
        self.topology_offset = 0;
        self.topology_mark = None;
    }

    /// Rows inside the topology pane (zoomed while it is focused and zoomed) on the screen
    /// last drawn, less the filter line while it is typed in.
    fn topology_pane_rows(&self) -> usize {
        let Some(layout) = super::layout::screen(self.screen) else {
            return 1;
        };
        let area = if self.zoomed && self.focus == Pane::Topology {
            layout.body()
        } else {
            layout.topology
        };
        let filter_line = usize::from(self.topology_filter_input.is_some());
        (area.height.saturating_sub(2) as usize)
            .saturating_sub(filter_line)
            .max(1)
    }

    /// How far the topology pane scrolls: to its last row on the pane's last row.
    fn topology_max_offset(&self) -> usize {
        self.topology_rows()
            .saturating_sub(self.topology_pane_rows())
    }

    /// The logs pane's rows (inside its border) on the screen last drawn: its place, or
    /// the whole body when it is zoomed.
    fn logs_area(&self) -> Rect {
        let Some(layout) = super::layout::screen(self.screen) else {
            return Rect::default();
        };
        let area = if self.zoomed && self.focus == Pane::Logs {
            layout.body()
        } else {
            layout.logs
        };
        area.inner(ratatui::layout::Margin::new(1, 1))
    }

    /// Opens `modal` (or closes the one open) with its text at the top.
    fn set_modal(&mut self, modal: Option<Modal>) {
        self.modal = modal;
        self.dialog_scroll = 0;
    }

    /// Scrolls the open dialog's text by rows, no further than its last page on the screen
    /// last drawn.
    pub fn scroll_dialog(&mut self, delta: ScrollDelta) {
        let Some(modal) = &self.modal else {
            return;
        };
        let max = super::modals::dialog(self, modal, self.screen).max_scroll(self.screen);
        let at = self.dialog_scroll;
        self.dialog_scroll = match delta {
            ScrollDelta::Up(n) => at.saturating_sub(n),
            ScrollDelta::Down(n) => at + n,
            ScrollDelta::PageUp => at.saturating_sub(PAGE),
            ScrollDelta::PageDown => at + PAGE,
            ScrollDelta::Top => 0,
            ScrollDelta::Bottom => max,
        }
        .min(max);
    }

    /// Binds keys of the caller's (see [`ExtraKey`]); those a built-in key takes are left
    /// out.
    pub fn set_extra_keys(&mut self, keys: Vec<ExtraKey>) {
        self.extra_keys = keys
            .into_iter()
            .filter(|k| !super::bindings::is_builtin(k.key))
            .collect();
    }

    /// Runs the extra key's action; its answer, for the footer.
    pub fn run_extra_key(&self, key: char) -> Option<String> {
        self.extra_key(key).map(|k| (k.action)())
    }

    // ---- queries -----------------------------------------------------------------------

    pub fn extra_key(&self, key: char) -> Option<&ExtraKey> {
        self.extra_keys.iter().find(|k| k.key == key)
    }

    /// The lines of the help: the built-in keys, then the caller's.
    pub fn help_lines(&self) -> Vec<(String, String)> {
        let builtin = super::bindings::help_lines()
            .into_iter()
            .map(|(key, words)| (key.to_string(), words.to_string()));
        let extra = self
            .extra_keys
            .iter()
            .map(|k| (k.key.to_string(), k.label.clone()));
        builtin.chain(extra).collect()
    }
}

/// The checks of a verdict that breached, without their outcome word: the gates write
/// each check as `<figure> <comparison>: <outcome>`, the outcome `ok`, `inconclusive`,
/// `skipped` or a breach (`metrics::gates`, `Check`).
fn breaching_checks(checks: &[String]) -> Vec<&str> {
    checks
        .iter()
        .filter_map(|check| match check.rsplit_once(": ") {
            Some((_, "ok" | "inconclusive" | "skipped")) => None,
            Some((what, _)) => Some(what),
            None => Some(check.as_str()),
        })
        .collect()
}

/// A step's short name for the logs: its id, or for a rollback step what it undoes.
pub fn step_label(step: &StepRef) -> String {
    if step.phase != PhaseName::Rollback {
        return step.id.clone();
    }
    match step.id.rsplit_once('.') {
        Some((_, id)) => format!("undo {id}"),
        None if step.id == crate::engine::rollback::TRAFFIC_TO_X => "traffic to X".into(),
        None => format!("undo {}", step.id),
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let needle = needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(needle.len().max(1))
            .any(|w| w.eq_ignore_ascii_case(needle));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

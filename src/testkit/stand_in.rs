//! A scripted stand-in for the engine, to drive the console by hand (`cargo run --example
//! console`) and in the tmux test until the real engine lands. It is not the engine: it
//! runs nothing and journals nothing. It answers each command with the events the engine
//! would send, on the hybrid test plan, with made-up output and metrics.

use std::collections::VecDeque;
use std::time::Duration;

use crate::engine::command::Command;
use crate::engine::event::{
    Event, EventSender, LogLine, LogStream, RollbackProgress, RunState, StepState,
    TrafficVerification,
};
use crate::engine::rollback::{rollback_ref, undone_step};
use crate::engine::step_details;
use crate::kong::topology::NodeHealth;
use crate::lb::Split;
use crate::metrics::gates::{CheckOutcome, ShownCheck};
use crate::metrics::{GateFigures, GateVerdict, MetricsSnapshot, Verdict};
use crate::plan::model::Plan;
use crate::plan::steps::{ExpandedPlan, StepKind, StepRef};
use chrono::Utc;
use tokio::sync::mpsc;

use super::hybrid::{figures, topology_snapshot};

/// Runs until `Quit` (after finishing the step in progress) or until the console is gone.
/// `pace`: the time between two lines of a step's output.
pub async fn stand_in_engine(
    plan: Plan,
    expanded: ExpandedPlan,
    mut commands: mpsc::Receiver<Command>,
    events: EventSender,
    pace: Duration,
) {
    let mut engine = StandIn::new(plan, expanded, events);
    engine.start().await;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let mut work_tick = tokio::time::interval(pace);
    let mut quitting = false;
    loop {
        tokio::select! {
            command = commands.recv(), if !quitting => match command {
                Some(Command::Quit | Command::Stop { .. }) | None => quitting = true,
                Some(command) => engine.command(command).await,
            },
            _ = work_tick.tick(), if engine.work.is_some() => engine.work_step().await,
            _ = second.tick() => engine.scrape().await,
        }
        if quitting && engine.work.is_none() {
            return;
        }
    }
}

struct Work {
    step: StepRef,
    lines: VecDeque<String>,
}

struct StandIn {
    plan: Plan,
    expanded: ExpandedPlan,
    order: Vec<StepRef>,
    states: Vec<StepState>,
    events: EventSender,
    run: RunState,
    y_percent: u8,
    y_deployed: bool,
    work: Option<Work>,
    planned: VecDeque<StepRef>,
    seconds: u64,
}

impl StandIn {
    fn new(plan: Plan, expanded: ExpandedPlan, events: EventSender) -> Self {
        let order: Vec<StepRef> = expanded
            .steps()
            .map(|(p, s)| StepRef::new(p.name, s.id.clone()))
            .collect();
        let states = vec![StepState::Pending; order.len()];
        StandIn {
            plan,
            expanded,
            order,
            states,
            events,
            run: RunState::Idle,
            y_percent: 0,
            y_deployed: false,
            work: None,
            planned: VecDeque::new(),
            seconds: 0,
        }
    }

    async fn emit(&self, event: Event) {
        self.events.send(event);
    }

    async fn set_step(&mut self, step: &StepRef, state: StepState, detail: Option<String>) {
        if let Some(i) = self.order.iter().position(|r| r == step) {
            self.states[i] = state;
        }
        self.emit(Event::StepChanged {
            step: step.clone(),
            state,
            detail,
        })
        .await;
    }

    async fn set_run(&mut self, run: RunState) {
        self.run = run;
        self.emit(Event::RunChanged(run)).await;
    }

    async fn log(&self, step: Option<&StepRef>, stream: LogStream, text: String) {
        self.emit(Event::Log(LogLine {
            at: Utc::now(),
            step: step.map(|s| s.id.clone()),
            stream,
            text,
        }))
        .await;
    }

    async fn start(&mut self) {
        self.set_run(RunState::Running).await;
        for i in 0..self.order.len() {
            let step = self.order[i].clone();
            let state = if i == 0 {
                StepState::Ready
            } else {
                StepState::Pending
            };
            self.set_step(&step, state, None).await;
        }
        self.emit(Event::TrafficChanged {
            requested: Split::ALL_X,
            applied: Some(Split::ALL_X),
        })
        .await;
        self.topology().await;
    }

    async fn topology(&self) {
        let (version, health) = if self.y_deployed {
            (Some("3.10.0.1"), NodeHealth::Ready)
        } else {
            (None, NodeHealth::Absent)
        };
        self.emit(Event::Topology(topology_snapshot(
            &self.plan, version, health,
        )))
        .await;
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Confirm { step, .. } | Command::Retry { step, .. } => {
                if self.work.is_some() {
                    return self
                        .log(
                            None,
                            LogStream::Engine,
                            format!("{step}: another step runs"),
                        )
                        .await;
                }
                self.set_step(&step, StepState::Running, None).await;
                let kind = step_details(&self.expanded, &step)
                    .map(|s| s.kind.as_str())
                    .unwrap_or("step");
                let lines = [
                    format!("{kind}: starting"),
                    format!("{kind}: working on {}", step.id),
                    format!("{kind}: checking the result"),
                    "done".to_string(),
                ];
                self.work = Some(Work {
                    step,
                    lines: lines.into(),
                });
            }
            Command::Skip { step, reason } => {
                self.set_step(&step, StepState::Skipped, Some(reason)).await;
                self.next_ready(&step).await;
            }
            Command::MarkDone { step, note } => {
                self.set_step(&step, StepState::Succeeded, Some(note)).await;
                self.next_ready(&step).await;
            }
            Command::Pause => self.set_run(RunState::Paused).await,
            Command::Resume => self.set_run(RunState::Running).await,
            Command::Rollback => self.rollback().await,
            Command::SetTraffic { y_percent, .. } => self.shift(y_percent).await,
            Command::Abort => {
                if let Some(work) = self.work.take() {
                    self.set_step(&work.step, StepState::Failed, Some("aborted".into()))
                        .await;
                }
            }
            // The stand-in leaves nothing running behind a step, nobody asks to take its
            // run over, and it fails no node of a wave.
            Command::Kill { .. }
            | Command::TakeOut { .. }
            | Command::Quit
            | Command::Stop { .. }
            | Command::HandOver
            | Command::KeepRun => {}
        }
    }

    async fn work_step(&mut self) {
        let Some(work) = &mut self.work else {
            return;
        };
        if let Some(line) = work.lines.pop_front() {
            let step = work.step.clone();
            return self.log(Some(&step), LogStream::Stdout, line).await;
        }
        let Some(work) = self.work.take() else {
            return;
        };
        if let Some(undone) = undone_step(&self.expanded, &work.step) {
            self.set_step(&work.step, StepState::Succeeded, Some("exit 0".into()))
                .await;
            self.set_step(&undone, StepState::RolledBack, None).await;
            self.planned.retain(|s| *s != work.step);
            match self.planned.front().cloned() {
                Some(next) => self.set_step(&next, StepState::Ready, None).await,
                None => {
                    self.emit(Event::RollbackProgress(RollbackProgress::Finished))
                        .await
                }
            }
            return;
        }
        match self.expanded.step(&work.step).map(|s| s.kind.clone()) {
            Some(StepKind::ShiftTraffic { y_percent, .. }) => self.shift(y_percent).await,
            Some(StepKind::DeployNodes { .. }) => {
                self.y_deployed = true;
                self.topology().await;
            }
            _ => {}
        }
        self.set_step(&work.step, StepState::Succeeded, Some("exit 0".into()))
            .await;
        self.next_ready(&work.step).await;
    }

    async fn next_ready(&mut self, after: &StepRef) {
        let at = self.order.iter().position(|r| r == after).unwrap_or(0);
        let next = self.order[at + 1..]
            .iter()
            .zip(&self.states[at + 1..])
            .find(|(_, s)| **s == StepState::Pending)
            .map(|(r, _)| r.clone());
        match next {
            Some(step) => self.set_step(&step, StepState::Ready, None).await,
            None => self.set_run(RunState::Done).await,
        }
    }

    async fn shift(&mut self, y_percent: u8) {
        self.y_percent = y_percent.min(100);
        let split = Split::to_y(self.y_percent);
        self.emit(Event::TrafficChanged {
            requested: split,
            applied: Some(split),
        })
        .await;
    }

    async fn rollback(&mut self) {
        let started = std::time::Instant::now();
        self.set_run(RunState::RollingBack).await;
        self.emit(Event::RollbackProgress(RollbackProgress::Started))
            .await;
        self.shift(0).await;
        self.emit(Event::RollbackProgress(RollbackProgress::TrafficSafe {
            time_to_safety_ms: started.elapsed().as_millis() as u64,
            verified: TrafficVerification::ReadBack,
            evidence: "the load balancer reports X 100% | Y 0%".into(),
        }))
        .await;
        // Undo what was done, newest first; a step without a counterpart has nothing to
        // undo, and traffic stages were undone by the first act.
        let planned: Vec<StepRef> = self
            .order
            .iter()
            .zip(&self.states)
            .filter(|(r, s)| {
                **s == StepState::Succeeded
                    && self.expanded.step(r).is_some_and(|step| {
                        step.rollback.is_some()
                            && !matches!(step.kind, StepKind::ShiftTraffic { .. })
                    })
            })
            .map(|(r, _)| rollback_ref(&self.expanded, r))
            .rev()
            .collect();
        self.planned = planned.iter().cloned().collect();
        for i in 0..self.order.len() {
            if self.states[i] == StepState::Ready {
                let step = self.order[i].clone();
                self.set_step(&step, StepState::Pending, None).await;
            }
        }
        self.emit(Event::RollbackProgress(RollbackProgress::Planned {
            steps: planned.clone(),
            note: None,
        }))
        .await;
        for (i, step) in planned.iter().enumerate() {
            let state = if i == 0 {
                StepState::Ready
            } else {
                StepState::Pending
            };
            self.set_step(step, state, None).await;
        }
    }

    /// One scrape: about 1200 req/s split as the traffic is, with a little noise.
    async fn scrape(&mut self) {
        self.seconds += 1;
        let wiggle = ((self.seconds * 37) % 11) as f64 - 5.0;
        let total = 1200.0 + wiggle * 8.0;
        let y = total * f64::from(self.y_percent) / 100.0;
        let figures = |rps: f64, errors: f64, p99: f64, up: bool| {
            let mut f = figures(rps, Some(errors), Some(p99));
            if !up {
                f.nodes_scraped = 0;
            }
            f
        };
        let now = Utc::now();
        self.emit(Event::Metrics(MetricsSnapshot {
            at: now,
            x: figures(total - y, 0.0008, 180.0 + wiggle * 3.0, true),
            y: figures(y, 0.0012, 150.0 + wiggle * 2.0, self.y_deployed),
        }))
        .await;
        if self.y_percent > 0 && self.seconds.is_multiple_of(5) {
            self.emit(Event::Gate(GateVerdict {
                at: now,
                verdict: Verdict::Pass,
                checks: vec![
                    "Y 5xx 0.12% <= 1.00%: ok".into(),
                    format!("Y p99 {:.0}ms <= 500ms: ok", 150.0 + wiggle * 2.0),
                ],
                requests_in_window: (y * 60.0) as u64,
                consecutive_breaches: 0,
                figures: GateFigures::default(),
                shown: vec![
                    ShownCheck {
                        outcome: CheckOutcome::Held,
                        subject: "Y 5xx".into(),
                        figure: "0.12%".into(),
                        rule: "≤ 1.00%".into(),
                    },
                    ShownCheck {
                        outcome: CheckOutcome::Held,
                        subject: "Y p99".into(),
                        figure: format!("{:.0} ms", 150.0 + wiggle * 2.0),
                        rule: "≤ 500 ms".into(),
                    },
                ],
            }))
            .await;
        }
    }
}

//! Shared by the demo tests: a demo started in-process in a temporary run directory, and a
//! driver that answers the engine as an operator would and waits for conditions with a
//! deadline.

pub mod cli;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kongup::demo::{self, DemoOptions, DemoRun};
use kongup::engine::event::RollbackProgress;
use kongup::engine::{Command, Event, RunState, StepState, step_details};
use kongup::plan::steps::{ClusterSide, StepKind, StepRef};
use kongup::sim::Scenario;

/// Fast enough that a scenario walks to done in seconds: 2 s gate windows, 3 s bakes.
pub const SPEED: f64 = 20.0;
/// The longest a whole scenario may take in a test.
pub const DEADLINE: Duration = Duration::from_secs(120);

pub struct Demo {
    pub run: DemoRun,
    pub dir: tempfile::TempDir,
    pub states: HashMap<StepRef, StepState>,
    pub run_state: Option<RunState>,
    pub events: Vec<Event>,
}

pub async fn start(scenario: Scenario) -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        speed: SPEED,
        ..DemoOptions::new(scenario, dir.path().join("run"))
    };
    let run = demo::start(options)
        .await
        .unwrap_or_else(|e| panic!("the {scenario} demo did not start: {e}"));
    Demo::from_run(run, dir)
}

/// Resumes in-process the demo whose run directory is `dir/run` (as [`start`] makes it,
/// or a `kongup demo --journal DIR/run` left it): the lab rebuilt from the journal.
pub async fn resume(scenario: Scenario, dir: tempfile::TempDir) -> Demo {
    let options = DemoOptions {
        speed: SPEED,
        ..DemoOptions::new(scenario, dir.path().join("run"))
    };
    let run = demo::start(options)
        .await
        .unwrap_or_else(|e| panic!("the {scenario} demo did not resume: {e}"));
    Demo::from_run(run, dir)
}

impl Demo {
    /// A lab run started some other way (a rehearsal), kept with its directory.
    pub fn from_run(run: DemoRun, dir: tempfile::TempDir) -> Demo {
        Demo {
            run,
            dir,
            states: HashMap::new(),
            run_state: None,
            events: Vec::new(),
        }
    }

    pub fn plan_name(&self) -> String {
        self.run.plan.name.clone()
    }

    /// The next event, or a panic naming `what` was awaited when the deadline passes.
    async fn next_event(&mut self, deadline: Instant, what: &str) -> Event {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, self.run.engine.events.recv())
            .await
            .unwrap_or_else(|_| {
                let warnings: Vec<&String> = self
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Warning(text) | Event::Refused(text) => Some(text),
                        _ => None,
                    })
                    .collect();
                panic!(
                    "timed out waiting for {what}; run {:?}, steps {:?}, warnings {warnings:?}",
                    self.run_state,
                    self.states
                        .iter()
                        .filter(|(_, s)| **s != StepState::Pending)
                        .collect::<Vec<_>>()
                )
            })
            .unwrap_or_else(|| panic!("the engine stopped while waiting for {what}"));
        match &event {
            Event::StepChanged { step, state, .. } => {
                self.states.insert(step.clone(), *state);
            }
            Event::RunChanged(state) => self.run_state = Some(*state),
            _ => {}
        }
        self.events.push(event.clone());
        event
    }

    pub async fn send(&self, command: Command) {
        self.run.engine.commands.send(command).await.unwrap();
    }

    /// The confirm an operator gives a ready step: the plan name typed for an irreversible
    /// one.
    pub fn confirm_for(&self, step: &StepRef) -> Command {
        let irreversible = step_details(&self.run.expanded, step).is_some_and(|s| s.irreversible);
        Command::Confirm {
            step: step.clone(),
            typed: irreversible.then(|| self.plan_name()),
        }
    }

    /// Confirms every step that becomes ready until `stop` says so about an event (checked
    /// before the event is answered); returns that event.
    pub async fn confirm_until(
        &mut self,
        what: &str,
        mut stop: impl FnMut(&Event) -> bool,
    ) -> Event {
        let deadline = Instant::now() + DEADLINE;
        // A step that became ready while nobody was answering is answered first.
        let waiting: Vec<StepRef> = self
            .states
            .iter()
            .filter(|(_, state)| **state == StepState::Ready)
            .map(|(step, _)| step.clone())
            .collect();
        for step in waiting {
            let confirm = self.confirm_for(&step);
            self.send(confirm).await;
        }
        loop {
            let event = self.next_event(deadline, what).await;
            if stop(&event) {
                return event;
            }
            if let Event::StepChanged {
                step,
                state: StepState::Ready,
                ..
            } = &event
            {
                let confirm = self.confirm_for(step);
                self.send(confirm).await;
            }
            if let Event::StepChanged {
                step,
                state: StepState::Failed | StepState::Interrupted,
                detail,
            } = &event
            {
                panic!("{step} failed while waiting for {what}: {detail:?}");
            }
        }
    }

    /// Waits (confirming nothing) until `stop` holds for an event; returns it.
    pub async fn wait_for(&mut self, what: &str, mut stop: impl FnMut(&Event) -> bool) -> Event {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let event = self.next_event(deadline, what).await;
            if stop(&event) {
                return event;
            }
        }
    }

    /// The first event so far, or to come, for which `matches` holds (confirming nothing).
    pub async fn seen(&mut self, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
        if let Some(event) = self.events.iter().find(|e| matches(e)) {
            return event.clone();
        }
        self.wait_for(what, matches).await
    }

    /// Waits (confirming nothing) until the run's state, as the events so far tell it,
    /// satisfies `ready`, whatever order the events come in.
    pub async fn wait_until(
        &mut self,
        what: &str,
        ready: impl Fn(Option<RunState>, &HashMap<StepRef, StepState>) -> bool,
    ) {
        let deadline = Instant::now() + DEADLINE;
        while !ready(self.run_state, &self.states) {
            self.next_event(deadline, what).await;
        }
    }

    /// Confirms steps until the run is done.
    pub async fn walk_to_done(&mut self) {
        self.confirm_until("the run to be done", |e| {
            matches!(e, Event::RunChanged(RunState::Done))
        })
        .await;
    }

    /// Confirms steps until the first traffic stage runs; returns that step.
    pub async fn walk_to_first_shift(&mut self) -> StepRef {
        let expanded = self.run.expanded.clone();
        let event = self
            .confirm_until("the first traffic stage to run", |e| {
                matches!(e, Event::StepChanged { step, state: StepState::Running, .. }
                    if step_details(&expanded, step)
                        .is_some_and(|s| matches!(s.kind, StepKind::ShiftTraffic { y_percent, .. } if y_percent > 0)))
            })
            .await;
        let Event::StepChanged { step, .. } = event else {
            unreachable!()
        };
        step
    }

    /// Quits the engine and waits for it to stop.
    pub async fn quit(self) -> DemoRun {
        self.send(Command::Quit).await;
        let Demo { mut run, .. } = self;
        while run.engine.events.recv().await.is_some() {}
        run
    }

    /// Waits until `cluster` has served `more` requests beyond what it had when called
    /// (the lab's own counters).
    pub async fn served_more(&self, cluster: ClusterSide, more: u64) {
        let start = self.run.lab.served(cluster).0;
        let deadline = Instant::now() + DEADLINE;
        while self.run.lab.served(cluster).0 < start + more {
            assert!(
                Instant::now() < deadline,
                "{} served {} requests, not {more} more, before the deadline",
                cluster.as_str(),
                self.run.lab.served(cluster).0 - start
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Whether an event says all traffic is safely on X.
pub fn traffic_safe(event: &Event) -> bool {
    matches!(
        event,
        Event::RollbackProgress(RollbackProgress::TrafficSafe { .. })
    )
}

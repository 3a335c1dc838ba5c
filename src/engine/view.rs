//! Where a run stands, replayed from its journal. The engine keeps one up to date as it
//! appends; `status` and `report` build one from the file. Nothing here does I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::event::{RunState, StepState, TrafficVerification};
use super::journal::{ConfirmVia, Entry, Record, RollbackStepInfo, StepInfo, StepResult};
use super::outage::Outage;
use crate::exec::track::{ProcessEnd, ProcessIdentity, TrackedProcess};
use crate::lb::Split;

/// Everything the journal says about one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Never `Ready`: readiness is a matter of turn, see [`RunView::effective_state`].
    pub state: StepState,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub confirmed_via: Option<ConfirmVia>,
    pub attempts: u32,
    /// Exit status or failure reason of the last attempt, or the skip reason or note.
    pub detail: Option<String>,
    pub skip_reason: Option<String>,
    pub skipped_by_plan: bool,
    pub note: Option<String>,
    pub facts: Vec<(String, String)>,
    /// Who asked to abort the attempt in force (`user@host`): a failure it ends in is the
    /// operator's abort, not a fault.
    pub aborted_by: Option<String>,
    /// The programs the last attempt started, in order.
    pub processes: Vec<StepProcess>,
    /// A wave's node step: how it ended on each of its nodes so far (the latest record of
    /// each), kept across a failed or interrupted attempt and its retry.
    pub nodes: BTreeMap<String, NodeResult>,
}

/// How a wave's node step last ended on one node (`Entry::NodeOutcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResult {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    /// `None`: its commands there exited 0; else why it failed.
    pub failed: Option<String>,
}

/// A node the operator took out of its wave (`Entry::NodeTakenOut`): the run's later steps
/// leave it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOut {
    /// `phase/id` of the wave's node step it failed in.
    pub step: String,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
    /// It failed to stop (an X node of a stop step): it may still run and serve.
    pub still_running: bool,
}

impl TakenOut {
    /// "taken out, still running" (an X node that failed to stop), else "taken out".
    pub fn what(&self) -> &'static str {
        if self.still_running {
            "taken out, still running"
        } else {
            "taken out"
        }
    }

    /// `dp-x-3: taken out, still running (at data-plane/wave-2-stop-x by ops@host: reason)`.
    pub fn describe(&self, node: &str) -> String {
        format!(
            "{node}: {} (at {} by {}: {})",
            self.what(),
            self.step,
            self.by,
            self.reason
        )
    }
}

/// A program an attempt of a step started, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepProcess {
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub process: TrackedProcess,
    /// Over ssh: the command's own process on its host.
    pub on_host: Option<ProcessIdentity>,
    pub end: Option<ProcessEnd>,
    pub kill_requested: bool,
}

impl StepProcess {
    /// The pid to name: the command's on its host when known, else the local one.
    pub fn pid(&self) -> i32 {
        self.on_host
            .as_ref()
            .map_or(self.process.identity.pid, |remote| remote.pid)
    }

    /// "pid 12180 on local, since 04:12 UTC".
    pub fn place(&self) -> String {
        format!(
            "pid {} on {}, since {} UTC",
            self.pid(),
            self.process.on,
            self.started_at.format("%H:%M")
        )
    }
}

impl Default for StepRecord {
    fn default() -> Self {
        StepRecord {
            state: StepState::Pending,
            confirmed_by: None,
            confirmed_at: None,
            confirmed_via: None,
            attempts: 0,
            detail: None,
            skip_reason: None,
            skipped_by_plan: false,
            note: None,
            facts: Vec::new(),
            aborted_by: None,
            processes: Vec::new(),
            nodes: BTreeMap::new(),
        }
    }
}

impl StepRecord {
    /// Done for the purpose of moving on.
    pub fn is_settled(&self) -> bool {
        matches!(
            self.state,
            StepState::Succeeded | StepState::Skipped | StepState::RolledBack
        )
    }

    /// It ran, or was running, so it may have changed something.
    pub fn has_started(&self) -> bool {
        self.attempts > 0
    }

    /// The programs of its last attempt whose end is not journaled: still running (after
    /// a crash, or a lost ssh connection), or not known to have ended.
    pub fn unended(&self) -> impl Iterator<Item = &StepProcess> {
        self.processes.iter().filter(|p| p.end.is_none())
    }

    /// The nodes on which its commands exited 0 and have not failed since: a retry or a
    /// resume does not run them there again.
    pub fn nodes_done(&self) -> std::collections::BTreeSet<String> {
        self.nodes
            .iter()
            .filter(|(_, r)| r.failed.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The nodes whose latest outcome is a failure, with why, in name order (taken-out
    /// nodes among them too: see [`RunView::taken_out`]).
    pub fn nodes_failed(&self) -> Vec<(&str, &str)> {
        self.nodes
            .iter()
            .filter_map(|(n, r)| Some((n.as_str(), r.failed.as_deref()?)))
            .collect()
    }

    fn process_mut(&mut self, attempt: u32, number: u32) -> Option<&mut StepProcess> {
        self.processes
            .iter_mut()
            .find(|p| p.attempt == attempt && p.process.number == number)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RollbackView {
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
    pub reason: String,
    pub time_to_safety_ms: Option<u64>,
    /// How the time to safety was verified, and the evidence in words.
    pub traffic_verified: Option<(TrafficVerification, String)>,
    pub traffic_error: Option<String>,
    pub planned: Option<Vec<RollbackStepInfo>>,
    pub point_of_no_return: bool,
    /// What must happen before traffic can go back to X, when it cannot serve.
    pub note: Option<String>,
    pub finished: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub run_id: String,
    pub plan_name: String,
    pub plan_sha256: String,
    pub plan_text: String,
    /// The forward steps of the plan in force, in order.
    pub steps: Vec<StepInfo>,
    pub records: BTreeMap<String, StepRecord>,
    pub paused: Option<String>,
    /// The split last asked of the traffic driver.
    pub traffic_requested: Option<Split>,
    /// What the load balancer reported after that request (`None`: not known).
    pub traffic_applied: Option<Split>,
    /// Traffic was ever sent to Y.
    pub traffic_moved: bool,
    pub rollback: Option<RollbackView>,
    /// Every outage the engine saw, oldest first; the last may be open.
    pub outages: Vec<Outage>,
    /// The nodes taken out of their wave, by name: out for the rest of the run.
    pub taken_out: BTreeMap<String, TakenOut>,
    pub last_seq: u64,
    /// Counts the changes to the steps' node outcomes (each `node-outcome`, each fresh
    /// start that forgets some), so a reader looks at the nodes again only when it moved.
    pub node_changes: u64,
}

impl RunView {
    /// Replays a journal; `None` when it does not start with `run-created`.
    pub fn replay(records: &[Record]) -> Option<RunView> {
        let (first, rest) = records.split_first()?;
        let Entry::RunCreated {
            run_id,
            plan_name,
            plan_sha256,
            plan_text,
            steps,
            ..
        } = &first.entry
        else {
            return None;
        };
        let mut view = RunView {
            run_id: run_id.clone(),
            plan_name: plan_name.clone(),
            plan_sha256: plan_sha256.clone(),
            plan_text: plan_text.clone(),
            steps: steps.clone(),
            records: BTreeMap::new(),
            paused: None,
            traffic_requested: None,
            traffic_applied: None,
            traffic_moved: false,
            rollback: None,
            outages: Vec::new(),
            taken_out: BTreeMap::new(),
            last_seq: first.seq,
            node_changes: 0,
        };
        rest.iter().for_each(|r| view.apply(r));
        Some(view)
    }

    pub fn apply(&mut self, record: &Record) {
        self.last_seq = record.seq;
        match &record.entry {
            Entry::RunCreated { .. } | Entry::SessionOpened { .. } => {}
            Entry::SessionClosed { .. } | Entry::Warning { .. } => {}
            Entry::OutageStarted { why } => {
                if self.open_outage().is_none() {
                    self.outages.push(Outage {
                        from: record.at,
                        to: None,
                        why: why.clone(),
                    });
                }
            }
            Entry::OutageEnded => {
                if let Some(open) = self.outages.last_mut().filter(|o| o.to.is_none()) {
                    open.to = Some(record.at);
                }
            }
            // Who drives the run: `engine::drivers` reads them.
            Entry::HandoverRequested { .. }
            | Entry::HandedOver { .. }
            | Entry::HandoverDeclined { .. }
            | Entry::LockTakenOver { .. } => {}
            Entry::PlanChangeAccepted {
                plan_sha256,
                plan_text,
                steps,
                ..
            } => {
                self.plan_sha256 = plan_sha256.clone();
                self.plan_text = plan_text.clone();
                self.steps = steps.clone();
            }
            Entry::StepConfirmed { step, via, .. } => {
                let rec = self.record_mut(step);
                rec.confirmed_by = Some(record.by.clone());
                rec.confirmed_at = Some(record.at);
                rec.confirmed_via = Some(*via);
            }
            Entry::StepSkipped {
                step,
                reason,
                by_plan,
            } => {
                let rec = self.record_mut(step);
                rec.state = StepState::Skipped;
                rec.skip_reason = Some(reason.clone());
                rec.skipped_by_plan = *by_plan;
                rec.detail = Some(reason.clone());
            }
            Entry::StepStarted { step, attempt, .. } => {
                let rec = self.record_mut(step);
                // A retry or a resume goes on from the nodes done; any other start (a
                // first run, a run again after a rollback) begins with none.
                let forgets = !matches!(rec.state, StepState::Failed | StepState::Interrupted)
                    && !rec.nodes.is_empty();
                if forgets {
                    rec.nodes.clear();
                }
                rec.state = StepState::Running;
                rec.attempts = *attempt;
                rec.detail = None;
                rec.aborted_by = None;
                rec.processes.clear();
                self.node_changes += u64::from(forgets);
            }
            Entry::ProcessStarted {
                step,
                attempt,
                process,
            } => {
                self.record_mut(step).processes.push(StepProcess {
                    attempt: *attempt,
                    started_at: record.at,
                    process: process.clone(),
                    on_host: None,
                    end: None,
                    kill_requested: false,
                });
            }
            Entry::ProcessOnHost {
                step,
                attempt,
                number,
                remote,
            } => {
                if let Some(process) = self.record_mut(step).process_mut(*attempt, *number) {
                    process.on_host = Some(remote.clone());
                }
            }
            Entry::ProcessEnded {
                step,
                attempt,
                number,
                end,
            } => {
                let rec = self.record_mut(step);
                let Some(process) = rec.process_mut(*attempt, *number) else {
                    return;
                };
                process.end = Some(end.clone());
                let command = process.process.command.clone();
                // An end found after kongup stopped waiting (a crash, a lost connection)
                // is what the operator decides the step's fate on.
                if matches!(rec.state, StepState::Interrupted | StepState::Failed) {
                    rec.detail = Some(format!(
                        "{}; its command `{command}` then ended: {}. Retry it, mark it done \
                         with a note, or roll back",
                        match rec.state {
                            StepState::Interrupted => "kongup stopped while this step ran",
                            _ => "kongup lost sight of this step's command",
                        },
                        end.how
                    ));
                }
            }
            Entry::ProcessKillRequested {
                step,
                attempt,
                number,
            } => {
                if let Some(process) = self.record_mut(step).process_mut(*attempt, *number) {
                    process.kill_requested = true;
                }
            }
            Entry::StepFinished {
                step,
                result,
                detail,
                ..
            } => {
                let rec = self.record_mut(step);
                rec.state = match result {
                    StepResult::Succeeded => StepState::Succeeded,
                    StepResult::Failed => StepState::Failed,
                };
                rec.detail = match (&rec.aborted_by, result) {
                    // An action that says it was aborted by "the operator" now says who.
                    (Some(by), StepResult::Failed) => Some(match detail.as_deref() {
                        Some(d) => match d.strip_prefix("aborted by the operator") {
                            Some(rest) => format!("aborted by {by}{rest}"),
                            None => format!("aborted by {by}: {d}"),
                        },
                        None => format!("aborted by {by}"),
                    }),
                    _ => detail.clone(),
                };
                if *result == StepResult::Succeeded {
                    self.mark_undone_by(step);
                }
            }
            Entry::StepInterrupted { step } => {
                let rec = self.record_mut(step);
                rec.state = StepState::Interrupted;
                rec.detail = Some(
                    "kongup stopped while this step ran: retry it, mark it done with a note, \
                     skip it with a reason, or roll back"
                        .to_string(),
                );
            }
            Entry::StepMarkedDone { step, note } => {
                let rec = self.record_mut(step);
                rec.state = StepState::Succeeded;
                rec.note = Some(note.clone());
                rec.detail = Some(format!("marked done by {}: {note}", record.by));
                self.mark_undone_by(step);
            }
            Entry::NodeOutcome {
                step,
                attempt,
                node,
                ok,
                reason,
            } => {
                let failed = (!*ok).then(|| reason.clone().unwrap_or_else(|| "failed".into()));
                self.node_changes += 1;
                self.record_mut(step).nodes.insert(
                    node.clone(),
                    NodeResult {
                        attempt: *attempt,
                        at: record.at,
                        failed,
                    },
                );
            }
            Entry::NodeTakenOut { step, node, reason } => {
                let still_running = self
                    .steps
                    .iter()
                    .any(|s| s.step == *step && s.kind == "stop-nodes");
                self.taken_out.insert(
                    node.clone(),
                    TakenOut {
                        step: step.clone(),
                        reason: reason.clone(),
                        by: record.by.clone(),
                        at: record.at,
                        still_running,
                    },
                );
            }
            Entry::AbortRequested { step } => {
                self.record_mut(step).aborted_by = Some(record.by.clone());
            }
            Entry::Gate { .. } => {}
            Entry::Fact { step, key, value } => {
                self.record_mut(step)
                    .facts
                    .push((key.clone(), value.clone()));
            }
            Entry::Paused { reason } => self.paused = Some(reason.clone()),
            Entry::Resumed => self.paused = None,
            Entry::TrafficRequested { split, .. } => {
                self.traffic_moved |= split.y > 0;
                self.traffic_requested = Some(*split);
                self.traffic_applied = None;
            }
            Entry::TrafficApplied {
                requested, applied, ..
            } => {
                self.traffic_moved |= requested.y > 0 || applied.is_some_and(|a| a.y > 0);
                self.traffic_requested = Some(*requested);
                self.traffic_applied = *applied;
            }
            Entry::RollbackRequested { reason } => {
                if self.rollback.as_ref().is_none_or(|r| r.finished) {
                    self.rollback = Some(RollbackView {
                        requested_at: record.at,
                        requested_by: record.by.clone(),
                        reason: reason.clone(),
                        time_to_safety_ms: None,
                        traffic_verified: None,
                        traffic_error: None,
                        planned: None,
                        point_of_no_return: false,
                        note: None,
                        finished: false,
                    });
                }
            }
            Entry::RollbackTrafficSafe {
                time_to_safety_ms,
                verified,
                evidence,
            } => {
                if let Some(rollback) = &mut self.rollback {
                    rollback.time_to_safety_ms = Some(*time_to_safety_ms);
                    rollback.traffic_verified = Some((*verified, evidence.clone()));
                    rollback.traffic_error = None;
                }
            }
            Entry::RollbackTrafficFailed { error } => {
                if let Some(rollback) = &mut self.rollback {
                    rollback.traffic_error = Some(error.clone());
                }
            }
            Entry::RollbackPlanned {
                steps,
                point_of_no_return,
                note,
            } => {
                if let Some(rollback) = &mut self.rollback {
                    rollback.planned = Some(steps.clone());
                    rollback.point_of_no_return = *point_of_no_return;
                    rollback.note = note.clone();
                }
            }
            Entry::RollbackFinished => {
                if let Some(rollback) = &mut self.rollback {
                    rollback.finished = true;
                }
            }
        }
    }

    fn record_mut(&mut self, step: &str) -> &mut StepRecord {
        self.records.entry(step.to_string()).or_default()
    }

    /// A rollback step succeeded: the forward step it undoes is rolled back.
    fn mark_undone_by(&mut self, rollback_step: &str) {
        let undone = self
            .rollback_steps()
            .iter()
            .find(|s| s.step == rollback_step)
            .and_then(|s| s.undoes.clone());
        if let Some(undone) = undone {
            self.record_mut(&undone).state = StepState::RolledBack;
        }
    }

    /// The split as best known: what the load balancer reported, else what was asked.
    /// The outage still going, if one is (`engine::outage`).
    pub fn open_outage(&self) -> Option<&Outage> {
        self.outages.last().filter(|o| o.to.is_none())
    }

    pub fn traffic(&self) -> Option<Split> {
        self.traffic_applied.or(self.traffic_requested)
    }

    pub fn record(&self, step: &str) -> Option<&StepRecord> {
        self.records.get(step)
    }

    pub fn state_of(&self, step: &str) -> StepState {
        self.record(step).map_or(StepState::Pending, |r| r.state)
    }

    /// The rollback plan in force (empty when there is none).
    pub fn rollback_steps(&self) -> &[RollbackStepInfo] {
        self.rollback
            .as_ref()
            .and_then(|r| r.planned.as_deref())
            .unwrap_or(&[])
    }

    pub fn rollback_active(&self) -> bool {
        self.rollback.as_ref().is_some_and(|r| !r.finished)
    }

    /// Every step key in display order: the forward steps, then the rollback plan.
    pub fn step_keys(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| s.step.clone())
            .chain(self.rollback_steps().iter().map(|s| s.step.clone()))
            .collect()
    }

    /// The step whose turn it is: the first unsettled step of the rollback plan while a
    /// rollback is under way, else a failed or interrupted forward step, else the first
    /// unsettled forward step.
    pub fn next_step(&self) -> Option<String> {
        if let Some(rollback) = &self.rollback {
            if rollback.finished {
                return None;
            }
            return rollback
                .planned
                .as_ref()?
                .iter()
                .find(|s| !self.record(&s.step).is_some_and(|r| r.is_settled()))
                .map(|s| s.step.clone());
        }
        // A step that failed or was interrupted waits for the operator's decision before
        // anything else: after a plan change, steps may have been put before it.
        let undecided = |s: &&StepInfo| {
            matches!(
                self.state_of(&s.step),
                StepState::Failed | StepState::Interrupted
            )
        };
        self.steps
            .iter()
            .find(undecided)
            .or_else(|| {
                self.steps
                    .iter()
                    .find(|s| !self.record(&s.step).is_some_and(|r| r.is_settled()))
            })
            .map(|s| s.step.clone())
    }

    /// The state to show: a pending step whose turn it is, is `Ready` once no other step
    /// runs (a rollback plan can be made while a forward step still runs).
    pub fn effective_state(&self, step: &str) -> StepState {
        let state = self.state_of(step);
        if state == StepState::Pending
            && self.next_step().as_deref() == Some(step)
            && self.running_step().is_none()
        {
            StepState::Ready
        } else {
            state
        }
    }

    pub fn running_step(&self) -> Option<String> {
        self.records
            .iter()
            .find(|(_, r)| r.state == StepState::Running)
            .map(|(k, _)| k.clone())
    }

    pub fn run_state(&self) -> RunState {
        if self.rollback_active() {
            return RunState::RollingBack;
        }
        let Some(next) = self.next_step() else {
            // No rollback in force, so one here has finished: the run ended by it.
            return if self.rollback.is_some() {
                RunState::RolledBack
            } else {
                RunState::Done
            };
        };
        if self.paused.is_some() {
            return RunState::Paused;
        }
        match self.state_of(&next) {
            StepState::Failed if self.record(&next).is_some_and(|r| r.aborted_by.is_some()) => {
                RunState::Aborted
            }
            StepState::Failed => RunState::Failed,
            StepState::Interrupted => RunState::Paused,
            StepState::Running => RunState::Running,
            _ if self.running_step().is_some() => RunState::Running,
            _ if self
                .records
                .values()
                .any(|r| r.attempts > 0 || r.confirmed_by.is_some()) =>
            {
                RunState::Waiting
            }
            _ => RunState::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::Entry;

    fn record(seq: u64, entry: Entry) -> Record {
        Record {
            seq,
            at: Utc::now(),
            by: "op@host".into(),
            entry,
        }
    }

    fn info(step: &str) -> StepInfo {
        StepInfo {
            step: step.into(),
            title: step.into(),
            kind: "manual".into(),
            changes: true,
            irreversible: false,
            y_percent: None,
        }
    }

    fn created() -> Record {
        record(
            0,
            Entry::RunCreated {
                run_id: "r".into(),
                plan_name: "p".into(),
                plan_sha256: "h".into(),
                plan_text: "t".into(),
                steps: vec![info("cluster/a"), info("cluster/b")],
                kongup_version: "0".into(),
            },
        )
    }

    #[test]
    fn replay_follows_the_lifecycle_and_the_turn() {
        let mut records = vec![created()];
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.run_state(), RunState::Idle);
        assert_eq!(view.effective_state("cluster/a"), StepState::Ready);
        assert_eq!(view.effective_state("cluster/b"), StepState::Pending);

        records.push(record(
            1,
            Entry::StepConfirmed {
                step: "cluster/a".into(),
                via: ConfirmVia::Confirm,
                typed: false,
                overridden: Vec::new(),
            },
        ));
        records.push(record(
            2,
            Entry::StepStarted {
                step: "cluster/a".into(),
                attempt: 1,
                runs: vec![],
            },
        ));
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.run_state(), RunState::Running);
        assert_eq!(view.running_step().as_deref(), Some("cluster/a"));
        assert_eq!(
            view.record("cluster/a").unwrap().confirmed_by.as_deref(),
            Some("op@host")
        );

        let mut succeeded = records.clone();
        succeeded.push(record(
            3,
            Entry::StepFinished {
                step: "cluster/a".into(),
                attempt: 1,
                result: StepResult::Succeeded,
                detail: None,
                duration_ms: 5,
                last_lines: vec![],
            },
        ));
        let view = RunView::replay(&succeeded).unwrap();
        assert_eq!(
            view.run_state(),
            RunState::Waiting,
            "no step runs: the next waits for the operator"
        );

        records.push(record(
            3,
            Entry::StepFinished {
                step: "cluster/a".into(),
                attempt: 1,
                result: StepResult::Failed,
                detail: Some("exit status 2".into()),
                duration_ms: 5,
                last_lines: vec![],
            },
        ));
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.run_state(), RunState::Failed);
        assert_eq!(view.next_step().as_deref(), Some("cluster/a"));

        records.push(record(
            4,
            Entry::StepMarkedDone {
                step: "cluster/a".into(),
                note: "fixed by hand".into(),
            },
        ));
        records.push(record(
            5,
            Entry::StepSkipped {
                step: "cluster/b".into(),
                reason: "not needed".into(),
                by_plan: false,
            },
        ));
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.run_state(), RunState::Done);
        assert_eq!(view.state_of("cluster/a"), StepState::Succeeded);
        assert_eq!(view.state_of("cluster/b"), StepState::Skipped);
    }

    #[test]
    fn a_rollback_takes_the_turn_and_marks_what_it_undid() {
        let mut records = vec![created()];
        records.push(record(
            1,
            Entry::StepMarkedDone {
                step: "cluster/a".into(),
                note: "n".into(),
            },
        ));
        records.push(record(
            2,
            Entry::RollbackRequested {
                reason: "operator".into(),
            },
        ));
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.run_state(), RunState::RollingBack);
        assert_eq!(
            view.next_step(),
            None,
            "nothing runs before the plan exists"
        );

        records.push(record(
            3,
            Entry::RollbackPlanned {
                steps: vec![RollbackStepInfo {
                    step: "rollback/a".into(),
                    undoes: Some("cluster/a".into()),
                    title: "undo a".into(),
                    irreversible: false,
                }],
                point_of_no_return: false,
                note: None,
            },
        ));
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.next_step().as_deref(), Some("rollback/a"));
        assert_eq!(view.effective_state("rollback/a"), StepState::Ready);
        assert_eq!(
            view.step_keys().last().map(String::as_str),
            Some("rollback/a")
        );

        records.push(record(
            4,
            Entry::StepFinished {
                step: "rollback/a".into(),
                attempt: 1,
                result: StepResult::Succeeded,
                detail: None,
                duration_ms: 1,
                last_lines: vec![],
            },
        ));
        records.push(record(5, Entry::RollbackFinished));
        let view = RunView::replay(&records).unwrap();
        assert_eq!(view.state_of("cluster/a"), StepState::RolledBack);
        assert_eq!(view.run_state(), RunState::RolledBack);
    }

    fn started(seq: u64, attempt: u32) -> Record {
        record(
            seq,
            Entry::StepStarted {
                step: "cluster/a".into(),
                attempt,
                runs: vec![],
            },
        )
    }

    fn finished(seq: u64, attempt: u32, result: StepResult) -> Record {
        record(
            seq,
            Entry::StepFinished {
                step: "cluster/a".into(),
                attempt,
                result,
                detail: None,
                duration_ms: 1,
                last_lines: vec![],
            },
        )
    }

    fn outcome(seq: u64, node: &str, ok: bool) -> Record {
        record(
            seq,
            Entry::NodeOutcome {
                step: "cluster/a".into(),
                attempt: 1,
                node: node.into(),
                ok,
                reason: (!ok).then(|| "exit status 1".into()),
            },
        )
    }

    #[test]
    fn a_retry_keeps_the_nodes_done_and_a_fresh_start_forgets_them() {
        let mut records = vec![
            created(),
            started(1, 1),
            outcome(2, "dp-1", true),
            outcome(3, "dp-2", false),
            outcome(4, "dp-3", true),
            finished(5, 1, StepResult::Failed),
            started(6, 2),
        ];
        let view = RunView::replay(&records).unwrap();
        let rec = view.record("cluster/a").unwrap();
        assert_eq!(
            rec.nodes_done().into_iter().collect::<Vec<_>>(),
            ["dp-1", "dp-3"]
        );
        assert_eq!(rec.nodes_failed(), [("dp-2", "exit status 1")]);
        // Succeeded, then started again (after a rollback, say): a new run of its nodes.
        records.push(outcome(7, "dp-2", true));
        records.push(finished(8, 2, StepResult::Succeeded));
        records.push(started(9, 3));
        let view = RunView::replay(&records).unwrap();
        assert!(view.record("cluster/a").unwrap().nodes.is_empty());
    }

    /// A journal written before `node-outcome` existed: its failed node step has no node
    /// outcomes, so a retry runs every node, as it did then.
    #[test]
    fn a_journal_without_node_outcomes_reads_and_retries_every_node() {
        let old = r#"{"seq":1,"at":"2026-01-01T00:00:00Z","by":"op@host","event":"step-finished","step":"cluster/a","attempt":1,"result":"failed","detail":"command 2 of 3 failed","duration_ms":5,"last_lines":[]}"#;
        let finished: Record = serde_json::from_str(old).unwrap();
        let view = RunView::replay(&[created(), started(1, 1), finished]).unwrap();
        let rec = view.record("cluster/a").unwrap();
        assert_eq!(rec.state, StepState::Failed);
        assert!(rec.nodes_done().is_empty());
    }
}

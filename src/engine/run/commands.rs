//! The operator's commands: whose turn it is and what may be done to it (confirm, retry,
//! skip, mark done), pause and resume, abort, quit. The rollback and a split set by hand
//! are in `traffic.rs`.

use std::time::Instant;

use super::{Engine, Who};
use crate::engine::EngineError;
use crate::engine::command::Command;
use crate::engine::event::Event;
use crate::engine::event::StepState;
use crate::engine::health;
use crate::engine::journal::{ConfirmVia, Entry, SERVER_OUT, parse_step_key, step_key};
use crate::engine::rollback::{self, TRAFFIC_TO_X};
use crate::engine::step::RollbackOf;
use crate::engine::step::journal_through;
use crate::lb::ServerAdmin;
use crate::plan::placement;
use crate::plan::steps::{ClusterSide, PhaseName, RollbackKind, Step, StepKind, StepRef};

/// The session's end when the operator quit.
const OPERATOR_QUIT: &str = "the operator quit";

impl Engine {
    /// Acts on a command; `sent` is when the operator sent it.
    pub(super) fn handle(&mut self, command: Command, sent: Instant) -> Result<(), EngineError> {
        match command {
            Command::Confirm { step, typed } => self.confirm(step, typed),
            Command::Skip { step, reason } => self.skip(step, reason),
            Command::Retry { step, typed } => self.retry(step, typed),
            Command::MarkDone { step, note } => self.mark_done(step, note),
            Command::TakeOut { step, node, reason } => self.take_out(step, node, reason),
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Rollback => self.rollback(sent, "requested by the operator", Who::Operator),
            Command::SetTraffic {
                y_percent,
                override_health,
            } => self.set_traffic_by_hand(y_percent, override_health),
            Command::Abort => self.abort(),
            Command::Kill { step } => self.kill_left_running(step),
            Command::Quit => {
                self.quit(OPERATOR_QUIT.to_string());
                Ok(())
            }
            Command::Stop { reason } => {
                self.quit(reason);
                Ok(())
            }
            Command::HandOver => self.hand_over(),
            Command::KeepRun => self.keep_run(),
        }
    }

    /// Whether `step` may be acted on now, in one of `states`; else why not.
    pub(super) fn check_turn(
        &self,
        step: &StepRef,
        states: &[StepState],
        verb: &str,
    ) -> Result<String, String> {
        if let Some(reason) = &self.quitting {
            return Err(format!("kongup is stopping ({reason}): nothing new starts"));
        }
        if let Some(running) = &self.running {
            return Err(format!(
                "cannot {verb} {step}: {} is running; wait for it to end, or abort it",
                running.step
            ));
        }
        let key = step_key(step);
        match self.view.next_step() {
            Some(next) if next == key => {}
            Some(next) => return Err(format!("cannot {verb} {step}: it is {next}'s turn")),
            None if self.view.rollback_active() => {
                return Err(format!(
                    "cannot {verb} {step}: the rollback has no plan yet; roll back again"
                ));
            }
            None => return Err(format!("cannot {verb} {step}: the run is done")),
        }
        let state = self.view.state_of(&key);
        if !states.contains(&state) {
            let hint = match state {
                StepState::Failed => ": retry it or roll back",
                StepState::Interrupted => {
                    ": retry it, mark it done with a note, skip it with a reason, or roll back"
                }
                _ => "",
            };
            return Err(format!(
                "cannot {verb} {step}: it is {}{hint}",
                state.as_str()
            ));
        }
        Ok(key)
    }

    /// A pause holds the upgrade, not its rollback: a gate failure pauses the run, and the
    /// operator's `R` must not then need a resume before each rollback step.
    pub(super) fn check_not_paused(&self, verb: &str, step: &StepRef) -> Result<(), String> {
        if step.phase == PhaseName::Rollback {
            return Ok(());
        }
        match &self.view.paused {
            Some(reason) => Err(format!(
                "cannot {verb} {step}: the run is paused ({reason}); resume it first"
            )),
            None => Ok(()),
        }
    }

    /// The step a reference stands for, with what it undoes when it is a rollback step.
    pub(super) fn resolve(&self, step: &StepRef) -> Option<(Step, Option<RollbackOf>)> {
        if step.phase == PhaseName::Rollback {
            if let Some(found) = rollback::rollback_step(&self.expanded, step) {
                let of = RollbackOf {
                    undoes: found.undoes,
                    kind: found.kind,
                };
                return Some((found.step, Some(of)));
            }
            // The plan changed under a planned rollback: the journal still names the step.
            let info = self
                .view
                .rollback_steps()
                .iter()
                .find(|s| s.step == step_key(step))?;
            let manual = Step {
                id: step.id.clone(),
                guide_ref: String::new(),
                title: info.title.clone(),
                instruction: "The plan no longer describes this rollback step: do it by hand \
                              and confirm it."
                    .into(),
                kind: StepKind::Manual,
                changes: true,
                irreversible: info.irreversible,
                irreversible_because: info
                    .irreversible
                    .then(|| "the journal recorded it as irreversible".to_string()),
                rollback: None,
                commands: Vec::new(),
                builtin: true,
                skip_reason: None,
            };
            let undoes = info.undoes.as_deref().and_then(parse_step_key);
            let of = RollbackOf {
                undoes,
                kind: RollbackKind::Manual,
            };
            return Some((manual, Some(of)));
        }
        self.expanded.step(step).cloned().map(|s| (s, None))
    }

    /// An irreversible step (forward or rollback) runs only when the plan name was typed;
    /// the one check behind confirm and retry. `verb` says what was asked ("confirmed",
    /// "retried").
    pub(super) fn check_typed(
        &self,
        step: &StepRef,
        details: &Step,
        typed: Option<&str>,
        verb: &str,
    ) -> Result<(), String> {
        if !details.irreversible || typed.map(str::trim) == Some(self.plan.name.as_str()) {
            return Ok(());
        }
        let because = details
            .irreversible_because
            .clone()
            .unwrap_or_else(|| "it cannot be undone".to_string());
        Err(match typed {
            Some(_) => {
                format!("{step} was not {verb}: the typed name does not match the plan name")
            }
            None => format!(
                "{step} is irreversible ({because}): it is {verb} only by typing the plan name '{}'",
                self.plan.name
            ),
        })
    }

    /// `rollback/traffic-to-x` runs only once X can serve again.
    pub(super) fn check_x_serves_for(&self, step: &StepRef) -> Result<(), String> {
        if *step != StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X) {
            return Ok(());
        }
        let blockers = rollback::x_blockers(&self.expanded, &self.view);
        if blockers.is_empty() {
            return Ok(());
        }
        Err(format!(
            "cannot send traffic to X yet: X cannot serve: {}",
            rollback::describe_blockers(&blockers)
        ))
    }

    /// Why Y should not take the traffic `details` sends it now (`engine::health`); empty
    /// when the step sends Y no more than it has, or Y is fit.
    pub(super) fn y_unfit_for(&self, step: &StepRef, details: &Step) -> Vec<String> {
        let y_now = self.view.traffic().map_or(0, |s| s.y);
        match health::raises_y(step, &details.kind, y_now) {
            Some(_) => health::y_unfit(
                self.topology.as_ref(),
                self.last_verdict.as_ref(),
                self.last_step_end,
            ),
            None => Vec::new(),
        }
    }

    /// A traffic stage onto an unfit Y runs only with the override word typed; what was
    /// overridden is returned to be journaled with the confirm.
    fn check_y_fit(
        &self,
        step: &StepRef,
        details: &Step,
        typed: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let unfit = self.y_unfit_for(step, details);
        if unfit.is_empty() || typed.map(str::trim) == Some(health::OVERRIDE_WORD) {
            return Ok(unfit);
        }
        Err(format!(
            "{step} would send more traffic to a Y that is not fit for it: {}. Fix it and \
             confirm again, or type '{}' to send the traffic anyway (journaled with your name)",
            unfit.join("; "),
            health::OVERRIDE_WORD
        ))
    }

    pub(super) fn confirm(
        &mut self,
        step: StepRef,
        typed: Option<String>,
    ) -> Result<(), EngineError> {
        self.confirm_or_retry(step, typed, ConfirmVia::Confirm)
    }

    pub(super) fn retry(
        &mut self,
        step: StepRef,
        typed: Option<String>,
    ) -> Result<(), EngineError> {
        self.confirm_or_retry(step, typed, ConfirmVia::Retry)
    }

    /// Starts a ready step (confirm) or a failed or interrupted one (retry), after the
    /// turn, the pause and the typed name are checked.
    pub(super) fn confirm_or_retry(
        &mut self,
        step: StepRef,
        typed: Option<String>,
        via: ConfirmVia,
    ) -> Result<(), EngineError> {
        let (states, verb, done) = match via {
            ConfirmVia::Retry => (
                &[StepState::Failed, StepState::Interrupted][..],
                "retry",
                "retried",
            ),
            _ => (&[StepState::Pending][..], "confirm", "confirmed"),
        };
        let checked = self
            .check_turn(&step, states, verb)
            .and_then(|key| self.check_not_paused(verb, &step).map(|()| key))
            .and_then(|key| match self.resolve(&step) {
                Some((details, _)) => self
                    .check_typed(&step, &details, typed.as_deref(), done)
                    .and_then(|()| self.check_y_fit(&step, &details, typed.as_deref()))
                    .map(|overridden| (key, overridden)),
                None => Err(format!("{step} is not a step of this plan")),
            })
            .and_then(|key| self.check_x_serves_for(&step).map(|()| key))
            .and_then(|key| match via {
                ConfirmVia::Retry => self.check_nothing_left_running(&step, verb).map(|()| key),
                _ => Ok(key),
            });
        let (key, overridden) = match checked {
            Ok(checked) => checked,
            Err(why) => {
                self.refuse(Some(&step), why);
                return Ok(());
            }
        };
        self.record(
            Who::Operator,
            Entry::StepConfirmed {
                step: key,
                via,
                // The override word is not the plan name.
                typed: typed
                    .as_deref()
                    .is_some_and(|t| t.trim() != health::OVERRIDE_WORD),
                overridden,
            },
        )?;
        self.start_step(step, Who::Operator, via)
    }

    pub(super) fn mark_done(&mut self, step: StepRef, note: String) -> Result<(), EngineError> {
        let note = note.trim().to_string();
        match self
            .check_turn(
                &step,
                &[StepState::Failed, StepState::Interrupted],
                "mark done",
            )
            .and_then(|key| {
                self.check_nothing_left_running(&step, "mark done")
                    .map(|()| key)
            }) {
            Ok(_) if note.is_empty() => {
                self.refuse(
                    Some(&step),
                    format!("marking {step} done needs a note: what was done by hand"),
                );
                Ok(())
            }
            Ok(key) => {
                self.record(Who::Operator, Entry::StepMarkedDone { step: key, note })?;
                Ok(())
            }
            Err(why) => {
                self.refuse(Some(&step), why);
                Ok(())
            }
        }
    }

    /// Takes a node that failed in a wave's node step out of the wave (journaled, with the
    /// reason); when every other node of the step is done, the step runs again at once (the
    /// take-out is its confirm): nothing is left to run but its wait, on those nodes.
    pub(super) fn take_out(
        &mut self,
        step: StepRef,
        node: String,
        reason: String,
    ) -> Result<(), EngineError> {
        const VERB: &str = "take a node out of";
        let (node, reason) = (node.trim().to_string(), reason.trim().to_string());
        let checked = self
            .check_turn(&step, &[StepState::Failed, StepState::Interrupted], VERB)
            .and_then(|key| self.check_nothing_left_running(&step, VERB).map(|()| key))
            .and_then(|key| {
                self.others_after_take_out(&step, &key, &node, &reason)
                    .map(|others| (key, others))
            });
        let (key, not_done) = match checked {
            Ok(checked) => checked,
            Err(why) => {
                self.refuse(Some(&step), why);
                return Ok(());
            }
        };
        self.record(
            Who::Operator,
            Entry::NodeTakenOut {
                step: key.clone(),
                node: node.clone(),
                reason,
            },
        )?;
        if let Some((details, None)) = self.resolve(&step)
            && matches!(
                details.kind,
                StepKind::StartNodes {
                    cluster: ClusterSide::Y,
                    ..
                }
            )
        {
            self.out_of_balancer(key, node.clone());
        }
        if not_done.is_empty() {
            return self.confirm_or_retry(step, None, ConfirmVia::Retry);
        }
        self.warn(format!(
            "{node} is out of {step}; {} of its other nodes are not done ({}): retry the step \
             (it runs only on them), take them out too, or roll back",
            not_done.len(),
            crate::engine::step::some_nodes(&not_done)
        ));
        Ok(())
    }

    /// A Y node taken out of its wave goes out of the balancer when the driver can set one
    /// server's state (HAProxy: maintenance), rather than waiting for the balancer's own
    /// health checks to notice it. Done on a task of its own (the engine keeps taking
    /// commands); journaled first as the step's fact [`SERVER_OUT`]`NODE` = `SERVER` so the
    /// wave's rollback puts the server back; a failure is said as a warning.
    fn out_of_balancer(&self, step: String, node: String) {
        let driver = self.traffic.driver.clone();
        let Some(server) = driver.server_of(&node) else {
            return;
        };
        let (journal, events) = (self.journal_tx.clone(), self.events.clone());
        tokio::spawn(async move {
            // Journaled before the balancer is touched: a crash in between leaves a record
            // the wave's rollback acts on (setting a server ready that never left is
            // harmless), never a server in maintenance that nothing records.
            let recorded = journal_through(
                &journal,
                "the taken-out node's server",
                Entry::Fact {
                    step,
                    key: format!("{SERVER_OUT}{node}"),
                    value: server.clone(),
                },
                false,
            )
            .await;
            if let Err(e) = recorded {
                events.send(Event::Warning(format!(
                    "{node} is taken out of its wave, but its server {server} was left in the                      balancer: the journal did not record the change ({e}), so the wave's                      rollback could not undo it; the balancer's health checks must take it out"
                )));
                return;
            }
            let limit = driver.call_timeout();
            let set = tokio::time::timeout(limit, driver.set_server(&server, ServerAdmin::Maint))
                .await
                .unwrap_or_else(|_| {
                    Err(crate::lb::LbError::Driver {
                        driver: "traffic",
                        message: format!("no answer within {}", humantime::format_duration(limit)),
                    })
                });
            let text = match set {
                Ok(()) => {
                    format!("{node} is out of the balancer: server {server} set to maintenance")
                }
                Err(e) => format!(
                    "{node} is taken out of its wave, but its server {server} could not be set \
                     to maintenance ({e}): the balancer's health checks must take it out"
                ),
            };
            events.send(Event::Warning(text));
        });
    }

    /// Whether `node` may be taken out of `step` (a wave's start or stop step, in which it
    /// failed in the last attempt); the step's other nodes not done yet when it is.
    fn others_after_take_out(
        &self,
        step: &StepRef,
        key: &str,
        node: &str,
        reason: &str,
    ) -> Result<Vec<String>, String> {
        let Some((details, None)) = self.resolve(step) else {
            return Err(format!(
                "{step} is not a wave's node step: no node is taken out of it"
            ));
        };
        if !details.kind.is_wave_node_step() {
            return Err(format!(
                "{step} is not a wave's start or stop step: a node is taken out only of those"
            ));
        }
        if reason.is_empty() {
            return Err(format!(
                "taking {node} out of {step} needs a reason: why it is left out of the wave"
            ));
        }
        let record = self.view.record(key);
        let failed: Vec<&str> = record
            .map(|r| {
                r.nodes_failed()
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| !self.view.taken_out.contains_key(*n))
                    .collect()
            })
            .unwrap_or_default();
        let hint = if failed.is_empty() {
            "none of its nodes failed".to_string()
        } else {
            format!("the nodes that failed there: {}", failed.join(", "))
        };
        if let Some(out) = self.view.taken_out.get(node) {
            return Err(format!("{node} is already {} at {}", out.what(), out.step));
        }
        let nodes: Vec<String> = placement::step_nodes(&self.plan, step.phase, &details.kind)
            .into_iter()
            .map(|n| n.name.clone())
            .collect();
        if !nodes.iter().any(|n| n == node) {
            return Err(format!(
                "'{node}' is not a node of {step} (type the node's name exactly; {hint})"
            ));
        }
        let last_attempt = record.map_or(0, |r| r.attempts);
        let failed_last = record
            .and_then(|r| r.nodes.get(node))
            .is_some_and(|n| n.failed.is_some() && n.attempt == last_attempt);
        if !failed_last {
            return Err(format!(
                "{node} did not fail in {step}'s last attempt: only a node that failed is taken \
                 out ({hint})"
            ));
        }
        let done = record.map(|r| r.nodes_done()).unwrap_or_default();
        Ok(nodes
            .into_iter()
            .filter(|n| n != node && !done.contains(n) && !self.view.taken_out.contains_key(n))
            .collect())
    }

    pub(super) fn skip(&mut self, step: StepRef, reason: String) -> Result<(), EngineError> {
        let reason = reason.trim().to_string();
        // An interrupted step whose program still runs is not skipped past: the next step
        // would start beside it.
        match self
            .check_turn(&step, &[StepState::Pending, StepState::Interrupted], "skip")
            .and_then(|key| self.check_nothing_left_running(&step, "skip").map(|()| key))
        {
            Ok(_) if reason.is_empty() => {
                self.refuse(Some(&step), format!("skipping {step} needs a reason"));
                Ok(())
            }
            Ok(key) => {
                self.record(
                    Who::Operator,
                    Entry::StepSkipped {
                        step: key,
                        reason,
                        by_plan: false,
                    },
                )?;
                Ok(())
            }
            Err(why) => {
                self.refuse(Some(&step), why);
                Ok(())
            }
        }
    }

    pub(super) fn pause(&mut self) -> Result<(), EngineError> {
        if let Some(reason) = &self.view.paused {
            self.warn(format!("the run is already paused ({reason})"));
            return Ok(());
        }
        let reason = format!("paused by {}", self.operator);
        self.record(Who::Operator, Entry::Paused { reason })?;
        if let Some(running) = &self.running {
            self.warn(format!(
                "{} goes on running; nothing new starts until the run is resumed",
                running.step
            ));
        }
        Ok(())
    }

    pub(super) fn resume(&mut self) -> Result<(), EngineError> {
        if self.view.paused.is_none() {
            self.warn("the run is not paused");
            return Ok(());
        }
        self.record(Who::Operator, Entry::Resumed)?;
        // Resuming moves no traffic, but the gates may fail again at once: say when not.
        let latest = self.gate_watch.as_ref().and_then(|rx| rx.borrow().clone());
        if let Some(secs) = latest.and_then(|v| {
            crate::metrics::gates::window_clears_in(&v, self.plan.gates.window, chrono::Utc::now())
        }) {
            self.warn(format!(
                "resumed; {}: until then a stage may fail its gates at once",
                crate::metrics::gates::window_clears_words(secs)
            ));
        }
        Ok(())
    }

    /// Stops the running step (its process group is killed) and the engine's own traffic
    /// call, if any (what the driver started is killed; the split may be half-applied).
    pub(super) fn abort(&mut self) -> Result<(), EngineError> {
        if self.running.is_none() && self.traffic_call.is_none() {
            self.warn("no step is running and no traffic change is under way: nothing to abort");
            return Ok(());
        }
        if let Some(running) = &self.running {
            let (key, cancel, sink) = (
                running.key.clone(),
                running.cancel.clone(),
                running.sink.clone(),
            );
            self.record(Who::Operator, Entry::AbortRequested { step: key })?;
            sink.note(&format!("abort requested by {}", self.operator));
            cancel.cancel();
        }
        if let Some(call) = &self.traffic_call {
            call.cancel.cancel();
            self.warn(format!(
                "abort: the call to the traffic driver ({}) is being stopped",
                call.purpose.describe()
            ));
        }
        Ok(())
    }

    pub(super) fn quit(&mut self, reason: String) {
        if let Some(running) = &self.running {
            self.warn(format!(
                "{} is still running: kongup stops when it ends, and journals its result \
                 ({reason}); abort it to stop it now",
                running.step
            ));
        }
        if let Some(call) = &self.traffic_call {
            self.warn(format!(
                "the traffic driver is still answering ({}): kongup stops when it has, and \
                 journals what it said ({reason}); abort to stop it now",
                call.purpose.describe()
            ));
        }
        if self.quitting.is_none() {
            self.quitting = Some(reason);
        }
    }

    /// A signal names the session's end even when a lost terminal (which a hang-up also
    /// brings) or the end of `--plain`'s input came first; the operator's quit and an
    /// earlier signal keep their word.
    pub(super) fn on_signal(&mut self, name: &str) {
        let reason = crate::engine::signal_reason(name);
        if self
            .quitting
            .as_ref()
            .is_some_and(|r| r != OPERATOR_QUIT && !r.starts_with("SIG"))
        {
            self.quitting = Some(reason);
            return;
        }
        self.quit(reason);
    }
}

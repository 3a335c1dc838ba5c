//! Opening a run: the run directory, the lock, the journal (new, or replayed, with a plan
//! change accepted or refused), the session's first records, the snapshot a console
//! starts from, and the read of the load balancer's split as the run opens.

use std::path::Path;
use std::sync::Arc;

use super::{Engine, Who};
use crate::engine::drivers::{Driver, drivers};
use crate::engine::event::StepState;
use crate::engine::journal::{Entry, JOURNAL_FILE, Journal, StepInfo, read_journal, step_key};
use crate::engine::lock::RunLock;
use crate::engine::rundir::{self, LOGS_DIR};
use crate::engine::shown::rollback_plan_event;
use crate::engine::step::{Toolbox, driver_deadline};
use crate::engine::view::RunView;
use crate::engine::{EngineError, Operator, RunOptions, plan_change, sha256_hex};
use crate::exec::process::kill_on_drop;
use crate::lb::{ReadBackSource, Split, TrafficDriver};
use crate::plan::model::Plan;
use crate::plan::steps::{ExpandedPlan, StepRef};
use crate::secrets::SHORT_SECRET;

/// What opening a run found and took: its journal (created, or opened after its last
/// whole record; it holds the run's lock), the run folded from it, the plan change to
/// journal (accepted by the options) and the warnings to show once the engine runs.
pub(super) struct Opened {
    pub(super) journal: Journal,
    pub(super) view: RunView,
    pub(super) plan_change: Option<Entry>,
    pub(super) warnings: Vec<String>,
    /// The session the journal leaves open: its kongup stopped without closing it (a
    /// crash), and this one takes the run over from it.
    pub(super) stale: Option<Driver>,
}

/// Opens (or creates) the run directory and its journal and takes the run's lock (unless
/// `lock` is the caller's, already taken); refuses a changed plan unless the options
/// accept it.
#[allow(clippy::too_many_arguments)]
pub(super) fn open_run(
    plan: &Plan,
    expanded: &ExpandedPlan,
    plan_text: &str,
    run_dir: &Path,
    operator: &Operator,
    toolbox: &Toolbox,
    options: RunOptions,
    lock: Option<RunLock>,
) -> Result<Opened, EngineError> {
    let mut opening_warnings = Vec::new();
    match toolbox.redactor.short_secrets() {
        0 => {}
        short => opening_warnings.push(format!(
            "{short} of the plan's secrets {} shorter than {SHORT_SECRET} characters: kongup \
             still hides {} in log lines and messages, where {} may garble words that contain \
             {}; use longer secrets",
            if short == 1 { "is" } else { "are" },
            if short == 1 { "it" } else { "them" },
            if short == 1 { "it" } else { "they" },
            if short == 1 { "it" } else { "them" },
        )),
    }
    let run_dir_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::RunDir { path, source }
    };
    if run_dir.exists() {
        if rundir::is_shared(run_dir).map_err(run_dir_err(run_dir))? {
            opening_warnings.push(format!(
                "the run directory {} can be read by other users; it holds logs and backups: \
                 chmod 700 it",
                run_dir.display()
            ));
        }
    } else {
        rundir::create_private_dir(run_dir).map_err(run_dir_err(run_dir))?;
    }
    let logs = run_dir.join(LOGS_DIR);
    rundir::create_private_dir(&logs).map_err(run_dir_err(&logs))?;
    let lock = match lock {
        Some(lock) => lock,
        None => RunLock::acquire(run_dir, &operator.0)?,
    };

    let plan_sha256 = sha256_hex(plan_text);
    let journal_path = run_dir.join(JOURNAL_FILE);
    let existing = if journal_path.exists() {
        let contents = read_journal(&journal_path)?;
        opening_warnings.extend(contents.warnings());
        (!contents.records.is_empty()).then_some(contents)
    } else {
        None
    };

    let stale = existing
        .as_ref()
        .and_then(|contents| drivers(&contents.records).pop())
        .filter(|driver| driver.ended.is_none());
    let (journal, view, plan_change) = match existing {
        Some(contents) => {
            let view = RunView::replay(&contents.records).expect("read_journal checked the header");
            let change = if view.plan_sha256 != plan_sha256 {
                let summary = plan_change::summarise(&view.plan_text, plan_text);
                if !options.accept_plan_change {
                    return Err(EngineError::PlanChanged {
                        run_dir: run_dir.to_path_buf(),
                        summary,
                    });
                }
                // A step that ran and was left undecided must not vanish with the change.
                let new_steps = step_infos(expanded);
                let dropped: Vec<String> = view
                    .records
                    .iter()
                    .filter(|(key, record)| {
                        matches!(
                            record.state,
                            StepState::Running | StepState::Interrupted | StepState::Failed
                        ) && !new_steps.iter().any(|s| &s.step == *key)
                    })
                    .map(|(key, record)| {
                        let state = match record.state {
                            StepState::Running => StepState::Interrupted,
                            other => other,
                        };
                        format!("{key} ({})", state.as_str())
                    })
                    .collect();
                if !dropped.is_empty() {
                    return Err(EngineError::PlanDropsUndecided {
                        run_dir: run_dir.to_path_buf(),
                        steps: dropped,
                    });
                }
                Some(Entry::PlanChangeAccepted {
                    previous_sha256: view.plan_sha256.clone(),
                    plan_sha256: plan_sha256.clone(),
                    plan_text: plan_text.to_string(),
                    summary,
                    steps: step_infos(expanded),
                })
            } else {
                None
            };
            let journal = Journal::open(
                lock,
                contents.valid_len,
                view.last_seq + 1,
                toolbox.redactor.clone(),
            )?;
            (journal, view, change)
        }
        None => {
            let mut journal = Journal::open(lock, 0, 0, toolbox.redactor.clone())?;
            let created = journal.append(
                &operator.0,
                Entry::RunCreated {
                    run_id: rundir::run_id_for(&plan.name),
                    plan_name: plan.name.clone(),
                    plan_sha256: plan_sha256.clone(),
                    plan_text: plan_text.to_string(),
                    steps: step_infos(expanded),
                    kongup_version: env!("CARGO_PKG_VERSION").to_string(),
                },
            )?;
            let view = RunView::replay(std::slice::from_ref(&created)).expect("a header");
            (journal, view, None)
        }
    };
    Ok(Opened {
        journal,
        view,
        plan_change,
        warnings: opening_warnings,
        stale,
    })
}

/// The load balancer's split, read once as the run opens, for the header: where traffic
/// is is the first question of an operator who opens (or takes over) a run. Reported only
/// if nothing touched the traffic meanwhile, so it never contradicts a newer change;
/// aborted (and what it started killed) if the engine stops first.
pub(super) struct OpeningRead {
    pub(super) task: tokio::task::JoinHandle<Option<Split>>,
    /// The split the journal knew when the read began.
    pub(super) known: (Option<Split>, Option<Split>),
}

impl OpeningRead {
    /// None for a driver that cannot be read (preflight and the traffic steps say why).
    pub(super) fn start(
        driver: Arc<dyn TrafficDriver>,
        known: (Option<Split>, Option<Split>),
    ) -> Option<Self> {
        if matches!(
            driver.read_back_source(),
            ReadBackSource::Operator | ReadBackSource::Nothing
        ) {
            return None;
        }
        let task = tokio::spawn(async move {
            let deadline = driver_deadline(driver.as_ref());
            let read = tokio::time::timeout(deadline, kill_on_drop(driver.read_split())).await;
            read.ok()?.ok()?
        });
        Some(OpeningRead { task, known })
    }
}

impl Drop for OpeningRead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) async fn opening_read_end(read: &mut Option<OpeningRead>) -> Option<Split> {
    match read {
        Some(read) => (&mut read.task).await.ok().flatten(),
        None => std::future::pending().await,
    }
}

pub(super) fn step_infos(expanded: &ExpandedPlan) -> Vec<StepInfo> {
    expanded
        .steps()
        .map(|(phase, step)| StepInfo {
            step: step_key(&StepRef::new(phase.name, step.id.clone())),
            title: step.title.clone(),
            kind: step.kind.as_str().to_string(),
            changes: step.changes,
            irreversible: step.irreversible,
            y_percent: plan_change::y_percent_of(&step.kind),
        })
        .collect()
}

impl Engine {
    pub(super) fn open_session(
        &mut self,
        plan_change: Option<Entry>,
        stale: Option<Driver>,
    ) -> Result<(), EngineError> {
        if let Some(stale) = stale {
            self.opening_warnings.push(format!(
                "took the run over from {} (pid {}), whose kongup stopped without closing its \
                 session (a crash, kill -9 or power loss); journaled",
                stale.operator, stale.pid
            ));
            self.record(
                Who::Operator,
                Entry::LockTakenOver {
                    from: stale.operator,
                    pid: stale.pid,
                    since: stale.from,
                },
            )?;
        }
        self.record(
            Who::Operator,
            Entry::SessionOpened {
                pid: std::process::id(),
            },
        )?;
        if let Some(change) = plan_change {
            if let Entry::PlanChangeAccepted { steps, .. } = &change {
                let (head, lines) = plan_change::step_changes(&self.view.steps, steps);
                self.opening_warnings.push(head);
                self.opening_warnings.extend(lines);
            }
            self.record(Who::Operator, change)?;
        }
        for warning in self.opening_warnings.clone() {
            self.record(Who::Kongup, Entry::Warning { text: warning })?;
        }
        let running: Vec<String> = self
            .view
            .records
            .iter()
            .filter(|(_, r)| r.state == StepState::Running)
            .map(|(k, _)| k.clone())
            .collect();
        for step in running {
            self.record(Who::Kongup, Entry::StepInterrupted { step: step.clone() })?;
            let left_running = self
                .view
                .record(&step)
                .is_some_and(|r| r.unended().next().is_some());
            self.opening_warnings.push(if left_running {
                format!(
                    "{step} was running when kongup stopped: it is interrupted, and kongup \
                     checks whether its command still runs; while it does, wait for it to \
                     end or kill it; then retry the step, mark it done with a note, skip \
                     it with a reason, or roll back"
                )
            } else {
                format!(
                    "{step} was running when kongup stopped: it is interrupted; retry it, \
                     mark it done with a note, skip it with a reason, or roll back"
                )
            });
        }
        // A step's program whose end is not journaled may still run (after a crash, or a
        // lost ssh connection): it is watched until it ends.
        let unended: Vec<String> = self
            .view
            .records
            .iter()
            .filter(|(_, r)| r.unended().next().is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for step in unended {
            self.watch_unended(&step)?;
        }
        if self
            .view
            .rollback
            .as_ref()
            .is_some_and(|r| !r.finished && r.planned.is_none())
        {
            self.opening_warnings.push(
                "a rollback was under way before its plan was made: roll back again to \
                 finish its first act and plan it"
                    .into(),
            );
        }
        Ok(())
    }

    /// The snapshot a console starts from: the run, its traffic, its rollback and every
    /// step, as `kongup watch` derives them too ([`crate::engine::shown`]).
    pub(super) fn emit_snapshot(&mut self) {
        self.shown.clear();
        self.shown_still_running.clear();
        let events = self.shown.update(&self.view, &self.expanded);
        self.emit_derived(events);
        for warning in std::mem::take(&mut self.opening_warnings) {
            self.warn(warning);
        }
    }

    pub(super) fn emit_rollback_plan(&self) {
        self.emit(rollback_plan_event(&self.view));
    }
}

//! The engine's parts, injected: real runs, the lab and tests each plug in their own
//! executors, traffic driver, gate source and actions.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::{ActionFor, ActionRegistry, StepAction, describe_commands};
use crate::exec::{Executor, executor_for, local::LocalExecutor};
use crate::lb::{TrafficDriver, driver_for};
use crate::metrics::{GateVerdict, WaveScope};
use crate::plan::model::{Plan, SecretRef};
use crate::plan::steps::{RollbackKind, Step};
use crate::secrets::Redactor;

#[derive(Clone)]
pub struct Toolbox {
    /// By the names the plan uses (its `executors:` map), plus `local`.
    pub executors: BTreeMap<String, Arc<dyn Executor>>,
    pub traffic: Arc<dyn TrafficDriver>,
    /// Knows every secret value of the run; applied to log lines, the journal and events.
    pub redactor: Arc<Redactor>,
    /// The metrics task's latest gate evaluation. Send every evaluation (each with a fresh
    /// `at`), not only changes: a bake trusts only verdicts evaluated after it began.
    /// `None`: bakes only count down.
    pub gates: Option<watch::Receiver<Option<GateVerdict>>>,
    /// Where the engine says which wave's nodes the gates judge (`engine::wave::gate_scope`),
    /// beside the gate source; `None` when nothing listens.
    pub gate_scope: Option<watch::Sender<Option<WaveScope>>>,
    pub actions: ActionRegistry,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("executors", &self.executors.keys().collect::<Vec<_>>())
            .field("traffic", &self.traffic.describe())
            .field("gates", &self.gates.is_some())
            .field("actions", &self.actions)
            .finish()
    }
}

/// The secrets a plan names: the Admin API token, the database passwords, the
/// smoke tests' credential headers and the `notify.webhooks` URLs.
pub fn plan_secrets(plan: &Plan) -> Vec<SecretRef> {
    let databases = [&plan.clusters.x.database, &plan.clusters.y.database];
    plan.admin
        .token
        .iter()
        .chain(
            databases
                .into_iter()
                .flatten()
                .filter_map(|db| db.password.as_ref()),
        )
        .chain(
            plan.smoke_tests
                .iter()
                .flat_map(|t| t.secret_headers.values()),
        )
        .chain(&plan.notify.webhooks)
        .cloned()
        .collect()
}

/// Reads every secret the plan names, for the redactor; all missing ones are reported.
pub fn resolve_plan_secrets(plan: &Plan) -> Result<Redactor, Vec<crate::secrets::SecretError>> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for secret in plan_secrets(plan) {
        match crate::secrets::resolve(&secret) {
            Ok(value) => values.push(value.expose().to_string()),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(Redactor::new(values))
    } else {
        Err(errors)
    }
}

impl Toolbox {
    /// The real parts for a plan: its executors (plus `local`), its traffic driver and
    /// `actions` (a real run's are `actions::builtins`); no gate source (the metrics task
    /// adds one with `with_gates`).
    /// From here on no program kongup starts inherits the plan's secret environment
    /// variables (`admin.token`, database passwords, …) unless a command passes one.
    pub fn for_plan(
        plan: &Plan,
        redactor: Redactor,
        actions: ActionRegistry,
    ) -> Result<Toolbox, String> {
        crate::exec::process::hide_env_from_children(plan_secrets(plan).into_iter().filter_map(
            |secret| match secret {
                SecretRef::Env(name) => Some(name),
                SecretRef::File(_) => None,
            },
        ));
        let mut executors: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
        executors.insert("local".to_string(), Arc::new(LocalExecutor::new()));
        for (name, spec) in &plan.executors {
            let executor = executor_for(spec, name).map_err(|e| e.to_string())?;
            executors.insert(name.clone(), executor);
        }
        let traffic = driver_for(&plan.traffic.driver, &executors).map_err(|e| e.to_string())?;
        let mut toolbox = Toolbox::new(traffic, redactor, actions);
        toolbox.executors = executors;
        Ok(toolbox)
    }

    /// A toolbox with `actions`, no executors and no gate source.
    pub fn new(
        traffic: Arc<dyn TrafficDriver>,
        redactor: Redactor,
        actions: ActionRegistry,
    ) -> Toolbox {
        Toolbox {
            executors: BTreeMap::new(),
            traffic,
            redactor: Arc::new(redactor),
            gates: None,
            gate_scope: None,
            actions,
        }
    }

    pub fn with_executor(mut self, name: impl Into<String>, executor: Arc<dyn Executor>) -> Self {
        self.executors.insert(name.into(), executor);
        self
    }

    pub fn with_gates(mut self, gates: watch::Receiver<Option<GateVerdict>>) -> Self {
        self.gates = Some(gates);
        self
    }

    /// The action that runs a step, if any: `rollback` is the kind of rollback step it is.
    pub fn action_for(
        &self,
        step: &Step,
        rollback: Option<&RollbackKind>,
    ) -> Option<Arc<dyn StepAction>> {
        if !step.builtin {
            return None;
        }
        self.actions.find(match rollback {
            Some(kind) => ActionFor::Rollback(kind),
            None => ActionFor::Step(&step.kind),
        })
    }

    /// Exactly what confirming the step will run and where, one line each.
    /// Whether a step runs nothing (no action, no commands): it is done by hand, and its
    /// confirm is the operator's word that it was.
    pub fn by_hand(&self, step: &Step, rollback: Option<&RollbackKind>) -> bool {
        self.action_for(step, rollback).is_none() && step.commands.is_empty()
    }

    pub fn preview(
        &self,
        plan: &Plan,
        step: &Step,
        rollback: Option<&RollbackKind>,
    ) -> Vec<String> {
        let mut lines = self
            .action_for(step, rollback)
            .map(|action| action.describe(step, plan, self))
            .unwrap_or_default();
        lines.extend(describe_commands(&step.commands, plan, self));
        if lines.is_empty() {
            lines.push(
                "nothing runs: do this by hand; confirming records that it is done".to_string(),
            );
        }
        lines
    }
}

//! The expanded plan: phases of steps, as the engine runs them and the console shows them.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::model::{CommandSpec, Strategy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseName {
    /// The only phase of a traditional or DB-less upgrade.
    Cluster,
    /// Hybrid, first: the control planes.
    ControlPlane,
    /// Hybrid, second: the data planes.
    DataPlane,
    /// The engine's rollback steps (`rollback/<id>`), built from the completed steps'
    /// rollback counterparts when a rollback starts. Never produced by the templates.
    Rollback,
}

impl PhaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Cluster => "cluster",
            PhaseName::ControlPlane => "control-plane",
            PhaseName::DataPlane => "data-plane",
            PhaseName::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cluster" => Some(PhaseName::Cluster),
            "control-plane" => Some(PhaseName::ControlPlane),
            "data-plane" => Some(PhaseName::DataPlane),
            "rollback" => Some(PhaseName::Rollback),
            _ => None,
        }
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies a step in a run: its phase and its id (ids are unique within a phase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepRef {
    pub phase: PhaseName,
    pub id: String,
}

impl StepRef {
    pub fn new(phase: PhaseName, id: impl Into<String>) -> Self {
        StepRef {
            phase,
            id: id.into(),
        }
    }
}

impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.phase, self.id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedPlan {
    pub phases: Vec<Phase>,
    /// Why the strategy was chosen (always set, also when the plan named it).
    pub strategy_reason: String,
    /// Warnings about the upgrade path and the strategy, shown before the run starts.
    pub warnings: Vec<String>,
}

impl ExpandedPlan {
    pub fn steps(&self) -> impl Iterator<Item = (&Phase, &Step)> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }

    pub fn step(&self, step: &StepRef) -> Option<&Step> {
        self.phases
            .iter()
            .find(|p| p.name == step.phase)
            .and_then(|p| p.steps.iter().find(|s| s.id == step.id))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: PhaseName,
    pub strategy: Strategy,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    /// Where the step comes from in Kong's guide, e.g. "5.3" (empty for added steps).
    pub guide_ref: String,
    pub title: String,
    /// The guide's own instruction, shown to the operator.
    pub instruction: String,
    pub kind: StepKind,
    /// Whether running the step changes anything (a review does not).
    pub changes: bool,
    /// Cannot be undone: needs the plan name typed to confirm.
    pub irreversible: bool,
    /// What cannot be undone, said in the typed-confirmation modal.
    pub irreversible_because: Option<String>,
    /// The step that undoes this one during a rollback, if any.
    pub rollback: Option<RollbackAction>,
    /// Commands from the plan; run in order after any built-in automation.
    pub commands: Vec<CommandSpec>,
    /// Whether kongup's built-in automation for the step's kind runs (the plan can turn
    /// it off for a step whose work the operator's own commands do).
    pub builtin: bool,
    /// Why the plan skips this step, when it does.
    pub skip_reason: Option<String>,
}

/// What a step does. Every kind but `Manual` and `Review` has built-in automation;
/// plan commands run in addition to it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Checks before anything changes: path, connectivity, pending migrations.
    Preflight,
    /// The operator does it and confirms it (or the plan gives it commands).
    Manual,
    /// Reading: considerations, breaking changes. Changes nothing.
    Review,
    /// Stop configuration writes; records the configuration fingerprint.
    FreezeWrites,
    Backup(BackupKind),
    /// Dual-cluster: restore X's backup into Y's database.
    RestoreDatabase,
    /// Deploy or start nodes of a cluster.
    DeployNodes {
        cluster: ClusterSide,
    },
    /// Start nodes of a cluster: all of the phase's, or one wave's (`rolling:`; 1-based).
    StartNodes {
        cluster: ClusterSide,
        wave: Option<usize>,
    },
    /// Stop nodes of a cluster: all of the phase's, or one wave's (`rolling:`; 1-based).
    StopNodes {
        cluster: ClusterSide,
        wave: Option<usize>,
    },
    Migrations(MigrationsCommand),
    SmokeTests,
    /// Hybrid: every DP reports `sync_status: normal` and the CP minor is >= the DP minor.
    CompatibilityCheck,
    /// One stage of the traffic schedule: this percentage to Y, then bake.
    ShiftTraffic {
        y_percent: u8,
        bake: Duration,
    },
    /// Watch the metrics for a while with the gates on.
    Monitor {
        duration: Duration,
    },
    Decommission {
        cluster: ClusterSide,
    },
}

impl StepKind {
    /// The short name used in `kongup plan --json` and the journal.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::Preflight => "preflight",
            StepKind::Manual => "manual",
            StepKind::Review => "review",
            StepKind::FreezeWrites => "freeze-writes",
            StepKind::Backup(_) => "backup",
            StepKind::RestoreDatabase => "restore-database",
            StepKind::DeployNodes { .. } => "deploy-nodes",
            StepKind::StartNodes { .. } => "start-nodes",
            StepKind::StopNodes { .. } => "stop-nodes",
            StepKind::Migrations(MigrationsCommand::Up) => "migrations-up",
            StepKind::Migrations(MigrationsCommand::Finish) => "migrations-finish",
            StepKind::SmokeTests => "smoke-tests",
            StepKind::CompatibilityCheck => "compatibility-check",
            StepKind::ShiftTraffic { .. } => "shift-traffic",
            StepKind::Monitor { .. } => "monitor",
            StepKind::Decommission { .. } => "decommission",
        }
    }

    /// A wave's start or stop step: it runs node by node, and a node that failed there may
    /// be taken out of the wave.
    pub fn is_wave_node_step(&self) -> bool {
        matches!(
            self,
            StepKind::StartNodes { wave: Some(_), .. } | StepKind::StopNodes { wave: Some(_), .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterSide {
    X,
    Y,
}

impl ClusterSide {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterSide::X => "x",
            ClusterSide::Y => "y",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// `pg_dump -Fc` of the Kong database.
    Database,
    /// decK dump, or an Admin API export of the core entities; DB-less: copy of `kong.yml`.
    Declarative,
    /// Keyring materials, when keyring and data encryption are enabled.
    Keyring,
    /// `kong.conf` and other static files.
    StaticFiles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationsCommand {
    Up,
    Finish,
}

/// How a completed step is undone during a rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackAction {
    pub title: String,
    pub instruction: String,
    pub kind: RollbackKind,
    pub irreversible: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RollbackKind {
    /// All traffic back to X (always the first act of a rollback when traffic moved).
    TrafficToX,
    /// Stop the nodes a step started: all of the phase's, or one wave's.
    StopNodes {
        cluster: ClusterSide,
        wave: Option<usize>,
    },
    /// Start the nodes a step stopped: all of the phase's, or one wave's.
    StartNodes {
        cluster: ClusterSide,
        wave: Option<usize>,
    },
    /// Restore the backup over the live database (after `migrations finish`).
    RestoreDatabase,
    /// Unfreeze configuration writes on X.
    UnfreezeWrites,
    /// The operator does it and confirms it.
    Manual,
}

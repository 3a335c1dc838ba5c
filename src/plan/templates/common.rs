//! Pieces every strategy template uses: the step builder, the rollback counterparts, the
//! steps that look alike in every guide, and what kongup does for each kind of step.

use crate::plan::model::{DatabaseKind, KONG_DRAIN_SINCE, Plan, Strategy, TrafficDriverSpec};
use crate::plan::steps::{
    BackupKind, ClusterSide, MigrationsCommand, PhaseName, RollbackAction, RollbackKind, Step,
    StepKind,
};

/// What a phase upgrades. The guides are written for a traditional cluster; control planes
/// and data planes of a hybrid deployment follow them with a few differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// A traditional-mode cluster.
    Cluster,
    /// Hybrid control planes (dual-cluster, in-place or blue-green).
    ControlPlanes,
    /// DB-less nodes (rolling).
    Dbless,
    /// Hybrid data planes (rolling, after the control planes).
    DataPlanes,
}

impl Target {
    /// "cluster Y", "control planes Y"…: how titles name the new side.
    pub(super) fn y(self) -> &'static str {
        match self {
            Target::Cluster | Target::Dbless => "cluster Y",
            Target::ControlPlanes => "control planes Y",
            Target::DataPlanes => "data planes Y",
        }
    }

    pub(super) fn x(self) -> &'static str {
        match self {
            Target::Cluster | Target::Dbless => "cluster X",
            Target::ControlPlanes => "control planes X",
            Target::DataPlanes => "data planes X",
        }
    }

    pub(super) fn is_hybrid(self) -> bool {
        matches!(self, Target::ControlPlanes | Target::DataPlanes)
    }
}

/// Builds one template step: the guide's words first, then kongup's own notes.
pub(super) struct Draft(Step);

impl Draft {
    pub(super) fn new(id: &str, guide_ref: &str, title: impl Into<String>, kind: StepKind) -> Self {
        Draft(Step {
            id: id.to_string(),
            guide_ref: guide_ref.to_string(),
            title: title.into(),
            instruction: String::new(),
            kind,
            changes: false,
            irreversible: false,
            irreversible_because: None,
            rollback: None,
            commands: Vec::new(),
            builtin: true,
            skip_reason: None,
        })
    }

    /// The guide's own instruction (paragraphs separated by blank lines).
    pub(super) fn guide(mut self, text: &str) -> Self {
        self.0.instruction = text.trim().to_string();
        self
    }

    /// A paragraph kongup adds for this deployment (after the guide's words).
    pub(super) fn note(mut self, text: impl AsRef<str>) -> Self {
        let text = text.as_ref().trim();
        if !text.is_empty() {
            if !self.0.instruction.is_empty() {
                self.0.instruction.push_str("\n\n");
            }
            self.0.instruction.push_str(text);
        }
        self
    }

    pub(super) fn changes(mut self) -> Self {
        self.0.changes = true;
        self
    }

    pub(super) fn irreversible(mut self, because: &str) -> Self {
        self.0.changes = true;
        self.0.irreversible = true;
        self.0.irreversible_because = Some(because.to_string());
        self
    }

    pub(super) fn rollback(mut self, action: RollbackAction) -> Self {
        self.0.rollback = Some(action);
        self
    }

    pub(super) fn build(self) -> Step {
        self.0
    }
}

pub(super) fn traffic_to_x() -> RollbackAction {
    RollbackAction {
        title: "Send all traffic back to X".to_string(),
        instruction: "Set the split to 100% X, 0% Y and check that it took effect. X still runs and can serve from its database.".to_string(),
        kind: RollbackKind::TrafficToX,
        irreversible: false,
    }
}

pub(super) fn stop_y(target: Target) -> RollbackAction {
    RollbackAction {
        title: format!("Stop {}", target.y()),
        instruction: format!(
            "Stop the nodes of {} so that nothing runs the new version while X takes over again.",
            target.y()
        ),
        kind: RollbackKind::StopNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
        irreversible: false,
    }
}

/// The undo of installing Y: the same act as `stop_y` (no node of Y runs), said so that a
/// rollback listing both reads as two different things.
pub(super) fn take_y_out_of_service(target: Target) -> RollbackAction {
    RollbackAction {
        title: format!("Take {} out of service", target.y()),
        instruction: format!(
            "{} was installed for this upgrade: make sure none of its nodes runs, so that nothing serves the new version. Keep what was installed (and Y's database, if it has one) for a later attempt.",
            target.y()
        ),
        kind: RollbackKind::StopNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
        irreversible: false,
    }
}

pub(super) fn start_x(target: Target) -> RollbackAction {
    RollbackAction {
        title: format!("Start {} again", target.x()),
        instruction: format!(
            "Start the nodes of {} again on their database. Before `kong migrations finish` X can still use it; after it, the database must be restored first.",
            target.x()
        ),
        kind: RollbackKind::StartNodes {
            cluster: ClusterSide::X,
            wave: None,
        },
        irreversible: false,
    }
}

pub(super) fn restore_database() -> RollbackAction {
    RollbackAction {
        title: "Restore X's database from the backup".to_string(),
        instruction: "After `kong migrations finish` X cannot use the database any more: restore the backup taken before the upgrade over it (kongup dumps the current state first), then start X. Anything written since the backup is lost; with writes stopped there should be nothing.".to_string(),
        kind: RollbackKind::RestoreDatabase,
        irreversible: true,
    }
}

pub(super) fn unfreeze_writes() -> RollbackAction {
    RollbackAction {
        title: "Allow configuration updates on X again".to_string(),
        instruction: "X is the live cluster again: tell whoever writes configuration (Admin API, Kong Manager, decK) that they may resume, on X.".to_string(),
        kind: RollbackKind::UnfreezeWrites,
        irreversible: false,
    }
}

/// Guide step "Evaluate factors that may impact the upgrade", the same in every guide.
pub(super) fn review_considerations(guide_ref: &str, guide: &str) -> Step {
    Draft::new(
        "review-considerations",
        guide_ref,
        "Evaluate the upgrade considerations",
        StepKind::Review,
    )
    .guide(guide)
    .note("Kong's \"Upgrade considerations\" page lists what changes behaviour between versions: kong.conf settings, plugin configuration, route matching (3.x expressions and regex paths), custom plugins and custom Nginx templates.")
    .build()
}

/// Guide step "Evaluate any changes that have happened between releases".
pub(super) fn review_breaking_changes(plan: &Plan, guide_ref: &str, guide: &str) -> Step {
    Draft::new(
        "review-breaking-changes",
        guide_ref,
        "Review the breaking changes and the changelog",
        StepKind::Review,
    )
    .guide(guide)
    .note(format!(
        "For {} -> {}, read every release after {} up to {}: the Enterprise changelog (https://docs.konghq.com/gateway/changelog/) and the open-source CHANGELOG.md (https://github.com/Kong/kong). Breaking changes in open source affect every Kong Gateway package.",
        plan.from, plan.to, plan.from, plan.to
    ))
    .build()
}

/// The first step of every run: nothing changes until these checks pass.
pub(super) fn preflight(plan: &Plan) -> Step {
    Draft::new(
        "preflight",
        "",
        format!("Preflight checks for {} -> {}", plan.from, plan.to),
        StepKind::Preflight,
    )
    .guide("Kong's upgrade overview asks you to work through the prerequisites and to determine your upgrade path before anything else.")
    .build()
}

/// One step per stage of the traffic schedule: `shift-traffic-1`, `shift-traffic-5`, …
pub(super) fn shift_traffic(plan: &Plan, guide_ref: &str, guide: &str) -> Vec<Step> {
    plan.traffic
        .schedule
        .iter()
        .map(|&percent| {
            Draft::new(
                &format!("shift-traffic-{percent}"),
                guide_ref,
                format!("Send {percent}% of traffic to Y"),
                StepKind::ShiftTraffic {
                    y_percent: percent,
                    bake: plan.traffic.bake,
                },
            )
            .guide(guide)
            .changes()
            .rollback(traffic_to_x())
            .build()
        })
        .collect()
}

/// Kong's "monitor all proxy metrics". Control planes proxy nothing, so in their phase the
/// gates would never have figures (every verdict inconclusive): there the step is the
/// operator's watch of the control planes and the data planes' sync, and the proxies are
/// judged in the data-plane phase.
pub(super) fn monitor(plan: &Plan, target: Target, guide_ref: &str, guide: &str) -> Step {
    if target == Target::ControlPlanes {
        return Draft::new(
            "monitor",
            guide_ref,
            "Watch control planes Y and the data planes' sync",
            StepKind::Manual,
        )
        .guide(guide)
        .note("Control planes proxy no traffic, so there are no proxy metrics for the gates to judge in this phase. Watch the topology pane instead: control planes Y ready, every data plane `normal` in its sync status, the Admin API answering. Y's proxy metrics are judged in the data-plane phase, when Y's data planes take traffic.")
        .build();
    }
    Draft::new(
        "monitor",
        guide_ref,
        "Monitor the proxy metrics",
        StepKind::Monitor {
            duration: plan.traffic.bake,
        },
    )
    .guide(guide)
    .build()
}

/// "If any issues arise, roll back…": the operator's go/no-go before the end.
pub(super) fn go_no_go(guide_ref: &str, guide: &str) -> Step {
    Draft::new(
        "go-no-go",
        guide_ref,
        "Roll back if there are issues, else go on",
        StepKind::Manual,
    )
    .guide(guide)
    .note("Press R at any time to roll back: all traffic goes to X first, then the rest of the rollback is shown step by step. Confirm this step only when there are no more issues.")
    .build()
}

/// The sentence every guide ends with, as the step that lifts the freeze.
pub(super) fn resume_writes() -> Step {
    Draft::new(
        "resume-writes",
        "",
        "Resume configuration updates",
        StepKind::Manual,
    )
    .guide("Write updates to Kong Gateway can now be performed, though we suggest you keep monitoring metrics for a while.")
    .note("Tell whoever writes configuration (Admin API, Kong Manager, decK pipelines) that they may resume, now on Y.")
    .changes()
    .build()
}

/// kongup's part of a step, appended to its instruction once the plan's customisation is
/// applied (so it can say whether commands will run).
pub(super) fn kongup_note(
    step: &Step,
    plan: &Plan,
    phase: PhaseName,
    strategy: Strategy,
) -> String {
    let commands = !step.commands.is_empty();
    let run_commands = "runs the commands the plan gives this step";
    // Steps whose work is done by the plan's commands, or else by the operator.
    let by_hand_or_commands = if commands {
        format!("kongup {run_commands} once you confirm")
    } else {
        "kongup runs nothing here: do it yourself (or give this step commands in the plan), then confirm".to_string()
    };
    let then_commands = if commands {
        format!(" It then {run_commands}.")
    } else {
        String::new()
    };
    match &step.kind {
        StepKind::Manual => format!("{by_hand_or_commands}."),
        StepKind::Review => "kongup runs nothing here: read, then confirm.".to_string(),
        StepKind::Preflight => format!(
            "kongup checks that the upgrade path {} -> {} is supported, that X's nodes answer and run {} in the role the plan gives them, notes which of Y's nodes already answer,{} and refuses any plan command that runs `kong migrations reset` or `bootstrap -f`.",
            plan.from,
            plan.to,
            plan.from,
            if plan.database == DatabaseKind::Postgres && strategy.is_database_backed() {
                " checks that no migrations are left pending in X's database by an earlier upgrade,"
            } else {
                ""
            }
        ),
        StepKind::FreezeWrites => "Tell everyone who writes configuration (Admin API, Kong Manager, decK, the database) to stop, then confirm: kongup records a fingerprint of the configuration (entity counts, ids, newest changes, row contents) from X's database, else X's Admin API, and compares it before every traffic step and before `kong migrations up` and `finish`: a change stops the step.".to_string(),
        StepKind::Backup(BackupKind::Database) => "kongup dumps X's database with `pg_dump -Fc` into the run directory, records its SHA-256 and checks it with `pg_restore --list`; it does not go on without a verified backup.".to_string(),
        StepKind::Backup(BackupKind::Declarative) => {
            let mut note = "kongup dumps the configuration with `deck gateway dump` when decK is installed, else exports the core entities through X's Admin API".to_string();
            if let Some(file) = &plan.backup.declarative_config {
                note.push_str(&format!(", and copies {}", file.display()));
            }
            note.push_str(", into the run directory.");
            note
        }
        StepKind::Backup(BackupKind::Keyring) => format!(
            "kongup fetches the keyring files ({}) through the node's executor into the run directory.",
            plan.backup
                .keyring
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        StepKind::Backup(BackupKind::StaticFiles) => match &plan.backup.kong_conf {
            Some(conf) => format!(
                "kongup fetches {} from each of X's nodes through its executor into the run directory.",
                conf.display()
            ),
            None => "kongup fetches the static files the plan names through the node's executor into the run directory.".to_string(),
        },
        StepKind::RestoreDatabase => match &plan.clusters.y.database {
            Some(db) => format!(
                "kongup creates Y's database {} on {}:{} and restores X's backup into it with `pg_restore`.",
                db.name, db.host, db.port
            ),
            None => "kongup creates Y's database and restores X's backup into it with `pg_restore`.".to_string(),
        },
        StepKind::DeployNodes { cluster } if strategy.is_database_backed() => format!(
            "{by_hand_or_commands}. {} starts later, at its own step, where kongup waits for it.",
            cluster.as_str().to_uppercase()
        ),
        StepKind::DeployNodes { cluster } | StepKind::StartNodes { cluster, wave: None } => format!(
            "{by_hand_or_commands}; kongup then waits until {} are up: Kong {} on the Admin API and 200 on /status/ready, for each URL the plan gives.",
            nodes_of(*cluster, phase),
            match cluster {
                ClusterSide::Y => plan.to,
                ClusterSide::X => plan.from,
            }
        ),
        StepKind::StartNodes {
            cluster,
            wave: Some(wave),
        } => format!(
            "{by_hand_or_commands}, on the nodes of {}'s wave {wave} only; kongup then waits until each answers 200 on /status/ready{}.",
            cluster.as_str().to_uppercase(),
            if phase == PhaseName::DataPlane {
                format!(" and the control planes list it at Kong {} with sync status `normal`", plan.to)
            } else {
                String::new()
            }
        ),
        StepKind::StopNodes {
            cluster,
            wave: Some(wave),
        } => format!(
            "{}{by_hand_or_commands}, on the wave's nodes only; kongup then waits until {}'s nodes of wave {wave} stop answering, report draining, or another version answers at their address. The rest of {} keeps serving.",
            match plan.rolling.as_ref().and_then(|r| r.drain) {
                Some(limit) if *cluster == ClusterSide::X && commands && plan.from < KONG_DRAIN_SINCE => format!(
                    "kongup first drains each of the wave's nodes in the balancer (Kong {} has no `kong drain`: its server set to drain, then up to {} until the balancer has no session open to it and its /status shows no request in flight; a node not drained by then fails and is not stopped). ",
                    plan.from,
                    humantime::format_duration(limit)
                ),
                Some(limit) if *cluster == ClusterSide::X && commands => format!(
                    "kongup first drains each of the wave's nodes (`kong drain`, then up to {} until /status/ready answers 503 draining and no request is in flight; a node not drained by then fails and is not stopped). ",
                    humantime::format_duration(limit)
                ),
                _ => String::new(),
            },
            cluster.as_str().to_uppercase(),
            cluster.as_str().to_uppercase()
        ),
        StepKind::StopNodes { cluster, wave: None } => format!(
            "{by_hand_or_commands}; kongup then waits until {} stop answering, report draining, or another version answers at their address.",
            nodes_of(*cluster, phase)
        ),
        StepKind::Decommission { cluster } => format!(
            "{by_hand_or_commands}; kongup then waits until {} stop answering (or another version answers at their address).",
            nodes_of(*cluster, phase)
        ),
        StepKind::Migrations(command) => {
            let command_line = crate::kong::migrations::build_command(&plan.migrations, *command).display();
            let verify = match command {
                MigrationsCommand::Up => "the new migrations must be recorded, those with a teardown as pending",
                MigrationsCommand::Finish => "no migration may be left pending",
            };
            format!(
                "kongup checks the configuration is unchanged since the freeze and that no other `kong migrations` run holds the lock or still runs past it, runs `{command_line}` on the executor of Y's first node (first control plane in hybrid mode; locally when it names none), with the database settings in its environment, streams its output, then reads `schema_meta`: {verify}. It then takes the configuration fingerprint again, since migrations rewrite rows.{then_commands}"
            )
        }
        StepKind::SmokeTests if plan.smoke_tests.is_empty() => "The plan has no smoke tests: test Y by hand and confirm, or add smoke tests to the plan (e.g. key-auth rejects a request without a key and accepts one with it).".to_string() + &then_commands,
        StepKind::SmokeTests => format!(
            "kongup sends the plan's {} smoke test(s) ({}) through every Y proxy and checks status, headers and body.{then_commands}",
            plan.smoke_tests.len(),
            plan.smoke_tests.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
        StepKind::CompatibilityCheck => format!(
            "kongup reads /clustering/data-planes on Y's control planes: every data plane connected to them must report sync_status normal, and the control planes' minor ({}.{}) must be at least each data plane's.{then_commands}",
            plan.to.major, plan.to.minor
        ),
        StepKind::ShiftTraffic { y_percent, bake } => {
            let split = format!("X {}% / Y {}%", 100 - u16::from(*y_percent), y_percent);
            let bake = humantime::format_duration(*bake);
            let how = match &plan.traffic.driver {
                TrafficDriverSpec::Manual => format!("Set the split to {split} on your load balancer and confirm; kongup checks the configuration is unchanged since the freeze, and"),
                driver => format!("kongup checks the configuration is unchanged since the freeze, sets the split to {split} through the {} driver, checks it took effect, and", driver.kind()),
            };
            format!("{how} then bakes for {bake} while the gates compare Y with X. Press R at any time to send all traffic back to X.{then_commands}")
        }
        StepKind::Monitor { duration } => format!(
            "kongup watches both clusters' metrics for {} with the gates on.{then_commands}",
            humantime::format_duration(*duration)
        ),
    }
}

/// "Y's control planes", "X's nodes": what a node step of this phase acts on.
fn nodes_of(cluster: ClusterSide, phase: PhaseName) -> String {
    let what = match phase {
        PhaseName::ControlPlane => "control planes",
        PhaseName::DataPlane => "data planes",
        PhaseName::Cluster | PhaseName::Rollback => "nodes",
    };
    format!("{}'s {what}", cluster.as_str().to_uppercase())
}

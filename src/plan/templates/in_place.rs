//! Kong's in-place upgrade (kong-upgrade-docs/in-place), for a traditional cluster or the
//! control planes of a hybrid deployment. X stops, Y migrates X's database: no traffic
//! shifting, downtime on a traditional cluster.

use super::common::{
    Draft, Target, go_no_go, monitor, preflight, restore_database, resume_writes,
    review_breaking_changes, review_considerations, start_x, stop_y, unfreeze_writes,
};
use super::control_planes;
use crate::plan::model::Plan;
use crate::plan::steps::{BackupKind, ClusterSide, MigrationsCommand, Step, StepKind};

/// The guide's caution about plugins added to the installation.
pub(super) const FORCE_CAUTION: &str = "Caution: When adding new plugins to the existing installation (either manually or via the extension of bundled plugins), the kong migrations finish or kong migrations up must be run with the -f flag to forcefully upgrade the plugin schemas.";

pub(super) const FINISH_IRREVERSIBLE: &str = "After `kong migrations finish` cluster X can no longer use this database: going back means restoring the backup over it, and anything written since the backup is lost.";

pub(super) fn steps(plan: &Plan, target: Target) -> Vec<Step> {
    let stop_note = match target {
        Target::ControlPlanes => {
            "In hybrid mode only the Admin API goes down: the data planes keep proxying with their last configuration."
        }
        _ => "The proxy is down from here until Y has started.",
    };
    let mut steps = vec![
        preflight(plan),
        Draft::new(
            "freeze-writes",
            "1",
            "Stop configuration updates",
            StepKind::FreezeWrites,
        )
        .guide("Stop any Kong Gateway configuration updates (e.g. Admin API calls). This is critical to guarantee data consistency between cluster X and cluster Y.")
        .changes()
        .rollback(unfreeze_writes())
        .build(),
        Draft::new(
            "backup",
            "2",
            "Back up X's database",
            StepKind::Backup(BackupKind::Database),
        )
        .guide("Back up data from the current cluster X by following the Backup guide.")
        .note("The kong migrations commands are not reversible: this backup is the way back.")
        .build(),
        review_considerations(
            "3",
            "Evaluate factors that may impact the upgrade, as described in Upgrade considerations. You may have to consider customization of both kong.conf and Kong Gateway configuration data.",
        ),
        review_breaking_changes(
            plan,
            "4",
            "Evaluate any changes that have happened between releases:
- Breaking changes
- Full changelog",
        ),
        Draft::new(
            "stop-x",
            "5",
            format!("Stop {}", target.x()),
            StepKind::StopNodes {
                cluster: ClusterSide::X,
            },
        )
        .guide("Stop the Kong Gateway nodes of the old cluster X but keep the database running. This will create a period of downtime until the upgrade completes.")
        .note(stop_note)
        .changes()
        .rollback(start_x(target))
        .build(),
        Draft::new(
            "deploy-y",
            "6",
            format!("Install {} ({}) on X's database", target.y(), plan.to),
            StepKind::DeployNodes {
                cluster: ClusterSide::Y,
            },
        )
        .guide("Install a new cluster running version Y as instructed in the Kong Gateway Installation Options and point it at the existing database for cluster X.

Provision the new cluster Y with the same-sized resource capacity as that of the current cluster X.")
        .changes()
        .rollback(stop_y(target))
        .build(),
        Draft::new(
            "migrations-up",
            "7",
            "Migrate the database: kong migrations up",
            StepKind::Migrations(MigrationsCommand::Up),
        )
        .guide(&format!("Migrate the database to the new version by running kong migrations up.\n\n{FORCE_CAUTION}"))
        .changes()
        .build(),
        Draft::new(
            "migrations-finish",
            "8",
            "Finish the migrations: kong migrations finish",
            StepKind::Migrations(MigrationsCommand::Finish),
        )
        .guide(&format!("When complete, run kong migrations finish.\n\n{FORCE_CAUTION}"))
        .irreversible(FINISH_IRREVERSIBLE)
        .rollback(restore_database())
        .build(),
        Draft::new(
            "start-y",
            "9",
            format!("Start {}", target.y()),
            StepKind::StartNodes {
                cluster: ClusterSide::Y,
            },
        )
        .guide("Start the new cluster Y.")
        .note(match target {
            Target::ControlPlanes => "X's data planes reconnect to Y's control planes if Y took X's address (same major version only).",
            _ => "Proxy traffic must now reach Y: same addresses as X, or point the load balancer at Y.",
        })
        .changes()
        .rollback(stop_y(target))
        .build(),
    ];
    // The in-place guide has no staging tests; kongup adds them before the monitoring
    // because routes that behave differently after an upgrade are the common surprise.
    let staging_guide = "Not a step of Kong's in-place guide: kongup adds it. Kong's overview asks for a smoke test after the upgrade, and routes that load but behave differently after an upgrade are a common surprise.";
    steps.push(if target == Target::ControlPlanes {
        control_planes::staging_tests("", staging_guide, plan)
    } else {
        Draft::new(
            "staging-tests",
            "",
            "Smoke-test cluster Y",
            StepKind::SmokeTests,
        )
        .guide(staging_guide)
        .build()
    });
    steps.push(monitor(plan, "10", "Actively monitor all proxy metrics."));
    steps.push(go_no_go(
        "11",
        "If you run into any issues, roll back the upgrade. Prioritize the database-level restoration method over the application-level method.",
    ));
    steps.push(
        Draft::new(
            "decommission-x",
            "12",
            format!("Decommission {}", target.x()),
            StepKind::Decommission {
                cluster: ClusterSide::X,
            },
        )
        .guide("When there are no more issues, decommission the old cluster X to complete the upgrade.")
        .note(if target == Target::ControlPlanes {
            control_planes::DECOMMISSION_NOTE
        } else {
            ""
        })
        .irreversible("X's nodes go away: after this there is no old cluster to start again, and going back means reinstalling X and restoring the database.")
        .build(),
    );
    if !target.is_hybrid() {
        steps.push(resume_writes());
    }
    steps
}

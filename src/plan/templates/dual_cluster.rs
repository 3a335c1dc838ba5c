//! Kong's dual-cluster upgrade (https://docs.konghq.com/gateway/latest/upgrade/dual-cluster/), for a traditional cluster
//! or the control planes of a hybrid deployment.

use super::common::{
    Draft, Target, go_no_go, monitor, preflight, resume_writes, review_breaking_changes,
    review_considerations, shift_traffic, stop_y, take_y_out_of_service, unfreeze_writes,
};
use super::control_planes;
use super::in_place::FORCE_CAUTION;
use crate::plan::model::Plan;
use crate::plan::steps::{BackupKind, ClusterSide, MigrationsCommand, Step, StepKind};

/// Why kongup adds the migrations the guide leaves implicit, said in both steps.
const MIGRATIONS_IMPLICIT: &str = "Not a numbered step of Kong's dual-cluster guide, so it has no guide number: kongup adds it between 5.4 (configure Y) and 5.5 (start Y). The guide leaves it implicit: the backup restored in 5.3 holds X's schema, and Kong refuses to start on a database with new migrations available (\"run 'kong migrations up'\"), so Y's database is migrated the way Kong's in-place guide migrates X's (its steps 7 and 8).";

/// Kong's caveat about the two databases, shown with the plan's warnings.
pub(super) const LIMITATION: &str = "Dual-cluster: runtime data kept in the database is not synced between X's and Y's databases during the upgrade, so database-backed counters (Rate Limiting Advanced with a database strategy, Vitals) are inaccurate until X is gone; how much depends on the plugin's window_size and the length of the upgrade.";

pub(super) fn steps(plan: &Plan, target: Target) -> Vec<Step> {
    let mut steps = vec![
        preflight(plan),
        Draft::new(
            "freeze-writes",
            "1",
            "Stop configuration updates",
            StepKind::FreezeWrites,
        )
        .guide(
            "Stop any Kong Gateway configuration updates (e.g. Admin API calls). This is critical to guarantee data consistency between cluster X and cluster Y.

To keep data consistency between the two clusters, you must not execute any write operations through the Admin API, Kong Manager, decK, or direct database updates.",
        )
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
            "deploy-y",
            "5.1",
            format!("Install {} ({})", target.y(), plan.to),
            StepKind::DeployNodes {
                cluster: ClusterSide::Y,
            },
        )
        .guide(
            "Deploy a new Kong Gateway cluster of version Y: install a new Kong Gateway cluster running version Y as instructed in the Kong Gateway Installation Options.

Provision the new cluster Y with the same-sized resource capacity as that of the current cluster X.",
        )
        .changes()
        .rollback(take_y_out_of_service(target))
        .build(),
        Draft::new(
            "provision-db-y",
            "5.2",
            "Install Y's database",
            StepKind::Manual,
        )
        .guide("Install a new database of the same version.")
        .note(match &plan.clusters.y.database {
            Some(db) => format!(
                "The plan puts Y's database at {}:{} (database {}, user {}).",
                db.host, db.port, db.name, db.user
            ),
            None => String::new(),
        })
        .changes()
        .build(),
        Draft::new(
            "restore-db",
            "5.3",
            "Restore X's backup into Y's database",
            StepKind::RestoreDatabase,
        )
        .guide("Restore the backup data to the new database.")
        .changes()
        .build(),
        Draft::new(
            "configure-y",
            "5.4",
            format!("Point {} at its database", target.y()),
            StepKind::Manual,
        )
        .guide("Configure the new cluster Y to point to the new database.")
        .note("In kong.conf: pg_host, pg_port, pg_database, pg_user and pg_password (or the KONG_PG_* environment variables).")
        .changes()
        .build(),
        Draft::new(
            "migrations-up",
            "",
            "Migrate Y's database: kong migrations up",
            StepKind::Migrations(MigrationsCommand::Up),
        )
        .guide(&format!("{MIGRATIONS_IMPLICIT}\n\nMigrate the database to the new version by running kong migrations up.\n\n{FORCE_CAUTION}"))
        .note("It runs against Y's database only (the one configure-y points Y at); X's database is not touched.")
        .changes()
        .build(),
        Draft::new(
            "migrations-finish",
            "",
            "Finish the migrations on Y's database: kong migrations finish",
            StepKind::Migrations(MigrationsCommand::Finish),
        )
        .guide(&format!("{MIGRATIONS_IMPLICIT}\n\nWhen complete, run kong migrations finish.\n\n{FORCE_CAUTION}"))
        .note("Unlike in-place and blue-green, this is not the point of no return: X keeps serving from its own database, which no migration touches. If Y's database goes wrong, restore X's backup into it again (restore-db) and migrate again; a rollback has nothing to undo here, since X never used this database.")
        .changes()
        .build(),
        Draft::new(
            "start-y",
            "5.5",
            format!("Start {}", target.y()),
            StepKind::StartNodes {
                cluster: ClusterSide::Y,
                wave: None,
            },
        )
        .guide("Start cluster Y.")
        .changes()
        .rollback(stop_y(target))
        .build(),
    ];
    let staging_guide = "Perform staging tests against version Y to make sure it works for all use cases.

For example, does the Key Authentication plugin authenticate requests properly?

If the outcome is not as expected, look over the upgrade considerations and the breaking changes again to see if you missed anything.";
    let divert_guide = "Divert traffic from old cluster X to new cluster Y.

This is usually done gradually and incrementally, depending on the risk profile of the deployment. Any load balancers that support traffic splitting will work here, such as DNS, Nginx, Kubernetes rollout mechanisms, and so on.";
    if target == Target::ControlPlanes {
        steps.push(control_planes::staging_tests("5.6", staging_guide, plan));
        steps.push(control_planes::switch_control_plane(
            "6",
            divert_guide,
            plan,
        ));
    } else {
        steps.push(
            Draft::new(
                "staging-tests",
                "5.6",
                "Staging tests against Y",
                StepKind::SmokeTests,
            )
            .guide(staging_guide)
            .build(),
        );
        steps.extend(shift_traffic(plan, "6", divert_guide));
    }
    steps.push(monitor(
        plan,
        target,
        "7",
        "Actively monitor all proxy metrics.",
    ));
    steps.push(go_no_go(
        "8",
        "If any issues arise, roll back by setting all traffic to cluster X, investigate the issues, and repeat the steps above.",
    ));
    steps.push(
        Draft::new(
            "decommission-x",
            "9",
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
        .irreversible(if target == Target::ControlPlanes {
            control_planes::DECOMMISSION_IRREVERSIBLE
        } else {
            "X's nodes and database go away: after this there is no cluster to send traffic back to, and going back means rebuilding X from the backup."
        })
        .build(),
    );
    if !target.is_hybrid() {
        steps.push(resume_writes());
    }
    steps
}

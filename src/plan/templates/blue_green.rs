//! Kong's blue-green upgrade (https://docs.konghq.com/gateway/latest/upgrade/blue-green/), derived from in-place: Y
//! shares X's database after `kong migrations up`, traffic moves over, and
//! `kong migrations finish` runs only at the end.

use super::common::{
    Draft, Target, go_no_go, monitor, preflight, restore_database, resume_writes,
    review_breaking_changes, review_considerations, shift_traffic, stop_y, take_y_out_of_service,
    unfreeze_writes,
};
use super::control_planes;
use super::in_place::{FINISH_IRREVERSIBLE, FORCE_CAUTION};
use crate::plan::model::Plan;
use crate::plan::steps::{BackupKind, ClusterSide, MigrationsCommand, Step, StepKind};

const BACKUP_GUIDE: &str =
    "Back up data of current version X as instructed in section Backup and Restore:";

pub(super) fn steps(plan: &Plan, target: Target) -> Vec<Step> {
    let keyring_kind = if plan.backup.keyring.is_empty() {
        StepKind::Manual
    } else {
        StepKind::Backup(BackupKind::Keyring)
    };
    let static_kind = if plan.backup.kong_conf.is_some() {
        StepKind::Backup(BackupKind::StaticFiles)
    } else {
        StepKind::Manual
    };
    let mut steps = vec![
        preflight(plan),
        Draft::new(
            "freeze-writes",
            "1",
            "Stop configuration updates",
            StepKind::FreezeWrites,
        )
        .guide("Stop any Kong configuration updates (e.g. Admin API calls), which is critical to guarantee the data consistency between cluster X and cluster Y.")
        .changes()
        .rollback(unfreeze_writes())
        .build(),
        Draft::new(
            "backup-db",
            "2.1",
            "Back up X's database",
            StepKind::Backup(BackupKind::Database),
        )
        .guide(&format!("{BACKUP_GUIDE} back up the existing database if Kong Gateway is deployed in Traditional or Hybrid mode."))
        .build(),
        Draft::new(
            "backup-declarative",
            "2.2",
            "Dump the declarative configuration",
            StepKind::Backup(BackupKind::Declarative),
        )
        .guide(&format!("{BACKUP_GUIDE} dump the declarative Kong configuration data using deck dump."))
        .build(),
        Draft::new(
            "backup-keyring",
            "2.3",
            "Back up keyring materials",
            keyring_kind,
        )
        .guide(&format!("{BACKUP_GUIDE} back up keyring materials if the Keyring and Data Encryption feature is enabled."))
        .note(if plan.backup.keyring.is_empty() {
            "The plan names no keyring files (backup.keyring): if Keyring and Data Encryption is enabled, back the material up yourself or add the files to the plan; otherwise confirm that it is not enabled."
        } else {
            ""
        })
        .build(),
        Draft::new(
            "backup-static",
            "2.4",
            "Back up kong.conf and other static data",
            static_kind,
        )
        .guide(&format!("{BACKUP_GUIDE} any other applicable static data (e.g. kong.conf)."))
        .note(if plan.backup.kong_conf.is_none() {
            "The plan names no kong.conf (backup.kong_conf): copy X's kong.conf and other static files somewhere safe yourself, then confirm."
        } else {
            ""
        })
        .build(),
        review_considerations(
            "3",
            "Evaluate factors that may impact the upgrade, as described in Upgrade Considerations. You may have to consider customization of both kong.conf and Kong configuration data.",
        ),
        // The blue-green guide folds the changelog into step 3; the overview's preparation
        // lists it on its own, and every other guide has it as step 4.
        review_breaking_changes(
            plan,
            "",
            "From Kong's upgrade overview (preparation): review the breaking changes for the version you're upgrading to.",
        ),
        Draft::new(
            "deploy-y",
            "4.1",
            format!("Install {} ({}) on X's database", target.y(), plan.to),
            StepKind::DeployNodes {
                cluster: ClusterSide::Y,
            },
        )
        .guide("Deploy a new Kong cluster of version Y: install a new Kong cluster of version Y as instructed at Kong Gateway Installation Options and configure it pointing to the existing database.")
        .changes()
        .rollback(take_y_out_of_service(target))
        .build(),
        Draft::new(
            "migrations-up",
            "4.2",
            "Migrate the database: kong migrations up (no finish)",
            StepKind::Migrations(MigrationsCommand::Up),
        )
        .guide(&format!("Migrate database, with \"kong migrations up\", without running \"kong migrations finish\". Kong would add a warning log entry that pending migrations exist.\n\n{FORCE_CAUTION}"))
        .note("After `up` alone the database still serves both X and Y: that is what lets traffic move gradually.")
        .changes()
        .build(),
        Draft::new(
            "start-y",
            "4.3",
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
    let staging_guide = "Perform appropriate staging tests against version Y to make sure it works for all use cases. For instance, does the plugin key-auth-enc authenticate requests properly? If the outcome is not as expected, please validate step 3.";
    let divert_guide = "Divert traffic from cluster X to Y. This is usually done gradually and incrementally, depending on the risk profile of the deployment. Any load balancers that support traffic splitting suffice, like DNS, Nginx, Kubernetes rollout mechanisms, etc.";
    if target == Target::ControlPlanes {
        steps.push(control_planes::staging_tests("4.4", staging_guide, plan));
        steps.push(control_planes::switch_control_plane(
            "5",
            divert_guide,
            plan,
        ));
    } else {
        steps.push(
            Draft::new(
                "staging-tests",
                "4.4",
                "Staging tests against Y",
                StepKind::SmokeTests,
            )
            .guide(staging_guide)
            .build(),
        );
        steps.extend(shift_traffic(plan, "5", divert_guide));
    }
    steps.push(monitor(
        plan,
        target,
        "6",
        "Actively monitor all proxy metrics.",
    ));
    steps.push(go_no_go(
        "7",
        "If any issues are found, rollback by setting all traffic to cluster X, investigate issues and repeat steps above.",
    ));
    steps.push(
        Draft::new(
            "migrations-finish",
            "8",
            "Finish the migrations: kong migrations finish",
            StepKind::Migrations(MigrationsCommand::Finish),
        )
        .guide("Finalize the database migrations, with \"kong migrations finish\". It is only executed at the end of the upgrade procedure, when it has been verified that the new cluster Y is operating as expected.")
        .note(match target {
            Target::ControlPlanes => "X's control planes cannot use the database after this: data planes still attached to them keep proxying with their last configuration.",
            _ => "All traffic must be on Y by now: X cannot serve from this database after this.",
        })
        .irreversible(FINISH_IRREVERSIBLE)
        .rollback(restore_database())
        .build(),
    );
    steps.push(
        Draft::new(
            "decommission-x",
            "9",
            format!("Decommission {}", target.x()),
            StepKind::Decommission {
                cluster: ClusterSide::X,
            },
        )
        .guide("Decommission cluster X to complete the upgrade.")
        .note(if target == Target::ControlPlanes {
            control_planes::DECOMMISSION_NOTE
        } else {
            ""
        })
        .irreversible(if target == Target::ControlPlanes {
            control_planes::DECOMMISSION_IRREVERSIBLE
        } else {
            "X's nodes go away: after this there is no old cluster to send traffic back to."
        })
        .build(),
    );
    if !target.is_hybrid() {
        steps.push(resume_writes());
    }
    steps
}

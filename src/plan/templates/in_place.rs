//! Kong's in-place upgrade (https://docs.konghq.com/gateway/latest/upgrade/in-place/), for a traditional cluster or the
//! control planes of a hybrid deployment. X stops, Y migrates X's database: no gradual
//! traffic shift, downtime on a traditional cluster. When Y runs on machines of its own
//! (the plan names a traffic driver), one step sends all traffic to Y once it has started.

use super::common::{
    Draft, Target, go_no_go, monitor, preflight, restore_database, resume_writes,
    review_breaking_changes, review_considerations, start_x, stop_y, take_y_out_of_service,
    unfreeze_writes,
};
use super::control_planes;
use crate::plan::model::Plan;
use crate::plan::steps::{
    BackupKind, ClusterSide, MigrationsCommand, RollbackAction, RollbackKind, Step, StepKind,
};

/// The guide's caution about plugins added to the installation.
pub(super) const FORCE_CAUTION: &str = "Caution: When adding new plugins to the existing installation (either manually or via the extension of bundled plugins), the kong migrations finish or kong migrations up must be run with the -f flag to forcefully upgrade the plugin schemas.";

pub(super) const FINISH_IRREVERSIBLE: &str = "After `kong migrations finish` cluster X can no longer use this database: going back means restoring the backup over it, and anything written since the backup is lost.";

/// Y on machines of its own: the traffic moves to it once it has started. Only for a
/// traditional cluster whose plan names a traffic driver; without one Y takes X's
/// addresses, and hybrid control planes carry no proxy traffic.
fn moves_traffic(plan: &Plan, target: Target) -> bool {
    target == Target::Cluster && plan.traffic.driver_given
}

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
                wave: None,
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
        .rollback(take_y_out_of_service(target))
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
                wave: None,
            },
        )
        .guide("Start the new cluster Y.")
        .note(match target {
            Target::ControlPlanes => "X's data planes reconnect to Y's control planes if Y took X's address (same major version only).",
            _ if moves_traffic(plan, target) => "Y runs on machines of its own: once the smoke tests pass, switch-traffic sends the proxy traffic to it.",
            _ => "The plan names no traffic driver, so nothing moves traffic: Y must answer on X's addresses (the same machines, or names moved to Y). If Y runs elsewhere, add `traffic.driver` to the plan (`manual` if you repoint the load balancer yourself) and kongup adds a step that sends the traffic to Y.",
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
    // Y is smoke-tested through its own proxies before any client reaches it: a Y that
    // answers wrongly is worse than the downtime the test adds.
    if moves_traffic(plan, target) {
        steps.push(
            Draft::new(
                "switch-traffic",
                "",
                "Send all traffic to Y",
                StepKind::ShiftTraffic {
                    y_percent: 100,
                    bake: plan.traffic.bake,
                },
            )
            .guide("Not a numbered step of Kong's in-place guide: kongup adds it. The guide allows Y on other machines (\"this strategy does not prevent you from deploying the new cluster Y on a different machine\"); then the load balancer must send the traffic to Y once it has started. kongup does it after the smoke tests, so that no client reaches a Y that answers wrongly. There is no gradual shift: X is stopped, so the proxy is down until this step.")
            .note("Switching back to X takes more than the load balancer: X is stopped and, after `kong migrations finish`, cannot serve from the database. The database must be restored from the backup and X started again before the traffic goes back to X.")
            .changes()
            .rollback(RollbackAction {
                title: "Send all traffic back to X".to_string(),
                instruction: "X is stopped and, after `kong migrations finish`, cannot serve from the database: send the traffic back only once the database is restored from the backup and X runs again. Then set the split to 100% X, 0% Y and check that it took effect.".to_string(),
                kind: RollbackKind::TrafficToX,
                irreversible: false,
            })
            .build(),
        );
    }
    steps.push(monitor(
        plan,
        target,
        "10",
        "Actively monitor all proxy metrics.",
    ));
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
        .irreversible(if target == Target::ControlPlanes {
            control_planes::DECOMMISSION_IRREVERSIBLE
        } else {
            "X's nodes go away: after this there is no old cluster to start again, and going back means reinstalling X and restoring the database."
        })
        .build(),
    );
    if !target.is_hybrid() {
        steps.push(resume_writes());
    }
    steps
}

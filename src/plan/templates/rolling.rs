//! Kong's rolling upgrade (https://docs.konghq.com/gateway/latest/upgrade/rolling-upgrade/), for DB-less nodes and for the data
//! planes of a hybrid deployment.
//!
//! In a hybrid deployment the data-plane phase follows the control-plane phase, which has
//! already done the guide's steps 1 to 4 for the whole deployment: configuration updates
//! are stopped (and stay stopped), the configuration the data planes receive is backed up
//! with the control planes' database, and the release notes are read. Repeating them would
//! be a second freeze and a second backup of the same data, so the phase starts with the
//! compatibility check and a check that updates are still stopped instead.

use super::common::{
    Draft, Target, go_no_go, monitor, preflight, resume_writes, review_breaking_changes,
    review_considerations, shift_traffic, stop_y, take_y_out_of_service, traffic_to_x,
    unfreeze_writes,
};
use crate::plan::model::Plan;
use crate::plan::steps::{BackupKind, ClusterSide, RollbackAction, RollbackKind, Step, StepKind};
use crate::plan::waves::{Wave, waves};

const FREEZE_GUIDE: &str = "Stop any Kong Gateway configuration updates (for example, Admin API calls to :8001/config). This is critical to guarantee data consistency between cluster X and cluster Y.";

pub(super) fn steps(plan: &Plan, target: Target) -> Vec<Step> {
    let mut steps = if target == Target::DataPlanes {
        data_plane_opening()
    } else {
        vec![
            preflight(plan),
            Draft::new(
                "freeze-writes",
                "1",
                "Stop configuration updates",
                StepKind::FreezeWrites,
            )
            .guide(FREEZE_GUIDE)
            .changes()
            .rollback(unfreeze_writes())
            .build(),
            Draft::new(
                "backup",
                "2",
                "Back up the declarative configuration",
                StepKind::Backup(BackupKind::Declarative),
            )
            .guide("Back up data from the current cluster X by following the declarative configuration backup instructions.")
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
        ]
    };
    let waves = waves(plan);
    if !waves.is_empty() {
        steps.extend(wave_steps(plan, target, &waves));
        steps.extend(ending(plan, target));
        return steps;
    }
    steps.push(
        Draft::new(
            "deploy-y",
            "5.1",
            format!("Install {} ({})", target.y(), plan.to),
            StepKind::DeployNodes {
                cluster: ClusterSide::Y,
            },
        )
        .guide(
            "Deploy a new Kong Gateway cluster of version Y: install a new cluster running version Y as instructed in the Kong Gateway Installation Options.

Provision the new cluster Y with the same-sized resource capacity as that of the current cluster X.",
        )
        .note(match target {
            Target::DataPlanes => "From Kong's hybrid overview: set the new data planes to point to the new control planes, to avoid version conflicts.",
            _ => "Start the new nodes with the declarative configuration backed up in step 2 (validate it for version Y first, e.g. `deck file validate`).",
        })
        .changes()
        .rollback(take_y_out_of_service(target))
        .build(),
    );
    steps.push(staging_tests());
    steps.push(
        Draft::new(
            "scale-y",
            "5.3",
            format!("Launch the rest of {}", target.y()),
            StepKind::Manual,
        )
        .guide("Continuously install and launch more Y nodes.")
        .changes()
        .rollback(stop_y(target))
        .build(),
    );
    steps.extend(shift_traffic(
        plan,
        "6",
        "Divert traffic from old cluster X to new cluster Y.

This is usually done gradually and incrementally, depending on the risk profile of the deployment. Any load balancers that support traffic splitting will work here, such as DNS, Nginx, Kubernetes rollout mechanisms, and so on.",
    ));
    steps.extend(ending(plan, target));
    steps
}

/// After the traffic is all on Y: watch it, decide, decommission X, resume writes.
fn ending(plan: &Plan, target: Target) -> Vec<Step> {
    let mut steps = Vec::new();
    steps.push(monitor(
        plan,
        target,
        "",
        "Not a numbered step of Kong's rolling guide: kongup keeps watching the proxy metrics once all traffic is on Y, as the other guides ask (\"Actively monitor all proxy metrics\"), before X goes away.",
    ));
    steps.push(go_no_go(
        "7",
        "If any issues arise, roll back by setting all traffic to cluster X, investigate the issues, and repeat the steps above.",
    ));
    steps.push(
        Draft::new(
            "decommission-x",
            "8",
            format!("Decommission {}", target.x()),
            StepKind::Decommission {
                cluster: ClusterSide::X,
            },
        )
        .guide("When there are no more issues, decommission the old cluster X to complete the upgrade.")
        .note(match target {
            Target::DataPlanes => "If you delayed decommissioning X's control planes, decommission them now too.",
            _ => "",
        })
        .irreversible("X's nodes go away: after this there is no old cluster to send traffic back to.")
        .build(),
    );
    steps.push(resume_writes());
    steps
}

/// Kong's rolling guide, "continuously install and launch more Y nodes" while X's are shut
/// down, done in the plan's waves (`rolling:`): each wave starts its Y nodes (the canary
/// wave first, then the staging tests against it), gives Y the wave's cumulative share of
/// traffic and bakes it with the gates for `between_waves`, then stops the wave's X nodes.
fn wave_steps(plan: &Plan, target: Target, waves: &[Wave]) -> Vec<Step> {
    let count = waves.len();
    let bake = plan
        .rolling
        .as_ref()
        .map_or(plan.traffic.bake, |r| r.between_waves);
    let what = match target {
        Target::DataPlanes => "data planes",
        _ => "nodes",
    };
    let mut steps = Vec::new();
    for wave in waves {
        let n = wave.number;
        steps.push(
            Draft::new(
                &format!("wave-{n}-start-y"),
                "5",
                format!(
                    "Wave {n}/{count}: start {} of Y's {what} ({})",
                    wave.y_nodes.len(),
                    plan.to
                ),
                StepKind::StartNodes {
                    cluster: ClusterSide::Y,
                    wave: Some(n),
                },
            )
            .guide("Continuously install and launch more Y nodes.")
            .note(format!("This wave's Y nodes: {}.", wave.y_nodes.join(", ")))
            .changes()
            .rollback(wave_action(target, ClusterSide::Y, n))
            .build(),
        );
        if n == 1 {
            steps.push(staging_tests());
        }
        steps.push(
            Draft::new(
                &format!("wave-{n}-traffic"),
                "6",
                format!("Wave {n}/{count}: send {}% of traffic to Y", wave.y_percent),
                StepKind::ShiftTraffic {
                    y_percent: wave.y_percent,
                    bake,
                },
            )
            .guide("Divert traffic from old cluster X to new cluster Y.")
            .note(format!(
                "Y's share is the share of its fleet up after this wave, for drivers that split by cluster: {} of {}.",
                waves[..n].iter().map(|w| w.y_nodes.len()).sum::<usize>(),
                plural(waves.iter().map(|w| w.y_nodes.len()).sum(), "node")
            ))
            .changes()
            .rollback(traffic_to_x())
            .build(),
        );
        if !wave.x_nodes.is_empty() {
            steps.push(
                Draft::new(
                    &format!("wave-{n}-stop-x"),
                    "",
                    format!(
                        "Wave {n}/{count}: stop {} of X's {what}",
                        wave.x_nodes.len()
                    ),
                    StepKind::StopNodes {
                        cluster: ClusterSide::X,
                        wave: Some(n),
                    },
                )
                .guide("Kong's rolling guide: continuously add new nodes of version Y while shutting down nodes of version X.")
                .note(format!("This wave's X nodes: {}.", wave.x_nodes.join(", ")))
                .changes()
                .rollback(wave_action(target, ClusterSide::X, n))
                .build(),
            );
        }
    }
    steps
}

/// The undo of a wave's start (stop its Y nodes) or stop (start its X nodes again).
fn wave_action(target: Target, side: ClusterSide, wave: usize) -> RollbackAction {
    match side {
        ClusterSide::Y => RollbackAction {
            title: format!("Stop wave {wave} of {}", target.y()),
            instruction: format!(
                "Stop the nodes of {} that wave {wave} started, so that nothing runs the new version while X takes over again.",
                target.y()
            ),
            kind: RollbackKind::StopNodes {
                cluster: ClusterSide::Y,
                wave: Some(wave),
            },
            irreversible: false,
        },
        ClusterSide::X => RollbackAction {
            title: format!("Start wave {wave} of {} again", target.x()),
            instruction: format!(
                "Start the nodes of {} that wave {wave} stopped, before the wave's Y nodes go.",
                target.x()
            ),
            kind: RollbackKind::StartNodes {
                cluster: ClusterSide::X,
                wave: Some(wave),
            },
            irreversible: false,
        },
    }
}

/// Guide step 5.2, against the first Y nodes (in waves: the first wave's).
fn staging_tests() -> Step {
    Draft::new(
        "staging-tests",
        "5.2",
        "Staging tests against Y",
        StepKind::SmokeTests,
    )
    .guide(
        "Perform staging tests against version Y to make sure it works for all use cases.

For example, does the Key Authentication plugin authenticate requests properly?

If it is a data plane node, ensure the communication with the control node succeeds.

If the outcome is not as expected, look over the upgrade considerations and the breaking changes again to see if you missed anything.",
    )
    .build()
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The data-plane phase opens with checks instead of repeating steps 1 to 4.
fn data_plane_opening() -> Vec<Step> {
    vec![
        Draft::new(
            "compat-check",
            "",
            "Check control planes and data planes are compatible",
            StepKind::CompatibilityCheck,
        )
        .guide("From Kong's hybrid overview: the control planes' minor version must be no less than the data planes', which is why control planes are upgraded first. Before the data planes move, every data plane must be in sync with the upgraded control planes.")
        .note("Rolling steps 2 to 4 were done for the whole deployment in the control-plane phase: data planes hold no configuration of their own, only what the control planes send them, and that is in the control-plane backup; the considerations and breaking changes are the same.")
        .build(),
        Draft::new(
            "writes-frozen",
            "1",
            "Check configuration updates are still stopped",
            StepKind::Manual,
        )
        .guide(FREEZE_GUIDE)
        .note("Updates have been stopped since control-plane/freeze-writes and stay stopped until the end of this phase, so this is a check, not a second freeze: make sure nobody has resumed them. kongup's freeze guard also compares the configuration fingerprint before every traffic step.")
        .build(),
    ]
}

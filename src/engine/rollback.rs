//! Rollback, phase-aware. The one command first sends all traffic to X where traffic has
//! moved and X can still serve; then it offers the rollback counterparts of the steps
//! that ran, newest first, each confirmed like any other step.
//!
//! Rollback steps live in the `rollback` pseudo-phase: `rollback/<id>` undoes the forward
//! step `<id>` (`rollback/<phase>.<id>` when the plan has more than one phase), and
//! `rollback/traffic-to-x` sends all traffic to X when the first act could not (or must
//! not yet) do it. After the point of no return (`migrations finish` ran on a database X
//! shares) X cannot serve from that database: traffic to X comes after the restore.

use std::time::Duration;

use super::journal::{RollbackStepInfo, step_key};
use super::view::RunView;
use crate::plan::model::Strategy;
use crate::plan::steps::{
    ExpandedPlan, MigrationsCommand, PhaseName, RollbackAction, RollbackKind, Step, StepKind,
    StepRef,
};

pub const TRAFFIC_TO_X: &str = "traffic-to-x";

/// A rollback step, with what it undoes.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackStep {
    pub step: Step,
    /// The forward step; `None` for `rollback/traffic-to-x`.
    pub undoes: Option<StepRef>,
    pub kind: RollbackKind,
}

/// The rollback step that undoes a forward step.
pub fn rollback_ref(expanded: &ExpandedPlan, forward: &StepRef) -> StepRef {
    if expanded.phases.len() > 1 {
        StepRef::new(
            PhaseName::Rollback,
            format!("{}.{}", forward.phase, forward.id),
        )
    } else {
        StepRef::new(PhaseName::Rollback, forward.id.clone())
    }
}

/// The forward step a rollback step undoes.
pub fn undone_step(expanded: &ExpandedPlan, rollback: &StepRef) -> Option<StepRef> {
    if rollback.phase != PhaseName::Rollback || rollback.id == TRAFFIC_TO_X {
        return None;
    }
    if let Some((phase, id)) = rollback.id.split_once('.')
        && let Some(phase) = PhaseName::parse(phase)
    {
        let forward = StepRef::new(phase, id);
        if expanded.step(&forward).is_some() {
            return Some(forward);
        }
    }
    match expanded.phases.as_slice() {
        [only] => {
            let forward = StepRef::new(only.name, rollback.id.clone());
            expanded.step(&forward).map(|_| forward)
        }
        _ => None,
    }
}

/// Builds the step a rollback reference stands for, from the plan.
pub fn rollback_step(expanded: &ExpandedPlan, rollback: &StepRef) -> Option<RollbackStep> {
    if rollback.phase != PhaseName::Rollback {
        return None;
    }
    if rollback.id == TRAFFIC_TO_X {
        return Some(RollbackStep {
            step: traffic_to_x_step(),
            undoes: None,
            kind: RollbackKind::TrafficToX,
        });
    }
    let forward_ref = undone_step(expanded, rollback)?;
    let forward = expanded.step(&forward_ref)?;
    let action = forward.rollback.as_ref()?;
    Some(RollbackStep {
        step: step_from_action(rollback.id.clone(), forward, action),
        undoes: Some(forward_ref),
        kind: action.kind.clone(),
    })
}

/// Any step of a run: a forward step of the plan, or a rollback step built from it.
pub fn step_details(expanded: &ExpandedPlan, step: &StepRef) -> Option<Step> {
    if step.phase == PhaseName::Rollback {
        rollback_step(expanded, step).map(|r| r.step)
    } else {
        expanded.step(step).cloned()
    }
}

fn traffic_to_x_step() -> Step {
    Step {
        id: TRAFFIC_TO_X.to_string(),
        guide_ref: String::new(),
        title: "All traffic back to X".to_string(),
        instruction: "Send all traffic to the old cluster X through the traffic driver, and \
                      check that the load balancer reports 100% on X."
            .to_string(),
        kind: StepKind::ShiftTraffic {
            y_percent: 0,
            bake: Duration::ZERO,
        },
        changes: true,
        irreversible: false,
        irreversible_because: None,
        rollback: None,
        commands: Vec::new(),
        builtin: true,
        skip_reason: None,
    }
}

fn step_from_action(id: String, forward: &Step, action: &RollbackAction) -> Step {
    let kind = match &action.kind {
        RollbackKind::TrafficToX => StepKind::ShiftTraffic {
            y_percent: 0,
            bake: Duration::ZERO,
        },
        RollbackKind::StopNodes { cluster } => StepKind::StopNodes { cluster: *cluster },
        RollbackKind::StartNodes { cluster } => StepKind::StartNodes { cluster: *cluster },
        RollbackKind::RestoreDatabase => StepKind::RestoreDatabase,
        RollbackKind::UnfreezeWrites | RollbackKind::Manual => StepKind::Manual,
    };
    let irreversible_because = action.irreversible.then(|| match action.kind {
        RollbackKind::RestoreDatabase => {
            "restoring the backup over the live database replaces everything written to it \
             since the backup"
                .to_string()
        }
        _ => format!("undoing '{}' cannot itself be undone", forward.title),
    });
    Step {
        id,
        guide_ref: forward.guide_ref.clone(),
        title: action.title.clone(),
        instruction: action.instruction.clone(),
        kind,
        changes: true,
        irreversible: action.irreversible,
        irreversible_because,
        rollback: None,
        commands: Vec::new(),
        builtin: true,
        skip_reason: None,
    }
}

/// The `migrations finish` step that ran on a database X shares, if one started: after
/// it X cannot serve from that database. A finish that failed or was interrupted counts,
/// because nobody knows how far its teardowns went.
pub fn point_of_no_return(expanded: &ExpandedPlan, view: &RunView) -> Option<StepRef> {
    expanded.phases.iter().find_map(|phase| {
        if phase.strategy == Strategy::DualCluster {
            return None;
        }
        phase.steps.iter().find_map(|step| {
            let key = StepRef::new(phase.name, step.id.clone());
            let started = view
                .record(&step_key(&key))
                .is_some_and(|r| r.has_started());
            (step.kind == StepKind::Migrations(MigrationsCommand::Finish) && started).then_some(key)
        })
    })
}

/// The rollback plan: the counterparts of the steps that ran, newest first, with one
/// `traffic-to-x` step where traffic moved and is not yet safely on X.
pub fn plan_rollback(
    expanded: &ExpandedPlan,
    view: &RunView,
    traffic_safe: bool,
) -> Vec<RollbackStepInfo> {
    let past_no_return = point_of_no_return(expanded, view).is_some();
    let mut steps = Vec::new();
    let mut traffic_at = None;
    let mut first_restore_at = None;
    let ran: Vec<(StepRef, &Step)> = expanded
        .steps()
        .map(|(phase, step)| (StepRef::new(phase.name, step.id.clone()), step))
        .filter(|(key, _)| {
            view.record(&step_key(key))
                .is_some_and(|r| r.has_started() && r.state != super::event::StepState::RolledBack)
        })
        .collect();
    for (forward, step) in ran.into_iter().rev() {
        let Some(action) = &step.rollback else {
            continue;
        };
        match action.kind {
            RollbackKind::TrafficToX => {
                traffic_at.get_or_insert(steps.len());
            }
            _ => {
                if action.kind == RollbackKind::RestoreDatabase {
                    first_restore_at.get_or_insert(steps.len() + 1);
                }
                steps.push(RollbackStepInfo {
                    step: step_key(&rollback_ref(expanded, &forward)),
                    undoes: Some(step_key(&forward)),
                    title: action.title.clone(),
                    irreversible: action.irreversible,
                });
            }
        }
    }
    if view.traffic_moved && !traffic_safe {
        let at = if past_no_return {
            traffic_at.or(first_restore_at).unwrap_or(steps.len())
        } else {
            0
        };
        steps.insert(
            at,
            RollbackStepInfo {
                step: step_key(&StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X)),
                undoes: None,
                title: traffic_to_x_step().title,
                irreversible: false,
            },
        );
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::{Entry, Record, StepInfo};
    use crate::plan::steps::{ClusterSide, Phase};

    fn step(id: &str, kind: StepKind, rollback: Option<RollbackKind>) -> Step {
        Step {
            id: id.into(),
            guide_ref: String::new(),
            title: id.into(),
            instruction: String::new(),
            kind,
            changes: true,
            irreversible: false,
            irreversible_because: None,
            rollback: rollback.map(|kind| RollbackAction {
                title: format!("undo {id}"),
                instruction: String::new(),
                irreversible: kind == RollbackKind::RestoreDatabase,
                kind,
            }),
            commands: vec![],
            builtin: true,
            skip_reason: None,
        }
    }

    fn blue_green() -> ExpandedPlan {
        ExpandedPlan {
            phases: vec![Phase {
                name: PhaseName::Cluster,
                strategy: Strategy::BlueGreen,
                steps: vec![
                    step("backup", StepKind::Manual, None),
                    step(
                        "migrations-up",
                        StepKind::Migrations(MigrationsCommand::Up),
                        None,
                    ),
                    step(
                        "start-y",
                        StepKind::StartNodes {
                            cluster: ClusterSide::Y,
                        },
                        Some(RollbackKind::StopNodes {
                            cluster: ClusterSide::Y,
                        }),
                    ),
                    step(
                        "shift-traffic-50",
                        StepKind::ShiftTraffic {
                            y_percent: 50,
                            bake: Duration::ZERO,
                        },
                        Some(RollbackKind::TrafficToX),
                    ),
                    step(
                        "shift-traffic-100",
                        StepKind::ShiftTraffic {
                            y_percent: 100,
                            bake: Duration::ZERO,
                        },
                        Some(RollbackKind::TrafficToX),
                    ),
                    step(
                        "migrations-finish",
                        StepKind::Migrations(MigrationsCommand::Finish),
                        Some(RollbackKind::RestoreDatabase),
                    ),
                ],
            }],
            strategy_reason: String::new(),
            warnings: vec![],
        }
    }

    fn view_after(expanded: &ExpandedPlan, done: &[&str], traffic_y: u8) -> RunView {
        let mut records = vec![Record {
            seq: 0,
            at: chrono::Utc::now(),
            by: "kongup".into(),
            entry: Entry::RunCreated {
                run_id: "r".into(),
                plan_name: "p".into(),
                plan_sha256: "h".into(),
                plan_text: String::new(),
                steps: expanded
                    .steps()
                    .map(|(p, s)| StepInfo {
                        step: format!("{}/{}", p.name, s.id),
                        title: s.title.clone(),
                        kind: s.kind.as_str().into(),
                        changes: true,
                        irreversible: false,
                    })
                    .collect(),
                kongup_version: "0".into(),
            },
        }];
        for id in done {
            let step = format!("cluster/{id}");
            for entry in [
                Entry::StepStarted {
                    step: step.clone(),
                    attempt: 1,
                    runs: vec![],
                },
                Entry::StepFinished {
                    step,
                    attempt: 1,
                    result: crate::engine::journal::StepResult::Succeeded,
                    detail: None,
                    duration_ms: 0,
                    last_lines: vec![],
                },
            ] {
                records.push(Record {
                    seq: records.len() as u64,
                    at: chrono::Utc::now(),
                    by: "op".into(),
                    entry,
                });
            }
        }
        if traffic_y > 0 {
            records.push(Record {
                seq: records.len() as u64,
                at: chrono::Utc::now(),
                by: "op".into(),
                entry: Entry::TrafficRequested {
                    split: crate::lb::Split::to_y(traffic_y),
                    cause: "test".into(),
                },
            });
        }
        RunView::replay(&records).unwrap()
    }

    fn ids(steps: &[RollbackStepInfo]) -> Vec<&str> {
        steps.iter().map(|s| s.step.as_str()).collect()
    }

    #[test]
    fn before_the_point_of_no_return_traffic_is_first_and_counterparts_run_newest_first() {
        let expanded = blue_green();
        let view = view_after(
            &expanded,
            &["backup", "migrations-up", "start-y", "shift-traffic-50"],
            50,
        );
        assert_eq!(point_of_no_return(&expanded, &view), None);
        assert_eq!(
            ids(&plan_rollback(&expanded, &view, true)),
            ["rollback/start-y"]
        );
        assert_eq!(
            ids(&plan_rollback(&expanded, &view, false)),
            ["rollback/traffic-to-x", "rollback/start-y"]
        );
    }

    #[test]
    fn after_migrations_finish_the_restore_comes_before_traffic_to_x() {
        let expanded = blue_green();
        let view = view_after(
            &expanded,
            &[
                "backup",
                "migrations-up",
                "start-y",
                "shift-traffic-50",
                "shift-traffic-100",
                "migrations-finish",
            ],
            100,
        );
        assert_eq!(
            point_of_no_return(&expanded, &view),
            Some(StepRef::new(PhaseName::Cluster, "migrations-finish"))
        );
        let plan = plan_rollback(&expanded, &view, false);
        assert_eq!(
            ids(&plan),
            [
                "rollback/migrations-finish",
                "rollback/traffic-to-x",
                "rollback/start-y"
            ]
        );
        assert!(plan[0].irreversible);
        let restore = rollback_step(&expanded, &parse("rollback/migrations-finish")).unwrap();
        assert_eq!(restore.kind, RollbackKind::RestoreDatabase);
        assert!(restore.step.irreversible_because.is_some());
        assert_eq!(
            restore.undoes,
            Some(StepRef::new(PhaseName::Cluster, "migrations-finish"))
        );
    }

    #[test]
    fn multi_phase_plans_name_the_phase_in_rollback_ids() {
        let mut expanded = blue_green();
        let mut second = expanded.phases[0].clone();
        second.name = PhaseName::DataPlane;
        expanded.phases[0].name = PhaseName::ControlPlane;
        expanded.phases.push(second);
        let forward = StepRef::new(PhaseName::DataPlane, "start-y");
        let rollback = rollback_ref(&expanded, &forward);
        assert_eq!(rollback.to_string(), "rollback/data-plane.start-y");
        assert_eq!(undone_step(&expanded, &rollback), Some(forward));
        assert_eq!(
            step_details(&expanded, &rollback).unwrap().title,
            "undo start-y"
        );
    }

    fn parse(key: &str) -> StepRef {
        crate::engine::journal::parse_step_key(key).unwrap()
    }
}

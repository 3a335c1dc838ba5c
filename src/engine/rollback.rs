//! Rollback, phase-aware. The one command first sends all traffic to X where traffic has
//! moved and X can still serve; then it offers the rollback counterparts of the steps
//! that ran, newest first, each confirmed like any other step.
//!
//! Rollback steps live in the `rollback` pseudo-phase: `rollback/<id>` undoes the forward
//! step `<id>` (`rollback/<phase>.<id>` when the plan has more than one phase), and
//! `rollback/traffic-to-x` sends all traffic to X when the first act could not (or must
//! not yet) do it. X cannot serve after a started `Decommission{X}`, a `StopNodes{X}` not
//! undone, or a started `migrations finish` on the database X shares (the point of no
//! return): then no traffic goes to X until the rollback steps that give it back have run
//! (start X again, restore the database), and when none can (X was decommissioned), the
//! rollback plan has no traffic-to-X step and says what to rebuild.

use std::time::Duration;

use super::event::StepState;
use super::journal::{RollbackStepInfo, step_key};
use super::view::RunView;
use crate::plan::steps::{
    ClusterSide, ExpandedPlan, MigrationsCommand, PhaseName, RollbackAction, RollbackKind, Step,
    StepKind, StepRef,
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
        RollbackKind::StopNodes { cluster, wave } => StepKind::StopNodes {
            cluster: *cluster,
            wave: *wave,
        },
        RollbackKind::StartNodes { cluster, wave } => StepKind::StartNodes {
            cluster: *cluster,
            wave: *wave,
        },
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
        if phase.strategy.y_has_own_database() {
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

/// Why X cannot take traffic now: a step that took X's ability to serve away and has not
/// been undone.
#[derive(Debug, Clone, PartialEq)]
pub struct XBlocker {
    /// The forward step that did it.
    pub step: StepRef,
    /// The rollback step that gives X back, when the plan has one (start X again, restore
    /// the database); `None`: X must be rebuilt by hand.
    pub remedy: Option<StepRef>,
    /// What happened and what must be done first, for the operator.
    pub what: String,
}

/// Whether the forward step counts as undone: rolled back, or its rollback step was
/// settled by the operator (skipped with a reason, which says it was seen to by hand).
fn undone(expanded: &ExpandedPlan, view: &RunView, forward: &StepRef) -> bool {
    view.state_of(&step_key(forward)) == StepState::RolledBack
        || view.state_of(&step_key(&rollback_ref(expanded, forward))) == StepState::Skipped
}

/// What keeps X from serving: a started `Decommission{X}`, a `StopNodes{X}` not undone,
/// or a started `migrations finish` on the database X shares (not undone by the restore).
/// Empty when X can take traffic.
pub fn x_blockers(expanded: &ExpandedPlan, view: &RunView) -> Vec<XBlocker> {
    let mut blockers = Vec::new();
    for (phase, step) in expanded.steps() {
        let forward = StepRef::new(phase.name, step.id.clone());
        let started = view
            .record(&step_key(&forward))
            .is_some_and(|r| r.has_started());
        if !started || undone(expanded, view, &forward) {
            continue;
        }
        // Control planes proxy nothing: with X's stopped or gone, X's data planes still
        // serve from the configuration they hold.
        if phase.name == PhaseName::ControlPlane
            && matches!(
                step.kind,
                StepKind::Decommission { .. } | StepKind::StopNodes { .. }
            )
        {
            continue;
        }
        let remedy = step
            .rollback
            .as_ref()
            .map(|_| rollback_ref(expanded, &forward));
        let what = match step.kind {
            StepKind::Decommission {
                cluster: ClusterSide::X,
            } => format!(
                "{forward} decommissioned X: rebuild X (install the old version on its nodes, \
                 restore its database from the backup if Y's migrations finished on it, start \
                 it and check it answers) before any traffic goes back to it"
            ),
            // A wave's stop leaves X's other nodes serving: the last wave stops none.
            StepKind::StopNodes {
                cluster: ClusterSide::X,
                wave: None,
            } => match &remedy {
                Some(remedy) => format!(
                    "{forward} stopped X's nodes: they must run again ({remedy}) before \
                     traffic goes back to X"
                ),
                None => format!(
                    "{forward} stopped X's nodes: start them again by hand before traffic goes \
                     back to X"
                ),
            },
            StepKind::Migrations(MigrationsCommand::Finish)
                if !phase.strategy.y_has_own_database() =>
            {
                match &remedy {
                    Some(remedy) => format!(
                        "{forward} ran on the database X shares: X cannot serve from it until \
                         the backup is restored ({remedy}, the database-restore path)"
                    ),
                    None => format!(
                        "{forward} ran on the database X shares: X cannot serve from it until \
                         the backup is restored by hand (the database-restore path)"
                    ),
                }
            }
            _ => continue,
        };
        let remedy = match step.kind {
            StepKind::Decommission { .. } => None,
            _ => remedy,
        };
        blockers.push(XBlocker {
            step: forward,
            remedy,
            what,
        });
    }
    blockers
}

/// X can take traffic: nothing took that away, or it was undone.
pub fn x_can_serve(expanded: &ExpandedPlan, view: &RunView) -> bool {
    x_blockers(expanded, view).is_empty()
}

/// One sentence per blocker, for warnings and refusals.
pub fn describe_blockers(blockers: &[XBlocker]) -> String {
    blockers
        .iter()
        .map(|b| b.what.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A rollback plan, and what the operator must know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    pub steps: Vec<RollbackStepInfo>,
    /// Set when X cannot serve: what must happen before traffic can go back to it.
    pub note: Option<String>,
}

/// The rollback plan: the counterparts of the steps that ran, newest first, with one
/// `traffic-to-x` step where traffic moved and is not yet safely on X. When X cannot
/// serve, `traffic-to-x` comes after the rollback steps that give X back; when nothing in
/// the plan can (X was decommissioned), there is none, and the note says what to rebuild.
pub fn plan_rollback(expanded: &ExpandedPlan, view: &RunView, traffic_safe: bool) -> RollbackPlan {
    let blockers = x_blockers(expanded, view);
    let mut steps = Vec::new();
    let decommissioned = decommissioned_phases(expanded, view);
    let ran: Vec<(StepRef, &Step)> = expanded
        .steps()
        .filter(|(phase, _)| !decommissioned.iter().any(|d| d.phase == phase.name))
        .map(|(phase, step)| (StepRef::new(phase.name, step.id.clone()), step))
        .filter(|(key, _)| {
            view.record(&step_key(key))
                .is_some_and(|r| r.has_started() && r.state != StepState::RolledBack)
        })
        .collect();
    for (forward, step) in ran.into_iter().rev() {
        let Some(action) = &step.rollback else {
            continue;
        };
        if action.kind != RollbackKind::TrafficToX {
            steps.push(RollbackStepInfo {
                step: step_key(&rollback_ref(expanded, &forward)),
                undoes: Some(step_key(&forward)),
                title: action.title.clone(),
                irreversible: action.irreversible,
            });
        }
    }
    let mut note = None;
    if view.traffic_moved && !traffic_safe {
        let remedies: Option<Vec<String>> = blockers
            .iter()
            .map(|b| b.remedy.as_ref().map(step_key))
            .collect();
        // After the last rollback step that gives X back; none when one cannot.
        let at = remedies.map(|remedies| {
            steps
                .iter()
                .rposition(|s| remedies.contains(&s.step))
                .map_or(0, |last| last + 1)
        });
        match at {
            Some(at) => steps.insert(
                at,
                RollbackStepInfo {
                    step: step_key(&StepRef::new(PhaseName::Rollback, TRAFFIC_TO_X)),
                    undoes: None,
                    title: traffic_to_x_step().title,
                    irreversible: false,
                },
            ),
            None => {
                note = Some(format!(
                    "traffic stays where it is: X cannot serve. {}. Then send traffic back with `traffic 0` (or your load balancer)",
                    describe_blockers(&blockers)
                ));
            }
        }
        if note.is_none() && !blockers.is_empty() {
            note = Some(format!(
                "traffic goes back to X only after X can serve again: {}",
                describe_blockers(&blockers)
            ));
        }
    }
    if !decommissioned.is_empty() {
        let past: Vec<String> = decommissioned
            .iter()
            .map(|d| {
                format!(
                    "{d} decommissioned X, so the {} steps are not rolled back: undoing Y \
                     there would leave nothing in X's place",
                    d.phase
                )
            })
            .collect();
        let past = past.join("; ");
        note = Some(match note {
            Some(note) => format!("{note}. {past}"),
            None => past,
        });
    }
    RollbackPlan { steps, note }
}

/// The decommission steps that started (and were not undone): each ends its phase's
/// rollback, since X of that phase is gone.
fn decommissioned_phases(expanded: &ExpandedPlan, view: &RunView) -> Vec<StepRef> {
    expanded
        .steps()
        .filter(|(_, step)| {
            matches!(
                step.kind,
                StepKind::Decommission {
                    cluster: ClusterSide::X
                }
            )
        })
        .map(|(phase, step)| StepRef::new(phase.name, step.id.clone()))
        .filter(|forward| {
            view.record(&step_key(forward))
                .is_some_and(|r| r.has_started())
                && !undone(expanded, view, forward)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::{Entry, Record, StepInfo};
    use crate::plan::model::Strategy;
    use crate::plan::steps::Phase;

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
                            wave: None,
                        },
                        Some(RollbackKind::StopNodes {
                            cluster: ClusterSide::Y,
                            wave: None,
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
                        y_percent: None,
                    })
                    .collect(),
                kongup_version: "0".into(),
            },
        }];
        for id in done {
            // A bare id is the cluster phase's.
            let step = if id.contains('/') {
                id.to_string()
            } else {
                format!("cluster/{id}")
            };
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

    /// Hybrid: the control planes' phase ends with X's decommissioned; the data planes
    /// then took traffic. A rollback undoes the data-plane steps only: X's control planes
    /// are gone, so stopping Y's would leave no control plane at all.
    #[test]
    fn a_decommissioned_phase_is_not_rolled_back_and_the_note_says_why() {
        let start_y = |id: &str| {
            step(
                id,
                StepKind::StartNodes {
                    cluster: ClusterSide::Y,
                    wave: None,
                },
                Some(RollbackKind::StopNodes {
                    cluster: ClusterSide::Y,
                    wave: None,
                }),
            )
        };
        let decommission = step(
            "decommission-x",
            StepKind::Decommission {
                cluster: ClusterSide::X,
            },
            None,
        );
        let shift = step(
            "shift-traffic-50",
            StepKind::ShiftTraffic {
                y_percent: 50,
                bake: Duration::ZERO,
            },
            Some(RollbackKind::TrafficToX),
        );
        let expanded = ExpandedPlan {
            phases: vec![
                Phase {
                    name: PhaseName::ControlPlane,
                    strategy: Strategy::DualCluster,
                    steps: vec![start_y("start-y"), decommission],
                },
                Phase {
                    name: PhaseName::DataPlane,
                    strategy: Strategy::Rolling,
                    steps: vec![start_y("start-y"), shift],
                },
            ],
            strategy_reason: String::new(),
            warnings: vec![],
        };
        let before = view_after(
            &expanded,
            &[
                "control-plane/start-y",
                "data-plane/start-y",
                "data-plane/shift-traffic-50",
            ],
            50,
        );
        assert_eq!(
            ids(&plan_rollback(&expanded, &before, true).steps),
            [
                "rollback/data-plane.start-y",
                "rollback/control-plane.start-y"
            ]
        );
        assert_eq!(plan_rollback(&expanded, &before, true).note, None);

        let after = view_after(
            &expanded,
            &[
                "control-plane/start-y",
                "control-plane/decommission-x",
                "data-plane/start-y",
                "data-plane/shift-traffic-50",
            ],
            50,
        );
        let plan = plan_rollback(&expanded, &after, true);
        assert_eq!(ids(&plan.steps), ["rollback/data-plane.start-y"]);
        let note = plan.note.unwrap();
        assert!(
            note.contains("control-plane/decommission-x decommissioned X, so the control-plane steps are not rolled back"),
            "{note}"
        );
        // X's data planes still serve: traffic goes back to them first.
        assert!(x_can_serve(&expanded, &after));
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
            ids(&plan_rollback(&expanded, &view, true).steps),
            ["rollback/start-y"]
        );
        assert_eq!(
            ids(&plan_rollback(&expanded, &view, false).steps),
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
        let plan = plan_rollback(&expanded, &view, false).steps;
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

    /// Waves roll back newest first, and within a wave its X nodes start again before its
    /// Y nodes stop; traffic goes to X before anything else.
    #[test]
    fn waves_roll_back_newest_first_x_back_before_y_goes() {
        let mut plan = crate::plan::templates::sample::plan(
            crate::plan::model::Mode::Hybrid,
            crate::plan::model::StrategyChoice::Fixed(Strategy::DualCluster),
        );
        plan.rolling = Some(crate::plan::model::RollingSpec {
            waves: vec![
                crate::plan::model::Share::Nodes(1),
                crate::plan::model::Share::Percent(100),
            ],
            between_waves: std::time::Duration::from_secs(60),
            confirm: Default::default(),
            drain: None,
            max_unavailable: None,
        });
        let expanded = crate::plan::templates::expand(&plan).unwrap();
        let done = [
            "data-plane/wave-1-start-y",
            "data-plane/staging-tests",
            "data-plane/wave-1-traffic",
            "data-plane/wave-1-stop-x",
            "data-plane/wave-2-start-y",
            "data-plane/wave-2-traffic",
        ];
        let view = view_after(&expanded, &done, 100);
        let planned = plan_rollback(&expanded, &view, false);
        let order: Vec<String> = planned.steps.iter().map(|s| s.step.clone()).collect();
        assert_eq!(
            order,
            [
                "rollback/traffic-to-x",
                "rollback/data-plane.wave-2-start-y",
                "rollback/data-plane.wave-1-stop-x",
                "rollback/data-plane.wave-1-start-y",
            ],
            "{planned:?}"
        );
        assert_eq!(planned.note, None);
    }
}

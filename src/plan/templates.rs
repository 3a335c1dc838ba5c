//! Strategy templates: each strategy expands into the steps of Kong's guide for it
//! (https://docs.konghq.com/gateway/latest/upgrade/), every numbered step and sub-step in order, with the guide's own
//! instruction and what kongup does for it. Then the plan's customisation is applied:
//! commands for template steps, inserted steps, skipped steps; and each command without
//! an executor is placed on the nodes its step acts on (`plan::placement`).
//!
//! # Adding a strategy
//!
//! The compiler finds most of the places: every question asked of a strategy is a
//! method with a `match` that names each one. In order:
//!
//! 1. **Model** (`plan::model`): the `Strategy` variant, its place in `Strategy::ALL` and
//!    its word in `as_str` (the plan's `strategy:` word; `FromStr` and
//!    `StrategyChoice::WORDS` follow from them). Then answer each question method
//!    (`is_database_backed`, `fits_mode`, `y_has_own_database`, `y_shares_x_database`,
//!    `installs_y_on_x_machines`, `x_serves_beside_y`, `shifts_traffic`); the engine's
//!    rollback, the preflight, `kongup init` and the loader ask through them.
//! 2. **Chooser** (`plan::chooser`): whether `strategy: auto` may pick it, and the reason
//!    it gives.
//! 3. **Template**: a file here (`templates/<strategy>.rs`) with `steps(plan, target)`,
//!    the guide's steps in order with their rollback counterparts; its arm in `template`,
//!    its summary in `describe`, its warnings in `warnings`, and what kongup does at each
//!    of its steps in `common::kongup_note`.
//! 4. **Path rules** (`plan::path::check_strategy`): the modes and the versions it fits,
//!    with a reason for each refusal.
//! 5. **Loader cross-checks** (`plan::load::cross_checks`): the hint when it does not fit
//!    the mode, and what it needs of the clusters (Y's database) and of `traffic`.
//! 6. **Elsewhere**: the lab scenario a rehearsal of it looks like (`demo::fit`), the
//!    plan `kongup init` writes for it (`kong::discover`).
//! 7. **Docs**: `docs/plan.md` (the modes/strategies table, "The steps of each
//!    strategy", what `kongup validate` checks), and an example in `assets/plans/`.
//! 8. **Tests**: its steps and rollback here (`templates/tests.rs`), its refusals in
//!    `plan/load/tests.rs`, its path rules in `plan::path`; the example plan is then
//!    validated and planned by `tests/cli_validate.rs` and `tests/cli_plan.rs`.

mod blue_green;
mod common;
mod control_planes;
mod dual_cluster;
mod in_place;
mod rolling;

use std::collections::HashMap;
use std::fmt;

use self::common::Target;
use super::chooser::choose;
use super::model::{
    InsertPosition, InsertedStep, Mode, Plan, StepCustomisation, StepSelector, Strategy,
    StrategyChoice,
};
use super::path::{check_strategy, upgrade_path};
use super::placement::place_commands;
use super::steps::{ExpandedPlan, Phase, PhaseName, Step, StepKind};

/// Which customisation entry of the plan an error is about: an index into
/// `plan.steps.overrides`, `plan.steps.inserts` or `plan.steps.skips`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomisationEntry {
    Override(usize),
    Insert(usize),
    Skip(usize),
}

impl fmt::Display for CustomisationEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomisationEntry::Override(i) => write!(f, "steps.overrides[{i}]"),
            CustomisationEntry::Insert(i) => write!(f, "steps.inserts[{i}]"),
            CustomisationEntry::Skip(i) => write!(f, "steps.skips[{i}]"),
        }
    }
}

/// A customisation entry that cannot be applied to the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub entry: CustomisationEntry,
    /// What is wrong, e.g. "no step `shift-traffic` in this plan".
    pub message: String,
    /// What to write instead, e.g. the valid step ids.
    pub hint: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (hint: {})", self.entry, self.message, self.hint)
    }
}

impl std::error::Error for ExpandError {}

/// Expands the plan's strategy into phases of steps and applies its customisation.
/// Errors name each customisation entry that does not fit, all of them at once.
pub fn expand(plan: &Plan) -> Result<ExpandedPlan, Vec<ExpandError>> {
    let (primary, strategy_reason) = decide(plan);
    let mut phases = match plan.mode {
        Mode::Hybrid => vec![
            Phase {
                name: PhaseName::ControlPlane,
                strategy: primary,
                steps: template(plan, primary, Target::ControlPlanes),
            },
            Phase {
                name: PhaseName::DataPlane,
                strategy: Strategy::Rolling,
                steps: template(plan, Strategy::Rolling, Target::DataPlanes),
            },
        ],
        Mode::Traditional | Mode::Dbless => {
            let target = if primary.is_database_backed() {
                Target::Cluster
            } else {
                Target::Dbless
            };
            vec![Phase {
                name: PhaseName::Cluster,
                strategy: primary,
                steps: template(plan, primary, target),
            }]
        }
    };
    customise(&mut phases, &plan.steps)?;
    for phase in &mut phases {
        let (name, strategy) = (phase.name, phase.strategy);
        for step in &mut phase.steps {
            let commands = std::mem::take(&mut step.commands);
            step.commands = place_commands(plan, name, &step.kind, commands);
            let note = if step.builtin {
                common::kongup_note(step, plan, name, strategy)
            } else if step.commands.is_empty() {
                "The plan turns kongup's automation for this step off (`builtin: false`): \
                 do it by hand; confirming records that it is done."
                    .to_string()
            } else {
                "The plan turns kongup's automation for this step off (`builtin: false`): \
                 only the plan's commands run."
                    .to_string()
            };
            if !step.instruction.is_empty() {
                step.instruction.push_str("\n\n");
            }
            step.instruction.push_str(&note);
        }
    }
    Ok(ExpandedPlan {
        phases,
        strategy_reason,
        warnings: warnings(plan, primary),
    })
}

/// The strategy for the cluster or the control planes, and why.
fn decide(plan: &Plan) -> (Strategy, String) {
    match plan.strategy {
        StrategyChoice::Auto { spare_capacity } => {
            let pick = choose(plan.mode, plan.from, plan.to, spare_capacity);
            (pick.primary, format!("Chosen by kongup: {}", pick.reason))
        }
        StrategyChoice::Fixed(strategy) => {
            let named = format!(
                "The plan names {}{}: {}",
                strategy.as_str(),
                if plan.mode == Mode::Hybrid {
                    " for the control planes"
                } else {
                    ""
                },
                describe(strategy, plan.mode)
            );
            let reason = if plan.mode == Mode::Hybrid {
                format!(
                    "{named} The data planes roll afterwards, Kong's only strategy for nodes without a database; control planes go first because their minor must be at least the data planes'."
                )
            } else {
                named
            };
            (strategy, reason)
        }
    }
}

/// Kong's own summary of a strategy, for the reason shown with the plan.
fn describe(strategy: Strategy, mode: Mode) -> &'static str {
    match (strategy, mode) {
        (Strategy::DualCluster, _) => {
            "a new cluster Y with its own database, restored from X's backup and migrated, runs beside X while traffic moves over gradually. Kong's safest strategy, with no planned downtime."
        }
        (Strategy::InPlace, Mode::Hybrid) => {
            "X's control planes stop and Y's migrate and reuse X's database. It needs the fewest resources; the Admin API is down meanwhile while the data planes keep proxying."
        }
        (Strategy::InPlace, _) => {
            "X stops and Y migrates and reuses X's database. It needs the fewest resources but the proxy is down meanwhile; Kong recommends it only when a dual-cluster upgrade is out of reach."
        }
        (Strategy::BlueGreen, _) => {
            "Y shares X's database after `kong migrations up`, traffic moves over gradually, and `kong migrations finish` runs only at the end. No downtime without a second database; Kong recommends it only between patch releases."
        }
        (Strategy::Rolling, _) => {
            "Y nodes are added and traffic moves over while X nodes are retired. Kong's strategy for nodes without a database."
        }
    }
}

fn template(plan: &Plan, strategy: Strategy, target: Target) -> Vec<Step> {
    match strategy {
        Strategy::DualCluster => dual_cluster::steps(plan, target),
        Strategy::InPlace => in_place::steps(plan, target),
        Strategy::BlueGreen => blue_green::steps(plan, target),
        Strategy::Rolling => rolling::steps(plan, target),
    }
}

/// What the operator should know before the run: the path's and the strategy's warnings,
/// and the Helm chart's own migration Jobs on Kubernetes.
fn warnings(plan: &Plan, primary: Strategy) -> Vec<String> {
    let mut warnings = Vec::new();
    match upgrade_path(plan.from, plan.to, plan.mode, plan.database) {
        Ok(path) => {
            if path.hops.len() > 1 {
                let stops: Vec<String> = path.hops[..path.hops.len() - 1]
                    .iter()
                    .map(|h| h.to.to_string())
                    .collect();
                warnings.push(format!(
                    "Kong's rules put a stop at {} between {} and {} ({}), but this plan goes straight to {}: plan one upgrade per hop (`kongup path {} {}` lists them).",
                    stops.join(" and "),
                    plan.from,
                    plan.to,
                    path.hops[0].why,
                    plan.to,
                    plan.from,
                    plan.to
                ));
            }
            warnings.extend(path.warnings);
        }
        Err(refused) => warnings.push(format!("Upgrade path refused: {refused}")),
    }
    match check_strategy(primary, plan.from, plan.to, plan.mode) {
        Ok(strategy_warnings) => warnings.extend(strategy_warnings),
        Err(refused) => warnings.push(format!("Strategy {} refused: {refused}", primary.as_str())),
    }
    match primary {
        Strategy::DualCluster => warnings.push(dual_cluster::LIMITATION.to_string()),
        Strategy::InPlace | Strategy::BlueGreen | Strategy::Rolling => {}
    }
    warnings.extend(crate::kong::helm::migration_hooks_warning(plan));
    warnings
}

/// Where a selector points: (phase index, step index).
type Position = (usize, usize);

/// Why a selector does not point at exactly one step: (message, hint).
type SelectorError = (String, String);

fn customise(
    phases: &mut [Phase],
    customisation: &StepCustomisation,
) -> Result<(), Vec<ExpandError>> {
    let mut errors = Vec::new();

    // Inserts first, in plan order, so later inserts and the overrides and skips can name
    // inserted steps. Several inserts after one step keep their plan order.
    let mut inserted_after: HashMap<(PhaseName, String), usize> = HashMap::new();
    for (index, insert) in customisation.inserts.iter().enumerate() {
        let entry = CustomisationEntry::Insert(index);
        let (selector, after) = match &insert.position {
            InsertPosition::Before(selector) => (selector, false),
            InsertPosition::After(selector) => (selector, true),
        };
        let (phase_index, step_index) = match resolve(phases, selector) {
            Ok(position) => position,
            Err((message, hint)) => {
                errors.push(ExpandError {
                    entry,
                    message,
                    hint,
                });
                continue;
            }
        };
        let phase = &mut phases[phase_index];
        if phase.steps.iter().any(|s| s.id == insert.id) {
            errors.push(ExpandError {
                entry,
                message: format!(
                    "the inserted step's id `{}` is already used in the {} phase",
                    insert.id, phase.name
                ),
                hint: "give the inserted step an id of its own".to_string(),
            });
            continue;
        }
        let at = if after {
            let anchor = (phase.name, phase.steps[step_index].id.clone());
            let earlier = inserted_after.entry(anchor).or_insert(0);
            let at = step_index + 1 + *earlier;
            *earlier += 1;
            at
        } else {
            step_index
        };
        phase.steps.insert(at, inserted_step(insert));
    }

    let mut overridden: HashMap<Position, usize> = HashMap::new();
    for (index, step_override) in customisation.overrides.iter().enumerate() {
        let entry = CustomisationEntry::Override(index);
        let position = match resolve(phases, &step_override.step) {
            Ok(position) => position,
            Err((message, hint)) => {
                errors.push(ExpandError {
                    entry,
                    message,
                    hint,
                });
                continue;
            }
        };
        let step = &mut phases[position.0].steps[position.1];
        if let Some(earlier) = overridden.insert(position, index) {
            errors.push(ExpandError {
                entry,
                message: format!(
                    "step `{}` already has commands from steps.overrides[{earlier}]",
                    step.id
                ),
                hint: "merge the two overrides into one list of commands".to_string(),
            });
            continue;
        }
        step.builtin = step_override.builtin;
        if step_override.commands.is_empty() && step_override.builtin {
            let message = if step_override.timeout.is_some() {
                format!(
                    "the override of `{}` gives a timeout but no commands, and the timeout applies only to commands",
                    step.id
                )
            } else {
                format!("the override of `{}` gives no commands", step.id)
            };
            errors.push(ExpandError {
                entry,
                message,
                hint: "list the commands the step should run; kong migrations use migrations.timeout, other commands the plan's command_timeout".to_string(),
            });
            continue;
        }
        step.commands = step_override
            .commands
            .iter()
            .cloned()
            .map(|mut command| {
                command.timeout = command.timeout.or(step_override.timeout);
                command
            })
            .collect();
    }

    let mut skipped: HashMap<Position, usize> = HashMap::new();
    for (index, skip) in customisation.skips.iter().enumerate() {
        let entry = CustomisationEntry::Skip(index);
        let position = match resolve(phases, &skip.step) {
            Ok(position) => position,
            Err((message, hint)) => {
                errors.push(ExpandError {
                    entry,
                    message,
                    hint,
                });
                continue;
            }
        };
        let step = &mut phases[position.0].steps[position.1];
        if let Some(earlier) = skipped.insert(position, index) {
            errors.push(ExpandError {
                entry,
                message: format!(
                    "step `{}` is already skipped by steps.skips[{earlier}]",
                    step.id
                ),
                hint: "keep one skip per step".to_string(),
            });
            continue;
        }
        step.skip_reason = Some(skip.reason.clone());
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn inserted_step(insert: &InsertedStep) -> Step {
    Step {
        id: insert.id.clone(),
        guide_ref: String::new(),
        title: insert.title.clone(),
        instruction: insert.instruction.trim().to_string(),
        kind: StepKind::Manual,
        changes: insert.changes,
        irreversible: insert.irreversible,
        irreversible_because: insert
            .irreversible
            .then(|| "the plan marks this step irreversible".to_string()),
        rollback: None,
        commands: insert.commands.clone(),
        builtin: true,
        skip_reason: None,
    }
}

/// Finds the one step a selector names.
fn resolve(phases: &[Phase], selector: &StepSelector) -> Result<Position, SelectorError> {
    let shown = match selector.phase {
        Some(phase) => format!("{phase}/{}", selector.id),
        None => selector.id.clone(),
    };
    let candidates: Vec<Position> = phases
        .iter()
        .enumerate()
        .filter(|(_, phase)| selector.phase.is_none_or(|wanted| phase.name == wanted))
        .filter_map(|(pi, phase)| {
            phase
                .steps
                .iter()
                .position(|s| s.id == selector.id)
                .map(|si| (pi, si))
        })
        .collect();
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => {
            if let Some(wanted) = selector.phase
                && !phases.iter().any(|p| p.name == wanted)
            {
                let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
                return Err((
                    format!("this plan has no {wanted} phase, so `{shown}` names no step"),
                    format!(
                        "its phases are: {}; {}",
                        names.join(", "),
                        valid_steps(phases)
                    ),
                ));
            }
            let mut hint = String::new();
            if let Some(near) = nearest(phases, selector) {
                hint.push_str(&format!("did you mean {near}? "));
            }
            hint.push_str(&valid_steps(phases));
            Err((format!("no step `{shown}` in this plan"), hint))
        }
        many => {
            let refs: Vec<String> = many
                .iter()
                .map(|&(pi, _)| format!("{}/{}", phases[pi].name, selector.id))
                .collect();
            Err((
                format!(
                    "`{shown}` is ambiguous: both the {} phases have it",
                    many.iter()
                        .map(|&(pi, _)| phases[pi].name.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                format!("name the phase: {}", refs.join(" or ")),
            ))
        }
    }
}

/// "valid step ids: a, b, c", per phase when there are several.
fn valid_steps(phases: &[Phase]) -> String {
    let ids = |phase: &Phase| {
        phase
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match phases {
        [only] => format!("valid step ids: {}", ids(only)),
        _ => format!(
            "valid steps ({}; write phase/id when both phases have the id): {}",
            "a bare id works when one phase has it",
            phases
                .iter()
                .map(|p| format!("{}: {}", p.name, ids(p)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// The ids close to a mistyped one: those it is a prefix of (`shift-traffic` for
/// `shift-traffic-5`), else those within two edits.
fn nearest(phases: &[Phase], selector: &StepSelector) -> Option<String> {
    let ids: Vec<&str> = phases
        .iter()
        .filter(|p| selector.phase.is_none_or(|wanted| p.name == wanted))
        .flat_map(|p| p.steps.iter().map(|s| s.id.as_str()))
        .collect();
    let mut near: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| id.starts_with(selector.id.as_str()))
        .collect();
    if near.is_empty() {
        near = ids
            .iter()
            .copied()
            .filter(|id| edit_distance(id, &selector.id) <= 2)
            .collect();
    }
    // Both hybrid phases have most ids: name each once.
    let mut seen = std::collections::HashSet::new();
    near.retain(|id| seen.insert(*id));
    (!near.is_empty()).then(|| {
        near.iter()
            .map(|id| format!("`{id}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    })
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
pub(crate) mod sample;

#[cfg(test)]
mod tests;

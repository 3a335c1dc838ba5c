//! Strategy templates: each strategy expands into the steps of Kong's guide for it
//! (`kong-upgrade-docs/`), every numbered step and sub-step in order, with the guide's own
//! instruction and what kongup does for it. Then the plan's customisation is applied:
//! commands for template steps, inserted steps, skipped steps; and each command without
//! an executor is placed on the nodes its step acts on (`plan::placement`).

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

/// What the operator should know before the run: the path's and the strategy's warnings.
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
pub(crate) mod sample {
    //! Complete plans built straight from the model, for tests.

    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::plan::model::*;
    use crate::plan::version::KongVersion;

    fn node(name: &str, role: Role, port: u16) -> Node {
        Node {
            name: name.to_string(),
            admin_url: Some(format!("http://127.0.0.1:{port}")),
            status_url: Some(format!("http://127.0.0.1:{}", port + 1)),
            proxy_url: (role != Role::ControlPlane)
                .then(|| format!("http://127.0.0.1:{}", port + 2)),
            role,
            executor: Some("local".to_string()),
        }
    }

    fn database(name: &str) -> DatabaseSpec {
        DatabaseSpec {
            host: "127.0.0.1".to_string(),
            port: 5432,
            name: name.to_string(),
            user: "kong".to_string(),
            password: Some(SecretRef::Env("KONG_PG_PASSWORD".to_string())),
            tls: Default::default(),
        }
    }

    fn cluster(prefix: &str, mode: Mode, base_port: u16, db: Option<DatabaseSpec>) -> Cluster {
        let nodes = match mode {
            Mode::Traditional => vec![
                node(&format!("{prefix}-1"), Role::Traditional, base_port),
                node(&format!("{prefix}-2"), Role::Traditional, base_port + 10),
            ],
            Mode::Dbless => vec![node(&format!("{prefix}-1"), Role::Traditional, base_port)],
            Mode::Hybrid => vec![
                node(&format!("{prefix}-cp"), Role::ControlPlane, base_port),
                node(&format!("{prefix}-dp-1"), Role::DataPlane, base_port + 10),
                node(&format!("{prefix}-dp-2"), Role::DataPlane, base_port + 20),
            ],
        };
        Cluster {
            nodes,
            database: db,
        }
    }

    /// A plan that the loader would accept, for `mode` and `strategy`, from 3.4.1 to 3.4.3.
    /// It names a (manual) traffic driver except in traditional in-place, the one case
    /// that may leave it out.
    pub(crate) fn plan(mode: Mode, strategy: StrategyChoice) -> Plan {
        let fixed = match strategy {
            StrategyChoice::Fixed(s) => Some(s),
            StrategyChoice::Auto { .. } => None,
        };
        let x_db = (mode != Mode::Dbless).then(|| database("kong"));
        let y_db = if fixed.is_some_and(Strategy::y_has_own_database) {
            Some(database("kong_y"))
        } else {
            x_db.clone()
        };
        Plan {
            name: "sample".to_string(),
            from: KongVersion::new(3, 4, 1),
            to: KongVersion::new(3, 4, 3),
            mode,
            database: if mode == Mode::Dbless {
                DatabaseKind::Off
            } else {
                DatabaseKind::Postgres
            },
            strategy,
            clusters: Clusters {
                x: cluster("x", mode, 18000, x_db),
                y: cluster("y", mode, 19000, y_db),
            },
            admin: AdminAccess::default(),
            executors: BTreeMap::from([("local".to_string(), ExecutorSpec::Local)]),
            traffic: TrafficSpec {
                driver: TrafficDriverSpec::Manual,
                driver_given: fixed.is_none_or(|s| s.shifts_traffic(mode)),
                schedule: vec![1, 5, 25, 50, 100],
                bake: Duration::from_secs(300),
                auto_advance: false,
            },
            gates: GateSpec {
                window: Duration::from_secs(60),
                max_error_ratio: Some(0.01),
                max_p99_ms: Some(500.0),
                max_error_ratio_delta: None,
                max_p99_ratio: Some(1.5),
                min_requests: 100,
                consecutive_breaches: 3,
                on_fail: FailAction::Pause,
            },
            smoke_tests: vec![SmokeTest {
                name: "key-auth rejects anonymous".to_string(),
                method: "GET".to_string(),
                path: "/echo".to_string(),
                headers: BTreeMap::new(),
                secret_headers: BTreeMap::new(),
                body: None,
                expect_status: 401,
                expect_headers: BTreeMap::new(),
                expect_body_contains: None,
            }],
            migrations: MigrationsSpec {
                kong_binary: "kong".to_string(),
                extra_args: vec![],
                db_timeout: 600,
                force: false,
                timeout: Duration::from_secs(3600),
            },
            backup: BackupSpec::default(),
            steps: StepCustomisation::default(),
            command_timeout: Duration::from_secs(300),
        }
    }

    pub(crate) fn argv(words: &[&str]) -> CommandSpec {
        CommandSpec {
            program: CommandLine::Argv(words.iter().map(|w| w.to_string()).collect()),
            executor: None,
            timeout: None,
            node: None,
        }
    }

    pub(crate) fn select(id: &str) -> StepSelector {
        StepSelector {
            phase: None,
            id: id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::sample::{argv, plan, select};
    use super::*;
    use crate::plan::model::{ExecutorSpec, SkippedStep, StepOverride};
    use crate::plan::steps::{ClusterSide, MigrationsCommand, RollbackKind};

    fn fixed(mode: Mode, strategy: Strategy) -> ExpandedPlan {
        expand(&plan(mode, StrategyChoice::Fixed(strategy))).unwrap()
    }

    fn ids(phase: &Phase) -> Vec<&str> {
        phase.steps.iter().map(|s| s.id.as_str()).collect()
    }

    fn refs(phase: &Phase) -> Vec<&str> {
        phase.steps.iter().map(|s| s.guide_ref.as_str()).collect()
    }

    fn step<'a>(phase: &'a Phase, id: &str) -> &'a Step {
        phase
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("no step {id} in {}", phase.name))
    }

    const SHIFTS: [&str; 5] = [
        "shift-traffic-1",
        "shift-traffic-5",
        "shift-traffic-25",
        "shift-traffic-50",
        "shift-traffic-100",
    ];

    #[test]
    fn dual_cluster_has_every_guide_step_in_order() {
        let expanded = fixed(Mode::Traditional, Strategy::DualCluster);
        assert_eq!(expanded.phases.len(), 1);
        let phase = &expanded.phases[0];
        assert_eq!(phase.name, PhaseName::Cluster);
        assert_eq!(phase.strategy, Strategy::DualCluster);
        let mut expected = vec![
            "preflight",
            "freeze-writes",
            "backup",
            "review-considerations",
            "review-breaking-changes",
            "deploy-y",
            "provision-db-y",
            "restore-db",
            "configure-y",
            "migrations-up",
            "migrations-finish",
            "start-y",
            "staging-tests",
        ];
        expected.extend(SHIFTS);
        expected.extend(["monitor", "go-no-go", "decommission-x", "resume-writes"]);
        assert_eq!(ids(phase), expected);
        // The migrations are kongup's: the guide leaves them implicit between 5.4 and 5.5.
        let mut guide = vec![
            "", "1", "2", "3", "4", "5.1", "5.2", "5.3", "5.4", "", "", "5.5", "5.6",
        ];
        guide.extend(["6"; 5]);
        guide.extend(["7", "8", "9", ""]);
        assert_eq!(refs(phase), guide);
        assert!(matches!(
            step(phase, "restore-db").kind,
            StepKind::RestoreDatabase
        ));
        assert!(!step(phase, "restore-db").irreversible);
    }

    #[test]
    fn in_place_has_every_guide_step_in_order_and_no_traffic_shift() {
        let expanded = fixed(Mode::Traditional, Strategy::InPlace);
        let phase = &expanded.phases[0];
        assert_eq!(
            ids(phase),
            [
                "preflight",
                "freeze-writes",
                "backup",
                "review-considerations",
                "review-breaking-changes",
                "stop-x",
                "deploy-y",
                "migrations-up",
                "migrations-finish",
                "start-y",
                "staging-tests",
                "monitor",
                "go-no-go",
                "decommission-x",
                "resume-writes"
            ]
        );
        assert_eq!(
            refs(phase),
            [
                "", "1", "2", "3", "4", "5", "6", "7", "8", "9", "", "10", "11", "12", ""
            ]
        );
        assert!(
            !phase
                .steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }))
        );
    }

    #[test]
    fn in_place_with_a_traffic_driver_sends_the_traffic_to_y_once_it_is_started_and_tested() {
        let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        p.traffic.driver_given = true;
        p.traffic.bake = Duration::from_secs(42);
        let expanded = expand(&p).unwrap();
        let phase = &expanded.phases[0];
        let order = ids(phase);
        let at = |id: &str| order.iter().position(|s| *s == id).unwrap();
        // After start-y and Y's smoke tests, before the monitoring.
        assert_eq!(at("start-y") + 1, at("staging-tests"));
        assert_eq!(at("staging-tests") + 1, at("switch-traffic"));
        assert_eq!(at("switch-traffic") + 1, at("monitor"));
        let switch = step(phase, "switch-traffic");
        assert_eq!(
            switch.kind,
            StepKind::ShiftTraffic {
                y_percent: 100,
                bake: Duration::from_secs(42)
            }
        );
        assert_eq!(switch.guide_ref, "");
        assert!(switch.changes && !switch.irreversible);
        assert!(switch.instruction.contains("X 0% / Y 100%"));
        assert!(
            switch
                .instruction
                .contains("restored from the backup and X started again"),
            "{}",
            switch.instruction
        );
        let rollback = switch.rollback.as_ref().unwrap();
        assert_eq!(rollback.kind, RollbackKind::TrafficToX);
        assert!(rollback.instruction.contains("database is restored"));
        assert!(
            step(phase, "start-y")
                .instruction
                .contains("switch-traffic")
        );
        // The other guide steps keep their order around it.
        let mut without: Vec<&str> = order.clone();
        without.retain(|id| *id != "switch-traffic");
        assert_eq!(
            without,
            ids(&fixed(Mode::Traditional, Strategy::InPlace).phases[0])
        );

        // Without a driver Y takes X's addresses: no step moves traffic, and start-y says so.
        p.traffic.driver_given = false;
        let expanded = expand(&p).unwrap();
        assert!(!ids(&expanded.phases[0]).contains(&"switch-traffic"));
        assert!(
            step(&expanded.phases[0], "start-y")
                .instruction
                .contains("names no traffic driver")
        );

        // Hybrid control planes carry no proxy traffic, driver or not.
        let hybrid = fixed(Mode::Hybrid, Strategy::InPlace);
        assert!(!ids(&hybrid.phases[0]).contains(&"switch-traffic"));
    }

    #[test]
    fn blue_green_has_every_guide_step_in_order() {
        let expanded = fixed(Mode::Traditional, Strategy::BlueGreen);
        let phase = &expanded.phases[0];
        let mut expected = vec![
            "preflight",
            "freeze-writes",
            "backup-db",
            "backup-declarative",
            "backup-keyring",
            "backup-static",
            "review-considerations",
            "review-breaking-changes",
            "deploy-y",
            "migrations-up",
            "start-y",
            "staging-tests",
        ];
        expected.extend(SHIFTS);
        expected.extend([
            "monitor",
            "go-no-go",
            "migrations-finish",
            "decommission-x",
            "resume-writes",
        ]);
        assert_eq!(ids(phase), expected);
        let mut guide = vec![
            "", "1", "2.1", "2.2", "2.3", "2.4", "3", "", "4.1", "4.2", "4.3", "4.4",
        ];
        guide.extend(["5"; 5]);
        guide.extend(["6", "7", "8", "9", ""]);
        assert_eq!(refs(phase), guide);
    }

    #[test]
    fn rolling_has_every_guide_step_in_order() {
        let expanded = fixed(Mode::Dbless, Strategy::Rolling);
        let phase = &expanded.phases[0];
        assert_eq!(phase.name, PhaseName::Cluster);
        let mut expected = vec![
            "preflight",
            "freeze-writes",
            "backup",
            "review-considerations",
            "review-breaking-changes",
            "deploy-y",
            "staging-tests",
            "scale-y",
        ];
        expected.extend(SHIFTS);
        expected.extend(["monitor", "go-no-go", "decommission-x", "resume-writes"]);
        assert_eq!(ids(phase), expected);
        assert!(matches!(
            step(phase, "backup").kind,
            StepKind::Backup(crate::plan::steps::BackupKind::Declarative)
        ));
    }

    #[test]
    fn migrations_finish_is_irreversible_in_in_place_and_blue_green() {
        for strategy in [Strategy::InPlace, Strategy::BlueGreen] {
            let expanded = fixed(Mode::Traditional, strategy);
            let finish = step(&expanded.phases[0], "migrations-finish");
            assert_eq!(finish.kind, StepKind::Migrations(MigrationsCommand::Finish));
            assert!(finish.irreversible && finish.changes);
            assert!(
                finish
                    .irreversible_because
                    .as_deref()
                    .unwrap()
                    .contains("can no longer use this database")
            );
            let rollback = finish.rollback.as_ref().unwrap();
            assert_eq!(rollback.kind, RollbackKind::RestoreDatabase);
            assert!(rollback.irreversible);
            // `up` alone keeps X working.
            assert!(!step(&expanded.phases[0], "migrations-up").irreversible);
        }
    }

    #[test]
    fn dual_cluster_migrates_ys_database_before_starting_y_and_it_is_reversible() {
        for mode in [Mode::Traditional, Mode::Hybrid] {
            let expanded = fixed(mode, Strategy::DualCluster);
            let phase = &expanded.phases[0];
            let order = ids(phase);
            let at = |id: &str| order.iter().position(|s| *s == id).unwrap();
            assert_eq!(at("configure-y") + 1, at("migrations-up"), "{mode:?}");
            assert_eq!(at("migrations-up") + 1, at("migrations-finish"), "{mode:?}");
            assert_eq!(at("migrations-finish") + 1, at("start-y"), "{mode:?}");
            let up = step(phase, "migrations-up");
            let finish = step(phase, "migrations-finish");
            assert_eq!(up.kind, StepKind::Migrations(MigrationsCommand::Up));
            assert_eq!(finish.kind, StepKind::Migrations(MigrationsCommand::Finish));
            for migrations in [up, finish] {
                assert_eq!(migrations.guide_ref, "", "{mode:?}");
                assert!(migrations.changes);
                // X keeps its own database: nothing here is the point of no return, and a
                // rollback has nothing to restore (X's database was never migrated).
                assert!(!migrations.irreversible, "{mode:?} {}", migrations.id);
                assert_eq!(migrations.rollback, None, "{mode:?} {}", migrations.id);
                assert!(
                    migrations.instruction.contains("leaves it implicit"),
                    "{}",
                    migrations.instruction
                );
            }
            assert!(finish.instruction.contains("not the point of no return"));
            assert!(finish.instruction.contains("restore-db"));
        }
    }

    #[test]
    fn decommissioning_hybrid_control_planes_says_their_data_planes_stay() {
        for strategy in [
            Strategy::DualCluster,
            Strategy::InPlace,
            Strategy::BlueGreen,
        ] {
            let expanded = fixed(Mode::Hybrid, strategy);
            let because = |phase: &Phase| {
                step(phase, "decommission-x")
                    .irreversible_because
                    .clone()
                    .unwrap()
            };
            let control_planes = because(&expanded.phases[0]);
            assert!(
                control_planes.contains("X's data planes keep proxying"),
                "{strategy:?}: {control_planes}"
            );
            let data_planes = because(&expanded.phases[1]);
            assert!(
                data_planes.contains("no old cluster to send traffic back to"),
                "{strategy:?}: {data_planes}"
            );
        }
    }

    #[test]
    fn decommission_is_irreversible_everywhere() {
        for (mode, strategy) in [
            (Mode::Traditional, Strategy::DualCluster),
            (Mode::Traditional, Strategy::InPlace),
            (Mode::Traditional, Strategy::BlueGreen),
            (Mode::Dbless, Strategy::Rolling),
            (Mode::Hybrid, Strategy::DualCluster),
        ] {
            for phase in &fixed(mode, strategy).phases {
                let step = step(phase, "decommission-x");
                assert!(step.irreversible, "{mode:?} {strategy:?} {}", phase.name);
                assert!(step.irreversible_because.is_some());
                assert_eq!(
                    step.kind,
                    StepKind::Decommission {
                        cluster: ClusterSide::X
                    }
                );
            }
        }
    }

    #[test]
    fn rollback_counterparts() {
        let dual = fixed(Mode::Traditional, Strategy::DualCluster);
        let phase = &dual.phases[0];
        let kind = |id: &str| step(phase, id).rollback.as_ref().map(|r| r.kind.clone());
        assert_eq!(kind("freeze-writes"), Some(RollbackKind::UnfreezeWrites));
        assert_eq!(
            kind("deploy-y"),
            Some(RollbackKind::StopNodes {
                cluster: ClusterSide::Y
            })
        );
        assert_eq!(
            kind("start-y"),
            Some(RollbackKind::StopNodes {
                cluster: ClusterSide::Y
            })
        );
        for id in SHIFTS {
            assert_eq!(kind(id), Some(RollbackKind::TrafficToX));
        }
        for id in [
            "backup",
            "review-considerations",
            "staging-tests",
            "monitor",
        ] {
            assert_eq!(kind(id), None, "{id}");
        }
        let in_place = fixed(Mode::Traditional, Strategy::InPlace);
        assert_eq!(
            step(&in_place.phases[0], "stop-x")
                .rollback
                .as_ref()
                .map(|r| r.kind.clone()),
            Some(RollbackKind::StartNodes {
                cluster: ClusterSide::X
            })
        );
    }

    #[test]
    fn shift_traffic_follows_the_schedule_with_the_bake() {
        let mut p = plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::DualCluster),
        );
        p.traffic.schedule = vec![10, 100];
        p.traffic.bake = Duration::from_secs(42);
        let expanded = expand(&p).unwrap();
        let shifts: Vec<&Step> = expanded.phases[0]
            .steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::ShiftTraffic { .. }))
            .collect();
        assert_eq!(shifts.len(), 2);
        assert_eq!(shifts[0].id, "shift-traffic-10");
        assert_eq!(
            shifts[1].kind,
            StepKind::ShiftTraffic {
                y_percent: 100,
                bake: Duration::from_secs(42)
            }
        );
        assert!(shifts[0].instruction.contains("X 90% / Y 10%"));
    }

    #[test]
    fn every_step_has_a_title_and_an_instruction_with_kongups_part() {
        for (mode, strategy) in [
            (Mode::Traditional, Strategy::DualCluster),
            (Mode::Traditional, Strategy::InPlace),
            (Mode::Traditional, Strategy::BlueGreen),
            (Mode::Dbless, Strategy::Rolling),
            (Mode::Hybrid, Strategy::DualCluster),
            (Mode::Hybrid, Strategy::InPlace),
            (Mode::Hybrid, Strategy::BlueGreen),
        ] {
            let expanded = fixed(mode, strategy);
            for (phase, step) in expanded.steps() {
                let at = format!("{mode:?} {strategy:?} {}/{}", phase.name, step.id);
                assert!(!step.title.is_empty(), "{at}");
                assert!(step.instruction.contains("kongup"), "{at}");
                assert!(!step.instruction.contains("{{"), "{at}");
                assert_eq!(
                    step.irreversible,
                    step.irreversible_because.is_some(),
                    "{at}"
                );
                if step.irreversible {
                    assert!(step.changes, "{at}");
                }
            }
            // Ids are unique within each phase.
            for phase in &expanded.phases {
                let mut seen = std::collections::HashSet::new();
                for step in &phase.steps {
                    assert!(
                        seen.insert(&step.id),
                        "duplicate {} in {}",
                        step.id,
                        phase.name
                    );
                }
            }
        }
    }

    #[test]
    fn hybrid_has_control_plane_then_data_plane_with_compat_check_first() {
        for strategy in [
            Strategy::DualCluster,
            Strategy::InPlace,
            Strategy::BlueGreen,
        ] {
            let expanded = fixed(Mode::Hybrid, strategy);
            let names: Vec<PhaseName> = expanded.phases.iter().map(|p| p.name).collect();
            assert_eq!(names, [PhaseName::ControlPlane, PhaseName::DataPlane]);
            assert_eq!(expanded.phases[0].strategy, strategy);
            assert_eq!(expanded.phases[1].strategy, Strategy::Rolling);
            let cp = &expanded.phases[0];
            let dp = &expanded.phases[1];
            assert_eq!(dp.steps[0].id, "compat-check");
            assert_eq!(dp.steps[0].kind, StepKind::CompatibilityCheck);
            // Control planes proxy nothing: no traffic split, no proxy smoke tests there.
            assert!(
                !cp.steps.iter().any(|s| matches!(
                    s.kind,
                    StepKind::ShiftTraffic { .. } | StepKind::SmokeTests
                )),
                "{strategy:?}"
            );
            assert_eq!(step(dp, "staging-tests").kind, StepKind::SmokeTests);
            // Writes are frozen once, in the control-plane phase, and lifted at the very end.
            assert_eq!(step(cp, "freeze-writes").kind, StepKind::FreezeWrites);
            assert!(!dp.steps.iter().any(|s| s.kind == StepKind::FreezeWrites));
            assert_eq!(step(dp, "writes-frozen").kind, StepKind::Manual);
            assert!(!step(dp, "writes-frozen").changes);
            assert!(!cp.steps.iter().any(|s| s.id == "resume-writes"));
            assert_eq!(dp.steps.last().unwrap().id, "resume-writes");
            // The data planes' configuration was backed up with the control planes.
            assert!(
                !dp.steps
                    .iter()
                    .any(|s| matches!(s.kind, StepKind::Backup(_)))
            );
            assert!(expanded.strategy_reason.contains("data planes roll"));
        }
        let dp_ids = ids(&fixed(Mode::Hybrid, Strategy::InPlace).phases[1]).join(" ");
        assert_eq!(
            dp_ids,
            "compat-check writes-frozen deploy-y staging-tests scale-y shift-traffic-1 shift-traffic-5 shift-traffic-25 shift-traffic-50 shift-traffic-100 monitor go-no-go decommission-x resume-writes"
        );
    }

    #[test]
    fn hybrid_control_plane_phases_follow_their_guides() {
        let cp_ids = |strategy| ids(&fixed(Mode::Hybrid, strategy).phases[0]).join(" ");
        assert_eq!(
            cp_ids(Strategy::DualCluster),
            "preflight freeze-writes backup review-considerations review-breaking-changes deploy-y provision-db-y restore-db configure-y migrations-up migrations-finish start-y staging-tests switch-control-plane monitor go-no-go decommission-x"
        );
        assert_eq!(
            cp_ids(Strategy::InPlace),
            "preflight freeze-writes backup review-considerations review-breaking-changes stop-x deploy-y migrations-up migrations-finish start-y staging-tests monitor go-no-go decommission-x"
        );
        assert_eq!(
            cp_ids(Strategy::BlueGreen),
            "preflight freeze-writes backup-db backup-declarative backup-keyring backup-static review-considerations review-breaking-changes deploy-y migrations-up start-y staging-tests switch-control-plane monitor go-no-go migrations-finish decommission-x"
        );
        let expanded = fixed(Mode::Hybrid, Strategy::DualCluster);
        let switch = step(&expanded.phases[0], "switch-control-plane");
        assert_eq!(switch.guide_ref, "6");
        assert_eq!(
            switch.rollback.as_ref().map(|r| r.kind.clone()),
            Some(RollbackKind::Manual)
        );
    }

    #[test]
    fn hybrid_control_planes_are_watched_by_hand_and_data_planes_by_the_gates() {
        for strategy in [
            Strategy::DualCluster,
            Strategy::InPlace,
            Strategy::BlueGreen,
        ] {
            let expanded = fixed(Mode::Hybrid, strategy);
            let cp_monitor = step(&expanded.phases[0], "monitor");
            assert_eq!(cp_monitor.kind, StepKind::Manual, "{strategy:?}");
            assert!(
                cp_monitor.title.contains("data planes' sync"),
                "{strategy:?}"
            );
            let dp_monitor = step(&expanded.phases[1], "monitor");
            assert!(
                matches!(dp_monitor.kind, StepKind::Monitor { .. }),
                "{strategy:?}"
            );
        }
        let traditional = fixed(Mode::Traditional, Strategy::DualCluster);
        assert!(matches!(
            step(&traditional.phases[0], "monitor").kind,
            StepKind::Monitor { .. }
        ));
    }

    #[test]
    fn auto_uses_the_chooser_and_says_why() {
        let expanded = expand(&plan(
            Mode::Traditional,
            StrategyChoice::Auto {
                spare_capacity: false,
            },
        ))
        .unwrap();
        // 3.4.1 -> 3.4.3 is a patch upgrade from >= 2.8.2.
        assert_eq!(expanded.phases[0].strategy, Strategy::BlueGreen);
        assert!(expanded.strategy_reason.starts_with("Chosen by kongup"));
        assert!(expanded.strategy_reason.contains("patch upgrade"));
        let expanded = expand(&plan(
            Mode::Hybrid,
            StrategyChoice::Auto {
                spare_capacity: true,
            },
        ))
        .unwrap();
        assert_eq!(expanded.phases[0].strategy, Strategy::DualCluster);
        assert_eq!(expanded.phases[1].strategy, Strategy::Rolling);
    }

    #[test]
    fn fixed_strategy_reason_and_warnings() {
        let expanded = fixed(Mode::Traditional, Strategy::InPlace);
        assert!(
            expanded
                .strategy_reason
                .starts_with("The plan names in-place")
        );
        assert!(
            expanded
                .warnings
                .iter()
                .any(|w| w.contains("proxy is down"))
        );
        let expanded = fixed(Mode::Traditional, Strategy::DualCluster);
        assert!(expanded.warnings.iter().any(|w| w.contains("not synced")));
    }

    #[test]
    fn path_warnings_reach_the_plan() {
        let mut p = plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::DualCluster),
        );
        p.to = "3.9.0".parse().unwrap();
        let expanded = expand(&p).unwrap();
        assert!(
            expanded
                .warnings
                .iter()
                .any(|w| w.contains("not a guaranteed upgrade path")),
            "{:?}",
            expanded.warnings
        );
        p.from = "1.5.0".parse().unwrap();
        p.to = "3.4.0".parse().unwrap();
        let expanded = expand(&p).unwrap();
        assert!(
            expanded.warnings[0].contains("stop at 2.8.0"),
            "{:?}",
            expanded.warnings
        );
    }

    #[test]
    fn override_gives_a_step_commands_and_timeout() {
        let mut p = plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::DualCluster),
        );
        let mut with_own_timeout = argv(&["systemctl", "start", "kong"]);
        with_own_timeout.timeout = Some(Duration::from_secs(5));
        p.steps.overrides.push(StepOverride {
            step: select("start-y"),
            commands: vec![argv(&["true"]), with_own_timeout],
            timeout: Some(Duration::from_secs(60)),
            builtin: true,
        });
        let expanded = expand(&p).unwrap();
        let start = step(&expanded.phases[0], "start-y");
        // Neither command names an executor: each runs on both Y nodes, node by node.
        let placed: Vec<(Option<&str>, Option<Duration>)> = start
            .commands
            .iter()
            .map(|c| (c.node.as_deref(), c.timeout))
            .collect();
        let (step_default, own) = (Duration::from_secs(60), Duration::from_secs(5));
        assert_eq!(
            placed,
            [
                (Some("y-1"), Some(step_default)),
                (Some("y-2"), Some(step_default)),
                (Some("y-1"), Some(own)),
                (Some("y-2"), Some(own)),
            ]
        );
        assert!(
            start
                .instruction
                .contains("runs the commands the plan gives this step")
        );
        // The kind keeps its automation.
        assert!(matches!(start.kind, StepKind::StartNodes { .. }));
    }

    #[test]
    fn commands_without_an_executor_run_on_the_nodes_of_the_phase() {
        let mut p = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::InPlace));
        p.executors
            .insert("dp-1-host".to_string(), ExecutorSpec::Local);
        p.clusters.y.nodes[1].executor = Some("dp-1-host".to_string());
        p.clusters.y.nodes[2].executor = None;
        let given = |phase, id: &str| StepOverride {
            step: StepSelector {
                phase: Some(phase),
                id: id.to_string(),
            },
            commands: vec![argv(&["true"])],
            timeout: None,
            builtin: true,
        };
        p.steps.overrides = vec![
            given(PhaseName::ControlPlane, "deploy-y"),
            given(PhaseName::DataPlane, "deploy-y"),
            given(PhaseName::ControlPlane, "migrations-up"),
            given(PhaseName::ControlPlane, "review-considerations"),
        ];
        let expanded = expand(&p).unwrap();
        let placed = |phase: usize, id: &str| -> Vec<(Option<String>, Option<String>)> {
            step(&expanded.phases[phase], id)
                .commands
                .iter()
                .map(|c| (c.node.clone(), c.executor.clone()))
                .collect()
        };
        let on = |node: &str, executor: &str| (Some(node.to_string()), Some(executor.to_string()));
        assert_eq!(placed(0, "deploy-y"), [on("y-cp", "local")]);
        assert_eq!(
            placed(1, "deploy-y"),
            [on("y-dp-1", "dp-1-host"), on("y-dp-2", "local")]
        );
        assert_eq!(placed(0, "migrations-up"), [on("y-cp", "local")]);
        assert_eq!(placed(0, "review-considerations"), [(None, None)]);
    }

    #[test]
    fn insert_before_and_after_keep_plan_order() {
        let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        let insert = |id: &str, position: InsertPosition, commands| InsertedStep {
            position,
            id: id.to_string(),
            title: format!("Inserted {id}"),
            instruction: "Drain the node from the pool.".to_string(),
            commands,
            changes: true,
            irreversible: false,
        };
        p.steps.inserts = vec![
            insert(
                "drain-x",
                InsertPosition::Before(select("stop-x")),
                vec![argv(&["kong", "drain"])],
            ),
            insert("notify", InsertPosition::After(select("start-y")), vec![]),
            insert(
                "page-team",
                InsertPosition::After(select("start-y")),
                vec![],
            ),
            insert(
                "check-drain",
                InsertPosition::After(select("drain-x")),
                vec![],
            ),
        ];
        let expanded = expand(&p).unwrap();
        let phase = &expanded.phases[0];
        let order = ids(phase);
        let at = |id: &str| order.iter().position(|s| *s == id).unwrap();
        assert_eq!(at("drain-x") + 1, at("check-drain"));
        assert_eq!(at("check-drain") + 1, at("stop-x"));
        assert_eq!(at("start-y") + 1, at("notify"));
        assert_eq!(at("notify") + 1, at("page-team"));
        let drain = step(phase, "drain-x");
        assert_eq!(drain.kind, StepKind::Manual);
        assert_eq!(drain.guide_ref, "");
        assert!(drain.changes);
        assert_eq!(drain.commands.len(), 1);
        assert!(drain.instruction.starts_with("Drain the node"));
        assert!(drain.instruction.contains("runs the commands"));
        assert!(step(phase, "notify").instruction.contains("do it yourself"));
    }

    #[test]
    fn skip_sets_the_reason() {
        let mut p = plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::DualCluster),
        );
        p.steps.skips.push(SkippedStep {
            step: select("review-considerations"),
            reason: "read during the change review".to_string(),
        });
        let expanded = expand(&p).unwrap();
        assert_eq!(
            step(&expanded.phases[0], "review-considerations")
                .skip_reason
                .as_deref(),
            Some("read during the change review")
        );
        assert_eq!(step(&expanded.phases[0], "backup").skip_reason, None);
    }

    #[test]
    fn unknown_ids_are_errors_with_valid_ids_and_every_error_is_reported() {
        let mut p = plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::DualCluster),
        );
        p.steps.skips.push(SkippedStep {
            step: select("shift-traffic"),
            reason: "x".to_string(),
        });
        p.steps.overrides.push(StepOverride {
            step: select("strat-y"),
            commands: vec![argv(&["true"])],
            timeout: None,
            builtin: true,
        });
        p.steps.inserts.push(InsertedStep {
            position: InsertPosition::After(StepSelector {
                phase: Some(PhaseName::DataPlane),
                id: "deploy-y".to_string(),
            }),
            id: "extra".to_string(),
            title: "Extra".to_string(),
            instruction: String::new(),
            commands: vec![],
            changes: false,
            irreversible: false,
        });
        let errors = expand(&p).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        let by_entry = |entry| errors.iter().find(|e| e.entry == entry).unwrap();
        let skip = by_entry(CustomisationEntry::Skip(0));
        assert_eq!(skip.message, "no step `shift-traffic` in this plan");
        assert!(
            skip.hint.contains("did you mean `shift-traffic-1`"),
            "{}",
            skip.hint
        );
        assert!(
            skip.hint
                .contains("valid step ids: preflight, freeze-writes")
        );
        let over = by_entry(CustomisationEntry::Override(0));
        assert!(
            over.hint.contains("did you mean `start-y`"),
            "{}",
            over.hint
        );
        let insert = by_entry(CustomisationEntry::Insert(0));
        assert!(
            insert.message.contains("no data-plane phase"),
            "{}",
            insert.message
        );
        assert!(insert.hint.contains("its phases are: cluster"));
        assert!(errors[0].to_string().contains("hint:"));
    }

    #[test]
    fn bare_id_in_both_hybrid_phases_is_ambiguous() {
        let mut p = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::DualCluster));
        p.steps.skips.push(SkippedStep {
            step: select("decommission-x"),
            reason: "later".to_string(),
        });
        p.steps.skips.push(SkippedStep {
            step: select("monitr"),
            reason: "typo".to_string(),
        });
        let errors = expand(&p).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(
            errors[1]
                .hint
                .starts_with("did you mean `monitor`? valid steps"),
            "{}",
            errors[1].hint
        );
        assert!(
            errors[0].message.contains("ambiguous"),
            "{}",
            errors[0].message
        );
        assert!(
            errors[0]
                .hint
                .contains("control-plane/decommission-x or data-plane/decommission-x"),
            "{}",
            errors[0].hint
        );
        // Naming the phase works; so does a bare id only one phase has.
        p.steps.skips.pop();
        p.steps.skips[0].step.phase = Some(PhaseName::ControlPlane);
        p.steps.skips.push(SkippedStep {
            step: select("compat-check"),
            reason: "checked by hand".to_string(),
        });
        let expanded = expand(&p).unwrap();
        let cp = &expanded.phases[0];
        let dp = &expanded.phases[1];
        assert!(step(cp, "decommission-x").skip_reason.is_some());
        assert!(step(dp, "decommission-x").skip_reason.is_none());
        assert!(step(dp, "compat-check").skip_reason.is_some());
    }

    #[test]
    fn conflicting_customisation_is_refused() {
        let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        let over = |commands| StepOverride {
            step: select("stop-x"),
            commands,
            timeout: Some(Duration::from_secs(1)),
            builtin: true,
        };
        p.steps.overrides = vec![over(vec![argv(&["a"])]), over(vec![argv(&["b"])])];
        p.steps.inserts.push(InsertedStep {
            position: InsertPosition::Before(select("backup")),
            id: "monitor".to_string(),
            title: "Clash".to_string(),
            instruction: String::new(),
            commands: vec![],
            changes: false,
            irreversible: false,
        });
        let errors = expand(&p).unwrap_err();
        let entries: Vec<CustomisationEntry> = errors.iter().map(|e| e.entry).collect();
        assert_eq!(
            entries,
            [
                CustomisationEntry::Insert(0),
                CustomisationEntry::Override(1)
            ]
        );
        assert!(errors[0].message.contains("already used"));
        assert!(errors[1].message.contains("steps.overrides[0]"));

        let mut p = plan(Mode::Traditional, StrategyChoice::Fixed(Strategy::InPlace));
        p.steps.overrides = vec![over(vec![])];
        let errors = expand(&p).unwrap_err();
        assert!(errors[0].message.contains("timeout but no commands"));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("start-y", "strat-y"), 2);
        assert_eq!(edit_distance("backup", "backup"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

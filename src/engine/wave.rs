//! A wave confirmed as one (issue 17, "each wave is a group of steps, confirmed as one"):
//! the steps of a wave of `rolling:` (start Y, the staging tests after the first, the
//! traffic stage and its bake, stop X) run in turn after one confirm. Pure: which steps
//! make a wave, whether a step's success goes on into the next, and what the confirm of a
//! wave's step says it will run. The engine's side is `run/step.rs` (`continue_wave`).
//!
//! A wave goes on only where an operator's confirm would have found nothing to weigh: it
//! pauses on a failed step or node, a bake that did not pass its gates (a breach, an
//! inconclusive bake, or no gate source to judge it), a Y found unfit for more traffic, a
//! step done by hand (its confirm is the operator's word that it was done), an
//! irreversible step, a pause, a rollback or a quit. `rolling.confirm: each-step` turns it
//! off.

use super::event::StepState;
use super::journal::step_key;
use super::view::RunView;
use crate::metrics::WaveScope;
use crate::plan::model::{Plan, WaveConfirm};
use crate::plan::steps::{ClusterSide, ExpandedPlan, StepKind, StepRef};
use crate::plan::waves::{fleet, max_unavailable, rolling_phase, waves};

/// The wave a step belongs to: its number, how many waves there are, and its steps in
/// run order (from `wave-N-start-y` to the wave's last step, with whatever the plan puts
/// between them: the staging tests after wave 1's start, an inserted step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveSteps {
    pub number: usize,
    pub count: usize,
    pub steps: Vec<StepRef>,
}

impl WaveSteps {
    /// 1-based position of `step` in the wave.
    pub fn position(&self, step: &StepRef) -> Option<usize> {
        self.steps.iter().position(|s| s == step).map(|i| i + 1)
    }
}

/// Whether one confirm runs a wave's steps in turn: the plan rolls in waves and does not
/// say `rolling.confirm: each-step`.
pub fn confirmed_as_one(plan: &Plan) -> bool {
    plan.rolling
        .as_ref()
        .is_some_and(|r| r.confirm == WaveConfirm::Wave)
}

/// The wave `step` is a step of, if any.
pub fn wave_of(expanded: &ExpandedPlan, step: &StepRef) -> Option<WaveSteps> {
    let phase = expanded.phases.iter().find(|p| p.name == step.phase)?;
    let ids: Vec<&str> = phase.steps.iter().map(|s| s.id.as_str()).collect();
    let at = ids.iter().position(|id| *id == step.id)?;
    let count = ids
        .iter()
        .filter(|id| wave_number(id, "start-y").is_some())
        .count();
    // The nearest wave start at or before the step, and that wave's last own step.
    let (first, number) = ids[..=at]
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, id)| wave_number(id, "start-y").map(|n| (i, n)))?;
    let prefix = format!("wave-{number}-");
    let last = ids.iter().rposition(|id| id.starts_with(&prefix))?;
    (at <= last).then(|| WaveSteps {
        number,
        count,
        steps: ids[first..=last]
            .iter()
            .map(|id| StepRef::new(step.phase, *id))
            .collect(),
    })
}

/// `N` of `wave-N-<what>`.
fn wave_number(id: &str, what: &str) -> Option<usize> {
    id.strip_prefix("wave-")?
        .strip_suffix(what)?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// The wave a step key (`phase/id`) is in, read from the id alone (`wave-N-…`), for
/// readers without the plan (the report); `None` for the staging tests and inserted steps.
pub fn wave_number_of_key(key: &str) -> Option<usize> {
    let id = key.rsplit('/').next()?;
    let rest = id.strip_prefix("wave-")?;
    let (n, _) = rest.split_once('-')?;
    n.parse().ok()
}

/// Whether `next` is the step that `done`'s success goes on into without a confirm: the
/// plan confirms waves as one and `next` comes after `done` in the same wave.
pub fn goes_on_into(plan: &Plan, expanded: &ExpandedPlan, done: &StepRef, next: &StepRef) -> bool {
    if !confirmed_as_one(plan) {
        return false;
    }
    let Some(wave) = wave_of(expanded, done) else {
        return false;
    };
    matches!(
        (wave.position(done), wave.position(next)),
        (Some(a), Some(b)) if b > a
    )
}

/// How the run's toolbox runs a step of a wave, beyond what the plan says: what decides
/// whether the wave goes on into it, or past it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveStepRuns {
    /// Nothing runs: the operator does it (`Toolbox::by_hand`).
    pub by_hand: bool,
    /// A bake with no gate source to judge it (`Toolbox::gates` is `None`): it only counts
    /// down, and the wave does not go on past it.
    pub bakes_without_gates: bool,
}

/// What the confirm of `step` says when it runs more of its wave: the steps it runs in
/// turn (up to a step done by hand or irreversible, which waits for its own confirm, or
/// past a bake no gate judges), the nodes each starts or stops, Y's share after it, and
/// where it pauses. Empty when the confirm runs `step` alone. Says only what the engine's
/// `continue_wave` will do.
pub fn confirm_lines(
    plan: &Plan,
    expanded: &ExpandedPlan,
    step: &StepRef,
    runs_of: impl Fn(&StepRef) -> WaveStepRuns,
) -> Vec<String> {
    if !confirmed_as_one(plan) || rolling_phase(plan.mode) != Some(step.phase) {
        return Vec::new();
    }
    let Some(wave) = wave_of(expanded, step) else {
        return Vec::new();
    };
    let from = wave.position(step).unwrap_or(1);
    let rest = &wave.steps[from - 1..];
    // The confirmed step runs whatever it is; the wave goes on only into steps that run
    // something and can be undone, and never past a bake no gate judged.
    let goes_on = rest
        .windows(2)
        .take_while(|pair| {
            let (done, next) = (runs_of(&pair[0]), runs_of(&pair[1]));
            !done.bakes_without_gates
                && !next.by_hand
                && expanded.step(&pair[1]).is_some_and(|d| !d.irreversible)
        })
        .count();
    if goes_on == 0 {
        return Vec::new();
    }
    let runs = &rest[..=goes_on];
    let resolved = waves(plan);
    let this = resolved.iter().find(|w| w.number == wave.number);
    // rolling.max_unavailable bounds a node step's batches (actions::kong::nodes).
    let bound = max_unavailable(plan)
        .map(|n| format!(", at most {n} at a time"))
        .unwrap_or_default();
    let drained = plan.rolling.as_ref().and_then(|r| r.drain).map(|d| {
        format!(
            ", each drained first (rolling.drain, up to {})",
            humantime::format_duration(d)
        )
    });
    let mut lines = vec![format!(
        "This confirm runs wave {}/{} as one: {}",
        wave.number,
        wave.count,
        runs.iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    )];
    for s in runs {
        let Some(details) = expanded.step(s) else {
            continue;
        };
        let what = match (&details.kind, this) {
            (StepKind::StartNodes { .. }, Some(w)) => {
                format!("starts {} of Y's nodes{bound}", w.y_nodes.len())
            }
            (StepKind::StopNodes { .. }, Some(w)) => format!(
                "stops {} of X's nodes{bound}{}",
                w.x_nodes.len(),
                drained.as_deref().unwrap_or_default()
            ),
            (StepKind::ShiftTraffic { y_percent, bake }, _) => format!(
                "Y to {y_percent}% of traffic, baked {} {}",
                humantime::format_duration(*bake),
                if runs_of(s).bakes_without_gates {
                    "with no gate source (it only counts down)"
                } else {
                    "with the gates"
                }
            ),
            _ => details.title.clone(),
        };
        lines.push(format!("  {}: {what}", s.id));
    }
    if let Some(next) = rest.get(goes_on + 1) {
        let last = &rest[goes_on];
        lines.push(if runs_of(last).bakes_without_gates {
            format!("{next} waits for its own confirm: no gate judges {last}'s bake.")
        } else {
            format!("{next} waits for its own confirm: it is done by hand or cannot be undone.")
        });
    }
    lines.push(
        "It pauses, for you to decide, on a failed step or node, a gate breach or a bake \
         that is not a pass, or a Y not fit for more traffic; R stops it at once."
            .to_string(),
    );
    lines
}

/// The nodes the gates judge now (issue 17: "bake with the gates comparing this wave's Y
/// nodes with the X nodes still serving"): the latest wave whose traffic stage has started
/// and whose X nodes are not yet stopped (its stop step not done; the last wave, which
/// stops none, while its stage is not done). Y: that wave's Y nodes; X: the rolling
/// fleet's X nodes that no done stop step stopped (a stop step's nodes done count as
/// stopped even when it failed elsewhere); both without the nodes taken out. `None` (the
/// whole clusters) outside waves, after the last, and while a rollback runs.
pub fn gate_scope(plan: &Plan, expanded: &ExpandedPlan, view: &RunView) -> Option<WaveScope> {
    let phase = rolling_phase(plan.mode)?;
    if view.rollback_active() {
        return None;
    }
    let resolved = waves(plan);
    let key = |number: usize, what: &str| {
        let step = StepRef::new(phase, format!("wave-{number}-{what}"));
        expanded.step(&step).map(|_| step_key(&step))
    };
    let wave = resolved.iter().rev().find(|w| {
        let Some(traffic) = key(w.number, "traffic") else {
            return false;
        };
        let stop = key(w.number, "stop-x");
        match view.state_of(&traffic) {
            StepState::Running | StepState::Failed | StepState::Interrupted => true,
            StepState::Succeeded => stop.is_some_and(|stop| {
                !matches!(
                    view.state_of(&stop),
                    StepState::Succeeded | StepState::Skipped
                )
            }),
            _ => false,
        }
    })?;
    let kept = |node: &String| !view.taken_out.contains_key(node);
    let mut stopped = std::collections::BTreeSet::new();
    for w in &resolved {
        let Some(record) = key(w.number, "stop-x").and_then(|stop| view.record(&stop)) else {
            continue;
        };
        match record.state {
            StepState::Succeeded => stopped.extend(w.x_nodes.iter().cloned()),
            StepState::RolledBack | StepState::Skipped => {}
            _ => stopped.extend(record.nodes_done()),
        }
    }
    Some(WaveScope {
        wave: wave.number,
        waves: resolved.len(),
        y: wave.y_nodes.iter().filter(|n| kept(n)).cloned().collect(),
        x: fleet(plan, ClusterSide::X)
            .into_iter()
            .map(|n| n.name.clone())
            .filter(|n| kept(n) && !stopped.contains(n))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::journal::{Entry, Record, StepInfo, StepResult};
    use crate::plan::load::parse_plan;
    use crate::plan::steps::PhaseName;

    /// Hybrid, eight data planes a side in waves [1, 50%, 100%]; `extra`: more of
    /// `rolling:`.
    fn plan(extra: &str) -> (Plan, ExpandedPlan) {
        let dps = |side: &str| {
            (1..=8)
                .map(|i| format!("      - {{name: dp-{side}-{i}, role: data_plane}}\n"))
                .collect::<String>()
        };
        let text = format!(
            "name: waves\nfrom: 3.4.3\nto: 3.10.0\nmode: hybrid\nstrategy: in-place\n\
             clusters:\n  x:\n    nodes:\n      - {{name: cp-x, role: control_plane, \
             admin_url: \"http://127.0.0.1:9\"}}\n{}    database: {{host: pg.internal}}\n  \
             y:\n    nodes:\n      - {{name: cp-y, role: control_plane, admin_url: \
             \"http://127.0.0.1:9\"}}\n{}traffic:\n  driver: {{type: manual}}\nrolling:\n  \
             waves: [1, 50%, 100%]\n  between_waves: 1m\n{extra}",
            dps("x"),
            dps("y")
        );
        let loaded = parse_plan(&text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
        (loaded.plan, loaded.expanded)
    }

    fn dp(id: &str) -> StepRef {
        StepRef::new(PhaseName::DataPlane, id)
    }

    /// A step that runs something, its bake judged by the gates.
    fn runs() -> WaveStepRuns {
        WaveStepRuns::default()
    }

    #[test]
    fn a_wave_runs_from_its_start_to_its_last_step_with_the_staging_tests_in_wave_1() {
        let (_, expanded) = plan("");
        let one = wave_of(&expanded, &dp("wave-1-traffic")).unwrap();
        assert_eq!((one.number, one.count), (1, 3));
        assert_eq!(
            one.steps,
            [
                dp("wave-1-start-y"),
                dp("staging-tests"),
                dp("wave-1-traffic"),
                dp("wave-1-stop-x")
            ]
        );
        // The last wave stops no X node: it ends at its traffic stage.
        let three = wave_of(&expanded, &dp("wave-3-start-y")).unwrap();
        assert_eq!(three.steps, [dp("wave-3-start-y"), dp("wave-3-traffic")]);
        assert_eq!(wave_of(&expanded, &dp("monitor")), None);
        assert_eq!(wave_of(&expanded, &dp("compat-check")), None);
    }

    #[test]
    fn a_step_goes_on_only_into_a_later_step_of_its_own_wave() {
        let (p, expanded) = plan("");
        assert!(goes_on_into(
            &p,
            &expanded,
            &dp("wave-1-start-y"),
            &dp("staging-tests")
        ));
        assert!(goes_on_into(
            &p,
            &expanded,
            &dp("wave-2-traffic"),
            &dp("wave-2-stop-x")
        ));
        assert!(!goes_on_into(
            &p,
            &expanded,
            &dp("wave-1-stop-x"),
            &dp("wave-2-start-y")
        ));
        assert!(!goes_on_into(
            &p,
            &expanded,
            &dp("wave-3-traffic"),
            &dp("monitor")
        ));
        let (each, expanded) = plan("  confirm: each-step\n");
        assert!(!goes_on_into(
            &each,
            &expanded,
            &dp("wave-2-traffic"),
            &dp("wave-2-stop-x")
        ));
    }

    #[test]
    fn the_first_step_s_confirm_says_what_the_wave_runs_and_where_it_pauses() {
        let (p, expanded) = plan("");
        let lines = confirm_lines(&p, &expanded, &dp("wave-2-start-y"), |_| runs());
        assert_eq!(
            lines[0],
            "This confirm runs wave 2/3 as one: wave-2-start-y → wave-2-traffic → wave-2-stop-x"
        );
        assert_eq!(lines[1], "  wave-2-start-y: starts 3 of Y's nodes");
        assert_eq!(
            lines[2],
            "  wave-2-traffic: Y to 50% of traffic, baked 1m with the gates"
        );
        assert_eq!(lines[3], "  wave-2-stop-x: stops 3 of X's nodes");
        assert!(lines[4].starts_with("It pauses"), "{}", lines[4]);
        // From the middle of a wave (after a pause), the rest of it.
        let rest = confirm_lines(&p, &expanded, &dp("wave-2-traffic"), |_| runs());
        assert!(
            rest[0].ends_with("as one: wave-2-traffic → wave-2-stop-x"),
            "{rest:?}"
        );
        assert!(confirm_lines(&p, &expanded, &dp("wave-2-stop-x"), |_| runs()).is_empty());
        // A stop done by hand waits for its own confirm, and the confirm says so.
        let manual_stop = |s: &StepRef| WaveStepRuns {
            by_hand: s.id == "wave-2-stop-x",
            ..runs()
        };
        let lines = confirm_lines(&p, &expanded, &dp("wave-2-start-y"), manual_stop);
        assert!(
            lines[0].ends_with("as one: wave-2-start-y → wave-2-traffic"),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("data-plane/wave-2-stop-x waits for its own confirm")),
            "{lines:?}"
        );
        let (each, expanded) = plan("  confirm: each-step\n");
        assert!(confirm_lines(&each, &expanded, &dp("wave-2-start-y"), |_| runs()).is_empty());
    }

    /// Each line is true in every case: a bake with no gate source to judge it stops the
    /// wave after the stage (the engine goes on only past a bake the gates passed), and a
    /// bound on nodes out of service is said on the steps it bounds.
    #[test]
    fn the_confirm_claims_no_step_the_wave_will_not_run() {
        let (p, expanded) = plan("");
        let ungated = |s: &StepRef| WaveStepRuns {
            by_hand: false,
            bakes_without_gates: s.id.ends_with("-traffic"),
        };
        let lines = confirm_lines(&p, &expanded, &dp("wave-2-start-y"), ungated);
        assert_eq!(
            lines[0],
            "This confirm runs wave 2/3 as one: wave-2-start-y → wave-2-traffic"
        );
        assert_eq!(
            lines[2],
            "  wave-2-traffic: Y to 50% of traffic, baked 1m with no gate source (it only \
             counts down)"
        );
        assert_eq!(
            lines[3],
            "data-plane/wave-2-stop-x waits for its own confirm: no gate judges \
             data-plane/wave-2-traffic's bake."
        );
        // From the stage on, the confirm runs the stage alone: no wave lines.
        assert!(confirm_lines(&p, &expanded, &dp("wave-2-traffic"), ungated).is_empty());

        let (p, expanded) = plan("  max_unavailable: 2\n");
        let lines = confirm_lines(&p, &expanded, &dp("wave-2-start-y"), |_| {
            WaveStepRuns::default()
        });
        assert_eq!(
            lines[1],
            "  wave-2-start-y: starts 3 of Y's nodes, at most 2 at a time"
        );
        assert_eq!(
            lines[3],
            "  wave-2-stop-x: stops 3 of X's nodes, at most 2 at a time"
        );
    }

    #[test]
    fn the_report_reads_the_wave_from_the_step_key() {
        assert_eq!(wave_number_of_key("data-plane/wave-12-stop-x"), Some(12));
        assert_eq!(wave_number_of_key("data-plane/staging-tests"), None);
        assert_eq!(wave_number_of_key("cluster/wave-x"), None);
    }

    /// Folds `entries` after the run's creation into a view of the plan's run.
    fn view_after(expanded: &ExpandedPlan, entries: Vec<Entry>) -> RunView {
        let steps = expanded
            .steps()
            .map(|(phase, step)| StepInfo {
                step: step_key(&StepRef::new(phase.name, step.id.clone())),
                title: step.title.clone(),
                kind: step.kind.as_str().to_string(),
                changes: step.changes,
                irreversible: step.irreversible,
                y_percent: None,
            })
            .collect();
        let created = Entry::RunCreated {
            run_id: "r".into(),
            plan_name: "waves".into(),
            plan_sha256: "h".into(),
            plan_text: "t".into(),
            steps,
            kongup_version: "0".into(),
        };
        let records: Vec<Record> = std::iter::once(created)
            .chain(entries)
            .enumerate()
            .map(|(seq, entry)| Record {
                seq: seq as u64,
                at: chrono::Utc::now(),
                by: "op@host".into(),
                entry,
            })
            .collect();
        RunView::replay(&records).unwrap()
    }

    fn started(id: &str) -> Entry {
        Entry::StepStarted {
            step: format!("data-plane/{id}"),
            attempt: 1,
            runs: Vec::new(),
        }
    }

    fn finished(id: &str, result: StepResult) -> Entry {
        Entry::StepFinished {
            step: format!("data-plane/{id}"),
            attempt: 1,
            result,
            detail: None,
            duration_ms: 1,
            last_lines: Vec::new(),
        }
    }

    fn done(id: &str) -> Vec<Entry> {
        vec![started(id), finished(id, StepResult::Succeeded)]
    }

    fn names(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
        range.map(|i| format!("{prefix}-{i}")).collect()
    }

    fn scope_of(entries: Vec<Entry>) -> Option<(usize, Vec<String>, Vec<String>)> {
        let (p, expanded) = plan("");
        gate_scope(&p, &expanded, &view_after(&expanded, entries))
            .map(|s| (s.wave, s.y.into_iter().collect(), s.x.into_iter().collect()))
    }

    #[test]
    fn the_gates_judge_the_baking_wave_s_y_nodes_against_the_x_nodes_still_serving() {
        // Before any wave bakes: the whole clusters.
        assert_eq!(scope_of(done("wave-1-start-y")), None);
        // Wave 1's stage: its one Y node against all of X.
        let mut entries = done("wave-1-start-y");
        entries.push(started("wave-1-traffic"));
        assert_eq!(
            scope_of(entries.clone()),
            Some((1, names("dp-y", 1..=1), names("dp-x", 1..=8)))
        );
        // Wave 2's stage, with dp-y-3 taken out at its start: wave 1's X node is stopped.
        entries.push(finished("wave-1-traffic", StepResult::Succeeded));
        entries.extend(done("wave-1-stop-x"));
        entries.extend(done("wave-2-start-y"));
        entries.push(Entry::NodeTakenOut {
            step: "data-plane/wave-2-start-y".into(),
            node: "dp-y-3".into(),
            reason: "disk".into(),
        });
        entries.push(started("wave-2-traffic"));
        let wave_2 = Some((
            2,
            vec!["dp-y-2".to_string(), "dp-y-4".to_string()],
            names("dp-x", 2..=8),
        ));
        assert_eq!(scope_of(entries.clone()), wave_2);
        // A failed bake keeps the wave's scope: its retry judges the same nodes.
        entries.push(finished("wave-2-traffic", StepResult::Failed));
        assert_eq!(scope_of(entries.clone()), wave_2);
        entries.extend(done("wave-2-traffic"));
        // Its stop failed on dp-x-3 only: dp-x-2 no longer serves.
        entries.push(started("wave-2-stop-x"));
        for (node, ok) in [("dp-x-2", true), ("dp-x-3", false), ("dp-x-4", true)] {
            entries.push(Entry::NodeOutcome {
                step: "data-plane/wave-2-stop-x".into(),
                attempt: 1,
                node: node.into(),
                ok,
                reason: (!ok).then(|| "timeout".into()),
            });
        }
        entries.push(finished("wave-2-stop-x", StepResult::Failed));
        let (_, _, x) = scope_of(entries.clone()).expect("still wave 2");
        assert_eq!(x, ["dp-x-3", "dp-x-5", "dp-x-6", "dp-x-7", "dp-x-8"]);
        // Between waves: the whole clusters again.
        entries.extend(done("wave-2-stop-x"));
        assert_eq!(scope_of(entries.clone()), None);
        // The last wave against the X nodes left (at 100 % to Y they serve nothing: the
        // relative gates find no baseline).
        entries.extend(done("wave-3-start-y"));
        entries.push(started("wave-3-traffic"));
        assert_eq!(
            scope_of(entries.clone()),
            Some((3, names("dp-y", 5..=8), names("dp-x", 5..=8)))
        );
        // A rollback: the whole clusters.
        entries.push(Entry::RollbackRequested {
            reason: "operator".into(),
        });
        assert_eq!(scope_of(entries), None);
    }
}

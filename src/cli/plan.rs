//! `kongup plan PLAN`: the steps the plan expands into, phase by phase.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::kong::migrations::build_command;
use crate::plan::load::load_plan;
use crate::plan::model::{CommandSpec, Plan, WaveConfirm};
use crate::plan::placement::command_runs;
use crate::plan::steps::ClusterSide;
use crate::plan::steps::{ExpandedPlan, Phase, Step, StepKind};
use crate::plan::version::KongVersion;
use crate::plan::waves::{fleet, max_unavailable, rolling_phase, waves};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The plan file (YAML) to expand; see docs/plan.md for the format.
    pub plan: PathBuf,
    /// Print JSON: {"name","from","to","mode","phases":[{"name","strategy","steps":[{"id",
    /// "title","kind","irreversible","changes",…}]}],…}
    #[arg(long)]
    pub json: bool,
}

/// Prints the expanded plan; exit 0, or 1 with every error when the plan does not load.
pub fn run(args: PlanArgs) -> color_eyre::Result<i32> {
    let loaded = match load_plan(&args.plan) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            let count = errors.diagnostics.len();
            eprintln!(
                "{}: {count} {}; fix the plan (kongup validate checks it) and try again",
                args.plan.display(),
                if count == 1 { "error" } else { "errors" }
            );
            return Ok(1);
        }
    };
    if args.json {
        println!("{}", render_json(&loaded.plan, &loaded.expanded)?);
    } else {
        print!("{}", render_text(&loaded.plan, &loaded.expanded));
    }
    Ok(0)
}

/// The JSON form. The first fields are the documented ones; the rest follow them.
#[derive(Serialize)]
struct PlanJson<'a> {
    name: &'a str,
    from: KongVersion,
    to: KongVersion,
    mode: &'static str,
    phases: Vec<PhaseJson<'a>>,
    database: &'static str,
    strategy_reason: &'a str,
    warnings: &'a [String],
    /// `rolling:`'s waves, resolved to nodes; empty when the plan has none.
    waves: Vec<WaveJson>,
    /// `rolling:`'s settings as the run applies them (defaults filled in); `None` when the
    /// plan has no `rolling:`.
    rolling: Option<RollingJson>,
}

#[derive(Serialize)]
struct RollingJson {
    /// As written: a number of nodes (`"1"`) or a share of Y's fleet (`"50%"`).
    waves: Vec<String>,
    between_waves: String,
    /// `wave` (one confirm runs a wave's steps) or `each-step`.
    confirm: &'static str,
    drain: Option<String>,
    /// As written, and resolved to nodes (`plan::waves::max_unavailable`).
    max_unavailable: Option<String>,
    max_unavailable_nodes: Option<usize>,
}

fn rolling_json(plan: &Plan) -> Option<RollingJson> {
    let rolling = plan.rolling.as_ref()?;
    let duration = |d| humantime::format_duration(d).to_string();
    Some(RollingJson {
        waves: rolling.waves.iter().map(ToString::to_string).collect(),
        between_waves: duration(rolling.between_waves),
        confirm: rolling.confirm.as_str(),
        drain: rolling.drain.map(duration),
        max_unavailable: rolling.max_unavailable.map(|m| m.to_string()),
        max_unavailable_nodes: max_unavailable(plan),
    })
}

#[derive(Serialize)]
struct WaveJson {
    number: usize,
    y_nodes: Vec<String>,
    x_nodes: Vec<String>,
    y_percent: u8,
}

#[derive(Serialize)]
struct PhaseJson<'a> {
    name: &'static str,
    strategy: &'static str,
    steps: Vec<StepJson<'a>>,
}

#[derive(Serialize)]
struct StepJson<'a> {
    id: &'a str,
    title: &'a str,
    kind: &'static str,
    irreversible: bool,
    changes: bool,
    guide_ref: &'a str,
    instruction: &'a str,
    irreversible_because: Option<&'a str>,
    rollback: Option<&'a str>,
    commands: Vec<CommandJson<'a>>,
    skip_reason: Option<&'a str>,
}

/// One command as it will run: a command the plan gave a node step without an executor
/// appears once per node.
#[derive(Serialize)]
struct CommandJson<'a> {
    run: String,
    executor: &'a str,
    node: Option<&'a str>,
    timeout: String,
}

fn command_json<'a>(plan: &Plan, command: &'a CommandSpec) -> CommandJson<'a> {
    CommandJson {
        run: command.program.display(),
        executor: command.executor.as_deref().unwrap_or("local"),
        node: command.node.as_deref(),
        timeout: humantime::format_duration(command.timeout.unwrap_or(plan.command_timeout))
            .to_string(),
    }
}

fn step_json<'a>(plan: &Plan, step: &'a Step) -> StepJson<'a> {
    StepJson {
        id: &step.id,
        title: &step.title,
        kind: step.kind.as_str(),
        irreversible: step.irreversible,
        changes: step.changes,
        guide_ref: &step.guide_ref,
        instruction: &step.instruction,
        irreversible_because: step.irreversible_because.as_deref(),
        rollback: step.rollback.as_ref().map(|r| r.title.as_str()),
        commands: step
            .commands
            .iter()
            .map(|c| command_json(plan, c))
            .collect(),
        skip_reason: step.skip_reason.as_deref(),
    }
}

/// `kongup plan --json`.
pub fn render_json(plan: &Plan, expanded: &ExpandedPlan) -> serde_json::Result<String> {
    let json = PlanJson {
        name: &plan.name,
        from: plan.from,
        to: plan.to,
        mode: plan.mode.as_str(),
        phases: expanded
            .phases
            .iter()
            .map(|phase| PhaseJson {
                name: phase.name.as_str(),
                strategy: phase.strategy.as_str(),
                steps: phase.steps.iter().map(|s| step_json(plan, s)).collect(),
            })
            .collect(),
        database: plan.database.as_str(),
        strategy_reason: &expanded.strategy_reason,
        warnings: &expanded.warnings,
        waves: waves(plan)
            .into_iter()
            .map(|w| WaveJson {
                number: w.number,
                y_nodes: w.y_nodes,
                x_nodes: w.x_nodes,
                y_percent: w.y_percent,
            })
            .collect(),
        rolling: rolling_json(plan),
    };
    serde_json::to_string_pretty(&json)
}

/// `kongup plan`: phases, numbered steps with their guide reference and markers, the
/// strategy's reason and the warnings.
pub fn render_text(plan: &Plan, expanded: &ExpandedPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan {}: Kong {} -> {}, {} mode, database {}",
        plan.name,
        plan.from,
        plan.to,
        plan.mode.as_str(),
        plan.database.as_str()
    );
    let _ = writeln!(out, "Strategy: {}", expanded.strategy_reason);
    for warning in &expanded.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let id_width = expanded.steps().map(|(_, s)| s.id.len()).max().unwrap_or(0);
    for phase in &expanded.phases {
        out.push('\n');
        render_phase(&mut out, plan, phase, id_width);
    }
    let _ = writeln!(
        out,
        "\n* changes something   ! irreversible (confirmed by typing the plan's name)   - skipped"
    );
    out
}

fn render_phase(out: &mut String, plan: &Plan, phase: &Phase, id_width: usize) {
    let _ = writeln!(
        out,
        "Phase {} ({}), {} steps:",
        phase.name,
        phase.strategy.as_str(),
        phase.steps.len()
    );
    if rolling_phase(plan.mode) == Some(phase.name) {
        render_waves(out, plan);
    }
    for (n, step) in phase.steps.iter().enumerate() {
        let markers = format!(
            "{}{}{}",
            if step.changes { '*' } else { ' ' },
            if step.irreversible { '!' } else { ' ' },
            if step.skip_reason.is_some() { '-' } else { ' ' },
        );
        let guide = if step.guide_ref.is_empty() {
            String::new()
        } else {
            format!("[{}]", step.guide_ref)
        };
        let _ = writeln!(
            out,
            "{:>3}. {markers} {guide:<6} {:<id_width$}  {}",
            n + 1,
            step.id,
            step.title
        );
        let indent = " ".repeat(5 + markers.len() + 1 + 6 + 1);
        if let Some(reason) = &step.skip_reason {
            let _ = writeln!(out, "{indent}skipped: {reason}");
        }
        if let (StepKind::Migrations(command), true) = (&step.kind, step.builtin) {
            let _ = writeln!(
                out,
                "{indent}kongup runs: {}",
                build_command(&plan.migrations, *command).display()
            );
        }
        for run in command_runs(&step.commands) {
            let places: Vec<String> = run
                .iter()
                .map(|command| {
                    let executor = command.executor.as_deref().unwrap_or("local");
                    match &command.node {
                        Some(node) => format!("{node} (executor {executor})"),
                        None => format!("executor {executor}"),
                    }
                })
                .collect();
            let _ = writeln!(out, "{indent}runs: {}", run[0].program.display());
            let _ = writeln!(out, "{indent}  on {}", places.join(", "));
        }
    }
}

/// The waves of a plan that rolls in them: each with the nodes it starts and stops.
fn render_waves(out: &mut String, plan: &Plan) {
    let (Some(rolling), waves) = (&plan.rolling, waves(plan)) else {
        return;
    };
    let written: Vec<String> = rolling.waves.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "Waves (rolling.waves [{}], each baked {} before the next; {}):",
        written.join(", "),
        humantime::format_duration(rolling.between_waves),
        match rolling.confirm {
            WaveConfirm::Wave => "one confirm runs a wave's steps",
            WaveConfirm::EachStep => "each step confirmed",
        }
    );
    if let Some(drain) = rolling.drain {
        let _ = writeln!(
            out,
            "  each X node drained before its stop: `kong drain`, then up to {} for its \
             /status/ready to answer 503 with no request in flight (rolling.drain)",
            humantime::format_duration(drain)
        );
    }
    if let (Some(share), Some(nodes)) = (rolling.max_unavailable, max_unavailable(plan)) {
        let _ = writeln!(
            out,
            "  at most {nodes} node{} out of service at once (rolling.max_unavailable: {share})",
            if nodes == 1 { "" } else { "s" }
        );
    }
    let count = waves.len();
    for wave in &waves {
        let _ = writeln!(
            out,
            "  wave {}/{count}: Y to {}% of traffic; starts Y {}; stops X {}",
            wave.number,
            wave.y_percent,
            names(&wave.y_nodes),
            names(&wave.x_nodes)
        );
    }
    let stopped: usize = waves.iter().map(|w| w.x_nodes.len()).sum();
    let left = fleet(plan, ClusterSide::X).len().saturating_sub(stopped);
    if left > 0 {
        let _ = writeln!(
            out,
            "  X's other {left} stay up, taking no traffic, until decommission-x: R still has \
             an X to send traffic back to"
        );
    }
}

fn names(nodes: &[String]) -> String {
    if nodes.is_empty() {
        "none".to_string()
    } else {
        format!("({}) {}", nodes.len(), nodes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{Mode, SkippedStep, StepOverride, Strategy, StrategyChoice};
    use crate::plan::templates::expand;
    use crate::plan::templates::sample::{argv, plan, select};

    #[test]
    fn json_has_the_documented_shape_in_order() {
        let plan = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::InPlace));
        let expanded = expand(&plan).unwrap();
        let text = render_json(&plan, &expanded).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["name"], "sample");
        assert_eq!(json["from"], "3.4.1");
        assert_eq!(json["to"], "3.4.3");
        assert_eq!(json["mode"], "hybrid");
        let phases = json["phases"].as_array().unwrap();
        assert_eq!(phases[0]["name"], "control-plane");
        assert_eq!(phases[0]["strategy"], "in-place");
        assert_eq!(phases[1]["name"], "data-plane");
        assert_eq!(phases[1]["strategy"], "rolling");
        let finish = phases[0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "migrations-finish")
            .unwrap();
        assert_eq!(finish["kind"], "migrations-finish");
        assert_eq!(finish["irreversible"], true);
        assert_eq!(finish["changes"], true);
        // Documented keys come first, in the documented order.
        let keys = |from: &str, of: &[&str]| {
            let positions: Vec<usize> = of.iter().map(|k| from.find(k).unwrap()).collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{of:?}");
        };
        keys(
            &text,
            &["\"name\"", "\"from\"", "\"to\"", "\"mode\"", "\"phases\""],
        );
        let first_step = text.find("\"steps\"").unwrap();
        keys(
            &text[first_step..],
            &[
                "\"id\"",
                "\"title\"",
                "\"kind\"",
                "\"irreversible\"",
                "\"changes\"",
            ],
        );
    }

    #[test]
    fn text_numbers_steps_by_phase_with_markers() {
        let mut plan = plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::BlueGreen),
        );
        plan.steps.skips.push(SkippedStep {
            step: select("backup-keyring"),
            reason: "keyring not enabled".to_string(),
        });
        plan.steps.overrides.push(StepOverride {
            step: select("deploy-y"),
            commands: vec![argv(&["systemctl", "start", "kong-y"])],
            timeout: None,
            builtin: true,
        });
        let expanded = expand(&plan).unwrap();
        let text = render_text(&plan, &expanded);
        assert!(text.starts_with("Plan sample: Kong 3.4.1 -> 3.4.3, traditional mode"));
        assert!(text.contains("Strategy: The plan names blue-green"));
        assert!(text.contains("Phase cluster (blue-green)"));
        let line = |id: &str| {
            text.lines()
                .find(|l| l.split_whitespace().any(|w| w == id))
                .unwrap_or_else(|| panic!("no line for {id} in\n{text}"))
                .to_string()
        };
        assert!(
            line("preflight").starts_with("  1.    "),
            "{}",
            line("preflight")
        );
        let finish = line("migrations-finish");
        assert!(finish.contains("*! "), "{finish}");
        assert!(finish.contains("[8]"), "{finish}");
        assert!(line("backup-keyring").contains("  - [2.3]"));
        assert!(text.contains("skipped: keyring not enabled"));
        assert!(text.contains("runs: systemctl start kong-y"));
        // No executor: it runs on each of Y's nodes, on the node's executor.
        let runs = text
            .lines()
            .position(|l| l.trim() == "runs: systemctl start kong-y")
            .unwrap();
        assert_eq!(
            text.lines().nth(runs + 1).unwrap().trim(),
            "on y-1 (executor local), y-2 (executor local)"
        );
    }

    #[test]
    fn text_shows_both_hybrid_phases_and_warnings() {
        let mut plan = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::DualCluster));
        plan.to = "3.9.0".parse().unwrap();
        let expanded = expand(&plan).unwrap();
        let text = render_text(&plan, &expanded);
        let cp = text.find("Phase control-plane (dual-cluster)").unwrap();
        let dp = text.find("Phase data-plane (rolling)").unwrap();
        assert!(cp < dp);
        assert!(text.contains("warning: 3.4.1 -> 3.9.0 is allowed but not a guaranteed"));
    }

    #[test]
    fn text_and_json_show_each_wave_with_its_nodes() {
        let mut plan = plan(Mode::Hybrid, StrategyChoice::Fixed(Strategy::InPlace));
        plan.rolling = Some(crate::plan::model::RollingSpec {
            waves: vec![
                crate::plan::model::Share::Nodes(1),
                crate::plan::model::Share::Percent(100),
            ],
            between_waves: std::time::Duration::from_secs(120),
            confirm: Default::default(),
            drain: None,
            max_unavailable: None,
        });
        let expanded = expand(&plan).unwrap();
        let text = render_text(&plan, &expanded);
        assert!(
            text.contains(
                "Waves (rolling.waves [1, 100%], each baked 2m before the next; one confirm runs \
                 a wave's steps):"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  wave 1/2: Y to 50% of traffic; starts Y (1) y-dp-1; stops X (1) x-dp-1"
            ),
            "{text}"
        );
        assert!(
            text.contains("  wave 2/2: Y to 100% of traffic; starts Y (1) y-dp-2; stops X none")
        );
        assert!(text.contains("  X's other 1 stay up, taking no traffic, until decommission-x"));
        // The waves come with the phase that rolls, not the control planes'.
        assert!(text.find("Waves").unwrap() > text.find("Phase data-plane").unwrap());
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&plan, &expanded).unwrap()).unwrap();
        assert_eq!(json["waves"][0]["y_nodes"][0], "y-dp-1");
        assert_eq!(json["waves"][0]["x_nodes"][0], "x-dp-1");
        assert_eq!(json["waves"][1]["x_nodes"].as_array().unwrap().len(), 0);
        assert_eq!(json["waves"][1]["y_percent"], 100);
    }
}

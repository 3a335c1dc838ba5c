//! `kongup validate PLAN`: checks a plan file and says what it would do, or every problem.

use std::path::PathBuf;

use crate::plan::load::load_plan;
use crate::plan::model::StrategyChoice;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The plan file (YAML) to check; see docs/plan.md for the format.
    pub plan: PathBuf,
}

/// Exit 0 with a one-line summary when the plan is valid, 1 with every problem otherwise.
pub fn run(args: ValidateArgs) -> color_eyre::Result<i32> {
    let loaded = match load_plan(&args.plan) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            let count = errors.diagnostics.len();
            eprintln!(
                "{}: {count} {}; the plan was not accepted",
                args.plan.display(),
                if count == 1 { "error" } else { "errors" }
            );
            return Ok(1);
        }
    };
    let plan = &loaded.plan;
    let expanded = &loaded.expanded;
    let strategies = expanded
        .phases
        .iter()
        .map(|phase| {
            if expanded.phases.len() == 1 {
                phase.strategy.as_str().to_string()
            } else {
                format!("{} {}", phase.name, phase.strategy.as_str())
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = match plan.strategy {
        StrategyChoice::Auto { .. } => " (chosen by auto)",
        StrategyChoice::Fixed(_) => "",
    };
    let steps = expanded.steps().count();
    let warnings = expanded.warnings.len();
    println!(
        "{}: valid: \"{}\" {} -> {}, {} mode, strategy {strategies}{chosen}, {steps} {}, {warnings} {}",
        args.plan.display(),
        plan.name,
        plan.from,
        plan.to,
        plan.mode.as_str(),
        if steps == 1 { "step" } else { "steps" },
        if warnings == 1 { "warning" } else { "warnings" },
    );
    for warning in &expanded.warnings {
        println!("  warning: {warning}");
    }
    Ok(0)
}

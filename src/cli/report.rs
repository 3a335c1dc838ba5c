//! `kongup report`: the audit report of a run, read from its journal.

use std::path::PathBuf;

use crate::engine::report::{build_report, render_markdown};
use crate::engine::status::read_run;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run directory (as given to `kongup run --journal`).
    #[arg(long, value_name = "DIR", conflicts_with = "plan")]
    pub journal: Option<PathBuf>,
    /// Find the run of this plan file under the default state directory. Without
    /// --journal or --plan: the run there whose journal changed last.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Markdown for people, JSON for tools.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
}

/// Exit 0 with the report, 1 when there is no readable run.
pub fn run(args: ReportArgs) -> color_eyre::Result<i32> {
    let run_dir = match super::status::locate_run(args.journal.as_deref(), args.plan.as_deref()) {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("{error}");
            return Ok(1);
        }
    };
    let run = match read_run(&run_dir) {
        Ok(run) => run,
        Err(error) => {
            eprintln!("{error}");
            return Ok(1);
        }
    };
    let report = build_report(&run);
    let text = match args.format {
        ReportFormat::Md => render_markdown(&report),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
    };
    super::status::print_out(&text)?;
    Ok(0)
}

//! `kongup status`: where a run stands, read from its journal.

use std::path::{Path, PathBuf};

use crate::engine::rundir::{default_run_dir, default_runs_dir, most_recent_run};
use crate::engine::status::{read_run, status_json, status_text};
use crate::plan::load::load_plan;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The run directory (as given to `kongup run --journal`).
    #[arg(long, value_name = "DIR", conflicts_with = "plan")]
    pub journal: Option<PathBuf>,
    /// Find the run of this plan file under the default state directory. Without
    /// --journal or --plan: the run there whose journal changed last.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Print JSON: {"run_id","plan","state","steps":[{"id","phase","state","confirmed_by",
    /// "confirmed_at","still_running":{"command","on","pid","since","running"}|null}],
    /// "traffic":{"x","y"}|null,"locked_by":{"operator","pid","since"}|null}.
    #[arg(long)]
    pub json: bool,
}

/// The run directory chosen by `--journal`, `--plan`, or else the run whose journal
/// changed last under the default state directory.
pub fn locate_run(journal: Option<&Path>, plan: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = journal {
        return Ok(dir.to_path_buf());
    }
    if let Some(plan) = plan {
        let loaded = load_plan(plan).map_err(|errors| {
            format!(
                "{errors}\n{}: the plan has errors, so its run cannot be found",
                plan.display()
            )
        })?;
        return default_run_dir(&loaded.plan.name).ok_or_else(|| {
            "no state directory is known (HOME is not set): pass --journal DIR".into()
        });
    }
    let runs = default_runs_dir().ok_or_else(|| {
        "no state directory is known (HOME is not set): pass --journal DIR".to_string()
    })?;
    match most_recent_run(&runs) {
        Ok(Some(dir)) => Ok(dir),
        Ok(None) => Err(format!(
            "no runs under {}: pass --journal DIR or --plan PLAN",
            runs.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no runs under {}: pass --journal DIR or --plan PLAN",
            runs.display()
        )),
        Err(e) => Err(format!("could not list {}: {e}", runs.display())),
    }
}

/// Exit 0 with the status, 1 when there is no readable run.
pub fn run(args: StatusArgs) -> color_eyre::Result<i32> {
    let run_dir = match locate_run(args.journal.as_deref(), args.plan.as_deref()) {
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
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&status_json(&run))?)
    } else {
        status_text(&run)
    };
    print_out(&text)?;
    Ok(0)
}

/// Prints to stdout; a reader that went away (`| head`) is not an error.
pub fn print_out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

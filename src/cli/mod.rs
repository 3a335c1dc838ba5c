//! The command line: `kongup <command>`. Each command's work lives in its own file.

use clap::{Parser, Subcommand};

pub mod path;
pub mod plan;
pub mod report;
pub mod run;
pub mod status;
pub mod validate;

#[derive(Debug, Parser)]
#[command(
    name = "kongup",
    version,
    about = "Walks an operator through a Kong Gateway upgrade, one confirmed step at a time"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Check a plan file: every error with its line and column, or a summary when valid.
    Validate(validate::ValidateArgs),
    /// Show the upgrade path from one Kong version to another: hops, guarantees, warnings
    Path(path::PathArgs),
    /// Drive an upgrade run (new, or resumed where it stopped), one confirmed step at a time.
    Run(run::RunArgs),
    /// Where a run stands: every step, who confirmed it, the traffic split, who drives it.
    Status(status::StatusArgs),
    /// The audit report of a run: timeline, traffic changes, gate verdicts, rollback.
    Report(report::ReportArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> color_eyre::Result<i32> {
    match cli.command {
        CliCommand::Validate(args) => validate::run(args),
        CliCommand::Path(args) => path::run(args),
        CliCommand::Run(args) => run::run(args),
        CliCommand::Status(args) => status::run(args),
        CliCommand::Report(args) => report::run(args),
    }
}

//! The command line: `kongup <command>`. Each command's work lives in its own file.

use clap::{Parser, Subcommand};

pub mod db;
#[cfg(feature = "lab")]
pub mod demo;
pub mod init;
#[cfg(feature = "lab")]
pub mod lab;
pub mod notify;
pub mod path;
pub mod plan;
pub mod report;
pub mod run;
pub mod scrape;
pub mod status;
pub mod validate;
pub mod watch;

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
    /// Read a Kong database: `kongup db status`.
    Db(db::DbArgs),
    /// Probe cluster X's Admin APIs and write a plan to start from.
    Init(init::InitArgs),
    /// Check a plan file: every error with its line and column, or a summary when valid.
    Validate(validate::ValidateArgs),
    /// Show the upgrade path from one Kong version to another: hops, guarantees, warnings
    Path(path::PathArgs),
    /// Show the steps a plan expands into, phase by phase, with the strategy's reason
    Plan(plan::PlanArgs),
    /// Sample Kong /metrics endpoints twice and print requests/s, 5xx ratio and latency.
    Scrape(scrape::ScrapeArgs),
    /// Drive an upgrade run (new, or resumed where it stopped), one confirmed step at a time.
    Run(run::RunArgs),
    /// Where a run stands: every step, who confirmed it, the traffic split, who drives it.
    Status(status::StatusArgs),
    /// The audit report of a run: timeline, traffic changes, gate verdicts, rollback.
    Report(report::ReportArgs),
    /// Follow a run another kongup drives, read-only: the console, or its records as lines.
    Watch(watch::WatchArgs),
    /// Run the simulated Kong lab headless (both clusters) until interrupted.
    #[cfg(feature = "lab")]
    Lab(lab::LabArgs),
    /// Try kongup with nothing installed: a simulated Kong lab and its upgrade, step by step.
    #[cfg(feature = "lab")]
    Demo(demo::DemoArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> color_eyre::Result<i32> {
    // At fleet size a demo's or a rehearsal's lab holds thousands of sockets: a soft limit of
    // 1 024 is not enough (what the plan needs beyond the hard limit is warned about where the
    // plan is read).
    crate::fd_limit::raise();
    match cli.command {
        CliCommand::Db(args) => db::run(args),
        CliCommand::Init(args) => init::run(args),
        CliCommand::Validate(args) => validate::run(args),
        CliCommand::Path(args) => path::run(args),
        CliCommand::Plan(args) => plan::run(args),
        CliCommand::Scrape(args) => scrape::run(args),
        CliCommand::Run(args) => run::run(args),
        CliCommand::Status(args) => status::run(args),
        CliCommand::Report(args) => report::run(args),
        CliCommand::Watch(args) => watch::run(args),
        #[cfg(feature = "lab")]
        CliCommand::Lab(args) => lab::run(args),
        #[cfg(feature = "lab")]
        CliCommand::Demo(args) => demo::run(args),
    }
}

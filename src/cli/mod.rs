//! The command line: `kongup <command>`. Each command's work lives in its own file.

pub mod scrape;

use clap::{Parser, Subcommand};

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
    /// Sample Kong /metrics endpoints twice and print requests/s, 5xx ratio and latency.
    Scrape(scrape::ScrapeArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> color_eyre::Result<i32> {
    match cli.command {
        CliCommand::Scrape(args) => scrape::run(args),
    }
}

//! The command line: `kongup <command>`. Each command's work lives in its own file.

pub mod lab;

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
    /// Run the simulated Kong lab headless (both clusters) until interrupted.
    Lab(lab::LabArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> color_eyre::Result<i32> {
    match cli.command {
        CliCommand::Lab(args) => lab::run(args),
    }
}

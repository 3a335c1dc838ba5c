//! The command line: `kongup <command>`. Each command's work lives in its own file.

use clap::{Parser, Subcommand};

pub mod lab;
pub mod path;
pub mod plan;
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
    /// Run the simulated Kong lab headless (both clusters) until interrupted.
    Lab(lab::LabArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> color_eyre::Result<i32> {
    match cli.command {
        CliCommand::Validate(args) => validate::run(args),
        CliCommand::Path(args) => path::run(args),
        CliCommand::Lab(args) => lab::run(args),
    }
}

//! `kongup path FROM TO`: the upgrade path Kong's rules give, hop by hop.

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::plan::model::{DatabaseKind, Mode};
use crate::plan::path::upgrade_path;
use crate::plan::version::KongVersion;

#[derive(Debug, Args)]
pub struct PathArgs {
    /// The version cluster X runs now: MAJOR.MINOR.PATCH (open source) or
    /// MAJOR.MINOR.PATCH.BUILD (Enterprise), e.g. 3.4.3.12
    pub from: KongVersion,
    /// The version to upgrade to, in the same form
    pub to: KongVersion,
    /// The deployment mode; hybrid adds the rules for control and data planes
    #[arg(long, value_enum, default_value_t = ModeArg::Traditional)]
    pub mode: ModeArg,
    /// The database X uses [default: postgres, or off in dbless mode]
    #[arg(long, value_enum)]
    pub database: Option<DatabaseArg>,
    /// Print JSON: {"from","to","hops":[{"to","why"}],"guaranteed","warnings"}, or
    /// {"from","to","error"} when no path exists
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Traditional,
    Dbless,
    Hybrid,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Traditional => Mode::Traditional,
            ModeArg::Dbless => Mode::Dbless,
            ModeArg::Hybrid => Mode::Hybrid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatabaseArg {
    Postgres,
    Cassandra,
    Off,
}

impl From<DatabaseArg> for DatabaseKind {
    fn from(database: DatabaseArg) -> Self {
        match database {
            DatabaseArg::Postgres => DatabaseKind::Postgres,
            DatabaseArg::Cassandra => DatabaseKind::Cassandra,
            DatabaseArg::Off => DatabaseKind::Off,
        }
    }
}

#[derive(Serialize)]
struct Refusal {
    from: KongVersion,
    to: KongVersion,
    error: String,
}

/// Prints the path; exit code 0 when one exists, 1 when none does.
pub fn run(args: PathArgs) -> color_eyre::Result<i32> {
    let mode = Mode::from(args.mode);
    let database = args
        .database
        .map_or_else(|| mode.default_database(), DatabaseKind::from);
    match upgrade_path(args.from, args.to, mode, database) {
        Ok(path) => {
            if args.json {
                println!("{}", serde_json::to_string(&path)?);
            } else {
                print!("{path}");
            }
            Ok(0)
        }
        Err(refused) => {
            if args.json {
                let refusal = Refusal {
                    from: args.from,
                    to: args.to,
                    error: refused.to_string(),
                };
                println!("{}", serde_json::to_string(&refusal)?);
            } else {
                eprintln!(
                    "No upgrade path from {} to {}: {refused}",
                    args.from, args.to
                );
            }
            Ok(1)
        }
    }
}

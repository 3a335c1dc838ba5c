//! `kongup db status`: the migration state of a Kong database, read from `schema_meta`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::kong::pg::{self, PgTarget};
use crate::kong::schema::{SchemaState, SubsystemState};

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Show executed and pending migrations per subsystem. Exit codes follow `kong
    /// migrations list`: 0 nothing pending, 3 needs bootstrap, 4 pending migrations
    /// (`kong migrations finish` needed), 1 error.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The database, as postgres://USER@HOST:PORT/DATABASE (or `host=… dbname=…`). Never put
    /// the password here: it comes from the variable named by --password-env.
    #[arg(long, value_name = "URL")]
    pub pg: String,
    /// The environment variable holding the database password.
    #[arg(long, value_name = "VAR", default_value = "PGPASSWORD")]
    pub password_env: String,
    /// Seconds to wait for the connection and for each query.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Print JSON: {"needs_bootstrap", "subsystems": [{"subsystem", "last_executed",
    /// "executed", "pending"}], "pending_total"}.
    #[arg(long)]
    pub json: bool,
}

/// The JSON `kongup db status --json` prints.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    pub needs_bootstrap: bool,
    pub subsystems: &'a [SubsystemState],
    pub pending_total: usize,
}

pub fn run(args: DbArgs) -> color_eyre::Result<i32> {
    match args.command {
        DbCommand::Status(status) => run_status(status),
    }
}

fn run_status(args: StatusArgs) -> color_eyre::Result<i32> {
    let mut target = match PgTarget::from_url(&args.pg, &args.password_env) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("kongup db status: {e}");
            return Ok(1);
        }
    };
    target.connect_timeout = Duration::from_secs(args.timeout.max(1));
    target.query_timeout = Duration::from_secs(args.timeout.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let state = match runtime.block_on(pg::schema_state(&target)) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("kongup db status: {e}");
            return Ok(1);
        }
    };
    if args.json {
        let report = StatusReport {
            needs_bootstrap: state.needs_bootstrap,
            subsystems: &state.subsystems,
            pending_total: state.pending_total(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&target, &state));
    }
    Ok(exit_code(&state))
}

fn exit_code(state: &SchemaState) -> i32 {
    if state.needs_bootstrap {
        3
    } else if state.pending_total() > 0 {
        4
    } else {
        0
    }
}

/// The human-readable report.
pub fn render(target: &PgTarget, state: &SchemaState) -> String {
    let mut out = format!("database {}\n", target.describe());
    if state.needs_bootstrap {
        out.push_str(
            "needs bootstrap: no schema_meta table or no core row. Either this is not Kong's database, or `kong migrations bootstrap` never ran.\n",
        );
        return out;
    }
    out.push_str(&format!(
        "schema generation (core.last_executed): {}\n",
        state.core_generation().unwrap_or("unknown")
    ));
    let width = state
        .subsystems
        .iter()
        .map(|s| s.subsystem.len())
        .max()
        .unwrap_or(4);
    for s in &state.subsystems {
        out.push_str(&format!(
            "  {:width$}  executed {:>3}  pending {:>2}",
            s.subsystem,
            s.executed.len(),
            s.pending.len()
        ));
        if !s.pending.is_empty() {
            out.push_str(&format!(": {}", s.pending.join(", ")));
        }
        out.push('\n');
    }
    let pending = state.pending_total();
    if pending > 0 {
        out.push_str(&format!(
            "{pending} pending in total: `kong migrations up` ran but `kong migrations finish` did not. An upgrade cannot start until it has.\n"
        ));
    } else {
        out.push_str("nothing pending.\n");
    }
    out.push_str(
        "Which migrations are new for a target version needs that version's migration list, which only its `kong` binary has: run `kong migrations list` with the new version to see them.\n",
    );
    out
}

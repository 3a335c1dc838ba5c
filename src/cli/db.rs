//! `kongup db status`: the migration state of a Kong database, read from `schema_meta`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::kong::pg::{self, PgTarget};
use crate::kong::schema::{SchemaState, SubsystemState};
use crate::plan::load::load_plan;
use crate::plan::model::DatabaseKind;

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
    /// the password here: it comes from the variable named by --password-env. TLS as libpq:
    /// ?sslmode=disable|prefer|require|verify-ca|verify-full (default PGSSLMODE, else
    /// prefer) and &sslrootcert=CA.pem (default PGSSLROOTCERT, ~/.postgresql/root.crt, else
    /// the system's roots). verify-full checks the chain and the host name, verify-ca the
    /// chain only; require and prefer encrypt but check nothing without a CA file (kongup
    /// warns). A client certificate: &sslcert=CERT.pem&sslkey=KEY.pem (default PGSSLCERT
    /// and PGSSLKEY, else ~/.postgresql/postgresql.crt and .key when they exist).
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "plan",
        conflicts_with = "plan"
    )]
    pub pg: Option<String>,
    /// The environment variable holding the database password (with --pg).
    #[arg(
        long,
        value_name = "VAR",
        default_value = "PGPASSWORD",
        conflicts_with = "plan"
    )]
    pub password_env: String,
    /// A plan file: the database of the cluster named by --cluster, its password from the
    /// plan's source ({env: …} or {file: …}), else from PGPASSWORD.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<PathBuf>,
    /// Which cluster's database of the plan: x (the running one) or y (its own database,
    /// dual-cluster only).
    #[arg(long, value_enum, default_value_t = Cluster::X, requires = "plan")]
    pub cluster: Cluster,
    /// Seconds to wait for the connection and for each query.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Print JSON: {"needs_bootstrap", "subsystems": [{"subsystem", "last_executed",
    /// "executed", "pending"}], "pending_total"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cluster {
    X,
    Y,
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
    let target = match (&args.plan, &args.pg) {
        (Some(plan), _) => target_from_plan(plan, args.cluster),
        (None, Some(url)) => PgTarget::from_url(url, &args.password_env).map_err(|e| e.to_string()),
        (None, None) => Err("give the database with --pg URL or --plan PLAN".to_string()),
    };
    let mut target = match target {
        Ok(target) => target,
        Err(e) => {
            eprintln!("kongup db status: {e}");
            return Ok(1);
        }
    };
    for warning in target.tls_warnings() {
        eprintln!("warning: {warning}");
    }
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

/// The database of `cluster` in the plan at `path`, its password read from the plan's
/// source (else PGPASSWORD). Errors name the plan and what to change, never the password.
fn target_from_plan(path: &Path, cluster: Cluster) -> Result<PgTarget, String> {
    let loaded = load_plan(path)
        .map_err(|errors| format!("the plan {} does not load:\n{errors}", path.display()))?;
    let plan = loaded.plan;
    match plan.database {
        DatabaseKind::Postgres => {}
        DatabaseKind::Cassandra => {
            return Err(format!(
                "the plan {} says database cassandra: kongup db status reads PostgreSQL only",
                path.display()
            ));
        }
        DatabaseKind::Off => {
            return Err(format!(
                "the plan {} is DB-less (database: off): there is no database to read",
                path.display()
            ));
        }
    }
    let (spec, key) = match cluster {
        Cluster::X => (&plan.clusters.x.database, "clusters.x.database"),
        Cluster::Y => (&plan.clusters.y.database, "clusters.y.database"),
    };
    let Some(spec) = spec else {
        let also = if cluster == Cluster::Y {
            " (only dual-cluster gives Y a database of its own; otherwise Y runs on X's: use \
             --cluster x)"
        } else {
            ""
        };
        return Err(format!(
            "the plan {} has no {key}{also}; add it, or give the database with --pg URL",
            path.display()
        ));
    };
    PgTarget::from_spec(spec).map_err(|e| format!("{key} of the plan {}: {e}", path.display()))
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

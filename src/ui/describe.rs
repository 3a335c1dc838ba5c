//! Plain words for what a step will do and where: shown in the checklist and, in full, in
//! the confirm dialog before anything runs.

use crate::plan::model::{
    Cluster, CommandSpec, DatabaseSpec, ExecutorSpec, KubectlTarget, KubernetesTarget, Mode, Plan,
    TrafficDriverSpec,
};
use crate::plan::steps::{
    BackupKind, ClusterSide, ExpandedPlan, MigrationsCommand, PhaseName, RollbackKind, Step,
    StepKind,
};

use super::text;

/// One thing that will run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLine {
    /// `kongup` for built-in automation, `$` for a command from the plan.
    pub marker: &'static str,
    pub what: String,
    /// Where it runs; `None` when kongup does it itself.
    pub place: Option<String>,
}

/// Everything a step runs, in order: its built-in automation, then the plan's commands.
pub fn run_lines(plan: &Plan, step: &Step) -> Vec<RunLine> {
    let mut lines = Vec::new();
    if let Some(what) = automation(plan, &step.kind) {
        lines.push(RunLine {
            marker: "kongup",
            what,
            place: automation_place(plan, &step.kind),
        });
    }
    lines.extend(step.commands.iter().map(|c| command_line(plan, c)));
    lines
}

pub fn command_line(plan: &Plan, command: &CommandSpec) -> RunLine {
    RunLine {
        marker: "$",
        what: command.program.display(),
        place: Some(match &command.executor {
            Some(name) => executor(plan, name),
            None => "the step's default executor (the node's, else local)".into(),
        }),
    }
}

/// Says what the rollback counterpart of a step does.
pub fn rollback_line(plan: &Plan, kind: &RollbackKind) -> String {
    match kind {
        RollbackKind::TrafficToX => format!("all traffic to X via {}", load_balancer(plan)),
        RollbackKind::StopNodes { cluster } => {
            format!(
                "stop cluster {}: {}",
                side(*cluster),
                node_names(plan, *cluster)
            )
        }
        RollbackKind::StartNodes { cluster } => {
            format!(
                "start cluster {}: {}",
                side(*cluster),
                node_names(plan, *cluster)
            )
        }
        RollbackKind::RestoreDatabase => format!(
            "restore the backup over the live database {}",
            database(&plan.clusters.x).unwrap_or_else(|| "of X".into())
        ),
        RollbackKind::UnfreezeWrites => "allow configuration writes on X again".into(),
        RollbackKind::Manual => "nothing runs: you do it, then confirm".into(),
    }
}

/// Where commands of an executor named in the plan run.
pub fn executor(plan: &Plan, name: &str) -> String {
    match plan.executors.get(name) {
        None => format!("executor {name}"),
        Some(ExecutorSpec::Local) => "local".into(),
        Some(ExecutorSpec::Sim) => "the simulated lab".into(),
        Some(ExecutorSpec::Ssh {
            host, user, port, ..
        }) => {
            let user = user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("ssh {user}{host}{port}")
        }
        Some(ExecutorSpec::Kubectl {
            context,
            namespace,
            target,
            ..
        }) => {
            let target = match target {
                KubectlTarget::Pod(pod) => format!("pod/{pod}"),
                KubectlTarget::Selector(sel) => format!("-l {sel}"),
            };
            let ns = namespace
                .as_ref()
                .map(|n| format!(" -n {n}"))
                .unwrap_or_default();
            let ctx = context
                .as_ref()
                .map(|c| format!(" --context {c}"))
                .unwrap_or_default();
            format!("kubectl exec {target}{ns}{ctx}")
        }
    }
}

pub fn load_balancer(plan: &Plan) -> String {
    match &plan.traffic.driver {
        TrafficDriverSpec::Haproxy(h) => format!("haproxy {} backend {}", h.socket, h.backend),
        TrafficDriverSpec::Nginx(n) => format!(
            "nginx upstream {} in {}",
            n.upstream_name,
            n.upstream_file.display()
        ),
        TrafficDriverSpec::Kubernetes(k) => match &k.target {
            KubernetesTarget::HttpRoute { name, .. } => format!("HTTPRoute {name}"),
            KubernetesTarget::IngressCanary { name } => format!("canary Ingress {name}"),
        },
        TrafficDriverSpec::Command(c) => format!("command {}", c.set.join(" ")),
        TrafficDriverSpec::Manual => "you (manual traffic driver)".into(),
    }
}

pub fn database(cluster: &Cluster) -> Option<String> {
    cluster.database.as_ref().map(database_address)
}

pub fn database_address(db: &DatabaseSpec) -> String {
    format!("{}:{}/{}", db.host, db.port, db.name)
}

pub fn side(side: ClusterSide) -> &'static str {
    match side {
        ClusterSide::X => "X",
        ClusterSide::Y => "Y",
    }
}

fn node_names(plan: &Plan, cluster: ClusterSide) -> String {
    let nodes = match cluster {
        ClusterSide::X => &plan.clusters.x.nodes,
        ClusterSide::Y => &plan.clusters.y.nodes,
    };
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    if names.is_empty() {
        "no nodes listed".into()
    } else {
        names.join(", ")
    }
}

/// The header's "mode: strategy" words, e.g. `hybrid: CP dual-cluster, DP rolling`.
pub fn mode_and_strategy(plan: &Plan, expanded: &ExpandedPlan) -> String {
    let strategies: Vec<String> = expanded
        .phases
        .iter()
        .map(|p| match p.name {
            PhaseName::Cluster => p.strategy.as_str().to_string(),
            PhaseName::ControlPlane => format!("CP {}", p.strategy.as_str()),
            PhaseName::DataPlane => format!("DP {}", p.strategy.as_str()),
        })
        .collect();
    format!("{}: {}", plan.mode.as_str(), strategies.join(", "))
}

fn migrations(plan: &Plan, command: MigrationsCommand) -> String {
    let m = &plan.migrations;
    let mut words = vec![
        m.kong_binary.clone(),
        "migrations".into(),
        match command {
            MigrationsCommand::Up => "up".into(),
            MigrationsCommand::Finish => "finish".into(),
        },
    ];
    if m.force {
        words.push("-f".into());
    }
    words.extend(m.extra_args.iter().cloned());
    words.push(format!("--db-timeout {}", m.db_timeout));
    words.join(" ")
}

/// The built-in automation of a step kind, in words; `None` for kinds without any.
pub fn automation(plan: &Plan, kind: &StepKind) -> Option<String> {
    let x_db = database(&plan.clusters.x).unwrap_or_else(|| "X's database".into());
    let y_db = database(&plan.clusters.y).unwrap_or_else(|| x_db.clone());
    Some(match kind {
        StepKind::Manual | StepKind::Review => return None,
        StepKind::Preflight => format!(
            "checks the upgrade path {} → {}, every node's Admin API and the migrations state",
            plan.from, plan.to
        ),
        StepKind::FreezeWrites => {
            "records X's configuration fingerprint, to detect writes during the upgrade".into()
        }
        StepKind::Backup(BackupKind::Database) => {
            format!("runs pg_dump -Fc of {x_db} into the run directory")
        }
        StepKind::Backup(BackupKind::Declarative) => {
            match (&plan.backup.declarative_config, plan.mode) {
                (Some(path), Mode::Dbless) => {
                    format!("copies {} into the run directory", path.display())
                }
                _ => "exports X's entities (decK / Admin API) into the run directory".into(),
            }
        }
        StepKind::Backup(BackupKind::Keyring) => format!(
            "copies the keyring material {} into the run directory",
            list_paths(&plan.backup.keyring)
        ),
        StepKind::Backup(BackupKind::StaticFiles) => match &plan.backup.kong_conf {
            Some(path) => format!("copies {} into the run directory", path.display()),
            None => "copies kong.conf into the run directory".into(),
        },
        StepKind::RestoreDatabase => format!("runs pg_restore of X's backup into {y_db}"),
        StepKind::DeployNodes { cluster } => format!(
            "deploys cluster {}: {}",
            side(*cluster),
            node_names(plan, *cluster)
        ),
        StepKind::StartNodes { cluster } => format!(
            "starts cluster {}: {}",
            side(*cluster),
            node_names(plan, *cluster)
        ),
        StepKind::StopNodes { cluster } => format!(
            "stops cluster {}: {}",
            side(*cluster),
            node_names(plan, *cluster)
        ),
        StepKind::Migrations(command) => format!("runs {}", migrations(plan, *command)),
        StepKind::SmokeTests => {
            let names: Vec<&str> = plan.smoke_tests.iter().map(|t| t.name.as_str()).collect();
            format!(
                "runs {} smoke test(s) against every Y proxy: {}",
                names.len(),
                names.join(", ")
            )
        }
        StepKind::CompatibilityCheck => {
            "checks every DP reports sync_status normal and CP minor ≥ DP minor".into()
        }
        StepKind::ShiftTraffic { y_percent, bake } => format!(
            "sets traffic X {}% | Y {}% via {}, then bakes {} with the gates on",
            100 - u16::from((*y_percent).min(100)),
            y_percent,
            load_balancer(plan),
            text::duration(bake.as_secs())
        ),
        StepKind::Monitor { duration } => format!(
            "watches the gates for {}",
            text::duration(duration.as_secs())
        ),
        StepKind::Decommission { cluster } => format!(
            "decommissions cluster {}: {}",
            side(*cluster),
            node_names(plan, *cluster)
        ),
    })
}

fn automation_place(plan: &Plan, kind: &StepKind) -> Option<String> {
    Some(match kind {
        StepKind::ShiftTraffic { .. } => load_balancer(plan),
        StepKind::Backup(BackupKind::Database) | StepKind::RestoreDatabase => "local".into(),
        StepKind::Migrations(_) => "one node of Y, through its executor".into(),
        StepKind::DeployNodes { .. }
        | StepKind::StartNodes { .. }
        | StepKind::StopNodes { .. }
        | StepKind::Decommission { .. }
        | StepKind::Backup(_) => "each node's executor".into(),
        _ => return None,
    })
}

fn list_paths(paths: &[std::path::PathBuf]) -> String {
    if paths.is_empty() {
        return "(none listed)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

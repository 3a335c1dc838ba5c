//! A realistic hybrid upgrade (Kong Enterprise 3.4.3.12 → 3.10.0.1; control planes by
//! dual-cluster, data planes rolling) and the engine events of its stages, for the console's
//! snapshot tests, key tests, benchmark and example driver. Built in code: the plan loader
//! is another branch's work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use std::sync::Arc;

use crate::engine::Toolbox;
use crate::engine::event::{
    Event, LogLine, LogStream, RollbackProgress, RunState, StepState, TrafficVerification,
};
use crate::engine::rollback::rollback_ref;
use crate::kong::topology::{DatabaseView, NodeHealth, NodeView, TopologySnapshot};
use crate::kong::types::SyncStatus;
use crate::lb::Split;
use crate::metrics::gates::{CheckOutcome, ShownCheck};
use crate::metrics::{
    ClusterFigures, GateFigures, GateVerdict, MetricsSnapshot, Quantiles, Verdict,
};
use crate::plan::model::*;
use crate::plan::steps::*;
use crate::plan::version::KongVersion;
use crate::secrets::Redactor;
use crate::ui::Previewer;

pub const PLAN_NAME: &str = "prod-eu-hybrid";

/// 02:00 UTC: when the run began.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 2, 0, 0).unwrap()
}

pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn node(name: &str, role: Role, executor: &str) -> Node {
    Node {
        name: name.into(),
        admin_url: Some(format!("https://{name}.prod.internal:8444")),
        status_url: Some(format!("http://{name}.prod.internal:8100")),
        proxy_url: (role != Role::ControlPlane)
            .then(|| format!("http://{name}.prod.internal:8000")),
        role,
        executor: Some(executor.into()),
    }
}

fn db(host: &str) -> DatabaseSpec {
    DatabaseSpec {
        host: host.into(),
        port: 5432,
        name: "kong".into(),
        user: "kong".into(),
        password: Some(SecretRef::Env("KONG_PG_PASSWORD".into())),
        tls: Default::default(),
    }
}

pub fn plan() -> Plan {
    plan_with_nodes(3)
}

/// The plan with `dps_per_cluster` data planes in each cluster (the benchmark wants many).
pub fn plan_with_nodes(dps_per_cluster: usize) -> Plan {
    let cluster = |side: &str, db_host: &str| {
        let mut nodes = vec![
            node(&format!("cp-{side}1"), Role::ControlPlane, "ops-bastion"),
            node(&format!("cp-{side}2"), Role::ControlPlane, "ops-bastion"),
        ];
        nodes.extend(
            (1..=dps_per_cluster)
                .map(|i| node(&format!("dp-{side}{i}"), Role::DataPlane, "ops-bastion")),
        );
        Cluster {
            nodes,
            database: Some(db(db_host)),
        }
    };
    let mut executors = BTreeMap::new();
    executors.insert("local".to_string(), ExecutorSpec::Local);
    executors.insert(
        "ops-bastion".to_string(),
        ExecutorSpec::Ssh {
            host: "bastion.prod.internal".into(),
            user: Some("kong".into()),
            port: Some(22),
            identity_file: None,
        },
    );
    Plan {
        name: PLAN_NAME.into(),
        from: KongVersion::enterprise(3, 4, 3, 12),
        to: KongVersion::enterprise(3, 10, 0, 1),
        mode: Mode::Hybrid,
        database: DatabaseKind::Postgres,
        edition: Some(Edition::Enterprise),
        strategy: StrategyChoice::Fixed(Strategy::DualCluster),
        clusters: Clusters {
            x: cluster("x", "pg-x.prod.internal"),
            y: cluster("y", "pg-y.prod.internal"),
        },
        admin: AdminAccess {
            token: Some(SecretRef::Env("KONG_ADMIN_TOKEN".into())),
            tls: TlsOptions::default(),
        },
        executors,
        traffic: TrafficSpec {
            driver_given: true,
            driver: TrafficDriverSpec::Haproxy(HaproxyDriver {
                socket: "/run/haproxy/admin.sock".into(),
                backend: "kong_proxy".into(),
                x_servers: vec!["dp-x1".into(), "dp-x2".into(), "dp-x3".into()],
                y_servers: vec!["dp-y1".into(), "dp-y2".into(), "dp-y3".into()],
                node_servers: Default::default(),
            }),
            schedule: vec![10, 50, 100],
            bake: Duration::from_secs(300),
            auto_advance: false,
        },
        gates: GateSpec {
            window: Duration::from_secs(60),
            max_error_ratio: Some(0.01),
            max_p99_ms: Some(500.0),
            max_error_ratio_delta: Some(0.005),
            max_p99_ratio: Some(1.5),
            min_requests: 200,
            consecutive_breaches: 3,
            on_fail: FailAction::Pause,
        },
        smoke_tests: vec![
            SmokeTest {
                name: "key-auth".into(),
                method: "GET".into(),
                path: "/orders/health".into(),
                headers: BTreeMap::new(),
                secret_headers: BTreeMap::from([(
                    "apikey".into(),
                    SecretRef::Env("SMOKE_APIKEY".into()),
                )]),
                body: None,
                expect_status: 200,
                expect_headers: BTreeMap::new(),
                expect_body_contains: None,
            },
            SmokeTest {
                name: "rate-limit".into(),
                method: "GET".into(),
                path: "/payments/ping".into(),
                headers: BTreeMap::new(),
                secret_headers: BTreeMap::new(),
                body: None,
                expect_status: 200,
                expect_headers: BTreeMap::new(),
                expect_body_contains: Some("pong".into()),
            },
        ],
        migrations: MigrationsSpec {
            kong_binary: "kong".into(),
            extra_args: vec!["-c".into(), "/etc/kong/kong.conf".into()],
            db_timeout: 120,
            force: false,
            timeout: Duration::from_secs(1800),
        },
        backup: BackupSpec {
            declarative_config: None,
            kong_conf: Some(PathBuf::from("/etc/kong/kong.conf")),
            keyring: Vec::new(),
        },
        steps: StepCustomisation::default(),
        command_timeout: Duration::from_secs(600),
        notify: Default::default(),
        rolling: None,
    }
}

struct S {
    id: &'static str,
    guide: &'static str,
    title: &'static str,
    instruction: &'static str,
    kind: StepKind,
    changes: bool,
}

fn step(s: S) -> Step {
    Step {
        id: s.id.into(),
        guide_ref: s.guide.into(),
        title: s.title.into(),
        instruction: s.instruction.into(),
        kind: s.kind,
        changes: s.changes,
        irreversible: false,
        irreversible_because: None,
        rollback: None,
        commands: Vec::new(),
        builtin: true,
        skip_reason: None,
    }
}

fn undo(title: &str, kind: RollbackKind) -> Option<RollbackAction> {
    Some(RollbackAction {
        title: title.into(),
        instruction: format!("{title}."),
        kind,
        irreversible: false,
    })
}

fn argv(words: &[&str]) -> CommandLine {
    CommandLine::Argv(words.iter().map(|w| w.to_string()).collect())
}

fn shift(id: &'static str, y: u8) -> Step {
    let mut s = step(S {
        id,
        guide: "6",
        title: match y {
            10 => "Shift 10% of traffic to Y",
            50 => "Shift 50% of traffic to Y",
            _ => "Shift all traffic to Y",
        },
        instruction: "Divert traffic from old cluster X to new cluster Y. This is usually \
                      done gradually and incrementally, depending on the risk profile of \
                      the deployment.",
        kind: StepKind::ShiftTraffic {
            y_percent: y,
            bake: Duration::from_secs(300),
        },
        changes: true,
    });
    s.rollback = undo("Send all traffic back to X", RollbackKind::TrafficToX);
    s
}

pub fn expanded() -> ExpandedPlan {
    let mut freeze = step(S {
        id: "freeze-writes",
        guide: "1",
        title: "Stop configuration writes",
        instruction: "Stop any Kong Gateway configuration updates (e.g. Admin API calls). \
                      This is critical to guarantee data consistency between cluster X and \
                      cluster Y.",
        kind: StepKind::FreezeWrites,
        changes: true,
    });
    freeze.rollback = undo(
        "Allow configuration writes on X",
        RollbackKind::UnfreezeWrites,
    );

    let mut deploy = step(S {
        id: "deploy-y",
        guide: "5.1",
        title: "Deploy control planes Y",
        instruction: "Install a new Kong Gateway cluster running version Y as instructed in \
                      the Kong Gateway Installation Options. Provision the new cluster Y \
                      with the same-sized resource capacity as that of the current cluster X.",
        kind: StepKind::DeployNodes {
            cluster: ClusterSide::Y,
        },
        changes: true,
    });
    deploy.commands = vec![CommandSpec {
        node: None,
        program: argv(&[
            "ansible-playbook",
            "-i",
            "inventories/prod-eu",
            "kong-cp.yml",
            "--limit",
            "cp_y",
            "-e",
            "kong_version=3.10.0.1",
        ]),
        executor: Some("ops-bastion".into()),
        timeout: Some(Duration::from_secs(900)),
    }];
    deploy.rollback = undo("Remove the Y control planes", RollbackKind::Manual);

    let mut start = step(S {
        id: "start-y",
        guide: "5.5",
        title: "Start cluster Y",
        instruction: "Start cluster Y.",
        kind: StepKind::StartNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
        changes: true,
    });
    start.rollback = undo(
        "Stop cluster Y",
        RollbackKind::StopNodes {
            cluster: ClusterSide::Y,
            wave: None,
        },
    );

    let mut decommission = step(S {
        id: "decommission-x",
        guide: "9",
        title: "Decommission control planes X",
        instruction: "When there are no more issues, decommission the old cluster X to \
                      complete the upgrade.",
        kind: StepKind::Decommission {
            cluster: ClusterSide::X,
        },
        changes: true,
    });
    decommission.irreversible = true;
    decommission.irreversible_because = Some(
        "X's control planes are removed; after this a rollback means rebuilding X from its \
         backup"
            .into(),
    );

    let control_plane = Phase {
        name: PhaseName::ControlPlane,
        strategy: Strategy::DualCluster,
        steps: vec![
            step(S {
                id: "preflight",
                guide: "",
                title: "Preflight checks",
                instruction: "Check the upgrade path, that every node answers on its Admin \
                              API, and that no migrations are pending.",
                kind: StepKind::Preflight,
                changes: false,
            }),
            step(S {
                id: "review-changes",
                guide: "3-4",
                title: "Review breaking changes 3.4 → 3.10",
                instruction: "Evaluate factors that may impact the upgrade, as described in \
                              Upgrade considerations, and the changes between releases: \
                              breaking changes and the full changelog.",
                kind: StepKind::Review,
                changes: false,
            }),
            freeze,
            step(S {
                id: "backup-x",
                guide: "2",
                title: "Back up X's database",
                instruction: "Back up data from the current cluster X by following the \
                              Backup guide.",
                kind: StepKind::Backup(BackupKind::Database),
                changes: false,
            }),
            deploy,
            step(S {
                id: "restore-db",
                guide: "5.3",
                title: "Restore the backup into Y's database",
                instruction: "Install a new database of the same version, restore the backup \
                              data to it, and configure cluster Y to point to it.",
                kind: StepKind::RestoreDatabase,
                changes: true,
            }),
            step(S {
                id: "migrations-up",
                guide: "5.4",
                title: "Migrate Y's database (up)",
                instruction: "Run kong migrations up on the new database.",
                kind: StepKind::Migrations(MigrationsCommand::Up),
                changes: true,
            }),
            step(S {
                id: "migrations-finish",
                guide: "5.4",
                title: "Migrate Y's database (finish)",
                instruction: "Run kong migrations finish on the new database.",
                kind: StepKind::Migrations(MigrationsCommand::Finish),
                changes: true,
            }),
            start,
            step(S {
                id: "smoke-tests",
                guide: "5.6",
                title: "Staging tests against Y",
                instruction: "Perform staging tests against version Y to make sure it works \
                              for all use cases. For example, does the Key Authentication \
                              plugin authenticate requests properly?",
                kind: StepKind::SmokeTests,
                changes: false,
            }),
            shift("traffic-10", 10),
            shift("traffic-50", 50),
            shift("traffic-100", 100),
            step(S {
                id: "monitor",
                guide: "7",
                title: "Monitor all proxy metrics",
                instruction: "Actively monitor all proxy metrics.",
                kind: StepKind::Monitor {
                    duration: Duration::from_secs(600),
                },
                changes: false,
            }),
            decommission,
        ],
    };

    let mut roll = step(S {
        id: "roll-dp",
        guide: "2",
        title: "Replace data planes, one at a time",
        instruction: "For each data plane: start a Y data plane, check it syncs with the new \
                      control planes, then drain and stop an X data plane.",
        kind: StepKind::Manual,
        changes: true,
    });
    roll.commands = vec![CommandSpec {
        node: None,
        program: argv(&[
            "/opt/kong/bin/dp-rollout.sh",
            "--batch",
            "1",
            "--drain",
            "30s",
        ]),
        executor: Some("ops-bastion".into()),
        timeout: None,
    }];
    let data_plane = Phase {
        name: PhaseName::DataPlane,
        strategy: Strategy::Rolling,
        steps: vec![
            step(S {
                id: "compatibility",
                guide: "1",
                title: "Check DP compatibility with the new CPs",
                instruction: "Every data plane must report sync_status normal, and the \
                              control planes' minor version must be at least the data \
                              planes'.",
                kind: StepKind::CompatibilityCheck,
                changes: false,
            }),
            roll,
            step(S {
                id: "stop-dp-x",
                guide: "3",
                title: "Stop the remaining X data planes",
                instruction: "Stop the old data planes once the new ones carry the traffic.",
                kind: StepKind::StopNodes {
                    cluster: ClusterSide::X,
                    wave: None,
                },
                changes: true,
            }),
        ],
    };
    ExpandedPlan {
        phases: vec![control_plane, data_plane],
        strategy_reason: "hybrid mode: control planes by dual-cluster (spare capacity), data \
                          planes roll"
            .into(),
        warnings: vec!["3.4 → 3.10 is an LTS-to-LTS upgrade: Kong's guide for it applies".into()],
    }
}

/// The engine's own previews of what each step runs, from the plan's real toolbox (built,
/// never used to run anything).
pub fn previewer(plan: &Plan, expanded: &ExpandedPlan) -> Previewer {
    let toolbox = Toolbox::for_plan(
        plan,
        Redactor::new(Vec::new()),
        crate::actions::builtins(None),
    )
    .expect("the plan's toolbox");
    Previewer::from_engine(Arc::new(plan.clone()), Arc::new(expanded.clone()), toolbox)
}

/// The engine's rollback step that undoes the control-plane step `id`.
pub fn undoing(id: &str) -> StepRef {
    rollback_ref(&expanded(), &cp(id))
}

pub fn step_ref(phase: PhaseName, id: &str) -> StepRef {
    StepRef::new(phase, id)
}

pub fn cp(id: &str) -> StepRef {
    step_ref(PhaseName::ControlPlane, id)
}

pub fn dp(id: &str) -> StepRef {
    step_ref(PhaseName::DataPlane, id)
}

/// What the engine says on start: the run state (nothing confirmed yet), then every step.
pub fn start_events(expanded: &ExpandedPlan) -> Vec<Event> {
    let mut events = vec![Event::RunChanged(RunState::Idle)];
    for (i, (phase, step)) in expanded.steps().enumerate() {
        events.push(Event::StepChanged {
            step: StepRef::new(phase.name, step.id.clone()),
            state: if i == 0 {
                StepState::Ready
            } else {
                StepState::Pending
            },
            detail: None,
        });
    }
    events
}

pub fn changed(step: StepRef, state: StepState) -> Event {
    Event::StepChanged {
        step,
        state,
        detail: None,
    }
}

pub fn log(secs: i64, step: &str, stream: LogStream, text: &str) -> Event {
    Event::Log(LogLine {
        at: at(secs),
        step: Some(step.into()),
        stream,
        text: text.into(),
    })
}

/// Events that run each of `steps` through running to succeeded, with a line of output.
pub fn complete(steps: &[StepRef], from_secs: i64) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let secs = from_secs + i as i64 * 20;
        events.push(changed(s.clone(), StepState::Running));
        events.push(log(
            secs,
            &s.id,
            LogStream::Engine,
            &format!("{} started", s.id),
        ));
        events.push(log(secs + 15, &s.id, LogStream::Stdout, "ok"));
        events.push(Event::StepChanged {
            step: s.clone(),
            state: StepState::Succeeded,
            detail: Some("exit 0".into()),
        });
    }
    events
}

pub fn traffic(y: u8) -> Event {
    Event::TrafficChanged {
        requested: Split::to_y(y),
        applied: Some(Split::to_y(y)),
    }
}

pub fn topology(y_version: Option<&str>, y_health: NodeHealth) -> Event {
    Event::Topology(topology_snapshot(&plan(), y_version, y_health))
}

/// The topology of `plan`: X live on 3.4.3.12, Y as given; DPs spread over their CPs.
pub fn topology_snapshot(
    plan: &Plan,
    y_version: Option<&str>,
    y_health: NodeHealth,
) -> TopologySnapshot {
    let mut nodes = Vec::new();
    for (side, cluster, version, health) in [
        (
            ClusterSide::X,
            &plan.clusters.x,
            Some("3.4.3.12"),
            NodeHealth::Ready,
        ),
        (
            ClusterSide::Y,
            &plan.clusters.y,
            y_version,
            y_health.clone(),
        ),
    ] {
        let cps: Vec<&Node> = cluster
            .nodes
            .iter()
            .filter(|n| n.role == Role::ControlPlane)
            .collect();
        let mut dp_index = 0;
        for n in &cluster.nodes {
            let (control_plane, sync_status) = if n.role == Role::DataPlane {
                let cp = cps[dp_index % cps.len()].name.clone();
                dp_index += 1;
                (Some(cp), version.map(|_| SyncStatus::Normal))
            } else {
                (None, None)
            };
            nodes.push(NodeView {
                name: n.name.clone(),
                cluster: side,
                role: n.role,
                version: version.map(str::to_string),
                health: health.clone(),
                control_plane,
                sync_status,
                config_hash: None,
            });
        }
    }
    TopologySnapshot {
        at: Some(t0()),
        nodes,
        databases: vec![
            DatabaseView {
                cluster: ClusterSide::X,
                address: "pg-x.prod.internal:5432/kong".into(),
                schema: Some("up to date".into()),
            },
            DatabaseView {
                cluster: ClusterSide::Y,
                address: "pg-y.prod.internal:5432/kong".into(),
                schema: y_version.map(|_| "up to date".into()),
            },
        ],
        load_balancer: Some("haproxy /run/haproxy/admin.sock backend kong_proxy".into()),
        unreadable: Vec::new(),
    }
}

/// A cluster's figures: `errors` and `p99` are `None` when their Kong flag is off.
/// (Figures not named here, such as ones added later, keep their defaults.)
pub fn figures(rps: f64, errors: Option<f64>, p99: Option<f64>) -> ClusterFigures {
    ClusterFigures {
        requests_per_s: Some(rps),
        error_ratio: errors,
        p50_ms: p99.map(|p| p / 4.0),
        p95_ms: p99.map(|p| p / 1.5),
        p99_ms: p99,
        active_connections: Some(rps / 4.0),
        // Most of a request's time is the upstream's; Kong's own is a few milliseconds.
        kong_latency: Quantiles {
            p99_ms: p99.map(|p| p / 40.0),
            ..Quantiles::default()
        },
        upstream_latency: Quantiles {
            p99_ms: p99.map(|p| p * 0.9),
            ..Quantiles::default()
        },
        status_code_metrics: errors.is_some(),
        latency_metrics: p99.is_some(),
        nodes_scraped: 3,
        nodes_total: 3,
        ..ClusterFigures::default()
    }
}

/// One scrape at `secs`: X carries `100 - y` percent of ~1200 req/s, Y the rest; Y's 5xx
/// ratio is `y_errors`. Deterministic wiggles stand in for real traffic.
pub fn metrics(secs: i64, y_share: u8, y_errors: f64) -> Event {
    let wiggle = ((secs * 37) % 11) as f64 - 5.0;
    let total = 1200.0 + wiggle * 8.0;
    let y = total * f64::from(y_share) / 100.0;
    let x = total - y;
    Event::Metrics(MetricsSnapshot {
        at: at(secs),
        x: figures(
            x,
            Some(0.0008 + wiggle.abs() * 0.00002),
            Some(180.0 + wiggle * 3.0),
        ),
        y: if y_share == 0 {
            ClusterFigures {
                nodes_scraped: 0,
                nodes_total: 0,
                ..ClusterFigures::default()
            }
        } else {
            figures(y, Some(y_errors), Some(150.0 + wiggle * 2.0))
        },
    })
}

/// Scrapes every 5 s from `from` to `to` seconds.
pub fn metrics_history(from: i64, to: i64, y_share: u8, y_errors: f64) -> Vec<Event> {
    (from..=to)
        .step_by(5)
        .map(|s| metrics(s, y_share, y_errors))
        .collect()
}

/// A verdict from check lines as the evaluator writes them (`Y 5xx 3.40% > 1.00%: BREACH`);
/// the pane's short form is the line's words: subject, figure, rule.
pub fn gate(secs: i64, verdict: Verdict, breaches: u32, checks: &[&str]) -> Event {
    let shown = checks
        .iter()
        .map(|line| {
            let (check, status) = line.rsplit_once(": ").unwrap_or((line, ""));
            let outcome = match status {
                "ok" => CheckOutcome::Held,
                "BREACH" => CheckOutcome::Breached,
                "skipped" => CheckOutcome::Skipped,
                _ => CheckOutcome::Unknown,
            };
            let words: Vec<&str> = check.splitn(4, ' ').collect();
            let (subject, figure, rule) = match words.as_slice() {
                [side, what, figure, rule] => (format!("{side} {what}"), *figure, *rule),
                _ => (check.to_string(), "", ""),
            };
            ShownCheck {
                outcome,
                subject,
                figure: figure.into(),
                rule: rule.into(),
            }
        })
        .collect();
    Event::Gate(GateVerdict {
        at: at(secs),
        verdict,
        checks: checks.iter().map(|c| c.to_string()).collect(),
        requests_in_window: 14_400,
        consecutive_breaches: breaches,
        figures: GateFigures::default(),
        shown,
    })
}

pub fn rollback_events(time_to_safety_ms: u64, planned: Vec<StepRef>) -> Vec<Event> {
    vec![
        Event::RunChanged(RunState::RollingBack),
        Event::RollbackProgress(RollbackProgress::Started),
        Event::TrafficChanged {
            requested: Split::ALL_X,
            applied: Some(Split::ALL_X),
        },
        Event::RollbackProgress(RollbackProgress::TrafficSafe {
            time_to_safety_ms,
            verified: TrafficVerification::ReadBack,
            evidence: "the load balancer reports X 100% | Y 0%".into(),
        }),
        Event::RollbackProgress(RollbackProgress::Planned {
            steps: planned,
            note: None,
        }),
    ]
}

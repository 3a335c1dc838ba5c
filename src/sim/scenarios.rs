//! The lab's scenarios: one topology per upgrade strategy, with versions on paths Kong
//! guarantees. Each node answers as Kong of its version (`sim::api`, `sim::metrics`): the
//! four-part versions are Kong Enterprise's, whose own shapes are unverified (the lab answers
//! for them as the open-source code of the same release does).
//!
//! | scenario | mode | X → Y | nodes per cluster | databases |
//! |---|---|---|---|---|
//! | `dual-cluster` | traditional | 3.4.3.12 → 3.10.0.1 (LTS to LTS) | 2 | X's, and Y's own |
//! | `traditional-2.8` | traditional | 2.8.5 → 3.4.2 (LTS to LTS, across the 3.0 break) | 2 | X's, and Y's own |
//! | `in-place` | traditional | 3.5.0 → 3.6.1 (adjacent minors) | 2 | one, shared |
//! | `blue-green` | traditional | 3.4.3.11 → 3.4.3.12 (patch) | 2 | one, shared |
//! | `dbless-rolling` | DB-less | 3.9.1 → 3.10.0 (adjacent minors) | 3 | none |
//! | `hybrid` | hybrid | 3.4.2 → 3.10.0 (LTS to LTS) | 1 CP + 2 DP | X CP's, Y CP's own |

use std::fmt;
use std::str::FromStr;

use crate::plan::model::{Mode, Role, Share, Strategy};
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;

use super::balancer::SharedBackend;
use super::lab::LabEndpoints;
use super::node::NodeSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    DualCluster,
    /// 2.8 to 3.4 by dual cluster: Kong's 3.0 break (Admin API, `/metrics`, migrations).
    Traditional28,
    InPlace,
    BlueGreen,
    DblessRolling,
    Hybrid,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::DualCluster,
        Scenario::Traditional28,
        Scenario::InPlace,
        Scenario::BlueGreen,
        Scenario::DblessRolling,
        Scenario::Hybrid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::DualCluster => "dual-cluster",
            Scenario::Traditional28 => "traditional-2.8",
            Scenario::InPlace => "in-place",
            Scenario::BlueGreen => "blue-green",
            Scenario::DblessRolling => "dbless-rolling",
            Scenario::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a lab scenario (choose one of dual-cluster, traditional-2.8, in-place, blue-green, dbless-rolling, hybrid)"
)]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// A database of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabasePlan {
    /// `pg_database`, e.g. `kong`.
    pub name: String,
    /// The cluster that owns it (a shared database belongs to X).
    pub cluster: ClusterSide,
    /// A host that never resolves (RFC 6761 `.invalid`): nothing may mistake it for a
    /// real PostgreSQL.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// `None`: created empty (Y's own database, restored from X's backup by the plan).
    pub bootstrapped_by: Option<KongVersion>,
}

impl DatabasePlan {
    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub scenario: Scenario,
    pub mode: Mode,
    pub from: KongVersion,
    pub to: KongVersion,
    /// The strategy of the database-backed part (hybrid: the control planes'); DB-less
    /// rolls.
    pub strategy: Strategy,
    pub nodes: Vec<NodeSpec>,
    pub databases: Vec<DatabasePlan>,
    /// Y nodes at an X node's proxy address (in place): one backend of the balancer.
    pub shared_backends: Vec<SharedBackend>,
}

impl Topology {
    pub fn database(&self, name: &str) -> Option<&DatabasePlan> {
        self.databases.iter().find(|d| d.name == name)
    }
}

fn version(s: &str) -> KongVersion {
    s.parse().expect("scenario versions are valid")
}

fn db(name: &str, cluster: ClusterSide, bootstrapped_by: Option<KongVersion>) -> DatabasePlan {
    DatabasePlan {
        name: name.to_string(),
        cluster,
        host: format!("db-{}.lab.invalid", cluster.as_str()),
        port: 5432,
        user: "kong".to_string(),
        bootstrapped_by,
    }
}

fn traditional(
    prefix: &str,
    cluster: ClusterSide,
    count: usize,
    version: KongVersion,
    database: Option<&str>,
) -> Vec<NodeSpec> {
    (1..=count)
        .map(|i| NodeSpec {
            name: format!("{prefix}-{}-{i}", cluster.as_str()),
            cluster,
            role: Role::Traditional,
            dbless: database.is_none(),
            version,
            database: database.map(str::to_string),
            control_plane: None,
        })
        .collect()
}

fn hybrid_cluster(
    cluster: ClusterSide,
    version: KongVersion,
    database: &str,
    data_planes: usize,
) -> Vec<NodeSpec> {
    let side = cluster.as_str();
    let cp = format!("cp-{side}-1");
    let mut nodes = vec![NodeSpec {
        name: cp.clone(),
        cluster,
        role: Role::ControlPlane,
        dbless: false,
        version,
        database: Some(database.to_string()),
        control_plane: None,
    }];
    nodes.extend((1..=data_planes).map(|i| NodeSpec {
        name: format!("dp-{side}-{i}"),
        cluster,
        role: Role::DataPlane,
        dbless: true,
        version,
        database: None,
        control_plane: Some(cp.clone()),
    }));
    nodes
}

/// Data planes per cluster in the hybrid lab unless `--data-planes` says otherwise.
pub const DEFAULT_DATA_PLANES: usize = 2;

/// From this many data planes per cluster on (more than the default demo's), the hybrid
/// demo rolls its data planes in waves (`rolling:`), as a fleet is rolled; the default
/// demo keeps the rolling guide's one-cluster steps (deploy Y, move traffic in stages).
pub const WAVES_FROM_DATA_PLANES: usize = 3;

/// The waves the hybrid demo writes for `data_planes` per cluster: 5 % (at least the one
/// node of a canary), 25 %, 50 % and the rest, as written (cumulative shares), less those
/// that would add no node to the wave before (the loader refuses such a wave); `None`
/// under [`WAVES_FROM_DATA_PLANES`]. The first wave is a share rather than one node: the
/// gates judge Y on its share of the lab's traffic (at most `demo::LAB_MAX_RPS`), and one
/// node of 200 would have 1 % of it, too few requests for a verdict on a loaded machine.
pub fn demo_waves(data_planes: usize) -> Option<Vec<Share>> {
    if data_planes < WAVES_FROM_DATA_PLANES {
        return None;
    }
    let mut waves: Vec<Share> = Vec::new();
    let mut up = 0;
    for share in [
        Share::Percent(5),
        Share::Percent(25),
        Share::Percent(50),
        Share::Percent(100),
    ] {
        let nodes = share.of(data_planes);
        if nodes > up {
            waves.push(share);
            up = nodes;
        }
    }
    Some(waves)
}

/// The most data planes per cluster a lab may have. Every lab node runs in kongup's own
/// process with its listeners (a data plane holds two loopback ports), and the console,
/// the monitor and the topology watcher read every one: a thousand per cluster is the
/// fleet this was measured at (the README's figures) on a 2-core machine.
pub const MAX_DATA_PLANES: usize = 1_000;

/// Why a lab cannot have the size asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error(
        "--data-planes {0} is more than the lab runs ({MAX_DATA_PLANES} per cluster at most): every data plane runs inside this process with its own listeners, scraped and watched like a real one; choose {MAX_DATA_PLANES} or fewer"
    )]
    TooMany(usize),
    #[error(
        "--data-planes 0 leaves the hybrid lab nothing to proxy: choose 1 to {MAX_DATA_PLANES}"
    )]
    None,
    #[error(
        "--data-planes sizes the hybrid lab only: the {0} lab has no data planes (use --scenario hybrid)"
    )]
    NotHybrid(Scenario),
}

/// The hybrid lab's data planes per cluster, checked: `None` is the scenario's own size.
pub fn data_planes_for(scenario: Scenario, asked: Option<usize>) -> Result<usize, SizeError> {
    match asked {
        None => Ok(DEFAULT_DATA_PLANES),
        Some(_) if scenario != Scenario::Hybrid => Err(SizeError::NotHybrid(scenario)),
        Some(0) => Err(SizeError::None),
        Some(n) if n > MAX_DATA_PLANES => Err(SizeError::TooMany(n)),
        Some(n) => Ok(n),
    }
}

/// The lab topology of a scenario.
pub fn topology(scenario: Scenario) -> Topology {
    topology_sized(scenario, DEFAULT_DATA_PLANES)
}

/// The lab topology of a scenario with `data_planes` data planes per cluster (hybrid only;
/// checked by [`data_planes_for`]; the other scenarios have none and ignore it).
pub fn topology_sized(scenario: Scenario, data_planes: usize) -> Topology {
    use ClusterSide::{X, Y};
    match scenario {
        Scenario::DualCluster | Scenario::Traditional28 => {
            let (from, to) = if scenario == Scenario::DualCluster {
                (version("3.4.3.12"), version("3.10.0.1"))
            } else {
                (version("2.8.5"), version("3.4.2"))
            };
            let mut nodes = traditional("kong", X, 2, from, Some("kong"));
            nodes.extend(traditional("kong", Y, 2, to, Some("kong_y")));
            Topology {
                scenario,
                mode: Mode::Traditional,
                from,
                to,
                strategy: Strategy::DualCluster,
                nodes,
                databases: vec![db("kong", X, Some(from)), db("kong_y", Y, None)],
                shared_backends: Vec::new(),
            }
        }
        Scenario::InPlace | Scenario::BlueGreen => {
            let (from, to, strategy) = if scenario == Scenario::InPlace {
                (version("3.5.0"), version("3.6.1"), Strategy::InPlace)
            } else {
                (
                    version("3.4.3.11"),
                    version("3.4.3.12"),
                    Strategy::BlueGreen,
                )
            };
            let mut nodes = traditional("kong", X, 2, from, Some("kong"));
            nodes.extend(traditional("kong", Y, 2, to, Some("kong")));
            Topology {
                scenario,
                mode: Mode::Traditional,
                from,
                to,
                strategy,
                nodes,
                databases: vec![db("kong", X, Some(from))],
                shared_backends: Vec::new(),
            }
        }
        Scenario::DblessRolling => {
            let (from, to) = (version("3.9.1"), version("3.10.0"));
            let mut nodes = traditional("kong", X, 3, from, None);
            nodes.extend(traditional("kong", Y, 3, to, None));
            Topology {
                scenario,
                mode: Mode::Dbless,
                from,
                to,
                strategy: Strategy::Rolling,
                nodes,
                databases: Vec::new(),
                shared_backends: Vec::new(),
            }
        }
        Scenario::Hybrid => {
            let (from, to) = (version("3.4.2"), version("3.10.0"));
            let mut nodes = hybrid_cluster(X, from, "kong", data_planes);
            nodes.extend(hybrid_cluster(Y, to, "kong_y", data_planes));
            Topology {
                scenario,
                mode: Mode::Hybrid,
                from,
                to,
                strategy: Strategy::DualCluster,
                nodes,
                databases: vec![db("kong", X, Some(from)), db("kong_y", Y, None)],
                shared_backends: Vec::new(),
            }
        }
    }
}

/// The traffic stages of the demo plans: short, so a demo walks to done in minutes.
pub const DEMO_SCHEDULE: &[u8] = &[10, 50, 100];

/// How fast a demo plan goes: its bakes and its gates' window and minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoPacing {
    /// How long each traffic stage (and the monitor step) bakes.
    pub bake: std::time::Duration,
    /// The gates' window.
    pub gate_window: std::time::Duration,
    /// The fewest requests Y must serve in the window for a verdict.
    pub min_requests: u64,
}

impl Default for DemoPacing {
    /// Real time: each stage bakes 20 s, the gates judge 15 s of traffic.
    fn default() -> Self {
        DemoPacing {
            bake: std::time::Duration::from_secs(20),
            gate_window: std::time::Duration::from_secs(15),
            min_requests: 20,
        }
    }
}

/// One command of a step override: argv and the executor that runs it (`None`: on each
/// node the step acts on, on the node's executor; see plan::placement).
struct DemoCommand {
    argv: Vec<String>,
    executor: Option<String>,
}

fn cmd(executor: &str, argv: &[&str]) -> DemoCommand {
    DemoCommand {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        executor: Some(executor.to_string()),
    }
}

/// A command for every node of the step.
fn on_the_step_s_nodes(argv: &[&str]) -> DemoCommand {
    DemoCommand {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        executor: None,
    }
}

/// A YAML scalar, quoted when it could be read as something else.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        && !s.starts_with(['-', '.', ':'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        );
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn names(endpoints: &LabEndpoints, side: ClusterSide, role: Option<Role>) -> Vec<String> {
    endpoints
        .cluster(side)
        .filter(|n| role.is_none_or(|r| n.role == r))
        .map(|n| n.name.clone())
        .collect()
}

fn on_each(nodes: &[String], argv: &[&str]) -> Vec<DemoCommand> {
    nodes.iter().map(|n| cmd(n, argv)).collect()
}

/// The plan commands each step runs on the lab, by step selector.
fn demo_steps(endpoints: &LabEndpoints) -> Vec<(String, Vec<DemoCommand>)> {
    use ClusterSide::{X, Y};
    let all_x = names(endpoints, X, None);
    let all_y = names(endpoints, Y, None);
    let dump = "/var/backups/kong-x.dump";
    let pg_dump = |executor: &str| cmd(executor, &["pg_dump", "-Fc", "-d", "kong", "-f", dump]);
    let restore = cmd(
        "lab",
        &["pg_restore", "--clean", "--if-exists", "-d", "kong_y", dump],
    );
    let step = |id: &str, commands: Vec<DemoCommand>| (id.to_string(), commands);
    match endpoints.scenario {
        Scenario::DualCluster | Scenario::Traditional28 => {
            vec![
                step("backup", vec![pg_dump(&all_x[0])]),
                step("deploy-y", on_each(&all_y, &["lab", "install"])),
                step("restore-db", vec![restore]),
                step(
                    "configure-y",
                    on_each(&all_y, &["kong", "check", "/etc/kong/kong.conf"]),
                ),
                step("start-y", on_each(&all_y, &["kong", "start"])),
                step("decommission-x", on_each(&all_x, &["lab", "decommission"])),
            ]
        }
        Scenario::InPlace => vec![
            step("backup", vec![pg_dump(&all_x[0])]),
            step("stop-x", on_each(&all_x, &["kong", "quit"])),
            step("deploy-y", on_each(&all_y, &["lab", "install"])),
            step("start-y", on_each(&all_y, &["kong", "start"])),
            step("decommission-x", on_each(&all_x, &["lab", "decommission"])),
        ],
        Scenario::BlueGreen => vec![
            step("backup-db", vec![pg_dump(&all_x[0])]),
            step(
                "backup-declarative",
                vec![cmd(
                    "lab",
                    &["deck", "gateway", "dump", "-o", "/var/backups/kong-x.yaml"],
                )],
            ),
            step("deploy-y", on_each(&all_y, &["lab", "install"])),
            step("start-y", on_each(&all_y, &["kong", "start"])),
            step("decommission-x", on_each(&all_x, &["lab", "decommission"])),
        ],
        Scenario::DblessRolling => vec![
            step(
                "backup",
                vec![cmd(
                    &all_x[0],
                    &["cp", "/etc/kong/kong.yml", "/var/backups/kong.yml"],
                )],
            ),
            step("deploy-y", on_each(&all_y, &["lab", "deploy"])),
            step("decommission-x", on_each(&all_x, &["lab", "decommission"])),
        ],
        Scenario::Hybrid => {
            let x_cps = names(endpoints, X, Some(Role::ControlPlane));
            let y_cps = names(endpoints, Y, Some(Role::ControlPlane));
            let x_dps = names(endpoints, X, Some(Role::DataPlane));
            let y_dps = names(endpoints, Y, Some(Role::DataPlane));
            let mut steps = vec![
                step("control-plane/backup", vec![pg_dump(&x_cps[0])]),
                step(
                    "control-plane/deploy-y",
                    on_each(&y_cps, &["lab", "install"]),
                ),
                step("control-plane/restore-db", vec![restore]),
                step(
                    "control-plane/configure-y",
                    on_each(&y_cps, &["kong", "check", "/etc/kong/kong.conf"]),
                ),
                step("control-plane/start-y", on_each(&y_cps, &["kong", "start"])),
                step(
                    "control-plane/decommission-x",
                    on_each(&x_cps, &["lab", "decommission"]),
                ),
            ];
            match demo_waves(y_dps.len()) {
                // A wave's commands name no executor: the plan runs each on every node of
                // the wave, on that node's executor.
                Some(waves) => {
                    for n in 1..=waves.len() {
                        steps.push(step(
                            &format!("data-plane/wave-{n}-start-y"),
                            vec![on_the_step_s_nodes(&["lab", "deploy"])],
                        ));
                        // The last wave stops no X node (they go at decommission-x).
                        if n < waves.len() {
                            steps.push(step(
                                &format!("data-plane/wave-{n}-stop-x"),
                                vec![on_the_step_s_nodes(&["kong", "quit"])],
                            ));
                        }
                    }
                }
                None => steps.push(step(
                    "data-plane/deploy-y",
                    on_each(&y_dps, &["lab", "deploy"]),
                )),
            }
            steps.push(step(
                "data-plane/decommission-x",
                on_each(&x_dps, &["lab", "decommission"]),
            ));
            steps
        }
    }
}

/// The plan `kongup demo` runs for `scenario` on a lab reached at `endpoints`, in the
/// format of docs/plan.md. Every executor is `sim` (one per node, named after it, and
/// `lab` for lab-wide commands); traffic moves through the lab's balancer by a `command`
/// driver (`lab split {x} {y}`). Steps whose work the engine does itself (preflight,
/// smoke tests, traffic stages, monitoring, `kong migrations` through Y's executor, the
/// hybrid compatibility check) get no commands; steps that act on hosts get the sim
/// commands that act on the lab; the rest stay checklist items to confirm.
pub fn demo_plan_yaml(scenario: Scenario, endpoints: &LabEndpoints) -> String {
    demo_plan_yaml_with(scenario, endpoints, &DemoPacing::default())
}

/// [`demo_plan_yaml`] with the bakes and the gates' window of `pacing`.
pub fn demo_plan_yaml_with(
    scenario: Scenario,
    endpoints: &LabEndpoints,
    pacing: &DemoPacing,
) -> String {
    use std::fmt::Write as _;

    let topology = topology(scenario);
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# kongup demo: the {scenario} scenario on the simulated lab. Every command runs on the\n\
         # lab through `sim` executors; nothing here touches a real host."
    );
    // A fleet's demo is another run than the small one: its own name, so its own run
    // directory (the default one is named after the plan).
    let data_planes = endpoints
        .cluster(ClusterSide::X)
        .filter(|n| n.role == Role::DataPlane)
        .count();
    let size = if scenario == Scenario::Hybrid && data_planes != DEFAULT_DATA_PLANES {
        format!("-{data_planes}")
    } else {
        String::new()
    };
    let _ = writeln!(
        y,
        "name: demo {scenario}{size} {} to {}",
        endpoints.from, endpoints.to
    );
    let _ = writeln!(y, "from: {}", endpoints.from);
    let _ = writeln!(y, "to: {}", endpoints.to);
    let _ = writeln!(y, "mode: {}", endpoints.mode.as_str());
    let database = if endpoints.mode == Mode::Dbless {
        "off"
    } else {
        "postgres"
    };
    let _ = writeln!(y, "database: {database}");
    let _ = writeln!(y, "strategy: {}", topology.strategy.as_str());
    let _ = writeln!(y);
    let _ = writeln!(y, "clusters:");
    for side in [ClusterSide::X, ClusterSide::Y] {
        let _ = writeln!(y, "  {}:", side.as_str());
        let _ = writeln!(y, "    nodes:");
        for node in endpoints.cluster(side) {
            let _ = writeln!(y, "      - name: {}", node.name);
            if endpoints.mode == Mode::Hybrid {
                let _ = writeln!(y, "        role: {}", node.role.as_str());
            }
            // Data planes have no Admin API: kongup reads them through their control
            // plane and their Status API.
            if let Some(admin) = &node.admin {
                let _ = writeln!(y, "        admin_url: {admin}");
            }
            let _ = writeln!(y, "        status_url: {}", node.status);
            if let Some(proxy) = &node.proxy {
                let _ = writeln!(y, "        proxy_url: {proxy}");
            }
            let _ = writeln!(y, "        executor: {}", node.name);
        }
        // Y names its own database only where it has one (dual-cluster, hybrid CPs).
        let own_db = endpoints.databases.iter().find(|d| d.cluster == side);
        if let Some(db) = own_db {
            let _ = writeln!(y, "    database:");
            let _ = writeln!(y, "      host: {}", db.host);
            let _ = writeln!(y, "      port: {}", db.port);
            let _ = writeln!(y, "      name: {}", db.name);
            let _ = writeln!(y, "      user: {}", db.user);
        }
    }
    let _ = writeln!(y);
    let _ = writeln!(y, "executors:");
    let _ = writeln!(y, "  lab: {{type: sim}}");
    for node in &endpoints.nodes {
        let _ = writeln!(y, "  {}: {{type: sim}}", node.name);
    }
    let _ = writeln!(y);
    let schedule: Vec<String> = DEMO_SCHEDULE.iter().map(u8::to_string).collect();
    let _ = writeln!(
        y,
        "traffic:\n  driver:\n    type: command\n    set: [lab, split, '{{x}}', '{{y}}']\n    get: [lab, split]\n    executor: lab\n    timeout: 10s\n  schedule: [{}]\n  bake: {}\n  auto_advance: false",
        schedule.join(", "),
        humantime::format_duration(pacing.bake)
    );
    if endpoints.scenario == Scenario::Hybrid
        && let Some(waves) = demo_waves(data_planes)
    {
        let written: Vec<String> = waves.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            y,
            "\n# A fleet rolls its data planes in waves: start a wave's Y nodes, give Y its\n# share of traffic and bake it, stop as many of X's.\nrolling:\n  waves: [{}]\n  between_waves: {}",
            written.join(", "),
            humantime::format_duration(pacing.bake)
        );
    }
    let _ = writeln!(y);
    // In place, X is stopped before Y takes the traffic: there is no X to compare Y with,
    // so only the absolute gates apply (`null` turns a gate off).
    let relative_gates = if endpoints.scenario == Scenario::InPlace {
        "\n  max_error_ratio_delta: null\n  max_p99_ratio: null"
    } else {
        "\n  max_error_ratio_delta: 0.01\n  max_p99_ratio: 3"
    };
    let _ = writeln!(
        y,
        "gates:\n  window: {}\n  max_error_ratio: 0.02\n  max_p99_ms: 500{relative_gates}\n  min_requests: {}\n  consecutive_breaches: 2\n  on_fail: pause",
        humantime::format_duration(pacing.gate_window),
        pacing.min_requests
    );
    let _ = writeln!(y);
    let _ = writeln!(
        y,
        "smoke_tests:\n  - name: key-auth rejects a request without a key\n    path: /secure\n    expect:\n      status: 401\n  - name: the orders route answers from Y\n    path: /orders\n    expect:\n      status: 200\n      body_contains: '\"cluster\":\"y\"'"
    );
    if endpoints.mode != Mode::Dbless {
        let _ = writeln!(y);
        let _ = writeln!(y, "migrations:\n  db_timeout: 60\n  timeout: 5m");
    }
    let _ = writeln!(y);
    let _ = writeln!(y, "steps:");
    for (selector, commands) in demo_steps(endpoints) {
        let _ = writeln!(y, "  {}:", yaml_str(&selector));
        let _ = writeln!(y, "    commands:");
        for command in commands {
            let argv: Vec<String> = command.argv.iter().map(|a| yaml_str(a)).collect();
            let _ = writeln!(y, "      - run: [{}]", argv.join(", "));
            if let Some(executor) = &command.executor {
                let _ = writeln!(y, "        executor: {executor}");
            }
        }
    }
    if endpoints.scenario == Scenario::Hybrid {
        // Control planes proxy nothing and Y has no data planes yet: a bake there has no
        // traffic of Y's to judge, so its gates could only be inconclusive.
        let _ = writeln!(
            y,
            "  skip:\n    - step: control-plane/monitor\n      reason: the control planes proxy no traffic; the data-plane phase watches Y's proxies"
        );
    }
    let _ = writeln!(y);
    let _ = writeln!(y, "command_timeout: 2m");
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_back_from_its_name() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.as_str().parse::<Scenario>(), Ok(scenario));
        }
        assert!("canary".parse::<Scenario>().is_err());
    }

    #[test]
    fn the_hybrid_lab_takes_up_to_a_thousand_data_planes_per_cluster() {
        assert_eq!(data_planes_for(Scenario::Hybrid, None), Ok(2));
        assert_eq!(data_planes_for(Scenario::Hybrid, Some(1000)), Ok(1000));
        assert_eq!(
            data_planes_for(Scenario::Hybrid, Some(1001)),
            Err(SizeError::TooMany(1001))
        );
        assert_eq!(
            data_planes_for(Scenario::Hybrid, Some(0)),
            Err(SizeError::None)
        );
        assert_eq!(
            data_planes_for(Scenario::DualCluster, Some(5)),
            Err(SizeError::NotHybrid(Scenario::DualCluster))
        );
        let t = topology_sized(Scenario::Hybrid, 1000);
        for side in [ClusterSide::X, ClusterSide::Y] {
            let dps: Vec<_> = t
                .nodes
                .iter()
                .filter(|n| n.cluster == side && n.role == Role::DataPlane)
                .collect();
            assert_eq!(dps.len(), 1000);
            assert!(
                dps.iter().all(|n| n.control_plane.as_deref()
                    == Some(format!("cp-{}-1", side.as_str()).as_str()))
            );
        }
        let names: std::collections::BTreeSet<_> = t.nodes.iter().map(|n| &n.name).collect();
        assert_eq!(names.len(), t.nodes.len(), "node names are unique");
    }

    #[test]
    fn a_fleet_of_three_or_more_rolls_in_waves_that_each_add_nodes() {
        let shown =
            |n| demo_waves(n).map(|w| w.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(shown(2), None);
        assert_eq!(shown(3).unwrap(), ["5%", "50%", "100%"]);
        assert_eq!(shown(4).unwrap(), ["5%", "50%", "100%"]);
        assert_eq!(shown(20).unwrap(), ["5%", "25%", "50%", "100%"]);
        assert_eq!(shown(200).unwrap(), ["5%", "25%", "50%", "100%"]);
    }

    #[test]
    fn blue_green_is_a_patch_upgrade_from_2_8_2_or_later() {
        let t = topology(Scenario::BlueGreen);
        assert_eq!(t.from.minor_line(), t.to.minor_line());
        assert!(t.from >= version("2.8.2"));
        assert!(t.to > t.from);
    }

    #[test]
    fn y_nodes_run_the_target_version_and_x_the_source() {
        for scenario in Scenario::ALL {
            let t = topology(scenario);
            for node in &t.nodes {
                let expected = if node.cluster == ClusterSide::X {
                    t.from
                } else {
                    t.to
                };
                assert_eq!(node.version, expected, "{} in {scenario}", node.name);
                if let Some(db) = &node.database {
                    assert!(
                        t.database(db).is_some(),
                        "{} names a missing database",
                        node.name
                    );
                }
            }
        }
    }
}

//! Loads a plan file: YAML → a tree of nodes with positions → the typed `Plan`, then the
//! checks that span sections, then the expansion into steps. Every problem is reported at
//! its `FILE:LINE:COL` with a hint, and all of them are reported, not only the first.
//!
//! We walk the tree ourselves rather than deserialise with serde: serde_yaml keeps no
//! positions and stops at the first error. The format is documented in `docs/plan.md`.

mod diagnostics;
mod read;
mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::chooser::choose;
use super::model::{
    AdminAccess, BackupSpec, Cluster, Clusters, CommandDriver, CommandLine, CommandSpec,
    DatabaseKind, DatabaseSpec, DatabaseTls, ExecutorSpec, FailAction, GateSpec, HaproxyDriver,
    InsertPosition, InsertedStep, KubectlTarget, KubernetesDriver, KubernetesTarget,
    MigrationsSpec, Mode, NginxDriver, Node as PlanNode, Plan, Role, SkippedStep, SmokeTest,
    SslMode, StepCustomisation, StepOverride, StepSelector, Strategy, StrategyChoice, TlsOptions,
    TrafficDriverSpec, TrafficSpec,
};
use super::path::{check_strategy, upgrade_path};
use super::steps::{BackupKind, ExpandedPlan, PhaseName, StepKind};
use super::templates::{CustomisationEntry, expand};
use super::version::KongVersion;

pub use diagnostics::{Diagnostic, PlanErrors};

use diagnostics::{Diagnostics, did_you_mean, one_of};
use read::{
    Fields, argv, boolean, choice, duration, file_path, index, integer, list, looks_secret,
    mapping, number, secret, string, string_list, text, url, version, word,
};
use yaml::{Node, Pos, Value};

/// A plan that passed every check, with the steps it expands into.
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    pub plan: Plan,
    pub expanded: ExpandedPlan,
    /// The file as read, so a run can record exactly what it executed.
    pub source: String,
    /// Hex SHA-256 of `source`; the journal refuses to resume under a changed plan.
    pub source_sha256: String,
}

/// Reads and checks a plan file.
pub fn load_plan(path: &Path) -> Result<LoadedPlan, PlanErrors> {
    let file_name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|error| PlanErrors {
        diagnostics: vec![Diagnostic::whole_file(
            &file_name,
            format!("cannot read the plan file: {error}"),
            Some("check the path and its permissions".into()),
        )],
    })?;
    parse_plan(&source, &file_name)
}

/// Checks a plan given as text; `file_name` is what diagnostics call it.
pub fn parse_plan(source: &str, file_name: &str) -> Result<LoadedPlan, PlanErrors> {
    let mut d = Diagnostics::new(file_name);
    let root = match yaml::parse(source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            d.error_with_hint(
                Pos { line: 1, column: 1 },
                "the plan file is empty",
                "start from one of the examples in assets/plans/ (documented in docs/plan.md)",
            );
            return Err(d.into_errors());
        }
        Err(error) => {
            d.error(error.pos, error.message);
            return Err(d.into_errors());
        }
    };
    let mut loader = Loader {
        d,
        at: Positions::default(),
    };
    let plan = loader.plan(&root);
    let expanded = match plan.as_ref() {
        Some(plan) if loader.d.is_empty() => loader.expand(plan),
        _ => None,
    };
    if let (Some(plan), Some(expanded)) = (&plan, &expanded) {
        loader.check_builtin_database_work(plan, expanded);
    }
    match (plan, expanded) {
        (Some(plan), Some(expanded)) if loader.d.is_empty() => Ok(LoadedPlan {
            plan,
            expanded,
            source: source.to_string(),
            source_sha256: hex::encode(Sha256::digest(source.as_bytes())),
        }),
        _ => Err(loader.d.into_errors()),
    }
}

const ROOT_KEYS: &[&str] = &[
    "name",
    "from",
    "to",
    "mode",
    "database",
    "strategy",
    "spare_capacity",
    "clusters",
    "admin",
    "executors",
    "traffic",
    "gates",
    "smoke_tests",
    "migrations",
    "backup",
    "steps",
    "command_timeout",
];

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Defaults for what the plan leaves out (documented in docs/plan.md).
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DEFAULT_SCHEDULE: &[u8] = &[1, 5, 25, 50, 100];
const DEFAULT_BAKE: Duration = Duration::from_secs(5 * 60);
const DEFAULT_GATE_WINDOW: Duration = Duration::from_secs(60);
const DEFAULT_MAX_ERROR_RATIO_DELTA: f64 = 0.01;
const DEFAULT_MAX_P99_RATIO: f64 = 1.5;
const DEFAULT_MIN_REQUESTS: u64 = 100;
const DEFAULT_CONSECUTIVE_BREACHES: u32 = 3;
const DEFAULT_DB_TIMEOUT_SECS: u32 = 600;
const DEFAULT_MIGRATIONS_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The executor every plan has without declaring it.
const LOCAL_EXECUTOR: &str = "local";

/// The `type` an executor's mapping declares, as written.
fn declared_type(node: &Node) -> Option<&str> {
    let Value::Mapping(entries) = &node.value else {
        return None;
    };
    entries
        .iter()
        .find_map(|(key, value)| match (&key.value, &value.value) {
            (Value::Scalar { text: key, .. }, Value::Scalar { text, .. }) if key == "type" => {
                Some(text.as_str())
            }
            _ => None,
        })
}

/// Where things were written, for checks that span sections and for mapping the
/// templates' errors back to the customisation entry they name.
#[derive(Debug, Default)]
struct Positions {
    root: Pos,
    to: Option<Pos>,
    database: Option<Pos>,
    strategy: Option<Pos>,
    clusters: [Option<Pos>; 2],
    cluster_database: [Option<Pos>; 2],
    node_names: HashMap<String, Pos>,
    /// (executor name, where it is referenced, the referencing key's path)
    executor_refs: Vec<(String, Pos, String)>,
    traffic: Option<Pos>,
    traffic_driver: Option<Pos>,
    smoke_tests: Option<Pos>,
    /// Relative gates the plan sets to a value (key path, where).
    relative_gates: Vec<(String, Pos)>,
    /// One per entry of `plan.steps.overrides`/`inserts`/`skips`, in plan order; the
    /// templates only run on a plan read without errors, so the indexes line up.
    overrides: Vec<Pos>,
    inserts: Vec<Pos>,
    skips: Vec<Pos>,
}

struct Loader {
    d: Diagnostics,
    at: Positions,
}

impl Loader {
    /// Reads every section (each reports its own mistakes), then checks what spans them.
    fn plan(&mut self, root: &Node) -> Option<Plan> {
        self.at.root = root.pos;
        let f = mapping(&mut self.d, root, "", Some(ROOT_KEYS))?;
        let d = &mut self.d;

        let name = f.required(d, "name").and_then(|n| text(d, n, "name"));
        let from = f.required(d, "from").and_then(|n| version(d, n, "from"));
        let to = f.required(d, "to").and_then(|n| {
            self.at.to = Some(n.pos);
            version(d, n, "to")
        });
        let mode = f
            .required(d, "mode")
            .and_then(|n| word::<Mode>(d, n, "mode", &Mode::ALL.map(Mode::as_str)));
        let database = match f.get("database") {
            Some(n) => {
                self.at.database = Some(n.pos);
                word::<DatabaseKind>(
                    d,
                    n,
                    "database",
                    &DatabaseKind::ALL.map(DatabaseKind::as_str),
                )
            }
            None => mode.map(Mode::default_database),
        };
        let strategy = self.strategy(&f);
        let command_timeout = match f.get("command_timeout") {
            Some(n) => duration(&mut self.d, n, "command_timeout"),
            None => Some(DEFAULT_COMMAND_TIMEOUT),
        };

        let clusters = f
            .required(&mut self.d, "clusters")
            .and_then(|n| self.clusters(n, mode, database));
        let admin = match f.get("admin") {
            Some(n) => self.admin(n),
            None => Some(AdminAccess::default()),
        };
        let executors = match f.get("executors") {
            Some(n) => self.executors(n),
            None => Some(BTreeMap::new()),
        }
        .map(|mut executors| {
            executors
                .entry(LOCAL_EXECUTOR.to_string())
                .or_insert(ExecutorSpec::Local);
            executors
        });
        let traffic = match f.get("traffic") {
            Some(n) => {
                self.at.traffic = f.key_pos("traffic");
                self.traffic(n, command_timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT))
            }
            None => Some(TrafficSpec {
                driver: TrafficDriverSpec::Manual,
                driver_given: false,
                schedule: DEFAULT_SCHEDULE.to_vec(),
                bake: DEFAULT_BAKE,
                auto_advance: false,
            }),
        };
        let mut gates = match f.raw("gates") {
            Some(n) => self.gates(n),
            None => Some(default_gates()),
        };
        let smoke_tests = match f.get("smoke_tests") {
            Some(n) => {
                self.at.smoke_tests = f.key_pos("smoke_tests");
                self.smoke_tests(n)
            }
            None => Some(Vec::new()),
        };
        let migrations = match f.get("migrations") {
            Some(n) => self.migrations(n),
            None => Some(MigrationsSpec {
                kong_binary: "kong".into(),
                extra_args: Vec::new(),
                db_timeout: DEFAULT_DB_TIMEOUT_SECS,
                force: false,
                timeout: DEFAULT_MIGRATIONS_TIMEOUT,
            }),
        };
        let backup = match f.get("backup") {
            Some(n) => self.backup(n),
            None => Some(BackupSpec::default()),
        };
        let steps = match f.get("steps") {
            Some(n) => self.steps(n, mode),
            None => Some(StepCustomisation::default()),
        };

        // Checks across sections, on whatever could be read.
        let strategy_fits = match (mode, &strategy) {
            (Some(mode), Some(strategy)) => self.check_strategy_fits_mode(mode, strategy),
            _ => false,
        };
        if let Some(mode) = mode {
            self.check_database_kind(mode, database);
        }
        if let Some(executors) = &executors {
            self.check_executor_refs(executors);
        }
        if let (Some(clusters), Some(tests)) = (&clusters, &smoke_tests) {
            self.check_smoke_tests_reach_y(clusters, tests);
        }
        if let (Some(from), Some(to), Some(mode), Some(database)) = (from, to, mode, database) {
            self.check_path(from, to, mode, database);
            if let Some(StrategyChoice::Fixed(strategy)) = &strategy
                && strategy_fits
                && let Err(why) = check_strategy(*strategy, from, to, mode)
            {
                self.d.error(
                    self.at.strategy.unwrap_or(self.at.root),
                    format!(
                        "strategy `{}` cannot be used here: {why}",
                        strategy.as_str()
                    ),
                );
            }
        }
        // The strategy that will run: the plan's, or the chooser's pick for `auto`.
        let effective = match (&strategy, mode, from, to) {
            (Some(StrategyChoice::Fixed(strategy)), _, _, _) if strategy_fits => Some(*strategy),
            (Some(StrategyChoice::Auto { spare_capacity }), Some(mode), Some(from), Some(to)) => {
                Some(choose(mode, from, to, *spare_capacity).primary)
            }
            _ => None,
        };
        if let (Some(mode), Some(strategy), Some(clusters)) = (mode, effective, &clusters) {
            self.check_strategy_needs(mode, strategy, clusters);
        }
        if let (Some(mode), Some(strategy), Some(gates)) = (mode, effective, &mut gates)
            && !strategy.x_serves_beside_y(mode)
        {
            self.drop_relative_gates(gates);
        }

        let (
            Some(name),
            Some(from),
            Some(to),
            Some(mode),
            Some(database),
            Some(strategy),
            Some(clusters),
            Some(admin),
            Some(executors),
            Some(traffic),
            Some(gates),
            Some(smoke_tests),
            Some(migrations),
            Some(backup),
            Some(steps),
            Some(command_timeout),
        ) = (
            name,
            from,
            to,
            mode,
            database,
            strategy,
            clusters,
            admin,
            executors,
            traffic,
            gates,
            smoke_tests,
            migrations,
            backup,
            steps,
            command_timeout,
        )
        else {
            return None;
        };
        Some(Plan {
            name,
            from,
            to,
            mode,
            database,
            strategy,
            clusters,
            admin,
            executors,
            traffic,
            gates,
            smoke_tests,
            migrations,
            backup,
            steps,
            command_timeout,
        })
    }

    fn strategy(&mut self, f: &Fields) -> Option<StrategyChoice> {
        let d = &mut self.d;
        let fixed = f.required(d, "strategy").and_then(|n| {
            self.at.strategy = Some(n.pos);
            let written = choice(d, n, "strategy", &StrategyChoice::WORDS)?;
            StrategyChoice::parse_word(written).ok()
        });
        let spare_capacity = f
            .get("spare_capacity")
            .map(|n| boolean(d, n, "spare_capacity"));
        match (fixed?, spare_capacity) {
            (None, Some(spare_capacity)) => {
                spare_capacity.map(|spare_capacity| StrategyChoice::Auto { spare_capacity })
            }
            (None, None) => {
                d.error_with_hint(
                    self.at.strategy.unwrap_or(f.pos),
                    "strategy `auto` needs `spare_capacity: true` or `false`",
                    "true when a second cluster can run beside X for the upgrade (then dual-cluster is chosen), false otherwise",
                );
                None
            }
            (Some(strategy), Some(_)) => {
                d.error_with_hint(
                    f.key_pos("spare_capacity").unwrap_or(f.pos),
                    format!("`spare_capacity` is only read with `strategy: auto`, and the strategy is `{}`", strategy.as_str()),
                    "remove `spare_capacity`, or write `strategy: auto` to let kongup choose",
                );
                // Still returned, so the checks that need the strategy run too.
                Some(StrategyChoice::Fixed(strategy))
            }
            (Some(strategy), None) => Some(StrategyChoice::Fixed(strategy)),
        }
    }

    fn clusters(
        &mut self,
        node: &Node,
        mode: Option<Mode>,
        database: Option<DatabaseKind>,
    ) -> Option<Clusters> {
        let f = mapping(&mut self.d, node, "clusters", Some(&["x", "y"]))?;
        self.at.clusters = [f.key_pos("x"), f.key_pos("y")];
        let x = f
            .required(&mut self.d, "x")
            .and_then(|n| self.cluster(n, "clusters.x", 0, mode, database));
        let y = f
            .required(&mut self.d, "y")
            .and_then(|n| self.cluster(n, "clusters.y", 1, mode, database));
        Some(Clusters { x: x?, y: y? })
    }

    /// `side` is 0 for X and 1 for Y.
    fn cluster(
        &mut self,
        node: &Node,
        path: &str,
        side: usize,
        mode: Option<Mode>,
        database: Option<DatabaseKind>,
    ) -> Option<Cluster> {
        let f = mapping(&mut self.d, node, path, Some(&["nodes", "database"]))?;
        let mut ok = true;
        let mut nodes = Vec::new();
        let items = f
            .required(&mut self.d, "nodes")
            .and_then(|n| list(&mut self.d, n, &f.path_of("nodes")));
        match items {
            Some([]) => {
                self.d.error(
                    f.get("nodes").map_or(f.pos, |n| n.pos),
                    format!("`{}` needs at least one node", f.path_of("nodes")),
                );
                ok = false;
            }
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    match self.node(item, &index(&f.path_of("nodes"), i), mode) {
                        Some(node) => nodes.push(node),
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
        if ok && mode == Some(Mode::Hybrid) {
            let pos = f.key_pos("nodes").unwrap_or(f.pos);
            for role in [Role::ControlPlane, Role::DataPlane] {
                if !nodes.iter().any(|n| n.role == role) {
                    self.d.error_with_hint(
                        pos,
                        format!("`{path}` has no `{}` node; a hybrid cluster needs control planes and data planes", role.as_str()),
                        "list every node of the cluster with its role",
                    );
                    ok = false;
                }
            }
        }
        let database = match f.get("database") {
            Some(n) => {
                self.at.cluster_database[side] = f.key_pos("database");
                match self.database_spec(n, &f.path_of("database"), database) {
                    Some(spec) => Some(spec),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        ok.then_some(Cluster { nodes, database })
    }

    fn node(&mut self, node: &Node, path: &str, mode: Option<Mode>) -> Option<PlanNode> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&[
                "name",
                "admin_url",
                "status_url",
                "proxy_url",
                "role",
                "executor",
            ]),
        )?;
        let mut ok = true;
        let name = f
            .required(d, "name")
            .and_then(|n| text(d, n, &f.path_of("name")));
        if let (Some(name), Some(n)) = (&name, f.get("name")) {
            if let Some(first) = self.at.node_names.get(name) {
                d.error_with_hint(
                    n.pos,
                    format!("node name `{name}` is used twice"),
                    format!(
                        "the first is at line {}, column {}; every node needs its own name",
                        first.line, first.column
                    ),
                );
                ok = false;
            } else {
                self.at.node_names.insert(name.clone(), n.pos);
            }
        }
        let mut urls = [None, None, None];
        for (slot, key) in urls
            .iter_mut()
            .zip(["admin_url", "status_url", "proxy_url"])
        {
            if let Some(n) = f.get(key) {
                *slot = url(d, n, &f.path_of(key));
                ok &= slot.is_some();
            }
        }
        let role = match f.get("role") {
            Some(n) => {
                let role = word::<Role>(d, n, &f.path_of("role"), &Role::ALL.map(Role::as_str));
                match (mode, role) {
                    (Some(Mode::Hybrid), Some(Role::Traditional)) => {
                        d.error_with_hint(
                            n.pos,
                            format!("`{}`: a hybrid node is a `control_plane` or a `data_plane`, not `traditional`", f.path_of("role")),
                            "control planes hold the database and the Admin API; data planes proxy traffic",
                        );
                        None
                    }
                    (Some(mode @ (Mode::Traditional | Mode::Dbless)), Some(role))
                        if role != Role::Traditional =>
                    {
                        d.error_with_hint(
                            n.pos,
                            format!(
                                "`{}`: role `{}` belongs to hybrid mode, and this plan's mode is `{}`",
                                f.path_of("role"),
                                role.as_str(),
                                mode.as_str()
                            ),
                            format!("in {} mode every node is `traditional`; leave `role` out", mode.as_str()),
                        );
                        None
                    }
                    (_, role) => role,
                }
            }
            None if mode == Some(Mode::Hybrid) => {
                d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `role` in hybrid mode"),
                    "write `role: control_plane` or `role: data_plane`",
                );
                None
            }
            None => Some(Role::Traditional),
        };
        let executor = f.get("executor").and_then(|n| {
            let executor = text(d, n, &f.path_of("executor"))?;
            self.at
                .executor_refs
                .push((executor.clone(), n.pos, f.path_of("executor")));
            Some(executor)
        });
        ok &= f.get("executor").is_none() || executor.is_some();
        let [admin_url, status_url, proxy_url] = urls;
        if !ok {
            return None;
        }
        Some(PlanNode {
            name: name?,
            admin_url,
            status_url,
            proxy_url,
            role: role?,
            executor,
        })
    }

    fn database_spec(
        &mut self,
        node: &Node,
        path: &str,
        kind: Option<DatabaseKind>,
    ) -> Option<DatabaseSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&["host", "port", "name", "user", "password", "tls"]),
        )?;
        let host = f
            .required(d, "host")
            .and_then(|n| text(d, n, &f.path_of("host")));
        let default_port = if kind == Some(DatabaseKind::Cassandra) {
            9042
        } else {
            5432
        };
        let port = optional(f.get("port"), default_port, |n| {
            integer(d, n, &f.path_of("port"), 1..=65535)
        });
        let name = optional(f.get("name"), "kong".to_string(), |n| {
            text(d, n, &f.path_of("name"))
        });
        let user = optional(f.get("user"), "kong".to_string(), |n| {
            text(d, n, &f.path_of("user"))
        });
        let password = f
            .get("password")
            .map(|n| secret(d, n, &f.path_of("password")));
        let tls = match f.get("tls") {
            Some(n) => self.database_tls(n, &f.path_of("tls")),
            None => Some(DatabaseTls::default()),
        };
        Some(DatabaseSpec {
            host: host?,
            port: port?,
            name: name?,
            user: user?,
            password: match password {
                Some(secret) => Some(secret?),
                None => None,
            },
            tls: tls?,
        })
    }

    fn database_tls(&mut self, node: &Node, path: &str) -> Option<DatabaseTls> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&["mode", "ca_file", "client_cert", "client_key"]),
        )?;
        // Each key is read (and its errors reported) before any is given up on.
        let mode = f.get("mode").map(|n| {
            choice(d, n, &f.path_of("mode"), &SslMode::WORDS).and_then(SslMode::from_word)
        });
        let (mut ok, files) = tls_files(d, &f, path);
        if matches!(mode, Some(Some(SslMode::Disable))) {
            for key in ["ca_file", "client_cert"]
                .into_iter()
                .filter(|key| f.has(key))
            {
                d.error_with_hint(
                    f.key_pos(key).unwrap_or(f.pos),
                    format!("`{path}.{key}` has no use with `mode: disable` (no TLS at all)"),
                    format!("remove {key}, or use `mode: verify-full`"),
                );
                ok = false;
            }
        }
        let mode = match mode {
            Some(mode) => Some(mode?),
            None => None,
        };
        let [ca_file, client_cert, client_key] = files;
        ok.then_some(DatabaseTls {
            mode,
            ca_file,
            client_cert,
            client_key,
        })
    }

    fn admin(&mut self, node: &Node) -> Option<AdminAccess> {
        let d = &mut self.d;
        let f = mapping(d, node, "admin", Some(&["token", "tls"]))?;
        let token = f.get("token").map(|n| secret(d, n, "admin.token"));
        let tls = match f.get("tls") {
            Some(n) => self.tls(n),
            None => Some(TlsOptions::default()),
        };
        Some(AdminAccess {
            token: match token {
                Some(token) => Some(token?),
                None => None,
            },
            tls: tls?,
        })
    }

    fn tls(&mut self, node: &Node) -> Option<TlsOptions> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "admin.tls",
            Some(&["ca_file", "client_cert", "client_key", "insecure"]),
        )?;
        let (ok, files) = tls_files(d, &f, "admin.tls");
        let insecure = optional(f.get("insecure"), false, |n| {
            boolean(d, n, "admin.tls.insecure")
        });
        let [ca_file, client_cert, client_key] = files;
        ok.then_some(TlsOptions {
            ca_file,
            client_cert,
            client_key,
            insecure: insecure?,
        })
    }

    fn executors(&mut self, node: &Node) -> Option<BTreeMap<String, ExecutorSpec>> {
        let f = mapping(&mut self.d, node, "executors", None)?;
        let mut executors = BTreeMap::new();
        let mut ok = true;
        for (name, key, value) in f.entries() {
            // `local` is this machine for every node and command that names no executor:
            // another type under that name would silently send them elsewhere.
            if name == LOCAL_EXECUTOR
                && let Some(kind) = declared_type(value)
                && kind != LOCAL_EXECUTOR
            {
                self.d.error_with_hint(
                    key.pos,
                    format!(
                        "`executors.local` redefines kongup's own executor `local` (this machine) as type `{kind}`: every node and command that names no executor would run there"
                    ),
                    "name it differently (e.g. `kong-host`) and set that name as `executor` on the nodes and commands that should run there; `local` needs no line",
                );
                ok = false;
            }
            match self.executor(value, &f.path_of(name)) {
                Some(spec) => {
                    executors.insert(name.to_string(), spec);
                }
                None => ok = false,
            }
        }
        ok.then_some(executors)
    }

    fn executor(&mut self, node: &Node, path: &str) -> Option<ExecutorSpec> {
        let d = &mut self.d;
        let mut f = mapping(d, node, path, None)?;
        let kind = f.required(d, "type").and_then(|n| {
            choice(
                d,
                n,
                &f.path_of("type"),
                &["local", "ssh", "kubectl", "sim"],
            )
        });
        let allowed: &[&str] = match kind {
            Some("ssh") => &["type", "host", "user", "port", "identity_file"],
            Some("kubectl") => &[
                "type",
                "context",
                "namespace",
                "pod",
                "selector",
                "container",
            ],
            Some(_) => &["type"],
            None => return None,
        };
        f.restrict(d, allowed);
        let opt_text = |d: &mut Diagnostics, key: &str| -> Option<Option<String>> {
            match f.get(key) {
                Some(n) => text(d, n, &f.path_of(key)).map(Some),
                None => Some(None),
            }
        };
        match kind? {
            "local" => Some(ExecutorSpec::Local),
            "sim" => Some(ExecutorSpec::Sim),
            "ssh" => {
                let host = f
                    .required(d, "host")
                    .and_then(|n| text(d, n, &f.path_of("host")));
                let user = opt_text(d, "user");
                let port = match f.get("port") {
                    Some(n) => integer(d, n, &f.path_of("port"), 1..=65535).map(Some),
                    None => Some(None),
                };
                let identity_file = match f.get("identity_file") {
                    Some(n) => file_path(d, n, &f.path_of("identity_file")).map(Some),
                    None => Some(None),
                };
                Some(ExecutorSpec::Ssh {
                    host: host?,
                    user: user?,
                    port: port?,
                    identity_file: identity_file?,
                })
            }
            _kubectl => {
                let context = opt_text(d, "context");
                let namespace = opt_text(d, "namespace");
                let container = opt_text(d, "container");
                let target = match (f.get("pod"), f.get("selector")) {
                    (Some(n), None) => text(d, n, &f.path_of("pod")).map(KubectlTarget::Pod),
                    (None, Some(n)) => {
                        text(d, n, &f.path_of("selector")).map(KubectlTarget::Selector)
                    }
                    (Some(_), Some(_)) => {
                        d.error(
                            f.pos,
                            format!("`{path}` gives both `pod` and `selector`; keep one"),
                        );
                        None
                    }
                    (None, None) => {
                        d.error_with_hint(
                            f.pos,
                            format!("`{path}` needs `pod` or `selector`"),
                            "name the pod (`pod: kong-0`) or a label selector (`selector: app=kong`)",
                        );
                        None
                    }
                };
                Some(ExecutorSpec::Kubectl {
                    context: context?,
                    namespace: namespace?,
                    target: target?,
                    container: container?,
                })
            }
        }
    }

    fn traffic(&mut self, node: &Node, command_timeout: Duration) -> Option<TrafficSpec> {
        let f = mapping(
            &mut self.d,
            node,
            "traffic",
            Some(&["driver", "schedule", "bake", "auto_advance"]),
        )?;
        let driver = match f.get("driver") {
            Some(n) => {
                self.at.traffic_driver = Some(n.pos);
                self.driver(n, command_timeout)
            }
            None => Some(TrafficDriverSpec::Manual),
        };
        let d = &mut self.d;
        let schedule = match f.get("schedule") {
            Some(n) => schedule(d, n),
            None => Some(DEFAULT_SCHEDULE.to_vec()),
        };
        let bake = optional(f.get("bake"), DEFAULT_BAKE, |n| {
            duration(d, n, "traffic.bake")
        });
        let auto_advance = optional(f.get("auto_advance"), false, |n| {
            boolean(d, n, "traffic.auto_advance")
        });
        // Nobody sets a manual split by itself: advancing without a confirm would record
        // a stage that never happened.
        let auto_advance = match (&driver, auto_advance, f.get("auto_advance")) {
            (Some(TrafficDriverSpec::Manual), Some(true), Some(n)) => {
                d.error_with_hint(
                    n.pos,
                    "`traffic.auto_advance: true` needs a driver kongup can set: with the \
                     manual driver every stage is set by hand and must be confirmed",
                    "remove auto_advance, or give traffic.driver a haproxy, nginx, kubernetes \
                     or command driver",
                );
                None
            }
            (_, auto_advance, _) => auto_advance,
        };
        Some(TrafficSpec {
            driver_given: f.has("driver"),
            driver: driver?,
            schedule: schedule?,
            bake: bake?,
            auto_advance: auto_advance?,
        })
    }

    fn driver(&mut self, node: &Node, command_timeout: Duration) -> Option<TrafficDriverSpec> {
        let path = "traffic.driver";
        let d = &mut self.d;
        let mut f = mapping(d, node, path, None)?;
        let kind = f.required(d, "type").and_then(|n| {
            choice(
                d,
                n,
                "traffic.driver.type",
                &["haproxy", "nginx", "kubernetes", "command", "manual"],
            )
        })?;
        let allowed: &[&str] = match kind {
            "haproxy" => &["type", "socket", "backend", "x_servers", "y_servers"],
            "nginx" => &[
                "type",
                "upstream_file",
                "upstream_name",
                "x_servers",
                "y_servers",
                "binary",
                "config",
            ],
            "kubernetes" => &[
                "type",
                "executor",
                "context",
                "namespace",
                "httproute",
                "ingress_canary",
            ],
            "command" => &["type", "set", "get", "executor", "timeout"],
            _manual => &["type"],
        };
        f.restrict(d, allowed);
        let req_text = |d: &mut Diagnostics, key: &str| {
            f.required(d, key).and_then(|n| text(d, n, &f.path_of(key)))
        };
        match kind {
            "haproxy" => {
                let socket = req_text(d, "socket");
                let backend = req_text(d, "backend");
                let (x_servers, y_servers) = self.server_lists(&f, false);
                Some(TrafficDriverSpec::Haproxy(HaproxyDriver {
                    socket: socket?,
                    backend: backend?,
                    x_servers: x_servers?,
                    y_servers: y_servers?,
                }))
            }
            "nginx" => {
                let upstream_file = f
                    .required(d, "upstream_file")
                    .and_then(|n| file_path(d, n, &f.path_of("upstream_file")));
                let upstream_name = req_text(d, "upstream_name");
                let binary = optional(f.get("binary"), "nginx".to_string(), |n| {
                    text(d, n, &f.path_of("binary"))
                });
                let config = match f.get("config") {
                    Some(n) => file_path(d, n, &f.path_of("config")).map(Some),
                    None => Some(None),
                };
                let (x_servers, y_servers) = self.server_lists(&f, true);
                Some(TrafficDriverSpec::Nginx(NginxDriver {
                    upstream_file: upstream_file?,
                    upstream_name: upstream_name?,
                    x_servers: x_servers?,
                    y_servers: y_servers?,
                    binary: binary?,
                    config: config?,
                }))
            }
            "kubernetes" => {
                let executor = self.executor_ref(&f, "executor");
                let d = &mut self.d;
                let context = optional_text(d, &f, "context");
                let namespace = optional_text(d, &f, "namespace");
                let target = match (f.get("httproute"), f.get("ingress_canary")) {
                    (Some(n), None) => {
                        let g = mapping(
                            d,
                            n,
                            &f.path_of("httproute"),
                            Some(&["name", "rule", "x_backend", "y_backend"]),
                        )?;
                        let name = g
                            .required(d, "name")
                            .and_then(|n| text(d, n, &g.path_of("name")));
                        let rule = optional(g.get("rule"), 0usize, |n| {
                            integer(d, n, &g.path_of("rule"), 0..=usize::MAX)
                        });
                        let x_backend = g
                            .required(d, "x_backend")
                            .and_then(|n| text(d, n, &g.path_of("x_backend")));
                        let y_backend = g
                            .required(d, "y_backend")
                            .and_then(|n| text(d, n, &g.path_of("y_backend")));
                        if let (Some(x), Some(y)) = (&x_backend, &y_backend)
                            && x == y
                        {
                            d.error(
                                g.get("y_backend").map_or(g.pos, |n| n.pos),
                                format!(
                                    "`{}` is the same backend as X's; Y needs its own Service",
                                    g.path_of("y_backend")
                                ),
                            );
                            return None;
                        }
                        Some(KubernetesTarget::HttpRoute {
                            name: name?,
                            rule: rule?,
                            x_backend: x_backend?,
                            y_backend: y_backend?,
                        })
                    }
                    (None, Some(n)) => {
                        let g = mapping(d, n, &f.path_of("ingress_canary"), Some(&["name"]))?;
                        let name = g
                            .required(d, "name")
                            .and_then(|n| text(d, n, &g.path_of("name")));
                        Some(KubernetesTarget::IngressCanary { name: name? })
                    }
                    (Some(_), Some(_)) => {
                        d.error(
                            f.pos,
                            "`traffic.driver` gives both `httproute` and `ingress_canary`; keep one",
                        );
                        None
                    }
                    (None, None) => {
                        d.error_with_hint(
                            f.pos,
                            "`traffic.driver` of type `kubernetes` needs `httproute` or `ingress_canary`",
                            "httproute: {name, rule, x_backend, y_backend} for a Gateway API route; ingress_canary: {name} for an ingress-nginx canary",
                        );
                        None
                    }
                };
                Some(TrafficDriverSpec::Kubernetes(KubernetesDriver {
                    executor: executor?,
                    context: context?,
                    namespace: namespace?,
                    target: target?,
                }))
            }
            "command" => {
                let executor = self.executor_ref(&f, "executor");
                let d = &mut self.d;
                let set = f
                    .required(d, "set")
                    .and_then(|n| argv(d, n, &f.path_of("set")));
                if let (Some(set), Some(n)) = (&set, f.get("set"))
                    && !set.iter().any(|a| a.contains("{x}") || a.contains("{y}"))
                {
                    d.error_with_hint(
                        n.pos,
                        "`traffic.driver.set` never mentions `{x}` or `{y}`, so the split would not reach the balancer",
                        "put `{y}` (Y's percentage) and/or `{x}` (X's) in the arguments, e.g. [/usr/local/bin/set-split, \"{x}\", \"{y}\"]",
                    );
                    return None;
                }
                let get = match f.get("get") {
                    Some(n) => argv(d, n, &f.path_of("get")).map(Some),
                    None => Some(None),
                };
                let timeout = optional(f.get("timeout"), command_timeout, |n| {
                    duration(d, n, &f.path_of("timeout"))
                });
                Some(TrafficDriverSpec::Command(CommandDriver {
                    set: set?,
                    get: get?,
                    executor: executor?,
                    timeout: timeout?,
                }))
            }
            _manual => Some(TrafficDriverSpec::Manual),
        }
    }

    /// `x_servers` and `y_servers` of a balancer: both needed, neither empty, no server in
    /// both. `host_port` asks that each be `host:port`.
    fn server_lists(
        &mut self,
        f: &Fields,
        host_port: bool,
    ) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let d = &mut self.d;
        let mut read = |key: &str| -> Option<Vec<String>> {
            let n = f.required(d, key)?;
            let servers = string_list(d, n, &f.path_of(key))?;
            if servers.is_empty() {
                d.error(
                    n.pos,
                    format!("`{}` needs at least one server", f.path_of(key)),
                );
                return None;
            }
            if host_port {
                let bad: Vec<&String> = servers
                    .iter()
                    .filter(|s| {
                        s.rsplit_once(':').is_none_or(|(host, port)| {
                            host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0)
                        })
                    })
                    .collect();
                if let Some(first) = bad.first() {
                    d.error_with_hint(
                        n.pos,
                        format!("`{}`: `{first}` is not host:port", f.path_of(key)),
                        "write each proxy as host:port, e.g. 10.0.2.11:8000",
                    );
                    return None;
                }
            }
            Some(servers)
        };
        let x = read("x_servers");
        let y = read("y_servers");
        let shared = match (&x, &y) {
            (Some(x), Some(y)) => y.iter().find(|s| x.contains(s)).cloned(),
            _ => None,
        };
        if let Some(shared) = shared {
            self.d.error(
                f.get("y_servers").map_or(f.pos, |n| n.pos),
                format!("`{shared}` is in both `x_servers` and `y_servers`; a server belongs to one cluster"),
            );
            return (x, None);
        }
        (x, y)
    }

    /// An optional executor name at `key`, remembered so its existence is checked later.
    fn executor_ref(&mut self, f: &Fields, key: &str) -> Option<Option<String>> {
        match f.get(key) {
            Some(n) => {
                let name = text(&mut self.d, n, &f.path_of(key))?;
                self.at
                    .executor_refs
                    .push((name.clone(), n.pos, f.path_of(key)));
                Some(Some(name))
            }
            None => Some(None),
        }
    }

    fn gates(&mut self, node: &Node) -> Option<GateSpec> {
        let d = &mut self.d;
        if node.is_null() {
            return Some(default_gates());
        }
        let f = mapping(
            d,
            node,
            "gates",
            Some(&[
                "window",
                "max_error_ratio",
                "max_p99_ms",
                "max_error_ratio_delta",
                "max_p99_ratio",
                "min_requests",
                "consecutive_breaches",
                "on_fail",
            ]),
        )?;
        let window = optional(f.get("window"), DEFAULT_GATE_WINDOW, |n| {
            duration(d, n, "gates.window")
        });
        for key in ["max_error_ratio_delta", "max_p99_ratio"] {
            if let Some(n) = f.raw(key).filter(|n| !n.is_null()) {
                self.at.relative_gates.push((f.path_of(key), n.pos));
            }
        }
        // A threshold left out takes its default; `null` turns it off.
        let mut threshold = |key: &str, default: Option<f64>, ratio: bool| match f.raw(key) {
            None => Some(default),
            Some(n) if n.is_null() => Some(None),
            Some(n) => {
                let value = number(d, n, &f.path_of(key))?;
                if ratio && !(0.0..=1.0).contains(&value) {
                    d.error_with_hint(
                        n.pos,
                        format!("`{}` is a ratio from 0 to 1, found {value}", f.path_of(key)),
                        "write 0.01 for 1%",
                    );
                    return None;
                }
                if !ratio && value <= 0.0 {
                    d.error(
                        n.pos,
                        format!("`{}` must be more than 0, found {value}", f.path_of(key)),
                    );
                    return None;
                }
                Some(Some(value))
            }
        };
        let max_error_ratio = threshold("max_error_ratio", None, true);
        let max_p99_ms = threshold("max_p99_ms", None, false);
        let max_error_ratio_delta = threshold(
            "max_error_ratio_delta",
            Some(DEFAULT_MAX_ERROR_RATIO_DELTA),
            true,
        );
        let max_p99_ratio = threshold("max_p99_ratio", Some(DEFAULT_MAX_P99_RATIO), false);
        let min_requests = optional(f.get("min_requests"), DEFAULT_MIN_REQUESTS, |n| {
            integer(d, n, "gates.min_requests", 0..=u64::MAX)
        });
        let consecutive_breaches = optional(
            f.get("consecutive_breaches"),
            DEFAULT_CONSECUTIVE_BREACHES,
            |n| integer(d, n, "gates.consecutive_breaches", 1..=u32::MAX),
        );
        let on_fail = optional(f.get("on_fail"), FailAction::Pause, |n| {
            word::<FailAction>(
                d,
                n,
                "gates.on_fail",
                &FailAction::ALL.map(FailAction::as_str),
            )
        });
        Some(GateSpec {
            window: window?,
            max_error_ratio: max_error_ratio?,
            max_p99_ms: max_p99_ms?,
            max_error_ratio_delta: max_error_ratio_delta?,
            max_p99_ratio: max_p99_ratio?,
            min_requests: min_requests?,
            consecutive_breaches: consecutive_breaches?,
            on_fail: on_fail?,
        })
    }

    fn smoke_tests(&mut self, node: &Node) -> Option<Vec<SmokeTest>> {
        let items = list(&mut self.d, node, "smoke_tests")?;
        let mut tests = Vec::with_capacity(items.len());
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.smoke_test(item, &index("smoke_tests", i)) {
                Some((test, name_pos)) => {
                    if let Some(first) = names.get(&test.name) {
                        self.d.error(
                            name_pos,
                            format!(
                                "smoke test name `{}` is used twice (first at line {}, column {})",
                                test.name, first.line, first.column
                            ),
                        );
                        ok = false;
                    } else {
                        names.insert(test.name.clone(), name_pos);
                    }
                    tests.push(test);
                }
                None => ok = false,
            }
        }
        ok.then_some(tests)
    }

    fn smoke_test(&mut self, node: &Node, path: &str) -> Option<(SmokeTest, Pos)> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&["name", "method", "path", "headers", "body", "expect"]),
        )?;
        let name = f
            .required(d, "name")
            .and_then(|n| text(d, n, &f.path_of("name")));
        let method = optional(f.get("method"), "GET".to_string(), |n| {
            choice(d, n, &f.path_of("method"), HTTP_METHODS).map(str::to_string)
        });
        let request_path = f.required(d, "path").and_then(|n| {
            let value = text(d, n, &f.path_of("path"))?;
            if !value.starts_with('/') {
                d.error_with_hint(
                    n.pos,
                    format!("`{}`: `{value}` must start with `/`", f.path_of("path")),
                    "it is the path (and query) sent to each Y proxy, e.g. /orders?limit=1",
                );
                return None;
            }
            Some(value)
        });
        let headers = match f.get("headers") {
            Some(n) => request_headers(d, n, &f.path_of("headers")),
            None => Some((BTreeMap::new(), BTreeMap::new())),
        };
        let body = match f.get("body") {
            Some(n) => string(d, n, &f.path_of("body")).map(Some),
            None => Some(None),
        };
        let expect = f
            .required(d, "expect")
            .and_then(|n| expectation(d, n, &f.path_of("expect")));
        let (headers, secret_headers) = headers?;
        let (expect_status, expect_headers, expect_body_contains) = expect?;
        Some((
            SmokeTest {
                name: name?,
                method: method?,
                path: request_path?,
                headers,
                secret_headers,
                body: body?,
                expect_status,
                expect_headers,
                expect_body_contains,
            },
            f.get("name").map_or(f.pos, |n| n.pos),
        ))
    }

    fn migrations(&mut self, node: &Node) -> Option<MigrationsSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "migrations",
            Some(&[
                "kong_binary",
                "extra_args",
                "db_timeout",
                "force",
                "timeout",
            ]),
        )?;
        let kong_binary = optional(f.get("kong_binary"), "kong".to_string(), |n| {
            text(d, n, "migrations.kong_binary")
        });
        let extra_args = optional(f.get("extra_args"), Vec::new(), |n| {
            string_list(d, n, "migrations.extra_args")
        });
        let db_timeout = optional(f.get("db_timeout"), DEFAULT_DB_TIMEOUT_SECS, |n| {
            seconds(d, n, "migrations.db_timeout")
        });
        let force = optional(f.get("force"), false, |n| boolean(d, n, "migrations.force"));
        let timeout = optional(f.get("timeout"), DEFAULT_MIGRATIONS_TIMEOUT, |n| {
            duration(d, n, "migrations.timeout")
        });
        if let (Some(db_timeout), Some(timeout)) = (db_timeout, timeout)
            && timeout <= Duration::from_secs(u64::from(db_timeout))
        {
            d.error_with_hint(
                f.key_pos("timeout").or(f.key_pos("db_timeout")).unwrap_or(f.pos),
                format!(
                    "`migrations.timeout` ({}) is not longer than `migrations.db_timeout` ({db_timeout}s): kongup would stop the migration while Kong still waits for the database",
                    humantime::format_duration(timeout)
                ),
                "make `timeout` longer than `db_timeout`",
            );
            return None;
        }
        Some(MigrationsSpec {
            kong_binary: kong_binary?,
            extra_args: extra_args?,
            db_timeout: db_timeout?,
            force: force?,
            timeout: timeout?,
        })
    }

    fn backup(&mut self, node: &Node) -> Option<BackupSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "backup",
            Some(&["declarative_config", "kong_conf", "keyring"]),
        )?;
        let declarative_config = match f.get("declarative_config") {
            Some(n) => file_path(d, n, "backup.declarative_config").map(Some),
            None => Some(None),
        };
        let kong_conf = match f.get("kong_conf") {
            Some(n) => file_path(d, n, "backup.kong_conf").map(Some),
            None => Some(None),
        };
        let keyring = optional(f.get("keyring"), Vec::new(), |n| {
            string_list(d, n, "backup.keyring").map(|v| v.into_iter().map(Into::into).collect())
        });
        Some(BackupSpec {
            declarative_config: declarative_config?,
            kong_conf: kong_conf?,
            keyring: keyring?,
        })
    }

    fn steps(&mut self, node: &Node, mode: Option<Mode>) -> Option<StepCustomisation> {
        let f = mapping(&mut self.d, node, "steps", None)?;
        let mut custom = StepCustomisation::default();
        let mut ok = true;
        for (key, key_node, value) in f.entries() {
            let path = f.path_of(key);
            match key {
                "insert" => match self.inserts(value, mode) {
                    Some(inserts) => custom.inserts = inserts,
                    None => ok = false,
                },
                "skip" => match self.skips(value, mode) {
                    Some(skips) => custom.skips = skips,
                    None => ok = false,
                },
                _ => {
                    let step = selector(&mut self.d, key, key_node.pos, &path, mode);
                    match (step, self.step_override(value, &path)) {
                        (Some(step), Some((commands, timeout, builtin))) => {
                            self.at.overrides.push(key_node.pos);
                            custom.overrides.push(StepOverride {
                                step,
                                commands,
                                timeout,
                                builtin,
                            });
                        }
                        _ => ok = false,
                    }
                }
            }
        }
        ok.then_some(custom)
    }

    fn step_override(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<(Vec<CommandSpec>, Option<Duration>, bool)> {
        let f = mapping(
            &mut self.d,
            node,
            path,
            Some(&["commands", "timeout", "builtin"]),
        )?;
        let builtin = match f.get("builtin") {
            Some(n) => boolean(&mut self.d, n, &f.path_of("builtin")),
            None => Some(true),
        };
        let commands = match (f.get("commands"), builtin) {
            (Some(n), _) => self.commands(n, &f.path_of("commands")),
            // `builtin: false` alone makes the step a checklist item.
            (None, Some(false)) => Some(Vec::new()),
            // `builtin` itself is wrong: that error is enough.
            (None, None) => None,
            (None, Some(true)) => {
                self.d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `commands`"),
                    "list the commands the step runs; `timeout` is the default for each of them \
                     (or write `builtin: false` alone to make the step a checklist item)",
                );
                None
            }
        };
        let timeout = match f.get("timeout") {
            Some(n) => duration(&mut self.d, n, &f.path_of("timeout")).map(Some),
            None => Some(None),
        };
        Some((commands?, timeout?, builtin?))
    }

    fn commands(&mut self, node: &Node, path: &str) -> Option<Vec<CommandSpec>> {
        let items = list(&mut self.d, node, path)?;
        let mut commands = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.command(item, &index(path, i)) {
                Some(command) => commands.push(command),
                None => ok = false,
            }
        }
        ok.then_some(commands)
    }

    fn command(&mut self, node: &Node, path: &str) -> Option<CommandSpec> {
        let f = mapping(
            &mut self.d,
            node,
            path,
            Some(&["run", "shell", "executor", "timeout"]),
        )?;
        let executor = self.executor_ref(&f, "executor");
        let d = &mut self.d;
        let program = match (f.get("run"), f.get("shell")) {
            (Some(n), None) => argv(d, n, &f.path_of("run")).map(CommandLine::Argv),
            (None, Some(n)) => text(d, n, &f.path_of("shell")).map(CommandLine::Shell),
            (Some(_), Some(_)) => {
                d.error(
                    f.pos,
                    format!("`{path}` gives both `run` and `shell`; keep one"),
                );
                None
            }
            (None, None) => {
                d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `run` or `shell`"),
                    "run: [program, arg, …] runs without a shell; shell: \"…\" runs under sh -c",
                );
                None
            }
        };
        // `kong migrations reset` and `bootstrap -f` destroy the database: never run.
        let program = program.and_then(|p| match crate::kong::migrations::check_command(&p) {
            Ok(()) => Some(p),
            Err(forbidden) => {
                let at = f.get("run").or(f.get("shell")).map_or(f.pos, |n| n.pos);
                d.error(at, forbidden.to_string());
                None
            }
        });
        let timeout = match f.get("timeout") {
            Some(n) => duration(d, n, &f.path_of("timeout")).map(Some),
            None => Some(None),
        };
        Some(CommandSpec {
            program: program?,
            executor: executor?,
            timeout: timeout?,
            node: None,
        })
    }

    fn inserts(&mut self, node: &Node, mode: Option<Mode>) -> Option<Vec<InsertedStep>> {
        let items = list(&mut self.d, node, "steps.insert")?;
        let mut inserts = Vec::with_capacity(items.len());
        let mut ids: HashMap<String, Pos> = HashMap::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = index("steps.insert", i);
            match self.insert(item, &path, mode) {
                Some((step, id_pos)) => {
                    if let Some(first) = ids.get(&step.id) {
                        self.d.error(
                            id_pos,
                            format!(
                                "inserted step id `{}` is used twice (first at line {}, column {})",
                                step.id, first.line, first.column
                            ),
                        );
                        ok = false;
                    } else {
                        ids.insert(step.id.clone(), id_pos);
                    }
                    self.at.inserts.push(item.pos);
                    inserts.push(step);
                }
                None => ok = false,
            }
        }
        ok.then_some(inserts)
    }

    fn insert(
        &mut self,
        node: &Node,
        path: &str,
        mode: Option<Mode>,
    ) -> Option<(InsertedStep, Pos)> {
        let f = mapping(
            &mut self.d,
            node,
            path,
            Some(&[
                "before",
                "after",
                "id",
                "title",
                "instruction",
                "commands",
                "changes",
                "irreversible",
            ]),
        )?;
        let commands = match f.get("commands") {
            Some(n) => self.commands(n, &f.path_of("commands")),
            None => Some(Vec::new()),
        };
        let d = &mut self.d;
        let position = match (f.get("before"), f.get("after")) {
            (Some(n), None) => {
                selector_value(d, n, &f.path_of("before"), mode).map(InsertPosition::Before)
            }
            (None, Some(n)) => {
                selector_value(d, n, &f.path_of("after"), mode).map(InsertPosition::After)
            }
            (Some(_), Some(_)) => {
                d.error(
                    f.pos,
                    format!("`{path}` gives both `before` and `after`; keep one"),
                );
                None
            }
            (None, None) => {
                d.error_with_hint(
                    f.pos,
                    format!("`{path}` needs `before` or `after`"),
                    "name the template step it goes next to, e.g. `after: backup` (see `kongup plan` for the ids)",
                );
                None
            }
        };
        let id = f.required(d, "id").and_then(|n| {
            let id = text(d, n, &f.path_of("id"))?;
            if !is_step_id(&id) {
                d.error_with_hint(
                    n.pos,
                    format!("`{}`: `{id}` is not a step id", f.path_of("id")),
                    "use lowercase letters, digits and dashes, e.g. snapshot-vms",
                );
                return None;
            }
            Some(id)
        });
        let title = f
            .required(d, "title")
            .and_then(|n| text(d, n, &f.path_of("title")));
        let instruction = optional(f.get("instruction"), String::new(), |n| {
            string(d, n, &f.path_of("instruction"))
        });
        let changes = optional(f.get("changes"), true, |n| {
            boolean(d, n, &f.path_of("changes"))
        });
        let irreversible = optional(f.get("irreversible"), false, |n| {
            boolean(d, n, &f.path_of("irreversible"))
        });
        if irreversible == Some(true) && changes == Some(false) {
            d.error(
                f.key_pos("irreversible").unwrap_or(f.pos),
                format!("`{path}` is irreversible but says it changes nothing"),
            );
            return None;
        }
        Some((
            InsertedStep {
                position: position?,
                id: id?,
                title: title?,
                instruction: instruction?,
                commands: commands?,
                changes: changes?,
                irreversible: irreversible?,
            },
            f.get("id").map_or(f.pos, |n| n.pos),
        ))
    }

    fn skips(&mut self, node: &Node, mode: Option<Mode>) -> Option<Vec<SkippedStep>> {
        let d = &mut self.d;
        let items = list(d, node, "steps.skip")?;
        let mut skips = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = index("steps.skip", i);
            let Some(f) = mapping(d, item, &path, Some(&["step", "reason"])) else {
                ok = false;
                continue;
            };
            let step = f.required(d, "step").and_then(|n| {
                self.at.skips.push(n.pos);
                selector_value(d, n, &f.path_of("step"), mode)
            });
            let reason = f
                .required(d, "reason")
                .and_then(|n| text(d, n, &f.path_of("reason")));
            match (step, reason) {
                (Some(step), Some(reason)) => skips.push(SkippedStep { step, reason }),
                _ => ok = false,
            }
        }
        ok.then_some(skips)
    }

    /// Reports a strategy the mode cannot use; returns whether it fits.
    fn check_strategy_fits_mode(&mut self, mode: Mode, strategy: &StrategyChoice) -> bool {
        let StrategyChoice::Fixed(strategy) = strategy else {
            return true;
        };
        let pos = self.at.strategy.unwrap_or(self.at.root);
        let fits = strategy.fits_mode(mode);
        let hint = match mode {
            Mode::Traditional => {
                "traditional mode takes `dual-cluster`, `in-place`, `blue-green` or `auto`; `rolling` is for nodes without a database (dbless mode, hybrid data planes)"
            }
            Mode::Dbless => {
                "dbless nodes have no database to migrate: they upgrade by `rolling` (or write `auto`)"
            }
            Mode::Hybrid => {
                "in hybrid mode `strategy` names the control-plane strategy (`dual-cluster`, `in-place`, `blue-green` or `auto`); data planes always roll"
            }
        };
        if !fits {
            self.d.error_with_hint(
                pos,
                format!(
                    "strategy `{}` does not fit mode `{}`",
                    strategy.as_str(),
                    mode.as_str()
                ),
                hint,
            );
        }
        fits
    }

    fn check_database_kind(&mut self, mode: Mode, database: Option<DatabaseKind>) {
        let pos = self.at.database.unwrap_or(self.at.root);
        match (mode, database) {
            (Mode::Dbless, Some(kind)) if kind != DatabaseKind::Off => self.d.error_with_hint(
                pos,
                format!("database `{}` does not fit mode `dbless`", kind.as_str()),
                "dbless nodes have no database: write `database: off` or leave it out",
            ),
            (Mode::Traditional | Mode::Hybrid, Some(DatabaseKind::Off)) => {
                let hint = if mode == Mode::Hybrid {
                    "hybrid control planes keep the configuration in a database (data planes have none): write `postgres` or `cassandra`"
                } else {
                    "traditional nodes share a database: write `postgres` or `cassandra`, or use `mode: dbless`"
                };
                self.d.error_with_hint(
                    pos,
                    format!("database `off` does not fit mode `{}`", mode.as_str()),
                    hint,
                );
            }
            _ => {}
        }
        if mode == Mode::Dbless {
            for (side, pos) in self.at.cluster_database.iter().enumerate() {
                if let Some(pos) = pos {
                    self.d.error_with_hint(
                        *pos,
                        format!(
                            "`clusters.{}.database`: dbless nodes have no database",
                            ["x", "y"][side]
                        ),
                        "remove it; back up the declarative configuration with `backup.declarative_config`",
                    );
                }
            }
        }
    }

    /// What the (fixed or chosen) strategy needs from the clusters and the traffic section.
    fn check_strategy_needs(&mut self, mode: Mode, strategy: Strategy, clusters: &Clusters) {
        let strategy_pos = self.at.strategy.unwrap_or(self.at.root);
        if mode != Mode::Dbless {
            let y_database = clusters.y.database.is_some();
            if strategy.y_has_own_database() && !y_database {
                self.d.error_with_hint(
                    self.at.clusters[1].unwrap_or(strategy_pos),
                    "dual-cluster gives Y its own database, and `clusters.y` has no `database`",
                    "add clusters.y.database {host, port, name, user, password}; X's backup is restored into it",
                );
            }
            if strategy.y_shares_x_database() && y_database {
                self.d.error_with_hint(
                    self.at.cluster_database[1].unwrap_or(strategy_pos),
                    format!(
                        "`clusters.y.database`: {} reuses X's database, so Y has none of its own",
                        strategy.as_str()
                    ),
                    "remove clusters.y.database, or use `strategy: dual-cluster`",
                );
            }
        }
        if strategy.shifts_traffic(mode) && self.at.traffic_driver.is_none() {
            let what = if mode == Mode::Traditional {
                format!("strategy `{}`", strategy.as_str())
            } else {
                format!("a {} upgrade (its nodes roll)", mode.as_str())
            };
            self.d.error_with_hint(
                self.at.traffic.unwrap_or(strategy_pos),
                format!("{what} moves traffic from X to Y, and the plan has no `traffic.driver`"),
                "set traffic.driver.type to haproxy, nginx, kubernetes or command, or `manual` if you move traffic yourself",
            );
        }
    }

    /// Traditional in place, X is stopped before Y starts: Y has no X to be compared with,
    /// so the relative gates are off, and a plan that sets one would only ever get an
    /// inconclusive verdict (and a paused run) from it.
    fn drop_relative_gates(&mut self, gates: &mut GateSpec) {
        for (path, pos) in std::mem::take(&mut self.at.relative_gates) {
            self.d.error_with_hint(
                pos,
                format!(
                    "`{path}` compares Y with X, and in place X is stopped before Y serves: there is nothing to compare with"
                ),
                "remove it (or write null); max_error_ratio and max_p99_ms judge Y on its own",
            );
        }
        gates.max_error_ratio_delta = None;
        gates.max_p99_ratio = None;
    }

    fn check_executor_refs(&mut self, executors: &BTreeMap<String, ExecutorSpec>) {
        let names: Vec<&str> = executors.keys().map(String::as_str).collect();
        for (name, pos, path) in std::mem::take(&mut self.at.executor_refs) {
            if executors.contains_key(&name) {
                continue;
            }
            let hint = match did_you_mean(&name, &names) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("define it under `executors:` (defined: {})", one_of(&names)),
            };
            self.d.error_with_hint(
                pos,
                format!("`{path}` names executor `{name}`, which is not defined"),
                hint,
            );
        }
    }

    fn check_smoke_tests_reach_y(&mut self, clusters: &Clusters, tests: &[SmokeTest]) {
        if tests.is_empty() {
            return;
        }
        let reachable = clusters
            .y
            .nodes
            .iter()
            .any(|n| n.role != Role::ControlPlane && n.proxy_url.is_some());
        if !reachable {
            self.d.error_with_hint(
                self.at.smoke_tests.unwrap_or(self.at.root),
                "smoke tests go through Y's proxies, and no node of `clusters.y` that proxies traffic has a `proxy_url`",
                "give Y's traditional or data_plane nodes a proxy_url, e.g. http://10.0.2.11:8000",
            );
        }
    }

    /// The upgrade must be possible, and in one hop: a plan runs one upgrade, so a path
    /// with mandatory stops takes one plan per hop.
    fn check_path(
        &mut self,
        from: KongVersion,
        to: KongVersion,
        mode: Mode,
        database: DatabaseKind,
    ) {
        let pos = self.at.to.unwrap_or(self.at.root);
        match upgrade_path(from, to, mode, database) {
            Err(why) => self.d.error_with_hint(
                pos,
                format!("no upgrade path from {from} to {to}: {why}"),
                "`kongup path FROM TO --mode M --database D` explains the paths Kong supports",
            ),
            Ok(path) if path.hops.len() > 1 => {
                let stops: Vec<String> = path.hops[..path.hops.len() - 1]
                    .iter()
                    .map(|hop| hop.to.to_string())
                    .collect();
                let why = &path.hops[0].why;
                self.d.error_with_hint(
                    pos,
                    format!(
                        "{from} cannot go straight to {to}: the upgrade must stop at {} first. {why}",
                        stops.join(", then ")
                    ),
                    format!(
                        "write one plan per hop: {from} -> {} first, then on from there",
                        stops[0]
                    ),
                );
            }
            Ok(_) => {}
        }
    }

    /// kongup's own backup, restore and migrations checks reach the database through
    /// PostgreSQL only. On Cassandra (before 3.4, which removed it; `check_path` refuses
    /// later targets) every step that would use them must run the plan's own commands with
    /// `builtin: false`, or be skipped; otherwise it would fail in the middle of the run.
    fn check_builtin_database_work(&mut self, plan: &Plan, expanded: &ExpandedPlan) {
        if plan.database != DatabaseKind::Cassandra {
            return;
        }
        let needs_postgres = |kind: &StepKind| {
            matches!(
                kind,
                StepKind::Backup(BackupKind::Database)
                    | StepKind::RestoreDatabase
                    | StepKind::Migrations(_)
            )
        };
        let phases_with = |id: &str| {
            expanded
                .phases
                .iter()
                .filter(|phase| phase.steps.iter().any(|s| s.id == id))
                .count()
        };
        let offending: Vec<String> = expanded
            .steps()
            .filter(|(_, step)| {
                step.builtin && step.skip_reason.is_none() && needs_postgres(&step.kind)
            })
            .map(|(phase, step)| {
                if phases_with(&step.id) > 1 {
                    format!("{}/{}", phase.name.as_str(), step.id)
                } else {
                    step.id.clone()
                }
            })
            .collect();
        let Some(first) = offending.first() else {
            return;
        };
        self.d.error_with_hint(
            self.at.database.unwrap_or(self.at.root),
            format!(
                "database cassandra: kongup's built-in backup, restore and migrations checks \
                 support PostgreSQL only, and these steps would use them: {}",
                offending.join(", ")
            ),
            format!(
                "give each of them your own commands and `builtin: false` under `steps:`, e.g. \
                 `{first}: {{commands: [\"…\"], builtin: false}}`, or skip it with a reason; \
                 or move the data to PostgreSQL first"
            ),
        );
    }

    /// Expands the strategy into steps and points each template error at the entry it names.
    fn expand(&mut self, plan: &Plan) -> Option<ExpandedPlan> {
        match expand(plan) {
            Ok(expanded) => Some(expanded),
            Err(errors) => {
                for error in errors {
                    let pos = match error.entry {
                        CustomisationEntry::Override(i) => self.at.overrides.get(i),
                        CustomisationEntry::Insert(i) => self.at.inserts.get(i),
                        CustomisationEntry::Skip(i) => self.at.skips.get(i),
                    }
                    .copied()
                    .unwrap_or(self.at.root);
                    self.d.error_with_hint(pos, error.message, error.hint);
                }
                None
            }
        }
    }
}

/// The value of an optional key, or its default when the key is absent.
fn optional<T>(
    node: Option<&Node>,
    default: T,
    read: impl FnOnce(&Node) -> Option<T>,
) -> Option<T> {
    match node {
        Some(n) => read(n),
        None => Some(default),
    }
}

fn optional_text(d: &mut Diagnostics, f: &Fields, key: &str) -> Option<Option<String>> {
    match f.get(key) {
        Some(n) => text(d, n, &f.path_of(key)).map(Some),
        None => Some(None),
    }
}

fn default_gates() -> GateSpec {
    GateSpec {
        window: DEFAULT_GATE_WINDOW,
        max_error_ratio: None,
        max_p99_ms: None,
        max_error_ratio_delta: Some(DEFAULT_MAX_ERROR_RATIO_DELTA),
        max_p99_ratio: Some(DEFAULT_MAX_P99_RATIO),
        min_requests: DEFAULT_MIN_REQUESTS,
        consecutive_breaches: DEFAULT_CONSECUTIVE_BREACHES,
        on_fail: FailAction::Pause,
    }
}

/// The traffic schedule: percentages to Y, strictly increasing, from 1 to 100, ending at 100.
fn schedule(d: &mut Diagnostics, node: &Node) -> Option<Vec<u8>> {
    let path = "traffic.schedule";
    let items = list(d, node, path)?;
    if items.is_empty() {
        d.error_with_hint(
            node.pos,
            "`traffic.schedule` is empty",
            "list Y's percentages, ending at 100, e.g. [1, 5, 25, 50, 100]",
        );
        return None;
    }
    let mut schedule = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Some(percent) = integer(d, item, &index(path, i), 1u8..=100) else {
            ok = false;
            continue;
        };
        if let Some(&previous) = schedule.last()
            && percent <= previous
        {
            d.error_with_hint(
                item.pos,
                format!(
                    "`{}`: {percent} does not come after {previous}",
                    index(path, i)
                ),
                "each stage sends more traffic to Y than the one before",
            );
            ok = false;
        }
        schedule.push(percent);
    }
    if ok && schedule.last() != Some(&100) {
        d.error_with_hint(
            items.last().map_or(node.pos, |n| n.pos),
            "`traffic.schedule` must end at 100",
            "the upgrade is done when all traffic is on Y; add 100 as the last stage",
        );
        ok = false;
    }
    ok.then_some(schedule)
}

/// Request headers: literal values, or `{env}`/`{file}` sources for credentials. A header
/// that carries a credential must not be written inline.
#[allow(clippy::type_complexity)]
fn request_headers(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<(
    BTreeMap<String, String>,
    BTreeMap<String, super::model::SecretRef>,
)> {
    let f = mapping(d, node, path, None)?;
    let mut plain = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut ok = true;
    for (name, _key, value) in f.entries() {
        let value_path = f.path_of(name);
        match &value.value {
            Value::Mapping(_) => match secret(d, value, &value_path) {
                Some(source) => {
                    secrets.insert(name.to_string(), source);
                }
                None => ok = false,
            },
            Value::Scalar { .. } if looks_secret(name) && !value.is_null() => {
                // `secret` refuses the literal without repeating it.
                secret(d, value, &value_path);
                ok = false;
            }
            _ => match string(d, value, &value_path) {
                Some(text) => {
                    plain.insert(name.to_string(), text);
                }
                None => ok = false,
            },
        }
    }
    ok.then_some((plain, secrets))
}

#[allow(clippy::type_complexity)]
fn expectation(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<(u16, BTreeMap<String, String>, Option<String>)> {
    let f = mapping(d, node, path, Some(&["status", "headers", "body_contains"]))?;
    let status = f
        .required(d, "status")
        .and_then(|n| integer(d, n, &f.path_of("status"), 100u16..=599));
    let headers = match f.get("headers") {
        Some(n) => {
            let g = mapping(d, n, &f.path_of("headers"), None)?;
            let mut headers = BTreeMap::new();
            let mut ok = true;
            for (name, _key, value) in g.entries() {
                match string(d, value, &g.path_of(name)) {
                    Some(text) => {
                        headers.insert(name.to_string(), text);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(headers)
        }
        None => Some(BTreeMap::new()),
    };
    let body_contains = match f.get("body_contains") {
        Some(n) => text(d, n, &f.path_of("body_contains")).map(Some),
        None => Some(None),
    };
    Some((status?, headers?, body_contains?))
}

/// Whole seconds, written as a number (`600`) or a duration (`10m`).
fn seconds(d: &mut Diagnostics, node: &Node, path: &str) -> Option<u32> {
    if let Value::Scalar {
        text,
        quoted: false,
    } = &node.value
        && text.bytes().all(|b| b.is_ascii_digit())
    {
        return integer(d, node, path, 1u32..=u32::MAX);
    }
    let value = duration(d, node, path)?;
    if value.subsec_nanos() != 0 || value.as_secs() > u64::from(u32::MAX) {
        d.error(
            node.pos,
            format!("`{path}` must be a whole number of seconds"),
        );
        return None;
    }
    Some(value.as_secs() as u32)
}

fn is_step_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A step reference written as a value (`after: backup`).
fn selector_value(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    mode: Option<Mode>,
) -> Option<StepSelector> {
    let written = text(d, node, path)?;
    selector(d, &written, node.pos, path, mode)
}

/// `id` or `phase/id`; the phase must exist in the plan's mode.
fn selector(
    d: &mut Diagnostics,
    written: &str,
    pos: Pos,
    path: &str,
    mode: Option<Mode>,
) -> Option<StepSelector> {
    let (phase, id) = match written.split_once('/') {
        Some((phase, id)) => (Some(phase), id),
        None => (None, written),
    };
    let phase = match phase {
        Some(word) => {
            let phases = ["cluster", "control-plane", "data-plane"];
            let Some(phase) = PhaseName::parse(word) else {
                let hint = match did_you_mean(word, &phases) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("phases are {}", one_of(&phases)),
                };
                d.error_with_hint(pos, format!("`{path}`: `{word}` is not a phase"), hint);
                return None;
            };
            if phase == PhaseName::Rollback {
                d.error_with_hint(
                    pos,
                    format!(
                        "`{path}`: `{written}` names a rollback step, and rollback steps cannot be customised"
                    ),
                    "kongup derives the rollback plan from the steps that ran (each one's counterpart, newest first), so `rollback/…` takes no commands, inserts or skips; customise the forward step instead, or insert a step of your own next to it",
                );
                return None;
            }
            let fits = match mode {
                Some(Mode::Hybrid) => phase != PhaseName::Cluster,
                Some(_) => phase == PhaseName::Cluster,
                None => true,
            };
            if !fits {
                let mode = mode.map_or("", Mode::as_str);
                let hint = if mode == "hybrid" {
                    "hybrid plans have the phases `control-plane` and `data-plane`"
                } else {
                    "traditional and dbless plans have one phase, `cluster`"
                };
                d.error_with_hint(
                    pos,
                    format!("`{path}`: a {mode} plan has no phase `{word}`"),
                    hint,
                );
                return None;
            }
            Some(phase)
        }
        None => None,
    };
    if !is_step_id(id) {
        d.error_with_hint(
            pos,
            format!("`{path}`: `{written}` is not a step reference"),
            "write a step id (e.g. `deploy-y`) or phase/id (e.g. `data-plane/deploy-y`); `kongup plan` lists them",
        );
        return None;
    }
    Some(StepSelector {
        phase,
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests;

/// `ca_file`, `client_cert` and `client_key` of the TLS block at `path` (the Admin API's
/// or a database's), the certificate and its key together or not at all; `false` when any
/// is wrong, each error reported.
fn tls_files(
    d: &mut Diagnostics,
    f: &Fields,
    path: &str,
) -> (bool, [Option<std::path::PathBuf>; 3]) {
    let mut ok = true;
    let mut files = [None, None, None];
    for (slot, key) in files
        .iter_mut()
        .zip(["ca_file", "client_cert", "client_key"])
    {
        if let Some(n) = f.get(key) {
            *slot = file_path(d, n, &f.path_of(key));
            ok &= slot.is_some();
        }
    }
    if f.has("client_cert") != f.has("client_key") {
        let (given, missing) = if f.has("client_cert") {
            ("client_cert", "client_key")
        } else {
            ("client_key", "client_cert")
        };
        d.error_with_hint(
            f.key_pos(given).unwrap_or(f.pos),
            format!("`{path}.{given}` needs `{path}.{missing}` beside it"),
            "a client certificate is presented with its key: name both, or neither",
        );
        ok = false;
    }
    (ok, files)
}

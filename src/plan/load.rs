//! Loads a plan file: YAML → a tree of nodes with positions → the typed `Plan`, then the
//! checks that span sections, then the expansion into steps. Every problem is reported at
//! its `FILE:LINE:COL` with a hint, and all of them are reported, not only the first.
//!
//! We walk the tree ourselves rather than deserialise with serde: serde_yaml keeps no
//! positions and stops at the first error. The format is documented in `docs/plan.md`.
//!
//! This file holds the entry points, the `Loader` and the plan's root keys; each section
//! is read in its own file, in the order `docs/plan.md` gives them: `clusters`, `access`
//! (databases, the Admin API, executors), `traffic`, `gates` (and smoke tests),
//! `builtins` (migrations, backup), `steps`; then `cross_checks`. What a plan gets for a
//! key it leaves out is in `plan::model::defaults`.

mod access;
mod builtins;
mod clusters;
mod cross_checks;
mod diagnostics;
mod gates;
mod notify;
mod read;
mod rolling;
mod steps;
mod traffic;
mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::chooser::choose;
use super::model::defaults;
use super::model::{
    AdminAccess, BackupSpec, DatabaseKind, Edition, ExecutorSpec, GateSpec, MigrationsSpec, Mode,
    NotifySpec, Plan, StepCustomisation, StrategyChoice, TrafficDriverSpec, TrafficSpec,
};
use super::path::check_strategy;
use super::steps::ExpandedPlan;
use super::templates::{CustomisationEntry, expand};

pub use diagnostics::{Diagnostic, PlanErrors};

use diagnostics::Diagnostics;
use read::{Fields, boolean, choice, duration, mapping, text, version, word};
use yaml::{Node, Pos};

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
    let bytes = std::fs::read(path).map_err(|error| PlanErrors {
        diagnostics: vec![Diagnostic::whole_file(
            &file_name,
            format!("cannot read the plan file: {error}"),
            Some("check the path and its permissions".into()),
        )],
    })?;
    let source = String::from_utf8(bytes).map_err(|error| {
        let mut d = Diagnostics::new(&file_name);
        let bytes = error.as_bytes();
        let good = &bytes[..error.utf8_error().valid_up_to()];
        d.error_with_hint(
            pos_after(good),
            format!(
                "the plan file is not UTF-8: byte 0x{:02X} here starts no UTF-8 character",
                bytes[good.len()]
            ),
            "save the file as UTF-8 (an editor saving Latin-1 writes é as one such byte)",
        );
        d.into_errors()
    })?;
    parse_plan(&source, &file_name)
}

/// Where the character after `text` (valid UTF-8) stands: its line, and its column in
/// characters, as the YAML parser counts them.
fn pos_after(text: &[u8]) -> Pos {
    let line_start = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let line = text.iter().filter(|b| **b == b'\n').count() + 1;
    // Valid UTF-8: characters are the bytes that do not continue one.
    let column = text[line_start..]
        .iter()
        .filter(|b| (**b & 0xC0) != 0x80)
        .count()
        + 1;
    Pos { line, column }
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
        (Some(plan), Some(mut expanded)) if loader.d.is_empty() => {
            expanded
                .warnings
                .extend(loader.data_plane_admin_url_warnings(file_name));
            Ok(LoadedPlan {
                plan,
                expanded,
                source: source.to_string(),
                source_sha256: hex::encode(Sha256::digest(source.as_bytes())),
            })
        }
        _ => Err(loader.d.into_errors()),
    }
}

const ROOT_KEYS: &[&str] = &[
    "name",
    "from",
    "to",
    "mode",
    "database",
    "edition",
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
    "notify",
    "rolling",
];

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
    /// `traffic.driver.node_servers`, and where each of its entries' server is written.
    node_servers: Option<Pos>,
    node_server_keys: HashMap<String, Pos>,
    smoke_tests: Option<Pos>,
    /// Relative gates the plan sets to a value (key path, where).
    relative_gates: Vec<(String, Pos)>,
    /// One per entry of `plan.steps.overrides`/`inserts`/`skips`, in plan order; the
    /// templates only run on a plan read without errors, so the indexes line up.
    overrides: Vec<Pos>,
    inserts: Vec<Pos>,
    skips: Vec<Pos>,
    /// Data planes given an `admin_url` (node name, where, the key's path): a warning each.
    data_plane_admin_urls: Vec<(String, Pos, String)>,
    rolling: rolling::RollingAt,
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
        let edition = match f.get("edition") {
            Some(n) => {
                word::<Edition>(d, n, "edition", &Edition::ALL.map(Edition::as_str)).map(Some)
            }
            None => Some(None),
        };
        // Kong Enterprise versions have four parts (`3.4.3.12`); the open-source gateway's
        // three (kong/meta.lua).
        if let (Some(Some(Edition::Community)), Some(from)) = (edition, from)
            && from.is_enterprise_form()
        {
            d.error_with_hint(
                f.key_pos("edition").unwrap_or(f.pos),
                format!("`edition: community` but `from: {from}` is a Kong Enterprise version (four parts)"),
                "write `edition: enterprise`, or correct `from`",
            );
        }
        let strategy = self.strategy(&f);
        let command_timeout = match f.get("command_timeout") {
            Some(n) => duration(&mut self.d, n, "command_timeout"),
            None => Some(defaults::COMMAND_TIMEOUT),
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
                .entry(defaults::LOCAL_EXECUTOR.to_string())
                .or_insert(ExecutorSpec::Local);
            executors
        });
        let traffic = match f.get("traffic") {
            Some(n) => {
                self.at.traffic = f.key_pos("traffic");
                self.traffic(n, command_timeout.unwrap_or(defaults::COMMAND_TIMEOUT))
            }
            None => Some(TrafficSpec::default()),
        };
        let mut gates = match f.raw("gates") {
            Some(n) => self.gates(n),
            None => Some(GateSpec::default()),
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
            None => Some(MigrationsSpec::default()),
        };
        let backup = match f.get("backup") {
            Some(n) => self.backup(n),
            None => Some(BackupSpec::default()),
        };
        let steps = match f.get("steps") {
            Some(n) => self.steps(n, mode),
            None => Some(StepCustomisation::default()),
        };
        let notify = match f.get("notify") {
            Some(n) => self.notify(n),
            None => Some(NotifySpec::default()),
        };
        let bake = traffic.as_ref().map_or(defaults::BAKE, |t| t.bake);
        let rolling = match (f.get("rolling"), f.key_pos("rolling")) {
            (Some(n), Some(key)) => self.rolling(key, n, bake).map(Some),
            _ => Some(None),
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
        let driver = traffic.as_ref().map(|t| &t.driver);
        if let (Some(clusters), Some(TrafficDriverSpec::Haproxy(haproxy))) = (&clusters, driver) {
            self.check_node_servers(clusters, haproxy);
        }
        if let (Some(mode), Some(clusters), Some(Some(rolling))) = (mode, &clusters, &rolling) {
            self.check_rolling(mode, from, clusters, driver, rolling);
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
            Some(edition),
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
            Some(notify),
            Some(rolling),
        ) = (
            name,
            from,
            to,
            mode,
            database,
            edition,
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
            notify,
            rolling,
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
            edition,
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
            notify,
            rolling,
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

#[cfg(test)]
mod tests;

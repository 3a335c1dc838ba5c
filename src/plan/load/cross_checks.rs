//! The checks that span sections, run once every section is read: the strategy against
//! the mode and the versions, the database against the mode, what the strategy needs of
//! the clusters and the traffic section, executor references, smoke tests' reach, the
//! upgrade path, and (after expansion) the built-in database work Cassandra cannot do.

use std::collections::BTreeMap;

use super::Loader;
use super::diagnostics::{did_you_mean, one_of};
use super::read::shown;
use crate::plan::model::{
    Clusters, DatabaseKind, ExecutorSpec, GateSpec, HaproxyDriver, Mode, Plan, Role, SmokeTest,
    Strategy, StrategyChoice,
};
use crate::plan::path::upgrade_path;
use crate::plan::steps::{BackupKind, ExpandedPlan, StepKind};
use crate::plan::version::KongVersion;

impl Loader {
    /// `traffic.driver.node_servers`: each entry names a node of the plan and a server of
    /// that node's side (`x_servers` for an X node, `y_servers` for a Y node).
    pub(super) fn check_node_servers(&mut self, clusters: &Clusters, haproxy: &HaproxyDriver) {
        for (node, server) in &haproxy.node_servers {
            let at = self
                .at
                .node_server_keys
                .get(node)
                .or(self.at.node_servers.as_ref())
                .copied()
                .unwrap_or(self.at.root);
            let path = format!("traffic.driver.node_servers.{node}");
            let (side, servers) = if clusters.x.nodes.iter().any(|n| &n.name == node) {
                ("X", &haproxy.x_servers)
            } else if clusters.y.nodes.iter().any(|n| &n.name == node) {
                ("Y", &haproxy.y_servers)
            } else {
                let names: Vec<&str> = clusters
                    .x
                    .nodes
                    .iter()
                    .chain(&clusters.y.nodes)
                    .map(|n| n.name.as_str())
                    .collect();
                self.d.error_with_hint(
                    at,
                    format!("`{path}`: the plan has no node named `{}`", shown(node)),
                    did_you_mean(node, &names)
                        .map(|n| format!("did you mean `{n}`?"))
                        .unwrap_or_else(|| {
                            "name a node of clusters.x.nodes or clusters.y.nodes".into()
                        }),
                );
                continue;
            };
            if !servers.contains(server) {
                self.d.error_with_hint(
                    at,
                    format!(
                        "`{path}`: {node} is one of {side}'s nodes, but `{}` is not in \
                         traffic.driver.{}_servers ({})",
                        shown(server),
                        side.to_lowercase(),
                        servers.join(", ")
                    ),
                    "name the backend server (as in haproxy.cfg) that sends to this node",
                );
            }
        }
    }

    /// Reports a strategy the mode cannot use; returns whether it fits.
    pub(super) fn check_strategy_fits_mode(
        &mut self,
        mode: Mode,
        strategy: &StrategyChoice,
    ) -> bool {
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

    pub(super) fn check_database_kind(&mut self, mode: Mode, database: Option<DatabaseKind>) {
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
    pub(super) fn check_strategy_needs(
        &mut self,
        mode: Mode,
        strategy: Strategy,
        clusters: &Clusters,
    ) {
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
    pub(super) fn drop_relative_gates(&mut self, gates: &mut GateSpec) {
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

    pub(super) fn check_executor_refs(&mut self, executors: &BTreeMap<String, ExecutorSpec>) {
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
                format!(
                    "`{path}` names executor `{}`, which is not defined",
                    shown(&name)
                ),
                hint,
            );
        }
    }

    pub(super) fn check_smoke_tests_reach_y(&mut self, clusters: &Clusters, tests: &[SmokeTest]) {
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
    pub(super) fn check_path(
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
    pub(super) fn check_builtin_database_work(&mut self, plan: &Plan, expanded: &ExpandedPlan) {
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

    /// A warning for each data plane the plan gives an `admin_url`: Kong renders the Admin
    /// API's server block only for the `control_plane` and `traditional` roles
    /// (kong/templates/nginx_kong.lua:377@2.8.5, :416@3.10.0; docs/kong/admin-and-status-api.md),
    /// so nothing answers there. Not an error: the plan still runs, and the node waits do not
    /// ask it.
    pub(super) fn data_plane_admin_url_warnings(&self, file: &str) -> Vec<String> {
        self.at
            .data_plane_admin_urls
            .iter()
            .map(|(name, pos, path)| {
                format!(
                    "{file}:{}:{}: `{path}`: data plane {name} has no Admin API (Kong serves one \
                     only on control planes and traditional nodes): kongup reads a data plane's \
                     version and sync state from its control planes' /clustering/data-planes \
                     (their admin_url) and its readiness and /metrics from its status_url; \
                     remove this admin_url and give the node a status_url",
                    pos.line, pos.column
                )
            })
            .collect()
    }
}

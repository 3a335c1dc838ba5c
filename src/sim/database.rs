//! The simulated Kong database: the `schema_meta` rows and the `locks` row, changed by
//! `kong migrations` exactly as Kong changes them (`kong/db/migrations/state.lua`,
//! `kong/cmd/utils/migrations.lua`, `kong/db/init.lua` at 3.10):
//!
//! - `up` runs each new migration's `up` part; one that also has a teardown is recorded in
//!   `pending`, the others in `executed`.
//! - `finish` runs the teardowns and moves `pending` names to `executed`. A finished
//!   teardown rewrites data the old version still reads, so after it the old cluster X can
//!   no longer start on this database: the lab refuses that start with an explicit error
//!   (real Kong fails later and less clearly, on the first entity the old code cannot read).
//! - a Kong node of version V sees the rows through the migrations V ships: executed,
//!   pending, new (V ships it, the database has not run it) and missing.
//!
//! The migration catalogue below is Kong's own (names, the release that first shipped them,
//! whether they have a teardown) for the core and the bundled plugins the lab installs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::kong::schema::{SchemaState, SubsystemState};
use crate::plan::version::KongVersion;

/// One migration Kong ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub subsystem: &'static str,
    pub name: &'static str,
    /// The `major.minor` line that first shipped it.
    pub since: (u32, u32),
    /// Has a teardown: `up` leaves it pending until `finish`.
    pub teardown: bool,
}

const fn mig(
    subsystem: &'static str,
    name: &'static str,
    since: (u32, u32),
    teardown: bool,
) -> Migration {
    Migration {
        subsystem,
        name,
        since,
        teardown,
    }
}

/// Kong's migrations, subsystem by subsystem in Kong's order (core, then plugins sorted
/// by name), each subsystem's in the order of its `migrations/init.lua`
/// (kong/db/migrations/core/init.lua and kong/plugins/*/migrations/init.lua at 2.0.0 …
/// 3.9.1 and master; the teardowns from each file's `postgres` block, docs/kong/
/// migrations-and-paths.md §2). `since` is the first release line whose tree holds it, except
/// for acme and session, separate rocks before 2.6.0: a database finished by 2.1.4 has
/// `000_base_acme` and `000_base_session` but not `001_add_ttl_index`
/// (tests/fixtures/kong/2.8.5/migrations/list_new.cli); which 2.x rock release added that
/// one is not in the mirror, and the lab runs nothing older than 2.8.
pub const CATALOGUE: &[Migration] = &[
    mig("core", "000_base", (1, 0), false),
    mig("core", "003_100_to_110", (1, 1), false),
    mig("core", "004_110_to_120", (1, 2), false),
    mig("core", "005_120_to_130", (1, 3), true),
    mig("core", "006_130_to_140", (1, 4), false),
    mig("core", "007_140_to_150", (1, 5), false),
    mig("core", "008_150_to_200", (2, 0), true),
    mig("core", "009_200_to_210", (2, 1), true),
    mig("core", "010_210_to_211", (2, 1), false),
    mig("core", "011_212_to_213", (2, 1), false),
    mig("core", "012_213_to_220", (2, 2), true),
    mig("core", "013_220_to_230", (2, 3), false),
    mig("core", "014_230_to_270", (2, 7), false),
    mig("core", "015_270_to_280", (2, 8), false),
    mig("core", "016_280_to_300", (3, 0), true),
    mig("core", "017_300_to_310", (3, 1), false),
    mig("core", "018_310_to_320", (3, 2), false),
    mig("core", "019_320_to_330", (3, 3), false),
    mig("core", "020_330_to_340", (3, 4), false),
    mig("core", "021_340_to_350", (3, 5), false),
    mig("core", "022_350_to_360", (3, 6), false),
    mig("core", "023_360_to_370", (3, 7), false),
    mig("core", "024_380_to_390", (3, 9), false),
    mig("core", "025_390_to_3100", (3, 10), false),
    mig("acl", "000_base_acl", (1, 0), false),
    mig("acl", "002_130_to_140", (1, 4), false),
    mig("acl", "003_200_to_210", (2, 1), true),
    mig("acl", "004_212_to_213", (2, 1), true),
    mig("acme", "000_base_acme", (2, 0), false),
    mig("acme", "001_280_to_300", (3, 0), false),
    mig("acme", "002_320_to_330", (3, 3), false),
    mig("acme", "003_350_to_360", (3, 6), true),
    mig("ai-proxy", "001_360_to_370", (3, 7), true),
    mig("basic-auth", "000_base_basic_auth", (1, 0), false),
    mig("basic-auth", "002_130_to_140", (1, 4), false),
    mig("basic-auth", "003_200_to_210", (2, 1), true),
    mig("bot-detection", "001_200_to_210", (2, 1), true),
    mig("hmac-auth", "000_base_hmac_auth", (1, 0), false),
    mig("hmac-auth", "002_130_to_140", (1, 4), false),
    mig("hmac-auth", "003_200_to_210", (2, 1), true),
    mig("http-log", "001_280_to_300", (3, 0), true),
    mig("ip-restriction", "001_200_to_210", (2, 1), true),
    mig("jwt", "000_base_jwt", (1, 0), false),
    mig("jwt", "002_130_to_140", (1, 4), false),
    mig("jwt", "003_200_to_210", (2, 1), true),
    mig("key-auth", "000_base_key_auth", (1, 0), false),
    mig("key-auth", "002_130_to_140", (1, 4), false),
    mig("key-auth", "003_200_to_210", (2, 1), true),
    mig("key-auth", "004_320_to_330", (3, 3), false),
    mig("oauth2", "000_base_oauth2", (1, 0), false),
    mig("oauth2", "003_130_to_140", (1, 4), false),
    mig("oauth2", "004_200_to_210", (2, 1), true),
    mig("oauth2", "005_210_to_211", (2, 1), false),
    mig("oauth2", "006_320_to_330", (3, 3), false),
    mig("oauth2", "007_320_to_330", (3, 3), false),
    mig("opentelemetry", "001_331_to_332", (3, 7), true),
    mig("post-function", "001_280_to_300", (3, 0), true),
    mig("pre-function", "001_280_to_300", (3, 0), true),
    mig("rate-limiting", "000_base_rate_limiting", (1, 0), false),
    mig("rate-limiting", "003_10_to_112", (1, 1), false),
    mig("rate-limiting", "004_200_to_210", (2, 1), false),
    mig("rate-limiting", "005_320_to_330", (3, 3), false),
    mig("rate-limiting", "006_350_to_360", (3, 6), true),
    mig(
        "response-ratelimiting",
        "000_base_response_rate_limiting",
        (1, 0),
        false,
    ),
    mig("response-ratelimiting", "001_350_to_360", (3, 6), true),
    mig("session", "000_base_session", (1, 0), false),
    mig("session", "001_add_ttl_index", (2, 6), false),
    mig("session", "002_320_to_330", (3, 3), false),
    mig("session", "003_330_to_3100", (3, 10), false),
];

/// The migrations Kong `version` ships, in Kong's order.
pub fn shipped_by(version: KongVersion) -> impl Iterator<Item = &'static Migration> {
    CATALOGUE
        .iter()
        .filter(move |m| m.since <= version.minor_line())
}

/// Kong's message when the database has never been bootstrapped
/// (`NEEDS_BOOTSTRAP_MSG` in `kong/cmd/utils/migrations.lua`).
pub const NEEDS_BOOTSTRAP_MSG: &str = "Database needs bootstrapping or is older than Kong 1.0.\n\n\
To start a new installation from scratch, run 'kong migrations bootstrap'.\n\n\
To migrate from a version older than 1.0, migrated to Kong 1.5.0 first. \n\
If you still have 'apis' entities, you can convert them to Routes and Services\n\
using the 'kong migrations migrate-apis' command in Kong 1.5.0.\n\n";

/// What `kong migrations` prints when another node holds the lock.
pub const NOT_LEADER_MSG: &str = "aborted: another node is performing database changes";

/// The key of the `locks` row the migrations commands take.
pub const MIGRATIONS_LOCK_KEY: &str = "migrations";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Row {
    last_executed: Option<String>,
    executed: Vec<String>,
    pending: Vec<String>,
}

/// The `locks` row (`key`, `owner`, `ttl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRow {
    pub key: String,
    pub owner: String,
    /// When the lock expires if its owner never releases it (killed mid-migration).
    pub expires: Instant,
}

/// A row of `clustering_data_planes`: what a control plane recorded of a data plane
/// (kong/db/schema/entities/clustering_data_planes.lua; which of these columns a control
/// plane shows depends on its version, see `sim::api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlaneRow {
    pub id: String,
    /// The data plane's hostname, or its node id when it connected through RPC sync
    /// (kong/clustering/services/sync/rpc.lua:104-114@master).
    pub hostname: String,
    pub ip: String,
    pub version: String,
    /// One of `CLUSTERING_SYNC_STATUS` (kong/constants.lua:208-215@3.4.2).
    pub sync_status: &'static str,
    pub config_hash: String,
    pub last_seen: i64,
    pub updated_at: i64,
    /// `None` (null) when the data plane sent none (before 3.3).
    pub labels: Option<BTreeMap<String, String>>,
    /// When the data plane's cluster certificate expires (`cert_details.expiry_timestamp`).
    pub cert_expiry: i64,
    pub rpc_capabilities: Vec<String>,
}

/// A copy of the database taken by `pg_dump`, restorable by `pg_restore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSnapshot {
    rows: Option<BTreeMap<String, Row>>,
    finished_by: Option<KongVersion>,
}

/// One migration as a Kong node of some version sees it, grouped by subsystem; the shape
/// of `kong migrations status` (`{"subsystem","namespace","migrations":[names]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubsystemMigrations {
    pub subsystem: String,
    pub namespace: String,
    pub migrations: Vec<String>,
}

/// The database as a Kong node of one version sees it (`kong.db.migrations.state`).
/// Serializes as `kong migrations status` prints it: empty lists are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct KongSchemaView {
    pub needs_bootstrap: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executed_migrations: Vec<SubsystemMigrations>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_migrations: Vec<SubsystemMigrations>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_migrations: Vec<SubsystemMigrations>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_migrations: Vec<SubsystemMigrations>,
}

impl KongSchemaView {
    pub fn is_up_to_date(&self) -> bool {
        !self.needs_bootstrap && self.new_migrations.is_empty()
    }

    fn count(list: &[SubsystemMigrations]) -> usize {
        list.iter().map(|s| s.migrations.len()).sum()
    }

    pub fn new_count(&self) -> usize {
        Self::count(&self.new_migrations)
    }

    pub fn pending_count(&self) -> usize {
        Self::count(&self.pending_migrations)
    }
}

/// Kong's `tostring` of a migrations list: one line per subsystem, names right-aligned.
pub fn format_migrations(list: &[SubsystemMigrations]) -> Vec<String> {
    let width = list.iter().map(|s| s.subsystem.len()).max().unwrap_or(0);
    list.iter()
        .map(|s| {
            format!(
                "{:>width$}: {}",
                s.subsystem,
                s.migrations.join(", "),
                width = width
            )
        })
        .collect()
}

fn namespace(subsystem: &str) -> String {
    if subsystem == "core" {
        "kong.db.migrations.core".to_string()
    } else {
        format!("kong.plugins.{subsystem}.migrations")
    }
}

/// Why a node may not start on this database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartRefusal {
    #[error("{NEEDS_BOOTSTRAP_MSG}")]
    NeedsBootstrap,
    #[error("New migrations available; run 'kong migrations up' to proceed")]
    NewMigrations,
    #[error(
        "[postgres error] database '{database}' was migrated by Kong {finished_by}: 'kong migrations finish' ran the teardowns of {teardowns}, and Kong {version} cannot read the data they rewrote. Restore the backup taken before 'kong migrations finish' to run {version} on it again"
    )]
    FinishedByNewer {
        database: String,
        version: KongVersion,
        finished_by: KongVersion,
        teardowns: String,
    },
}

/// One step of a migrations run, applied as Kong logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStep {
    pub subsystem: String,
    pub name: String,
    /// Recorded as pending (it has a teardown and this was `up`).
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDatabase {
    /// The database name (`pg_database`), e.g. `kong`.
    pub name: String,
    /// `host:port/name`, as shown to the operator.
    pub address: String,
    /// `None`: no `schema_meta` table yet.
    rows: Option<BTreeMap<String, Row>>,
    lock: Option<LockRow>,
    /// The version whose `finish` last ran teardowns.
    finished_by: Option<KongVersion>,
    teardowns_finished: Vec<String>,
    /// `clustering_data_planes`, by data plane id.
    data_planes: BTreeMap<String, DataPlaneRow>,
}

impl SimDatabase {
    /// An empty database: `kong migrations bootstrap` has never run.
    pub fn empty(name: &str, address: &str) -> Self {
        SimDatabase {
            name: name.to_string(),
            address: address.to_string(),
            rows: None,
            lock: None,
            finished_by: None,
            teardowns_finished: Vec::new(),
            data_planes: BTreeMap::new(),
        }
    }

    /// A database bootstrapped by Kong `version` (every migration it ships executed).
    pub fn bootstrapped(name: &str, address: &str, version: KongVersion) -> Self {
        let mut db = Self::empty(name, address);
        db.bootstrap(version);
        db
    }

    /// `kong migrations bootstrap`: runs every shipped migration, up and teardown.
    pub fn bootstrap(&mut self, version: KongVersion) -> Vec<MigrationStep> {
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut steps = Vec::new();
        for m in shipped_by(version) {
            let row = rows.entry(m.subsystem.to_string()).or_default();
            row.executed.push(m.name.to_string());
            row.last_executed = Some(m.name.to_string());
            steps.push(MigrationStep {
                subsystem: m.subsystem.to_string(),
                name: m.name.to_string(),
                pending: false,
            });
        }
        self.rows = Some(rows);
        self.finished_by = None;
        self.teardowns_finished.clear();
        steps
    }

    /// `kong migrations reset`: drops everything.
    pub fn reset(&mut self) {
        self.rows = None;
        self.finished_by = None;
        self.teardowns_finished.clear();
    }

    /// The raw `schema_meta` rows, as kongup's reader would see them in PostgreSQL.
    pub fn schema_state(&self) -> SchemaState {
        let Some(rows) = &self.rows else {
            return SchemaState {
                needs_bootstrap: true,
                subsystems: Vec::new(),
            };
        };
        let mut subsystems: Vec<SubsystemState> = rows
            .iter()
            .map(|(subsystem, row)| SubsystemState {
                subsystem: subsystem.clone(),
                last_executed: row.last_executed.clone(),
                executed: row.executed.clone(),
                pending: row.pending.clone(),
            })
            .collect();
        // Core first, then plugins by name, as Kong lists them.
        subsystems.sort_by_key(|s| (s.subsystem != "core", s.subsystem.clone()));
        SchemaState {
            needs_bootstrap: false,
            subsystems,
        }
    }

    /// The database as Kong `version` sees it (`State.load`).
    pub fn view(&self, version: KongVersion) -> KongSchemaView {
        let Some(rows) = &self.rows else {
            return KongSchemaView {
                needs_bootstrap: true,
                ..KongSchemaView::default()
            };
        };
        let mut view = KongSchemaView::default();
        let mut subsystems: Vec<&'static str> = Vec::new();
        for m in shipped_by(version) {
            if !subsystems.contains(&m.subsystem) {
                subsystems.push(m.subsystem);
            }
        }
        for subsystem in subsystems {
            let shipped: Vec<&Migration> = shipped_by(version)
                .filter(|m| m.subsystem == subsystem)
                .collect();
            let mut executed = Vec::new();
            let mut pending = Vec::new();
            let mut missing = Vec::new();
            let mut new = Vec::new();
            match rows.get(subsystem) {
                None => new.extend(shipped.iter().map(|m| m.name.to_string())),
                Some(row) => {
                    // Migrations after `last_executed` are new; unrun ones before it are missing.
                    let after_last = shipped
                        .iter()
                        .position(|m| Some(m.name) == row.last_executed.as_deref())
                        .map(|i| i + 1);
                    for (i, m) in shipped.iter().enumerate() {
                        let name = m.name.to_string();
                        if row.executed.contains(&name) {
                            executed.push(name);
                        } else if row.pending.contains(&name) {
                            pending.push(name);
                        } else if after_last.is_none_or(|n| i >= n) {
                            new.push(name);
                        } else {
                            missing.push(name);
                        }
                    }
                }
            }
            let group = |migrations: Vec<String>| SubsystemMigrations {
                subsystem: subsystem.to_string(),
                namespace: namespace(subsystem),
                migrations,
            };
            if !executed.is_empty() {
                view.executed_migrations.push(group(executed));
            }
            if !pending.is_empty() {
                view.pending_migrations.push(group(pending));
            }
            if !missing.is_empty() {
                view.missing_migrations.push(group(missing));
            }
            if !new.is_empty() {
                view.new_migrations.push(group(new));
            }
        }
        view
    }

    /// Whether Kong `version` may start on this database (`kong start`'s checks).
    pub fn check_start(&self, version: KongVersion) -> Result<KongSchemaView, StartRefusal> {
        let view = self.view(version);
        if view.needs_bootstrap {
            return Err(StartRefusal::NeedsBootstrap);
        }
        if !view.new_migrations.is_empty() {
            return Err(StartRefusal::NewMigrations);
        }
        if let Some(finished_by) = self.finished_by
            && finished_by.minor_line() > version.minor_line()
        {
            return Err(StartRefusal::FinishedByNewer {
                database: self.name.clone(),
                version,
                finished_by,
                teardowns: self.teardowns_finished.join(", "),
            });
        }
        Ok(view)
    }

    /// The migrations `kong migrations up` of `version` would run, in order.
    pub fn plan_up(&self, version: KongVersion) -> Vec<MigrationStep> {
        let view = self.view(version);
        view.new_migrations
            .iter()
            .flat_map(|group| {
                group.migrations.iter().map(|name| {
                    let teardown = CATALOGUE
                        .iter()
                        .any(|m| m.subsystem == group.subsystem && m.name == name && m.teardown);
                    MigrationStep {
                        subsystem: group.subsystem.clone(),
                        name: name.clone(),
                        pending: teardown,
                    }
                })
            })
            .collect()
    }

    /// The teardowns `kong migrations finish` of `version` would run, in order.
    pub fn plan_finish(&self, version: KongVersion) -> Vec<MigrationStep> {
        self.view(version)
            .pending_migrations
            .iter()
            .flat_map(|group| {
                group.migrations.iter().map(|name| MigrationStep {
                    subsystem: group.subsystem.clone(),
                    name: name.clone(),
                    pending: false,
                })
            })
            .collect()
    }

    /// Records one migration's `up`: pending when it has a teardown, else executed.
    pub fn record_up(&mut self, step: &MigrationStep) {
        let rows = self.rows.get_or_insert_with(BTreeMap::new);
        let row = rows.entry(step.subsystem.clone()).or_default();
        if step.pending {
            if !row.pending.contains(&step.name) {
                row.pending.push(step.name.clone());
            }
        } else if !row.executed.contains(&step.name) {
            row.executed.push(step.name.clone());
        }
        row.last_executed = Some(step.name.clone());
    }

    /// Records one migration's teardown (`finish`): moves it from pending to executed.
    pub fn record_teardown(&mut self, step: &MigrationStep, by: KongVersion) {
        let rows = self.rows.get_or_insert_with(BTreeMap::new);
        let row = rows.entry(step.subsystem.clone()).or_default();
        row.pending.retain(|n| n != &step.name);
        if !row.executed.contains(&step.name) {
            row.executed.push(step.name.clone());
        }
        self.finished_by = Some(self.finished_by.map_or(by, |v| v.max(by)));
        let label = format!("{} {}", step.subsystem, step.name);
        if !self.teardowns_finished.contains(&label) {
            self.teardowns_finished.push(label);
        }
    }

    /// Takes the `locks` row; `Err` with the holder when another owner has a live lock.
    pub fn try_lock(&mut self, owner: &str, ttl: Duration) -> Result<(), LockRow> {
        let now = Instant::now();
        if let Some(lock) = &self.lock
            && lock.expires > now
        {
            return Err(lock.clone());
        }
        self.lock = Some(LockRow {
            key: MIGRATIONS_LOCK_KEY.to_string(),
            owner: owner.to_string(),
            expires: now + ttl,
        });
        Ok(())
    }

    /// Deletes the `locks` row when `owner` holds it.
    pub fn unlock(&mut self, owner: &str) {
        if self.lock.as_ref().is_some_and(|l| l.owner == owner) {
            self.lock = None;
        }
    }

    /// The live `locks` row, if any.
    pub fn lock(&self) -> Option<LockRow> {
        self.lock
            .clone()
            .filter(|lock| lock.expires > Instant::now())
    }

    /// A control plane records a data plane's ping.
    pub fn upsert_data_plane(&mut self, row: DataPlaneRow) {
        self.data_planes.insert(row.id.clone(), row);
    }

    /// `clustering_data_planes` in primary-key order, as Kong pages them.
    pub fn data_planes(&self) -> Vec<DataPlaneRow> {
        self.data_planes.values().cloned().collect()
    }

    pub fn snapshot(&self) -> DatabaseSnapshot {
        DatabaseSnapshot {
            rows: self.rows.clone(),
            finished_by: self.finished_by,
        }
    }

    /// `pg_restore` over this database: its schema becomes the snapshot's.
    pub fn restore(&mut self, snapshot: &DatabaseSnapshot) {
        self.rows = snapshot.rows.clone();
        self.finished_by = snapshot.finished_by;
        if self.finished_by.is_none() {
            self.teardowns_finished.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KongVersion {
        s.parse().unwrap()
    }

    #[test]
    fn up_leaves_teardown_migrations_pending_and_finish_clears_them() {
        let mut db = SimDatabase::bootstrapped("kong", "db:5432/kong", v("3.4.3.12"));
        let target = v("3.10.0.1");
        assert_eq!(db.check_start(target), Err(StartRefusal::NewMigrations));
        let up = db.plan_up(target);
        assert!(up.iter().any(|s| s.name == "025_390_to_3100" && !s.pending));
        assert!(up.iter().any(|s| s.name == "006_350_to_360" && s.pending));
        for step in &up {
            db.record_up(step);
        }
        let state = db.schema_state();
        assert_eq!(state.core_generation(), Some("025_390_to_3100"));
        // 3.4 → 3.10: acme, ai-proxy, opentelemetry, rate-limiting, response-ratelimiting
        // (tests/fixtures/kong/3.10.0/migrations/list_pending.cli).
        assert_eq!(state.pending_total(), 5);
        // Blue-green's premise: after `up` both versions can run.
        assert!(db.check_start(target).is_ok());
        assert!(db.check_start(v("3.4.3.12")).is_ok());

        for step in db.plan_finish(target) {
            db.record_teardown(&step, target);
        }
        assert_eq!(db.schema_state().pending_total(), 0);
        assert!(db.view(target).is_up_to_date());
        assert!(matches!(
            db.check_start(v("3.4.3.12")),
            Err(StartRefusal::FinishedByNewer { .. })
        ));
        assert!(db.check_start(target).is_ok());
    }

    #[test]
    fn an_empty_database_needs_bootstrap() {
        let db = SimDatabase::empty("kong", "db:5432/kong");
        assert!(db.schema_state().needs_bootstrap);
        assert_eq!(
            db.check_start(v("3.9.1")),
            Err(StartRefusal::NeedsBootstrap)
        );
    }

    #[test]
    fn the_lock_is_exclusive_until_released_or_expired() {
        let mut db = SimDatabase::bootstrapped("kong", "db:5432/kong", v("3.9.1"));
        db.try_lock("kong-y-1", Duration::from_secs(60)).unwrap();
        assert_eq!(
            db.try_lock("kong-y-2", Duration::from_secs(60))
                .unwrap_err()
                .owner,
            "kong-y-1"
        );
        db.unlock("kong-y-1");
        assert!(db.lock().is_none());
        db.try_lock("kong-y-2", Duration::ZERO).unwrap();
        assert!(db.lock().is_none(), "a zero-ttl lock has expired");
    }

    #[test]
    fn migrations_list_lines_align_subsystem_names() {
        let lines = format_migrations(&[
            SubsystemMigrations {
                subsystem: "core".into(),
                namespace: namespace("core"),
                migrations: vec!["000_base".into(), "003_100_to_110".into()],
            },
            SubsystemMigrations {
                subsystem: "acl".into(),
                namespace: namespace("acl"),
                migrations: vec!["000_base_acl".into()],
            },
        ]);
        assert_eq!(
            lines,
            vec!["core: 000_base, 003_100_to_110", " acl: 000_base_acl"]
        );
    }
}

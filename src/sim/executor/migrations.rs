//! `kong migrations bootstrap|up|finish|list|status|reset` on a lab database, as a Kong
//! version, with the lock row Kong takes and the half-done state a cut-short run leaves.
//! What each prints, on which stream, and its exit code are Kong's (kong/cmd/migrations.lua,
//! kong/cmd/utils/migrations.lua, kong/db/init.lua `cluster_mutex` and `run_migrations`,
//! kong/cmd/init.lua at 2.8.5 … master; docs/kong/migrations-and-paths.md §0–1), compared
//! with the corpus's runs (tests/fixtures/kong/*/migrations/*.cli) by the lab's tests:
//! `list` exits 3 (needs bootstrap), 4 (pending), 5 (new) or 0; every `Error:` exits 1;
//! `finish` (no wait) prints `aborted: …` and exits 0 when another node holds the lock;
//! `up` waits for it up to its `--lock-timeout`, then prints `aborted: …` (exit 0) if it
//! was released or expired, or fails with `[PostgreSQL error] timeout` (exit 1).

use std::time::Duration;

use super::shell::{has_flag, option_value};
use super::{Session, SimExecutor, Stop};
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;
use crate::sim::database::{
    self, KongSchemaView, MigrationStep, NEEDS_BOOTSTRAP_MSG, NOT_LEADER_MSG, SimDatabase,
};
use crate::sim::facts;

/// Where `kong migrations` runs: a database, as a version, with a lock owner.
struct MigrationsTarget {
    database: String,
    version: KongVersion,
    owner: String,
}

impl SimExecutor {
    fn migrations_target(&self) -> Result<MigrationsTarget, String> {
        let shared = self.shared();
        match self.node_name() {
            Some(name) => {
                let node = shared.node(name).map_err(|e| e.to_string())?;
                let database = node.spec.database.clone().ok_or_else(|| {
                    format!(
                        "{name} runs without a database (database = off): there are no migrations to run on it"
                    )
                })?;
                Ok(MigrationsTarget {
                    database,
                    version: node.spec.version,
                    owner: name.to_string(),
                })
            }
            None => {
                let database = shared.database_of(ClusterSide::Y).ok_or_else(|| {
                    "this lab has no database (DB-less): there are no migrations to run".to_string()
                })?;
                Ok(MigrationsTarget {
                    database,
                    version: shared.topology.to,
                    owner: "kongup-sim".to_string(),
                })
            }
        }
    }

    pub(super) async fn migrations(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let opts = args.get(1..).unwrap_or(&[]);
        if self.node_name().is_some()
            && let Err(code) = self.require_node("kong migrations", s).await
        {
            return Ok(code);
        }
        let target = match self.migrations_target() {
            Ok(t) => t,
            Err(message) => return Ok(s.kong_error(&message).await),
        };
        let force = has_flag(opts, Some("-f"), "--force");
        let lock_ttl = option_value(opts, None, "--lock-timeout")
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        if !self.shared().database_reachable(&target.database) {
            // The first query (`SHOW server_version_num`) times out after the database
            // timeout: `--db-timeout`, which defaults to 60 s before 3.7 and to kong.conf's
            // `pg_timeout` (5 s) from 3.7 (kong/cmd/migrations.lua:91@2.8.5, :93@3.9.1).
            let db_timeout = option_value(opts, None, "--db-timeout")
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(if target.version.minor_line() >= (3, 7) {
                    Duration::from_secs(5)
                } else {
                    Duration::from_secs(60)
                });
            s.pause(db_timeout).await?;
            return Ok(s
                .kong_error(
                    "[PostgreSQL error] failed to retrieve PostgreSQL server_version_num: \
                     receive_message: failed to get type: timeout",
                )
                .await);
        }
        // Connecting and reading the schema state.
        s.pause(Duration::from_millis(700)).await?;
        let Some(view) = self.with_db(&target.database, |db| db.view(target.version)) else {
            return Ok(s
                .kong_error(&format!(
                    "[postgres error] database \"{}\" does not exist",
                    target.database
                ))
                .await);
        };
        match sub {
            "list" => Ok(self.migrations_list(&view, &target, s).await),
            "status" => {
                s.out(serde_json::to_string(&view).unwrap_or_default())
                    .await;
                Ok(0)
            }
            "up" => self.migrations_up(&target, force, lock_ttl, s).await,
            "finish" => self.migrations_finish(&target, force, lock_ttl, s).await,
            "bootstrap" => self.migrations_bootstrap(&target, force, lock_ttl, s).await,
            "reset" => {
                if !has_flag(opts, Some("-y"), "--yes") {
                    return Ok(s
                        .kong_error(
                            "not a tty: invoke 'reset' non-interactively with the --yes flag",
                        )
                        .await);
                }
                if view.needs_bootstrap {
                    s.out("Database not bootstrapped, nothing to reset").await;
                    return Ok(1);
                }
                s.out("Resetting database...").await;
                s.pause(Duration::from_secs(1)).await?;
                self.with_db(&target.database, SimDatabase::reset);
                s.out("Database successfully reset").await;
                Ok(0)
            }
            "" => {
                s.err("Usage: kong migrations COMMAND [OPTIONS]").await;
                Ok(1)
            }
            other => {
                s.err(format!("No such command for migrations: {other}"))
                    .await;
                Ok(1)
            }
        }
    }

    async fn migrations_list(
        &self,
        view: &KongSchemaView,
        target: &MigrationsTarget,
        s: &Session<'_>,
    ) -> i32 {
        if view.needs_bootstrap {
            s.out_text(NEEDS_BOOTSTRAP_MSG).await;
            return 3;
        }
        let mut separated = false;
        for (title, list) in [
            ("Executed migrations:", &view.executed_migrations),
            ("Pending migrations:", &view.pending_migrations),
            ("New migrations available:", &view.new_migrations),
        ] {
            if list.is_empty() {
                continue;
            }
            if separated {
                s.out("").await;
            }
            s.out(title).await;
            for line in database::format_migrations(list) {
                s.out(line).await;
            }
            separated = true;
        }
        let pending = !view.pending_migrations.is_empty();
        let new = !view.new_migrations.is_empty();
        if pending && new {
            s.out("").await;
            // `log.warn`: on stderr, with the time (kong/cmd/utils/log.lua).
            s.err(format!(
                "{} [warn] Database has pending migrations from a previous upgrade, and new migrations from this upgrade (version {})",
                chrono::Local::now().format("%Y/%m/%d %H:%M:%S"),
                facts::full_version(target.version)
            ))
            .await;
            s.out("").await;
            s.out("Run 'kong migrations finish' when ready to complete pending migrations (postgres database will be incompatible with the previous Kong version)")
                .await;
            return 4;
        }
        if pending {
            s.out("").await;
            s.out("Run 'kong migrations finish' when ready").await;
            return 4;
        }
        if new {
            s.out("").await;
            s.out("Run 'kong migrations up' to proceed").await;
            return 5;
        }
        0
    }

    /// Takes the migrations lock, or prints Kong's message when another node holds it
    /// (`no_wait`: `finish`, `bootstrap`, `reset`).
    async fn take_lock(&self, target: &MigrationsTarget, ttl: Duration, s: &Session<'_>) -> bool {
        let taken = self.try_lock(target, ttl, s);
        if !taken {
            s.out(NOT_LEADER_MSG).await;
        }
        taken
    }

    fn try_lock(&self, target: &MigrationsTarget, ttl: Duration, s: &Session<'_>) -> bool {
        let ttl = s.scaled(ttl);
        self.with_db(&target.database, |db| db.try_lock(&target.owner, ttl))
            .is_some_and(|r| r.is_ok())
    }

    /// `up`'s lock: when another node holds it, `cluster_mutex` waits (it never reads
    /// `up`'s `abort`), polling after 0.1, 0.3, 0.9 and then every 2 s until its sleeps add up
    /// to the lock's ttl; the lock gone by then (released or expired), it prints `aborted`
    /// and runs nothing, exit 0; still held, `[PostgreSQL error] timeout`, exit 1
    /// (kong/db/init.lua `cluster_mutex`, kong/concurrency.lua@3.9.1).
    async fn wait_for_lock(
        &self,
        target: &MigrationsTarget,
        ttl: Duration,
        s: &Session<'_>,
    ) -> Result<Option<i32>, Stop> {
        if self.try_lock(target, ttl, s) {
            return Ok(None);
        }
        let mut slept = Duration::ZERO;
        let mut step = Duration::from_millis(100);
        while slept < ttl {
            s.pause(step).await?;
            slept += step;
            step = (step * 3).min(Duration::from_secs(2));
            let held = self
                .with_db(&target.database, |db| db.lock().is_some())
                .unwrap_or(false);
            if !held {
                s.out(NOT_LEADER_MSG).await;
                return Ok(Some(0));
            }
        }
        Ok(Some(s.kong_error("[PostgreSQL error] timeout").await))
    }

    fn release_lock(&self, target: &MigrationsTarget) {
        self.with_db(&target.database, |db| db.unlock(&target.owner));
    }

    /// Runs migration steps as Kong logs them (`migrating SUB on database 'DB'...`, one
    /// line per migration), applying each as it is logged.
    async fn run_steps(
        &self,
        target: &MigrationsTarget,
        steps: &[MigrationStep],
        teardown: bool,
        s: &Session<'_>,
    ) -> Result<(), Stop> {
        let mut current: Option<&str> = None;
        for step in steps {
            if current != Some(step.subsystem.as_str()) {
                s.out(format!(
                    "migrating {} on database '{}'...",
                    step.subsystem, target.database
                ))
                .await;
                current = Some(step.subsystem.as_str());
            }
            s.pause(Duration::from_millis(if teardown { 900 } else { 600 }))
                .await?;
            self.with_db(&target.database, |db| {
                if teardown {
                    db.record_teardown(step, target.version);
                } else {
                    db.record_up(step);
                }
            });
            s.out(format!(
                "{} migrated up to: {} ({})",
                step.subsystem,
                step.name,
                if step.pending { "pending" } else { "executed" }
            ))
            .await;
        }
        let n = steps.len();
        let pending = steps.iter().filter(|st| st.pending).count();
        s.out(format!(
            "{n} migration{} processed",
            if n > 1 { "s" } else { "" }
        ))
        .await;
        if n > pending {
            s.out(format!("{} executed", n - pending)).await;
        }
        if pending > 0 {
            s.out(format!("{pending} pending")).await;
        }
        Ok(())
    }

    async fn migrations_up(
        &self,
        target: &MigrationsTarget,
        force: bool,
        lock_ttl: Duration,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        let view = self
            .with_db(&target.database, |db| db.view(target.version))
            .unwrap_or_default();
        if view.needs_bootstrap {
            return Ok(s
                .kong_error(&format!("Cannot run migrations: {NEEDS_BOOTSTRAP_MSG}"))
                .await);
        }
        if !force && !view.pending_migrations.is_empty() {
            return Ok(s
                .kong_error("Database has pending migrations; run 'kong migrations finish'")
                .await);
        }
        if let Some(code) = self.wait_for_lock(target, lock_ttl, s).await? {
            return Ok(code);
        }
        if force {
            let executed: Vec<MigrationStep> = view
                .executed_migrations
                .iter()
                .flat_map(|g| {
                    g.migrations.iter().map(|name| MigrationStep {
                        subsystem: g.subsystem.clone(),
                        name: name.clone(),
                        pending: false,
                    })
                })
                .collect();
            self.run_steps(target, &executed, false, s).await?;
        }
        let steps = self
            .with_db(&target.database, |db| db.plan_up(target.version))
            .unwrap_or_default();
        if steps.is_empty() {
            if !force {
                s.out("Database is already up-to-date").await;
            }
            self.release_lock(target);
            return Ok(0);
        }
        self.run_steps(target, &steps, false, s).await?;
        let pending = self
            .with_db(&target.database, |db| {
                db.view(target.version).pending_count()
            })
            .unwrap_or(0);
        if pending > 0 {
            s.out("").await;
            s.out("Database has pending migrations; run 'kong migrations finish' when ready")
                .await;
        }
        self.release_lock(target);
        Ok(0)
    }

    async fn migrations_finish(
        &self,
        target: &MigrationsTarget,
        force: bool,
        lock_ttl: Duration,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        let view = self
            .with_db(&target.database, |db| db.view(target.version))
            .unwrap_or_default();
        if view.needs_bootstrap {
            return Ok(s
                .kong_error(&format!("Cannot run migrations: {NEEDS_BOOTSTRAP_MSG}"))
                .await);
        }
        if !self.take_lock(target, lock_ttl, s).await {
            return Ok(0);
        }
        let steps = self
            .with_db(&target.database, |db| db.plan_finish(target.version))
            .unwrap_or_default();
        if !steps.is_empty() {
            self.run_steps(target, &steps, true, s).await?;
        }
        let after = self
            .with_db(&target.database, |db| db.view(target.version))
            .unwrap_or_default();
        // Printed after a successful finish too: the state is read again and nothing is
        // pending any more (kong/cmd/utils/migrations.lua:147-163@3.9.1).
        if after.new_count() > 0 {
            s.out("").await;
            s.out("New migrations available; run 'kong migrations up' to proceed")
                .await;
        } else if !force && after.pending_count() == 0 {
            s.out("No pending migrations to finish").await;
        }
        self.release_lock(target);
        Ok(0)
    }

    async fn migrations_bootstrap(
        &self,
        target: &MigrationsTarget,
        force: bool,
        lock_ttl: Duration,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        if force {
            self.with_db(&target.database, SimDatabase::reset);
        }
        let needs = self
            .with_db(&target.database, |db| {
                db.view(target.version).needs_bootstrap
            })
            .unwrap_or(false);
        if !needs {
            s.out("Database already bootstrapped").await;
            return Ok(0);
        }
        s.out("Bootstrapping database...").await;
        if !self.take_lock(target, lock_ttl, s).await {
            return Ok(0);
        }
        let steps: Vec<MigrationStep> = database::shipped_by(target.version)
            .map(|m| MigrationStep {
                subsystem: m.subsystem.to_string(),
                name: m.name.to_string(),
                pending: false,
            })
            .collect();
        let mut current = None;
        for step in &steps {
            if current != Some(step.subsystem.clone()) {
                s.out(format!(
                    "migrating {} on database '{}'...",
                    step.subsystem, target.database
                ))
                .await;
                current = Some(step.subsystem.clone());
            }
            s.pause(Duration::from_millis(100)).await?;
            s.out(format!(
                "{} migrated up to: {} (executed)",
                step.subsystem, step.name
            ))
            .await;
        }
        self.with_db(&target.database, |db| db.bootstrap(target.version));
        s.out(format!("{} migrations processed", steps.len())).await;
        s.out(format!("{} executed", steps.len())).await;
        s.out("Database is up-to-date").await;
        self.release_lock(target);
        Ok(0)
    }
}

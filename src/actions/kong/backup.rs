//! The backup steps: X's database (`pg_dump -Fc`, verified), the declarative configuration
//! (a copy of DB-less `kong.yml`, a decK dump or an Admin API export), and keyring and static
//! files fetched through a node's executor. Every backup lands in the run's `backups/`
//! (mode 0600) and is journaled with its SHA-256; a backup that is missing, empty or cannot
//! be verified fails the step, so the run does not go on without it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::facts::{self, DATABASE_BACKUP};
use super::{KongAccess, cluster_nodes, database_not_supported, unless_aborted};
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::kong::backup::{self, BackupRecord};
use crate::kong::process;
use crate::plan::model::{Edition, Node, Plan};
use crate::plan::steps::{BackupKind, ClusterSide, Step, StepKind};

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

fn aborted() -> StepOutcome {
    StepOutcome::failed("aborted by the operator")
}

/// One line for the log and the step's detail.
fn described(record: &BackupRecord, run_dir: &Path) -> String {
    format!(
        "{} of {}: {} ({} bytes, SHA-256 {}; {})",
        record.kind,
        record.source,
        record
            .path
            .strip_prefix(run_dir)
            .unwrap_or(&record.path)
            .display(),
        record.size,
        record.sha256,
        record.verified
    )
}

pub struct DatabaseBackup {
    access: Arc<KongAccess>,
}

impl DatabaseBackup {
    pub fn new(access: Arc<KongAccess>) -> DatabaseBackup {
        DatabaseBackup { access }
    }
}

#[async_trait::async_trait]
impl StepAction for DatabaseBackup {
    fn describe(&self, _step: &Step, plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        if let Some(unsupported) = database_not_supported(plan, "backup") {
            return vec![format!("{unsupported}: the step will refuse")];
        }
        match &self.access.x_database {
            Some(database) => vec![
                format!(
                    "back up X's database {} into the run directory's backups/ (mode 0600)",
                    database.describe()
                ),
                "verify it (size, SHA-256, its table of contents) and journal its SHA-256; \
                 no verified backup, no going on"
                    .to_string(),
            ],
            None => vec!["no database backup: the plan names no database for X".to_string()],
        }
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let Some(database) = &self.access.x_database else {
            if let Some(unsupported) = database_not_supported(&ctx.plan, "backup") {
                return Ok(StepOutcome::failed(format!(
                    "{unsupported}; give the step commands and `builtin: false`"
                )));
            }
            return Ok(StepOutcome::failed(
                "the plan names no database for X (clusters.x.database): kongup cannot back it \
                 up, and will not go on without a backup; add it, or skip this step with a \
                 reason once you hold a verified backup",
            ));
        };
        let dir = ctx.backups_dir()?;
        let name = format!("x-database-{}.dump", stamp());
        ctx.log
            .note(&format!("backing up {} into {name}", database.describe()));
        let record = match unless_aborted(ctx, database.backup(&dir, &name)).await {
            None => return Ok(aborted()),
            Some(Err(e)) => return Ok(StepOutcome::failed(format!("backup of X's database: {e}"))),
            Some(Ok(record)) => record,
        };
        let verified = match unless_aborted(ctx, database.verify(&record)).await {
            None => return Ok(aborted()),
            Some(Err(e)) => {
                return Ok(StepOutcome::failed(format!(
                    "the backup {} does not verify: {e}",
                    record.path.display()
                )));
            }
            Some(Ok(verified)) => verified,
        };
        ctx.log.note(&format!("verified: {verified}"));
        facts::record_backup(ctx, DATABASE_BACKUP, &record).await?;
        let line = described(&record, &ctx.run_dir);
        ctx.log.note(&line);
        Ok(StepOutcome::succeeded(line))
    }
}

/// Where a DB-less node's declarative file is read: X's first node with an executor (the
/// file lives on the node), else this machine.
fn declarative_executor(plan: &Plan) -> String {
    first_x_executor(plan).1
}

/// The first of X's nodes with an Admin API.
fn x_admin_url(plan: &Plan) -> Option<&str> {
    cluster_nodes(plan, ClusterSide::X)
        .iter()
        .find_map(|n| n.admin_url.as_deref())
}

pub struct DeclarativeBackup {
    access: Arc<KongAccess>,
}

impl DeclarativeBackup {
    pub fn new(access: Arc<KongAccess>) -> DeclarativeBackup {
        DeclarativeBackup { access }
    }
}

#[async_trait::async_trait]
impl StepAction for DeclarativeBackup {
    fn describe(&self, _step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(file) = &plan.backup.declarative_config {
            let place = toolbox
                .executors
                .get(&declarative_executor(plan))
                .map_or_else(|| "this machine".to_string(), |e| e.describe());
            lines.push(format!(
                "fetch {} through {place} into the run directory's backups/ and check it is a \
                 Kong declarative configuration",
                file.display()
            ));
        }
        if let Some(url) = x_admin_url(plan) {
            let workspaces = match plan.edition {
                Some(Edition::Enterprise) => {
                    "every workspace, one file each: the plan says edition: enterprise"
                }
                _ => {
                    "every workspace, one file each, if GET / shows Kong Enterprise; else the \
                     default workspace, the only one"
                }
            };
            lines.push(format!(
                "dump X's configuration from {url} with `deck gateway dump` (checked with `deck \
                 file validate`) when decK is on PATH, else export it through the Admin API \
                 (every collection of X's version: credentials, upstream targets, key sets \
                 included), into backups/; {workspaces}"
            ));
        }
        if lines.is_empty() {
            lines.push(
                "nothing to back up: the plan names no backup.declarative_config and no Admin \
                 API of X"
                    .to_string(),
            );
        }
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let plan = ctx.plan.clone();
        let source_file = plan.backup.declarative_config.clone();
        let admin_url = x_admin_url(&plan).map(str::to_string);
        if source_file.is_none() && admin_url.is_none() {
            return Ok(StepOutcome::failed(
                "kongup has nothing to back the configuration up from: name the declarative \
                 configuration (backup.declarative_config) or an Admin API of X (admin_url), or \
                 skip this step with a reason once you hold a backup",
            ));
        }
        let dir = ctx.backups_dir()?;
        let mut lines = Vec::new();
        if let Some(source) = source_file {
            let name = format!("declarative-config-{}.yaml", stamp());
            let executor = ctx.executor(&declarative_executor(&plan))?;
            ctx.log.note(&format!(
                "fetching {} through {}",
                source.display(),
                executor.describe()
            ));
            let fetched = unless_aborted(
                ctx,
                backup::fetch_declarative_config(
                    executor.as_ref(),
                    &source,
                    &dir,
                    &name,
                    self.access.waits.tools,
                ),
            )
            .await;
            let Some(fetched) = fetched else {
                return Ok(aborted());
            };
            match fetched {
                Ok(record) => {
                    facts::record_backup(ctx, &format!("backup.{}", record.kind), &record).await?;
                    lines.push(described(&record, &ctx.run_dir));
                }
                Err(e) => {
                    return Ok(StepOutcome::failed(format!(
                        "backup of the declarative configuration: {e}"
                    )));
                }
            }
        }
        if let Some(url) = admin_url {
            ctx.log
                .note(&format!("dumping the configuration from {url}"));
            let deck = process::find_on_path("deck");
            let dumped = unless_aborted(
                ctx,
                backup::declarative_backup(
                    deck.as_deref(),
                    &self.access.admin,
                    &url,
                    &dir,
                    &stamp(),
                    self.access.waits.tools,
                    plan.edition,
                ),
            )
            .await;
            match dumped {
                None => return Ok(aborted()),
                Some(Err(e)) => {
                    return Ok(StepOutcome::failed(format!(
                        "backup of the configuration from {url}: {e}"
                    )));
                }
                Some(Ok(done)) => {
                    let records = &done.records;
                    for (n, record) in records.iter().enumerate() {
                        let key = if records.len() == 1 {
                            format!("backup.{}", record.kind)
                        } else {
                            format!("backup.{}.{}", record.kind, n + 1)
                        };
                        facts::record_backup(ctx, &key, record).await?;
                        lines.push(described(record, &ctx.run_dir));
                    }
                    lines.push(format!(
                        "X is Kong {} ({}); workspace(s) backed up: {}",
                        done.edition.as_str(),
                        done.edition_evidence,
                        done.workspaces.join(", ")
                    ));
                }
            }
        }
        for line in &lines {
            ctx.log.note(line);
        }
        Ok(StepOutcome::succeeded(lines.join("; ")))
    }
}

/// Files fetched through a node's executor: keyring materials, or `kong.conf`.
pub struct FileBackup {
    access: Arc<KongAccess>,
}

impl FileBackup {
    pub fn new(access: Arc<KongAccess>) -> FileBackup {
        FileBackup { access }
    }
}

/// One file to fetch: from which node (through its executor), and where it goes.
struct Fetch {
    node: Option<String>,
    executor: String,
    remote: PathBuf,
    kind: &'static str,
    file_name: String,
}

/// X's nodes with an executor; none means the files are fetched on this machine.
fn x_executors(plan: &Plan) -> Vec<&Node> {
    let mut seen = Vec::new();
    cluster_nodes(plan, ClusterSide::X)
        .iter()
        .filter(|n| {
            let Some(executor) = &n.executor else {
                return false;
            };
            if seen.contains(executor) {
                return false;
            }
            seen.push(executor.clone());
            true
        })
        .collect()
}

/// X's first node with an executor and that executor's name; none: `local`.
fn first_x_executor(plan: &Plan) -> (Option<String>, String) {
    match x_executors(plan).first() {
        Some(n) => (Some(n.name.clone()), n.executor.clone().unwrap_or_default()),
        None => (None, "local".to_string()),
    }
}

fn safe_name(text: &str) -> String {
    crate::engine::rundir::run_id_for(text)
}

/// What a file backup fetches: keyring files once (from X's first node); `kong.conf` from
/// each of X's nodes (they may differ).
fn fetches(step: &Step, plan: &Plan) -> Vec<Fetch> {
    let nodes = x_executors(plan);
    let (node, executor) = first_x_executor(plan);
    match step.kind {
        StepKind::Backup(BackupKind::Keyring) => plan
            .backup
            .keyring
            .iter()
            .enumerate()
            .map(|(i, remote)| Fetch {
                node: node.clone(),
                executor: executor.clone(),
                remote: remote.clone(),
                kind: "keyring",
                file_name: format!(
                    "keyring-{}-{}",
                    i + 1,
                    safe_name(&remote.file_name().unwrap_or_default().to_string_lossy())
                ),
            })
            .collect(),
        StepKind::Backup(BackupKind::StaticFiles) => {
            let Some(conf) = &plan.backup.kong_conf else {
                return Vec::new();
            };
            if nodes.is_empty() {
                return vec![Fetch {
                    node: None,
                    executor: "local".into(),
                    remote: conf.clone(),
                    kind: "kong-conf",
                    file_name: "kong-conf-local.conf".into(),
                }];
            }
            nodes
                .iter()
                .map(|n| Fetch {
                    node: Some(n.name.clone()),
                    executor: n.executor.clone().unwrap_or_default(),
                    remote: conf.clone(),
                    kind: "kong-conf",
                    file_name: format!("kong-conf-{}.conf", safe_name(&n.name)),
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

#[async_trait::async_trait]
impl StepAction for FileBackup {
    fn describe(&self, step: &Step, plan: &Plan, toolbox: &Toolbox) -> Vec<String> {
        let planned = fetches(step, plan);
        if planned.is_empty() {
            return vec![
                "the plan names no files for this backup: copy them yourself, then confirm"
                    .to_string(),
            ];
        }
        planned
            .iter()
            .map(|f| {
                let place = toolbox
                    .executors
                    .get(&f.executor)
                    .map_or_else(|| format!("executor '{}'", f.executor), |e| e.describe());
                format!(
                    "fetch {} from {}through {place} into backups/{} (mode 0600, SHA-256 \
                     journaled)",
                    f.remote.display(),
                    f.node.as_ref().map(|n| format!("{n} ")).unwrap_or_default(),
                    f.file_name
                )
            })
            .collect()
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let planned = fetches(&ctx.step, &ctx.plan);
        if planned.is_empty() {
            ctx.log.note(
                "the plan names no files for this backup (backup.keyring, backup.kong_conf): \
                 your confirm records that you copied them yourself",
            );
            return Ok(StepOutcome::succeeded(
                "done by hand: the plan names no files to fetch",
            ));
        }
        let dir = ctx.backups_dir()?;
        let mut lines = Vec::new();
        for (n, fetch) in planned.iter().enumerate() {
            let executor = ctx.executor(&fetch.executor)?;
            ctx.log.note(&format!(
                "fetching {} through {}",
                fetch.remote.display(),
                executor.describe()
            ));
            let fetched = unless_aborted(
                ctx,
                backup::fetch_file(
                    executor.as_ref(),
                    &fetch.remote,
                    fetch.kind,
                    &dir,
                    &fetch.file_name,
                    self.access.waits.tools,
                ),
            )
            .await;
            let record = match fetched {
                None => return Ok(aborted()),
                Some(Err(e)) => return Ok(StepOutcome::failed(e.to_string())),
                Some(Ok(record)) => record,
            };
            let key = format!("backup.{}.{}", fetch.kind, n + 1);
            facts::record_backup(ctx, &key, &record).await?;
            let line = described(&record, &ctx.run_dir);
            ctx.log.note(&line);
            lines.push(line);
        }
        Ok(StepOutcome::succeeded(format!(
            "{} file(s) fetched: {}",
            lines.len(),
            lines.join("; ")
        )))
    }
}

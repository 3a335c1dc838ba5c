//! Backups before anything changes: `pg_dump -Fc` of Kong's database, the declarative
//! configuration (DB-less `kong.yml`, a decK dump, or an Admin API export), and `kong.conf`
//! and keyring files fetched through a node's executor. Every backup is written with mode
//! 0600, hashed, and verified; a backup that is missing, empty or unverifiable is an error.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::LogStream;
use crate::exec::{ExecError, ExecRequest, Executor, OutputLine};
use crate::kong::client::{AdminClient, AdminError};
use crate::kong::http::ADMIN_TOKEN_HEADER;
use crate::kong::pg::PgTarget;
use crate::kong::process::{self, ToolError};
use crate::plan::model::{CommandLine, Edition, TlsOptions};
use crate::plan::version::KongVersion;
use crate::secrets::Secret;

/// What the journal records of one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// `database`, `declarative-config`, `deck-dump`, `admin-api-export`, `kong-conf`, `keyring`.
    pub kind: String,
    /// What was backed up, e.g. `kong@db:5432/kong` or `cp1: /etc/kong/kong.conf`.
    pub source: String,
    pub path: PathBuf,
    pub size: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// How it was verified, e.g. "pg_restore --list: 112 entries, schema_meta present".
    pub verified: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("the backup {} is missing: kongup will not go on without it", path.display())]
    Missing { path: PathBuf },
    #[error("the backup {} is empty: kongup will not go on without a usable backup", path.display())]
    Empty { path: PathBuf },
    #[error(
        "the backup {} changed since it was taken (SHA-256 {actual}, recorded {expected}): kongup will not restore or go on from it",
        path.display()
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("the backup {} cannot be verified: {detail}", path.display())]
    Unverifiable { path: PathBuf, detail: String },
    #[error("exporting through the Admin API failed: {0}")]
    Admin(#[from] AdminError),
    #[error("could not fetch {remote} through {executor}: {detail}")]
    Fetch {
        remote: String,
        executor: String,
        detail: String,
    },
}

/// The PostgreSQL client programs and how long each may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    pub timeout: Duration,
}

impl PgTools {
    /// `pg_dump` and `pg_restore` from PATH, else the newest `/usr/lib/postgresql/*/bin`.
    pub fn discover(timeout: Duration) -> PgTools {
        PgTools {
            pg_dump: process::find_pg_program("pg_dump"),
            pg_restore: process::find_pg_program("pg_restore"),
            timeout,
        }
    }
}

/// Creates (or truncates) a file only its owner can read.
fn create_private(path: &Path) -> Result<std::fs::File, BackupError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| BackupError::Io {
            what: "cannot create".into(),
            path: path.to_path_buf(),
            source,
        })?;
    // An existing file keeps its old mode through `open`: set it.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|source| BackupError::Io {
            what: "cannot restrict the permissions of".into(),
            path: path.to_path_buf(),
            source,
        })?;
    Ok(file)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut file = create_private(path)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|source| BackupError::Io {
            what: "cannot write".into(),
            path: path.to_path_buf(),
            source,
        })
}

/// Hex SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let mut file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            return BackupError::Missing {
                path: path.to_path_buf(),
            };
        }
        BackupError::Io {
            what: "cannot read".into(),
            path: path.to_path_buf(),
            source,
        }
    })?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read =
            std::io::Read::read(&mut file, &mut buffer).map_err(|source| BackupError::Io {
                what: "cannot read".into(),
                path: path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Size and hash of a finished backup file; empty is an error.
fn measure(path: &Path) -> Result<(u64, String), BackupError> {
    let size = std::fs::metadata(path)
        .map_err(|_| BackupError::Missing {
            path: path.to_path_buf(),
        })?
        .len();
    if size == 0 {
        return Err(BackupError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok((size, sha256_file(path)?))
}

/// Checks a recorded backup before anything relies on it: it must exist, be non-empty and
/// still have the recorded size and hash.
pub fn check_record(record: &BackupRecord) -> Result<(), BackupError> {
    let (size, sha256) = measure(&record.path)?;
    if sha256 != record.sha256 || size != record.size {
        return Err(BackupError::ChecksumMismatch {
            path: record.path.clone(),
            expected: record.sha256.clone(),
            actual: sha256,
        });
    }
    Ok(())
}

/// `pg_dump -Fc` of `target` into `run_dir/file_name` (mode 0600), hashed and verified with
/// `pg_restore --list`. The password reaches pg_dump through `PGPASSWORD`, never its
/// arguments.
pub async fn dump_database(
    tools: &PgTools,
    target: &PgTarget,
    run_dir: &Path,
    file_name: &str,
) -> Result<BackupRecord, BackupError> {
    let path = run_dir.join(file_name);
    drop(create_private(&path)?);
    let args: Vec<OsString> = vec![
        "--format=custom".into(),
        "--no-password".into(),
        "--file".into(),
        path.clone().into(),
    ];
    process::run_tool(
        &tools.pg_dump,
        &args,
        &target.libpq_env(),
        tools.timeout,
        &format!("pg_dump of {}", target.address()),
    )
    .await?;
    let (size, sha256) = measure(&path)?;
    let verified = verify_dump(tools, &path).await?;
    Ok(BackupRecord {
        kind: "database".into(),
        source: target.describe(),
        path,
        size,
        sha256,
        verified,
    })
}

/// Reads a custom-format dump's table of contents with `pg_restore --list`; says how many
/// entries it holds and whether Kong's `schema_meta` is among them.
pub async fn verify_dump(tools: &PgTools, path: &Path) -> Result<String, BackupError> {
    let args: Vec<OsString> = vec!["--list".into(), path.into()];
    let output = process::run_tool(
        &tools.pg_restore,
        &args,
        &[],
        tools.timeout,
        &format!("pg_restore --list {}", path.display()),
    )
    .await
    .map_err(|e| match e {
        ToolError::Failed { stderr, .. } => BackupError::Unverifiable {
            path: path.to_path_buf(),
            detail: format!("pg_restore --list cannot read it: {}", stderr.trim()),
        },
        other => BackupError::Tool(other),
    })?;
    let toc = String::from_utf8_lossy(&output.stdout);
    let entries: Vec<&str> = toc
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .collect();
    if entries.is_empty() {
        return Err(BackupError::Unverifiable {
            path: path.to_path_buf(),
            detail: "its table of contents is empty".into(),
        });
    }
    let has_schema_meta = entries
        .iter()
        .any(|l| l.contains(" TABLE ") && l.contains(" schema_meta "));
    Ok(format!(
        "pg_restore --list: {} entries, schema_meta {}",
        entries.len(),
        if has_schema_meta { "present" } else { "absent" }
    ))
}

/// Table names (`schema.table`) a dump's table of contents creates.
pub async fn dump_tables(tools: &PgTools, path: &Path) -> Result<Vec<String>, BackupError> {
    let args: Vec<OsString> = vec!["--list".into(), path.into()];
    let output = process::run_tool(
        &tools.pg_restore,
        &args,
        &[],
        tools.timeout,
        &format!("pg_restore --list {}", path.display()),
    )
    .await?;
    // Entry lines read `ID; OID OID TABLE schema name owner`.
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "TABLE")?;
            if words.get(at + 1) == Some(&"DATA") {
                return None;
            }
            Some(format!("{}.{}", words.get(at + 1)?, words.get(at + 2)?))
        })
        .collect())
}

/// Fetches a DB-less node's declarative configuration through its executor (the file lives
/// on the node, not where kongup runs) into `run_dir`, and checks it is one.
pub async fn fetch_declarative_config(
    executor: &dyn Executor,
    remote: &Path,
    run_dir: &Path,
    file_name: &str,
    timeout: Duration,
) -> Result<BackupRecord, BackupError> {
    let mut record = fetch_file(
        executor,
        remote,
        "declarative-config",
        run_dir,
        file_name,
        timeout,
    )
    .await?;
    if record.size == 0 {
        return Err(BackupError::Unverifiable {
            path: record.path.clone(),
            detail: format!("{} is empty", record.source),
        });
    }
    let bytes = std::fs::read(&record.path).map_err(|e| BackupError::Io {
        what: "cannot read back".into(),
        path: record.path.clone(),
        source: e,
    })?;
    record.verified = verify_declarative(&record.path, &bytes)?;
    Ok(record)
}

fn verify_declarative(path: &Path, bytes: &[u8]) -> Result<String, BackupError> {
    let value: serde_yaml::Value =
        serde_yaml::from_slice(bytes).map_err(|e| BackupError::Unverifiable {
            path: path.to_path_buf(),
            detail: format!("not YAML: {e}"),
        })?;
    let version = value
        .get("_format_version")
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        })
        .ok_or_else(|| BackupError::Unverifiable {
            path: path.to_path_buf(),
            detail: "no _format_version: this is not a Kong declarative configuration".into(),
        })?;
    Ok(format!("YAML with _format_version {version}"))
}

/// The arguments and the private config file of `deck gateway dump`. The Admin token goes
/// into the config file (`headers:`), never into the arguments. `output` is the file for
/// one workspace (`-o`); `None` dumps every workspace (`--all-workspaces`, which decK does
/// not combine with `-o`: it writes `<workspace>.yaml` files into its working directory).
pub fn deck_dump_invocation(
    admin_url: &str,
    token: Option<&str>,
    tls: &TlsOptions,
    output: Option<&Path>,
    config: &Path,
) -> (Vec<OsString>, String) {
    let mut args: Vec<OsString> = vec!["gateway".into(), "dump".into(), "--yes".into()];
    match output {
        Some(file) => {
            args.push("-o".into());
            args.push(file.into());
        }
        None => args.push("--all-workspaces".into()),
    }
    args.extend([
        "--kong-addr".into(),
        admin_url.into(),
        "--config".into(),
        config.into(),
    ]);
    if tls.insecure {
        args.push("--tls-skip-verify".into());
    }
    if let Some(ca) = &tls.ca_file {
        args.push("--ca-cert-file".into());
        args.push(ca.into());
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        args.push("--tls-client-cert-file".into());
        args.push(cert.into());
        args.push("--tls-client-key-file".into());
        args.push(key.into());
    }
    let config_text = match token {
        Some(token) => format!(
            "headers:\n  - {}\n",
            serde_json::to_string(&format!("{ADMIN_TOKEN_HEADER}:{token}")).unwrap_or_default()
        ),
        None => "{}\n".to_string(),
    };
    (args, config_text)
}

/// Runs `deck gateway dump` (in `cwd` when given) with the token in a private config file
/// next to the backups, removed whatever happened.
async fn run_deck_dump(
    deck: &Path,
    client: &AdminClient,
    admin_url: &str,
    output: Option<&Path>,
    config: &Path,
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<(), BackupError> {
    let (args, config_text) = deck_dump_invocation(
        admin_url,
        client.token().map(Secret::expose),
        client.tls(),
        output,
        config,
    );
    write_private(config, config_text.as_bytes())?;
    let result = process::run_tool_in(
        deck,
        &args,
        &[],
        cwd,
        timeout,
        &format!("deck gateway dump of {admin_url}"),
    )
    .await;
    let _ = std::fs::remove_file(config);
    result?;
    Ok(())
}

/// Restricts a file decK wrote, measures it and checks it with `deck file validate`.
async fn verify_deck_file(
    deck: &Path,
    path: &Path,
    source: String,
    timeout: Duration,
) -> Result<BackupRecord, BackupError> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    let (size, sha256) = measure(path)?;
    let validate: Vec<OsString> = vec!["file".into(), "validate".into(), path.into()];
    process::run_tool(
        deck,
        &validate,
        &[],
        timeout,
        &format!("deck file validate {}", path.display()),
    )
    .await
    .map_err(|e| BackupError::Unverifiable {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(BackupRecord {
        kind: "deck-dump".into(),
        source,
        path: path.to_path_buf(),
        size,
        sha256,
        verified: "deck file validate".into(),
    })
}

/// `deck gateway dump` of the default workspace of the Admin API at `admin_url` into
/// `run_dir/file_name`, verified with `deck file validate`. A failed dump leaves no file.
pub async fn deck_dump(
    deck: &Path,
    client: &AdminClient,
    admin_url: &str,
    run_dir: &Path,
    file_name: &str,
    timeout: Duration,
) -> Result<BackupRecord, BackupError> {
    let path = run_dir.join(file_name);
    let config = run_dir.join(format!(".{file_name}.deck.yaml"));
    if let Err(e) =
        run_deck_dump(deck, client, admin_url, Some(&path), &config, None, timeout).await
    {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    verify_deck_file(deck, &path, admin_url.to_string(), timeout).await
}

/// `deck gateway dump --all-workspaces` of an Enterprise Admin API into the new directory
/// `run_dir/dir_name` (mode 0700): one `<workspace>.yaml` per workspace, each verified
/// with `deck file validate` and returned with its own SHA-256, in workspace order.
pub async fn deck_dump_all_workspaces(
    deck: &Path,
    client: &AdminClient,
    admin_url: &str,
    run_dir: &Path,
    dir_name: &str,
    timeout: Duration,
) -> Result<Vec<BackupRecord>, BackupError> {
    let dir = create_private_dir(run_dir, dir_name)?;
    // Outside `dir`, so it is never taken for a workspace's file.
    let config = run_dir.join(format!(".{dir_name}.deck.yaml"));
    run_deck_dump(deck, client, admin_url, None, &config, Some(&dir), timeout).await?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| BackupError::Io {
            what: "cannot list".into(),
            path: dir.clone(),
            source,
        })?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BackupError::Unverifiable {
            path: dir,
            detail: "deck gateway dump --all-workspaces succeeded but wrote no workspace file: \
                     kongup will not go on without a usable backup"
                .into(),
        });
    }
    let mut records = Vec::new();
    for file in files {
        let workspace = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        records.push(
            verify_deck_file(
                deck,
                &file,
                format!("{admin_url} workspace {workspace}"),
                timeout,
            )
            .await?,
        );
    }
    Ok(records)
}

/// The JSON an Admin API export writes: one workspace's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminExport {
    pub exported_from: String,
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The version `GET /` reported, which decided the collections read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kong_version: String,
    /// The Enterprise workspace it holds; absent: the open-source gateway's only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Collection name → every entity, as the Admin API returned it (`targets`: every
    /// upstream's).
    pub entities: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
    /// Collections not read, and why, e.g. "filter-chains: wasm is off".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Exports one workspace of a node of `version` and `edition` into `path` (mode 0600), and
/// verifies it by reading it back. `workspace`: an Enterprise workspace, `default` read
/// through the root paths as on the open-source gateway, the others through
/// `/<workspace>/…`; `None`: the open-source gateway's root paths.
async fn write_export(
    client: &AdminClient,
    admin_url: &str,
    version: KongVersion,
    edition: Edition,
    workspace: Option<&str>,
    path: PathBuf,
) -> Result<BackupRecord, BackupError> {
    let prefix = workspace.filter(|w| *w != "default");
    let read = client
        .export_configuration(admin_url, version, edition, prefix)
        .await?;
    let export = AdminExport {
        exported_from: admin_url.to_string(),
        exported_at: chrono::Utc::now(),
        kong_version: version.to_string(),
        workspace: workspace.map(str::to_string),
        entities: read.entities,
        skipped: read
            .skipped
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&export).map_err(|e| BackupError::Unverifiable {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    write_private(&path, &bytes)?;
    let (size, sha256) = measure(&path)?;
    let reread: AdminExport =
        serde_json::from_slice(&std::fs::read(&path).map_err(|source| BackupError::Io {
            what: "cannot read back".into(),
            path: path.clone(),
            source,
        })?)
        .map_err(|e| BackupError::Unverifiable {
            path: path.clone(),
            detail: format!("the written export does not read back: {e}"),
        })?;
    if reread.entities.is_empty() {
        return Err(BackupError::Unverifiable {
            path,
            detail: "the Admin API listed no entity collection at all".into(),
        });
    }
    let counts: Vec<String> = reread
        .entities
        .iter()
        .map(|(name, rows)| format!("{name} {}", rows.len()))
        .collect();
    let skipped: Vec<String> = read
        .skipped
        .iter()
        .map(|(name, why)| format!("; {name} skipped: {why}"))
        .collect();
    Ok(BackupRecord {
        kind: "admin-api-export".into(),
        source: match workspace {
            Some(workspace) => format!("{admin_url} workspace {workspace}"),
            None => admin_url.to_string(),
        },
        path,
        size,
        sha256,
        verified: format!("read back: {}{}", counts.join(", "), skipped.concat()),
    })
}

/// An export of the configuration through the Admin API's root paths (the default
/// workspace), paging through `next`, into a JSON file verified by reading it back. The
/// collections read follow the version `GET /` reports ([`crate::kong::client::COLLECTIONS`]).
pub async fn export_through_admin_api(
    client: &AdminClient,
    admin_url: &str,
    run_dir: &Path,
    file_name: &str,
) -> Result<BackupRecord, BackupError> {
    let (version, edition, _) = client.version_and_edition(admin_url).await?;
    write_export(
        client,
        admin_url,
        version,
        edition,
        None,
        run_dir.join(file_name),
    )
    .await
}

/// Creates `run_dir/dir_name`, only its owner may enter it.
fn create_private_dir(run_dir: &Path, dir_name: &str) -> Result<PathBuf, BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = run_dir.join(dir_name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|source| BackupError::Io {
            what: "cannot create the directory".into(),
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

/// A workspace name as a file name: Kong's names are `utf8_name`s (no `/`), but one that
/// would leave the directory or hide in it is refused rather than written.
fn workspace_file(dir: &Path, workspace: &str, extension: &str) -> Result<PathBuf, BackupError> {
    if workspace.is_empty() || workspace.contains('/') || workspace.starts_with('.') {
        return Err(BackupError::Unverifiable {
            path: dir.to_path_buf(),
            detail: format!("the workspace name {workspace:?} cannot be a file name"),
        });
    }
    Ok(dir.join(format!("{workspace}.{extension}")))
}

/// What the declarative backup of a database-backed cluster did: its files, the edition
/// it took the node for (and why), and the workspaces it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclarativeBackup {
    pub records: Vec<BackupRecord>,
    pub edition: Edition,
    /// How the edition is known, e.g. "GET / has no edition (…); version 3.4.3.12 has four
    /// parts, Kong Enterprise's numbering".
    pub edition_evidence: String,
    pub workspaces: Vec<String>,
}

/// The declarative backup of a database-backed cluster: a decK dump when `deck` is given
/// (the caller finds it on PATH), else the Admin API export. Kong Enterprise
/// ([`NodeInfo::edition`](crate::kong::types::NodeInfo::edition), or the plan's `edition:
/// enterprise`) may hold workspaces besides `default`: then every workspace `GET
/// /workspaces` lists is backed up, one file each, and a workspace without its file fails
/// the backup. Elsewhere there is only the default workspace.
pub async fn declarative_backup(
    deck: Option<&Path>,
    client: &AdminClient,
    admin_url: &str,
    run_dir: &Path,
    stamp: &str,
    timeout: Duration,
    plan_edition: Option<Edition>,
) -> Result<DeclarativeBackup, BackupError> {
    let (version, detected, mut edition_evidence) = client.version_and_edition(admin_url).await?;
    let edition = if plan_edition == Some(Edition::Enterprise) && detected != Edition::Enterprise {
        edition_evidence = format!("the plan says edition: enterprise ({edition_evidence})");
        Edition::Enterprise
    } else {
        detected
    };
    let listed = match edition {
        Edition::Community => None,
        Edition::Enterprise => match client.workspaces(admin_url).await {
            Ok(workspaces) => Some(workspaces),
            // No workspaces route at all (Enterprise's routing is unverified; a DB-less
            // node, say): then there are no `/<workspace>/` paths either, and the root
            // paths hold the whole configuration.
            Err(AdminError::NotFound { .. }) => {
                edition_evidence.push_str(
                    "; GET /workspaces answers 404, so the root paths hold the whole \
                     configuration",
                );
                None
            }
            Err(e) => {
                return Err(BackupError::Unverifiable {
                    path: run_dir.to_path_buf(),
                    detail: format!(
                        "Kong Enterprise ({edition_evidence}), but its workspaces cannot be \
                         listed, so a backup of every workspace cannot be checked: {e}. Use an \
                         Admin token that may list workspaces, or back up each workspace \
                         yourself and skip this step with a reason"
                    ),
                });
            }
        },
    };
    let Some(workspaces) = listed else {
        let records = match deck {
            Some(deck) => {
                let name = format!("deck-dump-{stamp}.yaml");
                vec![deck_dump(deck, client, admin_url, run_dir, &name, timeout).await?]
            }
            None => {
                let path = run_dir.join(format!("admin-api-export-{stamp}.json"));
                vec![write_export(client, admin_url, version, edition, None, path).await?]
            }
        };
        return Ok(DeclarativeBackup {
            records,
            edition,
            edition_evidence,
            workspaces: vec!["default".to_string()],
        });
    };
    let records = match deck {
        Some(deck) => {
            let dir = format!("deck-dump-{stamp}");
            let records =
                deck_dump_all_workspaces(deck, client, admin_url, run_dir, &dir, timeout).await?;
            let dumped: Vec<&str> = records
                .iter()
                .filter_map(|r| r.path.file_stem().and_then(|s| s.to_str()))
                .collect();
            let missing: Vec<&str> = workspaces
                .iter()
                .map(String::as_str)
                .filter(|w| !dumped.contains(w))
                .collect();
            if !missing.is_empty() {
                return Err(BackupError::Unverifiable {
                    path: run_dir.join(&dir),
                    detail: format!(
                        "deck gateway dump --all-workspaces wrote no file for the workspace(s) \
                         {} that GET /workspaces lists: the backup would not hold them",
                        missing.join(", ")
                    ),
                });
            }
            records
        }
        None => {
            let dir = create_private_dir(run_dir, &format!("admin-api-export-{stamp}"))?;
            let mut records = Vec::new();
            for workspace in &workspaces {
                let path = workspace_file(&dir, workspace, "json")?;
                records.push(
                    write_export(client, admin_url, version, edition, Some(workspace), path)
                        .await?,
                );
            }
            records
        }
    };
    Ok(DeclarativeBackup {
        records,
        edition,
        edition_evidence,
        workspaces,
    })
}

/// Fetches a text file (`kong.conf`, keyring PEM files) from a node through its executor
/// (`cat`), into `run_dir/file_name` with mode 0600.
pub async fn fetch_file(
    executor: &dyn Executor,
    remote: &Path,
    kind: &str,
    run_dir: &Path,
    file_name: &str,
    timeout: Duration,
) -> Result<BackupRecord, BackupError> {
    let remote_text = remote.display().to_string();
    let request = ExecRequest {
        command: CommandLine::Argv(vec!["cat".into(), "--".into(), remote_text.clone()]),
        env: Vec::new(),
        timeout,
    };
    let (tx, mut rx) = mpsc::channel::<OutputLine>(1024);
    let collect = async {
        let mut stdout = String::new();
        let mut stderr = String::new();
        while let Some(line) = rx.recv().await {
            let target = if line.stream == LogStream::Stdout {
                &mut stdout
            } else {
                &mut stderr
            };
            target.push_str(&line.text);
            target.push('\n');
        }
        (stdout, stderr)
    };
    let (outcome, (stdout, stderr)) =
        tokio::join!(executor.run(request, tx, CancellationToken::new()), collect);
    let fetch_error = |detail: String| BackupError::Fetch {
        remote: remote_text.clone(),
        executor: executor.describe(),
        detail,
    };
    let outcome = outcome.map_err(|e: ExecError| fetch_error(e.to_string()))?;
    if !outcome.success() {
        return Err(fetch_error(format!(
            "cat ended with {outcome:?}: {}",
            stderr.trim()
        )));
    }
    let path = run_dir.join(file_name);
    write_private(&path, stdout.as_bytes())?;
    let (size, sha256) = measure(&path)?;
    Ok(BackupRecord {
        kind: kind.to_string(),
        source: format!("{}: {remote_text}", executor.describe()),
        path,
        size,
        sha256,
        verified: format!(
            "fetched as text through {}: {} lines",
            executor.describe(),
            stdout.lines().count()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deck_gets_the_token_through_its_config_file_only() {
        let (args, config) = deck_dump_invocation(
            "https://cp1:8444",
            Some("tok-secret"),
            &TlsOptions {
                ca_file: Some("/etc/ca.pem".into()),
                insecure: true,
                ..TlsOptions::default()
            },
            Some(Path::new("/run/dump.yaml")),
            Path::new("/run/.deck.yaml"),
        );
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            !joined.iter().any(|a| a.contains("tok-secret")),
            "{joined:?}"
        );
        assert_eq!(
            &joined[..5],
            ["gateway", "dump", "--yes", "-o", "/run/dump.yaml"]
        );
        assert!(joined.contains(&"--tls-skip-verify".to_string()));
        assert!(joined.contains(&"--ca-cert-file".to_string()));
        assert_eq!(config, "headers:\n  - \"Kong-Admin-Token:tok-secret\"\n");
    }

    #[test]
    fn all_workspaces_goes_without_an_output_file() {
        let (args, config) = deck_dump_invocation(
            "http://cp1:8001",
            None,
            &TlsOptions::default(),
            None,
            Path::new("/run/.deck.yaml"),
        );
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            &joined[..4],
            ["gateway", "dump", "--yes", "--all-workspaces"]
        );
        assert!(
            !joined.iter().any(|a| a == "-o" || a == "--output-file"),
            "{joined:?}"
        );
        assert_eq!(config, "{}\n");
    }
}

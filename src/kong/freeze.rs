//! The configuration-freeze guard. During an upgrade nothing may write Kong's configuration
//! (Admin API, decK, Kong Manager, the database). At backup time kongup takes a fingerprint
//! of the configuration (every collection the Admin API export reads: core entities,
//! credentials, upstream targets, key sets…); before each traffic step and before `migrations finish` it takes
//! another and names whatever changed, so the backup is known to still hold everything.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kong::client::{AdminClient, AdminError};
use crate::kong::pg::{PgError, PgTarget};
use crate::plan::model::Edition;

/// Tables fingerprinted through the database: what the Admin API export reads
/// ([`crate::kong::client::COLLECTIONS`]), by table name, every workspace's rows at once. A
/// table this database lacks (another version's, a plugin's never migrated) is left out.
/// Names from Kong's schemas and plugin DAOs (kong/db/schema/entities/*.lua,
/// kong/plugins/*/daos.lua @2.8.5/@3.4.2/@master).
const FREEZE_TABLES: &[&str] = &[
    "services",
    "routes",
    "consumers",
    "plugins",
    "upstreams",
    "targets",
    "certificates",
    "snis",
    "ca_certificates",
    // Vaults: `vaults_beta` on 2.8 (015_270_to_280), `sm_vaults` from 3.0 (the `vaults`
    // entity's table_name, kong/db/schema/entities/vaults.lua:45@3.4.2).
    "vaults_beta",
    "sm_vaults",
    "key_sets",
    "keys",
    "filter_chains",
    "keyauth_credentials",
    "basicauth_credentials",
    "hmacauth_credentials",
    "jwt_secrets",
    "acls",
    "oauth2_credentials",
    // Kong Enterprise's (not in the open-source code: unverified names).
    "consumer_groups",
    "consumer_group_consumers",
    "consumer_group_plugins",
];

/// Where fingerprints are taken from.
#[derive(Debug, Clone)]
pub enum FreezeSource {
    /// Kong's database (traditional mode, hybrid control planes).
    Database(PgTarget),
    /// The Admin API of one node (any mode; the only way for DB-less nodes).
    AdminApi {
        client: AdminClient,
        admin_url: String,
    },
}

impl FreezeSource {
    pub fn describe(&self) -> String {
        match self {
            FreezeSource::Database(target) => format!("database {}", target.address()),
            FreezeSource::AdminApi { admin_url, .. } => format!("Admin API {admin_url}"),
        }
    }
}

/// The state of the configuration at one moment; journaled with the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// `FreezeSource::describe` of where it was taken.
    pub source: String,
    pub taken_at: DateTime<Utc>,
    /// Entity (table or collection) name → its print. Entities this Kong lacks are absent.
    pub entities: BTreeMap<String, EntityPrint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityPrint {
    pub count: u64,
    pub newest_created_at: Option<String>,
    pub newest_updated_at: Option<String>,
    /// SHA-256 of the sorted ids: catches a row replaced by another.
    pub ids_sha256: String,
    /// SHA-256 of every row in id order: catches an edit that left the timestamps alone.
    pub content_sha256: String,
    /// Database source: the columns `content_sha256` covers. A later check hashes the same
    /// columns, so a column that `kong migrations up` adds is not taken for an edit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("cannot fingerprint the configuration through the database: {0}")]
    Pg(#[from] PgError),
    #[error("cannot fingerprint the configuration through the Admin API: {0}")]
    Admin(#[from] AdminError),
    #[error(
        "the fingerprint was taken from {then}, but the check reads {now}: compare like with like"
    )]
    SourceMismatch { then: String, now: String },
}

/// Takes a fingerprint now.
pub async fn take(source: &FreezeSource) -> Result<Fingerprint, FreezeError> {
    take_like(source, None).await
}

/// Takes a fingerprint comparable with `like`: database rows are hashed over the columns
/// `like` hashed (those still there).
async fn take_like(
    source: &FreezeSource,
    like: Option<&Fingerprint>,
) -> Result<Fingerprint, FreezeError> {
    let entities = match source {
        FreezeSource::Database(target) => database_prints(target, like).await?,
        FreezeSource::AdminApi { client, admin_url } => admin_prints(client, admin_url).await?,
    };
    Ok(Fingerprint {
        source: source.describe(),
        taken_at: Utc::now(),
        entities,
    })
}

/// Takes a new fingerprint and lists what changed since `before`; empty means frozen.
pub async fn check(
    before: &Fingerprint,
    source: &FreezeSource,
) -> Result<Vec<String>, FreezeError> {
    if before.source != source.describe() {
        return Err(FreezeError::SourceMismatch {
            then: before.source.clone(),
            now: source.describe(),
        });
    }
    let now = take_like(source, Some(before)).await?;
    Ok(compare(before, &now))
}

/// What differs between two fingerprints, one line per entity, e.g.
/// "routes: 12 → 13, newest created_at changed". An entity that appeared empty (a table a
/// migration created) is no change.
pub fn compare(before: &Fingerprint, now: &Fingerprint) -> Vec<String> {
    let mut names: Vec<&String> = before.entities.keys().chain(now.entities.keys()).collect();
    names.sort();
    names.dedup();
    let mut changes = Vec::new();
    for name in names {
        match (before.entities.get(name), now.entities.get(name)) {
            (Some(_), None) => changes.push(format!("{name}: no longer readable")),
            (None, Some(print)) if print.count > 0 => {
                changes.push(format!("{name}: appeared with {} row(s)", print.count))
            }
            (Some(a), Some(b)) if a != b => {
                let mut parts = Vec::new();
                let dropped: Vec<&str> = a
                    .columns
                    .iter()
                    .filter(|c| !b.columns.contains(c))
                    .map(String::as_str)
                    .collect();
                if !b.columns.is_empty() && !dropped.is_empty() {
                    parts.push(format!("column(s) gone: {}", dropped.join(", ")));
                }
                if a.count != b.count {
                    parts.push(format!("{} → {}", a.count, b.count));
                }
                if a.newest_created_at != b.newest_created_at {
                    parts.push("newest created_at changed".to_string());
                }
                if a.newest_updated_at != b.newest_updated_at {
                    parts.push("newest updated_at changed".to_string());
                }
                if a.ids_sha256 != b.ids_sha256 && a.count == b.count {
                    parts.push("a row was replaced by another (ids differ)".to_string());
                }
                if parts.is_empty() {
                    parts.push("rows were edited (same ids and timestamps)".to_string());
                }
                changes.push(format!("{name}: {}", parts.join(", ")));
            }
            _ => {}
        }
    }
    changes
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn database_prints(
    target: &PgTarget,
    like: Option<&Fingerprint>,
) -> Result<BTreeMap<String, EntityPrint>, PgError> {
    let client = target.connect().await?;
    let mut prints = BTreeMap::new();
    for table in FREEZE_TABLES {
        let columns: Vec<String> = target
            .query_with(
                &client,
                &format!("reading the columns of {table}"),
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = ANY (current_schemas(false)) \
                 ORDER BY ordinal_position",
                &[table],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !columns.iter().any(|c| c == "id") {
            continue;
        }
        let newest = |column: &str| {
            if columns.iter().any(|c| c == column) {
                format!("max({column})::text")
            } else {
                "NULL::text".to_string()
            }
        };
        // The columns of the fingerprint being checked against, those still there.
        let hashed: Vec<String> = match like.and_then(|f| f.entities.get(*table)) {
            Some(print) if !print.columns.is_empty() => print
                .columns
                .iter()
                .filter(|c| columns.contains(c))
                .cloned()
                .collect(),
            _ => columns.clone(),
        };
        let row_expr = hashed
            .iter()
            .map(|c| format!("t.{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        // The table names are ours (FREEZE_TABLES) and the columns are quoted.
        let sql = format!(
            "SELECT count(*), {created}, {updated}, \
             encode(sha256(convert_to(coalesce(string_agg(id::text, ',' ORDER BY id::text), ''), 'UTF8')), 'hex'), \
             encode(sha256(convert_to(coalesce(string_agg(ROW({row_expr})::text, E'\\n' ORDER BY id::text), ''), 'UTF8')), 'hex') \
             FROM {table} AS t",
            created = newest("created_at"),
            updated = newest("updated_at"),
        );
        let rows = target
            .query(&client, &format!("fingerprinting {table}"), &sql)
            .await?;
        let row = &rows[0];
        prints.insert(
            table.to_string(),
            EntityPrint {
                count: row.get::<_, i64>(0) as u64,
                newest_created_at: row.get(1),
                newest_updated_at: row.get(2),
                ids_sha256: row.get(3),
                content_sha256: row.get(4),
                columns: hashed,
            },
        );
    }
    Ok(prints)
}

/// Prints of every collection the Admin API export reads, at the node's version: keyed by
/// collection (`targets` for every upstream's), and on Kong Enterprise by
/// `<workspace>/<collection>` for every workspace.
async fn admin_prints(
    client: &AdminClient,
    admin_url: &str,
) -> Result<BTreeMap<String, EntityPrint>, AdminError> {
    let (version, edition, _) = client.version_and_edition(admin_url).await?;
    let mut prints = BTreeMap::new();
    let workspaces = match edition {
        Edition::Community => None,
        // No workspaces route: the root paths hold the whole configuration (as the backup
        // reads it, kong::backup::declarative_backup).
        Edition::Enterprise => match client.workspaces(admin_url).await {
            Ok(workspaces) => Some(workspaces),
            Err(AdminError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        },
    };
    let Some(workspaces) = workspaces else {
        let export = client
            .export_configuration(admin_url, version, edition, None)
            .await?;
        for (name, rows) in export.entities {
            prints.insert(name, print_of_json(&rows));
        }
        return Ok(prints);
    };
    for workspace in workspaces {
        let prefix = (workspace != "default").then_some(workspace.as_str());
        let export = client
            .export_configuration(admin_url, version, edition, prefix)
            .await?;
        for (name, rows) in export.entities {
            prints.insert(format!("{workspace}/{name}"), print_of_json(&rows));
        }
    }
    Ok(prints)
}

fn print_of_json(rows: &[serde_json::Value]) -> EntityPrint {
    let mut sorted: Vec<(String, &serde_json::Value)> = rows
        .iter()
        .map(|row| {
            let id = row
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            (id, row)
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let newest = |field: &str| {
        rows.iter()
            .filter_map(|row| row.get(field).and_then(|v| v.as_i64()))
            .max()
            .map(|t| t.to_string())
    };
    let mut ids = Sha256::new();
    let mut content = Sha256::new();
    for (id, row) in &sorted {
        ids.update(id.as_bytes());
        ids.update(b",");
        content.update(row.to_string().as_bytes());
        content.update(b"\n");
    }
    EntityPrint {
        count: rows.len() as u64,
        newest_created_at: newest("created_at"),
        newest_updated_at: newest("updated_at"),
        ids_sha256: hex::encode(ids.finalize()),
        content_sha256: hex::encode(content.finalize()),
        columns: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fingerprint(routes: &[serde_json::Value]) -> Fingerprint {
        Fingerprint {
            source: "Admin API http://cp1:8001".into(),
            taken_at: Utc::now(),
            entities: BTreeMap::from([("routes".to_string(), print_of_json(routes))]),
        }
    }

    #[test]
    fn names_a_new_row_and_an_edit() {
        let before = fingerprint(&[json!({"id": "r1", "created_at": 10, "updated_at": 10})]);
        let added = fingerprint(&[
            json!({"id": "r1", "created_at": 10, "updated_at": 10}),
            json!({"id": "r2", "created_at": 20, "updated_at": 20}),
        ]);
        assert_eq!(
            compare(&before, &added),
            ["routes: 1 → 2, newest created_at changed, newest updated_at changed"]
        );
        let edited = fingerprint(&[
            json!({"id": "r1", "created_at": 10, "updated_at": 10, "paths": ["/x"]}),
        ]);
        assert_eq!(
            compare(&before, &edited),
            ["routes: rows were edited (same ids and timestamps)"]
        );
        assert!(compare(&before, &before.clone()).is_empty());
    }
}

//! Kong's Admin API and Status API response bodies, field for field as Kong sends them
//! (docs/kong/admin-and-status-api.md). The real client deserializes them and the simulated
//! lab serializes them, so a test can prove the two agree.
//!
//! Reading is lenient where Kong is: every optional field takes `null` (the Admin API reads
//! with `nulls = true`, so an unset column comes back as `null`, kong/api/endpoints.lua:140
//! @3.4.2), absence (fields come and go by version) and unknown extra fields (serde's
//! default). Only what identifies a body (a data plane's `id`, `ip`, `hostname`; a node's
//! `version` and `configuration.role`) is required.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::plan::model::Edition;
use crate::plan::version::{KongVersion, VersionError};

/// `null_as_default` for a `Vec` of any element type.
fn null_as_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads `null` as the type's default, as if the key were absent.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `DECLARATIVE_EMPTY_CONFIG_HASH` (kong/constants.lua:190@2.8.5, :217@master): the
/// `configuration_hash` of a node holding no configuration, and the `config_hash` a
/// control plane lists for such a data plane. A data plane with it proxies nothing (every
/// request 404); Kong issue 12861 is control planes pushing it during an upgrade.
pub const EMPTY_CONFIG_HASH: &str = "00000000000000000000000000000000";

/// Whether a `/status/ready` 503 reason says the node has no configuration: `no
/// configuration available (configuration hash is not initialized)` or `(empty
/// configuration present)` (kong/status/ready.lua:27-50@3.4.2, same @3.9.1 and @master).
pub fn says_no_configuration(reason: &str) -> bool {
    reason.starts_with("no configuration available")
}

/// Reads a version as Kong reports it (`GET /`, a data plane's `version`): three or four
/// numeric parts, with any `-…` or `+…` suffix dropped, as in the Admin API's
/// `2.4.1.0-enterprise-edition`. Plan files get no such leniency (`KongVersion::from_str`).
pub fn reported_version(text: &str) -> Result<KongVersion, VersionError> {
    let numeric = text.trim().split(['-', '+']).next().unwrap_or_default();
    numeric.parse().map_err(|e: VersionError| VersionError {
        input: text.to_string(),
        reason: e.reason,
    })
}

/// `GET /` on the Admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub version: String,
    /// `community` or `enterprise`; only from 3.6.0 (absent before, not null). See
    /// [`NodeInfo::edition`] for what kongup makes of a node without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostname: String,
    /// Null when `kong.node.get_id()` failed (kong/api/routes/kong.lua:89-92@2.8.5).
    #[serde(default, deserialize_with = "null_as_default")]
    pub node_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tagline: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub plugins: PluginsInfo,
    pub configuration: NodeConfiguration,
}

impl NodeInfo {
    /// The node's edition and how kongup knows it. `edition` says it from 3.6.0 (Kong
    /// writes `enterprise` when its `_VERSION` contains `enterprise`, kong/api/routes/
    /// kong.lua:133@3.9.1); before, an Enterprise node is known by its version: four parts
    /// (`3.4.3.12`, Enterprise's numbering; the open-source `meta.version` has three,
    /// kong/meta.lua@3.4.2) or an `-enterprise-edition` suffix (`2.4.1.0-enterprise-
    /// edition`). Enterprise's `GET /` is not in the open-source code: unverified beyond
    /// these forms. `/workspaces` is no sign: the open-source gateway answers 200 with
    /// `default` up to 3.6.x (tests/fixtures/kong/{2.8.5,3.4.2}/workspaces_oss.http) and
    /// let workspaces be created there until 3.7.0 (commit 6470d9bf92).
    pub fn edition(&self) -> (Edition, String) {
        match self.edition.as_deref() {
            Some("enterprise") => (Edition::Enterprise, "GET / says edition: enterprise".into()),
            Some("community") => (Edition::Community, "GET / says edition: community".into()),
            other => {
                let said = other.map_or_else(
                    || "GET / has no edition (Kong reports it from 3.6.0)".to_string(),
                    |e| format!("GET / says edition: {e:?}, which kongup does not know"),
                );
                if self.version.contains("enterprise") {
                    (
                        Edition::Enterprise,
                        format!("{said}; version {} names Enterprise", self.version),
                    )
                } else if reported_version(&self.version).is_ok_and(|v| v.is_enterprise_form()) {
                    (
                        Edition::Enterprise,
                        format!(
                            "{said}; version {} has four parts, Kong Enterprise's numbering",
                            self.version
                        ),
                    )
                } else {
                    (
                        Edition::Community,
                        format!(
                            "{said}; version {} has three parts, the open-source numbering",
                            self.version
                        ),
                    )
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginsInfo {
    /// `{name: true}` on 2.8.5, `{name: {version, priority}}` from 3.0.0.
    #[serde(default, deserialize_with = "null_as_default")]
    pub available_on_server: BTreeMap<String, serde_json::Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub enabled_in_cluster: Vec<String>,
}

/// The part of `configuration` kongup reads; Kong sends many more keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeConfiguration {
    /// `traditional`, `control_plane` or `data_plane`.
    pub role: String,
    /// `postgres`, `cassandra` or `off`.
    pub database: String,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `GET /status` on the Admin API or the Status API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub server: ServerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<serde_json::Value>,
    /// Absent on DB-less nodes and data planes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStatus>,
    /// Present on DB-less nodes and data planes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub connections_active: u64,
    pub connections_reading: u64,
    pub connections_writing: u64,
    pub connections_waiting: u64,
    pub connections_accepted: u64,
    pub connections_handled: u64,
    pub total_requests: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub reachable: bool,
}

/// `GET /clustering/data-planes` on a control plane: `next` is null and `offset` absent
/// on the last page (kong/api/endpoints.lua:318-334@3.4.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPlaneList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<DataPlane>,
    #[serde(default)]
    pub next: Option<String>,
}

/// One row of `/clustering/data-planes`. Fields by version (kong/db/schema/entities/
/// clustering_data_planes.lua@tag): `updated_at` 3.3+, `labels` 3.5+, `cert_details` 3.6+,
/// `rpc_capabilities` 3.7+ (not read); `id`, `ip`, `hostname` and `sync_status` are
/// required by the schema, every other column can be `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPlane {
    pub id: String,
    pub ip: String,
    /// The node id itself when the row was written by RPC sync (3.9's
    /// `cluster_incremental_sync`, 3.10's `cluster_rpc_sync`; kong/clustering/services/
    /// sync/rpc.lua:86-94@3.9.1): see [`DataPlane::hostname_is_id`].
    pub hostname: String,
    /// Empty when the row has none (`null`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sync_status: SyncStatus,
    /// Empty when the data plane has not reported one (`null`, 2.8.5/3.4.2); an opaque
    /// 32-character string otherwise (md5 hex, or a sync version with RPC sync).
    #[serde(default, deserialize_with = "null_as_default")]
    pub config_hash: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub last_seen: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// `{}` by default, `null` from data planes older than 3.3 and rows RPC sync wrote
    /// (both read as no labels).
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_details: Option<CertDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl DataPlane {
    /// Whether the control plane stored the node id as the hostname (RPC sync does, and
    /// the data plane's real hostname is then nowhere in the Admin API).
    pub fn hostname_is_id(&self) -> bool {
        self.hostname == self.id
    }

    /// How kongup names the data plane to the operator: its hostname, or, when that is
    /// only its node id, its IP with the id's first block.
    pub fn label(&self) -> String {
        if self.hostname_is_id() {
            let short = self.id.split('-').next().unwrap_or(&self.id);
            format!("{} (node {short})", self.ip)
        } else {
            self.hostname.clone()
        }
    }

    /// Whether the control plane lists the empty configuration's hash for it.
    pub fn has_empty_config(&self) -> bool {
        self.config_hash == EMPTY_CONFIG_HASH
    }
}

/// `cert_details` (3.6+): the expiry of the data plane's client certificate; the field is
/// not required by the schema, so `null` or absent reads as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertDetails {
    #[serde(default, deserialize_with = "null_as_default")]
    pub expiry_timestamp: i64,
}

/// A data plane's `sync_status`. A value this kongup does not know (a newer Kong's) is
/// kept as Kong sent it, so one new status does not make the whole list unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    Unknown,
    Normal,
    KongVersionIncompatible,
    PluginSetIncompatible,
    PluginVersionIncompatible,
    FilterSetIncompatible,
    Other(StatusName),
}

/// The schema's default (`sync_status` default `unknown`).
impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus::Unknown
    }
}

impl SyncStatus {
    const KNOWN: [SyncStatus; 6] = [
        SyncStatus::Unknown,
        SyncStatus::Normal,
        SyncStatus::KongVersionIncompatible,
        SyncStatus::PluginSetIncompatible,
        SyncStatus::PluginVersionIncompatible,
        SyncStatus::FilterSetIncompatible,
    ];

    /// As Kong writes it, e.g. `kong_version_incompatible`.
    pub fn as_str(&self) -> &str {
        match self {
            SyncStatus::Unknown => "unknown",
            SyncStatus::Normal => "normal",
            SyncStatus::KongVersionIncompatible => "kong_version_incompatible",
            SyncStatus::PluginSetIncompatible => "plugin_set_incompatible",
            SyncStatus::PluginVersionIncompatible => "plugin_version_incompatible",
            SyncStatus::FilterSetIncompatible => "filter_set_incompatible",
            SyncStatus::Other(name) => name.as_str(),
        }
    }

    /// Reads Kong's value; one kongup does not know becomes [`SyncStatus::Other`].
    pub fn parse(text: &str) -> SyncStatus {
        SyncStatus::KNOWN
            .into_iter()
            .find(|known| known.as_str() == text)
            .unwrap_or_else(|| SyncStatus::Other(StatusName::new(text)))
    }
}

impl Serialize for SyncStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SyncStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(SyncStatus::parse(&text))
    }
}

/// A status name kongup does not know, held inline so [`SyncStatus`] stays `Copy`. Kong's
/// names are short; one longer than [`StatusName::MAX_BYTES`] is cut at a character
/// boundary.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusName {
    bytes: [u8; StatusName::MAX_BYTES],
    len: u8,
}

impl StatusName {
    pub const MAX_BYTES: usize = 64;

    pub fn new(text: &str) -> StatusName {
        let mut end = text.len().min(Self::MAX_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; Self::MAX_BYTES];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        StatusName {
            bytes,
            len: end as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        // Built from a `&str` cut at a character boundary.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for StatusName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Kong's error body: `{"message": "..."}` (400 from `/clustering/data-planes` on a
/// non-CP, 503 from `/status/ready`, 401 from RBAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

/// The message Kong returns with 400 from `/clustering/data-planes` on a node that is not
/// a control plane.
pub const NOT_A_CONTROL_PLANE: &str = "this endpoint is only available when Kong is configured to run as Control Plane for the cluster";

/// A page of entities from the Admin API (`/services`, `/routes`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(
        default = "Vec::new",
        deserialize_with = "null_as_vec",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub data: Vec<T>,
    /// Path of the next page, e.g. `/services?offset=…`; null on the last page.
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_kong_reports_lose_their_suffix() {
        assert_eq!(
            reported_version("2.4.1.0-enterprise-edition").unwrap(),
            KongVersion::enterprise(2, 4, 1, 0)
        );
        assert_eq!(
            reported_version("3.4.3").unwrap(),
            reported_version("3.4.3.0").unwrap()
        );
        assert_eq!(
            reported_version("3.9.1+build.7").unwrap(),
            KongVersion::new(3, 9, 1)
        );
        let error = reported_version("next-gen").unwrap_err();
        assert_eq!(error.input, "next-gen");
    }

    #[test]
    fn every_optional_field_takes_null_absence_and_company() {
        // Nulls where Kong may write them, fields of later versions, keys kongup never heard of.
        let nulls = r#"{"data":[{"id":"d1","ip":"10.0.0.5","hostname":"d1","version":null,
            "sync_status":null,"config_hash":null,"last_seen":null,"updated_at":null,
            "labels":null,"cert_details":{"expiry_timestamp":null},"ttl":null,
            "rpc_capabilities":["kong.sync.v2"],"a_field_of_kong_4":{"x":[1]}}],
            "next":null,"offset":null}"#;
        let list: DataPlaneList = serde_json::from_str(nulls).unwrap();
        let dp = &list.data[0];
        assert_eq!(
            (dp.version.as_str(), dp.sync_status, dp.config_hash.as_str()),
            ("", SyncStatus::Unknown, "")
        );
        assert!(dp.labels.is_empty() && dp.updated_at.is_none() && dp.ttl.is_none());
        assert!(dp.hostname_is_id());
        assert_eq!(dp.label(), "10.0.0.5 (node d1)");
        let absent = r#"{"data":[{"id":"d1","ip":"10.0.0.5","hostname":"dp-1"}]}"#;
        let list: DataPlaneList = serde_json::from_str(absent).unwrap();
        assert_eq!(list.data[0].label(), "dp-1");
        assert_eq!(list.next, None);
        let empty: DataPlaneList = serde_json::from_str(r#"{"data":null}"#).unwrap();
        assert!(empty.data.is_empty());
        // What identifies a row is required: without it the row is not a data plane.
        assert!(
            serde_json::from_str::<DataPlane>(r#"{"id":"d1","ip":null,"hostname":"h"}"#).is_err()
        );

        let info: NodeInfo = serde_json::from_str(
            r#"{"version":"3.4.2","hostname":null,"node_id":null,"tagline":null,
                "plugins":{"available_on_server":null,"enabled_in_cluster":null},
                "configuration":{"role":"control_plane","database":"postgres","trusted_ips":{}},
                "pids":{"master":1},"lua_version":"LuaJIT 2.1.0-beta3"}"#,
        )
        .unwrap();
        assert_eq!((info.node_id.as_str(), info.edition.as_deref()), ("", None));
        let info: NodeInfo = serde_json::from_str(
            r#"{"version":"3.4.2","configuration":{"role":"traditional","database":"off"},"plugins":null}"#,
        )
        .unwrap();
        assert!(info.plugins.enabled_in_cluster.is_empty());

        let page: Page<serde_json::Value> =
            serde_json::from_str(r#"{"data":[{"id":"k1","tags":null}],"next":null}"#).unwrap();
        assert_eq!((page.data.len(), page.offset), (1, None));
        let page: Page<serde_json::Value> = serde_json::from_str(r#"{"data":null}"#).unwrap();
        assert!(page.data.is_empty() && page.next.is_none());
    }

    #[test]
    fn the_edition_comes_from_edition_else_from_the_version_form() {
        let info = |version: &str, edition: Option<&str>| {
            let mut body = serde_json::json!({"version": version,
                "configuration": {"role": "traditional", "database": "postgres"}});
            if let Some(edition) = edition {
                body["edition"] = edition.into();
            }
            serde_json::from_value::<NodeInfo>(body).unwrap().edition()
        };
        assert_eq!(info("3.9.1", Some("community")).0, Edition::Community);
        assert_eq!(info("3.10.0.1", Some("enterprise")).0, Edition::Enterprise);
        let (edition, why) = info("3.4.3.12", None);
        assert_eq!(edition, Edition::Enterprise);
        assert!(
            why.contains("four parts") && why.contains("from 3.6.0"),
            "{why}"
        );
        assert_eq!(info("2.8.4.1", None).0, Edition::Enterprise);
        assert_eq!(
            info("2.4.1-enterprise-edition", None).0,
            Edition::Enterprise
        );
        let (edition, why) = info("3.4.2", None);
        assert_eq!(edition, Edition::Community);
        assert!(why.contains("three parts"), "{why}");
        assert_eq!(info("2.8.5", None).0, Edition::Community);
    }

    #[test]
    fn a_sync_status_kongup_does_not_know_is_kept_as_sent() {
        let body = r#"{"data":[{"id":"d1","ip":"10.0.0.5","hostname":"dp1","version":"3.12.0",
            "sync_status":"wasm_filter_set_incompatible","config_hash":"x","last_seen":1},
            {"id":"d2","ip":"10.0.0.6","hostname":"dp2","version":"3.9.1",
            "sync_status":"normal","config_hash":"x","last_seen":1}],"next":null}"#;
        let list: DataPlaneList = serde_json::from_str(body).unwrap();
        let status = list.data[0].sync_status;
        assert!(matches!(status, SyncStatus::Other(_)), "{status:?}");
        assert_eq!(status.as_str(), "wasm_filter_set_incompatible");
        assert_eq!(list.data[1].sync_status, SyncStatus::Normal);
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            "wasm_filter_set_incompatible"
        );
        for known in SyncStatus::KNOWN {
            let json = serde_json::to_string(&known).unwrap();
            assert_eq!(serde_json::from_str::<SyncStatus>(&json).unwrap(), known);
        }
        let long = "é".repeat(40);
        assert_eq!(StatusName::new(&long).as_str(), "é".repeat(32));
    }
}

//! Kong's Admin API and Status API response bodies, field for field as Kong sends them
//! (`KONG.md`). The real client deserializes them and the simulated lab serializes them,
//! so a test can prove the two agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::version::{KongVersion, VersionError};

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
    /// `community` or `enterprise`; absent on old versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    pub hostname: String,
    pub node_id: String,
    #[serde(default)]
    pub tagline: String,
    #[serde(default)]
    pub plugins: PluginsInfo,
    pub configuration: NodeConfiguration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginsInfo {
    #[serde(default)]
    pub available_on_server: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
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

/// `GET /clustering/data-planes` on a control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPlaneList {
    pub data: Vec<DataPlane>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPlane {
    pub id: String,
    pub ip: String,
    pub hostname: String,
    pub version: String,
    pub sync_status: SyncStatus,
    pub config_hash: String,
    pub last_seen: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_details: Option<CertDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertDetails {
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
    pub data: Vec<T>,
    /// Path of the next page, e.g. `/services?offset=…`; null on the last page.
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

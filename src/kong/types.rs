//! Kong's Admin API and Status API response bodies, field for field as Kong sends them
//! (`KONG.md`). The real client deserializes them and the simulated lab serializes them,
//! so a test can prove the two agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Unknown,
    Normal,
    KongVersionIncompatible,
    PluginSetIncompatible,
    PluginVersionIncompatible,
    FilterSetIncompatible,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Unknown => "unknown",
            SyncStatus::Normal => "normal",
            SyncStatus::KongVersionIncompatible => "kong_version_incompatible",
            SyncStatus::PluginSetIncompatible => "plugin_set_incompatible",
            SyncStatus::PluginVersionIncompatible => "plugin_version_incompatible",
            SyncStatus::FilterSetIncompatible => "filter_set_incompatible",
        }
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

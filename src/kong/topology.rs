//! What kongup knows of the clusters right now, as shown in the topology pane.

use chrono::{DateTime, Utc};

use crate::kong::types::SyncStatus;
use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopologySnapshot {
    pub at: Option<DateTime<Utc>>,
    pub nodes: Vec<NodeView>,
    pub databases: Vec<DatabaseView>,
    /// The load balancer, e.g. "haproxy /run/haproxy.sock backend kong".
    pub load_balancer: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub cluster: ClusterSide,
    pub role: Role,
    /// The version the node reports; `None` when it did not answer.
    pub version: Option<String>,
    pub health: NodeHealth,
    /// Data planes: the control plane they report to and their sync status.
    pub control_plane: Option<String>,
    pub sync_status: Option<SyncStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHealth {
    /// `/status/ready` answered 200 (or `/status` did, before 3.3).
    Ready,
    /// 503 from `/status/ready`, with Kong's reason (e.g. `draining`).
    NotReady(String),
    /// No answer; the error says why.
    Unreachable(String),
    /// Not yet deployed, or decommissioned.
    Absent,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseView {
    pub cluster: ClusterSide,
    /// As `KongDatabase::describe` names it (`user@host:port/name`), never the password.
    pub address: String,
    /// e.g. "up to date", "3 pending", "needs bootstrap".
    pub schema: Option<String>,
}

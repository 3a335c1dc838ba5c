//! What kongup knows of the clusters right now, as shown in the topology pane.

use chrono::{DateTime, Utc};

use crate::kong::types::{EMPTY_CONFIG_HASH, SyncStatus, says_no_configuration};
use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopologySnapshot {
    pub at: Option<DateTime<Utc>>,
    pub nodes: Vec<NodeView>,
    pub databases: Vec<DatabaseView>,
    /// The load balancer, e.g. "haproxy /run/haproxy.sock backend kong".
    pub load_balancer: Option<String>,
    /// What the watcher asked for and could not read: shown as warnings, never dropped.
    pub unreadable: Vec<Unreadable>,
}

/// A control plane's data plane listing, or one row of it, that the watcher could not read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub cluster: ClusterSide,
    /// The control plane's name in the plan.
    pub control_plane: String,
    /// The row, as far as it could be seen; `None`: the whole listing.
    pub row: Option<String>,
    pub error: String,
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
    /// The configuration hash the node holds: its control plane's `config_hash` for a data
    /// plane, else its own `/status` `configuration_hash` (DB-less and data plane nodes).
    pub config_hash: Option<String>,
}

impl NodeView {
    /// Why the node proxies with no configuration, if it does (Kong issue 12861: a control
    /// plane pushing an empty configuration during an upgrade): its `/status/ready` says
    /// `no configuration available (…)`, or its hash is the empty configuration's.
    pub fn empty_config(&self) -> Option<String> {
        if let NodeHealth::NotReady(reason) = &self.health
            && says_no_configuration(reason)
        {
            return Some(format!("its /status/ready says {reason}"));
        }
        (self.config_hash.as_deref() == Some(EMPTY_CONFIG_HASH))
            .then(|| format!("config_hash {EMPTY_CONFIG_HASH}, the empty configuration's"))
    }
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

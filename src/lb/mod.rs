//! Traffic-split drivers: how kongup moves requests between X and Y.
//!
//! # Adding a traffic driver
//!
//! In this order:
//! 1. The plan model: a variant of `plan::model::TrafficDriverSpec` with its settings
//!    struct, and its words in `TrafficDriverSpec::kind` and `TrafficDriverSpec::describe`
//!    (the topology pane's name for the load balancer).
//! 2. The loader's `traffic.driver` section (`plan::load`, `driver`): the `type` value,
//!    its allowed keys, and each key read with its `FILE:LINE:COL` errors.
//! 3. `lb/<driver>.rs`: a type implementing [`TrafficDriver`] (`describe`, `set_split`,
//!    `read_split`, and `call_timeout` / `read_back_source` when the defaults do not
//!    hold; whatever it starts must die with the call, see `TrafficDriver`), and
//!    `server_of` / `set_server` / `read_server` if it can act on one server (then the
//!    loader's `check_drain` may accept `rolling.drain` on an X before Kong 3.9 with it).
//! 4. [`driver_for`]: build it from its spec (and its executor, if it runs commands).
//! 5. Preflight (`actions::kong` preflight probes, `check_traffic`): what it can and cannot
//!    read back before the first stage.
//! 6. `docs/plan.md`, "Traffic drivers": its keys and what it changes.
//! 7. Tests: `tests/lb_<driver>.rs` (set, read back, the deadline kills what it started),
//!    the loader's (`plan/load/tests.rs`), and `tests/lb_drivers.rs`.

pub mod command;
pub mod haproxy;
pub mod kubernetes;
pub mod manual;
pub mod nginx;
pub mod weights;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::exec::Executor;
use crate::exec::local::LocalExecutor;
use crate::plan::model::TrafficDriverSpec;

/// A traffic split in percent; `x + y == 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub x: u8,
    pub y: u8,
}

impl Split {
    pub const ALL_X: Split = Split { x: 100, y: 0 };

    /// The split that sends `y_percent` (clamped to 100) to Y.
    pub fn to_y(y_percent: u8) -> Split {
        let y = y_percent.min(100);
        Split { x: 100 - y, y }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X {}% | Y {}%", self.x, self.y)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("{driver}: {message}")]
    Driver {
        driver: &'static str,
        message: String,
    },
}

/// What a driver's `read_split` reads, so kongup words what it knows honestly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBackSource {
    /// The load balancer's live state (HAProxy's runtime API, the Kubernetes API server, a
    /// command driver's `get`).
    LoadBalancer,
    /// A file kongup wrote and told the load balancer to load (nginx has no API to ask).
    WrittenFile(std::path::PathBuf),
    /// Nothing: the operator sets the split by hand and confirms it (manual).
    Operator,
    /// Nothing: the driver sets the split but cannot read it (a command driver without
    /// `get`).
    Nothing,
}

/// One server's administrative state in the balancer: whether it gets new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerAdmin {
    /// In rotation.
    Ready,
    /// Out of rotation; the requests it has open finish.
    Drain,
    /// No traffic at all.
    Maint,
}

impl ServerAdmin {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerAdmin::Ready => "ready",
            ServerAdmin::Drain => "drain",
            ServerAdmin::Maint => "maint",
        }
    }
}

impl fmt::Display for ServerAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the balancer says of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerReading {
    pub admin: ServerAdmin,
    /// The sessions it has open to the server now.
    pub sessions: u64,
}

/// How long a driver call may take when the driver does not say.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets the split and reads back what the load balancer actually applied.
///
/// A driver's programs run inside [`crate::exec::process::kill_on_drop`]: a call the
/// engine gives up on (its deadline, the operator's abort) leaves nothing running that
/// could set a split after the rollback's.
#[async_trait::async_trait]
pub trait TrafficDriver: Send + Sync {
    /// Shown to the operator: what will be changed and where.
    fn describe(&self) -> String;
    /// The longest one `set_split` or one `read_split` may take: the driver's own
    /// timeouts added up. The engine's deadline for a call is never shorter, so the
    /// operator reads the driver's own error rather than a bare "did not answer".
    fn call_timeout(&self) -> Duration {
        DEFAULT_CALL_TIMEOUT
    }
    /// What `read_split` reads: the load balancer itself unless the driver says otherwise.
    fn read_back_source(&self) -> ReadBackSource {
        ReadBackSource::LoadBalancer
    }
    async fn set_split(&self, split: Split) -> Result<(), LbError>;
    /// The split the load balancer reports; `None` when the driver cannot read it back
    /// (manual, or a command driver without a `get`).
    async fn read_split(&self) -> Result<Option<Split>, LbError>;
    /// The balancer's server that is `node`, when this driver can act on one server and the
    /// plan says which server the node is; `None` otherwise (only HAProxy can today).
    fn server_of(&self, _node: &str) -> Option<String> {
        None
    }
    /// Sets the administrative state of a server [`server_of`](Self::server_of) named.
    async fn set_server(&self, server: &str, _state: ServerAdmin) -> Result<(), LbError> {
        Err(LbError::Driver {
            driver: "traffic",
            message: format!("this driver cannot set one server's state (server {server})"),
        })
    }
    /// Reads a server [`server_of`](Self::server_of) named.
    async fn read_server(&self, server: &str) -> Result<ServerReading, LbError> {
        Err(LbError::Driver {
            driver: "traffic",
            message: format!("this driver cannot read one server (server {server})"),
        })
    }
}

/// The driver a plan's `traffic.driver` describes. `executors` are the plan's executors
/// by name (for the kubernetes and command drivers; local when the plan names none).
pub fn driver_for(
    spec: &TrafficDriverSpec,
    executors: &BTreeMap<String, Arc<dyn Executor>>,
) -> Result<Arc<dyn TrafficDriver>, LbError> {
    let executor = |name: &Option<String>, driver: &'static str| {
        match name {
        None => Ok(Arc::new(LocalExecutor::new()) as Arc<dyn Executor>),
        Some(name) => executors.get(name).cloned().ok_or_else(|| LbError::Driver {
            driver,
            message: format!(
                "the traffic driver runs through executor {name:?}, which the plan's executors do not define"
            ),
        }),
    }
    };
    Ok(match spec {
        TrafficDriverSpec::Haproxy(haproxy) => {
            Arc::new(haproxy::HaproxyTrafficDriver::new(haproxy.clone())?)
        }
        TrafficDriverSpec::Nginx(nginx) => Arc::new(nginx::NginxTrafficDriver::new(nginx.clone())?),
        TrafficDriverSpec::Kubernetes(kubernetes) => {
            Arc::new(kubernetes::KubernetesTrafficDriver::new(
                kubernetes.clone(),
                executor(&kubernetes.executor, "kubernetes")?,
            ))
        }
        TrafficDriverSpec::Command(command) => Arc::new(command::CommandTrafficDriver::new(
            command.clone(),
            executor(&command.executor, "command")?,
        )?),
        TrafficDriverSpec::Manual => Arc::new(manual::ManualTrafficDriver),
    })
}

//! One simulated Kong node: what it is (name, cluster, role, version), what it is doing
//! (absent, stopped, running, draining, crashed), what it has counted, and its three
//! loopback listeners (Admin API, Status API, proxy).
//!
//! A node's ports are chosen once, when the lab starts, and kept for the lab's life so the
//! URLs in a plan stay true. While the node does not serve, each port is held by a bound
//! socket that does not listen: connections are refused, as by a stopped Kong, and no
//! other program can take the port.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;

use super::metrics::{MetricsFlags, NginxStats, ProxyStats};

/// What a lab node is; fixed for the lab's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub cluster: ClusterSide,
    pub role: Role,
    /// `database = off`: DB-less traditional nodes and data planes.
    pub dbless: bool,
    pub version: KongVersion,
    /// The lab database it uses (by name), if it uses one.
    pub database: Option<String>,
    /// Data planes: the control plane they report to.
    pub control_plane: Option<String>,
}

impl NodeSpec {
    /// Control planes do not proxy (`proxy_listen = off`).
    pub fn proxies(&self) -> bool {
        self.role != Role::ControlPlane
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Not installed (Y before its deployment, X after decommissioning).
    Absent,
    /// Installed, not running.
    Stopped,
    Running,
    /// Stopped answering without a `kong stop` (fault injection).
    Crashed,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Absent => "absent",
            Lifecycle::Stopped => "stopped",
            Lifecycle::Running => "running",
            Lifecycle::Crashed => "crashed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub lifecycle: Lifecycle,
    /// `kong drain` ran: `/status/ready` answers 503 `draining`.
    pub draining: bool,
    /// Until then `/status/ready` answers 503 with the reason Kong gives while starting.
    pub ready_at: Option<Instant>,
    pub flags: MetricsFlags,
    /// DB-less nodes and data planes: the hash of the configuration loaded.
    pub config_hash: Option<String>,
    /// Data planes: the control plane they report to now.
    pub reports_to: Option<String>,
    /// Data planes: connected to their control plane.
    pub cp_connected: bool,
}

/// nginx's connection counters, kept by the listeners and a middleware.
#[derive(Debug, Default)]
pub struct ConnCounters {
    accepted: AtomicU64,
    active: AtomicU64,
    writing: AtomicU64,
    total_requests: AtomicU64,
}

impl ConnCounters {
    pub fn snapshot(&self) -> NginxStats {
        let accepted = self.accepted.load(Ordering::Relaxed);
        let active = self.active.load(Ordering::Relaxed);
        let writing = self.writing.load(Ordering::Relaxed).min(active);
        NginxStats {
            connections_accepted: accepted,
            connections_handled: accepted,
            connections_active: active,
            connections_reading: 0,
            connections_writing: writing,
            connections_waiting: active - writing,
            total_requests: self.total_requests.load(Ordering::Relaxed),
        }
    }

    /// Counts one request for its whole life (`writing` while it is answered).
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
        self.writing.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }
}

pub struct RequestGuard(Arc<ConnCounters>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which of a node's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Admin,
    Status,
    Proxy,
}

enum Slot {
    /// Bound, not listening: the port is ours and connections are refused.
    Reserved(TcpSocket),
    Serving(JoinHandle<()>),
    /// Between the two, while a server task is being stopped.
    Empty,
}

struct Listener {
    kind: ListenerKind,
    port: u16,
    slot: Slot,
}

pub struct SimNode {
    pub spec: NodeSpec,
    pub node_id: String,
    /// Worker pids as `/status` and `/metrics` show them.
    pub worker_pids: Vec<u32>,
    pub admin_port: u16,
    pub status_port: u16,
    pub proxy_port: Option<u16>,
    state: Mutex<NodeState>,
    stats: Mutex<ProxyStats>,
    pub counters: Arc<ConnCounters>,
    listeners: Mutex<Vec<Listener>>,
}

fn reserve(port: u16) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    // Lets the port be bound again at once after a stop, while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    Ok(socket)
}

/// A deterministic node id, so a rebuilt lab has the same ids.
fn node_id_for(seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

impl SimNode {
    /// Reserves the node's ports (ephemeral, on 127.0.0.1). The node starts `lifecycle`.
    pub fn new(spec: NodeSpec, index: usize, seed: &str, initial: NodeState) -> io::Result<Self> {
        let mut listeners = Vec::new();
        let mut ports = Vec::new();
        let mut kinds = vec![ListenerKind::Admin, ListenerKind::Status];
        if spec.proxies() {
            kinds.push(ListenerKind::Proxy);
        }
        for kind in kinds {
            let socket = reserve(0)?;
            let port = socket.local_addr()?.port();
            ports.push(port);
            listeners.push(Listener {
                kind,
                port,
                slot: Slot::Reserved(socket),
            });
        }
        let base_pid = 1000 + 100 * u32::try_from(index).unwrap_or(0);
        Ok(SimNode {
            node_id: node_id_for(&format!("{seed}/{}", spec.name)),
            worker_pids: vec![base_pid + 1, base_pid + 2],
            admin_port: ports[0],
            status_port: ports[1],
            proxy_port: ports.get(2).copied(),
            spec,
            state: Mutex::new(initial),
            stats: Mutex::new(ProxyStats::default()),
            counters: Arc::new(ConnCounters::default()),
            listeners: Mutex::new(listeners),
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn state(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> MutexGuard<'_, ProxyStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn status_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.status_port)
    }

    pub fn proxy_url(&self) -> Option<String> {
        self.proxy_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// Answers proxy traffic a health-checking load balancer would send it: running,
    /// started, not draining, configured.
    pub fn is_ready(&self) -> bool {
        let state = self.state();
        state.lifecycle == Lifecycle::Running
            && !state.draining
            && state.ready_at.is_none_or(|t| Instant::now() >= t)
            && (!self.spec.dbless || state.config_hash.is_some())
    }

    /// Starts serving on the reserved ports; `routers` gives each listener its router.
    pub fn open(&self, routers: impl Fn(ListenerKind) -> Router) -> io::Result<()> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for listener in listeners.iter_mut() {
            if matches!(listener.slot, Slot::Serving(_)) {
                continue;
            }
            let socket = match std::mem::replace(&mut listener.slot, Slot::Empty) {
                Slot::Reserved(socket) => socket,
                _ => reserve(listener.port)?,
            };
            let tcp = socket.listen(1024)?;
            let counted = CountingListener {
                inner: tcp,
                counters: self.counters.clone(),
            };
            let router = routers(listener.kind);
            listener.slot = Slot::Serving(tokio::spawn(async move {
                // Serving ends only when the task is aborted.
                let _ = axum::serve(counted, router).await;
            }));
        }
        Ok(())
    }

    /// Stops serving: the listeners close (new connections are refused) and open
    /// connections are shut down; the ports stay reserved.
    pub async fn close(&self) -> io::Result<()> {
        let handles: Vec<(usize, JoinHandle<()>)> = {
            let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            listeners
                .iter_mut()
                .enumerate()
                .filter_map(|(i, l)| match std::mem::replace(&mut l.slot, Slot::Empty) {
                    Slot::Serving(handle) => Some((i, handle)),
                    other => {
                        l.slot = other;
                        None
                    }
                })
                .collect()
        };
        for (_, handle) in &handles {
            handle.abort();
        }
        for (_, handle) in handles {
            // The task is cancelled; its listener is dropped once this returns.
            let _ = handle.await;
        }
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for listener in listeners.iter_mut() {
            if matches!(listener.slot, Slot::Empty) {
                listener.slot = Slot::Reserved(reserve(listener.port)?);
            }
        }
        Ok(())
    }

    /// Stops serving at once, without waiting; used when the lab is dropped.
    pub fn abort_serving(&self) {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for listener in listeners.iter() {
            if let Slot::Serving(handle) = &listener.slot {
                handle.abort();
            }
        }
    }
}

/// A TCP listener that keeps nginx's connection counters.
struct CountingListener {
    inner: TcpListener,
    counters: Arc<ConnCounters>,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.counters.active.fetch_add(1, Ordering::Relaxed);
        (
            CountedStream {
                inner: stream,
                counters: self.counters.clone(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, counted as active until it closes.
struct CountedStream {
    inner: TcpStream,
    counters: Arc<ConnCounters>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

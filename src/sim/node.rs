//! One simulated Kong node: what it is (name, cluster, role, version), what it is doing
//! (absent, stopped, running, draining, crashed), what it has counted, and its loopback
//! listeners: the Admin API (control planes and traditional nodes only: Kong renders the
//! admin server block for those roles alone, kong/templates/nginx_kong.lua:377@2.8.5,
//! :416@master), the Status API, and the proxy (not on control planes).
//!
//! Data planes listen on loopback addresses of their own (127.0.0.2, 127.0.0.3, …) where the
//! system allows it, so that their control plane records a distinct `ip` for each, as it
//! would for separate hosts; elsewhere they share 127.0.0.1.
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
use std::time::{Duration, Instant};

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

    /// Data planes have no Admin API (kong/templates/nginx_kong.lua renders it only for
    /// `control_plane` and `traditional`).
    pub fn has_admin_api(&self) -> bool {
        self.role != Role::DataPlane
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

/// How far a starting node has built its routers and plugins iterators, worker by worker
/// (the counters `/status/ready` reads, kong/status/ready.lua@3.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    pub routers: u32,
    pub plugins_iterators: u32,
}

/// A start in progress: Kong builds each worker's router, then each worker's plugins
/// iterator, over `warmup` (simulated; the lab spreads the builds evenly over it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startup {
    pub began: Instant,
    pub warmup: Duration,
}

impl Startup {
    /// The builds done by now, of `workers` workers.
    pub fn build(&self, workers: u32, now: Instant) -> Build {
        let steps = 2 * workers;
        let elapsed = now.saturating_duration_since(self.began);
        let done = if self.warmup.is_zero() || elapsed >= self.warmup {
            steps
        } else {
            (f64::from(steps) * elapsed.as_secs_f64() / self.warmup.as_secs_f64()) as u32
        };
        Build {
            routers: done.min(workers),
            plugins_iterators: done.saturating_sub(workers),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub lifecycle: Lifecycle,
    /// `kong drain` ran: `/status/ready` answers 503 `draining`.
    pub draining: bool,
    /// The last start, while its builds may still run.
    pub startup: Option<Startup>,
    /// Builds held where a test put them, whatever the time (`Lab::hold_startup`).
    pub held_build: Option<Build>,
    pub flags: MetricsFlags,
    /// DB-less nodes and data planes: the hash of the configuration loaded; `None` before
    /// any (a data plane that never reached its control plane has only the empty one).
    pub config_hash: Option<String>,
    /// Data planes: the control plane they report to now.
    pub reports_to: Option<String>,
    /// Data planes: connected to their control plane.
    pub cp_connected: bool,
    /// Data planes: synced by RPC (`cluster_rpc_sync`), not by the v1 websocket.
    pub rpc_synced: bool,
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
    /// Neither: `open` could not bind or listen (`close` reserves the port again).
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
    /// The loopback address it listens on (its `ip` in its control plane's records).
    pub ip: Ipv4Addr,
    /// Worker pids as `/status` and `/metrics` show them.
    pub worker_pids: Vec<u32>,
    /// `None` on data planes, which have no Admin API.
    pub admin_port: Option<u16>,
    pub status_port: u16,
    pub proxy_port: Option<u16>,
    state: Mutex<NodeState>,
    stats: Mutex<ProxyStats>,
    pub counters: Arc<ConnCounters>,
    listeners: Mutex<Vec<Listener>>,
}

fn reserve(ip: Ipv4Addr, port: u16) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    // Lets a stopping node bind its next reservation while its listener still holds the
    // port (`SimNode::close`). A port is never picked for another bind(0) this way: Linux
    // shares a port through SO_REUSEPORT only with an explicit bind.
    socket.set_reuseport(true)?;
    // SO_REUSEADDR lets the port be bound and listen again at once after a stop, while old
    // connections linger. On a port-0 bind it is set only after the bind: set before,
    // Linux searches the lower half of the ephemeral range alone first (`attempt_half`,
    // inet_csk_find_open_port in net/ipv4/inet_connection_sock.c), and once its even ports
    // are taken (~7 000 sockets on one address: a few 1 000-node labs on one machine) each
    // bind scans it all, milliseconds a bind. The flag counts for the listen and for
    // later binds beside this socket, which read it from the socket, not from its bind.
    if port != 0 {
        socket.set_reuseaddr(true)?;
    }
    socket.bind(SocketAddr::from((ip, port)))?;
    if port == 0 {
        socket.set_reuseaddr(true)?;
    }
    Ok(socket)
}

/// `wanted` if this system can listen there (Linux routes all of 127.0.0.0/8 to the
/// loopback interface; others may have only 127.0.0.1), else 127.0.0.1.
pub fn loopback_address(wanted: Ipv4Addr) -> Ipv4Addr {
    if reserve(wanted, 0).is_ok() {
        wanted
    } else {
        Ipv4Addr::LOCALHOST
    }
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
    /// Reserves the node's ports (ephemeral, on `ip`). The node starts `initial`.
    pub fn new(
        spec: NodeSpec,
        index: usize,
        seed: &str,
        ip: Ipv4Addr,
        initial: NodeState,
    ) -> io::Result<Self> {
        let mut listeners: Vec<Listener> = Vec::new();
        let mut kinds = vec![ListenerKind::Status];
        if spec.has_admin_api() {
            kinds.push(ListenerKind::Admin);
        }
        if spec.proxies() {
            kinds.push(ListenerKind::Proxy);
        }
        for kind in kinds {
            let socket = reserve(ip, 0)?;
            let port = socket.local_addr()?.port();
            listeners.push(Listener {
                kind,
                port,
                slot: Slot::Reserved(socket),
            });
        }
        let port_of = |kind| {
            listeners
                .iter()
                .find(|l: &&Listener| l.kind == kind)
                .map(|l| l.port)
        };
        let base_pid = 1000 + 100 * u32::try_from(index).unwrap_or(0);
        Ok(SimNode {
            node_id: node_id_for(&format!("{seed}/{}", spec.name)),
            ip,
            worker_pids: vec![base_pid + 1, base_pid + 2],
            admin_port: port_of(ListenerKind::Admin),
            status_port: port_of(ListenerKind::Status).unwrap_or_default(),
            proxy_port: port_of(ListenerKind::Proxy),
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

    /// `None` on data planes, which have no Admin API.
    pub fn admin_url(&self) -> Option<String> {
        self.admin_port.map(|p| format!("http://{}:{p}", self.ip))
    }

    pub fn status_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.status_port)
    }

    pub fn proxy_url(&self) -> Option<String> {
        self.proxy_port.map(|p| format!("http://{}:{p}", self.ip))
    }

    pub fn workers(&self) -> u32 {
        u32::try_from(self.worker_pids.len()).unwrap_or(u32::MAX)
    }

    /// The builds done now: all of them once the start is over.
    pub fn build(&self, state: &NodeState) -> Build {
        let workers = self.workers();
        state.held_build.unwrap_or_else(|| match state.startup {
            Some(startup) => startup.build(workers, Instant::now()),
            None => Build {
                routers: workers,
                plugins_iterators: workers,
            },
        })
    }

    /// Answers proxy traffic a health-checking load balancer would send it: running,
    /// started, not draining, configured.
    pub fn is_ready(&self) -> bool {
        let state = self.state();
        let workers = self.workers();
        let build = self.build(&state);
        state.lifecycle == Lifecycle::Running
            && !state.draining
            && build.routers >= workers
            && build.plugins_iterators >= workers
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
                _ => reserve(self.ip, listener.port)?,
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
    ///
    /// Each port's next reservation is bound before its listener closes: a port left free
    /// even for a moment can become the source port of any outgoing connection on the
    /// machine (busy with other labs and their traffic), and then cannot be bound again.
    pub async fn close(&self) -> io::Result<()> {
        let mut failed = None;
        let handles: Vec<JoinHandle<()>> = {
            let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            let mut handles = Vec::new();
            for listener in listeners.iter_mut() {
                if matches!(listener.slot, Slot::Reserved(_)) {
                    continue;
                }
                match reserve(self.ip, listener.port) {
                    Ok(next) => {
                        if let Slot::Serving(handle) =
                            std::mem::replace(&mut listener.slot, Slot::Reserved(next))
                        {
                            handles.push(handle);
                        }
                    }
                    // This listener keeps serving; the others still close.
                    Err(e) => failed = Some(e),
                }
            }
            handles
        };
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            // The task is cancelled; its listener is dropped once this returns.
            let _ = handle.await;
        }
        failed.map_or(Ok(()), Err)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ports_next_reservation_binds_while_its_listener_still_listens() {
        let first = reserve(Ipv4Addr::LOCALHOST, 0).unwrap();
        let port = first.local_addr().unwrap().port();
        let _listening = first.listen(16).unwrap();
        reserve(Ipv4Addr::LOCALHOST, port)
            .expect("the next reservation binds beside the listener, so the port is never free");
    }

    /// A port-0 reservation searches the whole ephemeral range. Bound with SO_REUSEADDR
    /// already set, Linux searches only the lower half (`attempt_half` in
    /// inet_csk_find_open_port, net/ipv4/inet_connection_sock.c), and once that half's
    /// even ports are taken (about 7 000 sockets on one address, several labs on one
    /// machine) every bind scans it to the end: milliseconds each, seconds per lab.
    #[cfg(target_os = "linux")]
    #[test]
    fn port_zero_reservations_spread_over_the_whole_ephemeral_range() {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let bounds: Vec<u16> = range
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let middle = bounds[0] + (bounds[1] - bounds[0]) / 2;
        let ip = loopback_address(Ipv4Addr::new(127, 0, 0, 254));
        let reserved: Vec<TcpSocket> = (0..64).map(|_| reserve(ip, 0).unwrap()).collect();
        let upper = reserved
            .iter()
            .filter(|s| s.local_addr().unwrap().port() > middle)
            .count();
        // Uniform over the range, all 64 in the lower half has odds of 2^-64.
        assert!(
            upper > 0,
            "all 64 ports of {ip} in the lower half of {bounds:?}: bound with SO_REUSEADDR set"
        );
    }

    /// SO_REUSEADDR, set after the bind, still lets a port whose connections linger in
    /// TIME_WAIT listen again after a stop and a start.
    #[tokio::test]
    async fn a_stopped_port_listens_again_while_its_closed_connections_linger() {
        let first = reserve(Ipv4Addr::LOCALHOST, 0).unwrap();
        let port = first.local_addr().unwrap().port();
        let listener = first.listen(16).unwrap();
        let client = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        // The server's side closes first, so its end waits in TIME_WAIT on `port`.
        drop(accepted);
        drop(client);
        let next = reserve(Ipv4Addr::LOCALHOST, port).unwrap();
        drop(listener);
        next.listen(16)
            .expect("a reserved port listens again while its old connections linger");
    }
}

//! A fleet of `/metrics` endpoints for the scrape tests and the scrape-cycle bench: one
//! loopback listener per node (so each node is its own host:port, as in a real fleet, and
//! the client's pool holds one connection per node), each serving a Kong exposition from
//! the corpus, optionally after a delay (a slow node) or never (a silent one). The fleet
//! counts the connections its nodes accepted and those still open, for the tests of what
//! the client keeps between rounds.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub use axum::body::Bytes;

use super::corpus;

/// How one node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// At once.
    Now,
    /// After this long.
    After(Duration),
    /// Never (the connection stays open, no answer).
    Never,
}

/// The nodes' listeners; they stop when it is dropped.
pub struct ScrapeFleet {
    pub addrs: Vec<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    connections: Arc<Connections>,
}

/// Connections over the whole fleet.
#[derive(Debug, Default)]
struct Connections {
    accepted: AtomicUsize,
    open: AtomicUsize,
}

/// A node's listener, counting into the fleet's [`Connections`].
struct CountingListener {
    listener: TcpListener,
    connections: Arc<Connections>,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedStream, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        self.connections.accepted.fetch_add(1, Ordering::SeqCst);
        self.connections.open.fetch_add(1, Ordering::SeqCst);
        let connections = Arc::clone(&self.connections);
        (
            CountedStream {
                stream,
                connections,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An accepted connection, counted open until the server drops it.
struct CountedStream {
    stream: TcpStream,
    connections: Arc<Connections>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl ScrapeFleet {
    /// `nodes` endpoints serving `body`; `answer(i)` says how node `i` answers.
    pub async fn start(nodes: usize, body: Bytes, answer: impl Fn(usize) -> Answer) -> ScrapeFleet {
        let mut addrs = Vec::with_capacity(nodes);
        let mut tasks = Vec::with_capacity(nodes);
        let connections = Arc::new(Connections::default());
        for i in 0..nodes {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            addrs.push(listener.local_addr().expect("a bound address"));
            let body = body.clone();
            let how = answer(i);
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let body = body.clone();
                    async move {
                        match how {
                            Answer::Now => {}
                            Answer::After(delay) => tokio::time::sleep(delay).await,
                            Answer::Never => std::future::pending::<()>().await,
                        }
                        body
                    }
                }),
            );
            let listener = CountingListener {
                listener,
                connections: Arc::clone(&connections),
            };
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        ScrapeFleet {
            addrs,
            tasks,
            connections,
        }
    }

    /// Connections the nodes accepted so far.
    pub fn accepted(&self) -> usize {
        self.connections.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now (accepted, not yet closed by either side).
    pub fn open(&self) -> usize {
        self.connections.open.load(Ordering::SeqCst)
    }

    /// Node `i`'s `/metrics` URL.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}/metrics", self.addrs[i])
    }
}

impl Drop for ScrapeFleet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The corpus's Kong 3.10.0 data plane exposition (tests/fixtures/kong/3.10.0/metrics_dp.txt,
/// about 21 KB): a node with the status-code and latency flags on and three routes.
pub fn data_plane_exposition() -> Bytes {
    Bytes::from(corpus::file("3.10.0", "metrics_dp.txt").text())
}

/// The same node with its routes copied until the exposition is at least `bytes` long: a
/// gateway with many routes (1.15 MB is the measured case). Each family keeps its
/// `# HELP`/`# TYPE` lines once and each series' lines together, as Kong writes them; the
/// copies' routes are `r<k>-<route>`.
pub fn many_routes_exposition(bytes: usize) -> Bytes {
    let text = corpus::file("3.10.0", "metrics_dp.txt").text();
    let per_route: usize = text
        .lines()
        .filter(|l| l.contains("route=\""))
        .map(|l| l.len() + 1)
        .sum();
    let copies = bytes.div_ceil(per_route.max(1)).max(1);
    let mut out = String::with_capacity(text.len() + copies * per_route + copies * 64);
    // A family block: its comment lines, then its samples.
    let mut samples: Vec<&str> = Vec::new();
    let flush = |out: &mut String, samples: &mut Vec<&str>| {
        for k in 0..copies {
            for line in samples.iter() {
                if line.contains("route=\"") {
                    out.push_str(&line.replace("route=\"", &format!("route=\"r{k}-")));
                    out.push('\n');
                } else if k == 0 {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        samples.clear();
    };
    for line in text.lines() {
        if line.starts_with('#') {
            if !samples.is_empty() {
                flush(&mut out, &mut samples);
            }
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut out, &mut samples);
    Bytes::from(out)
}

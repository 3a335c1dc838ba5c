//! A fleet of `/metrics` endpoints for the scrape tests and the scrape-cycle bench: one
//! loopback listener per node (so each node is its own host:port, as in a real fleet, and
//! the client's pool holds one connection per node), each serving a Kong exposition from
//! the corpus, optionally after a delay (a slow node) or never (a silent one).

use std::net::SocketAddr;
use std::time::Duration;

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
}

impl ScrapeFleet {
    /// `nodes` endpoints serving `body`; `answer(i)` says how node `i` answers.
    pub async fn start(nodes: usize, body: Bytes, answer: impl Fn(usize) -> Answer) -> ScrapeFleet {
        let mut addrs = Vec::with_capacity(nodes);
        let mut tasks = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
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
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        ScrapeFleet { addrs, tasks }
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

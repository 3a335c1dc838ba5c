//! Shared by the load-balancer tests and the time-to-safety bench: the lab's Kong proxies
//! as upstreams (X and Y run different versions, told apart by the `Via` header Kong
//! sends), real HAProxy and nginx processes on free loopback ports (killed when dropped,
//! also on panic), and request counting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec::process::find_program;
use crate::lb::Split;
use crate::plan::steps::ClusterSide;
use crate::plan::version::KongVersion;
use crate::sim::{Lab, LabOptions, Scenario};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A loopback port nothing listens on, never the same twice in this process: the
/// kernel may hand a just-released port out again, and HAProxy and nginx bind with
/// SO_REUSEPORT, so two of them given one port would share it silently.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// One lab node the balancer sends to.
pub struct LabProxy {
    pub name: String,
    pub proxy: SocketAddr,
    /// The Status API, which serves `/metrics`.
    pub status: String,
    pub version: KongVersion,
}

/// The lab's proxies as the balancer's upstreams: the first `x` and `y` nodes of each
/// cluster of a DB-less rolling lab (X 3.9.1, Y 3.10.0, three nodes each), Y deployed and
/// running from the start, no generated traffic, so only the tests' requests reach them.
pub struct LabUpstreams {
    /// Keeps the nodes serving; they stop when it is dropped.
    pub lab: Lab,
    pub x: Vec<LabProxy>,
    pub y: Vec<LabProxy>,
}

impl LabUpstreams {
    pub async fn start(x: usize, y: usize) -> LabUpstreams {
        let lab = Lab::start(
            Scenario::DblessRolling,
            LabOptions {
                y_deployed: true,
                ..LabOptions::default()
            },
        )
        .await
        .expect("the lab starts");
        let endpoints = lab.endpoints();
        let side = |side: ClusterSide, count: usize| -> Vec<LabProxy> {
            let proxies: Vec<LabProxy> = endpoints
                .cluster(side)
                .filter_map(|n| {
                    let url = n.proxy.as_deref()?;
                    let address = url.strip_prefix("http://").unwrap_or(url);
                    Some(LabProxy {
                        name: n.name.clone(),
                        proxy: address.parse().unwrap_or_else(|e| {
                            panic!("{}'s proxy URL {url} is not host:port: {e}", n.name)
                        }),
                        status: n.status.clone(),
                        version: n.version,
                    })
                })
                .take(count)
                .collect();
            assert_eq!(
                proxies.len(),
                count,
                "the lab has {count} proxies in {}",
                side.as_str()
            );
            proxies
        };
        let (x, y) = (side(ClusterSide::X, x), side(ClusterSide::Y, y));
        assert_ne!(
            x[0].version, y[0].version,
            "X and Y must run different versions to be told apart by Via"
        );
        LabUpstreams { lab, x, y }
    }

    pub fn x_proxies(&self) -> Vec<SocketAddr> {
        self.x.iter().map(|n| n.proxy).collect()
    }

    pub fn y_proxies(&self) -> Vec<SocketAddr> {
        self.y.iter().map(|n| n.proxy).collect()
    }

    /// The cluster whose Kong sent this `Via` header: `kong/3.9.1` (before 3.8) or
    /// `1.1 kong/3.10.0` (from 3.8), Enterprise builds with `-enterprise-edition`.
    pub fn cluster_of(&self, via: &str) -> ClusterSide {
        let product = via.split_whitespace().last().unwrap_or("");
        let version = product
            .strip_prefix("kong/")
            .unwrap_or_else(|| panic!("Via {via:?} does not name kong"));
        let version = version
            .strip_suffix("-enterprise-edition")
            .unwrap_or(version);
        if version == self.x[0].version.to_string() {
            ClusterSide::X
        } else if version == self.y[0].version.to_string() {
            ClusterSide::Y
        } else {
            panic!(
                "Via {via:?} names neither X ({}) nor Y ({})",
                self.x[0].version, self.y[0].version
            )
        }
    }

    /// Kong's own count of proxied requests, `kong_http_requests_total` summed over the
    /// `/metrics` of X's and of Y's nodes behind the balancer.
    pub async fn requests_counted_by_kong(&self) -> (u64, u64) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut totals = [0u64; 2];
        for (total, nodes) in totals.iter_mut().zip([&self.x, &self.y]) {
            for node in nodes {
                let url = format!("{}/metrics", node.status);
                let text = client
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .unwrap_or_else(|e| panic!("{url}: {e}"))
                    .text()
                    .await
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
                let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.into())))
                    .unwrap_or_else(|e| panic!("{url} is not Prometheus text: {e}"));
                for sample in scrape
                    .samples
                    .iter()
                    .filter(|s| s.metric == "kong_http_requests_total")
                {
                    let prometheus_parse::Value::Counter(value) = sample.value else {
                        panic!("{url}: kong_http_requests_total is not a counter");
                    };
                    *total += value as u64;
                }
            }
        }
        (totals[0], totals[1])
    }
}

/// A child process in its own process group, stopped with its whole group when
/// dropped: SIGTERM (nginx and HAProxy then stop their workers), SIGKILL if it lingers.
pub struct Running {
    pub child: Child,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Running {
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Running {
        let out = std::fs::File::create(&log).unwrap();
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} could not start: {e}"));
        Running { child, name, log }
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}): {}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// Waits until `port` accepts connections.
    pub fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.assert_alive();
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {port}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the unix socket at `path` accepts connections.
    pub fn wait_for_unix_socket(&mut self, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.assert_alive();
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {}",
                self.name,
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn require(program: &str, package: &str) -> PathBuf {
    let path = find_program(program);
    assert!(
        path.is_absolute(),
        "{program} not found in PATH, /usr/sbin or /sbin: install it (`apt-get install -y {package}`)"
    );
    path
}

pub struct Haproxy {
    pub process: Running,
    pub front: SocketAddr,
    /// The runtime API as a unix socket…
    pub socket: PathBuf,
    /// …and the same API over TCP.
    pub admin_tcp: String,
    pub x_names: Vec<String>,
    pub y_names: Vec<String>,
}

impl Haproxy {
    /// HAProxy in front of `x` and `y`, all traffic to X at start.
    pub fn start(dir: &Path, x: &[SocketAddr], y: &[SocketAddr]) -> Haproxy {
        let binary = require("haproxy", "haproxy");
        let front_port = free_port();
        let admin_port = free_port();
        let socket = dir.join("admin.sock");
        let x_names: Vec<String> = (1..=x.len()).map(|i| format!("x{i}")).collect();
        let y_names: Vec<String> = (1..=y.len()).map(|i| format!("y{i}")).collect();
        let mut servers = String::new();
        for (name, address) in x_names.iter().zip(x) {
            servers.push_str(&format!("    server {name} {address} weight 100\n"));
        }
        for (name, address) in y_names.iter().zip(y) {
            servers.push_str(&format!("    server {name} {address} weight 0\n"));
        }
        let config = dir.join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n    stats socket {} level admin\n    stats socket ipv4@127.0.0.1:{admin_port} level admin\n\
                 defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
                 frontend kong_front\n    bind 127.0.0.1:{front_port}\n    default_backend kong\n\
                 backend kong\n    balance roundrobin\n{servers}",
                socket.display()
            ),
        )
        .unwrap();
        let mut process = Running::spawn(
            "haproxy",
            Command::new(binary).arg("-db").arg("-f").arg(&config),
            dir.join("haproxy.log"),
        );
        process.wait_for_port(front_port);
        process.wait_for_port(admin_port);
        process.wait_for_unix_socket(&socket);
        Haproxy {
            process,
            front: SocketAddr::from(([127, 0, 0, 1], front_port)),
            socket,
            admin_tcp: format!("127.0.0.1:{admin_port}"),
            x_names,
            y_names,
        }
    }
}

pub struct Nginx {
    pub process: Running,
    pub front: SocketAddr,
    pub binary: PathBuf,
    pub config: PathBuf,
    pub upstream_file: PathBuf,
    pub pid_file: PathBuf,
}

impl Nginx {
    /// nginx with its upstream in `upstream_file`, which must already hold an
    /// `upstream kong { … }` block.
    pub fn start(dir: &Path, upstream_file: &Path) -> Nginx {
        let binary = require("nginx", "nginx");
        let front_port = free_port();
        let temp = dir.join("temp");
        std::fs::create_dir_all(&temp).unwrap();
        let pid_file = dir.join("nginx.pid");
        let config = dir.join("nginx.conf");
        let d = dir.display();
        std::fs::write(
            &config,
            format!(
                "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n\
                 pid {pid};\nerror_log {d}/error.log notice;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n    access_log off;\n\
                 client_body_temp_path {t}/body;\n    proxy_temp_path {t}/proxy;\n\
                 fastcgi_temp_path {t}/fastcgi;\n    uwsgi_temp_path {t}/uwsgi;\n    scgi_temp_path {t}/scgi;\n\
                 include {upstream};\n\
                 server {{\n        listen 127.0.0.1:{front_port};\n\
                 location / {{ proxy_pass http://kong; }}\n    }}\n}}\n",
                pid = pid_file.display(),
                t = temp.display(),
                upstream = upstream_file.display(),
            ),
        )
        .unwrap();
        let mut process = Running::spawn(
            "nginx",
            Command::new(&binary)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&config),
            dir.join("nginx.log"),
        );
        process.wait_for_port(front_port);
        Nginx {
            process,
            front: SocketAddr::from(([127, 0, 0, 1], front_port)),
            binary,
            config,
            upstream_file: upstream_file.to_path_buf(),
            pid_file,
        }
    }

    /// The worker processes of this nginx's master.
    pub fn workers(&self) -> Vec<i32> {
        let master = self.process.child.id() as i32;
        let mut workers = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid …"; a zombie runs no code.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let mut fields = rest.split(' ');
            let state = fields.next().unwrap_or("");
            let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(master) && state != "Z" {
                workers.push(pid);
            }
        }
        workers
    }

    /// Waits until every worker in `old` is gone and a new one runs: nginx then serves
    /// every new connection with the configuration it reloaded.
    pub async fn wait_for_reload(&self, old: &[i32]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.workers();
            if !now.is_empty() && now.iter().all(|w| !old.contains(w)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx workers {old:?} were not replaced after the reload (now {now:?})"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A path the lab's proxies route (`/orders`, a public route); any other path gets Kong's
/// 404 "no Route matched".
const ROUTED_PATH: &str = "/orders";

/// One HTTP/1.0 request (a new connection each time, so the balancer picks a server per
/// request); returns the `Via` header of the answer, which names the Kong that served it.
pub async fn ask(front: SocketAddr) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(front).await?;
        stream
            .write_all(
                format!("GET {ROUTED_PATH} HTTP/1.0\r\nHost: kong\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the balancer answers within 10 s")
        .expect("the request goes through");
    let (head, _body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "the balancer answered {response:?}"
    );
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("via")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Via header in {head:?}"))
}

/// Requests in flight at once: the lab's upstream answers in 5–20 ms, and both balancers
/// pick a server per request whatever else is in flight.
const IN_FLIGHT: usize = 8;

/// Requests through the balancer, and how many each cluster answered.
pub async fn count(front: SocketAddr, requests: usize, upstreams: &LabUpstreams) -> (usize, usize) {
    let vias: Vec<String> = futures::stream::iter(0..requests)
        .map(|_| ask(front))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let y = vias
        .iter()
        .filter(|via| upstreams.cluster_of(via) == ClusterSide::Y)
        .count();
    (requests - y, y)
}

/// Requests per stage.
pub const REQUESTS: usize = 500;

/// How far the count of Y answers may stray from the plan: 4 standard deviations of a
/// binomial(REQUESTS, p). A balancer that picked servers at random with the right
/// weights would stray further only with probability < 1e-4 per stage (two-sided normal
/// tail at 4σ is 6e-5); HAProxy's and nginx's weighted round-robin are deterministic and
/// stray far less. At 0 % and 100 % the allowance is 0: every request must go to one side.
pub fn allowed_deviation(split: Split) -> f64 {
    let p = f64::from(split.y) / 100.0;
    4.0 * (REQUESTS as f64 * p * (1.0 - p)).sqrt()
}

/// Sends REQUESTS requests and checks the share Y got against `split`; returns how many
/// X and Y answered.
pub async fn assert_observed(
    front: SocketAddr,
    split: Split,
    upstreams: &LabUpstreams,
) -> (usize, usize) {
    let (x, y) = count(front, REQUESTS, upstreams).await;
    let expected = REQUESTS as f64 * f64::from(split.y) / 100.0;
    let allowed = allowed_deviation(split);
    println!(
        "planned {split}: Y answered {y} of {REQUESTS} (X {x}); expected {expected} ± {allowed:.1}, deviation {:.1}",
        y as f64 - expected
    );
    assert!(
        (y as f64 - expected).abs() <= allowed,
        "planned {split}: Y answered {y} of {REQUESTS} (X {x}); expected {expected} ± {allowed:.1}"
    );
    (x, y)
}

/// After a stage's requests: Kong's own counters moved by exactly what the responses
/// showed, per cluster (`before` is `requests_counted_by_kong` before the stage).
pub async fn assert_counted_by_kong(
    upstreams: &LabUpstreams,
    before: (u64, u64),
    observed: (usize, usize),
) {
    let after = upstreams.requests_counted_by_kong().await;
    let counted = (after.0 - before.0, after.1 - before.1);
    println!(
        "kong_http_requests_total moved X +{} Y +{} (responses: X {} Y {})",
        counted.0, counted.1, observed.0, observed.1
    );
    assert_eq!(
        counted,
        (observed.0 as u64, observed.1 as u64),
        "kong_http_requests_total on X's and Y's nodes (left) against the answers' Via (right)"
    );
}

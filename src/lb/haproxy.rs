//! HAProxy through its runtime API (the stats socket, `level admin`), over a unix socket
//! or TCP.
//!
//! Setting a split: the backend's servers are checked first (HAProxy carries on after a
//! failed command in a batch, so a typo must be caught before anything changes), then one
//! batch of `set server BACKEND/SERVER weight N`, the side gaining weight first so the
//! backend never has every weight at 0 in between. Weights per server are chosen so each
//! side's total share matches the split (several servers on a side share it evenly).
//!
//! Reading it back: `show servers state BACKEND`, and the split is computed from the
//! weights of the servers that are up and not in maintenance or drain: what HAProxy
//! actually balances over. Servers of the backend that the plan names as neither X nor Y
//! are left out of the computation.
//!
//! One server (a node drained before Kong 3.9, a Y node taken out of its wave): `set server
//! BACKEND/SERVER state ready|drain|maint` ("drain only removes the server from load
//! balancing", "maint disables any traffic"), read back from `show servers state`'s
//! `srv_admin_state` flags and `show stat BACKEND 4 -1`'s `scur` (field 4, current
//! sessions) — HAProxy 2.6 management guide (doc/management.txt, "set server",
//! "show servers state", "show stat"; docs.haproxy.org/2.6/management.html).

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::weights::{server_weights, split_from_weights};
use super::{LbError, ServerAdmin, ServerReading, Split, TrafficDriver};
use crate::plan::model::HaproxyDriver;

/// HAProxy accepts weights 0–256.
pub const MAX_WEIGHT: u32 = 256;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// For one command's whole exchange, connect excluded.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime-API state of one server, from `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub name: String,
    /// 0 stopped, 1 starting, 2 running, 3 stopping.
    pub op_state: u8,
    /// Maintenance and drain flags; 0 when none is set.
    pub admin_state: u32,
    /// The weight set by configuration or `set server … weight`.
    pub user_weight: u32,
}

/// `srv_admin_state`'s maintenance flags: forced (0x01), inherited (0x02), from the
/// configuration (0x04), resolution (0x20), hostname (0x40); and its drain flags: forced
/// (0x08), inherited (0x10) (management.txt, "show servers state", HAProxy 2.6).
const ADMIN_MAINT: u32 = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const ADMIN_DRAIN: u32 = 0x08 | 0x10;

impl ServerState {
    /// Whether HAProxy sends new requests to it (given a nonzero weight).
    pub fn takes_traffic(&self) -> bool {
        matches!(self.op_state, 1 | 2) && self.admin_state == 0
    }

    /// Its administrative state, maintenance first (it outranks a drain).
    pub fn admin(&self) -> ServerAdmin {
        if self.admin_state & ADMIN_MAINT != 0 {
            ServerAdmin::Maint
        } else if self.admin_state & ADMIN_DRAIN != 0 {
            ServerAdmin::Drain
        } else {
            ServerAdmin::Ready
        }
    }
}

/// `scur` (current sessions) of `server` in `show stat`'s CSV; the `# ` line names the
/// columns.
pub fn parse_stat_sessions(text: &str, server: &str) -> Result<u64, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .ok_or_else(|| format!("no statistics in the answer: {:?}", text.trim()))?;
    let column = |name: &str| {
        header
            .trim()
            .split(',')
            .position(|c| c == name)
            .ok_or_else(|| format!("no column {name} in the statistics header"))
    };
    let (name_at, sessions_at) = (column("svname")?, column("scur")?);
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.get(name_at) == Some(&server) {
            let value = fields.get(sessions_at).copied().unwrap_or_default();
            return value
                .parse()
                .map_err(|_| format!("scur of {server} is {value:?}, not a number"));
        }
    }
    Err(format!("no server {server} in the statistics"))
}

/// Parses `show servers state` (format 1): the `#` line names the columns.
pub fn parse_servers_state(text: &str) -> Result<Vec<ServerState>, String> {
    let mut columns: Option<HashMap<&str, usize>> = None;
    let mut servers = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(header) = line.strip_prefix('#') {
            columns = Some(
                header
                    .split_whitespace()
                    .enumerate()
                    .map(|(i, name)| (name, i))
                    .collect(),
            );
            continue;
        }
        let Some(columns) = &columns else {
            // The format version line ("1") precedes the header.
            continue;
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let field = |name: &str| -> Result<&str, String> {
            let index = columns
                .get(name)
                .ok_or_else(|| format!("no column {name} in the servers state header"))?;
            fields
                .get(*index)
                .copied()
                .ok_or_else(|| format!("line {line:?} has no {name} column"))
        };
        let number = |name: &str| -> Result<u32, String> {
            let value = field(name)?;
            value
                .parse()
                .map_err(|_| format!("{name} is {value:?}, not a number, in {line:?}"))
        };
        servers.push(ServerState {
            name: field("srv_name")?.to_string(),
            op_state: number("srv_op_state")?.min(255) as u8,
            admin_state: number("srv_admin_state")?,
            user_weight: number("srv_uweight")?,
        });
    }
    if columns.is_none() {
        return Err(format!("no servers state in the answer: {:?}", text.trim()));
    }
    Ok(servers)
}

#[derive(Debug, Clone)]
pub struct HaproxyTrafficDriver {
    spec: HaproxyDriver,
}

impl HaproxyTrafficDriver {
    pub fn new(spec: HaproxyDriver) -> Result<Self, LbError> {
        if spec.x_servers.is_empty() || spec.y_servers.is_empty() {
            return Err(error(format!(
                "backend {} needs at least one X server and one Y server in the plan",
                spec.backend
            )));
        }
        Ok(HaproxyTrafficDriver { spec })
    }

    /// The runtime-API commands that apply `split`, in the order they are sent.
    pub fn weight_commands(&self, split: Split) -> Vec<String> {
        let (wx, wy) = server_weights(
            split,
            self.spec.x_servers.len(),
            self.spec.y_servers.len(),
            MAX_WEIGHT,
        );
        let backend = &self.spec.backend;
        let side = |servers: &[String], weights: &[u32]| {
            servers
                .iter()
                .zip(weights)
                .map(|(s, w)| format!("set server {backend}/{s} weight {w}"))
                .collect::<Vec<_>>()
        };
        let (x, y) = (
            side(&self.spec.x_servers, &wx),
            side(&self.spec.y_servers, &wy),
        );
        // The side that ends up with more traffic first, so the backend never passes
        // through a state where every weight is 0.
        if split.x >= split.y {
            [x, y].concat()
        } else {
            [y, x].concat()
        }
    }

    async fn servers_state(&self) -> Result<Vec<ServerState>, LbError> {
        let answer = self
            .command(&format!("show servers state {}", self.spec.backend))
            .await?;
        if answer.trim() == "Can't find backend." {
            return Err(error(format!(
                "HAProxy at {} has no backend {:?}: check traffic.haproxy.backend in the plan",
                self.spec.socket, self.spec.backend
            )));
        }
        parse_servers_state(&answer).map_err(|e| {
            error(format!(
                "could not read the servers of backend {} from {}: {e}",
                self.spec.backend, self.spec.socket
            ))
        })
    }

    /// The plan's servers that the backend does not have.
    fn missing_servers(&self, servers: &[ServerState]) -> Vec<String> {
        self.spec
            .x_servers
            .iter()
            .chain(&self.spec.y_servers)
            .filter(|name| !servers.iter().any(|s| &s.name == *name))
            .cloned()
            .collect()
    }

    /// Sends one command line (commands may be joined with `;`) and returns the answer.
    async fn command(&self, line: &str) -> Result<String, LbError> {
        let socket = &self.spec.socket;
        if is_tcp_address(socket) {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(socket))
                .await
                .map_err(|_| error(connect_timeout_message(socket)))?
                .map_err(|e| error(connect_failed_message(socket, &e)))?;
            exchange(stream, line, socket).await
        } else {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket))
                .await
                .map_err(|_| error(connect_timeout_message(socket)))?
                .map_err(|e| error(connect_failed_message(socket, &e)))?;
            exchange(stream, line, socket).await
        }
    }
}

/// `host:port` (with a numeric port) is TCP; anything else is a unix socket path.
fn is_tcp_address(socket: &str) -> bool {
    !socket.contains('/')
        && socket
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

fn connect_timeout_message(socket: &str) -> String {
    format!(
        "no answer from the runtime API at {socket} within {}s: is HAProxy running?",
        CONNECT_TIMEOUT.as_secs()
    )
}

fn connect_failed_message(socket: &str, e: &std::io::Error) -> String {
    format!(
        "could not connect to the runtime API at {socket}: {e} (check `stats socket … level admin` in haproxy.cfg and that kongup may open it)"
    )
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    line: &str,
    socket: &str,
) -> Result<String, LbError> {
    let talk = async {
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        let mut answer = String::new();
        // Non-interactive mode: HAProxy answers, then closes the connection.
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, talk)
        .await
        .map_err(|_| {
            error(format!(
                "the runtime API at {socket} did not answer {line:?} within {}s",
                EXCHANGE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| {
            error(format!(
                "talking to the runtime API at {socket} failed: {e}"
            ))
        })
}

fn error(message: String) -> LbError {
    LbError::Driver {
        driver: "haproxy",
        message,
    }
}

#[async_trait::async_trait]
impl TrafficDriver for HaproxyTrafficDriver {
    fn describe(&self) -> String {
        format!(
            "HAProxy runtime API at {}: weights of backend {} (X: {}; Y: {})",
            self.spec.socket,
            self.spec.backend,
            self.spec.x_servers.join(", "),
            self.spec.y_servers.join(", ")
        )
    }

    fn server_of(&self, node: &str) -> Option<String> {
        self.spec.server_of(node).map(String::from)
    }

    async fn set_server(&self, server: &str, state: ServerAdmin) -> Result<(), LbError> {
        let backend = &self.spec.backend;
        let answer = self
            .command(&format!("set server {backend}/{server} state {state}"))
            .await?;
        let answer = answer.trim();
        if !answer.is_empty() {
            return Err(error(format!(
                "HAProxy refused to set server {backend}/{server} to {state}: {answer} (check \
                 traffic.driver.node_servers against haproxy.cfg)"
            )));
        }
        Ok(())
    }

    async fn read_server(&self, server: &str) -> Result<ServerReading, LbError> {
        let backend = &self.spec.backend;
        let admin = self
            .servers_state()
            .await?
            .into_iter()
            .find(|s| s.name == server)
            .ok_or_else(|| error(format!("backend {backend} has no server named {server}")))?
            .admin();
        let stat = self.command(&format!("show stat {backend} 4 -1")).await?;
        let sessions = parse_stat_sessions(&stat, server).map_err(|e| {
            error(format!(
                "could not read the sessions of {backend}/{server} from {}: {e}",
                self.spec.socket
            ))
        })?;
        Ok(ServerReading { admin, sessions })
    }

    fn call_timeout(&self) -> Duration {
        // A set is two exchanges (the servers' state, then the weights); a read is one.
        2 * (CONNECT_TIMEOUT + EXCHANGE_TIMEOUT)
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        let servers = self.servers_state().await?;
        let missing = self.missing_servers(&servers);
        if !missing.is_empty() {
            return Err(error(format!(
                "backend {} has no server named {}: nothing was changed; check the plan's server names against haproxy.cfg",
                self.spec.backend,
                missing.join(", ")
            )));
        }
        let commands = self.weight_commands(split);
        let answer = self.command(&commands.join("; ")).await?;
        let complaints: Vec<&str> = answer
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !complaints.is_empty() {
            return Err(error(format!(
                "HAProxy refused part of setting {split} on backend {}: {} (read the split back to see what applied)",
                self.spec.backend,
                complaints.join(" | ")
            )));
        }
        Ok(())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        let servers = self.servers_state().await?;
        let missing = self.missing_servers(&servers);
        if !missing.is_empty() {
            return Err(error(format!(
                "backend {} has no server named {}",
                self.spec.backend,
                missing.join(", ")
            )));
        }
        let total = |names: &[String]| -> u64 {
            servers
                .iter()
                .filter(|s| names.contains(&s.name) && s.takes_traffic())
                .map(|s| u64::from(s.user_weight))
                .sum()
        };
        let (x, y) = (total(&self.spec.x_servers), total(&self.spec.y_servers));
        split_from_weights(x, y).map(Some).ok_or_else(|| {
            error(format!(
                "no X or Y server of backend {} is up with a nonzero weight: requests to it are failing",
                self.spec.backend
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change\n3 kong 1 x1 127.0.0.1 2 0 30 100 1\n3 kong 2 y1 127.0.0.1 0 1 70 0 1\n\n";

    fn driver() -> HaproxyTrafficDriver {
        HaproxyTrafficDriver::new(HaproxyDriver {
            socket: "/run/haproxy/admin.sock".into(),
            backend: "kong".into(),
            x_servers: vec!["x1".into(), "x2".into()],
            y_servers: vec!["y1".into()],
            node_servers: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn servers_state_columns_are_read_by_name() {
        let servers = parse_servers_state(STATE).unwrap();
        assert_eq!(
            servers,
            vec![
                ServerState {
                    name: "x1".into(),
                    op_state: 2,
                    admin_state: 0,
                    user_weight: 30
                },
                ServerState {
                    name: "y1".into(),
                    op_state: 0,
                    admin_state: 1,
                    user_weight: 70
                },
            ]
        );
        assert!(servers[0].takes_traffic());
        assert!(!servers[1].takes_traffic());
    }

    #[test]
    fn admin_flags_read_maintenance_before_drain() {
        let state = |admin_state| ServerState {
            name: "x1".into(),
            op_state: 2,
            admin_state,
            user_weight: 1,
        };
        assert_eq!(state(0).admin(), ServerAdmin::Ready);
        assert_eq!(state(0x08).admin(), ServerAdmin::Drain);
        assert_eq!(state(0x10).admin(), ServerAdmin::Drain);
        assert_eq!(state(0x01).admin(), ServerAdmin::Maint);
        assert_eq!(state(0x09).admin(), ServerAdmin::Maint);
    }

    #[test]
    fn sessions_are_read_by_column_name() {
        let stat = "# pxname,svname,qcur,qmax,scur,smax\nkong,x1,0,0,2,3\nkong,y1,0,0,0,1\n\n";
        assert_eq!(parse_stat_sessions(stat, "x1"), Ok(2));
        assert_eq!(parse_stat_sessions(stat, "y1"), Ok(0));
        assert!(parse_stat_sessions(stat, "x9").is_err());
        assert!(parse_stat_sessions("Unknown command.\n", "x1").is_err());
    }

    #[test]
    fn an_answer_without_a_header_is_an_error() {
        assert!(parse_servers_state("Unknown command.\n").is_err());
    }

    #[test]
    fn commands_raise_the_gaining_side_first() {
        let d = driver();
        assert_eq!(
            d.weight_commands(Split::ALL_X),
            [
                "set server kong/x1 weight 100",
                "set server kong/x2 weight 100",
                "set server kong/y1 weight 0"
            ]
        );
        assert_eq!(
            d.weight_commands(Split::to_y(100)),
            [
                "set server kong/y1 weight 100",
                "set server kong/x1 weight 0",
                "set server kong/x2 weight 0"
            ]
        );
        // Two X servers share 50 %: each weighs half of Y's one server.
        assert_eq!(
            d.weight_commands(Split::to_y(50)),
            [
                "set server kong/x1 weight 1",
                "set server kong/x2 weight 1",
                "set server kong/y1 weight 2"
            ]
        );
    }

    #[test]
    fn tcp_and_unix_addresses_are_told_apart() {
        assert!(is_tcp_address("127.0.0.1:9999"));
        assert!(is_tcp_address("lb1.example:9999"));
        assert!(!is_tcp_address("/run/haproxy/admin.sock"));
        assert!(!is_tcp_address("admin.sock"));
    }
}

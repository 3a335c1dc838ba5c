//! `kongup init`'s work: probe the Admin APIs an operator names, find out version, edition,
//! role and database, list the data planes of control planes, pick a strategy with the
//! chooser, and write a plan whose unknowns are marked `# TODO`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::kong::client::{AdminClient, AdminError, UnreadableDataPlane};
use crate::kong::types::{DataPlane, NodeInfo, SyncStatus, reported_version};
use crate::plan::chooser::{StrategyPick, choose};
use crate::plan::model::{DatabaseKind, Edition, Mode, SecretRef, TlsOptions};
use crate::plan::version::KongVersion;

/// One node that answered `GET /`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbedNode {
    pub admin_url: String,
    pub info: NodeInfo,
    /// Control planes: their data planes, as `/clustering/data-planes` lists them.
    pub data_planes: Vec<DataPlane>,
    /// Rows of that listing kongup could not read (each becomes a warning).
    pub unreadable: Vec<UnreadableDataPlane>,
}

/// What the probe found out about cluster X.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub nodes: Vec<ProbedNode>,
    pub mode: Mode,
    pub database: DatabaseKind,
    /// X's version: the lowest any node reports.
    pub version: KongVersion,
    /// Enterprise if any node reads Enterprise ([`NodeInfo::edition`]).
    pub edition: Edition,
    /// How kongup knows the edition, e.g. "GET / has no edition …; version 3.4.3.12 has
    /// four parts".
    pub edition_evidence: String,
    /// Things the operator should know (mixed versions, data planes out of sync).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("probing {url}: {source}")]
    Probe {
        url: String,
        #[source]
        source: AdminError,
    },
    #[error("no Admin API was given: name at least one with --admin URL")]
    NoNodes,
    #[error("{url} reports version {version:?}, which kongup cannot read: {detail}")]
    BadVersion {
        url: String,
        version: String,
        detail: String,
    },
    #[error(
        "the nodes do not form one cluster: {detail}. Run `kongup init` once per cluster (X only)"
    )]
    Mixed { detail: String },
}

/// Probes every Admin API in `admin_urls` (`GET /`, and `/clustering/data-planes` on
/// control planes).
pub async fn discover(
    client: &AdminClient,
    admin_urls: &[String],
) -> Result<Discovery, DiscoverError> {
    if admin_urls.is_empty() {
        return Err(DiscoverError::NoNodes);
    }
    let mut nodes = Vec::new();
    for url in admin_urls {
        let info = client
            .node_info(url)
            .await
            .map_err(|source| DiscoverError::Probe {
                url: url.clone(),
                source,
            })?;
        let listing = if info.configuration.role == "control_plane" {
            client
                .data_plane_listing(url)
                .await
                .map_err(|source| DiscoverError::Probe {
                    url: url.clone(),
                    source,
                })?
        } else {
            Default::default()
        };
        nodes.push(ProbedNode {
            admin_url: url.clone(),
            info,
            data_planes: listing.planes,
            unreadable: listing.unreadable,
        });
    }
    let mut discovery = analyse(nodes)?;
    if discovery.edition == Edition::Community
        && let Some(hint) = workspaces_hint(client, &admin_urls[0]).await
    {
        discovery.warnings.push(hint);
    }
    Ok(discovery)
}

/// A warning when `GET /workspaces` lists workspaces besides `default` on a node read as
/// the open-source gateway. Only a hint: the open-source gateway answers it too (`default`,
/// tests/fixtures/kong/{2.8.5,3.4.2}/workspaces_oss.http; 404 from 3.10.0) and let more be
/// created until 3.7.0 (Kong commit 6470d9bf92), though it serves no entity in them. An
/// answer that is not a list (404, RBAC) says nothing either way, so it is not reported.
async fn workspaces_hint(client: &AdminClient, admin_url: &str) -> Option<String> {
    let others: Vec<String> = client
        .workspaces(admin_url)
        .await
        .ok()?
        .into_iter()
        .filter(|w| w != "default")
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "{admin_url}: GET /workspaces lists {} besides default, yet X reads as the \
             open-source gateway, whose backups cover the default workspace only: if X is \
             Kong Enterprise, write edition: enterprise in the plan so that every workspace \
             is backed up",
            others.join(", ")
        )
    })
}

/// Mode, database and version from the probed nodes; pure, for tests.
pub fn analyse(nodes: Vec<ProbedNode>) -> Result<Discovery, DiscoverError> {
    if nodes.is_empty() {
        return Err(DiscoverError::NoNodes);
    }
    let mut warnings = Vec::new();
    let roles: BTreeSet<&str> = nodes
        .iter()
        .map(|n| n.info.configuration.role.as_str())
        .collect();
    let databases: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.info.configuration.role != "data_plane")
        .map(|n| n.info.configuration.database.as_str())
        .collect();
    let hybrid = roles.contains("control_plane") || roles.contains("data_plane");
    if hybrid && roles.contains("traditional") {
        return Err(DiscoverError::Mixed {
            detail: "some nodes are traditional, others hybrid (control_plane/data_plane)".into(),
        });
    }
    if databases.len() > 1 {
        return Err(DiscoverError::Mixed {
            detail: format!(
                "the nodes use different databases ({})",
                databases.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let database = match databases.iter().next().map(|word| word.parse()) {
        Some(Ok(kind)) => kind,
        // Only data planes were named: their control plane has the database.
        Some(Err(_)) | None => DatabaseKind::Postgres,
    };
    let mode = if hybrid {
        Mode::Hybrid
    } else if database == DatabaseKind::Off {
        Mode::Dbless
    } else {
        Mode::Traditional
    };
    if hybrid && !roles.contains("control_plane") {
        warnings.push("only data planes were named: kongup cannot see the control plane's database or the other data planes; add the control plane's Admin API with --admin".into());
    }
    let mut versions = Vec::new();
    for node in &nodes {
        let version =
            reported_version(&node.info.version).map_err(|e| DiscoverError::BadVersion {
                url: node.admin_url.clone(),
                version: node.info.version.clone(),
                detail: e.reason.to_string(),
            })?;
        versions.push(version);
        for dp in &node.data_planes {
            if dp.sync_status != SyncStatus::Normal {
                warnings.push(format!(
                    "data plane {} ({}) reports sync_status {} to {}",
                    dp.label(),
                    dp.ip,
                    dp.sync_status.as_str(),
                    node.admin_url
                ));
            }
            if dp.has_empty_config() {
                warnings.push(format!(
                    "data plane {} ({}) has the empty configuration (config_hash {}) by {}: it \
                     proxies nothing until its control plane sends a configuration",
                    dp.label(),
                    dp.ip,
                    dp.config_hash,
                    node.admin_url
                ));
            }
        }
        for row in &node.unreadable {
            warnings.push(format!(
                "{} lists a data plane kongup cannot read, so the plan leaves it out: {}; \
                 add it by hand",
                node.admin_url,
                row.describe()
            ));
        }
    }
    let Some(version) = versions.iter().min().copied() else {
        return Err(DiscoverError::NoNodes);
    };
    // Compared as versions: `3.4.3` and `3.4.3.0` are the same release.
    let distinct: BTreeSet<KongVersion> = versions.iter().copied().collect();
    if distinct.len() > 1 {
        let reported: BTreeSet<&str> = nodes.iter().map(|n| n.info.version.as_str()).collect();
        warnings.push(format!(
            "the nodes run different versions ({}): the plan starts from the lowest, {version}",
            reported.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let editions: Vec<(Edition, String)> = nodes.iter().map(|n| n.info.edition()).collect();
    let (edition, edition_evidence) = editions
        .iter()
        .find(|(edition, _)| *edition == Edition::Enterprise)
        .unwrap_or(&editions[0])
        .clone();
    if editions.iter().any(|(e, _)| *e != edition) {
        warnings.push(format!(
            "the nodes do not all read as the same edition: the plan says {} ({edition_evidence})",
            edition.as_str()
        ));
    }
    Ok(Discovery {
        nodes,
        mode,
        database,
        version,
        edition,
        edition_evidence,
        warnings,
    })
}

/// What `kongup init` knows beyond the probe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InitOptions {
    pub name: Option<String>,
    /// The target version; without it a placeholder is written with a `# TODO`.
    pub to: Option<KongVersion>,
    /// Whether a second cluster can run beside X (decides dual-cluster).
    pub spare_capacity: bool,
    pub token: Option<SecretRef>,
    pub tls: TlsOptions,
    /// When the plan was written, for its header.
    pub written_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A plan text and what the operator must still fill in.
#[derive(Debug, Clone, PartialEq)]
pub struct InitPlan {
    pub yaml: String,
    pub pick: StrategyPick,
    pub todos: usize,
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Wraps a sentence into `# ` comment lines at `indent`.
fn comment(out: &mut String, indent: &str, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() > 86 {
            let _ = writeln!(out, "{indent}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}# {line}");
    }
}

/// The host part of a URL (`https://10.0.0.1:8444/x` → `10.0.0.1`).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(stripped) = authority.strip_prefix('[') {
        return stripped.split(']').next().unwrap_or(stripped);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// One listener of a node: address, port, and whether it speaks TLS.
struct Listener {
    ip: String,
    port: u64,
    ssl: bool,
}

/// The node's listeners of `kind` (`status`, `proxy`): Kong's derived `<kind>_listeners`
/// when `GET /` has it, else its `<kind>_listen` lines (`"0.0.0.0:8100 ssl reuseport"`,
/// `["off"]`) read as Kong reads them: `<ip>:<port>` then flags
/// (kong/conf_loader/listeners.lua:87-132@3.4.2).
fn listeners(info: &NodeInfo, kind: &str) -> Vec<Listener> {
    let other = &info.configuration.other;
    if let Some(derived) = other
        .get(&format!("{kind}_listeners"))
        .and_then(|v| v.as_array())
    {
        return derived
            .iter()
            .filter_map(|l| {
                Some(Listener {
                    ip: l
                        .get("ip")
                        .and_then(|v| v.as_str())
                        .unwrap_or("0.0.0.0")
                        .to_string(),
                    port: l.get("port")?.as_u64()?,
                    ssl: l.get("ssl").and_then(|v| v.as_bool()) == Some(true),
                })
            })
            .collect();
    }
    let Some(lines) = other
        .get(&format!("{kind}_listen"))
        .and_then(|v| v.as_array())
    else {
        return Vec::new();
    };
    lines
        .iter()
        .filter_map(|line| {
            let mut words = line.as_str()?.split_whitespace();
            let (ip, port) = words.next()?.rsplit_once(':')?;
            Some(Listener {
                ip: ip.trim_start_matches('[').trim_end_matches(']').to_string(),
                port: port.parse().ok()?,
                ssl: words.any(|flag| flag == "ssl"),
            })
        })
        .collect()
}

/// A URL for one of the node's listeners of `kind` (`status`, `proxy`), on the host the
/// Admin API was reached at. `None` when the node has none, or listens on loopback only
/// while the Admin API was reached from elsewhere.
fn listener_url(info: &NodeInfo, kind: &str, admin_url: &str) -> Option<String> {
    let host = url_host(admin_url);
    let reached_locally = host == "127.0.0.1" || host == "localhost" || host == "::1";
    listeners(info, kind).into_iter().find_map(|l| {
        let loopback = l.ip.starts_with("127.") || l.ip == "::1" || l.ip == "localhost";
        if loopback && !reached_locally {
            return None;
        }
        let scheme = if l.ssl { "https" } else { "http" };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Some(format!("{scheme}://{host}:{}", l.port))
    })
}

fn config_str<'a>(info: &'a NodeInfo, key: &str) -> Option<&'a str> {
    info.configuration.other.get(key).and_then(|v| v.as_str())
}

fn config_u64(info: &NodeInfo, key: &str) -> Option<u64> {
    info.configuration.other.get(key).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// The placeholder target when `--to` was not given: the next patch (always a guaranteed
/// path), for the operator to replace.
fn placeholder_target(from: KongVersion) -> KongVersion {
    match from.build {
        Some(build) => KongVersion::enterprise(from.major, from.minor, from.patch, build + 1),
        None => KongVersion::new(from.major, from.minor, from.patch + 1),
    }
}

struct NodeEntry {
    name: String,
    role: &'static str,
    admin_url: Option<String>,
    status_url: Option<String>,
    proxy_url: Option<String>,
    notes: Vec<String>,
    todos: Vec<String>,
}

fn unique_name(taken: &mut BTreeSet<String>, wanted: &str) -> String {
    let base = if wanted.trim().is_empty() {
        "node"
    } else {
        wanted.trim()
    };
    let mut name = base.to_string();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Writes the plan. It validates as it is; every `# TODO` marks a value kongup could not
/// know (Y's nodes, the load balancer, executors, the target version when not given).
pub fn render_plan(discovery: &Discovery, options: &InitOptions) -> InitPlan {
    let from = discovery.version;
    let to = options.to.unwrap_or_else(|| placeholder_target(from));
    let pick = choose(discovery.mode, from, to, options.spare_capacity);
    let strategy = pick.primary;
    let mut todos = 0usize;
    let mut out = String::new();

    let _ = writeln!(
        out,
        "# Written by `kongup init`{} from what these Admin APIs said:",
        options
            .written_at
            .map(|t| format!(" on {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default()
    );
    for node in &discovery.nodes {
        let _ = writeln!(out, "#   {}", node.admin_url);
    }
    comment(
        &mut out,
        "",
        "Read every line before running it. `# TODO` marks what kongup could not find out; `kongup validate` checks the file.",
    );
    for warning in &discovery.warnings {
        comment(&mut out, "", &format!("Warning: {warning}"));
    }
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("kong {} {from} to {to}", discovery.mode.as_str()));
    let _ = writeln!(out, "name: {}", quote(&name));
    let _ = writeln!(out, "from: {from}");
    if options.to.is_none() {
        todos += 1;
        let _ = writeln!(
            out,
            "# TODO the version to upgrade to (`kongup init --to VERSION`); the next patch release is a placeholder."
        );
    }
    let _ = writeln!(out, "to: {to}");
    let _ = writeln!(out, "mode: {}", discovery.mode.as_str());
    let _ = writeln!(out, "database: {}", discovery.database.as_str());
    comment(
        &mut out,
        "",
        &format!(
            "{}{}",
            discovery.edition_evidence,
            match discovery.edition {
                Edition::Enterprise => ": backups cover every workspace",
                Edition::Community => "",
            }
        ),
    );
    let _ = writeln!(out, "edition: {}", discovery.edition.as_str());
    comment(&mut out, "", &format!("Chosen by kongup: {}", pick.reason));
    if !options.spare_capacity && discovery.mode != Mode::Dbless {
        todos += 1;
        comment(
            &mut out,
            "",
            "TODO kongup assumed there is no room for a second cluster and database beside X; if there is, run `kongup init --spare-capacity` (dual-cluster is Kong's safest strategy).",
        );
    }
    let _ = writeln!(out, "strategy: {}", strategy.as_str());
    out.push('\n');

    // Cluster X: the probed nodes and the data planes their control planes reported.
    let mut taken = BTreeSet::new();
    let mut x_nodes = Vec::new();
    let mut seen_dps = BTreeSet::new();
    let hybrid = discovery.mode == Mode::Hybrid;
    for node in &discovery.nodes {
        let info = &node.info;
        let role = match info.configuration.role.as_str() {
            "control_plane" => "control_plane",
            "data_plane" => "data_plane",
            _ => "traditional",
        };
        let mut entry = NodeEntry {
            name: unique_name(&mut taken, &info.hostname),
            role,
            admin_url: Some(node.admin_url.clone()),
            status_url: listener_url(info, "status", &node.admin_url),
            proxy_url: if role == "control_plane" {
                None
            } else {
                listener_url(info, "proxy", &node.admin_url)
            },
            notes: vec![format!(
                "{} {}, {}, node_id {}",
                info.edition().0.as_str(),
                info.version,
                role,
                info.node_id
            )],
            todos: Vec::new(),
        };
        if entry.status_url.is_none() {
            entry.todos.push("status_url: the node's Status API (e.g. http://HOST:8100); kongup found no status listener reachable from here, and /status/ready is how it sees readiness".into());
        }
        if entry.proxy_url.is_none() && role != "control_plane" {
            entry
                .todos
                .push("proxy_url: the node's proxy (e.g. http://HOST:8000)".into());
        }
        x_nodes.push(entry);
        for dp in &node.data_planes {
            if !seen_dps.insert(dp.id.clone()) {
                continue;
            }
            // RPC sync stores the node id as the hostname: the IP names it better, and is
            // what kongup matches it by (with the id) while it runs.
            let (wanted, named_by) = if dp.hostname_is_id() {
                (
                    dp.ip.as_str(),
                    "; named by its IP: its control plane stores its node id as its hostname \
                     (RPC sync: 3.9's cluster_incremental_sync, 3.10's cluster_rpc_sync)",
                )
            } else {
                (dp.hostname.as_str(), "")
            };
            let version = if dp.version.is_empty() {
                "not reported"
            } else {
                dp.version.as_str()
            };
            x_nodes.push(NodeEntry {
                name: unique_name(&mut taken, wanted),
                role: "data_plane",
                admin_url: None,
                status_url: None,
                proxy_url: None,
                notes: vec![format!(
                    "version {version}, sync_status {}, ip {}, node id {}; a data plane \
                     reported by {}{named_by}",
                    dp.sync_status.as_str(),
                    dp.ip,
                    dp.id,
                    node.admin_url
                )],
                todos: vec![
                    format!("status_url: http://{}:8100 if its Status API listens there (kongup cannot see a data plane's ports)", dp.ip),
                    format!("proxy_url: http://{}:8000 if it proxies there", dp.ip),
                ],
            });
        }
    }

    // Cluster Y: in-place reinstalls X's own nodes; the others add new ones.
    let in_place_cp = strategy.installs_y_on_x_machines();
    let mut y_nodes = Vec::new();
    let mut new_index = 0;
    for x in &x_nodes {
        let reuse = in_place_cp && x.role != "data_plane";
        if reuse {
            y_nodes.push(NodeEntry {
                name: unique_name(&mut taken, &format!("{}-new", x.name)),
                role: x.role,
                admin_url: x.admin_url.clone(),
                status_url: x.status_url.clone(),
                proxy_url: x.proxy_url.clone(),
                notes: vec![format!("{} reinstalled on {to} (in-place)", x.name)],
                todos: Vec::new(),
            });
        } else {
            new_index += 1;
            let prefix = match x.role {
                "control_plane" => "cp-y",
                "data_plane" => "dp-y",
                _ => "y",
            };
            let name = unique_name(&mut taken, &format!("{prefix}-{new_index}"));
            let host = format!("{name}.todo.invalid");
            y_nodes.push(NodeEntry {
                admin_url: (x.role != "data_plane").then(|| format!("http://{host}:8001")),
                status_url: Some(format!("http://{host}:8100")),
                proxy_url: (x.role != "control_plane").then(|| format!("http://{host}:8000")),
                name,
                role: x.role,
                notes: vec![format!("takes over from {}", x.name)],
                todos: vec!["this node's real addresses: it does not exist yet, the .invalid host is a placeholder".into()],
            });
        }
    }

    let _ = writeln!(out, "clusters:");
    let _ = writeln!(out, "  x:");
    let _ = writeln!(out, "    nodes:");
    for entry in &x_nodes {
        todos += write_node(&mut out, entry, hybrid);
    }
    if discovery.database != DatabaseKind::Off {
        todos += write_database(&mut out, discovery, None);
    }
    let _ = writeln!(out, "  y:");
    if !y_nodes.iter().all(|n| n.todos.is_empty()) {
        comment(
            &mut out,
            "    ",
            "TODO Y's nodes: kongup wrote one per X node as a placeholder.",
        );
    }
    let _ = writeln!(out, "    nodes:");
    for entry in &y_nodes {
        todos += write_node(&mut out, entry, hybrid);
    }
    if strategy.y_has_own_database() && discovery.database != DatabaseKind::Off {
        todos += write_database(&mut out, discovery, Some("_y"));
    }
    out.push('\n');

    let _ = writeln!(out, "admin:");
    match &options.token {
        Some(SecretRef::Env(var)) => {
            let _ = writeln!(out, "  token: {{env: {}}}", quote(var));
        }
        Some(SecretRef::File(path)) => {
            let _ = writeln!(
                out,
                "  token: {{file: {}}}",
                quote(&path.display().to_string())
            );
        }
        None => {
            todos += 1;
            let _ = writeln!(
                out,
                "  # TODO token: {{env: KONG_ADMIN_TOKEN}} when the Admin API uses RBAC (Kong-Admin-Token)"
            );
        }
    }
    let tls = &options.tls;
    if tls.ca_file.is_some() || tls.client_cert.is_some() || tls.insecure {
        let _ = writeln!(out, "  tls:");
        if let Some(ca) = &tls.ca_file {
            let _ = writeln!(out, "    ca_file: {}", quote(&ca.display().to_string()));
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            let _ = writeln!(
                out,
                "    client_cert: {}",
                quote(&cert.display().to_string())
            );
            let _ = writeln!(out, "    client_key: {}", quote(&key.display().to_string()));
        }
        if tls.insecure {
            let _ = writeln!(
                out,
                "    insecure: true  # certificate checks are off: fix the CA instead"
            );
        }
    }
    out.push('\n');

    todos += 1;
    comment(
        &mut out,
        "",
        "TODO executors: how kongup runs commands on each node (type ssh, kubectl or local), then `executor: NAME` on the nodes. Without them every command step is done by hand.",
    );
    let _ = writeln!(out, "executors: {{}}");
    out.push('\n');

    todos += 1;
    comment(
        &mut out,
        "",
        "TODO the load balancer in front of the proxies: haproxy, nginx, kubernetes or command lets kongup move traffic; `manual` means you move it and confirm each stage.",
    );
    let _ = writeln!(out, "traffic:");
    let _ = writeln!(out, "  driver:");
    let _ = writeln!(out, "    type: manual");
    let _ = writeln!(out, "  schedule: [10, 50, 100]");
    let _ = writeln!(out, "  bake: 5m");
    out.push('\n');
    let _ = writeln!(out, "gates:");
    let _ = writeln!(out, "  max_error_ratio: 0.01");
    if !strategy.x_serves_beside_y(discovery.mode) {
        let _ = writeln!(
            out,
            "  max_p99_ms: 1000   # in place X is stopped before Y serves: no X to compare with"
        );
    } else {
        let _ = writeln!(out, "  max_p99_ratio: 1.5");
    }
    let _ = writeln!(out, "  on_fail: pause");
    out.push('\n');
    todos += 1;
    comment(
        &mut out,
        "",
        "TODO smoke_tests: requests sent to Y's proxies before traffic moves, e.g. a route that must answer 401 without a key and 200 with one.",
    );
    if discovery.database != DatabaseKind::Off {
        out.push('\n');
        let _ = writeln!(out, "migrations:");
        let _ = writeln!(out, "  db_timeout: 600");
        let _ = writeln!(
            out,
            "  # TODO extra_args: [-c, /etc/kong/kong.conf] if Y's kong needs its configuration named"
        );
        todos += 1;
    } else {
        out.push('\n');
        let _ = writeln!(
            out,
            "# TODO backup: {{declarative_config: /etc/kong/kong.yml}} — the declarative configuration the DB-less nodes load"
        );
        todos += 1;
    }
    InitPlan {
        yaml: out,
        pick,
        todos,
    }
}

fn write_node(out: &mut String, entry: &NodeEntry, hybrid: bool) -> usize {
    for note in &entry.notes {
        comment(out, "      ", note);
    }
    let _ = writeln!(out, "      - name: {}", quote(&entry.name));
    if hybrid {
        let _ = writeln!(out, "        role: {}", entry.role);
    }
    for (key, value) in [
        ("admin_url", &entry.admin_url),
        ("status_url", &entry.status_url),
        ("proxy_url", &entry.proxy_url),
    ] {
        if let Some(url) = value {
            let _ = writeln!(out, "        {key}: {}", quote(url));
        }
    }
    for todo in &entry.todos {
        comment(out, "        ", &format!("TODO {todo}"));
    }
    entry.todos.len()
}

/// X's database from a node's configuration (`pg_host`, …; the password never appears in
/// `GET /`); `suffix` names Y's new database for dual-cluster.
fn write_database(out: &mut String, discovery: &Discovery, suffix: Option<&str>) -> usize {
    let Some(source) = discovery
        .nodes
        .iter()
        .find(|n| n.info.configuration.role != "data_plane")
    else {
        return 0;
    };
    let info = &source.info;
    let mut todos = 0;
    let host = match config_str(info, "pg_host") {
        Some(host) if host != "127.0.0.1" && host != "localhost" => host.to_string(),
        Some(local) => {
            todos += 1;
            let _ = writeln!(
                out,
                "    # TODO the database host as seen from where kongup runs (the node says {local})"
            );
            local.to_string()
        }
        None => {
            todos += 1;
            let _ = writeln!(out, "    # TODO the database host: the node did not say");
            "TODO-database.invalid".to_string()
        }
    };
    let port = config_u64(info, "pg_port").unwrap_or(5432);
    let name = config_str(info, "pg_database").unwrap_or("kong");
    let user = config_str(info, "pg_user").unwrap_or("kong");
    let _ = writeln!(out, "    database:");
    if let Some(suffix) = suffix {
        todos += 1;
        let _ = writeln!(
            out,
            "      # TODO Y's own database: a new one, into which X's backup is restored (placeholder: same server, new name)"
        );
        let _ = writeln!(out, "      host: {}", quote(&host));
        let _ = writeln!(out, "      port: {port}");
        let _ = writeln!(out, "      name: {}", quote(&format!("{name}{suffix}")));
    } else {
        let _ = writeln!(out, "      host: {}", quote(&host));
        let _ = writeln!(out, "      port: {port}");
        let _ = writeln!(out, "      name: {}", quote(name));
    }
    let _ = writeln!(out, "      user: {}", quote(user));
    todos += 1;
    let _ = writeln!(
        out,
        "      # TODO where the password is: {{env: VAR}} or {{file: PATH}}"
    );
    let _ = writeln!(out, "      password: {{env: KONG_PG_PASSWORD}}");
    todos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_host_handles_ports_paths_and_ipv6() {
        assert_eq!(url_host("https://10.0.0.1:8444/admin"), "10.0.0.1");
        assert_eq!(url_host("http://[::1]:8001"), "::1");
        assert_eq!(url_host("http://kong-admin"), "kong-admin");
    }

    #[test]
    fn placeholder_target_is_the_next_patch() {
        assert_eq!(
            placeholder_target("3.4.3.12".parse().unwrap()).to_string(),
            "3.4.3.13"
        );
        assert_eq!(
            placeholder_target("3.9.1".parse().unwrap()).to_string(),
            "3.9.2"
        );
    }
}

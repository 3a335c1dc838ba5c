//! The Admin API and Status API client: typed reads of a Kong node, with timeouts on every
//! call, retries for reads, and errors that tell an operator what is wrong with the address,
//! the certificate or the token.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;

use crate::kong::http::{
    ADMIN_TOKEN_HEADER, BodyError, BodyLimit, HttpClientError, read_body, redirect_target,
    token_header,
};
use crate::kong::types::{
    DataPlane, Message, NOT_A_CONTROL_PLANE, NodeInfo, NodeStatus, Page, reported_version,
};
use crate::plan::model::{AdminAccess, Edition, SecretRef, TlsOptions};
use crate::plan::version::KongVersion;
use crate::secrets::{Secret, SecretError};

/// Where a collection of the configuration is served, and what its absence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A core entity of the versions that have it: a 404 there is an error.
    Core,
    /// The DAO of a bundled plugin: routed only while the plugin is loaded (404 otherwise).
    Plugin(&'static str),
    /// Kong Enterprise only (not in the open-source code, so unverified): asked only of
    /// Enterprise nodes, and a 404 is noted.
    Enterprise,
    /// `/filter-chains` (3.4.0+): every request is 400 `this endpoint is only available when
    /// wasm is enabled` while `wasm = off`, the default (kong/api/routes/filter_chains.lua:
    /// 8-13@3.4.2, same @3.9.1 and @master).
    Wasm,
}

/// One Admin API collection that holds configuration, and the versions that serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collection {
    /// The path under the Admin API's root (or a workspace's), as the schema's
    /// `admin_api_name` (else `name`) spells it.
    pub path: &'static str,
    /// The first version that serves it.
    pub since: KongVersion,
    /// The first version that no longer does.
    pub until: Option<KongVersion>,
    pub presence: Presence,
}

const fn collection(path: &'static str, presence: Presence) -> Collection {
    Collection {
        path,
        since: KongVersion::new(0, 0, 0),
        until: None,
        presence,
    }
}

/// Every collection kongup exports for a backup and fingerprints for the freeze guard, in
/// the order Kong's own export writes the core ones. Paths and versions from Kong's
/// schemas (kong/db/schema/entities/*.lua, kong/plugins/*/daos.lua @2.8.5/@3.4.2/@3.9.1/
/// @master; docs/kong/admin-and-status-api.md "Admin API collections"). Targets are read
/// under each upstream (`/upstreams/{id}/targets`; the top-level `/targets` is disabled,
/// kong/api/routes/targets.lua) and exported as `targets`. Not read: `oauth2_tokens` and
/// `oauth2_authorization_codes` (issued at run time, not configuration), `workspaces`
/// (each is exported on its own).
pub const COLLECTIONS: &[Collection] = &[
    collection("services", Presence::Core),
    collection("routes", Presence::Core),
    collection("consumers", Presence::Core),
    collection("plugins", Presence::Core),
    collection("upstreams", Presence::Core),
    collection("certificates", Presence::Core),
    collection("snis", Presence::Core),
    collection("ca_certificates", Presence::Core),
    // `vaults_beta`'s admin_api_name (kong/db/schema/entities/vaults_beta.lua:49@2.8.5),
    // renamed `vaults` in 3.0.0 (migration 016_280_to_300 copies it to sm_vaults).
    Collection {
        since: KongVersion::new(2, 8, 0),
        until: Some(KongVersion::new(3, 0, 0)),
        ..collection("vaults-beta", Presence::Core)
    },
    Collection {
        since: KongVersion::new(3, 0, 0),
        ..collection("vaults", Presence::Core)
    },
    Collection {
        since: KongVersion::new(3, 1, 0),
        ..collection("key-sets", Presence::Core)
    },
    Collection {
        since: KongVersion::new(3, 1, 0),
        ..collection("keys", Presence::Core)
    },
    Collection {
        since: KongVersion::new(3, 4, 0),
        ..collection("filter-chains", Presence::Wasm)
    },
    collection("key-auths", Presence::Plugin("key-auth")),
    collection("basic-auths", Presence::Plugin("basic-auth")),
    collection("hmac-auths", Presence::Plugin("hmac-auth")),
    collection("jwts", Presence::Plugin("jwt")),
    collection("acls", Presence::Plugin("acl")),
    collection("oauth2", Presence::Plugin("oauth2")),
    collection("consumer_groups", Presence::Enterprise),
];

/// The core collection paths of every version kongup knows (the lab serves these).
pub const CORE_ENTITIES: &[&str] = &[
    "services",
    "routes",
    "consumers",
    "plugins",
    "upstreams",
    "certificates",
    "snis",
    "ca_certificates",
    "vaults-beta",
    "vaults",
    "key-sets",
    "keys",
];

/// The collections a node of `version` and `edition` serves.
pub fn collections_at(
    version: KongVersion,
    edition: Edition,
) -> impl Iterator<Item = &'static Collection> {
    COLLECTIONS.iter().filter(move |c| {
        version >= c.since
            && c.until.is_none_or(|until| version < until)
            && (c.presence != Presence::Enterprise || edition == Edition::Enterprise)
    })
}

/// What an export read: each collection's rows, and the collections it did not read with
/// why (a plugin not loaded, wasm off).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigExport {
    pub entities: BTreeMap<String, Vec<serde_json::Value>>,
    /// (collection, why), e.g. ("filter-chains", "wasm is off").
    pub skipped: Vec<(String, String)>,
}

/// A server that keeps handing out `next` links is not followed past this many pages.
const MAX_PAGES: usize = 100_000;

/// What `/clustering/data-planes` listed: the rows kongup read, and those it could not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataPlaneListing {
    pub planes: Vec<DataPlane>,
    pub unreadable: Vec<UnreadableDataPlane>,
}

/// A row of `/clustering/data-planes` that is not a data plane kongup can read (a field of
/// a type it does not expect, an identifying field missing), with what it could see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableDataPlane {
    pub id: Option<String>,
    pub hostname: Option<String>,
    pub ip: Option<String>,
    pub error: String,
}

impl UnreadableDataPlane {
    fn of(row: &serde_json::Value, error: &serde_json::Error) -> UnreadableDataPlane {
        let field = |name: &str| row.get(name).and_then(|v| v.as_str()).map(str::to_string);
        UnreadableDataPlane {
            id: field("id"),
            hostname: field("hostname"),
            ip: field("ip"),
            error: error.to_string(),
        }
    }

    /// "the row of id …, hostname …, ip … (<error>)", with whatever the row had.
    pub fn describe(&self) -> String {
        let seen: Vec<String> = [
            ("id", &self.id),
            ("hostname", &self.hostname),
            ("ip", &self.ip),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
        .collect();
        let which = if seen.is_empty() {
            "a row with no id, hostname or ip".to_string()
        } else {
            format!("the row of {}", seen.join(", "))
        };
        format!("{which} ({})", self.error)
    }
}

/// How the client reaches a node.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminClientOptions {
    /// Sent as `Kong-Admin-Token` when set.
    pub token: Option<SecretRef>,
    pub tls: TlsOptions,
    /// Whole-request timeout (connect, send, read the body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries of a read before giving up (1 = no retry).
    pub read_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub retry_delay: Duration,
    /// Keep a connection to each node open between requests. Off for the topology probes:
    /// at fleet size a kept connection per node (two sockets and hyper's ~16 KB of buffers
    /// each) was a few thousand descriptors and tens of MB for a request every 5 s.
    pub keep_idle_connections: bool,
}

impl Default for AdminClientOptions {
    fn default() -> Self {
        AdminClientOptions {
            token: None,
            tls: TlsOptions::default(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            read_attempts: 3,
            retry_delay: Duration::from_millis(200),
            keep_idle_connections: true,
        }
    }
}

impl AdminClientOptions {
    /// The plan's `admin:` section with the default timeouts and retries.
    pub fn from_plan(admin: &AdminAccess) -> Self {
        AdminClientOptions {
            token: admin.token.clone(),
            tls: admin.tls.clone(),
            ..AdminClientOptions::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "could not connect to {url}: connection refused. Is Kong running there, and is this the Admin API's address and port (default 8001; the Status API is on 8007 or 8100)?"
    )]
    ConnectionRefused { url: String },
    #[error(
        "could not connect to {url}: {detail}. Check the host name and that the network path is open"
    )]
    Connect { url: String, detail: String },
    #[error(
        "TLS with {url} failed: {detail}. If the Admin API uses a private CA, name it in admin.tls.ca_file; if it asks for a client certificate, set admin.tls.client_cert and client_key; if it speaks plain HTTP, use http://"
    )]
    Tls { url: String, detail: String },
    #[error("{url} answered {status}: {}{}", unauthorized_hint(token_source.as_deref(), *status), kong_message.as_deref().map(|m| format!(" (Kong said: {m})")).unwrap_or_default())]
    Unauthorized {
        url: String,
        status: u16,
        /// Where the token came from (`SecretRef::describe`), never its value.
        token_source: Option<String>,
        kong_message: Option<String>,
    },
    #[error("{url} answered 404 Not Found: is this an Admin API?{}", proxy_hint(kong_message.as_deref()))]
    NotFound {
        url: String,
        kong_message: Option<String>,
    },
    #[error(
        "{url} answered, but not as Kong's Admin API does ({detail}): is this an Admin API? Point kongup at the Admin API (default port 8001), not the proxy or another service"
    )]
    NotKong { url: String, detail: String },
    #[error(
        "{url} is not a control plane, so it has no data planes to list (Kong said: {message}). Only hybrid-mode control planes answer /clustering/data-planes"
    )]
    NotControlPlane { url: String, message: String },
    #[error(
        "{url} did not answer {}: the node may be overloaded or a firewall drops the packets",
        match tries {
            1 => format!("within {}", humantime::format_duration(*after)),
            n => format!("in {n} tries of {} each", humantime::format_duration(*after)),
        }
    )]
    Timeout {
        url: String,
        after: Duration,
        /// How many times the read was tried, `after` each, so the message is true of the
        /// whole call.
        tries: u32,
    },
    #[error("{url} answered {status}{}: Kong reported an error; check the node's error log", kong_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        kong_message: Option<String>,
    },
    #[error(
        "the Admin API at {url} answered a redirect ({status}) to {location}; point the plan at the final URL. kongup follows no redirect, so the Admin token never goes where the plan does not say"
    )]
    Redirect {
        url: String,
        status: u16,
        location: String,
    },
    #[error(
        "{url} sent a `next` link to {next}, another server than the Admin API kongup was pointed at: kongup follows `next` only on that Admin API, so the Admin token goes nowhere else. Check what sits in front of the Admin API (a proxy that rewrites links?)"
    )]
    ForeignNext { url: String, next: String },
    #[error(transparent)]
    Body(BodyError),
    #[error("cannot set up the Admin API client: {0}")]
    Setup(#[from] HttpClientError),
    #[error("cannot read the Admin API token: {0}")]
    Token(#[from] SecretError),
}

fn unauthorized_hint(token_source: Option<&str>, status: u16) -> String {
    let verb = if status == 403 {
        "the token is not allowed to read this (RBAC)"
    } else {
        "the Admin API wants credentials (RBAC)"
    };
    match token_source {
        Some(source) => format!(
            "{verb}; kongup sent the {ADMIN_TOKEN_HEADER} read from {source}: check that it holds a valid token with read access to this endpoint"
        ),
        None => format!(
            "{verb}; kongup sent no {ADMIN_TOKEN_HEADER}: name one in the plan's admin.token (env: or file:)"
        ),
    }
}

fn proxy_hint(kong_message: Option<&str>) -> String {
    match kong_message {
        Some(m) if m.contains("no Route matched") => {
            " This looks like Kong's proxy port; the Admin API listens elsewhere (default 8001)."
                .to_string()
        }
        Some(m) => format!(" (it said: {m})"),
        None => String::new(),
    }
}

impl AdminError {
    /// Whether a read may succeed when tried again: the node may be restarting or busy.
    pub fn is_transient(&self) -> bool {
        match self {
            AdminError::ConnectionRefused { .. }
            | AdminError::Connect { .. }
            | AdminError::Timeout { .. } => true,
            AdminError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// What `/status/ready` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// 503 with Kong's reason, e.g. `draining`.
    NotReady(String),
}

/// Reads Kong nodes. One client serves every node of a plan: methods take the node's base
/// URL (`https://cp1:8001`, with any path prefix the Admin API sits behind).
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    token: Option<AdminToken>,
    options: AdminClientOptions,
}

/// The resolved token, the sensitive header made of it, and where it came from.
#[derive(Debug, Clone)]
struct AdminToken {
    value: Secret,
    header: HeaderValue,
    /// `SecretRef::describe`, for error messages.
    source: String,
}

impl AdminClient {
    /// Builds the client (`kong::http::client`, one for every Kong API kongup reads). The
    /// second value holds warnings the caller must show the operator (e.g. TLS verification
    /// switched off).
    pub fn new(options: AdminClientOptions) -> Result<(AdminClient, Vec<String>), AdminError> {
        let (http, warnings) = crate::kong::http::client_pooled(
            &options.tls,
            options.timeout,
            options.connect_timeout,
            options.keep_idle_connections,
        )?;
        let token = match &options.token {
            Some(source) => {
                let value = crate::secrets::resolve(source)?;
                Some(AdminToken {
                    header: token_header(&value)?,
                    value,
                    source: source.describe(),
                })
            }
            None => None,
        };
        Ok((
            AdminClient {
                http,
                token,
                options,
            },
            warnings,
        ))
    }

    /// The Admin token, for tools kongup hands it to through a private file (decK).
    pub(crate) fn token(&self) -> Option<&Secret> {
        self.token.as_ref().map(|token| &token.value)
    }

    /// The HTTP client itself, for a scrape of `/metrics` with the same TLS and timeouts.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The TLS settings the client was built with.
    pub fn tls(&self) -> &TlsOptions {
        &self.options.tls
    }

    /// `GET /`: version, edition, role, database.
    pub async fn node_info(&self, admin_url: &str) -> Result<NodeInfo, AdminError> {
        let url = join(admin_url, "/");
        let body = self.get_ok(&url).await?;
        parse_kong(&url, &body)
    }

    /// `GET /` read for what an export needs: the node's version and its edition, with how
    /// the edition is known ([`NodeInfo::edition`]).
    pub async fn version_and_edition(
        &self,
        admin_url: &str,
    ) -> Result<(KongVersion, Edition, String), AdminError> {
        let info = self.node_info(admin_url).await?;
        let version = reported_version(&info.version).map_err(|e| AdminError::NotKong {
            url: join(admin_url, "/"),
            detail: format!(
                "it reports version {:?}, which kongup cannot read: {}",
                info.version, e.reason
            ),
        })?;
        let (edition, evidence) = info.edition();
        Ok((version, edition, evidence))
    }

    /// `GET /status` (Admin API or Status API).
    pub async fn node_status(&self, base_url: &str) -> Result<NodeStatus, AdminError> {
        let url = join(base_url, "/status");
        let body = self.get_ok(&url).await?;
        parse_kong(&url, &body)
    }

    /// `GET /status/ready` on the Status API (Kong 3.3+): 200 is ready, 503 carries the
    /// reason (`draining` after `kong drain`).
    pub async fn readiness(&self, status_url: &str) -> Result<Readiness, AdminError> {
        let url = join(status_url, "/status/ready");
        let (status, body) = self.get_with_retries(&url).await?;
        match status {
            StatusCode::OK => Ok(Readiness::Ready),
            StatusCode::SERVICE_UNAVAILABLE => Ok(Readiness::NotReady(
                kong_message(&body).unwrap_or_else(|| "503 without a reason".into()),
            )),
            _ => Err(self.status_error(&url, status, &body)),
        }
    }

    /// `GET /metrics`: the Prometheus text as Kong sends it.
    pub async fn metrics(&self, base_url: &str) -> Result<String, AdminError> {
        let url = join(base_url, "/metrics");
        let body = self.get_ok(&url).await?;
        String::from_utf8(body).map_err(|_| AdminError::NotKong {
            url,
            detail: "the /metrics body is not UTF-8 text".into(),
        })
    }

    /// `GET /clustering/data-planes`, every page, each row read on its own: a row kongup
    /// cannot read is kept in `unreadable` with what could be seen of it, so one odd row
    /// neither hides the others nor goes unmentioned. A node that is not a control plane
    /// gives `AdminError::NotControlPlane` with Kong's message.
    pub async fn data_plane_listing(
        &self,
        admin_url: &str,
    ) -> Result<DataPlaneListing, AdminError> {
        let mut listing = DataPlaneListing::default();
        let mut url = join(admin_url, "/clustering/data-planes");
        for _ in 0..MAX_PAGES {
            let (status, body) = self.get_with_retries(&url).await?;
            if status == StatusCode::BAD_REQUEST {
                let message = kong_message(&body).unwrap_or_default();
                if message.contains(NOT_A_CONTROL_PLANE) || message.contains("Control Plane") {
                    return Err(AdminError::NotControlPlane { url, message });
                }
            }
            if !status.is_success() {
                return Err(self.status_error(&url, status, &body));
            }
            let page: Page<serde_json::Value> = parse_kong(&url, &body)?;
            for row in page.data {
                match serde_json::from_value::<DataPlane>(row.clone()) {
                    Ok(plane) => listing.planes.push(plane),
                    Err(e) => listing.unreadable.push(UnreadableDataPlane::of(&row, &e)),
                }
            }
            match next_page(admin_url, &url, page.next.as_deref())? {
                Some(next) => url = next,
                None => return Ok(listing),
            }
        }
        Err(too_many_pages(admin_url, "/clustering/data-planes"))
    }

    /// [`AdminClient::data_plane_listing`] for a caller that needs every row: a row kongup
    /// cannot read is an error that names it.
    pub async fn data_planes(&self, admin_url: &str) -> Result<Vec<DataPlane>, AdminError> {
        let listing = self.data_plane_listing(admin_url).await?;
        match listing.unreadable.first() {
            None => Ok(listing.planes),
            Some(row) => Err(AdminError::NotKong {
                url: join(admin_url, "/clustering/data-planes"),
                detail: format!(
                    "{} of its rows cannot be read, e.g. {}",
                    listing.unreadable.len(),
                    row.describe()
                ),
            }),
        }
    }

    /// Every entity of one collection (`services`, `routes`, …), following `next`.
    /// A collection this Kong does not have (404) is `Ok(None)`.
    pub async fn list_entities(
        &self,
        admin_url: &str,
        entity: &str,
    ) -> Result<Option<Vec<serde_json::Value>>, AdminError> {
        let mut all = Vec::new();
        let mut url = join(admin_url, &format!("/{entity}?size=1000"));
        for _ in 0..MAX_PAGES {
            let (status, body) = self.get_with_retries(&url).await?;
            if status == StatusCode::NOT_FOUND && all.is_empty() {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(self.status_error(&url, status, &body));
            }
            let page: Page<serde_json::Value> = parse_kong(&url, &body)?;
            all.extend(page.data);
            match next_page(admin_url, &url, page.next.as_deref())? {
                Some(next) => url = next,
                None => return Ok(Some(all)),
            }
        }
        Err(too_many_pages(admin_url, entity))
    }

    /// The configuration of a node of `version` and `edition`: every collection it serves
    /// ([`collections_at`]), then every upstream's targets. `workspace` names an Enterprise
    /// workspace read through `/<workspace>/…` paths (unverified: Enterprise's routing is
    /// not in the open-source code); `None` reads the root paths, the default workspace.
    pub async fn export_configuration(
        &self,
        admin_url: &str,
        version: KongVersion,
        edition: Edition,
        workspace: Option<&str>,
    ) -> Result<ConfigExport, AdminError> {
        let prefix = workspace.map(|w| format!("{w}/")).unwrap_or_default();
        let mut export = ConfigExport::default();
        for collection in collections_at(version, edition) {
            let path = format!("{prefix}{}", collection.path);
            let listed = self.list_entities(admin_url, &path).await;
            let skipped = match (collection.presence, listed) {
                (_, Ok(Some(rows))) => {
                    export.entities.insert(collection.path.to_string(), rows);
                    continue;
                }
                (Presence::Core, Ok(None)) => {
                    return Err(AdminError::NotKong {
                        url: join(admin_url, &path),
                        detail: format!(
                            "it answered 404, and Kong {version} serves /{}",
                            collection.path
                        ),
                    });
                }
                (Presence::Plugin(plugin), Ok(None)) => {
                    format!("the {plugin} plugin is not loaded (404)")
                }
                (Presence::Enterprise, Ok(None)) => {
                    "404: not on this Kong (Enterprise only; unverified)".to_string()
                }
                (Presence::Wasm, Ok(None)) => "404".to_string(),
                (
                    Presence::Wasm,
                    Err(AdminError::Status {
                        status: 400,
                        kong_message: Some(message),
                        ..
                    }),
                ) if message.contains("wasm") => "wasm is off".to_string(),
                (_, Err(e)) => return Err(e),
            };
            export.skipped.push((collection.path.to_string(), skipped));
        }
        let upstreams: Vec<String> = export
            .entities
            .get("upstreams")
            .into_iter()
            .flatten()
            .filter_map(|u| u.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .collect();
        let mut targets = Vec::new();
        for id in upstreams {
            let path = format!("{prefix}upstreams/{id}/targets");
            match self.list_entities(admin_url, &path).await? {
                Some(rows) => targets.extend(rows),
                None => {
                    return Err(AdminError::NotKong {
                        url: join(admin_url, &path),
                        detail: format!(
                            "it answered 404 for upstream {id}, listed a moment before: was it \
                             deleted meanwhile? Configuration should not change during the upgrade"
                        ),
                    });
                }
            }
        }
        if export.entities.contains_key("upstreams") {
            export.entities.insert("targets".to_string(), targets);
        }
        Ok(export)
    }

    /// The names of the workspaces `GET /workspaces` lists (Kong Enterprise; the shape is
    /// unverified, read as Kong's paged collections).
    pub async fn workspaces(&self, admin_url: &str) -> Result<Vec<String>, AdminError> {
        let rows = self
            .list_entities(admin_url, "workspaces")
            .await?
            .ok_or_else(|| AdminError::NotFound {
                url: join(admin_url, "/workspaces"),
                kong_message: None,
            })?;
        Ok(rows
            .iter()
            .filter_map(|w| w.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect())
    }

    /// A GET that must answer 2xx; the body comes back as bytes.
    async fn get_ok(&self, url: &str) -> Result<Vec<u8>, AdminError> {
        let (status, body) = self.get_with_retries(url).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(self.status_error(url, status, &body))
        }
    }

    /// Reads are idempotent, so transient failures are retried with a doubling delay. A
    /// crate (backon, tokio-retry) would add a dependency for this one loop.
    async fn get_with_retries(&self, url: &str) -> Result<(StatusCode, Vec<u8>), AdminError> {
        let attempts = self.options.read_attempts.max(1);
        let mut delay = self.options.retry_delay;
        let mut attempt = 1;
        loop {
            let result = self.get_once(url).await;
            let transient = match &result {
                Ok((status, _)) => matches!(status.as_u16(), 502..=504) && !is_ready_path(url),
                Err(e) => e.is_transient(),
            };
            if !transient || attempt >= attempts {
                return result.map_err(|error| match error {
                    AdminError::Timeout { url, after, .. } => AdminError::Timeout {
                        url,
                        after,
                        tries: attempt,
                    },
                    other => other,
                });
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn get_once(&self, url: &str) -> Result<(StatusCode, Vec<u8>), AdminError> {
        let mut request = self.http.get(url);
        if let Some(token) = &self.token {
            request = request.header(ADMIN_TOKEN_HEADER, token.header.clone());
        }
        let response = request.send().await.map_err(|e| self.classify(url, &e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(AdminError::Redirect {
                url: url.to_string(),
                status: status.as_u16(),
                location: redirect_target(&response),
            });
        }
        let body = read_body(response, body_limit(url))
            .await
            .map_err(|e| match e {
                BodyError::Read(e) => self.classify(url, &e),
                too_large => AdminError::Body(too_large),
            })?;
        Ok((status, body))
    }

    fn classify(&self, url: &str, error: &reqwest::Error) -> AdminError {
        let url = url.to_string();
        if error.is_timeout() {
            return AdminError::Timeout {
                url,
                after: self.options.timeout,
                tries: 1,
            };
        }
        if let Some(detail) = find_tls_error(error) {
            return AdminError::Tls { url, detail };
        }
        if find_io_kind(error, std::io::ErrorKind::ConnectionRefused) {
            return AdminError::ConnectionRefused { url };
        }
        if find_io_kind(error, std::io::ErrorKind::TimedOut) {
            return AdminError::Timeout {
                url,
                after: self.options.connect_timeout,
                tries: 1,
            };
        }
        AdminError::Connect {
            url,
            detail: error_chain(error),
        }
    }

    fn status_error(&self, url: &str, status: StatusCode, body: &[u8]) -> AdminError {
        let url = url.to_string();
        let kong_message = kong_message(body);
        match status.as_u16() {
            401 | 403 => AdminError::Unauthorized {
                url,
                status: status.as_u16(),
                token_source: self.token.as_ref().map(|token| token.source.clone()),
                kong_message,
            },
            404 => AdminError::NotFound { url, kong_message },
            code => AdminError::Status {
                url,
                status: code,
                kong_message,
            },
        }
    }
}

/// The cap on an answer, by the API it comes from (`kong::http::BodyLimit`).
fn body_limit(url: &str) -> BodyLimit {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if path.ends_with("/metrics") {
        BodyLimit::METRICS
    } else if path.ends_with("/status") || path.ends_with("/status/ready") {
        BodyLimit::STATUS_API
    } else {
        BodyLimit::ADMIN_API
    }
}

fn is_ready_path(url: &str) -> bool {
    url.ends_with("/status/ready")
}

fn too_many_pages(admin_url: &str, what: &str) -> AdminError {
    AdminError::NotKong {
        url: join(admin_url, what),
        detail: format!("it kept sending `next` links for more than {MAX_PAGES} pages"),
    }
}

/// The URL of the page after `current`, from its `next` link: `None` on the last page (or
/// a link back to the same page). Kong's links are paths from the Admin API's root, joined
/// to `admin_url` (keeping its path prefix); an absolute link is followed only on the same
/// origin (scheme, host and port) as `admin_url`, since the Admin token goes along.
pub fn next_page(
    admin_url: &str,
    current: &str,
    next: Option<&str>,
) -> Result<Option<String>, AdminError> {
    let Some(next) = next.filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    let url = match reqwest::Url::parse(next) {
        Ok(absolute) => {
            let same_origin = reqwest::Url::parse(admin_url)
                .is_ok_and(|base| base.origin() == absolute.origin() && base.origin().is_tuple());
            if !same_origin {
                return Err(AdminError::ForeignNext {
                    url: current.to_string(),
                    next: next.to_string(),
                });
            }
            next.to_string()
        }
        Err(_) => join(admin_url, next),
    };
    Ok((url != current).then_some(url))
}

/// `base` + `path`, keeping any path prefix of `base`; `path` is always a path (see
/// [`next_page`] for links that may be absolute).
pub fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    }
}

fn kong_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Message>(body)
        .ok()
        .map(|m| m.message)
}

fn parse_kong<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(80).collect();
        AdminError::NotKong {
            url: url.to_string(),
            detail: format!("unexpected body {excerpt:?}: {e}"),
        }
    })
}

/// Every error in a chain, `: `-joined, for messages.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Walks a chain of errors, looking inside `io::Error`s too (their `source()` skips the
/// error they wrap).
fn walk_errors<'a>(
    error: &'a (dyn std::error::Error + 'static),
    visit: &mut dyn FnMut(&'a (dyn std::error::Error + 'static)) -> bool,
) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if visit(e) {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && walk_errors(inner, visit)
        {
            return true;
        }
        current = e.source();
    }
    false
}

fn find_tls_error(error: &reqwest::Error) -> Option<String> {
    let mut found = None;
    walk_errors(error, &mut |e| {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            found = Some(tls.to_string());
            true
        } else {
            false
        }
    });
    found
}

fn find_io_kind(error: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    walk_errors(error, &mut |e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collections_follow_the_version() {
        let core: Vec<&str> = COLLECTIONS
            .iter()
            .filter(|c| c.presence == Presence::Core)
            .map(|c| c.path)
            .collect();
        assert_eq!(core, CORE_ENTITIES);
        let at = |version: &str, edition| -> Vec<&str> {
            collections_at(version.parse().unwrap(), edition)
                .map(|c| c.path)
                .collect()
        };
        let old = at("2.8.5", Edition::Community);
        assert!(old.contains(&"vaults-beta") && !old.contains(&"vaults"));
        assert!(!old.contains(&"key-sets") && !old.contains(&"filter-chains"));
        let lts = at("3.4.2", Edition::Community);
        assert!(!lts.contains(&"vaults-beta") && lts.contains(&"vaults"));
        assert!(lts.contains(&"key-sets") && lts.contains(&"filter-chains"));
        assert!(!lts.contains(&"consumer_groups"));
        assert!(at("3.4.3.12", Edition::Enterprise).contains(&"consumer_groups"));
        assert!(at("3.0.1", Edition::Community).contains(&"vaults"));
        assert!(!at("3.0.1", Edition::Community).contains(&"keys"));
    }

    #[test]
    fn join_keeps_prefix() {
        assert_eq!(join("http://a:8001/", "/status"), "http://a:8001/status");
        assert_eq!(
            join("https://h/admin", "/services?offset=x"),
            "https://h/admin/services?offset=x"
        );
    }

    #[test]
    fn next_links_stay_on_the_admin_apis_origin() {
        let admin = "https://h:8444/admin";
        let current = "https://h:8444/admin/services?size=1000";
        assert_eq!(
            next_page(admin, current, Some("/services?offset=x")).unwrap(),
            Some("https://h:8444/admin/services?offset=x".to_string())
        );
        assert_eq!(
            next_page(admin, current, Some("https://h:8444/services?offset=y")).unwrap(),
            Some("https://h:8444/services?offset=y".to_string())
        );
        assert_eq!(next_page(admin, current, None).unwrap(), None);
        assert_eq!(next_page(admin, current, Some("")).unwrap(), None);
        assert_eq!(next_page(admin, current, Some(current)).unwrap(), None);
        for foreign in [
            "http://h:8444/services?offset=z",
            "https://h:9444/services",
            "https://evil.example/services",
            "localhost:8444/services",
        ] {
            let error = next_page(admin, current, Some(foreign)).unwrap_err();
            assert!(
                matches!(error, AdminError::ForeignNext { .. }),
                "{foreign}: {error:?}"
            );
        }
    }

    #[test]
    fn the_token_goes_out_in_a_sensitive_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok-sensitive\n").unwrap();
        let (client, _) = AdminClient::new(AdminClientOptions {
            token: Some(SecretRef::File(path)),
            ..AdminClientOptions::default()
        })
        .unwrap();
        let token = client.token.as_ref().unwrap();
        assert!(token.header.is_sensitive());
        assert_eq!(token.value.expose(), "tok-sensitive");
    }

    #[test]
    fn unauthorized_names_the_token_source_not_the_value() {
        let error = AdminError::Unauthorized {
            url: "http://a/".into(),
            status: 401,
            token_source: Some("environment variable KONG_TOKEN".into()),
            kong_message: Some("Invalid credentials".into()),
        };
        let text = error.to_string();
        assert!(text.contains("environment variable KONG_TOKEN"), "{text}");
        assert!(text.contains("Invalid credentials"), "{text}");
    }
}

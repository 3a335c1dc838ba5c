//! A lab node's Admin API and Status API, answering as Kong of the node's version answers:
//! the bodies are built here from the lab's own data (`serde_json::json!`), in the shapes
//! the Kong corpus records (`tests/fixtures/kong/`, read from kong/api/routes/kong.lua,
//! health.lua, clustering.lua, kong/status/ready.lua and kong/api/endpoints.lua at each tag;
//! `docs/kong/admin-and-status-api.md`), never from kongup's client types, so a test of the
//! client against the lab tests it against Kong's shapes. The version rules are in `facts`.
//!
//! Routes: Admin API (control planes and traditional nodes) `GET /`, `/status`,
//! `/clustering/data-planes`, `/metrics`, the core collections, `/workspaces`,
//! `/filter-chains`; Status API (every node) `GET /status`, `/status/ready` (3.3+; `POST`
//! from 3.9), `/metrics`. Anything else: 404 `{"message":"Not found"}`; another method: 405.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::{Value, json};

use crate::plan::model::Role;

use super::bundled;
use super::facts;
use super::lab::NodeCtx;
use super::metrics;
use super::node::SimNode;
use super::pages;

/// Kong's `cluster_data_plane_purge_delay` default: a data plane row lives 14 days
/// (kong/templates/kong_defaults.lua).
const DATA_PLANE_PURGE_DELAY_SECS: i64 = 1_209_600;
const DEFAULT_PREFIX: &str = "/usr/local/kong";

/// `DECLARATIVE_EMPTY_CONFIG_HASH`: the hash of the empty configuration every DB-less node
/// and data plane loads at start (kong/constants.lua:190@2.8.5, :217@master).
pub const EMPTY_CONFIG_HASH: &str = "00000000000000000000000000000000";

/// The 400 of `/clustering/data-planes` on a node that is not a control plane
/// (kong/api/routes/clustering.lua:14-19@2.8.5, identical through master).
const NOT_A_CONTROL_PLANE: &str = "this endpoint is only available when Kong is configured to run as Control Plane for the cluster";

/// `kong.response.exit(status, table)`: cjson's body and content type.
fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(body.to_string()),
    )
        .into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    json(status, &json!({ "message": text }))
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

async fn method_not_allowed() -> Response {
    message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// A GET route answering other methods as Kong's api_helpers does.
fn only_get<H, T>(handler: H) -> MethodRouter<NodeCtx>
where
    H: axum::handler::Handler<T, NodeCtx>,
    T: 'static,
{
    get(handler).fallback(method_not_allowed)
}

/// Which API a response belongs to, for its headers.
#[derive(Clone)]
struct HeaderCtx {
    ctx: NodeCtx,
    admin: bool,
}

/// Counts the request (nginx's counters) and sets the headers Kong's
/// `admin_header_filter` (also the Status API's) and the Admin API's `cors_filter` set:
/// `Access-Control-Allow-Origin`, `Access-Control-Allow-Credentials` (Admin API, 3.4+),
/// `X-Kong-Admin-Latency`, `Server` (kong/init.lua:1447-1479@2.8.5, :1898-1930@3.9.1;
/// kong/api/api_helpers.lua:270-288@3.4.2). No `X-Kong-Request-Id`: only the proxy sets it.
async fn kong_headers(
    State(at): State<HeaderCtx>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let _guard = at.ctx.node.counters.request_started();
    let started = Instant::now();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    let version = at.ctx.node.spec.version;
    let headers = response.headers_mut();
    let allow_origin = match origin {
        Some(origin) if facts::echoes_origin(version) => origin,
        _ => HeaderValue::from_static("*"),
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if at.admin && facts::admin_allows_credentials(version) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.insert(
        "x-kong-admin-latency",
        HeaderValue::from(started.elapsed().as_millis() as u64),
    );
    if let Ok(server) = HeaderValue::from_str(&facts::server_tokens(version)) {
        headers.insert(header::SERVER, server);
    }
    response
}

fn with_headers(router: Router<NodeCtx>, ctx: NodeCtx, admin: bool) -> Router {
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            HeaderCtx {
                ctx: ctx.clone(),
                admin,
            },
            kong_headers,
        ))
        .with_state(ctx)
}

pub fn admin_router(ctx: NodeCtx) -> Router {
    let router = Router::new()
        .route("/", only_get(root))
        .route("/status", only_get(status))
        .route("/clustering/data-planes", only_get(data_planes))
        .route("/metrics", only_get(metrics_text))
        .route("/workspaces", only_get(workspaces))
        .route("/filter-chains", only_get(filter_chains))
        .route("/{collection}", only_get(entities));
    with_headers(router, ctx, true)
}

pub fn status_router(ctx: NodeCtx) -> Router {
    let version = ctx.node.spec.version;
    let mut router = Router::new()
        .route("/status", only_get(status))
        .route("/metrics", only_get(metrics_text));
    if facts::has_ready_endpoint(version) {
        let ready_route = if facts::has_drain_command(version) {
            get(ready).post(set_ready).fallback(method_not_allowed)
        } else {
            only_get(ready)
        };
        router = router.route("/status/ready", ready_route);
    }
    with_headers(router, ctx, false)
}

/// A `*_listen` value: the lab's listener, or `off`.
fn listen(address: Option<String>) -> Value {
    json!([address.unwrap_or_else(|| "off".to_string())])
}

/// `configuration` of `GET /`: the subset of Kong's (about 300 keys) the corpus keeps,
/// with the values a lab node runs with, each key present from the release Kong's
/// kong/templates/kong_defaults.lua has it.
fn configuration(ctx: &NodeCtx, plugins: &[bundled::PluginInfo]) -> Value {
    let node = &ctx.node;
    let spec = &node.spec;
    let v = spec.version;
    let line = v.minor_line();
    let since = |major, minor| line >= (major, minor);
    let ip = node.ip;
    let mut conf = serde_json::Map::new();
    let mut put = |key: &str, value: Value| {
        conf.insert(key.to_string(), value);
    };
    put("role", json!(spec.role.as_str()));
    put(
        "database",
        json!(if spec.dbless { "off" } else { "postgres" }),
    );
    put("prefix", json!(DEFAULT_PREFIX));
    put("log_level", json!("notice"));
    put("plugins", json!(["bundled"]));
    let loaded: BTreeMap<&str, bool> = plugins.iter().map(|p| (p.name, true)).collect();
    put("loaded_plugins", json!(loaded));
    put(
        "proxy_listen",
        listen(
            node.proxy_port
                .map(|p| format!("{ip}:{p} reuseport backlog=16384")),
        ),
    );
    put("stream_listen", listen(None));
    put(
        "admin_listen",
        listen(
            node.admin_port
                .map(|p| format!("{ip}:{p} reuseport backlog=16384")),
        ),
    );
    if since(3, 4) {
        put(
            "admin_gui_listen",
            json!(["0.0.0.0:8002", "0.0.0.0:8445 ssl"]),
        );
    }
    put(
        "status_listen",
        listen(Some(format!("{ip}:{}", node.status_port))),
    );
    put("cluster_listen", json!(["0.0.0.0:8005"]));
    let control_plane = node
        .state()
        .reports_to
        .clone()
        .map_or_else(|| "127.0.0.1:8005".to_string(), |cp| format!("{cp}:8005"));
    put("cluster_control_plane", json!(control_plane));
    put("cluster_mtls", json!("shared"));
    if spec.role == Role::ControlPlane {
        put("cluster_cert", json!("/etc/kong/cluster/cluster.crt"));
        // A path on 2.8.5; 3.x hides it (CONF_SENSITIVE, kong/conf_loader/init.lua:606-619
        // @3.4.2).
        put(
            "cluster_cert_key",
            json!(if since(3, 0) {
                "******"
            } else {
                "/etc/kong/cluster/cluster.key"
            }),
        );
    }
    put(
        "cluster_data_plane_purge_delay",
        json!(DATA_PLANE_PURGE_DELAY_SECS),
    );
    put("cluster_ocsp", json!("off"));
    put(
        "cluster_max_payload",
        json!(if since(3, 4) { 16_777_216 } else { 4_194_304 }),
    );
    if since(3, 1) {
        put("cluster_use_proxy", json!(false));
    }
    if since(3, 3) {
        // An empty array-typed setting is an empty Lua table: `{}` in JSON.
        put("cluster_dp_labels", json!({}));
    }
    if since(3, 7) {
        put("cluster_rpc", json!(false));
    }
    if line == (3, 9) {
        put("cluster_incremental_sync", json!(false));
    }
    if facts::has_rpc_sync(v) {
        put("cluster_rpc_sync", json!(ctx.lab.rpc_sync()));
    }
    if since(3, 8) {
        put("cluster_cjson", json!(false));
    }
    match spec
        .database
        .as_deref()
        .and_then(|d| ctx.lab.topology.database(d))
    {
        Some(db) => {
            put("pg_host", json!(db.host));
            put("pg_port", json!(db.port));
            put("pg_user", json!(db.user));
            put("pg_password", json!("******"));
            put("pg_database", json!(db.name));
        }
        // Kong's defaults; an unset password is absent, not null.
        None => {
            put("pg_host", json!("127.0.0.1"));
            put("pg_port", json!(5432));
            put("pg_user", json!("kong"));
            put("pg_database", json!("kong"));
        }
    }
    put("pg_ssl", json!(false));
    let mut headers = vec!["server_tokens", "latency_tokens"];
    if since(3, 5) {
        headers.push("x-kong-request-id");
        put("headers_upstream", json!(["x-kong-request-id"]));
    }
    put("headers", json!(headers));
    put("trusted_ips", json!({}));
    put("nginx_worker_processes", json!("auto"));
    put("mem_cache_size", json!("128m"));
    put("db_update_frequency", json!(5));
    put(
        "worker_consistency",
        json!(if since(3, 0) { "eventual" } else { "strict" }),
    );
    if since(3, 0) {
        put("router_flavor", json!("traditional_compatible"));
    }
    if since(3, 5) {
        put("dedicated_config_processing", json!(true));
    }
    if since(3, 8) {
        put("new_dns_client", json!(false));
    }
    if since(3, 4) {
        put("wasm", json!(false));
    }
    put("anonymous_reports", json!(true));
    Value::Object(conf)
}

/// `GET /` (kong/api/routes/kong.lua:94-110@2.8.5, :130-148@3.9.1).
async fn root(State(ctx): State<NodeCtx>) -> Response {
    let node = &ctx.node;
    let v = node.spec.version;
    let plugins = bundled::bundled(v);
    let available: serde_json::Map<String, Value> = plugins
        .iter()
        .map(|p| {
            let value = if facts::plugins_with_versions(v) {
                json!({"version": p.version, "priority": p.priority})
            } else {
                json!(true)
            };
            (p.name.to_string(), value)
        })
        .collect();
    // The distinct plugin names of the configuration.
    let mut enabled: Vec<String> = Vec::new();
    for row in super::entities::collection("plugins", v, &ctx.lab.routes).unwrap_or_default() {
        if let Some(name) = row["name"].as_str()
            && !enabled.iter().any(|e| e == name)
        {
            enabled.push(name.to_string());
        }
    }
    let mut body = json!({
        "tagline": "Welcome to kong",
        "version": v.to_string(),
        "hostname": node.spec.name,
        "node_id": node.node_id,
        "timers": {"running": 0, "pending": 7},
        "plugins": {"available_on_server": available, "enabled_in_cluster": enabled},
        "lua_version": facts::lua_version(v),
        "configuration": configuration(&ctx, &plugins),
        "pids": {"master": 1, "workers": node.worker_pids},
    });
    if facts::has_edition(v) {
        body["edition"] = json!(facts::edition(v));
    }
    json(StatusCode::OK, &body)
}

/// `bytes_to_str(bytes, "m", 2)` (kong/tools/utils.lua@2.8.5).
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1_048_576.0)
}

/// Whether the node's database answers; DB-less nodes always "connect"
/// (kong/db/strategies/off/connector.lua).
fn database_reachable(ctx: &NodeCtx) -> bool {
    match &ctx.node.spec.database {
        Some(database) => ctx.lab.database_reachable(database),
        None => true,
    }
}

/// The configuration hash `/status` reports: the empty one until a configuration arrives.
fn configuration_hash(node: &SimNode) -> String {
    node.state()
        .config_hash
        .clone()
        .unwrap_or_else(|| EMPTY_CONFIG_HASH.to_string())
}

/// `GET /status` (kong/api/routes/health.lua@2.8.5/@3.4.2/@master).
async fn status(State(ctx): State<NodeCtx>) -> Response {
    let node = &ctx.node;
    let v = node.spec.version;
    let nginx = node.counters.snapshot();
    let workers: Vec<Value> = node
        .worker_pids
        .iter()
        .map(|&pid| json!({"http_allocated_gc": mib(ctx.lab.lua_vm_bytes(node)), "pid": pid}))
        .collect();
    let dicts: serde_json::Map<String, Value> = facts::shared_dicts(v, node.spec.dbless)
        .into_iter()
        .map(|(name, allocated, capacity)| {
            (
                name.to_string(),
                json!({"allocated_slabs": mib(allocated), "capacity": mib(capacity)}),
            )
        })
        .collect();
    let mut body = json!({
        "memory": {"workers_lua_vms": workers, "lua_shared_dicts": dicts},
        "server": {
            "connections_active": nginx.connections_active,
            "connections_reading": nginx.connections_reading,
            "connections_writing": nginx.connections_writing,
            "connections_waiting": nginx.connections_waiting,
            "connections_accepted": nginx.connections_accepted,
            "connections_handled": nginx.connections_handled,
            "total_requests": nginx.total_requests,
        },
    });
    if !node.spec.dbless || facts::dbless_status_has_database(v) {
        body["database"] = json!({"reachable": database_reachable(&ctx)});
    }
    if node.spec.dbless {
        body["configuration_hash"] = json!(configuration_hash(node));
    }
    json(StatusCode::OK, &body)
}

/// Why `/status/ready` answers 503, in Kong's words (kong/status/ready.lua@3.4.2/@3.9.1).
fn not_ready_reason(ctx: &NodeCtx) -> Option<String> {
    let node = &ctx.node;
    let state = node.state().clone();
    if state.draining {
        return Some("draining".to_string());
    }
    if !database_reachable(ctx) {
        return Some("failed to connect to database".to_string());
    }
    if node.spec.role == Role::ControlPlane {
        return None;
    }
    let build = node.build(&state);
    let workers = node.workers();
    if node.spec.dbless {
        if build.routers < workers {
            return Some(format!(
                "router builds not yet complete, router ready in {} of {workers} workers",
                build.routers
            ));
        }
        if build.plugins_iterators < workers {
            return Some(format!(
                "plugins iterator builds not yet complete, plugins iterator ready in {} of \
                 {workers} workers",
                build.plugins_iterators
            ));
        }
        if configuration_hash(node) == EMPTY_CONFIG_HASH {
            return Some("no configuration available (empty configuration present)".to_string());
        }
        return None;
    }
    if build.routers == 0 {
        return Some("router builds not yet complete".to_string());
    }
    if build.plugins_iterators == 0 {
        return Some("plugins iterator build not yet complete".to_string());
    }
    None
}

/// `GET /status/ready` on the Status API.
async fn ready(State(ctx): State<NodeCtx>) -> Response {
    match not_ready_reason(&ctx) {
        Some(reason) => message(StatusCode::SERVICE_UNAVAILABLE, &reason),
        None => message(StatusCode::OK, "ready"),
    }
}

/// `POST /status/ready` with `status=draining` (form or JSON, as lapis reads parameters):
/// 204 without a body; anything else 400 without a body (kong/status/ready.lua:106-134
/// @3.9.1). `kong drain` posts it.
async fn set_ready(State(ctx): State<NodeCtx>, body: Bytes) -> Response {
    let status = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .or_else(|| {
            std::str::from_utf8(&body)
                .ok()
                .and_then(|form| form.split('&').find_map(|kv| kv.strip_prefix("status=")))
                .map(|s| s.trim().to_string())
        });
    if status.as_deref() == Some("draining") {
        ctx.node.state().draining = true;
        return StatusCode::NO_CONTENT.into_response();
    }
    StatusCode::BAD_REQUEST.into_response()
}

fn page_request(query: &HashMap<String, String>) -> Result<pages::PageRequest, pages::PageError> {
    pages::request(
        query.get("size").map(String::as_str),
        query.get("offset").map(String::as_str),
    )
}

/// Kong's 400 for a bad page request.
fn bad_page(error: pages::PageError) -> Response {
    json(StatusCode::BAD_REQUEST, &error.0)
}

/// `GET /clustering/data-planes` on a control plane: its `clustering_data_planes` rows,
/// with the columns of its version (kong/db/schema/entities/clustering_data_planes.lua at
/// each tag) read with `nulls = true`, plus `ttl`, the row's remaining seconds
/// (kong/db/strategies/postgres/init.lua:1055-1059@2.8.5). No `created_at` at any version.
async fn data_planes(
    State(ctx): State<NodeCtx>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if ctx.node.spec.role != Role::ControlPlane {
        return message(StatusCode::BAD_REQUEST, NOT_A_CONTROL_PLANE);
    }
    let request = match page_request(&query) {
        Ok(r) => r,
        Err(error) => return bad_page(error),
    };
    let v = ctx.node.spec.version;
    let now = chrono::Utc::now().timestamp();
    let rows = ctx.lab.data_plane_rows(&ctx.node);
    let body = pages::page(
        v,
        "/clustering/data-planes",
        &rows,
        |row| row.id.as_str(),
        &request,
        |row| {
            let mut out = json!({
                "id": row.id,
                "hostname": row.hostname,
                "ip": row.ip,
                "version": row.version,
                "sync_status": row.sync_status,
                "config_hash": row.config_hash,
                "last_seen": row.last_seen,
                "ttl": (DATA_PLANE_PURGE_DELAY_SECS - (now - row.last_seen)).max(0),
            });
            if facts::has_updated_at(v) {
                out["updated_at"] = json!(row.updated_at);
            }
            if facts::data_plane_rows_have_labels(v) {
                out["labels"] = json!(row.labels);
            }
            if facts::data_plane_rows_have_cert_details(v) {
                out["cert_details"] = json!({"expiry_timestamp": row.cert_expiry});
            }
            if facts::data_plane_rows_have_rpc_capabilities(v) {
                out["rpc_capabilities"] = json!(row.rpc_capabilities);
            }
            out
        },
    );
    json(StatusCode::OK, &body)
}

/// `GET /services` and the other core collections, paged.
async fn entities(
    State(ctx): State<NodeCtx>,
    axum::extract::Path(collection): axum::extract::Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = ctx.node.spec.version;
    let Some(rows) = super::entities::collection(&collection, v, &ctx.lab.routes) else {
        return not_found().await;
    };
    paged(v, &format!("/{collection}"), &rows, &query)
}

fn paged(
    version: crate::plan::version::KongVersion,
    path: &str,
    rows: &[Value],
    query: &HashMap<String, String>,
) -> Response {
    match page_request(query) {
        Ok(request) => {
            let body = pages::page(
                version,
                path,
                rows,
                |row| row["id"].as_str().unwrap_or_default(),
                &request,
                Value::clone,
            );
            json(StatusCode::OK, &body)
        }
        Err(error) => bad_page(error),
    }
}

/// `GET /workspaces`: listed by the open-source gateway up to 3.6, a 404 from 3.7.
async fn workspaces(
    State(ctx): State<NodeCtx>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let v = ctx.node.spec.version;
    match super::entities::workspaces(v) {
        Some(rows) => paged(v, "/workspaces", &rows, &query),
        None => not_found().await,
    }
}

/// `GET /filter-chains`: from 3.4, 400 while `wasm = off` (Kong's default).
async fn filter_chains(State(ctx): State<NodeCtx>) -> Response {
    if facts::has_filter_chains(ctx.node.spec.version) {
        message(
            StatusCode::BAD_REQUEST,
            "this endpoint is only available when wasm is enabled",
        )
    } else {
        not_found().await
    }
}

/// `GET /metrics` (the prometheus plugin's `api.lua` and `status_api.lua`, one body).
async fn metrics_text(State(ctx): State<NodeCtx>) -> Response {
    let text = metrics::render(&ctx);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        text,
    )
        .into_response()
}

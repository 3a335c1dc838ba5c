//! A lab node's Admin API and Status API, answering with the typed bodies of
//! `crate::kong::types` (the ones the real client reads) as Kong does
//! (`kong/api/routes/kong.lua`, `health.lua`, `clustering.lua`, `kong/status/ready.lua`).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::kong::types::{
    CertDetails, DataPlane, DataPlaneList, DatabaseStatus, Message, NOT_A_CONTROL_PLANE,
    NodeConfiguration, NodeInfo, NodeStatus, PluginsInfo, ServerStatus,
};
use crate::plan::model::Role;

use super::facts;
use super::lab::NodeCtx;
use super::metrics::{self, NodeMetrics};

/// Kong's `cluster_data_plane_purge_delay` default: a data plane row lives 14 days.
const DATA_PLANE_PURGE_DELAY_SECS: i64 = 1_209_600;
const DEFAULT_PREFIX: &str = "/usr/local/kong";

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(bytes),
    )
        .into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    json(
        status,
        &Message {
            message: text.to_string(),
        },
    )
}

async fn count_request(
    State(ctx): State<NodeCtx>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let _guard = ctx.node.counters.request_started();
    next.run(request).await
}

pub fn admin_router(ctx: NodeCtx) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/status", get(status))
        .route("/clustering/data-planes", get(data_planes))
        .route("/metrics", get(metrics_text))
        .route("/{collection}", get(entities))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            count_request,
        ))
        .with_state(ctx)
}

/// `GET /services` and the other entity collections: one page, no `next`.
async fn entities(
    State(ctx): State<NodeCtx>,
    axum::extract::Path(collection): axum::extract::Path<String>,
) -> Response {
    match super::entities::collection(&collection, &ctx.lab.routes) {
        Some(data) => json(
            StatusCode::OK,
            &serde_json::json!({ "data": data, "next": null }),
        ),
        None => not_found().await,
    }
}

pub fn status_router(ctx: NodeCtx) -> Router {
    let mut router = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics_text));
    if facts::has_ready_endpoint(ctx.node.spec.version) {
        router = router.route("/status/ready", get(ready).post(set_ready));
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            count_request,
        ))
        .with_state(ctx)
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

#[derive(Serialize)]
struct PluginVersion {
    version: String,
    priority: u32,
}

/// The bundled plugins a lab node loads, with their priorities.
const PLUGINS: &[(&str, u32, (u32, u32))] = &[
    ("acl", 950, (1, 0)),
    ("acme", 1705, (2, 0)),
    ("ai-proxy", 770, (3, 6)),
    ("basic-auth", 1100, (1, 0)),
    ("http-log", 12, (1, 0)),
    ("key-auth", 1250, (1, 0)),
    ("prometheus", 13, (1, 0)),
    ("rate-limiting", 910, (1, 0)),
    ("response-ratelimiting", 900, (1, 0)),
    ("session", 1900, (1, 0)),
];

fn listen_value(addr: Option<String>) -> serde_json::Value {
    serde_json::Value::from(vec![addr.unwrap_or_else(|| "off".to_string())])
}

async fn root(State(ctx): State<NodeCtx>) -> Response {
    let node = &ctx.node;
    let spec = &node.spec;
    let version = spec.version;
    let available_on_server = PLUGINS
        .iter()
        .filter(|(_, _, since)| version.minor_line() >= *since)
        .map(|(name, priority, _)| {
            let value = serde_json::to_value(PluginVersion {
                version: facts::full_version(version),
                priority: *priority,
            })
            .unwrap_or_default();
            (name.to_string(), value)
        })
        .collect();
    let mut other: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    other.insert(
        "admin_listen".into(),
        listen_value(Some(format!("127.0.0.1:{}", node.admin_port))),
    );
    other.insert(
        "status_listen".into(),
        listen_value(Some(format!("127.0.0.1:{}", node.status_port))),
    );
    other.insert(
        "proxy_listen".into(),
        listen_value(node.proxy_port.map(|p| format!("127.0.0.1:{p}"))),
    );
    other.insert("prefix".into(), DEFAULT_PREFIX.into());
    other.insert("log_level".into(), "notice".into());
    other.insert(
        "loaded_plugins".into(),
        serde_json::to_value(
            PLUGINS
                .iter()
                .filter(|(_, _, since)| version.minor_line() >= *since)
                .map(|(name, _, _)| (name.to_string(), true))
                .collect::<BTreeMap<String, bool>>(),
        )
        .unwrap_or_default(),
    );
    if let Some(db_name) = &spec.database
        && let Some(db) = ctx.lab.topology.database(db_name)
    {
        other.insert("pg_host".into(), db.host.clone().into());
        other.insert("pg_port".into(), db.port.into());
        other.insert("pg_database".into(), db.name.clone().into());
        other.insert("pg_user".into(), db.user.clone().into());
        other.insert("pg_password".into(), "******".into());
    }
    match spec.role {
        Role::ControlPlane => {
            other.insert(
                "cluster_listen".into(),
                listen_value(Some("0.0.0.0:8005".into())),
            );
        }
        Role::DataPlane => {
            if let Some(cp) = node.state().reports_to.clone() {
                other.insert("cluster_control_plane".into(), format!("{cp}:8005").into());
            }
        }
        Role::Traditional => {}
    }
    let info = NodeInfo {
        version: version.to_string(),
        edition: Some(facts::edition(version).to_string()),
        hostname: spec.name.clone(),
        node_id: node.node_id.clone(),
        tagline: "Welcome to kong".to_string(),
        plugins: PluginsInfo {
            available_on_server,
            enabled_in_cluster: vec!["key-auth".to_string(), "prometheus".to_string()],
        },
        configuration: NodeConfiguration {
            role: spec.role.as_str().to_string(),
            database: if spec.dbless { "off" } else { "postgres" }.to_string(),
            other,
        },
    };
    json(StatusCode::OK, &info)
}

#[derive(Serialize)]
struct WorkerVm {
    http_allocated_gc: String,
    pid: u32,
}

#[derive(Serialize)]
struct SharedDict {
    allocated_slabs: String,
    capacity: String,
}

/// `kong.node.get_memory_stats("m")`.
#[derive(Serialize)]
struct MemoryStats {
    workers_lua_vms: Vec<WorkerVm>,
    lua_shared_dicts: BTreeMap<String, SharedDict>,
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / 1_048_576.0)
}

async fn status(State(ctx): State<NodeCtx>) -> Response {
    let node = &ctx.node;
    let nginx = node.counters.snapshot();
    let memory = MemoryStats {
        workers_lua_vms: node
            .worker_pids
            .iter()
            .map(|&pid| WorkerVm {
                http_allocated_gc: mib(ctx.lab.lua_vm_bytes(node)),
                pid,
            })
            .collect(),
        lua_shared_dicts: metrics::SHARED_DICTS
            .iter()
            .map(|(name, (allocated, capacity))| {
                (
                    name.to_string(),
                    SharedDict {
                        allocated_slabs: mib(*allocated),
                        capacity: mib(*capacity),
                    },
                )
            })
            .collect(),
    };
    let body = NodeStatus {
        server: ServerStatus {
            connections_active: nginx.connections_active,
            connections_reading: nginx.connections_reading,
            connections_writing: nginx.connections_writing,
            connections_waiting: nginx.connections_waiting,
            connections_accepted: nginx.connections_accepted,
            connections_handled: nginx.connections_handled,
            total_requests: nginx.total_requests,
        },
        memory: serde_json::to_value(memory).ok(),
        database: (!node.spec.dbless).then_some(DatabaseStatus { reachable: true }),
        configuration_hash: node.spec.dbless.then(|| {
            node.state()
                .config_hash
                .clone()
                .unwrap_or_else(|| EMPTY_CONFIG_HASH.to_string())
        }),
    };
    json(StatusCode::OK, &body)
}

/// `DECLARATIVE_EMPTY_CONFIG_HASH`: no configuration loaded yet.
pub const EMPTY_CONFIG_HASH: &str = "00000000000000000000000000000000";

async fn ready(State(ctx): State<NodeCtx>) -> Response {
    let node = &ctx.node;
    let state = node.state().clone();
    if state.draining {
        return message(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    let starting = state.ready_at.is_some_and(|t| Instant::now() < t);
    let reason = if node.spec.role == Role::ControlPlane {
        None
    } else if node.spec.dbless {
        match (&state.config_hash, starting) {
            (None, _) | (_, true) => {
                Some("no configuration available (configuration hash is not initialized)")
            }
            (Some(hash), false) if hash == EMPTY_CONFIG_HASH => {
                Some("no configuration available (empty configuration present)")
            }
            _ => None,
        }
    } else if starting {
        Some("router builds not yet complete")
    } else {
        None
    };
    match reason {
        Some(reason) => message(StatusCode::SERVICE_UNAVAILABLE, reason),
        None => message(StatusCode::OK, "ready"),
    }
}

#[derive(Deserialize)]
struct ReadyChange {
    status: String,
}

/// `kong drain` posts `{"status":"draining"}` here (3.9+); Kong answers 204, else 400.
async fn set_ready(State(ctx): State<NodeCtx>, body: Bytes) -> Response {
    let change: Option<ReadyChange> = serde_json::from_slice(&body).ok().or_else(|| {
        std::str::from_utf8(&body)
            .ok()
            .and_then(|s| s.strip_prefix("status="))
            .map(|status| ReadyChange {
                status: status.trim().to_string(),
            })
    });
    if facts::has_drain_command(ctx.node.spec.version)
        && change.is_some_and(|c| c.status == "draining")
    {
        ctx.node.state().draining = true;
        return StatusCode::NO_CONTENT.into_response();
    }
    StatusCode::BAD_REQUEST.into_response()
}

async fn data_planes(State(ctx): State<NodeCtx>) -> Response {
    if ctx.node.spec.role != Role::ControlPlane {
        return message(StatusCode::BAD_REQUEST, NOT_A_CONTROL_PLANE);
    }
    let now = chrono::Utc::now().timestamp();
    let data = ctx
        .lab
        .data_plane_rows(&ctx.node)
        .into_iter()
        .map(|row| DataPlane {
            id: row.id,
            ip: row.ip,
            hostname: row.hostname,
            version: row.version,
            sync_status: row.sync_status,
            config_hash: row.config_hash,
            last_seen: row.last_seen,
            updated_at: Some(row.updated_at),
            labels: BTreeMap::new(),
            cert_details: Some(CertDetails {
                expiry_timestamp: ctx.lab.cert_expiry,
            }),
            ttl: Some((DATA_PLANE_PURGE_DELAY_SECS - (now - row.last_seen)).max(0)),
        })
        .collect();
    json(StatusCode::OK, &DataPlaneList { data, next: None })
}

async fn metrics_text(State(ctx): State<NodeCtx>) -> Response {
    let node = &ctx.node;
    let stats = node.stats().clone();
    let state = node.state().clone();
    let data_planes: Vec<metrics::DataPlaneSeries> = if node.spec.role == Role::ControlPlane {
        ctx.lab
            .data_plane_rows(node)
            .into_iter()
            .map(|row| metrics::DataPlaneSeries {
                node_id: row.id,
                hostname: row.hostname,
                ip: row.ip,
                version: row.version,
                last_seen: row.last_seen,
                config_hash: row.config_hash,
                compatible: row.sync_status == crate::kong::types::SyncStatus::Normal,
            })
            .collect()
    } else {
        Vec::new()
    };
    let text = metrics::render(&NodeMetrics {
        node_id: &node.node_id,
        version: node.spec.version,
        role: node.spec.role,
        nginx: node.counters.snapshot(),
        datastore_reachable: true,
        control_plane_connected: (node.spec.role == Role::DataPlane).then_some(state.cp_connected),
        worker_pids: &node.worker_pids,
        lua_vm_bytes: ctx.lab.lua_vm_bytes(node),
        stats: &stats,
        data_planes: &data_planes,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        text,
    )
        .into_response()
}

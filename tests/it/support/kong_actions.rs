//! For the Kong action tests: a Kong node played by an axum server (Admin API `GET /`,
//! `/status`, `/status/ready`, a key-auth protected proxy route), switched on and off by
//! files the plan's commands create, as `systemctl start|stop` would switch a real node.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// The API key the fake proxy accepts.
pub const API_KEY: &str = "smoke-key-7f3a9c";

/// How a fake node behaves; tests change it while the node serves.
#[derive(Debug)]
pub struct NodeBehaviour {
    pub version: String,
    pub role: String,
    pub database: String,
    /// The node answers only once this file exists (a start command creates it).
    pub up_when: Option<PathBuf>,
    /// The node reports draining once this file exists (a stop command creates it).
    pub draining_when: Option<PathBuf>,
    /// The proxy route answers 200 to everyone (key-auth forgotten on Y).
    pub open_proxy: bool,
}

impl NodeBehaviour {
    pub fn new(version: &str, role: &str, database: &str) -> NodeBehaviour {
        NodeBehaviour {
            version: version.into(),
            role: role.into(),
            database: database.into(),
            up_when: None,
            draining_when: None,
            open_proxy: false,
        }
    }
}

type Shared = Arc<Mutex<NodeBehaviour>>;

fn exists(path: &Option<PathBuf>) -> bool {
    path.as_deref().is_some_and(Path::exists)
}

fn is_down(node: &NodeBehaviour) -> bool {
    node.up_when.is_some() && !exists(&node.up_when)
}

fn unavailable() -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({"message": "starting"})),
    )
        .into_response()
}

async fn root(State(node): State<Shared>) -> axum::response::Response {
    let node = node.lock().unwrap();
    if is_down(&node) {
        return unavailable();
    }
    axum::Json(crate::support::http::node_info(
        &node.version,
        &node.role,
        &node.database,
    ))
    .into_response()
}

async fn ready(State(node): State<Shared>) -> axum::response::Response {
    let node = node.lock().unwrap();
    if is_down(&node) {
        return unavailable();
    }
    if exists(&node.draining_when) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"message": "draining"})),
        )
            .into_response();
    }
    axum::Json(serde_json::json!({"message": "ready"})).into_response()
}

async fn status(State(node): State<Shared>) -> axum::response::Response {
    if is_down(&node.lock().unwrap()) {
        return unavailable();
    }
    axum::Json(serde_json::json!({
        "server": {"connections_active": 1, "connections_reading": 0, "connections_writing": 1,
                   "connections_waiting": 0, "connections_accepted": 10,
                   "connections_handled": 10, "total_requests": 12},
        "database": {"reachable": true}
    }))
    .into_response()
}

/// `/orders` behind key-auth: 401 without the key, 200 with JSON with it.
async fn orders(State(node): State<Shared>, headers: HeaderMap) -> axum::response::Response {
    let node = node.lock().unwrap();
    if is_down(&node) {
        return unavailable();
    }
    let keyed = headers.get("apikey").is_some_and(|v| v == API_KEY);
    if keyed || node.open_proxy {
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"orders": [], "ok": true}"#,
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"message":"No API key found in request"}"#,
        )
            .into_response()
    }
}

/// A collection of an Enterprise workspace: the same as the default workspace's.
async fn workspace_entities(
    axum::extract::Path((_, entity)): axum::extract::Path<(String, String)>,
) -> axum::response::Response {
    entities(axum::extract::Path(entity)).await
}

/// An entity collection of the Admin API: one service, empty otherwise.
async fn entities(
    axum::extract::Path(entity): axum::extract::Path<String>,
) -> axum::response::Response {
    let data = match entity.as_str() {
        "services" => serde_json::json!([{"id": "a0000000-0000-4000-8000-000000000001",
                                           "name": "orders", "host": "orders.internal",
                                           "created_at": 1, "updated_at": 2}]),
        "routes" | "consumers" | "plugins" | "upstreams" | "certificates" | "snis"
        | "ca_certificates" | "vaults" | "key-sets" | "keys" => serde_json::json!([]),
        // Read only of Kong Enterprise (a four-part version), whose every workspace serves
        // the collections above under `/<workspace>/` (unverified: not in Kong's open code).
        "workspaces" => serde_json::json!([{"name": "default"}, {"name": "team-a"}]),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    axum::Json(serde_json::json!({"data": data, "next": null})).into_response()
}

/// Serves a fake node; returns its base URL and the handle to change its behaviour.
pub async fn fake_node(behaviour: NodeBehaviour) -> (String, Shared) {
    let shared = Arc::new(Mutex::new(behaviour));
    let router = Router::new()
        .route("/", get(root))
        .route("/status", get(status))
        .route("/status/ready", get(ready))
        .route("/orders", get(orders))
        .route("/{entity}", get(entities))
        .route("/{workspace}/{entity}", get(workspace_entities))
        .with_state(shared.clone());
    (crate::support::http::serve(router).await, shared)
}

/// The `kong` stand-in script.
pub fn standin() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kong-standin")
        .display()
        .to_string()
}

/// Writes a secret into a file (mode 0600) and returns its path, for `{file: …}`.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Every log file of a run, concatenated.
pub fn all_logs(run_dir: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(run_dir.join("logs")) {
        for entry in entries.flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

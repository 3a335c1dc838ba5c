//! A lab node's proxy port: Kong's routing, key-auth and response headers in front of a
//! simulated upstream that names the node and cluster that served it.
//!
//! Routes (service = route name): `/orders`, `/users` (public), `/secure` (key-auth: 401
//! `{"message":"No API key found in request"}` without an `apikey` header, 401 with a wrong
//! one, 200 with [`DEMO_API_KEY`]). Anything else: 404 `no Route matched with those values`,
//! not counted (Kong's exporter skips requests without a route). Injected faults: an error
//! ratio (Kong's own 500) and extra upstream latency.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::kong::types::Message;
use crate::plan::version::KongVersion;

use super::facts;
use super::lab::NodeCtx;
use super::metrics::{RequestKey, RequestRecord};

/// The key the lab's `demo` consumer authenticates with on `/secure`.
pub const DEMO_API_KEY: &str = "kongup-demo-key";

/// A route of the lab's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabRoute {
    pub name: &'static str,
    pub path: &'static str,
    pub key_auth: bool,
}

pub const ROUTES: &[LabRoute] = &[
    LabRoute {
        name: "orders",
        path: "/orders",
        key_auth: false,
    },
    LabRoute {
        name: "users",
        path: "/users",
        key_auth: false,
    },
    LabRoute {
        name: "secure",
        path: "/secure",
        key_auth: true,
    },
];

/// The upstream's answer: who served the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UpstreamEcho {
    pub node: String,
    pub cluster: String,
    pub version: String,
    pub service: String,
    pub route: String,
    pub method: String,
    pub path: String,
    /// The authenticated consumer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

pub fn router(ctx: NodeCtx) -> Router {
    Router::new().fallback(proxy).with_state(ctx)
}

fn route_for(path: &str) -> Option<&'static LabRoute> {
    ROUTES.iter().find(|r| {
        path == r.path
            || path
                .strip_prefix(r.path)
                .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
    })
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(bytes),
    )
        .into_response()
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Headers Kong adds to an answer it produced itself (no upstream).
fn kong_answer(version: KongVersion, mut response: Response, latency_ms: u64) -> Response {
    let headers = response.headers_mut();
    set(headers, "x-kong-response-latency", &latency_ms.to_string());
    set(headers, "server", &facts::server_tokens(version));
    if facts::sends_request_id(version) {
        set(headers, "x-kong-request-id", &request_id());
    }
    response
}

fn request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

async fn proxy(
    State(ctx): State<NodeCtx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let _request = ctx.node.counters.request_started();
    let started = Instant::now();
    let node = &ctx.node;
    let version = node.spec.version;

    let Some(route) = route_for(uri.path()) else {
        let body = Message {
            message: "no Route matched with those values".into(),
        };
        return kong_answer(version, json_response(StatusCode::NOT_FOUND, &body), 0);
    };

    let kong_ms: u64 = rand::random_range(0..=2);
    let faults = ctx.lab.faults().cluster(node.spec.cluster).to_owned();
    let record = |code: u16, source: &'static str, upstream_ms: Option<u64>| RequestRecord {
        key: RequestKey {
            service: route.name.to_string(),
            route: route.name.to_string(),
            code,
            source,
            consumer: String::new(),
        },
        request_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        upstream_ms,
        kong_ms,
    };

    let mut consumer = None;
    if route.key_auth {
        let failure = match headers.get("apikey").map(|v| v.to_str().unwrap_or("")) {
            None | Some("") => Some("No API key found in request"),
            Some(DEMO_API_KEY) => None,
            Some(_) => Some(facts::key_auth_invalid_key_message(version)),
        };
        if let Some(message) = failure {
            tokio::time::sleep(Duration::from_millis(kong_ms)).await;
            ctx.lab.record(node, &record(401, "kong", None));
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                &Message {
                    message: message.into(),
                },
            );
            set(
                response.headers_mut(),
                "www-authenticate",
                facts::key_auth_www_authenticate(version),
            );
            return kong_answer(version, response, kong_ms);
        }
        consumer = Some("demo".to_string());
    }

    if faults.error_ratio > 0.0 && rand::random_bool(faults.error_ratio.min(1.0)) {
        tokio::time::sleep(Duration::from_millis(kong_ms)).await;
        ctx.lab.record(node, &record(500, "kong", None));
        let body = Message {
            message: "An unexpected error occurred".into(),
        };
        return kong_answer(
            version,
            json_response(StatusCode::INTERNAL_SERVER_ERROR, &body),
            kong_ms,
        );
    }

    let upstream_ms = rand::random_range(5..=20)
        + u64::try_from(faults.extra_latency.as_millis()).unwrap_or(u64::MAX);
    tokio::time::sleep(Duration::from_millis(kong_ms + upstream_ms)).await;
    ctx.lab
        .record(node, &record(200, "service", Some(upstream_ms)));

    let echo = UpstreamEcho {
        node: node.spec.name.clone(),
        cluster: node.spec.cluster.as_str().to_string(),
        version: facts::full_version(version),
        service: route.name.to_string(),
        route: route.name.to_string(),
        method: method.to_string(),
        path: uri.to_string(),
        consumer,
    };
    let mut response = json_response(StatusCode::OK, &echo);
    let h = response.headers_mut();
    set(h, "via", &facts::via_header(version));
    set(h, "server", &facts::server_tokens(version));
    set(h, "x-kong-upstream-latency", &upstream_ms.to_string());
    set(h, "x-kong-proxy-latency", &kong_ms.to_string());
    if facts::sends_request_id(version) {
        set(h, "x-kong-request-id", &request_id());
    }
    response
}

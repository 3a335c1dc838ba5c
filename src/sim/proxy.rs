//! A lab node's proxy port: Kong's routing, key-auth and response headers in front of a
//! simulated upstream that names the node and cluster that served it.
//!
//! The lab's own routes (service = route name): `/orders`, `/users` (public), `/secure`
//! (key-auth: 401 `{"message":"No API key found in request"}` without an `apikey` header, 401
//! with a wrong one, 200 with [`DEMO_API_KEY`] or another key the lab was started with). A
//! lab may be started with more routes (a rehearsal's, fitted to the plan's smoke tests),
//! whose upstream answers as the plan expects ([`UpstreamAnswer`]). The longest matching
//! path wins, as in Kong's router; no match: 404 `no Route matched with those values`, not
//! counted (Kong's exporter skips requests without a route). Injected faults: an error ratio
//! (Kong's own 500) and extra upstream latency. The latency histograms record the simulated
//! latencies (Kong's own plus the upstream's), which the node also sleeps for.

use std::time::Duration;

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

/// A route of the lab's configuration, with the service of the same name behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabRoute {
    pub name: String,
    /// A path prefix, as Kong's `paths`.
    pub path: String,
    /// key-auth on the route: the request headers it reads the key from (Kong's
    /// `config.key_names`); empty: the route is public.
    pub key_names: Vec<String>,
    /// What the route's upstream answers besides the lab's echo.
    pub upstream: UpstreamAnswer,
}

impl LabRoute {
    fn lab_own(name: &str, key_auth: bool) -> LabRoute {
        LabRoute {
            name: name.to_string(),
            path: format!("/{name}"),
            key_names: if key_auth {
                vec!["apikey".to_string()]
            } else {
                Vec::new()
            },
            upstream: UpstreamAnswer::default(),
        }
    }

    pub fn key_auth(&self) -> bool {
        !self.key_names.is_empty()
    }
}

/// How a route's upstream answers: the lab's echo ([`UpstreamEcho`]) with this status,
/// these headers, and these texts after the echo. The lab's own routes answer a plain 200
/// echo; a rehearsal's routes stand in for the operator's services, whose answers the lab
/// cannot know, with what the plan's smoke tests expect of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Each on a line of its own after the echo, unless the echo already holds it.
    pub body_texts: Vec<String>,
}

impl Default for UpstreamAnswer {
    fn default() -> Self {
        UpstreamAnswer {
            status: 200,
            headers: Vec::new(),
            body_texts: Vec::new(),
        }
    }
}

/// The lab's own routes: what the traffic generator and the demo plans' smoke tests use.
pub fn lab_routes() -> Vec<LabRoute> {
    vec![
        LabRoute::lab_own("orders", false),
        LabRoute::lab_own("users", false),
        LabRoute::lab_own("secure", true),
    ]
}

/// The routes of a lab started with `extra` ones: those first, then the lab's own whose
/// path none of them has (an extra route on `/orders` replaces the lab's).
pub fn routes_with(extra: &[LabRoute]) -> Vec<LabRoute> {
    let mut routes = extra.to_vec();
    routes.extend(
        lab_routes()
            .into_iter()
            .filter(|own| extra.iter().all(|r| r.path != own.path)),
    );
    routes
}

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

/// The route whose path is the longest prefix of `path` (Kong's router prefers the longest
/// plain path).
pub fn route_for<'a>(routes: &'a [LabRoute], path: &str) -> Option<&'a LabRoute> {
    routes
        .iter()
        .filter(|r| {
            path == r.path
                || r.path.ends_with('/') && path.starts_with(r.path.as_str())
                || path
                    .strip_prefix(r.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|r| r.path.len())
}

/// The key-auth key a request carries: the first of the route's key headers it has.
fn presented_key<'a>(headers: &'a HeaderMap, key_names: &[String]) -> Option<&'a str> {
    key_names
        .iter()
        .find_map(|name| headers.get(name.as_str()))
        .map(|v| v.to_str().unwrap_or(""))
}

/// The body of an upstream answer: the echo, then each text the echo does not hold.
fn upstream_body(echo: &UpstreamEcho, answer: &UpstreamAnswer) -> Vec<u8> {
    let mut body = serde_json::to_string(echo).unwrap_or_default();
    for text in &answer.body_texts {
        if !body.contains(text.as_str()) {
            body.push('\n');
            body.push_str(text);
        }
    }
    body.into_bytes()
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
    let node = &ctx.node;
    let version = node.spec.version;

    let Some(route) = route_for(&ctx.lab.routes, uri.path()) else {
        let body = Message {
            message: "no Route matched with those values".into(),
        };
        return kong_answer(version, json_response(StatusCode::NOT_FOUND, &body), 0);
    };

    let kong_ms: u64 = rand::random_range(0..=2);
    let faults = ctx.lab.faults().cluster(node.spec.cluster).to_owned();
    let record = |code: u16, source: &'static str, upstream_ms: Option<u64>| RequestRecord {
        key: RequestKey {
            service: route.name.clone(),
            route: route.name.clone(),
            code,
            source,
            consumer: String::new(),
        },
        // The simulated latency, not the wall clock: a loaded machine's scheduling delay is
        // not the simulated cluster's, and it made Y's p99 gate fail at random in rehearsals.
        request_ms: kong_ms + upstream_ms.unwrap_or(0),
        upstream_ms,
        kong_ms,
    };

    let mut consumer = None;
    if route.key_auth() {
        let failure = match presented_key(&headers, &route.key_names) {
            None | Some("") => Some("No API key found in request"),
            Some(key) if ctx.lab.accepts_key(key) => None,
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
    let answer = &route.upstream;
    ctx.lab
        .record(node, &record(answer.status, "service", Some(upstream_ms)));

    let echo = UpstreamEcho {
        node: node.spec.name.clone(),
        cluster: node.spec.cluster.as_str().to_string(),
        version: facts::full_version(version),
        service: route.name.clone(),
        route: route.name.clone(),
        method: method.to_string(),
        path: uri.to_string(),
        consumer,
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(upstream_body(&echo, answer)),
    )
        .into_response();
    let h = response.headers_mut();
    // The upstream's own headers first: Kong's below replace any of the same name.
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(name, value);
        }
    }
    set(h, "via", &facts::via_header(version));
    set(h, "server", &facts::server_tokens(version));
    set(h, "x-kong-upstream-latency", &upstream_ms.to_string());
    set(h, "x-kong-proxy-latency", &kong_ms.to_string());
    if facts::sends_request_id(version) {
        set(h, "x-kong-request-id", &request_id());
    }
    response
}

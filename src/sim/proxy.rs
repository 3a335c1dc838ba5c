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
//!
//! Kong's answers are its version's (`facts`): the 404's cjson body on 2.8 and error
//! template from 3.0, `kong.response.error`'s template for key-auth's 401 and Kong's 500
//! (with `request_id` from 3.5), `X-Kong-Request-Id` from 3.5, `Via: kong/<v>` before 3.8
//! and `1.1 kong/<v>` from 3.8 on proxied answers, `Server: kong/<v>` on Kong's own answers
//! (and, from 3.8, on proxied ones whose upstream sent none; nginx's `openresty` before),
//! and the latency headers (kong/runloop/handler.lua `header_filter`, kong/constants.lua
//! `HEADERS`; tests/fixtures/kong/*/proxy_404.http).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::plan::version::KongVersion;

use super::facts;
use super::lab::NodeCtx;
use super::metrics::{RequestKey, RequestRecord};

/// key-auth's 401 message when the request carries no key (kong/plugins/key-auth/
/// handler.lua:32@3.4.2).
const NO_KEY: &str = "No API key found in request";

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

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// An answer Kong produced itself (no upstream), `body` built with the request's id, with
/// the headers Kong adds to those.
fn kong_answer(
    version: KongVersion,
    status: StatusCode,
    body: impl FnOnce(&str) -> String,
    latency_ms: u64,
) -> Response {
    let id = request_id();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(body(&id)),
    )
        .into_response();
    let headers = response.headers_mut();
    set(headers, "x-kong-response-latency", &latency_ms.to_string());
    set(headers, "server", &facts::server_tokens(version));
    if facts::sends_request_id(version) {
        set(headers, "x-kong-request-id", &id);
    }
    response
}

/// `$kong_request_id`: 32 hex digits.
fn request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// About what a request takes on the wire: its request line and headers.
fn request_bytes(method: &Method, uri: &Uri, headers: &HeaderMap) -> u64 {
    let head: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (method.as_str().len() + uri.to_string().len() + 12 + head) as u64
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
        return kong_answer(
            version,
            StatusCode::NOT_FOUND,
            |id| facts::no_route_body(version, id),
            0,
        );
    };
    let ingress = request_bytes(&method, &uri, &headers);

    let kong_ms: u64 = rand::random_range(0..=2);
    let faults = {
        let all = ctx.lab.faults();
        let mut faults = all.cluster(node.spec.cluster).to_owned();
        if let Some(ratio) = all.node_errors.get(&node.spec.name) {
            faults.error_ratio = faults.error_ratio.max(*ratio);
        }
        faults
    };
    let record = |code: u16, source: &'static str, upstream_ms: Option<u64>, egress: usize| {
        RequestRecord {
            key: RequestKey {
                service: route.name.clone(),
                route: route.name.clone(),
                code,
                source,
                consumer: String::new(),
            },
            // The simulated latency, not the wall clock: a loaded machine's scheduling delay
            // is not the simulated cluster's, and it made Y's p99 gate fail at random in
            // rehearsals.
            request_ms: kong_ms + upstream_ms.unwrap_or(0),
            upstream_ms,
            kong_ms,
            request_bytes: ingress,
            // The body and about as much again for the status line and headers.
            response_bytes: (egress + 200) as u64,
        }
    };

    let mut consumer = None;
    if route.key_auth() {
        let failure = match presented_key(&headers, &route.key_names) {
            None | Some("") => Some(NO_KEY),
            Some(key) if ctx.lab.accepts_key(key) => None,
            Some(_) => Some(facts::key_auth_invalid_key_message(version)),
        };
        if let Some(message) = failure {
            tokio::time::sleep(Duration::from_millis(kong_ms)).await;
            let mut response = kong_answer(
                version,
                StatusCode::UNAUTHORIZED,
                |id| facts::error_body(version, message, id),
                kong_ms,
            );
            ctx.lab
                .record(node, &record(401, "kong", None, body_len(&response)));
            // Before 3.7 only a missing key gets the challenge (handler.lua:169@3.6.0); from
            // 3.7 every 401 does (handler.lua:104-105@3.7.0).
            if message == NO_KEY || facts::key_auth_www_authenticate(version) == "Key" {
                set(
                    response.headers_mut(),
                    "www-authenticate",
                    facts::key_auth_www_authenticate(version),
                );
            }
            return response;
        }
        consumer = Some("demo".to_string());
    }

    if faults.error_ratio > 0.0 && rand::random_bool(faults.error_ratio.min(1.0)) {
        tokio::time::sleep(Duration::from_millis(kong_ms)).await;
        // Kong.handle_error's answer to a failure inside Kong (kong/init.lua).
        let response = kong_answer(
            version,
            StatusCode::INTERNAL_SERVER_ERROR,
            |id| facts::error_body(version, "An unexpected error occurred", id),
            kong_ms,
        );
        ctx.lab
            .record(node, &record(500, "kong", None, body_len(&response)));
        return response;
    }

    let upstream_ms = rand::random_range(5..=20)
        + u64::try_from(faults.extra_latency.as_millis()).unwrap_or(u64::MAX);
    tokio::time::sleep(Duration::from_millis(kong_ms + upstream_ms)).await;
    let answer = &route.upstream;

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
    let body = upstream_body(&echo, answer);
    ctx.lab.record(
        node,
        &record(answer.status, "service", Some(upstream_ms), body.len()),
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from(body),
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
    if !h.contains_key(header::SERVER) {
        set(h, "server", &facts::proxied_server_header(version));
    }
    set(h, "x-kong-upstream-latency", &upstream_ms.to_string());
    set(h, "x-kong-proxy-latency", &kong_ms.to_string());
    if facts::sends_request_id(version) {
        set(h, "x-kong-request-id", &request_id());
    }
    response
}

/// The length of a response's body, known for the lab's own bodies.
fn body_len(response: &Response) -> usize {
    use axum::body::HttpBody;
    response
        .body()
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

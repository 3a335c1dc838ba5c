//! Smoke tests: the plan's requests through every proxy of Y (traditional nodes and data
//! planes with a `proxy_url`; in a plan that rolls in waves, the first wave's), each checked for status, headers and a body substring. One
//! log line per test per node says what passed or what differed; credential headers are
//! read from their sources when the step runs and never shown.

use std::sync::Arc;

use super::{KongAccess, cluster_nodes};
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::kong::client::join;
use crate::kong::http::{BodyError, BodyLimit, install_crypto_provider, read_body};
use crate::plan::model::{Node, Plan, Role, SmokeTest, TlsOptions};
use crate::plan::steps::{ClusterSide, Step};
use crate::plan::waves::waves;
use crate::secrets::Secret;

pub struct SmokeTests {
    access: Arc<KongAccess>,
}

impl SmokeTests {
    pub fn new(access: Arc<KongAccess>) -> SmokeTests {
        SmokeTests { access }
    }
}

/// Y's nodes that proxy: traditional nodes and data planes with a proxy URL. In a plan
/// that rolls in waves the staging tests follow the first wave's start (the canary), so
/// only that wave's nodes of Y's fleet are up to test: the others are not started yet.
fn proxies(plan: &Plan) -> Vec<(&Node, &str)> {
    let waves = waves(plan);
    let canary = waves.first().map(|w| &w.y_nodes);
    cluster_nodes(plan, ClusterSide::Y)
        .iter()
        .filter(|n| matches!(n.role, Role::Traditional | Role::DataPlane))
        .filter(|n| canary.is_none_or(|canary| canary.contains(&n.name)))
        .filter_map(|n| n.proxy_url.as_deref().map(|url| (n, url)))
        .collect()
}

fn expectation(test: &SmokeTest) -> String {
    let mut parts = vec![format!("status {}", test.expect_status)];
    for (name, value) in &test.expect_headers {
        parts.push(format!("{name}: {value}"));
    }
    if let Some(body) = &test.expect_body_contains {
        parts.push(format!("a body containing {body:?}"));
    }
    parts.join(", ")
}

/// The proxies' HTTP client: the plan's CA and `insecure` apply (proxies usually share the
/// Admin API's CA); redirects are not followed, so a 301 is seen as a 301.
fn http_client(tls: &TlsOptions, timeout: std::time::Duration) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kongup/", env!("CARGO_PKG_VERSION"), " smoke-test"));
    if let Some(ca_file) = &tls.ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|e| format!("cannot read admin.tls.ca_file {}: {e}", ca_file.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("admin.tls.ca_file {} is not PEM: {e}", ca_file.display()))?;
        builder = builder.tls_certs_merge(certs);
    }
    if tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// One test through one proxy: `Ok` with the status when it passed, `Err` with what differed.
async fn run_one(
    client: &reqwest::Client,
    base: &str,
    test: &SmokeTest,
    secret_headers: &[(String, Secret)],
) -> Result<u16, String> {
    let method = reqwest::Method::from_bytes(test.method.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", test.method))?;
    let url = join(base, &test.path);
    let mut request = client.request(method, &url);
    for (name, value) in &test.headers {
        request = request.header(name, value);
    }
    for (name, value) in secret_headers {
        let mut value = reqwest::header::HeaderValue::from_str(value.expose()).map_err(|_| {
            format!("the secret of header {name} holds characters a header cannot carry")
        })?;
        value.set_sensitive(true);
        request = request.header(name, value);
    }
    if let Some(body) = &test.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer from {url} in time")
        } else {
            format!("cannot reach {url}: {}", error_chain(&e))
        }
    })?;
    let status = response.status().as_u16();
    let mut differences = Vec::new();
    if status != test.expect_status {
        differences.push(format!("status {status} (expected {})", test.expect_status));
    }
    for (name, expected) in &test.expect_headers {
        match response.headers().get(name.as_str()) {
            None => differences.push(format!("no {name} header (expected {expected:?})")),
            Some(value) => {
                let value = String::from_utf8_lossy(value.as_bytes());
                if value != expected.as_str() {
                    differences.push(format!("{name}: {value:?} (expected {expected:?})"));
                }
            }
        }
    }
    if let Some(wanted) = &test.expect_body_contains {
        match read_body(response, BodyLimit::SMOKE_TEST).await {
            Ok(body) => {
                let body = String::from_utf8_lossy(&body);
                if !body.contains(wanted.as_str()) {
                    differences.push(format!(
                        "the body does not contain {wanted:?} (it starts {:?})",
                        body.chars().take(120).collect::<String>()
                    ));
                }
            }
            Err(BodyError::Read(e)) => {
                differences.push(format!("cannot read the body: {}", error_chain(&e)))
            }
            Err(too_large) => differences.push(too_large.to_string()),
        }
    }
    if differences.is_empty() {
        Ok(status)
    } else {
        Err(differences.join("; "))
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[async_trait::async_trait]
impl StepAction for SmokeTests {
    fn describe(&self, _step: &Step, plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        if plan.smoke_tests.is_empty() {
            return vec!["the plan has no smoke tests: test Y by hand, then confirm".to_string()];
        }
        let targets = proxies(plan);
        if targets.is_empty() {
            return vec![
                "no proxy to test: none of Y's traditional nodes or data planes has a proxy_url"
                    .to_string(),
            ];
        }
        let mut lines = vec![format!(
            "send each smoke test through Y's proxies {} (timeout {} a request)",
            targets
                .iter()
                .map(|(n, url)| format!("{} ({url})", n.name))
                .collect::<Vec<_>>()
                .join(", "),
            humantime::format_duration(self.access.waits.smoke_request)
        )];
        for test in &plan.smoke_tests {
            let secret = if test.secret_headers.is_empty() {
                String::new()
            } else {
                format!(
                    " with {} from their secret sources",
                    test.secret_headers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            lines.push(format!(
                "{}: {} {}{secret}; expect {}",
                test.name,
                test.method,
                test.path,
                expectation(test)
            ));
        }
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let plan = ctx.plan.clone();
        if plan.smoke_tests.is_empty() {
            ctx.log.note(
                "the plan has no smoke tests: your confirm records that you tested Y by hand",
            );
            return Ok(StepOutcome::succeeded(
                "done by hand: the plan has no smoke tests",
            ));
        }
        let targets = proxies(&plan);
        if targets.is_empty() {
            return Ok(StepOutcome::failed(
                "none of Y's traditional nodes or data planes has a proxy_url: kongup has no \
                 proxy to send the smoke tests through; add proxy_url to Y's nodes, or test by \
                 hand and skip this step with a reason",
            ));
        }
        let mut secrets: Vec<Vec<(String, Secret)>> = Vec::new();
        for test in &plan.smoke_tests {
            let mut resolved = Vec::new();
            for (name, source) in &test.secret_headers {
                match crate::secrets::resolve(source) {
                    Ok(value) => resolved.push((name.clone(), value)),
                    Err(e) => {
                        return Ok(StepOutcome::failed(format!(
                            "smoke test {:?}, header {name}: {e}",
                            test.name
                        )));
                    }
                }
            }
            secrets.push(resolved);
        }
        let client = match http_client(&plan.admin.tls, self.access.waits.smoke_request) {
            Ok(client) => client,
            Err(e) => return Ok(StepOutcome::failed(e)),
        };
        let total = targets.len() * plan.smoke_tests.len();
        let mut failures = Vec::new();
        for (node, base) in &targets {
            for (test, secret_headers) in plan.smoke_tests.iter().zip(&secrets) {
                if ctx.cancel.is_cancelled() {
                    return Ok(StepOutcome::failed("aborted by the operator"));
                }
                let label = format!("{:?} via y/{}", test.name, node.name);
                match run_one(&client, base, test, secret_headers).await {
                    Ok(status) => ctx.log.note(&format!(
                        "PASS {label}: {} {} answered {status}",
                        test.method, test.path
                    )),
                    Err(what) => {
                        ctx.log.note(&format!(
                            "FAIL {label}: {} {}: {what}",
                            test.method, test.path
                        ));
                        failures.push(format!("{label}: {what}"));
                    }
                }
            }
        }
        Ok(if failures.is_empty() {
            StepOutcome::succeeded(format!(
                "all {total} smoke test run(s) passed ({} test(s) through {} proxy(ies))",
                plan.smoke_tests.len(),
                targets.len()
            ))
        } else {
            StepOutcome::failed(format!(
                "{} of {total} smoke test run(s) failed: {}. Look over the upgrade \
                 considerations and breaking changes before going on",
                failures.len(),
                failures.join("; ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A proxy that answers 200 with a body it says is 1.5 GB and never sends.
    async fn huge_proxy() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // The request first (it has no body), then the answer's head.
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.ends_with(b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1500000000\r\n\r\nok")
                        .await;
                    std::future::pending::<()>().await;
                });
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_a_difference_said_with_its_size() {
        let base = huge_proxy().await;
        let client =
            http_client(&TlsOptions::default(), std::time::Duration::from_secs(10)).unwrap();
        let test = SmokeTest {
            name: "big".into(),
            method: "GET".into(),
            path: "/".into(),
            headers: Default::default(),
            secret_headers: Default::default(),
            body: None,
            expect_status: 200,
            expect_headers: Default::default(),
            expect_body_contains: Some("ok".into()),
        };
        let differences = run_one(&client, &base, &test, &[]).await.unwrap_err();
        assert!(
            differences.contains("a smoke test's answer larger than kongup reads (4 MiB;")
                && differences.contains("it announced 1.4 GiB"),
            "{differences}"
        );
    }
}

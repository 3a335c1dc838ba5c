//! The monitor and `kongup scrape` against small HTTP servers on loopback that serve
//! Kong-format expositions whose counters move between scrapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use kongup::kong::http::HttpClientError;
use kongup::metrics::monitor::{self, MonitorConfig, ScrapeTarget};
use kongup::metrics::{MetricsSnapshot, Verdict};
use kongup::plan::model::{FailAction, GateSpec, TlsOptions};
use kongup::plan::steps::ClusterSide;
use tokio::net::TcpListener;

const DEADLINE: Duration = Duration::from_secs(20);

/// The client the monitor and `kongup scrape` use, with one timeout for both limits.
fn http_client(tls: &TlsOptions, timeout: Duration) -> Result<reqwest::Client, HttpClientError> {
    kongup::kong::http::client(tls, timeout, timeout).map(|(client, _)| client)
}

/// `ok` 200s and `errors` 500s so far, and as many fast requests in the histogram.
fn kong_text(ok: u64, errors: u64) -> String {
    let total = ok + errors;
    format!(
        "# TYPE kong_http_requests_total counter\n\
         kong_http_requests_total{{service=\"s\",route=\"r\",code=\"200\",source=\"service\",workspace=\"default\",consumer=\"\"}} {ok}\n\
         kong_http_requests_total{{service=\"s\",route=\"r\",code=\"500\",source=\"service\",workspace=\"default\",consumer=\"\"}} {errors}\n\
         # TYPE kong_nginx_connections_total gauge\n\
         kong_nginx_connections_total{{node_id=\"n\",subsystem=\"http\",state=\"active\"}} 4\n\
         # TYPE kong_request_latency_ms histogram\n\
         kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"00010.0\"}} {total}\n\
         kong_request_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"+Inf\"}} {total}\n\
         # TYPE kong_kong_latency_ms histogram\n\
         kong_kong_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"00001.0\"}} {total}\n\
         kong_kong_latency_ms_bucket{{service=\"s\",route=\"r\",workspace=\"default\",le=\"+Inf\"}} {total}\n\
         kong_datastore_reachable 1\n"
    )
}

async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// A node whose counters grow by `ok` and `errors` on every scrape.
async fn growing_node(
    ok: u64,
    errors: u64,
    token: Option<&'static str>,
) -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let counter = Arc::clone(&counter);
            async move {
                if let Some(expected) = token
                    && headers
                        .get("kong-admin-token")
                        .and_then(|v| v.to_str().ok())
                        != Some(expected)
                {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                (StatusCode::OK, kong_text(ok * n, errors * n))
            }
        }),
    );
    (serve(router).await, hits)
}

/// A port nothing listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

fn assert_close(value: Option<f64>, expected: f64) {
    let value = value.expect("a figure");
    assert!((value - expected).abs() < 1e-9, "{value} is not {expected}");
}

fn target(node: &str, base: Option<&str>) -> ScrapeTarget {
    ScrapeTarget {
        node: node.to_string(),
        url: base.map(|b| format!("{b}/metrics")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_scrapes_both_clusters_and_judges_y() {
    let (x1, _) = growing_node(100, 0, None).await;
    let (y1, y1_hits) = growing_node(90, 10, Some("s3cret-token")).await;
    let garbage = serve(Router::new().route(
        "/metrics",
        get(|| async { "<html><body>502 Bad Gateway</body></html>" }),
    ))
    .await;
    let closed = closed_port().await;

    let gates = GateSpec {
        window: Duration::from_secs(30),
        max_error_ratio: Some(0.05),
        max_p99_ms: Some(500.0),
        max_error_ratio_delta: None,
        max_p99_ratio: None,
        min_requests: 1,
        consecutive_breaches: 2,
        on_fail: FailAction::Rollback,
    };
    let config = MonitorConfig {
        x: vec![target("x1", Some(&x1)), target("x2", None)],
        y: vec![
            target("y1", Some(&y1)),
            target("y2", Some(&garbage)),
            target("y3", Some(&closed)),
        ],
        interval: Duration::from_millis(300),
        timeout: Duration::from_secs(3),
        window: gates.window,
        history: Duration::from_secs(600),
        gates: Some(gates),
        admin_token: Some("s3cret-token".into()),
    };
    assert!(!format!("{config:?}").contains("s3cret-token"));
    let client = http_client(&TlsOptions::default(), Duration::from_secs(3)).unwrap();
    let handle = monitor::spawn(config, client);
    assert_eq!(handle.on_fail(), Some(FailAction::Rollback));
    let mut verdicts = handle.subscribe_verdicts();

    // Wait for a snapshot with a Y error ratio: two rounds have gone by.
    let mut watch = handle.watch();
    let snapshot: MetricsSnapshot = tokio::time::timeout(DEADLINE, async {
        loop {
            watch.changed().await.unwrap();
            let latest = watch.borrow_and_update().latest().cloned();
            if let Some(s) =
                latest.filter(|s| s.y.error_ratio.is_some() && s.x.error_ratio.is_some())
            {
                return s;
            }
        }
    })
    .await
    .expect("a snapshot with figures for X and Y");

    assert_eq!((snapshot.y.nodes_scraped, snapshot.y.nodes_total), (1, 3));
    let y_errors = snapshot.y.scrape_errors.join("\n");
    assert!(
        y_errors.contains("y2: ") && y_errors.contains("not Prometheus text"),
        "{y_errors}"
    );
    assert!(
        y_errors.contains("y3: ") && y_errors.contains("could not reach"),
        "{y_errors}"
    );
    assert_eq!(snapshot.y.error_ratio, Some(0.1));
    assert_close(snapshot.y.p99_ms, 9.9);
    assert_eq!(snapshot.y.active_connections, Some(4.0));
    assert!(snapshot.y.requests_per_s.is_some_and(|r| r > 0.0));

    assert_eq!((snapshot.x.nodes_scraped, snapshot.x.nodes_total), (1, 2));
    assert_eq!(
        snapshot.x.scrape_errors,
        ["x2: no status_url or admin_url in the plan: nothing to scrape"]
    );
    assert_eq!(snapshot.x.error_ratio, Some(0.0));
    assert!(y1_hits.load(Ordering::SeqCst) >= 2, "y1 accepted the token");

    // 10 % errors against a 5 % gate, two breaches in a row: a failure.
    let fail = tokio::time::timeout(DEADLINE, async {
        loop {
            let v = verdicts.recv().await.unwrap();
            if v.verdict == Verdict::Fail {
                return v;
            }
        }
    })
    .await
    .expect("a failing verdict");
    assert!(
        fail.checks
            .contains(&"Y 5xx 10.00% > 5.00%: BREACH".to_string()),
        "{:?}",
        fail.checks
    );
    assert!(fail.consecutive_breaches >= 2);

    // A new stage forgets the breaches: the count starts again at 1.
    handle.reset_gates();
    tokio::time::timeout(DEADLINE, async {
        loop {
            if verdicts.recv().await.unwrap().consecutive_breaches == 1 {
                return;
            }
        }
    })
    .await
    .expect("a verdict counting from 1 after reset_gates");

    let history = handle.history();
    assert!(history.len() >= 3);
    assert!(
        history
            .series(ClusterSide::Y, |f| f.error_ratio)
            .contains(&Some(0.1))
    );

    // Dropping the handle stops the task (and so closes the channel).
    drop(handle);
    tokio::time::timeout(DEADLINE, async { while watch.changed().await.is_ok() {} })
        .await
        .expect("the monitor stops when its handle is dropped");
}

// ---- kongup scrape ----

/// Serves `first` on the first request and `second` on every later one.
async fn two_expositions(first: String, second: String, token: Option<&'static str>) -> String {
    let hits = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let hits = Arc::clone(&hits);
            let (first, second) = (first.clone(), second.clone());
            async move {
                if let Some(expected) = token
                    && headers
                        .get("kong-admin-token")
                        .and_then(|v| v.to_str().ok())
                        != Some(expected)
                {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                match hits.fetch_add(1, Ordering::SeqCst) {
                    0 => (StatusCode::OK, first),
                    _ => (StatusCode::OK, second),
                }
            }
        }),
    );
    serve(router).await
}

async fn kongup(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kongup"));
    command.args(args).kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(DEADLINE, command.output())
        .await
        .expect("kongup scrape finishes")
        .expect("kongup runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_prints_figures_per_endpoint_and_in_total() {
    // A: 300 requests, 3 errors in between; B: status code metrics off, 100 requests.
    let a = two_expositions(kong_text(1000, 0), kong_text(1297, 3), Some("tok-A")).await;
    let b_text = |n: u64| {
        format!(
            "kong_nginx_connections_total{{node_id=\"b\",subsystem=\"http\",state=\"active\"}} 1\n\
             kong_request_latency_ms_bucket{{service=\"s\",le=\"00010.0\"}} 0\n\
             kong_request_latency_ms_bucket{{service=\"s\",le=\"00100.0\"}} {n}\n\
             kong_request_latency_ms_bucket{{service=\"s\",le=\"+Inf\"}} {n}\n"
        )
    };
    let b = two_expositions(b_text(50), b_text(150), None).await;
    let output = kongup(
        &[
            "scrape",
            &a,
            &format!("{b}/metrics"),
            "--interval",
            "500ms",
            "--json",
            "--token-env",
            "KONGUP_TEST_SCRAPE_TOKEN",
        ],
        &[("KONGUP_TEST_SCRAPE_TOKEN", "tok-A")],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!stdout.contains("tok-A"));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    let first = &report["endpoints"][0];
    assert_eq!(first["url"], format!("{a}/metrics"));
    assert_eq!(first["error_ratio"], 0.01);
    assert_close(first["p99_ms"].as_f64(), 9.9);
    // Kong's own latency is all in its first bucket; no upstream histogram was served.
    assert_close(first["kong_p99_ms"].as_f64(), 0.99);
    assert_eq!(first["upstream_p99_ms"], serde_json::Value::Null);
    assert_eq!(first["status_code_metrics"], true);
    assert_eq!(first["latency_metrics"], true);
    // 300 requests over about 0.5 s (the second sample is taken --interval after the first).
    let rate = first["requests_per_s"].as_f64().unwrap();
    assert!((300.0 / 2.5..=300.0 / 0.3).contains(&rate), "{rate}");

    let second = &report["endpoints"][1];
    assert_eq!(second["requests_per_s"], serde_json::Value::Null);
    assert_eq!(second["error_ratio"], serde_json::Value::Null);
    assert_eq!(second["status_code_metrics"], false);
    assert_eq!(second["latency_metrics"], true);
    assert_close(second["p50_ms"].as_f64(), 55.0);
    assert!(second.get("error").is_none());

    let total = &report["total"];
    assert_eq!(total["error_ratio"], 0.01);
    assert_eq!(total["status_code_metrics"], true);
    // 300 fast requests and 100 in (10, 100]: the median is fast.
    assert_close(total["p50_ms"].as_f64(), 200.0 / 300.0 * 10.0);
    let keys: Vec<&str> = total
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "empty_configuration",
            "error_ratio",
            "kong_exporter",
            "kong_p99_ms",
            "latency_metrics",
            "nginx_requests_per_s",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "requests_per_s",
            "status_code_metrics",
            "upstream_p99_ms",
        ]
    );
    assert_eq!(total["kong_exporter"], "3.x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_says_which_endpoint_failed_and_exits_non_zero() {
    let good = two_expositions(kong_text(0, 0), kong_text(95, 5), None).await;
    let closed = closed_port().await;
    let json = kongup(
        &["scrape", &good, &closed, "--interval", "200ms", "--json"],
        &[],
    )
    .await;
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["endpoints"][0]["error_ratio"], 0.05);
    assert!(report["endpoints"][0].get("error").is_none());
    let failed = &report["endpoints"][1];
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("could not reach")
    );
    assert_eq!(failed["requests_per_s"], serde_json::Value::Null);
    assert_eq!(report["total"]["error_ratio"], 0.05);

    // The same without --json: a table, the unknowns as "-", and the reason.
    let good = two_expositions(kong_text(0, 0), kong_text(95, 5), None).await;
    let table = kongup(&["scrape", &good, &closed, "--interval", "200ms"], &[]).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ENDPOINT") && lines[0].contains("P99"),
        "{text}"
    );
    assert!(lines[1].contains("5.00%"), "{text}");
    assert!(
        lines[2].starts_with(&format!("{closed}/metrics")) && lines[2].contains(" - "),
        "{text}"
    );
    assert!(lines[3].starts_with("total"), "{text}");
    assert!(text.contains("not scraped: could not reach"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_without_the_token_variable_says_what_to_set() {
    let output = kongup(
        &[
            "scrape",
            "http://127.0.0.1:9",
            "--token-env",
            "KONGUP_TEST_SURELY_UNSET_TOKEN",
        ],
        &[],
    )
    .await;
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("KONGUP_TEST_SURELY_UNSET_TOKEN"),
        "{stderr}"
    );
}

// ---- TLS, with a real `openssl s_server` ----

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all from it.
fn make_certificates(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=kongup test CA",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        let (key, csr, pem, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.pem"),
            format!("{who}.ext"),
        );
        openssl(
            dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={who}"),
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_reach_a_server_with_a_private_ca_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    std::fs::write(dir.path().join("metrics"), kong_text(10, 0)).unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // -WWW serves the files of its working directory; -Verify 1 demands a client certificate.
    let mut server = tokio::process::Command::new("openssl")
        .args([
            "s_server",
            "-WWW",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-Verify",
            "1",
            "-CAfile",
            "ca.pem",
        ])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_server starts");
    tokio::time::timeout(DEADLINE, async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("s_server listens");

    let url = format!("https://127.0.0.1:{port}/metrics");
    let path = |name: &str| Some(dir.path().join(name));
    let scrape = |tls: TlsOptions| {
        let url = url.clone();
        async move {
            let client = http_client(&tls, Duration::from_secs(5)).map_err(|e| e.to_string())?;
            kongup::metrics::scrape::scrape_node(&client, &url, None, Duration::from_secs(5))
                .await
                .map_err(|e| e.to_string())
        }
    };
    let with_ca_and_cert = TlsOptions {
        ca_file: path("ca.pem"),
        client_cert: path("client.pem"),
        client_key: path("client.key"),
        insecure: false,
    };
    let sample = scrape(with_ca_and_cert.clone())
        .await
        .expect("trusted CA and client certificate");
    assert!(sample.status_code_metrics());

    let untrusted = scrape(TlsOptions {
        ca_file: None,
        ..with_ca_and_cert.clone()
    })
    .await
    .unwrap_err();
    assert!(untrusted.contains("certificate"), "{untrusted}");

    let insecure = TlsOptions {
        ca_file: None,
        insecure: true,
        ..with_ca_and_cert.clone()
    };
    assert!(scrape(insecure).await.is_ok());

    let no_client_cert = TlsOptions {
        client_cert: None,
        client_key: None,
        ..with_ca_and_cert
    };
    assert!(scrape(no_client_cert).await.is_err());

    server.kill().await.unwrap();
}

#[tokio::test]
async fn a_scrape_does_not_follow_a_redirect_and_keeps_the_token_home() {
    let seen = Arc::new(AtomicU64::new(0));
    let counted = seen.clone();
    let elsewhere = serve(Router::new().fallback(move |headers: HeaderMap| {
        let counted = counted.clone();
        async move {
            if headers.contains_key("kong-admin-token") {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            kong_text(1, 0)
        }
    }))
    .await;
    let location = format!("{elsewhere}/metrics");
    let base = serve(Router::new().route(
        "/metrics",
        get(move || {
            let location = location.clone();
            async move {
                (
                    StatusCode::FOUND,
                    [(axum::http::header::LOCATION, location)],
                )
            }
        }),
    ))
    .await;
    let client = http_client(&TlsOptions::default(), Duration::from_secs(3)).unwrap();
    let error = kongup::metrics::scrape::scrape_node(
        &client,
        &format!("{base}/metrics"),
        Some(&"tok-stays-home".into()),
        Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&format!("answered a redirect (302) to {elsewhere}/metrics"))
            && text.contains("point the plan at the final URL"),
        "{text}"
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the token followed the redirect"
    );
}

#[test]
fn tls_files_that_cannot_be_used_say_which_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsOptions {
        ca_file: Some(dir.path().join("nope.pem")),
        ..Default::default()
    };
    let error = http_client(&missing, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("CA file") && error.contains("nope.pem"),
        "{error}"
    );

    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    let not_pem = TlsOptions {
        ca_file: Some(dir.path().join("cert.pem")),
        ..Default::default()
    };
    let error = http_client(&not_pem, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no certificate") && error.contains("cert.pem"),
        "{error}"
    );

    let half = TlsOptions {
        client_cert: Some(dir.path().join("cert.pem")),
        ..Default::default()
    };
    let error = http_client(&half, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(error.contains("client key"), "{error}");
}

#[test]
fn a_node_is_scraped_on_its_status_api_else_its_admin_api() {
    use kongup::plan::model::{Node, Role};
    let node = |admin: Option<&str>, status: Option<&str>| Node {
        name: "kong-1".into(),
        admin_url: admin.map(String::from),
        status_url: status.map(String::from),
        proxy_url: Some("http://10.0.0.1:8000".into()),
        role: Role::Traditional,
        executor: None,
    };
    let both = ScrapeTarget::from_node(&node(
        Some("https://kong-1:8444/"),
        Some("http://kong-1:8100"),
    ));
    assert_eq!(both.url.as_deref(), Some("http://kong-1:8100/metrics"));
    let admin_only = ScrapeTarget::from_node(&node(Some("https://kong-1:8444/"), None));
    assert_eq!(
        admin_only.url.as_deref(),
        Some("https://kong-1:8444/metrics")
    );
    assert_eq!(ScrapeTarget::from_node(&node(None, None)).url, None);
}

//! Every body kongup reads is capped (issue 14, item 6): the one reader
//! (`kong::http::read_body`), and each client that reads through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_LENGTH;
use axum::response::Response;
use axum::routing::get;
use kongup::kong::client::{AdminClient, AdminClientOptions, AdminError};
use kongup::kong::http::{BodyError, BodyLimit, read_body};
use kongup::metrics::scrape::{ScrapeError, scrape_node};

use crate::support::http::serve;

const CHUNK: usize = 64 * 1024;

/// A body that never ends, counting what the server managed to send.
fn endless(sent: Arc<AtomicU64>) -> Body {
    let chunk = bytes_of(CHUNK);
    Body::from_stream(futures::stream::repeat_with(move || {
        sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b'x'; n])
}

/// A body of `n` bytes, sent in chunks, counting what was sent.
fn large(n: usize, sent: Arc<AtomicU64>) -> Body {
    let chunk = bytes_of(CHUNK);
    Body::from_stream(futures::stream::iter((0..n / CHUNK).map(move |_| {
        sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk.clone())
    })))
}

fn endless_route(sent: Arc<AtomicU64>) -> axum::routing::MethodRouter {
    get(move || {
        let sent = sent.clone();
        async move { Response::new(endless(sent)) }
    })
}

/// A server whose `/endless` (and `/endless/`) streams for ever, counting what it sent,
/// and whose `/announced` says 1.5 GB.
async fn server(sent: Arc<AtomicU64>) -> String {
    serve(
        Router::new()
            .route("/endless", endless_route(sent.clone()))
            .route("/endless/", endless_route(sent))
            .route(
                "/announced",
                get(|| async {
                    Response::builder()
                        .header(CONTENT_LENGTH, 1_500_000_000u64)
                        .body(Body::from_stream(futures::stream::pending::<
                            Result<axum::body::Bytes, std::io::Error>,
                        >()))
                        .unwrap()
                }),
            )
            .route("/small", get(|| async { "{\"ok\":true}" }))
            .route(
                "/endless/status-api/status/ready",
                endless_route(Arc::new(AtomicU64::new(0))),
            ),
    )
    .await
}

fn client() -> reqwest::Client {
    let timeout = Duration::from_secs(20);
    kongup::kong::http::client(&Default::default(), timeout, timeout)
        .unwrap()
        .0
}

#[tokio::test]
async fn the_reader_stops_at_its_limit_and_names_the_size_and_the_url() {
    let sent = Arc::new(AtomicU64::new(0));
    let base = server(sent.clone()).await;
    let limit = BodyLimit {
        bytes: 1024 * 1024,
        ..BodyLimit::ADMIN_API
    };

    let response = client()
        .get(format!("{base}/endless"))
        .send()
        .await
        .unwrap();
    let error = read_body(response, limit).await.unwrap_err();
    let BodyError::TooLarge { announced, .. } = &error else {
        panic!("not TooLarge: {error}")
    };
    assert_eq!(*announced, None);
    let message = error.to_string();
    assert!(
        message.contains(&format!("{base}/endless"))
            && message.contains("1 MiB")
            && message.contains("an Admin API answer")
            && message.contains("check that the URL is the Admin API"),
        "{message}"
    );

    // A Content-Length above the limit is refused before a byte is read: the body here
    // never comes, so waiting for it would hang the test to the client's timeout.
    let started = std::time::Instant::now();
    let response = client()
        .get(format!("{base}/announced"))
        .send()
        .await
        .unwrap();
    let message = read_body(response, limit).await.unwrap_err().to_string();
    assert!(message.contains("it announced 1.4 GiB"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let response = client().get(format!("{base}/small")).send().await.unwrap();
    assert_eq!(read_body(response, limit).await.unwrap(), b"{\"ok\":true}");
}

/// What a server may have sent past a cap before the client hung up: the loopback
/// socket's buffers (tcp_wmem and tcp_rmem at most 4 + 32 MiB here) and a chunk.
const IN_FLIGHT: u64 = 40 * 1024 * 1024;

/// `kongup init` on an "Admin API" that answers `GET /` with 200 MiB (the 1.5 GB,
/// scaled): it stops at 16 MiB and says so, with the URL.
#[tokio::test(flavor = "multi_thread")]
async fn init_stops_reading_an_admin_api_answer_at_16_mib() {
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    let base = serve(Router::new().route(
        "/",
        get(move || {
            let sent = counted.clone();
            async move { Response::new(large(200 * 1024 * 1024, sent)) }
        }),
    ))
    .await;
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("kongup")
            .unwrap()
            .args(["init", "--admin", &base, "--timeout", "30"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sent an Admin API answer larger than kongup reads (16 MiB)")
            && stderr.contains("127.0.0.1"),
        "{stderr}"
    );
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent <= 16 * 1024 * 1024 + IN_FLIGHT,
        "the server sent {sent} bytes before kongup hung up"
    );
}

fn admin_client() -> AdminClient {
    AdminClient::new(AdminClientOptions {
        read_attempts: 1,
        timeout: Duration::from_secs(20),
        ..AdminClientOptions::default()
    })
    .unwrap()
    .0
}

/// An endless chunked answer (the issue's: it grew to 3 GB) ends at the cap, for the
/// Admin API and, at 1 MiB, for the Status API.
#[tokio::test(flavor = "multi_thread")]
async fn admin_and_status_answers_that_never_end_stop_at_their_cap() {
    let sent = Arc::new(AtomicU64::new(0));
    let base = server(sent.clone()).await;
    let error = admin_client()
        .node_info(&format!("{base}/endless"))
        .await
        .unwrap_err();
    assert!(matches!(error, AdminError::Body(_)), "{error:?}");
    assert!(error.to_string().contains("(16 MiB)"), "{error}");
    assert!(sent.swap(0, Ordering::Relaxed) <= 16 * 1024 * 1024 + IN_FLIGHT);

    // `/status/ready` lives on the Status API: its cap is 1 MiB.
    let error = admin_client()
        .readiness(&format!("{base}/endless/status-api"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("sent a Status API answer larger than kongup reads (1 MiB)"),
        "{message}"
    );
    assert!(sent.load(Ordering::Relaxed) <= 1024 * 1024 + IN_FLIGHT);
}

/// `/metrics` stops at 32 MiB and says so, with the URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_body_that_never_ends_stops_at_32_mib() {
    let sent = Arc::new(AtomicU64::new(0));
    let base = server(sent.clone()).await;
    let url = format!("{base}/endless");
    let client = kongup::kong::http::client(
        &Default::default(),
        Duration::from_secs(20),
        Duration::from_secs(5),
    )
    .unwrap()
    .0;
    let error = scrape_node(&client, &url, None, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(matches!(error, ScrapeError::Body(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&url)
            && message.contains("a /metrics exposition larger than kongup reads (32 MiB)"),
        "{message}"
    );
    assert!(sent.load(Ordering::Relaxed) <= 32 * 1024 * 1024 + IN_FLIGHT);
}

/// What kongup reads of a tool it runs (decK, pg_restore --list) is capped too: a tool
/// that never stops printing lines (`yes`) is stopped past 16 MiB, and the error says
/// which stream. (A single endless line is cut at the process path's line cap.)
#[tokio::test]
async fn a_tool_that_prints_too_much_is_stopped() {
    use kongup::kong::process::{ToolError, run_tool};
    let started = std::time::Instant::now();
    let error = match run_tool(
        std::path::Path::new("yes"),
        &["k".repeat(1000).into()],
        &[],
        Duration::from_secs(60),
        "deck gateway dump of http://kong:8001",
    )
    .await
    {
        // Not `expect_err`: on failure it would print the 200 MiB it read.
        Ok(output) => panic!(
            "a tool that printed {} bytes was read whole",
            output.stdout.len()
        ),
        Err(error) => error,
    };
    assert!(
        matches!(error, ToolError::OutputTooLarge { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message
            .contains("deck gateway dump of http://kong:8001 printed more than 16 MiB on stdout"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

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
use kongup::kong::http::{BodyError, BodyLimit, read_body};

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

/// A server whose `/endless` streams for ever and whose `/announced` says 1.5 GB.
async fn server(sent: Arc<AtomicU64>) -> String {
    serve(
        Router::new()
            .route(
                "/endless",
                get(move || {
                    let sent = sent.clone();
                    async move { Response::new(endless(sent)) }
                }),
            )
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
            .route("/small", get(|| async { "{\"ok\":true}" })),
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

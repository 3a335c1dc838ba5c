//! The Admin API client against small servers that answer as Kong does (and as Kong does
//! not): every error an operator can meet has its message checked here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::http::{node_info, refused_url, serve};
use crate::support::tls;
use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use kongup::kong::client::{AdminClient, AdminClientOptions, AdminError, Readiness};
use kongup::kong::types::{DataPlane, DataPlaneList, NOT_A_CONTROL_PLANE, SyncStatus};
use kongup::plan::model::{SecretRef, TlsOptions};
use serde_json::json;

fn client() -> AdminClient {
    client_with(AdminClientOptions {
        retry_delay: Duration::from_millis(10),
        ..AdminClientOptions::default()
    })
}

fn client_with(options: AdminClientOptions) -> AdminClient {
    let (client, warnings) = AdminClient::new(options).expect("build the client");
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    client
}

fn data_plane(id: &str, version: &str, sync: SyncStatus) -> DataPlane {
    DataPlane {
        id: id.into(),
        ip: "10.0.0.5".into(),
        hostname: format!("{id}-host"),
        version: version.into(),
        sync_status: sync,
        config_hash: "a9a166c59873245db8f1a747ba9a80a7".into(),
        last_seen: 1_700_000_000,
        updated_at: None,
        labels: Default::default(),
        cert_details: None,
        ttl: None,
    }
}

#[tokio::test]
async fn reads_node_info_status_and_metrics() {
    let base = serve(
        Router::new()
            .route(
                "/",
                get(|| async { Json(node_info("3.9.1", "traditional", "postgres")) }),
            )
            .route(
                "/status",
                get(|| async {
                    Json(
                        json!({"server":{"connections_active":1,"connections_reading":0,
                    "connections_writing":1,"connections_waiting":0,"connections_accepted":10,
                    "connections_handled":10,"total_requests":12},"database":{"reachable":true}}),
                    )
                }),
            )
            .route("/metrics", get(|| async { "kong_datastore_reachable 1\n" })),
    )
    .await;
    let client = client();
    let info = client.node_info(&base).await.unwrap();
    assert_eq!(info.version, "3.9.1");
    assert_eq!(info.configuration.role, "traditional");
    let status = client.node_status(&base).await.unwrap();
    assert_eq!(status.server.total_requests, 12);
    assert_eq!(status.database.map(|d| d.reachable), Some(true));
    assert_eq!(
        client.metrics(&base).await.unwrap(),
        "kong_datastore_reachable 1\n"
    );
}

#[tokio::test]
async fn connection_refused_says_so_and_names_the_url() {
    let url = refused_url();
    let error = client().node_info(&url).await.unwrap_err();
    assert!(
        matches!(error, AdminError::ConnectionRefused { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("8001"), "{text}");
}

#[tokio::test]
async fn unauthorized_names_the_token_source_never_the_value() {
    let base = serve(Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            let token = headers.get("kong-admin-token").and_then(|v| v.to_str().ok());
            if token == Some("right-token") {
                (StatusCode::OK, Json(json!(node_info("3.4.3.12", "traditional", "postgres"))))
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"message": "Invalid credentials. Token or User credentials required"})),
                )
            }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("token");
    std::fs::write(&wrong, "wrong-token-value\n").unwrap();
    let error = client_with(AdminClientOptions {
        token: Some(SecretRef::File(wrong.clone())),
        ..AdminClientOptions::default()
    })
    .node_info(&base)
    .await
    .unwrap_err();
    assert!(
        matches!(error, AdminError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!("file {}", wrong.display())),
        "{text}"
    );
    assert!(text.contains("Invalid credentials"), "{text}");
    assert!(
        !text.contains("wrong-token-value"),
        "the token leaked: {text}"
    );

    // Without a token the message says none was sent.
    let text = client().node_info(&base).await.unwrap_err().to_string();
    assert!(text.contains("sent no Kong-Admin-Token"), "{text}");

    // The right token is sent in the header.
    let right = dir.path().join("right");
    std::fs::write(&right, "right-token").unwrap();
    let info = client_with(AdminClientOptions {
        token: Some(SecretRef::File(right)),
        ..AdminClientOptions::default()
    })
    .node_info(&base)
    .await
    .unwrap();
    // 3.4 has no `edition` field: the four-part version says Enterprise.
    assert_eq!(info.edition.as_deref(), None);
    assert_eq!(info.edition().0, kongup::plan::model::Edition::Enterprise);
}

#[tokio::test]
async fn forbidden_is_an_rbac_error_too() {
    let base = serve(Router::new().route(
        "/clustering/data-planes",
        get(|| async {
            (
                StatusCode::FORBIDDEN,
                Json(json!({"message": "Enterprise RBAC: you do not have permission to read this resource"})),
            )
        }),
    ))
    .await;
    // SAFETY of the test: the variable name is unique to this test.
    unsafe { std::env::set_var("KONGUP_TEST_FORBIDDEN_TOKEN", "tok-403") };
    let error = client_with(AdminClientOptions {
        token: Some(SecretRef::Env("KONGUP_TEST_FORBIDDEN_TOKEN".into())),
        ..AdminClientOptions::default()
    })
    .data_planes(&base)
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, AdminError::Unauthorized { status: 403, .. }),
        "{error:?}"
    );
    assert!(text.contains("not allowed"), "{text}");
    assert!(
        text.contains("environment variable KONGUP_TEST_FORBIDDEN_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("tok-403"), "{text}");
}

#[tokio::test]
async fn not_found_asks_whether_this_is_an_admin_api() {
    let base = serve(Router::new()).await;
    let error = client().node_info(&base).await.unwrap_err();
    assert!(matches!(error, AdminError::NotFound { .. }), "{error:?}");
    assert!(
        error.to_string().contains("is this an Admin API?"),
        "{error}"
    );

    // Kong's proxy answers 404 with its own message: say it is the proxy port.
    let proxy = serve(Router::new().fallback(|| async {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "no Route matched with those values"})),
        )
    }))
    .await;
    let text = client().node_info(&proxy).await.unwrap_err().to_string();
    assert!(text.contains("proxy port"), "{text}");
}

#[tokio::test]
async fn a_non_kong_answer_is_named() {
    let base = serve(Router::new().route(
        "/",
        get(|| async { "<html><body>Welcome to nginx!</body></html>" }),
    ))
    .await;
    let error = client().node_info(&base).await.unwrap_err();
    assert!(matches!(error, AdminError::NotKong { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("is this an Admin API?"), "{text}");
    assert!(text.contains("Welcome to nginx"), "{text}");
}

#[tokio::test]
async fn data_planes_on_a_non_control_plane_gives_kongs_message() {
    let base = serve(Router::new().route(
        "/clustering/data-planes",
        get(|| async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"message": NOT_A_CONTROL_PLANE})),
            )
        }),
    ))
    .await;
    let error = client().data_planes(&base).await.unwrap_err();
    assert!(
        matches!(error, AdminError::NotControlPlane { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("is not a control plane"), "{text}");
    assert!(text.contains(NOT_A_CONTROL_PLANE), "{text}");
}

#[tokio::test]
async fn data_planes_follow_next_across_pages() {
    #[derive(serde::Deserialize)]
    struct Offset {
        offset: Option<String>,
    }
    let base = serve(Router::new().route(
        "/clustering/data-planes",
        get(|Query(q): Query<Offset>| async move {
            let page = match q.offset.as_deref() {
                None => DataPlaneList {
                    data: vec![data_plane("dp1", "3.9.1", SyncStatus::Normal)],
                    next: Some("/clustering/data-planes?offset=p2".into()),
                },
                Some("p2") => DataPlaneList {
                    data: vec![data_plane(
                        "dp2",
                        "3.8.0",
                        SyncStatus::KongVersionIncompatible,
                    )],
                    next: None,
                },
                Some(other) => panic!("unexpected offset {other}"),
            };
            Json(page)
        }),
    ))
    .await;
    let planes = client().data_planes(&base).await.unwrap();
    let seen: Vec<(&str, &str, SyncStatus)> = planes
        .iter()
        .map(|p| (p.id.as_str(), p.version.as_str(), p.sync_status))
        .collect();
    assert_eq!(
        seen,
        [
            ("dp1", "3.9.1", SyncStatus::Normal),
            ("dp2", "3.8.0", SyncStatus::KongVersionIncompatible)
        ]
    );
}

/// A server that counts the requests that reached it and the Admin tokens among them.
async fn token_catcher() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, t) = (hits.clone(), tokens.clone());
    let base = serve(Router::new().fallback(move |headers: HeaderMap| {
        let (hits, tokens) = (h.clone(), t.clone());
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            if let Some(token) = headers.get("kong-admin-token") {
                tokens
                    .lock()
                    .unwrap()
                    .push(token.to_str().unwrap().to_string());
            }
            Json(json!({"data": [], "next": null}))
        }
    }))
    .await;
    (base, hits, tokens)
}

fn token_client(dir: &std::path::Path) -> AdminClient {
    let path = dir.join("token");
    std::fs::write(&path, "tok-must-stay-home\n").unwrap();
    client_with(AdminClientOptions {
        token: Some(SecretRef::File(path)),
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
}

#[tokio::test]
async fn a_redirect_is_an_error_and_the_token_does_not_follow_it() {
    let (elsewhere, hits, tokens) = token_catcher().await;
    let target = format!("{elsewhere}/");
    let base = serve(Router::new().route(
        "/",
        get(move || {
            let target = target.clone();
            async move {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(axum::http::header::LOCATION, target)],
                )
            }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let error = token_client(dir.path()).node_info(&base).await.unwrap_err();
    assert!(
        matches!(error, AdminError::Redirect { status: 301, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "the Admin API at {base}/ answered a redirect (301) to {elsewhere}/"
        )) && text.contains("point the plan at the final URL"),
        "{text}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
    assert!(tokens.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_next_link_to_another_server_is_refused() {
    let (elsewhere, hits, tokens) = token_catcher().await;
    let foreign = format!("{elsewhere}/routes?offset=2");
    let base = serve(Router::new().route(
        "/routes",
        get(move || {
            let foreign = foreign.clone();
            async move { Json(json!({"data": [{"id": "r1"}], "next": foreign})) }
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let client = token_client(dir.path());
    let error = client.list_entities(&base, "routes").await.unwrap_err();
    assert!(matches!(error, AdminError::ForeignNext { .. }), "{error:?}");
    assert!(error.to_string().contains(&elsewhere), "{error}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the foreign link was followed"
    );
    assert!(tokens.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_absolute_next_link_on_the_same_origin_is_followed() {
    #[derive(serde::Deserialize)]
    struct Offset {
        offset: Option<String>,
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let next = format!("{base}/routes?offset=2");
    let router = Router::new().route(
        "/routes",
        get(move |Query(q): Query<Offset>| {
            let next = next.clone();
            async move {
                match q.offset.as_deref() {
                    None => Json(json!({"data": [{"id": "r1"}], "next": next})),
                    _ => Json(json!({"data": [{"id": "r2"}], "next": null})),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let routes = client()
        .list_entities(&base, "routes")
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = routes.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r1", "r2"]);
}

#[tokio::test]
async fn entities_page_through_next_and_missing_collections_are_none() {
    #[derive(serde::Deserialize)]
    struct Offset {
        offset: Option<String>,
    }
    let base = serve(Router::new().route(
        "/routes",
        get(|Query(q): Query<Offset>| async move {
            match q.offset.as_deref() {
                None => Json(json!({"data":[{"id":"r1"},{"id":"r2"}],"next":"/routes?offset=abc","offset":"abc"})),
                _ => Json(json!({"data":[{"id":"r3"}],"next":null})),
            }
        }),
    ))
    .await;
    let client = client();
    let routes = client
        .list_entities(&base, "routes")
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = routes.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r1", "r2", "r3"]);
    assert_eq!(client.list_entities(&base, "vaults").await.unwrap(), None);
}

#[tokio::test]
async fn readiness_reads_503_reasons() {
    let base = serve(Router::new().route(
        "/status/ready",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"message": "draining"})),
            )
        }),
    ))
    .await;
    assert_eq!(
        client().readiness(&base).await.unwrap(),
        Readiness::NotReady("draining".into())
    );
}

#[tokio::test]
async fn a_slow_node_times_out_with_the_limit_in_the_message() {
    let base = serve(Router::new().route(
        "/",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    ))
    .await;
    let client = client_with(AdminClientOptions {
        timeout: Duration::from_millis(300),
        read_attempts: 1,
        ..AdminClientOptions::default()
    });
    let error = client.node_info(&base).await.unwrap_err();
    assert!(matches!(error, AdminError::Timeout { .. }), "{error:?}");
    assert!(error.to_string().contains("within 300ms"), "{error}");
}

/// With retries, "within 300ms" would be false of the whole call: the message counts the
/// tries (issue 14, item 6).
#[tokio::test]
async fn a_slow_node_read_with_retries_says_how_many_tries_of_how_long() {
    let base = serve(Router::new().route(
        "/",
        get(|| async {
            std::future::pending::<()>().await;
            "never"
        }),
    ))
    .await;
    let client = client_with(AdminClientOptions {
        timeout: Duration::from_millis(300),
        read_attempts: 3,
        retry_delay: Duration::from_millis(10),
        ..AdminClientOptions::default()
    });
    let started = std::time::Instant::now();
    let error = client.node_info(&base).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let message = error.to_string();
    assert!(
        message.contains("did not answer in 3 tries of 300ms each") && !message.contains("within"),
        "{message}"
    );
}

#[tokio::test]
async fn reads_are_retried_after_a_502_but_rbac_errors_are_not() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let base = serve(Router::new().route(
        "/",
        get(move || {
            let counted = counted.clone();
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        StatusCode::BAD_GATEWAY,
                        Json(json!({"message": "upstream"})),
                    )
                } else {
                    (
                        StatusCode::OK,
                        Json(json!(node_info("3.9.1", "control_plane", "postgres"))),
                    )
                }
            }
        }),
    ))
    .await;
    let info = client().node_info(&base).await.unwrap();
    assert_eq!(info.configuration.role, "control_plane");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let rbac_calls = Arc::new(AtomicUsize::new(0));
    let counted = rbac_calls.clone();
    let rbac = serve(Router::new().route(
        "/",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { (StatusCode::UNAUTHORIZED, Json(json!({"message": "no"}))) }
        }),
    ))
    .await;
    client().node_info(&rbac).await.unwrap_err();
    assert_eq!(rbac_calls.load(Ordering::SeqCst), 1);
}

#[test]
fn debug_output_of_a_client_and_a_freeze_source_holds_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "tok-7f3a9c-secret\n").unwrap();
    let client = client_with(AdminClientOptions {
        token: Some(SecretRef::File(path)),
        ..AdminClientOptions::default()
    });
    let source = kongup::kong::freeze::FreezeSource::AdminApi {
        client: client.clone(),
        admin_url: "http://cp1:8001".into(),
    };
    for shown in [format!("{client:?}"), format!("{source:?}")] {
        assert!(!shown.contains("tok-7f3a9c-secret"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }
}

#[test]
fn half_a_client_certificate_is_refused() {
    let error = AdminClient::new(AdminClientOptions {
        tls: TlsOptions {
            client_cert: Some("/etc/kong/client.crt".into()),
            ..TlsOptions::default()
        },
        ..AdminClientOptions::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("set both or neither"), "{error}");
}

fn node_json() -> String {
    serde_json::to_string(&node_info("3.10.0.1", "control_plane", "postgres")).unwrap()
}

#[tokio::test]
async fn an_unknown_certificate_is_a_tls_error_and_the_ca_file_fixes_it() {
    let pki = tls::make_pki();
    let base = tls::serve(&pki, node_json(), false).await;
    let error = client().node_info(&base).await.unwrap_err();
    assert!(matches!(error, AdminError::Tls { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("TLS with"), "{text}");
    assert!(text.contains("admin.tls.ca_file"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let ca = tls::write(dir.path(), "ca.pem", &pki.ca_pem);
    let info = client_with(AdminClientOptions {
        tls: TlsOptions {
            ca_file: Some(ca),
            ..TlsOptions::default()
        },
        ..AdminClientOptions::default()
    })
    .node_info(&base)
    .await
    .unwrap();
    assert_eq!(info.version, "3.10.0.1");
}

#[tokio::test]
async fn insecure_works_and_returns_a_warning() {
    let pki = tls::make_pki();
    let base = tls::serve(&pki, node_json(), false).await;
    let (client, warnings) = AdminClient::new(AdminClientOptions {
        tls: TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        },
        ..AdminClientOptions::default()
    })
    .unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("does not verify"), "{warnings:?}");
    assert_eq!(client.node_info(&base).await.unwrap().version, "3.10.0.1");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = tls::make_pki();
    let base = tls::serve(&pki, node_json(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = tls::write(dir.path(), "ca.pem", &pki.ca_pem);
    let without = client_with(AdminClientOptions {
        tls: TlsOptions {
            ca_file: Some(ca.clone()),
            ..TlsOptions::default()
        },
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
    .node_info(&base)
    .await
    .unwrap_err();
    assert!(matches!(without, AdminError::Tls { .. }), "{without:?}");
    assert!(without.to_string().contains("client_cert"), "{without}");

    let with = client_with(AdminClientOptions {
        tls: TlsOptions {
            ca_file: Some(ca),
            client_cert: Some(tls::write(dir.path(), "client.pem", &pki.client_cert_pem)),
            client_key: Some(tls::write(dir.path(), "client.key", &pki.client_key_pem)),
            insecure: false,
        },
        ..AdminClientOptions::default()
    });
    assert_eq!(with.node_info(&base).await.unwrap().version, "3.10.0.1");
}

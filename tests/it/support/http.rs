//! Small HTTP servers on free loopback ports, for Admin API tests.

use axum::Router;

/// Serves `router` on 127.0.0.1 on a free port until the test's runtime ends; returns the
/// base URL (`http://127.0.0.1:PORT`).
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("test server");
    });
    format!("http://{address}")
}

/// A loopback URL where nothing listens: bind a port, then let it go.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

/// `GET /` as a Kong node of this version, role and database answers it: `edition` only
/// from 3.6.0 (kong/api/routes/kong.lua:133@3.6.0), `enterprise` for a four-part version.
pub fn node_info(version: &str, role: &str, database: &str) -> kongup::kong::types::NodeInfo {
    use kongup::kong::types::{NodeConfiguration, NodeInfo, PluginsInfo, reported_version};
    let reported = reported_version(version).expect("a Kong version");
    NodeInfo {
        version: version.to_string(),
        edition: ((reported.major, reported.minor) >= (3, 6)).then(|| {
            if reported.is_enterprise_form() {
                "enterprise"
            } else {
                "community"
            }
            .into()
        }),
        hostname: format!("{role}-host"),
        node_id: "5f1c2d3e-0000-4000-8000-000000000001".into(),
        tagline: "Welcome to kong".into(),
        plugins: PluginsInfo::default(),
        configuration: NodeConfiguration {
            role: role.to_string(),
            database: database.to_string(),
            other: Default::default(),
        },
    }
}

/// Serves Kong's answers from the corpus (`tests/fixtures/kong/`), each exactly as its file
/// writes it (status, headers, body). A request is matched on its path and query first,
/// then on its path alone (so a client's own `?size=` does not matter); anything else gets
/// Kong's 404 `{"message":"Not found"}` (kong/api/api_helpers.lua `handle_404`).
pub async fn serve_corpus(routes: Vec<(String, kongup::testkit::corpus::CorpusFile)>) -> String {
    use axum::body::Body;
    use axum::http::{HeaderName, HeaderValue, Response, StatusCode, Uri};
    let responses: Vec<(String, kongup::testkit::corpus::HttpResponse)> = routes
        .into_iter()
        .map(|(path, file)| (path, kongup::testkit::corpus::http(&file)))
        .collect();
    let responses = std::sync::Arc::new(responses);
    serve(Router::new().fallback(move |uri: Uri| {
        let responses = responses.clone();
        async move {
            let full = uri
                .path_and_query()
                .map_or(uri.path(), |p| p.as_str())
                .to_string();
            let found = responses
                .iter()
                .find(|(path, _)| *path == full)
                .or_else(|| responses.iter().find(|(path, _)| path == uri.path()));
            let Some((_, answer)) = found else {
                return Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .header("content-type", "application/json; charset=utf-8")
                    .body(Body::from(r#"{"message":"Not found"}"#))
                    .expect("a 404 response");
            };
            let mut response = Response::new(Body::from(answer.body.clone()));
            *response.status_mut() = StatusCode::from_u16(answer.status).expect("a status code");
            for (name, value) in &answer.headers {
                response.headers_mut().append(
                    HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                    HeaderValue::from_str(value).expect("a header value"),
                );
            }
            response
        }
    }))
    .await
}

/// The routes of a control plane as the corpus of `version` has it: `GET /` from
/// `admin_root_cp.http`, and `/clustering/data-planes` from `listing` (its `next` link,
/// if any, answered by `<listing>_page2.http`).
pub fn corpus_control_plane(
    version: &'static str,
    listing: &str,
) -> Vec<(String, kongup::testkit::corpus::CorpusFile)> {
    use kongup::testkit::corpus;
    let first = corpus::file(version, &format!("{listing}.http"));
    let mut routes = vec![
        ("/".to_string(), corpus::file(version, "admin_root_cp.http")),
        ("/clustering/data-planes".to_string(), first.clone()),
    ];
    if let Some(next) = corpus::http(&first).json()["next"].as_str() {
        routes.push((
            next.to_string(),
            corpus::file(version, &format!("{listing}_page2.http")),
        ));
    }
    routes
}

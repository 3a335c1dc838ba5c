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

/// `GET /` as a Kong node of this version, role and database answers it.
pub fn node_info(version: &str, role: &str, database: &str) -> kongup::kong::types::NodeInfo {
    use kongup::kong::types::{NodeConfiguration, NodeInfo, PluginsInfo};
    NodeInfo {
        version: version.to_string(),
        edition: Some(
            if version.split('.').count() == 4 {
                "enterprise"
            } else {
                "community"
            }
            .into(),
        ),
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

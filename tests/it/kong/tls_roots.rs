//! Which roots the plan's `admin.tls.ca_file` leaves trusted, for Admin calls and scrapes
//! alike. In a process of its own: it points the system's roots at a test CA through
//! `SSL_CERT_FILE` (read by rustls-native-certs), which no other test may see.

use std::time::Duration;

use crate::support::http::node_info;
use crate::support::own_process::in_own_process;
use crate::support::tls;
use kongup::kong::client::{AdminClient, AdminClientOptions, AdminError};
use kongup::metrics::scrape::{ScrapeError, scrape_node};
use kongup::plan::model::TlsOptions;

#[tokio::test]
async fn a_plan_ca_file_is_the_only_root_trusted_by_admin_calls_and_scrapes() {
    if !in_own_process(
        module_path!(),
        "a_plan_ca_file_is_the_only_root_trusted_by_admin_calls_and_scrapes",
    ) {
        return;
    }
    let system = tls::make_pki();
    let plan_ca = tls::make_pki();
    let dir = tempfile::tempdir().unwrap();
    let system_ca = tls::write(dir.path(), "system-roots.pem", &system.ca_pem);
    // SAFETY: the only test of this process sets it before any client reads the roots.
    unsafe { std::env::set_var("SSL_CERT_FILE", &system_ca) };
    let body = serde_json::to_string(&node_info("3.10.0.1", "traditional", "postgres")).unwrap();
    let base = tls::serve(&system, body, false).await;

    // Without a CA file the system's roots apply.
    let (system_client, _) = AdminClient::new(AdminClientOptions {
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
    .unwrap();
    assert_eq!(
        system_client.node_info(&base).await.unwrap().version,
        "3.10.0.1"
    );

    // With one, only the plan's CA is trusted: the system's CA no longer vouches.
    let with_ca = TlsOptions {
        ca_file: Some(tls::write(dir.path(), "plan-ca.pem", &plan_ca.ca_pem)),
        ..TlsOptions::default()
    };
    let (admin, _) = AdminClient::new(AdminClientOptions {
        tls: with_ca.clone(),
        read_attempts: 1,
        ..AdminClientOptions::default()
    })
    .unwrap();
    let error = admin.node_info(&base).await.unwrap_err();
    assert!(matches!(error, AdminError::Tls { .. }), "{error:?}");

    // The scraper is built the same way and trusts the same roots.
    let timeout = Duration::from_secs(5);
    let url = format!("{base}/metrics");
    let (scraper, _) = kongup::kong::http::client(&with_ca, timeout, timeout).unwrap();
    let error = scrape_node(&scraper, &url, None, timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ScrapeError::Transport { reason, .. } if reason.contains("certificate")),
        "{error:?}"
    );
    let (system_scraper, _) =
        kongup::kong::http::client(&TlsOptions::default(), timeout, timeout).unwrap();
    // The JSON body is no exposition: the handshake passed, the parse did not.
    let error = scrape_node(&system_scraper, &url, None, timeout)
        .await
        .unwrap_err();
    assert!(matches!(error, ScrapeError::Exposition { .. }), "{error:?}");
}

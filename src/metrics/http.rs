//! The one place an HTTP client for Kong's Admin and Status APIs is built, with the
//! plan's TLS options, so every module talks to Kong the same way.

use std::path::Path;
use std::time::Duration;

use crate::plan::model::TlsOptions;

/// The header Kong Enterprise's RBAC reads the Admin token from.
pub const ADMIN_TOKEN_HEADER: &str = "Kong-Admin-Token";

#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("could not read the {what} {path}: {error} (check the path in the plan's admin.tls)")]
    Read {
        what: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("the {what} {path} is not valid PEM: {error}")]
    Pem {
        what: &'static str,
        path: String,
        error: reqwest::Error,
    },
    #[error("the CA file {path} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate { path: String },
    #[error("admin.tls: a client certificate needs a client key too, and the other way round")]
    HalfIdentity,
    #[error("could not build the HTTP client: {0}")]
    Build(reqwest::Error),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, HttpClientError> {
    std::fs::read(path).map_err(|error| HttpClientError::Read {
        what,
        path: path.display().to_string(),
        error,
    })
}

/// An HTTP client with the plan's TLS options; `timeout` bounds every whole request.
/// A CA file replaces the system's roots (Kong's Admin API usually has a private CA).
/// `insecure` turns certificate checks off: the caller must warn the operator.
pub fn http_client(
    tls: &TlsOptions,
    timeout: Duration,
) -> Result<reqwest::Client, HttpClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("kongup/", env!("CARGO_PKG_VERSION")));
    if let Some(ca_file) = &tls.ca_file {
        let pem = read("CA file", ca_file)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| HttpClientError::Pem {
                what: "CA file",
                path: ca_file.display().to_string(),
                error,
            })?;
        if certs.is_empty() {
            return Err(HttpClientError::NoCertificate {
                path: ca_file.display().to_string(),
            });
        }
        builder = builder.tls_certs_only(certs);
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = read("client certificate", cert)?;
            pem.push(b'\n');
            pem.extend(read("client key", key)?);
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(|error| HttpClientError::Pem {
                    what: "client certificate and key",
                    path: format!("{} + {}", cert.display(), key.display()),
                    error,
                })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => return Err(HttpClientError::HalfIdentity),
    }
    if tls.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(HttpClientError::Build)
}

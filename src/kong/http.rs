//! The one HTTP client kongup talks to Kong with: the Admin API, the Status API and their
//! `/metrics`. Built in one place from the plan's `admin.tls`, so an Admin call and a scrape
//! of the same node trust the same roots, present the same client certificate, and warn
//! the same way when verification is off.
//!
//! CA policy: `admin.tls.ca_file` names the CA the Admin API's (and Status API's)
//! certificate chains to, and then it is the only root trusted. The Admin token goes to
//! whatever server passes this check, so a certificate from any other CA, public or
//! installed on this machine (a corporate proxy's, say), is refused rather than merged in.
//! Without a CA file the system's roots apply, for an Admin API with a public certificate.
//!
//! Redirects are not followed: reqwest strips only `Authorization` and `Cookie` when a
//! redirect leaves the host, so `Kong-Admin-Token` would follow one anywhere, even from
//! https to http. A redirect is an error that names where it pointed.
//!
//! Bodies are read through [`read_body`], or handed on as they arrive through
//! [`read_body_chunks`], never unbounded: each kind of answer has a cap ([`BodyLimit`])
//! and reading stops there, so a wrong URL (a file server, a proxy that
//! streams) or a broken node cannot take kongup's memory.

use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::plan::model::TlsOptions;
use crate::secrets::{Secret, redact_url};

/// The header Kong Enterprise's RBAC reads the Admin token from.
pub const ADMIN_TOKEN_HEADER: &str = "Kong-Admin-Token";

/// What the operator is told when certificate checks are off.
pub const INSECURE_WARNING: &str = "TLS certificate verification is off (admin.tls.insecure, or --insecure): kongup does not verify the certificates of Kong's Admin and Status APIs, so anyone on the network path could read the Admin token and forge Kong's answers and metrics";

/// Installs the ring provider for rustls once per process; safe to call again.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("could not read the {what} {path}: {error} (check the path in admin.tls)")]
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
    #[error(
        "admin.tls: client_cert and client_key go together: set both or neither (a client key needs its certificate, and the other way round)"
    )]
    HalfIdentity,
    #[error("could not build the HTTP client: {0}")]
    Build(reqwest::Error),
    #[error(
        "the Admin token holds characters an HTTP header cannot carry (a control character or a line break): check where the plan reads it from"
    )]
    TokenNotAHeader,
}

/// The `Kong-Admin-Token` value for a token, marked sensitive: HTTP/2 never puts it in its
/// header tables, and `Debug` of a request shows `Sensitive` instead of it.
pub fn token_header(token: &Secret) -> Result<HeaderValue, HttpClientError> {
    let mut value =
        HeaderValue::from_str(token.expose()).map_err(|_| HttpClientError::TokenNotAHeader)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Where a redirect answer pointed, for the error that refuses to follow it (a
/// credential in it hidden).
pub fn redirect_target(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|location| redact_url(&String::from_utf8_lossy(location.as_bytes())).into_owned())
        .unwrap_or_else(|| "nowhere (no Location header)".to_string())
}

const MIB: usize = 1024 * 1024;

/// The most kongup reads of one answer, by what the answer is. Each is far above what Kong
/// sends and far below what would strain the machine kongup runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    pub bytes: usize,
    /// What the answer is, for the error ("an Admin API answer").
    pub what: &'static str,
    /// What to check when an answer is larger.
    pub hint: &'static str,
}

impl BodyLimit {
    /// One Admin API answer: a page holds at most 1 000 entities (kong/api/endpoints.lua
    /// `max_page_size = 1000`, :143@2.8.0, :145@3.9.1), and kongup's largest, a page of
    /// certificates with their chains or of plugins with their configuration, is a few MB;
    /// `GET /` (the node's configuration) is tens of kB.
    pub const ADMIN_API: BodyLimit = BodyLimit {
        bytes: 16 * MIB,
        what: "an Admin API answer",
        hint: "No page of Kong's Admin API is that large: check that the URL is the Admin API (default port 8001/8444), not a proxy or a file server",
    };
    /// `/status` and `/status/ready`: a few kB (docs/kong/admin-and-status-api.md).
    pub const STATUS_API: BodyLimit = BodyLimit {
        bytes: MIB,
        what: "a Status API answer",
        hint: "Kong's /status is a few kB: check that the URL is the Status API (e.g. port 8100) or the Admin API",
    };
    /// One `/metrics` exposition: about 150 bytes a series, so some 200 000 series, where
    /// Kong's own with every flag on and hundreds of routes is a few MB.
    pub const METRICS: BodyLimit = BodyLimit {
        bytes: 32 * MIB,
        what: "a /metrics exposition",
        hint: "Check that the URL is Kong's Status or Admin API; a Kong exposition that large (per-consumer metrics on many consumers?) is better trimmed in the prometheus plugin's settings",
    };
    /// A smoke test's answer from Y's proxy: the test looks for a text in it.
    pub const SMOKE_TEST: BodyLimit = BodyLimit {
        bytes: 4 * MIB,
        what: "a smoke test's answer",
        hint: "Point the smoke test at a smaller answer (a health route), or drop `body_contains`",
    };
}

/// Sizes in messages, in the unit a person reads them in.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(
        "{url} sent {} larger than kongup reads ({}{}): it stopped reading there. {}",
        limit.what,
        size(limit.bytes as u64),
        announced.map(|n| format!("; it announced {}", size(n))).unwrap_or_default(),
        limit.hint
    )]
    TooLarge {
        /// With any credential in it hidden.
        url: String,
        limit: BodyLimit,
        /// The body's `Content-Length`, when it said one.
        announced: Option<u64>,
    },
    /// The body could not be read (a timeout, a reset); the caller says what that means.
    #[error(transparent)]
    Read(reqwest::Error),
}

/// Reads a response's body chunk by chunk, and stops (with [`BodyError::TooLarge`]) as
/// soon as it would pass `limit`: a `Content-Length` above the limit is refused before a
/// byte is read, and an endless chunked body at the limit. The client's timeout still
/// bounds the whole read.
pub async fn read_body(
    response: reqwest::Response,
    limit: BodyLimit,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(
        response
            .content_length()
            .map_or(0, |n| n.min(limit.bytes as u64) as usize),
    );
    read_body_chunks(response, limit, |chunk| {
        body.extend_from_slice(chunk);
        Ok::<_, std::convert::Infallible>(())
    })
    .await
    .map_err(|error| match error {
        ChunkError::Body(error) => error,
        ChunkError::Sink(never) => match never {},
    })?;
    Ok(body)
}

/// Why a body handed over chunk by chunk stopped.
#[derive(Debug)]
pub enum ChunkError<E> {
    /// Reading it failed or it passed its limit.
    Body(BodyError),
    /// What it was handed to refused a chunk.
    Sink(E),
}

/// Hands a response's body to `sink` chunk by chunk as it arrives, none of it held here,
/// under the same limit as [`read_body`] (checked before each chunk is handed over). A
/// `sink` error stops the read.
pub async fn read_body_chunks<E>(
    mut response: reqwest::Response,
    limit: BodyLimit,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), ChunkError<E>> {
    let too_large = |response: &reqwest::Response, announced| {
        ChunkError::Body(BodyError::TooLarge {
            url: redact_url(response.url().as_str()).into_owned(),
            limit,
            announced,
        })
    };
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit.bytes as u64) {
        return Err(too_large(&response, announced));
    }
    let mut read = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| ChunkError::Body(BodyError::Read(error)))?
    {
        read += chunk.len();
        if read > limit.bytes {
            return Err(too_large(&response, announced));
        }
        sink(&chunk).map_err(ChunkError::Sink)?;
    }
    Ok(())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, HttpClientError> {
    std::fs::read(path).map_err(|error| HttpClientError::Read {
        what,
        path: path.display().to_string(),
        error,
    })
}

/// The client for Kong's Admin and Status APIs with the plan's TLS options (see the module
/// documentation for which roots it trusts). `request_timeout` bounds every whole request,
/// body included; `connect_timeout` the TCP and TLS handshake. The second value holds the
/// warnings the caller must show the operator (verification switched off).
pub fn client(
    tls: &TlsOptions,
    request_timeout: Duration,
    connect_timeout: Duration,
) -> Result<(reqwest::Client, Vec<String>), HttpClientError> {
    client_pooled(tls, request_timeout, connect_timeout, true)
}

/// [`client`], keeping idle connections for reuse only when `keep_idle`. Without, every
/// request says `Connection: close` (RFC 9112 §9.6), so that the server closes the
/// connection after its answer and the closed socket's TIME_WAIT (60 s on Linux) is held
/// on the node, not by the thousands on the machine kongup runs on.
pub fn client_pooled(
    tls: &TlsOptions,
    request_timeout: Duration,
    connect_timeout: Duration,
    keep_idle: bool,
) -> Result<(reqwest::Client, Vec<String>), HttpClientError> {
    install_crypto_provider();
    let mut warnings = Vec::new();
    let mut builder = reqwest::Client::builder();
    if !keep_idle {
        let close = reqwest::header::HeaderMap::from_iter([(
            reqwest::header::CONNECTION,
            HeaderValue::from_static("close"),
        )]);
        builder = builder.pool_max_idle_per_host(0).default_headers(close);
    }
    let mut builder = builder
        .timeout(request_timeout)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
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
        warnings.push(INSECURE_WARNING.to_string());
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    let client = builder.build().map_err(HttpClientError::Build)?;
    Ok((client, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_header_is_sensitive() {
        let value = token_header(&Secret::new("tok-1")).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");
        assert!(matches!(
            token_header(&Secret::new("tok\n2")),
            Err(HttpClientError::TokenNotAHeader)
        ));
    }

    #[test]
    fn sizes_read_as_a_person_says_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(16 * MIB as u64), "16 MiB");
        assert_eq!(size(1_500_000_000), "1.4 GiB");
    }

    #[test]
    fn insecure_comes_with_its_warning() {
        let (_, warnings) = client(
            &TlsOptions {
                insecure: true,
                ..TlsOptions::default()
            },
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(warnings, [INSECURE_WARNING]);
        let (_, warnings) = client(
            &TlsOptions::default(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(warnings.is_empty());
    }
}

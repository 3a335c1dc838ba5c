//! One scrape of one node's `/metrics`, bounded in time and size.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, DATE};

use super::sample::{ExpositionError, NodeSample, SampleReader};
use crate::kong::http::{
    ADMIN_TOKEN_HEADER, BodyError, BodyLimit, ChunkError, read_body_chunks, redirect_target,
    token_header,
};
use crate::secrets::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("no answer from {url} within {timeout:?} (is the node up and the port right?)")]
    Timeout { url: String, timeout: Duration },
    #[error("could not reach {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error(
        "{url} answered HTTP {status} (401/403: check the Admin token; 404: enable the prometheus plugin or use the Status API)"
    )]
    Status { url: String, status: u16 },
    #[error(
        "{url} answered a redirect ({status}) to {location}; point the plan at the final URL. kongup follows no redirect, so the Admin token never goes where the plan does not say"
    )]
    Redirect {
        url: String,
        status: u16,
        location: String,
    },
    /// Past `BodyLimit::METRICS`.
    #[error(transparent)]
    Body(BodyError),
    #[error("{url}: {error}")]
    Exposition { url: String, error: ExpositionError },
}

impl ScrapeError {
    /// Why, in a few words, for a line that names many nodes.
    pub fn brief(&self) -> String {
        match self {
            ScrapeError::Timeout { timeout, .. } => {
                format!("timeout {} ms", timeout.as_millis())
            }
            ScrapeError::Transport { .. } => "unreachable".to_string(),
            ScrapeError::Status { status, .. } => format!("HTTP {status}"),
            ScrapeError::Redirect { status, .. } => format!("redirect {status}"),
            ScrapeError::Body(_) => "too large".to_string(),
            ScrapeError::Exposition { .. } => "not Kong's metrics".to_string(),
        }
    }
}

/// The `/metrics` URL of a node's Status or Admin API base URL from the plan.
pub fn metrics_url(base: &str) -> String {
    format!("{}/metrics", base.trim_end_matches('/'))
}

/// For a URL given on the command line: used as it is when it has a path, else with
/// `/metrics` added.
pub fn metrics_url_from_arg(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(slash) if after_scheme[slash..].len() > 1 => url.to_string(),
        _ => metrics_url(url),
    }
}

/// Fetches and reads one exposition, parsed as it streams in (the body is never held
/// whole: see [`SampleReader`]). `timeout` bounds the whole exchange, body included; the
/// token is sent as `Kong-Admin-Token` and marked sensitive.
pub async fn scrape_node(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
    timeout: Duration,
) -> Result<NodeSample, ScrapeError> {
    tokio::time::timeout(timeout, fetch_sample(client, url, token))
        .await
        .map_err(|_| ScrapeError::Timeout {
            url: url.to_string(),
            timeout,
        })?
}

/// The sample, with the node's clock from its `Date` header (nginx sends one with every
/// response), which a control plane's `last_seen` times are compared with.
async fn fetch_sample(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
) -> Result<NodeSample, ScrapeError> {
    let started = std::time::Instant::now();
    let transport = |error: reqwest::Error| ScrapeError::Transport {
        url: url.to_string(),
        reason: describe(&error),
    };
    let exposition = |error| ScrapeError::Exposition {
        url: url.to_string(),
        error,
    };
    let mut request = client
        .get(url)
        .header(ACCEPT, "text/plain;version=0.0.4;q=1,*/*;q=0.1");
    if let Some(token) = token {
        let value = token_header(token).map_err(|error| ScrapeError::Transport {
            url: url.to_string(),
            reason: error.to_string(),
        })?;
        request = request.header(ADMIN_TOKEN_HEADER, value);
    }
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_redirection() {
        return Err(ScrapeError::Redirect {
            url: url.to_string(),
            status: status.as_u16(),
            location: redirect_target(&response),
        });
    }
    if !status.is_success() {
        return Err(ScrapeError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let server_time = response
        .headers()
        .get(DATE)
        .and_then(|date| date.to_str().ok())
        .and_then(|date| DateTime::parse_from_rfc2822(date).ok())
        .map(|date| date.with_timezone(&Utc));
    // Stamped when the answer starts: Kong prints its counters as it answers.
    let mut reader = SampleReader::new(Utc::now());
    read_body_chunks(response, BodyLimit::METRICS, |chunk| reader.feed(chunk))
        .await
        .map_err(|error| match error {
            ChunkError::Body(BodyError::Read(error)) => transport(error),
            ChunkError::Body(too_large) => ScrapeError::Body(too_large),
            ChunkError::Sink(error) => exposition(error),
        })?;
    let mut sample = reader.finish().map_err(exposition)?;
    sample.server_time = server_time;
    sample.scrape_time = Some(started.elapsed());
    Ok(sample)
}

/// Gives the pages that the heap holds free back to the system. A round over a fleet opens
/// and closes a connection per node (`monitor::scrape_client`): hyper's ~26 KB of buffers
/// and channels each, allocated and freed on the runtime's worker threads a thousand times
/// a second at 2 002 nodes, leave glibc's arenas holding freed pages between rounds: `kongup
/// run` at 1 000 data planes per cluster grew to 98 MB resident and stayed there; trimmed
/// every 2 to 4 s (by hand, with gdb) it held 58–68 MB. glibc only; elsewhere nothing to do.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(3) takes no pointer and is thread-safe (it locks each arena).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// reqwest's own message repeats the URL and hides the cause ("error sending request
/// for url (…)"): say the causes instead.
fn describe(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HTTP dates (RFC 9110 IMF-fixdate, as nginx writes them) read as RFC 2822.
    #[test]
    fn an_http_date_reads_as_the_nodes_clock() {
        let date = DateTime::parse_from_rfc2822("Tue, 01 Jul 2025 12:00:07 GMT").unwrap();
        assert_eq!(date.with_timezone(&Utc).timestamp(), 1_751_371_207);
    }

    #[test]
    fn command_line_urls_get_metrics_only_without_a_path() {
        assert_eq!(
            metrics_url_from_arg("http://127.0.0.1:8100"),
            "http://127.0.0.1:8100/metrics"
        );
        assert_eq!(
            metrics_url_from_arg("http://127.0.0.1:8100/"),
            "http://127.0.0.1:8100/metrics"
        );
        assert_eq!(
            metrics_url_from_arg("https://kong:8001/admin/metrics"),
            "https://kong:8001/admin/metrics"
        );
        assert_eq!(
            metrics_url("https://kong:8001/admin/"),
            "https://kong:8001/admin/metrics"
        );
    }
}

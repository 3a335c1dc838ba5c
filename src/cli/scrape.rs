//! `kongup scrape URL…`: two samples of each Kong `/metrics` endpoint, `--interval`
//! apart, and the figures kongup would derive from them, per endpoint and in total. Kong
//! 2.x and 3.x endpoints alike: what is missing is said in the words of the Kong that
//! answered (`metrics::explain`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use crate::kong::http;
use crate::metrics::ClusterFigures;
use crate::metrics::aggregate::ClusterTracker;
use crate::metrics::explain::{Figure, why_unknown};
use crate::metrics::sample::NodeSample;
use crate::metrics::scrape::{metrics_url_from_arg, scrape_node};
use crate::plan::model::{SecretRef, TlsOptions};
use crate::secrets::{has_userinfo, redact_url};

#[derive(Debug, clap::Args)]
pub struct ScrapeArgs {
    /// Kong Status API or Admin API URLs; `/metrics` is added when a URL has no path
    /// (e.g. http://127.0.0.1:8100 or https://kong:8001/metrics).
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
    /// Time between the two samples of each endpoint (e.g. 2s, 500ms, 1m).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Print JSON: {"endpoints":[{"url",…}],"total":{…}}, null where unknown.
    #[arg(long)]
    pub json: bool,
    /// Name of the environment variable holding the Admin token (sent as
    /// Kong-Admin-Token; the token itself never goes on the command line).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Time limit for each request, body included.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// PEM file of the CA that signed the endpoints' certificates (replaces the system's).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --client-key).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Do not verify the endpoints' certificates (unsafe; kongup warns).
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Serialize, PartialEq)]
struct FiguresJson {
    requests_per_s: Option<f64>,
    error_ratio: Option<f64>,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// p99 of `kong_kong_latency_ms` (Kong's own time) and `kong_upstream_latency_ms`.
    kong_p99_ms: Option<f64>,
    upstream_p99_ms: Option<f64>,
    /// The status-code and latency series exist (named after 3.x's flags; Kong 2.x has
    /// no flags and exports them once a request is counted).
    status_code_metrics: bool,
    latency_metrics: bool,
    /// "2.x" or "3.x": whose families the endpoint exports; null when it cannot be told.
    kong_exporter: Option<&'static str>,
    /// Every HTTP request nginx served per second, Admin/Status API calls included.
    nginx_requests_per_s: Option<f64>,
    /// Control planes: the data planes reported with the empty configuration on both
    /// samples, as `hostname (ip)`.
    empty_configuration: Vec<String>,
}

impl From<&ClusterFigures> for FiguresJson {
    fn from(f: &ClusterFigures) -> Self {
        FiguresJson {
            requests_per_s: f.requests_per_s,
            error_ratio: f.error_ratio,
            p50_ms: f.p50_ms,
            p95_ms: f.p95_ms,
            p99_ms: f.p99_ms,
            kong_p99_ms: f.kong_latency.p99_ms,
            upstream_p99_ms: f.upstream_latency.p99_ms,
            status_code_metrics: f.status_code_metrics,
            latency_metrics: f.latency_metrics,
            kong_exporter: f.exporter.map(|e| e.as_str()),
            nginx_requests_per_s: f.nginx_requests_per_s,
            empty_configuration: f
                .empty_configuration
                .iter()
                .map(|e| format!("{} ({})", e.data_plane.hostname, e.data_plane.ip))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct EndpointJson {
    url: String,
    #[serde(flatten)]
    figures: FiguresJson,
    /// Why the endpoint gave no figures; absent when both samples were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ReportJson {
    endpoints: Vec<EndpointJson>,
    total: FiguresJson,
}

/// Scrapes, prints, and returns 0 when every endpoint gave both samples, 1 otherwise.
pub fn run(args: ScrapeArgs) -> color_eyre::Result<i32> {
    // Before anything connects: a credential in a URL would be echoed in the table.
    if let Some(url) = args.urls.iter().find(|url| has_userinfo(url)) {
        eprintln!(
            "kongup scrape: {} holds a user name or password; give the URL without \
             `user:password@`, and an Admin token with --token-env VAR (sent as \
             Kong-Admin-Token), never on the command line",
            redact_url(url)
        );
        return Ok(1);
    }
    let token = match &args.token_env {
        Some(var) => Some(crate::secrets::resolve(&SecretRef::Env(var.clone()))?),
        None => None,
    };
    let tls = TlsOptions {
        ca_file: args.ca_file.clone(),
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        insecure: args.insecure,
    };
    let (client, warnings) = http::client(&tls, args.timeout, args.timeout)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let urls: Vec<String> = args.urls.iter().map(|u| metrics_url_from_arg(u)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (first, second) = runtime.block_on(async {
        let sample_all = || {
            futures::future::join_all(
                urls.iter()
                    .map(|url| scrape_node(&client, url, token.as_ref(), args.timeout)),
            )
        };
        let started = tokio::time::Instant::now();
        let first = sample_all().await;
        tokio::time::sleep_until(started + args.interval).await;
        (first, sample_all().await)
    });

    // The window only has to hold the one pair of samples.
    let window = args.interval * 4 + args.timeout * 2;
    let mut total = ClusterTracker::new(urls.iter().cloned(), window);
    let mut endpoints = Vec::new();
    let mut all_scraped = true;
    for (index, (first, second)) in first.into_iter().zip(second).enumerate() {
        let url = urls[index].clone();
        let mut one = ClusterTracker::new([url.clone()], window);
        let mut error = None;
        for outcome in [first, second] {
            let outcome: Result<NodeSample, String> = outcome.map_err(|e| e.to_string());
            if let Err(reason) = &outcome {
                error.get_or_insert_with(|| reason.clone());
            }
            one.record(0, outcome.clone());
            total.record(index, outcome);
        }
        all_scraped &= error.is_none();
        let figures = one.figures(Utc::now());
        endpoints.push((url, figures, error));
    }
    let total_figures = total.figures(Utc::now());

    if args.json {
        let report = ReportJson {
            endpoints: endpoints
                .iter()
                .map(|(url, figures, error)| EndpointJson {
                    url: url.clone(),
                    figures: figures.into(),
                    error: error.clone(),
                })
                .collect(),
            total: (&total_figures).into(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&endpoints, &total_figures));
    }
    Ok(if all_scraped { 0 } else { 1 })
}

fn cell(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), format)
}

fn render_table(
    endpoints: &[(String, ClusterFigures, Option<String>)],
    total: &ClusterFigures,
) -> String {
    let label_width = endpoints
        .iter()
        .map(|(url, _, _)| url.len())
        .max()
        .unwrap_or(0)
        .max("ENDPOINT".len());
    let row = |label: &str, f: &ClusterFigures| {
        format!(
            "{label:<label_width$}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}\n",
            cell(f.requests_per_s, |v| format!("{v:.2}")),
            cell(f.error_ratio, |v| format!("{:.2}%", v * 100.0)),
            cell(f.p50_ms, |v| format!("{v:.1} ms")),
            cell(f.p95_ms, |v| format!("{v:.1} ms")),
            cell(f.p99_ms, |v| format!("{v:.1} ms")),
        )
    };
    let mut out = format!(
        "{:<label_width$}  {:>9}  {:>7}  {:>9}  {:>9}  {:>9}\n",
        "ENDPOINT", "REQ/S", "5XX", "P50", "P95", "P99"
    );
    for (url, figures, _) in endpoints {
        out.push_str(&row(url, figures));
    }
    out.push_str(&row("total", total));
    let mut notes = Vec::new();
    for (url, figures, error) in endpoints {
        if let Some(error) = error {
            notes.push(format!("{url}: not scraped: {error}"));
            continue;
        }
        for empty in &figures.empty_configuration {
            let dp = &empty.data_plane;
            notes.push(if dp.compatible == Some(false) {
                format!(
                    "{url}: data plane {} ({}) is refused as incompatible and gets no \
                     configuration (config hash 0 on both samples)",
                    dp.hostname, dp.ip
                )
            } else {
                format!(
                    "{url}: data plane {} ({}) has the empty configuration (config hash 0 on \
                     both samples): it answers every request with 404",
                    dp.hostname, dp.ip
                )
            });
        }
        if !figures.status_code_metrics {
            notes.push(format!(
                "{}; requests/s unknown too",
                why_unknown(Figure::Errors, url, figures)
            ));
        }
        if !figures.latency_metrics {
            notes.push(format!(
                "{}; p50 and p95 unknown too",
                why_unknown(Figure::P99, url, figures)
            ));
        }
    }
    for note in notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

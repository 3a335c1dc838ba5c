//! A Slack-compatible incoming webhook: `POST` of JSON `{"text": "…"}`, answered 2xx when
//! taken (Slack's "Sending messages using incoming webhooks",
//! https://api.slack.com/messaging/webhooks; Mattermost and others take the same body).
//! The URL carries the hook's token: it is sent, never shown. reqwest's errors name the
//! URL, so they are shown `without_url` and redacted.

use std::time::Duration;

use tokio::sync::mpsc;

use super::Webhook;
use super::outlet::{Outlet, Tried};
use crate::kong::http;
use crate::plan::model::TlsOptions;
use crate::secrets::Redactor;

/// One try of a post, connection included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn outlet(
    hook: Webhook,
    redactor: Redactor,
    warnings: mpsc::UnboundedSender<String>,
) -> Outlet {
    // The system's roots, no redirects (a redirect would send the token elsewhere).
    let client = http::client(&TlsOptions::default(), POST_TIMEOUT, POST_TIMEOUT)
        .map(|(client, _)| client)
        .map_err(|e| e.to_string());
    let fix = format!("check the URL given as {}", hook.label);
    let what = format!("webhook {}", hook.label);
    let url = hook.url;
    Outlet::spawn(what, fix, redactor, warnings, move |notice| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let client = match client {
                Ok(client) => client,
                Err(why) => return Tried::GiveUp(format!("no HTTP client: {why}")),
            };
            let body = serde_json::json!({ "text": notice.text });
            match client.post(url.expose()).json(&body).send().await {
                Ok(response) if response.status().is_success() => Tried::Delivered,
                Ok(response) => {
                    let status = response.status();
                    let why = format!("HTTP {status}");
                    if status.is_server_error() || status.as_u16() == 429 {
                        Tried::Again(why)
                    } else {
                        Tried::GiveUp(why)
                    }
                }
                Err(error) => {
                    let kind = if error.is_timeout() {
                        format!("no answer within {}s", POST_TIMEOUT.as_secs())
                    } else if error.is_connect() {
                        "could not connect".to_string()
                    } else {
                        "the request failed".to_string()
                    };
                    Tried::Again(format!("{kind} ({})", error.without_url()))
                }
            }
        }
    })
}

//! The notification flags `kongup run` and `kongup demo` share.

use crate::secrets::Secret;

#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// No terminal bell or desktop notification (OSC 9, or OSC 777 on VTE, urxvt and foot
    /// terminals) when kongup needs you: a step ready after a bake or wait, a gate breach,
    /// a failed step, a pause, a rollback, the end of the run. Webhooks and the plan's
    /// notify.command still get every message.
    #[arg(long)]
    pub no_notify: bool,
    /// Also POST each message as JSON {"text": "…"} to this Slack-compatible incoming
    /// webhook: the moments above and every confirmation (who, which step). Repeat for
    /// several. The URL is a secret: it is never printed, logged or journaled (a command
    /// line is visible to other users of this machine; the plan's notify.webhooks reads
    /// it from an environment variable or a file instead).
    #[arg(long = "notify-webhook", value_name = "URL", value_parser = webhook_url)]
    pub notify_webhooks: Vec<Secret>,
}

/// Refuses what is not an http(s) URL without repeating it (it may hold a token).
fn webhook_url(text: &str) -> Result<Secret, String> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(Secret::new(text))
        }
        _ => Err(
            "not an http:// or https:// URL (the value is not repeated: it may hold \
                  the hook's token)"
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_being_repeated() {
        let error = webhook_url("hooks.example/services/T/B/s3cret").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(webhook_url("ftp://hooks.example/x").is_err());
        let url = webhook_url("https://hooks.example/services/T/B/s3cret").unwrap();
        assert_eq!(format!("{url:?}"), "[REDACTED]");
    }
}

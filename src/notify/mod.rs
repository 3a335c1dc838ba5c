//! Telling the operator, and the team, when kongup needs them, so that they can step away
//! from a long upgrade: the terminal's bell and desktop notification (`terminal`), a
//! Slack-compatible webhook (`webhook`) and a command (`command`).
//!
//! The notifier sits on the engine's event stream, between the engine and the front end
//! (the console or `--plain`): [`attach`] takes the stream out of the `EngineHandle`, reads
//! each event, and passes it on unchanged. [`Watch`] (pure) turns events into [`Notice`]s.
//! A notice that needs the operator goes to the terminal: in the console, through the
//! console's own writer after a frame ([`terminal::Alerts`]); under `--plain`, to stderr
//! when it is a terminal. Every notice goes to each webhook and command on a task of its
//! own, through a bounded queue ([`outlet`]): a slow or failing receiver never holds the
//! run back, and a failing one is said once, as a warning in the event stream.

mod command;
mod outlet;
pub mod terminal;
mod watch;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::outlet::Outlet;
pub use self::outlet::{ATTEMPTS, QUEUE_LIMIT};
pub use self::terminal::{Alerts, TerminalTarget};
pub use self::watch::Watch;
use crate::engine::event::{EventReceiver, EventSender};
use crate::engine::{EngineHandle, Event};
use crate::plan::model::Plan;
#[cfg(test)]
use crate::plan::model::SecretRef;
use crate::plan::steps::ExpandedPlan;
use crate::secrets::{Redactor, Secret, SecretError};

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A step became ready after a bake or a long wait: kongup waits for a confirm.
    StepReady,
    /// A step failed: kongup waits for the operator (retry, mark done, roll back).
    StepFailed,
    GateBreached,
    Paused,
    RollingBack,
    RolledBack,
    /// The run is done.
    Ended,
    /// Someone (or the plan's `auto_advance`) confirmed or retried a step.
    Confirmed,
}

impl NoticeKind {
    /// Whether the operator must come back for it: the bell rings only for these.
    pub fn needs_operator(self) -> bool {
        self != NoticeKind::Confirmed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::StepReady => "step-ready",
            NoticeKind::StepFailed => "step-failed",
            NoticeKind::GateBreached => "gate-breached",
            NoticeKind::Paused => "paused",
            NoticeKind::RollingBack => "rolling-back",
            NoticeKind::RolledBack => "rolled-back",
            NoticeKind::Ended => "ended",
            NoticeKind::Confirmed => "confirmed",
        }
    }
}

/// One message: what it is about, and the sentence sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// `kongup <plan>: <what happened>`; no secret (the events it comes from are redacted).
    pub text: String,
}

/// A webhook and how the operator named it (its URL is a secret and is never shown).
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `--notify-webhook #1`, `notify.webhooks[0] (environment variable SLACK_HOOK)`.
    pub label: String,
    pub url: Secret,
}

/// Where notices go, from the plan's `notify:` and the command line.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    pub terminal: TerminalTarget,
    pub webhooks: Vec<Webhook>,
    /// argv; the message is in `KONGUP_NOTIFY_TEXT` (and the kind in `KONGUP_NOTIFY_EVENT`).
    pub command: Option<Vec<String>>,
    /// Hides every webhook URL (and the run's other secrets, given the run's redactor) in
    /// what a receiver's failure says.
    pub redactor: Redactor,
}

impl NotifySettings {
    /// The plan's `notify:` (its webhook URLs read from their env or file) and the
    /// command line's `--notify-webhook` URLs; `terminal` unless `--no-notify`.
    pub fn for_plan(
        plan: &Plan,
        cli_webhooks: &[Secret],
        terminal: TerminalTarget,
    ) -> Result<NotifySettings, SecretError> {
        let mut webhooks = Vec::new();
        for (i, source) in plan.notify.webhooks.iter().enumerate() {
            webhooks.push(Webhook {
                label: format!("notify.webhooks[{i}] ({})", source.describe()),
                url: crate::secrets::resolve(source)?,
            });
        }
        webhooks.extend(self::cli_webhooks(cli_webhooks));
        let redactor = Redactor::new(webhooks.iter().map(|w| w.url.expose().to_string()));
        Ok(NotifySettings {
            terminal,
            webhooks,
            command: plan.notify.command.clone(),
            redactor,
        })
    }
}

/// The command line's `--notify-webhook` URLs, each named by its place.
pub fn cli_webhooks(urls: &[Secret]) -> Vec<Webhook> {
    urls.iter()
        .enumerate()
        .map(|(i, url)| Webhook {
            label: format!("--notify-webhook #{}", i + 1),
            url: url.clone(),
        })
        .collect()
}

/// How long leaving waits for the last notices ("the run is done") to be delivered.
pub const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// The notifier of a run: the task on the event stream and the outlets' tasks.
pub struct Notifier {
    alerts: Option<Alerts>,
    tee: JoinHandle<()>,
    outlets: Vec<Outlet>,
}

impl Notifier {
    /// The queue the console writes after each frame (`None`: not for the console).
    pub fn console_alerts(&self) -> Option<Alerts> {
        self.alerts.clone()
    }

    /// Once the front end is done: lets the event stream's last notices through, then
    /// waits (up to [`FINISH_WITHIN`]) for the webhooks and the command to send them.
    pub async fn finish(self) {
        let deadline = tokio::time::Instant::now() + FINISH_WITHIN;
        let _ = tokio::time::timeout_at(deadline, self.tee).await;
        for outlet in &self.outlets {
            outlet.close();
        }
        for outlet in self.outlets {
            outlet.finish(deadline).await;
        }
    }
}

/// Puts the notifier on the engine's event stream: `handle.events` becomes the stream as
/// the notifier passes it on (with its own warnings added). Call it inside the runtime.
pub fn attach(
    handle: &mut EngineHandle,
    expanded: Arc<ExpandedPlan>,
    plan_name: &str,
    settings: NotifySettings,
) -> Notifier {
    // The stream passed on is bounded as the engine's is (`engine::event::channel`); the
    // tee never waits on it, so it keeps the engine's own stream drained.
    let (out_tx, out_rx) = crate::engine::event::channel();
    let engine_events = std::mem::replace(&mut handle.events, out_rx);
    let (warn_tx, warn_rx) = mpsc::unbounded_channel();
    let mut outlets: Vec<Outlet> = settings
        .webhooks
        .into_iter()
        .map(|hook| webhook::outlet(hook, settings.redactor.clone(), warn_tx.clone()))
        .collect();
    if let Some(argv) = settings.command {
        outlets.push(command::outlet(argv, settings.redactor.clone(), warn_tx));
    }
    let alerts = match settings.terminal {
        TerminalTarget::Console => Some(Alerts::default()),
        _ => None,
    };
    let ring = terminal::Ring::new(settings.terminal, alerts.clone());
    let watch = Watch::new(expanded, plan_name);
    let senders: Vec<_> = outlets.iter().map(Outlet::sender).collect();
    let tee = tokio::spawn(tee(engine_events, out_tx, warn_rx, watch, ring, senders));
    Notifier {
        alerts,
        tee,
        outlets,
    }
}

/// Events the tee passes on at once (a step's output arrives in batches).
const TEE_BATCH: usize = 1024;

/// Passes every event on, after handing its notices to the terminal and the outlets; the
/// outlets' warnings join the stream while it is open. It ends with the engine's stream,
/// so the front end still sees the engine stop. What waits is passed on in one batch, so
/// a step's output costs the front end one wake-up per batch, not one per line.
async fn tee(
    mut events: EventReceiver,
    out: EventSender,
    mut warnings: mpsc::UnboundedReceiver<String>,
    mut watch: Watch,
    ring: terminal::Ring,
    outlets: Vec<outlet::Sender>,
) {
    let mut batch = Vec::with_capacity(TEE_BATCH);
    loop {
        tokio::select! {
            taken = events.recv_many(&mut batch, TEE_BATCH) => {
                if taken == 0 {
                    // The outlets' warnings already sent still reach the front end.
                    while let Ok(warning) = warnings.try_recv() {
                        out.send(Event::Warning(warning));
                    }
                    return;
                };
                for event in &batch {
                    for notice in watch.observe(event) {
                        if notice.kind.needs_operator() {
                            ring.ring(&notice);
                        }
                        for outlet in &outlets {
                            outlet.push(notice.clone());
                        }
                    }
                }
                out.send_all(batch.drain(..));
            }
            Some(warning) = warnings.recv() => {
                out.send(Event::Warning(warning));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::step::resolve_plan_secrets;
    use crate::testkit::hybrid;

    /// A webhook from the plan's `notify:` is named by its source, never by its URL, and
    /// the run's redactor (the one every log line, note and warning goes through) hides it.
    #[test]
    fn a_plan_webhook_is_named_by_its_source_and_its_url_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hook");
        let url = "https://hooks.example/services/T0/B0/plan-hook-token";
        std::fs::write(&file, format!("{url}\n")).unwrap();
        let mut plan = hybrid::plan();
        // Only the webhook's secret is to be read here.
        plan.admin = Default::default();
        plan.smoke_tests.clear();
        for database in [&mut plan.clusters.x.database, &mut plan.clusters.y.database]
            .into_iter()
            .flatten()
        {
            database.password = None;
        }
        plan.notify.webhooks = vec![SecretRef::File(file.clone())];
        let cli = [Secret::new("http://127.0.0.1:9/cli-hook-token")];
        let settings = NotifySettings::for_plan(&plan, &cli, TerminalTarget::Off).unwrap();
        let labels: Vec<&str> = settings.webhooks.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                format!("notify.webhooks[0] (file {})", file.display()).as_str(),
                "--notify-webhook #1",
            ]
        );
        assert_eq!(settings.webhooks[0].url.expose(), url);
        assert!(!format!("{settings:?}").contains("token"), "{settings:?}");
        let redactor = resolve_plan_secrets(&plan).unwrap();
        assert_eq!(
            redactor.redact(&format!("curl -d hi {url}")),
            "curl -d hi [REDACTED]"
        );
        for hook in &settings.webhooks {
            assert!(
                !settings
                    .redactor
                    .redact(hook.url.expose())
                    .contains("token")
            );
        }
    }
}

//! The plan's `notify.command`: an argv run on this machine for each notice, with the
//! message in `KONGUP_NOTIFY_TEXT` and what it is about in `KONGUP_NOTIFY_EVENT`
//! (`step-ready`, `gate-breached`, `confirmed`…). It runs in its own process group with a
//! timeout, like every command kongup starts; exit 0 is delivered.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outlet::{Outlet, Tried};
use crate::exec::local::LocalExecutor;
use crate::exec::{ExecRequest, run_to_completion};
use crate::plan::model::CommandLine;
use crate::secrets::Redactor;

/// One run of the command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn outlet(
    argv: Vec<String>,
    redactor: Redactor,
    warnings: mpsc::UnboundedSender<String>,
) -> Outlet {
    let command = CommandLine::Argv(argv);
    let what = format!("notify.command `{}`", command.display());
    let fix =
        "check notify.command in the plan (run it by hand with KONGUP_NOTIFY_TEXT set)".to_string();
    Outlet::spawn(what, fix, redactor, warnings, move |notice| {
        let request = ExecRequest {
            command: command.clone(),
            env: vec![
                ("KONGUP_NOTIFY_TEXT".to_string(), notice.text),
                (
                    "KONGUP_NOTIFY_EVENT".to_string(),
                    notice.kind.as_str().to_string(),
                ),
            ],
            timeout: COMMAND_TIMEOUT,
        };
        async move {
            let ran =
                run_to_completion(&LocalExecutor::new(), request, CancellationToken::new()).await;
            match ran {
                Ok(done) if done.outcome.success() => Tried::Delivered,
                Ok(done) => Tried::Again(done.failure_summary(2)),
                Err(error) => Tried::GiveUp(error.to_string()),
            }
        }
    })
}

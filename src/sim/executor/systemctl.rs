//! `systemctl start|stop|restart|reload|is-active|status kong` on a node, as systemd
//! reports it.

use std::time::Duration;

use super::kong::{START_TIME, WARMUP};
use super::{Session, SimExecutor, Stop};
use crate::sim::node::Lifecycle;

/// systemd's report of a unit that failed to start, on stderr; exit 1.
pub(super) async fn systemd_failed(unit_name: &str, s: &Session<'_>) -> i32 {
    let unit = format!("{unit_name}.service");
    s.err(format!(
        "Job for {unit} failed because the control process exited with error code."
    ))
    .await;
    s.err(format!(
        "See \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" for details."
    ))
    .await;
    1
}

impl SimExecutor {
    pub(super) async fn systemctl(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let action = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str);
        let unit = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .nth(1)
            .map(String::as_str)
            .unwrap_or("");
        let unit_name = unit.trim_end_matches(".service");
        if !matches!(unit_name, "kong" | "kong-enterprise-edition") {
            s.err(format!("Unit {unit_name}.service not found.")).await;
            return Ok(5);
        }
        let node = match self
            .require_node(&format!("systemctl {}", action.unwrap_or("")), s)
            .await
        {
            Ok(node) => node,
            Err(code) => return Ok(code),
        };
        match action {
            Some("start") => {
                if self.is_running(&node) {
                    return Ok(0);
                }
                s.pause(START_TIME).await?;
                match self.shared().start_node(&node, s.scaled(WARMUP)) {
                    Ok(()) => Ok(0),
                    Err(_) => Ok(systemd_failed(unit_name, s).await),
                }
            }
            Some("stop") => {
                if self.is_running(&node) {
                    s.pause(Duration::from_secs(1)).await?;
                    let _ = self.shared().stop_node(&node).await;
                }
                Ok(0)
            }
            Some("restart") => {
                s.pause(Duration::from_secs(1)).await?;
                if self.is_running(&node) {
                    let _ = self.shared().stop_node(&node).await;
                }
                s.pause(START_TIME).await?;
                match self.shared().start_node(&node, s.scaled(WARMUP)) {
                    Ok(()) => Ok(0),
                    Err(_) => Ok(systemd_failed(unit_name, s).await),
                }
            }
            Some("reload") => {
                if self.is_running(&node) {
                    Ok(0)
                } else {
                    Ok(systemd_failed(unit_name, s).await)
                }
            }
            Some("is-active") => {
                let state = self
                    .shared()
                    .node(&node)
                    .map(|n| n.state().lifecycle)
                    .unwrap_or(Lifecycle::Absent);
                let (word, code) = match state {
                    Lifecycle::Running => ("active", 0),
                    Lifecycle::Crashed => ("failed", 3),
                    _ => ("inactive", 3),
                };
                s.out(word).await;
                Ok(code)
            }
            Some("status") => {
                let lifecycle = self
                    .shared()
                    .node(&node)
                    .map(|n| n.state().lifecycle)
                    .unwrap_or(Lifecycle::Absent);
                s.out(format!("● {unit_name}.service - Kong")).await;
                s.out(format!(
                    "     Loaded: loaded (/lib/systemd/system/{unit_name}.service; enabled)"
                ))
                .await;
                let active = match lifecycle {
                    Lifecycle::Running => "active (running)",
                    Lifecycle::Crashed => "failed (Result: signal)",
                    _ => "inactive (dead)",
                };
                s.out(format!("     Active: {active}")).await;
                Ok(if lifecycle == Lifecycle::Running {
                    0
                } else {
                    3
                })
            }
            _ => {
                s.err(format!("Unknown command verb {}.", action.unwrap_or("")))
                    .await;
                Ok(1)
            }
        }
    }
}

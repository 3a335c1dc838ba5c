//! `kong start|stop|quit|restart|reload|health|version|check|drain` on a node, and
//! `kong config parse`; the `kong.conf` the lab's nodes read.

use std::time::Duration;

use super::shell::positionals;
use super::{Session, SimExecutor, Stop};
use crate::plan::model::Role;
use crate::sim::facts;
use crate::sim::lab::{LabError, LabShared};
use crate::sim::node::{Lifecycle, NodeSpec};

const KONG_PREFIX: &str = "/usr/local/kong";
/// How long `kong start` (or systemd starting it) takes, and how long a started node then
/// warms up before it reports ready (both simulated, scaled by the speed).
pub(super) const START_TIME: Duration = Duration::from_millis(2500);
pub(super) const WARMUP: Duration = Duration::from_millis(1500);

impl SimExecutor {
    pub(super) async fn kong(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let rest = args.get(1..).unwrap_or(&[]);
        if sub == "migrations" {
            return self.migrations(rest, s).await;
        }
        if sub == "config" {
            return self.kong_config(rest, s).await;
        }
        let node = match self.require_node(&format!("kong {sub}"), s).await {
            Ok(node) => node,
            Err(code) => return Ok(code),
        };
        let version = self.shared().node(&node).map(|n| n.spec.version).ok();
        let version = version.unwrap_or(self.shared().topology.to);
        match sub {
            "start" => self.kong_start(&node, s).await,
            "stop" => self.kong_stop(&node, false, s).await,
            "quit" => self.kong_stop(&node, true, s).await,
            "restart" => {
                if self.is_running(&node) {
                    s.pause(Duration::from_secs(1)).await?;
                    if let Err(e) = self.shared().stop_node(&node).await {
                        return Ok(s.kong_error(&e.to_string()).await);
                    }
                }
                self.kong_start(&node, s).await
            }
            "reload" => {
                s.pause(Duration::from_millis(800)).await?;
                if !self.is_running(&node) {
                    return Ok(s
                        .kong_error(&format!("nginx not running in prefix: {KONG_PREFIX}"))
                        .await);
                }
                s.out("Kong reloaded").await;
                Ok(0)
            }
            "health" => {
                s.pause(Duration::from_millis(300)).await?;
                if !self.is_running(&node) {
                    return Ok(s
                        .kong_error(&format!("Kong is not running at {KONG_PREFIX}"))
                        .await);
                }
                s.out("nginx.......running").await;
                s.out("").await;
                s.out(format!("Kong is healthy at {KONG_PREFIX}")).await;
                Ok(0)
            }
            "version" => {
                s.out(facts::full_version(version)).await;
                Ok(0)
            }
            "check" => {
                let conf = positionals(rest, &[])
                    .first()
                    .map_or("/etc/kong/kong.conf", |c| c);
                s.pause(Duration::from_millis(400)).await?;
                s.out(format!("configuration at {conf} is valid")).await;
                Ok(0)
            }
            "drain" => {
                if !facts::has_drain_command(version) {
                    s.err(format!("No such command: drain (Kong {version} has no 'kong drain'; it arrived in 3.9)"))
                        .await;
                    return Ok(1);
                }
                s.pause(Duration::from_millis(300)).await?;
                let status_url = self
                    .shared()
                    .node(&node)
                    .map(|n| n.status_url())
                    .unwrap_or_default();
                match self.shared().drain_node(&node) {
                    Ok(()) => {
                        s.out("Kong's status successfully changed to 'draining'")
                            .await;
                    }
                    Err(_) => {
                        // Kong prints this and still exits 0.
                        s.out(format!(
                            "Failed to send request to {status_url}/status/ready: connection refused"
                        ))
                        .await;
                    }
                }
                Ok(0)
            }
            "" => {
                s.err("Usage: kong COMMAND [OPTIONS]").await;
                Ok(1)
            }
            other => {
                s.err(format!("No such command: {other}")).await;
                Ok(1)
            }
        }
    }

    pub(super) fn is_running(&self, node: &str) -> bool {
        self.shared()
            .node(node)
            .is_ok_and(|n| n.state().lifecycle == Lifecycle::Running)
    }

    pub(super) async fn kong_start(&self, node: &str, s: &Session<'_>) -> Result<i32, Stop> {
        s.pause(START_TIME).await?;
        match self.lab.shared().start_node(node, s.scaled(WARMUP)) {
            Ok(()) => {
                s.out("Kong started").await;
                Ok(0)
            }
            Err(LabError::AlreadyRunning) => Ok(s
                .kong_error(&format!("Kong is already running in {KONG_PREFIX}"))
                .await),
            Err(e) => Ok(s.kong_error(&e.to_string()).await),
        }
    }

    pub(super) async fn kong_stop(
        &self,
        node: &str,
        graceful: bool,
        s: &Session<'_>,
    ) -> Result<i32, Stop> {
        s.pause(if graceful {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(1)
        })
        .await?;
        match self.shared().stop_node(node).await {
            Ok(()) => {
                s.out(if graceful {
                    "Kong stopped (gracefully)"
                } else {
                    "Kong stopped"
                })
                .await;
                Ok(0)
            }
            Err(e) => Ok(s.kong_error(&e.to_string()).await),
        }
    }

    async fn kong_config(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let file = args.get(1).map(String::as_str);
        match (sub, file) {
            ("parse", Some(file)) => {
                s.pause(Duration::from_millis(500)).await?;
                let known = self.shared().files().contains_key(file);
                if known {
                    s.out("parse successful").await;
                    Ok(0)
                } else {
                    Ok(s.kong_error(&format!("{file}: No such file or directory"))
                        .await)
                }
            }
            _ => {
                s.err("sim: only 'kong config parse FILE' is simulated")
                    .await;
                Ok(1)
            }
        }
    }
}

/// The settings of a node's `kong.conf` that the lab decides.
pub(super) fn kong_conf(shared: &LabShared, spec: &NodeSpec) -> Vec<String> {
    let mut conf = vec![format!("role = {}", spec.role.as_str())];
    match &spec.database {
        Some(db) => {
            conf.push("database = postgres".to_string());
            if let Some(plan) = shared.topology.database(db) {
                conf.push(format!("pg_host = {}", plan.host));
                conf.push(format!("pg_database = {}", plan.name));
            }
        }
        None => {
            conf.push("database = off".to_string());
            if spec.role != Role::DataPlane {
                conf.push("declarative_config = /etc/kong/kong.yml".to_string());
            }
        }
    }
    if let Some(cp) = &spec.control_plane {
        conf.push(format!("cluster_control_plane = {cp}:8005"));
    }
    conf
}

//! `lab install|deploy|decommission|start|stop|drain|status|split`: the lab's own
//! commands, for the steps a real site does with its own tools.

use std::time::Duration;

use super::kong::kong_conf;
use super::shell::{option_value, positionals};
use super::{Session, SimExecutor, Stop};
use crate::lb::{Split, TrafficDriver};
use crate::plan::model::Role;
use crate::plan::steps::ClusterSide;
use crate::sim::facts;
use crate::sim::node::Lifecycle;

impl SimExecutor {
    /// The nodes a `lab` subcommand names: explicit names, `--cluster x|y`, or this
    /// executor's node.
    fn lab_targets(&self, args: &[String]) -> Result<Vec<String>, String> {
        let shared = self.shared();
        if let Some(side) = option_value(args, None, "--cluster") {
            let side = match side {
                "x" => ClusterSide::X,
                "y" => ClusterSide::Y,
                other => return Err(format!("--cluster takes x or y, not '{other}'")),
            };
            // Control planes first, so data planes find them.
            let mut nodes: Vec<_> = shared
                .nodes
                .iter()
                .filter(|n| n.spec.cluster == side)
                .collect();
            nodes.sort_by_key(|n| n.spec.role != Role::ControlPlane);
            return Ok(nodes.iter().map(|n| n.spec.name.clone()).collect());
        }
        let names: Vec<String> = positionals(args, &["--cluster"])
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !names.is_empty() {
            for name in &names {
                shared.node(name).map_err(|e| e.to_string())?;
            }
            return Ok(names);
        }
        match self.node_name() {
            Some(name) => Ok(vec![name.to_string()]),
            None => Err(
                "name the nodes (lab deploy kong-y-1 kong-y-2) or a cluster (--cluster y)"
                    .to_string(),
            ),
        }
    }

    pub(super) async fn lab_command(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let sub = args.first().map(String::as_str).unwrap_or("");
        let rest = args.get(1..).unwrap_or(&[]);
        if sub == "split" {
            return Ok(self.lab_split(rest, s).await);
        }
        if sub == "status" {
            for node in self.lab.nodes() {
                s.out(format!(
                    "{:<8} {:<2} {:<14} {:<12} {}{}",
                    node.name,
                    node.cluster.as_str(),
                    node.role.as_str(),
                    node.version,
                    node.lifecycle.as_str(),
                    if node.draining { " (draining)" } else { "" }
                ))
                .await;
            }
            let states: Vec<(String, crate::kong::schema::SchemaState)> = self
                .shared()
                .databases()
                .iter()
                .map(|(name, db)| (name.clone(), db.schema_state()))
                .collect();
            for (name, state) in states {
                s.out(format!(
                    "database {name}: {}",
                    if state.needs_bootstrap {
                        "needs bootstrap".to_string()
                    } else {
                        format!(
                            "{}, {} pending",
                            state.core_generation().unwrap_or("-"),
                            state.pending_total()
                        )
                    }
                ))
                .await;
            }
            return Ok(0);
        }
        let targets = match self.lab_targets(rest) {
            Ok(t) => t,
            Err(message) => {
                s.err(format!("lab {sub}: {message}")).await;
                return Ok(1);
            }
        };
        for name in targets {
            let code = match sub {
                "install" => self.lab_install(&name, s).await?,
                "deploy" => {
                    let code = self.lab_install(&name, s).await?;
                    if code != 0 {
                        code
                    } else if self.is_running(&name) {
                        s.out(format!("{name}: Kong is already running")).await;
                        0
                    } else {
                        s.out(format!("{name}: kong start")).await;
                        self.kong_start(&name, s).await?
                    }
                }
                "start" => {
                    s.out(format!("{name}: kong start")).await;
                    self.kong_start(&name, s).await?
                }
                "stop" => {
                    s.out(format!("{name}: kong stop")).await;
                    self.kong_stop(&name, false, s).await?
                }
                "drain" => {
                    s.pause(Duration::from_millis(300)).await?;
                    match self.shared().drain_node(&name) {
                        Ok(()) => {
                            s.out(format!(
                                "{name}: Kong's status successfully changed to 'draining'"
                            ))
                            .await;
                            0
                        }
                        Err(e) => {
                            s.err(format!("{name}: {e}")).await;
                            1
                        }
                    }
                }
                "decommission" => {
                    s.out(format!("{name}: stopping Kong and removing the node"))
                        .await;
                    s.pause(Duration::from_secs(2)).await?;
                    match self.shared().decommission_node(&name).await {
                        Ok(()) => {
                            s.out(format!("{name}: decommissioned")).await;
                            0
                        }
                        Err(e) => {
                            s.err(format!("{name}: {e}")).await;
                            1
                        }
                    }
                }
                other => {
                    s.err(format!(
                        "lab: no such command '{other}' (install, deploy, decommission, start, stop, drain, status, split)"
                    ))
                    .await;
                    1
                }
            };
            if code != 0 {
                return Ok(code);
            }
        }
        Ok(0)
    }

    /// `lab split` prints the balancer's split as `X Y`; `lab split X Y` sets it (the
    /// demo plans' `command` traffic driver).
    async fn lab_split(&self, args: &[String], s: &Session<'_>) -> i32 {
        let driver = self.lab.traffic_driver();
        match args {
            [] => {
                let split = driver.split();
                s.out(format!("{} {}", split.x, split.y)).await;
                0
            }
            [x, y] => {
                let parsed = (x.parse::<u8>(), y.parse::<u8>());
                let (Ok(x), Ok(y)) = parsed else {
                    s.err(format!("lab split: '{x} {y}' are not two percentages"))
                        .await;
                    return 2;
                };
                match driver.set_split(Split { x, y }).await {
                    Ok(()) => 0,
                    Err(e) => {
                        s.err(format!("lab split: {e}")).await;
                        1
                    }
                }
            }
            _ => {
                s.err("lab split: give nothing (to print the split) or X and Y percentages")
                    .await;
                2
            }
        }
    }

    pub(super) async fn lab_install(&self, name: &str, s: &Session<'_>) -> Result<i32, Stop> {
        let shared = self.shared();
        let Ok(node) = shared.node(name) else {
            s.err(format!("lab: no node named '{name}'")).await;
            return Ok(1);
        };
        let spec = node.spec.clone();
        if node.state().lifecycle != Lifecycle::Absent {
            s.out(format!(
                "{name}: Kong {} is installed",
                facts::full_version(spec.version)
            ))
            .await;
            return Ok(0);
        }
        let package = if spec.version.is_enterprise_form() {
            "kong-enterprise-edition"
        } else {
            "kong"
        };
        s.out(format!("{name}: installing {package} {}", spec.version))
            .await;
        s.pause(Duration::from_secs(3)).await?;
        let conf = kong_conf(shared, &spec);
        s.out(format!(
            "{name}: writing /etc/kong/kong.conf ({})",
            conf.join(", ")
        ))
        .await;
        s.pause(Duration::from_millis(500)).await?;
        let _ = shared.install_node(name);
        s.out(format!("{name}: installed")).await;
        Ok(0)
    }
}

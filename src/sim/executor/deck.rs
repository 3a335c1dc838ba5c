//! `deck gateway dump|validate|diff|sync` and `deck file validate` on the lab's
//! configuration.

use std::time::Duration;

use super::shell::{option_value, positionals};
use super::{Session, SimExecutor, Stop};
use crate::sim::lab::Artifact;

impl SimExecutor {
    pub(super) async fn deck(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let words: Vec<&str> = positionals(
            args,
            &[
                "-o",
                "--output-file",
                "--kong-addr",
                "--headers",
                "--workspace",
                "-w",
                "--ca-cert-file",
            ],
        );
        match words.as_slice() {
            ["gateway", "dump", ..] | ["dump", ..] => {
                let file = option_value(args, Some("-o"), "--output-file").unwrap_or("kong.yaml");
                s.pause(Duration::from_millis(1500)).await?;
                let config_hash = self.lab.shared().config_hash.clone();
                self.shared().files().insert(
                    file.to_string(),
                    Artifact::DeclarativeConfig { config_hash },
                );
                Ok(0)
            }
            ["gateway", "validate", ..] | ["validate", ..] => {
                s.pause(Duration::from_millis(1000)).await?;
                Ok(0)
            }
            ["file", "validate", files @ ..] => {
                s.pause(Duration::from_millis(500)).await?;
                let missing: Vec<&str> = files
                    .iter()
                    .copied()
                    .filter(|f| !self.shared().files().contains_key(*f))
                    .collect();
                if let Some(file) = missing.first() {
                    s.err(format!(
                        "Error: reading file {file}: open {file}: no such file or directory"
                    ))
                    .await;
                    return Ok(1);
                }
                Ok(0)
            }
            ["gateway", "diff" | "sync", ..] | ["diff" | "sync", ..] => {
                s.pause(Duration::from_millis(1500)).await?;
                s.out("Summary:").await;
                s.out("  Created: 0").await;
                s.out("  Updated: 0").await;
                s.out("  Deleted: 0").await;
                Ok(0)
            }
            _ => {
                s.err("sim: deck: only 'gateway dump|validate|diff|sync' and 'file validate' are simulated")
                    .await;
                Ok(1)
            }
        }
    }
}

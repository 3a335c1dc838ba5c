//! Faults the lab can inject, from CLI flags (`--fault y-errors=0.2`) or from the console's
//! keys (`Lab::apply_fault`).
//!
//! | flag | effect |
//! |---|---|
//! | `y-errors=RATIO` (`0.2` or `20%`) | Y's proxies answer that share of requests with Kong's 500 |
//! | `y-latency=DURATION` (`300ms`) | Y's proxies wait that much longer for the upstream |
//! | `errors=NODE:RATIO` | that one node's proxy answers that share of requests with Kong's 500 (a wave's node, say, while the rest of its cluster is healthy) |
//! | `crash` / `crash=NODE` | a node (default: the first running Y proxy) stops answering |
//! | `dp-incompatible` | hybrid: the first Y data plane reports to X's control plane, whose minor is lower |
//! | `y-db-down` | the database Y's nodes use stops answering: `/status` reports it unreachable, `/status/ready` 503 `failed to connect to database`, `kong migrations` times out |
//!
//! `x-errors`, `x-latency` and `x-db-down` exist too, for comparisons.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::plan::steps::ClusterSide;

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    ErrorRatio {
        cluster: ClusterSide,
        ratio: f64,
    },
    ExtraLatency {
        cluster: ClusterSide,
        latency: Duration,
    },
    /// One node's share of 500s, on top of its cluster's.
    NodeErrorRatio {
        node: String,
        ratio: f64,
    },
    /// `None`: the first running Y node that proxies.
    Crash {
        node: Option<String>,
    },
    DpIncompatible,
    /// The database the cluster's nodes use stops answering (a shared one for both).
    DatabaseDown {
        cluster: ClusterSide,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ErrorRatio { cluster, ratio } => {
                write!(f, "{}-errors={ratio}", cluster.as_str())
            }
            Fault::ExtraLatency { cluster, latency } => write!(
                f,
                "{}-latency={}",
                cluster.as_str(),
                humantime::format_duration(*latency)
            ),
            Fault::NodeErrorRatio { node, ratio } => write!(f, "errors={node}:{ratio}"),
            Fault::Crash { node: None } => f.write_str("crash"),
            Fault::Crash { node: Some(node) } => write!(f, "crash={node}"),
            Fault::DpIncompatible => f.write_str("dp-incompatible"),
            Fault::DatabaseDown { cluster } => write!(f, "{}-db-down", cluster.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{input}' is not a fault: {reason} (write y-errors=0.2, errors=NODE:0.2, y-latency=300ms, crash, crash=NODE, dp-incompatible or y-db-down)"
)]
pub struct FaultParseError {
    pub input: String,
    pub reason: String,
}

fn parse_ratio(value: &str) -> Option<f64> {
    let ratio = match value.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().ok()? / 100.0,
        None => value.trim().parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&ratio).then_some(ratio)
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| FaultParseError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (name, value) = match input.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (input.trim(), None),
        };
        let cluster = |prefix: &str| match prefix {
            "x" => Some(ClusterSide::X),
            "y" => Some(ClusterSide::Y),
            _ => None,
        };
        match (name.split_once('-'), value) {
            (_, v) if name == "crash" => Ok(Fault::Crash {
                node: v.filter(|s| !s.is_empty()).map(str::to_string),
            }),
            (_, None) if name == "dp-incompatible" => Ok(Fault::DpIncompatible),
            (_, Some(v)) if name == "errors" => {
                let (node, ratio) = v
                    .rsplit_once(':')
                    .filter(|(node, _)| !node.trim().is_empty())
                    .ok_or_else(|| fail("write errors=NODE:RATIO"))?;
                let ratio = parse_ratio(ratio).ok_or_else(|| {
                    fail("the error ratio must be between 0 and 1, or 0% and 100%")
                })?;
                Ok(Fault::NodeErrorRatio {
                    node: node.trim().to_string(),
                    ratio,
                })
            }
            (Some((side, "db-down")), None) if cluster(side).is_some() => Ok(Fault::DatabaseDown {
                cluster: cluster(side).unwrap_or(ClusterSide::Y),
            }),
            (Some((side, "errors")), Some(v)) if cluster(side).is_some() => {
                let ratio = parse_ratio(v).ok_or_else(|| {
                    fail("the error ratio must be between 0 and 1, or 0% and 100%")
                })?;
                Ok(Fault::ErrorRatio {
                    cluster: cluster(side).unwrap_or(ClusterSide::Y),
                    ratio,
                })
            }
            (Some((side, "latency")), Some(v)) if cluster(side).is_some() => {
                let latency = humantime::parse_duration(v)
                    .map_err(|e| fail(&format!("the latency is not a duration ({e})")))?;
                Ok(Fault::ExtraLatency {
                    cluster: cluster(side).unwrap_or(ClusterSide::Y),
                    latency,
                })
            }
            (Some((_, "errors" | "latency")), None) => Err(fail("it needs a value after '='")),
            _ => Err(fail("unknown fault")),
        }
    }
}

/// Faults on one cluster's proxies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClusterFaults {
    /// Share of proxied requests answered with a 500 (0.0–1.0).
    pub error_ratio: f64,
    /// Added to the upstream latency of every proxied request.
    pub extra_latency: Duration,
}

/// The faults in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultState {
    pub x: ClusterFaults,
    pub y: ClusterFaults,
    /// The data plane sent to the wrong control plane by `dp-incompatible`.
    pub misrouted_data_plane: Option<String>,
    /// Nodes crashed by a fault.
    pub crashed: Vec<String>,
    /// Nodes answering a share of their requests with 500, whatever their cluster's.
    pub node_errors: std::collections::BTreeMap<String, f64>,
    /// Databases (by name) that no longer answer.
    pub databases_down: Vec<String>,
}

impl FaultState {
    pub fn cluster(&self, side: ClusterSide) -> &ClusterFaults {
        match side {
            ClusterSide::X => &self.x,
            ClusterSide::Y => &self.y,
        }
    }

    pub fn cluster_mut(&mut self, side: ClusterSide) -> &mut ClusterFaults {
        match side {
            ClusterSide::X => &mut self.x,
            ClusterSide::Y => &mut self.y,
        }
    }

    /// One line per fault in force, for the console and `kongup lab`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for side in [ClusterSide::X, ClusterSide::Y] {
            let f = self.cluster(side);
            if f.error_ratio > 0.0 {
                lines.push(format!(
                    "{} answers {:.0}% of requests with 500",
                    side.as_str().to_uppercase(),
                    f.error_ratio * 100.0
                ));
            }
            if !f.extra_latency.is_zero() {
                lines.push(format!(
                    "{} upstream latency +{}",
                    side.as_str().to_uppercase(),
                    humantime::format_duration(f.extra_latency)
                ));
            }
        }
        for (node, ratio) in &self.node_errors {
            lines.push(format!(
                "{node} answers {:.0}% of requests with 500",
                ratio * 100.0
            ));
        }
        for node in &self.crashed {
            lines.push(format!("{node} crashed"));
        }
        if let Some(dp) = &self.misrouted_data_plane {
            lines.push(format!("{dp} reports to X's control plane"));
        }
        for database in &self.databases_down {
            lines.push(format!("database {database} does not answer"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_fault() {
        assert_eq!(
            "y-errors=0.2".parse::<Fault>().unwrap(),
            Fault::ErrorRatio {
                cluster: ClusterSide::Y,
                ratio: 0.2
            }
        );
        assert_eq!(
            "y-errors=25%".parse::<Fault>().unwrap(),
            Fault::ErrorRatio {
                cluster: ClusterSide::Y,
                ratio: 0.25
            }
        );
        assert_eq!(
            "y-latency=300ms".parse::<Fault>().unwrap(),
            Fault::ExtraLatency {
                cluster: ClusterSide::Y,
                latency: Duration::from_millis(300)
            }
        );
        assert_eq!(
            "crash".parse::<Fault>().unwrap(),
            Fault::Crash { node: None }
        );
        assert_eq!(
            "crash=kong-y-2".parse::<Fault>().unwrap(),
            Fault::Crash {
                node: Some("kong-y-2".into())
            }
        );
        assert_eq!(
            "dp-incompatible".parse::<Fault>().unwrap(),
            Fault::DpIncompatible
        );
        assert_eq!(
            "y-db-down".parse::<Fault>().unwrap(),
            Fault::DatabaseDown {
                cluster: ClusterSide::Y
            }
        );
    }

    #[test]
    fn rejects_bad_faults_with_the_reason() {
        let err = "y-errors=1.5".parse::<Fault>().unwrap_err();
        assert!(err.reason.contains("between 0 and 1"), "{err}");
        assert_eq!(
            "errors=dp-y-5:0.3".parse::<Fault>().unwrap(),
            Fault::NodeErrorRatio {
                node: "dp-y-5".into(),
                ratio: 0.3
            }
        );
        assert!("errors=0.3".parse::<Fault>().is_err());
        assert!("y-latency=soon".parse::<Fault>().is_err());
        assert!("z-errors=0.1".parse::<Fault>().is_err());
        assert!("y-errors".parse::<Fault>().is_err());
        assert!("meteor".parse::<Fault>().is_err());
    }
}

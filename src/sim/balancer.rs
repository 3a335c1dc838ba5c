//! The lab's load balancer, in-process: a weighted split between X's and Y's proxies, as
//! HAProxy or nginx would apply it with health checks. Each ready proxy of a cluster gets
//! an equal share of that cluster's weight; a proxy that is not ready (stopped, crashed,
//! draining, starting) gets none, and its share goes to the others, as a health-checking
//! balancer does. It implements `TrafficDriver`, so the engine moves the demo's traffic
//! exactly as it moves a real balancer's.

use std::sync::{Arc, Mutex};

use crate::lb::{LbError, Split, TrafficDriver};
use crate::plan::steps::ClusterSide;

use super::node::SimNode;

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    pub cluster: ClusterSide,
    pub proxy_url: String,
}

pub struct SimBalancer {
    nodes: Vec<Arc<SimNode>>,
    split: Mutex<Split>,
}

impl SimBalancer {
    /// Balances over every node of the lab that proxies; starts with all traffic on X.
    pub fn new(nodes: &[Arc<SimNode>]) -> Self {
        SimBalancer {
            nodes: nodes.iter().filter(|n| n.spec.proxies()).cloned().collect(),
            split: Mutex::new(Split::ALL_X),
        }
    }

    pub fn split(&self) -> Split {
        *self.split.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, split: Split) {
        *self.split.lock().unwrap_or_else(|e| e.into_inner()) = split;
    }

    /// Picks the proxy for the next request; `None` when no proxy is ready (a real
    /// balancer answers 503 then).
    pub fn pick(&self) -> Option<Target> {
        self.pick_with(rand::random::<f64>())
    }

    /// `draw` in [0, 1) chooses along the cumulative weights.
    fn pick_with(&self, draw: f64) -> Option<Target> {
        let split = self.split();
        let ready: Vec<&Arc<SimNode>> = self.nodes.iter().filter(|n| n.is_ready()).collect();
        let count = |side| ready.iter().filter(|n| n.spec.cluster == side).count();
        let (x_ready, y_ready) = (count(ClusterSide::X), count(ClusterSide::Y));
        let weight = |node: &SimNode| -> f64 {
            let (share, n) = match node.spec.cluster {
                ClusterSide::X => (split.x, x_ready),
                ClusterSide::Y => (split.y, y_ready),
            };
            if n == 0 {
                0.0
            } else {
                f64::from(share) / n as f64
            }
        };
        let total: f64 = ready.iter().map(|n| weight(n)).sum();
        if total <= 0.0 {
            return None;
        }
        let mut point = draw * total;
        let chosen = ready
            .iter()
            .find(|n| {
                let w = weight(n);
                if w > 0.0 && point < w {
                    return true;
                }
                point -= w;
                false
            })
            .or_else(|| ready.iter().rev().find(|n| weight(n) > 0.0))?;
        Some(Target {
            node: chosen.spec.name.clone(),
            cluster: chosen.spec.cluster,
            proxy_url: chosen.proxy_url()?,
        })
    }
}

#[async_trait::async_trait]
impl TrafficDriver for SimBalancer {
    fn describe(&self) -> String {
        let names = |side| {
            self.nodes
                .iter()
                .filter(|n| n.spec.cluster == side)
                .map(|n| n.spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "the lab's load balancer (in-process, weighted): X {} | Y {}",
            names(ClusterSide::X),
            names(ClusterSide::Y)
        )
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        if u16::from(split.x) + u16::from(split.y) != 100 {
            return Err(LbError::Driver {
                driver: "lab",
                message: format!(
                    "the split {split} does not add up to 100%; ask for X and Y percentages that do"
                ),
            });
        }
        self.set(split);
        Ok(())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        Ok(Some(self.split()))
    }
}

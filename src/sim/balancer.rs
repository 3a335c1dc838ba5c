//! The lab's load balancer, in-process: a weighted split between X's and Y's proxies, as
//! HAProxy or nginx would apply it with health checks. Each ready proxy of a cluster gets
//! an equal share of that cluster's weight; a proxy that is not ready (stopped, crashed,
//! draining, starting) gets none, and its share goes to the others, as a health-checking
//! balancer does. It implements `TrafficDriver`, so the engine moves the demo's traffic
//! exactly as it moves a real balancer's.
//!
//! In place, Y's nodes are X's hosts after the upgrade: the plan gives a Y node the proxy
//! address of an X node. Such a pair is one backend of the balancer, so while the X node
//! is down its share of X's weight goes to its Y successor, as the real balancer keeps
//! sending to the address that now runs Y.

use std::collections::HashMap;
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

/// An X node and the Y node that serves at its address after an in-place upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBackend {
    pub x_node: String,
    pub y_node: String,
}

pub struct SimBalancer {
    nodes: Vec<Arc<SimNode>>,
    shared_backends: Vec<SharedBackend>,
    split: Mutex<Split>,
    /// Smooth weighted round-robin's running weight per node.
    current: Mutex<HashMap<String, f64>>,
}

impl SimBalancer {
    /// Balances over every node of the lab that proxies; starts with all traffic on X.
    pub fn new(nodes: &[Arc<SimNode>], shared_backends: &[SharedBackend]) -> Self {
        SimBalancer {
            nodes: nodes.iter().filter(|n| n.spec.proxies()).cloned().collect(),
            shared_backends: shared_backends.to_vec(),
            split: Mutex::new(Split::ALL_X),
            current: Mutex::new(HashMap::new()),
        }
    }

    fn node(&self, name: &str) -> Option<&Arc<SimNode>> {
        self.nodes.iter().find(|n| n.spec.name == name)
    }

    /// Whether `y_node` serves at the address of an X node that is not ready: it takes
    /// that backend's share of X's weight.
    fn stands_in_for_x(&self, y_node: &str) -> bool {
        self.shared_backends
            .iter()
            .filter(|b| b.y_node == y_node)
            .any(|b| self.node(&b.x_node).is_some_and(|x| !x.is_ready()))
    }

    /// An X node's backend is up while the X node, or the Y node now at its address, is.
    fn x_backend_ready(&self, x_node: &SimNode) -> bool {
        x_node.is_ready()
            || self
                .shared_backends
                .iter()
                .filter(|b| b.x_node == x_node.spec.name)
                .any(|b| self.node(&b.y_node).is_some_and(|y| y.is_ready()))
    }

    pub fn split(&self) -> Split {
        *self.split.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, split: Split) {
        *self.split.lock().unwrap_or_else(|e| e.into_inner()) = split;
    }

    /// Picks the proxy for the next request; `None` when no proxy is ready (a real
    /// balancer answers 503 then). Smooth weighted round-robin, nginx's algorithm: a 1 %
    /// share gets every hundredth request, not a random one in a hundred.
    pub fn pick(&self) -> Option<Target> {
        let split = self.split();
        let ready: Vec<&Arc<SimNode>> = self.nodes.iter().filter(|n| n.is_ready()).collect();
        let x_backends_ready = self
            .nodes
            .iter()
            .filter(|n| n.spec.cluster == ClusterSide::X && self.x_backend_ready(n))
            .count();
        let y_ready = ready
            .iter()
            .filter(|n| n.spec.cluster == ClusterSide::Y)
            .count();
        let share_of = |share: u8, n: usize| {
            if n == 0 {
                0.0
            } else {
                f64::from(share) / n as f64
            }
        };
        let weight = |node: &SimNode| -> f64 {
            match node.spec.cluster {
                ClusterSide::X => share_of(split.x, x_backends_ready),
                ClusterSide::Y => {
                    let inherited = if self.stands_in_for_x(&node.spec.name) {
                        share_of(split.x, x_backends_ready)
                    } else {
                        0.0
                    };
                    share_of(split.y, y_ready) + inherited
                }
            }
        };
        let weighted: Vec<(&Arc<SimNode>, f64)> = ready
            .iter()
            .map(|n| (*n, weight(n)))
            .filter(|(_, w)| *w > 0.0)
            .collect();
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        if total <= 0.0 {
            return None;
        }
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // A node that left the rotation starts afresh when it comes back.
        current.retain(|name, _| weighted.iter().any(|(n, _)| n.spec.name == *name));
        for (node, w) in &weighted {
            *current.entry(node.spec.name.clone()).or_insert(0.0) += w;
        }
        let (chosen, _) = weighted
            .iter()
            .max_by(|a, b| current[&a.0.spec.name].total_cmp(&current[&b.0.spec.name]))?;
        if let Some(c) = current.get_mut(&chosen.spec.name) {
            *c -= total;
        }
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

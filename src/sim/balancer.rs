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
    /// By index into `nodes`: the Y nodes at each X node's address (in place), and the X
    /// nodes at each Y node's. Indices, so a pick over a fleet of a thousand proxies costs
    /// one pass, not a name search per node.
    y_at_x: Vec<Vec<usize>>,
    x_at_y: Vec<Vec<usize>>,
    split: Mutex<Split>,
    /// Smooth weighted round-robin's running weight per node (by index); `None` while out
    /// of the rotation.
    current: Mutex<Vec<Option<f64>>>,
}

impl SimBalancer {
    /// Balances over every node of the lab that proxies; starts with all traffic on X.
    pub fn new(nodes: &[Arc<SimNode>], shared_backends: &[SharedBackend]) -> Self {
        let nodes: Vec<Arc<SimNode>> = nodes.iter().filter(|n| n.spec.proxies()).cloned().collect();
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.spec.name.as_str(), i))
            .collect();
        let mut y_at_x = vec![Vec::new(); nodes.len()];
        let mut x_at_y = vec![Vec::new(); nodes.len()];
        for backend in shared_backends {
            if let (Some(&x), Some(&y)) = (
                index.get(backend.x_node.as_str()),
                index.get(backend.y_node.as_str()),
            ) {
                y_at_x[x].push(y);
                x_at_y[y].push(x);
            }
        }
        let count = nodes.len();
        SimBalancer {
            nodes,
            y_at_x,
            x_at_y,
            split: Mutex::new(Split::ALL_X),
            current: Mutex::new(vec![None; count]),
        }
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
        let ready: Vec<bool> = self.nodes.iter().map(|n| n.is_ready()).collect();
        let is_x = |i: usize| self.nodes[i].spec.cluster == ClusterSide::X;
        // An X node's backend is up while the X node, or the Y node now at its address, is.
        let x_backends_ready = (0..self.nodes.len())
            .filter(|&i| is_x(i) && (ready[i] || self.y_at_x[i].iter().any(|&y| ready[y])))
            .count();
        let y_ready = (0..self.nodes.len())
            .filter(|&i| ready[i] && !is_x(i))
            .count();
        let share_of = |share: u8, n: usize| {
            if n == 0 {
                0.0
            } else {
                f64::from(share) / n as f64
            }
        };
        let weight = |i: usize| -> f64 {
            if is_x(i) {
                share_of(split.x, x_backends_ready)
            } else {
                // A Y node at the address of an X node that is not ready takes that
                // backend's share of X's weight.
                let inherited = if self.x_at_y[i].iter().any(|&x| !ready[x]) {
                    share_of(split.x, x_backends_ready)
                } else {
                    0.0
                };
                share_of(split.y, y_ready) + inherited
            }
        };
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0.0;
        let mut chosen: Option<usize> = None;
        for i in 0..self.nodes.len() {
            let w = if ready[i] { weight(i) } else { 0.0 };
            if w <= 0.0 {
                // A node that left the rotation starts afresh when it comes back.
                current[i] = None;
                continue;
            }
            total += w;
            let c = current[i].get_or_insert(0.0);
            *c += w;
            // The last of equal weights, as `Iterator::max_by` chose before.
            if chosen.is_none_or(|best| {
                current[best].unwrap_or(f64::MIN) <= current[i].unwrap_or(f64::MIN)
            }) {
                chosen = Some(i);
            }
        }
        if total <= 0.0 {
            return None;
        }
        let chosen = chosen?;
        if let Some(c) = current[chosen].as_mut() {
            *c -= total;
        }
        let node = &self.nodes[chosen];
        Some(Target {
            node: node.spec.name.clone(),
            cluster: node.spec.cluster,
            proxy_url: node.proxy_url()?,
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

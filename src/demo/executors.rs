//! The executors of a demo or a rehearsal: every executor the plan names (and `local`)
//! acts on the lab, never on a host.
//!
//! A command acts on the node it was placed on (`KONGUP_NODE`, set by the engine for a
//! command placed on each node of a step), else on the one lab node whose plan executor
//! this is (a demo plan names each node's executor after the node; a real plan may name
//! them as it likes), else lab-wide.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::step::NODE_VARIABLE;
use crate::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use crate::plan::model::Plan;
use crate::sim::{Lab, SimExecutor, SimScope};

/// A plan executor on the lab.
pub struct LabExecutor {
    lab: Lab,
    /// The lab node this executor's commands act on when they name none.
    node: Option<String>,
    /// `None`: the lab's speed; `f64::INFINITY` replays without waiting.
    speed: Option<f64>,
}

impl LabExecutor {
    fn sim(&self, node: Option<&str>) -> SimExecutor {
        let scope = match node {
            Some(node) => SimScope::Node(node.to_string()),
            None => SimScope::Lab,
        };
        let executor = SimExecutor::new(self.lab.clone(), scope);
        match self.speed {
            Some(speed) => executor.with_speed(speed),
            None => executor,
        }
    }

    fn is_lab_node(&self, name: &str) -> bool {
        self.lab.topology().nodes.iter().any(|n| n.name == name)
    }
}

#[async_trait::async_trait]
impl Executor for LabExecutor {
    fn describe(&self) -> String {
        self.sim(self.node.as_deref()).describe()
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let placed = request
            .env
            .iter()
            .find(|(name, value)| name == NODE_VARIABLE && self.is_lab_node(value))
            .map(|(_, node)| node.clone());
        let node = placed.or_else(|| self.node.clone());
        self.sim(node.as_deref()).run(request, lines, cancel).await
    }
}

/// The lab node an executor name stands for: the node of that name, else the only node
/// of the plan that uses the executor.
fn node_of_executor(lab: &Lab, plan: &Plan, executor: &str) -> Option<String> {
    let in_lab = |name: &str| lab.topology().nodes.iter().any(|n| n.name == name);
    if in_lab(executor) {
        return Some(executor.to_string());
    }
    let mut users = plan
        .clusters
        .x
        .nodes
        .iter()
        .chain(&plan.clusters.y.nodes)
        .filter(|n| n.executor.as_deref() == Some(executor));
    match (users.next(), users.next()) {
        (Some(only), None) if in_lab(&only.name) => Some(only.name.clone()),
        _ => None,
    }
}

/// Every executor the plan names, and `local`, as lab executors. `speed` overrides the
/// lab's (`f64::INFINITY` to replay a journal).
pub fn lab_executors(
    lab: &Lab,
    plan: &Plan,
    speed: Option<f64>,
) -> BTreeMap<String, Arc<dyn Executor>> {
    plan.executors
        .keys()
        .map(String::as_str)
        .chain(["local"])
        .map(|name| {
            let executor = LabExecutor {
                lab: lab.clone(),
                node: node_of_executor(lab, plan, name),
                speed,
            };
            (name.to_string(), Arc::new(executor) as Arc<dyn Executor>)
        })
        .collect()
}

//! Plain words for the plan's parts, where the console shows them. (What a step runs is
//! the engine's to say: see `state::Previewer`.)

use crate::plan::model::{DatabaseSpec, Plan};
use crate::plan::steps::{ClusterSide, ExpandedPlan, PhaseName};

pub fn database_address(db: &DatabaseSpec) -> String {
    format!("{}:{}/{}", db.host, db.port, db.name)
}

pub fn side(side: ClusterSide) -> &'static str {
    match side {
        ClusterSide::X => "X",
        ClusterSide::Y => "Y",
    }
}

/// The header's "mode: strategy" words, e.g. `hybrid: CP dual-cluster, DP rolling`.
pub fn mode_and_strategy(plan: &Plan, expanded: &ExpandedPlan) -> String {
    let strategies: Vec<String> = expanded
        .phases
        .iter()
        .filter_map(|p| match p.name {
            PhaseName::Cluster => Some(p.strategy.as_str().to_string()),
            PhaseName::ControlPlane => Some(format!("CP {}", p.strategy.as_str())),
            PhaseName::DataPlane => Some(format!("DP {}", p.strategy.as_str())),
            PhaseName::Rollback => None,
        })
        .collect();
    format!("{}: {}", plan.mode.as_str(), strategies.join(", "))
}

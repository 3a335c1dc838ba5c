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

/// The phases' strategies, e.g. `CP dual-cluster, DP rolling`; `short`: with the known
/// words abbreviated ([`short_word`]), `CP dual, DP rolling`.
pub fn strategies(expanded: &ExpandedPlan, short: bool) -> String {
    let word = |w: &'static str| if short { short_word(w) } else { w };
    let strategies: Vec<String> = expanded
        .phases
        .iter()
        .filter_map(|p| match p.name {
            PhaseName::Cluster => Some(word(p.strategy.as_str()).to_string()),
            PhaseName::ControlPlane => Some(format!("CP {}", word(p.strategy.as_str()))),
            PhaseName::DataPlane => Some(format!("DP {}", word(p.strategy.as_str()))),
            PhaseName::Rollback => None,
        })
        .collect();
    strategies.join(", ")
}

/// The plan's mode as the header says it (`hybrid`; `short`: `trad` for traditional).
pub fn mode(plan: &Plan, short: bool) -> &'static str {
    let word = plan.mode.as_str();
    if short { short_word(word) } else { word }
}

/// A known word of the header, abbreviated whole so that it still reads: the strategy
/// names of Kong's upgrade guide and the plan's modes. Other words stay as they are.
pub fn short_word(word: &'static str) -> &'static str {
    match word {
        "dual-cluster" => "dual",
        "blue-green" => "b/g",
        "traditional" => "trad",
        other => other,
    }
}

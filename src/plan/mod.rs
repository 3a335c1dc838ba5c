//! The plan: pure data and pure functions. The YAML model, validation, Kong's version and
//! upgrade-path rules, the strategy chooser and the templates that expand a strategy into
//! steps. No I/O beyond reading the plan file.

pub mod chooser;
pub mod load;
pub mod model;
pub mod path;
pub mod placement;
pub mod steps;
pub mod templates;
pub mod version;
pub mod waves;

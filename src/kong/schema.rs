//! The migration state of a Kong database, read from `schema_meta`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SchemaState {
    /// No `schema_meta` table (or no core row): `kong migrations bootstrap` has never run.
    pub needs_bootstrap: bool,
    pub subsystems: Vec<SubsystemState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubsystemState {
    /// `core` or a plugin name.
    pub subsystem: String,
    pub last_executed: Option<String>,
    pub executed: Vec<String>,
    /// Ran `up`, waiting for `finish` (NULL in the table reads as empty).
    pub pending: Vec<String>,
}

impl SchemaState {
    pub fn pending_total(&self) -> usize {
        self.subsystems.iter().map(|s| s.pending.len()).sum()
    }

    /// The schema generation: `core.last_executed`, e.g. `025_390_to_3100`.
    pub fn core_generation(&self) -> Option<&str> {
        self.subsystems
            .iter()
            .find(|s| s.subsystem == "core")
            .and_then(|s| s.last_executed.as_deref())
    }
}

//! Traffic-split drivers: how kongup moves requests between X and Y.

use std::fmt;

/// A traffic split in percent; `x + y == 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub x: u8,
    pub y: u8,
}

impl Split {
    pub const ALL_X: Split = Split { x: 100, y: 0 };

    /// The split that sends `y_percent` (clamped to 100) to Y.
    pub fn to_y(y_percent: u8) -> Split {
        let y = y_percent.min(100);
        Split { x: 100 - y, y }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X {}% | Y {}%", self.x, self.y)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("{driver}: {message}")]
    Driver {
        driver: &'static str,
        message: String,
    },
}

/// Sets the split and reads back what the load balancer actually applied.
#[async_trait::async_trait]
pub trait TrafficDriver: Send + Sync {
    /// Shown to the operator: what will be changed and where.
    fn describe(&self) -> String;
    async fn set_split(&self, split: Split) -> Result<(), LbError>;
    /// The split the load balancer reports; `None` when the driver cannot read it back
    /// (manual, or a command driver without a `get`).
    async fn read_split(&self) -> Result<Option<Split>, LbError>;
}

//! Manual: kongup cannot change the load balancer, so the operator does.
//!
//! `describe` and `instruction` say what to set; `set_split` changes nothing and returns
//! Ok, because the engine asks the operator to confirm that they made the change (the
//! confirmation is what the journal records); `read_split` returns `None`, as there is
//! nothing kongup can read — the console shows the split as "confirmed by the operator",
//! not as read back.

use super::{LbError, ReadBackSource, Split, TrafficDriver};

#[derive(Debug, Clone, Default)]
pub struct ManualTrafficDriver;

impl ManualTrafficDriver {
    /// What the operator is asked to do for `split`.
    pub fn instruction(split: Split) -> String {
        format!(
            "Set your load balancer to send {}% of requests to X (the old cluster) and {}% to Y (the new one), then confirm.",
            split.x, split.y
        )
    }
}

#[async_trait::async_trait]
impl TrafficDriver for ManualTrafficDriver {
    fn describe(&self) -> String {
        "manual: you set the split on your load balancer yourself and confirm each change; kongup cannot read it back".to_string()
    }

    fn read_back_source(&self) -> ReadBackSource {
        ReadBackSource::Operator
    }

    async fn set_split(&self, _split: Split) -> Result<(), LbError> {
        Ok(())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        Ok(None)
    }
}

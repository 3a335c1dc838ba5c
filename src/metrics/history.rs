//! The last minutes of snapshots, for the metrics pane's sparklines.

use std::collections::VecDeque;
use std::time::Duration;

use crate::plan::steps::ClusterSide;

use super::{ClusterFigures, MetricsSnapshot};

/// How much history the monitor keeps by default.
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(600);

/// A bounded ring of snapshots, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotHistory {
    capacity: usize,
    snapshots: VecDeque<MetricsSnapshot>,
}

impl SnapshotHistory {
    /// Room for at least one snapshot.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        SnapshotHistory {
            capacity,
            snapshots: VecDeque::with_capacity(capacity),
        }
    }

    /// Room for `span` of snapshots taken every `interval`.
    pub fn for_span(span: Duration, interval: Duration) -> Self {
        let per_interval = interval.as_secs_f64().max(0.001);
        Self::with_capacity((span.as_secs_f64() / per_interval).ceil() as usize)
    }

    /// Adds the newest snapshot, dropping the oldest when full.
    pub fn push(&mut self, snapshot: MetricsSnapshot) {
        if self.snapshots.len() == self.capacity {
            self.snapshots.pop_front();
        }
        self.snapshots.push_back(snapshot);
    }

    pub fn latest(&self) -> Option<&MetricsSnapshot> {
        self.snapshots.back()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &MetricsSnapshot> + ExactSizeIterator {
        self.snapshots.iter()
    }

    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// One figure of one cluster over time, oldest first; `None` where it was unknown
    /// (a sparkline leaves a gap there rather than draw a zero).
    pub fn series(
        &self,
        side: ClusterSide,
        figure: impl Fn(&ClusterFigures) -> Option<f64>,
    ) -> Vec<Option<f64>> {
        self.snapshots
            .iter()
            .map(|s| figure(s.cluster(side)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn snapshot(second: i64, x_rps: Option<f64>) -> MetricsSnapshot {
        MetricsSnapshot {
            at: Utc.timestamp_opt(second, 0).unwrap(),
            x: ClusterFigures {
                requests_per_s: x_rps,
                ..Default::default()
            },
            y: ClusterFigures::default(),
        }
    }

    #[test]
    fn keeps_the_newest_snapshots_up_to_its_capacity() {
        let mut history = SnapshotHistory::for_span(Duration::from_secs(6), Duration::from_secs(2));
        assert_eq!(history.capacity(), 3);
        for second in 0..5 {
            history.push(snapshot(second, Some(second as f64)));
        }
        assert_eq!(
            history.series(ClusterSide::X, |f| f.requests_per_s),
            [Some(2.0), Some(3.0), Some(4.0)]
        );
        history.push(snapshot(5, None));
        assert_eq!(
            history.series(ClusterSide::X, |f| f.requests_per_s),
            [Some(3.0), Some(4.0), None]
        );
        assert_eq!(history.latest().unwrap().at.timestamp(), 5);
    }
}

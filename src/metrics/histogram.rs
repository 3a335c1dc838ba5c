//! Cumulative histograms (Prometheus `_bucket{le=…}` series) and their quantiles.

/// One bucket: how many observations were `<= le`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub le: f64,
    pub count: f64,
}

/// Why the buckets of a series make no histogram.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum BadBounds {
    #[error("bucket bound le=\"{0}\" is not a latency (negative or NaN)")]
    Negative(f64),
    #[error("bucket bound le=\"{le}\" follows le=\"{previous}\": bounds must increase")]
    NotIncreasing { previous: f64, le: f64 },
}

/// Buckets sorted by `le`; counts are cumulative. Complete when the last is `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    buckets: Vec<Bucket>,
}

impl Histogram {
    /// Sorts the buckets by `le`; counts are taken as they are.
    pub fn from_buckets(mut buckets: Vec<Bucket>) -> Histogram {
        if !buckets.is_sorted_by(|a, b| a.le <= b.le) {
            buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
        }
        Histogram { buckets }
    }

    /// Buckets as one series wrote them, refused when a bound is negative (or NaN) or does
    /// not increase: Prometheus requires increasing bounds, Kong writes them so from
    /// positive lists (kong/plugins/prometheus/prometheus.lua near line 939 and
    /// exporter.lua's *_LATENCY_BUCKETS, tag 3.9.1), and a latency has no negative bound.
    /// Sorting such a series would make up a histogram (a `le="-5"` made p99 −5 ms).
    pub fn checked(buckets: Vec<Bucket>) -> Result<Histogram, BadBounds> {
        let mut previous: Option<f64> = None;
        for bucket in &buckets {
            if bucket.le.is_nan() || bucket.le < 0.0 {
                return Err(BadBounds::Negative(bucket.le));
            }
            if let Some(previous) = previous.filter(|p| bucket.le <= *p) {
                return Err(BadBounds::NotIncreasing {
                    previous,
                    le: bucket.le,
                });
            }
            previous = Some(bucket.le);
        }
        Ok(Histogram { buckets })
    }

    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The finite bucket bounds, in order.
    pub fn finite_bounds(&self) -> impl Iterator<Item = f64> + '_ {
        self.buckets
            .iter()
            .map(|b| b.le)
            .filter(|le| le.is_finite())
    }

    /// Kong prints a series' buckets only from the first one that counted anything
    /// (`observe` creates a bucket key when it first increments it: prometheus.lua 2.8.5
    /// 492-531, 3.4.2 580-619), so the bounds below are absent, not unknown: their count
    /// is 0. Given the family's bounds, puts those back with a count of 0, so the lowest
    /// printed bucket starts at the bound below it rather than at 0. Does nothing when a
    /// printed bound is not one of `known` (other bounds than Kong's), or when only `+Inf`
    /// is printed (nothing says which bounds this node's exporter has).
    pub fn fill_leading_bounds(&mut self, known: &[f64]) {
        let Some(first) = self.finite_bounds().next() else {
            return;
        };
        if !self.finite_bounds().all(|le| known.contains(&le)) {
            return;
        }
        let mut buckets: Vec<Bucket> = known
            .iter()
            .filter(|le| **le < first)
            .map(|&le| Bucket { le, count: 0.0 })
            .collect();
        if buckets.is_empty() {
            return;
        }
        buckets.append(&mut self.buckets);
        self.buckets = buckets;
    }

    /// The same observations on fewer bounds: only the buckets whose bound is in `bounds`
    /// (and `+Inf`) are kept. Counts are cumulative, so a dropped bucket's observations
    /// fall into the next bound kept.
    pub fn on_bounds(&self, bounds: &[f64]) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .filter(|b| b.le == f64::INFINITY || bounds.contains(&b.le))
                .copied()
                .collect(),
        }
    }

    /// Observations in total: the `+Inf` bucket; `None` without one.
    pub fn count(&self) -> Option<f64> {
        self.buckets
            .last()
            .filter(|b| b.le == f64::INFINITY)
            .map(|b| b.count)
    }

    /// Adds another histogram's counts. With the same boundaries (Kong uses one set for
    /// all series) bucket by bucket; otherwise over the union of boundaries, each side
    /// contributing its cumulative count at the largest boundary not above it.
    pub fn add(&mut self, other: &Histogram) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
            return;
        }
        let same_bounds = self.buckets.len() == other.buckets.len()
            && self
                .buckets
                .iter()
                .zip(&other.buckets)
                .all(|(a, b)| a.le == b.le);
        if same_bounds {
            for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
                mine.count += theirs.count;
            }
            return;
        }
        let mut bounds: Vec<f64> = self
            .buckets
            .iter()
            .chain(&other.buckets)
            .map(|b| b.le)
            .collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let merged = bounds
            .into_iter()
            .map(|le| Bucket {
                le,
                count: cumulative_at(&self.buckets, le) + cumulative_at(&other.buckets, le),
            })
            .collect();
        self.buckets = merged;
    }

    /// The `q`-quantile (0..=1) the way Prometheus' `histogram_quantile` computes it:
    /// find the bucket holding the rank, interpolate linearly inside it (the first
    /// bucket starts at 0), and answer the highest finite boundary when the rank falls in
    /// the `+Inf` bucket. `None` without observations or without a `+Inf` bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count()?;
        if total <= 0.0 || total.is_nan() || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if self.buckets.len() < 2 {
            // Only `+Inf`: no boundary to report.
            return None;
        }
        let rank = q * total;
        // Cumulative counts may dip where a counter reset was half-seen: keep them
        // monotonic, as Prometheus does.
        let mut previous_count = 0.0_f64;
        let mut previous_le = 0.0_f64;
        for (index, bucket) in self.buckets.iter().enumerate() {
            let count = bucket.count.max(previous_count);
            if count >= rank {
                if bucket.le == f64::INFINITY {
                    return Some(self.buckets[index - 1].le);
                }
                if index == 0 && bucket.le <= 0.0 {
                    return Some(bucket.le);
                }
                let in_bucket = count - previous_count;
                if in_bucket <= 0.0 {
                    return Some(bucket.le);
                }
                return Some(
                    previous_le + (bucket.le - previous_le) * (rank - previous_count) / in_bucket,
                );
            }
            previous_count = count;
            previous_le = bucket.le;
        }
        None
    }
}

fn cumulative_at(buckets: &[Bucket], le: f64) -> f64 {
    buckets
        .iter()
        .take_while(|b| b.le <= le)
        .last()
        .map_or(0.0, |b| b.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(pairs: &[(f64, f64)]) -> Histogram {
        Histogram::from_buckets(
            pairs
                .iter()
                .map(|&(le, count)| Bucket { le, count })
                .collect(),
        )
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 100 observations: 10 in (0,10], 80 in (10,50], 10 in (50,100].
        let h = histogram(&[
            (10.0, 10.0),
            (50.0, 90.0),
            (100.0, 100.0),
            (f64::INFINITY, 100.0),
        ]);
        assert_eq!(h.quantile(0.05), Some(5.0));
        assert_eq!(h.quantile(0.5), Some(10.0 + 40.0 * 40.0 / 80.0));
        assert_eq!(h.quantile(0.95), Some(75.0));
        assert_eq!(h.quantile(0.99), Some(95.0));
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_finite_bound() {
        let h = histogram(&[(10.0, 1.0), (20.0, 2.0), (f64::INFINITY, 10.0)]);
        assert_eq!(h.quantile(0.99), Some(20.0));
    }

    #[test]
    fn no_observations_or_no_inf_bucket_gives_none() {
        assert_eq!(
            histogram(&[(10.0, 0.0), (f64::INFINITY, 0.0)]).quantile(0.5),
            None
        );
        assert_eq!(histogram(&[(10.0, 3.0)]).quantile(0.5), None);
    }

    #[test]
    fn leading_bounds_kong_did_not_print_are_put_back_as_zero() {
        let known = [25.0, 50.0, 80.0, 100.0, 250.0, 400.0];
        let mut h = histogram(&[(250.0, 3.0), (400.0, 4.0), (f64::INFINITY, 4.0)]);
        h.fill_leading_bounds(&known);
        let bounds: Vec<f64> = h.finite_bounds().collect();
        assert_eq!(bounds, known);
        assert_eq!(h.buckets()[0].count, 0.0);
        // The lowest observations are in (100, 250], not in (0, 250].
        assert_eq!(h.quantile(0.5), Some(100.0 + 150.0 * 2.0 / 3.0));

        // A bound that is not Kong's, or nothing but +Inf: left as printed.
        let mut other = histogram(&[(300.0, 1.0), (f64::INFINITY, 1.0)]);
        other.fill_leading_bounds(&known);
        assert_eq!(other.buckets().len(), 2);
        let mut only_inf = histogram(&[(f64::INFINITY, 2.0)]);
        only_inf.fill_leading_bounds(&known);
        assert_eq!(only_inf.buckets().len(), 1);
    }

    #[test]
    fn fewer_bounds_keep_the_observations_in_the_next_bound_kept() {
        let h = histogram(&[
            (250.0, 10.0),
            (400.0, 30.0),
            (700.0, 35.0),
            (1000.0, 40.0),
            (f64::INFINITY, 42.0),
        ]);
        let shared = h.on_bounds(&[400.0, 1000.0]);
        let counts: Vec<(f64, f64)> = shared.buckets().iter().map(|b| (b.le, b.count)).collect();
        assert_eq!(
            counts,
            [(400.0, 30.0), (1000.0, 40.0), (f64::INFINITY, 42.0)]
        );
    }

    #[test]
    fn adding_histograms_with_other_bounds_keeps_cumulative_counts() {
        let mut a = histogram(&[(10.0, 2.0), (f64::INFINITY, 4.0)]);
        a.add(&histogram(&[(5.0, 1.0), (f64::INFINITY, 3.0)]));
        let counts: Vec<(f64, f64)> = a.buckets().iter().map(|b| (b.le, b.count)).collect();
        assert_eq!(counts, [(5.0, 1.0), (10.0, 3.0), (f64::INFINITY, 7.0)]);
    }
}

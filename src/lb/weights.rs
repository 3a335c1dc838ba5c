//! Turning a percentage split into per-server weights, and weights back into a split.

use super::Split;

/// The weight each server of a side gets when that side takes everything.
pub const FULL_WEIGHT: u32 = 100;

/// Per-server weights for `x_servers` X servers and `y_servers` Y servers, each at most
/// `max_weight`, so that each side's total share is `split` as closely as possible.
///
/// Servers of a side share its weight evenly when that reproduces the split to the
/// percent; otherwise (few servers on one side facing a tiny share with a small maximum,
/// e.g. 1 % to four Y servers under HAProxy's 256) the side's total is spread as evenly
/// as integers allow, which may leave some of its servers at 0. A side at 0 % gets 0
/// everywhere; the other side never does.
pub fn server_weights(
    split: Split,
    x_servers: usize,
    y_servers: usize,
    max_weight: u32,
) -> (Vec<u32>, Vec<u32>) {
    let (nx, ny) = (x_servers.max(1) as u64, y_servers.max(1) as u64);
    let max = u64::from(max_weight.max(1));
    let full = u64::from(FULL_WEIGHT).min(max);
    let (total_x, total_y) = if split.y == 0 {
        (full * nx, 0)
    } else if split.x == 0 {
        (0, full * ny)
    } else {
        let even = best_totals(split, max, |wy| (wy * ny, nx), 1..=max);
        if reads_back(split, even) {
            even
        } else {
            best_totals(split, max * nx, |ty| (ty, 1), 1..=max * ny)
        }
    };
    (spread(total_x, nx), spread(total_y, ny))
}

/// Searches Y totals (as `y_total(step)` = (Y total, granularity of X's total)) for the
/// X total whose share is nearest `split`.
fn best_totals(
    split: Split,
    max_x_unit: u64,
    y_total: impl Fn(u64) -> (u64, u64),
    steps: std::ops::RangeInclusive<u64>,
) -> (u64, u64) {
    let target = f64::from(split.x) / 100.0;
    let mut best = (0, 0);
    let mut best_error = f64::INFINITY;
    for step in steps {
        let (ty, x_granularity) = y_total(step);
        // X's total is a multiple of its granularity (its server count when weights are even).
        let units = (f64::from(split.x) * ty as f64 / (f64::from(split.y) * x_granularity as f64))
            .round()
            .clamp(1.0, max_x_unit as f64) as u64;
        let tx = units * x_granularity;
        let error = (tx as f64 / (tx + ty) as f64 - target).abs();
        if error < best_error - 1e-12 {
            best_error = error;
            best = (tx, ty);
        }
        if error < 1e-9 {
            break;
        }
    }
    best
}

fn reads_back(split: Split, (tx, ty): (u64, u64)) -> bool {
    split_from_weights(tx, ty) == Some(split)
}

/// `total` over `servers` servers, as evenly as integers allow (the first ones get the
/// remainder).
fn spread(total: u64, servers: u64) -> Vec<u32> {
    (0..servers)
        .map(|i| (total / servers + u64::from(i < total % servers)) as u32)
        .collect()
}

/// The split that total weights of X and Y produce; `None` when both are 0 (no server
/// would take traffic).
pub fn split_from_weights(x_total: u64, y_total: u64) -> Option<Split> {
    let total = x_total + y_total;
    if total == 0 {
        return None;
    }
    let y = ((y_total as f64) * 100.0 / (total as f64)).round() as u8;
    Some(Split::to_y(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(weights: &[u32]) -> u64 {
        weights.iter().map(|&w| u64::from(w)).sum()
    }

    #[test]
    fn every_split_reads_back_exactly_for_up_to_eight_servers_a_side() {
        for nx in 1..=8usize {
            for ny in 1..=8usize {
                for y in 0..=100u8 {
                    let split = Split::to_y(y);
                    let (x, yw) = server_weights(split, nx, ny, 256);
                    assert_eq!((x.len(), yw.len()), (nx, ny));
                    assert!(x.iter().chain(&yw).all(|&w| w <= 256));
                    assert_eq!(
                        split_from_weights(sum(&x), sum(&yw)),
                        Some(split),
                        "{nx} X, {ny} Y servers: {x:?} / {yw:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn servers_of_a_side_share_evenly_when_that_is_exact() {
        assert_eq!(
            server_weights(Split::to_y(5), 2, 3, 256),
            (vec![57, 57], vec![2, 2, 2])
        );
    }

    #[test]
    fn a_tiny_share_over_many_servers_under_a_low_maximum_is_spread_unevenly() {
        // 1 % to four Y servers against one X server capped at 256: an even share
        // cannot go below 4/260 = 1.5 %.
        let (x, y) = server_weights(Split::to_y(1), 1, 4, 256);
        assert_eq!(split_from_weights(sum(&x), sum(&y)), Some(Split::to_y(1)));
        assert!(y.iter().max().unwrap() - y.iter().min().unwrap() <= 1);
    }

    #[test]
    fn a_side_at_zero_gets_weight_zero_and_the_other_full() {
        assert_eq!(
            server_weights(Split::ALL_X, 2, 3, 256),
            (vec![100, 100], vec![0, 0, 0])
        );
        assert_eq!(
            server_weights(Split::to_y(100), 1, 1, 256),
            (vec![0], vec![100])
        );
    }

    #[test]
    fn one_server_each_gives_plain_percentages() {
        assert_eq!(
            server_weights(Split::to_y(1), 1, 1, 256),
            (vec![99], vec![1])
        );
        assert_eq!(
            server_weights(Split::to_y(50), 1, 1, 256),
            (vec![1], vec![1])
        );
    }

    #[test]
    fn no_weight_means_no_split() {
        assert_eq!(split_from_weights(0, 0), None);
        assert_eq!(split_from_weights(3, 1), Some(Split::to_y(25)));
    }
}

//! The strategy chooser, after the flow chart in Kong's upgrade overview: traditional mode
//! gets dual-cluster when a second cluster fits, else in-place (or blue-green for a patch
//! upgrade); DB-less rolls; hybrid picks the control-plane strategy by the traditional rule
//! and then rolls the data planes.

use super::model::{Mode, Strategy};
use super::path::BLUE_GREEN_FLOOR;
use super::version::KongVersion;

/// The chooser's pick, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyPick {
    /// The strategy for the cluster (traditional, DB-less) or the control planes (hybrid).
    pub primary: Strategy,
    /// Hybrid only: the data planes' strategy, always `Rolling`.
    pub data_planes: Option<Strategy>,
    /// A sentence or two an operator can check the pick against.
    pub reason: String,
}

/// Picks the strategy for an upgrade from `from` to `to` in `mode`. `spare_capacity` says
/// whether a second cluster (and its database) can run beside X for the upgrade.
pub fn choose(
    mode: Mode,
    from: KongVersion,
    to: KongVersion,
    spare_capacity: bool,
) -> StrategyPick {
    match mode {
        Mode::Dbless => StrategyPick {
            primary: Strategy::Rolling,
            data_planes: None,
            reason: "DB-less nodes each hold their own declarative configuration and share no database, so Kong's strategy for them is rolling: add Y nodes, move traffic over, retire X nodes.".to_string(),
        },
        Mode::Traditional => {
            let (primary, reason) = database_strategy(mode, from, to, spare_capacity);
            StrategyPick {
                primary,
                data_planes: None,
                reason,
            }
        }
        Mode::Hybrid => {
            let (primary, cp_reason) = database_strategy(mode, from, to, spare_capacity);
            StrategyPick {
                primary,
                data_planes: Some(Strategy::Rolling),
                reason: format!(
                    "Control planes: {cp_reason} Data planes: rolling, Kong's only strategy for nodes without a database, after the control planes because a control plane's minor must be at least its data planes'."
                ),
            }
        }
    }
}

/// The traditional-mode rule, also used for hybrid control planes (`mode` words what in
/// place stops: a traditional cluster's proxy, or only a hybrid deployment's control planes).
fn database_strategy(
    mode: Mode,
    from: KongVersion,
    to: KongVersion,
    spare_capacity: bool,
) -> (Strategy, String) {
    if spare_capacity {
        return (
            Strategy::DualCluster,
            "there is room for a second cluster, so dual-cluster: Y gets its own database restored from X's backup and traffic moves over gradually. Kong recommends it whenever the resources exist: it is the safest strategy and has no planned downtime.".to_string(),
        );
    }
    let patch_upgrade = from.minor_line() == to.minor_line();
    if patch_upgrade && from >= BLUE_GREEN_FLOOR {
        return (
            Strategy::BlueGreen,
            format!(
                "there is no room for a second cluster and database, and {from} -> {to} is a patch upgrade from 2.8.2 or later, so blue-green: Y shares X's database after `kong migrations up`, traffic moves over gradually with no downtime, and `kong migrations finish` runs only once Y has proved itself."
            ),
        );
    }
    let why_not_blue_green = if patch_upgrade {
        format!("blue-green needs 2.8.2 or later and X runs {from}")
    } else {
        format!(
            "Kong recommends blue-green only between patch releases and {from} -> {to} changes the minor"
        )
    };
    let stops = if mode == Mode::Hybrid {
        // Data planes proxy with the configuration they hold while no control plane
        // answers: the upgrade guide's in-place flow for hybrid control planes.
        "X's control planes stop, Y's migrate X's database and start on it. It needs the fewest resources; the data planes keep proxying with their last configuration meanwhile, only configuration changes wait"
    } else {
        "X stops, Y migrates X's database and starts on it. It needs the fewest resources but the proxy is down between the two"
    };
    (
        Strategy::InPlace,
        format!(
            "there is no room for a second cluster and database, and {why_not_blue_green}, so in-place: {stops}."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KongVersion {
        s.parse().unwrap()
    }

    #[test]
    fn traditional_with_spare_capacity_is_dual_cluster() {
        let pick = choose(Mode::Traditional, v("3.4.0"), v("3.5.0"), true);
        assert_eq!(pick.primary, Strategy::DualCluster);
        assert_eq!(pick.data_planes, None);
        assert!(pick.reason.contains("safest"), "{}", pick.reason);
        // Spare capacity wins even for a patch upgrade.
        let pick = choose(Mode::Traditional, v("3.4.0"), v("3.4.1"), true);
        assert_eq!(pick.primary, Strategy::DualCluster);
    }

    #[test]
    fn traditional_patch_upgrade_without_capacity_is_blue_green() {
        let pick = choose(Mode::Traditional, v("3.4.1"), v("3.4.3"), false);
        assert_eq!(pick.primary, Strategy::BlueGreen);
        assert!(pick.reason.contains("patch upgrade"), "{}", pick.reason);
        let pick = choose(Mode::Traditional, v("2.8.2.0"), v("2.8.4.1"), false);
        assert_eq!(pick.primary, Strategy::BlueGreen);
    }

    #[test]
    fn traditional_patch_upgrade_below_2_8_2_is_in_place() {
        let pick = choose(Mode::Traditional, v("2.8.1"), v("2.8.4"), false);
        assert_eq!(pick.primary, Strategy::InPlace);
        assert!(pick.reason.contains("needs 2.8.2"), "{}", pick.reason);
    }

    #[test]
    fn traditional_minor_upgrade_without_capacity_is_in_place() {
        let pick = choose(Mode::Traditional, v("3.4.1"), v("3.5.0"), false);
        assert_eq!(pick.primary, Strategy::InPlace);
        assert!(pick.reason.contains("only between patch releases"));
        assert!(pick.reason.contains("proxy is down"));
    }

    #[test]
    fn hybrid_in_place_says_the_data_planes_keep_proxying() {
        let pick = choose(Mode::Hybrid, v("3.4.1"), v("3.5.0"), false);
        assert_eq!(pick.primary, Strategy::InPlace);
        assert!(!pick.reason.contains("proxy is down"), "{}", pick.reason);
        assert!(
            pick.reason.contains("the data planes keep proxying"),
            "{}",
            pick.reason
        );
    }

    #[test]
    fn dbless_always_rolls() {
        for spare in [true, false] {
            let pick = choose(Mode::Dbless, v("3.4.1"), v("3.10.0"), spare);
            assert_eq!(pick.primary, Strategy::Rolling);
            assert_eq!(pick.data_planes, None);
            assert!(pick.reason.contains("rolling"));
        }
    }

    #[test]
    fn hybrid_picks_the_control_plane_strategy_then_rolls_data_planes() {
        let cases = [
            ("3.4.0", "3.5.0", true, Strategy::DualCluster),
            ("3.4.0", "3.5.0", false, Strategy::InPlace),
            ("3.4.0", "3.4.2", false, Strategy::BlueGreen),
        ];
        for (from, to, spare, expected) in cases {
            let pick = choose(Mode::Hybrid, v(from), v(to), spare);
            assert_eq!(pick.primary, expected, "{from} -> {to} spare={spare}");
            assert_eq!(pick.data_planes, Some(Strategy::Rolling));
            assert!(pick.reason.starts_with("Control planes: "));
            assert!(pick.reason.contains("Data planes: rolling"));
        }
    }
}

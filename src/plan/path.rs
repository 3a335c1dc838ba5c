//! Kong's upgrade-path rules (docs/kong/migrations-and-paths.md §3, and Kong's guide at
//! https://docs.konghq.com/gateway/latest/upgrade/): which hops an upgrade
//! from X to Y must make, which of them Kong guarantees, and which strategies fit.
//!
//! A path lists only the stops the rules make mandatory (2.8 before 3.x, Enterprise 3.1.1.3
//! for hybrid deployments on an earlier 3.1); a jump Kong allows but does not guarantee
//! stays one hop, flagged, with the guaranteed route suggested in a warning. Open source
//! and Enterprise differ in places: [`edition_of`] says which a version is.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use serde::Serialize;

use super::model::{DatabaseKind, Mode, Strategy};
use super::version::KongVersion;

/// How to get from one Kong version to another, hop by hop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradePath {
    pub from: KongVersion,
    pub to: KongVersion,
    /// The stops in order; the last hop's `to` is always the target.
    pub hops: Vec<Hop>,
    /// Every hop is one Kong guarantees (patch, adjacent minor or adjacent LTS).
    pub guaranteed: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub to: KongVersion,
    pub why: String,
}

/// Why no upgrade path exists. `Display` says why and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "{from} and {to} are the same version: there is nothing to upgrade; check the target version"
    )]
    SameVersion { from: KongVersion, to: KongVersion },
    #[error(
        "{to} is older than {from}: Kong upgrades only go forward, and an older Kong cannot use a database migrated by a newer one; to return to {to}, restore the backup taken before the upgrade from {to}"
    )]
    Downgrade { from: KongVersion, to: KongVersion },
    #[error(
        "Kong removed Cassandra support in 3.4.0, so a Cassandra deployment cannot reach {to}: migrate the data to PostgreSQL first (Kong's upgrade considerations describe how) and plan the upgrade with database postgres, or stop at 3.3.x"
    )]
    CassandraRemoved { from: KongVersion, to: KongVersion },
    #[error(
        "{from} is a Kong 0.x release, older than any upgrade rule kongup knows (they start at 1.x): upgrade to 1.x by Kong's 1.0 upgrade notes first, then ask again from there"
    )]
    BeforeOne { from: KongVersion },
}

/// A `major.minor` release line.
type Line = (u32, u32);

/// Long-term-support lines, oldest first (Kong's LTS upgrade guides; docs/kong/migrations-and-paths.md §3). Kong guarantees upgrades between
/// adjacent ones.
const LTS_LINES: [Line; 4] = [(2, 8), (3, 4), (3, 10), (3, 14)];

/// The last minor of each finished major: the release after it is `major+1.0`, so the two
/// lines are adjacent even though the major changes.
const LAST_MINOR_OF_MAJOR: [Line; 2] = [(1, 5), (2, 8)];

/// The highest major whose rules kongup knows.
const LAST_KNOWN_MAJOR: u32 = 3;

/// Open source or Enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    OpenSource,
    Enterprise,
}

/// Which edition a version is: Kong's open-source tags have three parts (`3.9.1`),
/// Enterprise releases four (`3.4.3.12`). The one place kongup decides it: a plan key
/// naming the edition, when there is one, takes precedence here.
pub fn edition_of(version: KongVersion) -> Edition {
    if version.is_enterprise_form() {
        Edition::Enterprise
    } else {
        Edition::OpenSource
    }
}

/// Before 3.x the open-source upgrade notes stop at this 2.8 release: "If you are
/// migrating from Kong 2.7.x or lower versions, first migrate to Kong 2.8.1 … For Hybrid
/// mode deployments, both the Control Planes and Data Planes should be on 2.8.x"
/// (UPGRADE.md:102-110 at 3.0.0, 3.4.2, 3.9.1 and master).
const OSS_STOP_BEFORE_3X: KongVersion = KongVersion::new(2, 8, 1);
/// Enterprise's upgrade table sends hybrid 2.x-2.7.x and any 1.x to 2.8.2.x before 3.0
/// (docs.konghq.com source, app/_src/gateway/upgrade-v2.md @ f9d47c57ff; docs, not source).
const ENTERPRISE_STOP_BEFORE_3X: KongVersion = KongVersion::enterprise(2, 8, 2, 0);

/// Cassandra was removed in this release.
const CASSANDRA_REMOVED_IN: KongVersion = KongVersion::new(3, 4, 0);

/// Enterprise hybrid deployments on 3.1.0.x-3.1.1.2 go to 3.1.1.3 before 3.2 (the same
/// Enterprise table; docs, not source).
const ENTERPRISE_HYBRID_3_1_STOP: KongVersion = KongVersion::enterprise(3, 1, 1, 3);

/// The newest open-source tag in Kong's repository (github.com/Kong/kong tags end at 3.9.3;
/// master's kong/meta.lua says 3.10.0, no 3.10 tag exists). Whether 3.10 is Enterprise
/// only is not stated in Kong's source: unverified.
const NEWEST_OSS_TAG: KongVersion = KongVersion::new(3, 9, 3);

/// Blue-green (traditional mode, hybrid control planes) needs at least this version on X.
pub(super) const BLUE_GREEN_FLOOR: KongVersion = KongVersion::new(2, 8, 2);

/// Minor lines kongup will look through when it searches for a guaranteed route; a
/// minor above this is not a real Kong line.
const MAX_SEARCHED_MINOR: u32 = 99;

fn line_of(v: KongVersion) -> Line {
    v.minor_line()
}

fn show_line(line: Line) -> String {
    format!("{}.{}", line.0, line.1)
}

/// The release line after `line`.
fn next_line(line: Line) -> Line {
    if LAST_MINOR_OF_MAJOR.contains(&line) {
        (line.0 + 1, 0)
    } else {
        (line.0, line.1 + 1)
    }
}

fn next_lts(line: Line) -> Option<Line> {
    let at = LTS_LINES.iter().position(|&l| l == line)?;
    LTS_LINES.get(at + 1).copied()
}

/// The first LTS line above `line`, if kongup knows one.
fn lts_after(line: Line) -> Option<Line> {
    LTS_LINES.iter().copied().find(|&l| l > line)
}

/// Why Kong guarantees a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarantee {
    Patch,
    AdjacentMinor,
    AdjacentLts,
}

fn guarantee(from: KongVersion, to: KongVersion) -> Option<Guarantee> {
    let (a, b) = (line_of(from), line_of(to));
    if a == b {
        Some(Guarantee::Patch)
    } else if next_line(a) == b {
        Some(Guarantee::AdjacentMinor)
    } else if next_lts(a) == Some(b) {
        Some(Guarantee::AdjacentLts)
    } else {
        None
    }
}

/// The shortest chain of lines after `from` up to `to` in which every link is guaranteed
/// (adjacent minor or adjacent LTS). `None` when kongup knows no such chain.
fn guaranteed_route(from: Line, to: Line) -> Option<Vec<Line>> {
    let mut came_from: HashMap<Line, Line> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(line) = queue.pop_front() {
        if line == to {
            let mut route = vec![to];
            let mut at = to;
            while let Some(&prev) = came_from.get(&at) {
                if prev == from {
                    break;
                }
                route.push(prev);
                at = prev;
            }
            route.reverse();
            return Some(route);
        }
        for next in [Some(next_line(line)), next_lts(line)]
            .into_iter()
            .flatten()
        {
            if next <= to && next.1 <= MAX_SEARCHED_MINOR && !came_from.contains_key(&next) {
                came_from.insert(next, line);
                queue.push_back(next);
            }
        }
    }
    None
}

/// `3.4.0 -> 3.5.x -> 3.6.0`: a route shown with its stops as lines, ending at `to` when
/// given, else at the route's last line.
fn show_route(from: KongVersion, route: &[Line], to: Option<KongVersion>) -> String {
    let mut parts = vec![from.to_string()];
    let between = match to {
        Some(_) => route.split_last().map_or(&[][..], |(_, rest)| rest),
        None => route,
    };
    parts.extend(between.iter().map(|&l| format!("{}.x", show_line(l))));
    parts.extend(to.map(|v| v.to_string()));
    parts.join(" -> ")
}

/// Kong's guide for an LTS-to-LTS hop (developer.konghq.com; docs, not source).
fn lts_guide(from: Line, to: Line) -> Option<&'static str> {
    match (from, to) {
        ((2, 8), (3, 4)) => Some("https://developer.konghq.com/gateway/upgrade/lts-upgrade-28-34"),
        ((3, 4), (3, 10)) => Some("https://developer.konghq.com/gateway/upgrade/lts-upgrade"),
        ((3, 10), (3, 14)) => {
            Some("https://developer.konghq.com/gateway/upgrade/lts-upgrade-310-314/")
        }
        _ => None,
    }
}

/// The Kong-shipped configuration check for an LTS-to-LTS hop, if there is one.
fn lts_preflight_hint(from: Line, to: Line) -> Option<&'static str> {
    match (from, to) {
        ((2, 8), (3, 4)) => Some(
            " Before it, run `kong check --lts_34_compatibility` on X (shipped from 2.8.4.14) to find configuration 3.4 will reject.",
        ),
        ((3, 10), (3, 14)) => Some(
            " Before it, run `kong check --lts_314_compatibility` on X (shipped from 3.10.0.11) to find configuration 3.14 will reject.",
        ),
        _ => None,
    }
}

/// One sentence on whether Kong guarantees the hop `from -> to`.
fn explain_hop(from: KongVersion, to: KongVersion) -> String {
    let (a, b) = (line_of(from), line_of(to));
    match guarantee(from, to) {
        Some(Guarantee::Patch) => format!(
            "Patch upgrade within {}: Kong guarantees upgrades between patch releases of one minor.",
            show_line(a)
        ),
        Some(Guarantee::AdjacentMinor) if a.0 != b.0 => format!(
            "{} is the last {}.x minor and {} the release after it: adjacent versions, which Kong tests migrations between, so the hop is guaranteed. It is a major upgrade: read the {}.0 breaking changes closely.",
            show_line(a),
            a.0,
            show_line(b),
            b.0
        ),
        Some(Guarantee::AdjacentMinor) => format!(
            "Adjacent minors ({} to {}): Kong tests migrations between adjacent minors, so the hop is guaranteed.",
            show_line(a),
            show_line(b)
        ),
        Some(Guarantee::AdjacentLts) => format!(
            "LTS to LTS ({} to {}): Kong guarantees upgrades between adjacent long-term-support lines and publishes a guide for this one.{}",
            show_line(a),
            show_line(b),
            lts_preflight_hint(a, b).unwrap_or("")
        ),
        None => format!(
            "{} to {} skips releases and is not LTS to LTS: Kong allows it but does not guarantee it (see the warnings for the guaranteed route).",
            show_line(a),
            show_line(b)
        ),
    }
}

/// The warning for a hop Kong does not guarantee, with the guaranteed route to suggest.
fn unguaranteed_warning(from: KongVersion, to: KongVersion, cassandra: bool) -> String {
    let (a, b) = (line_of(from), line_of(to));
    let mut warning = format!("{from} -> {to} is allowed but not a guaranteed upgrade path.");
    match guaranteed_route(a, b) {
        Some(route) => {
            warning.push_str(&format!(
                " The guaranteed route takes {} hops, each an adjacent minor or adjacent LTS (the upgrades Kong tests): {}.",
                route.len(),
                show_route(from, &route, Some(to))
            ));
            // Going a little further, to the LTS just above the target, can be shorter
            // (3.4 -> 3.9 is five hops; 3.4 -> 3.10 is one).
            let lts_target = lts_after(b)
                .filter(|&lts| !(cassandra && lts >= line_of(CASSANDRA_REMOVED_IN)));
            if let Some(lts) = lts_target
                && let Some(lts_route) = guaranteed_route(a, lts)
                && lts_route.len() < route.len()
            {
                warning.push_str(&format!(
                    " If the LTS {} will do as the target instead, it is {} away: {}.",
                    show_line(lts),
                    if lts_route.len() == 1 {
                        "one guaranteed hop".to_string()
                    } else {
                        format!("{} guaranteed hops", lts_route.len())
                    },
                    show_route(from, &lts_route, None)
                ));
            }
        }
        None => warning.push_str(&format!(
            " kongup knows no guaranteed route to {}: read Kong's upgrade guide for that release before going on.",
            show_line(b)
        )),
    }
    warning
}

/// Works out the upgrade path from `from` to `to` for a deployment in `mode` on `database`.
pub fn upgrade_path(
    from: KongVersion,
    to: KongVersion,
    mode: Mode,
    database: DatabaseKind,
) -> Result<UpgradePath, PathError> {
    if from.major == 0 {
        return Err(PathError::BeforeOne { from });
    }
    if from == to {
        return Err(PathError::SameVersion { from, to });
    }
    if to < from {
        return Err(PathError::Downgrade { from, to });
    }
    let cassandra = database == DatabaseKind::Cassandra;
    if cassandra && to >= CASSANDRA_REMOVED_IN {
        return Err(PathError::CassandraRemoved { from, to });
    }

    // Mandatory stops, each with why the rules demand it.
    let mut stops: Vec<(KongVersion, String)> = Vec::new();
    if to.major >= 3 && from.minor_line() < (2, 8) {
        match edition_of(from) {
            Edition::OpenSource => stops.push((
                OSS_STOP_BEFORE_3X,
                format!(
                    "Kong's upgrade notes send 2.7.x and older to 2.8.1 before 3.0, and in hybrid mode both control and data planes to 2.8.x (UPGRADE.md), so {from} stops at 2.8, the 2.x LTS: from there Kong guarantees the LTS upgrade to 3.4. Prefer the latest 2.8 patch you can get."
                ),
            )),
            // Traditional 2.x needs 2.8.2 only for blue-green (the strategy check asks it)
            // and DB-less 2.x goes to 3.0 directly, by the same table.
            Edition::Enterprise if from.major < 2 || mode == Mode::Hybrid => stops.push((
                ENTERPRISE_STOP_BEFORE_3X,
                format!(
                    "Kong Enterprise's upgrade guide sends {} to 2.8.2.x before 3.0 (its upgrade-path table; docs, not source), so {from} stops at 2.8, the 2.x LTS. Prefer the latest 2.8 patch you can get.",
                    if from.major < 2 { "1.x" } else { "hybrid deployments on 2.x-2.7.x" }
                ),
            )),
            Edition::Enterprise => {}
        }
    }
    let hybrid_3_1 = mode == Mode::Hybrid && from.minor_line() == (3, 1);
    if hybrid_3_1
        && edition_of(from) == Edition::Enterprise
        && from < ENTERPRISE_HYBRID_3_1_STOP
        && to > ENTERPRISE_HYBRID_3_1_STOP
    {
        stops.push((
            ENTERPRISE_HYBRID_3_1_STOP,
            format!(
                "In hybrid mode Kong Enterprise {from} talks to its control planes over wRPC only (3.1.0 removed the WebSocket protocol, 3.2.0 brought it back and disabled wRPC), and Kong's Enterprise upgrade table sends 3.1.0.x-3.1.1.2 to 3.1.1.3 before 3.2 (docs), so go to 3.1.1.3 first to keep control and data planes connected."
            ),
        ));
    }
    stops.push((to, String::new()));

    let mut hops = Vec::with_capacity(stops.len());
    let mut warnings = Vec::new();
    let mut guaranteed = true;
    let mut at = from;
    for (stop, reason) in stops {
        let explanation = explain_hop(at, stop);
        let why = if reason.is_empty() {
            explanation
        } else {
            format!("{reason} {explanation}")
        };
        if guarantee(at, stop).is_none() {
            guaranteed = false;
            warnings.push(unguaranteed_warning(at, stop, cassandra));
        }
        if mode == Mode::Hybrid && stop.major != at.major {
            warnings.push(format!(
                "Hybrid mode across a major version ({}.x to {}.x): control and data planes must share the major version, so X's data planes cannot connect to Y's control planes. Keep X's control planes serving X's data planes until those are replaced (dual-cluster for the control planes), and roll the data planes soon after.",
                at.major, stop.major
            ));
        }
        hops.push(Hop { to: stop, why });
        at = stop;
    }
    if hybrid_3_1 && edition_of(from) == Edition::OpenSource && line_of(to) > (3, 1) {
        warnings.push(format!(
            "In hybrid mode open-source {from} data planes speak only wRPC to their control planes: 3.1.0 removed the WebSocket protocol and 3.2.0 brought the WebSocket protocol back, disabling wRPC (CHANGELOG.md, 3.1.0 and 3.2.0 sections), so a {}.{} control plane cannot serve them. There is no 3.1.1.x open-source release that bridges the two (that is Enterprise): once the control planes are upgraded, X's data planes keep proxying with their last configuration but get no updates until replaced. Upgrade the data planes right after the control planes, or keep X's control planes serving them meanwhile (dual-cluster).",
            to.major, to.minor
        ));
    }
    let oss_source_past_3_9 = edition_of(from) == Edition::OpenSource;
    if line_of(to) > line_of(NEWEST_OSS_TAG)
        && (edition_of(to) == Edition::OpenSource || oss_source_past_3_9)
    {
        warnings.push(format!(
            "no open-source 3.10+ release is known (the newest OSS tag is {NEWEST_OSS_TAG}): a 3.10+ target with a three-part version, or an OSS source going past 3.9, is an Enterprise path. Check that Y installs Kong Enterprise packages and write its four-part version (e.g. 3.10.0.2){}; whether 3.10 is Enterprise only is not stated in Kong's source.",
            if oss_source_past_3_9 {
                "; X's open-source entities then move to Enterprise, which Kong's Enterprise documentation describes separately"
            } else {
                ""
            }
        ));
    }
    if to.major > LAST_KNOWN_MAJOR {
        warnings.push(format!(
            "kongup knows Kong's upgrade rules up to {LAST_KNOWN_MAJOR}.x; check Kong's upgrade guide for {to} before relying on this path."
        ));
    }
    Ok(UpgradePath {
        from,
        to,
        hops,
        guaranteed,
        warnings,
    })
}

/// Whether `strategy` fits an upgrade from `from` to `to` in `mode` (for hybrid, the
/// control-plane strategy). `Ok` carries warnings; `Err` says why it is refused.
pub fn check_strategy(
    strategy: Strategy,
    from: KongVersion,
    to: KongVersion,
    mode: Mode,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    match (mode, strategy) {
        (Mode::Dbless, Strategy::Rolling) => return Ok(warnings),
        (Mode::Dbless, other) => {
            return Err(format!(
                "{} needs a database, and DB-less nodes have none: Kong's strategy for DB-less mode is rolling",
                other.as_str()
            ));
        }
        (Mode::Traditional, Strategy::Rolling) => {
            return Err("rolling is for nodes without a database (DB-less mode, hybrid data planes): traditional mode uses dual-cluster, in-place or blue-green".to_string());
        }
        (Mode::Hybrid, Strategy::Rolling) => {
            return Err("in hybrid mode the strategy names how the control planes are upgraded (dual-cluster, in-place or blue-green); the data planes always roll, after them".to_string());
        }
        (_, Strategy::DualCluster) => {}
        (_, Strategy::InPlace) => {
            if mode == Mode::Traditional {
                warnings.push("In-place stops cluster X before Y starts: the proxy is down from stop-x until start-y. Kong recommends it only when there are no resources for a dual-cluster upgrade.".to_string());
            }
            if mode == Mode::Hybrid && from.major != to.major {
                warnings.push(format!(
                    "In-place stops X's control planes, and across a major version ({}.x to {}.x) X's data planes cannot connect to Y's: they keep proxying with their last configuration but get no updates until replaced. Dual-cluster keeps X's control planes serving them meanwhile.",
                    from.major, to.major
                ));
            }
        }
        (_, Strategy::BlueGreen) => {
            if from < BLUE_GREEN_FLOOR {
                return Err(format!(
                    "blue-green needs Kong 2.8.2 or later on X (2.8.2 added blue-green migration support) and X runs {from}: upgrade X to 2.8.2 or later first, or use dual-cluster or in-place"
                ));
            }
            if line_of(from) != line_of(to) {
                warnings.push(format!(
                    "Kong recommends blue-green only between patch releases of one minor, and {from} -> {to} changes the minor: its migrations are the least tested with X still running on them. Prefer dual-cluster if a second database is possible, and rehearse in staging either way."
                ));
            }
            if let Some(guide) = lts_guide(line_of(from), line_of(to)) {
                warnings.push(format!(
                    "Kong's LTS upgrade guide for {} -> {} lists three strategies: in-place, dual-cluster and rolling; blue-green is not one of them ({guide}, from the docs, not verified from source). Prefer dual-cluster.",
                    show_line(line_of(from)),
                    show_line(line_of(to))
                ));
            }
        }
    }
    Ok(warnings)
}

impl fmt::Display for UpgradePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Upgrade path {} -> {}: {}",
            self.from,
            self.to,
            if self.guaranteed {
                "guaranteed by Kong"
            } else {
                "allowed, not guaranteed"
            }
        )?;
        let mut at = self.from;
        for (n, hop) in self.hops.iter().enumerate() {
            writeln!(f, "  {}. {} -> {}", n + 1, at, hop.to)?;
            writeln!(f, "     {}", hop.why)?;
            at = hop.to;
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KongVersion {
        s.parse().unwrap()
    }

    fn path(from: &str, to: &str) -> UpgradePath {
        upgrade_path(v(from), v(to), Mode::Traditional, DatabaseKind::Postgres).unwrap()
    }

    fn targets(p: &UpgradePath) -> Vec<String> {
        p.hops.iter().map(|h| h.to.to_string()).collect()
    }

    #[test]
    fn four_part_versions_compare_with_three_part_ones() {
        let p = path("3.4.3.12", "3.4.3.13");
        assert_eq!(targets(&p), ["3.4.3.13"]);
        assert!(p.guaranteed);
        // 3.4.0 and 3.4.0.0 are the same release.
        assert!(matches!(
            upgrade_path(
                v("3.4.0"),
                v("3.4.0.0"),
                Mode::Traditional,
                DatabaseKind::Postgres
            ),
            Err(PathError::SameVersion { .. })
        ));
        let mixed = path("3.4.3", "3.4.3.1");
        assert!(mixed.guaranteed);
        assert_eq!(targets(&mixed), ["3.4.3.1"]);
    }

    #[test]
    fn patch_within_a_minor_is_one_guaranteed_hop() {
        let p = path("3.4.1", "3.4.3");
        assert_eq!(targets(&p), ["3.4.3"]);
        assert!(p.guaranteed);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert!(p.hops[0].why.contains("Patch upgrade within 3.4"));
    }

    #[test]
    fn adjacent_minor_is_one_guaranteed_hop() {
        let p = path("3.8.1", "3.9.0");
        assert_eq!(targets(&p), ["3.9.0"]);
        assert!(p.guaranteed);
        assert!(p.hops[0].why.contains("Adjacent minors (3.8 to 3.9)"));
    }

    #[test]
    fn last_minor_of_a_major_is_adjacent_to_the_next_major() {
        let p = path("2.8.4", "3.0.1");
        assert!(p.guaranteed);
        assert!(p.hops[0].why.contains("last 2.x minor"));
        assert!(p.hops[0].why.contains("major upgrade"));
    }

    #[test]
    fn adjacent_lts_lines_are_guaranteed() {
        for (from, to) in [
            ("2.8.4", "3.4.0"),
            ("3.4.3.12", "3.10.0.1"),
            ("3.10.0", "3.14.1"),
        ] {
            let p = path(from, to);
            assert_eq!(targets(&p), [to], "{from} -> {to}");
            assert!(p.guaranteed, "{from} -> {to}");
            assert!(p.hops[0].why.contains("LTS to LTS"), "{from} -> {to}");
        }
        assert!(
            path("2.8.4", "3.4.0").hops[0]
                .why
                .contains("--lts_34_compatibility")
        );
        assert!(
            path("3.10.0", "3.14.0").hops[0]
                .why
                .contains("--lts_314_compatibility")
        );
    }

    #[test]
    fn lts_lines_that_are_not_adjacent_are_not_guaranteed() {
        let p = path("2.8.4", "3.10.0");
        assert_eq!(targets(&p), ["3.10.0"]);
        assert!(!p.guaranteed);
        assert!(
            p.warnings[0].contains("2.8.4 -> 3.4.x -> 3.10.0"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn multi_minor_jump_is_allowed_but_not_guaranteed_and_suggests_hops() {
        let p = path("3.4.0", "3.9.0");
        assert_eq!(targets(&p), ["3.9.0"]);
        assert!(!p.guaranteed);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        let warning = &p.warnings[0];
        assert!(
            warning.contains("3.4.0 -> 3.5.x -> 3.6.x -> 3.7.x -> 3.8.x -> 3.9.0"),
            "{warning}"
        );
        // 3.9 is before the next LTS, so the LTS route cannot reach it; going on to 3.10 can.
        assert!(
            warning.contains("LTS 3.10 will do as the target instead, it is one guaranteed hop away: 3.4.0 -> 3.10.x"),
            "{warning}"
        );
    }

    #[test]
    fn suggested_route_prefers_lts_links_when_shorter() {
        let p = path("3.2.0", "3.6.0");
        assert!(!p.guaranteed);
        assert!(
            p.warnings[0].contains("3.2.0 -> 3.3.x -> 3.4.x -> 3.5.x -> 3.6.0"),
            "{:?}",
            p.warnings
        );
        // 2.6 stops at 2.8 first; from there the LTS link to 3.4 is the shorter way.
        let p = path("2.6.0", "3.5.0");
        assert!(
            p.warnings[0].contains("2.6.0 -> 2.7.x -> 2.8.1")
                && p.warnings[1].contains("2.8.1 -> 3.4.x -> 3.5.0"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn one_x_goes_to_two_eight_first() {
        let p = path("1.5.0", "3.4.0");
        assert_eq!(targets(&p), ["2.8.1", "3.4.0"]);
        assert!(p.hops[0].why.contains("2.x LTS"));
        // 1.5 -> 2.8 skips minors; 2.8 -> 3.4 is the LTS hop.
        assert!(!p.guaranteed);
        assert!(p.hops[1].why.contains("LTS to LTS"));
        assert!(
            p.warnings[0].starts_with("1.5.0 -> 2.8.1"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn two_x_below_two_eight_also_stops_and_one_x_to_two_x_does_not() {
        let p = path("2.0.5", "3.0.0");
        assert_eq!(targets(&p), ["2.8.1", "3.0.0"]);
        let p = path("1.5.0", "2.0.0");
        assert_eq!(targets(&p), ["2.0.0"]);
        assert!(p.guaranteed);
    }

    #[test]
    fn cassandra_stops_at_three_three() {
        let err = upgrade_path(
            v("3.2.0"),
            v("3.5.0"),
            Mode::Traditional,
            DatabaseKind::Cassandra,
        )
        .unwrap_err();
        assert!(matches!(err, PathError::CassandraRemoved { .. }));
        let message = err.to_string();
        assert!(
            message.contains("removed Cassandra support in 3.4.0"),
            "{message}"
        );
        assert!(message.contains("PostgreSQL first"), "{message}");
        assert!(
            upgrade_path(
                v("3.2.0"),
                v("3.4.0.0"),
                Mode::Traditional,
                DatabaseKind::Cassandra
            )
            .is_err()
        );
        let ok = upgrade_path(
            v("3.2.0"),
            v("3.3.1"),
            Mode::Traditional,
            DatabaseKind::Cassandra,
        )
        .unwrap();
        assert!(ok.guaranteed);
        // Postgres has no such limit.
        assert!(
            upgrade_path(
                v("3.2.0"),
                v("3.5.0"),
                Mode::Traditional,
                DatabaseKind::Postgres
            )
            .is_ok()
        );
    }

    #[test]
    fn cassandra_suggestions_never_point_past_three_three() {
        let p = upgrade_path(
            v("3.0.0"),
            v("3.3.0"),
            Mode::Traditional,
            DatabaseKind::Cassandra,
        )
        .unwrap();
        assert!(!p.guaranteed);
        assert!(!p.warnings[0].contains("3.4"), "{:?}", p.warnings);
    }

    #[test]
    fn enterprise_hybrid_below_3_1_1_3_goes_to_3_1_1_3_first() {
        for from in ["3.1.0.0", "3.1.1.1", "3.1.1.2"] {
            let p =
                upgrade_path(v(from), v("3.4.0.0"), Mode::Hybrid, DatabaseKind::Postgres).unwrap();
            assert_eq!(targets(&p), ["3.1.1.3", "3.4.0.0"], "{from}");
            assert!(p.hops[0].why.contains("wRPC"), "{}", p.hops[0].why);
            assert!(p.hops[0].why.contains("(docs)"), "{}", p.hops[0].why);
        }
        // Not in traditional mode, nor from 3.1.1.3 on.
        let p = path("3.1.1.1", "3.4.0.0");
        assert_eq!(targets(&p), ["3.4.0.0"]);
        let p = upgrade_path(
            v("3.1.1.3"),
            v("3.2.0.0"),
            Mode::Hybrid,
            DatabaseKind::Postgres,
        )
        .unwrap();
        assert_eq!(targets(&p), ["3.2.0.0"]);
        // Going exactly to 3.1.1.3 is the one hop.
        let p = upgrade_path(
            v("3.1.1.1"),
            v("3.1.1.3"),
            Mode::Hybrid,
            DatabaseKind::Postgres,
        )
        .unwrap();
        assert_eq!(targets(&p), ["3.1.1.3"]);
    }

    #[test]
    fn open_source_3_1_hybrid_is_warned_about_wrpc_not_sent_to_an_enterprise_release() {
        for from in ["3.1.0", "3.1.1"] {
            let p =
                upgrade_path(v(from), v("3.4.2"), Mode::Hybrid, DatabaseKind::Postgres).unwrap();
            assert_eq!(targets(&p), ["3.4.2"], "{from}: no open-source stop exists");
            let warning = p
                .warnings
                .iter()
                .find(|w| w.contains("wRPC"))
                .unwrap_or_else(|| panic!("{from}: {:?}", p.warnings));
            assert!(
                warning.contains(&format!("open-source {from} data planes speak only wRPC"))
                    && warning.contains("3.2.0 brought the WebSocket protocol back")
                    && warning.contains("no 3.1.1.x"),
                "{warning}"
            );
        }
        // A patch within 3.1, and traditional mode, have no protocol change to warn about.
        let p = upgrade_path(v("3.1.0"), v("3.1.1"), Mode::Hybrid, DatabaseKind::Postgres).unwrap();
        assert!(
            !p.warnings.iter().any(|w| w.contains("wRPC")),
            "{:?}",
            p.warnings
        );
        assert!(
            !path("3.1.1", "3.4.2")
                .warnings
                .iter()
                .any(|w| w.contains("wRPC"))
        );
    }

    #[test]
    fn no_open_source_release_past_3_9_is_known() {
        let rule = "no open-source 3.10+ release is known (the newest OSS tag is 3.9.3)";
        for (from, to) in [
            ("3.9.1", "3.10.0"),
            ("3.4.2", "3.10.0.2"),
            ("3.9.3", "4.0.0"),
        ] {
            let p = path(from, to);
            let warning = p
                .warnings
                .iter()
                .find(|w| w.contains(rule))
                .unwrap_or_else(|| panic!("{from} -> {to}: {:?}", p.warnings));
            assert!(warning.contains("Enterprise path"), "{warning}");
            assert!(!warning.contains("guarantee"), "{warning}");
        }
        for (from, to) in [
            ("3.4.3.12", "3.10.0.2"),
            ("3.4.2", "3.9.3"),
            ("3.9.1.0", "3.10.0.1"),
        ] {
            let p = path(from, to);
            assert!(
                !p.warnings.iter().any(|w| w.contains(rule)),
                "{from} -> {to}: {:?}",
                p.warnings
            );
        }
    }

    #[test]
    fn three_x_needs_two_eight_first() {
        // UPGRADE.md: 2.7 and older migrate to 2.8.1 first, hybrid CPs and DPs both.
        for (from, mode) in [
            ("2.7.0", Mode::Traditional),
            ("2.1.0", Mode::Hybrid),
            ("2.5.1", Mode::Dbless),
        ] {
            let p = upgrade_path(v(from), v("3.0.0"), mode, mode.default_database()).unwrap();
            assert_eq!(targets(&p), ["2.8.1", "3.0.0"], "{from}");
            assert!(p.hops[0].why.contains("UPGRADE.md"), "{}", p.hops[0].why);
        }
        // Any 2.8.x may go on to 3.x.
        assert_eq!(targets(&path("2.8.0", "3.0.0")), ["3.0.0"]);
        // Enterprise (its guide, docs): hybrid and 1.x stop at 2.8.2.x; traditional 2.x
        // needs 2.8.2 only for blue-green, which the strategy check asks.
        let p = upgrade_path(
            v("2.6.0.2"),
            v("3.0.0.0"),
            Mode::Hybrid,
            DatabaseKind::Postgres,
        )
        .unwrap();
        assert_eq!(targets(&p), ["2.8.2.0", "3.0.0.0"]);
        assert_eq!(targets(&path("2.6.0.2", "3.0.0.0")), ["3.0.0.0"]);
        assert_eq!(
            targets(&path("1.5.0.11", "3.0.0.0")),
            ["2.8.2.0", "3.0.0.0"]
        );
    }

    #[test]
    fn blue_green_across_an_lts_hop_is_not_in_kongs_lts_guides() {
        for (from, to, guide) in [
            ("2.8.4.14", "3.4.3.12", "lts-upgrade-28-34"),
            ("3.4.3.12", "3.10.0.2", "upgrade/lts-upgrade, from the docs"),
        ] {
            let warnings =
                check_strategy(Strategy::BlueGreen, v(from), v(to), Mode::Traditional).unwrap();
            let warning = warnings
                .iter()
                .find(|w| w.contains("LTS upgrade guide"))
                .unwrap_or_else(|| panic!("{from} -> {to}: {warnings:?}"));
            assert!(
                warning.contains("in-place, dual-cluster and rolling") && warning.contains(guide),
                "{warning}"
            );
        }
        // Not for other strategies, nor outside an LTS hop.
        assert!(
            !check_strategy(
                Strategy::DualCluster,
                v("3.4.3.12"),
                v("3.10.0.2"),
                Mode::Traditional
            )
            .unwrap()
            .iter()
            .any(|w| w.contains("LTS upgrade guide"))
        );
        assert!(
            !check_strategy(
                Strategy::BlueGreen,
                v("3.4.1"),
                v("3.5.0"),
                Mode::Traditional
            )
            .unwrap()
            .iter()
            .any(|w| w.contains("LTS upgrade guide"))
        );
    }

    #[test]
    fn hybrid_across_a_major_warns_about_data_planes() {
        let p = upgrade_path(v("2.8.4"), v("3.4.0"), Mode::Hybrid, DatabaseKind::Postgres).unwrap();
        assert!(p.guaranteed);
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("share the major version")),
            "{:?}",
            p.warnings
        );
        assert!(path("2.8.4", "3.4.0").warnings.is_empty());
    }

    #[test]
    fn downgrades_are_refused() {
        let err = upgrade_path(
            v("3.5.0"),
            v("3.4.0"),
            Mode::Traditional,
            DatabaseKind::Postgres,
        )
        .unwrap_err();
        assert!(matches!(err, PathError::Downgrade { .. }));
        assert!(err.to_string().contains("restore the backup"));
        assert!(
            upgrade_path(
                v("3.4.3.2"),
                v("3.4.3.1"),
                Mode::Traditional,
                DatabaseKind::Postgres
            )
            .is_err()
        );
    }

    #[test]
    fn same_version_is_refused() {
        let err = upgrade_path(
            v("3.4.1"),
            v("3.4.1"),
            Mode::Traditional,
            DatabaseKind::Postgres,
        )
        .unwrap_err();
        assert!(matches!(err, PathError::SameVersion { .. }));
        assert!(err.to_string().contains("nothing to upgrade"));
    }

    #[test]
    fn zero_x_is_refused() {
        let err = upgrade_path(
            v("0.14.1"),
            v("1.0.0"),
            Mode::Traditional,
            DatabaseKind::Postgres,
        )
        .unwrap_err();
        assert!(matches!(err, PathError::BeforeOne { .. }));
    }

    #[test]
    fn last_hop_is_always_the_target() {
        for (from, to, mode) in [
            ("1.5.0", "3.4.0", Mode::Traditional),
            ("3.1.0.0", "3.10.0.3", Mode::Hybrid),
            ("2.2.0", "2.3.0", Mode::Dbless),
            ("3.9.1", "4.0.0", Mode::Traditional),
        ] {
            let p = upgrade_path(v(from), v(to), mode, DatabaseKind::Postgres).unwrap();
            assert_eq!(p.hops.last().unwrap().to.to_string(), to);
        }
    }

    #[test]
    fn unknown_future_majors_warn() {
        let p = path("3.14.0", "4.0.0");
        assert!(!p.guaranteed);
        assert!(p.warnings.iter().any(|w| w.contains("up to 3.x")));
    }

    #[test]
    fn blue_green_needs_2_8_2() {
        let err = check_strategy(
            Strategy::BlueGreen,
            v("2.8.1"),
            v("2.8.4"),
            Mode::Traditional,
        )
        .unwrap_err();
        assert!(err.contains("2.8.2"), "{err}");
        // Kong's prerequisites for blue-green apply to hybrid control planes too.
        assert!(check_strategy(Strategy::BlueGreen, v("2.8.1"), v("2.8.4"), Mode::Hybrid).is_err());
        assert!(
            check_strategy(
                Strategy::BlueGreen,
                v("2.8.2.0"),
                v("2.8.4"),
                Mode::Traditional
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn blue_green_is_recommended_only_between_patches() {
        let warnings = check_strategy(
            Strategy::BlueGreen,
            v("3.4.1"),
            v("3.5.0"),
            Mode::Traditional,
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("only between patch releases"));
        assert!(
            check_strategy(Strategy::BlueGreen, v("3.4.1"), v("3.4.3"), Mode::Hybrid)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn strategies_must_fit_the_mode() {
        let (a, b) = (v("3.4.0"), v("3.4.1"));
        assert!(check_strategy(Strategy::Rolling, a, b, Mode::Dbless).is_ok());
        for s in [
            Strategy::DualCluster,
            Strategy::InPlace,
            Strategy::BlueGreen,
        ] {
            assert!(check_strategy(s, a, b, Mode::Dbless).is_err());
            assert!(check_strategy(s, a, b, Mode::Traditional).is_ok());
            assert!(check_strategy(s, a, b, Mode::Hybrid).is_ok());
        }
        assert!(check_strategy(Strategy::Rolling, a, b, Mode::Traditional).is_err());
        assert!(check_strategy(Strategy::Rolling, a, b, Mode::Hybrid).is_err());
    }

    #[test]
    fn in_place_warns_about_downtime_and_hybrid_major_upgrades() {
        let w =
            check_strategy(Strategy::InPlace, v("3.4.0"), v("3.4.1"), Mode::Traditional).unwrap();
        assert!(w[0].contains("proxy is down"));
        let w = check_strategy(Strategy::InPlace, v("2.8.4"), v("3.4.0"), Mode::Hybrid).unwrap();
        assert!(w[0].contains("cannot connect"));
        assert!(
            check_strategy(Strategy::InPlace, v("3.4.0"), v("3.5.0"), Mode::Hybrid)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn display_lists_hops_and_warnings() {
        let text = path("1.5.0", "3.4.0").to_string();
        assert!(text.contains("1. 1.5.0 -> 2.8.1"), "{text}");
        assert!(text.contains("2. 2.8.1 -> 3.4.0"), "{text}");
        assert!(text.contains("warning: 1.5.0 -> 2.8.1"), "{text}");
        assert!(text.contains("allowed, not guaranteed"), "{text}");
    }
}

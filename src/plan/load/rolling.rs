//! `rolling:`: the waves a rolling fleet (hybrid data planes, DB-less nodes) moves in.
//! Each wave is a cumulative share of Y's fleet, checked against the fleet's size once
//! the clusters are read.

use std::time::Duration;

use super::read::{duration, index, list, mapping, shown, word};
use super::yaml::{Node, Pos, Value};
use super::{Loader, optional};
use crate::plan::model::{
    Clusters, KONG_DRAIN_SINCE, Mode, Role, RollingSpec, Share, TrafficDriverSpec, WaveConfirm,
};
use crate::plan::version::KongVersion;

/// What the loader keeps of `rolling:` for the checks that need the clusters.
#[derive(Debug, Default)]
pub(super) struct RollingAt {
    key: Option<Pos>,
    waves: Vec<Pos>,
    drain: Option<Pos>,
    max_unavailable: Option<Pos>,
}

impl Loader {
    pub(super) fn rolling(&mut self, key: Pos, node: &Node, bake: Duration) -> Option<RollingSpec> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            "rolling",
            Some(&[
                "waves",
                "between_waves",
                "confirm",
                "max_unavailable",
                "drain",
            ]),
        )?;
        self.at.rolling.key = Some(key);
        let waves = match f.required(d, "waves") {
            Some(n) => {
                let items = list(d, n, "rolling.waves")?;
                if items.is_empty() {
                    d.error_with_hint(
                        n.pos,
                        "`rolling.waves` is empty",
                        "list the waves' cumulative shares of Y's fleet, ending at 100%, e.g. \
                         [1, 5%, 25%, 100%]",
                    );
                    return None;
                }
                let mut waves = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    self.at.rolling.waves.push(item.pos);
                    match share(d, item, &index("rolling.waves", i)) {
                        Some(s) => waves.push(s),
                        None => ok = false,
                    }
                }
                ok.then_some(waves)
            }
            None => None,
        };
        let between_waves = optional(f.get("between_waves"), bake, |n| {
            duration(d, n, "rolling.between_waves")
        });
        let confirm = optional(f.get("confirm"), WaveConfirm::default(), |n| {
            word::<WaveConfirm>(
                d,
                n,
                "rolling.confirm",
                &WaveConfirm::ALL.map(WaveConfirm::as_str),
            )
        });
        self.at.rolling.drain = f.key_pos("drain");
        let drain = match f.get("drain") {
            Some(n) => Some(duration(d, n, "rolling.drain")?),
            None => None,
        };
        let max_unavailable = match f.get("max_unavailable") {
            Some(n) => {
                self.at.rolling.max_unavailable = Some(n.pos);
                Some(share(d, n, "rolling.max_unavailable")?)
            }
            None => None,
        };
        Some(RollingSpec {
            waves: waves?,
            between_waves: between_waves?,
            confirm: confirm?,
            drain,
            max_unavailable,
        })
    }

    /// The waves against the mode and the fleet: only a mode that rolls has waves; each
    /// wave adds nodes; the last is the whole fleet.
    pub(super) fn check_rolling(
        &mut self,
        mode: Mode,
        from: Option<KongVersion>,
        clusters: &Clusters,
        driver: Option<&TrafficDriverSpec>,
        rolling: &RollingSpec,
    ) {
        let at = self.at.rolling.key.unwrap_or(self.at.root);
        if mode == Mode::Traditional {
            self.d.error_with_hint(
                at,
                "`rolling` is for the nodes that roll: data planes (mode: hybrid) or DB-less \
                 nodes (mode: dbless); a traditional plan has none",
                "remove `rolling`, or correct `mode`",
            );
            return;
        }
        let fleet = clusters
            .y
            .nodes
            .iter()
            .filter(|n| mode != Mode::Hybrid || n.role == Role::DataPlane)
            .count();
        let what = if mode == Mode::Hybrid {
            "data planes"
        } else {
            "nodes"
        };
        let mut previous: Option<(usize, Share)> = None;
        for (i, share) in rolling.waves.iter().enumerate() {
            let pos = self.at.rolling.waves.get(i).copied().unwrap_or(at);
            let path = index("rolling.waves", i);
            let nodes = share.of(fleet);
            if let Share::Nodes(n) = share
                && *n > fleet
            {
                self.d.error_with_hint(
                    pos,
                    format!("`{path}`: {n} nodes, but Y has {fleet} {what}"),
                    "waves are cumulative: write at most the fleet's size, or a percentage",
                );
                return;
            }
            if let Some((before, written)) = previous
                && nodes <= before
            {
                self.d.error_with_hint(
                    pos,
                    format!(
                        "`{path}`: {share} is {nodes} of Y's {fleet} {what}, no more than the \
                         wave before ({written}: {before}), so this wave would start none"
                    ),
                    "waves are cumulative shares of the fleet: each must add nodes (remove \
                     this wave, or raise it)",
                );
                return;
            }
            previous = Some((nodes, *share));
        }
        // As written, not as rounded: 90% of eight nodes rounds up to eight, but whoever
        // wrote 90% meant to leave some on X.
        let whole = |share: &Share| match share {
            Share::Percent(p) => *p == 100,
            Share::Nodes(n) => *n == fleet,
        };
        if rolling.drain.is_some() {
            self.check_drain(mode, from, clusters, driver);
        }
        if let Some(Share::Nodes(n)) = rolling.max_unavailable
            && n > fleet
        {
            self.d.error_with_hint(
                self.at.rolling.max_unavailable.unwrap_or(at),
                format!("`rolling.max_unavailable`: {n} nodes, but Y has {fleet} {what}"),
                "write at most the fleet's size, or a percentage of it (rounded down, at \
                 least 1 node)",
            );
        }
        if let Some(last) = rolling.waves.last()
            && !whole(last)
        {
            self.d.error_with_hint(
                self.at.rolling.waves.last().copied().unwrap_or(at),
                format!(
                    "`rolling.waves` ends at {last}: the last wave must be the whole fleet \
                     (Y has {fleet} {what})"
                ),
                "end the waves at 100%; kongup does not leave part of a fleet on X",
            );
        }
    }
}

impl Loader {
    /// `drain:` needs a way to drain and a Status API on each of X's rolling nodes, where
    /// kongup sees what is in flight: `kong drain` on X from 3.9, else the balancer's
    /// per-server drain (HAProxy, with each of X's nodes mapped to a server of its backend).
    fn check_drain(
        &mut self,
        mode: Mode,
        from: Option<KongVersion>,
        clusters: &Clusters,
        driver: Option<&TrafficDriverSpec>,
    ) {
        let at = self
            .at
            .rolling
            .drain
            .or(self.at.rolling.key)
            .unwrap_or(self.at.root);
        let rolling =
            |n: &&crate::plan::model::Node| mode != Mode::Hybrid || n.role == Role::DataPlane;
        if let Some(from) = from
            && from < KONG_DRAIN_SINCE
        {
            match driver {
                Some(TrafficDriverSpec::Haproxy(haproxy)) => {
                    let unmapped: Vec<&str> = clusters
                        .x
                        .nodes
                        .iter()
                        .filter(rolling)
                        .filter(|n| {
                            haproxy
                                .server_of(&n.name)
                                .is_none_or(|s| !haproxy.x_servers.iter().any(|x| x == s))
                        })
                        .map(|n| n.name.as_str())
                        .collect();
                    if !unmapped.is_empty() {
                        self.d.error_with_hint(
                            at,
                            format!(
                                "`rolling.drain`: X runs Kong {from} (no `kong drain` before \
                                 {KONG_DRAIN_SINCE}), so kongup drains X's nodes in HAProxy, \
                                 but {} {} no server in traffic.driver.x_servers",
                                named(&unmapped),
                                if unmapped.len() == 1 { "has" } else { "have" },
                            ),
                            "map each of X's nodes to its backend server: \
                             `traffic.driver.node_servers: {NODE: SERVER, …}` (a node named \
                             like its server needs no entry)",
                        );
                        return;
                    }
                }
                other => {
                    let name = other.map_or("manual", TrafficDriverSpec::kind);
                    self.d.error_with_hint(
                        at,
                        format!(
                            "`rolling.drain`: X runs Kong {from}, which has no `kong drain` \
                             ({KONG_DRAIN_SINCE} and later), and the {name} traffic driver \
                             cannot drain one server of the balancer"
                        ),
                        "use the haproxy traffic driver (kongup then drains each X node's \
                         server in HAProxy), or remove `drain` and drain X's nodes in the \
                         plan's own commands for the wave's stop-x step (take the node out of \
                         the balancer, wait, then `kong quit`)",
                    );
                    return;
                }
            }
        }
        let without: Vec<&str> = clusters
            .x
            .nodes
            .iter()
            .filter(rolling)
            .filter(|n| n.status_url.is_none())
            .map(|n| n.name.as_str())
            .collect();
        if !without.is_empty() {
            self.d.error_with_hint(
                at,
                format!(
                    "`rolling.drain`: {} {} no status_url, so kongup cannot see {} drain \
                     (/status: requests in flight)",
                    named(&without),
                    if without.len() == 1 { "has" } else { "have" },
                    if without.len() == 1 { "it" } else { "them" },
                ),
                "give each of X's nodes its Status API (`status_url`, Kong's status_listen), \
                 or remove `drain`",
            );
        }
    }
}

/// The first five names, then how many more: a fleet's thousand would bury the line.
fn named(names: &[&str]) -> String {
    let mut text = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

/// A wave's share: a whole number of nodes (1 or more), or a percentage `N%` (1 to 100).
fn share(d: &mut super::diagnostics::Diagnostics, node: &Node, path: &str) -> Option<Share> {
    let hint = "write a number of nodes (e.g. 1) or a percentage of the fleet (e.g. 25%)";
    let text = match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => text.trim(),
        _ => {
            d.error_with_hint(
                node.pos,
                format!(
                    "`{path}` must be a share of the fleet, found {}",
                    node.kind_name()
                ),
                hint,
            );
            return None;
        }
    };
    let parsed = match text.strip_suffix('%') {
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(Share::Percent),
        None => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Share::Nodes),
    };
    if parsed.is_none() {
        d.error_with_hint(
            node.pos,
            format!(
                "`{path}`: `{}` is not a share of the fleet (a whole number of nodes from 1, or \
                 a percentage from 1% to 100%)",
                shown(text)
            ),
            hint,
        );
    }
    parsed
}

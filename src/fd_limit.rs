//! The open-files limit at fleet size. kongup keeps a pooled connection to every node it
//! scrapes while they are no more than the scrapes in flight (128), and at most that many
//! for a fleet (`metrics::monitor::scrape_client`); the in-process lab of a demo or a
//! rehearsal holds a few sockets per node, so a fleet of 1 000 data planes per cluster
//! needs thousands, past the soft `ulimit -n` most shells give (1 024). At start the soft
//! limit is raised to the hard one (any process may); when the plan needs more than even
//! that, the operator is told before nodes start reading as unreachable.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::metrics::monitor::SCRAPE_CONCURRENCY;
use crate::plan::model::{Node, Plan};

/// What kongup holds besides its scrape connections: the topology probes in flight, the
/// journal, the terminal, the databases' connections, the runtime's own, a webhook or two.
const RESERVE: u64 = 192;

/// What a node of the in-process lab holds (`demo`, `run --rehearse`): its listeners (Admin
/// API, Status API, proxy) and the accepted ends of the connections kongup and the traffic
/// generator keep to them.
const LAB_PER_NODE: u64 = 6;

/// The open-files limit after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-files limit to the hard one and returns what it is then; the limit
/// as it was when it cannot be raised (or read: then `None`).
pub fn raise() -> Option<OpenFiles> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(OpenFiles { soft: hard, hard });
    }
    Some(OpenFiles { soft, hard })
}

/// The limit as it is now.
pub fn current() -> Option<OpenFiles> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, hard)| OpenFiles { soft, hard })
}

/// Descriptors a live run (or `watch`) of `plan` may hold: a scrape connection per node, at
/// most [`SCRAPE_CONCURRENCY`] (`monitor::scrape_client`; the topology probes keep none:
/// `KongAccess::new`, at most `kong::watch::PROBE_CONCURRENCY` open, within the reserve).
pub fn needed_live(plan: &Plan) -> u64 {
    nodes(plan).count().min(SCRAPE_CONCURRENCY) as u64 + RESERVE
}

/// [`needed_live`] plus the in-process lab of the plan's nodes.
pub fn needed_with_lab(plan: &Plan) -> u64 {
    needed_live(plan) + nodes(plan).count() as u64 * LAB_PER_NODE
}

/// The warning when `needed` descriptors do not fit the current limit; `None` when they do
/// (or the limit cannot be read).
pub fn shortfall(plan: &Plan, needed: u64) -> Option<String> {
    let limit = current()?;
    (needed > limit.soft).then(|| {
        format!(
            "the open-files limit ({} soft, {} hard) is below the ~{needed} files and sockets \
             kongup may hold for this plan's {} nodes (a connection per node for the metrics, \
             {SCRAPE_CONCURRENCY} at most, and a demo's or a rehearsal's lab): nodes past it will read as unreachable. Raise the hard \
             limit (`ulimit -Hn` as root, `nofile` in /etc/security/limits.conf, or \
             LimitNOFILE= in a systemd unit) and start kongup again",
            limit.soft,
            limit.hard,
            nodes(plan).count()
        )
    })
}

fn nodes(plan: &Plan) -> impl Iterator<Item = &Node> {
    plan.clusters.x.nodes.iter().chain(&plan.clusters.y.nodes)
}

// The fleet plan is the testkit's.
#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_needs_the_scrapes_in_flight_and_its_lab_a_few_per_node() {
        let plan = crate::testkit::fleet::fleet_plan(1000).plan;
        assert_eq!(needed_live(&plan), SCRAPE_CONCURRENCY as u64 + RESERVE);
        assert_eq!(
            needed_with_lab(&plan),
            SCRAPE_CONCURRENCY as u64 + 2002 * LAB_PER_NODE + RESERVE
        );
        // A plan of fewer nodes keeps a connection to each.
        let plan = crate::testkit::fleet::fleet_plan(40).plan;
        assert_eq!(needed_live(&plan), 82 + RESERVE);
    }
}

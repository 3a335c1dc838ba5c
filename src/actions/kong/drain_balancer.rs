//! `rolling.drain` on an X before Kong 3.9, which has no `kong drain` (kong/cmd/drain.lua
//! is absent at 3.8.0, present at 3.9.0): the balancer drains the node. The loader allows
//! it only with a driver that can act on one server (HAProxy) and every X node mapped to a
//! server (`traffic.driver.node_servers`).
//!
//! - kongup sets the node's server to drain (HAProxy: `set server BACKEND/SERVER state
//!   drain`, "removes the server from load balancing"; see `lb::haproxy`): it gets no new
//!   request, the ones it has open go on.
//! - The node is drained when the balancer has no session open to its server (HAProxy's
//!   `scur`) and its `/status` shows no request in flight: `server.connections_reading +
//!   connections_writing` are nginx's stub-status counters for the whole node
//!   (kong/api/routes/health.lua:58-59@2.8.5 from `ngx.var`; `kong.nginx.get_statistics()`,
//!   kong/api/routes/health.lua:41 and kong/pdk/nginx.lua:79-88@3.4.2), the request that
//!   reads them counting itself once; the same rule as the `kong drain` path. So a request
//!   that reached the node past the balancer is waited for too.
//!
//! A node not drained within `drain` fails alone and is not stopped; its server stays in
//! drain (it still finishes what it has open). The wave's rollback, which starts X's
//! nodes again, puts their servers back in rotation once they answer.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::KongAccess;
use crate::engine::event::Event;
use crate::engine::step::{ActionError, StepContext};
use crate::lb::{LbError, ServerAdmin, ServerReading, TrafficDriver};
use crate::plan::model::Node;

/// The one line the confirm dialog shows for the drain.
pub(super) fn describe(limit: Duration) -> String {
    format!(
        "before its stop commands, each of the wave's X nodes is drained in the balancer (X \
         runs Kong before 3.9: no `kong drain`): kongup sets its server to drain, then waits \
         up to {} until the balancer has no session open to it and its /status shows no \
         request in flight; a node not drained by then fails and is not stopped",
        humantime::format_duration(limit)
    )
}

/// One call to the driver, bounded by its own timeouts (and never longer than their sum).
async fn call<T>(
    driver: &dyn TrafficDriver,
    what: impl std::future::Future<Output = Result<T, LbError>>,
) -> Result<T, String> {
    let limit = driver.call_timeout();
    match tokio::time::timeout(limit, what).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "the balancer did not answer within {}",
            humantime::format_duration(limit)
        )),
    }
}

/// Drains `nodes` (together) in the balancer; returns the nodes that did not drain, each
/// with why, journaled as failed.
pub(super) async fn drain_nodes(
    ctx: &StepContext,
    access: &KongAccess,
    nodes: &[Node],
    limit: Duration,
) -> Result<BTreeMap<String, String>, ActionError> {
    let mut failed = BTreeMap::new();
    if nodes.is_empty() {
        return Ok(failed);
    }
    ctx.log.note(&format!(
        "draining {} node{} in the balancer before they stop, up to {} each: {}",
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" },
        humantime::format_duration(limit),
        crate::engine::step::some_nodes(&nodes.iter().map(|n| &n.name).collect::<Vec<_>>())
    ));
    let driver = ctx.traffic.as_ref();
    let started = Instant::now();
    let mut draining = Vec::new();
    for node in nodes {
        let Some(server) = driver.server_of(&node.name) else {
            // The loader refuses a drain where an X node has no server.
            failed.insert(
                node.name.clone(),
                "the plan names no balancer server for it (traffic.driver.node_servers)".into(),
            );
            continue;
        };
        match call(driver, driver.set_server(&server, ServerAdmin::Drain)).await {
            Ok(()) => {
                ctx.log.note(&format!(
                    "{}: server {server} set to drain in the balancer",
                    node.name
                ));
                draining.push((node, server));
            }
            Err(e) => {
                failed.insert(
                    node.name.clone(),
                    format!("its server {server} could not be set to drain: {e}"),
                );
            }
        }
    }
    let waits = draining
        .iter()
        .map(|(node, server)| wait_drained(ctx, access, node, server, started + limit, limit));
    for ((node, _), result) in draining.iter().zip(futures::future::join_all(waits).await) {
        match result {
            Ok(seen) => ctx.log.note(&format!("{} drained: {seen}", node.name)),
            Err(why) => {
                failed.insert(node.name.clone(), why);
            }
        }
    }
    for (node, why) in &failed {
        ctx.log.note(&format!(
            "failed on {node}: {why}; it is not stopped (its server stays in drain)"
        ));
        ctx.record_node(node, Err(why.clone())).await?;
    }
    Ok(failed)
}

/// Polls the balancer and `node` until both say nothing is open (`Ok`, what was seen),
/// `deadline`, or the operator's abort (`Err`, why it is not drained).
async fn wait_drained(
    ctx: &StepContext,
    access: &KongAccess,
    node: &Node,
    server: &str,
    deadline: Instant,
    limit: Duration,
) -> Result<String, String> {
    let Some(status_url) = &node.status_url else {
        // The loader refuses a drain where an X node has no status_url.
        return Err("no status_url in the plan: kongup cannot see its requests".into());
    };
    let driver = ctx.traffic.as_ref();
    let started = Instant::now();
    loop {
        let (balancer, status) = tokio::join!(
            call(driver, driver.read_server(server)),
            access.probe.node_status(status_url)
        );
        let balancer = match balancer {
            Ok(ServerReading {
                admin: ServerAdmin::Ready,
                ..
            }) => Err(format!(
                "the balancer has server {server} back in rotation (set ready by someone else?)"
            )),
            Ok(ServerReading { sessions: 0, .. }) => Ok(()),
            Ok(ServerReading { sessions, .. }) => Err(format!(
                "the balancer has {sessions} session{} open to {server}",
                if sessions == 1 { "" } else { "s" }
            )),
            Err(e) => Err(format!("the balancer does not answer for {server}: {e}")),
        };
        let kong = match status {
            Ok(status) => {
                // Less kongup's own request for /status.
                let in_flight = (status.server.connections_reading
                    + status.server.connections_writing)
                    .saturating_sub(1);
                if in_flight == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "{in_flight} request{} in flight on its /status",
                        if in_flight == 1 { "" } else { "s" }
                    ))
                }
            }
            Err(e) => Err(format!("its /status does not answer: {e}")),
        };
        let pending = match (balancer, kong) {
            (Ok(()), Ok(())) => {
                return Ok(format!(
                    "server {server} in drain with no session open, and no request in flight \
                     on its /status (after {})",
                    humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
                ));
            }
            (Err(b), Err(k)) => format!("{b}; {k}"),
            (Err(one), Ok(())) | (Ok(()), Err(one)) => one,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "still draining after {}: {pending}",
                humantime::format_duration(limit)
            ));
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => {
                return Err(format!("aborted by the operator while draining: {pending}"));
            }
            _ = tokio::time::sleep(access.waits.poll.min(deadline - now)) => {}
        }
    }
}

/// `nodes`' servers back in rotation (at the weight the split gives them): X's, drained by
/// a wave's stop step, once the wave's rollback started them again; a Y node's, put in
/// maintenance when it was taken out of its wave, at the wave's rollback. What was said of
/// each, and whether it went back; one that did not is also a warning.
pub(super) async fn back_in_rotation(ctx: &StepContext, nodes: &[Node]) -> Vec<(String, bool)> {
    let driver = ctx.traffic.as_ref();
    let mut said = Vec::new();
    for node in nodes {
        let Some(server) = driver.server_of(&node.name) else {
            continue;
        };
        let (text, ok) = match call(driver, driver.set_server(&server, ServerAdmin::Ready)).await {
            Ok(()) => (
                format!("{}: server {server} back in rotation", node.name),
                true,
            ),
            Err(e) => {
                let text = format!(
                    "{}: server {server} could not be put back in rotation ({e}): set it ready \
                     in the balancer by hand",
                    node.name
                );
                ctx.emit(Event::Warning(text.clone()));
                (text, false)
            }
        };
        ctx.log.note(&text);
        said.push((text, ok));
    }
    said
}

//! `rolling.drain`: a wave's X nodes are drained before the stop-x step's commands stop
//! them. Kong's own drain (3.9.0 and later; the loader refuses `drain` on an older X):
//!
//! - `kong drain` on the node, through the executor its stop command runs on. It POSTs
//!   `{"status": "draining"}` to the node's first status listener's `/status/ready`
//!   (kong/cmd/drain.lua:30-53@3.9.1), and it exits 0 even when that request fails: it
//!   prints "Failed to send request …" or "Unexpected response status …" and returns
//!   (drain.lua:57-65@3.9.1). So its exit status proves nothing: kongup reads the node.
//! - From then on `/status/ready` answers 503 `{"message":"draining"}` ahead of any other
//!   check (kong/status/ready.lua:106-113@3.9.1), which a balancer that health-checks
//!   `/status/ready` takes as "take it out"; the node itself still proxies what reaches it.
//! - The node is drained when `/status/ready` says `draining` and its `/status` shows no
//!   request in flight: `server.connections_reading + connections_writing` are nginx's
//!   stub-status counters for the whole node (kong/pdk/nginx.lua:79-88@3.9.1, read by
//!   `/status`, kong/api/routes/health.lua:41@3.9.1), and the request that reads them is
//!   one of them, so one is kongup's own. Idle keep-alive connections (`waiting`) do not
//!   count: nginx closes them as it stops.
//!
//! Kong Enterprise 3.9.0.x is taken to behave the same (unverified: its source is closed).
//!
//! A node that is not drained within `drain` fails alone, with the reason, and is not
//! stopped; the wave's other nodes go on.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::KongAccess;
use crate::engine::step::{ActionError, StepContext, describe_exit};
use crate::kong::client::Readiness;
use crate::plan::model::{CommandLine, CommandSpec, ExecutorSpec, Node};

/// `kong drain` loads its configuration and posts once with a 1 s timeout
/// (drain.lua:14-40@3.9.1): it ends in seconds, or something is wrong with the host.
const DRAIN_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The message `/status/ready` answers a drained node with (ready.lua:112@3.9.1).
pub(super) const DRAINING: &str = "draining";

fn drain_command(node: &Node, executor: Option<String>) -> CommandSpec {
    CommandSpec {
        program: CommandLine::Argv(vec!["kong".into(), "drain".into()]),
        executor,
        timeout: Some(DRAIN_COMMAND_TIMEOUT),
        node: Some(node.name.clone()),
    }
}

/// The one line the confirm dialog shows for the drain.
pub(super) fn describe(limit: Duration) -> String {
    format!(
        "before its stop commands, each of the wave's X nodes is drained: kongup runs `kong \
         drain` on it, then waits up to {} until its /status/ready answers 503 draining and \
         its /status shows no request in flight; a node not drained by then fails and is not \
         stopped",
        humantime::format_duration(limit)
    )
}

/// Drains `nodes` (together), each through the executor of its own stop command (else
/// its `executor`); returns the nodes that did not drain, each with why, journaled as
/// failed.
pub(super) async fn drain_nodes(
    ctx: &StepContext,
    access: &KongAccess,
    nodes: &[Node],
    commands: &[CommandSpec],
    limit: Duration,
) -> Result<BTreeMap<String, String>, ActionError> {
    let mut failed = BTreeMap::new();
    if nodes.is_empty() {
        return Ok(failed);
    }
    ctx.log.note(&format!(
        "draining {} node{} before they stop, up to {} each: {}",
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" },
        humantime::format_duration(limit),
        crate::engine::step::some_nodes(&nodes.iter().map(|n| &n.name).collect::<Vec<_>>())
    ));
    let copies: Vec<CommandSpec> = nodes
        .iter()
        .map(|node| {
            let executor = commands
                .iter()
                .find(|c| c.node.as_deref() == Some(node.name.as_str()))
                .map_or_else(|| node.executor.clone(), |c| c.executor.clone());
            drain_command(node, executor)
        })
        .collect();
    let started = Instant::now();
    for (node, why) in run_drain_commands(ctx, &copies).await? {
        failed.insert(node, why);
    }
    let drained: Vec<&Node> = nodes
        .iter()
        .filter(|n| !failed.contains_key(&n.name))
        .collect();
    let waits = drained
        .iter()
        .map(|node| wait_drained(ctx, access, node, started + limit, limit));
    for (node, result) in drained.iter().zip(futures::future::join_all(waits).await) {
        match result {
            Ok(seen) => ctx.log.note(&format!("{} drained: {seen}", node.name)),
            Err(why) => {
                failed.insert(node.name.clone(), why);
            }
        }
    }
    for (node, why) in &failed {
        ctx.log
            .note(&format!("failed on {node}: {why}; it is not stopped"));
        ctx.record_node(node, Err(why.clone())).await?;
    }
    Ok(failed)
}

/// Runs `kong drain` on every node: the copies on one `ansible` executor as one
/// invocation, the others each on its own, all at once. Returns the nodes where it did
/// not exit 0.
async fn run_drain_commands(
    ctx: &StepContext,
    copies: &[CommandSpec],
) -> Result<Vec<(String, String)>, ActionError> {
    let ansible = |c: &CommandSpec| {
        c.executor
            .as_ref()
            .and_then(|name| ctx.plan.executors.get(name))
            .is_some_and(|spec| matches!(spec, ExecutorSpec::Ansible(_)))
    };
    let mut groups: BTreeMap<Option<String>, Vec<CommandSpec>> = BTreeMap::new();
    let mut single = Vec::new();
    for copy in copies {
        if ansible(copy) {
            groups
                .entry(copy.executor.clone())
                .or_default()
                .push(copy.clone());
        } else {
            single.push(copy.clone());
        }
    }
    let why = |outcome| {
        format!(
            "`kong drain` {}",
            describe_exit(outcome, DRAIN_COMMAND_TIMEOUT)
        )
    };
    let mut failed = Vec::new();
    let (together, alone) = tokio::join!(
        futures::future::join_all(
            groups
                .values()
                .map(|copies| ctx.run_command_on_nodes(copies, Vec::new()))
        ),
        futures::future::join_all(single.iter().map(|c| ctx.run_command(c, Vec::new())))
    );
    for outcomes in together {
        for o in outcomes? {
            if !o.outcome.success() {
                failed.push((o.host, format!("`kong drain` {}", o.summary)));
            }
        }
    }
    for (copy, outcome) in single.iter().zip(alone) {
        let outcome = outcome?;
        if !outcome.success() {
            failed.push((copy.node.clone().unwrap_or_default(), why(outcome)));
        }
    }
    Ok(failed)
}

/// Polls `node` until it is drained (`Ok`, what was seen), `deadline`, or the operator's
/// abort (`Err`, why it is not drained).
async fn wait_drained(
    ctx: &StepContext,
    access: &KongAccess,
    node: &Node,
    deadline: Instant,
    limit: Duration,
) -> Result<String, String> {
    let Some(status_url) = &node.status_url else {
        // The loader refuses a drain where an X node has no status_url.
        return Err("no status_url in the plan: kongup cannot see it drain".into());
    };
    let started = Instant::now();
    let client = &access.probe;
    loop {
        let pending = match client.readiness(status_url).await {
            Ok(Readiness::NotReady(reason)) if reason == DRAINING => {
                match client.node_status(status_url).await {
                    Ok(status) => {
                        let server = status.server;
                        // Less kongup's own request for /status.
                        let in_flight = (server.connections_reading + server.connections_writing)
                            .saturating_sub(1);
                        if in_flight == 0 {
                            return Ok(format!(
                                "/status/ready answers 503 draining and no request is in \
                                 flight (after {})",
                                humantime::format_duration(Duration::from_secs(
                                    started.elapsed().as_secs()
                                ))
                            ));
                        }
                        format!(
                            "{in_flight} request{} in flight",
                            if in_flight == 1 { "" } else { "s" }
                        )
                    }
                    Err(e) => format!("/status does not answer: {e}"),
                }
            }
            Ok(Readiness::NotReady(reason)) => {
                format!("/status/ready answers 503 `{reason}`, not `draining`")
            }
            Ok(Readiness::Ready) => {
                "/status/ready still answers 200, not 503 draining: did `kong drain` reach \
                 its status listener?"
                    .to_string()
            }
            Err(e) => format!("/status/ready does not answer: {e}"),
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

//! Starting, deploying, stopping and decommissioning nodes. The plan's commands (or the
//! operator) do the work; kongup then waits, with a deadline and a countdown in the log,
//! until the nodes answer with the expected version and `/status/ready` 200 (start, deploy),
//! or stop answering or report draining (stop, decommission).
//!
//! Data planes have no Admin API (Kong renders it only for control planes and traditional
//! nodes, kong/templates/nginx_kong.lua:377@2.8.5, :416@master): a data plane's version and
//! sync state are read from the control planes' `/clustering/data-planes` (every control
//! plane of the plan with an `admin_url`, so a data plane sent to the wrong one is seen
//! there), the row found by hostname, else by ip, the freshest when several match (an RPC-
//! synced 3.10 data plane is listed under its node id, kong/clustering/services/sync/
//! rpc.lua:104-114@master); its readiness from its Status API (`/status/ready` from 3.3,
//! else `/status`).
//!
//! The engine runs a step's action before its commands, and this wait must come after
//! them: the action runs the step's commands itself, then leaves the step none to run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::drain::drain_nodes;
use super::{KongAccess, is_version, phase_for_preview, side_name, side_version};
use crate::engine::journal::SERVER_OUT;
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::engine::step::{run_commands, some_nodes};
use crate::kong::client::{AdminError, Readiness};
use crate::kong::types::{DataPlane, SyncStatus};
use crate::plan::model::{CommandSpec, KONG_DRAIN_SINCE, Node, Plan, Role, RollingSpec};
use crate::plan::placement::step_nodes;
use crate::plan::steps::{ClusterSide, ExpandedPlan, PhaseName, RollbackKind, Step, StepKind};
use crate::plan::version::KongVersion;
use crate::plan::waves::max_unavailable;

/// What the step waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Up,
    Down,
    /// Deploying only installs: a later step starts the nodes and waits for them there.
    Nothing(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    side: ClusterSide,
    want: Want,
    /// Which nodes of the side this phase acts on: control planes, data planes, or all.
    role: Option<Role>,
    /// kongup drained these nodes before stopping them (`rolling.drain`): one that still
    /// reports draining has not stopped. Otherwise draining counts as going down.
    drained: bool,
}

fn role_of_phase(phase: PhaseName) -> Option<Role> {
    match phase {
        PhaseName::ControlPlane => Some(Role::ControlPlane),
        PhaseName::DataPlane => Some(Role::DataPlane),
        PhaseName::Cluster | PhaseName::Rollback => None,
    }
}

/// What a step of `kind` in `phase` waits for.
fn target(expanded: &ExpandedPlan, phase: PhaseName, kind: &StepKind) -> Option<Target> {
    let role = role_of_phase(phase);
    let (side, want) = match *kind {
        StepKind::StartNodes { cluster, .. } => (cluster, Want::Up),
        StepKind::StopNodes { cluster, .. } | StepKind::Decommission { cluster } => {
            (cluster, Want::Down)
        }
        StepKind::DeployNodes { cluster } => {
            let starts_later = expanded
                .phases
                .iter()
                .find(|p| p.name == phase)
                .and_then(|p| {
                    p.steps
                        .iter()
                        .find(|s| matches!(s.kind, StepKind::StartNodes { cluster: c, .. } if c == cluster))
                });
            match starts_later {
                Some(start) => (
                    cluster,
                    Want::Nothing(format!(
                        "{}'s nodes start at {phase}/{}: kongup waits for them there",
                        side_name(cluster),
                        start.id
                    )),
                ),
                None => (cluster, Want::Up),
            }
        }
        _ => return None,
    };
    Some(Target {
        side,
        want,
        role,
        drained: false,
    })
}

fn scope_name(target: &Target) -> String {
    let what = match target.role {
        Some(Role::ControlPlane) => "control planes",
        Some(Role::DataPlane) => "data planes",
        _ => "nodes",
    };
    format!("{}'s {what}", side_name(target.side))
}

/// Whether kongup can look at `node`: a data plane through its Status API or, when `listed`
/// (it is coming up and the plan has a control plane with an Admin API), through the control
/// planes' listing; any other node through its Admin or Status API. A data plane's
/// `admin_url` is never asked: nothing serves it (the loader warns).
fn checkable(node: &Node, listed: bool) -> bool {
    match node.role {
        Role::DataPlane => node.status_url.is_some() || listed,
        Role::ControlPlane | Role::Traditional => {
            node.admin_url.is_some() || node.status_url.is_some()
        }
    }
}

/// Whether the control planes' listing can tell of data planes in this wait.
fn listed(plan: &Plan, want: &Want) -> bool {
    *want == Want::Up && !control_planes(plan).is_empty()
}

/// The plan's control planes kongup can ask for their data planes: (name, Admin API).
fn control_planes(plan: &Plan) -> Vec<(String, String)> {
    plan.clusters
        .x
        .nodes
        .iter()
        .chain(&plan.clusters.y.nodes)
        .filter(|n| n.role == Role::ControlPlane)
        .filter_map(|n| Some((n.name.clone(), n.admin_url.clone()?)))
        .collect()
}

/// The data planes the control planes list, each with the control plane that lists it;
/// and what kept a control plane from answering.
#[derive(Debug, Default)]
struct Listings {
    rows: Vec<(String, DataPlane)>,
    errors: Vec<String>,
    /// The plan names no control plane with an Admin API.
    none: bool,
}

/// The host of a URL, lower-cased (an IPv6 address without its brackets).
fn url_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

fn first_label(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// How a control plane's row was matched to a plan node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchedBy {
    Hostname,
    Ip,
}

impl MatchedBy {
    fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Hostname => "hostname",
            MatchedBy::Ip => "ip",
        }
    }
}

/// The row a control plane keeps of `node`: by hostname (the node's name or its Status and
/// proxy URLs' host, or their first DNS labels), else by ip (those URLs' host as an
/// address). Several rows of one data plane (a reinstall gives it a new id, a move to another
/// control plane leaves the old one's row; rows stay 14 days): the freshest. `Err` when the ip matches
/// rows of different hostnames, which kongup cannot tell apart.
fn find_row<'a>(
    node: &Node,
    rows: &'a [(String, DataPlane)],
) -> Result<Option<(&'a str, &'a DataPlane, MatchedBy)>, String> {
    // Not its admin_url: a data plane has no Admin API, and the URL may name anything.
    let hosts: Vec<String> = [&node.status_url, &node.proxy_url]
        .into_iter()
        .flatten()
        .filter_map(|u| url_host(u))
        .collect();
    let name = node.name.to_ascii_lowercase();
    let by_hostname = |row: &DataPlane| {
        let hostname = row.hostname.to_ascii_lowercase();
        let candidates = std::iter::once(name.as_str()).chain(hosts.iter().map(String::as_str));
        candidates
            .into_iter()
            .any(|c| c == hostname || first_label(c) == first_label(&hostname))
    };
    // Seen in the same second, a row that is not in sync wins: a wait had better fail than
    // pass on the stale row of a control plane the data plane has left.
    let freshest = |matches: Vec<&'a (String, DataPlane)>| {
        matches
            .into_iter()
            .max_by_key(|(_, row)| (row.last_seen, row.sync_status != SyncStatus::Normal))
            .map(|(cp, row)| (cp.as_str(), row))
    };
    let named: Vec<&(String, DataPlane)> = rows.iter().filter(|(_, r)| by_hostname(r)).collect();
    if let Some((cp, row)) = freshest(named) {
        return Ok(Some((cp, row, MatchedBy::Hostname)));
    }
    let ips: Vec<&String> = hosts
        .iter()
        .filter(|h| h.parse::<std::net::IpAddr>().is_ok())
        .collect();
    let at_ip: Vec<&(String, DataPlane)> = rows
        .iter()
        .filter(|(_, r)| ips.iter().any(|ip| **ip == r.ip))
        .collect();
    let ids: std::collections::BTreeSet<&str> =
        at_ip.iter().map(|(_, r)| r.hostname.as_str()).collect();
    if ids.len() > 1 {
        return Err(format!(
            "{} data planes are listed at its address {}: kongup cannot tell which is {}",
            ids.len(),
            ips.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            node.name
        ));
    }
    Ok(freshest(at_ip).map(|(cp, row)| (cp, row, MatchedBy::Ip)))
}

pub struct NodesWait {
    access: Arc<KongAccess>,
}

impl NodesWait {
    pub fn new(access: Arc<KongAccess>) -> NodesWait {
        NodesWait { access }
    }
}

#[async_trait::async_trait]
impl StepAction for NodesWait {
    fn describe(&self, step: &Step, plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        let (expanded, phase) = phase_for_preview(plan, step);
        let target = expanded.and_then(|e| target(&e, phase, &step.kind));
        let Some(target) = target else {
            return Vec::new();
        };
        let after = if step.commands.is_empty() {
            "once you confirm the nodes are done, ".to_string()
        } else {
            "after the plan's commands below, ".to_string()
        };
        // The nodes the step acts on: those its commands are placed on.
        let nodes = step_nodes(plan, phase, &step.kind);
        let listed = listed(plan, &target.want);
        let names: Vec<&str> = nodes
            .iter()
            .filter(|n| checkable(n, listed))
            .map(|n| n.name.as_str())
            .collect();
        let limit = humantime::format_duration(self.access.waits.nodes);
        let line = match &target.want {
            Want::Nothing(why) => format!("no wait here: {why}"),
            _ if names.is_empty() => format!(
                "no wait: none of {} has an Admin or Status URL in the plan, so the operator \
                 checks them",
                scope_name(&target)
            ),
            Want::Up => {
                let mut line = format!(
                    "{after}wait up to {limit} until {} ({}) answer with Kong {} and \
                     /status/ready 200",
                    scope_name(&target),
                    names.join(", "),
                    side_version(plan, target.side)
                );
                if nodes.iter().any(|n| n.role == Role::DataPlane) {
                    line.push_str(
                        "; data planes have no Admin API: their version and sync state as the \
                         control planes' /clustering/data-planes list them",
                    );
                }
                line
            }
            Want::Down => format!(
                "{after}wait up to {limit} until {} ({}) stop answering, report draining, or \
                 answer with another version than {}",
                scope_name(&target),
                names.join(", "),
                side_version(plan, target.side)
            ),
        };
        let mut lines = Vec::new();
        let drain = plan.rolling.as_ref().and_then(|r| r.drain);
        if let (
            Some(limit),
            StepKind::StopNodes {
                cluster: ClusterSide::X,
                wave: Some(_),
            },
        ) = (drain, &step.kind)
            && !step.commands.is_empty()
        {
            lines.push(if plan.from < KONG_DRAIN_SINCE {
                super::drain_balancer::describe(limit)
            } else {
                super::drain::describe(limit)
            });
        }
        if let (
            Some(size),
            StepKind::StartNodes { wave: Some(_), .. } | StepKind::StopNodes { wave: Some(_), .. },
        ) = (max_unavailable(plan), &step.kind)
        {
            lines.push(format!(
                "at most {size} of the wave's nodes at a time (rolling.max_unavailable): each \
                 batch is {} and waited for before the next starts",
                if drain.is_some() && matches!(step.kind, StepKind::StopNodes { .. }) {
                    "drained, run"
                } else {
                    "run"
                }
            ));
        }
        lines.push(line);
        lines
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let (phase, kind) = match &ctx.rollback {
            Some(of) => {
                let phase = of.undoes.as_ref().map_or(PhaseName::Cluster, |s| s.phase);
                let kind = match of.kind {
                    RollbackKind::StartNodes { cluster, wave } => {
                        StepKind::StartNodes { cluster, wave }
                    }
                    RollbackKind::StopNodes { cluster, wave } => {
                        StepKind::StopNodes { cluster, wave }
                    }
                    _ => ctx.step.kind.clone(),
                };
                (phase, kind)
            }
            None => (ctx.step_ref.phase, ctx.step.kind.clone()),
        };
        let Some(target) = target(&ctx.expanded, phase, &kind) else {
            return Err(ActionError::Failed(format!(
                "{} does not start or stop nodes",
                ctx.step_ref
            )));
        };
        // The commands first: the wait is for what they do.
        let commands = std::mem::take(&mut ctx.step.commands);
        let plan = ctx.plan.clone();
        let (nodes, left_out): (Vec<Node>, Vec<Node>) = step_nodes(&plan, phase, &kind)
            .into_iter()
            .cloned()
            .partition(|n| !ctx.taken_out.contains_key(&n.name));
        for node in &left_out {
            if let Some(said) = ctx.taken_out.get(&node.name) {
                ctx.log.note(&format!("not waited for: {said}"));
            }
        }
        // A wave's X nodes are drained before their stop commands; a node stopped by hand
        // (no commands) was stopped before the confirm.
        let drain = match (&ctx.rollback, &kind, plan.rolling.as_ref()) {
            (
                None,
                StepKind::StopNodes {
                    cluster: ClusterSide::X,
                    wave: Some(_),
                },
                Some(RollingSpec {
                    drain: Some(limit), ..
                }),
            ) if !commands.is_empty() => Some(*limit),
            _ => None,
        };
        let batch = max_unavailable(&plan).filter(|_| ctx.in_wave_node_step());
        if drain.is_some() || batch.is_some() {
            return self
                .run_in_batches(ctx, &target, nodes, commands, drain, batch)
                .await;
        }
        let mut details = Vec::new();
        if !commands.is_empty() {
            match run_commands(ctx, &commands).await? {
                StepOutcome::Succeeded { detail, .. } => details.extend(detail),
                failed => return Ok(failed),
            }
        }
        if nodes.is_empty() && !left_out.is_empty() {
            let text = "no node left to wait for: every one was taken out of its wave";
            ctx.log.note(text);
            details.push(text.to_string());
            if undoes_y_wave_start(ctx, &kind) {
                details.extend(taken_out_back(ctx, &left_out).await?);
            }
            return Ok(StepOutcome::succeeded(details.join("; ")));
        }
        match self.wait_for(ctx, &target, &nodes).await {
            Ok(text) => {
                details.push(text);
                if drained_by_balancer(ctx, &kind) {
                    for (text, _) in super::drain_balancer::back_in_rotation(ctx, &nodes).await {
                        details.push(text);
                    }
                }
                if undoes_y_wave_start(ctx, &kind) {
                    let wave = [nodes, left_out].concat();
                    details.extend(taken_out_back(ctx, &wave).await?);
                }
                Ok(StepOutcome::succeeded(details.join("; ")))
            }
            Err(failed) => Ok(failed),
        }
    }
}

/// The rollback of a wave's start-y step: Y's nodes of the wave stop again.
fn undoes_y_wave_start(ctx: &StepContext, kind: &StepKind) -> bool {
    ctx.rollback.is_some()
        && matches!(
            kind,
            StepKind::StopNodes {
                cluster: ClusterSide::Y,
                wave: Some(_),
            }
        )
}

/// The wave's nodes whose server kongup put in maintenance when they were taken out of it
/// (the fact `SERVER_OUT`NODE, journaled at the take-out) go back in rotation, as before
/// the wave: the wave's rollback undoes the take-out's change to the balancer too. Each is
/// journaled (the fact emptied), so a second rollback does not act again.
async fn taken_out_back(ctx: &StepContext, wave: &[Node]) -> Result<Vec<String>, ActionError> {
    let mut back = Vec::new();
    for node in wave {
        let key = format!("{SERVER_OUT}{}", node.name);
        let Some((_, server)) = super::facts::latest(&ctx.run_dir, &key)? else {
            continue;
        };
        if server.is_empty() {
            continue;
        }
        for (text, ok) in
            super::drain_balancer::back_in_rotation(ctx, std::slice::from_ref(node)).await
        {
            if ok {
                ctx.record_fact(key.clone(), "").await?;
            }
            back.push(text);
        }
    }
    Ok(back)
}

/// The rollback of a wave's stop-x step that the balancer drained (`rolling.drain` on an X
/// before Kong 3.9): X's nodes answer again, so their servers go back in rotation.
fn drained_by_balancer(ctx: &StepContext, kind: &StepKind) -> bool {
    ctx.rollback.is_some()
        && ctx.plan.from < KONG_DRAIN_SINCE
        && ctx.plan.rolling.as_ref().is_some_and(|r| r.drain.is_some())
        && matches!(
            kind,
            StepKind::StartNodes {
                cluster: ClusterSide::X,
                wave: Some(_),
            }
        )
}

/// How many failed nodes a batched step's failure names; the rest are counted.
const FAILED_NAMED: usize = 5;

impl NodesWait {
    /// The wait after the commands, on `nodes`: `Ok` says what was seen.
    async fn wait_for(
        &self,
        ctx: &StepContext,
        target: &Target,
        nodes: &[Node],
    ) -> Result<String, StepOutcome> {
        let plan = &ctx.plan;
        match &target.want {
            Want::Nothing(why) => {
                ctx.log.note(why);
                Ok(why.clone())
            }
            want if !nodes.iter().any(|n| checkable(n, listed(plan, want))) => {
                let text = format!(
                    "none of {} has an Admin or Status URL in the plan: kongup cannot see them; \
                     your confirm says they are done",
                    scope_name(target)
                );
                ctx.log.note(&text);
                Ok(text)
            }
            want => {
                self.wait(ctx, target, want, nodes, side_version(plan, target.side))
                    .await
            }
        }
    }

    /// A forward wave step with `rolling.drain` or `rolling.max_unavailable`: the nodes not
    /// done, in batches of at most `batch` (all at once without it). Each batch is drained
    /// (X, with `drain`), gets its commands (on an `ansible` executor, one invocation
    /// limited to the batch), and is waited for (down, or up and ready) before the next
    /// starts, so no more than `batch` nodes are out of service at once. A node that fails
    /// (not drained, its command, its wait) fails alone: the other batches go on.
    async fn run_in_batches(
        &self,
        ctx: &StepContext,
        target: &Target,
        nodes: Vec<Node>,
        commands: Vec<CommandSpec>,
        drain: Option<Duration>,
        batch: Option<usize>,
    ) -> Result<StepOutcome, ActionError> {
        let todo: Vec<Node> = nodes
            .into_iter()
            .filter(|n| !ctx.nodes_done.contains(&n.name))
            .collect();
        let size = batch.unwrap_or(todo.len()).max(1);
        if batch.is_some()
            && let Some(once) = commands.iter().find(|c| c.node.is_none())
        {
            return Ok(StepOutcome::failed(format!(
                "`{}` runs once, on no node (the plan gives it an executor), so kongup cannot \
                 run it {size} node{} at a time as rolling.max_unavailable asks: leave its \
                 executor out so that it runs on each node (on an ansible executor, name the \
                 nodes' executor), or remove max_unavailable",
                once.program.display(),
                if size == 1 { "" } else { "s" }
            )));
        }
        let batches = todo.len().div_ceil(size);
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut details = Vec::new();
        for (i, chunk) in todo.chunks(size).enumerate() {
            if ctx.cancel.is_cancelled() {
                return Ok(StepOutcome::failed("aborted by the operator"));
            }
            if batches > 1 {
                let names: Vec<&str> = chunk.iter().map(|n| n.name.as_str()).collect();
                ctx.log.note(&format!(
                    "batch {}/{batches} (rolling.max_unavailable: {size}): {}",
                    i + 1,
                    some_nodes(&names)
                ));
            }
            let not_drained = match drain {
                Some(limit) if ctx.plan.from < KONG_DRAIN_SINCE => {
                    super::drain_balancer::drain_nodes(ctx, &self.access, chunk, limit).await?
                }
                Some(limit) => drain_nodes(ctx, &self.access, chunk, &commands, limit).await?,
                None => BTreeMap::new(),
            };
            let in_chunk = |node: &String| chunk.iter().any(|n| &n.name == node);
            // A command placed on no node would stop the undrained ones too: it is held
            // back, and the batch's drained nodes fail saying so (they are not stopped, so
            // they must not be waited for as if they were).
            let held_back = commands
                .iter()
                .find(|c| c.node.is_none() && !not_drained.is_empty());
            if let Some(once) = held_back {
                let program = once.program.display().to_string();
                let undrained: Vec<&str> = not_drained.keys().map(String::as_str).collect();
                let why = format!(
                    "not stopped: `{program}` runs once for the batch and {} {} not drained",
                    some_nodes(&undrained),
                    if undrained.len() == 1 { "was" } else { "were" }
                );
                ctx.log.note(&format!(
                    "`{program}` not run: it runs once for the batch, and would stop {} too",
                    some_nodes(&undrained)
                ));
                for node in chunk.iter().filter(|n| !not_drained.contains_key(&n.name)) {
                    ctx.record_node(&node.name, Err(why.clone())).await?;
                    failed.insert(node.name.clone(), why.clone());
                }
            }
            let chunk_commands: Vec<CommandSpec> = commands
                .iter()
                .filter(|c| match &c.node {
                    Some(node) => in_chunk(node) && !not_drained.contains_key(node),
                    None => not_drained.is_empty(),
                })
                .cloned()
                .collect();
            failed.extend(not_drained);
            if !chunk_commands.is_empty() {
                match run_commands(ctx, &chunk_commands).await? {
                    StepOutcome::Succeeded { detail, .. } => details.extend(detail),
                    StepOutcome::Failed { detail, .. } => {
                        let before = failed.len();
                        failed.extend(ctx.nodes_failed());
                        // Not a node's failure (an abort, a command placed on no node).
                        if failed.len() == before {
                            return Ok(StepOutcome::failed(detail));
                        }
                    }
                }
            }
            let waiting: Vec<Node> = chunk
                .iter()
                .filter(|n| !failed.contains_key(&n.name))
                .cloned()
                .collect();
            if waiting.is_empty() {
                continue;
            }
            let target = &Target {
                drained: drain.is_some(),
                ..target.clone()
            };
            match self.wait_for(ctx, target, &waiting).await {
                Ok(text) => details.push(text),
                Err(StepOutcome::Failed { detail, .. }) => {
                    let before = failed.len();
                    failed.extend(ctx.nodes_failed());
                    if failed.len() == before {
                        return Ok(StepOutcome::failed(detail));
                    }
                }
                Err(other) => return Ok(other),
            }
        }
        if failed.is_empty() {
            return Ok(StepOutcome::succeeded(details.join("; ")));
        }
        let mut named: Vec<String> = failed
            .iter()
            .take(FAILED_NAMED)
            .map(|(node, why)| format!("{node} ({why})"))
            .collect();
        if failed.len() > FAILED_NAMED {
            named.push(format!("and {} more", failed.len() - FAILED_NAMED));
        }
        let not_stopped = if drain.is_some() {
            "; a node not drained is not stopped"
        } else {
            ""
        };
        Ok(StepOutcome::failed(format!(
            "{} of {} nodes failed: {}{not_stopped}. A retry runs only the failed nodes; the \
             {} done are not run again",
            failed.len(),
            todo.len(),
            named.join(", "),
            todo.len() - failed.len()
        )))
    }
}

/// Where one node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeState {
    Done,
    /// Why it is not there yet.
    Pending(String),
    /// The plan gives no way to look at it.
    Unchecked,
}

impl NodesWait {
    /// Every data plane the plan's control planes list.
    async fn listings(&self, plan: &Plan) -> Listings {
        let control_planes = control_planes(plan);
        let mut listings = Listings {
            none: control_planes.is_empty(),
            ..Listings::default()
        };
        let answers = futures::future::join_all(
            control_planes
                .iter()
                .map(|(_, url)| self.access.probe.data_planes(url)),
        )
        .await;
        for ((name, _), answer) in control_planes.iter().zip(answers) {
            match answer {
                Ok(rows) => listings
                    .rows
                    .extend(rows.into_iter().map(|row| (name.clone(), row))),
                Err(e) => listings.errors.push(format!("{name}: {e}")),
            }
        }
        listings
    }

    /// What the control planes say of data plane `node`: `Ok(note)` when they list it at
    /// `version` and in sync, `Err(why not)` otherwise.
    fn listed(node: &Node, version: KongVersion, listings: &Listings) -> Result<String, String> {
        let found = find_row(node, &listings.rows)?;
        let Some((cp, row, by)) = found else {
            let mut why = "no control plane lists it yet".to_string();
            if !listings.errors.is_empty() {
                why.push_str(&format!(" ({})", listings.errors.join("; ")));
            }
            return Err(why);
        };
        if !is_version(&row.version, version) {
            return Err(format!(
                "{cp} lists it at Kong {}, not {version}",
                row.version
            ));
        }
        if row.sync_status != SyncStatus::Normal {
            return Err(format!(
                "{cp} lists it with sync_status {}",
                row.sync_status.as_str()
            ));
        }
        Ok(format!(
            "{}: Kong {}, sync_status {} ({cp}, by {})",
            node.name,
            row.version,
            row.sync_status.as_str(),
            by.as_str()
        ))
    }

    async fn state(
        &self,
        node: &Node,
        want: &Want,
        version: KongVersion,
        listings: &Listings,
        drained: bool,
    ) -> NodeState {
        let listed = *want == Want::Up && !listings.none;
        if !checkable(node, listed) {
            return NodeState::Unchecked;
        }
        if node.role == Role::DataPlane
            && listed
            && let Err(why) = Self::listed(node, version, listings)
        {
            return NodeState::Pending(why);
        }
        let client = &self.access.probe;
        // What the Admin API says: `Some(Ok(version))`, `Some(Err(why))`, or no URL.
        let admin = match &node.admin_url {
            Some(url) if node.role != Role::DataPlane => Some(
                client
                    .node_info(url)
                    .await
                    .map(|info| info.version)
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        };
        let status = match &node.status_url {
            Some(url) => Some(match client.readiness(url).await {
                // Before 3.3 there is no /status/ready: /status answering means up.
                Err(AdminError::NotFound { .. }) => client
                    .node_status(url)
                    .await
                    .map(|_| Readiness::Ready)
                    .map_err(|e| e.to_string()),
                other => other.map_err(|e| e.to_string()),
            }),
            None => None,
        };
        match want {
            Want::Up => {
                let mut missing = Vec::new();
                match &admin {
                    Some(Ok(reported)) if !is_version(reported, version) => {
                        missing.push(format!("answers Kong {reported}, not {version}"))
                    }
                    Some(Err(why)) => missing.push(why.clone()),
                    _ => {}
                }
                match &status {
                    Some(Ok(Readiness::NotReady(reason))) => {
                        missing.push(format!("/status/ready says {reason}"))
                    }
                    Some(Err(why)) => missing.push(why.clone()),
                    _ => {}
                }
                if missing.is_empty() {
                    NodeState::Done
                } else {
                    NodeState::Pending(missing.join("; "))
                }
            }
            Want::Down | Want::Nothing(_) => {
                // Another version at the address: this side's Kong is gone from there (in
                // place, the same machines serve Y afterwards).
                if let Some(Ok(reported)) = &admin
                    && !is_version(reported, version)
                {
                    return NodeState::Done;
                }
                // Drained by kongup is not stopped: the node still runs (and answers
                // `draining` until it restarts, ready.lua:111-113,126-129@3.9.1).
                if let Some(Ok(Readiness::NotReady(reason))) = &status {
                    if drained && reason == super::drain::DRAINING {
                        return NodeState::Pending(
                            "drained but still running (/status/ready says draining)".to_string(),
                        );
                    }
                    return NodeState::Done;
                }
                if let Some(Ok(reported)) = &admin {
                    return NodeState::Pending(format!("still answers with Kong {reported}"));
                }
                if let Some(Ok(Readiness::Ready)) = &status {
                    return NodeState::Pending("/status/ready still answers 200".to_string());
                }
                NodeState::Done
            }
        }
    }

    /// Polls until every checkable node is where `want` says, the deadline passes, or the
    /// operator aborts. `Ok` says what was seen; `Err` is the failed step.
    async fn wait(
        &self,
        ctx: &StepContext,
        target: &Target,
        want: &Want,
        nodes: &[Node],
        version: KongVersion,
    ) -> Result<String, StepOutcome> {
        let waits = self.access.waits;
        let started = Instant::now();
        let deadline = started + waits.nodes;
        let mut next_progress = started;
        let (goal, reached) = match want {
            Want::Up => (
                format!("answer with Kong {version} and be ready"),
                format!("answer with Kong {version} and are ready"),
            ),
            _ if target.drained => (
                format!("stop answering or answer with another version than {version}"),
                format!("stopped answering or answer with another version than {version}"),
            ),
            _ => (
                format!(
                    "stop answering, report draining, or answer with another version than {version}"
                ),
                format!(
                    "stopped answering, report draining, or answer with another version than {version}"
                ),
            ),
        };
        ctx.log.note(&format!(
            "waiting up to {} for {} to {goal}",
            humantime::format_duration(waits.nodes),
            scope_name(target)
        ));
        let data_planes = *want == Want::Up && nodes.iter().any(|n| n.role == Role::DataPlane);
        loop {
            let listings = if data_planes {
                self.listings(&ctx.plan).await
            } else {
                Listings::default()
            };
            let states = futures::future::join_all(
                nodes
                    .iter()
                    .map(|node| self.state(node, want, version, &listings, target.drained)),
            )
            .await;
            let unchecked: Vec<&str> = nodes
                .iter()
                .zip(&states)
                .filter(|(_, s)| **s == NodeState::Unchecked)
                .map(|(n, _)| n.name.as_str())
                .collect();
            let pending_nodes: Vec<(&str, &str)> = nodes
                .iter()
                .zip(&states)
                .filter_map(|(n, s)| match s {
                    NodeState::Pending(why) => Some((n.name.as_str(), why.as_str())),
                    _ => None,
                })
                .collect();
            let pending: Vec<String> = pending_nodes
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            let checked = nodes.len() - unchecked.len();
            if pending.is_empty() {
                let mut text = format!(
                    "{} {reached} ({checked} checked, after {})",
                    scope_name(target),
                    humantime::format_duration(round(started.elapsed()))
                );
                if !unchecked.is_empty() {
                    text.push_str(&format!(
                        "; not checked (no Admin or Status URL): {}",
                        unchecked.join(", ")
                    ));
                }
                if data_planes {
                    let seen: Vec<String> = nodes
                        .iter()
                        .filter(|n| n.role == Role::DataPlane)
                        .filter_map(|n| Self::listed(n, version, &listings).ok())
                        .collect();
                    if listings.none {
                        text.push_str(
                            "; data planes' versions not checked: no control plane of the plan \
                             has an admin_url, and data planes have no Admin API",
                        );
                    } else {
                        text.push_str(&format!(
                            "; data planes as their control planes list them: {}",
                            seen.join("; ")
                        ));
                    }
                }
                ctx.log.note(&text);
                return Ok(text);
            }
            let now = Instant::now();
            if now >= deadline {
                // A wave's node: its commands run there again on a retry, not elsewhere.
                // The nodes seen where they should be are journaled done too (a step with no
                // command has no other record of them), so taking a failed one out of the
                // wave finds the others done.
                if ctx.in_wave_node_step() {
                    let seen_done = nodes.iter().zip(&states).filter(|(n, s)| {
                        **s == NodeState::Done && !ctx.nodes_done.contains(&n.name)
                    });
                    for (node, _) in seen_done {
                        if let Err(e) = ctx.record_node(&node.name, Ok(())).await {
                            return Err(StepOutcome::failed(e.to_string()));
                        }
                    }
                    for (name, why) in &pending_nodes {
                        let failed = format!(
                            "did not {goal} within {}: {why}",
                            humantime::format_duration(waits.nodes)
                        );
                        if let Err(e) = ctx.record_node(name, Err(failed)).await {
                            return Err(StepOutcome::failed(e.to_string()));
                        }
                    }
                }
                return Err(StepOutcome::failed(format!(
                    "after {}, {} of the {checked} checked of {} still do not {goal}: {}. Check \
                     them, then retry the step (its commands run again{}) or mark it done with a \
                     note",
                    humantime::format_duration(waits.nodes),
                    pending.len(),
                    scope_name(target),
                    pending.join("; "),
                    if ctx.in_wave_node_step() {
                        ", on those nodes only"
                    } else {
                        ""
                    }
                )));
            }
            if now >= next_progress {
                ctx.log.note(&format!(
                    "{} of {checked} done; waiting for {}; {} left",
                    checked - pending.len(),
                    pending.join("; "),
                    humantime::format_duration(round(deadline - now))
                ));
                next_progress = now + waits.progress;
            }
            tokio::select! {
                _ = ctx.cancel.cancelled() => {
                    return Err(StepOutcome::failed(format!(
                        "aborted by the operator while waiting for {}",
                        scope_name(target)
                    )));
                }
                _ = tokio::time::sleep(waits.poll.min(deadline - now)) => {}
            }
        }
    }
}

/// Whole seconds, for the log.
fn round(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hostname: &str, ip: &str, last_seen: i64, sync: SyncStatus) -> DataPlane {
        DataPlane {
            id: format!("id-{hostname}-{last_seen}"),
            ip: ip.into(),
            hostname: hostname.into(),
            version: "3.10.0".into(),
            sync_status: sync,
            config_hash: "0".repeat(32),
            last_seen,
            updated_at: None,
            labels: Default::default(),
            cert_details: None,
            ttl: None,
        }
    }

    fn dp(name: &str, status_url: &str) -> Node {
        Node {
            name: name.into(),
            admin_url: None,
            status_url: Some(status_url.into()),
            proxy_url: None,
            role: Role::DataPlane,
            executor: None,
        }
    }

    #[test]
    fn a_data_plane_is_found_by_hostname_then_by_ip() {
        let rows = vec![
            (
                "cp1".to_string(),
                row("dp-eu-1.prod.internal", "10.0.3.21", 5, SyncStatus::Normal),
            ),
            (
                "cp1".to_string(),
                row("5f1c-node-id", "10.0.3.22", 5, SyncStatus::Normal),
            ),
        ];
        let (_, found, by) = find_row(&dp("dp-eu-1", "http://10.0.3.21:8100"), &rows)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.hostname.as_str(), by),
            ("dp-eu-1.prod.internal", MatchedBy::Hostname)
        );
        let (_, found, by) = find_row(&dp("dp-eu-2", "http://10.0.3.22:8100"), &rows)
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.hostname.as_str(), by),
            ("5f1c-node-id", MatchedBy::Ip)
        );
        assert!(
            find_row(&dp("dp-us-1", "http://10.0.7.40:8100"), &rows)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_freshest_row_wins_and_an_address_shared_by_two_data_planes_is_refused() {
        let rows = vec![
            (
                "cp-old".to_string(),
                row("dp1", "10.0.0.1", 9, SyncStatus::KongVersionIncompatible),
            ),
            (
                "cp-new".to_string(),
                row("dp1", "10.0.0.1", 9, SyncStatus::Normal),
            ),
            (
                "cp-new".to_string(),
                row("dp1", "10.0.0.1", 3, SyncStatus::Normal),
            ),
        ];
        let (cp, _, _) = find_row(&dp("dp1", "http://dp1:8100"), &rows)
            .unwrap()
            .unwrap();
        assert_eq!(cp, "cp-old", "a tie goes to the row out of sync");
        let nat = vec![
            (
                "cp".to_string(),
                row("id-a", "10.9.9.9", 1, SyncStatus::Normal),
            ),
            (
                "cp".to_string(),
                row("id-b", "10.9.9.9", 1, SyncStatus::Normal),
            ),
        ];
        let error = find_row(&dp("dp9", "http://10.9.9.9:8100"), &nat).unwrap_err();
        assert!(error.contains("cannot tell which is dp9"), "{error}");
    }
}

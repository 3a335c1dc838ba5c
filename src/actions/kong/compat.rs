//! Hybrid, before the data planes move: every data plane connected to Y's control planes
//! reports `sync_status: normal`, shares their major version, runs a minor no newer than
//! theirs (Kong's compatibility rule, which is why control planes go first), and holds a
//! configuration: neither the empty configuration's `config_hash` in its control plane's
//! listing nor `no configuration available` from its own `/status/ready` (Kong issue
//! 12861, a control plane pushing an empty configuration during an upgrade).

use std::sync::Arc;

use super::{KongAccess, cluster_nodes};
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::kong::client::Readiness;
use crate::kong::types::{
    DataPlane, EMPTY_CONFIG_HASH, SyncStatus, reported_version, says_no_configuration,
};
use crate::kong::watch::DataPlaneMatcher;
use crate::plan::model::{Node, Plan, Role};
use crate::plan::steps::{ClusterSide, Step};
use crate::plan::version::KongVersion;

pub struct CompatibilityCheck {
    access: Arc<KongAccess>,
}

impl CompatibilityCheck {
    pub fn new(access: Arc<KongAccess>) -> CompatibilityCheck {
        CompatibilityCheck { access }
    }
}

fn y_control_planes(plan: &Plan) -> Vec<(&Node, &str)> {
    cluster_nodes(plan, ClusterSide::Y)
        .iter()
        .filter(|n| n.role == Role::ControlPlane)
        .filter_map(|n| n.admin_url.as_deref().map(|url| (n, url)))
        .collect()
}

/// "data plane kong-dp-1 (10.0.3.21) Kong 3.9.1", or by IP and the id's first block when
/// its hostname is only its node id.
fn describe(dp: &DataPlane) -> String {
    let version = if dp.version.is_empty() {
        "(no version reported)"
    } else {
        dp.version.as_str()
    };
    if dp.hostname_is_id() {
        format!("data plane {} Kong {version}", dp.label())
    } else {
        format!("data plane {} ({}) Kong {version}", dp.hostname, dp.ip)
    }
}

/// What is wrong with a data plane under a control plane of `cp_version`, if anything;
/// `status_says` is its own `/status/ready` reason when it is not ready.
pub(crate) fn offence(
    dp: &DataPlane,
    cp_version: KongVersion,
    status_says: Option<&str>,
) -> Option<String> {
    let mut wrong = Vec::new();
    if dp.sync_status != SyncStatus::Normal {
        wrong.push(format!("sync_status {}", dp.sync_status.as_str()));
    }
    match reported_version(&dp.version).ok() {
        None if dp.version.is_empty() => {
            wrong.push("its control plane lists no version for it".to_string())
        }
        None => wrong.push(format!("a version kongup cannot read ({:?})", dp.version)),
        Some(v) if v.major != cp_version.major => wrong.push(format!(
            "major {} differs from the control plane's {}",
            v.major, cp_version.major
        )),
        Some(v) if v.minor > cp_version.minor => wrong.push(format!(
            "minor {}.{} is newer than the control plane's {}.{}",
            v.major, v.minor, cp_version.major, cp_version.minor
        )),
        Some(_) => {}
    }
    if dp.has_empty_config() {
        wrong.push(format!(
            "config_hash {EMPTY_CONFIG_HASH}, the empty configuration: it proxies nothing"
        ));
    }
    if let Some(reason) = status_says.filter(|r| says_no_configuration(r)) {
        wrong.push(format!("its /status/ready says {reason}"));
    }
    (!wrong.is_empty()).then(|| format!("{}: {}", describe(dp), wrong.join(", ")))
}

#[async_trait::async_trait]
impl StepAction for CompatibilityCheck {
    fn describe(&self, _step: &Step, plan: &Plan, _toolbox: &Toolbox) -> Vec<String> {
        let cps = y_control_planes(plan);
        if cps.is_empty() {
            return vec!["no check: none of Y's control planes has an admin_url".to_string()];
        }
        vec![format!(
            "read /clustering/data-planes on Y's control planes {}: every data plane must report \
             sync_status normal, the control planes' major, a minor no newer than theirs, and a \
             configuration (not the empty one, nor 'no configuration available' from its \
             /status/ready where the plan gives its status_url)",
            cps.iter()
                .map(|(n, url)| format!("{} ({url})", n.name))
                .collect::<Vec<_>>()
                .join(", ")
        )]
    }

    async fn execute(&self, ctx: &mut StepContext) -> Result<StepOutcome, ActionError> {
        let plan = ctx.plan.clone();
        let cps = y_control_planes(&plan);
        if cps.is_empty() {
            return Ok(StepOutcome::failed(
                "none of Y's control planes has an admin_url: kongup cannot list their data \
                 planes; add it, or check /clustering/data-planes yourself and skip this step \
                 with a reason",
            ));
        }
        // The plan's data planes of either side: a listed one found among them is asked
        // for its own readiness, where it has a Status API.
        let planned: Vec<&Node> = [ClusterSide::X, ClusterSide::Y]
            .into_iter()
            .flat_map(|side| cluster_nodes(&plan, side))
            .filter(|n| n.role == Role::DataPlane)
            .collect();
        let mut matcher = DataPlaneMatcher::default();
        let mut offenders = Vec::new();
        let mut problems = Vec::new();
        let mut checked = 0;
        for (cp, url) in cps {
            let label = format!("y/{}", cp.name);
            let cp_version = match self.access.admin.node_info(url).await {
                Ok(info) => match reported_version(&info.version).ok() {
                    Some(v) => v,
                    None => {
                        problems.push(format!(
                            "{label} reports a version kongup cannot read: {:?}",
                            info.version
                        ));
                        continue;
                    }
                },
                Err(e) => {
                    problems.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let listing = match self.access.admin.data_plane_listing(url).await {
                Ok(listing) => listing,
                Err(e) => {
                    problems.push(format!("{label}: {e}"));
                    continue;
                }
            };
            ctx.log.note(&format!(
                "{label} (Kong {cp_version}): {} data plane(s) connected",
                listing.planes.len() + listing.unreadable.len()
            ));
            for row in &listing.unreadable {
                checked += 1;
                let wrong = format!(
                    "a data plane kongup cannot read, so cannot check: {}",
                    row.describe()
                );
                ctx.log.note(&format!("FAIL {label}: {wrong}"));
                offenders.push(format!("{label}: {wrong}"));
            }
            let rows: Vec<&DataPlane> = listing.planes.iter().collect();
            let matched = matcher.assign(&planned, &rows).await;
            for (dp, node) in rows.iter().zip(matched) {
                checked += 1;
                let status_url = node.and_then(|i| planned[i].status_url.as_deref());
                let status_says = match status_url {
                    Some(status_url) => match self.access.probe.readiness(status_url).await {
                        Ok(Readiness::Ready) => None,
                        Ok(Readiness::NotReady(reason)) => Some(reason),
                        Err(e) => {
                            ctx.log.note(&format!(
                                "{label}: {}: its Status API {status_url} did not say whether \
                                 it holds a configuration: {e}",
                                describe(dp)
                            ));
                            None
                        }
                    },
                    None => None,
                };
                match offence(dp, cp_version, status_says.as_deref()) {
                    Some(wrong) => {
                        ctx.log.note(&format!("FAIL {label}: {wrong}"));
                        offenders.push(format!("{label}: {wrong}"));
                    }
                    None => ctx.log.note(&format!(
                        "ok {label}: {}, sync_status normal{}",
                        describe(dp),
                        match &status_says {
                            Some(reason) => format!(" (not ready yet: {reason})"),
                            None => String::new(),
                        }
                    )),
                }
            }
        }
        let no_configuration = offenders
            .iter()
            .any(|o| o.contains("empty configuration") || o.contains("no configuration"));
        problems.extend(offenders);
        let mut advice = "Data planes must not be newer than their control planes: upgrade the \
                          control planes first, or move these data planes back to X's"
            .to_string();
        if no_configuration {
            advice.push_str(
                ". A data plane with no configuration answers every request with 404 (Kong \
                 issue 12861): check that Y's control planes hold the configuration (GET \
                 /services on their Admin API) and push it, before any traffic moves, or roll \
                 back",
            );
        }
        Ok(if problems.is_empty() {
            StepOutcome::succeeded(if checked == 0 {
                "no data plane is connected to Y's control planes yet: nothing incompatible"
                    .to_string()
            } else {
                format!("all {checked} data plane(s) in sync and compatible")
            })
        } else {
            StepOutcome::failed(format!(
                "{} problem(s): {}. {advice}",
                problems.len(),
                problems.join("; ")
            ))
        })
    }
}

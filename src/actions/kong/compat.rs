//! Hybrid, before the data planes move: every data plane connected to Y's control planes
//! reports `sync_status: normal`, shares their major version and runs a minor no newer than
//! theirs (Kong's compatibility rule, which is why control planes go first).

use std::sync::Arc;

use super::{KongAccess, cluster_nodes};
use crate::engine::step::{ActionError, StepAction, StepContext, StepOutcome, Toolbox};
use crate::kong::types::{DataPlane, SyncStatus, reported_version};
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

/// What is wrong with a data plane under a control plane of `cp_version`, if anything.
pub(crate) fn offence(dp: &DataPlane, cp_version: KongVersion) -> Option<String> {
    let mut wrong = Vec::new();
    if dp.sync_status != SyncStatus::Normal {
        wrong.push(format!("sync_status {}", dp.sync_status.as_str()));
    }
    match reported_version(&dp.version).ok() {
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
    (!wrong.is_empty()).then(|| {
        format!(
            "data plane {} ({}) Kong {}: {}",
            dp.hostname,
            dp.ip,
            dp.version,
            wrong.join(", ")
        )
    })
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
             sync_status normal, the control planes' major, and a minor no newer than theirs",
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
            let planes = match self.access.admin.data_planes(url).await {
                Ok(planes) => planes,
                Err(e) => {
                    problems.push(format!("{label}: {e}"));
                    continue;
                }
            };
            ctx.log.note(&format!(
                "{label} (Kong {cp_version}): {} data plane(s) connected",
                planes.len()
            ));
            for dp in &planes {
                checked += 1;
                match offence(dp, cp_version) {
                    Some(wrong) => {
                        ctx.log.note(&format!("FAIL {label}: {wrong}"));
                        offenders.push(format!("{label}: {wrong}"));
                    }
                    None => ctx.log.note(&format!(
                        "ok {label}: data plane {} ({}) Kong {}, sync_status normal",
                        dp.hostname, dp.ip, dp.version
                    )),
                }
            }
        }
        problems.extend(offenders);
        Ok(if problems.is_empty() {
            StepOutcome::succeeded(if checked == 0 {
                "no data plane is connected to Y's control planes yet: nothing incompatible"
                    .to_string()
            } else {
                format!("all {checked} data plane(s) in sync and compatible")
            })
        } else {
            StepOutcome::failed(format!(
                "{} problem(s): {}. Data planes must not be newer than their control planes: \
                 upgrade the control planes first, or move these data planes back to X's",
                problems.len(),
                problems.join("; ")
            ))
        })
    }
}

//! Kong's Helm chart (github.com/Kong/charts, `charts/kong`, chart 3.4.1 at e76b8003, the
//! same in tag kong-3.4.1): the migration Jobs it runs on its own
//! (docs/kong/migrations-and-paths.md §5).

use crate::plan::model::{DatabaseKind, ExecutorSpec, Plan};

/// The warning for a plan that runs on Kubernetes with a database: `helm upgrade` with the
/// chart's defaults runs `kong migrations up` before and `finish` after the upgrade
/// (`migrations.preUpgrade` / `migrations.postUpgrade`, both `true` in values.yaml:498-503;
/// templates/migrations-pre-upgrade.yaml and migrations-post-upgrade.yaml, rendered unless
/// `env.database` is "off"), and `helm install` runs `bootstrap` (templates/migrations.yaml,
/// the hidden `migrations.init`, true unless set). `None` when no executor is `kubectl` or
/// the nodes have no database.
pub fn migration_hooks_warning(plan: &Plan) -> Option<String> {
    if plan.database == DatabaseKind::Off {
        return None;
    }
    let kubectl: Vec<&str> = plan
        .executors
        .iter()
        .filter(|(_, spec)| matches!(spec, ExecutorSpec::Kubectl { .. }))
        .map(|(name, _)| name.as_str())
        .collect();
    if kubectl.is_empty() {
        return None;
    }
    Some(format!(
        "This plan runs on Kubernetes (kubectl executor(s): {}). If Kong is installed with Kong's Helm chart, `helm upgrade` runs `kong migrations up` in a pre-upgrade Job and `kong migrations finish` in a post-upgrade Job on its own (migrations.preUpgrade and migrations.postUpgrade, both true by default: charts/kong/values.yaml, chart 3.4.1), with Kong's default 60 s lock: the point of no return would pass behind kongup's back. Add `--set migrations.preUpgrade=false --set migrations.postUpgrade=false` to every `helm upgrade` the plan runs, and `--set migrations.init=false` to a `helm install` of Y (on install the chart runs `kong migrations bootstrap`), so that the plan's migrations steps run them.",
        kubectl.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{KubectlTarget, Mode, Strategy, StrategyChoice};

    #[test]
    fn only_a_kubernetes_plan_with_a_database_is_warned() {
        let mut plan = crate::plan::templates::sample::plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::InPlace),
        );
        assert_eq!(migration_hooks_warning(&plan), None);
        plan.executors.insert(
            "k8s-kong".into(),
            ExecutorSpec::Kubectl {
                context: None,
                namespace: Some("kong".into()),
                target: KubectlTarget::Selector("app=kong".into()),
                container: None,
            },
        );
        let warning = migration_hooks_warning(&plan).unwrap();
        assert!(
            warning.contains("kubectl executor(s): k8s-kong")
                && warning.contains(
                    "--set migrations.preUpgrade=false --set migrations.postUpgrade=false"
                )
                && warning.contains("migrations.init=false"),
            "{warning}"
        );
        plan.database = DatabaseKind::Off;
        assert_eq!(migration_hooks_warning(&plan), None);
    }
}

//! Kubernetes, with `kubectl` run through an executor (local unless the plan names one):
//!
//! - a Gateway API HTTPRoute: the weights of two backendRefs of one rule. The route is
//!   read first to find the refs' positions; the JSON patch then `test`s their names, so
//!   a route edited in between makes the patch fail instead of moving the wrong weight.
//!   The weights are the percentages themselves (Gateway API weights are relative; 0
//!   sends nothing).
//! - an ingress-nginx canary Ingress: its `nginx.ingress.kubernetes.io/canary-weight`
//!   annotation is Y's share (scaled when `canary-weight-total` is set).
//!
//! Reading back uses `kubectl get … -o json`: what the API server holds, which the
//! controller applies shortly after.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{LbError, Split, TrafficDriver};
use crate::exec::process::{kill_on_drop, longest_run};
use crate::exec::{ExecRequest, Executor, run_to_completion};
use crate::plan::model::{CommandLine, KubernetesDriver, KubernetesTarget};

pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);
pub const CANARY: &str = "nginx.ingress.kubernetes.io/canary";
pub const CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
pub const CANARY_WEIGHT_TOTAL: &str = "nginx.ingress.kubernetes.io/canary-weight-total";
const HTTPROUTE: &str = "httproutes.gateway.networking.k8s.io";

pub struct KubernetesTrafficDriver {
    spec: KubernetesDriver,
    executor: Arc<dyn Executor>,
}

fn error(message: String) -> LbError {
    LbError::Driver {
        driver: "kubernetes",
        message,
    }
}

impl KubernetesTrafficDriver {
    pub fn new(spec: KubernetesDriver, executor: Arc<dyn Executor>) -> Self {
        KubernetesTrafficDriver { spec, executor }
    }

    fn kubectl(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec!["kubectl".to_string()];
        if let Some(context) = &self.spec.context {
            argv.extend(["--context".to_string(), context.clone()]);
        }
        if let Some(namespace) = &self.spec.namespace {
            argv.extend(["--namespace".to_string(), namespace.clone()]);
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    fn resource(&self) -> (&'static str, &str) {
        match &self.spec.target {
            KubernetesTarget::HttpRoute { name, .. } => (HTTPROUTE, name),
            KubernetesTarget::IngressCanary { name } => ("ingress", name),
        }
    }

    /// `kubectl … get KIND NAME --output json`.
    pub fn get_argv(&self) -> Vec<String> {
        let (kind, name) = self.resource();
        self.kubectl(&["get", kind, name, "--output", "json"])
    }

    /// The `kubectl patch` that applies `split`, given the object as it is now.
    pub fn patch_argv(&self, split: Split, current: &Value) -> Result<Vec<String>, LbError> {
        let (kind, name) = self.resource();
        let (patch_type, patch) = match &self.spec.target {
            KubernetesTarget::HttpRoute {
                rule,
                x_backend,
                y_backend,
                ..
            } => {
                let refs = backend_refs(current, *rule)?;
                let x = position_of(refs, x_backend, name, *rule)?;
                let y = position_of(refs, y_backend, name, *rule)?;
                let path = |i: usize| format!("/spec/rules/{rule}/backendRefs/{i}");
                // `add` on an object member replaces it, and works when `weight` is absent.
                let patch = json!([
                    {"op": "test", "path": format!("{}/name", path(x)), "value": x_backend},
                    {"op": "test", "path": format!("{}/name", path(y)), "value": y_backend},
                    {"op": "add", "path": format!("{}/weight", path(x)), "value": split.x},
                    {"op": "add", "path": format!("{}/weight", path(y)), "value": split.y},
                ]);
                ("json", patch)
            }
            KubernetesTarget::IngressCanary { .. } => {
                let (_, total) = canary_annotations(current, name)?;
                let weight = (u64::from(split.y) * total + 50) / 100;
                let patch =
                    json!({"metadata": {"annotations": {CANARY_WEIGHT: weight.to_string()}}});
                ("merge", patch)
            }
        };
        Ok(self.kubectl(&[
            "patch",
            kind,
            name,
            "--type",
            patch_type,
            "--patch",
            &patch.to_string(),
        ]))
    }

    async fn kubectl_run(&self, argv: Vec<String>) -> Result<String, LbError> {
        let command = CommandLine::Argv(argv);
        let shown = command.display();
        let done = kill_on_drop(run_to_completion(
            self.executor.as_ref(),
            ExecRequest {
                command,
                env: Vec::new(),
                timeout: KUBECTL_TIMEOUT,
            },
            CancellationToken::new(),
        ))
        .await
        .map_err(|e| error(e.to_string()))?;
        if !done.outcome.success() {
            return Err(error(format!(
                "`{shown}` on {} {}",
                self.executor.describe(),
                done.failure_summary(3)
            )));
        }
        Ok(done.stdout())
    }

    async fn current(&self) -> Result<Value, LbError> {
        let text = self.kubectl_run(self.get_argv()).await?;
        serde_json::from_str(&text).map_err(|e| {
            let (kind, name) = self.resource();
            error(format!(
                "`kubectl get {kind} {name}` did not print JSON: {e}"
            ))
        })
    }

    /// The split an object (as `kubectl get -o json` prints it) describes.
    pub fn split_of(&self, object: &Value) -> Result<Split, LbError> {
        match &self.spec.target {
            KubernetesTarget::HttpRoute {
                name,
                rule,
                x_backend,
                y_backend,
            } => {
                let refs = backend_refs(object, *rule)?;
                // The Gateway API default weight is 1.
                let weight = |i: usize| refs[i].get("weight").and_then(Value::as_u64).unwrap_or(1);
                let x = weight(position_of(refs, x_backend, name, *rule)?);
                let y = weight(position_of(refs, y_backend, name, *rule)?);
                super::weights::split_from_weights(x, y).ok_or_else(|| {
                    error(format!(
                        "HTTPRoute {name} rule {rule}: both {x_backend} and {y_backend} have weight 0"
                    ))
                })
            }
            KubernetesTarget::IngressCanary { name } => {
                let (weight, total) = canary_annotations(object, name)?;
                let y = ((weight.min(total) * 100 + total / 2) / total) as u8;
                Ok(Split::to_y(y))
            }
        }
    }
}

fn backend_refs(route: &Value, rule: usize) -> Result<&Vec<Value>, LbError> {
    let name = route["metadata"]["name"].as_str().unwrap_or("?");
    route["spec"]["rules"]
        .get(rule)
        .ok_or_else(|| {
            error(format!(
                "HTTPRoute {name} has no rule {rule} (rules count from 0)"
            ))
        })?
        .get("backendRefs")
        .and_then(Value::as_array)
        .ok_or_else(|| error(format!("HTTPRoute {name} rule {rule} has no backendRefs")))
}

fn position_of(refs: &[Value], backend: &str, route: &str, rule: usize) -> Result<usize, LbError> {
    refs.iter()
        .position(|r| r["name"].as_str() == Some(backend))
        .ok_or_else(|| {
            error(format!(
                "HTTPRoute {route} rule {rule} has no backendRef named {backend}"
            ))
        })
}

/// `(canary-weight, canary-weight-total)` of a canary Ingress.
fn canary_annotations(ingress: &Value, name: &str) -> Result<(u64, u64), LbError> {
    let annotations = &ingress["metadata"]["annotations"];
    if annotations[CANARY].as_str() != Some("true") {
        return Err(error(format!(
            "Ingress {name} is not a canary (annotation {CANARY}: \"true\" is missing)"
        )));
    }
    let number = |key: &str, default: u64| -> Result<u64, LbError> {
        match annotations[key].as_str() {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|_| {
                error(format!(
                    "Ingress {name}: annotation {key} is {text:?}, not a number"
                ))
            }),
        }
    };
    let total = number(CANARY_WEIGHT_TOTAL, 100)?;
    if total == 0 {
        return Err(error(format!("Ingress {name}: {CANARY_WEIGHT_TOTAL} is 0")));
    }
    Ok((number(CANARY_WEIGHT, 0)?, total))
}

#[async_trait::async_trait]
impl TrafficDriver for KubernetesTrafficDriver {
    fn describe(&self) -> String {
        let scope = match (&self.spec.context, &self.spec.namespace) {
            (Some(c), Some(n)) => format!(" (context {c}, namespace {n})"),
            (Some(c), None) => format!(" (context {c})"),
            (None, Some(n)) => format!(" (namespace {n})"),
            (None, None) => String::new(),
        };
        let what = match &self.spec.target {
            KubernetesTarget::HttpRoute {
                name,
                rule,
                x_backend,
                y_backend,
            } => format!(
                "weights of backendRefs {x_backend} (X) and {y_backend} (Y) in rule {rule} of HTTPRoute {name}"
            ),
            KubernetesTarget::IngressCanary { name } => {
                format!("annotation {CANARY_WEIGHT} (Y's share) of canary Ingress {name}")
            }
        };
        format!(
            "kubernetes: kubectl patch of the {what}{scope}, through {}",
            self.executor.describe()
        )
    }

    fn call_timeout(&self) -> Duration {
        // A set reads the object, then patches it: two kubectl runs.
        2 * longest_run(KUBECTL_TIMEOUT)
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        let current = self.current().await?;
        let patch = self.patch_argv(split, &current)?;
        self.kubectl_run(patch).await.map(|_| ())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        let current = self.current().await?;
        self.split_of(&current).map(Some)
    }
}

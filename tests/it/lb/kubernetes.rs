//! The kubernetes driver: the exact kubectl argv it runs, and a set/read round trip
//! through a stand-in executor that plays the API server (it answers `get` with the
//! object it holds and applies `patch` to it, failing a JSON patch whose `test` fails
//! the way kubectl does).

use std::sync::{Arc, Mutex};

use kongup::engine::event::LogStream;
use kongup::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine};
use kongup::lb::kubernetes::KubernetesTrafficDriver;
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::model::{CommandLine, KubernetesDriver, KubernetesTarget};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct FakeApiServer {
    object: Mutex<Value>,
    calls: Mutex<Vec<Vec<String>>>,
    refuse_patches: Mutex<bool>,
}

impl FakeApiServer {
    fn new(object: Value) -> Arc<Self> {
        Arc::new(FakeApiServer {
            object: Mutex::new(object),
            calls: Mutex::new(Vec::new()),
            refuse_patches: Mutex::new(false),
        })
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    /// Applies a JSON patch (`test` and `add` on object members, all this driver uses);
    /// the error is kubectl's wording.
    fn json_patch(&self, patch: &Value) -> Result<(), String> {
        let mut object = self.object.lock().unwrap().clone();
        for op in patch.as_array().unwrap() {
            let path = op["path"].as_str().unwrap();
            let (parent, key) = path.rsplit_once('/').unwrap();
            let target = object
                .pointer_mut(parent)
                .ok_or(format!("path {parent} not found"))?;
            match op["op"].as_str().unwrap() {
                "test" if target.get(key) == Some(&op["value"]) => {}
                "test" => return Err("testing value failed".to_string()),
                "add" => {
                    target[key] = op["value"].clone();
                }
                other => return Err(format!("unexpected op {other}")),
            }
        }
        *self.object.lock().unwrap() = object;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Executor for FakeApiServer {
    fn describe(&self) -> String {
        "fake kubectl".into()
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        _cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let CommandLine::Argv(argv) = request.command else {
            panic!("kubectl is always run as an argv");
        };
        self.calls.lock().unwrap().push(argv.clone());
        let say = |stream, text: String| {
            let lines = lines.clone();
            async move { lines.send(OutputLine { stream, text }).await.unwrap() }
        };
        let verb = argv
            .iter()
            .position(|a| a == "get" || a == "patch")
            .unwrap();
        if argv[verb] == "get" {
            let object = self.object.lock().unwrap().clone();
            say(
                LogStream::Stdout,
                serde_json::to_string_pretty(&object).unwrap(),
            )
            .await;
            return Ok(ExitOutcome::Exited(0));
        }
        if *self.refuse_patches.lock().unwrap() {
            say(
                LogStream::Stderr,
                "Error from server (Forbidden): you cannot patch this".into(),
            )
            .await;
            return Ok(ExitOutcome::Exited(1));
        }
        let kind = argv[argv.iter().position(|a| a == "--type").unwrap() + 1].clone();
        let patch: Value =
            serde_json::from_str(&argv[argv.iter().position(|a| a == "--patch").unwrap() + 1])
                .unwrap();
        let applied = match kind.as_str() {
            "json" => self.json_patch(&patch),
            "merge" => {
                let mut object = self.object.lock().unwrap();
                for (key, value) in patch["metadata"]["annotations"].as_object().unwrap() {
                    object["metadata"]["annotations"][key] = value.clone();
                }
                Ok(())
            }
            other => panic!("unexpected patch type {other}"),
        };
        match applied {
            Ok(()) => {
                say(LogStream::Stdout, "patched".into()).await;
                Ok(ExitOutcome::Exited(0))
            }
            Err(message) => {
                say(
                    LogStream::Stderr,
                    format!("The request is invalid: {message}"),
                )
                .await;
                Ok(ExitOutcome::Exited(1))
            }
        }
    }
}

fn route() -> Value {
    json!({
        "metadata": {"name": "kong"},
        "spec": {"rules": [
            {"backendRefs": [{"name": "other", "port": 80}]},
            {"backendRefs": [
                {"name": "kong-y", "port": 8000, "weight": 0},
                {"name": "kong-x", "port": 8000}
            ]}
        ]}
    })
}

fn route_driver(api: Arc<FakeApiServer>) -> KubernetesTrafficDriver {
    KubernetesTrafficDriver::new(
        KubernetesDriver {
            executor: None,
            context: Some("prod".into()),
            namespace: Some("edge".into()),
            target: KubernetesTarget::HttpRoute {
                name: "kong".into(),
                rule: 1,
                x_backend: "kong-x".into(),
                y_backend: "kong-y".into(),
            },
        },
        api,
    )
}

#[tokio::test]
async fn httproute_weights_are_patched_by_position_with_name_tests() {
    let api = FakeApiServer::new(route());
    let lb = route_driver(api.clone());
    // weight absent on X means 1 (Gateway API default), Y is 0.
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    lb.set_split(Split::to_y(5)).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::to_y(5)));

    let calls = api.calls();
    let get: Vec<&str> = calls[1].iter().map(String::as_str).collect();
    assert_eq!(
        get,
        [
            "kubectl",
            "--context",
            "prod",
            "--namespace",
            "edge",
            "get",
            "httproutes.gateway.networking.k8s.io",
            "kong",
            "--output",
            "json"
        ]
    );
    let patch = &calls[2];
    assert_eq!(
        patch[..10],
        [
            "kubectl",
            "--context",
            "prod",
            "--namespace",
            "edge",
            "patch",
            "httproutes.gateway.networking.k8s.io",
            "kong",
            "--type",
            "json"
        ]
    );
    assert_eq!(patch[10], "--patch");
    let ops: Value = serde_json::from_str(&patch[11]).unwrap();
    assert_eq!(
        ops,
        json!([
            {"op": "test", "path": "/spec/rules/1/backendRefs/1/name", "value": "kong-x"},
            {"op": "test", "path": "/spec/rules/1/backendRefs/0/name", "value": "kong-y"},
            {"op": "add", "path": "/spec/rules/1/backendRefs/1/weight", "value": 95},
            {"op": "add", "path": "/spec/rules/1/backendRefs/0/weight", "value": 5}
        ])
    );
}

#[tokio::test]
async fn a_route_changed_between_read_and_patch_is_not_patched_blindly() {
    let api = FakeApiServer::new(route());
    let lb = route_driver(api.clone());
    let stale = route();
    // The refs swapped places after kongup read the route.
    api.object.lock().unwrap()["spec"]["rules"][1]["backendRefs"] = json!([
        {"name": "kong-x", "port": 8000},
        {"name": "kong-y", "port": 8000, "weight": 0}
    ]);
    let patch = lb.patch_argv(Split::to_y(50), &stale).unwrap();
    let ops: Value = serde_json::from_str(patch.last().unwrap()).unwrap();
    assert!(api.json_patch(&ops).is_err(), "the name tests fail");
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
}

#[tokio::test]
async fn a_missing_rule_or_backend_is_named() {
    let api = FakeApiServer::new(route());
    let lb = KubernetesTrafficDriver::new(
        KubernetesDriver {
            executor: None,
            context: None,
            namespace: None,
            target: KubernetesTarget::HttpRoute {
                name: "kong".into(),
                rule: 0,
                x_backend: "kong-x".into(),
                y_backend: "kong-y".into(),
            },
        },
        api.clone(),
    );
    let error = lb.set_split(Split::to_y(5)).await.unwrap_err().to_string();
    assert!(
        error.contains("rule 0 has no backendRef named kong-x"),
        "{error}"
    );
    assert_eq!(api.calls().len(), 1, "nothing was patched");
}

#[tokio::test]
async fn ingress_canary_weight_is_y_share_scaled_to_its_total() {
    let api = FakeApiServer::new(json!({
        "metadata": {"name": "kong-canary", "annotations": {
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight-total": "1000"
        }}
    }));
    let lb = KubernetesTrafficDriver::new(
        KubernetesDriver {
            executor: None,
            context: None,
            namespace: Some("edge".into()),
            target: KubernetesTarget::IngressCanary {
                name: "kong-canary".into(),
            },
        },
        api.clone(),
    );
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::ALL_X));
    lb.set_split(Split::to_y(25)).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), Some(Split::to_y(25)));
    let patch = &api.calls()[2];
    assert_eq!(
        patch,
        &[
            "kubectl",
            "--namespace",
            "edge",
            "patch",
            "ingress",
            "kong-canary",
            "--type",
            "merge",
            "--patch",
            r#"{"metadata":{"annotations":{"nginx.ingress.kubernetes.io/canary-weight":"250"}}}"#
        ]
    );
}

#[tokio::test]
async fn an_ingress_that_is_not_a_canary_is_refused() {
    let api = FakeApiServer::new(json!({"metadata": {"name": "kong", "annotations": {}}}));
    let lb = KubernetesTrafficDriver::new(
        KubernetesDriver {
            executor: None,
            context: None,
            namespace: None,
            target: KubernetesTarget::IngressCanary {
                name: "kong".into(),
            },
        },
        api,
    );
    let error = lb.set_split(Split::to_y(5)).await.unwrap_err().to_string();
    assert!(error.contains("is not a canary"), "{error}");
}

#[tokio::test]
async fn a_failing_kubectl_is_reported_with_its_stderr() {
    let api = FakeApiServer::new(route());
    *api.refuse_patches.lock().unwrap() = true;
    let lb = route_driver(api.clone());
    let error = lb.set_split(Split::to_y(5)).await.unwrap_err().to_string();
    assert!(error.contains("exited with status 1"), "{error}");
    assert!(error.contains("Forbidden"), "{error}");
    assert!(
        error.contains("fake kubectl"),
        "names the executor: {error}"
    );
}

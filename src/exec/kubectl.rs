//! Runs commands inside a Kubernetes pod with `kubectl exec`, using the operator's
//! kubeconfig (and the context/namespace the plan names).
//!
//! A label selector is resolved first (`kubectl get pods -l …`) to the first pod that is
//! Ready and not being deleted. The command runs inside the same `sh` wrapper as ssh
//! (see `remote`), so the environment travels on stdin (`kubectl exec -i`), never on an
//! argv, and killing the local kubectl on timeout or abort stops the command in the
//! pod too. The container needs `/bin/sh` (Kong's images have it).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::local::LocalExecutor;
use super::process::{DEFAULT_KILL_GRACE, ProcessSpec, find_program, run_process};
use super::remote::{environment_line, wrapped_argv};
use super::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine, run_to_completion};
use crate::exec::LogStream;
use crate::plan::model::{CommandLine, KubectlTarget};

/// The longest a pod lookup may take (capped by the command's own timeout).
pub const POD_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints `name<TAB>Ready status<TAB>deletion timestamp` per pod.
const POD_JSONPATH: &str = r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\t"}{.metadata.deletionTimestamp}{"\n"}{end}"#;

#[derive(Debug, Clone)]
pub struct KubectlExecutor {
    context: Option<String>,
    namespace: Option<String>,
    target: KubectlTarget,
    container: Option<String>,
    kill_grace: Duration,
}

impl KubectlExecutor {
    pub fn new(
        context: Option<String>,
        namespace: Option<String>,
        target: KubectlTarget,
        container: Option<String>,
    ) -> Self {
        KubectlExecutor {
            context,
            namespace,
            target,
            container,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    /// `--context`/`--namespace`, the start of every kubectl argv.
    fn scope_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(context) = &self.context {
            args.extend(["--context".to_string(), context.clone()]);
        }
        if let Some(namespace) = &self.namespace {
            args.extend(["--namespace".to_string(), namespace.clone()]);
        }
        args
    }

    /// The arguments (after `kubectl`) that list the pods a selector matches.
    pub fn pod_lookup_args(&self, selector: &str) -> Vec<String> {
        let mut args = self.scope_args();
        args.extend([
            "get".to_string(),
            "pods".to_string(),
            "--selector".to_string(),
            selector.to_string(),
            "--output".to_string(),
            POD_JSONPATH.to_string(),
        ]);
        args
    }

    /// The arguments (after `kubectl`) that run a command in `pod`.
    pub fn exec_args(&self, pod: &str, command: &CommandLine) -> Result<Vec<String>, ExecError> {
        let mut args = self.scope_args();
        args.extend(["exec".to_string(), "-i".to_string(), pod.to_string()]);
        if let Some(container) = &self.container {
            args.extend(["--container".to_string(), container.clone()]);
        }
        args.push("--".to_string());
        args.extend(wrapped_argv(command)?);
        Ok(args)
    }

    /// The pod to run in, or how the lookup ended when it did not succeed.
    async fn resolve_pod(
        &self,
        selector: &str,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> Result<Result<String, ExitOutcome>, ExecError> {
        let mut argv = vec![find_program("kubectl").display().to_string()];
        argv.extend(self.pod_lookup_args(selector));
        let lookup = run_to_completion(
            &LocalExecutor::new(),
            ExecRequest {
                command: CommandLine::Argv(argv),
                env: Vec::new(),
                timeout: POD_LOOKUP_TIMEOUT.min(timeout),
            },
            cancel,
        )
        .await?;
        match lookup.outcome {
            ExitOutcome::Aborted | ExitOutcome::TimedOut => return Ok(Err(lookup.outcome)),
            outcome if !outcome.success() => {
                return Err(ExecError::Other(format!(
                    "could not list the pods matching {selector:?} ({}): kubectl {}",
                    self.describe(),
                    lookup.failure_summary(3)
                )));
            }
            _ => {}
        }
        first_ready_pod(&lookup.stdout()).map(Ok).ok_or_else(|| {
            ExecError::Other(format!(
                "no Ready pod matches {selector:?} ({}): check the selector with `kubectl get pods -l '{selector}'`",
                self.describe()
            ))
        })
    }
}

/// The first pod of a `POD_JSONPATH` listing that is Ready and not being deleted.
pub fn first_ready_pod(listing: &str) -> Option<String> {
    listing.lines().find_map(|line| {
        let mut fields = line.split('\t');
        let name = fields.next()?.trim();
        let ready = fields.next().unwrap_or("").trim();
        let deleting = !fields.next().unwrap_or("").trim().is_empty();
        (!name.is_empty() && ready == "True" && !deleting).then(|| name.to_string())
    })
}

#[async_trait::async_trait]
impl Executor for KubectlExecutor {
    fn describe(&self) -> String {
        let target = match &self.target {
            KubectlTarget::Pod(pod) => format!("pod {pod}"),
            KubectlTarget::Selector(selector) => format!("pod matching {selector}"),
        };
        let mut out = format!("kubectl exec {target}");
        if let Some(container) = &self.container {
            out.push_str(&format!(" container {container}"));
        }
        if let Some(namespace) = &self.namespace {
            out.push_str(&format!(" in namespace {namespace}"));
        }
        if let Some(context) = &self.context {
            out.push_str(&format!(" (context {context})"));
        }
        out
    }

    async fn run(
        &self,
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let started = tokio::time::Instant::now();
        let pod = match &self.target {
            KubectlTarget::Pod(pod) => pod.clone(),
            KubectlTarget::Selector(selector) => {
                match self
                    .resolve_pod(selector, request.timeout, cancel.clone())
                    .await?
                {
                    Ok(pod) => {
                        let _ = lines
                            .send(OutputLine {
                                stream: LogStream::Engine,
                                text: format!(
                                    "kongup: running in pod {pod} (the first Ready pod matching {selector})"
                                ),
                            })
                            .await;
                        pod
                    }
                    Err(ended) => return Ok(ended),
                }
            }
        };
        let spec = ProcessSpec {
            program: find_program("kubectl"),
            args: self.exec_args(&pod, &request.command)?,
            env: Vec::new(),
            cwd: None,
            stdin: Some(environment_line(&request.env)?),
            hold_stdin_open: true,
            what: request.command.display(),
            executor: self.describe(),
            kill_grace: self.kill_grace,
            slot: None,
        };
        // The lookup's time counts against the command's timeout.
        let remaining = request.timeout.saturating_sub(started.elapsed());
        run_process(spec, remaining, lines, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executor(target: KubectlTarget, container: Option<&str>) -> KubectlExecutor {
        KubectlExecutor::new(
            Some("prod".into()),
            Some("kong".into()),
            target,
            container.map(String::from),
        )
    }

    #[test]
    fn exec_argv_scopes_the_pod_and_wraps_the_command() {
        let kubectl = executor(KubectlTarget::Pod("kong-0".into()), Some("proxy"));
        let args = kubectl
            .exec_args(
                "kong-0",
                &CommandLine::Argv(vec!["kong".into(), "health".into()]),
            )
            .unwrap();
        assert_eq!(
            args[..10],
            [
                "--context",
                "prod",
                "--namespace",
                "kong",
                "exec",
                "-i",
                "kong-0",
                "--container",
                "proxy",
                "--"
            ]
        );
        assert_eq!(args[10..12], ["sh", "-c"]);
        assert_eq!(args[13..], ["kongup", "kong", "health"]);
    }

    #[test]
    fn exec_argv_without_scope_or_container() {
        let kubectl = KubectlExecutor::new(None, None, KubectlTarget::Pod("p".into()), None);
        let args = kubectl
            .exec_args("p", &CommandLine::Shell("echo hi".into()))
            .unwrap();
        assert_eq!(args[..4], ["exec", "-i", "p", "--"]);
        assert_eq!(args[7..], ["kongup", "sh", "-c", "echo hi"]);
    }

    #[test]
    fn pod_lookup_lists_name_readiness_and_deletion() {
        let kubectl = executor(KubectlTarget::Selector("app=kong".into()), None);
        let args = kubectl.pod_lookup_args("app=kong");
        assert_eq!(
            args[..8],
            [
                "--context",
                "prod",
                "--namespace",
                "kong",
                "get",
                "pods",
                "--selector",
                "app=kong"
            ]
        );
        assert_eq!(args[8], "--output");
        assert!(args[9].starts_with("jsonpath={range .items[*]}{.metadata.name}"));
    }

    #[test]
    fn the_first_ready_pod_not_being_deleted_is_chosen() {
        let listing =
            "kong-a\tFalse\t\nkong-b\tTrue\t2026-01-01T00:00:00Z\nkong-c\tTrue\t\nkong-d\tTrue\t\n";
        assert_eq!(first_ready_pod(listing).as_deref(), Some("kong-c"));
        assert_eq!(first_ready_pod("kong-a\tFalse\t\n"), None);
        assert_eq!(first_ready_pod(""), None);
    }

    #[test]
    fn describe_says_where() {
        assert_eq!(
            executor(KubectlTarget::Selector("app=kong".into()), Some("proxy")).describe(),
            "kubectl exec pod matching app=kong container proxy in namespace kong (context prod)"
        );
    }
}

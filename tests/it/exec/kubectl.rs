//! The kubectl executor against a stand-in `kubectl` on PATH (nothing here runs a
//! cluster): the selector is resolved to the first Ready pod, the command runs through
//! `kubectl exec -i … -- sh` with the environment on stdin (never on an argv), its output
//! streams back, and a timeout kills the local kubectl with what it runs.
//!
//! It sets PATH for the whole process before anything else runs: it runs in a process of
//! its own.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::own_process::in_own_process;
use kongup::exec::kubectl::KubectlExecutor;
use kongup::exec::{ExecRequest, ExitOutcome, run_to_completion};
use kongup::plan::model::{CommandLine, KubectlTarget};
use tokio_util::sync::CancellationToken;

/// Lists one pod being deleted, one not ready and one ready; `exec` runs what follows
/// `--` in a session of its own, as the pod would. Every argv is logged.
fn write_stand_in(dir: &Path) {
    let log = dir.join("kubectl.log");
    let script = format!(
        r#"#!/bin/sh
printf '=== call\n%s\n' "$*" >> '{log}'
for arg in "$@"; do
  case "$arg" in
    get)
      printf 'pod-old\tTrue\t2026-11-22T00:00:00Z\npod-starting\tFalse\t\npod-ready\tTrue\t\n'
      exit 0;;
    exec)
      # The pod's side runs in a session of its own, as on another host: killing this
      # kubectl does not reach it; only its stdin (from kongup) closing does.
      while [ "$1" != "--" ]; do shift; done
      shift
      exec 4<&0
      setsid "$@" <&4 4<&- &
      wait $!
      exit $?;;
  esac
done
echo "unexpected kubectl call: $*" >&2
exit 2
"#,
        log = log.display()
    );
    let path = dir.join("kubectl");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn kubectl_exec_resolves_the_pod_streams_output_passes_env_on_stdin_and_times_out() {
    if !in_own_process(
        module_path!(),
        "kubectl_exec_resolves_the_pod_streams_output_passes_env_on_stdin_and_times_out",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_stand_in(dir.path());
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: the only test of this process, before any other thread exists.
    unsafe { std::env::set_var("PATH", path) };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let executor = KubectlExecutor::new(
            Some("prod".into()),
            Some("kong".into()),
            KubectlTarget::Selector("app=kong-y".into()),
            Some("proxy".into()),
        );
        let secret = "s3cret-value-42";
        let done = run_to_completion(
            &executor,
            ExecRequest {
                command: CommandLine::Shell(
                    "echo first; echo got=$KONGUP_TEST_SECRET; echo oops >&2".into(),
                ),
                env: vec![("KONGUP_TEST_SECRET".into(), secret.into())],
                timeout: Duration::from_secs(20),
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(done.outcome, ExitOutcome::Exited(0), "{:?}", done.lines);
        assert_eq!(done.stdout(), format!("first\ngot={secret}"));
        assert_eq!(done.stderr(), "oops");
        assert!(
            done.lines
                .iter()
                .any(|l| l.text.contains("running in pod pod-ready")),
            "{:?}",
            done.lines
        );
        let log = std::fs::read_to_string(dir.path().join("kubectl.log")).unwrap();
        let calls: Vec<&str> = log.split("=== call\n").skip(1).collect();
        assert_eq!(calls.len(), 2, "{log}");
        assert!(
            calls[0].starts_with("--context prod --namespace kong get pods --selector app=kong-y"),
            "{log}"
        );
        assert!(
            calls[1].starts_with(
                "--context prod --namespace kong exec -i pod-ready --container proxy -- sh -c"
            ),
            "{log}"
        );
        assert!(
            !log.contains(secret),
            "the secret reached kubectl's argv: {log}"
        );

        // A command that outlives its timeout: kubectl and what it runs are killed.
        let pid_file = dir.path().join("pid");
        let started = Instant::now();
        let done = run_to_completion(
            &executor,
            ExecRequest {
                command: CommandLine::Shell(format!(
                    "echo $$ > '{}'; exec sleep 30",
                    pid_file.display()
                )),
                env: Vec::new(),
                timeout: Duration::from_secs(1),
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(done.outcome, ExitOutcome::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the command {pid} outlived the timeout"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

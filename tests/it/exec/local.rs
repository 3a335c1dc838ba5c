//! The local executor against real programs: output streaming, exit codes, timeouts and
//! aborts that kill a whole process tree, environment passing, floods of output.

use std::path::Path;
use std::time::{Duration, Instant};

use kongup::engine::event::LogStream;
use kongup::exec::local::LocalExecutor;
use kongup::exec::process::MAX_LINE_BYTES;
use kongup::exec::{ExecError, ExecRequest, Executor, ExitOutcome, OutputLine, run_to_completion};
use kongup::plan::model::CommandLine;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn argv(args: &[&str]) -> CommandLine {
    CommandLine::Argv(args.iter().map(|a| a.to_string()).collect())
}

fn shell(script: &str) -> CommandLine {
    CommandLine::Shell(script.to_string())
}

fn request(command: CommandLine, timeout: Duration) -> ExecRequest {
    ExecRequest {
        command,
        env: Vec::new(),
        timeout,
    }
}

async fn run(command: CommandLine) -> kongup::exec::Completed {
    run_to_completion(
        &LocalExecutor::new(),
        request(command, Duration::from_secs(30)),
        CancellationToken::new(),
    )
    .await
    .expect("the command starts")
}

/// Polls until `pid` is gone (or a zombie nobody reaped yet, which runs no code).
async fn wait_until_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let gone = match stat {
            Err(_) => true,
            // Field 3, after the parenthesised command name, is the state.
            Ok(stat) => stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false),
        };
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_file(path: &Path, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {within:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn exit_codes_are_reported() {
    assert_eq!(run(argv(&["true"])).await.outcome, ExitOutcome::Exited(0));
    assert_eq!(run(shell("exit 3")).await.outcome, ExitOutcome::Exited(3));
    assert_eq!(
        run(shell("kill -9 $$")).await.outcome,
        ExitOutcome::Signalled(9)
    );
}

#[tokio::test]
async fn argv_runs_without_a_shell_and_shell_form_with_one() {
    let done = run(argv(&["printf", "%s\\n", "a b", "$HOME", "`id`"])).await;
    assert_eq!(done.stdout(), "a b\n$HOME\n`id`");
    let done = run(shell("echo $((1 + 2))")).await;
    assert_eq!(done.stdout(), "3");
}

#[tokio::test]
async fn a_program_that_does_not_exist_is_a_spawn_error_naming_it() {
    let error = run_to_completion(
        &LocalExecutor::new(),
        request(
            argv(&["kongup-no-such-program", "x"]),
            Duration::from_secs(5),
        ),
        CancellationToken::new(),
    )
    .await
    .expect_err("spawning fails");
    assert!(matches!(error, ExecError::Spawn { .. }));
    let message = error.to_string();
    assert!(message.contains("kongup-no-such-program x"), "{message}");
    assert!(message.contains("local"), "{message}");
}

#[tokio::test]
async fn an_empty_argv_is_refused() {
    let error = run_to_completion(
        &LocalExecutor::new(),
        request(CommandLine::Argv(Vec::new()), Duration::from_secs(5)),
        CancellationToken::new(),
    )
    .await
    .expect_err("an empty command cannot run");
    assert!(error.to_string().contains("empty"), "{error}");
}

/// Each line must reach the consumer while the program still runs, in the order
/// written, on the right stream: the program waits for the test to acknowledge each
/// line (by creating a file) before writing the next.
#[tokio::test]
async fn stdout_and_stderr_stream_line_by_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
        wait_for() { while [ ! -e "$1" ]; do sleep 0.01; done; }
        echo out-1; wait_for ack1
        echo err-1 >&2; wait_for ack2
        echo out-2; wait_for ack3
        echo err-2 >&2
        exit 4
    "#;
    let script = format!("cd '{}' && {script}", dir.path().display());
    let (sender, mut receiver) = mpsc::channel::<OutputLine>(8);
    let executor = LocalExecutor::new();
    let run = tokio::spawn(async move {
        executor
            .run(
                request(shell(&script), Duration::from_secs(30)),
                sender,
                CancellationToken::new(),
            )
            .await
    });
    let expected = [
        (LogStream::Stdout, "out-1"),
        (LogStream::Stderr, "err-1"),
        (LogStream::Stdout, "out-2"),
        (LogStream::Stderr, "err-2"),
    ];
    for (i, (stream, text)) in expected.iter().enumerate() {
        let line = tokio::time::timeout(Duration::from_secs(20), receiver.recv())
            .await
            .expect("the next line arrives while the program waits")
            .expect("the channel stays open");
        assert_eq!((line.stream, line.text.as_str()), (*stream, *text));
        if i < 3 {
            assert!(
                !run.is_finished(),
                "the line arrived before the program ended"
            );
            std::fs::write(dir.path().join(format!("ack{}", i + 1)), "").unwrap();
        }
    }
    assert_eq!(run.await.unwrap().unwrap(), ExitOutcome::Exited(4));
    assert!(receiver.recv().await.is_none(), "no further lines");
}

#[tokio::test]
async fn environment_reaches_the_program() {
    let done = run_to_completion(
        &LocalExecutor::new(),
        ExecRequest {
            command: argv(&[
                "sh",
                "-c",
                "printf '%s|%s\\n' \"$KONGUP_TEST_TOKEN\" \"$KONGUP_TEST_OTHER\"",
            ]),
            env: vec![
                ("KONGUP_TEST_TOKEN".into(), "s3cr3t value'\"$x".into()),
                ("KONGUP_TEST_OTHER".into(), "2".into()),
            ],
            timeout: Duration::from_secs(10),
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.stdout(), "s3cr3t value'\"$x|2");
}

#[tokio::test]
async fn children_run_in_their_own_process_group() {
    // /proc/PID/stat: "pid (comm) state ppid pgrp ..."
    let done = run(shell("cat /proc/$$/stat")).await;
    let stat = done.stdout();
    let (pid, rest) = stat.split_once(" (").unwrap();
    let fields: Vec<&str> = rest.rsplit_once(") ").unwrap().1.split(' ').collect();
    let pgrp = fields[2];
    assert_eq!(pgrp, pid, "the program leads its own process group");
    let ours = nix::unistd::getpgrp().as_raw().to_string();
    assert_ne!(
        pgrp, ours,
        "not in kongup's group, so terminal signals miss it"
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!("sleep 300 & echo $! > '{}'; wait", pid_file.display());
    let started = Instant::now();
    let done = run_to_completion(
        &LocalExecutor::new(),
        request(shell(&script), Duration::from_millis(1500)),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(60));
    let grandchild: i32 = wait_for_file(&pid_file, Duration::from_secs(1))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until_gone(grandchild, Duration::from_secs(10)).await,
        "the grandchild {grandchild} (sleep 300) survived the timeout"
    );
}

#[tokio::test]
async fn a_tree_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("stubborn.pid");
    let script = format!(
        "trap '' TERM; sh -c 'trap \"\" TERM; echo $$ > \"{}\"; while :; do sleep 1; done' & wait",
        pid_file.display()
    );
    let executor = LocalExecutor::new().with_kill_grace(Duration::from_millis(300));
    let done = run_to_completion(
        &executor,
        request(shell(&script), Duration::from_millis(1500)),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::TimedOut);
    let stubborn: i32 = wait_for_file(&pid_file, Duration::from_secs(1))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until_gone(stubborn, Duration::from_secs(10)).await,
        "the process ignoring SIGTERM ({stubborn}) survived"
    );
}

#[tokio::test]
async fn abort_kills_the_tree_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 300 & echo $! > '{}'; echo ready; wait",
        pid_file.display()
    );
    let (sender, mut receiver) = mpsc::channel::<OutputLine>(8);
    let cancel = CancellationToken::new();
    let run = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            LocalExecutor::new()
                .run(
                    request(shell(&script), Duration::from_secs(300)),
                    sender,
                    cancel,
                )
                .await
        })
    };
    let line = tokio::time::timeout(Duration::from_secs(20), receiver.recv())
        .await
        .expect("the program says it is ready")
        .unwrap();
    assert_eq!(line.text, "ready");
    let aborted_at = Instant::now();
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("abort ends the run")
        .unwrap()
        .unwrap();
    assert_eq!(outcome, ExitOutcome::Aborted);
    assert!(
        aborted_at.elapsed() < Duration::from_secs(5),
        "abort is prompt"
    );
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_until_gone(grandchild, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_flood_of_output_does_not_deadlock_and_loses_nothing() {
    let done = tokio::time::timeout(Duration::from_secs(120), run(argv(&["seq", "1", "100000"])))
        .await
        .expect("100 000 lines are read within two minutes");
    assert_eq!(done.outcome, ExitOutcome::Exited(0));
    let numbers: Vec<u64> = done
        .lines
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .map(|l| l.text.parse().unwrap())
        .collect();
    assert_eq!(numbers, (1..=100_000).collect::<Vec<u64>>());
    assert!(
        done.lines.iter().all(|l| l.stream != LogStream::Engine),
        "no notice: nothing was dropped"
    );
}

/// A consumer slower than the program gets every line in order: the program waits for
/// it, as it would writing to a slow file.
#[tokio::test]
async fn a_slow_consumer_gets_every_line_in_order() {
    let (sender, mut receiver) = mpsc::channel::<OutputLine>(16);
    let run = tokio::spawn(async move {
        LocalExecutor::new()
            .run(
                request(argv(&["seq", "1", "100000"]), Duration::from_secs(120)),
                sender,
                CancellationToken::new(),
            )
            .await
    });
    let mut taken = 0u64;
    while let Some(line) = receiver.recv().await {
        taken += 1;
        assert_eq!(line.text, taken.to_string());
        if taken.is_multiple_of(10_000) {
            // Slower than `seq`, which fills the backlog meanwhile.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(taken, 100_000);
    assert_eq!(run.await.unwrap().unwrap(), ExitOutcome::Exited(0));
}

/// A consumer that stops listening must not stop the program: the program completes (it
/// writes a marker file at its end), its output read and discarded.
#[tokio::test]
async fn a_consumer_that_goes_away_does_not_block_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("finished");
    let script = format!("seq 1 100000; echo done > '{}'", marker.display());
    let (sender, mut receiver) = mpsc::channel::<OutputLine>(16);
    let run = tokio::spawn(async move {
        LocalExecutor::new()
            .run(
                request(shell(&script), Duration::from_secs(120)),
                sender,
                CancellationToken::new(),
            )
            .await
    });
    assert_eq!(receiver.recv().await.unwrap().text, "1");
    drop(receiver);
    wait_for_file(&marker, Duration::from_secs(60)).await;
    assert_eq!(run.await.unwrap().unwrap(), ExitOutcome::Exited(0));
}

#[tokio::test]
async fn a_very_long_line_is_cut() {
    let done = run(shell(
        "head -c 100000 /dev/zero | tr '\\0' a; echo; echo next",
    ))
    .await;
    let stdout: Vec<&OutputLine> = done
        .lines
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .collect();
    assert_eq!(stdout.len(), 2);
    let cut = 100_000 - MAX_LINE_BYTES;
    assert!(stdout[0].text.ends_with(&format!("[{cut} more bytes cut]")));
    assert!(stdout[0].text.len() < MAX_LINE_BYTES + 100);
    assert_eq!(stdout[1].text, "next");
}

#[tokio::test]
async fn failure_summary_names_the_ending_and_the_last_stderr_lines() {
    let done = run(shell("echo fine; echo first >&2; echo second >&2; exit 2")).await;
    assert_eq!(done.failure_summary(1), "exited with status 2: second");
}

/// Starts `sleep 60` through the executor (writing its pid to `pid_file`), waits for the
/// pid, then drops the run future, as an outer deadline does.
async fn drop_a_running_sleep(pid_file: &Path, kill_on_drop: bool) -> i32 {
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let executor = LocalExecutor::new();
    let run = executor.run(
        request(
            shell(&format!(
                "echo $$ > '{}'; exec sleep 60",
                pid_file.display()
            )),
            Duration::from_secs(60),
        ),
        tx,
        CancellationToken::new(),
    );
    let pid_file = pid_file.to_path_buf();
    let until_started = async move {
        let pid = wait_for_file(&pid_file, Duration::from_secs(10)).await;
        pid.trim().parse::<i32>().unwrap()
    };
    if kill_on_drop {
        let run = kongup::exec::process::kill_on_drop(run);
        tokio::select! {
            _ = run => panic!("sleep 60 ended early"),
            pid = until_started => pid,
        }
    } else {
        tokio::select! {
            _ = run => panic!("sleep 60 ended early"),
            pid = until_started => pid,
        }
    }
}

#[tokio::test]
async fn a_driver_call_dropped_by_its_deadline_kills_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid = drop_a_running_sleep(&dir.path().join("pid"), true).await;
    assert!(
        wait_until_gone(pid, Duration::from_secs(5)).await,
        "the child of a dropped driver call still runs"
    );
}

#[tokio::test]
async fn a_step_command_outlives_a_dropped_future_by_design() {
    // A step's command (a migration) is never killed because its caller stopped waiting:
    // only a timeout or the operator's abort stops it.
    let dir = tempfile::tempdir().unwrap();
    let pid = drop_a_running_sleep(&dir.path().join("pid"), false).await;
    let alive = !wait_until_gone(pid, Duration::from_millis(300)).await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(
        alive,
        "the step command was killed when its future was dropped"
    );
}

#[tokio::test]
async fn a_secret_variable_of_kongup_reaches_a_program_only_when_passed() {
    // Cargo sets it for the test process; here it stands for a plan's secret variable.
    let name = "CARGO_PKG_NAME";
    assert!(std::env::var(name).is_ok(), "cargo sets {name} for tests");
    kongup::exec::process::hide_env_from_children([name.to_string()]);
    let script = shell(&format!("echo \"[${{{name}:-unset}}]\""));
    let inherited = run(script.clone()).await;
    assert_eq!(inherited.stdout(), "[unset]");
    let passed = run_to_completion(
        &LocalExecutor::new(),
        ExecRequest {
            command: script,
            env: vec![(name.to_string(), "given".to_string())],
            timeout: Duration::from_secs(30),
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(passed.stdout(), "[given]");
}

/// The default `run_per_host` (every executor but ansible): `run` once per host, every
/// host whatever the others did, each with its name in `KONGUP_NODE` and its lines
/// prefixed with it.
#[tokio::test]
async fn run_per_host_runs_every_host_in_turn_and_names_each_line() {
    let hosts: Vec<String> = ["dp-1", "dp-2", "dp-3"].map(String::from).to_vec();
    let (tx, mut rx) = mpsc::channel(64);
    let collect = async {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    };
    let executor = LocalExecutor::new();
    let (outcomes, lines) = tokio::join!(
        executor.run_per_host(
            &hosts,
            request(
                shell(r#"echo "node $KONGUP_NODE"; test "$KONGUP_NODE" != dp-2"#),
                Duration::from_secs(30)
            ),
            tx,
            CancellationToken::new()
        ),
        collect
    );
    let outcomes = outcomes.unwrap();
    let ended: Vec<(&str, ExitOutcome, &str)> = outcomes
        .iter()
        .map(|o| (o.host.as_str(), o.outcome, o.summary.as_str()))
        .collect();
    assert_eq!(
        ended,
        [
            ("dp-1", ExitOutcome::Exited(0), "ok"),
            ("dp-2", ExitOutcome::Exited(1), "exited with status 1"),
            ("dp-3", ExitOutcome::Exited(0), "ok"),
        ]
    );
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        ["dp-1: node dp-1", "dp-2: node dp-2", "dp-3: node dp-3"]
    );
}

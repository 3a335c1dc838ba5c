//! `kongup` as a process, for the demo tests: a command run to its end with its input given
//! at once, and a `--plain` demo driven line by line, answering what it prints (each wait
//! bounded by a deadline).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kongup::demo::{demo_plan_text, pacing_for_speed};
use kongup::plan::load::parse_plan;
use kongup::sim::Scenario;

use super::SPEED;

/// The longest one wait for a line of a `--plain` demo may take.
pub const LINE_DEADLINE: Duration = Duration::from_secs(60);

/// Reads a pipe to its end on a thread of its own (a full pipe must not block kongup).
fn read_to_end(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs kongup with `input` on stdin, to its end within `limit`; its output is read as it
/// comes (a report fills a pipe).
pub fn kongup(args: &[&str], run_dir: &Path, input: &str, limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kongup"));
    command.args(args).arg("--journal").arg(run_dir);
    run_to_end(command, args, input, limit)
}

/// As [`kongup`], with no file kongup writes allowed past `max_file_bytes` (a whole
/// multiple of 512): a full disk, as a write sees it (`EFBIG` where a full disk gives
/// `ENOSPC`; the size limit is `RLIMIT_FSIZE`, set by the shell's `ulimit -f`, with
/// `SIGXFSZ` ignored so that the write fails instead of killing the process).
pub fn kongup_with_file_limit(
    args: &[&str],
    run_dir: &Path,
    input: &str,
    limit: Duration,
    max_file_bytes: u64,
) -> Output {
    assert_eq!(
        max_file_bytes % 512,
        0,
        "dash's ulimit -f counts 512-byte blocks"
    );
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"",
            max_file_bytes / 512
        ))
        .arg(env!("CARGO_BIN_EXE_kongup"))
        .args(args)
        .arg("--journal")
        .arg(run_dir);
    run_to_end(command, args, input, limit)
}

fn run_to_end(mut command: Command, args: &[&str], input: &str, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let stdout = read_to_end(child.stdout.take().unwrap());
    let stderr = read_to_end(child.stderr.take().unwrap());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = stdout.join().unwrap();
            panic!(
                "kongup {args:?} did not end within {limit:?}:\n{}",
                String::from_utf8_lossy(&stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `kongup status --json` of the run in `run_dir`.
pub fn status_json(run_dir: &Path) -> serde_json::Value {
    let status = kongup(&["status", "--json"], run_dir, "", Duration::from_secs(10));
    assert!(status.status.success(), "{status:?}");
    serde_json::from_slice(&status.stdout).unwrap()
}

/// The state `kongup status --json` gives a step (`"phase/id"`).
pub fn step_state(status: &serde_json::Value, step: &str) -> String {
    status["steps"]
        .as_array()
        .expect("status lists the steps")
        .iter()
        .find(|s| {
            format!(
                "{}/{}",
                s["phase"].as_str().unwrap(),
                s["id"].as_str().unwrap()
            ) == step
        })
        .unwrap_or_else(|| panic!("{step} is not in the status: {status:#}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The plan name of the scenario's demo (typed to confirm irreversible steps).
pub fn plan_name(scenario: Scenario) -> String {
    let text = demo_plan_text(scenario, None, &pacing_for_speed(SPEED)).unwrap();
    parse_plan(&text, "plan.yaml").unwrap().plan.name
}

/// What an operator types for each step of the scenario's demo: `y`, or the plan name for
/// one that cannot be undone.
pub fn answers(scenario: Scenario) -> String {
    let text = demo_plan_text(scenario, None, &pacing_for_speed(SPEED)).unwrap();
    let loaded = parse_plan(&text, "plan.yaml").unwrap();
    loaded
        .expanded
        .steps()
        .filter(|(_, step)| step.skip_reason.is_none())
        .map(|(_, step)| {
            if step.irreversible {
                format!("{}\n", loaded.plan.name)
            } else {
                "y\n".to_string()
            }
        })
        .collect()
}

/// `kongup demo --plain` in `run_dir`, driven line by line.
pub struct PlainDemo {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// Every line printed so far.
    pub output: Vec<String>,
    plan_name: String,
}

/// How a `--plain` demo ended.
pub struct Ended {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl PlainDemo {
    /// Starts (or resumes) the scenario's demo at the tests' speed.
    pub fn start(scenario: Scenario, run_dir: &Path) -> PlainDemo {
        let scenario_arg = scenario.to_string();
        PlainDemo::spawn(
            &["demo", "--scenario", &scenario_arg],
            run_dir,
            &plan_name(scenario),
        )
    }

    /// `kongup ARGS --plain --speed SPEED --journal RUN_DIR` (a demo, or `run PLAN
    /// --rehearse`), typing `plan_name` to confirm irreversible steps.
    pub fn spawn(args: &[&str], run_dir: &Path, plan_name: &str) -> PlainDemo {
        PlainDemo::spawn_at(args, run_dir, plan_name, SPEED)
    }

    /// [`PlainDemo::spawn`] at `speed`.
    pub fn spawn_at(args: &[&str], run_dir: &Path, plan_name: &str, speed: f64) -> PlainDemo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kongup"))
            .args(args)
            .args(["--plain", "--speed", &speed.to_string(), "--journal"])
            .arg(run_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        PlainDemo {
            stdin: child.stdin.take(),
            stderr: Some(read_to_end(child.stderr.take().unwrap())),
            child,
            lines,
            output: Vec::new(),
            plan_name: plan_name.to_string(),
        }
    }

    fn transcript(&self) -> String {
        self.output.join("\n")
    }

    /// The next line, or a panic naming `what` was awaited when `deadline` passes or the
    /// output ends.
    fn next_line(&mut self, deadline: Instant, what: &str) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.output.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("timed out waiting for {what}:\n{}", self.transcript())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "kongup ended while waiting for {what}:\n{}",
                    self.transcript()
                )
            }
        }
    }

    /// Types `line`.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits (answering nothing) for a line that `matches`; returns it.
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + LINE_DEADLINE;
        loop {
            let line = self.next_line(deadline, what);
            if matches(&line) {
                return line;
            }
        }
    }

    /// Answers every step that asks for a confirm (`y`, or the plan name for an
    /// irreversible one) until a line satisfies `stop` (checked before the line is
    /// answered); returns it. A step that fails or is interrupted meanwhile is a panic.
    pub fn confirm_until(&mut self, what: &str, stop: impl Fn(&str) -> bool) -> String {
        self.confirm_until_within(what, LINE_DEADLINE, stop)
    }

    /// [`PlainDemo::confirm_until`] with `limit` for the whole walk (a fleet's steps take
    /// longer than one line's deadline).
    pub fn confirm_until_within(
        &mut self,
        what: &str,
        limit: Duration,
        stop: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let line = self.next_line(deadline, what);
            if stop(&line) {
                return line;
            }
            if line.starts_with("FAILED ") || line.starts_with("INTERRUPTED ") {
                panic!("{line} while waiting for {what}:\n{}", self.transcript());
            }
            if line.starts_with("kongup> ") {
                if line.contains(": y | skip REASON") {
                    self.send("y");
                } else if line.contains(": type the plan name (") && line.contains("to confirm") {
                    let name = self.plan_name.clone();
                    self.send(&name);
                }
            }
        }
    }

    /// Confirms steps until `step` (`"phase/id"`) has succeeded.
    pub fn confirm_through(&mut self, step: &str) {
        let done = format!("succeeded {step}");
        self.confirm_until(&format!("{step} to succeed"), |line| {
            line == done || line.starts_with(&format!("{done}:"))
        });
    }

    /// Kills kongup as `kill -9` does (SIGKILL: no word, no cleanup; its lock goes with
    /// it) and waits for it to be gone; returns what it printed.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        drop(self.stdin.take());
        while let Ok(line) = self.lines.recv_timeout(LINE_DEADLINE) {
            self.output.push(line);
        }
        self.transcript()
    }

    /// Types `quit` and waits for kongup to end (a running step finishes first).
    pub fn quit(mut self) -> Ended {
        self.send("quit");
        self.end()
    }

    /// Closes stdin (end of input quits) and waits for kongup to end.
    pub fn end(mut self) -> Ended {
        drop(self.stdin.take());
        let deadline = Instant::now() + LINE_DEADLINE;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.output.push(line);
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "kongup did not end after its input did:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Ended {
            status,
            stdout: self.transcript(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

impl Drop for PlainDemo {
    /// A test that failed half-way leaves no kongup behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

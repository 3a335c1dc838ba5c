//! The real binary with a plan of local commands: `kongup run --plain` confirming each
//! step, kill -9 in the middle of a step and the resume, SIGHUP during a step, SIGTERM and
//! SIGINT while idle, the lock, a changed plan, a torn journal, secrets, and
//! `status`/`report` against the journal.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kongup::engine::journal::{Entry, JOURNAL_FILE, Record, StepResult, read_journal};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

pub(super) const DEADLINE: Duration = Duration::from_secs(30);
const PLAN_NAME: &str = "engine-it";
const SECRET: &str = "pg-pass-7f3a9c";

/// An in-place plan whose steps are local commands writing into `dir` (kongup's own
/// automation is off for them: there is no Kong here); `stop-x` runs `stop_x` (a shell
/// line); the rest of the template is skipped by the plan.
fn write_plan(dir: &Path, stop_x: &str) -> PathBuf {
    let d = dir.display();
    let text = format!(
        r#"name: {PLAN_NAME}
from: 3.4.0
to: 3.4.2
mode: traditional
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        admin_url: http://127.0.0.1:8001
    database:
      host: 127.0.0.1
      name: kong
      user: kong
      password: {{env: KONGUP_IT_PG_PASSWORD}}
  y:
    nodes:
      - name: y1
        admin_url: http://127.0.0.1:8001
steps:
  preflight:
    builtin: false
    commands:
      - run: [touch, {d}/preflight.done]
  backup:
    builtin: false
    commands:
      - shell: "echo the password is $(cat {d}/pg-password); echo env has [${{KONGUP_IT_PG_PASSWORD:-unset}}]; echo backup > {d}/backup.txt"
  stop-x:
    builtin: false
    commands:
      - shell: "{stop_x}"
  deploy-y:
    builtin: false
    commands:
      - run: [touch, {d}/deploy.done]
  migrations-finish:
    builtin: false
  skip:
    - {{step: freeze-writes, reason: nobody writes configuration in the test}}
    - {{step: review-considerations, reason: reviewed}}
    - {{step: review-breaking-changes, reason: reviewed}}
    - {{step: migrations-up, reason: the test has no database}}
    - {{step: start-y, reason: the test has no nodes}}
    - {{step: staging-tests, reason: the test has no nodes}}
    - {{step: monitor, reason: the test has no metrics}}
    - {{step: go-no-go, reason: decided}}
    - {{step: decommission-x, reason: kept}}
    - {{step: resume-writes, reason: nobody writes configuration in the test}}
"#
    );
    let path = dir.join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The answers for the steps that wait for one, in order: `y`, or the plan name.
const ANSWERS: &str = "y\ny\ny\ny\nengine-it\n";

pub(super) struct Lab {
    pub(super) dir: tempfile::TempDir,
    pub(super) plan: PathBuf,
    pub(super) run_dir: PathBuf,
}

impl Lab {
    pub(super) fn new(stop_x: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let stop_x = stop_x.replace("DIR", &dir.path().display().to_string());
        let plan = write_plan(dir.path(), &stop_x);
        // The secret as a step might read it from a file (to see it redacted).
        std::fs::write(dir.path().join("pg-password"), SECRET).unwrap();
        let run_dir = dir.path().join("run");
        Lab { dir, plan, run_dir }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(super) fn kongup(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kongup"));
        command
            .args(args)
            .env("KONGUP_IT_PG_PASSWORD", SECRET)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        command
    }

    fn run_args(&self) -> Vec<String> {
        vec![
            "run".into(),
            self.plan.display().to_string(),
            "--plain".into(),
            "--journal".into(),
            self.run_dir.display().to_string(),
        ]
    }

    /// `kongup run --plain` with `input` on stdin, to its end.
    pub(super) fn run_with(&self, input: &str, extra: &[&str]) -> Output {
        let mut args = self.run_args();
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .kongup(&args)
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
        wait_output(child)
    }

    /// As [`Lab::run_with`], with no file kongup writes allowed past `max_file_bytes`: a full
    /// disk as a write sees it (`EFBIG` where a full disk gives `ENOSPC`): dash's `ulimit -f`
    /// (512-byte blocks) sets `RLIMIT_FSIZE`, and `SIGXFSZ` is ignored so that the write
    /// fails instead of killing the process.
    fn run_with_file_limit(&self, input: &str, max_file_bytes: u64) -> Output {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"",
                max_file_bytes.div_ceil(512)
            ))
            .arg(env!("CARGO_BIN_EXE_kongup"))
            .args(self.run_args())
            .env("KONGUP_IT_PG_PASSWORD", SECRET)
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
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
        wait_output(child)
    }

    /// `kongup run --plain` in its own process group, stdin kept open for more lines.
    pub(super) fn start(&self, input: &str) -> Child {
        let args = self.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .kongup(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child
    }

    pub(super) fn journal(&self) -> Vec<Record> {
        match read_journal(&self.run_dir.join(JOURNAL_FILE)) {
            Ok(contents) => contents.records,
            Err(_) => Vec::new(),
        }
    }

    pub(super) fn wait_journal(&self, what: &str, pred: impl Fn(&[Record]) -> bool) -> Vec<Record> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let records = self.journal();
            if pred(&records) {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; journal: {records:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(super) fn status_json(&self) -> serde_json::Value {
        let out = self
            .kongup(&[
                "status",
                "--journal",
                &self.run_dir.display().to_string(),
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn report(&self, format: &str) -> String {
        let out = self
            .kongup(&[
                "report",
                "--journal",
                &self.run_dir.display().to_string(),
                "--format",
                format,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

pub(super) fn wait_output(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("kongup (pid {pid}) did not end within {DEADLINE:?}");
        }
    }
}

pub(super) fn started(records: &[Record], step: &str) -> usize {
    records
        .iter()
        .filter(|r| matches!(&r.entry, Entry::StepStarted { step: s, .. } if s == step))
        .count()
}

pub(super) fn finished(records: &[Record], step: &str, result: StepResult) -> bool {
    records.iter().any(
        |r| matches!(&r.entry, Entry::StepFinished { step: s, result: r2, .. } if s == step && *r2 == result),
    )
}

pub(super) fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn plain_runs_every_step_and_status_and_report_reflect_the_journal() {
    let lab = Lab::new("touch DIR/stopped");
    let output = lab.run_with(ANSWERS, &[]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    for file in ["preflight.done", "backup.txt", "stopped", "deploy.done"] {
        assert!(lab.path(file).exists(), "{file} was not written\n{out}");
    }
    // What runs, and where, is shown before the confirm (deploy-y acts on Y's node y1,
    // which has no executor: local); the irreversible step asks for the name.
    assert!(
        out.contains(&format!(
            "run `touch {}/deploy.done` on y1 (local)",
            lab.dir.path().display()
        )),
        "{out}"
    );
    assert!(
        out.contains("type the plan name (engine-it) to confirm"),
        "{out}"
    );
    assert!(out.contains("the password is [REDACTED]"), "{out}");
    assert!(!out.contains(SECRET), "{out}");

    let journal = lab.journal();
    let status = lab.status_json();
    assert_eq!(status["run_id"], "engine-it");
    assert_eq!(status["plan"], PLAN_NAME);
    assert_eq!(status["state"], "done");
    assert_eq!(status["traffic"], serde_json::Value::Null);
    assert_eq!(status["locked_by"], serde_json::Value::Null);
    let loaded = kongup::plan::load::load_plan(&lab.plan).unwrap();
    let steps = status["steps"].as_array().unwrap();
    assert_eq!(steps.len(), loaded.expanded.steps().count());
    for ((phase, planned), shown) in loaded.expanded.steps().zip(steps) {
        let key = format!("{}/{}", phase.name, planned.id);
        assert_eq!(shown["id"], planned.id.as_str());
        assert_eq!(shown["phase"], phase.name.as_str());
        let confirm = journal
            .iter()
            .find(|r| matches!(&r.entry, Entry::StepConfirmed { step, .. } if *step == key));
        match confirm {
            Some(confirm) => {
                assert_eq!(shown["state"], "succeeded", "{key}");
                assert_eq!(shown["confirmed_by"], confirm.by.as_str());
                assert_eq!(
                    shown["confirmed_at"],
                    confirm
                        .at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        .as_str()
                );
                assert!(finished(&journal, &key, StepResult::Succeeded), "{key}");
            }
            None => {
                assert_eq!(shown["state"], "skipped", "{key}");
                assert!(planned.skip_reason.is_some(), "{key}");
                assert_eq!(shown["confirmed_by"], serde_json::Value::Null);
            }
        }
    }
    assert_eq!(
        journal
            .iter()
            .filter(|r| matches!(r.entry, Entry::StepConfirmed { .. }))
            .count(),
        5
    );

    let report: serde_json::Value = serde_json::from_str(&lab.report("json")).unwrap();
    assert_eq!(report["state"], "done");
    let backup = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "backup")
        .unwrap();
    assert_eq!(backup["attempts"][0]["result"], "succeeded");
    assert_eq!(backup["attempts"][0]["detail"], "the command exited 0");
    assert!(
        backup["attempts"][0]["last_lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "the password is [REDACTED]")
    );
    let finish = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "migrations-finish")
        .unwrap();
    assert_eq!(
        finish["attempts"][0]["detail"],
        "done by hand: confirmed by the operator"
    );
    let markdown = lab.report("md");
    assert!(markdown.contains("### cluster/monitor: "), "{markdown}");
    assert!(
        markdown.contains("- Skipped by the plan: the test has no metrics"),
        "{markdown}"
    );
    assert!(
        markdown.contains("cluster/migrations-finish confirmed (plan name typed)"),
        "{markdown}"
    );

    // A secret from the environment is in no log line, journal line or report.
    for file in files_under(&lab.run_dir) {
        let content = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            !content.contains(SECRET),
            "{} holds the secret",
            file.display()
        );
    }
    assert!(!markdown.contains(SECRET));
    let backup_log = std::fs::read_to_string(lab.run_dir.join("logs/cluster-backup.log")).unwrap();
    assert!(
        backup_log.contains("stdout| the password is [REDACTED]"),
        "{backup_log}"
    );
    // The plan's secret variable is not in the environment the step's command inherits.
    assert!(
        backup_log.contains("stdout| env has [unset]"),
        "{backup_log}"
    );

    // A done run opened again says so and exits 0 without running anything.
    let again = lab.run_with("", &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(started(&lab.journal(), "cluster/preflight"), 1);
}

#[test]
fn kill_9_during_a_step_leaves_it_interrupted_and_retry_completes_the_run() {
    // The first attempt sleeps for long (and says its pid); the retry returns at once.
    let lab = Lab::new(
        "if [ -e DIR/slept-once ]; then touch DIR/stopped; exit 0; fi; touch DIR/slept-once; echo $$ > DIR/sleep.pid; exec sleep 120",
    );
    let mut child = lab.start("y\ny\ny\ny\nengine-it\n");
    lab.wait_journal("stop-x to start", |r| started(r, "cluster/stop-x") == 1);
    let deadline = Instant::now() + DEADLINE;
    while !lab.path("sleep.pid").exists() {
        assert!(Instant::now() < deadline, "the sleep never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let sleep_pid: i32 = std::fs::read_to_string(lab.path("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The step's process is not ours to leave behind. Its group (kongup's wrapper leads
    // it) is gone before the resume, so the retry is not refused for a command still
    // running.
    let group = std::fs::read_to_string(format!("/proc/{sleep_pid}/stat"))
        .ok()
        .and_then(|stat| {
            let fields: Vec<String> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .map(String::from)
                .collect();
            fields.get(2)?.parse::<i32>().ok()
        });
    let _ = kill(Pid::from_raw(sleep_pid), Signal::SIGKILL);
    if let Some(group) = group {
        let deadline = Instant::now() + DEADLINE;
        while killpg(Pid::from_raw(group), None).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the step's process group {group} lives on"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let journal = lab.journal();
    assert!(!finished(&journal, "cluster/stop-x", StepResult::Succeeded));
    assert_eq!(
        started(&journal, "cluster/deploy-y"),
        0,
        "no other step ran"
    );
    let status = lab.status_json();
    let stop_x = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "stop-x")
        .unwrap()
        .clone();
    assert_eq!(stop_x["state"], "interrupted");
    assert_eq!(status["locked_by"], serde_json::Value::Null);

    // Power went out mid-write too: a torn last line.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(lab.run_dir.join(JOURNAL_FILE))
        .unwrap();
    file.write_all(br#"{"seq":999,"at":"2025-01-01T00:0"#)
        .unwrap();
    drop(file);

    let output = lab.run_with("retry\ny\nengine-it\n", &[]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("torn"), "{out}");
    assert!(out.contains("INTERRUPTED cluster/stop-x"), "{out}");
    let journal = lab.journal();
    assert!(
        journal.iter().any(
            |r| matches!(&r.entry, Entry::StepInterrupted { step } if step == "cluster/stop-x")
        )
    );
    assert_eq!(started(&journal, "cluster/stop-x"), 2);
    assert!(finished(&journal, "cluster/stop-x", StepResult::Succeeded));
    assert!(lab.path("stopped").exists() && lab.path("deploy.done").exists());
    assert_eq!(lab.status_json()["state"], "done");
}

#[test]
fn sighup_during_a_step_lets_it_finish_journals_it_then_exits() {
    let lab = Lab::new("touch DIR/began; sleep 2; touch DIR/stopped");
    let child = lab.start("y\ny\ny\ny\nengine-it\n");
    lab.wait_journal("stop-x to start", |r| started(r, "cluster/stop-x") == 1);
    // The command itself is under way (its own process group is set by then).
    let deadline = Instant::now() + DEADLINE;
    while !lab.path("began").exists() {
        assert!(Instant::now() < deadline, "the step's command never began");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A hangup reaches the terminal's foreground group: kongup, not its commands.
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGHUP).unwrap();
    let output = wait_output(child);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        lab.path("stopped").exists(),
        "the step ran to its end\n{out}\n{:#?}",
        lab.journal()
    );
    let journal = lab.journal();
    let finished_at = journal
        .iter()
        .position(|r| matches!(&r.entry, Entry::StepFinished { step, result: StepResult::Succeeded, .. } if step == "cluster/stop-x"))
        .expect("the step's result is journaled");
    let closed = journal
        .iter()
        .position(
            |r| matches!(&r.entry, Entry::SessionClosed { reason } if reason.contains("SIGHUP")),
        )
        .expect("the session closed on SIGHUP");
    assert!(finished_at < closed);
    assert_eq!(started(&journal, "cluster/deploy-y"), 0);
    assert_eq!(lab.status_json()["state"], "waiting");
}

/// Lines of a child's stdout as they come, read on a thread of their own.
pub(super) struct Lines {
    pub(super) text: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Lines {
    pub(super) fn read(pipe: impl std::io::Read + Send + 'static) -> Lines {
        use std::io::BufRead;
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = text.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Lines { text, reader }
    }

    pub(super) fn wait_for(&self, what: &str, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.text.lock().unwrap().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} ({needle:?}); stdout so far:\n{}",
                self.text.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything, once the pipe has closed.
    pub(super) fn all(self) -> String {
        self.reader.join().unwrap();
        std::sync::Arc::try_unwrap(self.text)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// `signal` to an idle `kongup run --plain` (a step waits for its answer, stdin still
/// open): the session is closed in the journal, the process exits 2, and the run is
/// intact: `kongup status` reads it and the run resumes to done.
fn a_signal_while_idle_closes_the_session_and_the_run_resumes(signal: Signal) {
    let lab = Lab::new("touch DIR/stopped");
    let mut child = lab.start("y\n");
    let stdout = Lines::read(child.stdout.take().unwrap());
    // Preflight ran; the backup waits for an answer and nothing runs.
    stdout.wait_for("the backup's prompt", "kongup> cluster/backup: y |");
    let stdin = child.stdin.take();
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let output = wait_output(child);
    drop(stdin);
    let out = stdout.all();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let journal = lab.journal();
    match &journal.last().expect("a journal").entry {
        Entry::SessionClosed { reason } => {
            assert_eq!(reason, &format!("{} received", signal.as_str()));
        }
        other => panic!("the last record is {other:?}, not the session closing"),
    }
    assert!(finished(
        &journal,
        "cluster/preflight",
        StepResult::Succeeded
    ));
    assert_eq!(started(&journal, "cluster/backup"), 0, "{out}");

    let status = lab.status_json();
    assert_eq!(status["state"], "waiting", "{status:#}");
    assert_eq!(status["locked_by"], serde_json::Value::Null, "{status:#}");
    assert_eq!(status["steps"][0]["state"], "succeeded", "{status:#}");

    let resumed = lab.run_with(ANSWERS.strip_prefix("y\n").unwrap(), &[]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert_eq!(lab.status_json()["state"], "done");
}

#[test]
fn sigterm_while_idle_closes_the_session_and_exits_2() {
    a_signal_while_idle_closes_the_session_and_the_run_resumes(Signal::SIGTERM);
}

#[test]
fn sigint_while_idle_closes_the_session_and_exits_2() {
    a_signal_while_idle_closes_the_session_and_the_run_resumes(Signal::SIGINT);
}

#[test]
fn a_second_kongup_on_the_same_run_is_refused_and_names_the_holder() {
    let lab = Lab::new("touch DIR/stopped");
    let mut first = lab.start("");
    lab.wait_journal("the first session", |r| {
        r.iter()
            .any(|r| matches!(r.entry, Entry::SessionOpened { .. }))
    });
    let second = lab.run_with(ANSWERS, &[]);
    let err = String::from_utf8_lossy(&second.stderr).to_string();
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(err.contains(&format!("(pid {})", first.id())), "{err}");
    assert!(err.contains(&kongup::engine::local_operator().0), "{err}");
    let status = lab.status_json();
    assert_eq!(status["locked_by"]["pid"], first.id());
    assert_eq!(started(&lab.journal(), "cluster/preflight"), 0);
    drop(first.stdin.take());
    assert_eq!(wait_output(first).status.code(), Some(2));
}

#[test]
fn a_changed_plan_is_refused_with_what_changed_until_accepted() {
    let lab = Lab::new("touch DIR/stopped");
    let output = lab.run_with("y\n", &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let plan = std::fs::read_to_string(&lab.plan).unwrap();
    std::fs::write(
        &lab.plan,
        plan.replace("reason: reviewed", "reason: read twice"),
    )
    .unwrap();

    let refused = lab.run_with("", &[]);
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(err.contains("the plan changed since the run"), "{err}");
    let line = plan
        .lines()
        .position(|l| l.contains("review-considerations, reason: reviewed"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!(
            "steps.skip (line {line}): - - {{step: review-considerations, reason: reviewed}}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "steps.skip (line {line}): + - {{step: review-considerations, reason: read twice}}"
        )),
        "{err}"
    );
    assert!(err.contains("--accept-plan-change"), "{err}");

    let accepted = lab.run_with(
        ANSWERS.strip_prefix("y\n").unwrap(),
        &["--accept-plan-change"],
    );
    assert_eq!(accepted.status.code(), Some(0), "{}", text(&accepted));
    let journal = lab.journal();
    assert!(journal.iter().any(
        |r| matches!(&r.entry, Entry::PlanChangeAccepted { summary, .. } if summary.len() == 4)
    ));
}

#[test]
fn without_journal_the_run_lives_in_the_state_directory_and_is_found_again() {
    let lab = Lab::new("touch DIR/stopped");
    let plan = lab.plan.display().to_string();
    let mut child = lab
        .kongup(&["run", &plan, "--plain"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let output = wait_output(child);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let run_dir = lab.dir.path().join("state/kongup/runs/engine-it");
    assert!(run_dir.join(JOURNAL_FILE).exists(), "{}", text(&output));
    use std::os::unix::fs::PermissionsExt;
    for dir in [&run_dir, &run_dir.join("logs")] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    for file in files_under(&run_dir) {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }

    for args in [
        vec!["status", "--json", "--plan", &plan],
        vec!["status", "--json"],
    ] {
        let out = lab.kongup(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["run_id"], "engine-it");
        assert_eq!(status["steps"][0]["state"], "succeeded");
        assert_eq!(status["state"], "waiting");
    }
    let missing = lab
        .kongup(&[
            "status",
            "--journal",
            &lab.path("nowhere").display().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run in"));
}

/// The disk fills up under the journal mid-run: kongup stops (a record it cannot write
/// ends the session), says the run stays resumable and exits 2, as a run stopped before
/// its end; the next kongup, with room on the disk, resumes it.
#[test]
fn a_full_disk_mid_run_exits_2_and_the_run_resumes() {
    let lab = Lab::new("touch DIR/stopped");
    let opened = lab.run_with("", &[]);
    assert_eq!(opened.status.code(), Some(2), "{}", text(&opened));
    let journal = lab.run_dir.join(JOURNAL_FILE);
    let size = std::fs::metadata(&journal).unwrap().len();
    // Room for the next session's first records, not for the whole run.
    let full = lab.run_with_file_limit(ANSWERS, size + 2048);
    let out = text(&full);
    // The write past the limit is cut short, or fails (EFBIG), as on a full disk.
    assert!(out.contains("could not append to the journal"), "{out}");
    assert!(
        out.contains("stopped before its end and stays resumable"),
        "{out}"
    );
    assert_eq!(full.status.code(), Some(2), "{out}");
    // With room again, the run opens where the journal left it: waiting for the next
    // confirm, or on a step the failure interrupted (which depends on where the limit fell).
    let resumed = lab.run_with("", &[]);
    let out = text(&resumed);
    assert_eq!(resumed.status.code(), Some(2), "{out}");
    let state = lab.status_json()["state"].clone();
    assert!(
        ["running", "paused", "waiting"].contains(&state.as_str().unwrap()),
        "{state}\n{out}"
    );
}

/// A plan name of 300 characters is valid; its run directory under the state directory is
/// named by a bounded run id (cut, with a hash of the name), so the run opens, and the same
/// plan finds it again.
#[test]
fn a_300_character_plan_name_runs_in_a_bounded_run_directory() {
    let lab = Lab::new("true");
    let name = format!("eu-{}", "k".repeat(297));
    let renamed = std::fs::read_to_string(&lab.plan)
        .unwrap()
        .replace(&format!("name: {PLAN_NAME}\n"), &format!("name: {name}\n"));
    assert!(renamed.contains(&name));
    std::fs::write(&lab.plan, renamed).unwrap();
    let plan = lab.plan.display().to_string();
    let opened = lab.kongup(&["run", &plan, "--plain"]).output().unwrap();
    assert_eq!(opened.status.code(), Some(2), "{}", text(&opened));
    let runs = lab.path("state").join("kongup").join("runs");
    let dirs: Vec<String> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(
        dirs[0].len() <= 64 && dirs[0].starts_with("eu-kkk"),
        "{dirs:?}"
    );
    let again = lab.kongup(&["run", &plan, "--plain"]).output().unwrap();
    let out = text(&again);
    assert_eq!(again.status.code(), Some(2), "{out}");
    assert_eq!(std::fs::read_dir(&runs).unwrap().count(), 1, "{out}");
}

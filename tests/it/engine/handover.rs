//! Handing a run over between two kongup processes (`kongup run --plain`): the second asks
//! with `--take-over`, the first answers `handover` (or `keep`), and the report names both
//! drivers and the handover; a driver killed without closing its session is taken over and
//! journaled as such.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kongup::engine::journal::{Entry, JOURNAL_FILE, Record, read_journal};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const DEADLINE: Duration = Duration::from_secs(30);

/// An in-place plan of two local steps (preflight, backup); the plan skips the rest.
fn write_plan(dir: &Path) -> PathBuf {
    let d = dir.display();
    let text = format!(
        r#"name: handover-it
from: 3.4.0
to: 3.4.2
mode: traditional
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        admin_url: http://127.0.0.1:9
    database:
      host: 127.0.0.1
      name: kong
      user: kong
      password: {{env: KONGUP_IT_PG_PASSWORD}}
  y:
    nodes:
      - name: y1
        admin_url: http://127.0.0.1:9
steps:
  preflight:
    builtin: false
    commands:
      - run: [touch, {d}/preflight.done]
  backup:
    builtin: false
    commands:
      - run: [touch, {d}/backup.done]
  stop-x:
    builtin: false
  deploy-y:
    builtin: false
  migrations-finish:
    builtin: false
  skip:
    - {{step: freeze-writes, reason: none}}
    - {{step: review-considerations, reason: none}}
    - {{step: review-breaking-changes, reason: none}}
    - {{step: migrations-up, reason: none}}
    - {{step: start-y, reason: none}}
    - {{step: staging-tests, reason: none}}
    - {{step: monitor, reason: none}}
    - {{step: go-no-go, reason: none}}
    - {{step: decommission-x, reason: none}}
    - {{step: resume-writes, reason: none}}
"#
    );
    let path = dir.join("plan.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A `kongup run --plain` in the background: its stdin, and its stdout and stderr as they
/// come.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
}

impl Driver {
    fn start(dir: &Path, extra: &[&str]) -> Driver {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kongup"))
            .arg("run")
            .arg(dir.join("plan.yaml"))
            .args(["--plain", "--journal"])
            .arg(dir.join("run"))
            .args(extra)
            .env("KONGUP_IT_PG_PASSWORD", "unused")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    let mut out = out.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let stdin = child.stdin.take();
        Driver { child, stdin, out }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    fn wait_for(&self, what: &str, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.out.lock().unwrap().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} ({needle:?}); output so far:\n{}",
                self.out.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its exit code, once it has exited (killed after the deadline).
    fn exit(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                return (status.code(), self.out.lock().unwrap().clone());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("kongup did not exit:\n{}", self.out.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn journal(dir: &Path) -> Vec<Record> {
    read_journal(&dir.join("run").join(JOURNAL_FILE))
        .unwrap()
        .records
}

fn kongup(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_kongup"))
        .args(args)
        .arg("--journal")
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    output
}

#[test]
fn a_run_is_handed_over_between_two_kongups_and_the_report_names_both_drivers() {
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path());
    let mut first = Driver::start(dir.path(), &[]);
    first.say("y");
    first.wait_for("the backup's prompt", "kongup> cluster/backup: y |");

    // A second kongup is refused, told who drives the run, and offered watch.
    let (code, out) = Driver::start(dir.path(), &[]).exit();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("is being driven by") && out.contains("kongup watch --journal"),
        "{out}"
    );
    assert!(out.contains("--take-over"), "{out}");

    let mut second = Driver::start(dir.path(), &["--take-over"]);
    second.wait_for("the request", "to hand the run over; waiting up to 60 s");
    first.wait_for("the request in the driver", "asks to take over");
    first.say("handover");
    let (code, out) = first.exit();
    assert_eq!(code, Some(2), "the run stays resumable:\n{out}");
    assert!(out.contains("handed over to"), "{out}");

    // The new driver goes on where the first left the run.
    second.wait_for("the backup's prompt", "kongup> cluster/backup: y |");
    second.say("y");
    second.wait_for("the backup done", "succeeded cluster/backup");
    second.say("quit");
    let (code, out) = second.exit();
    assert_eq!(code, Some(2), "{out}");
    assert!(dir.path().join("backup.done").exists());
    assert!(
        !dir.path().join("run").join("handover").exists(),
        "the request was withdrawn"
    );

    let records = journal(dir.path());
    let opened: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.entry, Entry::SessionOpened { .. }))
        .collect();
    assert_eq!(opened.len(), 2, "{records:#?}");
    let handed = records
        .iter()
        .position(|r| matches!(r.entry, Entry::HandedOver { .. }))
        .expect("the handover is journaled");
    assert!(matches!(
        records[handed - 1].entry,
        Entry::HandoverRequested { .. }
    ));
    assert!(matches!(
        records[handed + 1].entry,
        Entry::SessionClosed { ref reason } if reason.starts_with("handed over to")
    ));

    let report = kongup(dir.path(), &["report", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let drivers = report["drivers"].as_array().unwrap();
    assert_eq!(drivers.len(), 2, "{report:#}");
    assert_ne!(drivers[0]["pid"], drivers[1]["pid"]);
    let second_driver = drivers[1]["operator"].as_str().unwrap();
    assert_eq!(
        drivers[0]["ended"],
        format!("handed over to {second_driver}"),
        "{report:#}"
    );
    assert!(drivers[0]["to"].is_string(), "{report:#}");
    assert_eq!(drivers[1]["ended"], "the operator quit", "{report:#}");
    let markdown = kongup(dir.path(), &["report"]);
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(markdown.contains("## Drivers"), "{markdown}");
    assert!(
        markdown.contains(&format!(": handed over to {second_driver}")),
        "{markdown}"
    );
    assert!(
        markdown.contains("asked to take the run over (kongup run --take-over"),
        "{markdown}"
    );
    // Who confirmed each step: the first driver the preflight, the second the backup.
    let steps = report["steps"].as_array().unwrap();
    let at = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["confirmed_at"].as_str().unwrap().to_string())
            .unwrap()
    };
    let handed_at = drivers[0]["to"].as_str().unwrap();
    assert!(at("preflight").as_str() <= handed_at, "{report:#}");
    assert!(at("backup").as_str() >= handed_at, "{report:#}");

    let status = kongup(dir.path(), &["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("drivers:") && status.contains(&format!("handed over to {second_driver}")),
        "{status}"
    );
}

#[test]
fn a_driver_that_keeps_the_run_declines_and_the_asker_is_told() {
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path());
    let mut first = Driver::start(dir.path(), &[]);
    first.wait_for("the preflight's prompt", "kongup> cluster/preflight: y |");
    let second = Driver::start(dir.path(), &["--take-over"]);
    first.wait_for("the request in the driver", "asks to take over");
    first.say("keep");
    let (code, out) = second.exit();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("did not hand the run over"), "{out}");
    assert!(out.contains("keeps driving it"), "{out}");
    // The first driver goes on.
    first.say("y");
    first.wait_for("the preflight done", "succeeded cluster/preflight");
    first.say("quit");
    assert_eq!(first.exit().0, Some(2));
    assert!(
        journal(dir.path())
            .iter()
            .any(|r| matches!(r.entry, Entry::HandoverDeclined { .. }))
    );
}

#[test]
fn a_driver_killed_without_closing_its_session_is_taken_over_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    write_plan(dir.path());
    let first = Driver::start(dir.path(), &[]);
    first.wait_for("the preflight's prompt", "kongup> cluster/preflight: y |");
    let first_pid = first.child.id();
    kill(Pid::from_raw(first_pid as i32), Signal::SIGKILL).unwrap();
    let _ = first.exit();

    let mut second = Driver::start(dir.path(), &[]);
    second.wait_for("the preflight's prompt", "kongup> cluster/preflight: y |");
    second.say("quit");
    let (_, out) = second.exit();
    assert!(out.contains("took the run over from"), "{out}");
    let records = journal(dir.path());
    let taken = records
        .iter()
        .find_map(|r| match &r.entry {
            Entry::LockTakenOver { pid, .. } => Some(*pid),
            _ => None,
        })
        .expect("the take-over is journaled");
    assert_eq!(taken, first_pid);
    let report = kongup(dir.path(), &["report", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let ended = report["drivers"][0]["ended"].as_str().unwrap();
    assert!(
        ended.contains("stopped without closing its session"),
        "{report:#}"
    );
}

//! The open-files limit at fleet size: `kongup run` raises its soft limit to the hard one,
//! and says so when the plan's fleet needs more than even the hard limit allows. The limit
//! is set for the child with `prlimit` (util-linux).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kongup::testkit::fleet::fleet_plan_text;

/// Generous for a debug build on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// `kongup run PLAN --plain` of a fleet of `data_planes` per cluster under
/// `prlimit --nofile=SOFT:HARD`, stdin held open; with its stdout's lines.
fn run_under(
    limit: &str,
    data_planes: usize,
) -> (tempfile::TempDir, Child, mpsc::Receiver<String>) {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("fleet.yaml");
    std::fs::write(&plan, fleet_plan_text(data_planes)).unwrap();
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={limit}"))
        .arg(env!("CARGO_BIN_EXE_kongup"))
        .arg("run")
        .arg(&plan)
        .arg("--plain")
        .arg("--journal")
        .arg(dir.path().join("run"))
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("prlimit (util-linux) runs kongup");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (dir, child, rx)
}

/// Lines until one has `wanted`; all of them, or a panic naming what came (and kongup's
/// stderr, in `dir`).
fn until(dir: &tempfile::TempDir, lines: &mpsc::Receiver<String>, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(wanted);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!(
                "no line with {wanted:?} within {DEADLINE:?}: {seen:#?}\nstderr: {}",
                std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
            ),
        }
    }
}

/// `Max open files` of `/proc/PID/limits`: (soft, hard).
fn open_files(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{limits}"));
    let mut figures = line["Max open files".len()..].split_whitespace();
    (
        figures.next().unwrap().to_string(),
        figures.next().unwrap().to_string(),
    )
}

#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    let (dir, mut child, lines) = run_under("256:4096", 40);
    // The plan is read and the run open: kongup's start is behind it.
    until(&dir, &lines, "fleet");
    let limits = open_files(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(limits, ("4096".to_string(), "4096".to_string()));
}

#[test]
fn a_fleet_past_the_hard_limit_is_warned_about() {
    // 150 data planes per cluster: 128 scrape connections at most, and the reserve: about
    // 320 descriptors, past 256.
    let (dir, mut child, lines) = run_under("256:256", 150);
    let seen = until(&dir, &lines, "open-files limit");
    let _ = child.kill();
    let _ = child.wait();
    let warning = seen.last().unwrap();
    assert!(
        warning.contains("(256 soft, 256 hard)")
            && warning.contains("302 nodes")
            && warning.contains("Raise the hard limit"),
        "{warning}"
    );
}

//! A step's command that outlives `kill -9` of kongup: the resumed kongup (a new process
//! on the same run directory) says it still runs, refuses to start the step again beside
//! it, shows its output as its files grow, and journals how it ended; `kongup status` says
//! so meanwhile. The command appends a line to a file: exactly one line, one copy.

use std::path::Path;
use std::time::{Duration, Instant};

use kongup::engine::journal::JOURNAL_FILE;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cli::{DEADLINE, Lab, Lines, started, text, wait_output};

/// Says it started (its pid into `starts`), waits for the test's `go`, then appends to
/// `copies`: one line per copy of the command that ran to its end. It gives up when the
/// test's directory goes, so a failed test leaves nothing running.
const STOP_X: &str = "echo $$ >> DIR/starts; echo started; while [ ! -e DIR/go ] && [ -d DIR ]; do sleep 0.05; done; echo done >> DIR/copies; echo finished";

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn status_text(lab: &Lab) -> String {
    let out = lab
        .kongup(&["status", "--journal", &lab.run_dir.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The journal's records of `event` for `step`, as JSON.
fn records_of(lab: &Lab, event: &str, step: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(lab.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|r| r["event"] == event && r["step"] == step)
        .collect()
}

/// A kongup that confirms up to stop-x, killed with `kill -9` once stop-x's command runs.
fn kill_9_while_stop_x_runs(lab: &Lab) {
    let mut first = lab.start("y\ny\ny\n");
    let deadline = Instant::now() + DEADLINE;
    while lines_of(&lab.path("starts")).is_empty() {
        assert!(Instant::now() < deadline, "stop-x's command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(first.id() as i32), Signal::SIGKILL).unwrap();
    first.wait().unwrap();
}

#[test]
fn a_command_that_outlives_kill_9_is_watched_to_its_end_and_never_started_twice() {
    let lab = Lab::new(STOP_X);
    kill_9_while_stop_x_runs(&lab);
    // Between the two kongups: nobody drives the run, the command goes on.
    let between = status_text(&lab);

    // The new kongup is asked to retry at once, then to skip the step (the next step would
    // start beside the command); the script then waits for the command's end, records the
    // step as done, and finishes the run.
    let mut second = lab
        .start("retry\nskip moving on\nwait\ndone the first copy ran to its end\ny\nengine-it\n");
    drop(second.stdin.take());
    let stdout = Lines::read(second.stdout.take().unwrap());
    let deadline = Instant::now() + DEADLINE;
    let refused = "cannot retry cluster/stop-x";
    loop {
        let said = stdout.text.lock().unwrap().clone();
        let starts = lines_of(&lab.path("starts"));
        assert_eq!(
            starts.len(),
            1,
            "a second copy of stop-x's command started beside the first (pids {starts:?}); \
             kongup said:\n{said}"
        );
        if said.contains(refused) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retry was neither refused nor run; kongup said:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stdout.wait_for("the skip refused", "cannot skip cluster/stop-x");
    // Its output so far, read from its file.
    stdout.wait_for("the command's output read from its file", "out| started");
    let during = status_text(&lab);

    std::fs::write(lab.path("go"), "").unwrap();
    let output = wait_output(second);
    let said = stdout.all();
    let out = format!("{said}\n{}", text(&output));
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert_eq!(
        lines_of(&lab.path("copies")),
        ["done"],
        "one copy of the command ran to its end\n{out}"
    );
    assert_eq!(lines_of(&lab.path("starts")).len(), 1, "{out}");

    let started_records = records_of(&lab, "process-started", "cluster/stop-x");
    assert_eq!(
        started_records.len(),
        1,
        "the command's pid, start time and boot are journaled when it starts: \
         {started_records:#?}"
    );
    let process = &started_records[0]["process"];
    let pid = process["identity"]["pid"].as_i64().unwrap();
    assert!(process["identity"]["start_ticks"].as_u64().unwrap() > 0);
    assert_eq!(process["pgid"].as_i64(), Some(pid));
    assert_eq!(
        process["identity"]["boot_id"].as_str().map(str::len),
        Some(36)
    );
    let still = "still running since";
    for (when, status) in [
        ("between the two kongups", &between),
        ("during the wait", &during),
    ] {
        assert!(
            status.contains(still) && status.contains(&format!("pid {pid} on local")),
            "kongup status {when} does not say the command still runs:\n{status}"
        );
    }
    assert!(
        said.contains(still) && said.contains(&format!("pid {pid} on local")),
        "{out}"
    );
    assert!(
        said.contains("out| finished"),
        "its output to its end: {out}"
    );
    let ended = records_of(&lab, "process-ended", "cluster/stop-x");
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(ended[0]["attempt"], 1);
    assert_eq!(ended[0]["number"], 1);
    assert_eq!(
        ended[0]["end"]["status"], 0,
        "the first copy's exit status is journaled: {ended:#?}"
    );
    assert_eq!(
        started(&lab.journal(), "cluster/stop-x"),
        1,
        "never started again"
    );
    assert_eq!(
        records_of(&lab, "step-marked-done", "cluster/stop-x").len(),
        1,
        "{out}"
    );
    let log = std::fs::read_to_string(lab.run_dir.join("logs/cluster-stop-x.log")).unwrap();
    assert!(log.contains("stdout| finished"), "{log}");
    assert!(
        !lab.run_dir.join("procs/cluster-stop-x/1-1").exists(),
        "the raw output is removed once the end is journaled"
    );
}

#[test]
fn a_command_left_running_is_killed_on_request_with_its_group_and_the_kill_is_journaled() {
    let lab = Lab::new(STOP_X);
    kill_9_while_stop_x_runs(&lab);
    let pid: i32 = lines_of(&lab.path("starts"))[0].parse().unwrap();

    // `kill` is asked once more; `y` sends it; `wait` holds the rest until its end.
    let mut second =
        lab.start("kill\ny\nwait\ndone killed it: nothing of it is left\ny\nengine-it\n");
    drop(second.stdin.take());
    let stdout = Lines::read(second.stdout.take().unwrap());
    let output = wait_output(second);
    let said = stdout.all();
    let out = format!("{said}\n{}", text(&output));
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        said.contains("kill cluster/stop-x?"),
        "the kill is asked first: {out}"
    );
    assert!(
        lines_of(&lab.path("copies")).is_empty(),
        "the command was killed before its end\n{out}"
    );
    assert_eq!(lines_of(&lab.path("starts")).len(), 1, "{out}");
    assert!(
        kill(Pid::from_raw(pid), None).is_err(),
        "pid {pid} still lives after the kill"
    );
    let requested = records_of(&lab, "process-kill-requested", "cluster/stop-x");
    assert_eq!(requested.len(), 1, "{requested:#?}");
    assert_eq!(requested[0]["number"], 1);
    let ended = records_of(&lab, "process-ended", "cluster/stop-x");
    assert_eq!(ended.len(), 1, "{ended:#?}");
    assert_eq!(
        ended[0]["end"]["status"], 143,
        "killed by SIGTERM, as its wrapper recorded: {ended:#?}"
    );
    // The kill is journaled before the end it brings, and the note after that end.
    let seq = |event: &str| records_of(&lab, event, "cluster/stop-x")[0]["seq"].as_u64();
    assert!(
        seq("process-kill-requested") < seq("process-ended")
            && seq("process-ended") < seq("step-marked-done"),
        "{out}"
    );
    assert_eq!(
        started(&lab.journal(), "cluster/stop-x"),
        1,
        "never started again"
    );
}

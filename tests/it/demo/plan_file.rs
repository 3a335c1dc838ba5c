//! The demo's `plan.yaml` is written under the run's lock, whole or not at all: a second
//! demo on the same directory is told who holds the run and writes nothing, and a disk
//! that fills up while the plan is written leaves no plan (an empty or cut one would block
//! every resume).

use std::time::Duration;

use crate::support::demo::cli::{kongup, kongup_with_file_limit};
use kongup::demo::{DemoOptions, PLAN_FILE, start};
use kongup::engine::lock::RunLock;
use kongup::sim::Scenario;

#[tokio::test(flavor = "multi_thread")]
async fn a_demo_that_loses_the_start_race_names_the_holder_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("demo");
    std::fs::create_dir(&run_dir).unwrap();
    // The winner has the lock and is about to write its plan.
    let _winner = RunLock::acquire(&run_dir, "bob@ops2").unwrap();
    let lost = match start(DemoOptions::new(Scenario::InPlace, run_dir.clone())).await {
        Ok(_) => panic!("a second demo started on a held run"),
        Err(error) => error.to_string(),
    };
    assert!(lost.contains("being driven by bob@ops2"), "{lost}");
    assert!(!run_dir.join(PLAN_FILE).exists(), "{lost}");
}

#[test]
fn a_disk_full_while_the_plan_is_written_leaves_no_plan_and_the_next_demo_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("demo");
    let args = ["demo", "--scenario", "in-place", "--plain"];
    let full = kongup_with_file_limit(&args, &run_dir, "", Duration::from_secs(30), 1024);
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("plan"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // With room on the disk, the next demo writes its plan and runs (to the end of its
    // input: stopped, resumable).
    let next = kongup(&args, &run_dir, "", Duration::from_secs(60));
    assert_eq!(
        next.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let text = std::fs::read_to_string(run_dir.join(PLAN_FILE)).unwrap();
    assert!(kongup::plan::load::parse_plan(&text, PLAN_FILE).is_ok());
}

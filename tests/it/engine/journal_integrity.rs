//! One writer per journal, and a journal kongup can trust (issue 14, items 2, 3 and 9):
//! removing the `lock` file lets no second driver in; a journal replaced or written to
//! behind the driver's back stops it before its next record; interleaved, missing,
//! edited or reordered records are refused with the lines they are on; a record from a
//! newer kongup is not a torn write; `status` and `report` say the same.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use crate::support::engine::*;
use kongup::engine::journal::{JOURNAL_FILE, read_journal};
use kongup::engine::lock::{LOCK_FILE, LockStatus};
use kongup::engine::status::read_run;
use kongup::engine::{Command, EngineError, Operator, StepState};
use kongup::plan::model::Strategy;
use sha2::{Digest, Sha256};

fn two_steps() -> kongup::plan::steps::ExpandedPlan {
    expanded(Strategy::InPlace, vec![scripted("a"), scripted("b")])
}

fn run_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("run")
}

fn journal_path(dir: &tempfile::TempDir) -> PathBuf {
    run_dir(dir).join(JOURNAL_FILE)
}

fn start(dir: &tempfile::TempDir) -> TestRun {
    TestRun::start(setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit().toolbox,
    ))
}

/// Opening the run again, as a second `kongup run` would; the error it is refused with.
fn refused(dir: &tempfile::TempDir, operator: &str) -> EngineError {
    let mut other = setup(
        dir.path(),
        plan_named("p"),
        two_steps(),
        "v1",
        kit().toolbox,
    );
    other.operator = Operator(operator.into());
    match kongup::engine::spawn(other) {
        Ok(_) => panic!("the run was opened: {operator} was let in to drive it"),
        Err(err) => err,
    }
}

/// A run that confirmed and finished step `a`, then quit: its journal lines.
async fn a_finished_step(dir: &tempfile::TempDir) -> Vec<String> {
    let mut run = start(dir);
    run.send(Command::Confirm {
        step: cluster("a"),
        typed: None,
    })
    .await;
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.quit().await;
    lines(&journal_path(dir))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The 1-based line of the first record whose event is `event`.
fn line_of(lines: &[String], event: &str) -> usize {
    let tag = format!("\"event\":\"{event}\"");
    lines
        .iter()
        .position(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("no {event} record in {lines:#?}"))
        + 1
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What `kongup status` and `kongup report` (other processes) say about the run.
fn cli(dir: &tempfile::TempDir, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Process::new(env!("CARGO_BIN_EXE_kongup"))
        .args(args)
        .arg("--journal")
        .arg(run_dir(dir))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The journal is refused by the engine, by `status` and by `report`, each naming
/// `naming`; returns the engine's message.
///
/// A journal kongup cannot trust also says what to do next: [`UNTRUSTED`].
fn refused_everywhere(dir: &tempfile::TempDir, naming: &[&str]) -> String {
    let err = refused(dir, "bob@elsewhere");
    let message = err.to_string();
    assert!(matches!(err, EngineError::Journal(_)), "{message}");
    for part in naming {
        assert!(message.contains(part), "engine: {part:?} not in {message}");
    }
    for command in [&["status"][..], &["report", "--format", "md"][..]] {
        let (code, out, err) = cli(dir, command);
        assert_eq!(code, Some(1), "{command:?}: {out}{err}");
        for part in naming {
            assert!(err.contains(part), "{command:?}: {part:?} not in {err}");
        }
    }
    message
}

/// Refused everywhere, naming `naming`, and saying what to do with a journal kongup
/// cannot trust.
fn untrusted_everywhere(dir: &tempfile::TempDir, naming: &[&str]) -> String {
    let mut all = naming.to_vec();
    all.extend(UNTRUSTED);
    refused_everywhere(dir, &all)
}

/// What every message about a journal kongup cannot trust says.
const UNTRUSTED: [&str; 2] = ["will not resume", "--journal DIR"];

// ---- item 2: two writers -------------------------------------------------------------

#[tokio::test]
async fn removing_the_lock_file_lets_no_second_driver_in_and_the_holder_is_still_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(&dir);
    run.wait_step(&cluster("a"), StepState::Ready).await;
    std::fs::remove_file(run_dir(&dir).join(LOCK_FILE)).unwrap();

    let err = refused(&dir, "bob@elsewhere");
    let message = err.to_string();
    assert!(matches!(err, EngineError::Lock(_)), "{message}");
    assert!(
        message.contains("alice@test") && message.contains(&format!("pid {}", std::process::id())),
        "the holder is named: {message}"
    );

    // `status` (another process) still sees who holds the run.
    match read_run(&run_dir(&dir)).unwrap().lock {
        LockStatus::Held(Some(holder)) => assert_eq!(holder.operator, "alice@test"),
        other => panic!("the run is held by alice: {other:?}"),
    }
    let (code, out, err) = cli(&dir, &["status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("driven by: alice@test"), "{out}");

    // The first driver goes on undisturbed, and its journal reads clean.
    run.send(Command::Confirm {
        step: cluster("a"),
        typed: None,
    })
    .await;
    run.wait_step(&cluster("a"), StepState::Succeeded).await;
    run.quit().await;
    let records = read_journal(&journal_path(&dir)).unwrap().records;
    assert!(records.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(
        records.iter().all(|r| r.by != "bob@elsewhere"),
        "bob wrote nothing"
    );
}

/// Waits for the engine task to end with an error, and returns it.
async fn stopped_with_error(run: TestRun) -> EngineError {
    match tokio::time::timeout(Duration::from_secs(5), run.task).await {
        Ok(Ok(Err(err))) => err,
        Ok(Ok(Ok(end))) => panic!("the engine went on and ended cleanly: {end:?}"),
        Ok(Err(join)) => panic!("the engine task failed: {join}"),
        Err(_) => panic!("the engine went on writing a journal it no longer holds"),
    }
}

#[tokio::test]
async fn a_journal_replaced_under_its_driver_stops_it_before_its_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(&dir);
    let mut run = run;
    run.wait_step(&cluster("a"), StepState::Ready).await;
    // Someone copies the journal over itself: same bytes, another file (and no lock on it).
    let path = journal_path(&dir);
    let copy = run_dir(&dir).join("journal.copy");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    let before = std::fs::read(&path).unwrap();

    run.send(Command::Confirm {
        step: cluster("a"),
        typed: None,
    })
    .await;
    let err = stopped_with_error(run).await;
    let message = err.to_string();
    assert!(matches!(err, EngineError::Journal(_)), "{message}");
    assert!(
        message.contains(&path.display().to_string()) && message.contains("replaced"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing was written to the file that took the journal's place"
    );
}

#[tokio::test]
async fn bytes_another_process_appended_stop_the_driver_before_its_next_record() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(&dir);
    run.wait_step(&cluster("a"), StepState::Ready).await;
    let path = journal_path(&dir);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"{\"seq\":2,\"at\":\"2025-01-01T00:00:00Z\",\"by\":\"bob@elsewhere\",\"event\":\"resumed\"}\n")
        .unwrap();
    drop(file);
    let before = std::fs::read(&path).unwrap();

    run.send(Command::Confirm {
        step: cluster("a"),
        typed: None,
    })
    .await;
    let err = stopped_with_error(run).await;
    let message = err.to_string();
    assert!(matches!(err, EngineError::Journal(_)), "{message}");
    assert!(
        message.contains("did not write") && message.contains(&path.display().to_string()),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn two_records_with_the_same_number_are_refused_as_interleaved_naming_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    // Two drivers each appended their record `n` after the same line.
    let n = line_of(&journal, "step-confirmed");
    let theirs = journal[n - 1].replace("\"by\":\"alice@test\"", "\"by\":\"bob@elsewhere\"");
    assert_ne!(theirs, journal[n - 1]);
    journal.insert(n, theirs);
    write_lines(&journal_path(&dir), &journal);
    untrusted_everywhere(
        &dir,
        &[
            &format!("lines {n} and {}", n + 1),
            &format!("record {}", n - 1),
            "two processes",
        ],
    );
}

#[tokio::test]
async fn a_line_holding_two_glued_records_is_refused_even_as_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let last = journal.pop().unwrap();
    let before = journal.pop().unwrap();
    journal.push(format!("{before}{last}"));
    let n = journal.len();
    write_lines(&journal_path(&dir), &journal);
    untrusted_everywhere(&dir, &[&format!("line {n}"), "glued"]);
}

#[tokio::test]
async fn records_whose_numbers_go_back_are_refused_naming_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let earlier = journal[2].clone();
    journal.push(earlier);
    let n = journal.len();
    write_lines(&journal_path(&dir), &journal);
    untrusted_everywhere(
        &dir,
        &[
            &format!("line {n} holds record 2"),
            &format!("line {}", n - 1),
        ],
    );
}

// ---- item 3: integrity ---------------------------------------------------------------

#[tokio::test]
async fn a_deleted_confirmation_is_refused_naming_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let n = line_of(&journal, "step-confirmed");
    journal.remove(n - 1);
    write_lines(&journal_path(&dir), &journal);
    // Record k is on line k + 1.
    let (before, missing, after) = (n - 2, n - 1, n);
    untrusted_everywhere(
        &dir,
        &[
            &format!("records {before} and {after} are adjacent"),
            &format!("record {missing} is missing"),
            &format!("lines {} and {}", n - 1, n),
        ],
    );
}

#[tokio::test]
async fn swapped_records_are_refused_as_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let n = line_of(&journal, "step-started");
    journal.swap(n - 1, n);
    write_lines(&journal_path(&dir), &journal);
    untrusted_everywhere(&dir, &[&format!("line {n}"), "out of order"]);
}

#[tokio::test]
async fn an_edited_record_is_refused_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let n = line_of(&journal, "step-confirmed");
    journal[n - 1] = journal[n - 1].replace("\"by\":\"alice@test\"", "\"by\":\"mallory@test\"");
    write_lines(&journal_path(&dir), &journal);
    untrusted_everywhere(&dir, &[&format!("edited or damaged at line {n}")]);
}

#[tokio::test]
async fn an_edited_plan_hash_is_named_as_an_edit_of_line_1_not_as_a_changed_plan() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let hash = sha256_hex(b"v1");
    assert!(journal[0].contains(&hash), "{}", journal[0]);
    journal[0] = journal[0].replace(&hash, &sha256_hex(b"v2"));
    write_lines(&journal_path(&dir), &journal);
    let message = untrusted_everywhere(&dir, &["edited or damaged at line 1", "run-created"]);
    assert!(!message.contains("plan changed"), "{message}");
}

#[tokio::test]
async fn an_unknown_record_on_the_last_line_is_from_a_newer_kongup_not_torn() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = a_finished_step(&dir).await;
    let seq = journal.len();
    let prev = sha256_hex(journal.last().unwrap().as_bytes());
    journal.push(format!(
        r#"{{"seq":{seq},"prev":"{prev}","at":"2030-01-01T00:00:00Z","by":"kongup","event":"canary-promoted","weight":5}}"#
    ));
    let n = journal.len();
    write_lines(&journal_path(&dir), &journal);
    let message = refused_everywhere(
        &dir,
        &[
            &format!("line {n}"),
            "canary-promoted",
            "newer kongup",
            "upgrade kongup",
        ],
    );
    assert!(!message.contains("torn"), "{message}");
    assert_eq!(lines(&journal_path(&dir)).len(), n, "the line is kept");
}

/// The line without its `prev`, as kongup wrote records before it chained them.
fn unchained(line: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    value.as_object_mut().unwrap().remove("prev");
    value.to_string()
}

#[tokio::test]
async fn a_journal_from_before_the_chain_is_resumed_with_a_warning_and_chained_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let old: Vec<String> = a_finished_step(&dir)
        .await
        .iter()
        .map(|l| unchained(l))
        .collect();
    write_lines(&journal_path(&dir), &old);
    let said = format!(
        "lines 2 to {} of the journal {} were written before kongup chained its records: edits \
         to them cannot be detected",
        old.len(),
        journal_path(&dir).display()
    );
    let (code, out, err) = cli(&dir, &["status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("warning: {said}")), "{out}");
    let (code, out, err) = cli(&dir, &["report", "--format", "md"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&said), "{out}");

    let mut run = start(&dir);
    run.wait_warning("written before kongup chained its records")
        .await;
    run.send(Command::Confirm {
        step: cluster("b"),
        typed: None,
    })
    .await;
    run.wait_step(&cluster("b"), StepState::Succeeded).await;
    run.quit().await;
    let now = lines(&journal_path(&dir));
    assert_eq!(
        now[..old.len()],
        old[..],
        "the old lines are kept as they were"
    );
    let prev = sha256_hex(old.last().unwrap().as_bytes());
    assert!(
        now[old.len()].contains(&format!("\"prev\":\"{prev}\"")),
        "{}",
        now[old.len()]
    );
    let warnings = read_journal(&journal_path(&dir)).unwrap().warnings();
    assert!(
        warnings.len() == 1 && warnings[0].starts_with(&said),
        "{warnings:?}"
    );
}

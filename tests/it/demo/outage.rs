//! The outage clock on the in-place demo (issue 15 item 8): between stopping X and starting
//! Y no cluster serves traffic (Kong's in-place guide: "This will create a period of
//! downtime until the upgrade completes"), and the journal, `status` and `report` say so.

use crate::support::demo as demo_support;

use kongup::engine::Event;
use kongup::engine::report::{build_report, render_markdown};
use kongup::engine::status::{read_run, status_json, status_text};
use kongup::sim::Scenario;

/// The journal's records as JSON, in order.
fn records(run_dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn position(
    records: &[serde_json::Value],
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> usize {
    records
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("no {what} in the journal: {records:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_place_demo_journals_its_outage_from_stop_x_to_y_serving() {
    let mut demo = demo_support::start(Scenario::InPlace).await;
    let run_dir = demo.dir.path().join("run");
    demo.walk_to_done().await;
    // The outage ends once the watcher sees Y's proxies ready, which may follow the end.
    let last = demo.events.iter().rev().find_map(|e| match e {
        Event::Outage { since } => Some(*since),
        _ => None,
    });
    if last != Some(None) {
        demo.wait_for("the outage's end", |e| {
            matches!(e, Event::Outage { since: None })
        })
        .await;
    }
    // Keep the run directory past the demo.
    let _dir = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;

    let records = records(&run_dir);
    let event = |r: &serde_json::Value| r["event"].as_str().unwrap_or_default().to_string();
    let step = |r: &serde_json::Value| r["step"].as_str().unwrap_or_default().to_string();
    let stop_x_done = position(&records, "stop-x's end", |r| {
        event(r) == "step-finished" && step(r).ends_with("/stop-x")
    });
    let start_y_started = position(&records, "start-y's start", |r| {
        event(r) == "step-started" && step(r).ends_with("/start-y")
    });
    let started = position(&records, "an outage-started record", |r| {
        event(r) == "outage-started"
    });
    let ended = position(&records, "an outage-ended record", |r| {
        event(r) == "outage-ended"
    });
    assert!(
        stop_x_done < started && started < start_y_started && start_y_started < ended,
        "the outage starts once X is stopped and ends after Y starts: stop-x ended at record \
         {stop_x_done}, outage from {started} to {ended}, start-y started at {start_y_started}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| event(r) == "outage-started")
            .count(),
        1,
        "one outage, not a flapping one: {records:#?}"
    );

    let run = read_run(&run_dir).unwrap();
    let report = build_report(&run);
    let markdown = render_markdown(&report);
    let line = markdown
        .lines()
        .find(|l| l.starts_with("- Outage: "))
        .unwrap_or_else(|| panic!("no outage line in the report:\n{markdown}"));
    assert!(
        line.contains(" (from ") && line.contains(" to "),
        "the report says the outage's length and when: {line}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["outages"].as_array().map(Vec::len),
        Some(1),
        "{json:#}"
    );
    assert!(json["outage_total_secs"].is_u64(), "{json:#}");

    let text = status_text(&run);
    assert!(
        text.lines()
            .any(|l| l.starts_with("outage: ") && l.contains(" (from ")),
        "status says the outage: {text}"
    );
    let status = status_json(&run);
    assert!(status["outage"]["total_secs"].is_u64(), "{status:#}");
    assert_eq!(
        status["outage"]["outages"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blue_green_demo_has_no_outage() {
    let mut demo = demo_support::start(Scenario::BlueGreen).await;
    let run_dir = demo.dir.path().join("run");
    demo.walk_to_done().await;
    // Keep the run directory past the demo.
    let _dir = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    demo.quit().await;
    let run = read_run(&run_dir).unwrap();
    let markdown = render_markdown(&build_report(&run));
    assert!(
        markdown.lines().any(|l| l == "- Outage: none"),
        "blue-green keeps X serving until Y does:\n{markdown}"
    );
    assert!(status_text(&run).lines().any(|l| l == "outage: none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_open_when_kongup_quits_is_still_counted_from_its_start_after_resume() {
    let mut demo = demo_support::start(Scenario::InPlace).await;
    let started = demo
        .confirm_until("the outage to start", |e| {
            matches!(e, Event::Outage { since: Some(_) })
        })
        .await;
    let Event::Outage { since: Some(since) } = started else {
        unreachable!()
    };
    let dir = std::mem::replace(&mut demo.dir, tempfile::tempdir().unwrap());
    let old = demo.quit().await;
    old.lab.shutdown().await;
    let status = status_json(&read_run(&dir.path().join("run")).unwrap());
    assert_eq!(status["outage"]["open"], true, "{status:#}");

    let mut resumed = demo_support::resume(Scenario::InPlace, dir).await;
    let again = resumed
        .seen("the resumed run's outage", |e| {
            matches!(e, Event::Outage { .. })
        })
        .await;
    assert_eq!(
        again,
        Event::Outage { since: Some(since) },
        "the clock counts from the outage's first sight, not from the resume"
    );
    resumed.walk_to_done().await;
    let dir = std::mem::replace(&mut resumed.dir, tempfile::tempdir().unwrap());
    resumed.quit().await;
    let run = read_run(&dir.path().join("run")).unwrap();
    assert_eq!(run.view.outages.len(), 1, "{:?}", run.view.outages);
    assert_eq!(run.view.outages[0].from, since);
    assert!(run.view.outages[0].to.is_some());
}

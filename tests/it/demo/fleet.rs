//! `kongup demo --scenario hybrid --data-planes N` as a fleet: its plan rolls the data
//! planes in waves (`rolling:`), `--plain` confirms them wave by wave (one confirm a wave:
//! `engine::wave`) to done, and a demo killed (SIGKILL) in the middle of a wave resumes
//! with the wave's nodes as they were, its interrupted step retried, and the rest of the
//! wave going on after it.

use std::time::{Duration, Instant};

use crate::support::demo::cli::{PlainDemo, status_json, step_state};
use kongup::demo::{demo_plan_text, pacing_for_speed};
use kongup::plan::load::parse_plan;
use kongup::sim::Scenario;

/// The speed the command line gives (`--speed 10`).
const SPEED: f64 = 10.0;

fn plan_name(data_planes: usize) -> String {
    let text = demo_plan_text(
        Scenario::Hybrid,
        Some(data_planes),
        &pacing_for_speed(SPEED),
    )
    .unwrap();
    parse_plan(&text, "plan.yaml").unwrap().plan.name
}

fn spawn(data_planes: usize, run_dir: &std::path::Path) -> PlainDemo {
    let n = data_planes.to_string();
    PlainDemo::spawn_at(
        &["demo", "--scenario", "hybrid", "--data-planes", &n],
        run_dir,
        &plan_name(data_planes),
        SPEED,
    )
}

fn is_done(line: &str) -> bool {
    line.ends_with("The run is done.")
}

/// The steps `--plain` asked a confirm (or a retry) for, in order (`kongup> STEP: …`).
fn asked(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix("kongup> "))
        .filter_map(|l| l.split_once(": ").map(|(step, _)| step.to_string()))
        .collect()
}

/// Whether `--plain` asked for a confirm of wave `n`'s steps after its first: a wave is
/// confirmed as one (`engine::wave`).
fn asked_within_wave(transcript: &str, n: usize) -> Vec<String> {
    asked(transcript)
        .into_iter()
        .filter(|s| {
            s.starts_with(&format!("data-plane/wave-{n}-")) && !s.ends_with("-start-y")
                || (n == 1 && s == "data-plane/staging-tests")
        })
        .collect()
}

/// The line a resumed demo says its rebuilt lab with.
fn lab_nodes_line(demo: &mut PlainDemo) -> String {
    demo.wait_for("the rebuilt lab's nodes", |l| l.starts_with("lab nodes: "))
}

// Five minutes of a 402-node lab, alone: beside the suite it starves the demo tests of
// traffic, after it CI would pass 20 minutes. The 20-node test below walks waves to done
// in the suite; this one is run by hand (README, "Tests").
#[test]
#[ignore = "five minutes alone: cargo test --test it -- --ignored demo::fleet"]
fn two_hundred_data_planes_roll_in_four_waves_to_y() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("fleet");
    let started = Instant::now();
    let mut demo = spawn(200, &run_dir);
    demo.confirm_until_within(
        "the fleet's run to be done",
        Duration::from_secs(900),
        is_done,
    );
    let wall = started.elapsed();
    let ended = demo.end();
    assert!(ended.status.success(), "{}\n{}", ended.stdout, ended.stderr);
    eprintln!("200 data planes, --plain --speed {SPEED}: done in {wall:?}");

    // Waves [5%, 25%, 50%, 100%] of 200: 10, 40, 50 and 100 data planes, each wave confirmed
    // once; X's stop with them but for the last wave's share (decommission-x takes those).
    let transcript = ended.stdout;
    for n in 1..=4 {
        assert_eq!(
            asked_within_wave(&transcript, n),
            Vec::<String>::new(),
            "wave {n}"
        );
        assert!(
            transcript.contains(&format!("succeeded data-plane/wave-{n}-start-y")),
            "wave {n} did not start Y:\n{transcript}"
        );
        assert!(transcript.contains(&format!("succeeded data-plane/wave-{n}-traffic")));
    }
    for n in 1..=3 {
        assert!(transcript.contains(&format!("succeeded data-plane/wave-{n}-stop-x")));
    }
    assert!(transcript.contains("Wave 1/4: start 10 of Y's data planes"));
    assert!(transcript.contains("Wave 4/4: start 100 of Y's data planes"));
    assert!(!transcript.contains("data-plane/deploy-y"), "{transcript}");
    let status = status_json(&run_dir);
    assert_eq!(status["state"], "done", "{status:#}");
    assert_eq!(status["traffic"]["y"], 100, "{status:#}");
    assert_eq!(
        step_state(&status, "data-plane/decommission-x"),
        "succeeded"
    );

    // Opened again, the lab rebuilt from the journal has every data plane on Y.
    let mut again = spawn(200, &run_dir);
    let nodes = lab_nodes_line(&mut again);
    assert!(
        nodes.contains("X data planes 200 absent") && nodes.contains("Y data planes 200 running"),
        "{nodes}"
    );
    let _ = again.end();
}

/// Waves [5%, 25%, 50%, 100%] of 20 data planes (1, 5, 10, 20 up); killed while wave 2's
/// traffic stage bakes: Y's first five started, wave 1's X node stopped, wave 2's X nodes
/// still up.
#[test]
fn a_fleet_demo_killed_mid_wave_resumes_with_the_wave_s_nodes_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("fleet");
    let mut demo = spawn(20, &run_dir);
    demo.confirm_until_within(
        "wave 2's traffic stage to run",
        Duration::from_secs(300),
        |l| l.starts_with("-> data-plane/wave-2-traffic running"),
    );
    let killed = demo.kill();
    assert!(
        !killed.contains("succeeded data-plane/wave-2-traffic"),
        "{killed}"
    );
    // One confirm a wave: wave 1 ran its start, staging tests, stage and stop in turn, and
    // wave 2 went on from its start into its stage.
    for n in [1, 2] {
        assert_eq!(
            asked_within_wave(&killed, n),
            Vec::<String>::new(),
            "wave {n}:\n{killed}"
        );
    }
    assert!(asked(&killed).contains(&"data-plane/wave-2-start-y".to_string()));

    let mut demo = spawn(20, &run_dir);
    let nodes = lab_nodes_line(&mut demo);
    assert!(
        nodes.contains("X data planes 19 running, 1 stopped")
            && nodes.contains("Y data planes 5 running, 15 absent"),
        "{nodes}"
    );
    // The wave's step that was running waits for the operator, as any interrupted step.
    demo.wait_for("the interrupted traffic stage", |l| {
        l.starts_with("kongup> data-plane/wave-2-traffic: retry")
    });
    demo.send("retry");
    // The retried stage goes on into the rest of its wave: the next confirm asked is wave
    // 3's start.
    demo.wait_for("wave 3's start to ask for its confirm", |l| {
        l.starts_with("kongup> data-plane/wave-3-start-y: y")
    });
    demo.send("y");
    demo.confirm_until_within("the run to be done", Duration::from_secs(300), is_done);
    let ended = demo.end();
    assert!(ended.status.success(), "{}\n{}", ended.stdout, ended.stderr);
    assert!(
        ended.stdout.contains("succeeded data-plane/wave-2-stop-x"),
        "{}",
        ended.stdout
    );
    assert!(
        !asked(&ended.stdout).contains(&"data-plane/wave-2-stop-x".to_string()),
        "{}",
        ended.stdout
    );
    let status = status_json(&run_dir);
    assert_eq!(status["state"], "done", "{status:#}");
    assert_eq!(step_state(&status, "data-plane/wave-2-stop-x"), "succeeded");
}

//! The outage clock end to end (issue 15 item 8): the real binary's in-place demo in an
//! 80x24 tmux pane, walked to its stop-X step; once X is stopped and before Y starts, the
//! header counts `✖ OUTAGE m:ss`, and once Y serves it is gone.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kongup::testkit::tmux::{Tmux, done_count, run};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

fn step_state(run_dir: &Path, id: &str) -> String {
    let out = run(Command::new(env!("CARGO_BIN_EXE_kongup"))
        .args(["status", "--json", "--journal"])
        .arg(run_dir));
    assert!(out.status.success(), "kongup status: {out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["state"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no step {id}: {status:#}"))
}

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default()
}

#[test]
fn the_in_place_demo_shows_the_outage_in_the_header_between_stop_x_and_start_y() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let tmux = Tmux::start(
        "outage",
        &format!(
            "{} demo --scenario in-place --speed 20 --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    let topology = kongup::sim::scenarios::topology(kongup::sim::Scenario::InPlace);
    let plan_name = format!("demo in-place {} to {}", topology.from, topology.to);
    let mut confirmed = 0;
    let mut seen_outage = false;
    loop {
        let screen = tmux.wait_for("a ready step, the outage, or the end", |s| {
            s.contains("[ready]") || s.contains("DONE") || header(s).contains("OUTAGE")
        });
        if header(&screen).contains("OUTAGE") && !seen_outage {
            seen_outage = true;
            assert!(
                header(&screen).contains("✖ OUTAGE 0:"),
                "the clock, with its symbol:\n{screen}"
            );
            assert_eq!(step_state(&run_dir, "stop-x"), "succeeded", "{screen}");
            assert_ne!(step_state(&run_dir, "start-y"), "succeeded", "{screen}");
            // Until Y serves, it stays.
            if !screen.contains("[ready]") {
                continue;
            }
        }
        if screen.contains("DONE") {
            break;
        }
        assert!(
            seen_outage || step_state(&run_dir, "stop-x") != "succeeded",
            "X was stopped and the header shows no outage:\n{screen}"
        );
        assert!(confirmed < 40, "the run never ended:\n{screen}");
        let done = done_count(&screen).unwrap();
        tmux.keys(&["Enter"]);
        let dialog = tmux.wait_for("the confirm dialog", |s| {
            s.contains("Confirm ·") || s.contains("IRREVERSIBLE ·")
        });
        if dialog.contains("IRREVERSIBLE ·") {
            tmux.keys(&["-l", &plan_name]);
        }
        tmux.keys(&["Enter"]);
        tmux.wait_for("the step done", |s| {
            done_count(s).is_some_and(|d| d > done) || s.contains("DONE")
        });
        confirmed += 1;
    }
    assert!(seen_outage, "the in-place demo never showed its outage");
    tmux.wait_for("the outage over once Y serves", |s| {
        !header(s).contains("OUTAGE")
    });
    tmux.keys(&["q"]);
    let out = run(Command::new(env!("CARGO_BIN_EXE_kongup"))
        .args(["status", "--journal"])
        .arg(&run_dir));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("outage: 0:") && l.contains(" UTC)")),
        "status says how long the outage lasted, from when to when:\n{text}"
    );
}

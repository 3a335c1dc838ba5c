//! Issue 15, item 2, end to end: the real binary's `kongup demo` in an 80x24 tmux pane,
//! with Y's upstream 300 ms slower (the lab's `y-latency` fault). Steps are confirmed until
//! the first traffic stage breaches its gate; the metrics pane then shows the failing check
//! first, under the gate's line, without zooming.

use std::time::Duration;

use kongup::testkit::tmux::{Tmux, done_count};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

/// The metrics pane's part of a screen row (the right-hand column at 80x24).
fn pane(row: &str) -> String {
    row.chars().skip(47).collect::<String>()
}

#[test]
fn after_a_breach_in_the_demo_the_failing_check_comes_first_at_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "breach",
        &format!(
            "{} demo --scenario blue-green --speed 20 --fault y-latency=300ms --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            dir.path().join("run").display()
        ),
        SCREEN_TIMEOUT,
    );
    let breached = |s: &str| s.lines().any(|l| pane(l).contains("BREACHED ·"));
    let mut confirmed = 0;
    while !breached(&tmux.screen()) {
        assert!(confirmed < 16, "no breach:\n{}", tmux.screen());
        let before = tmux.wait_for("a ready step, or the breach", |s| {
            (s.contains("[ready]") && done_count(s).is_some()) || breached(s)
        });
        if breached(&before) {
            break;
        }
        let done = done_count(&before).unwrap();
        tmux.keys(&["Enter"]);
        tmux.wait_for("the confirm dialog", |s| s.contains("Confirm ·"));
        tmux.keys(&["Enter"]);
        tmux.wait_for("the step done, or the breach", |s| {
            done_count(s).is_some_and(|d| d > done) || breached(s)
        });
        confirmed += 1;
    }
    let screen = tmux.wait_for("the failing check under the gate's line", |s| {
        let rows: Vec<String> = s.lines().map(pane).collect();
        rows.iter()
            .position(|r| r.contains("BREACHED ·"))
            .and_then(|i| rows.get(i + 1))
            .is_some_and(|next| next.trim_start_matches('│').starts_with("✖ Y p99"))
    });
    // No passing check comes before it.
    let rows: Vec<String> = screen.lines().map(pane).collect();
    let gate = rows.iter().position(|r| r.contains("BREACHED ·")).unwrap();
    assert!(!rows[..gate].iter().any(|r| r.contains("✔ Y ")), "{screen}");
    tmux.keys(&["q"]);
}

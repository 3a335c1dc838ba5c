//! Issue 17's topology at fleet size as an operator meets it in an 80x24 tmux pane:
//! `kongup demo --data-planes 1000` folds each cluster's thousand data planes into
//! counted lines (one per wave: the demo's fleet rolls in waves of 5, 25, 50 and 100 %),
//! and `/` on the topology filters its zoom down to one node.

use std::time::Duration;

use kongup::testkit::tmux::Tmux;

const SCREEN_TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn a_thousand_data_planes_fold_into_counts_and_slash_finds_one() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "fleet-topology",
        &format!(
            "{} demo --data-planes 1000 --speed 20 --no-notify --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            dir.path().join("run").display()
        ),
        SCREEN_TIMEOUT,
    );
    // X's thousand data planes counted per wave, once the watcher has read them all: the
    // waves stop 50, 200 and 250 of X's nodes, the last 500 wait for decommission-x.
    let counted_by_wave = |s: &str| {
        s.contains("DP w1 ✔ 50 ") && s.contains("DP w2 ✔ 200 ") && s.contains("DP ✔ 500 ")
    };
    let folded = tmux.wait_for("X's data planes counted", |s| {
        s.contains("Topology live") && counted_by_wave(s)
    });
    assert!(
        folded.contains("z: nodes"),
        "folded, not a node a row: {folded}"
    );

    // Focus the topology (checklist, logs, topology), then `/` zooms it and filters.
    tmux.keys(&["Tab"]);
    tmux.keys(&["Tab"]);
    // Focused: its border thick (the footer has no room left for the `/` hint here).
    tmux.wait_for("the topology focused", |s| s.contains("┏ Topology"));
    tmux.keys(&["/"]);
    tmux.wait_for("the filter line", |s| s.contains("⏎ keep filter"));
    tmux.keys(&["-l", "dp-x-412"]);
    let filtered = tmux.wait_for("one node kept", |s| {
        s.contains("/dp-x-412 · 1 of") && s.contains("✔ dp-x-412")
    });
    assert!(!filtered.contains("dp-x-411"), "{filtered}");

    // Enter keeps the filter; Esc (on the main screen) leaves the zoom.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the filter kept, the main keys back", |s| {
        s.contains("1 of") && !s.contains("⏎ keep filter") && s.contains("z unzoom")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the zoom left, the pane folded again", counted_by_wave);
    tmux.keys(&["q"]);
}

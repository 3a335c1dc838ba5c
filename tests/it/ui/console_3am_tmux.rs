//! Issue 15, items 6, 10 and 11 end to end: the real binary's `kongup demo` in an 80x24
//! tmux pane. Enter on a step that cannot be confirmed shows it read-only; a refusal in
//! the footer stays until the next key and goes with it; the logs go to their first line
//! with `g` and follow again with `G`. (Item 13, the header, is drawn at 80x24 with a
//! long plan name in `header_fit`: the demo's plan name is its own.)

use std::time::Duration;

use kongup::testkit::tmux::{Tmux, done_count};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn at_80x24_the_footer_the_dialogs_and_the_logs_read_as_the_moment_needs() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(
        "3am",
        &format!(
            "{} demo --scenario dual-cluster --speed 20 --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            dir.path().join("run").display()
        ),
        SCREEN_TIMEOUT,
    );
    tmux.wait_for("the first step ready", |s| {
        s.contains("[ready]") && s.contains("Topology")
    });

    // Item 10: Enter on the pending step below shows all of it, read-only.
    tmux.keys(&["Down"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the step's read-only view, whole on its first page", |s| {
        s.contains("Step ·")
            && s.contains("is pending")
            && s.contains("What it runs, and where")
            && s.contains("more rows below")
    });
    // It scrolls as a whole, to the end of the guide's words.
    tmux.keys(&["End"]);
    tmux.wait_for("the view scrolled to its end", |s| {
        s.contains("more rows above") && !s.contains("more rows below")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the view closed", |s| !s.contains("Step ·"));
    tmux.keys(&["Up"]);

    // Item 6: a refusal stays until the next key, and goes with it.
    tmux.keys(&["x"]);
    tmux.wait_for("the refusal in the footer", |s| {
        s.contains("nothing to abort")
    });
    tmux.keys(&["Tab"]);
    tmux.wait_for("the refusal gone with the next key", |s| {
        !s.contains("nothing to abort")
    });
    tmux.keys(&["BTab"]);

    // Two steps confirmed: the logs have more lines than their pane.
    for _ in 0..2 {
        let before = tmux.wait_for("a ready step", |s| {
            s.contains("[ready]") && done_count(s).is_some()
        });
        let done = done_count(&before).unwrap();
        tmux.keys(&["Enter"]);
        tmux.wait_for("the confirm dialog", |s| s.contains("Confirm ·"));
        tmux.keys(&["Enter"]);
        tmux.wait_for("the step done", |s| done_count(s).is_some_and(|d| d > done));
    }

    // Item 11: `g` on the logs goes to the first line, `G` follows again.
    tmux.keys(&["Tab"]);
    tmux.wait_for("the logs focused", |s| s.contains("┏ Logs"));
    tmux.keys(&["g"]);
    tmux.wait_for("the logs at their first line", |s| s.contains("paused ↑"));
    tmux.keys(&["G"]);
    tmux.wait_for("the logs following again", |s| {
        s.contains("following") && !s.contains("paused ↑")
    });
    tmux.keys(&["q"]);
}

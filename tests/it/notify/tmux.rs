//! The bell and the desktop notification reach the pane: `kongup demo` in the console, in
//! an 80x24 tmux pane whose output bytes `pipe-pane` copies to a file, is confirmed through
//! its first traffic stage; when the bake ends and the next stage is ready, the pane got a
//! BEL and an OSC 9 in tmux's DCS passthrough. With `--no-notify`, neither.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kongup::sim::Scenario;
use kongup::testkit::tmux::{Tmux, done_count};

use super::first_stage_at;
use crate::support::demo::SPEED;

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

/// The passthrough's start and the OSC 9 inside it (its ESC doubled).
const WRAPPED_OSC_9: &[u8] = b"\x1bPtmux;\x1b\x1b]9;kongup ";
/// What the console writes as it leaves (the alternate screen closed).
const LEFT: &[u8] = b"\x1b[?1049l";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A dual-cluster demo in the console, its pane's output copied to `pane.out`, confirmed
/// through its first traffic stage until the stage after it is ready; then quit.
struct Walked {
    bytes: Vec<u8>,
    /// The screen once the next stage was ready.
    screen: String,
}

fn walk_through_the_first_bake(name: &str, extra: &str) -> Walked {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let out = dir.path().join("pane.out");
    // Which notification the terminal reads comes from the environment: a VTE variable of
    // the test's own terminal must not choose OSC 777 here.
    let tmux = Tmux::start(
        name,
        &format!(
            "env -u VTE_VERSION {} demo --scenario dual-cluster --speed {SPEED} --journal {}{extra}",
            env!("CARGO_BIN_EXE_kongup"),
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    let piped = tmux.tmux(&["pipe-pane", "-o", &format!("cat >> {}", out.display())]);
    assert!(piped.status.success(), "pipe-pane: {piped:?}");

    let (stage, before_stage) = first_stage_at(Scenario::DualCluster);
    for done in 0..=before_stage {
        tmux.wait_for("the next step ready", |s| {
            s.contains("[ready]") && done_count(s) == Some(done)
        });
        tmux.keys(&["Enter"]);
        tmux.wait_for("the confirm dialog", |s| {
            s.contains("Confirm ·") && s.contains("What will run")
        });
        tmux.keys(&["Enter"]);
        tmux.wait_for("the dialog closed", |s| !s.contains("What will run"));
    }
    // The stage's bake ends: the stage is done and the next one waits for the operator.
    let screen = tmux.wait_for(&format!("{stage} done and the next stage ready"), |s| {
        done_count(s) == Some(before_stage + 1) && s.contains("[ready]")
    });
    tmux.keys(&["q"]);
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while tmux.alive() {
        assert!(Instant::now() < deadline, "kongup still runs after q");
        std::thread::sleep(Duration::from_millis(50));
    }
    Walked {
        bytes: wait_for_bytes(&out, "the console leaving", |b| contains(b, LEFT)),
        screen,
    }
}

/// Reads `path` until `ready` holds for its bytes (pipe-pane's `cat` writes them a moment
/// after the pane gets them).
fn wait_for_bytes(path: &Path, what: &str, ready: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bytes = std::fs::read(path).unwrap_or_default();
        if ready(&bytes) {
            return bytes;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {what} ({} bytes)",
            PathBuf::from(path).display(),
            bytes.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_pane_gets_the_bell_and_an_osc_9_through_tmux_when_the_next_stage_is_ready() {
    let walked = walk_through_the_first_bake("notify", "");
    let bytes = &walked.bytes;
    assert!(
        bytes.contains(&0x07),
        "no bell reached the pane; the screen:\n{}",
        walked.screen
    );
    let at = bytes
        .windows(WRAPPED_OSC_9.len())
        .position(|w| w == WRAPPED_OSC_9)
        .unwrap_or_else(|| panic!("no OSC 9 in tmux's passthrough:\n{}", walked.screen));
    // The message, up to the inner ST (its ESC doubled) and the passthrough's own.
    let rest = &bytes[at + WRAPPED_OSC_9.len()..];
    let end = rest
        .windows(4)
        .position(|w| w == b"\x1b\x1b\\\x1b")
        .expect("the passthrough ends");
    let message = String::from_utf8_lossy(&rest[..end]);
    let (stage, _) = first_stage_at(Scenario::DualCluster);
    assert!(
        message.contains("is ready") && message.contains(&format!("{stage} succeeded")),
        "{message}"
    );
    // The bell comes right before it, outside the passthrough: tmux acts on it itself.
    assert_eq!(bytes[at - 1], 0x07, "{message}");
}

#[test]
fn no_notify_sends_neither() {
    let walked = walk_through_the_first_bake("no-notify", " --no-notify");
    assert!(
        !walked.bytes.contains(&0x07),
        "a bell with --no-notify; the screen:\n{}",
        walked.screen
    );
    assert!(
        !contains(&walked.bytes, b"]9;"),
        "an OSC 9 with --no-notify"
    );
    assert!(
        !contains(&walked.bytes, b"]777;"),
        "an OSC 777 with --no-notify"
    );
}

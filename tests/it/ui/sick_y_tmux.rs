//! Issue 15, items 1 and 4, as an operator meets them in an 80x24 tmux pane: a Y proxy
//! crashed by the lab (`X`, `sim::faults`) holds the first traffic stage until `override`
//! is typed (journaled with who and why), and a key the console refuses says why in the
//! footer until the next key.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use kongup::engine::journal::{Entry, JOURNAL_FILE, read_journal};
use kongup::plan::steps::StepKind;
use kongup::testkit::tmux::{Tmux, done_count};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_crashed_y_proxy_holds_the_first_stage_until_override_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let tmux = Tmux::start(
        "sick-y",
        &format!(
            "{} demo --scenario dual-cluster --speed 20 --no-notify --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    tmux.wait_for("the first step ready", |s| {
        s.contains("[ready]") && s.contains("Preflight checks")
    });
    let loaded = kongup::plan::load::load_plan(&run_dir.join("plan.yaml")).unwrap();
    let before_stage = loaded
        .expanded
        .steps()
        .position(|(_, s)| matches!(s.kind, StepKind::ShiftTraffic { .. }))
        .unwrap();

    // `r` on a step that has not failed: refused, and the reason stays until the next key,
    // however long that takes (here: past the console's 4 s for other messages).
    tmux.keys(&["r"]);
    let refused = tmux.wait_for("the refusal", |s| {
        s.contains("only a failed or interrupted step can be retried")
    });
    assert!(!refused.contains("retrying"), "{refused}");
    let elapsed = |s: &str| {
        s.split("elapsed ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    };
    let last = RefCell::new(elapsed(&refused));
    let ticks = Cell::new(0);
    let kept = tmux.wait_for("six ticks of the header's clock", |s| {
        let now = elapsed(s);
        if now != *last.borrow() {
            last.replace(now);
            ticks.set(ticks.get() + 1);
        }
        ticks.get() >= 6
    });
    assert!(
        kept.contains("only a failed or interrupted step can be retried"),
        "{kept}"
    );
    tmux.keys(&["Down"]);
    tmux.keys(&["Up"]);
    tmux.wait_for("the refusal gone with the next key", |s| {
        !s.contains("only a failed or interrupted step")
    });

    for done in 0..before_stage {
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
    tmux.wait_for("the first stage ready", |s| {
        s.contains("[ready]") && done_count(s) == Some(before_stage)
    });

    // The lab crashes a running Y proxy; the watcher's next look sees it.
    tmux.keys(&["X"]);
    tmux.wait_for("the crashed node in the topology", |s| {
        // The pane names the node ("unreachable: …") or, folded at 80x24, counts Y's
        // nodes ("✖ 1/2 … unreac…").
        s.contains("unreac") || s.contains("1/2 ready")
    });
    tmux.keys(&["Enter"]);
    let dialog = tmux.wait_for("the confirm saying Y is not fit", |s| {
        s.contains("Y is not fit for more traffic")
    });
    assert!(dialog.contains("does not answer"), "{dialog}");
    assert!(dialog.contains("Type override"), "{dialog}");
    // Enter alone sends nothing: the dialog stays, the traffic does not move.
    tmux.keys(&["Enter"]);
    tmux.wait_for("the override asked for", |s| {
        s.contains("type override to send")
    });
    assert!(tmux.screen().contains("Y is not fit"), "{}", tmux.screen());
    tmux.keys(&["override", "Enter"]);
    tmux.wait_for("the traffic moved", |s| s.contains("10% Y"));

    let records = read_journal(&run_dir.join(JOURNAL_FILE)).unwrap().records;
    let overridden = records
        .iter()
        .find_map(|r| match &r.entry {
            Entry::StepConfirmed { overridden, .. } if !overridden.is_empty() => {
                Some((r.by.clone(), overridden.clone()))
            }
            _ => None,
        })
        .expect("the override is journaled");
    assert!(
        overridden
            .1
            .iter()
            .any(|why| why.contains("does not answer")),
        "{overridden:?}"
    );
    assert!(overridden.0.contains('@'), "who: {}", overridden.0);
    tmux.keys(&["q"]);
}

//! End to end, as an operator meets it: the real binary's `kongup demo` in an 80x24 tmux
//! pane, keys typed with `send-keys`, the screen read with `capture-pane`. Steps are
//! confirmed until traffic moves to Y, then `R`: the screen shows all traffic on X and the
//! rollback plan. Quitting ends the process (the lab does not keep it alive), and
//! `kongup status` reads the demo's run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kongup::plan::steps::StepKind;

use kongup::testkit::tmux::{Tmux, done_count, run};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

fn status_json(run_dir: &Path) -> serde_json::Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_kongup"))
        .args(["status", "--json", "--journal"])
        .arg(run_dir));
    assert!(out.status.success(), "kongup status: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// The checklist's row of a ready step, as drawn ("●  Stop cluster Y   [ready]").
fn ready_row(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.contains("[ready]"))?;
    let start = line.find('┃').map_or(0, |i| i + '┃'.len_utf8());
    let end = line.find("[ready]")? + "[ready]".len();
    Some(line[start..end].to_string())
}

#[test]
fn the_demo_confirms_until_traffic_moves_then_r_sends_it_all_back_to_x_and_ends_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let tmux = Tmux::start(
        "rollback",
        &format!(
            "{} demo --scenario dual-cluster --speed 20 --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    tmux.wait_for("the first step ready", |s| {
        s.contains("[ready]") && s.contains("Preflight checks") && s.contains("Topology")
    });

    let mut confirmed = 0;
    while !tmux.screen().contains("X  90%") {
        assert!(confirmed < 16, "traffic never moved:\n{}", tmux.screen());
        let before = tmux.wait_for("a ready step", |s| {
            (s.contains("[ready]") && done_count(s).is_some()) || s.contains("X  90%")
        });
        if before.contains("X  90%") {
            break;
        }
        let done = done_count(&before).unwrap();
        tmux.keys(&["Enter"]);
        tmux.wait_for("the confirm dialog", |s| {
            s.contains("Confirm ·") && s.contains("What will run")
        });
        tmux.keys(&["Enter"]);
        let after = tmux.wait_for("the step done, or traffic moving", |s| {
            done_count(s).is_some_and(|d| d > done) || s.contains("X  90%")
        });
        if confirmed == 0 {
            // The first step done, the next waits for the operator: not RUNNING.
            let waiting = tmux.wait_for("the header to say the run waits", |s| {
                s.contains("WAITING FOR YOU")
            });
            assert!(!waiting.contains("RUNNING"), "{after}\n{waiting}");
        }
        confirmed += 1;
    }
    // Every step up to the first traffic stage was confirmed, one by one.
    let loaded = kongup::plan::load::load_plan(&run_dir.join("plan.yaml")).unwrap();
    let first_shift = loaded
        .expanded
        .steps()
        .position(|(_, s)| matches!(s.kind, StepKind::ShiftTraffic { .. }))
        .unwrap();
    assert_eq!(confirmed, first_shift + 1);
    // The lab's balancer moved the traffic: the header's bar reads it back.
    assert!(tmux.screen().contains("10% Y"), "{}", tmux.screen());

    tmux.keys(&["R"]);
    // The plan's first step in the wait too: a capture taken while the dialog redraws can
    // hold its header and not yet its rows.
    let screen = tmux.wait_for("all traffic on X and the rollback plan", |s| {
        s.contains("X 100%")
            && s.contains("ROLLBACK")
            && s.contains("Then, in this order")
            && s.contains("Stop cluster Y")
    });
    assert!(
        screen.contains("all traffic on X in") && screen.contains("confirmed by the load balancer"),
        "{screen}"
    );
    assert!(screen.contains("ROLLING BACK"), "{screen}");
    assert!(screen.contains("Stop cluster Y"), "{screen}");

    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog closed", |s| !s.contains("Then, in this order"));
    // The demo's own key: a fault injected into the lab, said in the footer.
    tmux.keys(&["E"]);
    tmux.wait_for("the fault key's answer", |s| {
        s.contains("lab fault y-errors=0.2")
    });

    // The rollback plan, confirmed step by step, ends the run: ROLLED BACK, not DONE.
    let mut confirmed = 0;
    while !tmux.screen().contains("ROLLED BACK") {
        assert!(
            confirmed < 8,
            "the rollback never ended:\n{}",
            tmux.screen()
        );
        let before = tmux.wait_for("a ready rollback step", |s| {
            ready_row(s).is_some() || s.contains("ROLLED BACK")
        });
        if before.contains("ROLLED BACK") {
            break;
        }
        let row = ready_row(&before).unwrap();
        let dialog = |s: &str| s.contains("Rollback step ·") || s.contains("Confirm ·");
        tmux.keys(&["Enter"]);
        tmux.wait_for("the rollback step's dialog", dialog);
        tmux.keys(&["Enter"]);
        // Under way once its own row has left [ready]: the dialog closes at once, and the
        // checklist still draws the step ready until the engine says it started, so the
        // next round would otherwise take that row for the next step and press Enter on a
        // running one (refused: "is running: only a ready step can be confirmed").
        tmux.wait_for("the step under way", |s| !dialog(s) && !s.contains(&row));
        confirmed += 1;
    }
    let screen = tmux.screen();
    assert!(!screen.contains("DONE"), "{screen}");
    // Nothing is left to roll back: R says so, and nothing opens.
    tmux.keys(&["R"]);
    let screen = tmux.wait_for("R refused", |s| s.contains("nothing to roll back"));
    assert!(screen.contains("already rolled back"), "{screen}");
    assert!(!screen.contains("Then, in this order"), "{screen}");
    tmux.keys(&["q"]);
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while tmux.alive() {
        assert!(
            Instant::now() < deadline,
            "kongup demo still runs after q:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let status = status_json(&run_dir);
    assert_eq!(status["state"], "rolled-back", "{status:#}");
    assert_eq!(status["traffic"]["x"], 100, "{status:#}");
    assert_eq!(status["locked_by"], serde_json::Value::Null, "{status:#}");
}

/// The done-when of the demo: the default scenario, every step confirmed in the console
/// (the plan name typed for those that cannot be undone), to done.
#[test]
fn the_hybrid_demo_walks_to_done_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let tmux = Tmux::start(
        "hybrid",
        &format!(
            "{} demo --speed 20 --journal {}",
            env!("CARGO_BIN_EXE_kongup"),
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    // The name the demo's plan gets (`sim::scenarios::demo_plan_yaml_with`), from the
    // scenario's versions, so the test follows the scenario.
    let hybrid = kongup::sim::scenarios::topology(kongup::sim::Scenario::Hybrid);
    let plan_name = format!("demo hybrid {} to {}", hybrid.from, hybrid.to);
    let mut confirmed = 0;
    loop {
        let screen = tmux.wait_for("a ready step, or the end", |s| {
            s.contains("[ready]") || s.contains("DONE")
        });
        if screen.contains("DONE") {
            break;
        }
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
    let status = status_json(&run_dir);
    assert_eq!(status["state"], "done", "{status:#}");
    assert_eq!(status["traffic"]["y"], 100, "{status:#}");
    tmux.keys(&["q"]);
}

/// `q` while a step runs: the console closes, and the terminal keeps showing the step's
/// output and its end (a long migration must not look hung), then kongup exits.
#[test]
fn quitting_while_a_step_runs_shows_its_output_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"name: quit-e2e
from: 3.4.0
to: 3.4.2
mode: traditional
database: postgres
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        admin_url: http://127.0.0.1:9
    database:
      host: 127.0.0.1
      name: kong
      user: kong
      password: {{env: KONGUP_E2E_PG_PASSWORD}}
  y:
    nodes:
      - name: y1
        admin_url: http://127.0.0.1:9
steps:
  preflight:
    builtin: false
    commands:
      - shell: "echo step-started; read word < {gate}; echo step-finished-$word"
"#,
            gate = gate.display()
        ),
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let tmux = Tmux::start(
        "quit",
        &format!(
            "sh -c 'KONGUP_E2E_PG_PASSWORD=unused {} run {} --journal {}; echo kongup-exited-$?; read never'",
            env!("CARGO_BIN_EXE_kongup"),
            plan.display(),
            run_dir.display()
        ),
        SCREEN_TIMEOUT,
    );
    tmux.wait_for("the first step ready", |s| s.contains("[ready]"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the confirm dialog", |s| s.contains("Confirm ·"));
    tmux.keys(&["Enter"]);
    // The confirm dialog shows the command (`echo step-started; …`) too: wait for the line
    // the step printed, in the logs, with the dialog gone. A q pressed before the engine
    // reports the step running quits without the quit dialog.
    tmux.wait_for("the step's first line", |s| {
        !s.contains("Confirm ·")
            && s.lines()
                .any(|line| line.contains("step-started") && !line.contains("echo"))
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the quit dialog", |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("the console closed, the step going on", |s| {
        s.contains("is still running: kongup waits for it to end")
    });
    assert!(!screen.contains("kongup-exited"), "{screen}");
    // Let the step end: it reads one word from the pipe.
    std::fs::write(&gate, "go\n").unwrap();
    let screen = tmux.wait_for("the step's end and kongup's exit", |s| {
        s.contains("kongup-exited-")
    });
    assert!(screen.contains("step-finished-go"), "{screen}");
    assert!(screen.contains("preflight: succeeded"), "{screen}");
    assert!(screen.contains("kongup-exited-2"), "{screen}");
}

//! End to end on a real terminal: the console runs in an 80x24 tmux pane (this very binary,
//! re-run in driver mode, with the scripted stand-in engine), and the test types keys with
//! `send-keys` and reads the screen with `capture-pane`. It confirms steps until traffic
//! moves, presses R and sees 100% on X and the rollback plan; then it checks that a killed
//! terminal ends the process instead of leaving it spinning.
//!
//! A test binary without libtest (`harness = false`), so driver mode needs no fake test.

use std::path::{Path, PathBuf};
use std::process::Command;

use kongup::testkit::tmux::{Tmux, done_count};
use kongup::testkit::{hybrid, stand_in};
use std::time::{Duration, Instant};

/// Set in the pane: run the console and write how it ended to this file.
const DRIVER_ENV: &str = "KONGUP_UI_TMUX_DRIVER";
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

fn main() {
    if let Some(exit_file) = std::env::var_os(DRIVER_ENV) {
        drive_console(Path::new(&exit_file));
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is needed for this test and was not found");
    }
    let tests: [(&str, fn()); 3] = [
        (
            "confirms_until_traffic_moves_then_rolls_back",
            confirms_until_traffic_moves_then_rolls_back,
        ),
        (
            "a_killed_terminal_ends_the_process",
            a_killed_terminal_ends_the_process,
        ),
        (
            "a_lost_terminal_is_noticed_without_sighup",
            a_lost_terminal_is_noticed_without_sighup,
        ),
    ];
    for (name, test) in tests {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
}

fn drive_console(exit_file: &Path) {
    use kongup::ui::{ConsoleOptions, run_console};

    std::fs::write(pid_file(exit_file), std::process::id().to_string()).expect("pid file");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let plan = hybrid::plan();
        let expanded = hybrid::expanded();
        let (commands, command_receiver) = tokio::sync::mpsc::channel(64);
        let (event_sender, events) = kongup::engine::event::channel();
        let engine = tokio::spawn(stand_in::stand_in_engine(
            plan.clone(),
            expanded.clone(),
            command_receiver,
            event_sender,
            Duration::from_millis(20),
        ));
        let exit = run_console(
            &plan,
            &expanded,
            commands,
            events,
            ConsoleOptions::new(chrono::Utc::now(), hybrid::previewer(&plan, &expanded)),
        )
        .await;
        std::fs::write(exit_file, format!("{exit:?}\n")).expect("write the exit file");
        engine.await.expect("the stand-in engine ends after Quit");
    });
}

fn pid_file(exit_file: &Path) -> PathBuf {
    exit_file.with_extension("pid")
}

/// The console in a tmux pane of its own (this binary in driver mode), and where the
/// driver writes how the console ended.
struct ConsolePane {
    tmux: Tmux,
    exit_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl ConsolePane {
    fn start(name: &str) -> ConsolePane {
        ConsolePane::start_with(name, "")
    }

    /// `prefix` goes before the console's command line in the pane (e.g. `setsid`).
    fn start_with(name: &str, prefix: &str) -> ConsolePane {
        let dir = tempfile::tempdir().expect("temp dir");
        let exit_file = dir.path().join("exit");
        let me = std::env::current_exe().expect("current exe");
        let pane_command = format!(
            "{prefix} env {DRIVER_ENV}={} {}",
            exit_file.display(),
            me.display()
        );
        ConsolePane {
            tmux: Tmux::start(&format!("ui-{name}"), &pane_command, SCREEN_TIMEOUT),
            exit_file,
            _dir: dir,
        }
    }

    /// The console's own pid (the pane's shell may sit above it).
    fn console_pid(&self) -> u32 {
        std::fs::read_to_string(pid_file(&self.exit_file))
            .expect("the driver wrote its pid")
            .trim()
            .parse()
            .expect("a pid")
    }

    fn wait_for_exit_file(&self) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.exit_file)
                && !text.is_empty()
            {
                return text;
            }
            assert!(Instant::now() < deadline, "the console did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl std::ops::Deref for ConsolePane {
    type Target = Tmux;
    fn deref(&self) -> &Tmux {
        &self.tmux
    }
}

fn confirms_until_traffic_moves_then_rolls_back() {
    let tmux = ConsolePane::start("rollback");
    tmux.wait_for("the first step ready", |s| {
        s.contains("RUNNING") && s.contains("[ready]") && s.contains("Preflight checks")
    });
    let mut confirmed = 0;
    while !tmux.screen().contains("X  90%") {
        assert!(confirmed < 12, "traffic never moved:\n{}", tmux.screen());
        let before = tmux.wait_for("a ready step", |s| {
            s.contains("[ready]") && done_count(s).is_some()
        });
        let done = done_count(&before).unwrap();
        tmux.keys(&["Enter"]);
        tmux.wait_for("the confirm dialog", |s| {
            s.contains("Confirm ·") && s.contains("What will run")
        });
        tmux.keys(&["Enter"]);
        tmux.wait_for("the step done", |s| done_count(s).is_some_and(|d| d > done));
        confirmed += 1;
    }
    assert_eq!(confirmed, 11, "ten steps lead to the first traffic stage");

    tmux.keys(&["R"]);
    let screen = tmux.wait_for("all traffic on X and the rollback plan", |s| {
        s.contains("X 100%") && s.contains("ROLLBACK") && s.contains("Then, in this order")
    });
    assert!(screen.contains("all traffic on X"), "{screen}");
    assert!(screen.contains("Stop cluster Y"), "{screen}");
    assert!(screen.contains("ROLLING BACK"), "{screen}");

    tmux.keys(&["Escape"]);
    tmux.wait_for("the dialog closed", |s| !s.contains("Then, in this order"));
    tmux.keys(&["q"]);
    let exit = tmux.wait_for_exit_file();
    assert!(exit.starts_with("Ok(Quit"), "{exit}");
}

fn a_killed_terminal_ends_the_process() {
    let tmux = ConsolePane::start("hangup");
    let exit = kill_the_terminal(&tmux);
    // The input ends a moment before the SIGHUP arrives: the console waits for it, so the
    // hang-up is named every time.
    assert!(exit.starts_with("Ok(Signal(Hangup))"), "{exit}");
}

/// In a session of its own (as under `nohup` or an orphaned process group) the console gets
/// no SIGHUP when the terminal goes: it must notice from the tty itself, and end.
fn a_lost_terminal_is_noticed_without_sighup() {
    let tmux = ConsolePane::start_with("lost", "setsid -w");
    let exit = kill_the_terminal(&tmux);
    assert!(exit.starts_with("Ok(TerminalLost"), "{exit}");
}

/// Kills the tmux server under a running console; returns how the console ended, once
/// its process is gone.
fn kill_the_terminal(tmux: &ConsolePane) -> String {
    tmux.wait_for("the console", |s| s.contains("RUNNING"));
    let pid = tmux.console_pid();
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    // The terminal goes away, as when an SSH link drops.
    let _ = tmux.tmux(&["kill-server"]);
    let exit = tmux.wait_for_exit_file();
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while proc_dir.exists() {
        // A zombie has exited: it only waits for its parent (the dead tmux) to be reaped.
        if std::fs::read_to_string(proc_dir.join("stat"))
            .is_ok_and(|stat| stat.split_whitespace().nth(2) == Some("Z"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the console process {pid} still runs after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    exit
}

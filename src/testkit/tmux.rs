//! A tmux server of a test's own (`-L`), with an 80x24 pane running a command: keys go in
//! with `send-keys`, the screen comes out with `capture-pane`. The server is killed when
//! dropped, failed test or not.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest a tmux command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a command to its end, killing it after `COMMAND_TIMEOUT`.
pub fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

pub struct Tmux {
    socket: String,
    /// How long `wait_for` polls the screen.
    screen_timeout: Duration,
}

impl Tmux {
    /// `name` tells apart the servers of tests that run at once.
    pub fn start(name: &str, pane_command: &str, screen_timeout: Duration) -> Tmux {
        let tmux = Tmux {
            socket: format!("kongup-test-{}-{name}", std::process::id()),
            screen_timeout,
        };
        let out = tmux.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            pane_command,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        tmux
    }

    pub fn tmux(&self, args: &[&str]) -> Output {
        run(Command::new("tmux").args(["-L", &self.socket]).args(args))
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {out:?}");
    }

    pub fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `ready` holds; the last screen is in the failure message.
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.screen_timeout;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {:?} for {what}; the screen:\n{screen}",
                self.screen_timeout
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the session still runs: it ends when the pane's process does.
    pub fn alive(&self) -> bool {
        self.tmux(&["has-session"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The number of steps done, from the checklist's title ("Checklist 3/20 done").
pub fn done_count(screen: &str) -> Option<usize> {
    let at = screen.find(" done ")?;
    let fraction = screen[..at].rsplit(' ').next()?;
    fraction.split('/').next()?.parse().ok()
}

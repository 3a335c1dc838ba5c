//! How long `kongup demo` takes from exec to its first frame on an 80x24 terminal (the lab
//! started, the plan written and loaded, the engine and the live support up, the console
//! drawn). Each run starts a new demo in a temporary run directory, on a pseudo-terminal
//! the benchmark reads until the frame's panes are all on it, then quits with `q`.
//!
//! `cargo bench --bench demo_open` (release), or `cargo test --bench demo_open` for the
//! debug build. Prints the minimum, median and maximum of `RUNS` runs.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

const RUNS: usize = 10;
const LIMIT: Duration = Duration::from_secs(30);

/// Until these are all on the terminal, the first frame is not drawn.
const FRAME_MARKS: &[&str] = &["Checklist", "Topology", "Metrics", "Logs"];

fn one_run() -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let size = Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).expect("openpty");
    let slave = pty.slave;
    let stdio = || Stdio::from(slave.try_clone().expect("dup the terminal"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_kongup"));
    command
        .args(["demo", "--journal"])
        .arg(dir.path().join("run"))
        .env("TERM", "xterm-256color")
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio());
    let slave_fd = slave.as_raw_fd();
    // SAFETY: between fork and exec, only async-signal-safe calls: setsid and ioctl make
    // the pseudo-terminal the child's controlling terminal, as a login shell's is.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if nix::libc::ioctl(slave_fd, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn kongup demo");
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 65536];
    let opened = loop {
        assert!(started.elapsed() < LIMIT, "no frame within {LIMIT:?}");
        let read = master.read(&mut buffer).expect("read the terminal");
        assert!(read > 0, "the terminal closed before the first frame");
        seen.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&seen);
        if FRAME_MARKS.iter().all(|mark| text.contains(mark)) {
            break started.elapsed();
        }
    };
    master.write_all(b"q").expect("type q");
    // Keep reading, so the console never blocks on a full terminal, until it ends.
    let reader =
        std::thread::spawn(move || while matches!(master.read(&mut buffer), Ok(n) if n > 0) {});
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "kongup demo did not end after q");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(reader);
    opened
}

fn main() {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| one_run()).collect();
    times.sort();
    println!(
        "kongup demo, exec to first frame at 80x24 over {RUNS} runs: min {:?}, median {:?}, max {:?}",
        times[0],
        times[RUNS / 2],
        times[RUNS - 1]
    );
}

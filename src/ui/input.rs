//! The terminal's input, read by kongup itself rather than by crossterm's `EventStream`.
//!
//! Why: when the terminal goes away (SSH drops, tmux pane killed) the tty stays readable
//! while `read` returns 0 bytes or `EIO`. crossterm 0.29's event source retries that read
//! in a loop that never returns (crossterm-rs/crossterm#793, fix unreleased), so a console
//! built on `EventStream` spins a core forever and never learns the terminal is gone. Here
//! one thread waits in `poll(2)` on the tty and on a stop pipe, reads what arrives,
//! decodes keys, and on end of input, `EIO` or a hang-up reports `TerminalLost` and ends.
//! Resizes come from SIGWINCH (see `run`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use tokio::sync::mpsc;

/// What the console loop hears from outside the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleInput {
    Key(KeyEvent),
    Resize,
    /// The terminal is gone; the reason says how it was noticed.
    TerminalLost(String),
    Signal(ExitSignal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitSignal {
    Hangup,
    Terminate,
    Interrupt,
}

impl ExitSignal {
    pub fn name(self) -> &'static str {
        match self {
            ExitSignal::Hangup => "SIGHUP",
            ExitSignal::Terminate => "SIGTERM",
            ExitSignal::Interrupt => "SIGINT",
        }
    }
}

/// The terminal's input descriptor: stdin when it is a tty, else `/dev/tty`.
pub enum TtyFd {
    Stdin(std::io::Stdin),
    Owned(OwnedFd),
}

impl TtyFd {
    pub fn open() -> std::io::Result<TtyFd> {
        if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
            return Ok(TtyFd::Stdin(std::io::stdin()));
        }
        open(
            "/dev/tty",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(TtyFd::Owned)
        .map_err(|e| {
            std::io::Error::other(format!(
                "the console needs a terminal: stdin is not one and /dev/tty cannot be \
                     opened ({e}); use --plain"
            ))
        })
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            TtyFd::Stdin(stdin) => stdin.as_fd(),
            TtyFd::Owned(fd) => fd.as_fd(),
        }
    }
}

/// Reads the terminal on its own thread. Dropping it stops the thread.
pub struct TerminalReader {
    receiver: mpsc::Receiver<ConsoleInput>,
    stop: OwnedFd,
    thread: Option<thread::JoinHandle<()>>,
}

impl TerminalReader {
    pub fn spawn(tty: TtyFd) -> std::io::Result<TerminalReader> {
        let (stop_read, stop_write) = nix::unistd::pipe().map_err(std::io::Error::from)?;
        let (sender, receiver) = mpsc::channel(256);
        let thread = thread::Builder::new()
            .name("kongup-tty".into())
            .spawn(move || read_terminal(tty, stop_read, sender))?;
        Ok(TerminalReader {
            receiver,
            stop: stop_write,
            thread: Some(thread),
        })
    }

    pub async fn recv(&mut self) -> Option<ConsoleInput> {
        self.receiver.recv().await
    }

    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ConsoleInput>> {
        self.receiver.poll_recv(cx)
    }

    /// Whether the reading thread has ended (it ends on a lost terminal or a stop).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for TerminalReader {
    fn drop(&mut self) {
        // Wakes the thread's poll; it ends without reading the tty again, so no key the
        // operator types after the console closed is swallowed.
        let _ = nix::unistd::write(&self.stop, &[1]);
        self.receiver.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_terminal(tty: TtyFd, stop: OwnedFd, sender: mpsc::Sender<ConsoleInput>) {
    let lost = |why: String| {
        let _ = sender.blocking_send(ConsoleInput::TerminalLost(why));
    };
    let mut decoder = KeyDecoder::default();
    let mut buf = [0u8; 1024];
    loop {
        let mut fds = [
            PollFd::new(tty.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return lost(format!("waiting on the terminal failed: {e}")),
        }
        if fds[1].any().unwrap_or(false) {
            return;
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLIN) {
            match nix::unistd::read(tty.as_fd(), &mut buf) {
                Ok(0) => return lost("the terminal closed its input".into()),
                Ok(n) => {
                    for key in decoder.feed(&buf[..n]) {
                        if sender.blocking_send(ConsoleInput::Key(key)).is_err() {
                            return;
                        }
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return lost(format!("reading the terminal failed: {e}")),
            }
        } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
        {
            return lost("the terminal hung up".into());
        }
    }
}

/// Turns the bytes a terminal sends into keys: UTF-8 text, control keys, and the escape
/// sequences of xterm-compatible terminals (arrows, Home/End, PgUp/PgDn, Delete,
/// Shift-Tab, with their modifiers). A sequence split across reads waits for its end.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    pending: Vec<u8>,
}

enum Parsed {
    Key(KeyEvent, usize),
    /// A sequence kongup has no use for (function keys, focus events…).
    Skip(usize),
    Incomplete,
}

/// A CSI sequence longer than this is garbage, not a sequence still arriving.
const MAX_SEQUENCE: usize = 32;

impl KeyDecoder {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<KeyEvent> {
        self.pending.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut at = 0;
        while at < self.pending.len() {
            match parse_one(&self.pending[at..]) {
                Parsed::Key(key, len) => {
                    keys.push(key);
                    at += len;
                }
                Parsed::Skip(len) => at += len,
                Parsed::Incomplete => break,
            }
        }
        self.pending.drain(..at);
        keys
    }
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

fn parse_one(b: &[u8]) -> Parsed {
    match b[0] {
        0x1b => parse_escape(b),
        b'\r' | b'\n' => Parsed::Key(key(KeyCode::Enter, KeyModifiers::NONE), 1),
        b'\t' => Parsed::Key(key(KeyCode::Tab, KeyModifiers::NONE), 1),
        0x7f | 0x08 => Parsed::Key(key(KeyCode::Backspace, KeyModifiers::NONE), 1),
        0x00 => Parsed::Key(key(KeyCode::Char(' '), KeyModifiers::CONTROL), 1),
        c @ 0x01..=0x1a => Parsed::Key(
            key(KeyCode::Char((b'a' + c - 1) as char), KeyModifiers::CONTROL),
            1,
        ),
        c @ 0x1c..=0x1f => Parsed::Key(
            key(
                KeyCode::Char((b'4' + c - 0x1c) as char),
                KeyModifiers::CONTROL,
            ),
            1,
        ),
        _ => parse_char(b, KeyModifiers::NONE),
    }
}

fn parse_char(b: &[u8], modifiers: KeyModifiers) -> Parsed {
    let len = match b[0] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return Parsed::Skip(1),
    };
    if b.len() < len {
        return Parsed::Incomplete;
    }
    match std::str::from_utf8(&b[..len])
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) => {
            // As crossterm does: an upper-case letter comes with SHIFT.
            let modifiers = if c.is_uppercase() {
                modifiers | KeyModifiers::SHIFT
            } else {
                modifiers
            };
            Parsed::Key(key(KeyCode::Char(c), modifiers), len)
        }
        None => Parsed::Skip(1),
    }
}

fn parse_escape(b: &[u8]) -> Parsed {
    // Esc alone at the end of a read is the Esc key: terminals send a sequence in one write.
    let Some(&next) = b.get(1) else {
        return Parsed::Key(key(KeyCode::Esc, KeyModifiers::NONE), 1);
    };
    match next {
        b'[' => parse_csi(b),
        b'O' => match b.get(2) {
            None => Parsed::Incomplete,
            Some(&f) => match cursor_key(f) {
                Some(code) => Parsed::Key(key(code, KeyModifiers::NONE), 3),
                None => Parsed::Skip(3),
            },
        },
        0x1b => Parsed::Key(key(KeyCode::Esc, KeyModifiers::NONE), 1),
        _ => match parse_one(&b[1..]) {
            Parsed::Key(mut k, len) => {
                k.modifiers |= KeyModifiers::ALT;
                Parsed::Key(k, len + 1)
            }
            Parsed::Skip(len) => Parsed::Skip(len + 1),
            Parsed::Incomplete => Parsed::Incomplete,
        },
    }
}

fn cursor_key(final_byte: u8) -> Option<KeyCode> {
    Some(match final_byte {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        _ => return None,
    })
}

/// `ESC [ params final`: the final byte is in 0x40..=0x7e.
fn parse_csi(b: &[u8]) -> Parsed {
    let Some(end) = b[2..].iter().position(|c| (0x40..=0x7e).contains(c)) else {
        return if b.len() > MAX_SEQUENCE {
            Parsed::Skip(b.len())
        } else {
            Parsed::Incomplete
        };
    };
    let final_at = 2 + end;
    let len = final_at + 1;
    let params: Vec<u16> = std::str::from_utf8(&b[2..final_at])
        .unwrap_or("")
        .split(';')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let modifiers = params
        .get(1)
        .map_or(KeyModifiers::NONE, |&m| modifier_bits(m));
    let code = match b[final_at] {
        b'Z' => return Parsed::Key(key(KeyCode::BackTab, KeyModifiers::SHIFT), len),
        b'~' => match params.first() {
            Some(1 | 7) => KeyCode::Home,
            Some(4 | 8) => KeyCode::End,
            Some(2) => KeyCode::Insert,
            Some(3) => KeyCode::Delete,
            Some(5) => KeyCode::PageUp,
            Some(6) => KeyCode::PageDown,
            _ => return Parsed::Skip(len),
        },
        f => match cursor_key(f) {
            Some(code) => code,
            None => return Parsed::Skip(len),
        },
    };
    Parsed::Key(key(code, modifiers), len)
}

/// xterm's modifier parameter: 1 + (shift 1 | alt 2 | ctrl 4).
fn modifier_bits(param: u16) -> KeyModifiers {
    let bits = param.saturating_sub(1);
    let mut m = KeyModifiers::NONE;
    if bits & 1 != 0 {
        m |= KeyModifiers::SHIFT;
    }
    if bits & 2 != 0 {
        m |= KeyModifiers::ALT;
    }
    if bits & 4 != 0 {
        m |= KeyModifiers::CONTROL;
    }
    m
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn decode(bytes: &[u8]) -> Vec<KeyEvent> {
        KeyDecoder::default().feed(bytes)
    }

    fn plain(code: KeyCode) -> KeyEvent {
        key(code, KeyModifiers::NONE)
    }

    #[test]
    fn decodes_text_and_control_keys() {
        assert_eq!(
            decode(b"cq\r\t\x7f"),
            [
                plain(KeyCode::Char('c')),
                plain(KeyCode::Char('q')),
                plain(KeyCode::Enter),
                plain(KeyCode::Tab),
                plain(KeyCode::Backspace),
            ]
        );
        assert_eq!(decode(b"R"), [key(KeyCode::Char('R'), KeyModifiers::SHIFT)]);
        assert_eq!(
            decode(b"\x03"),
            [key(KeyCode::Char('c'), KeyModifiers::CONTROL)]
        );
        assert_eq!(
            decode(b"\x0c"),
            [key(KeyCode::Char('l'), KeyModifiers::CONTROL)]
        );
        assert_eq!(decode("é".as_bytes()), [plain(KeyCode::Char('é'))]);
    }

    #[test]
    fn decodes_escape_sequences() {
        assert_eq!(
            decode(b"\x1b[A\x1b[B\x1bOC\x1b[D"),
            [
                plain(KeyCode::Up),
                plain(KeyCode::Down),
                plain(KeyCode::Right),
                plain(KeyCode::Left),
            ]
        );
        assert_eq!(
            decode(b"\x1b[5~\x1b[6~\x1b[H\x1b[4~\x1b[3~"),
            [
                plain(KeyCode::PageUp),
                plain(KeyCode::PageDown),
                plain(KeyCode::Home),
                plain(KeyCode::End),
                plain(KeyCode::Delete),
            ]
        );
        assert_eq!(
            decode(b"\x1b[Z"),
            [key(KeyCode::BackTab, KeyModifiers::SHIFT)]
        );
        assert_eq!(
            decode(b"\x1b[1;5A"),
            [key(KeyCode::Up, KeyModifiers::CONTROL)]
        );
        assert_eq!(
            decode(b"\x1bx"),
            [key(KeyCode::Char('x'), KeyModifiers::ALT)]
        );
        assert_eq!(decode(b"\x1b"), [plain(KeyCode::Esc)]);
        // F5 and a focus event mean nothing here and are dropped whole.
        assert_eq!(decode(b"\x1b[15~\x1b[Iq"), [plain(KeyCode::Char('q'))]);
    }

    #[test]
    fn a_sequence_split_across_reads_waits_for_its_end() {
        let mut decoder = KeyDecoder::default();
        assert!(decoder.feed(b"\x1b[").is_empty());
        assert!(decoder.feed(b"1;2").is_empty());
        assert_eq!(
            decoder.feed(b"B"),
            [key(KeyCode::Down, KeyModifiers::SHIFT)]
        );
        assert!(decoder.feed(&"✔".as_bytes()[..1]).is_empty());
        assert_eq!(
            decoder.feed(&"✔".as_bytes()[1..]),
            [plain(KeyCode::Char('✔'))]
        );
    }

    /// A pty in raw mode, as the console puts its terminal.
    fn raw_pty() -> nix::pty::OpenptyResult {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let mut termios = tcgetattr(&pty.slave).expect("tcgetattr");
        cfmakeraw(&mut termios);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).expect("tcsetattr");
        pty
    }

    /// A pty whose other side closes, as when an SSH link drops: the reader says the
    /// terminal is lost and its thread ends, instead of spinning on 0-byte reads.
    #[tokio::test]
    async fn a_closed_terminal_is_reported_and_the_reader_ends() {
        let pty = raw_pty();
        let mut reader = TerminalReader::spawn(TtyFd::Owned(pty.slave)).expect("spawn");
        nix::unistd::write(&pty.master, b"p").expect("write to pty");
        let key = tokio::time::timeout(Duration::from_secs(5), reader.recv())
            .await
            .expect("the key arrives within 5 s");
        assert_eq!(key, Some(ConsoleInput::Key(plain(KeyCode::Char('p')))));
        drop(pty.master);
        let lost = tokio::time::timeout(Duration::from_secs(5), reader.recv())
            .await
            .expect("the loss is reported within 5 s");
        assert!(
            matches!(lost, Some(ConsoleInput::TerminalLost(_))),
            "got {lost:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !reader.is_finished() {
            assert!(Instant::now() < deadline, "the reader thread still runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn dropping_the_reader_stops_its_thread() {
        let pty = raw_pty();
        let reader = TerminalReader::spawn(TtyFd::Owned(pty.slave)).expect("spawn");
        // Drop joins the thread: this returns only once it has ended.
        drop(reader);
        nix::unistd::write(&pty.master, b"x").expect("the pty is still open");
    }
}

//! The terminal's share of a notice: the bell (BEL, which tmux and screen act on by
//! themselves: tmux flags the window and passes it on as its `bell-action` says), then a
//! desktop notification by OSC 9 or OSC 777.
//!
//! - OSC 9 `ESC ] 9 ; message ST` posts a notification in iTerm2 ("Proprietary Escape
//!   Codes", https://iterm2.com/documentation-escape-codes.html) and in the terminals that
//!   copied it. It is the default.
//! - OSC 777 `ESC ] 777 ; notify ; title ; body ST` is rxvt-unicode's `notify` extension,
//!   also read by VTE-based terminals (GNOME Terminal, Tilix) and foot: chosen when
//!   `VTE_VERSION` is set or `TERM` starts with `rxvt` or `foot`. A terminal reads one or
//!   the other, so only one is sent: two would show two notifications where both are read.
//! - Inside tmux (`TMUX` set) an OSC is not passed to the outer terminal unless wrapped in
//!   tmux's DCS passthrough, `ESC P tmux; <sequence, every ESC doubled> ESC \` (tmux 1.5,
//!   OpenBSD patchset 866, "Support passing through escape sequences to the underlying
//!   terminal by using DCS with a tmux; prefix"), and since tmux 3.3 only with
//!   `set -g allow-passthrough on` (tmux(1), `allow-passthrough`, off by default). The
//!   bell is never wrapped: tmux handles it itself.
//!
//! In the console these bytes must not land in the middle of a frame: they are queued
//! ([`Alerts`]) and written by the console's own writer ([`AlertWriter`]) when ratatui
//! flushes a frame it has finished. Under `--plain` they go to stderr, and only when it is
//! a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use super::Notice;

/// Where the terminal's bell and notification go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TerminalTarget {
    /// `--no-notify`, or `--plain` with stderr not a terminal.
    #[default]
    Off,
    /// Written by the console after a frame.
    Console,
    /// `--plain`: written to stderr.
    Stderr,
}

impl TerminalTarget {
    /// For a front end: the console's writer, `--plain`'s stderr when it is a terminal,
    /// nothing with `--no-notify`.
    pub fn for_front_end(no_notify: bool, plain: bool) -> TerminalTarget {
        match (no_notify, plain) {
            (true, _) => TerminalTarget::Off,
            (false, false) => TerminalTarget::Console,
            (false, true) if std::io::stderr().is_terminal() => TerminalTarget::Stderr,
            (false, true) => TerminalTarget::Off,
        }
    }
}

/// Which desktop notification the terminal reads, and whether tmux stands between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavour {
    pub osc777: bool,
    pub tmux: bool,
}

impl Flavour {
    /// From the environment kongup runs in (see the module documentation).
    pub fn from_env() -> Flavour {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let term = std::env::var("TERM").unwrap_or_default();
        Flavour {
            osc777: set("VTE_VERSION") || term.starts_with("rxvt") || term.starts_with("foot"),
            tmux: set("TMUX"),
        }
    }
}

/// Longest message put in a notification (a desktop notification shows a line or two).
const MAX_CHARS: usize = 200;

/// The bell, then the desktop notification of `text`.
pub fn alert_bytes(text: &str, flavour: Flavour) -> Vec<u8> {
    // Control characters would end the sequence early or start another: dropped.
    let mut clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CHARS)
        .collect();
    let osc = if flavour.osc777 {
        // `;` separates the fields of OSC 777.
        clean = clean.replace(';', ",");
        format!("\x1b]777;notify;kongup;{clean}\x1b\\")
    } else {
        format!("\x1b]9;{clean}\x1b\\")
    };
    let mut bytes = vec![0x07];
    if flavour.tmux {
        bytes.extend_from_slice(b"\x1bPtmux;");
        bytes.extend_from_slice(osc.replace('\x1b', "\x1b\x1b").as_bytes());
        bytes.extend_from_slice(b"\x1b\\");
    } else {
        bytes.extend_from_slice(osc.as_bytes());
    }
    bytes
}

/// Alert bytes waiting for the console's next flush.
#[derive(Debug, Clone, Default)]
pub struct Alerts(Arc<Mutex<Vec<u8>>>);

impl Alerts {
    fn push(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The console's writer: what ratatui writes goes through unchanged; at each flush (the end
/// of a frame: ratatui flushes once the frame is written) the waiting alerts go first.
pub struct AlertWriter<W: Write> {
    inner: W,
    alerts: Option<Alerts>,
}

impl<W: Write> AlertWriter<W> {
    pub fn new(inner: W, alerts: Option<Alerts>) -> Self {
        AlertWriter { inner, alerts }
    }
}

impl<W: Write> Write for AlertWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(alerts) = &self.alerts {
            let pending = alerts.take();
            if !pending.is_empty() {
                self.inner.write_all(&pending)?;
            }
        }
        self.inner.flush()
    }
}

/// Rings the terminal for a notice, wherever the target says.
pub(super) struct Ring {
    target: TerminalTarget,
    alerts: Option<Alerts>,
    flavour: Flavour,
}

impl Ring {
    pub(super) fn new(target: TerminalTarget, alerts: Option<Alerts>) -> Ring {
        Ring {
            target,
            alerts,
            flavour: Flavour::from_env(),
        }
    }

    pub(super) fn ring(&self, notice: &Notice) {
        let bytes = || alert_bytes(&notice.text, self.flavour);
        match (self.target, &self.alerts) {
            (TerminalTarget::Console, Some(alerts)) => alerts.push(&bytes()),
            (TerminalTarget::Stderr, _) => {
                // A gone terminal is no reason to stop: the next line printed says so.
                let mut stderr = std::io::stderr().lock();
                let _ = stderr.write_all(&bytes()).and_then(|()| stderr.flush());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Flavour = Flavour {
        osc777: false,
        tmux: false,
    };

    #[test]
    fn the_bell_then_osc_9() {
        assert_eq!(
            alert_bytes("kongup p: ready", PLAIN),
            b"\x07\x1b]9;kongup p: ready\x1b\\".to_vec()
        );
    }

    #[test]
    fn osc_777_has_its_fields_and_no_stray_separator() {
        let flavour = Flavour {
            osc777: true,
            ..PLAIN
        };
        assert_eq!(
            alert_bytes("a; b", flavour),
            b"\x07\x1b]777;notify;kongup;a, b\x1b\\".to_vec()
        );
    }

    #[test]
    fn inside_tmux_the_osc_is_wrapped_with_its_escapes_doubled_and_the_bell_is_not() {
        let flavour = Flavour {
            tmux: true,
            ..PLAIN
        };
        assert_eq!(
            alert_bytes("x", flavour),
            b"\x07\x1bPtmux;\x1b\x1b]9;x\x1b\x1b\\\x1b\\".to_vec()
        );
    }

    #[test]
    fn control_characters_cannot_end_the_sequence() {
        let bytes = alert_bytes("a\x07b\x1b\\c\nd", PLAIN);
        assert_eq!(bytes, b"\x07\x1b]9;ab\\cd\x1b\\".to_vec());
    }

    #[test]
    fn alerts_go_out_at_the_flush_after_what_was_written() {
        let alerts = Alerts::default();
        let mut writer = AlertWriter::new(Vec::new(), Some(alerts.clone()));
        writer.write_all(b"frame").unwrap();
        alerts.push(b"\x07");
        writer.write_all(b" more").unwrap();
        assert_eq!(writer.inner, b"frame more");
        writer.flush().unwrap();
        writer.flush().unwrap();
        assert_eq!(writer.inner, b"frame more\x07");
    }
}

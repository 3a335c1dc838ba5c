//! A step's log: its file in the run directory, written by a thread of its own, and the
//! event stream; redacted, with the last lines kept for the journal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::engine::event::{Event, LogLine, LogStream};
use crate::secrets::Redactor;

/// Where a step's output goes: its log file in the run directory and the event stream,
/// redacted, with the last lines kept for the journal. The file is written by a thread of
/// its own, so a slow disk never holds up the task that produced the line.
#[derive(Clone)]
pub struct LogSink {
    step: String,
    redactor: Arc<Redactor>,
    events: mpsc::UnboundedSender<Event>,
    tail: Arc<Mutex<VecDeque<String>>>,
    writer: Option<std::sync::mpsc::Sender<LogWrite>>,
}

/// What the log writer thread is asked.
enum LogWrite {
    Line(String),
    /// Write out everything before this, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// How many of a step's last output lines the journal keeps.
pub const TAIL_LINES: usize = 20;

/// How long `LogSink::flush` waits for the log file (a stuck disk must not stop the run).
pub const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the thread that writes a step's log file; `None` (with a warning) when no
/// thread can be started.
fn spawn_log_writer(
    file: std::fs::File,
    step: &str,
    events: &mpsc::UnboundedSender<Event>,
) -> Option<std::sync::mpsc::Sender<LogWrite>> {
    use std::io::Write;
    let (tx, rx) = std::sync::mpsc::channel::<LogWrite>();
    let (step_name, warnings) = (step.to_string(), events.clone());
    let spawned = std::thread::Builder::new()
        .name("kongup-log".into())
        .spawn(move || {
            let mut out = Some(std::io::BufWriter::new(file));
            let failed = |out: &mut Option<std::io::BufWriter<std::fs::File>>,
                          e: std::io::Error| {
                *out = None;
                let _ = warnings.send(Event::Warning(format!(
                    "could not write the log of {step_name}: {e}; its output is only shown"
                )));
            };
            while let Ok(first) = rx.recv() {
                let mut next = Some(first);
                while let Some(write) = next.take() {
                    match write {
                        LogWrite::Line(line) => {
                            if let Some(w) = &mut out
                                && let Err(e) = writeln!(w, "{line}")
                            {
                                failed(&mut out, e);
                            }
                        }
                        LogWrite::Flush(done) => {
                            if let Some(w) = &mut out
                                && let Err(e) = w.flush()
                            {
                                failed(&mut out, e);
                            }
                            let _ = done.send(());
                        }
                    }
                    next = rx.try_recv().ok();
                }
                // Nothing more waiting: put what was written on disk.
                if let Some(w) = &mut out
                    && let Err(e) = w.flush()
                {
                    failed(&mut out, e);
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            let _ = events.send(Event::Warning(format!(
                "could not start the log writer of {step}: {e}; its output is only shown"
            )));
            None
        }
    }
}

impl LogSink {
    pub(crate) fn new(
        step: String,
        file: Option<std::fs::File>,
        redactor: Arc<Redactor>,
        events: mpsc::UnboundedSender<Event>,
    ) -> LogSink {
        let writer = file.and_then(|file| spawn_log_writer(file, &step, &events));
        LogSink {
            step,
            redactor,
            events,
            tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
            writer,
        }
    }

    pub fn line(&self, stream: LogStream, text: &str) {
        let text = self.redactor.redact(text.trim_end_matches(['\n', '\r']));
        let at = Utc::now();
        if let Some(writer) = &self.writer {
            let tag = match stream {
                LogStream::Stdout => "stdout",
                LogStream::Stderr => "stderr",
                LogStream::Engine => "kongup",
            };
            // The writer only goes away after a failure it has already reported.
            let _ = writer.send(LogWrite::Line(format!(
                "{} {tag}| {text}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )));
        }
        {
            let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.to_string());
        }
        let _ = self.events.send(Event::Log(LogLine {
            at,
            step: Some(self.step.clone()),
            stream,
            text: text.into_owned(),
        }));
    }

    /// A line from kongup itself about the step.
    pub fn note(&self, text: &str) {
        self.line(LogStream::Engine, text);
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Waits (up to [`LOG_FLUSH_TIMEOUT`]) until every line so far is in the log file.
    /// Blocking: call it where blocking is allowed.
    pub fn flush(&self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let (done, answer) = std::sync::mpsc::channel();
        if writer.send(LogWrite::Flush(done)).is_ok() {
            let _ = answer.recv_timeout(LOG_FLUSH_TIMEOUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_that_stops_taking_writes_never_blocks_the_step() {
        // A pipe nobody reads: after its buffer fills, every write to it blocks.
        let (read, write) = nix::unistd::pipe().unwrap();
        let (events, _events_rx) = mpsc::unbounded_channel();
        let sink = LogSink::new(
            "cluster/a".into(),
            Some(std::fs::File::from(write)),
            Arc::new(Redactor::default()),
            events,
        );
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let line = "x".repeat(1000);
            for _ in 0..1000 {
                sink.line(LogStream::Stdout, &line);
            }
            let _ = done_tx.send(sink.tail().len());
        });
        let kept = done_rx.recv_timeout(Duration::from_secs(10));
        drop(read);
        assert_eq!(
            kept.expect("1 MB of output into a log nobody drains blocked the step"),
            TAIL_LINES
        );
    }
}

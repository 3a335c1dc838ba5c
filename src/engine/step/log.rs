//! A step's log: its file in the run directory, which gets every line, and the live view
//! (the event stream), which may be thinned when it falls behind; redacted, with the last
//! lines kept for the journal.
//!
//! The file is the audit trail. Each line is put on the file's queue first, before the
//! event stream or the journal's tail see it, and a thread of its own writes the queue out
//! (buffered), so a slow disk never holds up the task that produced the line. The queue
//! is bounded ([`LOG_QUEUE_BYTES`]): a command's output waits for room
//! ([`LogSink::take_output`]), so the command itself waits on a slow disk, as it would
//! writing to a file, instead of lines being lost. A disk that takes no write at all for
//! [`LOG_STALL_TIMEOUT`] is given up on (a hung mount must not stop the run), and the
//! operator is told from which line on the file is incomplete.
//!
//! A command's output is taken in batches, as many lines as wait (up to
//! [`OUTPUT_BATCH`]): each line is redacted and stamped on its own, as it always was, but
//! the batch goes to the file's queue as one write and to the event stream as one hand-off,
//! so a step printing 100 000 lines a second wakes the writer and the console a few hundred
//! times a second, not 100 000 times. A batch never waits for more lines: what is there is
//! passed on at once.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, mpsc};

use crate::engine::event::{Event, EventSender, LogLine, LogStream};
use crate::exec::OutputLine;
use crate::secrets::Redactor;

/// How many of a step's last output lines the journal keeps.
pub const TAIL_LINES: usize = 20;

/// How long `LogSink::flush` waits for the log file (a stuck disk must not stop the run).
pub const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The bytes of output that may wait for the log file's writer; a command's output waits
/// for room beyond this.
pub const LOG_QUEUE_BYTES: usize = 4 << 20;

/// How long output waits for room on the log file's queue before the file is given up on.
pub const LOG_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The most output lines taken from a command in one batch.
pub const OUTPUT_BATCH: usize = 1024;

/// Where a step's output goes: its log file in the run directory and the event stream,
/// redacted, with the last lines kept for the journal.
#[derive(Clone)]
pub struct LogSink {
    step: String,
    redactor: Arc<Redactor>,
    events: EventSender,
    tail: Arc<Mutex<VecDeque<String>>>,
    file: Option<Arc<LogFile>>,
}

/// The log file's queue. Its writer thread ends once every sink of the step is gone.
struct LogFile {
    writes: std::sync::mpsc::Sender<LogWrite>,
    state: Arc<FileState>,
}

/// What the sinks and the writer thread share (not the queue's sender: the thread must
/// not keep itself alive).
struct FileState {
    path: PathBuf,
    /// Bytes queued and not yet written.
    queued: AtomicUsize,
    /// Told when the queue drains to half, or when the writer stops.
    room: Notify,
    /// The file takes no more lines (a write failed, or the disk stalled).
    stopped: AtomicBool,
}

/// What the log writer thread is asked.
enum LogWrite {
    /// Lines, each ended by its newline.
    Lines(String),
    /// Write out everything before this, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

impl LogFile {
    /// Starts the thread that writes the file; `None` (with a warning) when no thread can
    /// be started.
    fn spawn(
        file: std::fs::File,
        path: PathBuf,
        step: &str,
        events: &EventSender,
    ) -> Option<Arc<LogFile>> {
        let (writes, rx) = std::sync::mpsc::channel::<LogWrite>();
        let state = Arc::new(FileState {
            path,
            queued: AtomicUsize::new(0),
            room: Notify::new(),
            stopped: AtomicBool::new(false),
        });
        let (shared, step_name, warnings) = (state.clone(), step.to_string(), events.clone());
        let spawned = std::thread::Builder::new()
            .name("kongup-log".into())
            .spawn(move || shared.write_out(file, rx, &step_name, &warnings));
        match spawned {
            Ok(_) => Some(Arc::new(LogFile { writes, state })),
            Err(e) => {
                events.send(Event::Warning(format!(
                    "could not start the log writer of {step}: {e}; its output is only shown"
                )));
                None
            }
        }
    }

    fn queue(&self, lines: String) {
        if lines.is_empty() || self.state.stopped.load(Ordering::SeqCst) {
            return;
        }
        self.state.queued.fetch_add(lines.len(), Ordering::SeqCst);
        // The writer only goes away after a failure it has already reported.
        let _ = self.writes.send(LogWrite::Lines(lines));
    }
}

impl FileState {
    /// The writer thread: lines in the order queued, buffered, flushed whenever nothing
    /// more waits.
    fn write_out(
        &self,
        file: std::fs::File,
        rx: std::sync::mpsc::Receiver<LogWrite>,
        step: &str,
        warnings: &EventSender,
    ) {
        use std::io::Write;
        let mut out = Some(std::io::BufWriter::with_capacity(64 * 1024, file));
        let failed = |out: &mut Option<std::io::BufWriter<std::fs::File>>, e: std::io::Error| {
            *out = None;
            self.stop();
            warnings.send(Event::Warning(format!(
                "could not write the log {} of {step}: {e}; from here on its output is only \
                 shown, and the journal keeps its last {TAIL_LINES} lines (free space on that \
                 disk for the next steps' logs)",
                self.path.display()
            )));
        };
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(write) = next.take() {
                match write {
                    LogWrite::Lines(lines) => {
                        if let Some(w) = &mut out
                            && let Err(e) = w.write_all(lines.as_bytes())
                        {
                            failed(&mut out, e);
                        }
                        let before = self.queued.fetch_sub(lines.len(), Ordering::SeqCst);
                        let after = before - lines.len();
                        if before > LOG_QUEUE_BYTES / 2 && after <= LOG_QUEUE_BYTES / 2 {
                            self.room.notify_waiters();
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
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.room.notify_waiters();
    }

    /// Waits until the queue has room; `false` when the disk took nothing for
    /// [`LOG_STALL_TIMEOUT`] (the file is then given up on).
    async fn room(&self) -> bool {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.stopped.load(Ordering::SeqCst)
                || self.queued.load(Ordering::SeqCst) < LOG_QUEUE_BYTES
            {
                return true;
            }
            if tokio::time::timeout(LOG_STALL_TIMEOUT, room).await.is_err() {
                return false;
            }
        }
    }
}

impl LogSink {
    pub(crate) fn new(
        step: String,
        file: Option<(std::fs::File, PathBuf)>,
        redactor: Arc<Redactor>,
        events: EventSender,
    ) -> LogSink {
        let file = file.and_then(|(file, path)| LogFile::spawn(file, path, &step, &events));
        LogSink {
            step,
            redactor,
            events,
            tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
            file,
        }
    }

    /// A line for the log: into the file's queue first, then the journal's tail, then the
    /// live view. Never waits (the file's queue may go past its bound: for kongup's own
    /// notes and an action's lines; a command's output goes through
    /// [`LogSink::take_output`], which waits for room).
    pub fn line(&self, stream: LogStream, text: &str) {
        self.lines([(stream, text)]);
    }

    /// Lines for the log, in order, as [`LogSink::line`] puts one: each redacted and
    /// timestamped, then all of them into the file's queue at once, the journal's tail and
    /// the live view.
    fn lines<'a>(&self, lines: impl IntoIterator<Item = (LogStream, &'a str)>) {
        use std::fmt::Write;
        let mut written = String::new();
        let mut shown = Vec::new();
        // Lines of the same millisecond share its timestamp, formatted once.
        let mut stamp: Option<(i64, String)> = None;
        for (stream, text) in lines {
            let text = self.redactor.redact(text.trim_end_matches(['\n', '\r']));
            let at = Utc::now();
            if self.file.is_some() {
                let tag = match stream {
                    LogStream::Stdout => "stdout",
                    LogStream::Stderr => "stderr",
                    LogStream::Engine => "kongup",
                };
                let millis = at.timestamp_millis();
                let stamp = match &mut stamp {
                    Some((of, stamp)) if *of == millis => stamp,
                    slot => {
                        let formatted = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                        &slot.insert((millis, formatted)).1
                    }
                };
                let _ = writeln!(written, "{stamp} {tag}| {text}");
            }
            shown.push(LogLine {
                at,
                step: Some(self.step.clone()),
                stream,
                text: text.into_owned(),
            });
        }
        if let Some(file) = &self.file {
            file.queue(written);
        }
        {
            let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            for line in shown.iter().skip(shown.len().saturating_sub(TAIL_LINES)) {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.text.clone());
            }
        }
        self.events.send_lines(shown);
    }

    /// A line from kongup itself about the step.
    pub fn note(&self, text: &str) {
        self.line(LogStream::Engine, text);
    }

    /// Every line a command prints, until its executor closes `lines`, in batches of what
    /// waits (see the module's doc): each batch waits for room in the log file's queue, so
    /// none is lost and the command waits for a slow disk.
    pub async fn take_output(&self, mut lines: mpsc::Receiver<OutputLine>) {
        let mut batch = Vec::with_capacity(OUTPUT_BATCH);
        while lines.recv_many(&mut batch, OUTPUT_BATCH).await > 0 {
            self.wait_for_room().await;
            self.lines(batch.iter().map(|line| (line.stream, line.text.as_str())));
            batch.clear();
        }
    }

    async fn wait_for_room(&self) {
        let Some(file) = &self.file else {
            return;
        };
        if file.state.room().await {
            return;
        }
        file.state.stop();
        self.events.send(Event::Warning(format!(
            "the log {} has taken no write for {}: its disk is full or hung. kongup stops \
             writing it so that {} goes on; from {} on its output is only shown, not logged",
            file.state.path.display(),
            humantime::format_duration(LOG_STALL_TIMEOUT),
            self.step,
            Utc::now().format("%H:%M:%S UTC")
        )));
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
        let Some(file) = &self.file else {
            return;
        };
        let (done, answer) = std::sync::mpsc::channel();
        if file.writes.send(LogWrite::Flush(done)).is_ok() {
            let _ = answer.recv_timeout(LOG_FLUSH_TIMEOUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::channel;

    fn sink_on(file: std::fs::File, events: EventSender) -> LogSink {
        LogSink::new(
            "cluster/a".into(),
            Some((file, PathBuf::from("the-log"))),
            Arc::new(Redactor::default()),
            events,
        )
    }

    #[test]
    fn a_log_file_that_stops_taking_writes_never_blocks_the_step() {
        // A pipe nobody reads: after its buffer fills, every write to it blocks.
        let (read, write) = nix::unistd::pipe().unwrap();
        let (events, _events_rx) = channel();
        let sink = sink_on(std::fs::File::from(write), events);
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

    /// A disk that takes nothing: output waits for room, then the file is given up on and
    /// the operator is told; the command's lines go on to the live view.
    #[tokio::test(start_paused = true)]
    async fn output_waits_for_a_stuck_log_then_gives_it_up_and_says_so() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let (events, mut events_rx) = channel();
        let sink = sink_on(std::fs::File::from(write), events);
        let (lines_tx, lines_rx) = mpsc::channel(16);
        let take = tokio::spawn({
            let sink = sink.clone();
            async move { sink.take_output(lines_rx).await }
        });
        let line = "y".repeat(16 * 1024);
        // Twice the queue: the pipe takes 64 KiB, the queue 4 MiB, the rest must wait.
        for _ in 0..(2 * LOG_QUEUE_BYTES / line.len()) {
            lines_tx
                .send(OutputLine {
                    stream: LogStream::Stdout,
                    text: line.clone(),
                })
                .await
                .unwrap();
        }
        drop(lines_tx);
        take.await.unwrap();
        let mut warned = false;
        while let Some(event) = futures::FutureExt::now_or_never(events_rx.recv()).flatten() {
            warned |=
                matches!(&event, Event::Warning(w) if w.contains("has taken no write for 30s"));
        }
        assert!(warned, "the operator is told the log was given up on");
        drop(read);
    }
}

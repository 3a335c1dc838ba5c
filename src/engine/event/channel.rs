//! The engine's event stream to the console and `--plain`: bounded, and it never makes the
//! engine (or a step printing its output) wait for the reader.
//!
//! What waits for a slow reader is kept in the order it was sent, except that:
//! - output lines wait up to [`LOG_BACKLOG_LINES`] lines or [`LOG_BACKLOG_BYTES`] bytes;
//!   beyond that the oldest are left out, and an [`Event::LogSkipped`] in their place says
//!   how many (the step's log file has them all: it is written before anything is sent
//!   here);
//! - of the periodic samples (metrics, topology, gate verdicts) only the latest of each
//!   waits: a newer one replaces it;
//! - warnings wait up to [`OTHER_BACKLOG`] of the other events; beyond that they are
//!   counted, and a warning says how many were not shown.
//!
//! Everything else (step and run states, traffic, bakes, rollback progress) always waits
//! whole: those come at the pace of the run, each after a journal record, and a reader
//! that drops one would show the run wrong.
//!
//! Events may be sent and taken in batches (a step's output comes so: see
//! `engine::step::log`): one lock and at most one wake-up of the reader for the batch, the
//! same bounds and order as if each had been sent alone.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;

use super::{Event, LogLine};
use crate::kong::topology::TopologySnapshot;
use crate::metrics::{GateVerdict, MetricsSnapshot};

/// Output lines that wait for the reader; older ones are left out beyond this.
pub const LOG_BACKLOG_LINES: usize = 2_000;
/// The same, in bytes of text.
pub const LOG_BACKLOG_BYTES: usize = 1 << 20;
/// Other events that wait before warnings are counted rather than kept.
pub const OTHER_BACKLOG: usize = 1_000;
/// Separate notices of left-out lines kept (one per step in turn); beyond this they merge.
const SKIP_NOTICES: usize = 64;

/// A new event stream: the engine keeps the sender (and clones of it), the console or
/// `--plain` reads the receiver. The stream ends once every sender is gone.
pub fn channel() -> (EventSender, EventReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            senders: 1,
            reading: true,
            ..Queue::default()
        }),
        waker: AtomicWaker::new(),
    });
    (
        EventSender {
            shared: shared.clone(),
        },
        EventReceiver { shared },
    )
}

struct Shared {
    queue: Mutex<Queue>,
    waker: AtomicWaker,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What waits for the reader; every item carries the number of its send, so the reader
/// gets them in the order they were sent.
#[derive(Default)]
struct Queue {
    sent: u64,
    events: VecDeque<(u64, Event)>,
    logs: VecDeque<(u64, LogLine)>,
    log_bytes: usize,
    /// Lines left out: where the first was, whose step, how many.
    skipped: VecDeque<(u64, Option<String>, u64)>,
    metrics: Option<(u64, MetricsSnapshot)>,
    topology: Option<(u64, TopologySnapshot)>,
    gate: Option<(u64, GateVerdict)>,
    /// Warnings not kept: where the first was, how many.
    warnings_skipped: Option<(u64, u64)>,
    senders: usize,
    /// The receiver is still there.
    reading: bool,
}

fn line_bytes(line: &LogLine) -> usize {
    line.text.len() + line.step.as_ref().map_or(0, String::len) + 64
}

impl Queue {
    fn push(&mut self, event: Event) {
        let seq = self.sent;
        self.sent += 1;
        match event {
            Event::Log(line) => {
                let size = line_bytes(&line);
                while !self.logs.is_empty()
                    && (self.logs.len() >= LOG_BACKLOG_LINES
                        || self.log_bytes + size > LOG_BACKLOG_BYTES)
                {
                    self.leave_out_oldest_line();
                }
                self.log_bytes += size;
                self.logs.push_back((seq, line));
            }
            Event::Metrics(sample) => self.metrics = Some((seq, sample)),
            Event::Topology(sample) => self.topology = Some((seq, sample)),
            Event::Gate(verdict) => self.gate = Some((seq, verdict)),
            Event::Warning(_) if self.events.len() >= OTHER_BACKLOG => {
                let (_, count) = self.warnings_skipped.get_or_insert((seq, 0));
                *count += 1;
            }
            event => self.events.push_back((seq, event)),
        }
    }

    fn leave_out_oldest_line(&mut self) {
        let Some((seq, line)) = self.logs.pop_front() else {
            return;
        };
        self.log_bytes -= line_bytes(&line);
        let full = self.skipped.len() >= SKIP_NOTICES;
        match self.skipped.back_mut() {
            Some((_, step, count)) if *step == line.step => *count += 1,
            Some((_, step, count)) if full => {
                // Lines of several steps in one notice: it names none.
                *step = None;
                *count += 1;
            }
            _ => self.skipped.push_back((seq, line.step, 1)),
        }
    }

    /// The next event in the order sent.
    fn pop(&mut self) -> Option<Event> {
        #[derive(Clone, Copy)]
        enum From {
            Events,
            Logs,
            Skipped,
            Metrics,
            Topology,
            Gate,
            Warnings,
        }
        let heads = [
            (self.events.front().map(|e| e.0), From::Events),
            (self.logs.front().map(|l| l.0), From::Logs),
            (self.skipped.front().map(|s| s.0), From::Skipped),
            (self.metrics.as_ref().map(|m| m.0), From::Metrics),
            (self.topology.as_ref().map(|t| t.0), From::Topology),
            (self.gate.as_ref().map(|g| g.0), From::Gate),
            (self.warnings_skipped.map(|w| w.0), From::Warnings),
        ];
        let (_, from) = heads
            .into_iter()
            .filter_map(|(seq, from)| seq.map(|seq| (seq, from)))
            .min_by_key(|(seq, _)| *seq)?;
        Some(match from {
            From::Events => self.events.pop_front()?.1,
            From::Logs => {
                let (_, line) = self.logs.pop_front()?;
                self.log_bytes -= line_bytes(&line);
                Event::Log(line)
            }
            From::Skipped => {
                let (_, step, lines) = self.skipped.pop_front()?;
                Event::LogSkipped { step, lines }
            }
            From::Metrics => Event::Metrics(self.metrics.take()?.1),
            From::Topology => Event::Topology(self.topology.take()?.1),
            From::Gate => Event::Gate(self.gate.take()?.1),
            From::Warnings => {
                let (_, count) = self.warnings_skipped.take()?;
                Event::Warning(format!(
                    "{count} more warning{} came while this screen fell behind and {} not \
                     shown; the journal has what kongup did",
                    if count == 1 { "" } else { "s" },
                    if count == 1 { "is" } else { "are" },
                ))
            }
        })
    }
}

/// The engine's side of the event stream. Sending never waits; it does nothing once the
/// receiver is gone.
pub struct EventSender {
    shared: Arc<Shared>,
}

impl EventSender {
    pub fn send(&self, event: Event) {
        self.send_all([event]);
    }

    /// Events in order, handed over at once.
    pub fn send_all(&self, events: impl IntoIterator<Item = Event>) {
        {
            let mut queue = self.shared.lock();
            if !queue.reading {
                return;
            }
            let before = queue.sent;
            for event in events {
                queue.push(event);
            }
            if queue.sent == before {
                return;
            }
        }
        self.shared.waker.wake();
    }

    /// Output lines in order, handed over at once.
    pub fn send_lines(&self, lines: Vec<LogLine>) {
        self.send_all(lines.into_iter().map(Event::Log));
    }

    /// The receiver is gone: nobody reads what is sent.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().reading
    }
}

impl Clone for EventSender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        EventSender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        let last = {
            let mut queue = self.shared.lock();
            queue.senders -= 1;
            queue.senders == 0
        };
        if last {
            self.shared.waker.wake();
        }
    }
}

/// The reader's side: a stream of events in the order sent, which ends once the engine
/// (every sender) is gone and everything sent was read.
pub struct EventReceiver {
    shared: Arc<Shared>,
}

impl EventReceiver {
    /// The next event; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        futures::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Waits for an event, then takes it and every other one waiting, up to `limit` in
    /// all, into `batch`; 0 once the stream has ended.
    pub async fn recv_many(&mut self, batch: &mut Vec<Event>, limit: usize) -> usize {
        futures::future::poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            let mut queue = self.shared.lock();
            let before = batch.len();
            while batch.len() - before < limit.max(1) {
                match queue.pop() {
                    Some(event) => batch.push(event),
                    None => break,
                }
            }
            match batch.len() - before {
                0 if queue.senders == 0 => Poll::Ready(0),
                0 => Poll::Pending,
                taken => Poll::Ready(taken),
            }
        })
        .await
    }

    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        // Registered before looking, so a send between the look and the wait wakes us.
        self.shared.waker.register(cx.waker());
        let mut queue = self.shared.lock();
        match queue.pop() {
            Some(event) => Poll::Ready(Some(event)),
            None if queue.senders == 0 => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl Stream for EventReceiver {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.reading = false;
        *queue = Queue {
            senders: queue.senders,
            reading: false,
            ..Queue::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::{LogStream, RunState};
    use chrono::Utc;
    use futures::FutureExt;

    fn line(step: &str, n: usize) -> Event {
        Event::Log(LogLine {
            at: Utc::now(),
            step: Some(step.to_string()),
            stream: LogStream::Stdout,
            text: n.to_string(),
        })
    }

    fn drain(rx: &mut EventReceiver) -> Vec<Event> {
        std::iter::from_fn(|| rx.recv().now_or_never().flatten()).collect()
    }

    #[test]
    fn a_flood_keeps_the_latest_lines_says_how_many_it_left_out_and_keeps_every_state() {
        let (tx, mut rx) = channel();
        tx.send(Event::RunChanged(RunState::Running));
        for n in 0..10_000 {
            tx.send(line("cluster/a", n));
            if n == 5_000 {
                tx.send(Event::RunChanged(RunState::Paused));
            }
        }
        drop(tx);
        let events = drain(&mut rx);
        let shown: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Log(l) => Some(l.text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(shown.len(), LOG_BACKLOG_LINES);
        assert_eq!(shown.last(), Some(&"9999"));
        let skipped: u64 = events
            .iter()
            .filter_map(|e| match e {
                Event::LogSkipped { step, lines } => {
                    assert_eq!(step.as_deref(), Some("cluster/a"));
                    Some(*lines)
                }
                _ => None,
            })
            .sum();
        assert_eq!(skipped + shown.len() as u64, 10_000);
        // Both run states came through, in their place: the pause after the lines before
        // it (left out or not), before every line after it.
        assert_eq!(events[0], Event::RunChanged(RunState::Running));
        let paused = events
            .iter()
            .position(|e| *e == Event::RunChanged(RunState::Paused))
            .expect("the pause is never left out");
        assert!(
            events[..paused]
                .iter()
                .all(|e| !matches!(e, Event::Log(l) if l.text.parse::<usize>().unwrap() > 5_000))
        );
        assert!(
            rx.recv().now_or_never().is_some_and(|e| e.is_none()),
            "ended"
        );
    }

    #[test]
    fn samples_keep_only_the_latest_and_warnings_beyond_the_backlog_are_counted() {
        let (tx, mut rx) = channel();
        for n in 0..(OTHER_BACKLOG + 5) {
            tx.send(Event::Warning(format!("w{n}")));
        }
        let events = drain(&mut rx);
        assert_eq!(events.len(), OTHER_BACKLOG + 1);
        assert!(
            matches!(&events[OTHER_BACKLOG], Event::Warning(w) if w.starts_with("5 more warnings")),
            "{:?}",
            events.last()
        );
        let topology = |n: u64| {
            Event::Topology(TopologySnapshot {
                at: chrono::DateTime::from_timestamp(n as i64, 0),
                ..TopologySnapshot::default()
            })
        };
        tx.send(topology(1));
        tx.send(Event::RunChanged(RunState::Running));
        tx.send(topology(2));
        assert_eq!(
            drain(&mut rx),
            [Event::RunChanged(RunState::Running), topology(2)]
        );
    }

    #[test]
    fn nothing_waits_once_the_reader_is_gone() {
        let (tx, rx) = channel();
        drop(rx);
        assert!(tx.is_closed());
        for n in 0..10 {
            tx.send(line("cluster/a", n));
        }
        assert_eq!(tx.shared.lock().logs.len(), 0);
    }
}

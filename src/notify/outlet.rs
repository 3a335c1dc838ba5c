//! One receiver of notices (a webhook, the command) on a task of its own, fed through a
//! bounded queue: when the receiver is slower than the run, the oldest notices are dropped
//! and counted (the next message says how many), so the queue never grows and pushing
//! never waits.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::Notice;
use crate::secrets::Redactor;

/// Notices held for one receiver; beyond this the oldest is dropped.
pub const QUEUE_LIMIT: usize = 64;

/// Tries of one notice: the first and two retries.
pub const ATTEMPTS: usize = 3;

/// Before the second and the third try. Three tries with fixed pauses need no backoff
/// crate (none is a dependency, and a schedule this short gains nothing from jitter).
pub const RETRY_AFTER: [Duration; ATTEMPTS - 1] = [Duration::from_secs(1), Duration::from_secs(2)];

#[derive(Default)]
struct State {
    queue: VecDeque<Notice>,
    dropped: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Notify,
}

/// Where the notifier pushes notices for one receiver.
#[derive(Clone)]
pub struct Sender(Arc<Shared>);

impl Sender {
    /// Queues a notice, dropping the oldest when full; never waits.
    pub fn push(&self, notice: Notice) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.queue.len() >= QUEUE_LIMIT {
            state.queue.pop_front();
            state.dropped += 1;
        }
        state.queue.push_back(notice);
        drop(state);
        self.0.wake.notify_one();
    }
}

/// How one try of a delivery ended.
pub enum Tried {
    Delivered,
    /// Worth another try (a timeout, a refused connection, HTTP 5xx or 429).
    Again(String),
    /// Another try would fail the same way (HTTP 404: a wrong URL).
    GiveUp(String),
}

/// A receiver's task and its queue.
pub struct Outlet {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Outlet {
    /// Starts the task: each notice is tried up to [`ATTEMPTS`] times with `deliver`; the
    /// first notice given up on is said once on `warnings` (`what` names the receiver,
    /// `fix` says what to check), redacted.
    pub fn spawn<F, Fut>(
        what: String,
        fix: String,
        redactor: Redactor,
        warnings: mpsc::UnboundedSender<String>,
        deliver: F,
    ) -> Outlet
    where
        F: Fn(Notice) -> Fut + Send + 'static,
        Fut: Future<Output = Tried> + Send,
    {
        let shared = Arc::new(Shared::default());
        let queue = shared.clone();
        let task = tokio::spawn(async move {
            let mut said = false;
            while let Some(notice) = next(&queue).await {
                let mut tries = 0;
                let failure = loop {
                    tries += 1;
                    match deliver(notice.clone()).await {
                        Tried::Delivered => break None,
                        Tried::GiveUp(why) => break Some(why),
                        Tried::Again(why) if tries >= ATTEMPTS => break Some(why),
                        Tried::Again(_) => tokio::time::sleep(RETRY_AFTER[tries - 1]).await,
                    }
                };
                if let Some(why) = failure
                    && !std::mem::replace(&mut said, true)
                {
                    let text = format!(
                        "notify: {what} failed after {tries} tries: {why}. kongup goes on \
                         without it (this is said once); {fix}"
                    );
                    let _ = warnings.send(redactor.redact(&text).into_owned());
                }
            }
        });
        Outlet { shared, task }
    }

    pub fn sender(&self) -> Sender {
        Sender(self.shared.clone())
    }

    /// No more notices come: the task ends once the queue is empty.
    pub fn close(&self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.wake.notify_one();
    }

    /// Waits for the queue to be sent, until `deadline`; what is left then is dropped.
    pub async fn finish(self, deadline: tokio::time::Instant) {
        let mut task = self.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// The next notice (with the count of those dropped before it in its text); `None` once
/// closed and empty.
async fn next(shared: &Shared) -> Option<Notice> {
    loop {
        let wake = shared.wake.notified();
        {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(mut notice) = state.queue.pop_front() {
                let dropped = std::mem::take(&mut state.dropped);
                if dropped > 0 {
                    notice.text = format!(
                        "{} ({dropped} earlier notices were dropped: the receiver was slower \
                         than the run)",
                        notice.text
                    );
                }
                return Some(notice);
            }
            if state.closed {
                return None;
            }
        }
        wake.await;
    }
}

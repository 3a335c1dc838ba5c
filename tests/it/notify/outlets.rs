//! The notifier on an event stream of the test's own: the plan's command gets each message
//! in its environment; a receiver slower than the run drops the oldest messages and says
//! how many, instead of growing; a command that fails is said once in the stream, which
//! goes on unchanged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kongup::engine::{EngineHandle, Event, RunState, SessionEnd};
use kongup::notify::{self, NotifySettings, Webhook};
use kongup::secrets::Secret;
use kongup::testkit::hybrid;
use tokio::sync::{Semaphore, mpsc};

use super::webhook_server::Hook;

/// An engine that is only its event stream: what the test sends is what the notifier reads.
fn stand_in() -> (mpsc::UnboundedSender<Event>, EngineHandle) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let handle = EngineHandle {
        commands: mpsc::channel(1).0,
        events,
        task: tokio::spawn(async {
            Ok(SessionEnd {
                state: RunState::Idle,
                reason: "a stand-in".into(),
            })
        }),
        run_dir: PathBuf::from("/nonexistent"),
        run_id: "stand-in".into(),
    };
    (events_tx, handle)
}

/// The run opens, then pauses and resumes `times` times: one notice per pause.
fn pauses(events: &mpsc::UnboundedSender<Event>, times: usize) {
    events.send(Event::RunChanged(RunState::Running)).unwrap();
    for _ in 0..times {
        events.send(Event::RunChanged(RunState::Paused)).unwrap();
        events.send(Event::RunChanged(RunState::Running)).unwrap();
    }
}

async fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_gets_each_message_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heard");
    let (events, mut handle) = stand_in();
    let settings = NotifySettings {
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "printf '%s|%s\\n' \"$KONGUP_NOTIFY_EVENT\" \"$KONGUP_NOTIFY_TEXT\" >> {}",
                out.display()
            ),
        ]),
        ..NotifySettings::default()
    };
    let notifier = notify::attach(&mut handle, Arc::new(hybrid::expanded()), "p", settings);
    pauses(&events, 1);
    events.send(Event::RunChanged(RunState::Done)).unwrap();
    drop(events);
    // Every event goes on to the front end, unchanged and in order.
    let mut passed = Vec::new();
    while let Some(event) = handle.events.recv().await {
        passed.push(event);
    }
    assert_eq!(
        passed,
        vec![
            Event::RunChanged(RunState::Running),
            Event::RunChanged(RunState::Paused),
            Event::RunChanged(RunState::Running),
            Event::RunChanged(RunState::Done),
        ]
    );
    notifier.finish().await;
    let heard = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        heard.lines().collect::<Vec<_>>(),
        vec![
            "paused|kongup p: the run is paused; kongup waits for you (resume, roll back or quit)",
            "ended|kongup p: the run is done",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_the_run_drops_the_oldest_and_says_how_many() {
    let hook = Hook::default();
    // The first post is held until the test lets it go; the others are answered at once.
    let gate = Arc::new(Semaphore::new(0));
    *hook.hold.lock().unwrap() = Some(gate.clone());
    let base = hook.serve().await;
    let (events, mut handle) = stand_in();
    let settings = NotifySettings {
        webhooks: vec![Webhook {
            label: "--notify-webhook #1".into(),
            url: Secret::new(format!("{base}/hook")),
        }],
        ..NotifySettings::default()
    };
    let notifier = notify::attach(&mut handle, Arc::new(hybrid::expanded()), "p", settings);
    let front_end = tokio::spawn(async move { while handle.events.recv().await.is_some() {} });
    pauses(&events, 1);
    wait_until("the first post to arrive", || hook.posts().len() == 1).await;
    // While it is held: the queue's worth and five more.
    let queue = kongup::notify::QUEUE_LIMIT;
    pauses(&events, queue + 5);
    *hook.hold.lock().unwrap() = None;
    gate.add_permits(1);
    wait_until("the queue sent", || hook.posts().len() == 1 + queue).await;
    drop(events);
    front_end.await.unwrap();
    notifier.finish().await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 1 + queue, "the queue grew");
    let second = posts[1].body["text"].as_str().unwrap();
    assert!(
        second.ends_with("(5 earlier notices were dropped: the receiver was slower than the run)"),
        "{second}"
    );
    assert!(
        posts[2..]
            .iter()
            .all(|p| !p.body["text"].as_str().unwrap().contains("dropped")),
        "the count is said once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_is_said_once_in_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let tries = dir.path().join("tries");
    let (events, mut handle) = stand_in();
    let settings = NotifySettings {
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "echo try >> {}; echo no route to the pager >&2; exit 3",
                tries.display()
            ),
        ]),
        ..NotifySettings::default()
    };
    let notifier = notify::attach(&mut handle, Arc::new(hybrid::expanded()), "p", settings);
    let front_end = tokio::spawn(async move {
        let mut warnings = Vec::new();
        while let Some(event) = handle.events.recv().await {
            if let Event::Warning(text) = event {
                warnings.push(text);
            }
        }
        warnings
    });
    pauses(&events, 3);
    // The third notice's first try: the first two were given up on before it (and a
    // warning about them sent), each after every try.
    let first_two = 2 * kongup::notify::ATTEMPTS;
    wait_until("the third notice tried", || {
        std::fs::read_to_string(&tries).is_ok_and(|t| t.lines().count() > first_two)
    })
    .await;
    drop(events);
    let warnings = front_end.await.unwrap();
    notifier.finish().await;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("notify: notify.command `sh -c")
            && warnings[0].contains("exited with status 3: no route to the pager")
            && warnings[0].contains("said once"),
        "{}",
        warnings[0]
    );
}

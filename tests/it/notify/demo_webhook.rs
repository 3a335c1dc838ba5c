//! The done-when of issue 15's notifications: `kongup demo --notify-webhook URL` posts
//! Slack-compatible JSON (`{"text": …}`) for each confirmation and when a step is ready
//! after a bake; the URL is a secret that appears in nothing kongup writes; and a webhook
//! that fails is said once, never stopping the run.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use kongup::sim::Scenario;

use super::first_stage;
use super::webhook_server::Hook;
use crate::support::demo::cli::{PlainDemo, kongup, plan_name};

/// The secret part of the hook's URL, as Slack's are (`/services/T…/B…/TOKEN`).
const SECRET_PATH: &str = "/services/T0KONGUP/B0NOTIFY/s3cret-hook-token-4a7f";

/// Polls the hook until `ready` holds for what it received.
fn wait_posts(hook: &Hook, what: &str, ready: impl Fn(&[super::webhook_server::Post]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let posts = hook.posts();
        if ready(&posts) {
            return;
        }
        assert!(Instant::now() < deadline, "waited for {what}: {posts:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn texts(hook: &Hook) -> Vec<String> {
    hook.posts()
        .iter()
        .map(|p| p.body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every file under `dir`, read as text where it is text.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
                .unwrap_or(false)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_demo_posts_each_confirmation_and_the_step_ready_after_a_bake_and_never_writes_the_url() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hook = Hook::default();
    let base = runtime.block_on(hook.serve());
    let url = format!("{base}{SECRET_PATH}");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let scenario = Scenario::DualCluster;
    let stage = first_stage(scenario);

    let mut demo = PlainDemo::spawn(
        &[
            "demo",
            "--scenario",
            &scenario.to_string(),
            "--notify-webhook",
            &url,
        ],
        &run_dir,
        &plan_name(scenario),
    );
    demo.confirm_through(&stage);
    // The next stage became ready after the bake: the hook hears of it.
    wait_posts(&hook, "the step ready after the bake", |posts| {
        posts
            .iter()
            .any(|p| p.body["text"].as_str().is_some_and(|t| t.contains("ready")))
    });
    let ended = demo.quit();
    assert_eq!(ended.status.code(), Some(2), "{}", ended.stdout);

    let posts = hook.posts();
    assert!(!posts.is_empty());
    for post in &posts {
        assert_eq!(post.path, SECRET_PATH, "{post:?}");
        assert!(post.body["text"].is_string(), "not Slack's shape: {post:?}");
    }
    let texts = texts(&hook);
    // Each confirmation: who, which step.
    let user = kongup::engine::local_operator().0;
    let confirmed = texts
        .iter()
        .filter(|t| t.contains("confirmed") && t.contains(&user))
        .count();
    assert!(confirmed >= 2, "{texts:#?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("confirmed") && t.contains(&stage)),
        "{texts:#?}"
    );

    // The URL is a secret: not in the journal, the step logs, the plan copy, the report,
    // the status, or anything printed.
    let secret = SECRET_PATH.rsplit('/').next().unwrap();
    assert_eq!(files_containing(&run_dir, secret), Vec::<String>::new());
    assert!(!ended.stdout.contains(secret), "{}", ended.stdout);
    assert!(!ended.stderr.contains(secret), "{}", ended.stderr);
    for args in [&["report"][..], &["status", "--json"][..]] {
        let out = kongup(args, &run_dir, "", Duration::from_secs(10));
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(secret)
                && !String::from_utf8_lossy(&out.stderr).contains(secret),
            "{args:?}"
        );
    }
}

#[test]
fn a_failing_webhook_is_said_once_and_the_run_goes_on() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let hook = Hook::default();
    hook.answer(StatusCode::INTERNAL_SERVER_ERROR);
    let base = runtime.block_on(hook.serve());
    let url = format!("{base}{SECRET_PATH}");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let scenario = Scenario::DualCluster;

    let mut demo = PlainDemo::spawn(
        &[
            "demo",
            "--scenario",
            &scenario.to_string(),
            "--notify-webhook",
            &url,
        ],
        &run_dir,
        &plan_name(scenario),
    );
    // Three confirmations, each a notification the hook refuses (and is retried).
    let confirmed = std::cell::Cell::new(0);
    demo.confirm_until("three steps confirmed", |line| {
        if line.starts_with("succeeded ") {
            confirmed.set(confirmed.get() + 1);
        }
        confirmed.get() == 3
    });
    // The first two notifications were tried more than once and given up on.
    wait_posts(&hook, "retries of two notifications", |posts| {
        posts.len() >= 6
    });
    let ended = demo.quit();
    assert_eq!(ended.status.code(), Some(2), "{}", ended.stdout);
    let said: Vec<&str> = ended
        .stdout
        .lines()
        .filter(|l| l.starts_with("! notify: webhook"))
        .collect();
    assert_eq!(said.len(), 1, "{}", ended.stdout);
    assert!(
        said[0].contains("HTTP 500") && said[0].contains("--notify-webhook"),
        "{}",
        said[0]
    );
    let secret = SECRET_PATH.rsplit('/').next().unwrap();
    assert!(!ended.stdout.contains(secret) && !ended.stderr.contains(secret));
    assert_eq!(files_containing(&run_dir, secret), Vec::<String>::new());
}

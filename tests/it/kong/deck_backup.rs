//! The decK backup with a stand-in `deck` script: a dump of the default workspace, every
//! workspace of an Enterprise node (one file each, since decK does not combine
//! `--all-workspaces` with `-o`), and a deck that fails or writes nothing.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::routing::get;
use axum::{Json, Router};
use kongup::kong::backup::{self, BackupError};
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::plan::model::SecretRef;
use std::time::Duration;

const TOKEN: &str = "admin-token-5e1f";

/// How the stand-in `deck gateway dump` behaves; `deck file validate` checks for
/// `_format_version` in every case.
enum Dump {
    /// Writes a dump where it is told to (`-o FILE`, or `<workspace>.yaml` files in its
    /// working directory with `--all-workspaces`).
    Writes,
    /// Exits 1 and prints nothing.
    Fails,
    /// Exits 0 and writes an empty file.
    WritesNothing,
}

/// Writes the stand-in into `dir`; each run appends its arguments and the config file's
/// contents to `dir/deck-runs`.
fn deck(dir: &Path, dump: Dump) -> PathBuf {
    let runs = dir.join("deck-runs");
    let dump_body = match dump {
        Dump::Writes => {
            "if [ -n \"$out\" ]; then printf '_format_version: \"3.0\"\\nservices: []\\n' > \"$out\"; \
             else for ws in default team-a; do printf '_format_version: \"3.0\"\\n_workspace: %s\\n' \"$ws\" > \"$ws.yaml\"; done; fi"
        }
        Dump::Fails => "exit 1",
        Dump::WritesNothing => ": > \"$out\"",
    };
    let script = format!(
        r#"#!/bin/sh
echo "argv: $*" >> '{runs}'
if [ "$1 $2" = "file validate" ]; then
  grep -q _format_version "$3" || {{ echo "not a decK file: $3" >&2; exit 1; }}
  exit 0
fi
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    --config) echo "config: $(cat "$2")" >> '{runs}' ;;
  esac
  shift
done
{dump_body}
"#,
        runs = runs.display()
    );
    let path = dir.join("deck");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An Admin API answering `GET /` as Kong of this version (four parts: Enterprise), and
/// `GET /workspaces` with `default` and `team-a` (what the stand-in dumps).
async fn admin(dir: &Path, version: &'static str) -> (AdminClient, String) {
    admin_with_workspaces(dir, version, &["default", "team-a"]).await
}

async fn admin_with_workspaces(
    dir: &Path,
    version: &'static str,
    workspaces: &[&str],
) -> (AdminClient, String) {
    let listed = serde_json::json!({
        "data": workspaces.iter().map(|w| serde_json::json!({"name": w})).collect::<Vec<_>>(),
        "next": null,
    });
    let url = support::http::serve(
        Router::new()
            .route(
                "/",
                get(move || async move {
                    Json(support::http::node_info(version, "traditional", "postgres"))
                }),
            )
            .route("/workspaces", get(move || async move { Json(listed) })),
    )
    .await;
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let (client, _) = AdminClient::new(AdminClientOptions {
        token: Some(SecretRef::File(token)),
        ..AdminClientOptions::default()
    })
    .unwrap();
    (client, url)
}

fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn runs(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("deck-runs")).unwrap_or_default()
}

/// The run directory's files, the stand-in's own aside.
fn files(run_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn deck_dumps_the_default_workspace_of_an_open_source_node_into_one_verified_file() {
    let tools = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let deck = deck(tools.path(), Dump::Writes);
    let (client, url) = admin(tools.path(), "3.9.1").await;
    let records = backup::declarative_backup(
        Some(&deck),
        &client,
        &url,
        run_dir.path(),
        "20250101T000000Z",
        TIMEOUT,
        None,
    )
    .await
    .unwrap()
    .records;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.kind, "deck-dump");
    assert_eq!(
        record.path,
        run_dir.path().join("deck-dump-20250101T000000Z.yaml")
    );
    assert_eq!(record.sha256, sha256(&record.path));
    assert_eq!(record.size, std::fs::metadata(&record.path).unwrap().len());
    assert_eq!(record.verified, "deck file validate");
    assert_eq!(mode(&record.path), 0o600);
    let runs = runs(tools.path());
    assert!(
        runs.contains(&format!(
            "argv: gateway dump --yes -o {} --kong-addr {url}",
            record.path.display()
        )),
        "{runs}"
    );
    assert!(
        runs.contains(&format!("argv: file validate {}", record.path.display())),
        "{runs}"
    );
    // The token went through the config file, which is gone.
    assert!(runs.contains(&format!(
        "config: headers:\n  - \"Kong-Admin-Token:{TOKEN}\""
    )));
    assert!(
        !runs
            .lines()
            .any(|l| l.starts_with("argv:") && l.contains(TOKEN)),
        "{runs}"
    );
    assert_eq!(files(run_dir.path()), ["deck-dump-20250101T000000Z.yaml"]);
}

#[tokio::test]
async fn deck_dumps_every_workspace_of_an_enterprise_node_one_file_each() {
    let tools = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let deck = deck(tools.path(), Dump::Writes);
    let (client, url) = admin(tools.path(), "3.10.0.1").await;
    let records = backup::declarative_backup(
        Some(&deck),
        &client,
        &url,
        run_dir.path(),
        "20250101T000000Z",
        TIMEOUT,
        None,
    )
    .await
    .unwrap()
    .records;
    let dir = run_dir.path().join("deck-dump-20250101T000000Z");
    assert_eq!(mode(&dir), 0o700);
    let summary: Vec<(String, PathBuf)> = records
        .iter()
        .map(|r| (r.source.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (format!("{url} workspace default"), dir.join("default.yaml")),
            (format!("{url} workspace team-a"), dir.join("team-a.yaml")),
        ]
    );
    for record in &records {
        assert_eq!(record.sha256, sha256(&record.path));
        assert_eq!(mode(&record.path), 0o600);
    }
    assert_ne!(records[0].sha256, records[1].sha256);
    let runs = runs(tools.path());
    assert!(
        runs.contains(&format!(
            "argv: gateway dump --yes --all-workspaces --kong-addr {url}"
        )),
        "{runs}"
    );
    assert!(!runs.contains(" -o "), "-o with --all-workspaces: {runs}");
    assert_eq!(files(run_dir.path()), ["deck-dump-20250101T000000Z"]);
}

#[tokio::test]
async fn a_deck_that_fails_or_writes_nothing_is_no_backup() {
    let tools = tempfile::tempdir().unwrap();
    let (client, url) = admin(tools.path(), "3.9.1").await;

    let run_dir = tempfile::tempdir().unwrap();
    let failing = deck(tools.path(), Dump::Fails);
    let error = backup::deck_dump(
        &failing,
        &client,
        &url,
        run_dir.path(),
        "dump.yaml",
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, BackupError::Tool(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("deck gateway dump of {url} failed (exit status: 1): it printed nothing on stderr")
    );
    assert!(
        files(run_dir.path()).is_empty(),
        "left behind: {:?}",
        files(run_dir.path())
    );

    let run_dir = tempfile::tempdir().unwrap();
    let silent = deck(tools.path(), Dump::WritesNothing);
    let error = backup::deck_dump(&silent, &client, &url, run_dir.path(), "dump.yaml", TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the backup {} is empty: kongup will not go on without a usable backup",
            run_dir.path().join("dump.yaml").display()
        )
    );
}

#[tokio::test]
async fn an_enterprise_3_4_node_without_edition_gets_every_workspace_dumped() {
    // Kong 3.4's `GET /` has no `edition` (3.6.0+): the four-part version is what says
    // Enterprise, and a dump of the default workspace alone would lose the others.
    let tools = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let deck = deck(tools.path(), Dump::Writes);
    let (client, url) = admin(tools.path(), "3.4.3.12").await;
    let records = backup::declarative_backup(
        Some(&deck),
        &client,
        &url,
        run_dir.path(),
        "20250101T000000Z",
        TIMEOUT,
        None,
    )
    .await
    .unwrap()
    .records;
    let sources: Vec<&str> = records.iter().map(|r| r.source.as_str()).collect();
    assert_eq!(
        sources,
        [
            format!("{url} workspace default"),
            format!("{url} workspace team-a")
        ]
    );
    assert!(
        runs(tools.path()).contains("--all-workspaces"),
        "{}",
        runs(tools.path())
    );
}

#[tokio::test]
async fn a_workspace_deck_did_not_write_fails_the_backup() {
    let tools = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let deck = deck(tools.path(), Dump::Writes);
    let (client, url) =
        admin_with_workspaces(tools.path(), "3.10.0.1", &["default", "team-a", "team-b"]).await;
    let error = backup::declarative_backup(
        Some(&deck),
        &client,
        &url,
        run_dir.path(),
        "20250101T000000Z",
        TIMEOUT,
        None,
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("wrote no file for the workspace(s) team-b that GET /workspaces lists"),
        "{text}"
    );
}

#[tokio::test]
async fn the_plans_enterprise_edition_is_followed_and_said() {
    let tools = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let deck = deck(tools.path(), Dump::Writes);
    // A three-part version says community; the plan knows better.
    let (client, url) = admin(tools.path(), "3.4.3").await;
    let done = backup::declarative_backup(
        Some(&deck),
        &client,
        &url,
        run_dir.path(),
        "20250101T000000Z",
        TIMEOUT,
        Some(kongup::plan::model::Edition::Enterprise),
    )
    .await
    .unwrap();
    assert_eq!(done.workspaces, ["default", "team-a"]);
    assert!(
        done.edition_evidence
            .starts_with("the plan says edition: enterprise"),
        "{}",
        done.edition_evidence
    );
    assert_eq!(done.records.len(), 2);
}

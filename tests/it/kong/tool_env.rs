//! `pg_dump`, `pg_restore` and `decK` start through the one process path
//! (`exec::process`): none inherits a secret variable kongup hides from its children (the
//! Admin token, the other cluster's database password), while each gets what it needs
//! (`PGPASSWORD` for its own database). Stand-in scripts on PATH print their environment.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use kongup::kong::backup::{self, PgTools};
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::kong::pg::PgTarget;
use kongup::kong::restore;
use kongup::plan::model::SecretRef;

use crate::support::own_process::in_own_process;
use crate::support::pg::{HOST, PASSWORD, SUPERUSER, TestPg};

/// kongup's own secret variables, as a plan names them (`admin.token: {env: …}`, X's
/// database password), with values nothing else holds.
const HIDDEN: [(&str, &str); 2] = [
    ("KONGUP_IT_ADMIN_TOKEN", "admin-token-hidden-7c1d"),
    ("KONGUP_IT_X_PG_PASSWORD", "x-pg-password-hidden-2b9e"),
];

/// A stand-in for `name` that appends `== name ARGS` and its environment to
/// `dir/name.env`, then does the least its caller needs to go on.
fn stand_in(dir: &Path, name: &str, then: &str) {
    let path = dir.join(name);
    let record = dir.join(format!("{name}.env"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{{ echo \"== {name} $*\"; env; }} >> '{}'\n{then}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// What the stand-in `name` saw, one block per run.
fn seen(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.env")))
        .unwrap_or_else(|e| panic!("{name} never ran: {e}"))
}

fn assert_nothing_hidden(name: &str, seen: &str) {
    for (variable, value) in HIDDEN {
        assert!(
            !seen.contains(variable) && !seen.contains(value),
            "{name} inherited kongup's hidden {variable}:\n{seen}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_pg_restore_and_deck_get_their_own_secrets_and_none_kongup_hides() {
    if !in_own_process(
        module_path!(),
        "pg_dump_pg_restore_and_deck_get_their_own_secrets_and_none_kongup_hides",
    ) {
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    // pg_dump writes its "dump" where --file says; pg_restore --list answers with a table
    // of contents holding schema_meta; deck dumps where -o says and validates anything.
    stand_in(
        bin.path(),
        "pg_dump",
        "while [ $# -gt 0 ]; do [ \"$1\" = --file ] && echo dump > \"$2\"; shift; done",
    );
    stand_in(
        bin.path(),
        "pg_restore",
        "echo '1; 1259 16390 TABLE public schema_meta kong'",
    );
    stand_in(
        bin.path(),
        "deck",
        "while [ $# -gt 0 ]; do [ \"$1\" = -o ] && echo '_format_version: \"3.0\"' > \"$2\"; shift; done; exit 0",
    );
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: the only test in this process, and no other thread reads the environment yet.
    unsafe {
        std::env::set_var("PATH", path);
        for (name, value) in HIDDEN {
            std::env::set_var(name, value);
        }
    }
    kongup::exec::process::hide_env_from_children(HIDDEN.map(|(name, _)| name.to_string()));

    let pg = TestPg::start();
    let tools = PgTools {
        pg_dump: bin.path().join("pg_dump"),
        pg_restore: bin.path().join("pg_restore"),
        timeout: Duration::from_secs(30),
    };
    let y = PgTarget {
        host: HOST.into(),
        port: pg.port,
        database: "kong_y".into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: Some("test".into()),
        connect_timeout: Duration::from_secs(10),
        query_timeout: Duration::from_secs(10),
        tls: Default::default(),
    };

    let dump = backup::dump_database(&tools, &y, run_dir.path(), "kong.dump")
        .await
        .expect("the stand-in pg_dump and pg_restore --list make a verified backup");
    let pg_dump = seen(bin.path(), "pg_dump");
    assert_nothing_hidden("pg_dump", &pg_dump);
    assert!(
        pg_dump.contains(&format!("PGPASSWORD={PASSWORD}\n")),
        "pg_dump did not get its database's password:\n{pg_dump}"
    );

    // The stand-in restores nothing, so what comes after it fails; pg_restore ran first.
    let _ = restore::restore_into_new_database(&tools, &dump, &y).await;
    let pg_restore = seen(bin.path(), "pg_restore");
    assert!(
        pg_restore.contains("== pg_restore --list") && pg_restore.contains("--dbname kong_y"),
        "pg_restore ran for the listing and for the restore:\n{pg_restore}"
    );
    assert_nothing_hidden("pg_restore", &pg_restore);
    assert!(
        pg_restore.contains(&format!("PGPASSWORD={PASSWORD}\n")),
        "pg_restore into kong_y did not get its database's password:\n{pg_restore}"
    );

    let url = support::http::serve(Router::new().route(
        "/",
        get(|| async { Json(support::http::node_info("3.9.1", "traditional", "postgres")) }),
    ))
    .await;
    let token = bin.path().join("token");
    std::fs::write(&token, "deck-token-of-its-own").unwrap();
    let (client, _) = AdminClient::new(AdminClientOptions {
        token: Some(SecretRef::File(token)),
        ..AdminClientOptions::default()
    })
    .unwrap();
    backup::deck_dump(
        &bin.path().join("deck"),
        &client,
        &url,
        run_dir.path(),
        "deck.yaml",
        Duration::from_secs(30),
    )
    .await
    .expect("the stand-in deck dumps and validates");
    let deck = seen(bin.path(), "deck");
    assert!(deck.contains("== deck gateway dump"), "{deck}");
    assert_nothing_hidden("deck", &deck);
    assert!(
        !deck.contains("PGPASSWORD"),
        "deck needs no database password:\n{deck}"
    );
}

/// A tool named by a relative path (`deck: ./bin/deck` in a plan) is the file seen from
/// kongup's own directory, also when it starts in another (`deck gateway dump
/// --all-workspaces` writes into the backup directory), and also as a step's tracked
/// process, whose wrapper starts it after moving there.
#[tokio::test]
async fn a_tool_named_by_a_relative_path_is_found_from_kongups_directory_when_it_starts_elsewhere()
{
    // Integration tests run in the package's directory, and `target/tmp` is inside it.
    let bin = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let relative = bin
        .path()
        .strip_prefix(std::env::current_dir().unwrap())
        .expect("CARGO_TARGET_TMPDIR is under the package's directory")
        .join("deck");
    assert!(relative.is_relative() && relative.components().count() > 1);
    stand_in(bin.path(), "deck", "pwd");
    let elsewhere = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let journal = std::sync::Arc::new(crate::exec::tracked::Journal::default());
    for tracked in [false, true] {
        let run = kongup::kong::process::run_tool_in(
            &relative,
            &[],
            &[],
            Some(elsewhere.path()),
            Duration::from_secs(20),
            "deck gateway dump of the test",
        );
        let output = if tracked {
            let tracking = crate::exec::tracked::tracking(run_dir.path(), journal.clone());
            kongup::exec::track::tracked(tracking, run).await
        } else {
            run.await
        }
        .unwrap_or_else(|e| panic!("tracked: {tracked}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            elsewhere
                .path()
                .canonicalize()
                .unwrap()
                .display()
                .to_string(),
            "tracked: {tracked}: it ran in the directory it was given"
        );
    }
    assert_eq!(journal.told().len(), 2, "{:#?}", journal.told());
}

//! What kongup concludes from each `kong migrations` run of the corpus
//! (tests/fixtures/kong/*/migrations/*.cli, written from Kong's source), every version.

use kongup::kong::migrations::{Conclusion, KongVerb, ListState, conclude};
use kongup::testkit::corpus;

/// What a run of each kind means, whatever the version.
fn expected(name: &str, run: &corpus::CliRun) -> Conclusion {
    let kind = name
        .strip_prefix("migrations/")
        .and_then(|n| n.strip_suffix(".cli"))
        .unwrap();
    match kind {
        // What ran is counted from the per-migration lines, not from Kong's totals.
        k if k.starts_with("up_ran") || k == "finish_ran" => {
            let migrated = |state: &str| {
                run.stdout
                    .lines()
                    .filter(|l| l.contains(" migrated up to: ") && l.ends_with(state))
                    .count() as u32
            };
            let (executed, pending) = (migrated("(executed)"), migrated("(pending)"));
            Conclusion::Ran {
                processed: executed + pending,
                executed,
                pending,
            }
        }
        "up_nothing" | "finish_nothing" => Conclusion::NothingToDo,
        "finish_before_up" => Conclusion::UpFirst,
        "up_locked_released" | "finish_locked" => Conclusion::LockHeld,
        "up_locked" => Conclusion::LockWaitTimedOut,
        "up_pending_blocks" => Conclusion::PendingBlocksUp,
        "up_needs_bootstrap" | "list_needs_bootstrap" => Conclusion::NeedsBootstrap,
        "up_db_timeout" | "list_db_timeout" => Conclusion::DbTimeout,
        "list_up_to_date" => Conclusion::Listed(ListState::UpToDate),
        "list_pending" => Conclusion::Listed(ListState::Pending),
        "list_pending_and_new" => Conclusion::Listed(ListState::PendingAndNew),
        "list_new" => Conclusion::Listed(ListState::New),
        other => panic!("no expectation for corpus run {other}: add it to this table"),
    }
}

fn verb(command: &str) -> KongVerb {
    match command.split_whitespace().nth(2) {
        Some("up") => KongVerb::Up,
        Some("finish") => KongVerb::Finish,
        Some("list") => KongVerb::List,
        other => panic!("a corpus run of `kong migrations {other:?}`"),
    }
}

#[test]
fn every_corpus_run_means_what_kong_did() {
    let files = corpus::files("migrations/", ".cli");
    assert!(files.len() > 60, "{} corpus runs", files.len());
    let mut wrong = Vec::new();
    for file in &files {
        let run = corpus::cli(file);
        let got = conclude(verb(&run.command), run.exit, &run.stdout, &run.stderr);
        let want = expected(&file.name, &run);
        if got != want {
            wrong.push(format!(
                "{}/{}: got {got:?}, want {want:?}",
                file.version, file.name
            ));
        }
        // Exit 0 is success only when Kong did (or had nothing to do) what was asked.
        if run.exit == 0 && !file.name.contains("list_") {
            let done = matches!(want, Conclusion::Ran { .. } | Conclusion::NothingToDo);
            assert_eq!(got.is_success(), done, "{}/{}", file.version, file.name);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_version_has_each_kind_of_run() {
    for version in corpus::VERSIONS {
        for kind in [
            "up_ran",
            "up_nothing",
            "up_locked",
            "up_locked_released",
            "up_pending_blocks",
            "up_needs_bootstrap",
            "up_db_timeout",
            "finish_ran",
            "finish_nothing",
            "finish_locked",
            "finish_before_up",
            "list_up_to_date",
            "list_pending",
            "list_new",
            "list_needs_bootstrap",
            "list_db_timeout",
        ] {
            corpus::file(version, &format!("migrations/{kind}.cli"));
        }
    }
}

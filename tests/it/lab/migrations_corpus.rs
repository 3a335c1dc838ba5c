//! The `sim` executor's `kong migrations` against the corpus's runs
//! (`tests/fixtures/kong/<version>/migrations/*.cli`): for each, a lab database is put in
//! the state the run starts from, the same command runs as a node of the file's version,
//! and its stdout, stderr (line by line, `[warn]` timestamps aside) and exit code must be
//! Kong's. A run without a lab counterpart is listed in [`EXCEPTIONS`] with the reason.

use std::time::Duration;

use kongup::exec::{ExecRequest, Executor, ExitOutcome, LogStream};
use kongup::plan::model::{CommandLine, Mode, Role, Strategy};
use kongup::plan::steps::ClusterSide;
use kongup::plan::version::KongVersion;
use kongup::sim::node::NodeSpec;
use kongup::sim::scenarios::{DatabasePlan, Scenario, Topology};
use kongup::sim::{Fault, Lab, LabOptions, SimExecutor};
use kongup::testkit::corpus::{self, CliRun, CorpusFile};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs without a lab counterpart, and why.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "2.8.5",
        "migrations/up_db_timeout.cli",
        "a statement that outlives the database timeout mid-migration is not modelled (its \
         traceback's frames are approximate in the corpus too)",
    ),
    ("3.4.2", "migrations/up_db_timeout.cli", "as for 2.8.5"),
    ("3.9.1", "migrations/up_db_timeout.cli", "as for 2.8.5"),
    ("3.10.0", "migrations/up_db_timeout.cli", "as for 2.8.5"),
];

/// The release whose finished database the corpus's `list_new`, `up_ran`, … start from.
fn previous(version: &str) -> &'static str {
    match version {
        "2.8.5" => "2.1.4",
        "3.4.2" => "2.8.5",
        _ => "3.4.2",
    }
}

fn v(text: &str) -> KongVersion {
    text.parse().expect("a version")
}

/// A lab with one database, `kong`, finished by `bootstrapped_by` (empty when `None`), and
/// Y nodes on it not yet started: `kong-new` at `version` and `kong-old` at `old`.
async fn lab(version: &str, bootstrapped_by: Option<&str>, old: Option<&str>) -> Lab {
    let node = |name: &str, at: &str| NodeSpec {
        name: name.to_string(),
        cluster: ClusterSide::Y,
        role: Role::Traditional,
        dbless: false,
        version: v(at),
        database: Some("kong".to_string()),
        control_plane: None,
    };
    let mut nodes = vec![node("kong-new", version)];
    if let Some(old) = old {
        nodes.push(node("kong-old", old));
    }
    let topology = Topology {
        scenario: Scenario::DualCluster,
        mode: Mode::Traditional,
        from: v(bootstrapped_by.unwrap_or(version)),
        to: v(version),
        strategy: Strategy::DualCluster,
        nodes,
        databases: vec![DatabasePlan {
            name: "kong".to_string(),
            cluster: ClusterSide::Y,
            host: "db-y.lab.invalid".to_string(),
            port: 5432,
            user: "kong".to_string(),
            bootstrapped_by: bootstrapped_by.map(v),
        }],
        shared_backends: Vec::new(),
    };
    let lab = Lab::start_with(topology, LabOptions::default())
        .await
        .expect("the lab starts");
    let install = if old.is_some() {
        "lab install kong-new kong-old"
    } else {
        "lab install kong-new"
    };
    let installed = run(&lab.executor("lab").with_speed(f64::INFINITY), install).await;
    assert_eq!(installed.exit, 0, "{installed:?}");
    lab
}

async fn run(executor: &SimExecutor, command: &str) -> CliRun {
    let (tx, mut rx) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    });
    let outcome = executor
        .run(
            ExecRequest {
                command: CommandLine::Argv(command.split_whitespace().map(String::from).collect()),
                env: Vec::new(),
                timeout: Duration::from_secs(30),
            },
            tx,
            CancellationToken::new(),
        )
        .await
        .expect("the sim executor runs");
    let lines = collector.await.expect("the output");
    let text = |stream| -> String {
        lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| format!("{}\n", l.text))
            .collect()
    };
    CliRun {
        command: command.to_string(),
        exit: match outcome {
            ExitOutcome::Exited(code) => code,
            other => panic!("{command}: {other:?}"),
        },
        stdout: text(LogStream::Stdout),
        stderr: text(LogStream::Stderr),
    }
}

/// Without waiting: the simulated seconds pass at once.
fn instant(lab: &Lab, node: &str) -> SimExecutor {
    lab.executor(node).with_speed(f64::INFINITY)
}

/// The lab's run of what `file` records.
async fn lab_run(file: &CorpusFile, command: &str) -> CliRun {
    let version = file.version;
    let name = file
        .name
        .trim_start_matches("migrations/")
        .trim_end_matches(".cli");
    let prev = previous(version);
    match name {
        "list_up_to_date" | "up_nothing" | "finish_nothing" => {
            let lab = lab(version, Some(version), None).await;
            run(&instant(&lab, "kong-new"), command).await
        }
        "list_needs_bootstrap" | "up_needs_bootstrap" => {
            let lab = lab(version, None, None).await;
            run(&instant(&lab, "kong-new"), command).await
        }
        "list_new" | "up_ran" | "finish_before_up" => {
            let lab = lab(version, Some(prev), None).await;
            run(&instant(&lab, "kong-new"), command).await
        }
        "up_ran_from_2.7.2" | "up_ran_from_3.9.1" => {
            let from = name.trim_start_matches("up_ran_from_");
            let lab = lab(version, Some(from), None).await;
            run(&instant(&lab, "kong-new"), command).await
        }
        "list_pending" | "up_pending_blocks" | "finish_ran" => {
            let lab = lab(version, Some(prev), None).await;
            let executor = instant(&lab, "kong-new");
            assert_eq!(run(&executor, "kong migrations up").await.exit, 0);
            run(&executor, command).await
        }
        "list_pending_and_new" => {
            // 3.4.2's `up` from 2.8.5 ran, its `finish` never did; 3.9.1 lists.
            let lab = lab(version, Some("2.8.5"), Some("3.4.2")).await;
            assert_eq!(
                run(&instant(&lab, "kong-old"), "kong migrations up")
                    .await
                    .exit,
                0
            );
            run(&instant(&lab, "kong-new"), command).await
        }
        "list_db_timeout" => {
            let lab = lab(version, Some(version), None).await;
            lab.apply_fault(&Fault::DatabaseDown {
                cluster: ClusterSide::Y,
            })
            .await
            .expect("the database goes down");
            run(&instant(&lab, "kong-new"), command).await
        }
        "up_locked" | "finish_locked" => {
            // Another node holds the lock past this one's --lock-timeout.
            let lab = lab(version, Some(prev), None).await;
            assert!(lab.hold_migrations_lock("kong", "another-node", Duration::from_secs(3600)));
            run(&instant(&lab, "kong-new"), command).await
        }
        "up_locked_released" => {
            // Another node's lock expires while this one waits (its 60 s wait takes 0.6 s
            // at a hundred times the speed).
            let lab = lab(version, Some(prev), None).await;
            assert!(lab.hold_migrations_lock("kong", "another-node", Duration::from_millis(150)));
            run(&lab.executor("kong-new").with_speed(100.0), command).await
        }
        other => panic!(
            "{version}/{} has no lab counterpart and is not in EXCEPTIONS: give the lab one, \
             or list it with the reason ({other})",
            file.name
        ),
    }
}

/// The lines of a stream, with `[warn]` timestamps blanked.
fn lines(text: &str) -> Vec<String> {
    text.strip_suffix('\n')
        .map(|t| t.split('\n').collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|line| match line.split_once(" [warn] ") {
            Some((stamp, rest)) if stamp.len() == 19 => format!("<time> [warn] {rest}"),
            _ => line.to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kong_migrations_run_of_the_corpus_prints_what_the_lab_prints() {
    let files = corpus::files("migrations/", ".cli");
    for (version, name, why) in EXCEPTIONS {
        assert!(
            files
                .iter()
                .any(|f| f.version == *version && f.name == *name),
            "EXCEPTIONS names {version}/{name}, which the corpus does not have ({why})"
        );
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for file in &files {
        if EXCEPTIONS
            .iter()
            .any(|(v, n, _)| *v == file.version && *n == file.name)
        {
            continue;
        }
        let kong = corpus::cli(file);
        let lab = lab_run(file, &kong.command).await;
        compared += 1;
        let what = format!("{}/{}", file.version, file.name);
        if lab.exit != kong.exit {
            failures.push(format!("{what}: exit {} (Kong {})", lab.exit, kong.exit));
        }
        for (stream, l, k) in [
            ("stdout", &lab.stdout, &kong.stdout),
            ("stderr", &lab.stderr, &kong.stderr),
        ] {
            let (l, k) = (lines(l), lines(k));
            if l != k {
                failures.push(format!("{what}: {stream}\n  lab:  {l:?}\n  Kong: {k:?}"));
            }
        }
    }
    assert_eq!(compared + EXCEPTIONS.len(), files.len());
    assert!(
        failures.is_empty(),
        "{} differences from Kong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

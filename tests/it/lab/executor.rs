//! The `sim` executor acts on the lab as the real commands act on hosts: migrations change
//! the simulated schema like Kong's, nodes start and stop, X refuses a finished database.

use std::time::Duration;

use kongup::engine::event::LogStream;
use kongup::exec::{ExecRequest, Executor, ExitOutcome};
use kongup::plan::model::CommandLine;
use kongup::plan::steps::ClusterSide;
use kongup::sim::{Lab, LabOptions, Scenario, SimExecutor};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What one command printed and how it ended.
struct Run {
    outcome: ExitOutcome,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Run {
    fn all(&self) -> String {
        self.stdout
            .iter()
            .chain(&self.stderr)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn run_with(
    executor: &SimExecutor,
    command: CommandLine,
    timeout: Duration,
    cancel: CancellationToken,
) -> Run {
    let (tx, mut rx) = mpsc::channel(16);
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
                command,
                env: Vec::new(),
                timeout,
            },
            tx,
            cancel,
        )
        .await
        .expect("the sim executor runs");
    let lines = collector.await.unwrap();
    let pick = |stream| {
        lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.clone())
            .collect()
    };
    Run {
        outcome,
        stdout: pick(LogStream::Stdout),
        stderr: pick(LogStream::Stderr),
    }
}

async fn run(executor: &SimExecutor, argv: &[&str]) -> Run {
    let command = CommandLine::Argv(argv.iter().map(|s| s.to_string()).collect());
    run_with(
        executor,
        command,
        Duration::from_secs(30),
        CancellationToken::new(),
    )
    .await
}

fn fast() -> LabOptions {
    LabOptions {
        speed: 200.0,
        ..LabOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_migrations_change_the_schema_like_kongs_and_x_cannot_return() {
    let lab = Lab::start(Scenario::InPlace, fast()).await.unwrap();
    let y1 = lab.executor("kong-y-1");
    let x1 = lab.executor("kong-x-1");

    // Y is not installed yet.
    let r = run(&y1, &["kong", "version"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(127), "{}", r.all());
    assert!(r.all().contains("kong: command not found"));
    let r = run(&y1, &["lab", "install"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());

    // The database is X's (3.5): Y (3.6.1) has new migrations to run.
    let r = run(&y1, &["kong", "start"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(1));
    assert!(r.stderr[0].contains("New migrations available; run 'kong migrations up' to proceed"));
    let r = run(&y1, &["kong", "migrations", "list"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(5), "{}", r.all());
    assert!(r.stdout.contains(&"New migrations available:".to_string()));

    let before = lab.schema_state(ClusterSide::X).unwrap();
    assert_eq!(before.core_generation(), Some("021_340_to_350"));
    let r = run(
        &y1,
        &["sudo", "kong", "migrations", "up", "--db-timeout", "60"],
    )
    .await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
    assert!(
        r.stdout
            .contains(&"migrating core on database 'kong'...".to_string())
    );
    assert!(
        r.stdout
            .contains(&"core migrated up to: 022_350_to_360 (executed)".to_string())
    );
    assert!(
        r.stdout
            .contains(&"rate-limiting migrated up to: 006_350_to_360 (pending)".to_string())
    );
    assert!(
        r.stdout.contains(&"4 migrations processed".to_string()),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains(&"3 pending".to_string()));
    assert_eq!(
        r.stdout.last().map(String::as_str),
        Some("Database has pending migrations; run 'kong migrations finish' when ready")
    );
    let after_up = lab.schema_state(ClusterSide::Y).unwrap();
    assert_eq!(after_up.core_generation(), Some("022_350_to_360"));
    assert_eq!(after_up.pending_total(), 3);
    assert!(
        lab.migrations_lock(ClusterSide::X).is_none(),
        "the lock is released"
    );

    // `up` again refuses while pending; `list` says finish is needed.
    let r = run(&y1, &["kong", "migrations", "up"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(1));
    assert!(r.stderr[0].contains("Database has pending migrations; run 'kong migrations finish'"));
    let r = run(&y1, &["kong", "migrations", "list"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(4));
    let r = run(&y1, &["kong", "migrations", "status"]).await;
    let status: serde_json::Value = serde_json::from_str(&r.stdout[0]).expect("status is JSON");
    assert_eq!(status["needs_bootstrap"], false);
    assert!(status["pending_migrations"].is_array());
    assert!(
        status.get("new_migrations").is_none(),
        "empty lists are left out"
    );
    assert_eq!(
        status["executed_migrations"][0]["namespace"],
        "kong.db.migrations.core"
    );

    // X still runs on the database after `up` (blue-green's premise).
    let r = run(&x1, &["kong", "stop"]).await;
    assert_eq!(
        (r.outcome, r.stdout.clone()),
        (ExitOutcome::Exited(0), vec!["Kong stopped".to_string()])
    );
    let r = run(&x1, &["kong", "start"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());

    let r = run(&y1, &["kong", "migrations", "finish"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
    assert!(
        r.stdout
            .contains(&"rate-limiting migrated up to: 006_350_to_360 (executed)".to_string())
    );
    let finished = lab.schema_state(ClusterSide::Y).unwrap();
    assert_eq!(finished.pending_total(), 0);
    assert!(
        finished
            .subsystems
            .iter()
            .any(|s| s.subsystem == "acme" && s.executed.contains(&"003_350_to_360".to_string()))
    );
    let r = run(&y1, &["kong", "migrations", "finish"]).await;
    assert_eq!(
        r.stdout.last().map(String::as_str),
        Some("No pending migrations to finish")
    );

    // After finish, X (3.5.0) cannot start on that database any more.
    let r = run(&x1, &["kong", "stop"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0));
    let r = run(&x1, &["kong", "start"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(1));
    assert!(
        r.stderr[0]
            .starts_with("Error: [postgres error] database 'kong' was migrated by Kong 3.6.1"),
        "{}",
        r.all()
    );
    assert!(r.all().contains("Run with --v (verbose)"));

    // Y starts, and is ready once warmed up.
    let r = run(&y1, &["kong", "start"]).await;
    assert_eq!(
        (r.outcome, r.stdout.clone()),
        (ExitOutcome::Exited(0), vec!["Kong started".to_string()])
    );
    let r = run(&y1, &["kong", "start"]).await;
    assert!(r.stderr[0].contains("Kong is already running in /usr/local/kong"));
    let r = run(&y1, &["kong", "health"]).await;
    assert_eq!(
        r.stdout.last().map(String::as_str),
        Some("Kong is healthy at /usr/local/kong")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_row_is_held_while_migrations_run_and_a_second_runner_is_turned_away() {
    // At 5x, `up` on 3.4 → 3.10 still takes about a second: time to look at the lock.
    let hybrid = Lab::start(
        Scenario::Hybrid,
        LabOptions {
            speed: 5.0,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let cp = hybrid.executor("cp-y-1");
    assert_eq!(
        run(&cp, &["lab", "install"]).await.outcome,
        ExitOutcome::Exited(0)
    );
    // Y's own database starts empty; restore X's backup into it first.
    let lab_wide = hybrid.executor("lab");
    let r = run(
        &lab_wide,
        &["pg_dump", "-Fc", "-d", "kong", "-f", "/backups/kong.dump"],
    )
    .await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
    let r = run(
        &lab_wide,
        &[
            "pg_restore",
            "--clean",
            "-d",
            "kong_y",
            "/backups/kong.dump",
        ],
    )
    .await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
    assert_eq!(
        hybrid.schema_state(ClusterSide::Y).unwrap(),
        hybrid.schema_state(ClusterSide::X).unwrap()
    );

    let running = {
        let cp = hybrid.executor("cp-y-1");
        tokio::spawn(async move { run(&cp, &["kong", "migrations", "up"]).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lock = loop {
        if let Some(lock) = hybrid.migrations_lock(ClusterSide::Y) {
            break lock;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lock never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (lock.key.as_str(), lock.owner.as_str()),
        ("migrations", "cp-y-1")
    );
    let second = run(&lab_wide, &["kong", "migrations", "up"]).await;
    assert_eq!(second.outcome, ExitOutcome::Exited(0));
    assert_eq!(
        second.stdout,
        vec!["aborted: another node is performing database changes".to_string()]
    );
    let first = running.await.unwrap();
    assert_eq!(first.outcome, ExitOutcome::Exited(0), "{}", first.all());
    assert!(hybrid.migrations_lock(ClusterSide::Y).is_none());
    // 3.4.2 → 3.10.0 leaves five pending (tests/fixtures/kong/3.10.0/migrations/
    // list_pending.cli).
    assert_eq!(
        hybrid.schema_state(ClusterSide::Y).unwrap().pending_total(),
        5
    );
    // X's database is untouched (dual-cluster CPs).
    assert_eq!(
        hybrid.schema_state(ClusterSide::X).unwrap().pending_total(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_honour_the_timeout_and_the_cancellation() {
    let lab = Lab::start(Scenario::DblessRolling, LabOptions::default())
        .await
        .unwrap();
    let x1 = lab.executor("kong-x-1");
    let r = run_with(
        &x1,
        CommandLine::Argv(vec!["sleep".into(), "30".into()]),
        Duration::from_millis(100),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.outcome, ExitOutcome::TimedOut);

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let r = run_with(
        &x1,
        CommandLine::Shell("kong stop && kong start".into()),
        Duration::from_secs(30),
        cancel,
    )
    .await;
    assert_eq!(r.outcome, ExitOutcome::Aborted);
    assert_eq!(
        lab.nodes()
            .iter()
            .find(|n| n.name == "kong-x-1")
            .unwrap()
            .lifecycle,
        kongup::sim::node::Lifecycle::Running,
        "cancelled before `kong stop` acted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_nodes_deploy_drain_and_decommission() {
    let lab = Lab::start(Scenario::DblessRolling, fast()).await.unwrap();
    let lab_wide = lab.executor("lab");
    let r = run(&lab_wide, &["lab", "deploy", "--cluster", "y"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
    assert_eq!(
        r.stdout
            .iter()
            .filter(|l| l.as_str() == "Kong started")
            .count(),
        3
    );
    let y1 = lab.executor("kong-y-1");
    let r = run(&y1, &["kong", "drain"]).await;
    assert_eq!(
        r.stdout,
        vec!["Kong's status successfully changed to 'draining'".to_string()]
    );
    assert!(
        lab.nodes()
            .iter()
            .any(|n| n.name == "kong-y-1" && n.draining && !n.ready)
    );

    // DB-less nodes have no migrations to run.
    let r = run(&y1, &["kong", "migrations", "up"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(1));
    // A DB-less backup is a copy of kong.yml.
    let r = run(
        &lab_wide,
        &["cp", "/etc/kong/kong.yml", "/backups/kong.yml"],
    )
    .await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0));
    let r = run(&lab_wide, &["kong", "config", "parse", "/backups/kong.yml"]).await;
    assert_eq!(r.stdout, vec!["parse successful".to_string()]);

    let r = run(&lab_wide, &["lab", "decommission", "--cluster", "x"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
    assert!(
        lab.nodes()
            .iter()
            .filter(|n| n.cluster == ClusterSide::X)
            .all(|n| n.lifecycle == kongup::sim::node::Lifecycle::Absent)
    );

    // Commands the lab does not simulate say so and go on.
    let r = run(&lab_wide, &["ansible-playbook", "site.yml"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(0));
    assert!(r.stderr[0].contains("'ansible-playbook' is not simulated"));
    // Node commands need a node.
    let r = run(&lab_wide, &["kong", "start"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kong_drain_does_not_exist_before_3_9() {
    let lab = Lab::start(Scenario::DualCluster, fast()).await.unwrap();
    let x1 = lab.executor("kong-x-1");
    let r = run(&x1, &["kong", "drain"]).await;
    assert_eq!(r.outcome, ExitOutcome::Exited(1));
    assert!(r.stderr[0].starts_with("No such command: drain"));
    let r = run(&x1, &["kong", "version"]).await;
    assert_eq!(r.stdout, vec!["3.4.3.12-enterprise-edition".to_string()]);
}

/// In place, the plan puts each Y node at its X node's proxy address: the balancer's
/// backend is the address, so once X is stopped and Y runs there, X's share reaches Y. A
/// lab without that pairing has no backend left and answers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_the_balancer_sends_xs_share_to_the_y_node_at_its_address() {
    use kongup::sim::balancer::SharedBackend;
    use kongup::sim::scenarios::topology;

    let mut paired = topology(Scenario::InPlace);
    paired.shared_backends = vec![SharedBackend {
        x_node: "kong-x-1".into(),
        y_node: "kong-y-1".into(),
    }];
    for (topology, pairs) in [(paired, true), (topology(Scenario::InPlace), false)] {
        let lab = Lab::start_with(topology, fast()).await.unwrap();
        let balancer = lab.traffic_driver();
        let picked = || {
            (0..200)
                .filter_map(|_| balancer.pick())
                .map(|t| t.node)
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(
            picked(),
            ["kong-x-1", "kong-x-2"].map(String::from).into(),
            "before the upgrade X serves"
        );
        for x in ["kong-x-1", "kong-x-2"] {
            let r = run(&lab.executor(x), &["kong", "quit"]).await;
            assert_eq!(r.outcome, ExitOutcome::Exited(0), "{}", r.all());
        }
        assert!(balancer.pick().is_none(), "X is down and Y not started");
        let y1 = lab.executor("kong-y-1");
        for argv in [
            &["lab", "install"][..],
            &["kong", "migrations", "up"],
            &["kong", "migrations", "finish"],
            &["kong", "start"],
        ] {
            let r = run(&y1, argv).await;
            assert_eq!(r.outcome, ExitOutcome::Exited(0), "{argv:?}: {}", r.all());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !lab.nodes().iter().any(|n| n.name == "kong-y-1" && n.ready) {
            assert!(std::time::Instant::now() < deadline, "kong-y-1 never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if pairs {
            assert_eq!(picked(), ["kong-y-1".to_string()].into());
        } else {
            assert!(balancer.pick().is_none(), "the split still sends all to X");
        }
        lab.shutdown().await;
    }
}

/// The balancer is deterministic as nginx's and HAProxy's are: at 1 % Y gets exactly one
/// request in a hundred, spread evenly over its ready proxies, so a rehearsal's first
/// stage does not hang on chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_gives_a_one_percent_share_exactly_one_request_in_a_hundred() {
    use kongup::lb::{Split, TrafficDriver};

    let options = LabOptions {
        y_deployed: true,
        ..fast()
    };
    let lab = Lab::start(Scenario::DualCluster, options).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lab.nodes().iter().all(|n| n.ready) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lab never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let balancer = lab.traffic_driver();
    balancer.set_split(Split { x: 99, y: 1 }).await.unwrap();
    let mut served = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..1000 {
        *served.entry(balancer.pick().unwrap().node).or_default() += 1;
    }
    let y: u32 = served
        .iter()
        .filter(|(node, _)| node.starts_with("kong-y"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(y, 10, "{served:?}");
    assert_eq!(served.get("kong-y-1"), Some(&5), "{served:?}");
    lab.shutdown().await;
}

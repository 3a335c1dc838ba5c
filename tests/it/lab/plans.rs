//! Every scenario's demo plan validates, and its steps, run in order on the lab through the
//! sim executors (the engine's own parts stood in for by what they run), walk the lab from
//! X to Y.

use std::time::Duration;

use kongup::exec::{ExecRequest, Executor, ExitOutcome};
use kongup::lb::{Split, TrafficDriver};
use kongup::plan::load::parse_plan;
use kongup::plan::model::{CommandLine, ExecutorSpec, TrafficDriverSpec};
use kongup::plan::steps::{ClusterSide, MigrationsCommand, StepKind};
use kongup::sim::node::Lifecycle;
use kongup::sim::scenarios::demo_plan_yaml;
use kongup::sim::{Lab, LabOptions, Scenario};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn run(lab: &Lab, executor: &str, command: CommandLine) -> (ExitOutcome, String) {
    let (tx, mut rx) = mpsc::channel::<kongup::exec::OutputLine>(16);
    let collector = tokio::spawn(async move {
        let mut text = Vec::new();
        while let Some(line) = rx.recv().await {
            text.push(line.text);
        }
        text.join("\n")
    });
    let outcome = lab
        .executor(executor)
        .run(
            ExecRequest {
                command,
                env: Vec::new(),
                timeout: Duration::from_secs(60),
            },
            tx,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    (outcome, collector.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demo_plan_validates_and_walks_the_lab_from_x_to_y() {
    for scenario in Scenario::ALL {
        let lab = Lab::start(
            scenario,
            LabOptions {
                speed: 500.0,
                ..LabOptions::default()
            },
        )
        .await
        .unwrap();
        let endpoints = lab.endpoints();
        let yaml = demo_plan_yaml(scenario, &endpoints);
        let loaded = match parse_plan(&yaml, &format!("{scenario}.yaml")) {
            Ok(loaded) => loaded,
            Err(errors) => {
                panic!("the {scenario} demo plan does not validate:\n{errors}\n---\n{yaml}")
            }
        };
        let plan = &loaded.plan;
        assert_eq!(plan.from, endpoints.from);
        assert_eq!(plan.to, endpoints.to);
        // Every executor the plan declares is the lab (`local` always exists, unused).
        assert!(
            plan.executors
                .iter()
                .all(|(name, e)| *e == ExecutorSpec::Sim || name == "local"),
            "{scenario}: {:?}",
            plan.executors
        );
        let TrafficDriverSpec::Command(driver) = &plan.traffic.driver else {
            panic!("{scenario}: the demo moves traffic with the lab's command driver");
        };
        assert_eq!(driver.executor.as_deref(), Some("lab"));
        // Every node of the plan is the lab's, at the lab's URLs.
        for node in plan.clusters.x.nodes.iter().chain(&plan.clusters.y.nodes) {
            let lab_node = endpoints
                .nodes
                .iter()
                .find(|n| n.name == node.name)
                .unwrap();
            // Data planes have no Admin API: the plan gives them none.
            assert_eq!(node.admin_url, lab_node.admin);
            assert_eq!(node.proxy_url, lab_node.proxy);
        }

        let first_y = plan.clusters.y.nodes[0].executor.clone().unwrap();
        let y_with_db = plan
            .clusters
            .y
            .nodes
            .iter()
            .find(|n| n.role != kongup::plan::model::Role::DataPlane)
            .and_then(|n| n.executor.clone())
            .unwrap_or(first_y);
        for (phase, step) in loaded.expanded.steps() {
            // What the engine does itself, done here the way it would reach the lab.
            match &step.kind {
                StepKind::Migrations(which) => {
                    // The engine runs them on Y's executor; a plan command would run them twice.
                    assert!(
                        step.commands.is_empty(),
                        "{scenario} {}/{} gives kong migrations commands",
                        phase.name,
                        step.id
                    );
                    let sub = match which {
                        MigrationsCommand::Up => "up",
                        MigrationsCommand::Finish => "finish",
                    };
                    let argv = vec![
                        "kong".into(),
                        "migrations".into(),
                        sub.into(),
                        "--db-timeout".into(),
                        "60".into(),
                    ];
                    let (outcome, text) = run(&lab, &y_with_db, CommandLine::Argv(argv)).await;
                    assert_eq!(
                        outcome,
                        ExitOutcome::Exited(0),
                        "{scenario} {}/{}: {text}",
                        phase.name,
                        step.id
                    );
                }
                StepKind::ShiftTraffic { y_percent, .. } => {
                    let set: Vec<String> = driver
                        .set
                        .iter()
                        .map(|a| {
                            a.replace("{x}", &(100 - y_percent).to_string())
                                .replace("{y}", &y_percent.to_string())
                        })
                        .collect();
                    let (outcome, _) = run(&lab, "lab", CommandLine::Argv(set)).await;
                    assert_eq!(outcome, ExitOutcome::Exited(0));
                    let (_, got) =
                        run(&lab, "lab", CommandLine::Argv(driver.get.clone().unwrap())).await;
                    assert_eq!(got, format!("{} {y_percent}", 100 - y_percent));
                }
                _ => {}
            }
            for command in &step.commands {
                let executor = command
                    .executor
                    .clone()
                    .expect("demo commands name their executor");
                let (outcome, text) = run(&lab, &executor, command.program.clone()).await;
                assert_eq!(
                    outcome,
                    ExitOutcome::Exited(0),
                    "{scenario} {}/{} `{}` on {executor}:\n{text}",
                    phase.name,
                    step.id,
                    command.program.display()
                );
            }
        }

        // Done: X gone, Y serving all the traffic, the schema finished.
        for node in lab.nodes() {
            let expected = match node.cluster {
                ClusterSide::X => Lifecycle::Absent,
                ClusterSide::Y => Lifecycle::Running,
            };
            assert_eq!(node.lifecycle, expected, "{scenario}: {}", node.name);
        }
        assert_eq!(
            lab.traffic_driver().read_split().await.unwrap(),
            Some(Split::to_y(100))
        );
        if let Some(schema) = lab.schema_state(ClusterSide::Y) {
            assert_eq!(schema.pending_total(), 0, "{scenario}");
            let to = lab.topology().to;
            let database = lab
                .topology()
                .nodes
                .iter()
                .find(|n| n.cluster == ClusterSide::Y && n.database.is_some());
            assert!(database.is_some());
            assert!(
                schema.core_generation().is_some(),
                "{scenario}: Y's database is bootstrapped ({to})"
            );
        }
    }
}

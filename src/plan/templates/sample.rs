//! Complete plans built straight from the model, for tests (of the templates and of the
//! modules that act on an expanded plan).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::plan::model::*;
use crate::plan::version::KongVersion;

fn node(name: &str, role: Role, port: u16) -> Node {
    Node {
        name: name.to_string(),
        admin_url: Some(format!("http://127.0.0.1:{port}")),
        status_url: Some(format!("http://127.0.0.1:{}", port + 1)),
        proxy_url: (role != Role::ControlPlane).then(|| format!("http://127.0.0.1:{}", port + 2)),
        role,
        executor: Some("local".to_string()),
    }
}

fn database(name: &str) -> DatabaseSpec {
    DatabaseSpec {
        host: "127.0.0.1".to_string(),
        port: 5432,
        name: name.to_string(),
        user: "kong".to_string(),
        password: Some(SecretRef::Env("KONG_PG_PASSWORD".to_string())),
        tls: Default::default(),
    }
}

fn cluster(prefix: &str, mode: Mode, base_port: u16, db: Option<DatabaseSpec>) -> Cluster {
    let nodes = match mode {
        Mode::Traditional => vec![
            node(&format!("{prefix}-1"), Role::Traditional, base_port),
            node(&format!("{prefix}-2"), Role::Traditional, base_port + 10),
        ],
        Mode::Dbless => vec![node(&format!("{prefix}-1"), Role::Traditional, base_port)],
        Mode::Hybrid => vec![
            node(&format!("{prefix}-cp"), Role::ControlPlane, base_port),
            node(&format!("{prefix}-dp-1"), Role::DataPlane, base_port + 10),
            node(&format!("{prefix}-dp-2"), Role::DataPlane, base_port + 20),
        ],
    };
    Cluster {
        nodes,
        database: db,
    }
}

/// A plan that the loader would accept, for `mode` and `strategy`, from 3.4.1 to 3.4.3.
/// It names a (manual) traffic driver except in traditional in-place, the one case
/// that may leave it out.
pub(crate) fn plan(mode: Mode, strategy: StrategyChoice) -> Plan {
    let fixed = match strategy {
        StrategyChoice::Fixed(s) => Some(s),
        StrategyChoice::Auto { .. } => None,
    };
    let x_db = (mode != Mode::Dbless).then(|| database("kong"));
    let y_db = if fixed.is_some_and(Strategy::y_has_own_database) {
        Some(database("kong_y"))
    } else {
        x_db.clone()
    };
    Plan {
        name: "sample".to_string(),
        from: KongVersion::new(3, 4, 1),
        to: KongVersion::new(3, 4, 3),
        mode,
        database: if mode == Mode::Dbless {
            DatabaseKind::Off
        } else {
            DatabaseKind::Postgres
        },
        edition: None,
        strategy,
        clusters: Clusters {
            x: cluster("x", mode, 18000, x_db),
            y: cluster("y", mode, 19000, y_db),
        },
        admin: AdminAccess::default(),
        executors: BTreeMap::from([("local".to_string(), ExecutorSpec::Local)]),
        traffic: TrafficSpec {
            driver: TrafficDriverSpec::Manual,
            driver_given: fixed.is_none_or(|s| s.shifts_traffic(mode)),
            schedule: vec![1, 5, 25, 50, 100],
            bake: Duration::from_secs(300),
            auto_advance: false,
        },
        gates: GateSpec {
            window: Duration::from_secs(60),
            max_error_ratio: Some(0.01),
            max_p99_ms: Some(500.0),
            max_error_ratio_delta: None,
            max_p99_ratio: Some(1.5),
            min_requests: 100,
            consecutive_breaches: 3,
            on_fail: FailAction::Pause,
        },
        smoke_tests: vec![SmokeTest {
            name: "key-auth rejects anonymous".to_string(),
            method: "GET".to_string(),
            path: "/echo".to_string(),
            headers: BTreeMap::new(),
            secret_headers: BTreeMap::new(),
            body: None,
            expect_status: 401,
            expect_headers: BTreeMap::new(),
            expect_body_contains: None,
        }],
        migrations: MigrationsSpec {
            kong_binary: "kong".to_string(),
            extra_args: vec![],
            db_timeout: 600,
            force: false,
            timeout: Duration::from_secs(3600),
        },
        backup: BackupSpec::default(),
        steps: StepCustomisation::default(),
        command_timeout: Duration::from_secs(300),
        notify: Default::default(),
        rolling: None,
    }
}

pub(crate) fn argv(words: &[&str]) -> CommandSpec {
    CommandSpec {
        program: CommandLine::Argv(words.iter().map(|w| w.to_string()).collect()),
        executor: None,
        timeout: None,
        node: None,
    }
}

pub(crate) fn select(id: &str) -> StepSelector {
    StepSelector {
        phase: None,
        id: id.to_string(),
    }
}

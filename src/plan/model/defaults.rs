//! What a plan gets for what it leaves out, as `docs/plan.md` documents each key. The
//! loader takes these when a key is absent; nothing else decides a default.

use std::time::Duration;

use super::{
    DatabaseKind, FailAction, GateSpec, MigrationsSpec, Mode, TrafficDriverSpec, TrafficSpec,
};

/// The limit of a command that sets none (`command_timeout`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Y's percentage per traffic stage (`traffic.schedule`).
pub const SCHEDULE: [u8; 5] = [1, 5, 25, 50, 100];
/// How long each traffic stage is watched (`traffic.bake`).
pub const BAKE: Duration = Duration::from_secs(5 * 60);
/// The window the gates' figures are computed over (`gates.window`).
pub const GATE_WINDOW: Duration = Duration::from_secs(60);
/// Y's 5xx ratio minus X's (`gates.max_error_ratio_delta`).
pub const MAX_ERROR_RATIO_DELTA: f64 = 0.01;
/// Y's p99 over X's (`gates.max_p99_ratio`).
pub const MAX_P99_RATIO: f64 = 1.5;
/// Fewer requests in the window give no verdict (`gates.min_requests`).
pub const MIN_REQUESTS: u64 = 100;
/// Breaches in a row that make a failure (`gates.consecutive_breaches`).
pub const CONSECUTIVE_BREACHES: u32 = 3;
/// What a failed gate does (`gates.on_fail`).
pub const ON_FAIL: FailAction = FailAction::Pause;
/// `kong migrations --db-timeout`, in seconds (`migrations.db_timeout`).
pub const DB_TIMEOUT_SECS: u32 = 600;
/// kongup's own limit per `kong migrations` command (`migrations.timeout`).
pub const MIGRATIONS_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The kong binary on Y's executor (`migrations.kong_binary`).
pub const KONG_BINARY: &str = "kong";
/// The nginx binary of the nginx traffic driver (`traffic.driver.binary`).
pub const NGINX_BINARY: &str = "nginx";
/// The rule of a Gateway API HTTPRoute the kubernetes driver sets
/// (`traffic.driver.httproute.rule`).
pub const HTTPROUTE_RULE: usize = 0;
/// A cluster database's name and user (`clusters.*.database.name`, `.user`).
pub const DATABASE_NAME: &str = "kong";
pub const DATABASE_USER: &str = "kong";
/// A smoke test's method (`smoke_tests[].method`).
pub const SMOKE_TEST_METHOD: &str = "GET";
/// The executor every plan has without declaring it: this machine. Nodes and commands
/// that name no executor run there.
pub const LOCAL_EXECUTOR: &str = "local";

impl Mode {
    /// The database a plan in this mode has when it names none: DB-less nodes have none.
    pub fn default_database(self) -> DatabaseKind {
        match self {
            Mode::Dbless => DatabaseKind::Off,
            Mode::Traditional | Mode::Hybrid => DatabaseKind::Postgres,
        }
    }
}

impl DatabaseKind {
    /// The port of a cluster database that names none (`clusters.*.database.port`).
    pub fn default_port(self) -> u16 {
        match self {
            DatabaseKind::Cassandra => 9042,
            DatabaseKind::Postgres | DatabaseKind::Off => 5432,
        }
    }
}

/// The gates of a plan without a `gates` section: the relative gates at their defaults,
/// the absolute ones off.
impl Default for GateSpec {
    fn default() -> Self {
        GateSpec {
            window: GATE_WINDOW,
            max_error_ratio: None,
            max_p99_ms: None,
            max_error_ratio_delta: Some(MAX_ERROR_RATIO_DELTA),
            max_p99_ratio: Some(MAX_P99_RATIO),
            min_requests: MIN_REQUESTS,
            consecutive_breaches: CONSECUTIVE_BREACHES,
            on_fail: ON_FAIL,
        }
    }
}

/// The traffic of a plan without a `traffic` section: no driver named (the manual one
/// stands in), the default schedule and bake, no auto-advance.
impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            driver: TrafficDriverSpec::Manual,
            driver_given: false,
            schedule: SCHEDULE.to_vec(),
            bake: BAKE,
            auto_advance: false,
        }
    }
}

/// `kong migrations` of a plan without a `migrations` section.
impl Default for MigrationsSpec {
    fn default() -> Self {
        MigrationsSpec {
            kong_binary: KONG_BINARY.to_string(),
            extra_args: Vec::new(),
            db_timeout: DB_TIMEOUT_SECS,
            force: false,
            timeout: MIGRATIONS_TIMEOUT,
        }
    }
}

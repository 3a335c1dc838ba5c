use std::time::Duration;

use super::*;
use crate::plan::model::*;
use crate::plan::steps::PhaseName;
use crate::plan::version::KongVersion;

/// The smallest valid plan: traditional, in place (no traffic driver needed).
const MINIMAL: &str = "\
name: minimal
from: 3.4.3
to: 3.5.0
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        proxy_url: http://127.0.0.1:8000
  y:
    nodes:
      - name: y1
        proxy_url: http://127.0.0.1:9000
";

fn errors(source: &str) -> Vec<Diagnostic> {
    match parse_plan(source, "plan.yaml") {
        Ok(_) => panic!("the plan was accepted:\n{source}"),
        Err(errors) => errors.diagnostics,
    }
}

/// The only diagnostic of `source`; fails when there are more or none.
fn single(source: &str) -> Diagnostic {
    let found = errors(source);
    assert_eq!(
        found.len(),
        1,
        "expected one error, got:\n{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    found.into_iter().next().unwrap()
}

fn assert_at(diagnostic: &Diagnostic, line: usize, column: usize, needle: &str) {
    assert_eq!(
        (diagnostic.line, diagnostic.column),
        (line, column),
        "wrong position for: {diagnostic}"
    );
    assert!(
        diagnostic.message.contains(needle),
        "`{needle}` not in: {diagnostic}"
    );
}

/// The 1-based column where `needle` first appears on the 1-based `line` of `source`.
fn col(source: &str, line: usize, needle: &str) -> usize {
    let text = source.lines().nth(line - 1).expect("no such line");
    text.find(needle)
        .unwrap_or_else(|| panic!("`{needle}` is not on line {line}: {text}"))
        + 1
}

fn hint(diagnostic: &Diagnostic) -> &str {
    diagnostic.hint.as_deref().unwrap_or("")
}

/// MINIMAL with extra top-level text appended.
fn minimal_with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn minimal_plan_loads_with_documented_defaults() {
    let loaded = parse_plan(MINIMAL, "plan.yaml").unwrap();
    let plan = &loaded.plan;
    assert_eq!(plan.name, "minimal");
    assert_eq!(plan.from, KongVersion::new(3, 4, 3));
    assert_eq!(plan.database, DatabaseKind::Postgres);
    assert_eq!(plan.strategy, StrategyChoice::Fixed(Strategy::InPlace));
    assert_eq!(plan.clusters.x.nodes[0].role, Role::Traditional);
    assert_eq!(plan.command_timeout, Duration::from_secs(300));
    assert_eq!(plan.executors.get("local"), Some(&ExecutorSpec::Local));
    assert_eq!(plan.traffic.driver, TrafficDriverSpec::Manual);
    assert_eq!(plan.traffic.schedule, vec![1, 5, 25, 50, 100]);
    assert_eq!(plan.traffic.bake, Duration::from_secs(300));
    assert_eq!(plan.gates.window, Duration::from_secs(60));
    assert_eq!(plan.gates.max_error_ratio, None);
    // In place: no X serves beside Y, so the relative gates are off.
    assert_eq!(plan.gates.max_error_ratio_delta, None);
    assert_eq!(plan.gates.max_p99_ratio, None);
    assert_eq!(plan.gates.min_requests, 100);
    assert_eq!(plan.gates.consecutive_breaches, 3);
    assert_eq!(plan.gates.on_fail, FailAction::Pause);
    assert_eq!(plan.migrations.kong_binary, "kong");
    assert_eq!(plan.migrations.db_timeout, 600);
    assert_eq!(plan.migrations.timeout, Duration::from_secs(3600));
    assert_eq!(plan.steps, StepCustomisation::default());
    assert_eq!(loaded.source, MINIMAL);
    assert_eq!(
        loaded.source_sha256,
        hex::encode(Sha256::digest(MINIMAL.as_bytes()))
    );
    assert_eq!(loaded.source_sha256.len(), 64);
}

#[test]
fn every_example_plan_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if let Err(errors) = load_plan(&path) {
            panic!("{} does not validate:\n{errors}", path.display());
        }
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "dbless-rolling.yaml",
            "hybrid-blue-green.yaml",
            "hybrid-dual-cluster.yaml",
            "hybrid-in-place.yaml",
            "traditional-blue-green.yaml",
            "traditional-dual-cluster.yaml",
            "traditional-in-place.yaml",
        ]
    );
}

#[test]
fn example_plans_read_every_section() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans");
    let plan = load_plan(&dir.join("traditional-dual-cluster.yaml"))
        .unwrap()
        .plan;
    assert_eq!(plan.from, KongVersion::enterprise(3, 4, 3, 12));
    let y_db = plan.clusters.y.database.as_ref().unwrap();
    assert_eq!(
        (y_db.port, y_db.name.as_str(), y_db.user.as_str()),
        (5432, "kong", "kong")
    );
    assert_eq!(
        y_db.password,
        Some(SecretRef::File("/etc/kongup/pg-y.password".into()))
    );
    assert_eq!(
        plan.admin.token,
        Some(SecretRef::Env("KONG_ADMIN_TOKEN".into()))
    );
    assert_eq!(
        plan.executors.get("kong-y-2"),
        Some(&ExecutorSpec::Ssh {
            host: "10.0.2.12".into(),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_file: Some("/home/ops/.ssh/kong_deploy".into()),
        })
    );
    let TrafficDriverSpec::Haproxy(haproxy) = &plan.traffic.driver else {
        panic!("not haproxy: {:?}", plan.traffic.driver)
    };
    assert_eq!(haproxy.y_servers, ["kong-y-1", "kong-y-2"]);
    assert_eq!(plan.traffic.bake, Duration::from_secs(600));
    assert_eq!(plan.gates.on_fail, FailAction::Rollback);
    assert_eq!(plan.gates.max_p99_ms, Some(800.0));
    let with_key = &plan.smoke_tests[1];
    assert_eq!(with_key.method, "GET");
    assert_eq!(
        with_key.secret_headers.get("apikey"),
        Some(&SecretRef::Env("SMOKE_TEST_API_KEY".into()))
    );
    assert!(with_key.headers.is_empty());
    assert_eq!(with_key.expect_body_contains.as_deref(), Some("ok"));
    assert_eq!(plan.migrations.db_timeout, 900);
    let deploy = &plan.steps.overrides[0];
    assert_eq!(
        deploy.step,
        StepSelector {
            phase: None,
            id: "deploy-y".into()
        }
    );
    // One command with no executor: the expansion places it on each Y node.
    assert_eq!(deploy.commands.len(), 1);
    assert_eq!(deploy.commands[0].executor, None);
    assert_eq!(deploy.commands[0].timeout, Some(Duration::from_secs(600)));
    let insert = &plan.steps.inserts[0];
    assert!(matches!(&insert.position, InsertPosition::After(s) if s.id == "backup"));
    assert!(
        matches!(&insert.commands[0].program, CommandLine::Shell(s) if s.contains("create-snapshot"))
    );
    assert_eq!(plan.steps.skips[0].step.id, "review-breaking-changes");
}

#[test]
fn yaml_syntax_error_is_reported_with_its_position() {
    let d = single("name: a\nfrom: [3.4.3\nto: 3.5.0\n");
    assert!(d.message.starts_with("YAML syntax error"), "{d}");
    assert!(d.line >= 2, "{d}");
}

#[test]
fn empty_file_says_so() {
    let d = single("# nothing yet\n");
    assert_at(&d, 1, 1, "empty");
}

#[test]
fn unreadable_file_names_the_file_without_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yaml");
    let errors = load_plan(&missing).unwrap_err();
    let text = errors.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot read the plan file", missing.display())),
        "{text}"
    );
    assert_eq!(errors.diagnostics[0].line, 0);
}

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    let d = single(&MINIMAL.replace(
        "        proxy_url: http://127.0.0.1:9000",
        "        proxy_url: http://127.0.0.1:9000\n        exector: local",
    ));
    assert_at(&d, 15, 9, "unknown key `exector` in `clusters.y.nodes[0]`");
    assert_eq!(hint(&d), "did you mean `executor`?");

    let d = single(&minimal_with("flavour: vanilla\n"));
    assert_at(&d, 15, 1, "unknown key `flavour` in the plan");
    assert!(hint(&d).starts_with("allowed here: name, from, to"), "{d}");
}

#[test]
fn a_key_given_twice_points_at_the_first() {
    let d = single(&minimal_with("name: again\n"));
    assert_at(&d, 15, 1, "`name` is given twice");
    assert!(hint(&d).contains("line 1, column 1"), "{d}");
}

#[test]
fn wrong_types_say_what_was_expected_and_found() {
    let found = errors(&minimal_with(
        "command_timeout: [1]\nsmoke_tests: {a: 1}\ntraffic:\n  auto_advance: \"yes\"\n  driver: {type: manual}\n",
    ));
    assert_eq!(
        found.len(),
        3,
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert_at(
        &found[0],
        15,
        18,
        "`command_timeout` must be a duration, found a list",
    );
    assert_at(
        &found[1],
        16,
        14,
        "`smoke_tests` must be a list, found a mapping",
    );
    assert_at(
        &found[2],
        18,
        17,
        "`traffic.auto_advance` must be true or false, found a string",
    );
    let d = single(&minimal_with("gates:\n  min_requests: \"100\"\n"));
    assert_at(
        &d,
        16,
        17,
        "`gates.min_requests` must be a whole number 0 or more, found `100`",
    );
}

#[test]
fn missing_required_fields_are_named() {
    let found = errors("name: x\nmode: traditional\nstrategy: in-place\n");
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "the plan needs `from`",
            "the plan needs `to`",
            "the plan needs `clusters`"
        ]
    );
    assert!(found.iter().all(|d| (d.line, d.column) == (1, 1)));

    let found = errors(
        &MINIMAL
            .replace("      - name: y1\n", "      - proxy: x\n")
            .replace("        proxy_url: http://127.0.0.1:9000\n", ""),
    );
    // The unknown key and the missing name are two problems of one node.
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unknown key `proxy` in `clusters.y.nodes[0]`",
            "`clusters.y.nodes[0]` needs `name`"
        ]
    );
}

#[test]
fn bad_enum_values_list_the_allowed_ones() {
    let d = single(&MINIMAL.replace("mode: traditional", "mode: tradtional"));
    assert_at(
        &d,
        4,
        7,
        "`mode`: `tradtional` is not one of `traditional`, `dbless` or `hybrid`",
    );
    assert_eq!(hint(&d), "did you mean `traditional`?");
    let d = single(&MINIMAL.replace("strategy: in-place", "strategy: canary"));
    assert_at(
        &d,
        5,
        11,
        "`canary` is not one of `auto`, `dual-cluster`, `in-place`, `blue-green` or `rolling`",
    );
}

#[test]
fn versions_that_do_not_parse_are_errors_at_the_value() {
    let found = errors(
        &MINIMAL
            .replace("from: 3.4.3", "from: 3.4")
            .replace("to: 3.5.0", "to: v3.5.0"),
    );
    assert_eq!(found.len(), 2);
    assert_at(
        &found[0],
        2,
        7,
        "`from`: `3.4` is not a Kong version: it needs three or four numeric parts",
    );
    assert_at(
        &found[1],
        3,
        5,
        "`to`: `v3.5.0` is not a Kong version: every part must be a number",
    );
    assert!(hint(&found[0]).contains("MAJOR.MINOR.PATCH"));
}

#[test]
fn inline_secrets_are_refused_without_repeating_them() {
    let source = MINIMAL.replace(
        "        proxy_url: http://127.0.0.1:8000\n  y:",
        "        proxy_url: http://127.0.0.1:8000\n    database:\n      host: pg\n      password: hunter2-secret\n  y:",
    ) + "admin:\n  token: kong-admin-s3cret\nsmoke_tests:\n  - name: with key\n    path: /\n    headers: {apikey: the-api-key, x-request-id: smoke}\n    expect: {status: 200}\n";
    let found = errors(&source);
    assert_eq!(
        found.len(),
        3,
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert_at(
        &found[0],
        13,
        17,
        "`clusters.x.database.password` holds a secret inline",
    );
    assert_at(&found[1], 19, 10, "`admin.token` holds a secret inline");
    assert_at(
        &found[2],
        23,
        23,
        "`smoke_tests[0].headers.apikey` holds a secret inline",
    );
    let text = PlanErrors { diagnostics: found }.to_string();
    for secret in ["hunter2-secret", "kong-admin-s3cret", "the-api-key"] {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
    assert!(text.contains("{env: VARIABLE}"));
}

#[test]
fn secret_sources_are_checked() {
    let d = single(&minimal_with("admin:\n  token: {env: NOT-A-VAR}\n"));
    assert_at(
        &d,
        16,
        16,
        "`NOT-A-VAR` is not an environment variable name",
    );
    let d = single(&minimal_with("admin:\n  token: {env: A, file: /b}\n"));
    assert_at(&d, 16, 10, "gives both `env` and `file`");
    let found = errors(&minimal_with("admin:\n  token: {vault: x}\n"));
    assert_eq!(found.len(), 2);
    assert_at(&found[0], 16, 10, "`admin.token` needs `env` or `file`");
    assert_at(&found[1], 16, 11, "unknown key `vault` in `admin.token`");
    let plan = parse_plan(
        &minimal_with("admin:\n  token: {file: /etc/kongup/token}\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(
        plan.admin.token,
        Some(SecretRef::File("/etc/kongup/token".into()))
    );
}

#[test]
fn durations_use_humantime_and_need_a_unit() {
    let d = single(&minimal_with("command_timeout: 30\n"));
    assert_at(&d, 15, 18, "`command_timeout`: `30` is not a duration");
    assert!(hint(&d).contains("needs its unit"));
    let d = single(&minimal_with("command_timeout: 0s\n"));
    assert_at(&d, 15, 18, "must be longer than zero");
    let plan = parse_plan(&minimal_with("command_timeout: 1h 30m\n"), "p")
        .unwrap()
        .plan;
    assert_eq!(plan.command_timeout, Duration::from_secs(5400));
}

#[test]
fn strategy_must_fit_the_mode() {
    let d = single(&MINIMAL.replace("strategy: in-place", "strategy: rolling"));
    assert_at(
        &d,
        5,
        11,
        "strategy `rolling` does not fit mode `traditional`",
    );

    let dbless = MINIMAL
        .replace("mode: traditional", "mode: dbless")
        .replace("strategy: in-place", "strategy: dual-cluster");
    let d = single(&dbless);
    assert_at(
        &d,
        5,
        11,
        "strategy `dual-cluster` does not fit mode `dbless`",
    );
    assert!(hint(&d).contains("`rolling`"));

    let d = single(&hybrid_plan().replace("strategy: in-place", "strategy: rolling"));
    assert_at(&d, 5, 11, "strategy `rolling` does not fit mode `hybrid`");
    assert!(hint(&d).contains("data planes always roll"));
}

#[test]
fn auto_needs_spare_capacity_and_nothing_else_takes_it() {
    let d = single(&MINIMAL.replace("strategy: in-place", "strategy: auto"));
    assert_at(
        &d,
        5,
        11,
        "strategy `auto` needs `spare_capacity: true` or `false`",
    );
    let d = single(&minimal_with("spare_capacity: true\n"));
    assert_at(
        &d,
        15,
        1,
        "`spare_capacity` is only read with `strategy: auto`",
    );
    let plan = parse_plan(
        &MINIMAL.replace(
            "strategy: in-place",
            "strategy: auto\nspare_capacity: false",
        ),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(
        plan.strategy,
        StrategyChoice::Auto {
            spare_capacity: false
        }
    );
}

#[test]
fn auto_with_spare_capacity_chooses_dual_cluster_which_needs_a_y_database() {
    let d = single(&MINIMAL.replace(
        "strategy: in-place",
        "strategy: auto\nspare_capacity: true\ntraffic:\n  driver: {type: manual}",
    ));
    assert_at(&d, 14, 3, "dual-cluster gives Y its own database");
}

#[test]
fn unsupported_paths_are_refused_at_the_target_version() {
    let d = single(&MINIMAL.replace("to: 3.5.0", "to: 3.3.0"));
    assert_at(&d, 3, 5, "no upgrade path from 3.4.3 to 3.3.0");
    let cassandra = MINIMAL
        .replace(
            "mode: traditional",
            "mode: traditional\ndatabase: cassandra",
        )
        .replace("from: 3.4.3", "from: 3.2.1")
        .replace("to: 3.5.0", "to: 3.4.1");
    let d = single(&cassandra);
    assert_at(
        &d,
        3,
        5,
        "no upgrade path from 3.2.1 to 3.4.1: Kong removed Cassandra support in 3.4.0",
    );
}

#[test]
fn a_path_with_mandatory_stops_takes_one_plan_per_hop() {
    let d = single(
        &MINIMAL
            .replace("from: 3.4.3", "from: 1.5.0")
            .replace("to: 3.5.0", "to: 3.4.0"),
    );
    assert_at(
        &d,
        3,
        5,
        "1.5.0 cannot go straight to 3.4.0: the upgrade must stop at 2.8.1 first",
    );
    assert!(hint(&d).contains("one plan per hop: 1.5.0 -> 2.8.1"), "{d}");
}

#[test]
fn blue_green_below_2_8_2_is_refused_in_every_mode() {
    let source = MINIMAL
        .replace("from: 3.4.3", "from: 2.8.1")
        .replace("to: 3.5.0", "to: 2.8.4")
        .replace(
            "strategy: in-place",
            "strategy: blue-green\ntraffic: {driver: {type: manual}}",
        );
    let d = single(&source);
    assert_at(
        &d,
        5,
        11,
        "strategy `blue-green` cannot be used here: blue-green needs Kong 2.8.2 or later",
    );
    // Hybrid control planes too (docs/plan.md once said "in traditional mode" only).
    let source = hybrid_plan()
        .replace("from: 3.4.3", "from: 2.8.1")
        .replace("to: 3.5.0", "to: 2.8.4")
        .replace("strategy: in-place", "strategy: blue-green");
    let d = single(&source);
    assert_at(
        &d,
        5,
        11,
        "strategy `blue-green` cannot be used here: blue-green needs Kong 2.8.2 or later",
    );
}

#[test]
fn the_y_database_follows_the_strategy() {
    let d = single(&MINIMAL.replace(
        "strategy: in-place",
        "strategy: dual-cluster\ntraffic: {driver: {type: manual}}",
    ));
    assert_at(
        &d,
        12,
        3,
        "dual-cluster gives Y its own database, and `clusters.y` has no `database`",
    );
    assert!(hint(&d).contains("X's backup is restored into it"));
    let with_y_db = MINIMAL.to_string() + "    database: {host: pg-y}\n";
    let d = single(&with_y_db);
    assert_at(
        &d,
        15,
        5,
        "`clusters.y.database`: in-place reuses X's database",
    );
}

#[test]
fn database_off_exactly_in_dbless_mode() {
    let d = single(&MINIMAL.replace("mode: traditional", "mode: traditional\ndatabase: off"));
    assert_at(&d, 5, 11, "database `off` does not fit mode `traditional`");
    let dbless = MINIMAL
        .replace("mode: traditional", "mode: dbless\ndatabase: postgres")
        .replace(
            "strategy: in-place",
            "strategy: rolling\ntraffic: {driver: {type: manual}}",
        );
    let d = single(&dbless);
    assert_at(&d, 5, 11, "database `postgres` does not fit mode `dbless`");
    let dbless_with_db = MINIMAL
        .replace("mode: traditional", "mode: dbless")
        .replace(
            "strategy: in-place",
            "strategy: rolling\ntraffic: {driver: {type: manual}}",
        )
        + "    database: {host: pg}\n";
    let d = single(&dbless_with_db);
    assert_at(
        &d,
        16,
        5,
        "`clusters.y.database`: dbless nodes have no database",
    );
    let hybrid_off = hybrid_plan().replace("mode: hybrid", "mode: hybrid\ndatabase: off");
    let d = single(&hybrid_off);
    assert!(
        hint(&d).contains("hybrid control planes keep the configuration in a database"),
        "{d}"
    );
}

/// A valid hybrid plan: one CP and one DP per cluster, the CPs in place.
fn hybrid_plan() -> String {
    "\
name: hybrid
from: 3.4.3
to: 3.5.0
mode: hybrid
strategy: in-place
clusters:
  x:
    nodes:
      - {name: cp-x, role: control_plane, admin_url: http://10.0.0.1:8001}
      - {name: dp-x, role: data_plane, proxy_url: http://10.0.0.2:8000}
  y:
    nodes:
      - {name: cp-y, role: control_plane, admin_url: http://10.0.0.3:8001}
      - {name: dp-y, role: data_plane, proxy_url: http://10.0.0.4:8000}
traffic:
  driver: {type: manual}
"
    .to_string()
}

#[test]
fn hybrid_plan_loads() {
    let plan = parse_plan(&hybrid_plan(), "p").unwrap().plan;
    assert_eq!(plan.clusters.y.nodes[1].role, Role::DataPlane);
    assert_eq!(plan.database, DatabaseKind::Postgres);
}

#[test]
fn a_data_plane_with_an_admin_url_is_accepted_with_a_warning() {
    let source = hybrid_plan().replace(
        "{name: dp-y, role: data_plane, proxy_url",
        "{name: dp-y, role: data_plane, admin_url: http://10.0.0.4:8001, proxy_url",
    );
    let loaded = parse_plan(&source, "p.yaml").unwrap();
    let warning = loaded
        .expanded
        .warnings
        .iter()
        .find(|w| w.contains("dp-y"))
        .unwrap_or_else(|| panic!("no warning names dp-y: {:?}", loaded.expanded.warnings));
    let column = col(&source, 14, "admin_url");
    assert!(
        warning.starts_with(&format!(
            "p.yaml:14:{column}: `clusters.y.nodes[1].admin_url`: data plane dp-y has no Admin API"
        )),
        "{warning}"
    );
    assert!(warning.contains("/clustering/data-planes"), "{warning}");
    assert!(warning.contains("status_url"), "{warning}");
    // Control planes' admin_urls are what kongup reads data planes through: no warning.
    let plain = parse_plan(&hybrid_plan(), "p.yaml").unwrap();
    assert!(
        !plain
            .expanded
            .warnings
            .iter()
            .any(|w| w.contains("no Admin API")),
        "{:?}",
        plain.expanded.warnings
    );
}

#[test]
fn roles_must_fit_the_mode() {
    let d = single(&MINIMAL.replace(
        "      - name: x1\n",
        "      - name: x1\n        role: control_plane\n",
    ));
    assert_at(
        &d,
        10,
        15,
        "role `control_plane` belongs to hybrid mode, and this plan's mode is `traditional`",
    );

    let source = hybrid_plan().replace(
        "{name: dp-y, role: data_plane",
        "{name: dp-y, role: traditional",
    );
    let d = single(&source);
    assert_at(
        &d,
        14,
        col(&source, 14, "traditional"),
        "a hybrid node is a `control_plane` or a `data_plane`, not `traditional`",
    );

    let found = errors(&hybrid_plan().replace("{name: dp-x, role: data_plane, ", "{name: dp-x, "));
    assert_eq!(
        found.len(),
        1,
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert_at(
        &found[0],
        10,
        9,
        "`clusters.x.nodes[1]` needs `role` in hybrid mode",
    );

    let d = single(&hybrid_plan().replace(
        "      - {name: dp-y, role: data_plane, proxy_url: http://10.0.0.4:8000}\n",
        "",
    ));
    assert_at(&d, 12, 5, "`clusters.y` has no `data_plane` node");
}

#[test]
fn a_rolling_upgrade_needs_a_traffic_driver() {
    let dbless = MINIMAL
        .replace("mode: traditional", "mode: dbless")
        .replace("strategy: in-place", "strategy: rolling");
    let d = single(&dbless);
    assert_at(
        &d,
        5,
        11,
        "a dbless upgrade (its nodes roll) moves traffic from X to Y, and the plan has no `traffic.driver`",
    );
    assert!(hint(&d).contains("`manual`"));

    let d = single(&hybrid_plan().replace(
        "traffic:\n  driver: {type: manual}\n",
        "traffic:\n  bake: 1m\n",
    ));
    assert_at(&d, 15, 1, "a hybrid upgrade (its nodes roll) moves traffic");

    let blue_green = MINIMAL.replace("strategy: in-place", "strategy: blue-green");
    let d = single(&blue_green);
    assert_at(&d, 5, 11, "strategy `blue-green` moves traffic from X to Y");
}

#[test]
fn an_in_place_plan_with_a_traffic_driver_gets_a_step_that_sends_traffic_to_y() {
    let steps = |source: &str| -> (bool, Vec<String>) {
        let loaded = parse_plan(source, "plan.yaml").unwrap();
        let ids = loaded.expanded.phases[0]
            .steps
            .iter()
            .map(|s| s.id.clone())
            .collect();
        (loaded.plan.traffic.driver_given, ids)
    };
    // No driver: Y answers on X's addresses.
    let (given, ids) = steps(MINIMAL);
    assert!(!given);
    assert!(!ids.iter().any(|id| id == "switch-traffic"));
    // A `traffic` section without a driver is still no driver.
    let (given, _) = steps(&minimal_with("traffic:\n  bake: 1m\n"));
    assert!(!given);
    // Any driver, `manual` included, says Y runs elsewhere.
    for driver in ["{type: manual}", "{type: command, set: [split, \"{y}\"]}"] {
        let (given, ids) = steps(&minimal_with(&format!("traffic:\n  driver: {driver}\n")));
        assert!(given, "{driver}");
        let start = ids.iter().position(|id| id == "start-y").unwrap();
        assert_eq!(
            ids[start + 1..start + 3],
            ["staging-tests", "switch-traffic"],
            "{driver}"
        );
    }
}

#[test]
fn referenced_executors_must_exist() {
    let source = MINIMAL.replace(
        "      - name: x1\n",
        "      - name: x1\n        executor: sssh-x1\n",
    ) + "executors:\n  ssh-x1: {type: ssh, host: 10.0.0.1}\nsteps:\n  stop-x:\n    commands:\n      - {run: [true], executor: nowhere}\n      - {run: [true], executor: local}\n";
    let found = errors(&source);
    assert_eq!(
        found.len(),
        2,
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert_at(
        &found[0],
        10,
        19,
        "`clusters.x.nodes[0].executor` names executor `sssh-x1`, which is not defined",
    );
    assert_eq!(hint(&found[0]), "did you mean `ssh-x1`?");
    assert_at(
        &found[1],
        21,
        col(&source, 21, "nowhere"),
        "`steps.stop-x.commands[0].executor` names executor `nowhere`",
    );
    assert!(
        hint(&found[1]).contains("`local` or `ssh-x1`"),
        "{}",
        found[1]
    );

    let command_driver = MINIMAL.replace("strategy: in-place", "strategy: blue-green")
        + "traffic:\n  driver: {type: command, set: [split, \"{y}\"], executor: lb}\n";
    let d = single(&command_driver);
    assert_at(
        &d,
        16,
        col(&command_driver, 16, "lb"),
        "`traffic.driver.executor` names executor `lb`",
    );
}

#[test]
fn the_traffic_schedule_rises_to_100() {
    let with = |schedule: &str| {
        MINIMAL.replace("strategy: in-place", "strategy: blue-green")
            + &format!("traffic:\n  driver: {{type: manual}}\n  schedule: {schedule}\n")
    };
    let source = with("[10, 5, 100]");
    let d = single(&source);
    assert_at(
        &d,
        17,
        col(&source, 17, "5,"),
        "`traffic.schedule[1]`: 5 does not come after 10",
    );
    let source = with("[0, 100]");
    let d = single(&source);
    assert_at(
        &d,
        17,
        col(&source, 17, "0,"),
        "`traffic.schedule[0]` must be a whole number from 1 to 100, found `0`",
    );
    let source = with("[10, 50]");
    let d = single(&source);
    assert_at(
        &d,
        17,
        col(&source, 17, "50"),
        "`traffic.schedule` must end at 100",
    );
    let source = with("[]");
    let d = single(&source);
    assert_at(
        &d,
        17,
        col(&source, 17, "[]"),
        "`traffic.schedule` is empty",
    );
    let plan = parse_plan(&with("[100]"), "p").unwrap().plan;
    assert_eq!(plan.traffic.schedule, [100]);
}

#[test]
fn gate_thresholds_are_ratios_or_positive_and_null_turns_one_off() {
    let found = errors(&minimal_with(
        "gates:\n  max_error_ratio: 1.5\n  max_error_ratio_delta: -0.1\n  max_p99_ms: 0\n  max_p99_ratio: abc\n  consecutive_breaches: 0\n",
    ));
    assert_eq!(
        found.len(),
        5,
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert_at(
        &found[0],
        16,
        20,
        "`gates.max_error_ratio` is a ratio from 0 to 1, found 1.5",
    );
    assert_at(
        &found[1],
        17,
        26,
        "`gates.max_error_ratio_delta` is a ratio from 0 to 1, found -0.1",
    );
    assert_at(&found[2], 18, 15, "`gates.max_p99_ms` must be more than 0");
    assert_at(
        &found[3],
        19,
        18,
        "`gates.max_p99_ratio` must be a number, found a string",
    );
    assert_at(
        &found[4],
        20,
        25,
        "`gates.consecutive_breaches` must be a whole number 1 or more, found `0`",
    );
    let plan = parse_plan(
        &blue_green_with("gates:\n  max_p99_ratio: null\n  max_error_ratio: 0\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(plan.gates.max_p99_ratio, None);
    assert_eq!(plan.gates.max_error_ratio, Some(0.0));
    assert_eq!(plan.gates.max_error_ratio_delta, Some(0.01));
}

/// MINIMAL as blue-green (X serves beside Y) with a manual traffic driver, plus `extra`.
fn blue_green_with(extra: &str) -> String {
    format!(
        "{}traffic:\n  driver:\n    type: manual\n{extra}",
        MINIMAL.replace("strategy: in-place", "strategy: blue-green")
    )
}

#[test]
fn blue_green_keeps_the_relative_gates_by_default() {
    let plan = parse_plan(&blue_green_with(""), "p").unwrap().plan;
    assert_eq!(plan.gates.max_error_ratio_delta, Some(0.01));
    assert_eq!(plan.gates.max_p99_ratio, Some(1.5));
}

/// Traditional in place, X is stopped before Y starts: a relative gate could only ever
/// be inconclusive, so setting one is an error at its line; null is fine.
#[test]
fn in_place_refuses_a_relative_gate_it_could_never_judge() {
    let d = single(&minimal_with(
        "gates:\n  max_error_ratio: 0.01\n  max_p99_ratio: 1.2\n",
    ));
    assert_eq!((d.line, d.column), (17, 18), "{d:?}");
    assert!(
        d.message.contains(
            "`gates.max_p99_ratio` compares Y with X, and in place X is stopped before Y serves"
        ),
        "{d:?}"
    );
    let plan = parse_plan(
        &minimal_with("gates:\n  max_p99_ratio: null\n  max_error_ratio_delta: null\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(plan.gates.max_p99_ratio, None);
}

#[test]
fn node_names_are_unique_across_clusters() {
    let d = single(&MINIMAL.replace("name: y1", "name: x1"));
    assert_at(&d, 13, 15, "node name `x1` is used twice");
    assert!(hint(&d).contains("line 9, column 15"));
}

#[test]
fn urls_must_be_http_or_https() {
    let found = errors(
        &MINIMAL
            .replace("http://127.0.0.1:8000", "127.0.0.1:8000")
            .replace("http://127.0.0.1:9000", "tcp://kong:9000"),
    );
    assert_eq!(found.len(), 2);
    assert_at(
        &found[0],
        10,
        20,
        "`clusters.x.nodes[0].proxy_url`: `127.0.0.1:8000` is not",
    );
    assert_at(
        &found[1],
        14,
        20,
        "`tcp://kong:9000` is not an http or https URL (scheme `tcp`)",
    );
}

#[test]
fn executors_local_cannot_be_redefined_as_another_type() {
    let source =
        minimal_with("executors:\n  kong-x: {type: local}\n  local: {type: ssh, host: 10.0.0.9}\n");
    let d = single(&source);
    assert_at(
        &d,
        17,
        3,
        "`executors.local` redefines kongup's own executor `local` (this machine) as type `ssh`",
    );
    assert!(hint(&d).contains("name it differently"), "{d}");
    // Its own mistakes are reported with it.
    let found = errors(&minimal_with("executors:\n  local: {type: kubectl}\n"));
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(found.len(), 2, "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("as type `kubectl`")));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("needs `pod` or `selector`"))
    );
    // Declaring it as what it is changes nothing.
    let loaded = parse_plan(
        &minimal_with("executors:\n  local: {type: local}\n"),
        "plan.yaml",
    )
    .unwrap();
    assert_eq!(loaded.plan.executors["local"], ExecutorSpec::Local);
}

#[test]
fn executors_take_keys_by_type() {
    let found = errors(&minimal_with(
        "executors:\n  a: {type: kubectl, namespace: kong}\n  b: {type: ssh, user: x, pod: y}\n  c: {type: telnet}\n  d: {type: kubectl, pod: p, selector: s}\n",
    ));
    let summary: Vec<(usize, &str)> = found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (16, "`executors.a` needs `pod` or `selector`"),
            (17, "`executors.b` needs `host`"),
            (17, "unknown key `pod` in `executors.b`"),
            (
                18,
                "`executors.c.type`: `telnet` is not one of `local`, `ssh`, `kubectl`, `ansible` or `sim`"
            ),
            (
                19,
                "`executors.d` gives both `pod` and `selector`; keep one"
            ),
        ]
    );
    let plan = parse_plan(
        &minimal_with("executors:\n  k: {type: kubectl, context: prod, selector: app=kong, container: proxy}\n  lab: {type: sim}\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(
        plan.executors["k"],
        ExecutorSpec::Kubectl {
            context: Some("prod".into()),
            namespace: None,
            target: KubectlTarget::Selector("app=kong".into()),
            container: Some("proxy".into()),
        }
    );
    assert_eq!(plan.executors["lab"], ExecutorSpec::Sim);
}

#[test]
fn ansible_executors_name_an_inventory_and_a_playbook_or_a_module() {
    let found = errors(&minimal_with(
        "executors:\n  a: {type: ansible, module: shell}\n  b: {type: ansible, inventory: i.ini}\n  c: {type: ansible, inventory: i.ini, module: shell, playbook: p.yml}\n  d: {type: ansible, inventory: i.ini, module: shell, args: [--limit, dp-1]}\n  e: {type: ansible, inventory: i.ini, module: shell, forks: 0, become: yes}\n",
    ));
    let summary: Vec<(usize, &str)> = found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(summary.len(), 6, "{summary:#?}");
    assert_eq!(summary[0], (16, "`executors.a` needs `inventory`"));
    assert_eq!(
        summary[1],
        (17, "`executors.b` needs `playbook` or `module`")
    );
    assert_eq!(
        summary[2],
        (
            18,
            "`executors.c` gives both `playbook` and `module`; keep one"
        )
    );
    assert_eq!(
        summary[3],
        (
            19,
            "`executors.d.args` gives `--limit`, which kongup sets itself"
        )
    );
    assert!(
        summary[4].1.starts_with("`executors.e.forks`"),
        "{summary:#?}"
    );
    assert!(
        summary[5].1.starts_with("`executors.e.become`"),
        "{summary:#?}"
    );

    let plan = parse_plan(
        &minimal_with("executors:\n  fleet: {type: ansible, inventory: inv/prod.ini, playbook: kong.yml, forks: 50, user: deploy, become: true, args: [--timeout, '20']}\n  adhoc: {type: ansible, inventory: inv/prod.ini, module: shell}\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(
        plan.executors["fleet"],
        ExecutorSpec::Ansible(AnsibleSpec {
            inventory: "inv/prod.ini".into(),
            run: AnsibleRun::Playbook("kong.yml".into()),
            forks: Some(50),
            user: Some("deploy".into()),
            become_root: true,
            args: vec!["--timeout".into(), "20".into()],
        })
    );
    assert_eq!(
        plan.executors["adhoc"],
        ExecutorSpec::Ansible(AnsibleSpec {
            inventory: "inv/prod.ini".into(),
            run: AnsibleRun::Module("shell".into()),
            forks: None,
            user: None,
            become_root: false,
            args: Vec::new(),
        })
    );
}

#[test]
fn traffic_drivers_are_read_and_checked() {
    let base = MINIMAL.replace("strategy: in-place", "strategy: blue-green");
    let with = |driver: &str| format!("{base}traffic:\n  driver: {driver}\n");

    let source = with("{type: command, set: [/usr/local/bin/split]}");
    let d = single(&source);
    assert_at(
        &d,
        16,
        col(&source, 16, "[/usr"),
        "never mentions `{x}` or `{y}`",
    );
    let source = with("{type: haproxy, socket: /s, backend: b, x_servers: [a], y_servers: []}");
    let d = single(&source);
    assert_at(
        &d,
        16,
        col(&source, 16, "[]"),
        "`traffic.driver.y_servers` needs at least one server",
    );
    let source = with(
        "{type: nginx, upstream_file: /u, upstream_name: k, x_servers: [a:80], y_servers: [b]}",
    );
    let d = single(&source);
    assert_at(
        &d,
        16,
        col(&source, 16, "[b]"),
        "`traffic.driver.y_servers`: `b` is not host:port",
    );
    let source = with("{type: kubernetes, namespace: kong}");
    let d = single(&source);
    assert_at(
        &d,
        16,
        col(&source, 16, "{"),
        "needs `httproute` or `ingress_canary`",
    );
    let found = errors(&with("{type: haproxy, upstream_name: k}"));
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`traffic.driver` needs `socket`",
            "`traffic.driver` needs `backend`",
            "`traffic.driver` needs `x_servers`",
            "`traffic.driver` needs `y_servers`",
            "unknown key `upstream_name` in `traffic.driver`",
        ]
    );

    let plan = parse_plan(
        &with("{type: kubernetes, context: prod, httproute: {name: kong, x_backend: kong-x, y_backend: kong-y}}"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(
        plan.traffic.driver,
        TrafficDriverSpec::Kubernetes(KubernetesDriver {
            executor: None,
            context: Some("prod".into()),
            namespace: None,
            target: KubernetesTarget::HttpRoute {
                name: "kong".into(),
                rule: 0,
                x_backend: "kong-x".into(),
                y_backend: "kong-y".into(),
            },
        })
    );
    let plan = parse_plan(
        &with(
            "{type: command, set: [split, \"{x}\", \"{y}\"], get: [split, --show], timeout: 20s}",
        ),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(
        plan.traffic.driver,
        TrafficDriverSpec::Command(CommandDriver {
            set: vec!["split".into(), "{x}".into(), "{y}".into()],
            get: Some(vec!["split".into(), "--show".into()]),
            executor: None,
            timeout: Duration::from_secs(20),
        })
    );
    let plan = parse_plan(&with("{type: nginx, upstream_file: /u, upstream_name: k, x_servers: [a:80], y_servers: [b:80]}"), "p")
        .unwrap()
        .plan;
    let TrafficDriverSpec::Nginx(nginx) = plan.traffic.driver else {
        panic!("not nginx")
    };
    assert_eq!((nginx.binary.as_str(), nginx.config), ("nginx", None));
}

#[test]
fn smoke_tests_are_checked() {
    let found = errors(&minimal_with(
        "smoke_tests:\n  - {name: a, path: /, expect: {status: 200}}\n  - {name: a, path: /, expect: {status: 200}}\n  - {name: b, method: FETCH, path: /, expect: {status: 200, colour: red}}\n  - {name: c, path: /}\n",
    ));
    let summary: Vec<(usize, usize, &str)> = found
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                17,
                12,
                "smoke test name `a` is used twice (first at line 16, column 12)"
            ),
            (
                18,
                23,
                "`smoke_tests[2].method`: `FETCH` is not one of `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`"
            ),
            (18, 61, "unknown key `colour` in `smoke_tests[2].expect`"),
            (19, 5, "`smoke_tests[3]` needs `expect`"),
        ]
    );
}

#[test]
fn smoke_tests_need_a_y_proxy() {
    let source = MINIMAL.replace("        proxy_url: http://127.0.0.1:9000\n", "")
        + "smoke_tests:\n  - {name: a, path: /, expect: {status: 401}}\n";
    let d = single(&source);
    assert_at(&d, 14, 1, "smoke tests go through Y's proxies");
}

#[test]
fn migrations_are_read_and_their_timeout_outlasts_the_db_timeout() {
    let d = single(&minimal_with(
        "migrations:\n  db_timeout: 30m\n  timeout: 20m\n",
    ));
    assert_at(
        &d,
        17,
        3,
        "`migrations.timeout` (20m) is not longer than `migrations.db_timeout` (1800s)",
    );
    let plan = parse_plan(
        &minimal_with("migrations:\n  kong_binary: /usr/local/bin/kong\n  extra_args: [-c, /etc/kong/kong.conf]\n  db_timeout: 120\n  force: true\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(plan.migrations.kong_binary, "/usr/local/bin/kong");
    assert_eq!(plan.migrations.extra_args, ["-c", "/etc/kong/kong.conf"]);
    assert_eq!(plan.migrations.db_timeout, 120);
    assert!(plan.migrations.force);
}

#[test]
fn timeouts_in_extra_args_keep_the_lock_longer_than_a_query() {
    // Kong's lock expires after --lock-timeout and is never renewed: shorter than one
    // query, and a second `up` may start beside a running one.
    let d = single(&minimal_with(
        "migrations:\n  extra_args: [--lock-timeout, '60']\n  db_timeout: 600\n",
    ));
    assert_at(
        &d,
        16,
        3,
        "`--lock-timeout 60` in `migrations.extra_args` is shorter than the database timeout (600s)",
    );
    let d = single(&minimal_with(
        "migrations:\n  extra_args: ['--db-timeout=7200']\n  timeout: 1h\n",
    ));
    assert_at(
        &d,
        16,
        3,
        "`migrations.timeout` (1h) is not longer than the database timeout (7200s, `--db-timeout` in `migrations.extra_args`)",
    );
    let d = single(&minimal_with(
        "migrations:\n  extra_args: [--lock-timeout, soon]\n",
    ));
    assert_at(
        &d,
        16,
        3,
        "`--lock-timeout soon` in `migrations.extra_args` is not a whole number of seconds",
    );
    let plan = parse_plan(
        &minimal_with("migrations:\n  extra_args: [--lock-timeout, '900']\n  db_timeout: 600\n"),
        "p",
    )
    .unwrap()
    .plan;
    assert_eq!(plan.migrations.extra_args, ["--lock-timeout", "900"]);
}

#[test]
fn tls_client_cert_and_key_come_together() {
    let d = single(&minimal_with(
        "admin:\n  tls: {client_cert: /c.pem, insecure: true}\n",
    ));
    assert_at(
        &d,
        16,
        9,
        "`admin.tls.client_cert` needs `admin.tls.client_key` beside it",
    );
}

/// MINIMAL with `database` given to X (in place: Y shares it).
fn with_x_database(database: &str) -> String {
    MINIMAL.replace(
        "        proxy_url: http://127.0.0.1:8000\n",
        &format!("        proxy_url: http://127.0.0.1:8000\n    database: {database}\n"),
    )
}

#[test]
fn database_tls_takes_libpqs_modes_and_a_ca_file() {
    let loaded = parse_plan(
        &with_x_database("{host: db, tls: {mode: verify-full, ca_file: /etc/kongup/rds-ca.pem}}"),
        "plan.yaml",
    )
    .unwrap();
    let spec = loaded.plan.clusters.x.database.unwrap();
    assert_eq!(spec.tls.mode, Some(SslMode::VerifyFull));
    assert_eq!(
        spec.tls.ca_file.as_deref(),
        Some(Path::new("/etc/kongup/rds-ca.pem"))
    );
    let without = parse_plan(&with_x_database("{host: db}"), "plan.yaml").unwrap();
    assert_eq!(
        without.plan.clusters.x.database.unwrap().tls,
        DatabaseTls::default(),
        "no tls: libpq's defaults apply when connecting"
    );

    let source = with_x_database("{host: db, tls: {mode: verify_full, cafile: /ca.pem}}");
    let found = errors(&source);
    assert_eq!(found.len(), 2, "both keys are reported: {found:?}");
    assert_at(
        &found[0],
        11,
        col(&source, 11, "verify_full"),
        "is not one of",
    );
    assert_eq!(hint(&found[0]), "did you mean `verify-full`?");
    assert_at(
        &found[1],
        11,
        col(&source, 11, "cafile"),
        "unknown key `cafile`",
    );

    let source = with_x_database("{host: db, tls: {mode: disable, ca_file: /ca.pem}}");
    let d = single(&source);
    assert_at(
        &d,
        11,
        col(&source, 11, "ca_file"),
        "has no use with `mode: disable`",
    );
}

#[test]
fn database_tls_takes_a_client_certificate_with_its_key() {
    let loaded = parse_plan(
        &with_x_database(
            "{host: db, tls: {mode: verify-full, client_cert: /etc/kongup/pg.crt, client_key: /etc/kongup/pg.key}}",
        ),
        "plan.yaml",
    )
    .unwrap();
    let tls = loaded.plan.clusters.x.database.unwrap().tls;
    assert_eq!(
        tls.client_cert.as_deref(),
        Some(Path::new("/etc/kongup/pg.crt"))
    );
    assert_eq!(
        tls.client_key.as_deref(),
        Some(Path::new("/etc/kongup/pg.key"))
    );

    let source = with_x_database("{host: db, tls: {client_cert: /pg.crt}}");
    let d = single(&source);
    assert_at(
        &d,
        11,
        col(&source, 11, "client_cert"),
        "needs `clusters.x.database.tls.client_key` beside it",
    );

    let source = with_x_database(
        "{host: db, tls: {mode: disable, client_cert: /pg.crt, client_key: /pg.key}}",
    );
    let d = single(&source);
    assert_at(
        &d,
        11,
        col(&source, 11, "client_cert"),
        "has no use with `mode: disable`",
    );
}

#[test]
fn step_customisation_is_parsed_and_checked() {
    let source = minimal_with(
        "steps:\n  cloud/stop-x: {commands: []}\n  control-plane/stop-x: {commands: []}\n  Stop_X: {commands: []}\n  start-y: {}\n  stop-x:\n    commands:\n      - {run: systemctl stop kong}\n      - {run: [a], shell: b}\n  insert:\n    - {before: stop-x, after: backup, id: a, title: A}\n    - {after: backup, id: snap, title: Snap, changes: false, irreversible: true}\n  skip:\n    - {step: backup}\n",
    );
    let found = errors(&source);
    let summary: Vec<(usize, usize, &str)> = found
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (16, 3, "`steps.cloud/stop-x`: `cloud` is not a phase"),
            (
                17,
                3,
                "`steps.control-plane/stop-x`: a traditional plan has no phase `control-plane`"
            ),
            (18, 3, "`steps.Stop_X`: `Stop_X` is not a step reference"),
            (19, 12, "`steps.start-y` needs `commands`"),
            (
                22,
                col(&source, 22, "systemctl"),
                "`steps.stop-x.commands[0].run` must be a list of arguments, found a string"
            ),
            (
                23,
                9,
                "`steps.stop-x.commands[1]` gives both `run` and `shell`; keep one"
            ),
            (
                25,
                7,
                "`steps.insert[0]` gives both `before` and `after`; keep one"
            ),
            (
                26,
                col(&source, 26, "irreversible"),
                "`steps.insert[1]` is irreversible but says it changes nothing"
            ),
            (28, 7, "`steps.skip[0]` needs `reason`"),
        ]
    );
    assert_eq!(
        hint(&found[0]),
        "phases are `cluster`, `control-plane` or `data-plane`"
    );
    assert!(hint(&found[4]).contains("[systemctl, stop, kong]"));
}

#[test]
fn step_selectors_take_a_phase_in_hybrid_plans() {
    let source = hybrid_plan()
        + "steps:\n  data-plane/deploy-y:\n    commands: [{run: [deploy-dp], executor: local, timeout: 10m}]\n  insert:\n    - {after: control-plane/backup, id: check-dp-sync, title: Check DP sync, instruction: Look at Kong Manager}\n  skip:\n    - {step: control-plane/review-considerations, reason: done}\n";
    let plan = parse_plan(&source, "p").unwrap().plan;
    assert_eq!(
        plan.steps.overrides[0].step,
        StepSelector {
            phase: Some(PhaseName::DataPlane),
            id: "deploy-y".into()
        }
    );
    assert_eq!(
        plan.steps.inserts[0].position,
        InsertPosition::After(StepSelector {
            phase: Some(PhaseName::ControlPlane),
            id: "backup".into()
        })
    );
    assert!(plan.steps.inserts[0].changes);
    assert!(!plan.steps.inserts[0].irreversible);
    assert_eq!(plan.steps.skips[0].reason, "done");
}

#[test]
fn template_errors_point_at_the_customisation_entry() {
    let source = minimal_with(
        "steps:\n  stop-x: {commands: [{run: [systemctl, stop, kong]}]}\n  no-such-step: {commands: [{run: [\"true\"]}]}\n  insert:\n    - {after: nowhere, id: extra, title: Extra}\n  skip:\n    - {step: missing, reason: why not}\n",
    );
    let found = errors(&source);
    let positions: Vec<(usize, usize)> = found.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        positions,
        [(17, 3), (19, 7), (21, col(&source, 21, "missing"))],
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert!(found[0].message.contains("no-such-step"), "{}", found[0]);
    assert!(found[1].message.contains("nowhere"), "{}", found[1]);
    assert!(found[2].message.contains("missing"), "{}", found[2]);
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let source = "\
name: broken
from: 3.4.x
to: 3.10.0
mode: traditional
strategy: rolling
clusters:
  x:
    nodes:
      - name: a
        admn_url: http://a:8001
  y:
    nodes:
      - name: b
";
    let found = errors(source);
    let summary: Vec<(usize, usize)> = found.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        summary,
        [(2, 7), (5, 11), (10, 9)],
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    assert!(found[0].message.contains("`3.4.x` is not a Kong version"));
    assert!(found[1].message.contains("does not fit mode"));
    assert!(found[2].message.contains("unknown key `admn_url`"));
    assert_eq!(hint(&found[2]), "did you mean `admin_url`?");
    let text = PlanErrors { diagnostics: found }.to_string();
    assert!(
        text.starts_with("plan.yaml:2:7: `from`: `3.4.x` is not a Kong version"),
        "{text}"
    );
}

#[test]
fn the_example_in_the_readme_validates() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```yaml\n")
        .expect("the README has a yaml example")
        + "```yaml\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let loaded = match parse_plan(example, "README.md example") {
        Ok(loaded) => loaded,
        Err(errors) => panic!("the README's example does not validate:\n{errors}"),
    };
    assert_eq!(loaded.expanded.phases[0].strategy, Strategy::DualCluster);
    assert_eq!(loaded.plan.traffic.schedule, [1, 5, 25, 50, 100]);
}

#[test]
fn the_annotated_example_in_the_docs_validates() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.md"))
        .unwrap();
    let start = doc
        .find("```yaml\n")
        .expect("docs/plan.md has a yaml example")
        + "```yaml\n".len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let loaded = match parse_plan(example, "docs/plan.md example") {
        Ok(loaded) => loaded,
        Err(errors) => panic!("the documented example does not validate:\n{errors}"),
    };
    let plan = &loaded.plan;
    assert_eq!(
        plan.strategy,
        StrategyChoice::Auto {
            spare_capacity: true
        }
    );
    assert_eq!(loaded.expanded.phases[0].strategy, Strategy::DualCluster);
    assert_eq!(
        plan.admin.tls.client_key.as_deref(),
        Some(Path::new("/etc/kongup/client.key"))
    );
    let x_database = plan.clusters.x.database.as_ref().unwrap();
    assert_eq!(x_database.tls.mode, Some(SslMode::VerifyFull));
    assert_eq!(
        x_database.tls.ca_file.as_deref(),
        Some(Path::new("/etc/kongup/pg-x-ca.pem"))
    );
    assert_eq!(
        plan.smoke_tests[1]
            .headers
            .get("x-request-id")
            .map(String::as_str),
        Some("kongup-smoke")
    );
    assert_eq!(
        plan.steps.overrides[0].timeout,
        Some(Duration::from_secs(900))
    );
    assert_eq!(plan.backup.keyring.len(), 1);
}

#[test]
fn rollback_steps_cannot_be_selected() {
    // The engine's `rollback` pseudo-phase parses as a phase name, but the rollback plan
    // is derived from the steps that ran: no selector may point into it.
    let source = hybrid_plan()
        + "steps:\n  rollback/stop-x: {commands: [{run: [\"true\"]}]}\n  insert:\n    - {after: rollback/control-plane.stop-x, id: extra, title: Extra}\n  skip:\n    - {step: rollback/traffic-to-x, reason: not needed}\n";
    let found = errors(&source);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`steps.rollback/stop-x`: `rollback/stop-x` names a rollback step, and rollback steps cannot be customised",
            "`steps.insert[0].after`: `rollback/control-plane.stop-x` names a rollback step, and rollback steps cannot be customised",
            "`steps.skip[0].step`: `rollback/traffic-to-x` names a rollback step, and rollback steps cannot be customised",
        ],
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
    for diagnostic in &found {
        assert!(
            hint(diagnostic).contains("customise the forward step instead"),
            "{diagnostic}"
        );
    }

    // Refused even when the mode could not be read (nothing to check the phase against).
    let source = minimal_with("steps:\n  rollback/stop-x: {commands: [{run: [\"true\"]}]}\n")
        .replace("mode: traditional", "mode: tradtional");
    let found = errors(&source);
    assert!(
        found
            .iter()
            .any(|d| d.message.contains("rollback steps cannot be customised")),
        "{}",
        PlanErrors {
            diagnostics: found.clone()
        }
    );
}

#[test]
fn builtin_false_turns_a_steps_automation_off_with_or_without_commands() {
    let loaded = parse_plan(
        &minimal_with(
            "steps:\n  backup:\n    builtin: false\n    commands:\n      - run: [/usr/local/bin/our-backup]\n  preflight:\n    builtin: false\n",
        ),
        "plan.yaml",
    )
    .unwrap();
    let step = |id: &str| {
        loaded
            .expanded
            .steps()
            .map(|(_, s)| s)
            .find(|s| s.id == id)
            .unwrap()
    };
    assert!(!step("backup").builtin);
    assert_eq!(step("backup").commands.len(), 1);
    assert!(!step("preflight").builtin);
    assert!(step("preflight").commands.is_empty());
    assert!(step("stop-x").builtin);
    assert!(
        step("backup")
            .instruction
            .ends_with("only the plan's commands run.")
    );
    assert!(step("preflight").instruction.contains("do it by hand"));

    let missing = single(&minimal_with("steps:\n  backup:\n    timeout: 5m\n"));
    assert!(missing.message.contains("needs `commands`"), "{missing}");
    assert!(hint(&missing).contains("builtin: false"));
    let not_bool = single(&minimal_with("steps:\n  backup:\n    builtin: no-thanks\n"));
    assert!(not_bool.message.contains("builtin"), "{not_bool}");
}

/// MINIMAL on Cassandra, 3.2.1 → 3.3.0 (Cassandra was removed in 3.4).
fn cassandra_plan() -> String {
    MINIMAL
        .replace(
            "mode: traditional",
            "mode: traditional\ndatabase: cassandra",
        )
        .replace("from: 3.4.3", "from: 3.2.1")
        .replace("to: 3.5.0", "to: 3.3.0")
}

#[test]
fn cassandra_steps_that_need_the_built_in_postgresql_work_are_refused_at_database() {
    let source = cassandra_plan();
    let d = single(&source);
    assert_at(
        &d,
        5,
        col(&source, 5, "cassandra"),
        "database cassandra: kongup's built-in backup, restore and migrations checks support \
         PostgreSQL only, and these steps would use them: backup, migrations-up, migrations-finish",
    );
    assert!(
        hint(&d).starts_with(
            "give each of them your own commands and `builtin: false` under `steps:`, e.g. \
             `backup: {commands: [\"…\"], builtin: false}`"
        ),
        "{d}"
    );

    // Two handed to the plan's own commands, one skipped: accepted, and they run that way.
    let own = format!(
        "{source}steps:\n  backup:\n    builtin: false\n    commands: [{{run: [nodetool, snapshot, kong]}}]\n  \
         migrations-up:\n    builtin: false\n    commands: [{{run: [kong, migrations, up]}}]\n  \
         migrations-finish: {{builtin: false}}\n"
    );
    let d = single(&own.replace("  migrations-finish: {builtin: false}\n", ""));
    assert!(
        d.message
            .ends_with("these steps would use them: migrations-finish"),
        "{d}"
    );
    let loaded = parse_plan(&own, "plan.yaml").unwrap();
    let builtin: Vec<(String, bool)> = loaded
        .expanded
        .steps()
        .filter(|(_, s)| s.id.starts_with("backup") || s.id.starts_with("migrations"))
        .map(|(_, s)| (s.id.clone(), s.builtin))
        .collect();
    assert!(builtin.iter().all(|(_, on)| !on), "{builtin:?}");
}

#[test]
fn the_edition_is_read_and_must_fit_the_version_form() {
    assert_eq!(parse_plan(MINIMAL, "plan.yaml").unwrap().plan.edition, None);
    let loaded = parse_plan(&minimal_with("edition: enterprise\n"), "plan.yaml").unwrap();
    assert_eq!(loaded.plan.edition, Some(Edition::Enterprise));
    let loaded = parse_plan(&minimal_with("edition: community\n"), "plan.yaml").unwrap();
    assert_eq!(loaded.plan.edition, Some(Edition::Community));

    let source = minimal_with("edition: oss\n");
    let line = source.lines().count();
    let error = single(&source);
    assert_at(&error, line, col(&source, line, "oss"), "edition");
    assert!(error.message.contains("community"), "{error}");

    let source = minimal_with("edition: community\n").replace("from: 3.4.3\n", "from: 3.4.3.12\n");
    let line = source.lines().count();
    let error = single(&source);
    assert_at(&error, line, 1, "Kong Enterprise version");
}

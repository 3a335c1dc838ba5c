//! `rolling.drain`: how long kongup drains each of a wave's X nodes before its stop, as the
//! loader reads and refuses it.

use std::time::Duration;

use kongup::plan::load::parse_plan;
use kongup::testkit::fleet::hybrid_plan_text;

/// The fleet plan with X (and so its data planes) at `from`.
fn plan(from: &str, rolling: &str) -> String {
    hybrid_plan_text(4, rolling)
        .replace("from: 3.4.3", &format!("from: {from}"))
        .replace("to: 3.5.0", "to: 3.10.0")
}

fn refused(source: &str) -> (usize, String, String) {
    match parse_plan(source, "plan.yaml") {
        Ok(_) => panic!("the plan was accepted:\n{source}"),
        Err(errors) => {
            assert_eq!(errors.diagnostics.len(), 1, "{errors}");
            let d = &errors.diagnostics[0];
            (
                d.line,
                d.message.clone(),
                d.hint.clone().unwrap_or_default(),
            )
        }
    }
}

fn line_of(source: &str, needle: &str) -> usize {
    source.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_drain_on_kong_3_9_is_read() {
    let source = plan("3.9.1", "rolling:\n  waves: [1, 100%]\n  drain: 45s\n");
    let loaded = parse_plan(&source, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let rolling = loaded.plan.rolling.expect("rolling");
    assert_eq!(rolling.drain, Some(Duration::from_secs(45)));
    let without = plan("3.9.1", "rolling:\n  waves: [1, 100%]\n");
    let loaded = parse_plan(&without, "plan.yaml").unwrap();
    assert_eq!(loaded.plan.rolling.unwrap().drain, None);
}

#[test]
fn a_drain_that_is_no_duration_is_refused_at_its_line() {
    let source = plan("3.9.1", "rolling:\n  waves: [1, 100%]\n  drain: soon\n");
    let (line, message, _) = refused(&source);
    assert_eq!(line, line_of(&source, "drain: soon"));
    assert!(message.contains("`rolling.drain`"), "{message}");
}

/// Before 3.9 Kong has no `kong drain` (kong/cmd/drain.lua arrives in 3.9.0): the plan is
/// refused, naming the key and the version.
#[test]
fn a_drain_before_kong_3_9_is_refused() {
    let source = plan("3.4.3", "rolling:\n  waves: [1, 100%]\n  drain: 30s\n");
    let (line, message, hint) = refused(&source);
    assert_eq!(line, line_of(&source, "drain: 30s"), "{message}");
    assert!(
        message.contains(
            "`rolling.drain`: X runs Kong 3.4.3, which has no `kong drain` (3.9.0 and later)"
        ),
        "{message}"
    );
    assert!(hint.contains("stop-x"), "{hint}");
}

/// kongup sees a node drain on its Status API (`/status/ready` 503 `draining`): a node it
/// cannot ask is refused up front, not found out at the wave.
#[test]
fn a_drain_needs_each_x_node_to_have_a_status_url() {
    let source = plan("3.9.1", "rolling:\n  waves: [1, 100%]\n  drain: 30s\n").replacen(
        "{name: dp-x-2, role: data_plane, status_url: http://10.1.0.2:8100}",
        "{name: dp-x-2, role: data_plane}",
        1,
    );
    assert!(
        source.contains("{name: dp-x-2, role: data_plane}"),
        "{source}"
    );
    let (_, message, _) = refused(&source);
    assert!(
        message.contains("`rolling.drain`: dp-x-2 has no status_url"),
        "{message}"
    );
}

/// The fleet plan behind HAProxy: X's servers `x1..x4`, Y's named like their nodes, and
/// `node_servers` as given (one entry a line).
fn behind_haproxy(source: &str, node_servers: &str) -> String {
    let x: Vec<String> = (1..=4).map(|i| format!("x{i}")).collect();
    let y: Vec<String> = (1..=4).map(|i| format!("dp-y-{i}")).collect();
    let driver = format!(
        "driver:\n    type: haproxy\n    socket: /run/haproxy/admin.sock\n    backend: kong\n    \
         x_servers: [{}]\n    y_servers: [{}]\n{node_servers}",
        x.join(", "),
        y.join(", ")
    );
    let replaced = source.replacen("driver: {type: manual}", &driver, 1);
    assert_ne!(replaced, source, "the fleet plan has a manual driver");
    replaced
}

fn all_mapped() -> String {
    "    node_servers:\n".to_string()
        + &(1..=4)
            .map(|i| format!("      dp-x-{i}: x{i}\n"))
            .collect::<String>()
}

/// Before 3.9 the HAProxy driver drains each X node's server: accepted once every X data
/// plane is mapped to a server of `x_servers` (Y's named like their servers need none).
#[test]
fn a_drain_before_kong_3_9_through_haproxy_is_read() {
    let source = behind_haproxy(
        &plan("3.4.2", "rolling:\n  waves: [1, 100%]\n  drain: 5s\n"),
        &all_mapped(),
    );
    let loaded = parse_plan(&source, "plan.yaml").unwrap_or_else(|e| panic!("{e}\n{source}"));
    assert_eq!(
        loaded.plan.rolling.unwrap().drain,
        Some(Duration::from_secs(5))
    );
    let kongup::plan::model::TrafficDriverSpec::Haproxy(haproxy) = &loaded.plan.traffic.driver
    else {
        panic!("not haproxy")
    };
    assert_eq!(haproxy.server_of("dp-x-3"), Some("x3"));
    assert_eq!(haproxy.server_of("dp-y-2"), Some("dp-y-2"));
    assert_eq!(haproxy.server_of("cp-x-1"), None);
}

#[test]
fn a_drain_before_kong_3_9_needs_each_x_node_mapped_to_a_server() {
    let mapped = all_mapped().replace("      dp-x-4: x4\n", "");
    let source = behind_haproxy(
        &plan("3.4.2", "rolling:\n  waves: [1, 100%]\n  drain: 5s\n"),
        &mapped,
    );
    let (line, message, hint) = refused(&source);
    assert_eq!(line, line_of(&source, "drain: 5s"), "{message}");
    assert!(
        message.contains("dp-x-4 has no server in traffic.driver.x_servers"),
        "{message}"
    );
    assert!(hint.contains("traffic.driver.node_servers"), "{hint}");
}

#[test]
fn node_servers_must_name_a_node_and_a_server_of_its_side() {
    let source = behind_haproxy(
        &plan("3.9.1", "rolling:\n  waves: [1, 100%]\n"),
        "    node_servers:\n      dp-x-9: x1\n",
    );
    let (line, message, _) = refused(&source);
    assert_eq!(line, line_of(&source, "dp-x-9: x1"), "{message}");
    assert!(message.contains("no node named `dp-x-9`"), "{message}");
    let source = behind_haproxy(
        &plan("3.9.1", "rolling:\n  waves: [1, 100%]\n"),
        "    node_servers:\n      dp-x-1: dp-y-1\n",
    );
    let (line, message, _) = refused(&source);
    assert_eq!(line, line_of(&source, "dp-x-1: dp-y-1"), "{message}");
    assert!(
        message.contains(
            "dp-x-1 is one of X's nodes, but `dp-y-1` is not in traffic.driver.x_servers"
        ),
        "{message}"
    );
}

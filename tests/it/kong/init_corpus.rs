//! `kongup init` against control planes that answer with the corpus's bodies (Kong 2.8.5,
//! 3.4.2, 3.9.1 and 3.10.0 as their source writes them, tests/fixtures/kong/): it lists
//! every data plane, pages included, names those whose `hostname` is their node id by
//! their IP, and records the edition it detected in the plan it writes.

use std::time::Duration;

use crate::support::http::{corpus_control_plane, serve_corpus};
use assert_cmd::Command;
use kongup::plan::load::load_plan;
use kongup::testkit::corpus;

fn run_init(admin: &str, plan: &std::path::Path) -> (i32, String) {
    let output = Command::cargo_bin("kongup")
        .unwrap()
        .args(["init", "--admin", admin, "-o", plan.to_str().unwrap()])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs `kongup init` against `routes`; the plan's text and its X node names.
async fn init_against(routes: Vec<(String, corpus::CorpusFile)>) -> (String, Vec<String>, String) {
    let cp = serve_corpus(routes).await;
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.yaml");
    let (code, stderr) = tokio::task::spawn_blocking({
        let plan_path = plan_path.clone();
        move || run_init(&cp, &plan_path)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&plan_path).unwrap();
    let plan = load_plan(&plan_path)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .plan;
    let names = plan
        .clusters
        .x
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    (text, names, stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn init_lists_every_data_plane_of_each_versions_control_plane_and_records_the_edition() {
    for version in corpus::VERSIONS {
        let (text, names, stderr) =
            init_against(corpus_control_plane(version, "clustering_data_planes")).await;
        assert_eq!(
            names,
            ["kong-cp-01", "kong-dp-eu-1", "kong-dp-eu-2", "kong-dp-us-1"],
            "{version}: {text}"
        );
        assert!(
            stderr.contains("3 data plane(s) listed"),
            "{version}: {stderr}"
        );
        // The open-source corpus: 2.8.5 and 3.4.2 say no `edition` at all (3.6.0+ only).
        assert!(
            text.lines().any(|l| l.starts_with("edition: community")),
            "{version}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_planes_whose_hostname_is_their_node_id_are_listed_by_their_ip() {
    for (version, listing) in [
        ("3.9.1", "clustering_data_planes_incremental_sync"),
        ("3.10.0", "clustering_data_planes_rpc_sync"),
    ] {
        let (text, names, _) = init_against(corpus_control_plane(version, listing)).await;
        assert_eq!(
            names,
            ["kong-cp-01", "10.0.3.21", "10.0.3.22"],
            "{version}: {text}"
        );
        // The node id is kept beside it, for the operator.
        assert!(
            text.contains("1c9e4b52-6f0a-4d3b-8e27-5a1f9c0d7b34")
                && text.contains("named by its IP"),
            "{version}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enterprise_version_without_edition_reads_enterprise() {
    // Kong 3.4's `GET /` has no `edition` (3.6.0+), so a 3.4 Enterprise node says only its
    // four-part version. The body is the 3.4.2 corpus's with an Enterprise version put in
    // (Enterprise's `GET /` is not in the open-source code: the rest of its shape is
    // unverified, the version form is the one Kong publishes, e.g. 3.4.3.12).
    let open_source = corpus::http(&corpus::file("3.4.2", "admin_root_cp.http"));
    let mut body = open_source.json();
    assert!(body.get("edition").is_none());
    body["version"] = "3.4.3.12".into();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("admin_root_cp.http");
    let head: Vec<String> = open_source
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    std::fs::write(
        &root,
        format!("HTTP/1.1 200 OK\n{}\n\n{body}", head.join("\n")),
    )
    .unwrap();
    let mut routes = corpus_control_plane("3.4.2", "clustering_data_planes");
    routes[0].1 = corpus::CorpusFile {
        version: "3.4.2",
        name: "admin_root_cp.http".into(),
        path: root,
    };
    let (text, _, stderr) = init_against(routes).await;
    assert!(
        text.lines().any(|l| l.starts_with("edition: enterprise")),
        "{text}"
    );
    assert!(text.contains("from: 3.4.3.12"), "{text}");
    assert!(stderr.contains("enterprise"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_besides_default_are_a_hint_not_proof_of_enterprise() {
    // The open-source gateway answers GET /workspaces too (tests/fixtures/kong/3.4.2/
    // workspaces_oss.http: `default` only), and before 3.7.0 it let more be created (Kong
    // commit 6470d9bf92 forbade it). So a longer list leaves the edition community, and
    // init says what to write if X is Enterprise.
    let open_source = corpus::http(&corpus::file("3.4.2", "workspaces_oss.http"));
    let mut body = open_source.json();
    let mut team = body["data"][0].clone();
    team["id"] = "0b7c5a3e-1f2d-4c6b-9a8e-7d6c5b4a3f21".into();
    team["name"] = "team-a".into();
    body["data"].as_array_mut().unwrap().push(team);
    let dir = tempfile::tempdir().unwrap();
    let listed = dir.path().join("workspaces.http");
    let head: Vec<String> = open_source
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    std::fs::write(
        &listed,
        format!("HTTP/1.1 200 OK\n{}\n\n{body}", head.join("\n")),
    )
    .unwrap();
    let mut routes = corpus_control_plane("3.4.2", "clustering_data_planes");
    routes.push((
        "/workspaces".into(),
        corpus::CorpusFile {
            version: "3.4.2",
            name: "workspaces_oss.http".into(),
            path: listed,
        },
    ));
    let (text, _, stderr) = init_against(routes).await;
    assert!(
        text.lines().any(|l| l.starts_with("edition: community")),
        "{text}"
    );
    assert!(
        stderr.contains("GET /workspaces lists team-a besides default")
            && stderr.contains("edition: enterprise"),
        "{stderr}"
    );

    // The open-source list, `default` alone, says nothing.
    let mut routes = corpus_control_plane("3.4.2", "clustering_data_planes");
    routes.push((
        "/workspaces".into(),
        corpus::file("3.4.2", "workspaces_oss.http"),
    ));
    let (_, _, stderr) = init_against(routes).await;
    assert!(!stderr.contains("/workspaces"), "{stderr}");
}

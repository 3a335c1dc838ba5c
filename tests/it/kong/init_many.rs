//! `kongup init` on a control plane with 10 000 data planes (issue 14, item 7): the plan
//! it writes (two nodes per data plane, X's and Y's placeholder) validates. It broke the
//! 100 000-node YAML cap at some 8 000 data planes, and init called that its own bug.

use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use kongup::testkit::corpus;
use serde_json::{Value, json};

use crate::support::http::serve;

const DATA_PLANES: usize = 10_000;
const PAGE: usize = 1000;

/// The 3.4.2 control plane of the corpus, with `DATA_PLANES` data planes shaped like the
/// corpus's rows, in pages of 1 000 linked by `next` as Kong links them.
async fn control_plane() -> String {
    let root = corpus::http(&corpus::file("3.4.2", "admin_root_cp.http")).body;
    let row = corpus::http(&corpus::file("3.4.2", "clustering_data_planes.http")).json()["data"][0]
        .clone();
    let rows: Vec<Value> = (0..DATA_PLANES)
        .map(|i| {
            let mut row = row.clone();
            row["id"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
            row["hostname"] = json!(format!("kong-dp-{i}"));
            row["ip"] = json!(format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256));
            row
        })
        .collect();
    serve(
        Router::new()
            .route(
                "/",
                get(move || {
                    let root = root.clone();
                    async move { ([(CONTENT_TYPE, "application/json")], root).into_response() }
                }),
            )
            .route(
                "/clustering/data-planes",
                get(
                    move |Query(query): Query<std::collections::HashMap<String, String>>| {
                        let rows = rows.clone();
                        async move {
                            let from: usize = query.get("offset").map_or(0, |o| o.parse().unwrap());
                            let to = (from + PAGE).min(rows.len());
                            let next = (to < rows.len()).then(|| {
                                format!("/clustering/data-planes?offset={to}&size={PAGE}")
                            });
                            Json(json!({"data": rows[from..to], "next": next}))
                        }
                    },
                ),
            ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn init_on_a_control_plane_with_10_000_data_planes_writes_a_plan_that_validates() {
    let cp = control_plane().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    let args = [
        "init".to_string(),
        "--admin".into(),
        cp,
        "--to".into(),
        "3.4.3".into(),
        "-o".into(),
        plan.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("kongup")
            .unwrap()
            .args(args)
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(
        text.contains("kong-dp-9999"),
        "the last data plane is in the plan"
    );

    let started = Instant::now();
    let loaded = kongup::plan::load::load_plan(&plan).unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    let nodes = loaded.plan.clusters.x.nodes.len() + loaded.plan.clusters.y.nodes.len();
    assert_eq!(nodes, 2 * (DATA_PLANES + 1));
    eprintln!(
        "a plan of {} data planes ({} bytes, {nodes} nodes) validated in {took:?} (debug build)",
        DATA_PLANES,
        text.len()
    );
}

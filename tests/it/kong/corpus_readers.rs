//! Every `.http` file of the Kong corpus (tests/fixtures/kong/) that kongup's Admin/Status
//! API client has a reader for, read by that reader from a server answering exactly as the
//! file writes it, version by version. The table is exhaustive: a corpus file with no row
//! fails the test, so a new fixture gets a reader (or a reason it has none).

use crate::support::http::serve_corpus;
use kongup::kong::client::{AdminClient, AdminClientOptions, AdminError, Readiness};
use kongup::kong::types::{EMPTY_CONFIG_HASH, reported_version};
use kongup::plan::model::Edition;
use kongup::testkit::corpus::{self, CorpusFile};

/// Which reader a corpus file is for, by its name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    /// `GET /`: `AdminClient::node_info`.
    NodeInfo,
    /// `GET /status`: `AdminClient::node_status`.
    NodeStatus,
    /// `GET /status/ready`: `AdminClient::readiness`.
    Readiness,
    /// `GET /clustering/data-planes`, every page: `AdminClient::data_plane_listing`.
    DataPlanes,
    /// The last page of that listing, read through the first page's `next`.
    DataPlanesLastPage,
    /// `GET /workspaces`: `AdminClient::workspaces`.
    Workspaces,
    /// A paged collection: `AdminClient::list_entities`.
    Collection(&'static str),
    /// The last page of `/key-sets`, read through the first page's `next`.
    CollectionLastPage,
    /// `/filter-chains` with wasm off: the export skips it with a note.
    FilterChainsWasmOff,
    /// Not read by the Admin/Status API client, with why.
    None(&'static str),
}

fn reader(name: &str) -> Option<Reader> {
    Some(match name {
        "admin_root.http" | "admin_root_cp.http" => Reader::NodeInfo,
        n if n.starts_with("status_ready_post_") => {
            Reader::None("a POST's answer: kongup drains nodes through the lab's actions")
        }
        n if n.starts_with("status_ready_") => Reader::Readiness,
        n if n.starts_with("status_") => Reader::NodeStatus,
        "clustering_data_planes_page2.http" => Reader::DataPlanesLastPage,
        n if n.starts_with("clustering_data_planes") => Reader::DataPlanes,
        "workspaces_oss.http" => Reader::Workspaces,
        "collection_key_sets.http" => Reader::Collection("key-sets"),
        "collection_key_sets_last.http" => Reader::CollectionLastPage,
        "filter_chains_wasm_off.http" => Reader::FilterChainsWasmOff,
        "proxy_404.http" => Reader::None("the proxy's answer, read by the smoke test's checks"),
        _ => return None,
    })
}

fn client() -> AdminClient {
    AdminClient::new(AdminClientOptions::default()).unwrap().0
}

/// The first page whose `next` leads to `last` (named `<first>_last.http` or
/// `<first>_page2.http`): the routes that serve both.
fn paged(first: CorpusFile, path: &str, last: CorpusFile) -> Vec<(String, CorpusFile)> {
    let next = corpus::http(&first).json()["next"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no next", first.path.display()))
        .to_string();
    vec![(path.to_string(), first), (next, last)]
}

async fn read(file: &CorpusFile, reader: Reader) {
    let what = format!("{} {}", file.version, file.name);
    let answer = corpus::http(file);
    match reader {
        Reader::NodeInfo => {
            let url = serve_corpus(vec![("/".into(), file.clone())]).await;
            let info = client().node_info(&url).await.expect(&what);
            assert_eq!(info.version, file.version, "{what}");
            assert!(reported_version(&info.version).is_ok(), "{what}");
            let role = if file.name.ends_with("_cp.http") {
                "control_plane"
            } else {
                "traditional"
            };
            assert_eq!(info.configuration.role, role, "{what}");
            // The corpus is the open-source gateway, with or without `edition` (3.6.0+).
            assert_eq!(info.edition().0, Edition::Community, "{what}");
            assert_eq!(
                info.edition.is_some(),
                file.version != "2.8.5" && file.version != "3.4.2",
                "{what}"
            );
        }
        Reader::NodeStatus => {
            let url = serve_corpus(vec![("/status".into(), file.clone())]).await;
            let status = client().node_status(&url).await.expect(&what);
            let hash = answer.json()["configuration_hash"]
                .as_str()
                .map(String::from);
            assert_eq!(status.configuration_hash, hash, "{what}");
            assert_eq!(
                status.configuration_hash.as_deref() == Some(EMPTY_CONFIG_HASH),
                file.name == "status_dp_empty_config.http",
                "{what}"
            );
            assert_eq!(
                status.server.total_requests,
                answer.json()["server"]["total_requests"].as_u64().unwrap(),
                "{what}"
            );
        }
        Reader::Readiness => {
            let url = serve_corpus(vec![("/status/ready".into(), file.clone())]).await;
            let read = client().readiness(&url).await;
            match answer.status {
                200 => assert_eq!(read.expect(&what), Readiness::Ready, "{what}"),
                503 => assert_eq!(
                    read.expect(&what),
                    Readiness::NotReady(answer.json()["message"].as_str().unwrap().into()),
                    "{what}"
                ),
                // 2.8.5 has no /status/ready: the callers fall back to /status.
                404 => assert!(
                    matches!(read, Err(AdminError::NotFound { .. })),
                    "{what}: {read:?}"
                ),
                other => panic!("{what}: no expectation for {other}"),
            }
        }
        Reader::DataPlanes if answer.status == 400 => {
            let url = serve_corpus(vec![("/clustering/data-planes".into(), file.clone())]).await;
            let read = client().data_plane_listing(&url).await;
            assert!(
                matches!(read, Err(AdminError::NotControlPlane { .. })),
                "{what}: {read:?}"
            );
        }
        Reader::DataPlanes => {
            let routes = if answer.json()["next"].is_null() {
                vec![("/clustering/data-planes".to_string(), file.clone())]
            } else {
                let last = corpus::file(file.version, "clustering_data_planes_page2.http");
                paged(file.clone(), "/clustering/data-planes", last)
            };
            let mut expected: Vec<String> = Vec::new();
            for (_, page) in &routes {
                for row in corpus::http(page).json()["data"].as_array().unwrap() {
                    expected.push(row["id"].as_str().unwrap().to_string());
                }
            }
            let url = serve_corpus(routes).await;
            let listing = client().data_plane_listing(&url).await.expect(&what);
            assert!(
                listing.unreadable.is_empty(),
                "{what}: {:?}",
                listing.unreadable
            );
            let ids: Vec<&str> = listing.planes.iter().map(|dp| dp.id.as_str()).collect();
            assert_eq!(ids, expected, "{what}");
            // RPC sync stores the node id as the hostname.
            let sync = file.name.contains("_sync");
            assert!(
                listing.planes.iter().all(|dp| dp.hostname_is_id() == sync),
                "{what}"
            );
        }
        Reader::DataPlanesLastPage => {
            let first = corpus::file(file.version, "clustering_data_planes.http");
            let url = serve_corpus(paged(first, "/clustering/data-planes", file.clone())).await;
            let listing = client().data_plane_listing(&url).await.expect(&what);
            let last = answer.json()["data"][0]["id"].as_str().unwrap().to_string();
            assert_eq!(
                listing.planes.last().map(|dp| dp.id.clone()),
                Some(last),
                "{what}"
            );
            // The last page: `next` null, no `offset`.
            assert!(answer.json()["next"].is_null() && answer.json().get("offset").is_none());
        }
        Reader::Workspaces => {
            let url = serve_corpus(vec![("/workspaces".into(), file.clone())]).await;
            let read = client().workspaces(&url).await;
            match answer.status {
                // The open-source gateway lists `default` (up to 3.9.x): no sign of Enterprise.
                200 => assert_eq!(read.expect(&what), ["default"], "{what}"),
                404 => assert!(
                    matches!(read, Err(AdminError::NotFound { .. })),
                    "{what}: {read:?}"
                ),
                other => panic!("{what}: no expectation for {other}"),
            }
        }
        Reader::Collection(path) => {
            let last = corpus::file(file.version, "collection_key_sets_last.http");
            let url = serve_corpus(paged(file.clone(), &format!("/{path}"), last.clone())).await;
            let rows = client()
                .list_entities(&url, path)
                .await
                .expect(&what)
                .expect(&what);
            let on = |f: &CorpusFile| corpus::http(f).json()["data"].as_array().unwrap().len();
            assert_eq!(rows.len(), on(file) + on(&last), "{what}");
        }
        // Read with its first page, above.
        Reader::CollectionLastPage => {
            assert!(answer.json()["next"].is_null() && answer.json().get("offset").is_none());
        }
        Reader::FilterChainsWasmOff => {
            let url = serve_corpus(vec![("/filter-chains".into(), file.clone())]).await;
            let read = client().list_entities(&url, "filter-chains").await;
            assert!(
                matches!(
                    &read,
                    Err(AdminError::Status { status: 400, kong_message: Some(m), .. })
                        if m.contains("wasm")
                ),
                "{what}: {read:?}"
            );
        }
        Reader::None(_) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_response_is_read_by_its_reader() {
    let files = corpus::files("", ".http");
    let mut unknown = Vec::new();
    let mut read_files = 0;
    for file in &files {
        match reader(&file.name) {
            Some(Reader::None(_)) => {}
            Some(r) => {
                read(file, r).await;
                read_files += 1;
            }
            None => unknown.push(format!("{} {}", file.version, file.name)),
        }
    }
    assert!(
        unknown.is_empty(),
        "corpus files with no row in the readers' table: {unknown:?}"
    );
    assert!(read_files >= 80, "{read_files} files read");
}

//! The Admin API export backup and the freeze fingerprint read every collection that holds
//! configuration at the node's version: key sets (`/key-sets`, with Kong's paging from the
//! corpus) and keys from 3.1, vaults (`/vaults-beta` on 2.8), upstream targets (under
//! `/upstreams/{id}/targets`), credentials of the auth plugins; `/filter-chains` is skipped
//! with a note while wasm is off. A write to a credential or a target during the freeze is
//! seen by the guard.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::http::serve;
use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use kongup::kong::backup::{self, AdminExport};
use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::kong::freeze::{self, FreezeSource};
use kongup::testkit::corpus::{self, HttpResponse};
use serde_json::{Value, json};

/// A Kong Admin API whose collections the test changes: path → rows, one page each;
/// `corpus` answers the paths it names with the corpus's files (matched on path and query,
/// then on the path alone); anything else is Kong's 404.
#[derive(Clone, Default)]
struct FakeKong {
    collections: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
    corpus: Arc<Vec<(String, HttpResponse)>>,
}

impl FakeKong {
    /// Kong of `version` (a corpus version), with its `GET /` and, from 3.4, its
    /// `/filter-chains` answer (wasm off) and its paged `/key-sets`.
    fn of(version: &'static str) -> FakeKong {
        let mut answers = vec![(
            "/".to_string(),
            corpus::http(&corpus::file(version, "admin_root.http")),
        )];
        if version != "2.8.5" {
            answers.push((
                "/filter-chains".into(),
                corpus::http(&corpus::file(version, "filter_chains_wasm_off.http")),
            ));
            let first = corpus::http(&corpus::file(version, "collection_key_sets.http"));
            let next = first.json()["next"].as_str().unwrap().to_string();
            answers.push(("/key-sets".into(), first));
            answers.push((
                next,
                corpus::http(&corpus::file(version, "collection_key_sets_last.http")),
            ));
        }
        FakeKong {
            collections: Arc::default(),
            corpus: Arc::new(answers),
        }
    }

    fn set(&self, path: &str, rows: Vec<Value>) {
        self.collections.lock().unwrap().insert(path.into(), rows);
    }

    async fn serve(&self) -> String {
        let kong = self.clone();
        serve(Router::new().fallback(move |uri: Uri| {
            let kong = kong.clone();
            async move { kong.answer(&uri) }
        }))
        .await
    }

    fn answer(&self, uri: &Uri) -> axum::response::Response {
        let full = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let found = self
            .corpus
            .iter()
            .find(|(path, _)| path == full)
            .or_else(|| self.corpus.iter().find(|(path, _)| path == uri.path()));
        if let Some((_, answer)) = found {
            return (
                StatusCode::from_u16(answer.status).unwrap(),
                [("content-type", "application/json; charset=utf-8")],
                answer.body.clone(),
            )
                .into_response();
        }
        match self.collections.lock().unwrap().get(uri.path()) {
            Some(rows) => axum::Json(json!({"data": rows, "next": null})).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "Not found"})),
            )
                .into_response(),
        }
    }
}

const UPSTREAM: &str = "5a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9";

fn row(id: &str, fields: Value) -> Value {
    let mut row = json!({"id": id, "created_at": 1717000000, "tags": null});
    for (key, value) in fields.as_object().unwrap() {
        row[key] = value.clone();
    }
    row
}

/// A 3.x configuration: every core collection, an upstream with one target, a consumer
/// with a key-auth credential and an ACL.
fn configured(kong: &FakeKong) {
    for path in [
        "/services",
        "/routes",
        "/plugins",
        "/certificates",
        "/snis",
        "/ca_certificates",
        "/vaults",
        "/keys",
        "/basic-auths",
        "/hmac-auths",
        "/jwts",
        "/oauth2",
    ] {
        kong.set(path, vec![]);
    }
    kong.set(
        "/consumers",
        vec![row(
            "c0000000-0000-4000-8000-000000000001",
            json!({"username": "demo"}),
        )],
    );
    kong.set(
        "/upstreams",
        vec![row(UPSTREAM, json!({"name": "orders.internal"}))],
    );
    kong.set(
        &format!("/upstreams/{UPSTREAM}/targets"),
        vec![row(
            "70000000-0000-4000-8000-000000000001",
            json!({"target": "10.0.5.1:8080", "weight": 100, "upstream": {"id": UPSTREAM}}),
        )],
    );
    kong.set(
        "/key-auths",
        vec![row(
            "a0000000-0000-4000-8000-000000000001",
            json!({"key": "k-1", "consumer": {"id": "c0000000-0000-4000-8000-000000000001"}}),
        )],
    );
    kong.set(
        "/acls",
        vec![row(
            "ac000000-0000-4000-8000-000000000001",
            json!({"group": "ops", "consumer": {"id": "c0000000-0000-4000-8000-000000000001"}}),
        )],
    );
}

fn client() -> AdminClient {
    AdminClient::new(AdminClientOptions::default()).unwrap().0
}

#[tokio::test]
async fn the_export_holds_key_sets_targets_and_credentials() {
    let kong = FakeKong::of("3.4.2");
    configured(&kong);
    let url = kong.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let record = backup::export_through_admin_api(&client(), &url, dir.path(), "export.json")
        .await
        .unwrap();
    let export: AdminExport =
        serde_json::from_slice(&std::fs::read(&record.path).unwrap()).unwrap();
    let count = |name: &str| export.entities.get(name).map(Vec::len);
    assert_eq!(
        count("key-sets"),
        Some(2),
        "both pages: {:?}",
        export.entities.keys()
    );
    assert_eq!(count("targets"), Some(1));
    assert_eq!(count("key-auths"), Some(1));
    assert_eq!(count("acls"), Some(1));
    assert_eq!(count("consumers"), Some(1));
    assert_eq!(count("filter-chains"), None);
    assert!(
        record
            .verified
            .contains("filter-chains skipped: wasm is off"),
        "{}",
        record.verified
    );
}

#[tokio::test]
async fn kong_2_8_vaults_are_read_at_vaults_beta() {
    let kong = FakeKong::of("2.8.5");
    configured(&kong);
    kong.set(
        "/vaults-beta",
        vec![row(
            "v0000000-0000-4000-8000-000000000001",
            json!({"prefix": "env"}),
        )],
    );
    kong.collections.lock().unwrap().remove("/vaults");
    kong.collections.lock().unwrap().remove("/keys");
    let url = kong.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let record = backup::export_through_admin_api(&client(), &url, dir.path(), "export.json")
        .await
        .unwrap();
    let export: AdminExport =
        serde_json::from_slice(&std::fs::read(&record.path).unwrap()).unwrap();
    assert_eq!(export.entities.get("vaults-beta").map(Vec::len), Some(1));
    assert!(!export.entities.contains_key("key-sets"));
}

#[tokio::test]
async fn the_freeze_guard_sees_a_changed_credential_and_a_changed_target() {
    let kong = FakeKong::of("3.9.1");
    configured(&kong);
    let url = kong.serve().await;
    let source = FreezeSource::AdminApi {
        client: client(),
        admin_url: url,
    };
    let before = freeze::take(&source).await.unwrap();
    assert!(freeze::check(&before, &source).await.unwrap().is_empty());

    // Someone rotates a key during the freeze.
    kong.set(
        "/key-auths",
        vec![row(
            "a0000000-0000-4000-8000-000000000001",
            json!({"key": "k-rotated", "consumer": {"id": "c0000000-0000-4000-8000-000000000001"}}),
        )],
    );
    let changes = freeze::check(&before, &source).await.unwrap();
    assert_eq!(
        changes,
        ["key-auths: rows were edited (same ids and timestamps)"]
    );

    // Undone, then a target's weight drops to 0.
    configured(&kong);
    kong.set(
        &format!("/upstreams/{UPSTREAM}/targets"),
        vec![row(
            "70000000-0000-4000-8000-000000000001",
            json!({"target": "10.0.5.1:8080", "weight": 0, "upstream": {"id": UPSTREAM}}),
        )],
    );
    let changes = freeze::check(&before, &source).await.unwrap();
    assert_eq!(
        changes,
        ["targets: rows were edited (same ids and timestamps)"]
    );
}

#[tokio::test]
async fn the_database_fingerprint_covers_credentials_and_3x_vaults() {
    use crate::support::pg::{HOST, KongDbState, PASSWORD, SUPERUSER, TestPg};
    use kongup::kong::pg::PgTarget;
    use std::time::Duration;
    let pg = TestPg::start();
    pg.create_kong_database("kong", KongDbState::UpToDate);
    // The tables of key-auth (kong/plugins/key-auth/daos.lua: keyauth_credentials) and of
    // 3.x vaults (kong/db/schema/entities/vaults.lua@3.4.2: table_name sm_vaults).
    pg.psql(
        "kong",
        "CREATE TABLE keyauth_credentials (id UUID PRIMARY KEY, consumer_id UUID, key TEXT UNIQUE,
           created_at TIMESTAMPTZ NOT NULL DEFAULT now());
         INSERT INTO keyauth_credentials (id, consumer_id, key, created_at) VALUES
           ('a0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'k-1', '2025-01-05 10:00:00+00');
         CREATE TABLE sm_vaults (id UUID PRIMARY KEY, prefix TEXT UNIQUE, name TEXT,
           created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());",
    );
    let source = FreezeSource::Database(PgTarget {
        host: HOST.into(),
        port: pg.port,
        database: "kong".into(),
        user: SUPERUSER.into(),
        password: Some(PASSWORD.into()),
        password_source: None,
        connect_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_secs(5),
        tls: Default::default(),
    });
    let before = freeze::take(&source).await.unwrap();
    assert!(
        before.entities.contains_key("keyauth_credentials"),
        "{:?}",
        before.entities.keys()
    );
    assert!(
        before.entities.contains_key("sm_vaults"),
        "{:?}",
        before.entities.keys()
    );
    pg.psql("kong", "UPDATE keyauth_credentials SET key = 'k-rotated'");
    assert_eq!(
        freeze::check(&before, &source).await.unwrap(),
        ["keyauth_credentials: rows were edited (same ids and timestamps)"]
    );
}

/// A Kong Enterprise 3.4 node (four-part version, no `edition`) whose Admin API has no
/// `/workspaces` route (Enterprise's routing is unverified; a DB-less node, say): its root
/// paths hold the whole configuration, so the backup exports them and says why, and the
/// freeze fingerprint reads them, rather than either failing.
#[tokio::test]
async fn enterprise_without_a_workspaces_route_is_backed_up_and_fingerprinted_at_the_root() {
    let open_source = corpus::http(&corpus::file("3.4.2", "admin_root.http"));
    let mut root = open_source.json();
    root["version"] = "3.4.3.12".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin_root.http");
    std::fs::write(
        &path,
        format!("HTTP/1.1 200 OK\nContent-Type: application/json; charset=utf-8\n\n{root}"),
    )
    .unwrap();
    let mut kong = FakeKong::of("3.4.2");
    let mut answers = (*kong.corpus).clone();
    answers[0].1 = corpus::http(&corpus::CorpusFile {
        version: "3.4.2",
        name: "admin_root.http".into(),
        path,
    });
    kong.corpus = Arc::new(answers);
    configured(&kong);
    let url = kong.serve().await;
    let done = backup::declarative_backup(
        None,
        &client(),
        &url,
        dir.path(),
        "20250101T000000Z",
        std::time::Duration::from_secs(10),
        None,
    )
    .await
    .unwrap();
    assert_eq!(done.workspaces, ["default"]);
    assert!(
        done.edition_evidence.contains("3.4.3.12 has four parts")
            && done
                .edition_evidence
                .contains("GET /workspaces answers 404"),
        "{}",
        done.edition_evidence
    );
    assert_eq!(done.records.len(), 1);
    assert!(
        done.records[0].verified.contains("key-auths 1"),
        "{:?}",
        done.records[0]
    );

    let source = FreezeSource::AdminApi {
        client: client(),
        admin_url: url,
    };
    let before = freeze::take(&source).await.unwrap();
    assert_eq!(before.entities["targets"].count, 1);
}

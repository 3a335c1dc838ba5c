//! The lab's Admin API lists its configuration as Kong does, so the declarative backup
//! through the Admin API (and the freeze fingerprint of DB-less nodes) reads it with the
//! real client.

use kongup::kong::client::{AdminClient, AdminClientOptions};
use kongup::sim::{Lab, LabOptions, Scenario};

/// The configuration the Admin API export reads from the node at `admin`, by collection.
async fn export_of(
    client: &AdminClient,
    admin: &str,
) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
    let (version, edition, _) = client.version_and_edition(admin).await.unwrap();
    client
        .export_configuration(admin, version, edition, None)
        .await
        .unwrap()
        .entities
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_exports_the_labs_configuration() {
    let lab = Lab::start(Scenario::BlueGreen, LabOptions::default())
        .await
        .unwrap();
    let admin = lab.endpoints().nodes[0].admin.clone().unwrap();
    let (client, _) = AdminClient::new(AdminClientOptions::default()).unwrap();
    let export = export_of(&client, &admin).await;
    // Kong lists a collection in primary-key order: sorted here to compare.
    let names = |collection: &str, field: &str| -> Vec<String> {
        let mut names: Vec<String> = export[collection]
            .iter()
            .map(|row| row[field].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("services", "name"), ["orders", "secure", "users"]);
    assert_eq!(names("routes", "name"), ["orders", "secure", "users"]);
    assert_eq!(names("consumers", "username"), ["demo"]);
    assert_eq!(names("plugins", "name"), ["key-auth", "prometheus"]);
    // key-auth guards the secure route, by id.
    let by_name = |collection: &str, name: &str| {
        export[collection]
            .iter()
            .find(|row| row["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_name("plugins", "key-auth")["route"]["id"],
        by_name("routes", "secure")["id"]
    );
    // Every other core collection is there, empty; what Kong lacks answers 404.
    assert!(export["upstreams"].is_empty());
    assert_eq!(
        client
            .list_entities(&admin, "consumer_groups")
            .await
            .unwrap(),
        None
    );
    // Open-source 3.4 lists its one workspace (tests/fixtures/kong/3.4.2/workspaces_oss.http).
    let workspaces = client.list_entities(&admin, "workspaces").await.unwrap();
    assert_eq!(workspaces.unwrap()[0]["name"], "default");
    // The same configuration on every node, on every read.
    let other = lab.endpoints().nodes[1].admin.clone().unwrap();
    assert_eq!(export_of(&client, &other).await, export);
}

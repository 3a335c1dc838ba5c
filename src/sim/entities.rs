//! The lab's configuration as the Admin API lists it (`GET /services`, `/routes`, …): the
//! services and routes the proxy answers, the `demo` consumer, key-auth on its routes (on
//! `/secure`, and on a rehearsal's that need it), the global prometheus plugin and, on
//! versions that have them, two key sets. It is the same on every node and never changes
//! (nothing in the lab writes to it), so backups through the Admin API and the freeze
//! fingerprint read a steady configuration. The same configuration as a DB-less
//! declarative file is [`declarative_config`].

use serde_json::{Value, json};

use crate::plan::version::KongVersion;

use super::facts;
use super::proxy::LabRoute;

/// When the lab's entities were created (a fixed moment: the configuration never changes).
const CREATED_AT: i64 = 1_700_000_000;

/// A stable id for an entity of the lab's configuration.
fn id(kind: &str, name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("kongup-lab/{kind}/{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The Admin API's core collections, by path: each one Kong of `version` has (entity
/// schemas' `admin_api_name` or `name`, kong/db/schema/entities/*.lua at the tags in
/// `facts`), and the lab's rows in it.
pub fn collection(name: &str, version: KongVersion, routes: &[LabRoute]) -> Option<Vec<Value>> {
    let mut rows = match name {
        "services" => routes
            .iter()
            .map(|r| {
                json!({
                    "id": id("service", &r.name), "name": r.name, "protocol": "http",
                    "host": format!("{}.upstream.lab.invalid", r.name), "port": 80,
                    "path": null, "retries": 5, "connect_timeout": 60000,
                    "write_timeout": 60000, "read_timeout": 60000, "enabled": true,
                    "tags": null, "created_at": CREATED_AT, "updated_at": CREATED_AT,
                })
            })
            .collect(),
        "routes" => routes
            .iter()
            .map(|r| {
                json!({
                    "id": id("route", &r.name), "name": r.name,
                    "protocols": ["http", "https"], "paths": [r.path], "methods": null,
                    "hosts": null, "strip_path": false, "preserve_host": false,
                    "service": {"id": id("service", &r.name)}, "tags": null,
                    "created_at": CREATED_AT, "updated_at": CREATED_AT,
                })
            })
            .collect(),
        "consumers" => vec![json!({
            "id": id("consumer", "demo"), "username": "demo", "custom_id": null,
            "tags": null, "created_at": CREATED_AT, "updated_at": CREATED_AT,
        })],
        "plugins" => {
            let mut rows: Vec<Value> = routes
                .iter()
                .filter(|r| r.key_auth())
                .map(|r| {
                    json!({
                        "id": id("plugin", &format!("key-auth/{}", r.name)), "name": "key-auth",
                        "route": {"id": id("route", &r.name)}, "service": null, "consumer": null,
                        "config": {"key_names": r.key_names, "hide_credentials": false},
                        "protocols": ["grpc", "grpcs", "http", "https"], "enabled": true,
                        "tags": null, "created_at": CREATED_AT, "updated_at": CREATED_AT,
                    })
                })
                .collect();
            rows.push(json!({
                "id": id("plugin", "prometheus"), "name": "prometheus",
                "route": null, "service": null, "consumer": null,
                "config": {"status_code_metrics": true, "latency_metrics": true,
                           "bandwidth_metrics": false, "upstream_health_metrics": false,
                           "per_consumer": false},
                "protocols": ["grpc", "grpcs", "http", "https"], "enabled": true,
                "tags": null, "created_at": CREATED_AT, "updated_at": CREATED_AT,
            }));
            rows
        }
        // Key sets as kong/db/schema/entities/key_sets.lua@3.4.2 holds them (`tags` null
        // when unset, tests/fixtures/kong/3.4.2/collection_key_sets_last.http).
        "key-sets" if facts::has_key_sets(version) => vec![
            json!({"id": id("key-set", "lab-jwks"), "name": "lab-jwks", "tags": null,
                   "created_at": CREATED_AT, "updated_at": CREATED_AT}),
            json!({"id": id("key-set", "lab-jwks-next"), "name": "lab-jwks-next",
                   "tags": ["rotation"], "created_at": CREATED_AT, "updated_at": CREATED_AT}),
        ],
        "keys" if facts::has_key_sets(version) => Vec::new(),
        "upstreams" | "certificates" | "snis" | "ca_certificates" | "key-auths" => Vec::new(),
        path if path == facts::vaults_path(version) => Vec::new(),
        _ => return None,
    };
    // Kong pages by primary key.
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Some(rows)
}

/// `GET /workspaces` on the open-source gateway while it lists them: the `default`
/// workspace only (kong/db/migrations/operations/200_to_210.lua; `updated_at` from 3.3,
/// tests/fixtures/kong/3.4.2/workspaces_oss.http).
pub fn workspaces(version: KongVersion) -> Option<Vec<Value>> {
    if !facts::lists_workspaces(version) {
        return None;
    }
    let mut row = json!({
        "id": id("workspace", "default"), "name": "default", "comment": null,
        "created_at": CREATED_AT, "meta": null, "config": null,
    });
    if facts::has_updated_at(version) {
        row["updated_at"] = json!(CREATED_AT);
    }
    Some(vec![row])
}

/// Fields of an entity row that a declarative file leaves out: ids and timestamps are the
/// database's, references are given by nesting.
const NOT_DECLARED: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "route",
    "service",
    "consumer",
];

fn declared(row: &Value) -> Value {
    let mut row = row.clone();
    if let Some(fields) = row.as_object_mut() {
        fields.retain(|name, value| !NOT_DECLARED.contains(&name.as_str()) && !value.is_null());
    }
    row
}

/// The configuration of a lab with `routes` as a DB-less declarative file (Kong's
/// `_format_version: "3.0"`): each service with its route nested, key-auth under its route,
/// the consumers and the global plugins. Credentials are left out: a file kongup writes
/// holds no key.
pub fn declarative_config(routes: &[LabRoute], config_hash: &str) -> String {
    // The rows the file declares are the same at every version the lab runs.
    let version = KongVersion::new(3, 0, 0);
    let rows = |name| collection(name, version, routes).unwrap_or_default();
    let plugins = rows("plugins");
    let route_plugins = |route_id: &Value| -> Vec<Value> {
        plugins
            .iter()
            .filter(|p| &p["route"]["id"] == route_id)
            .map(declared)
            .collect()
    };
    let all_routes = rows("routes");
    let services: Vec<Value> = rows("services")
        .iter()
        .map(|service| {
            let nested: Vec<Value> = all_routes
                .iter()
                .filter(|r| r["service"]["id"] == service["id"])
                .map(|r| {
                    let mut route = declared(r);
                    let plugins = route_plugins(&r["id"]);
                    if !plugins.is_empty() {
                        route["plugins"] = Value::from(plugins);
                    }
                    route
                })
                .collect();
            let mut service = declared(service);
            service["routes"] = Value::from(nested);
            service
        })
        .collect();
    let global: Vec<Value> = plugins
        .iter()
        .filter(|p| p["route"].is_null() && p["service"].is_null() && p["consumer"].is_null())
        .map(declared)
        .collect();
    let config = json!({
        "_format_version": "3.0",
        "services": services,
        "consumers": rows("consumers").iter().map(declared).collect::<Vec<_>>(),
        "plugins": global,
    });
    let yaml = serde_yaml::to_string(&config).unwrap_or_default();
    format!(
        "# kongup lab: the lab's configuration (hash {config_hash}) as a declarative file, \
         without credentials\n{yaml}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::proxy::lab_routes;

    #[test]
    fn the_declarative_file_nests_each_route_and_its_key_auth_under_its_service() {
        let text = declarative_config(&lab_routes(), "abc");
        assert!(text.starts_with("# kongup lab: the lab's configuration (hash abc)"));
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(value["_format_version"].as_str(), Some("3.0"));
        let services = value["services"].as_sequence().unwrap();
        assert_eq!(services.len(), 3);
        let secure = services
            .iter()
            .find(|s| s["name"].as_str() == Some("secure"))
            .unwrap();
        let route = &secure["routes"][0];
        assert_eq!(route["paths"][0].as_str(), Some("/secure"));
        assert_eq!(route["plugins"][0]["name"].as_str(), Some("key-auth"));
        assert!(route.get("id").is_none() && route.get("service").is_none());
        assert_eq!(value["plugins"][0]["name"].as_str(), Some("prometheus"));
        assert_eq!(value["consumers"][0]["username"].as_str(), Some("demo"));
        assert!(!text.contains(crate::sim::DEMO_API_KEY));
    }
}

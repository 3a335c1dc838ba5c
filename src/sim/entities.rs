//! The lab's configuration as the Admin API lists it (`GET /services`, `/routes`, …): the
//! services and routes the proxy answers, the `demo` consumer, key-auth on its routes (on
//! `/secure`, and on a rehearsal's that need it) and the global prometheus plugin. It is the
//! same on every node and never changes (nothing in the lab writes to it), so backups
//! through the Admin API and the freeze fingerprint read a steady configuration. The same
//! configuration as a DB-less declarative file is [`declarative_config`].

use serde_json::{Value, json};

use crate::kong::client::CORE_ENTITIES;

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

/// The rows of one collection of a lab configured with `routes`; `None` for a collection
/// Kong does not have.
pub fn collection(name: &str, routes: &[LabRoute]) -> Option<Vec<Value>> {
    let rows = match name {
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
        other if CORE_ENTITIES.contains(&other) => Vec::new(),
        _ => return None,
    };
    Some(rows)
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
    let rows = |name| collection(name, routes).unwrap_or_default();
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

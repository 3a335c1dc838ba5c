//! The lab's configuration as the Admin API lists it (`GET /services`, `/routes`, …): the
//! services and routes the proxy answers, the `demo` consumer, key-auth on `/secure` and the
//! global prometheus plugin. It is the same on every node and never changes (nothing in the
//! lab writes to it), so backups through the Admin API and the freeze fingerprint read a
//! steady configuration.

use serde_json::{Value, json};

use crate::kong::client::CORE_ENTITIES;

use super::proxy::ROUTES;

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

/// The rows of one collection; `None` for a collection Kong does not have.
pub fn collection(name: &str) -> Option<Vec<Value>> {
    let rows = match name {
        "services" => ROUTES
            .iter()
            .map(|r| {
                json!({
                    "id": id("service", r.name), "name": r.name, "protocol": "http",
                    "host": format!("{}.upstream.lab.invalid", r.name), "port": 80,
                    "path": null, "retries": 5, "connect_timeout": 60000,
                    "write_timeout": 60000, "read_timeout": 60000, "enabled": true,
                    "tags": null, "created_at": CREATED_AT, "updated_at": CREATED_AT,
                })
            })
            .collect(),
        "routes" => ROUTES
            .iter()
            .map(|r| {
                json!({
                    "id": id("route", r.name), "name": r.name,
                    "protocols": ["http", "https"], "paths": [r.path], "methods": null,
                    "hosts": null, "strip_path": false, "preserve_host": false,
                    "service": {"id": id("service", r.name)}, "tags": null,
                    "created_at": CREATED_AT, "updated_at": CREATED_AT,
                })
            })
            .collect(),
        "consumers" => vec![json!({
            "id": id("consumer", "demo"), "username": "demo", "custom_id": null,
            "tags": null, "created_at": CREATED_AT, "updated_at": CREATED_AT,
        })],
        "plugins" => {
            let mut rows: Vec<Value> = ROUTES
                .iter()
                .filter(|r| r.key_auth)
                .map(|r| {
                    json!({
                        "id": id("plugin", &format!("key-auth/{}", r.name)), "name": "key-auth",
                        "route": {"id": id("route", r.name)}, "service": null, "consumer": null,
                        "config": {"key_names": ["apikey"], "hide_credentials": false},
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

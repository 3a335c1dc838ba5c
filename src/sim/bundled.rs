//! The plugins a Kong node bundles, as `GET /` lists them under
//! `plugins.available_on_server` and `configuration.loaded_plugins` (`plugins = bundled`):
//! the names of `kong/constants.lua` and each handler's `PRIORITY` and `VERSION`
//! (`kong/plugins/<name>/handler.lua`; pre- and post-function in `_handler.lua`), read at
//! tags 2.8.5, 3.0.0 … 3.9.1 and master (3.10.0). From 3.0 every bundled plugin's VERSION is
//! Kong's own version, except `opentelemetry`'s `0.1.0` until 3.8.0.

use crate::plan::version::KongVersion;

/// One bundled plugin: its name, the first `major.minor` that bundles it, and its priority
/// (the 3.x priority; 2.8 lists plugins without one).
struct Bundled {
    name: &'static str,
    since: (u32, u32),
    priority: i64,
}

const fn plugin(name: &'static str, since: (u32, u32), priority: i64) -> Bundled {
    Bundled {
        name,
        since,
        priority,
    }
}

/// Sorted by name, as cjson's arbitrary order is best compared.
const BUNDLED: &[Bundled] = &[
    plugin("acl", (2, 0), 950),
    plugin("acme", (2, 0), 1705),
    plugin("ai-prompt-decorator", (3, 6), 772),
    plugin("ai-prompt-guard", (3, 6), 771),
    plugin("ai-prompt-template", (3, 6), 773),
    plugin("ai-proxy", (3, 6), 770),
    plugin("ai-request-transformer", (3, 6), 777),
    plugin("ai-response-transformer", (3, 6), 768),
    plugin("aws-lambda", (2, 0), 750),
    plugin("azure-functions", (2, 0), 749),
    plugin("basic-auth", (2, 0), 1100),
    plugin("bot-detection", (2, 0), 2500),
    plugin("correlation-id", (2, 0), 100001),
    plugin("cors", (2, 0), 2000),
    plugin("datadog", (2, 0), 10),
    plugin("file-log", (2, 0), 9),
    plugin("grpc-gateway", (2, 0), 998),
    plugin("grpc-web", (2, 0), 3),
    plugin("hmac-auth", (2, 0), 1030),
    plugin("http-log", (2, 0), 12),
    plugin("ip-restriction", (2, 0), 990),
    plugin("jwt", (2, 0), 1450),
    plugin("key-auth", (2, 0), 1250),
    plugin("ldap-auth", (2, 0), 1200),
    plugin("loggly", (2, 0), 6),
    plugin("oauth2", (2, 0), 1400),
    plugin("opentelemetry", (3, 0), 14),
    plugin("post-function", (2, 0), -1000),
    plugin("pre-function", (2, 0), 1000000),
    plugin("prometheus", (2, 0), 13),
    plugin("proxy-cache", (2, 0), 100),
    plugin("rate-limiting", (2, 0), 910),
    plugin("redirect", (3, 9), 779),
    plugin("request-size-limiting", (2, 0), 951),
    plugin("request-termination", (2, 0), 2),
    plugin("request-transformer", (2, 0), 801),
    plugin("response-ratelimiting", (2, 0), 900),
    plugin("response-transformer", (2, 0), 800),
    plugin("session", (2, 0), 1900),
    plugin("standard-webhooks", (3, 8), 760),
    plugin("statsd", (2, 0), 11),
    plugin("syslog", (2, 0), 4),
    plugin("tcp-log", (2, 0), 7),
    plugin("udp-log", (2, 0), 8),
    plugin("zipkin", (2, 0), 100000),
];

/// A bundled plugin of one Kong version: name, priority and version string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: &'static str,
    pub priority: i64,
    pub version: String,
}

/// The plugins `version` bundles, by name.
pub fn bundled(version: KongVersion) -> Vec<PluginInfo> {
    let line = version.minor_line();
    BUNDLED
        .iter()
        .filter(|p| p.since <= line)
        .map(|p| PluginInfo {
            name: p.name,
            priority: match p.name {
                // 1 until 3.9.0 (correlation-id/handler.lua@3.8.1, @3.9.0).
                "correlation-id" if line < (3, 9) => 1,
                // 769 until 3.9.0 (ai-response-transformer/handler.lua@3.8.1, @3.9.0).
                "ai-response-transformer" if line < (3, 9) => 769,
                _ => p.priority,
            },
            version: match p.name {
                "opentelemetry" if line < (3, 8) => "0.1.0".to_string(),
                _ => super::facts::full_version(version),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(version: &str) -> Vec<&'static str> {
        bundled(version.parse().unwrap())
            .into_iter()
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn each_release_bundles_what_its_constants_list() {
        assert_eq!(names("2.8.5").len(), 36);
        assert!(!names("2.8.5").contains(&"opentelemetry"));
        assert_eq!(names("3.4.2").len(), 37);
        assert_eq!(names("3.9.1").len(), 45);
        assert!(!names("3.8.1").contains(&"redirect"));
        let otel = |v: &str| {
            bundled(v.parse().unwrap())
                .into_iter()
                .find(|p| p.name == "opentelemetry")
                .unwrap()
                .version
        };
        assert_eq!(otel("3.4.2"), "0.1.0");
        assert_eq!(otel("3.10.0"), "3.10.0");
    }
}

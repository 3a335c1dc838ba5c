//! How Kong's answers change with its version, read from Kong's sources (tags 3.4.2 to
//! 3.10): the lab's nodes answer as the version they run.

use crate::plan::version::KongVersion;

fn at_least(version: KongVersion, major: u32, minor: u32) -> bool {
    version.minor_line() >= (major, minor)
}

/// Four-part versions are Kong Enterprise's.
pub fn edition(version: KongVersion) -> &'static str {
    if version.is_enterprise_form() {
        "enterprise"
    } else {
        "community"
    }
}

/// `meta._VERSION`: Enterprise builds carry the `-enterprise-edition` suffix, which is what
/// `Server`, `Via` and `kong version` show.
pub fn full_version(version: KongVersion) -> String {
    if version.is_enterprise_form() {
        format!("{version}-enterprise-edition")
    } else {
        version.to_string()
    }
}

/// `meta._SERVER_TOKENS`, e.g. `kong/3.10.0`.
pub fn server_tokens(version: KongVersion) -> String {
    format!("kong/{}", full_version(version))
}

/// The `Via` header on proxied responses: `1.1 kong/3.10.0` from 3.8 (RFC 7230 form),
/// `kong/3.4.2` before.
pub fn via_header(version: KongVersion) -> String {
    if at_least(version, 3, 8) {
        format!("1.1 {}", server_tokens(version))
    } else {
        server_tokens(version)
    }
}

/// `X-Kong-Request-Id` is sent from 3.5.
pub fn sends_request_id(version: KongVersion) -> bool {
    at_least(version, 3, 5)
}

/// The Prometheus plugin labels its per-route series with `workspace` from 3.7.
pub fn has_workspace_label(version: KongVersion) -> bool {
    at_least(version, 3, 7)
}

/// `kong_kong_latency_ms` buckets (`KONG_LATENCY_BUCKETS`); 3000 and 6000 from 3.9.
pub fn kong_latency_buckets(version: KongVersion) -> &'static [u64] {
    const BEFORE_3_9: &[u64] = &[1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000];
    const FROM_3_9: &[u64] = &[
        1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
    ];
    if at_least(version, 3, 9) {
        FROM_3_9
    } else {
        BEFORE_3_9
    }
}

/// `kong_upstream_latency_ms` and `kong_request_latency_ms` buckets
/// (`UPSTREAM_LATENCY_BUCKETS`, unchanged through 3.x).
pub const UPSTREAM_LATENCY_BUCKETS: &[u64] = &[
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];

/// `/status/ready` exists from 3.3.
pub fn has_ready_endpoint(version: KongVersion) -> bool {
    at_least(version, 3, 3)
}

/// `kong drain` exists from 3.9.
pub fn has_drain_command(version: KongVersion) -> bool {
    at_least(version, 3, 9)
}

/// key-auth's answer to a key it does not know: `Unauthorized` from 3.6.
pub fn key_auth_invalid_key_message(version: KongVersion) -> &'static str {
    if at_least(version, 3, 6) {
        "Unauthorized"
    } else {
        "Invalid authentication credentials"
    }
}

/// key-auth's `WWW-Authenticate`: `Key` from 3.7 (no realm configured), `Key realm="kong"` before.
pub fn key_auth_www_authenticate(version: KongVersion) -> &'static str {
    if at_least(version, 3, 7) {
        "Key"
    } else {
        "Key realm=\"kong\""
    }
}

/// Hybrid compatibility as the control plane judges it: same major, and the data plane's
/// minor not above the control plane's (patch and build ignored).
pub fn dp_compatible(control_plane: KongVersion, data_plane: KongVersion) -> bool {
    control_plane.major == data_plane.major && data_plane.minor <= control_plane.minor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KongVersion {
        s.parse().unwrap()
    }

    #[test]
    fn via_follows_rfc_7230_from_3_8() {
        assert_eq!(via_header(v("3.10.0")), "1.1 kong/3.10.0");
        assert_eq!(via_header(v("3.4.2")), "kong/3.4.2");
        assert_eq!(
            via_header(v("3.10.0.1")),
            "1.1 kong/3.10.0.1-enterprise-edition"
        );
    }

    #[test]
    fn data_plane_minor_above_control_plane_is_incompatible() {
        assert!(dp_compatible(v("3.10.0.1"), v("3.4.3.12")));
        assert!(!dp_compatible(v("3.4.3.12"), v("3.10.0.1")));
        assert!(dp_compatible(v("3.9.0"), v("3.9.2")));
        assert!(!dp_compatible(v("4.0.0"), v("3.9.0")));
    }
}

//! How Kong's answers change with its version: the lab's nodes answer as the version they
//! run. Each rule is read from Kong's open-source code at the tags named (`docs/kong/`
//! holds the readings, `tests/fixtures/kong/` the answers written from them, and the lab's
//! conformance test compares the two). Kong Enterprise (four-part versions) is closed
//! source: where the lab answers for it, it answers as the open-source code of the same
//! `major.minor.patch` does, which is unverified.

use crate::plan::version::KongVersion;

fn at_least(version: KongVersion, major: u32, minor: u32) -> bool {
    version.minor_line() >= (major, minor)
}

/// `GET /` has `edition` from 3.6.0 (kong/api/routes/kong.lua:133@3.6.0; absent @3.4.2).
pub fn has_edition(version: KongVersion) -> bool {
    at_least(version, 3, 6)
}

/// `edition`: `"enterprise"` when `meta._VERSION` contains `enterprise`, else
/// `"community"` (kong/api/routes/kong.lua:133@3.9.1). The lab takes four-part versions for
/// Enterprise builds; Enterprise's `_VERSION` format is unverified.
pub fn edition(version: KongVersion) -> &'static str {
    if version.is_enterprise_form() {
        "enterprise"
    } else {
        "community"
    }
}

/// `meta._VERSION`, what `Server`, `Via` and `kong version` show. Open source: `X.Y.Z`
/// (kong/meta.lua). The `-enterprise-edition` suffix of Enterprise builds is unverified.
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

/// `jit.version` as `GET /` reports it (`lua_version`): OpenResty 1.19.9.1 (2.8) and
/// 1.21.4.1 (3.0–3.4) ship LuaJIT 2.1.0-beta3; later ones a rolling LuaJIT 2.1 whose build
/// number the lab invents (.requirements@tags; docs/kong/admin-and-status-api.md).
pub fn lua_version(version: KongVersion) -> &'static str {
    if at_least(version, 3, 5) {
        "LuaJIT 2.1.1723681758"
    } else {
        "LuaJIT 2.1.0-beta3"
    }
}

/// `plugins.available_on_server` maps each plugin to `{version, priority}` from 3.0.0, to
/// `true` before (kong/api/routes/kong.lua:104@2.8.5, :94-100,116@3.4.2).
pub fn plugins_with_versions(version: KongVersion) -> bool {
    at_least(version, 3, 0)
}

/// `/status` keeps `database` on DB-less nodes and data planes only before 3.0
/// (`status_response.database = nil`, kong/api/routes/health.lua:55@3.4.2; present @2.8.5).
pub fn dbless_status_has_database(version: KongVersion) -> bool {
    !at_least(version, 3, 0)
}

/// `/status/ready` exists from 3.3.0, on the Status API only (kong/status/ready.lua,
/// kong/status/init.lua:29@3.4.2).
pub fn has_ready_endpoint(version: KongVersion) -> bool {
    at_least(version, 3, 3)
}

/// `kong drain` and `POST /status/ready` `status=draining` exist from 3.9.0
/// (kong/status/ready.lua:106-134@3.9.1).
pub fn has_drain_command(version: KongVersion) -> bool {
    at_least(version, 3, 9)
}

/// Admin API responses carry `Access-Control-Allow-Credentials: true` from 3.4.0
/// (`cors_filter`, kong/api/api_helpers.lua:270-288@3.4.2); the Status API never does.
pub fn admin_allows_credentials(version: KongVersion) -> bool {
    at_least(version, 3, 4)
}

/// `Access-Control-Allow-Origin` echoes the request's `Origin` from 3.0 (kong/init.lua:1624
/// @3.4.2); 2.8.5 always sends `*` (kong/init.lua:1421@2.8.5).
pub fn echoes_origin(version: KongVersion) -> bool {
    at_least(version, 3, 0)
}

/// The `Via` header on proxied responses: `1.1 kong/3.10.0` from 3.8.0, `kong/3.4.2` before
/// (kong/runloop/handler.lua:1495-1496@3.4.2, :1551-1570@3.9.1).
pub fn via_header(version: KongVersion) -> String {
    if at_least(version, 3, 8) {
        format!("1.1 {}", server_tokens(version))
    } else {
        server_tokens(version)
    }
}

/// `Server` on a proxied response whose upstream sent none: `kong/<v>` from 3.8.0
/// (kong/runloop/handler.lua:1573-1577@3.9.1); before, nginx's own, which Kong's
/// `server_tokens off;` makes `openresty` (kong/templates/nginx_kong.lua).
pub fn proxied_server_header(version: KongVersion) -> String {
    if at_least(version, 3, 8) {
        server_tokens(version)
    } else {
        "openresty".to_string()
    }
}

/// `X-Kong-Request-Id` on every proxy response from 3.5.0 (`REQUEST_ID`,
/// kong/constants.lua:128@3.9.1, absent @3.4.2).
pub fn sends_request_id(version: KongVersion) -> bool {
    at_least(version, 3, 5)
}

/// The body `kong.response.error` writes for `message` (JSON, the default when the
/// request's `Accept` names no other type): a template, byte for byte, from 2.8.5
/// (kong/tools/utils.lua:1295@2.8.5, :1433@3.4.2), with the request id from 3.5.0
/// (kong/tools/http.lua:409-413@3.9.1).
pub fn error_body(version: KongVersion, message: &str, request_id: &str) -> String {
    if sends_request_id(version) {
        format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{request_id}\"\n}}")
    } else {
        format!("{{\n  \"message\":\"{message}\"\n}}")
    }
}

/// Kong's answer when no route matches: `kong.response.exit` with a table (cjson) on 2.8.5
/// (kong/runloop/handler.lua:1298@2.8.5), `kong.response.error` from 3.0
/// (handler.lua:1151@3.4.2).
pub fn no_route_body(version: KongVersion, request_id: &str) -> String {
    const MESSAGE: &str = "no Route matched with those values";
    if at_least(version, 3, 0) {
        error_body(version, MESSAGE, request_id)
    } else {
        format!("{{\"message\":\"{MESSAGE}\"}}")
    }
}

/// `next` links of top-level collections carry `&size=` from 3.1.0
/// (kong/api/endpoints.lua:299-324@2.8.5, :314-316@3.4.2).
pub fn next_link_carries_size(version: KongVersion) -> bool {
    at_least(version, 3, 1)
}

/// `/key-sets` (and `/keys`) exist from 3.1.0 (kong/db/schema/entities/key_sets.lua).
pub fn has_key_sets(version: KongVersion) -> bool {
    at_least(version, 3, 1)
}

/// `/vaults` from 3.0.0; 2.8.5 names it `/vaults-beta`.
pub fn vaults_path(version: KongVersion) -> &'static str {
    if at_least(version, 3, 0) {
        "vaults"
    } else {
        "vaults-beta"
    }
}

/// `/filter-chains` exists from 3.4.0 and answers 400 while `wasm = off`, the default
/// (kong/api/routes/filter_chains.lua:8-13@3.4.2).
pub fn has_filter_chains(version: KongVersion) -> bool {
    at_least(version, 3, 4)
}

/// The open-source Admin API lists `/workspaces` up to 3.6.x; from 3.7.0 the entity has
/// `generate_admin_api = false` and the path is a 404 (kong/db/schema/entities/
/// workspaces.lua:10@3.9.1, commit 6470d9bf92).
pub fn lists_workspaces(version: KongVersion) -> bool {
    !at_least(version, 3, 7)
}

/// Rows of `workspaces` and `clustering_data_planes` have `updated_at` from 3.3.0
/// (kong/db/migrations/core/019_320_to_330.lua; clustering_data_planes.lua@3.3.0).
pub fn has_updated_at(version: KongVersion) -> bool {
    at_least(version, 3, 3)
}

/// `clustering_data_planes.labels` from 3.5.0 (a control plane stores them,
/// kong/clustering/control_plane.lua:237@3.5.0).
pub fn data_plane_rows_have_labels(version: KongVersion) -> bool {
    at_least(version, 3, 5)
}

/// Data planes send their labels from 3.3.0 (kong/clustering/data_plane.lua:131-152
/// @3.4.2): `{}` without `cluster_dp_labels`; older ones send none, stored as `null`.
pub fn data_plane_sends_labels(version: KongVersion) -> bool {
    at_least(version, 3, 3)
}

/// `clustering_data_planes.cert_details` from 3.6.0.
pub fn data_plane_rows_have_cert_details(version: KongVersion) -> bool {
    at_least(version, 3, 6)
}

/// `clustering_data_planes.rpc_capabilities` from 3.7.0.
pub fn data_plane_rows_have_rpc_capabilities(version: KongVersion) -> bool {
    at_least(version, 3, 7)
}

/// `cluster_rpc_sync` exists on master (3.10.0) only: 3.9 had `cluster_incremental_sync`
/// instead, which the lab does not model (kong/templates/kong_defaults.lua@3.9.0/@master).
pub fn has_rpc_sync(version: KongVersion) -> bool {
    at_least(version, 3, 10)
}

/// The prometheus plugin's families: 2.8's (`kong_http_status`, `kong_latency`,
/// `kong_bandwidth`, `kong_nginx_http_current_connections`, no flags) before 3.0, 3.x's
/// (`kong_http_requests_total`, `kong_*_latency_ms`, flags) from 3.0
/// (kong/plugins/prometheus/exporter.lua@2.8.5, @3.4.2).
pub fn prometheus_3x(version: KongVersion) -> bool {
    at_least(version, 3, 0)
}

/// The prometheus plugin labels its per-route series with `workspace` from 3.7.0.
pub fn has_workspace_label(version: KongVersion) -> bool {
    at_least(version, 3, 7)
}

/// A control plane prints `kong_nginx_metric_errors_total` up to 3.4: from 3.5 the
/// exporter learns the plugin is enabled in `configure`, which never runs on a control
/// plane (exporter.lua 3.4.2:38-88, 3.9.1:208-210; docs/kong/metrics.md).
pub fn control_plane_prints_metric_errors(version: KongVersion) -> bool {
    !at_least(version, 3, 5)
}

/// `kong_control_plane_connected`, on data planes, exists on master (3.10.0) only
/// (exporter.lua master:70, 476-483).
pub fn has_control_plane_connected_metric(version: KongVersion) -> bool {
    at_least(version, 3, 10)
}

/// 2.8's `kong_latency` buckets, for every `type` (`DEFAULT_BUCKETS`, exporter.lua:21@2.8.5).
pub const LATENCY_BUCKETS_2_8: &[u64] = &[
    1, 2, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100, 200, 300, 400, 500, 1000, 2000,
    5000, 10000, 30000, 60000,
];

/// `kong_kong_latency_ms` buckets (`KONG_LATENCY_BUCKETS`): 15 bounds up to 3.8.0, 17 from
/// 3.8.1 (exporter.lua:20@3.8.0, :20@3.8.1, :23@3.9.1).
pub fn kong_latency_buckets(version: KongVersion) -> &'static [u64] {
    const BEFORE_3_8_1: &[u64] = &[1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000];
    const FROM_3_8_1: &[u64] = &[
        1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000,
    ];
    if (version.major, version.minor, version.patch) >= (3, 8, 1) {
        FROM_3_8_1
    } else {
        BEFORE_3_8_1
    }
}

/// `kong_upstream_latency_ms` and `kong_request_latency_ms` buckets
/// (`UPSTREAM_LATENCY_BUCKETS`, exporter.lua:21@3.4.2, unchanged through master).
pub const UPSTREAM_LATENCY_BUCKETS: &[u64] = &[
    25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000,
];

/// The http shared dictionaries `/status` and `/metrics` report, with (allocated slabs,
/// capacity) in bytes, in Kong's order (kong/templates/nginx_kong.lua at each tag; the
/// `prometheus_metrics` shm is added by kong/conf_loader/init.lua:2043-2065@3.4.2):
/// `kong_process_events` on 2.8 only, the four `*_2` caches on DB-less 2.8 nodes,
/// `kong_secrets` from 3.0. Capacities are Kong's defaults; allocations are the lab's.
pub fn shared_dicts(version: KongVersion, dbless: bool) -> Vec<(&'static str, u64, u64)> {
    const MIB: u64 = 1_048_576;
    let mut dicts = vec![
        ("kong", 40_960, 5 * MIB),
        ("kong_locks", 61_440, 8 * MIB),
        ("kong_healthchecks", 40_960, 5 * MIB),
    ];
    if !at_least(version, 3, 0) {
        dicts.push(("kong_process_events", 40_960, 5 * MIB));
    }
    dicts.extend([
        ("kong_cluster_events", 40_960, 5 * MIB),
        ("kong_rate_limiting_counters", 81_920, 12 * MIB),
        ("kong_core_db_cache", 802_816, 128 * MIB),
        ("kong_core_db_cache_miss", 81_920, 12 * MIB),
        ("kong_db_cache", 794_624, 128 * MIB),
        ("kong_db_cache_miss", 81_920, 12 * MIB),
    ]);
    if dbless && !at_least(version, 3, 0) {
        dicts.extend([
            ("kong_core_db_cache_2", 802_816, 128 * MIB),
            ("kong_core_db_cache_miss_2", 81_920, 12 * MIB),
            ("kong_db_cache_2", 794_624, 128 * MIB),
            ("kong_db_cache_miss_2", 81_920, 12 * MIB),
        ]);
    }
    if at_least(version, 3, 0) {
        dicts.push(("kong_secrets", 40_960, 5 * MIB));
    }
    dicts.push(("prometheus_metrics", 49_152, 5 * MIB));
    dicts
}

/// key-auth's answer to a key it does not know: `Unauthorized` from 3.6.0
/// (kong/plugins/key-auth/handler.lua:33@3.6.0).
pub fn key_auth_invalid_key_message(version: KongVersion) -> &'static str {
    if at_least(version, 3, 6) {
        "Unauthorized"
    } else {
        "Invalid authentication credentials"
    }
}

/// key-auth's `WWW-Authenticate`: `Key` from 3.7.0 (no realm configured), `Key realm="kong"`
/// before (kong/plugins/key-auth/handler.lua:114@3.7.0, :28@3.6.0).
pub fn key_auth_www_authenticate(version: KongVersion) -> &'static str {
    if at_least(version, 3, 7) {
        "Key"
    } else {
        "Key realm=\"kong\""
    }
}

/// Hybrid compatibility as the control plane judges it: same major, and the data plane's
/// minor not above the control plane's (patch and build ignored;
/// kong/clustering/compat/init.lua:38-75@3.9.1).
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
        assert!(!dp_compatible(v("3.4.2"), v("2.8.5")));
    }

    #[test]
    fn kong_latency_gains_two_buckets_in_3_8_1() {
        assert_eq!(kong_latency_buckets(v("3.8.0")).len(), 15);
        assert_eq!(kong_latency_buckets(v("3.8.1")).len(), 17);
        assert_eq!(kong_latency_buckets(v("3.4.3.12")).len(), 15);
    }
}

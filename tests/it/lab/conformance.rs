//! The lab against the Kong corpus (`tests/fixtures/kong/`): for every corpus answer the lab
//! has a counterpart of, a lab node of the file's Kong version is asked the same thing and
//! its answer compared with the file. Same status; the headers Kong sets present in the same
//! form; for JSON, the same keys at every level, the same JSON types and the same nulls and
//! absences (values may differ, Kong's messages may not); for `/metrics`, the same families
//! with the same HELP and TYPE, the same label names, the same bucket bounds (each lab
//! series a suffix of Kong's, as Kong prints sparse cumulative buckets), in Kong's bytewise
//! key order, with Lua's `%.14g` numbers. A corpus file without a lab counterpart must be
//! listed in [`EXCEPTIONS`] with the reason; an unlisted one fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kongup::plan::model::{Mode, Role, Strategy};
use kongup::plan::steps::ClusterSide;
use kongup::plan::version::KongVersion;
use kongup::sim::node::{Build, NodeSpec};
use kongup::sim::scenarios::{DatabasePlan, Scenario, Topology};
use kongup::sim::{DEMO_API_KEY, Fault, Lab, LabOptions, MetricsFlags, NodeEndpoint};
use kongup::testkit::corpus::{self, CorpusFile, HttpResponse};
use serde_json::Value;

/// Corpus files the lab has no counterpart of, and why.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "3.4.2",
        "status_ready_503_no_config_hash.http",
        "a node whose routers are built but whose configuration hash was never set: the lab's \
         DB-less nodes and data planes load the empty configuration at start, as Kong's do",
    ),
    (
        "3.9.1",
        "status_ready_503_no_config_hash.http",
        "as for 3.4.2",
    ),
    (
        "3.10.0",
        "status_ready_503_no_config_hash.http",
        "as for 3.4.2",
    ),
    (
        "3.9.1",
        "status_dp_incremental_sync.http",
        "3.9's cluster_incremental_sync is not modelled (the lab models 3.10's rpc sync)",
    ),
    (
        "3.9.1",
        "clustering_data_planes_incremental_sync.http",
        "3.9's cluster_incremental_sync is not modelled (the lab models 3.10's rpc sync)",
    ),
];

/// `/metrics` families of the corpus the lab does not print, and why.
const FAMILY_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "2.8.5",
    "kong_upstream_target_health",
    "the lab's services name hosts, not upstream entities: Kong exports no target health for \
     them",
)];

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client")
}

fn version(text: &str) -> KongVersion {
    text.parse().expect("a corpus version")
}

fn database(name: &str, bootstrapped_by: Option<KongVersion>) -> DatabasePlan {
    DatabasePlan {
        name: name.to_string(),
        cluster: ClusterSide::X,
        host: "db-x.lab.invalid".to_string(),
        port: 5432,
        user: "kong".to_string(),
        bootstrapped_by,
    }
}

fn spec(name: &str, cluster: ClusterSide, role: Role, v: KongVersion) -> NodeSpec {
    let database = match role {
        Role::Traditional => Some("kong".to_string()),
        Role::ControlPlane => Some("kong_cp".to_string()),
        Role::DataPlane => None,
    };
    NodeSpec {
        name: name.to_string(),
        cluster,
        role,
        dbless: role == Role::DataPlane,
        version: v,
        database,
        control_plane: (role == Role::DataPlane).then(|| "cp-1".to_string()),
    }
}

/// A lab whose nodes all run `v`: a traditional node `kong-1` on its database, a control
/// plane `cp-1` on its own and two data planes `dp-1`, `dp-2` reporting to it.
fn corpus_topology(v: KongVersion) -> Topology {
    Topology {
        scenario: Scenario::Hybrid,
        mode: Mode::Hybrid,
        from: v,
        to: v,
        strategy: Strategy::DualCluster,
        nodes: vec![
            spec("kong-1", ClusterSide::X, Role::Traditional, v),
            spec("cp-1", ClusterSide::X, Role::ControlPlane, v),
            spec("dp-1", ClusterSide::X, Role::DataPlane, v),
            spec("dp-2", ClusterSide::X, Role::DataPlane, v),
        ],
        databases: vec![database("kong", Some(v)), database("kong_cp", Some(v))],
        shared_backends: Vec::new(),
    }
}

/// A data plane running `v` whose control plane is not installed: it never got a
/// configuration.
fn lone_data_plane_topology(v: KongVersion) -> Topology {
    Topology {
        nodes: vec![
            spec("cp-1", ClusterSide::Y, Role::ControlPlane, v),
            spec("dp-1", ClusterSide::X, Role::DataPlane, v),
        ],
        databases: vec![database("kong_cp", Some(v))],
        ..corpus_topology(v)
    }
}

async fn start(topology: Topology, options: LabOptions) -> Lab {
    Lab::start_with(topology, options)
        .await
        .expect("the conformance lab starts")
}

fn node<'a>(lab: &'a [NodeEndpoint], name: &str) -> &'a NodeEndpoint {
    lab.iter().find(|n| n.name == name).expect("node in lab")
}

fn admin(lab: &Lab, name: &str) -> String {
    node(&lab.endpoints().nodes, name)
        .admin
        .clone()
        .expect("an Admin API")
}

fn status(lab: &Lab, name: &str) -> String {
    node(&lab.endpoints().nodes, name).status.clone()
}

fn proxy(lab: &Lab, name: &str) -> String {
    node(&lab.endpoints().nodes, name)
        .proxy
        .clone()
        .expect("a proxy")
}

async fn fetch(request: reqwest::RequestBuilder) -> HttpResponse {
    let response = request.send().await.expect("the lab answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response.text().await.expect("a body");
    HttpResponse {
        status,
        headers,
        body,
    }
}

async fn get(url: String) -> HttpResponse {
    fetch(client().get(url)).await
}

/// Requests through a proxy that Kong's exporter counts: proxied ones, and key-auth's 401.
async fn send_traffic(proxy: &str) {
    let client = client();
    for _ in 0..6 {
        let r = client.get(format!("{proxy}/orders")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for key in [None, Some(DEMO_API_KEY)] {
        let mut request = client.get(format!("{proxy}/secure"));
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        request.send().await.unwrap();
    }
}

/// The lab's answer to what `file` records, or why the lab has none.
async fn lab_answer(file: &CorpusFile) -> HttpResponse {
    let v = version(file.version);
    let lab = start(corpus_topology(v), LabOptions::default()).await;
    match file.name.as_str() {
        "admin_root.http" => get(format!("{}/", admin(&lab, "kong-1"))).await,
        "admin_root_cp.http" => get(format!("{}/", admin(&lab, "cp-1"))).await,
        "status_traditional.http" => get(format!("{}/status", status(&lab, "kong-1"))).await,
        "status_cp.http" => get(format!("{}/status", status(&lab, "cp-1"))).await,
        "status_dp.http" => get(format!("{}/status", status(&lab, "dp-1"))).await,
        "status_dp_empty_config.http" => {
            let lab = start(lone_data_plane_topology(v), LabOptions::default()).await;
            get(format!("{}/status", status(&lab, "dp-1"))).await
        }
        "status_ready_503_empty_config.http" => {
            let lab = start(lone_data_plane_topology(v), LabOptions::default()).await;
            get(format!("{}/status/ready", status(&lab, "dp-1"))).await
        }
        "status_dp_rpc_sync.http" => {
            let lab = start(corpus_topology(v), rpc_sync()).await;
            get(format!("{}/status", status(&lab, "dp-1"))).await
        }
        "clustering_data_planes_rpc_sync.http" => {
            let lab = start(corpus_topology(v), rpc_sync()).await;
            get(format!("{}/clustering/data-planes", admin(&lab, "cp-1"))).await
        }
        "status_ready_503_database.http" => {
            let lab = start(corpus_topology(v), LabOptions::default()).await;
            lab.apply_fault(&Fault::DatabaseDown {
                cluster: ClusterSide::X,
            })
            .await
            .expect("the database goes down");
            get(format!("{}/status/ready", status(&lab, "kong-1"))).await
        }
        "status_ready_503_router.http" => held(&lab, "kong-1", 0, 0).await,
        "status_ready_503_plugins_iterator.http" => held(&lab, "kong-1", 2, 0).await,
        "status_ready_503_dbless_router.http" => held(&lab, "dp-1", 1, 0).await,
        "status_ready_503_dbless_plugins_iterator.http" => held(&lab, "dp-1", 2, 1).await,
        "status_ready_200.http" | "status_ready_404.http" => {
            get(format!("{}/status/ready", status(&lab, "kong-1"))).await
        }
        "status_ready_post_draining_204.http" => {
            let url = format!("{}/status/ready", status(&lab, "kong-1"));
            fetch(client().post(url).body("status=draining")).await
        }
        "status_ready_503_draining.http" => {
            let url = format!("{}/status/ready", status(&lab, "kong-1"));
            fetch(client().post(&url).body("status=draining")).await;
            get(url).await
        }
        "clustering_data_planes.http" => {
            get(format!(
                "{}/clustering/data-planes?size=1",
                admin(&lab, "cp-1")
            ))
            .await
        }
        "clustering_data_planes_page2.http" => {
            let base = admin(&lab, "cp-1");
            let first = get(format!("{base}/clustering/data-planes?size=1")).await;
            let next = first.json()["next"]
                .as_str()
                .expect("a next link on the first page")
                .to_string();
            get(format!("{base}{next}")).await
        }
        "clustering_data_planes_not_cp.http" => {
            get(format!("{}/clustering/data-planes", admin(&lab, "kong-1"))).await
        }
        "proxy_404.http" => get(format!("{}/nowhere", proxy(&lab, "kong-1"))).await,
        "collection_key_sets.http" => {
            get(format!("{}/key-sets?size=1", admin(&lab, "kong-1"))).await
        }
        "collection_key_sets_last.http" => {
            let base = admin(&lab, "kong-1");
            let mut page = get(format!("{base}/key-sets?size=1")).await;
            while let Some(next) = page.json()["next"].as_str().map(str::to_string) {
                page = get(format!("{base}{next}")).await;
            }
            page
        }
        "filter_chains_wasm_off.http" => {
            get(format!("{}/filter-chains", admin(&lab, "kong-1"))).await
        }
        "workspaces_oss.http" => get(format!("{}/workspaces", admin(&lab, "kong-1"))).await,
        other => panic!(
            "{}/{other} has no lab counterpart and is not in EXCEPTIONS: give the lab one, or \
             list it with the reason",
            file.version
        ),
    }
}

fn rpc_sync() -> LabOptions {
    LabOptions {
        rpc_sync: true,
        ..LabOptions::default()
    }
}

/// `/status/ready` of a node held mid-start: routers and plugins iterators built by that
/// many of its two workers.
async fn held(lab: &Lab, name: &str, routers: u32, plugins_iterators: u32) -> HttpResponse {
    lab.hold_startup(
        name,
        Build {
            routers,
            plugins_iterators,
        },
    )
    .expect("the node runs");
    get(format!("{}/status/ready", status(lab, name))).await
}

fn excepted(table: &[(&str, &str, &str)], version: &str, name: &str) -> bool {
    table.iter().any(|(v, n, _)| *v == version && *n == name)
}

/// Headers Kong itself sets, compared by presence and form.
const KONG_HEADERS: &[&str] = &[
    "content-type",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "server",
    "via",
    "x-kong-admin-latency",
    "x-kong-response-latency",
    "x-kong-upstream-latency",
    "x-kong-proxy-latency",
    "x-kong-request-id",
];

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response.header(name)
}

fn compare_headers(lab: &HttpResponse, kong: &HttpResponse, problems: &mut Vec<String>) {
    for name in KONG_HEADERS {
        match (header(lab, name), header(kong, name)) {
            (None, None) => {}
            (Some(l), None) => {
                problems.push(format!("header {name}: the lab sends {l:?}, Kong none"))
            }
            (None, Some(k)) => problems.push(format!("header {name}: missing (Kong sends {k:?})")),
            (Some(l), Some(k)) => {
                let same_form = if name.ends_with("latency") {
                    l.parse::<u64>().is_ok()
                } else if *name == "x-kong-request-id" {
                    l.len() == 32 && l.chars().all(|c| c.is_ascii_hexdigit())
                } else {
                    l == k
                };
                if !same_form {
                    problems.push(format!("header {name}: the lab sends {l:?}, Kong {k:?}"));
                }
            }
        }
    }
}

/// Keys whose values are Kong's own words, compared exactly.
const EXACT_KEYS: &[&str] = &[
    "message",
    "tagline",
    "edition",
    "sync_status",
    "role",
    "database",
];

/// Objects whose keys are data (a data plane's labels), compared as string maps.
const MAP_KEYS: &[&str] = &["labels"];

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn compare_json(path: &str, lab: &Value, kong: &Value, problems: &mut Vec<String>) {
    let key = path.rsplit(['.', ']']).next().unwrap_or(path);
    if json_type(lab) != json_type(kong) {
        problems.push(format!(
            "{path}: the lab sends {} ({lab}), Kong {} ({kong})",
            json_type(lab),
            json_type(kong)
        ));
        return;
    }
    if EXACT_KEYS.contains(&key) && lab != kong {
        problems.push(format!("{path}: the lab says {lab}, Kong {kong}"));
    }
    match (lab, kong) {
        (Value::Object(l), Value::Object(_))
            if MAP_KEYS.contains(&key) && !l.values().all(Value::is_string) =>
        {
            problems.push(format!("{path}: not a map of strings: {lab}"));
        }
        (Value::Object(_), Value::Object(_)) if MAP_KEYS.contains(&key) => {}
        (Value::Object(l), Value::Object(k)) => {
            let lk: BTreeSet<&String> = l.keys().collect();
            let kk: BTreeSet<&String> = k.keys().collect();
            for extra in lk.difference(&kk) {
                problems.push(format!("{path}.{extra}: the lab sends it, Kong does not"));
            }
            for missing in kk.difference(&lk) {
                problems.push(format!(
                    "{path}.{missing}: missing (Kong sends {})",
                    k[*missing]
                ));
            }
            for name in lk.intersection(&kk) {
                compare_json(&format!("{path}.{name}"), &l[*name], &k[*name], problems);
            }
        }
        (Value::Array(l), Value::Array(k)) => {
            if let Some(model) = k.first() {
                for item in l {
                    compare_json(&format!("{path}[]"), item, model, problems);
                }
            }
        }
        _ => {}
    }
}

/// `next` links with their offset and size values blanked: the form Kong writes them in.
fn link_form(link: &str) -> String {
    link.split('&')
        .map(|part| match part.split_once('=') {
            Some((name, _)) => format!("{name}=…"),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn compare(file: &CorpusFile, lab: &HttpResponse, kong: &HttpResponse) -> Vec<String> {
    let mut problems = Vec::new();
    if lab.status != kong.status {
        problems.push(format!("status {} (Kong {})", lab.status, kong.status));
    }
    compare_headers(lab, kong, &mut problems);
    if kong.body.is_empty() {
        if !lab.body.is_empty() {
            problems.push(format!("a body {:?} where Kong sends none", lab.body));
        }
        return problems;
    }
    let Ok(lab_json) = serde_json::from_str::<Value>(&lab.body) else {
        problems.push(format!("the body is not JSON: {:?}", lab.body));
        return problems;
    };
    let kong_json = kong.json();
    compare_json("body", &lab_json, &kong_json, &mut problems);
    if let (Some(l), Some(k)) = (lab_json["next"].as_str(), kong_json["next"].as_str())
        && link_form(l) != link_form(k)
    {
        problems.push(format!("next link {l:?} is not of Kong's form {k:?}"));
    }
    // A data plane synced by RPC is recorded under its node id as hostname.
    let id_as_hostname = |rows: &Value| {
        rows["data"].as_array().map(|rows| {
            rows.iter()
                .map(|r| r["hostname"] == r["id"])
                .collect::<BTreeSet<_>>()
        })
    };
    if let (Some(l), Some(k)) = (id_as_hostname(&lab_json), id_as_hostname(&kong_json))
        && l != k
    {
        problems.push(format!(
            "data planes' hostname equal to their id: {l:?} in the lab, {k:?} in Kong's"
        ));
    }
    // Bodies Kong builds from a string template are compared byte for byte.
    if !kong.body.starts_with("{\n  \"") || file.name == "proxy_404.http" {
        let expected = match (
            kong.header("X-Kong-Request-Id"),
            lab.header("X-Kong-Request-Id"),
        ) {
            (Some(k), Some(l)) => kong.body.replace(k, l),
            _ => kong.body.clone(),
        };
        if lab.body != expected {
            problems.push(format!("body {:?}, Kong's is {expected:?}", lab.body));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_answer_of_the_corpus_has_the_shape_of_the_labs() {
    for (v, name, why) in EXCEPTIONS {
        assert!(
            corpus::dir().join(v).join(name).is_file(),
            "EXCEPTIONS names {v}/{name}, which the corpus does not have ({why})"
        );
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for file in corpus::files("", ".http") {
        if excepted(EXCEPTIONS, file.version, &file.name) {
            continue;
        }
        let kong = corpus::http(&file);
        let lab = lab_answer(&file).await;
        compared += 1;
        for problem in compare(&file, &lab, &kong) {
            failures.push(format!("{}/{}: {problem}", file.version, file.name));
        }
    }
    assert_eq!(
        compared + EXCEPTIONS.len(),
        corpus::files("", ".http").len(),
        "every corpus answer is compared or listed as an exception"
    );
    assert!(
        failures.is_empty(),
        "{} differences from Kong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One sample: family, sample name, labels in order, the value as printed.
type Sample = (String, String, Vec<(String, String)>, String);

/// One `/metrics` exposition, read line by line as Kong writes it.
#[derive(Debug, Default)]
struct Exposition {
    /// Family → (HELP text, TYPE).
    families: BTreeMap<String, (String, String)>,
    samples: Vec<Sample>,
    /// Whether HELP and TYPE came right before each family's first sample.
    problems: Vec<String>,
}

fn parse_labels(body: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = body;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push((name.trim_start_matches(',').to_string(), value));
        rest = &after[end..];
    }
    labels
}

fn parse_exposition(text: &str) -> Exposition {
    let mut out = Exposition::default();
    let mut help: Option<(String, String)> = None;
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name.to_string(), text.to_string()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match help.take() {
                Some((h, text)) if h == name => {
                    out.families
                        .insert(name.to_string(), (text, kind.to_string()));
                }
                _ => out
                    .problems
                    .push(format!("# TYPE {name} without its # HELP")),
            }
            current = Some(name.to_string());
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap_or(rest))),
            None => (series, Vec::new()),
        };
        let family = current.clone().unwrap_or_default();
        let belongs = name == family
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family.as_str()));
        if !belongs {
            out.problems
                .push(format!("{name} printed without its family's # HELP/# TYPE"));
        }
        out.samples
            .push((family, name.to_string(), labels, value.to_string()));
    }
    out
}

/// The bounds of a family's buckets, as numbers, in order (from all its series).
fn bounds(exposition: &Exposition, family: &str) -> Vec<String> {
    let mut all: Vec<String> = exposition
        .samples
        .iter()
        .filter(|(f, name, _, _)| f == family && name.ends_with("_bucket"))
        .filter_map(|(_, _, labels, _)| {
            labels
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| v.clone())
        })
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    all.sort_by(|a, b| le_value(a).total_cmp(&le_value(b)));
    all
}

fn le_value(le: &str) -> f64 {
    if le == "+Inf" {
        f64::INFINITY
    } else {
        le.parse().expect("a numeric le")
    }
}

/// Kong's sort key of a sample (prometheus.lua `metric_data`: `table_sort(keys)` on keys
/// whose `le` is zero-padded by `construct_bucket_format`).
fn kong_key(name: &str, labels: &[(String, String)], width: usize) -> String {
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = if k == "le" && v != "+Inf" {
                format!("{:0width$.1}", le_value(v), width = width)
            } else if k == "le" {
                "Inf".to_string()
            } else {
                v.clone()
            };
            format!("{k}=\"{v}\"")
        })
        .collect();
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// Whether `value` is printed as LuaJIT's `tostring` (`%.14g`) prints a number.
fn lua_number(value: &str) -> bool {
    let Ok(number) = value.parse::<f64>() else {
        return false;
    };
    let printed = if number.fract() == 0.0 && number.abs() < 1e14 {
        format!("{number:.0}")
    } else {
        let exponent = number.abs().log10().floor() as i32;
        if (-5..14).contains(&exponent) {
            let decimals = (13 - exponent).max(0) as usize;
            let text = format!("{number:.decimals$}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            let text = format!("{number:.13e}");
            let (mantissa, exp) = text.split_once('e').unwrap();
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            let exp: i32 = exp.parse().unwrap();
            format!(
                "{mantissa}e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            )
        }
    };
    printed == value
}

fn compare_metrics(version: &str, lab: &Exposition, kong: &Exposition) -> Vec<String> {
    let mut problems: Vec<String> = lab.problems.clone();
    let kong_families: BTreeSet<&String> = kong
        .families
        .keys()
        .filter(|f| !excepted(FAMILY_EXCEPTIONS, version, f))
        .collect();
    let lab_families: BTreeSet<&String> = lab.families.keys().collect();
    for f in lab_families.difference(&kong_families) {
        problems.push(format!("family {f}: the lab prints it, Kong does not"));
    }
    for f in kong_families.difference(&lab_families) {
        problems.push(format!("family {f}: missing"));
    }
    for f in lab_families.intersection(&kong_families) {
        if lab.families[*f] != kong.families[*f] {
            problems.push(format!(
                "family {f}: HELP/TYPE {:?}, Kong's {:?}",
                lab.families[*f], kong.families[*f]
            ));
        }
    }
    let label_names = |e: &Exposition| -> BTreeMap<String, BTreeSet<Vec<String>>> {
        let mut out: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (_, name, labels, _) in &e.samples {
            out.entry(name.clone())
                .or_default()
                .insert(labels.iter().map(|(k, _)| k.clone()).collect());
        }
        out
    };
    let (lab_labels, kong_labels) = (label_names(lab), label_names(kong));
    for (name, names) in &lab_labels {
        if let Some(kong_names) = kong_labels.get(name)
            && names != kong_names
        {
            problems.push(format!("{name}: labels {names:?}, Kong's {kong_names:?}"));
        }
    }
    for (family, (_, kind)) in &kong.families {
        if kind != "histogram" || !lab.families.contains_key(family) {
            continue;
        }
        let kong_bounds = bounds(kong, family);
        let mut series: BTreeMap<Vec<(String, String)>, Vec<String>> = BTreeMap::new();
        for (f, name, labels, _) in &lab.samples {
            if f == family && name.ends_with("_bucket") {
                let (le, rest): (Vec<_>, Vec<_>) =
                    labels.iter().cloned().partition(|(k, _)| k == "le");
                series
                    .entry(rest)
                    .or_default()
                    .extend(le.into_iter().map(|(_, v)| v));
            }
        }
        for (labels, les) in series {
            if !kong_bounds.ends_with(&les) {
                problems.push(format!(
                    "{family}{labels:?}: buckets {les:?} are not an upper run of Kong's {kong_bounds:?}"
                ));
            }
        }
    }
    let width = |e: &Exposition| {
        e.families
            .keys()
            .flat_map(|f| bounds(e, f))
            .filter(|le| le != "+Inf")
            .map(|le| format!("{:.1}", le_value(&le)).len())
            .max()
            .unwrap_or(0)
    };
    for (which, e) in [("lab", lab), ("corpus", kong)] {
        let w = width(e);
        let keys: Vec<String> = e
            .samples
            .iter()
            .map(|(_, name, labels, _)| kong_key(name, labels, w))
            .collect();
        if let Some(pair) = keys.windows(2).find(|pair| pair[0] >= pair[1]) {
            problems.push(format!(
                "{which}: {} printed before {}: not Kong's order",
                pair[0], pair[1]
            ));
        }
    }
    for (_, name, labels, value) in &lab.samples {
        if !lua_number(value) {
            problems.push(format!(
                "{name}{labels:?} {value}: not how Lua prints a number"
            ));
        }
    }
    problems
}

/// The lab's `/metrics` for what a corpus exposition records.
async fn lab_metrics(file: &CorpusFile) -> String {
    let v = version(file.version);
    let (name, flags) = match file.name.as_str() {
        "metrics_traditional.txt" | "metrics_flags_on.txt" => ("kong-1", MetricsFlags::ALL_ON),
        "metrics_flags_off.txt" => ("kong-1", MetricsFlags::ALL_OFF),
        "metrics_dp.txt" => ("dp-1", MetricsFlags::ALL_ON),
        "metrics_cp.txt" => ("cp-1", MetricsFlags::ALL_ON),
        other => panic!("{}/{other} has no lab counterpart", file.version),
    };
    let lab = start(
        corpus_topology(v),
        LabOptions {
            metrics_flags: flags,
            ..LabOptions::default()
        },
    )
    .await;
    let endpoint = node(&lab.endpoints().nodes, name).clone();
    if let Some(proxy) = &endpoint.proxy {
        send_traffic(proxy).await;
    }
    get(format!("{}/metrics", endpoint.status)).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metrics_exposition_of_the_corpus_has_the_families_of_the_labs() {
    for (v, family, why) in FAMILY_EXCEPTIONS {
        let named = corpus::files("metrics_", ".txt")
            .iter()
            .any(|f| f.version == *v && f.text().contains(&format!("# TYPE {family} ")));
        assert!(
            named,
            "FAMILY_EXCEPTIONS names {v} {family}, which the corpus lacks ({why})"
        );
    }
    let mut failures = Vec::new();
    let files = corpus::files("metrics_", ".txt");
    assert!(files.len() >= 15, "{} expositions", files.len());
    for file in files {
        let kong = parse_exposition(&file.text());
        let lab = parse_exposition(&lab_metrics(&file).await);
        for problem in compare_metrics(file.version, &lab, &kong) {
            failures.push(format!("{}/{}: {problem}", file.version, file.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences from Kong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

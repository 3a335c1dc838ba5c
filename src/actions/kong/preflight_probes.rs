//! Preflight's read-only probes of what the traffic stages depend on: that the traffic
//! driver can read the split back (a wrong socket or server name would otherwise surface
//! at the first stage), and that X's `/metrics` carries the series the gates judge
//! (Kong 3.x's prometheus plugin exports them only when `status_code_metrics` /
//! `latency_metrics` are on, off by default since 3.0; Kong 2.x exports its own families
//! with no flag; without them every gated stage ends inconclusive).
//! Nothing here changes anything.

use std::path::Path;
use std::time::Duration;

use crate::engine::event::Event;
use crate::engine::step::{StepContext, driver_deadline};
use crate::exec::process::kill_on_drop;
use crate::kong::client::AdminClient;
use crate::lb::{ReadBackSource, Split, TrafficDriver};
use crate::metrics::Exporter;
use crate::metrics::monitor::ScrapeTarget;
use crate::metrics::sample::{HTTP_REQUESTS_TOTAL, HTTP_STATUS, LATENCY_2X, Latency, NodeSample};
use crate::metrics::scrape::scrape_node;
use crate::plan::model::{GateSpec, Node, Plan, Role};
use crate::plan::steps::{ExpandedPlan, StepKind};

/// Bound on one node's `/metrics` scrape, body included.
pub const METRICS_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The preview line for the traffic probe.
pub(super) fn describe_traffic(driver: &dyn TrafficDriver) -> String {
    match driver.read_back_source() {
        ReadBackSource::LoadBalancer => {
            format!("read the current split back through {}", driver.describe())
        }
        ReadBackSource::WrittenFile(file) => format!(
            "read the current split back from {}, and check that kongup may write in its \
             directory",
            file.display()
        ),
        ReadBackSource::Operator | ReadBackSource::Nothing => format!(
            "note that the traffic driver cannot read the split back ({}): nothing to check \
             there",
            driver.describe()
        ),
    }
}

/// Reads the split back through the driver, within the driver's deadline; a driver that
/// cannot be read is a problem, one without a read-back a note.
pub(super) async fn check_traffic(
    ctx: &StepContext,
    problems: &mut Vec<String>,
    passed: &mut Vec<String>,
) {
    let driver = ctx.traffic.clone();
    let source = driver.read_back_source();
    if matches!(source, ReadBackSource::Operator | ReadBackSource::Nothing) {
        ctx.log.note(&format!(
            "traffic: {}; no read-back is possible, so preflight cannot check the load \
             balancer: make sure it sends all traffic to X before the first traffic stage",
            driver.describe()
        ));
        return;
    }
    if let ReadBackSource::WrittenFile(file) = &source
        && let Some(problem) = unwritable_directory(file)
    {
        problems.push(problem);
    }
    let deadline = driver_deadline(driver.as_ref());
    let read = tokio::select! {
        read = kill_on_drop(tokio::time::timeout(deadline, driver.read_split())) => read,
        _ = ctx.cancel.cancelled() => return,
    };
    match read {
        Err(_) => problems.push(format!(
            "the traffic driver ({}) did not answer a read of the split within {}s: check \
             that the load balancer is up and reachable; the first traffic stage would stop \
             the same way",
            driver.describe(),
            deadline.as_secs()
        )),
        Ok(Err(e)) => problems.push(format!(
            "the traffic driver cannot read the split: {e}. Fix the plan's traffic.driver \
             (socket, backend, server names, file) or the load balancer: the first traffic \
             stage would fail the same way"
        )),
        Ok(Ok(None)) => ctx.log.note(&format!(
            "traffic: {} gave no split back: nothing to check",
            driver.describe()
        )),
        Ok(Ok(Some(split))) => {
            let _ = ctx.events.send(Event::TrafficRead(split));
            ctx.log.note(&format!(
                "traffic: {split}, {}",
                read_from(&source, &*driver)
            ));
            if split != Split::ALL_X {
                ctx.log.note(&format!(
                    "traffic: Y already takes {}% of the requests; the first traffic stage \
                     sets the split anew",
                    split.y
                ));
            }
            passed.push(format!("traffic split read back ({split})"));
        }
    }
}

fn read_from(source: &ReadBackSource, driver: &dyn TrafficDriver) -> String {
    match source {
        ReadBackSource::WrittenFile(file) => format!(
            "as read from {}, the file kongup writes (what the load balancer was told to \
             load, not a live read)",
            file.display()
        ),
        _ => format!("as read back through {}", driver.describe()),
    }
}

/// The driver replaces `file` on every change, writing beside it: its directory must be
/// writable (checked with `access(2)`, which creates nothing).
fn unwritable_directory(file: &Path) -> Option<String> {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    nix::unistd::access(directory, nix::unistd::AccessFlags::W_OK)
        .err()
        .map(|errno| {
            format!(
                "kongup cannot write in {} ({errno}), where it replaces {} on every traffic \
                 change: give the user kongup runs as write access to that directory",
                directory.display(),
                file.display()
            )
        })
}

/// Which of the series behind Kong's optional flags the plan's gates read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GateNeeds {
    /// The 5xx-ratio thresholds set (`max_error_ratio`, `max_error_ratio_delta`).
    pub status_codes: Vec<&'static str>,
    /// The p99 thresholds set (`max_p99_ms`, `max_p99_ratio`).
    pub latency: Vec<&'static str>,
}

impl GateNeeds {
    pub fn of(gates: &GateSpec) -> GateNeeds {
        let set = |pairs: [(&'static str, Option<f64>); 2]| {
            pairs
                .into_iter()
                .filter_map(|(name, value)| value.map(|_| name))
                .collect::<Vec<_>>()
        };
        GateNeeds {
            status_codes: set([
                ("max_error_ratio", gates.max_error_ratio),
                ("max_error_ratio_delta", gates.max_error_ratio_delta),
            ]),
            latency: set([
                ("max_p99_ms", gates.max_p99_ms),
                ("max_p99_ratio", gates.max_p99_ratio),
            ]),
        }
    }

    fn is_empty(&self) -> bool {
        self.status_codes.is_empty() && self.latency.is_empty()
    }
}

/// How many built-in steps bake with the gates on: traffic stages with a bake, and
/// monitor steps.
fn gated_stages(expanded: &ExpandedPlan) -> usize {
    expanded
        .steps()
        .filter(|(_, step)| {
            step.builtin
                && match step.kind {
                    StepKind::ShiftTraffic { bake, .. } => !bake.is_zero(),
                    StepKind::Monitor { .. } => true,
                    _ => false,
                }
        })
        .count()
}

/// Why `/metrics` is not checked, or `None` when it is. Without the expanded plan (a
/// preview of a plan that does not expand), its steps are taken to bake with the gates.
fn metrics_skip_reason(
    plan: &Plan,
    expanded: Option<&ExpandedPlan>,
    has_gate_source: bool,
) -> Option<&'static str> {
    if GateNeeds::of(&plan.gates).is_empty() {
        Some("the plan's gates set no threshold")
    } else if expanded.is_some_and(|e| gated_stages(e) == 0) {
        Some("no step of the plan bakes with the gates on")
    } else if !has_gate_source {
        Some("this run has no gate source (its bakes only count down)")
    } else {
        None
    }
}

/// X's nodes that proxy requests (a control plane proxies none, so it counts none).
fn proxying_x_nodes(plan: &Plan) -> Vec<&Node> {
    plan.clusters
        .x
        .nodes
        .iter()
        .filter(|node| node.role != Role::ControlPlane)
        .collect()
}

/// The preview line for the metrics probe.
pub(super) fn describe_metrics(
    plan: &Plan,
    expanded: Option<&ExpandedPlan>,
    has_gate_source: bool,
) -> String {
    if let Some(reason) = metrics_skip_reason(plan, expanded, has_gate_source) {
        return format!("skip the check of X's /metrics: {reason}");
    }
    let needs = GateNeeds::of(&plan.gates);
    // Before the scrape, X's Kong is the plan's `from`: 2.x names the series otherwise
    // and exports them with no flag.
    let kong2 = plan.from.major < 3;
    let mut series = Vec::new();
    if !needs.status_codes.is_empty() {
        series.push(if kong2 {
            format!("{HTTP_STATUS} by code (always on in Kong 2.x)")
        } else {
            format!("{HTTP_REQUESTS_TOTAL} by code (status_code_metrics)")
        });
    }
    if !needs.latency.is_empty() {
        series.push(if kong2 {
            format!("{LATENCY_2X}{{type=\"request\"}} buckets (always on in Kong 2.x)")
        } else {
            format!("{} buckets (latency_metrics)", Latency::Request.family())
        });
    }
    let nodes: Vec<&str> = proxying_x_nodes(plan)
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    format!(
        "scrape /metrics of X's nodes {} once: the gates need {}",
        nodes.join(", "),
        series.join(" and ")
    )
}

/// Scrapes `/metrics` of X's proxying nodes once, at once, and checks the series the
/// gates read are there.
pub(super) async fn check_metrics(
    ctx: &StepContext,
    client: &AdminClient,
    problems: &mut Vec<String>,
    passed: &mut Vec<String>,
) {
    let plan = &ctx.plan;
    if let Some(reason) = metrics_skip_reason(plan, Some(&ctx.expanded), ctx.gates.is_some()) {
        ctx.log.note(&format!("metrics: not checked, {reason}"));
        return;
    }
    let needs = GateNeeds::of(&plan.gates);
    let targets: Vec<ScrapeTarget> = proxying_x_nodes(plan)
        .into_iter()
        .map(ScrapeTarget::from_node)
        .collect();
    let scrapes = futures::future::join_all(targets.iter().map(|target| async move {
        match &target.url {
            Some(url) => {
                Some(scrape_node(client.http(), url, client.token(), METRICS_PROBE_TIMEOUT).await)
            }
            None => None,
        }
    }));
    let results = tokio::select! {
        results = scrapes => results,
        _ = ctx.cancel.cancelled() => return,
    };
    let mut ok = 0;
    for (target, result) in targets.iter().zip(results) {
        let label = format!("x/{}", target.node);
        let (Some(url), Some(result)) = (&target.url, result) else {
            ctx.log.note(&format!(
                "metrics: {label} has no status_url or admin_url in the plan, so kongup cannot \
                 check its /metrics (nor use it as the gates' baseline)"
            ));
            continue;
        };
        let sample = match result {
            Ok(sample) => sample,
            Err(e) => {
                problems.push(format!(
                    "{label}: cannot read its /metrics: {e}; the gates judge Y against X's \
                     /metrics"
                ));
                continue;
            }
        };
        let missing = series_problems(&label, url, &sample, &needs);
        if missing.is_empty() {
            ok += 1;
            ctx.log.note(&format!(
                "metrics: {label} at {url} exports what the gates read"
            ));
        }
        problems.extend(missing);
    }
    if ok > 0 {
        passed.push(format!("the gates' series on {ok} X node(s)"));
        ctx.log.note(
            "metrics: Y's nodes need the same prometheus plugin settings, or its gates stay \
             inconclusive",
        );
    }
}

/// What the gates need that one X node's `/metrics` lacks, one problem per series, in
/// the words of the Kong that answered (its families say which: `NodeSample::exporter`).
fn series_problems(label: &str, url: &str, sample: &NodeSample, needs: &GateNeeds) -> Vec<String> {
    let exporter = sample.exporter().unwrap_or(Exporter::Kong3);
    let mut missing = Vec::new();
    if !needs.status_codes.is_empty() && !sample.counts_status_codes() {
        missing.push(missing_series(
            label,
            url,
            sample,
            &format!("{} series with a `code` label", exporter.status_family()),
            "status_code_metrics",
            &needs.status_codes,
        ));
    }
    if !needs.latency.is_empty() && !sample.has_latency(Latency::Request) {
        missing.push(missing_series(
            label,
            url,
            sample,
            &format!("{} series", Latency::Request.buckets_in(exporter)),
            "latency_metrics",
            &needs.latency,
        ));
    }
    missing
}

fn missing_series(
    label: &str,
    url: &str,
    sample: &NodeSample,
    series: &str,
    flag: &str,
    gates: &[&str],
) -> String {
    let consequence = format!(
        "otherwise the gates ({}) can never pass: every verdict is inconclusive and every gated \
         stage pauses",
        gates.join(", ")
    );
    match (sample.exporter(), sample.prometheus_plugin_enabled()) {
        (Some(Exporter::Kong2), _) => format!(
            "{label}: {url} has no {series}: Kong 2.x has no metric flags and exports it for \
             every request a prometheus plugin instance logs, so this node has proxied no such \
             request since it started. Apply the prometheus plugin to the routes the upgrade \
             moves (globally, or on each service) on X and on Y, and check that traffic reaches \
             this node; {consequence}."
        ),
        (_, Some(false)) => format!(
            "{label}: {url} has no {series}, and no prometheus plugin is enabled on this node \
             (Kong 3.x prints kong_nginx_metric_errors_total only with one): enable the \
             prometheus plugin with `{flag}: true` (off by default since Kong 3.0), on X and on \
             Y; {consequence}."
        ),
        _ => format!(
            "{label}: {url} has no {series}: Kong's prometheus plugin needs `{flag}: true` in its \
             config (off by default since Kong 3.0), on X and on Y; {consequence}. (If it is \
             on, this node has proxied no request since it started: Kong exports the series \
             from the first one, and /metrics looks the same either way.)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::step::Toolbox;
    use crate::lb::manual::ManualTrafficDriver;
    use crate::plan::model::{Mode, Strategy, StrategyChoice};
    use crate::secrets::Redactor;

    fn sample() -> (Plan, ExpandedPlan) {
        let plan = crate::plan::templates::sample::plan(
            Mode::Traditional,
            StrategyChoice::Fixed(Strategy::DualCluster),
        );
        let expanded = crate::plan::templates::expand(&plan).unwrap();
        (plan, expanded)
    }

    /// The nginx driver's include must be replaceable: a directory that is missing (or,
    /// when not root, read-only) is a preflight problem that names it and says what to do.
    #[test]
    fn an_include_in_a_directory_kongup_cannot_write_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            unwritable_directory(&dir.path().join("kong-upstream.conf")),
            None
        );

        let missing = dir.path().join("no-such-dir");
        let problem = unwritable_directory(&missing.join("kong-upstream.conf"))
            .expect("a missing directory is a problem");
        assert!(
            problem.contains(&missing.display().to_string())
                && problem.contains("ENOENT")
                && problem.contains("give the user kongup runs as write access"),
            "{problem}"
        );

        if !nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::PermissionsExt;
            let read_only = dir.path().join("read-only");
            std::fs::create_dir(&read_only).unwrap();
            std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).unwrap();
            let problem = unwritable_directory(&read_only.join("kong-upstream.conf"))
                .expect("a read-only directory is a problem");
            assert!(problem.contains("EACCES"), "{problem}");
        }
    }

    #[test]
    fn the_gates_read_the_series_of_the_thresholds_they_set() {
        let (mut plan, _) = sample();
        let gates = &mut plan.gates;
        gates.max_error_ratio = Some(0.01);
        gates.max_error_ratio_delta = None;
        gates.max_p99_ms = None;
        gates.max_p99_ratio = None;
        let needs = GateNeeds::of(gates);
        assert_eq!(needs.status_codes, ["max_error_ratio"]);
        assert!(needs.latency.is_empty());
        gates.max_error_ratio = None;
        assert!(GateNeeds::of(gates).is_empty());
    }

    fn kong_fixture(version: &str, name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/kong/{version}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Lines of `text` without those of `families` (as Kong prints a node that has not
    /// created them).
    fn without(text: &str, families: &[&str]) -> String {
        text.lines()
            .filter(|line| {
                let name = line
                    .trim_start_matches("# HELP ")
                    .trim_start_matches("# TYPE ")
                    .split(['{', ' '])
                    .next()
                    .unwrap_or_default();
                !families.iter().any(|f| name.starts_with(f))
            })
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// A 2.8 X exports what the gates read under 2.x's names, always on: its preflight
    /// passes. One that counted nothing yet is told so, never to turn a flag on (2.8 has
    /// none); a 3.x one is told the flag.
    #[test]
    fn the_metrics_check_speaks_the_version_of_x() {
        let (plan, _) = sample();
        let needs = GateNeeds::of(&GateSpec {
            max_p99_ms: Some(500.0),
            ..plan.gates.clone()
        });
        let at = chrono::Utc::now();
        let problems = |text: &str| {
            let sample = NodeSample::parse(text, at).unwrap();
            series_problems("x/x1", "http://x1:8100/metrics", &sample, &needs)
        };

        let kong28 = kong_fixture("2.8.5", "metrics_traditional.txt");
        assert_eq!(problems(&kong28), Vec::<String>::new());

        let counted_nothing = without(&kong28, &["kong_http_status", "kong_latency"]);
        let said = problems(&counted_nothing).join("\n");
        assert!(said.contains("has no kong_http_status series"), "{said}");
        assert!(
            said.contains("kong_latency_bucket{type=\"request\"}"),
            "{said}"
        );
        assert!(said.contains("Kong 2.x has no metric flags"), "{said}");
        assert!(!said.contains("_metrics"), "{said}");

        let flags_off = kong_fixture("3.4.2", "metrics_flags_off.txt");
        let said = problems(&flags_off).join("\n");
        assert!(
            said.contains("has no kong_http_requests_total series with a `code` label")
                && said.contains("`status_code_metrics: true`")
                && said.contains("`latency_metrics: true`"),
            "{said}"
        );
        let no_plugin = without(&flags_off, &["kong_nginx_metric_errors_total"]);
        let said = problems(&no_plugin).join("\n");
        assert!(said.contains("no prometheus plugin is enabled"), "{said}");
    }

    #[test]
    fn preflight_skips_metrics_without_thresholds_gated_steps_or_a_gate_source() {
        let (mut plan, mut expanded) = sample();
        assert!(gated_stages(&expanded) > 0);
        assert_eq!(metrics_skip_reason(&plan, Some(&expanded), true), None);
        assert_eq!(
            metrics_skip_reason(&plan, Some(&expanded), false),
            Some("this run has no gate source (its bakes only count down)")
        );
        for phase in &mut expanded.phases {
            for step in &mut phase.steps {
                if let StepKind::ShiftTraffic { bake, .. } = &mut step.kind {
                    *bake = Duration::ZERO;
                }
                if matches!(step.kind, StepKind::Monitor { .. }) {
                    step.builtin = false;
                }
            }
        }
        assert_eq!(
            metrics_skip_reason(&plan, Some(&expanded), true),
            Some("no step of the plan bakes with the gates on")
        );
        plan.gates.max_error_ratio = None;
        plan.gates.max_error_ratio_delta = None;
        plan.gates.max_p99_ms = None;
        plan.gates.max_p99_ratio = None;
        assert_eq!(
            metrics_skip_reason(&plan, Some(&expanded), true),
            Some("the plan's gates set no threshold")
        );
    }

    #[test]
    fn the_preflight_preview_lists_the_traffic_and_metrics_probes() {
        let (plan, expanded) = sample();
        let mut toolbox = Toolbox::new(
            Arc::new(ManualTrafficDriver),
            Redactor::default(),
            crate::actions::builtins(None),
        );
        crate::actions::kong::register_kong_actions(
            &mut toolbox.actions,
            crate::actions::kong::KongAccess::new(
                crate::kong::client::AdminClientOptions::default(),
                None,
                None,
            )
            .unwrap(),
        );
        let (_, preflight) = expanded
            .steps()
            .find(|(_, step)| step.kind == StepKind::Preflight)
            .unwrap();
        let proxies: Vec<&str> = proxying_x_nodes(&plan)
            .iter()
            .map(|n| n.name.as_str())
            .collect();

        let lines = toolbox.preview(&plan, preflight, None);
        assert!(
            lines.iter().any(|l| l
                .starts_with("note that the traffic driver cannot read the split back (manual:")),
            "{lines:#?}"
        );
        assert!(
            lines.contains(
                &"skip the check of X's /metrics: this run has no gate source (its \
                             bakes only count down)"
                    .to_string()
            ),
            "{lines:#?}"
        );

        let (_, verdicts) = tokio::sync::watch::channel(None);
        let toolbox = toolbox.with_gates(verdicts);
        let lines = toolbox.preview(&plan, preflight, None);
        let expected = format!(
            "scrape /metrics of X's nodes {} once: the gates need {HTTP_REQUESTS_TOTAL} by code \
             (status_code_metrics) and kong_request_latency_ms buckets (latency_metrics)",
            proxies.join(", ")
        );
        assert!(lines.contains(&expected), "{lines:#?}");

        // From Kong 2.8 the series have 2.x's names and no flag.
        let mut from_28 = plan.clone();
        from_28.from = crate::plan::version::KongVersion::new(2, 8, 5);
        let lines = toolbox.preview(&from_28, preflight, None);
        let expected = format!(
            "scrape /metrics of X's nodes {} once: the gates need kong_http_status by code \
             (always on in Kong 2.x) and kong_latency{{type=\"request\"}} buckets (always on in \
             Kong 2.x)",
            proxies.join(", ")
        );
        assert!(lines.contains(&expected), "{lines:#?}");
    }
}

//! What counts as healthy while Y takes traffic (`gates`), and the requests sent through
//! Y's proxies before it does (`smoke_tests`).

use std::collections::{BTreeMap, HashMap};

use super::diagnostics::Diagnostics;
use super::read::{
    choice, duration, index, integer, list, looks_secret, mapping, number, secret, shown, string,
    text, word,
};
use super::yaml::{Node, Pos, Value};
use super::{Loader, optional};
use crate::plan::model::defaults;
use crate::plan::model::{FailAction, GateSpec, SecretRef, SmokeTest};

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl Loader {
    pub(super) fn gates(&mut self, node: &Node) -> Option<GateSpec> {
        let d = &mut self.d;
        if node.is_null() {
            return Some(GateSpec::default());
        }
        let f = mapping(
            d,
            node,
            "gates",
            Some(&[
                "window",
                "max_error_ratio",
                "max_p99_ms",
                "max_error_ratio_delta",
                "max_p99_ratio",
                "min_requests",
                "consecutive_breaches",
                "on_fail",
            ]),
        )?;
        let window = optional(f.get("window"), defaults::GATE_WINDOW, |n| {
            duration(d, n, "gates.window")
        });
        for key in ["max_error_ratio_delta", "max_p99_ratio"] {
            if let Some(n) = f.raw(key).filter(|n| !n.is_null()) {
                self.at.relative_gates.push((f.path_of(key), n.pos));
            }
        }
        // A threshold left out takes its default; `null` turns it off.
        let mut threshold = |key: &str, default: Option<f64>, ratio: bool| match f.raw(key) {
            None => Some(default),
            Some(n) if n.is_null() => Some(None),
            Some(n) => {
                let value = number(d, n, &f.path_of(key))?;
                if ratio && !(0.0..=1.0).contains(&value) {
                    d.error_with_hint(
                        n.pos,
                        format!("`{}` is a ratio from 0 to 1, found {value}", f.path_of(key)),
                        "write 0.01 for 1%",
                    );
                    return None;
                }
                if !ratio && value <= 0.0 {
                    d.error(
                        n.pos,
                        format!("`{}` must be more than 0, found {value}", f.path_of(key)),
                    );
                    return None;
                }
                Some(Some(value))
            }
        };
        let max_error_ratio = threshold("max_error_ratio", None, true);
        let max_p99_ms = threshold("max_p99_ms", None, false);
        let max_error_ratio_delta = threshold(
            "max_error_ratio_delta",
            Some(defaults::MAX_ERROR_RATIO_DELTA),
            true,
        );
        let max_p99_ratio = threshold("max_p99_ratio", Some(defaults::MAX_P99_RATIO), false);
        let min_requests = optional(f.get("min_requests"), defaults::MIN_REQUESTS, |n| {
            integer(d, n, "gates.min_requests", 0..=u64::MAX)
        });
        let consecutive_breaches = optional(
            f.get("consecutive_breaches"),
            defaults::CONSECUTIVE_BREACHES,
            |n| integer(d, n, "gates.consecutive_breaches", 1..=u32::MAX),
        );
        let on_fail = optional(f.get("on_fail"), defaults::ON_FAIL, |n| {
            word::<FailAction>(
                d,
                n,
                "gates.on_fail",
                &FailAction::ALL.map(FailAction::as_str),
            )
        });
        Some(GateSpec {
            window: window?,
            max_error_ratio: max_error_ratio?,
            max_p99_ms: max_p99_ms?,
            max_error_ratio_delta: max_error_ratio_delta?,
            max_p99_ratio: max_p99_ratio?,
            min_requests: min_requests?,
            consecutive_breaches: consecutive_breaches?,
            on_fail: on_fail?,
        })
    }

    pub(super) fn smoke_tests(&mut self, node: &Node) -> Option<Vec<SmokeTest>> {
        let items = list(&mut self.d, node, "smoke_tests")?;
        let mut tests = Vec::with_capacity(items.len());
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.smoke_test(item, &index("smoke_tests", i)) {
                Some((test, name_pos)) => {
                    if let Some(first) = names.get(&test.name) {
                        self.d.error(
                            name_pos,
                            format!(
                                "smoke test name `{}` is used twice (first at line {}, column {})",
                                shown(&test.name),
                                first.line,
                                first.column
                            ),
                        );
                        ok = false;
                    } else {
                        names.insert(test.name.clone(), name_pos);
                    }
                    tests.push(test);
                }
                None => ok = false,
            }
        }
        ok.then_some(tests)
    }

    fn smoke_test(&mut self, node: &Node, path: &str) -> Option<(SmokeTest, Pos)> {
        let d = &mut self.d;
        let f = mapping(
            d,
            node,
            path,
            Some(&["name", "method", "path", "headers", "body", "expect"]),
        )?;
        let name = f
            .required(d, "name")
            .and_then(|n| text(d, n, &f.path_of("name")));
        let method = optional(
            f.get("method"),
            defaults::SMOKE_TEST_METHOD.to_string(),
            |n| choice(d, n, &f.path_of("method"), HTTP_METHODS).map(str::to_string),
        );
        let request_path = f.required(d, "path").and_then(|n| {
            let value = text(d, n, &f.path_of("path"))?;
            if !value.starts_with('/') {
                d.error_with_hint(
                    n.pos,
                    format!(
                        "`{}`: `{}` must start with `/`",
                        f.path_of("path"),
                        shown(&value)
                    ),
                    "it is the path (and query) sent to each Y proxy, e.g. /orders?limit=1",
                );
                return None;
            }
            Some(value)
        });
        let headers = match f.get("headers") {
            Some(n) => request_headers(d, n, &f.path_of("headers")),
            None => Some((BTreeMap::new(), BTreeMap::new())),
        };
        let body = match f.get("body") {
            Some(n) => string(d, n, &f.path_of("body")).map(Some),
            None => Some(None),
        };
        let expect = f
            .required(d, "expect")
            .and_then(|n| expectation(d, n, &f.path_of("expect")));
        let (headers, secret_headers) = headers?;
        let (expect_status, expect_headers, expect_body_contains) = expect?;
        Some((
            SmokeTest {
                name: name?,
                method: method?,
                path: request_path?,
                headers,
                secret_headers,
                body: body?,
                expect_status,
                expect_headers,
                expect_body_contains,
            },
            f.get("name").map_or(f.pos, |n| n.pos),
        ))
    }
}

/// Request headers: literal values, or `{env}`/`{file}` sources for credentials. A header
/// that carries a credential must not be written inline.
#[allow(clippy::type_complexity)]
fn request_headers(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, SecretRef>)> {
    let f = mapping(d, node, path, None)?;
    let mut plain = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut ok = true;
    for (name, _key, value) in f.entries() {
        let value_path = f.path_of(name);
        match &value.value {
            Value::Mapping(_) => match secret(d, value, &value_path) {
                Some(source) => {
                    secrets.insert(name.to_string(), source);
                }
                None => ok = false,
            },
            Value::Scalar { .. } if looks_secret(name) && !value.is_null() => {
                // `secret` refuses the literal without repeating it.
                secret(d, value, &value_path);
                ok = false;
            }
            _ => match string(d, value, &value_path) {
                Some(text) => {
                    plain.insert(name.to_string(), text);
                }
                None => ok = false,
            },
        }
    }
    ok.then_some((plain, secrets))
}

#[allow(clippy::type_complexity)]
fn expectation(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
) -> Option<(u16, BTreeMap<String, String>, Option<String>)> {
    let f = mapping(d, node, path, Some(&["status", "headers", "body_contains"]))?;
    let status = f
        .required(d, "status")
        .and_then(|n| integer(d, n, &f.path_of("status"), 100u16..=599));
    let headers = match f.get("headers") {
        Some(n) => {
            let g = mapping(d, n, &f.path_of("headers"), None)?;
            let mut headers = BTreeMap::new();
            let mut ok = true;
            for (name, _key, value) in g.entries() {
                match string(d, value, &g.path_of(name)) {
                    Some(text) => {
                        headers.insert(name.to_string(), text);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(headers)
        }
        None => Some(BTreeMap::new()),
    };
    let body_contains = match f.get("body_contains") {
        Some(n) => text(d, n, &f.path_of("body_contains")).map(Some),
        None => Some(None),
    };
    Some((status?, headers?, body_contains?))
}

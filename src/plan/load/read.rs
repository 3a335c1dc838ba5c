//! Typed reads from the positioned YAML tree. Each reader reports what is wrong at the
//! node's position and returns `None`, so the loader carries on and finds every error.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::plan::model::SecretRef;
use crate::plan::version::KongVersion;
use crate::secrets::{has_userinfo, redact_url};

use super::diagnostics::{Diagnostics, did_you_mean, one_of};
use super::yaml::{Node, Pos, Value};

/// Where a value sits, as the operator would write it: `clusters.x.nodes[0].role`.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// How much of a written value a message repeats: enough to recognise it.
const ECHO_CHARS: usize = 40;

/// A written value as a message repeats it: whole when short, else its first
/// [`ECHO_CHARS`] characters and its size, so a huge value is not copied into messages.
pub(super) fn shown(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..cut], text.len())),
    }
}

/// Names the place in messages; the document root has no path.
fn place(path: &str) -> String {
    if path.is_empty() {
        "the plan".to_string()
    } else {
        format!("`{path}`")
    }
}

/// A mapping whose keys were checked against the ones allowed there.
pub(super) struct Fields<'a> {
    pub pos: Pos,
    pub path: String,
    entries: Vec<(&'a str, &'a Node, &'a Node)>,
}

impl<'a> Fields<'a> {
    /// The value of `key` as written, `null` included.
    pub fn raw(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, _, value)| *value)
    }

    /// The value of `key`; a `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.raw(key).filter(|node| !node.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Where `key` itself is written.
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, key, _)| key.pos)
    }

    /// The value of a key that must be there; reports it missing otherwise.
    pub fn required(&self, d: &mut Diagnostics, key: &str) -> Option<&'a Node> {
        let value = self.get(key);
        if value.is_none() {
            let pos = self.key_pos(key).unwrap_or(self.pos);
            d.error(pos, format!("{} needs `{key}`", place(&self.path)));
        }
        value
    }

    /// The path of one of this mapping's keys.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Reports and drops keys not in `allowed`, for mappings whose keys depend on a `type`.
    pub fn restrict(&mut self, d: &mut Diagnostics, allowed: &[&str]) {
        let path = &self.path;
        self.entries.retain(|(name, key, _)| {
            let known = allowed.contains(name);
            if !known {
                unknown_key(d, key.pos, name, path, allowed);
            }
            known
        });
    }

    /// Every entry, for mappings whose keys are names the operator chooses.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, &'a Node, &'a Node)> + '_ {
        self.entries.iter().copied()
    }
}

/// Reads a mapping and reports keys that are not allowed there (with a "did you mean"),
/// keys given twice, and keys that are not strings. `allowed: None` accepts any key.
pub(super) fn mapping<'a>(
    d: &mut Diagnostics,
    node: &'a Node,
    path: &str,
    allowed: Option<&[&str]>,
) -> Option<Fields<'a>> {
    let Value::Mapping(entries) = &node.value else {
        d.error(
            node.pos,
            format!(
                "{} must be a mapping, found {}",
                place(path),
                node.kind_name()
            ),
        );
        return None;
    };
    let mut fields = Fields {
        pos: node.pos,
        path: path.to_string(),
        entries: Vec::new(),
    };
    for (key, value) in entries {
        let Value::Scalar { text: name, .. } = &key.value else {
            d.error(
                key.pos,
                format!("keys in {} must be plain words", place(path)),
            );
            continue;
        };
        if let Some(first) = fields.key_pos(name) {
            d.error_with_hint(
                key.pos,
                format!("`{}` is given twice in {}", shown(name), place(path)),
                format!(
                    "the first is at line {}, column {}; keep one",
                    first.line, first.column
                ),
            );
            continue;
        }
        if let Some(allowed) = allowed
            && !allowed.contains(&name.as_str())
        {
            unknown_key(d, key.pos, name, path, allowed);
            continue;
        }
        fields.entries.push((name.as_str(), key, value));
    }
    Some(fields)
}

fn unknown_key(d: &mut Diagnostics, pos: Pos, name: &str, path: &str, allowed: &[&str]) {
    let hint = if name == "<<" {
        "YAML merge keys are not supported; write the keys out".to_string()
    } else if let Some(close) = did_you_mean(name, allowed) {
        format!("did you mean `{close}`?")
    } else {
        format!("allowed here: {}", allowed.join(", "))
    };
    d.error_with_hint(
        pos,
        format!("unknown key `{}` in {}", shown(name), place(path)),
        hint,
    );
}

pub(super) fn list<'a>(d: &mut Diagnostics, node: &'a Node, path: &str) -> Option<&'a [Node]> {
    match &node.value {
        Value::Sequence(items) => Some(items),
        _ => {
            d.error(
                node.pos,
                format!("{} must be a list, found {}", place(path), node.kind_name()),
            );
            None
        }
    }
}

/// Any scalar, as text. Numbers and booleans are accepted as their spelling.
pub(super) fn string(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
        _ => {
            d.error(
                node.pos,
                format!(
                    "{} must be a string, found {}",
                    place(path),
                    node.kind_name()
                ),
            );
            None
        }
    }
}

/// A string with something in it.
pub(super) fn text(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    let value = string(d, node, path)?;
    if value.trim().is_empty() {
        d.error(node.pos, format!("{} must not be empty", place(path)));
        return None;
    }
    Some(value)
}

pub(super) fn string_list(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Vec<String>> {
    let items = list(d, node, path)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match text(d, item, &index(path, i)) {
            Some(value) => out.push(value),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// An argument vector: a non-empty list of strings whose first is the program.
pub(super) fn argv(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Vec<String>> {
    if let Value::Scalar { text, .. } = &node.value
        && !node.is_null()
    {
        d.error_with_hint(
            node.pos,
            format!(
                "{} must be a list of arguments, found a string",
                place(path)
            ),
            format!(
                "write it as a list, e.g. [{}], or use `shell:` for a shell command line",
                shown(&text.split_whitespace().collect::<Vec<_>>().join(", "))
            ),
        );
        return None;
    }
    let items = list(d, node, path)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match string(d, item, &index(path, i)) {
            Some(value) => out.push(value),
            None => ok = false,
        }
    }
    if ok && out.first().is_none_or(|program| program.trim().is_empty()) {
        d.error(node.pos, format!("{} needs a program to run", place(path)));
        return None;
    }
    ok.then_some(out)
}

pub(super) fn boolean(d: &mut Diagnostics, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Scalar {
            text,
            quoted: false,
        } if text == "true" => Some(true),
        Value::Scalar {
            text,
            quoted: false,
        } if text == "false" => Some(false),
        _ => {
            d.error_with_hint(
                node.pos,
                format!(
                    "{} must be true or false, found {}",
                    place(path),
                    node.kind_name()
                ),
                "write `true` or `false` without quotes",
            );
            None
        }
    }
}

/// A whole number within `range` (inclusive), written without quotes.
pub(super) fn integer<T>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    range: std::ops::RangeInclusive<T>,
) -> Option<T>
where
    T: FromStr + PartialOrd + Copy + std::fmt::Display,
{
    let parsed = match &node.value {
        Value::Scalar {
            text,
            quoted: false,
        } => text.parse::<T>().ok(),
        _ => None,
    };
    match parsed {
        Some(value) if range.contains(&value) => Some(value),
        _ => {
            let found = match &node.value {
                Value::Scalar { text, .. } if !node.is_null() => format!("`{}`", shown(text)),
                _ => node.kind_name().to_string(),
            };
            // A ten-digit bound is the type's own limit, not one worth printing.
            let bounds = if range.end().to_string().len() >= 10 {
                format!("{} or more", range.start())
            } else {
                format!("from {} to {}", range.start(), range.end())
            };
            d.error(
                node.pos,
                format!(
                    "{} must be a whole number {bounds}, found {found}",
                    place(path)
                ),
            );
            None
        }
    }
}

/// A number, written without quotes.
pub(super) fn number(d: &mut Diagnostics, node: &Node, path: &str) -> Option<f64> {
    let parsed = match &node.value {
        Value::Scalar {
            text,
            quoted: false,
        } => text.parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    };
    if parsed.is_none() {
        d.error(
            node.pos,
            format!(
                "{} must be a number, found {}",
                place(path),
                node.kind_name()
            ),
        );
    }
    parsed
}

/// A duration such as `30s`, `5m`, `1h 30m` (humantime).
pub(super) fn duration(d: &mut Diagnostics, node: &Node, path: &str) -> Option<Duration> {
    let written = match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => text.clone(),
        _ => {
            d.error_with_hint(
                node.pos,
                format!(
                    "{} must be a duration, found {}",
                    place(path),
                    node.kind_name()
                ),
                "write e.g. `30s`, `5m` or `1h`",
            );
            return None;
        }
    };
    match humantime::parse_duration(written.trim()) {
        Ok(value) if !value.is_zero() => Some(value),
        Ok(_) => {
            d.error(
                node.pos,
                format!("{} must be longer than zero", place(path)),
            );
            None
        }
        Err(error) => {
            d.error_with_hint(
                node.pos,
                format!(
                    "{}: `{}` is not a duration ({error})",
                    place(path),
                    shown(&written)
                ),
                "write e.g. `30s`, `5m` or `1h` (a number needs its unit)",
            );
            None
        }
    }
}

/// One of a fixed set of words. The written text is compared where it lies, and a message
/// repeats at most [`ECHO_CHARS`] of it.
pub(super) fn choice<'w>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    allowed: &[&'w str],
) -> Option<&'w str> {
    let written = match &node.value {
        Value::Scalar { text, .. } if !node.is_null() => text.as_str(),
        _ => {
            d.error(
                node.pos,
                format!(
                    "{} must be a string, found {}",
                    place(path),
                    node.kind_name()
                ),
            );
            return None;
        }
    };
    if let Some(word) = allowed.iter().find(|w| **w == written) {
        return Some(word);
    }
    let message = format!(
        "{}: `{}` is not one of {}",
        place(path),
        shown(written),
        one_of(allowed)
    );
    match did_you_mean(written, allowed) {
        Some(close) => d.error_with_hint(node.pos, message, format!("did you mean `{close}`?")),
        None => d.error(node.pos, message),
    }
    None
}

/// One word of a closed set, read as the value it names (`mode: hybrid` is
/// `Mode::Hybrid`). `words` are the value type's own (`Mode::ALL` spelt by
/// `Mode::as_str`), so the "is not one of" message names every value.
pub(super) fn word<T: FromStr>(
    d: &mut Diagnostics,
    node: &Node,
    path: &str,
    words: &[&'static str],
) -> Option<T> {
    choice(d, node, path, words)?.parse().ok()
}

pub(super) fn version(d: &mut Diagnostics, node: &Node, path: &str) -> Option<KongVersion> {
    let written = string(d, node, path)?;
    match written.parse::<KongVersion>() {
        Ok(version) => Some(version),
        Err(error) => {
            d.error_with_hint(
                node.pos,
                format!(
                    "{}: `{}` is not a Kong version: {}",
                    place(path),
                    shown(&written),
                    error.reason
                ),
                "write MAJOR.MINOR.PATCH, or MAJOR.MINOR.PATCH.BUILD for Enterprise, e.g. 3.4.3 or 3.4.3.12",
            );
            None
        }
    }
}

pub(super) fn file_path(d: &mut Diagnostics, node: &Node, path: &str) -> Option<PathBuf> {
    text(d, node, path).map(PathBuf::from)
}

/// An `http` or `https` URL with a host, and no credential in it: `user:password@` would be
/// shown on screen and written to the logs and the journal with the plan. Messages repeat
/// the URL with its user-info hidden.
pub(super) fn url(d: &mut Diagnostics, node: &Node, path: &str) -> Option<String> {
    let written = text(d, node, path)?;
    let echo = shown(&redact_url(&written)).into_owned();
    if has_userinfo(&written) {
        let instead = if path.ends_with("proxy_url") {
            "a smoke test sends a credential as a header read from its source: \
             `smoke_tests[].headers: {apikey: {env: VARIABLE}}` (or `{file: /path}`)"
        } else {
            "the Admin token goes in `admin.token: {env: VARIABLE}` or `{file: /path}`, and \
             kongup sends it as Kong-Admin-Token"
        };
        d.error_with_hint(
            node.pos,
            format!(
                "{}: `{echo}` holds a user name or password; a credential must not be written \
                 in a URL, where it would be shown and logged",
                place(path)
            ),
            format!("remove `user:password@`; {instead}"),
        );
        return None;
    }
    match reqwest::Url::parse(&written) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() =>
        {
            Some(written)
        }
        Ok(parsed) => {
            d.error_with_hint(
                node.pos,
                format!(
                    "{}: `{echo}` is not an http or https URL (scheme `{}`)",
                    place(path),
                    shown(parsed.scheme())
                ),
                "write e.g. http://10.0.1.11:8001 or https://kong-admin.internal:8444",
            );
            None
        }
        Err(error) => {
            d.error_with_hint(
                node.pos,
                format!("{}: `{echo}` is not a URL ({error})", place(path)),
                "write e.g. http://10.0.1.11:8001 or https://kong-admin.internal:8444",
            );
            None
        }
    }
}

const SECRET_HINT: &str = "write `{env: VARIABLE}` or `{file: /path/to/secret}`; kongup reads the value when it needs it and never stores it";

/// A secret's source: `{env: VAR}` or `{file: PATH}`. A literal value is refused, and never
/// repeated in the message.
pub(super) fn secret(d: &mut Diagnostics, node: &Node, path: &str) -> Option<SecretRef> {
    if let Value::Scalar { .. } = node.value
        && !node.is_null()
    {
        d.error_with_hint(
            node.pos,
            format!(
                "{} holds a secret inline; secrets must not be written in the plan",
                place(path)
            ),
            SECRET_HINT,
        );
        return None;
    }
    let fields = mapping(d, node, path, Some(&["env", "file"]))?;
    match (fields.get("env"), fields.get("file")) {
        (Some(var), None) => {
            let var = text(d, var, &fields.path_of("env"))?;
            if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                d.error(
                    fields.get("env").map_or(node.pos, |n| n.pos),
                    format!(
                        "`{}`: `{}` is not an environment variable name",
                        fields.path_of("env"),
                        shown(&var)
                    ),
                );
                return None;
            }
            Some(SecretRef::Env(var))
        }
        (None, Some(file)) => file_path(d, file, &fields.path_of("file")).map(SecretRef::File),
        (Some(_), Some(_)) => {
            d.error(
                node.pos,
                format!("{} gives both `env` and `file`; keep one", place(path)),
            );
            None
        }
        (None, None) => {
            d.error_with_hint(
                node.pos,
                format!("{} needs `env` or `file`", place(path)),
                SECRET_HINT,
            );
            None
        }
    }
}

/// Header names whose values are credentials (key-auth's `apikey`, `Authorization`, …).
pub(super) fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "token",
        "secret",
        "apikey",
        "api-key",
        "api_key",
        "authorization",
        "cookie",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

//! Secrets: read from the environment or a file the plan names, and kept out of every
//! log line, journal record and report.

use std::borrow::Cow;
use std::fmt;

use crate::plan::model::SecretRef;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret from {source_name} is not set: export it before running kongup")]
    EnvMissing { source_name: String },
    #[error(
        "could not read the secret from {source_name}: {error} (check the path and its permissions)"
    )]
    File {
        source_name: String,
        error: std::io::Error,
    },
    #[error(
        "the secret from {source_name} is empty: put the value there (a file's trailing newline \
         is not part of it), then start kongup again"
    )]
    Empty { source_name: String },
}

/// A secret's value once read (the Admin token, a database password). `Debug` and
/// `Display` print `[REDACTED]`, so whatever holds one can derive `Debug` safely; the value
/// comes out only through [`Secret::expose`], at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the header, the connection or the environment it goes to.
    /// Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Reads a secret's value. A file's trailing newline is not part of the secret.
pub fn resolve(secret: &SecretRef) -> Result<Secret, SecretError> {
    let source_name = secret.describe();
    let value = match secret {
        SecretRef::Env(var) => std::env::var(var).map_err(|_| SecretError::EnvMissing {
            source_name: source_name.clone(),
        })?,
        SecretRef::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| SecretError::File {
                source_name: source_name.clone(),
                error,
            })?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if value.is_empty() {
        return Err(SecretError::Empty { source_name });
    }
    Ok(Secret(value))
}

/// Replaces every known secret value in a text with `[REDACTED]`.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<String>,
}

pub const REDACTED: &str = "[REDACTED]";

/// Says how many secrets it knows, never which.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Secrets shorter than this are warned about at the start of a run.
pub const SHORT_SECRET: usize = 8;

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn add(&mut self, secret: String) {
        if !secret.is_empty() && !self.secrets.contains(&secret) {
            self.secrets.push(secret);
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// How many of the secrets are shorter than [`SHORT_SECRET`] characters: they are
    /// still redacted in free text, where they may garble words that contain them.
    pub fn short_secrets(&self) -> usize {
        self.secrets
            .iter()
            .filter(|s| s.chars().count() < SHORT_SECRET)
            .count()
    }

    /// The text with every known secret, and the user-info of every URL in it
    /// ([`redact_url`]), replaced by `[REDACTED]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = redact_url(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }
}

/// Every URL in `text` (a lone URL, or a log line holding some) with its user-info
/// (`user:password@`) replaced by `[REDACTED]@`: `http://admin:pw@kong:8001/x` reads
/// `http://[REDACTED]@kong:8001/x`. The one place that hides a credential written into a
/// URL, whatever sent it (a plan from before kongup refused them, a redirect's Location, a
/// command's output); borrowed when there is nothing to hide.
pub fn redact_url(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let authority_start = from + found + 3;
        // The authority ends where the path, query or fragment starts, or where the URL
        // ends in free text.
        let authority_len = text[authority_start..]
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
            })
            .unwrap_or(text.len() - authority_start);
        let authority = &text[authority_start..authority_start + authority_len];
        // A password may hold a raw `@`: the user-info runs to the last one, as URL parsers read it.
        if let Some(at) = authority.rfind('@') {
            out.push_str(&text[copied..authority_start]);
            out.push_str(REDACTED);
            copied = authority_start + at;
        }
        from = authority_start + authority_len;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Whether `text` holds a URL with user-info (`user@`, `user:password@`), which kongup
/// refuses wherever a URL is given to it: a credential goes in a secret source instead.
pub fn has_userinfo(text: &str) -> bool {
    matches!(redact_url(text), Cow::Owned(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_occurrence_longest_first() {
        let redactor = Redactor::new(["s3cret".to_string(), "s3cret-long".to_string()]);
        assert_eq!(
            redactor.redact("a s3cret-long and s3cret"),
            "a [REDACTED] and [REDACTED]"
        );
        assert!(matches!(redactor.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn user_info_in_urls_is_hidden_wherever_they_stand() {
        assert_eq!(
            redact_url("http://admin:hunter2@kong:8001/status"),
            "http://[REDACTED]@kong:8001/status"
        );
        assert_eq!(
            redact_url("GET https://ops:p@ss@kong/x?y=a@b and postgres://kong:pw@db/kong."),
            "GET https://[REDACTED]@kong/x?y=a@b and postgres://[REDACTED]@db/kong."
        );
        assert_eq!(redact_url("http://user@host"), "http://[REDACTED]@host");
        assert!(has_userinfo("http://user@host") && !has_userinfo("http://host/@"));
        assert!(matches!(
            redact_url("http://kong:8001/a@b mail me@host ://"),
            Cow::Borrowed(_)
        ));
        // The Redactor hides them too, with no secret known to it.
        assert_eq!(
            Redactor::default().redact("curl http://a:b@h/"),
            "curl http://[REDACTED]@h/"
        );
    }

    #[test]
    fn a_secret_and_the_redactor_never_print_a_value() {
        let secret = Secret::new("hunter2-value");
        assert_eq!(format!("{secret:?} {secret}"), "[REDACTED] [REDACTED]");
        assert_eq!(secret.expose(), "hunter2-value");
        let redactor = Redactor::new(["hunter2-value".to_string()]);
        assert!(!format!("{redactor:?}").contains("hunter2"), "{redactor:?}");
    }

    #[test]
    fn an_empty_secret_says_where_to_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").unwrap();
        let message = resolve(&SecretRef::File(path.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&path.display().to_string())
                && message.contains("put the value there")
                && message.contains("start kongup again"),
            "{message}"
        );
    }

    #[test]
    fn file_secret_drops_trailing_newline_and_env_secret_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok\n").unwrap();
        assert_eq!(resolve(&SecretRef::File(path)).unwrap().expose(), "tok");
        let err = resolve(&SecretRef::Env("KONGUP_TEST_SURELY_UNSET_VAR".into())).unwrap_err();
        assert!(err.to_string().contains("KONGUP_TEST_SURELY_UNSET_VAR"));
    }
}

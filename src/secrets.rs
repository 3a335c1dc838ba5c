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

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }
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

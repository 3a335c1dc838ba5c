//! The Kong corpus (`tests/fixtures/kong/`): what real Kong answers, version by version,
//! written by hand from Kong's source (see that directory's README for each file's
//! source). Readers for its three formats: raw HTTP responses (`*.http`), `/metrics`
//! expositions (`metrics_*.txt`) and `kong migrations` runs (`migrations/*.cli`).

use std::path::{Path, PathBuf};

/// The versions the corpus covers, oldest first ("3.10.0" is Kong's master at the commit
/// the README names).
pub const VERSIONS: [&str; 4] = ["2.8.5", "3.4.2", "3.9.1", "3.10.0"];

/// The corpus directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kong")
}

/// One corpus file: its version directory and its name within it (e.g. `admin_root.http`,
/// `migrations/up_ran.cli`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusFile {
    pub version: &'static str,
    pub name: String,
    pub path: PathBuf,
}

impl CorpusFile {
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.path.display()))
    }
}

/// Every file of every version whose name (relative to its version directory) starts with
/// `prefix` and ends with `suffix`, sorted by version then name.
pub fn files(prefix: &str, suffix: &str) -> Vec<CorpusFile> {
    let mut found = Vec::new();
    for version in VERSIONS {
        let root = dir().join(version);
        for sub in ["", "migrations"] {
            let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_file() {
                    continue;
                }
                let file = entry.file_name().to_string_lossy().into_owned();
                let name = if sub.is_empty() {
                    file
                } else {
                    format!("{sub}/{file}")
                };
                if name.starts_with(prefix) && name.ends_with(suffix) {
                    found.push(CorpusFile {
                        version,
                        name,
                        path,
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| (a.version, &a.name).cmp(&(b.version, &b.name)));
    found
}

/// The file `name` of `version`, which must exist.
pub fn file(version: &'static str, name: &str) -> CorpusFile {
    let path = dir().join(version).join(name);
    assert!(path.is_file(), "no corpus file {}", path.display());
    CorpusFile {
        version,
        name: name.to_string(),
        path,
    }
}

/// A raw HTTP response as the corpus writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// In file order; names as written.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the file's name when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON: {e}"))
    }
}

/// Reads a `.http` file: the status line, one header a line, an empty line, the body.
pub fn http(file: &CorpusFile) -> HttpResponse {
    parse_http(&file.text()).unwrap_or_else(|e| panic!("{}: {e}", file.path.display()))
}

pub fn parse_http(text: &str) -> Result<HttpResponse, String> {
    let (head, body) = text
        .split_once("\n\n")
        .map(|(head, body)| (head, body.to_string()))
        .unwrap_or((text.trim_end_matches('\n'), String::new()));
    let mut lines = head.lines();
    let status_line = lines.next().ok_or("empty file")?;
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not a status line: {status_line:?}"))?;
    let headers = lines
        .map(|line| {
            line.split_once(':')
                .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                .ok_or_else(|| format!("not a header: {line:?}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A `kong migrations` run as the corpus writes it (`migrations/*.cli`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRun {
    /// The command line, e.g. `kong migrations up --db-timeout 60`.
    pub command: String,
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn cli(file: &CorpusFile) -> CliRun {
    parse_cli(&file.text()).unwrap_or_else(|e| panic!("{}: {e}", file.path.display()))
}

pub fn parse_cli(text: &str) -> Result<CliRun, String> {
    let mut lines = text.split_inclusive('\n');
    let command = lines
        .next()
        .and_then(|l| l.trim_end().strip_prefix("$ "))
        .ok_or("line 1 is not `$ <command>`")?
        .to_string();
    let exit = lines
        .next()
        .and_then(|l| l.trim_end().strip_prefix("exit: "))
        .and_then(|code| code.parse().ok())
        .ok_or("line 2 is not `exit: <code>`")?;
    if lines.next().map(str::trim_end) != Some("--- stdout") {
        return Err("line 3 is not `--- stdout`".into());
    }
    let (mut stdout, mut stderr, mut in_stderr) = (String::new(), String::new(), false);
    for line in lines {
        if !in_stderr && line.trim_end() == "--- stderr" {
            in_stderr = true;
        } else if in_stderr {
            stderr.push_str(line);
        } else {
            stdout.push_str(line);
        }
    }
    if !in_stderr {
        return Err("no `--- stderr` line".into());
    }
    Ok(CliRun {
        command,
        exit,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_corpus_file_reads_in_its_format() {
        let http_files = files("", ".http");
        let cli_files = files("migrations/", ".cli");
        assert!(http_files.len() > 40, "{} .http files", http_files.len());
        assert!(cli_files.len() > 40, "{} .cli files", cli_files.len());
        for file in &http_files {
            let response = http(file);
            if response
                .header("Content-Type")
                .is_some_and(|t| t.contains("json"))
            {
                response.json();
            }
        }
        for file in &cli_files {
            let run = cli(file);
            assert!(
                run.command.starts_with("kong migrations"),
                "{}",
                run.command
            );
        }
    }

    #[test]
    fn a_cli_run_keeps_its_streams_byte_for_byte() {
        let run =
            parse_cli("$ kong migrations list\nexit: 3\n--- stdout\na\n\n--- stderr\n").unwrap();
        assert_eq!(
            (run.exit, run.stdout.as_str(), run.stderr.as_str()),
            (3, "a\n\n", "")
        );
        assert!(parse_cli("$ kong\nexit: x\n").is_err());
    }
}

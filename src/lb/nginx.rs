//! nginx: kongup owns one file, included inside `http {}`, that holds the upstream
//! block with the X and Y servers and their weights.
//!
//! Setting a split: the new file is written beside the old one and renamed over it (a
//! reader never sees half a file), the old one is kept as `FILE.previous`, `nginx -t`
//! checks the whole configuration, then `nginx -s reload` applies it. If either fails,
//! the previous file is put back and nginx's own message is reported. nginx needs at
//! least one usable server per upstream, so a side at 0 % stays listed, marked `down`.
//!
//! Reading it back parses the file kongup wrote: it is the configuration nginx was told
//! to load, not a live read (nginx has no API for it). After a reload, old workers
//! finish their open connections on the previous weights; new connections get the new
//! ones as soon as the new workers start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::weights::{server_weights, split_from_weights};
use super::{LbError, ReadBackSource, Split, TrafficDriver};
use crate::exec::local::LocalExecutor;
use crate::exec::process::{find_program, kill_on_drop, longest_run};
use crate::exec::{ExecRequest, run_to_completion};
use crate::plan::model::{CommandLine, NginxDriver};

/// For `nginx -t` and `nginx -s reload` each.
pub const NGINX_TIMEOUT: Duration = Duration::from_secs(30);
/// What the local file work of a set (copy, write, sync, rename) is allowed on top.
const FILE_WORK: Duration = Duration::from_secs(10);
/// Weights are searched up to this; nginx itself has no small limit.
const MAX_WEIGHT: u32 = 256;

#[derive(Debug)]
pub struct NginxTrafficDriver {
    spec: NginxDriver,
    /// One change at a time: the file, its `.previous` and the reload go together.
    changing: Mutex<()>,
}

/// One `server` line of an upstream block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    pub address: String,
    pub weight: u32,
    pub down: bool,
    pub backup: bool,
}

impl NginxTrafficDriver {
    pub fn new(spec: NginxDriver) -> Result<Self, LbError> {
        if spec.x_servers.is_empty() || spec.y_servers.is_empty() {
            return Err(error(format!(
                "upstream {} needs at least one X server and one Y server in the plan",
                spec.upstream_name
            )));
        }
        Ok(NginxTrafficDriver {
            spec,
            changing: Mutex::new(()),
        })
    }

    /// Where the file that was replaced is kept.
    pub fn previous_file(&self) -> PathBuf {
        with_suffix(&self.spec.upstream_file, ".previous")
    }

    /// The upstream file for `split`.
    pub fn render(&self, split: Split) -> String {
        let (wx, wy) = server_weights(
            split,
            self.spec.x_servers.len(),
            self.spec.y_servers.len(),
            MAX_WEIGHT,
        );
        let mut text = format!(
            "# Written by kongup: {split}. kongup rewrites this file on every traffic change.\nupstream {} {{\n",
            self.spec.upstream_name
        );
        for (servers, weights, side) in [
            (&self.spec.x_servers, wx, "X"),
            (&self.spec.y_servers, wy, "Y"),
        ] {
            for (server, weight) in servers.iter().zip(weights) {
                if weight == 0 {
                    text.push_str(&format!("    server {server} down;  # {side}\n"));
                } else {
                    text.push_str(&format!("    server {server} weight={weight};  # {side}\n"));
                }
            }
        }
        text.push_str("}\n");
        text
    }

    /// `nginx ARGS [-c CONFIG]`.
    fn nginx_command(&self, args: &[&str]) -> CommandLine {
        let mut argv = vec![find_program(&self.spec.binary).display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        if let Some(config) = &self.spec.config {
            argv.extend(["-c".to_string(), config.display().to_string()]);
        }
        CommandLine::Argv(argv)
    }

    /// Runs nginx; on failure, what it said.
    async fn run_nginx(&self, args: &[&str]) -> Result<(), String> {
        let command = self.nginx_command(args);
        let shown = command.display();
        let done = kill_on_drop(run_to_completion(
            &LocalExecutor::new(),
            ExecRequest {
                command,
                env: Vec::new(),
                timeout: NGINX_TIMEOUT,
            },
            CancellationToken::new(),
        ))
        .await
        .map_err(|e| e.to_string())?;
        if done.outcome.success() {
            Ok(())
        } else {
            Err(format!("`{shown}` {}", done.failure_summary(4)))
        }
    }

    /// Puts the file that was there before back (or removes ours if there was none).
    async fn restore(&self, had_previous: bool) -> Result<(), String> {
        let file = &self.spec.upstream_file;
        if had_previous {
            let staged = with_suffix(file, ".kongup-restore");
            tokio::fs::copy(self.previous_file(), &staged)
                .await
                .map_err(|e| {
                    format!(
                        "could not copy {} back: {e}",
                        self.previous_file().display()
                    )
                })?;
            tokio::fs::rename(&staged, file)
                .await
                .map_err(|e| format!("could not put {} back: {e}", file.display()))
        } else {
            tokio::fs::remove_file(file)
                .await
                .map_err(|e| format!("could not remove {}: {e}", file.display()))
        }
    }

    /// Writes `text` to a temporary file beside the upstream file, synced, then renames it
    /// over the upstream file.
    async fn replace_file(&self, text: &str) -> Result<(), String> {
        let file = self.spec.upstream_file.clone();
        let staged = with_suffix(&file, ".kongup-new");
        let text = text.to_string();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut out = std::fs::File::create(&staged)
                .map_err(|e| format!("could not write {}: {e}", staged.display()))?;
            out.write_all(text.as_bytes())
                .and_then(|_| out.sync_all())
                .map_err(|e| format!("could not write {}: {e}", staged.display()))?;
            std::fs::rename(&staged, &file).map_err(|e| {
                format!(
                    "could not rename {} to {}: {e}",
                    staged.display(),
                    file.display()
                )
            })
        })
        .await
        .map_err(|e| format!("writing the upstream file failed: {e}"))?
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The `server` lines of `upstream NAME { … }` in an nginx file.
pub fn parse_upstream(text: &str, name: &str) -> Result<Vec<UpstreamServer>, String> {
    let tokens = tokenize(text);
    let start = tokens
        .windows(3)
        .position(|w| w[0] == "upstream" && w[1] == name && w[2] == "{")
        .ok_or_else(|| format!("no `upstream {name} {{` block"))?;
    let body = &tokens[start + 3..];
    let end = body
        .iter()
        .position(|t| t == "}")
        .ok_or_else(|| format!("`upstream {name}` is not closed with `}}`"))?;
    let mut servers = Vec::new();
    for statement in body[..end].split(|t| t == ";") {
        let Some((first, rest)) = statement.split_first() else {
            continue;
        };
        if first != "server" {
            continue;
        }
        let (address, parameters) = rest
            .split_first()
            .ok_or_else(|| "a server line without an address".to_string())?;
        let mut server = UpstreamServer {
            address: address.clone(),
            weight: 1,
            down: false,
            backup: false,
        };
        for parameter in parameters {
            if let Some(weight) = parameter.strip_prefix("weight=") {
                server.weight = weight
                    .parse()
                    .map_err(|_| format!("server {address} has weight {weight:?}, not a number"))?;
            } else if parameter == "down" {
                server.down = true;
            } else if parameter == "backup" {
                server.backup = true;
            }
        }
        servers.push(server);
    }
    Ok(servers)
}

/// Words, `{`, `}` and `;` of an nginx file, comments left out. (Quoted strings are not
/// needed for upstream blocks.)
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut word = String::new();
        for c in line.chars() {
            if c.is_whitespace() || matches!(c, '{' | '}' | ';') {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                if !c.is_whitespace() {
                    tokens.push(c.to_string());
                }
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            tokens.push(word);
        }
    }
    tokens
}

fn error(message: String) -> LbError {
    LbError::Driver {
        driver: "nginx",
        message,
    }
}

#[async_trait::async_trait]
impl TrafficDriver for NginxTrafficDriver {
    fn describe(&self) -> String {
        format!(
            "nginx: upstream {} in {} (X: {}; Y: {}), checked with `nginx -t`, applied with `nginx -s reload`; the split read back is the one in that file (the configuration nginx was told to load, not a live read)",
            self.spec.upstream_name,
            self.spec.upstream_file.display(),
            self.spec.x_servers.join(", "),
            self.spec.y_servers.join(", ")
        )
    }

    fn read_back_source(&self) -> ReadBackSource {
        ReadBackSource::WrittenFile(self.spec.upstream_file.clone())
    }

    fn call_timeout(&self) -> Duration {
        // `nginx -t` and `nginx -s reload`, each killed and drained at worst, plus the
        // local file copies and renames.
        2 * longest_run(NGINX_TIMEOUT) + FILE_WORK
    }

    async fn set_split(&self, split: Split) -> Result<(), LbError> {
        let _one_at_a_time = self.changing.lock().await;
        let file = &self.spec.upstream_file;
        let had_previous = tokio::fs::try_exists(file).await.unwrap_or(false);
        if had_previous {
            tokio::fs::copy(file, self.previous_file())
                .await
                .map_err(|e| {
                    error(format!(
                        "could not keep a copy of {} as {}: {e}; nothing was changed",
                        file.display(),
                        self.previous_file().display()
                    ))
                })?;
        }
        self.replace_file(&self.render(split))
            .await
            .map_err(|e| error(format!("{e}; nothing was changed")))?;
        for (args, step) in [(&["-t"][..], "check"), (&["-s", "reload"][..], "reload")] {
            if let Err(nginx_said) = self.run_nginx(args).await {
                let restored = match self.restore(had_previous).await {
                    Ok(()) if had_previous => format!("{} was put back", file.display()),
                    Ok(()) => format!("{} was removed", file.display()),
                    Err(e) => format!("and putting the previous file back failed too: {e}"),
                };
                return Err(error(format!(
                    "the configuration {step} for {split} failed: {nginx_said}; {restored}"
                )));
            }
        }
        Ok(())
    }

    async fn read_split(&self) -> Result<Option<Split>, LbError> {
        let file = &self.spec.upstream_file;
        let text = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| error(format!("could not read {}: {e}", file.display())))?;
        let servers = parse_upstream(&text, &self.spec.upstream_name)
            .map_err(|e| error(format!("{}: {e}", file.display())))?;
        let mut totals = (0u64, 0u64);
        for server in &servers {
            let side = if self.spec.x_servers.contains(&server.address) {
                &mut totals.0
            } else if self.spec.y_servers.contains(&server.address) {
                &mut totals.1
            } else {
                return Err(error(format!(
                    "{} lists server {}, which the plan names neither X nor Y: was the file edited by hand?",
                    file.display(),
                    server.address
                )));
            };
            if !server.down && !server.backup {
                *side += u64::from(server.weight);
            }
        }
        split_from_weights(totals.0, totals.1)
            .map(Some)
            .ok_or_else(|| {
                error(format!(
                    "every server of upstream {} in {} is down",
                    self.spec.upstream_name,
                    file.display()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver() -> NginxTrafficDriver {
        NginxTrafficDriver::new(NginxDriver {
            upstream_file: PathBuf::from("/etc/nginx/kong-upstream.conf"),
            upstream_name: "kong".into(),
            x_servers: vec!["10.0.0.1:8000".into()],
            y_servers: vec!["10.0.1.1:8000".into(), "10.0.1.2:8000".into()],
            binary: "nginx".into(),
            config: None,
        })
        .unwrap()
    }

    #[test]
    fn render_gives_weights_and_marks_a_side_at_zero_down() {
        let d = driver();
        assert_eq!(
            d.render(Split::ALL_X),
            "# Written by kongup: X 100% | Y 0%. kongup rewrites this file on every traffic change.\n\
             upstream kong {\n    server 10.0.0.1:8000 weight=100;  # X\n    server 10.0.1.1:8000 down;  # Y\n    server 10.0.1.2:8000 down;  # Y\n}\n"
        );
        let servers = parse_upstream(&d.render(Split::to_y(50)), "kong").unwrap();
        let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
        assert_eq!(weights, [2, 1, 1]);
    }

    #[test]
    fn parse_reads_parameters_and_ignores_comments_and_other_blocks() {
        let text = "upstream other { server 1.1.1.1:1; }\n# upstream kong { server 9.9.9.9:9; }\nupstream kong {\n  zone kong 64k;\n  server a:1 weight=3 max_fails=2;\n  server b:2 down; # Y\n  server c:3 backup;\n}\n";
        assert_eq!(
            parse_upstream(text, "kong").unwrap(),
            vec![
                UpstreamServer {
                    address: "a:1".into(),
                    weight: 3,
                    down: false,
                    backup: false
                },
                UpstreamServer {
                    address: "b:2".into(),
                    weight: 1,
                    down: true,
                    backup: false
                },
                UpstreamServer {
                    address: "c:3".into(),
                    weight: 1,
                    down: false,
                    backup: true
                },
            ]
        );
        assert!(parse_upstream(text, "missing").is_err());
        assert!(parse_upstream("upstream kongx { server a:1; }", "kong").is_err());
    }

    #[test]
    fn nginx_is_run_with_the_configured_config() {
        let mut spec = driver().spec;
        spec.binary = "/opt/nginx/sbin/nginx".into();
        spec.config = Some(PathBuf::from("/etc/nginx/nginx.conf"));
        let d = NginxTrafficDriver::new(spec).unwrap();
        assert_eq!(
            d.nginx_command(&["-s", "reload"]),
            CommandLine::Argv(vec![
                "/opt/nginx/sbin/nginx".into(),
                "-s".into(),
                "reload".into(),
                "-c".into(),
                "/etc/nginx/nginx.conf".into()
            ])
        );
        assert_eq!(
            d.previous_file(),
            PathBuf::from("/etc/nginx/kong-upstream.conf.previous")
        );
    }
}

//! What a shell would do: a `shell:` string split into commands, `sudo` and `VAR=value`
//! words dropped, options read from argument vectors; and `cp` and `cat`.

use std::time::Duration;

use super::kong::kong_conf;
use super::{Session, SimExecutor, Stop};
use crate::sim::lab::Artifact;

/// How one command of a sequence is joined to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Joiner {
    /// `&&`: run the next only on success.
    And,
    /// `;` or a newline: run the next anyway.
    Then,
}

/// Splits a shell string into commands (`None` when it uses what the lab does not
/// simulate: pipes, `||`, redirections, substitutions).
pub(super) fn split_shell(script: &str) -> Option<Vec<(Vec<String>, Joiner)>> {
    let mut commands = Vec::new();
    let mut argv: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let finish_word = |argv: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            argv.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        '$' | '`' => return None,
                        _ => word.push(q),
                    }
                }
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                finish_word(&mut argv, &mut word, &mut in_word);
                commands.push((std::mem::take(&mut argv), Joiner::And));
            }
            ';' | '\n' => {
                finish_word(&mut argv, &mut word, &mut in_word);
                if !argv.is_empty() {
                    commands.push((std::mem::take(&mut argv), Joiner::Then));
                }
            }
            '|' | '>' | '<' | '`' | '$' | '&' | '(' | ')' => return None,
            c if c.is_whitespace() => finish_word(&mut argv, &mut word, &mut in_word),
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish_word(&mut argv, &mut word, &mut in_word);
    if !argv.is_empty() {
        commands.push((argv, Joiner::Then));
    }
    Some(commands)
}

/// Drops `sudo` (and its options) and leading `VAR=value` words.
pub(super) fn strip_wrappers(argv: &[String]) -> &[String] {
    let mut rest = argv;
    loop {
        match rest.first().map(String::as_str) {
            Some("sudo") => {
                rest = &rest[1..];
                while let Some(flag) = rest.first().filter(|f| f.starts_with('-')) {
                    let takes_value = matches!(flag.as_str(), "-u" | "-g" | "-C" | "-D");
                    rest = &rest[if takes_value { 2.min(rest.len()) } else { 1 }..];
                }
            }
            Some(word) if word.contains('=') && !word.starts_with('-') => rest = &rest[1..],
            _ => return rest,
        }
    }
}

/// The value of `-x VALUE`, `--long VALUE` or `--long=VALUE` among `args`.
pub(super) fn option_value<'a>(
    args: &'a [String],
    short: Option<&str>,
    long: &str,
) -> Option<&'a str> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(value) = arg.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            return Some(value);
        }
        if arg == long || short.is_some_and(|s| arg == s) {
            return iter.next().map(String::as_str);
        }
        if let Some(s) = short
            && let Some(value) = arg.strip_prefix(s)
            && !value.is_empty()
            && s.len() == 2
        {
            return Some(value);
        }
    }
    None
}

pub(super) fn has_flag(args: &[String], short: Option<&str>, long: &str) -> bool {
    args.iter()
        .any(|a| a == long || short.is_some_and(|s| a == s))
}

/// Arguments that are not options (and not the values of the options named).
pub(super) fn positionals<'a>(args: &'a [String], valued: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if valued.contains(&arg.as_str()) {
            iter.next();
        } else if !arg.starts_with('-') {
            out.push(arg.as_str());
        }
    }
    out
}

impl SimExecutor {
    pub(super) async fn cp(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let paths = positionals(args, &[]);
        let [src, dst] = paths.as_slice() else {
            s.err("cp: missing destination file operand").await;
            return Ok(1);
        };
        let artifact = self.shared().files().get(*src).cloned();
        match artifact {
            Some(artifact) => {
                s.pause(Duration::from_millis(200)).await?;
                self.shared().files().insert(dst.to_string(), artifact);
                Ok(0)
            }
            None => {
                s.err(format!(
                    "cp: cannot stat '{src}': No such file or directory"
                ))
                .await;
                Ok(1)
            }
        }
    }

    /// `cat FILE…`: the lab's files as a real host would print them (a node's `kong.conf`,
    /// the declarative configuration); a file the lab does not have gets a stand-in line
    /// and a note, as for programs the lab does not simulate.
    pub(super) async fn cat(&self, args: &[String], s: &Session<'_>) -> Result<i32, Stop> {
        let paths = positionals(args, &[]);
        if paths.is_empty() {
            s.err("sim: cat reads files only: name one").await;
            return Ok(1);
        }
        for path in paths {
            let artifact = self.shared().files().get(path).cloned();
            let lines = match artifact {
                Some(Artifact::ConfigFile) => {
                    let shared = self.shared();
                    match self.node_name().and_then(|n| shared.node(n).ok()) {
                        Some(node) => kong_conf(shared, &node.spec),
                        None => vec!["# kong.conf (no node: a lab-wide executor)".to_string()],
                    }
                }
                Some(Artifact::DeclarativeConfig { config_hash }) => {
                    crate::sim::entities::declarative_config(&self.shared().routes, &config_hash)
                        .lines()
                        .map(str::to_string)
                        .collect()
                }
                Some(Artifact::DatabaseDump(_)) => {
                    vec!["PGDMP (a custom-format pg_dump archive of the lab)".to_string()]
                }
                None => {
                    s.err(format!(
                        "sim: the lab has no file {path}; on a real host `cat` would print it"
                    ))
                    .await;
                    vec![format!(
                        "# kongup lab: a stand-in for {path}, which the lab does not have"
                    )]
                }
            };
            for line in lines {
                s.out(line).await;
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_shell_strings_on_and_and_semicolons() {
        let cmds = split_shell(
            "kong migrations up --db-timeout 60 && kong migrations finish; echo 'all done'",
        )
        .unwrap();
        assert_eq!(
            cmds,
            vec![
                (
                    words(&["kong", "migrations", "up", "--db-timeout", "60"]),
                    Joiner::And
                ),
                (words(&["kong", "migrations", "finish"]), Joiner::Then),
                (words(&["echo", "all done"]), Joiner::Then),
            ]
        );
        assert!(split_shell("kong health | grep healthy").is_none());
        assert!(split_shell("echo $HOME").is_none());
    }

    #[test]
    fn strips_sudo_and_environment_words() {
        let argv = words(&[
            "sudo",
            "-u",
            "kong",
            "-E",
            "KONG_DATABASE=postgres",
            "kong",
            "start",
        ]);
        assert_eq!(strip_wrappers(&argv), &words(&["kong", "start"])[..]);
    }

    #[test]
    fn reads_short_long_and_joined_options() {
        let args = words(&["-Fc", "-f", "/tmp/x.dump", "--dbname=kong", "-h", "db"]);
        assert_eq!(
            option_value(&args, Some("-f"), "--file"),
            Some("/tmp/x.dump")
        );
        assert_eq!(option_value(&args, Some("-d"), "--dbname"), Some("kong"));
        assert_eq!(option_value(&args, Some("-F"), "--format"), Some("c"));
        assert_eq!(
            positionals(&words(&["-d", "kong", "/tmp/x.dump"]), &["-d"]),
            vec!["/tmp/x.dump"]
        );
    }
}

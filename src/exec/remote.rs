//! The small POSIX `sh` wrapper that ssh and `kubectl exec` run on the far side.
//!
//! It does two things the remote side cannot otherwise do safely:
//! - the environment arrives as one line on stdin (`export NAME='value' …`), so secrets
//!   never appear on any argv (neither kongup's `ssh …` in `ps`, nor the remote one);
//! - the command runs in its own session (`setsid` when the host has it) while a watcher
//!   reads the rest of stdin: when the local client dies (timeout, abort), stdin reaches
//!   EOF and the watcher sends SIGTERM to the command's process group, then SIGKILL
//!   after 5 s. Without `setsid` only the command's own process is signalled.
//!
//! The remote account's login shell (for ssh) must be POSIX-compatible (sh, bash, dash,
//! ksh, zsh); the container (for kubectl) must have `/bin/sh`.

use super::ExecError;
use crate::plan::model::CommandLine;

/// The wrapper. `$@` is the command; stdin carries the environment line, then stays
/// open until the client goes away.
const WRAPPER: &str = r#"kongup_nl='
'
exec 3<&0 </dev/null
IFS= read -r kongup_env <&3 || { echo "kongup: the command's environment did not arrive on stdin" >&2; exit 125; }
eval "$kongup_env"
unset kongup_env
if command -v setsid >/dev/null 2>&1; then
  setsid "$@" 3<&- &
else
  "$@" 3<&- &
fi
kongup_pid=$!
{
  while IFS= read -r kongup_line; do :; done
  kill -TERM "-$kongup_pid" 2>/dev/null || kill -TERM "$kongup_pid" 2>/dev/null
  sleep 5
  kill -KILL "-$kongup_pid" 2>/dev/null || kill -KILL "$kongup_pid" 2>/dev/null
} <&3 3<&- >/dev/null 2>&1 &
kongup_watch=$!
exec 3<&-
wait "$kongup_pid"
kongup_status=$?
kill "$kongup_watch" 2>/dev/null
exit "$kongup_status"
"#;

/// Quotes one word for a POSIX shell: `it's` becomes `'it'\''s'`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The argv to run on the far side: `sh -c WRAPPER kongup PROGRAM ARGS…`.
pub fn wrapped_argv(command: &CommandLine) -> Result<Vec<String>, ExecError> {
    let command_argv = match command {
        CommandLine::Argv(argv) if argv.is_empty() => {
            return Err(ExecError::Other(
                "the command is empty: give at least the program to run".to_string(),
            ));
        }
        CommandLine::Argv(argv) => argv.clone(),
        CommandLine::Shell(script) => vec!["sh".to_string(), "-c".to_string(), script.clone()],
    };
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        WRAPPER.to_string(),
        "kongup".to_string(),
    ];
    argv.extend(command_argv);
    Ok(argv)
}

/// The first line written to the wrapper's stdin: `export NAME='value' …`, one line
/// whatever the values hold (a newline inside a value travels as `"$kongup_nl"`).
pub fn environment_line(env: &[(String, String)]) -> Result<Vec<u8>, ExecError> {
    let mut line = String::new();
    for (name, value) in env {
        if !is_shell_name(name) {
            return Err(ExecError::Other(format!(
                "the environment variable name {name:?} cannot be passed to a remote shell: use letters, digits and _ only, not starting with a digit"
            )));
        }
        let quoted = value
            .split('\n')
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join("\"$kongup_nl\"");
        line.push_str(&format!("export {name}={quoted}; "));
    }
    line.push('\n');
    Ok(line.into_bytes())
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn environment_is_one_line_even_with_newlines_in_values() {
        let line = environment_line(&[
            ("A".into(), "x\ny'z".into()),
            ("B_2".into(), "$HOME".into()),
        ])
        .unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(
            line,
            "export A='x'\"$kongup_nl\"'y'\\''z'; export B_2='$HOME'; \n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn a_name_that_is_not_a_shell_name_is_refused() {
        assert!(environment_line(&[("A;rm".into(), "x".into())]).is_err());
        assert!(environment_line(&[("1A".into(), "x".into())]).is_err());
    }

    #[test]
    fn the_command_follows_the_wrapper_as_positional_arguments() {
        let argv = wrapped_argv(&CommandLine::Shell("echo $X".into())).unwrap();
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(argv[3..], ["kongup", "sh", "-c", "echo $X"]);
        assert!(wrapped_argv(&CommandLine::Argv(vec![])).is_err());
    }
}

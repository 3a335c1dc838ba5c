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
//!
//! A step's command over ssh runs under [`TRACKED_WRAPPER`] instead (see `exec::track`):
//! the command outlives kongup and the connection, in a session of its own with its
//! output in files of its directory on the host, and is stopped only when kongup writes
//! `stop` on stdin (an abort, a timeout), never because stdin ended. The host is asked
//! about it later with [`PROBE_SCRIPT`] and [`KILL_SCRIPT`]. These need Linux's `/proc`,
//! `setsid` (util-linux or busybox), and `tail -c`/`head -c` (coreutils or busybox).

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

/// The wrapper of a step's command over ssh. `$1` is the command's directory on the host
/// (`~/` is the account's home), `$2` the status wrapper
/// (`exec::track::REMOTE_STATUS_WRAPPER`),
/// the rest the command; stdin carries the environment line, then stays open for `stop`.
///
/// It starts the command in a session of its own under the status wrapper, its output in
/// `stdout` and `stderr` of the directory and stdin from /dev/null, so nothing of it
/// depends on this connection; writes `process` (pid, start time, boot id) there and says
/// the same on stderr (`kongup-remote: pid=… start=… boot=…`); copies the output files to
/// its own stdout and stderr as they grow; and at the end says `kongup-remote: exit=N` on
/// stderr and removes the output files (their contents went down the connection). If the
/// connection is lost, the copying dies with it and the command goes on; the files stay
/// for kongup to read through [`PROBE_SCRIPT`].
pub const TRACKED_WRAPPER: &str = r#"umask 077
kongup_dir=$1
kongup_inner=$2
shift 2
case $kongup_dir in "~/"*) kongup_dir=$HOME/${kongup_dir#"~/"} ;; esac
mkdir -p "$kongup_dir" || { echo "kongup: cannot create $kongup_dir for the command's output and exit status" >&2; exit 125; }
exec 3<&0 </dev/null
IFS= read -r kongup_env <&3 || { echo "kongup: the command's environment did not arrive on stdin" >&2; exit 125; }
eval "$kongup_env"
unset kongup_env
if command -v setsid >/dev/null 2>&1; then kongup_setsid=setsid; else kongup_setsid=; fi
$kongup_setsid sh -c "$kongup_inner" kongup "$kongup_dir/status" "$@" >"$kongup_dir/stdout" 2>"$kongup_dir/stderr" 3<&- &
kongup_pid=$!
kongup_start=$(cut -d' ' -f22 "/proc/$kongup_pid/stat" 2>/dev/null)
kongup_boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
printf '%s %s %s
' "$kongup_pid" "$kongup_start" "$kongup_boot" >"$kongup_dir/process"
echo "kongup-remote: pid=$kongup_pid start=$kongup_start boot=$kongup_boot" >&2
{
  while IFS= read -r kongup_line; do
    if [ "$kongup_line" = stop ]; then
      kill -TERM "-$kongup_pid" 2>/dev/null || kill -TERM "$kongup_pid" 2>/dev/null
      sleep 5
      kill -KILL "-$kongup_pid" 2>/dev/null || kill -KILL "$kongup_pid" 2>/dev/null
      break
    fi
  done
} <&3 3<&- >/dev/null 2>&1 &
kongup_watch=$!
exec 3<&-
kongup_copy() {
  kongup_size=$(wc -c <"$1" 2>/dev/null) || kongup_size=$2
  kongup_size=$((kongup_size + 0))
  if [ "$kongup_size" -gt "$2" ]; then tail -c "+$(($2 + 1))" "$1" | head -c "$((kongup_size - $2))"; fi
}
kongup_wrapper=$$
{
  kongup_out=0
  kongup_err=0
  while :; do
    kongup_last=0
    [ -e "$kongup_dir/ended" ] && kongup_last=1
    # Its directory removed, or this wrapper gone: nobody reads on.
    { [ -d "$kongup_dir" ] && kill -0 "$kongup_wrapper" 2>/dev/null; } || break
    kongup_copy "$kongup_dir/stdout" "$kongup_out"
    kongup_out=$kongup_size
    kongup_copy "$kongup_dir/stderr" "$kongup_err" >&2
    kongup_err=$kongup_size
    [ "$kongup_last" = 1 ] && break
    sleep 0.1 2>/dev/null || sleep 1
  done
} &
kongup_follow=$!
wait "$kongup_pid"
kongup_status=$?
: >"$kongup_dir/ended" 2>/dev/null
wait "$kongup_follow"
echo "kongup-remote: exit=$kongup_status" >&2
kill "$kongup_watch" 2>/dev/null
rm -f "$kongup_dir/stdout" "$kongup_dir/stderr" "$kongup_dir/ended"
exit "$kongup_status"
"#;

/// Asks about the command in the directory `$1`: one line first on stdout, `kongup-probe:
/// state=running|ended|gone|missing status=N pid=… start=… boot=… out=SIZE err=SIZE`, then
/// its stdout file after byte `$2` on stdout and its stderr file after byte `$3` on stderr.
/// Running means: the pid recorded, with its start time, in the boot recorded, or members
/// of its process group.
pub const PROBE_SCRIPT: &str = r#"kongup_dir=$1
case $kongup_dir in "~/"*) kongup_dir=$HOME/${kongup_dir#"~/"} ;; esac
if [ ! -d "$kongup_dir" ]; then echo "kongup-probe: state=missing"; exit 0; fi
kongup_status=$(cat "$kongup_dir/status" 2>/dev/null)
kongup_pid= kongup_start= kongup_boot=
[ -r "$kongup_dir/process" ] && read -r kongup_pid kongup_start kongup_boot <"$kongup_dir/process"
kongup_state=gone
if [ -n "$kongup_status" ]; then
  kongup_state=ended
elif [ -n "$kongup_pid" ] && [ "$kongup_boot" = "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" ]; then
  set -- "$@" $(cut -d' ' -f3,22 "/proc/$kongup_pid/stat" 2>/dev/null)
  if { [ "$5" = "$kongup_start" ] && [ "$4" != Z ]; } || kill -0 "-$kongup_pid" 2>/dev/null; then
    kongup_state=running
  fi
fi
kongup_out=$(($(wc -c <"$kongup_dir/stdout" 2>/dev/null || echo 0) + 0))
kongup_err=$(($(wc -c <"$kongup_dir/stderr" 2>/dev/null || echo 0) + 0))
echo "kongup-probe: state=$kongup_state status=$kongup_status pid=$kongup_pid start=$kongup_start boot=$kongup_boot out=$kongup_out err=$kongup_err"
if [ "$kongup_out" -gt "$2" ]; then tail -c "+$(($2 + 1))" "$kongup_dir/stdout" | head -c "$((kongup_out - $2))"; fi
if [ "$kongup_err" -gt "$3" ]; then tail -c "+$(($3 + 1))" "$kongup_dir/stderr" | head -c "$((kongup_err - $3))" >&2; fi
exit 0
"#;

/// Kills the process group of the command in the directory `$1`, if it is still the one
/// recorded: SIGTERM, then SIGKILL after `$2` seconds. Says `kongup-kill: killed` or
/// `kongup-kill: not running`.
pub const KILL_SCRIPT: &str = r#"kongup_dir=$1
case $kongup_dir in "~/"*) kongup_dir=$HOME/${kongup_dir#"~/"} ;; esac
read -r kongup_pid kongup_start kongup_boot <"$kongup_dir/process" 2>/dev/null || { echo "kongup-kill: $kongup_dir holds no process record" >&2; exit 1; }
kongup_alive() {
  set -- $(cut -d' ' -f3,22 "/proc/$kongup_pid/stat" 2>/dev/null)
  { [ "$2" = "$kongup_start" ] && [ "$1" != Z ]; } || kill -0 "-$kongup_pid" 2>/dev/null
}
if [ "$kongup_boot" != "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" ] || ! kongup_alive; then
  echo "kongup-kill: not running"
  exit 0
fi
kill -TERM "-$kongup_pid" 2>/dev/null || kill -TERM "$kongup_pid" 2>/dev/null
kongup_waited=0
while kongup_alive && [ "$kongup_waited" -lt "$(($2 * 10))" ]; do
  sleep 0.1 2>/dev/null || sleep 1
  kongup_waited=$((kongup_waited + 1))
done
kill -KILL "-$kongup_pid" 2>/dev/null || kill -KILL "$kongup_pid" 2>/dev/null
echo "kongup-kill: killed"
"#;

/// The argv to run a step's command on the far side under [`TRACKED_WRAPPER`], its
/// directory there being `dir`.
pub fn tracked_argv(command: &CommandLine, dir: &str) -> Result<Vec<String>, ExecError> {
    let mut argv = wrapped_argv(command)?;
    // `sh -c WRAPPER kongup COMMAND…` becomes `sh -c TRACKED kongup DIR STATUS COMMAND…`.
    argv[2] = TRACKED_WRAPPER.to_string();
    argv.splice(
        4..4,
        [
            dir.to_string(),
            crate::exec::track::REMOTE_STATUS_WRAPPER.to_string(),
        ],
    );
    Ok(argv)
}

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
    fn a_tracked_command_follows_its_directory_and_the_status_wrapper() {
        let argv = tracked_argv(
            &CommandLine::Argv(vec!["kong".into(), "migrations".into()]),
            "~/.kongup/runs/r/cluster-up/1-1",
        )
        .unwrap();
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(argv[2], TRACKED_WRAPPER);
        assert_eq!(argv[3..5], ["kongup", "~/.kongup/runs/r/cluster-up/1-1"]);
        assert_eq!(argv[5], crate::exec::track::REMOTE_STATUS_WRAPPER);
        assert_eq!(argv[6..], ["kong", "migrations"]);
    }

    #[test]
    fn the_command_follows_the_wrapper_as_positional_arguments() {
        let argv = wrapped_argv(&CommandLine::Shell("echo $X".into())).unwrap();
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(argv[3..], ["kongup", "sh", "-c", "echo $X"]);
        assert!(wrapped_argv(&CommandLine::Argv(vec![])).is_err());
    }
}

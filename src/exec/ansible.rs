//! Runs a command on many hosts at once through Ansible (Debian's `ansible-core`): one
//! `ansible` (ad-hoc, `-m MODULE -a COMMAND`) or `ansible-playbook` invocation per command,
//! `--limit`ed to the hosts it runs on. Ansible's forks and SSH multiplexing do the
//! fan-out; kongup reads how it went on each host.
//!
//! The hosts are the plan's node names, which must be the inventory's hostnames.
//!
//! How each host's outcome is read (ansible-core 2.14, whose builtin callbacks are
//! `default`, `minimal`, `oneline`, `tree` and `junit`; the `json` callback is
//! `ansible.posix.json`, a collection `ansible-core` does not ship):
//! - the live output is Ansible's own, streamed to the step's log: ad-hoc with the
//!   `oneline` stdout callback, one line a host result, `HOST | SUCCESS|CHANGED|FAILED!|
//!   UNREACHABLE!|SKIPPED …` (lib/ansible/plugins/callback/oneline.py, v2.14.18); a
//!   playbook with `default`, whose `PLAY RECAP` ends with one line a host,
//!   `HOST : ok=N changed=N unreachable=N failed=N …`
//!   (lib/ansible/plugins/callback/default.py, `v2_playbook_on_stats`, v2.14.18). Those
//!   lines say which hosts failed or were unreachable;
//! - the `tree` callback (lib/ansible/plugins/callback/tree.py, v2.14.18), enabled with
//!   `ANSIBLE_CALLBACKS_ENABLED=tree` and pointed at a private directory with
//!   `ANSIBLE_CALLBACK_TREE_DIR`, writes each host's last result there as JSON (`rc`,
//!   `msg`, `stdout_lines`, `stderr_lines`, `unreachable`); it drops the `failed` flag, so
//!   it gives the detail, not the verdict. Ad-hoc runs load callbacks only with
//!   `ANSIBLE_LOAD_CALLBACK_PLUGINS=1` (lib/ansible/config/base.yml,
//!   `DEFAULT_LOAD_CALLBACK_PLUGINS`, v2.14.18).
//!
//! The command reaches the hosts as Ansible's: ad-hoc, as the module's arguments (`-a`,
//! templated by Ansible: `{{ inventory_hostname }}` is the node's name); for a playbook,
//! as the variables `kongup_command` (a shell command line) and `kongup_argv` (its words),
//! with its environment as `kongup_env` (apply it with `environment: "{{ kongup_env }}"`),
//! all in a file given with `--extra-vars @FILE`: private to kongup's user and removed
//! when the run ends, so no value is on an argv. Ad-hoc runs take no environment (a
//! module's arguments are printed back in its result): a command that needs one is refused
//! there, with the advice to use a playbook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{DEFAULT_KILL_GRACE, ProcessSpec, find_program, run_process};
use super::remote::shell_quote;
use super::{ExecError, ExecRequest, Executor, ExitOutcome, HostOutcome, LogStream, OutputLine};
use crate::engine::step::NODE_VARIABLE;
use crate::plan::model::{AnsibleRun, AnsibleSpec, CommandLine};

/// Ansible's exit status when a host failed (`TaskQueueManager.RUN_FAILED_HOSTS`,
/// lib/ansible/executor/task_queue_manager.py, v2.14.18): a failed host whose result
/// carries no `rc` of its own ended so.
pub const RUN_FAILED_HOSTS: i32 = 2;
/// Ansible's exit status when a host was unreachable (`RUN_UNREACHABLE_HOSTS`, same file):
/// an unreachable host's outcome.
pub const RUN_UNREACHABLE_HOSTS: i32 = 4;

#[derive(Debug, Clone)]
pub struct AnsibleExecutor {
    spec: AnsibleSpec,
    kill_grace: Duration,
}

/// How Ansible said a host's command went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

/// A host's last result as the `tree` callback wrote it.
#[derive(Debug, Default, Deserialize)]
struct TreeResult {
    rc: Option<i32>,
    #[serde(default)]
    msg: Option<serde_json::Value>,
    #[serde(default)]
    stdout_lines: Vec<String>,
    #[serde(default)]
    stderr_lines: Vec<String>,
}

impl AnsibleExecutor {
    pub fn new(spec: AnsibleSpec) -> Self {
        AnsibleExecutor {
            spec,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    /// The program (`ansible` or `ansible-playbook`) and its arguments for `command` on
    /// `hosts`; `vars_file` is the playbook's `--extra-vars` file.
    pub fn invocation(
        &self,
        hosts: &[String],
        command: &CommandLine,
        vars_file: Option<&Path>,
    ) -> Result<(&'static str, Vec<String>), ExecError> {
        let mut args = Vec::new();
        let program = match &self.spec.run {
            AnsibleRun::Module(module) => {
                // The pattern `all`, narrowed to the step's hosts by `--limit`.
                args.extend([
                    "all".to_string(),
                    "--module-name".to_string(),
                    module.clone(),
                    "--args".to_string(),
                    command_line(command)?,
                ]);
                "ansible"
            }
            AnsibleRun::Playbook(_) => "ansible-playbook",
        };
        args.extend([
            "--inventory".to_string(),
            self.spec.inventory.display().to_string(),
            "--limit".to_string(),
            hosts.join(","),
        ]);
        if let Some(forks) = self.spec.forks {
            args.extend(["--forks".to_string(), forks.to_string()]);
        }
        if let Some(user) = &self.spec.user {
            args.extend(["--user".to_string(), user.clone()]);
        }
        if self.spec.become_root {
            args.push("--become".to_string());
        }
        if let Some(file) = vars_file {
            args.extend(["--extra-vars".to_string(), format!("@{}", file.display())]);
        }
        args.extend(self.spec.args.iter().cloned());
        if let AnsibleRun::Playbook(playbook) = &self.spec.run {
            args.push(playbook.display().to_string());
        }
        Ok((program, args))
    }

    fn is_playbook(&self) -> bool {
        matches!(self.spec.run, AnsibleRun::Playbook(_))
    }

    /// Ansible's settings for one invocation: its stdout callback, and the `tree`
    /// callback writing each host's result into `tree_dir`.
    fn settings(&self, tree_dir: &Path) -> Vec<(String, String)> {
        let stdout_callback = if self.is_playbook() {
            "default"
        } else {
            "oneline"
        };
        [
            ("ANSIBLE_LOAD_CALLBACK_PLUGINS", "1"),
            ("ANSIBLE_STDOUT_CALLBACK", stdout_callback),
            ("ANSIBLE_CALLBACKS_ENABLED", "tree"),
            ("ANSIBLE_CALLBACK_TREE_DIR", &tree_dir.display().to_string()),
            ("ANSIBLE_NOCOLOR", "1"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }

    /// A private directory of its own for one invocation's tree files and variables, named
    /// after this process so that what a killed kongup left behind is found and removed.
    fn work_dir() -> Result<WorkDir, ExecError> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        let temp = std::env::temp_dir();
        SWEPT.call_once(|| remove_left_behind(&temp));
        let dir = temp.join(format!(
            "{WORK_DIR_PREFIX}{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        crate::engine::rundir::create_private_dir(&dir).map_err(|e| {
            ExecError::Other(format!(
                "could not create {} for Ansible's per-host results: {e}; free space in the temporary directory (TMPDIR) or fix its permissions, then retry",
                dir.display()
            ))
        })?;
        Ok(WorkDir(dir))
    }
}

/// Removed with everything in it when dropped (it may hold the command's environment).
struct WorkDir(PathBuf);

const WORK_DIR_PREFIX: &str = "kongup-ansible-";

/// Removes the work directories in `temp` of kongup processes that are gone: a kongup killed
/// with -9 never drops its [`WorkDir`], and the variables file in it may hold the command's
/// environment (secrets). A directory whose process is alive, or whose name does not carry a
/// process id, is left alone.
fn remove_left_behind(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORK_DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The command as one shell command line: a `shell:` command as written, an argv quoted
/// word by word.
fn command_line(command: &CommandLine) -> Result<String, ExecError> {
    match command {
        CommandLine::Shell(script) => Ok(script.clone()),
        CommandLine::Argv(argv) if argv.is_empty() => Err(ExecError::Other(
            "the command is empty: give at least the program to run".to_string(),
        )),
        CommandLine::Argv(argv) => Ok(argv
            .iter()
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

/// A playbook's variables as YAML: `kongup_command` (one shell line), `kongup_argv` (its
/// words) and `kongup_env`. Each value is a JSON string, which YAML reads as a
/// double-quoted scalar; the environment's values are tagged `!unsafe` so that Ansible
/// never templates them (a password may hold `{{` or `{%`: lib/ansible/parsing/yaml/
/// constructor.py, `construct_yaml_unsafe`, v2.14.18). The command is templated, as an
/// ad-hoc module's arguments are.
fn variables(command: &CommandLine, env: &[(String, String)]) -> Result<String, ExecError> {
    let quoted = |text: &str| serde_json::Value::String(text.to_string()).to_string();
    let argv = match command {
        CommandLine::Argv(argv) => argv.clone(),
        CommandLine::Shell(script) => vec!["sh".to_string(), "-c".to_string(), script.clone()],
    };
    let mut text = format!(
        "kongup_command: {}\nkongup_argv: {}\nkongup_env:",
        quoted(&command_line(command)?),
        serde_json::Value::from(argv)
    );
    if env.is_empty() {
        text.push_str(" {}");
    }
    for (name, value) in env {
        text.push_str(&format!("\n  {}: !unsafe {}", quoted(name), quoted(value)));
    }
    text.push('\n');
    Ok(text)
}

/// A hostname kongup passes to `--limit` as is: Ansible reads `,` `:` `!` `&` `*` `~` `[`
/// in a pattern, and the `tree` callback names a file after it.
fn check_host(host: &str) -> Result<(), ExecError> {
    let plain = !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if plain {
        Ok(())
    } else {
        Err(ExecError::Other(format!(
            "the node name {host:?} cannot be an Ansible host in a `--limit`: the ansible executor runs on the inventory hostnames that equal the plan's node names, made of letters, digits, `.`, `-` and `_`; rename the node (and its inventory entry)"
        )))
    }
}

/// The host and its state from one line of Ansible's output, when the line is a host's
/// result: `HOST | STATE …` (`oneline`) or, after `PLAY RECAP`, `HOST : ok=N … failed=N …`
/// (`default`).
fn host_state(line: &str, in_recap: bool) -> Option<(&str, HostState)> {
    if in_recap {
        let (host, counts) = line.split_once(" : ")?;
        let count = |name: &str| {
            counts
                .split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .and_then(|n| n.parse::<u64>().ok())
        };
        let state = if count("unreachable")? > 0 {
            HostState::Unreachable
        } else if count("failed")? > 0 {
            HostState::Failed
        } else if count("changed")? > 0 {
            HostState::Changed
        } else {
            HostState::Ok
        };
        return Some((host.trim(), state));
    }
    let (host, rest) = line.split_once(" | ")?;
    let word = rest.split([' ', ':']).next()?;
    let state = match word {
        "SUCCESS" => HostState::Ok,
        "CHANGED" => HostState::Changed,
        "SKIPPED" => HostState::Skipped,
        "FAILED" | "FAILED!" => HostState::Failed,
        "UNREACHABLE!" => HostState::Unreachable,
        _ => return None,
    };
    Some((host, state))
}

/// The tree file of `host`, if Ansible wrote one that reads.
fn tree_result(dir: &Path, host: &str) -> Option<TreeResult> {
    let text = std::fs::read(dir.join(host)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `msg` as text: Ansible's is mostly a string, sometimes a list or a mapping.
fn message(result: &TreeResult) -> Option<String> {
    match result.msg.as_ref()? {
        serde_json::Value::String(text) if text.trim().is_empty() => None,
        serde_json::Value::String(text) => Some(text.trim().to_string()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The outcome of one host from what Ansible said (`state`) and wrote (`result`), given
/// how the whole invocation ended.
fn host_outcome(
    host: &str,
    state: Option<HostState>,
    result: Option<&TreeResult>,
    invocation: ExitOutcome,
    inventory: &Path,
) -> HostOutcome {
    let msg = result.and_then(message);
    let last_stderr = result.and_then(|r| {
        r.stderr_lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
    });
    let (outcome, summary) = match state {
        Some(HostState::Ok) => (ExitOutcome::Exited(0), "ok".to_string()),
        Some(HostState::Changed) => (ExitOutcome::Exited(0), "changed".to_string()),
        Some(HostState::Skipped) => (
            ExitOutcome::Exited(0),
            "skipped (a `when:` of the task was false)".to_string(),
        ),
        Some(HostState::Failed) => {
            let rc = result
                .and_then(|r| r.rc)
                .filter(|rc| *rc != 0)
                .unwrap_or(RUN_FAILED_HOSTS);
            let mut parts = vec![format!("failed (rc={rc})")];
            parts.extend(msg);
            parts.extend(last_stderr);
            (ExitOutcome::Exited(rc), parts.join(": "))
        }
        Some(HostState::Unreachable) => (
            ExitOutcome::Exited(RUN_UNREACHABLE_HOSTS),
            format!(
                "unreachable: {}",
                msg.unwrap_or_else(|| "Ansible could not connect".to_string())
            ),
        ),
        None => {
            let why = match invocation {
                ExitOutcome::TimedOut => "Ansible timed out before it reported this host",
                ExitOutcome::Aborted => "Ansible was aborted before it reported this host",
                _ => "Ansible reported nothing for this host",
            };
            let outcome = if invocation.success() {
                ExitOutcome::Exited(RUN_FAILED_HOSTS)
            } else {
                invocation
            };
            (
                outcome,
                format!(
                    "{why}: check that {host} is a hostname in {} and that the play runs on it",
                    inventory.display()
                ),
            )
        }
    };
    HostOutcome {
        host: host.to_string(),
        outcome,
        summary,
    }
}

#[async_trait::async_trait]
impl Executor for AnsibleExecutor {
    fn describe(&self) -> String {
        match &self.spec.run {
            AnsibleRun::Module(module) => format!(
                "ansible -m {module} (inventory {})",
                self.spec.inventory.display()
            ),
            AnsibleRun::Playbook(playbook) => format!(
                "ansible-playbook {} (inventory {})",
                playbook.display(),
                self.spec.inventory.display()
            ),
        }
    }

    /// The command on the one host it is placed on (`KONGUP_NODE`); its outcome is that
    /// host's.
    async fn run(
        &self,
        mut request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<ExitOutcome, ExecError> {
        let Some(at) = request
            .env
            .iter()
            .position(|(name, _)| name == NODE_VARIABLE)
        else {
            return Err(ExecError::Other(format!(
                "`{}` is placed on no node, and {} runs commands on the inventory's hosts named after the plan's nodes: put the command on a step that acts on nodes, or give it another executor",
                request.command.display(),
                self.describe()
            )));
        };
        let (_, host) = request.env.remove(at);
        let outcomes = self.run_per_host(&[host], request, lines, cancel).await?;
        Ok(outcomes
            .first()
            .map_or(ExitOutcome::Exited(RUN_FAILED_HOSTS), |o| o.outcome))
    }

    async fn run_per_host(
        &self,
        hosts: &[String],
        request: ExecRequest,
        lines: mpsc::Sender<OutputLine>,
        cancel: CancellationToken,
    ) -> Result<Vec<HostOutcome>, ExecError> {
        for host in hosts {
            check_host(host)?;
        }
        // Each host's name is `inventory_hostname` there, not an environment variable.
        let env: Vec<(String, String)> = request
            .env
            .into_iter()
            .filter(|(name, _)| name != NODE_VARIABLE)
            .collect();
        if !self.is_playbook() && !env.is_empty() {
            let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
            return Err(ExecError::Other(format!(
                "`{}` needs the environment {} on its hosts, which {} cannot pass without writing the values into the module's arguments (Ansible prints those back): give the executor a `playbook` that applies `environment: \"{{{{ kongup_env }}}}\"`",
                request.command.display(),
                names.join(", "),
                self.describe()
            )));
        }
        let work = Self::work_dir()?;
        let tree_dir = work.0.join("tree");
        let vars_file = if self.is_playbook() {
            let path = work.0.join("kongup-vars.yml");
            let vars = variables(&request.command, &env)?;
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut file = crate::engine::rundir::open_private_new(&path)?;
                file.write_all(vars.as_bytes())?;
                file.sync_all()
            };
            write().map_err(|e| {
                ExecError::Other(format!(
                    "could not write the command's variables for Ansible to {}: {e}; free space in the temporary directory (TMPDIR), then retry",
                    path.display()
                ))
            })?;
            Some(path)
        } else {
            None
        };
        let (program, args) = self.invocation(hosts, &request.command, vars_file.as_deref())?;
        let spec = ProcessSpec {
            program: find_program(program),
            args,
            env: self.settings(&tree_dir),
            cwd: None,
            stdin: None,
            hold_stdin_open: false,
            what: format!("{program} for `{}`", request.command.display()),
            executor: self.describe(),
            kill_grace: self.kill_grace,
            slot: None,
        };

        // Ansible's lines go on to the log as they come; the hosts' states are read on
        // the way.
        let (inner_tx, mut inner_rx) = mpsc::channel::<OutputLine>(256);
        let wanted: std::collections::BTreeSet<&str> = hosts.iter().map(String::as_str).collect();
        let read = async {
            let mut states: BTreeMap<String, HostState> = BTreeMap::new();
            let mut in_recap = false;
            while let Some(line) = inner_rx.recv().await {
                if line.stream == LogStream::Stdout {
                    if line.text.starts_with("PLAY RECAP") {
                        in_recap = true;
                    } else if let Some((host, state)) = host_state(&line.text, in_recap)
                        && wanted.contains(host)
                    {
                        // A host's worst result stands (a playbook reports it per task).
                        let worst = states.entry(host.to_string()).or_insert(state);
                        if rank(state) > rank(*worst) {
                            *worst = state;
                        }
                    }
                }
                let _ = lines.send(line).await;
            }
            states
        };
        let (invocation, states) =
            tokio::join!(run_process(spec, request.timeout, inner_tx, cancel), read);
        let invocation = invocation?;

        let mut outcomes = Vec::with_capacity(hosts.len());
        for host in hosts {
            let result = tree_result(&tree_dir, host);
            let outcome = host_outcome(
                host,
                states.get(host).copied(),
                result.as_ref(),
                invocation,
                &self.spec.inventory,
            );
            // Each host's own output, named by its host, then how it ended.
            if let Some(result) = &result {
                for (stream, text) in result
                    .stdout_lines
                    .iter()
                    .map(|l| (LogStream::Stdout, l))
                    .chain(result.stderr_lines.iter().map(|l| (LogStream::Stderr, l)))
                {
                    let _ = lines
                        .send(OutputLine {
                            stream,
                            text: format!("{host}: {text}"),
                        })
                        .await;
                }
            }
            let _ = lines
                .send(OutputLine {
                    stream: LogStream::Engine,
                    text: format!("kongup: {host}: {}", outcome.summary),
                })
                .await;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

/// Which state of a host outweighs which.
fn rank(state: HostState) -> u8 {
    match state {
        HostState::Skipped => 0,
        HostState::Ok => 1,
        HostState::Changed => 2,
        HostState::Failed => 3,
        HostState::Unreachable => 4,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_killed_kongup_s_work_dir_is_removed_and_a_live_one_s_kept() {
        let temp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let left = temp
            .path()
            .join(format!("{}{dead}-a", super::WORK_DIR_PREFIX));
        let live = temp.path().join(format!(
            "{}{}-b",
            super::WORK_DIR_PREFIX,
            std::process::id()
        ));
        let other = temp.path().join(format!("{}c", super::WORK_DIR_PREFIX));
        for dir in [&left, &live, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("vars.yml"), "kongup_env: secret").unwrap();
        }
        super::remove_left_behind(temp.path());
        assert!(!left.exists(), "the dead process's work dir was kept");
        assert!(live.exists(), "a live process's work dir was removed");
        assert!(other.exists(), "a dir without a process id was removed");
    }

    use super::*;

    fn executor(run: AnsibleRun) -> AnsibleExecutor {
        AnsibleExecutor::new(AnsibleSpec {
            inventory: PathBuf::from("/etc/ansible/kong.ini"),
            run,
            forks: Some(50),
            user: Some("deploy".into()),
            become_root: true,
            args: vec!["--timeout".into(), "20".into()],
        })
    }

    #[test]
    fn ad_hoc_argv_limits_to_the_hosts_and_passes_the_command_as_the_module_args() {
        let hosts = ["dp-1".to_string(), "dp-2".to_string()];
        let (program, args) = executor(AnsibleRun::Module("shell".into()))
            .invocation(
                &hosts,
                &CommandLine::Argv(vec!["systemctl".into(), "restart".into(), "kong's".into()]),
                None,
            )
            .unwrap();
        assert_eq!(program, "ansible");
        assert_eq!(
            args,
            [
                "all",
                "--module-name",
                "shell",
                "--args",
                r#"'systemctl' 'restart' 'kong'\''s'"#,
                "--inventory",
                "/etc/ansible/kong.ini",
                "--limit",
                "dp-1,dp-2",
                "--forks",
                "50",
                "--user",
                "deploy",
                "--become",
                "--timeout",
                "20",
            ]
        );
    }

    #[test]
    fn a_playbook_gets_the_variables_file_and_comes_last() {
        let (program, args) = executor(AnsibleRun::Playbook("site/kong.yml".into()))
            .invocation(
                &["dp-1".to_string()],
                &CommandLine::Shell("kong restart".into()),
                Some(Path::new("/tmp/k/kongup-vars.json")),
            )
            .unwrap();
        assert_eq!(program, "ansible-playbook");
        assert_eq!(
            args[..4],
            ["--inventory", "/etc/ansible/kong.ini", "--limit", "dp-1"]
        );
        let at = args.iter().position(|a| a == "--extra-vars").unwrap();
        assert_eq!(args[at + 1], "@/tmp/k/kongup-vars.json");
        assert_eq!(args.last().unwrap(), "site/kong.yml");
        assert!(!args.iter().any(|a| a.contains("kong restart")));
    }

    #[test]
    fn host_states_are_read_from_oneline_and_the_play_recap() {
        // Written from oneline.py and default.py (ansible-core v2.14.18).
        assert_eq!(
            host_state("dp-1 | CHANGED | rc=0 | (stdout) hi", false),
            Some(("dp-1", HostState::Changed))
        );
        assert_eq!(
            host_state("dp-1 | SUCCESS => {\"changed\": false}", false),
            Some(("dp-1", HostState::Ok))
        );
        assert_eq!(
            host_state("dp-3 | FAILED! => {\"rc\": 1}", false),
            Some(("dp-3", HostState::Failed))
        );
        assert_eq!(
            host_state("dp-4 | UNREACHABLE!: Failed to connect", false),
            Some(("dp-4", HostState::Unreachable))
        );
        assert_eq!(
            host_state("dp-2 | SKIPPED", false),
            Some(("dp-2", HostState::Skipped))
        );
        assert_eq!(host_state("[WARNING]: a | b", false), None);
        let recap = |line| host_state(line, true);
        assert_eq!(
            recap(
                "dp-1                       : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0"
            ),
            Some(("dp-1", HostState::Changed))
        );
        assert_eq!(
            recap("dp-3 : ok=1 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"),
            Some(("dp-3", HostState::Failed))
        );
        assert_eq!(
            recap("dp-4 : ok=0 changed=0 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0"),
            Some(("dp-4", HostState::Unreachable))
        );
    }

    #[test]
    fn a_playbook_variables_file_keeps_the_environment_from_templating() {
        let text = variables(
            &CommandLine::Argv(vec!["kong".into(), "migrations".into(), "up".into()]),
            &[("KONG_PG_PASSWORD".into(), "a{{b}}\"c\n".into())],
        )
        .unwrap();
        assert_eq!(
            text,
            "kongup_command: \"'kong' 'migrations' 'up'\"\nkongup_argv: [\"kong\",\"migrations\",\"up\"]\nkongup_env:\n  \"KONG_PG_PASSWORD\": !unsafe \"a{{b}}\\\"c\\n\"\n"
        );
        let empty = variables(&CommandLine::Shell("kong health".into()), &[]).unwrap();
        assert!(empty.ends_with("kongup_env: {}\n"), "{empty}");
        assert!(
            empty.contains("kongup_argv: [\"sh\",\"-c\",\"kong health\"]"),
            "{empty}"
        );
    }

    #[test]
    fn hostnames_that_ansible_would_read_as_patterns_are_refused() {
        for good in ["kong-dp-1", "dp_2.eu-west", "10.0.0.1"] {
            assert!(check_host(good).is_ok(), "{good}");
        }
        for bad in ["", "a,b", "web*", "!dp-1", "dp:1", "-l", "../x", "a b"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_failed_host_names_its_rc_message_and_last_stderr_line() {
        let result = TreeResult {
            rc: Some(3),
            msg: Some(serde_json::json!("non-zero return code")),
            stdout_lines: vec![],
            stderr_lines: vec!["kong: not ready".into(), "".into()],
        };
        let outcome = host_outcome(
            "dp-3",
            Some(HostState::Failed),
            Some(&result),
            ExitOutcome::Exited(2),
            Path::new("inv"),
        );
        assert_eq!(outcome.outcome, ExitOutcome::Exited(3));
        assert_eq!(
            outcome.summary,
            "failed (rc=3): non-zero return code: kong: not ready"
        );
        let missing = host_outcome("dp-9", None, None, ExitOutcome::Exited(0), Path::new("inv"));
        assert_eq!(missing.outcome, ExitOutcome::Exited(RUN_FAILED_HOSTS));
        assert!(
            missing.summary.contains("dp-9 is a hostname in inv"),
            "{}",
            missing.summary
        );
        let timed_out = host_outcome("dp-1", None, None, ExitOutcome::TimedOut, Path::new("inv"));
        assert_eq!(timed_out.outcome, ExitOutcome::TimedOut);
    }
}

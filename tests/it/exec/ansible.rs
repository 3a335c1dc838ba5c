//! The ansible executor with the real Ansible (Debian's `ansible-core`, installed by
//! scripts/test.sh) on hosts of a temporary inventory: `ansible_connection=local` for the
//! hosts that work, `ssh` to a closed loopback port for one that cannot be reached.
//! Without Ansible these tests fail saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kongup::exec::ansible::{AnsibleExecutor, RUN_UNREACHABLE_HOSTS};
use kongup::exec::process::find_program;
use kongup::exec::{ExecRequest, Executor, ExitOutcome, HostOutcome, LogStream, OutputLine};
use kongup::plan::model::{AnsibleRun, AnsibleSpec, CommandLine};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Fails the test, saying what to install, when Ansible is missing.
pub fn require_ansible() {
    for program in ["ansible", "ansible-playbook"] {
        assert!(
            find_program(program).is_absolute(),
            "{program} not found in PATH: install Ansible (`apt-get install -y ansible-core`) to run the ansible executor tests"
        );
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An inventory in `dir`: `local` hosts run on this machine, `unreachable` ones are
/// reached over ssh on a closed port.
pub fn inventory(dir: &Path, local: &[&str], unreachable: &[&str]) -> PathBuf {
    let mut text = String::from("[fleet]\n");
    for host in local {
        text.push_str(&format!(
            "{host} ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
        ));
    }
    for host in unreachable {
        text.push_str(&format!(
            "{host} ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={} ansible_ssh_common_args='-o BatchMode=yes -o ConnectTimeout=5'\n",
            closed_port()
        ));
    }
    let path = dir.join("inventory.ini");
    std::fs::write(&path, text).unwrap();
    path
}

fn ad_hoc(inventory: PathBuf) -> AnsibleExecutor {
    AnsibleExecutor::new(AnsibleSpec {
        inventory,
        run: AnsibleRun::Module("shell".into()),
        forks: Some(4),
        user: None,
        become_root: false,
        args: Vec::new(),
    })
}

fn hosts(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn request(command: CommandLine, timeout: Duration) -> ExecRequest {
    ExecRequest {
        command,
        env: Vec::new(),
        timeout,
    }
}

/// Runs on `hosts`, collecting every line.
async fn run_on(
    executor: &AnsibleExecutor,
    hosts: &[String],
    request: ExecRequest,
) -> (Vec<HostOutcome>, Vec<OutputLine>) {
    let (tx, mut rx) = mpsc::channel(1024);
    let collect = async {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    };
    let (outcomes, lines) = tokio::join!(
        executor.run_per_host(hosts, request, tx, CancellationToken::new()),
        collect
    );
    (outcomes.unwrap(), lines)
}

fn outcome_of<'o>(outcomes: &'o [HostOutcome], host: &str) -> &'o HostOutcome {
    outcomes
        .iter()
        .find(|o| o.host == host)
        .unwrap_or_else(|| panic!("no outcome for {host} in {outcomes:?}"))
}

#[tokio::test]
async fn one_invocation_gives_each_host_its_outcome() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1", "dp-2", "dp-3", "dp-4"], &[]);
    let executor = ad_hoc(inventory);
    let marks = dir.path().join("ran");
    // Ansible templates the module's arguments: `inventory_hostname` is the node.
    let command = CommandLine::Shell(format!(
        "echo {{{{ inventory_hostname }}}} >> {m}; echo out-{{{{ inventory_hostname }}}}; test {{{{ inventory_hostname }}}} != dp-3 || {{ echo 'kong: not ready' >&2; exit 3; }}",
        m = marks.display()
    ));
    let (outcomes, lines) = run_on(
        &executor,
        &hosts(&["dp-1", "dp-2", "dp-3", "dp-4"]),
        request(command, Duration::from_secs(120)),
    )
    .await;

    assert_eq!(
        outcomes.iter().map(|o| o.host.as_str()).collect::<Vec<_>>(),
        ["dp-1", "dp-2", "dp-3", "dp-4"]
    );
    for host in ["dp-1", "dp-2", "dp-4"] {
        let outcome = outcome_of(&outcomes, host);
        assert_eq!(outcome.outcome, ExitOutcome::Exited(0), "{outcome:?}");
        assert_eq!(outcome.summary, "changed", "{outcome:?}");
    }
    let failed = outcome_of(&outcomes, "dp-3");
    assert_eq!(failed.outcome, ExitOutcome::Exited(3), "{failed:?}");
    assert_eq!(
        failed.summary, "failed (rc=3): non-zero return code: kong: not ready",
        "{failed:?}"
    );
    // One run on each host, none twice.
    let mut ran: Vec<String> = std::fs::read_to_string(&marks)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    ran.sort();
    assert_eq!(ran, ["dp-1", "dp-2", "dp-3", "dp-4"]);
    // Each host's output is in the log, named by its host.
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    for host in ["dp-1", "dp-2", "dp-3", "dp-4"] {
        let own = format!("{host}: out-{host}");
        assert!(
            lines
                .iter()
                .any(|l| l.stream == LogStream::Stdout && l.text == own),
            "{own} not in {texts:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.stream == LogStream::Stderr && l.text == "dp-3: kong: not ready"),
        "{texts:#?}"
    );
    assert!(
        texts.contains(&"kongup: dp-3: failed (rc=3): non-zero return code: kong: not ready"),
        "{texts:#?}"
    );
}

#[tokio::test]
async fn a_host_ansible_cannot_reach_is_unreachable_and_the_others_still_run() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1", "dp-2"], &["dp-9"]);
    let (outcomes, _) = run_on(
        &ad_hoc(inventory),
        &hosts(&["dp-1", "dp-9", "dp-2"]),
        request(
            CommandLine::Argv(vec!["true".into()]),
            Duration::from_secs(120),
        ),
    )
    .await;
    assert!(
        outcome_of(&outcomes, "dp-1").outcome.success(),
        "{outcomes:?}"
    );
    assert!(
        outcome_of(&outcomes, "dp-2").outcome.success(),
        "{outcomes:?}"
    );
    let unreachable = outcome_of(&outcomes, "dp-9");
    assert_eq!(
        unreachable.outcome,
        ExitOutcome::Exited(RUN_UNREACHABLE_HOSTS),
        "{unreachable:?}"
    );
    assert!(
        unreachable
            .summary
            .starts_with("unreachable: Failed to connect to the host via ssh"),
        "{unreachable:?}"
    );
}

#[tokio::test]
async fn a_host_missing_from_the_inventory_is_named_as_such() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1"], &[]);
    let (outcomes, _) = run_on(
        &ad_hoc(inventory.clone()),
        &hosts(&["dp-1", "dp-7"]),
        request(
            CommandLine::Argv(vec!["true".into()]),
            Duration::from_secs(120),
        ),
    )
    .await;
    assert!(
        outcome_of(&outcomes, "dp-1").outcome.success(),
        "{outcomes:?}"
    );
    let missing = outcome_of(&outcomes, "dp-7");
    assert!(!missing.outcome.success(), "{missing:?}");
    assert!(
        missing.summary.contains(&format!(
            "check that dp-7 is a hostname in {}",
            inventory.display()
        )),
        "{missing:?}"
    );
}

#[tokio::test]
async fn the_invocation_times_out_and_every_host_says_so() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1", "dp-2"], &[]);
    let started = std::time::Instant::now();
    let (outcomes, _) = run_on(
        &ad_hoc(inventory),
        &hosts(&["dp-1", "dp-2"]),
        request(
            CommandLine::Argv(vec!["sleep".into(), "300".into()]),
            Duration::from_secs(8),
        ),
    )
    .await;
    for outcome in &outcomes {
        assert_eq!(outcome.outcome, ExitOutcome::TimedOut, "{outcome:?}");
        assert!(
            outcome
                .summary
                .starts_with("Ansible timed out before it reported this host"),
            "{outcome:?}"
        );
    }
    // The process group was killed: no wait for the 300 s sleep.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_playbook_gets_the_command_and_its_environment_as_variables_never_on_an_argv() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1", "dp-2"], &[]);
    let playbook = dir.path().join("kong.yml");
    std::fs::write(
        &playbook,
        r#"- hosts: all
  gather_facts: false
  tasks:
    - name: the step's command
      shell: "{{ kongup_command }}"
      environment: "{{ kongup_env }}"
"#,
    )
    .unwrap();
    let executor = AnsibleExecutor::new(AnsibleSpec {
        inventory,
        run: AnsibleRun::Playbook(playbook),
        forks: None,
        user: None,
        become_root: false,
        args: Vec::new(),
    });
    let out = dir.path().join("seen");
    let command = CommandLine::Argv(vec![
        "sh".into(),
        "-c".into(),
        format!(
            "echo \"$KONG_PG_PASSWORD\" > {}/$(hostname)-$$; test -n \"$KONG_PG_PASSWORD\"",
            out.display()
        ),
    ]);
    std::fs::create_dir(&out).unwrap();
    let request = ExecRequest {
        command,
        env: vec![(
            "KONG_PG_PASSWORD".into(),
            "pg-{{ not_templated }}-5c1".into(),
        )],
        timeout: Duration::from_secs(120),
    };
    let (outcomes, lines) = run_on(&executor, &hosts(&["dp-1", "dp-2"]), request).await;
    for host in ["dp-1", "dp-2"] {
        let outcome = outcome_of(&outcomes, host);
        assert_eq!(outcome.outcome, ExitOutcome::Exited(0), "{outcome:?}");
    }
    let seen: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(
        seen,
        [
            "pg-{{ not_templated }}-5c1\n",
            "pg-{{ not_templated }}-5c1\n"
        ]
    );
    // The value was only in the variables file (tagged `!unsafe`: Ansible did not template
    // it), removed with its directory.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("kongup-ansible-")
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("kongup-vars.yml"))
                .is_ok_and(|vars| vars.contains("not_templated"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The recap was read: ansible's own lines reached the log.
    assert!(
        lines.iter().any(|l| l.text.starts_with("PLAY RECAP")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn ad_hoc_refuses_a_command_that_needs_an_environment() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1"], &[]);
    let (tx, _rx) = mpsc::channel(16);
    let error = ad_hoc(inventory)
        .run_per_host(
            &hosts(&["dp-1"]),
            ExecRequest {
                command: CommandLine::Argv(vec!["kong".into(), "migrations".into(), "up".into()]),
                env: vec![("KONG_PG_PASSWORD".into(), "pg-secret-5c1".into())],
                timeout: Duration::from_secs(10),
            },
            tx,
            CancellationToken::new(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("KONG_PG_PASSWORD"), "{error}");
    assert!(error.contains("give the executor a `playbook`"), "{error}");
    assert!(!error.contains("pg-secret-5c1"), "{error}");
}

#[tokio::test]
async fn run_alone_runs_on_the_node_it_is_placed_on() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1", "dp-2"], &[]);
    let executor = ad_hoc(inventory);
    let marks = dir.path().join("ran");
    let mut request = request(
        CommandLine::Shell(format!(
            "echo {{{{ inventory_hostname }}}} >> {}; exit 5",
            marks.display()
        )),
        Duration::from_secs(120),
    );
    request.env.push(("KONGUP_NODE".into(), "dp-2".into()));
    let (tx, mut rx) = mpsc::channel(1024);
    let drain = async { while rx.recv().await.is_some() {} };
    let (outcome, ()) = tokio::join!(executor.run(request, tx, CancellationToken::new()), drain);
    assert_eq!(outcome.unwrap(), ExitOutcome::Exited(5));
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), "dp-2\n");
}

#[tokio::test]
async fn a_playbook_recap_gives_the_failed_and_the_unreachable_hosts() {
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path(), &["dp-1", "dp-2"], &["dp-9"]);
    let playbook = dir.path().join("kong.yml");
    std::fs::write(
        &playbook,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: \"{{ kongup_command }}\"\n",
    )
    .unwrap();
    let executor = AnsibleExecutor::new(AnsibleSpec {
        inventory,
        run: AnsibleRun::Playbook(playbook),
        forks: None,
        user: None,
        become_root: false,
        args: Vec::new(),
    });
    // Ansible templates the variable's value too: the host's name is in it.
    let command = CommandLine::Shell("test {{ inventory_hostname }} != dp-2".into());
    let (outcomes, _) = run_on(
        &executor,
        &hosts(&["dp-1", "dp-2", "dp-9"]),
        request(command, Duration::from_secs(120)),
    )
    .await;
    assert_eq!(
        outcome_of(&outcomes, "dp-1").summary,
        "changed",
        "{outcomes:?}"
    );
    let failed = outcome_of(&outcomes, "dp-2");
    assert_eq!(failed.outcome, ExitOutcome::Exited(1), "{failed:?}");
    assert_eq!(failed.summary, "failed (rc=1): non-zero return code");
    let unreachable = outcome_of(&outcomes, "dp-9");
    assert_eq!(
        unreachable.outcome,
        ExitOutcome::Exited(RUN_UNREACHABLE_HOSTS),
        "{unreachable:?}"
    );
}

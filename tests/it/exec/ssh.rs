//! The ssh executor end to end: a throwaway `sshd` on a loopback port (temp host key,
//! temp authorized key) and the system `ssh` client. Needs OpenSSH's server
//! (`apt-get install -y openssh-server`); without it these tests fail saying so.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kongup::engine::event::LogStream;
use kongup::exec::process::find_program;
use kongup::exec::ssh::SshExecutor;
use kongup::exec::{ExecRequest, Executor, ExitOutcome, OutputLine, run_to_completion};
use kongup::plan::model::CommandLine;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A running sshd, killed when dropped (also when a test panics).
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new(find_program("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen runs (package openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// A loopback port nothing listens on, never the same twice in this process (the
/// kernel may hand a just-released port out again to a parallel test).
fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = find_program("sshd");
        assert!(
            sshd.is_absolute(),
            "sshd not found in PATH, /usr/sbin or /sbin: install OpenSSH's server \
             (`apt-get install -y openssh-server`) to run the ssh executor tests"
        );
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd for sshd");
        let dir = tempfile::tempdir().unwrap();
        let host_key = dir.path().join("host_key");
        let client_key = dir.path().join("client_key");
        keygen(&host_key);
        keygen(&client_key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nLogLevel ERROR\n",
                host_key.display(),
                dir.path().join("sshd.pid").display(),
                authorized.display(),
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        std::fs::write(
            dir.path().join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .unwrap();
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let mut sshd = Sshd { child, port, dir };
        sshd.wait_until_ready();
        sshd
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited at start ({status}): run it by hand with -d to see why");
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut banner = [0u8; 8];
                if stream.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "sshd did not answer on its port");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An executor that trusts only this sshd's host key and uses only the test key.
    fn executor(&self, key: &Path) -> SshExecutor {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .expect("the current user has a name")
            .name;
        SshExecutor::new(
            "127.0.0.1",
            Some(user),
            Some(self.port),
            Some(key.to_path_buf()),
        )
        .with_option(format!(
            "UserKnownHostsFile={}",
            self.path("known_hosts").display()
        ))
        .with_option("GlobalKnownHostsFile=/dev/null")
        .with_option("StrictHostKeyChecking=yes")
        .with_option("IdentitiesOnly=yes")
        .with_option("IdentityAgent=none")
    }
}

fn request(command: CommandLine, timeout: Duration) -> ExecRequest {
    ExecRequest {
        command,
        env: Vec::new(),
        timeout,
    }
}

fn argv(args: &[&str]) -> CommandLine {
    CommandLine::Argv(args.iter().map(|a| a.to_string()).collect())
}

async fn wait_until_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        };
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn arguments_arrive_intact_and_exit_codes_come_back() {
    let sshd = Sshd::start();
    let ssh = sshd.executor(&sshd.path("client_key"));
    let done = run_to_completion(
        &ssh,
        request(
            argv(&[
                "printf",
                "%s\\n",
                "a b",
                "it's",
                "$HOME",
                "`id`",
                ";echo injected",
            ]),
            Duration::from_secs(30),
        ),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::Exited(0), "{:?}", done.lines);
    assert_eq!(done.stdout(), "a b\nit's\n$HOME\n`id`\n;echo injected");

    let done = run_to_completion(
        &ssh,
        request(
            CommandLine::Shell("echo to-err >&2; exit 5".into()),
            Duration::from_secs(30),
        ),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::Exited(5));
    assert_eq!(done.stderr(), "to-err");
}

/// The secret reaches the remote command, and while it runs no process on the machine
/// (the local ssh, sshd, the remote shell: all on this host) shows it on its argv.
#[tokio::test]
async fn environment_reaches_the_remote_command_and_no_argv_shows_it() {
    let sshd = Sshd::start();
    let ssh = sshd.executor(&sshd.path("client_key"));
    let secret = "kongup-test-s3cret 'quoted' $not_expanded";
    let ack = sshd.path("ack");
    let script = format!(
        "printf '%s\\n' \"$KONGUP_SECRET\"; echo \"$KONGUP_MULTI\"; echo ready; \
         while [ ! -e '{}' ]; do sleep 0.02; done",
        ack.display()
    );
    let (sender, mut receiver) = mpsc::channel::<OutputLine>(64);
    let run = tokio::spawn(async move {
        ssh.run(
            ExecRequest {
                command: CommandLine::Shell(script),
                env: vec![
                    ("KONGUP_SECRET".into(), secret.into()),
                    ("KONGUP_MULTI".into(), "line one\nline two".into()),
                ],
                timeout: Duration::from_secs(60),
            },
            sender,
            CancellationToken::new(),
        )
        .await
    });
    let mut stdout = Vec::new();
    while stdout.last().map(String::as_str) != Some("ready") {
        let line = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
            .await
            .expect("the remote command prints its lines")
            .expect("the channel stays open until it has");
        if line.stream == LogStream::Stdout {
            stdout.push(line.text);
        }
    }
    assert_eq!(stdout, [secret, "line one", "line two", "ready"]);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline);
            assert!(
                !cmdline.contains("kongup-test-s3cret"),
                "the secret is visible on the argv of {}: {cmdline}",
                entry.path().display()
            );
        }
    }
    std::fs::write(&ack, "").unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the command ends once acknowledged")
        .unwrap()
        .unwrap();
    assert_eq!(outcome, ExitOutcome::Exited(0));
}

/// A timeout kills the local ssh; the wrapper on the far side then stops the remote
/// command's whole process group (the "remote" is this machine, so we can look).
#[tokio::test]
async fn timeout_stops_the_remote_process_tree() {
    let sshd = Sshd::start();
    let ssh = sshd.executor(&sshd.path("client_key"));
    let done = run_to_completion(
        &ssh,
        request(
            CommandLine::Shell("sleep 300 & echo $!; wait".into()),
            Duration::from_secs(5),
        ),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::TimedOut);
    let pid: i32 = done
        .stdout()
        .trim()
        .parse()
        .expect("the remote shell printed its background pid");
    assert!(
        wait_until_gone(pid, Duration::from_secs(15)).await,
        "the remote sleep ({pid}) survived the timeout"
    );
}

#[tokio::test]
async fn abort_stops_the_remote_command() {
    let sshd = Sshd::start();
    let ssh = sshd.executor(&sshd.path("client_key"));
    let (sender, mut receiver) = mpsc::channel::<OutputLine>(64);
    let cancel = CancellationToken::new();
    let run = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            ssh.run(
                request(
                    CommandLine::Shell("sleep 300 & echo $!; wait".into()),
                    Duration::from_secs(300),
                ),
                sender,
                cancel,
            )
            .await
        })
    };
    let line = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
        .await
        .expect("the remote pid arrives")
        .unwrap();
    let pid: i32 = line.text.trim().parse().unwrap();
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("abort ends the run")
        .unwrap()
        .unwrap();
    assert_eq!(outcome, ExitOutcome::Aborted);
    assert!(
        wait_until_gone(pid, Duration::from_secs(15)).await,
        "the remote sleep ({pid}) survived the abort"
    );
}

/// BatchMode: a key the server does not accept fails at once with ssh's status 255 and
/// its message, rather than prompting for a password.
#[tokio::test]
async fn an_unauthorised_key_fails_without_prompting() {
    let sshd = Sshd::start();
    let stranger = sshd.path("stranger_key");
    keygen(&stranger);
    let ssh = sshd.executor(&stranger);
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        run_to_completion(
            &ssh,
            request(argv(&["true"]), Duration::from_secs(20)),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("ssh gives up without waiting for input")
    .unwrap();
    assert_eq!(done.outcome, ExitOutcome::Exited(255));
    assert!(
        done.stderr().contains("Permission denied"),
        "{}",
        done.stderr()
    );
}

/// A step's command over ssh (tracked: see `exec::track`) when kongup dies and the
/// connection is lost: it goes on on its host; a kongup that did not start it asks the
/// host, reads its output there, and records how it ended.
mod tracked {
    use super::*;

    use std::sync::Arc;

    use crate::exec::tracked::{Journal, Told, Watching, tracking};
    use kongup::exec::track::{self, ProcessEnd, WatchUpdate};
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

    /// Kills the local ssh (and kongup's wrapper around it): the connection is lost.
    async fn lose_the_connection(pgid: i32) {
        let group = Pid::from_raw(pgid);
        let _ = killpg(group, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while killpg(group, None).is_ok() {
            assert!(Instant::now() < deadline, "the local ssh lives on");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_command_goes_on_without_kongup_and_its_connection_and_its_host_says_how_it_ended() {
        let sshd = Sshd::start();
        let run_dir = tempfile::tempdir().unwrap();
        let host_dirs = tempfile::tempdir().unwrap();
        let go = run_dir.path().join("go");
        let ssh: Arc<dyn Executor> = Arc::new(
            sshd.executor(&sshd.path("client_key"))
                .with_runs_dir(host_dirs.path().display().to_string()),
        );
        let journal = Arc::new(Journal::default());
        let script = format!(
            "echo started; echo to-err >&2; while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.05; done; echo finished; exit 7",
            go.display(),
            run_dir.path().display()
        );
        let run = track::tracked(
            tracking(run_dir.path(), journal.clone()),
            run_to_completion(
                ssh.as_ref(),
                request(CommandLine::Shell(script), Duration::from_secs(120)),
                CancellationToken::new(),
            ),
        );
        let process = tokio::select! {
            _ = run => panic!("the command ended before its gate opened"),
            process = journal.started(run_dir.path(), "started") => process,
        };
        let remote_dir = process.remote_dir.clone().expect("a directory on the host");
        assert!(
            remote_dir.starts_with(&format!(
                "{}/it-run/cluster-migrations-up/1-1",
                host_dirs.path().display()
            )),
            "{remote_dir}"
        );
        let on_host = journal.on_host(1).await;
        lose_the_connection(process.pgid).await;
        // The "host" is this machine: the command is there, in a session of its own.
        assert_eq!(
            track::liveness(&on_host, on_host.pid),
            track::Liveness::Running,
            "the command died with its connection"
        );

        let (_watch, mut watching) = Watching::start(process, run_dir.path(), Some(ssh));
        let running = watching
            .until(|u| matches!(u, WatchUpdate::Running { remote: Some(_) }))
            .await;
        assert_eq!(
            running,
            WatchUpdate::Running {
                remote: Some(on_host)
            }
        );
        watching.line("started", Duration::from_secs(30)).await;
        std::fs::write(&go, "").unwrap();
        let end = watching.until(|u| matches!(u, WatchUpdate::Ended(_))).await;
        assert_eq!(
            end,
            WatchUpdate::Ended(ProcessEnd {
                status: Some(7),
                how: "exit status 7".into()
            })
        );
        assert!(
            watching.seen.contains(&"finished".to_string())
                && watching.seen.contains(&"to-err".to_string()),
            "its output on the host, both streams: {:?}",
            watching.seen
        );
    }

    #[tokio::test]
    async fn a_command_left_on_its_host_is_killed_over_ssh_with_its_group() {
        let sshd = Sshd::start();
        let run_dir = tempfile::tempdir().unwrap();
        let host_dirs = tempfile::tempdir().unwrap();
        let sleeper = run_dir.path().join("sleeper.pid");
        let ssh: Arc<dyn Executor> = Arc::new(
            sshd.executor(&sshd.path("client_key"))
                .with_runs_dir(host_dirs.path().display().to_string()),
        );
        let journal = Arc::new(Journal::default());
        let run = track::tracked(
            tracking(run_dir.path(), journal.clone()),
            run_to_completion(
                ssh.as_ref(),
                request(
                    CommandLine::Shell(format!(
                        "sleep 300 & echo $! > '{}'; echo waiting; wait",
                        sleeper.display()
                    )),
                    Duration::from_secs(120),
                ),
                CancellationToken::new(),
            ),
        );
        let process = tokio::select! {
            done = run => panic!("the command ended by itself: {done:?}"),
            process = journal.started(run_dir.path(), "waiting") => process,
        };
        lose_the_connection(process.pgid).await;
        let (watch, mut watching) = Watching::start(process, run_dir.path(), Some(ssh));
        watching
            .until(|u| matches!(u, WatchUpdate::Running { remote: Some(_) }))
            .await;
        watch.kill();
        let end = watching.until(|u| matches!(u, WatchUpdate::Ended(_))).await;
        assert_eq!(
            end,
            WatchUpdate::Ended(ProcessEnd {
                status: Some(143),
                how: "exit status 143 (killed by SIGTERM)".into()
            })
        );
        let pid: i32 = std::fs::read_to_string(&sleeper)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            wait_until_gone(pid, Duration::from_secs(15)).await,
            "the rest of its group on the host (sleep {pid}) survived the kill"
        );
    }

    /// An abort while kongup still holds the connection: `stop` on stdin, the host stops
    /// the command's group, and says how it ended.
    #[tokio::test]
    async fn an_abort_stops_the_command_on_its_host_and_its_end_is_journaled() {
        let sshd = Sshd::start();
        let run_dir = tempfile::tempdir().unwrap();
        let host_dirs = tempfile::tempdir().unwrap();
        let ssh = sshd
            .executor(&sshd.path("client_key"))
            .with_runs_dir(host_dirs.path().display().to_string());
        let journal = Arc::new(Journal::default());
        let cancel = CancellationToken::new();
        let (sender, mut receiver) = mpsc::channel::<OutputLine>(64);
        let run = {
            let (journal, cancel) = (journal.clone(), cancel.clone());
            let run_dir = run_dir.path().to_path_buf();
            tokio::spawn(track::tracked(tracking(&run_dir, journal), async move {
                ssh.run(
                    request(
                        CommandLine::Shell("sleep 300 & echo $!; wait".into()),
                        Duration::from_secs(300),
                    ),
                    sender,
                    cancel,
                )
                .await
            }))
        };
        let line = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
            .await
            .expect("the remote pid arrives")
            .unwrap();
        let pid: i32 = line.text.trim().parse().unwrap();
        cancel.cancel();
        let outcome = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("abort ends the run")
            .unwrap()
            .unwrap();
        assert_eq!(outcome, ExitOutcome::Aborted);
        assert!(
            wait_until_gone(pid, Duration::from_secs(15)).await,
            "the remote sleep ({pid}) survived the abort"
        );
        assert!(
            journal.told().iter().any(|told| matches!(
                told,
                Told::Ended(
                    1,
                    ProcessEnd {
                        status: Some(143),
                        ..
                    }
                )
            )),
            "the host's word on the end is journaled: {:?}",
            journal.told()
        );
    }
}

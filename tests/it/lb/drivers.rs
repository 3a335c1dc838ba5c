//! The command and manual drivers, and `driver_for`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kongup::exec::Executor;
use kongup::exec::local::LocalExecutor;
use kongup::lb::manual::ManualTrafficDriver;
use kongup::lb::{Split, driver_for};
use kongup::plan::model::{
    CommandDriver, HaproxyDriver, KubernetesDriver, KubernetesTarget, TrafficDriverSpec,
};

fn local_only() -> BTreeMap<String, Arc<dyn Executor>> {
    BTreeMap::from([(
        "local".to_string(),
        Arc::new(LocalExecutor::new()) as Arc<dyn Executor>,
    )])
}

/// A "load balancer" that is a file holding `X Y`, set and read by shell commands.
fn file_lb(state: &std::path::Path, with_get: bool) -> TrafficDriverSpec {
    TrafficDriverSpec::Command(CommandDriver {
        set: vec![
            "sh".into(),
            "-c".into(),
            format!("echo \"$0 $1\" > '{}'", state.display()),
            "{x}".into(),
            "{y}".into(),
        ],
        get: with_get.then(|| vec!["cat".into(), state.display().to_string()]),
        executor: Some("local".into()),
        timeout: Duration::from_secs(10),
    })
}

#[tokio::test]
async fn the_command_driver_substitutes_the_split_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("split");
    let lb = driver_for(&file_lb(&state, true), &local_only()).unwrap();
    for split in [Split::to_y(5), Split::to_y(50), Split::ALL_X] {
        lb.set_split(split).await.unwrap();
        let written = std::fs::read_to_string(&state).unwrap();
        assert_eq!(written, format!("{} {}\n", split.x, split.y));
        assert_eq!(lb.read_split().await.unwrap(), Some(split));
    }
    assert!(
        lb.describe().contains("read back with `cat"),
        "{}",
        lb.describe()
    );
}

#[tokio::test]
async fn without_get_the_command_driver_cannot_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let lb = driver_for(&file_lb(&dir.path().join("split"), false), &local_only()).unwrap();
    lb.set_split(Split::to_y(25)).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), None);
    assert!(lb.describe().contains("cannot be read back"));
}

#[tokio::test]
async fn a_failing_set_command_reports_its_stderr() {
    let spec = TrafficDriverSpec::Command(CommandDriver {
        set: vec![
            "sh".into(),
            "-c".into(),
            "echo 'lbctl: backend kong is locked' >&2; exit 3".into(),
        ],
        get: None,
        executor: None,
        timeout: Duration::from_secs(10),
    });
    let lb = driver_for(&spec, &BTreeMap::new()).unwrap();
    let error = lb.set_split(Split::to_y(5)).await.unwrap_err().to_string();
    assert!(error.contains("exited with status 3"), "{error}");
    assert!(error.contains("backend kong is locked"), "{error}");
}

#[tokio::test]
async fn a_get_command_printing_nonsense_is_an_error() {
    let spec = TrafficDriverSpec::Command(CommandDriver {
        set: vec!["true".into()],
        get: Some(vec!["echo".into(), "90 20".into()]),
        executor: None,
        timeout: Duration::from_secs(10),
    });
    let lb = driver_for(&spec, &BTreeMap::new()).unwrap();
    let error = lb.read_split().await.unwrap_err().to_string();
    assert!(error.contains("sum to 100"), "{error}");
}

#[tokio::test]
async fn manual_asks_the_operator_and_reads_nothing() {
    let lb = driver_for(&TrafficDriverSpec::Manual, &BTreeMap::new()).unwrap();
    lb.set_split(Split::to_y(5)).await.unwrap();
    assert_eq!(lb.read_split().await.unwrap(), None);
    assert!(lb.describe().starts_with("manual"));
    assert_eq!(
        ManualTrafficDriver::instruction(Split::to_y(5)),
        "Set your load balancer to send 95% of requests to X (the old cluster) and 5% to Y (the new one), then confirm."
    );
}

#[test]
fn driver_for_names_an_executor_the_plan_lacks() {
    let spec = TrafficDriverSpec::Kubernetes(KubernetesDriver {
        executor: Some("bastion".into()),
        context: None,
        namespace: None,
        target: KubernetesTarget::IngressCanary {
            name: "kong".into(),
        },
    });
    let error = match driver_for(&spec, &local_only()) {
        Ok(_) => panic!("an undefined executor must be refused"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("\"bastion\""), "{error}");
}

#[test]
fn driver_for_refuses_a_side_without_servers() {
    let spec = TrafficDriverSpec::Haproxy(HaproxyDriver {
        socket: "/run/haproxy.sock".into(),
        backend: "kong".into(),
        x_servers: vec!["x1".into()],
        y_servers: vec![],
        node_servers: Default::default(),
    });
    assert!(driver_for(&spec, &BTreeMap::new()).is_err());
}

#[tokio::test]
async fn a_command_driver_call_given_up_on_kills_the_set_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let spec = TrafficDriverSpec::Command(CommandDriver {
        set: vec![
            "sh".into(),
            "-c".into(),
            format!("echo $$ > '{}'; exec sleep 60", pid_file.display()),
        ],
        get: None,
        executor: Some("local".into()),
        timeout: Duration::from_secs(60),
    });
    let lb = driver_for(&spec, &local_only()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let given_up = tokio::time::timeout(Duration::from_secs(10), async {
        lb.set_split(Split::ALL_X).await
    });
    let pid = tokio::select! {
        _ = given_up => panic!("the set command ended early"),
        pid = async {
            loop {
                if let Ok(text) = std::fs::read_to_string(&pid_file)
                    && text.ends_with('\n')
                {
                    break text.trim().parse::<i32>().unwrap();
                }
                assert!(std::time::Instant::now() < deadline, "the set command never started");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => pid,
    };
    // The call was dropped (as the engine's deadline or an abort drops it).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the set command outlived the dropped driver call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_driver_says_how_long_its_calls_may_take() {
    let dir = tempfile::tempdir().unwrap();
    let lb = driver_for(&file_lb(&dir.path().join("split"), true), &local_only()).unwrap();
    // Its 10 s command timeout, the kill grace and the output drain.
    assert!(
        lb.call_timeout() >= Duration::from_secs(10),
        "{:?}",
        lb.call_timeout()
    );
}

//! A node that failed in a wave's node step is taken out of its wave (the node's name
//! typed, with a reason): journaled (`node-taken-out`), the step done on the others, and the
//! run's later steps leave the node out; `report` and `status` name it. Refused for a node
//! that did not fail; replayed by a resume after kill -9. Also through the real `ansible`
//! executor on local hosts (issue 17's second "done when").

use crate::support::engine::*;
use crate::support::waves::{WavePlan, cut_to, ran, toolbox};
use kongup::engine::journal::{Entry, JOURNAL_FILE};
use kongup::engine::report::{build_report, render_markdown};
use kongup::engine::status::{read_run, status_json, status_text};
use kongup::engine::{Command, StepState};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::{PhaseName, StepRef};

/// The wave steps the tests walk (the traffic stages, the staging tests and the monitor
/// are left out: a manual driver and no lab).
const STEPS: [&str; 6] = [
    "wave-1-start-y",
    "wave-1-stop-x",
    "wave-2-start-y",
    "wave-2-stop-x",
    "wave-3-start-y",
    "decommission-x",
];

/// Hybrid, eight data planes a side in three waves ([1, 50%, 100%]: wave 2 starts
/// dp-y-2..4 and stops dp-x-2..4). A node's state is a file: `DIR/y/NODE` once Y started
/// there, `DIR/x/NODE` while X runs there. dp-y-3 never starts; dp-y-4 fails while
/// `DIR/fail-4` exists and `DIR/fixed` does not; dp-x-4 never stops. Every command appends
/// its node to `DIR/ran`. On `inventory` (an ansible executor) the node's name is Ansible's
/// `inventory_hostname`.
fn plan_text(dir: &std::path::Path, inventory: Option<&std::path::Path>) -> String {
    let plan = WavePlan::hybrid(8).ansible(inventory);
    let (d, n) = (dir.display(), plan.node_var());
    let start = format!(
        "echo {n} >> {d}/ran; case {n} in dp-y-3) false;; dp-y-4) [ ! -e {d}/fail-4 ] || [ -e {d}/fixed ];; *) true;; esac && touch {d}/y/{n}"
    );
    let stop = format!("echo {n} >> {d}/ran; [ {n} != dp-x-4 ] && rm {d}/x/{n}");
    let decommission = format!("echo {n} >> {d}/ran; rm -f {d}/x/{n}");
    STEPS
        .iter()
        .fold(plan, |plan, id| match *id {
            "decommission-x" => plan.shell("data-plane/decommission-x", &decommission),
            id if id.ends_with("start-y") => plan.shell(id, &start),
            id => plan.shell(id, &stop),
        })
        .yaml()
}

fn dp(id: &str) -> StepRef {
    StepRef::new(PhaseName::DataPlane, id)
}

fn start(dir: &std::path::Path, inventory: Option<&std::path::Path>) -> TestRun {
    TestRun::start(run_setup(dir, inventory))
}

/// The real expansion of the plan, cut down to [`STEPS`]; X's data planes running.
fn run_setup(
    dir: &std::path::Path,
    inventory: Option<&std::path::Path>,
) -> kongup::engine::RunSetup {
    for side in ["x", "y"] {
        std::fs::create_dir_all(dir.join(side)).unwrap();
    }
    if !dir.join("run").exists() {
        for i in 1..=8 {
            std::fs::write(dir.join("x").join(format!("dp-x-{i}")), "").unwrap();
        }
    }
    let text = plan_text(dir, inventory);
    let loaded = parse_plan(&text, "plan.yaml").unwrap_or_else(|e| panic!("{e}"));
    let expanded = cut_to(&loaded, PhaseName::DataPlane, &STEPS);
    let toolbox = toolbox(&loaded.plan);
    setup(dir, loaded.plan, expanded, &text, toolbox)
}

fn files(dir: &std::path::Path, side: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(side))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn take_out(step: &str, node: &str, reason: &str) -> Command {
    Command::TakeOut {
        step: dp(step),
        node: node.to_string(),
        reason: reason.to_string(),
    }
}

/// `node-taken-out` records: (step, node, reason, by).
fn taken_out_records(run: &TestRun) -> Vec<(String, String, String, String)> {
    run.journal()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::NodeTakenOut { step, node, reason } => Some((step, node, reason, r.by)),
            _ => None,
        })
        .collect()
}

/// Confirms a step, typing the plan name where it is irreversible.
async fn confirm(run: &mut TestRun, id: &str, state: StepState) -> Option<String> {
    run.send(Command::Confirm {
        step: dp(id),
        typed: (id == "decommission-x").then(|| "waves".to_string()),
    })
    .await;
    run.wait_step(&dp(id), state).await
}

/// Walks wave 1 and confirms wave 2's start, which fails: the failure's detail.
async fn fail_wave_2_start(run: &mut TestRun) -> String {
    confirm(run, "wave-1-start-y", StepState::Succeeded).await;
    confirm(run, "wave-1-stop-x", StepState::Succeeded).await;
    confirm(run, "wave-2-start-y", StepState::Failed)
        .await
        .unwrap_or_default()
}

/// Takes `node` out of `step` for `reason`; the step's detail once it has succeeded.
async fn take_out_until_done(run: &mut TestRun, step: &str, node: &str, reason: &str) -> String {
    run.send(take_out(step, node, reason)).await;
    run.wait_step(&dp(step), StepState::Succeeded)
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn a_failed_node_taken_out_with_a_reason_lets_the_wave_and_the_run_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), None);
    let detail = fail_wave_2_start(&mut run).await;
    assert!(
        detail.starts_with("1 of 3 nodes failed: dp-y-3"),
        "{detail}"
    );

    // The wave waits on the operator: the next step's confirm is refused.
    run.confirm(&dp("wave-2-stop-x")).await;
    run.wait_warning("it is data-plane/wave-2-start-y's turn")
        .await;

    let detail = take_out_until_done(
        &mut run,
        "wave-2-start-y",
        "dp-y-3",
        "disk failure on the host; ticket OPS-1234",
    )
    .await;
    // Nothing was left to run: the detail says what happened, not "exited 0 on 0 nodes".
    assert_eq!(
        detail,
        "dp-y-3 taken out of its wave, not run there; nothing left to run: 2 nodes done before"
    );
    assert_eq!(
        taken_out_records(&run),
        [(
            "data-plane/wave-2-start-y".to_string(),
            "dp-y-3".to_string(),
            "disk failure on the host; ticket OPS-1234".to_string(),
            "alice@test".to_string()
        )]
    );

    // dp-x-4 fails to stop: taken out, it is not stopped again, and decommission-x leaves
    // it alone.
    let detail = confirm(&mut run, "wave-2-stop-x", StepState::Failed)
        .await
        .unwrap_or_default();
    assert!(
        detail.starts_with("1 of 3 nodes failed: dp-x-4"),
        "{detail}"
    );
    take_out_until_done(
        &mut run,
        "wave-2-stop-x",
        "dp-x-4",
        "systemd hangs on stop; left for the host team",
    )
    .await;
    confirm(&mut run, "wave-3-start-y", StepState::Succeeded).await;
    let detail = confirm(&mut run, "decommission-x", StepState::Succeeded)
        .await
        .unwrap_or_default();
    assert!(
        detail.starts_with("dp-x-4 taken out of its wave, not run there; "),
        "{detail}"
    );

    // Every other data plane ended on Y; dp-y-3 ran once (its failure), dp-x-4 was asked
    // to stop once and never decommissioned.
    assert_eq!(
        files(dir.path(), "y"),
        [
            "dp-y-1", "dp-y-2", "dp-y-4", "dp-y-5", "dp-y-6", "dp-y-7", "dp-y-8"
        ]
    );
    assert_eq!(files(dir.path(), "x"), ["dp-x-4"]);
    let ran = ran(dir.path());
    assert_eq!(ran.iter().filter(|n| *n == "dp-y-3").count(), 1, "{ran:?}");
    assert_eq!(ran.iter().filter(|n| *n == "dp-x-4").count(), 1, "{ran:?}");
    let run_dir = run.run_dir.clone();
    run.quit().await;

    let on_disk = read_run(&run_dir).unwrap();
    let status = status_text(&on_disk);
    assert!(
        status.contains(
            "dp-y-3: taken out (at data-plane/wave-2-start-y by alice@test: disk failure on the \
             host; ticket OPS-1234)"
        ) && status.contains("dp-x-4: taken out, still running (at data-plane/wave-2-stop-x"),
        "{status}"
    );
    let json = status_json(&on_disk);
    assert_eq!(json["taken_out"][0]["node"], "dp-x-4");
    assert_eq!(json["taken_out"][0]["state"], "taken out, still running");
    assert_eq!(json["taken_out"][1]["node"], "dp-y-3");
    assert_eq!(json["taken_out"][1]["still_running"], false);
    let report = build_report(&on_disk);
    let markdown = render_markdown(&report);
    assert!(
        markdown.contains("## Nodes taken out of their wave")
            && markdown.contains(
                "- dp-x-4: taken out, still running, at data-plane/wave-2-stop-x by alice@test"
            )
            && markdown.contains("systemd hangs on stop; left for the host team"),
        "{markdown}"
    );
    let report_json = serde_json::to_value(&report).unwrap();
    assert_eq!(report_json["taken_out"][1]["node"], "dp-y-3");
    assert_eq!(
        report_json["taken_out"][1]["reason"],
        "disk failure on the host; ticket OPS-1234"
    );
}

#[tokio::test]
async fn a_node_that_did_not_fail_or_without_a_reason_is_not_taken_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), None);
    // A step that has not run: not its turn to fail.
    run.send(take_out("wave-1-start-y", "dp-y-1", "no reason"))
        .await;
    run.wait_warning("cannot take a node out of data-plane/wave-1-start-y: it is pending")
        .await;
    fail_wave_2_start(&mut run).await;

    run.send(take_out("wave-2-start-y", "dp-y-2", "it looks slow"))
        .await;
    run.wait_warning(
        "dp-y-2 did not fail in data-plane/wave-2-start-y's last attempt: only a node that \
         failed is taken out (the nodes that failed there: dp-y-3)",
    )
    .await;
    run.send(take_out("wave-2-start-y", "dp-y-9", "typo")).await;
    run.wait_warning("'dp-y-9' is not a node of data-plane/wave-2-start-y")
        .await;
    run.send(take_out("wave-2-start-y", "dp-y-3", "  ")).await;
    run.wait_warning("needs a reason").await;
    assert!(taken_out_records(&run).is_empty());
    assert_eq!(
        run.journal()
            .iter()
            .filter(|r| matches!(&r.entry, Entry::StepStarted { step, .. } if step == "data-plane/wave-2-start-y"))
            .count(),
        1,
        "a refused take-out starts nothing"
    );
    run.quit().await;
}

/// Two nodes fail; one is taken out, and kongup is killed (-9) before the other is fixed:
/// the resumed run still leaves the taken-out node out, and the retry runs on the other
/// alone.
#[tokio::test]
async fn a_take_out_is_replayed_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fail-4"), "").unwrap();
    let mut run = start(dir.path(), None);
    let detail = fail_wave_2_start(&mut run).await;
    assert!(detail.starts_with("2 of 3 nodes failed"), "{detail}");
    run.send(take_out("wave-2-start-y", "dp-y-3", "bad disk"))
        .await;
    let warning = run.wait_warning("dp-y-3 is out of").await;
    assert!(
        warning.contains("1 of its other nodes are not done (dp-y-4)"),
        "{warning}"
    );
    run.crash().await;

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let mut run = start(dir.path(), None);
    run.send(take_out("wave-2-start-y", "dp-y-3", "again"))
        .await;
    run.wait_warning("dp-y-3 is already taken out at data-plane/wave-2-start-y")
        .await;
    run.retry(&dp("wave-2-start-y")).await;
    let detail = run
        .wait_step(&dp("wave-2-start-y"), StepState::Succeeded)
        .await
        .unwrap_or_default();
    assert!(
        detail
            == "dp-y-3 taken out of its wave, not run there; the commands exited 0 on 1 node \
                   (1 done before)",
        "{detail}"
    );
    let ran = ran(dir.path());
    assert_eq!(
        &ran[2..],
        ["dp-y-2", "dp-y-3", "dp-y-4", "dp-y-4"],
        "the retry ran on dp-y-4 alone"
    );
    assert_eq!(taken_out_records(&run).len(), 1);
    run.quit().await;
}

/// Issue 17's second "done when": a wave rolled through the real `ansible` executor on
/// local hosts, one host failing: the wave stops with the host named, the host is taken
/// out with a reason, the wave finishes, and the journal and `report` show it.
#[tokio::test]
async fn through_ansible_a_failed_host_is_taken_out_and_the_wave_finishes() {
    use crate::exec::ansible::{inventory, require_ansible};
    require_ansible();
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = ["x", "y"]
        .iter()
        .flat_map(|side| (1..=8).map(move |i| format!("dp-{side}-{i}")))
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let inventory = inventory(dir.path(), &hosts, &[]);
    let mut run = start(dir.path(), Some(&inventory));
    let detail = fail_wave_2_start(&mut run).await;
    assert!(
        detail.starts_with("1 of 3 nodes failed: dp-y-3 (failed (rc=1)"),
        "{detail}"
    );
    let detail = take_out_until_done(
        &mut run,
        "wave-2-start-y",
        "dp-y-3",
        "the host's package mirror is down",
    )
    .await;
    assert!(
        detail.starts_with("dp-y-3 taken out of its wave, not run there; "),
        "{detail}"
    );
    // The wave's X side goes (dp-x-4 fails too, and is taken out).
    confirm(&mut run, "wave-2-stop-x", StepState::Failed).await;
    take_out_until_done(&mut run, "wave-2-stop-x", "dp-x-4", "stop hangs").await;
    assert_eq!(
        files(dir.path(), "y"),
        ["dp-y-1", "dp-y-2", "dp-y-4"],
        "wave 2's other Y hosts started"
    );
    assert_eq!(
        files(dir.path(), "x"),
        ["dp-x-4", "dp-x-5", "dp-x-6", "dp-x-7", "dp-x-8"]
    );
    let journal = std::fs::read_to_string(dir.path().join("run").join(JOURNAL_FILE)).unwrap();
    assert!(
        journal.contains(
            r#""event":"node-taken-out","step":"data-plane/wave-2-start-y","node":"dp-y-3","reason":"the host's package mirror is down""#
        ),
        "{journal}"
    );
    let run_dir = run.run_dir.clone();
    run.quit().await;
    let markdown = render_markdown(&build_report(&read_run(&run_dir).unwrap()));
    assert!(
        markdown.contains("- dp-y-3: taken out, at data-plane/wave-2-start-y by alice@test at")
            && markdown.contains("the host's package mirror is down"),
        "{markdown}"
    );
}

/// `--plain`: the prompt of a failed wave step offers `take-out NODE REASON`, which takes
/// the node out, and the wave goes on.
#[tokio::test]
async fn plain_takes_a_node_out_with_take_out_node_reason() {
    use kongup::plain::{PlainSetup, drive};
    let dir = tempfile::tempdir().unwrap();
    let setup = run_setup(dir.path(), None);
    let plain = PlainSetup {
        plan: setup.plan.clone(),
        expanded: setup.expanded.clone(),
        toolbox: setup.toolbox.clone(),
        interactive: false,
    };
    let run_dir = setup.run_dir.clone();
    let handle = kongup::engine::spawn(setup).unwrap();
    let out = SharedOut::default();
    let input = std::io::Cursor::new("y\ny\ny\ntake-out dp-y-3 bad disk, OPS-77\nquit\n");
    let task = tokio::spawn(drive(handle, plain, input, out.clone()));
    tokio::time::timeout(DEADLINE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = out.text();
    assert!(
        text.contains("data-plane/wave-2-start-y: retry | rollback | quit | take-out NODE REASON"),
        "{text}"
    );
    let journal = std::fs::read_to_string(run_dir.join(JOURNAL_FILE)).unwrap();
    assert!(
        journal.contains(r#""node":"dp-y-3","reason":"bad disk, OPS-77""#),
        "{journal}"
    );
    assert_eq!(
        files(dir.path(), "y"),
        ["dp-y-1", "dp-y-2", "dp-y-4"],
        "the wave's other Y nodes started"
    );
    assert!(text.contains("data-plane/wave-2-stop-x"), "{text}");
}

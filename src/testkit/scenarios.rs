//! The console at the moments the snapshots show, built from the hybrid plan and the
//! events the engine would have sent. The clock is set explicitly, so every time on screen
//! is fixed.

use crate::engine::command::Command;
use crate::engine::event::{Event, LogStream, RunState, SessionEvent, StepState};
use crate::engine::lock::LockHolder;
use crate::kong::topology::NodeHealth;
use crate::metrics::Verdict;
use crate::metrics::gates::GateEvaluator;
use crate::plan::steps::StepRef;
use crate::ui::state::Watching;
use crate::ui::{ConsoleState, Theme, UiAction, handle_key};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use super::hybrid::*;

/// Applies `events` with the clock following the times they carry, as in a live run.
pub fn apply_all(state: &mut ConsoleState, events: &[Event]) {
    for event in events {
        let carried = match event {
            Event::Log(line) => Some(line.at),
            Event::Metrics(snapshot) => Some(snapshot.at),
            Event::Gate(verdict) => Some(verdict.at),
            _ => None,
        };
        if let Some(at) = carried
            && at > state.now()
        {
            state.set_now(at);
        }
        state.apply(event);
    }
}

/// Presses a key the way the console loop does; returns the commands it would send.
pub fn press(state: &mut ConsoleState, key: KeyEvent) -> Vec<Command> {
    let outcome = handle_key(state, key);
    state.key_pressed(&key);
    for action in outcome.ui {
        if !matches!(action, UiAction::Exit | UiAction::Redraw) {
            state.apply_ui(action);
        }
    }
    outcome.commands
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn char_key(c: char) -> KeyEvent {
    let modifiers = if c.is_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(KeyCode::Char(c), modifiers)
}

pub fn type_text(state: &mut ConsoleState, text: &str) {
    for c in text.chars() {
        press(state, char_key(c));
    }
}

const CP_ORDER: [&str; 15] = [
    "preflight",
    "review-changes",
    "freeze-writes",
    "backup-x",
    "deploy-y",
    "restore-db",
    "migrations-up",
    "migrations-finish",
    "start-y",
    "smoke-tests",
    "traffic-10",
    "traffic-50",
    "traffic-100",
    "monitor",
    "decommission-x",
];

fn cps(ids: &[&str]) -> Vec<StepRef> {
    ids.iter().map(|id| cp(id)).collect()
}

fn through(last: &str) -> Vec<StepRef> {
    let end = CP_ORDER
        .iter()
        .position(|id| *id == last)
        .expect("a CP step")
        + 1;
    cps(&CP_ORDER[..end])
}

fn ready(state: &mut ConsoleState, step: StepRef) {
    state.apply(&changed(step, StepState::Ready));
}

pub fn new_run(theme: Theme) -> ConsoleState {
    let expanded = expanded();
    let plan = plan();
    let mut state = ConsoleState::new(&plan, &expanded, t0(), theme, previewer(&plan, &expanded));
    state.set_now(at(3));
    apply_all(&mut state, &start_events(&expanded));
    state.apply(&traffic(0));
    state.apply(&topology(None, NodeHealth::Absent));
    state
}

/// Four steps done; deploying Y waits for its confirm.
pub fn awaiting_confirmation(theme: Theme) -> ConsoleState {
    let mut state = new_run(theme);
    state.set_now(at(20));
    apply_all(&mut state, &complete(&through("backup-x"), 20));
    state.apply(&log(
        95,
        "backup-x",
        LogStream::Stdout,
        "pg_dump: dumped 412 tables to backup-x/kong.dump (38 MiB)",
    ));
    apply_all(&mut state, &metrics_history(5, 300, 0, 0.0));
    state.set_now(at(312));
    ready(&mut state, cp("deploy-y"));
    state.apply(&Event::RunChanged(RunState::Waiting));
    state
}

pub fn confirm_modal(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    press(&mut state, key(KeyCode::Enter));
    state
}

/// Restoring X's backup into Y's database, 42 s in, output streaming.
pub fn running_with_logs(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    state.set_now(at(320));
    apply_all(&mut state, &complete(&[cp("deploy-y")], 320));
    state.apply(&topology(
        Some("3.10.0.1"),
        NodeHealth::NotReady("database not migrated".into()),
    ));
    state.set_now(at(400));
    state.apply(&changed(cp("restore-db"), StepState::Running));
    state.apply(&Event::RunChanged(RunState::Running));
    let lines = [
        (
            LogStream::Engine,
            "pg_restore --clean --if-exists -d kong (pg-y.prod.internal:5432)",
        ),
        (
            LogStream::Stdout,
            "pg_restore: connecting to database for restore",
        ),
        (LogStream::Stdout, "pg_restore: creating SCHEMA \"public\""),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.acls\"",
        ),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.ca_certificates\"",
        ),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.certificates\"",
        ),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.consumers\"",
        ),
        (
            LogStream::Stderr,
            "pg_restore: warning: errors ignored on restore: 0",
        ),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.plugins\"",
        ),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.routes\"",
        ),
        (
            LogStream::Stdout,
            "pg_restore: creating TABLE \"public.services\"",
        ),
        (
            LogStream::Stdout,
            "pg_restore: processing data for table \"public.routes\" (18 211 rows)",
        ),
        (
            LogStream::Stdout,
            "pg_restore: processing data for table \"public.plugins\" (2 904 rows)",
        ),
    ];
    for (i, (stream, text)) in lines.iter().enumerate() {
        state.apply(&log(401 + i as i64 * 3, "restore-db", *stream, text));
    }
    apply_all(&mut state, &metrics_history(305, 440, 0, 0.0));
    state.set_now(at(442));
    state
}

/// Up to the smoke tests, done; the 10% stage bakes; too few requests on Y: paused.
pub fn paused(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    apply_all(&mut state, &complete(&through("smoke-tests")[4..], 320));
    state.apply(&topology(Some("3.10.0.1"), NodeHealth::Ready));
    state.set_now(at(600));
    state.apply(&changed(cp("traffic-10"), StepState::Running));
    state.apply(&traffic(10));
    apply_all(&mut state, &metrics_history(305, 710, 10, 0.002));
    state.apply(&Event::Bake {
        step: cp("traffic-10"),
        remaining_secs: 187,
    });
    state.apply(&gate(
        712,
        Verdict::Inconclusive,
        0,
        &[
            "Y requests in window 180 < 200: too few to judge",
            "Y 5xx 0.20% ≤ 1.00%: ok",
        ],
    ));
    state.set_now(at(713));
    state.apply(&Event::RunChanged(RunState::Paused));
    state
}

/// Y is deployed and smoke-tested; its data plane dp-y2 has crashed; Enter on the 10%
/// stage: the confirm says Y is not fit and asks for the override word.
pub fn sick_y_confirm(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    apply_all(&mut state, &complete(&through("smoke-tests")[4..], 320));
    let mut snapshot = topology_snapshot(state.plan(), Some("3.10.0.1"), NodeHealth::Ready);
    // The watcher's look after the smoke tests ended.
    snapshot.at = Some(at(590));
    for node in &mut snapshot.nodes {
        if node.name == "dp-y2" {
            node.health = NodeHealth::Unreachable(
                "http://dp-y2.prod.internal:8100/status/ready: connection refused".into(),
            );
        }
    }
    state.apply(&Event::Topology(snapshot));
    state.set_now(at(600));
    ready(&mut state, cp("traffic-10"));
    state.apply(&Event::RunChanged(RunState::Waiting));
    press(&mut state, key(KeyCode::Enter));
    state
}

/// The 50% stage bakes and Y's 5xx ratio climbs past the gate three times: breached.
pub fn gate_breached(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    apply_all(&mut state, &complete(&through("traffic-10")[4..], 320));
    state.apply(&topology(Some("3.10.0.1"), NodeHealth::Ready));
    state.set_now(at(900));
    state.apply(&traffic(10));
    state.apply(&changed(cp("traffic-50"), StepState::Running));
    state.apply(&Event::RunChanged(RunState::Running));
    state.apply(&traffic(50));
    apply_all(&mut state, &metrics_history(305, 895, 10, 0.002));
    apply_all(&mut state, &metrics_history(900, 1080, 50, 0.034));
    state.apply(&Event::Bake {
        step: cp("traffic-50"),
        remaining_secs: 120,
    });
    // The plan's gates judge the last scrapes, as the engine's monitor would.
    let mut gates = GateEvaluator::new(plan().gates);
    let mut verdict = None;
    for s in (1070..=1080).step_by(5) {
        if let Event::Metrics(mut snapshot) = metrics(s, 50, 0.034) {
            snapshot.x.requests_in_window = Some(14_400);
            snapshot.y.requests_in_window = Some(14_400);
            verdict = Some(gates.evaluate(&snapshot));
        }
    }
    let verdict = verdict.expect("judged");
    assert_eq!(verdict.verdict, Verdict::Fail, "{:?}", verdict.checks);
    state.apply(&Event::Gate(verdict));
    state.set_now(at(1082));
    state.apply(&Event::RunChanged(RunState::Paused));
    state
}

/// The breach ended the 50% stage's bake: the step failed, the run paused. Y's data plane
/// dp-y2 is listed by X's control plane cp-x1: the likely cause, above the details.
pub fn failed_with_cause(theme: Theme) -> ConsoleState {
    let mut state = gate_breached(theme);
    let mut topology = topology_snapshot(&plan(), Some("3.10.0.1"), NodeHealth::Ready);
    if let Some(dp) = topology.nodes.iter_mut().find(|n| n.name == "dp-y2") {
        dp.control_plane = Some("cp-x1".into());
    }
    state.apply(&Event::Topology(topology));
    state.apply(&Event::StepChanged {
        step: cp("traffic-50"),
        state: StepState::Failed,
        detail: Some(
            "the load balancer reports X 50% | Y 50%; gate failed (3 breaches in a row): Y 5xx \
             3.40% > 1.00%: BREACH; Y 5xx 3.40% − X 5xx 0.08% = +3.32 pp > 0.50 pp: BREACH"
                .into(),
        ),
    });
    state
}

/// `R` after the breach: traffic is back on X and the rest of the rollback waits.
pub fn rolling_back(theme: Theme) -> ConsoleState {
    let mut state = gate_breached(theme);
    let commands = press(&mut state, char_key('R'));
    assert_eq!(commands, [Command::Rollback]);
    state.set_now(at(1083));
    // The engine plans the undoing of what ran, newest first; traffic to X came first.
    apply_all(
        &mut state,
        &rollback_events(
            412,
            vec![
                undoing("start-y"),
                undoing("deploy-y"),
                undoing("freeze-writes"),
            ],
        ),
    );
    ready(&mut state, undoing("start-y"));
    state.set_now(at(1084));
    state
}

/// Everything on the control planes done but X's decommissioning; its typed confirm is
/// half typed.
pub fn irreversible_modal(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    apply_all(&mut state, &complete(&through("monitor")[4..], 320));
    state.apply(&topology(Some("3.10.0.1"), NodeHealth::Ready));
    state.apply(&traffic(100));
    apply_all(&mut state, &metrics_history(905, 1500, 100, 0.0007));
    state.set_now(at(1502));
    ready(&mut state, cp("decommission-x"));
    press(&mut state, key(KeyCode::Enter));
    type_text(&mut state, "prod-eu");
    state
}

pub fn done(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    apply_all(&mut state, &complete(&through("decommission-x")[4..], 320));
    apply_all(
        &mut state,
        &complete(&[dp("compatibility"), dp("roll-dp"), dp("stop-dp-x")], 700),
    );
    state.apply(&topology(Some("3.10.0.1"), NodeHealth::Ready));
    state.apply(&traffic(100));
    apply_all(&mut state, &metrics_history(1500, 2100, 100, 0.0006));
    state.set_now(at(2110));
    state.apply(&Event::RunChanged(RunState::Done));
    state.set_now(at(2200));
    state
}

pub fn help(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    press(&mut state, char_key('?'));
    state
}

/// `x` while the database restore runs: the abort dialog.
pub fn abort_modal(theme: Theme) -> ConsoleState {
    let mut state = running_with_logs(theme);
    press(&mut state, char_key('x'));
    state
}

/// `t` between two steps with 10 % on Y: the split by hand, being typed.
pub fn set_traffic_prompt(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    state.apply(&traffic(10));
    press(&mut state, char_key('t'));
    type_text(&mut state, "0");
    state
}

/// `kongup watch` on the run awaiting its confirm, alice driving it; Enter was pressed.
pub fn watching(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    state.set_watching(Watching {
        driver: None,
        take_over: "`kongup run PLAN --journal /var/lib/kongup/prod-eu`".into(),
    });
    state.apply(&Event::Session(SessionEvent::Driver(Some(LockHolder {
        operator: "alice@ops1".into(),
        pid: 4242,
        since: t0(),
    }))));
    press(&mut state, key(KeyCode::Enter));
    state
}

/// Bob asks to take the run over while the database restore runs.
pub fn handover_modal(theme: Theme) -> ConsoleState {
    let mut state = running_with_logs(theme);
    state.apply(&Event::Session(SessionEvent::HandoverAsked {
        by: "bob@ops2".into(),
        until: state.now() + chrono::TimeDelta::seconds(60),
    }));
    state
}

/// kongup was killed (`kill -9`) while the playbook that deploys Y's control planes ran on
/// the bastion, and opened the run again ten minutes later: the playbook still runs there,
/// so its step is interrupted, its output is read from its files, and it can only be
/// waited for or killed.
pub fn still_running(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    state.set_now(at(100));
    state.apply(&changed(cp("deploy-y"), StepState::Running));
    let command = "ansible-playbook -i inventories/prod-eu kong-cp.yml --limit cp_y -e \
                   kong_version=3.10.0.1";
    state.apply(&log(
        100,
        "deploy-y",
        LogStream::Engine,
        &format!("{command} (ssh kong@bastion.prod.internal:22)"),
    ));
    let output = [
        "PLAY [Kong control planes] ****************************************",
        "TASK [Gathering Facts] ********************************************",
        "ok: [cp-y1]",
        "ok: [cp-y2]",
        "TASK [kong : Install kong-enterprise-edition 3.10.0.1] ************",
    ];
    state.apply(&log(102, "deploy-y", LogStream::Stdout, output[0]));
    // kongup dies here; a new kongup opens the run ten minutes later.
    state.set_now(at(700));
    let what = format!(
        "`{command}` is still running since 02:01 UTC, pid 12180 on ssh \
         kong@bastion.prod.internal:22"
    );
    state.apply(&Event::StillRunning {
        step: cp("deploy-y"),
        what: Some(what.clone()),
    });
    state.apply(&Event::StepChanged {
        step: cp("deploy-y"),
        state: StepState::Interrupted,
        detail: Some(format!(
            "{what}: wait for it to end (its output shows in the logs), or kill it"
        )),
    });
    state.apply(&log(
        700,
        "deploy-y",
        LogStream::Engine,
        &format!(
            "`{command}` (pid 12180 on ssh kong@bastion.prod.internal:22, since 02:01 UTC) \
             was running when kongup stopped: following its output from its start, and \
             recording its end"
        ),
    ));
    for (i, text) in output.iter().enumerate() {
        state.apply(&log(701 + i as i64, "deploy-y", LogStream::Stdout, text));
    }
    apply_all(&mut state, &metrics_history(305, 700, 0, 0.0));
    state.set_now(at(706));
    state
}

/// `r` on the interrupted step whose command still runs: wait for it, or kill it.
pub fn still_running_modal(theme: Theme) -> ConsoleState {
    let mut state = still_running(theme);
    assert!(press(&mut state, char_key('r')).is_empty());
    state
}

/// `x` on it: the kill, asked once more.
pub fn still_running_kill(theme: Theme) -> ConsoleState {
    let mut state = still_running(theme);
    assert!(press(&mut state, char_key('x')).is_empty());
    state
}

/// A fleet of 1 000 data planes a cluster, the data planes rolling, Y taking 10%: on Y, 640 data planes
/// ready, three unreachable (dp-y17, dp-y412, dp-y601) and 357 down as the console reads
/// a node the plan has down; on X, one draining (dp-x12).
pub fn fleet(theme: Theme) -> ConsoleState {
    let plan = plan_with_nodes(1000);
    let expanded = expanded();
    let mut state = ConsoleState::new(&plan, &expanded, t0(), theme, previewer(&plan, &expanded));
    state.set_now(at(3));
    apply_all(&mut state, &start_events(&expanded));
    state.set_now(at(600));
    apply_all(&mut state, &complete(&through("monitor"), 20));
    apply_all(&mut state, &complete(&[dp("compatibility")], 500));
    state.apply(&changed(dp("roll-dp"), StepState::Running));
    state.apply(&traffic(10));
    let mut snapshot = topology_snapshot(&plan, Some("3.10.0.1"), NodeHealth::Ready);
    for node in &mut snapshot.nodes {
        let number: usize = node.name[4..].parse().unwrap_or(0);
        let dp = node.name.starts_with("dp-");
        match (node.name.as_bytes()[3], dp) {
            (b'y', true) if [17, 412, 601].contains(&number) => {
                node.health = NodeHealth::Unreachable("connection refused".into());
            }
            (b'y', true) if number > 643 => node.health = NodeHealth::Absent,
            (b'x', true) if number == 12 => {
                node.health = NodeHealth::NotReady("draining".into());
            }
            _ => {}
        }
        if node.health != NodeHealth::Ready {
            node.sync_status = None;
        }
    }
    state.apply(&Event::Topology(snapshot));
    state.set_now(at(601));
    state
}

/// The fleet's topology zoomed, filtered to "y41" as typed (the filter line still open).
pub fn fleet_filtered(theme: Theme) -> ConsoleState {
    let mut state = fleet(theme);
    press(&mut state, key(KeyCode::Tab));
    press(&mut state, key(KeyCode::Tab));
    press(&mut state, char_key('/'));
    type_text(&mut state, "y41");
    state
}

/// Builds the console at one moment of a run.
pub type Scenario = fn(Theme) -> ConsoleState;

/// Baking at 10% while three data planes do not answer the scrape (one of X, two of Y):
/// the metrics pane names them with why, and zoomed, the slowest scrape.
pub fn scrape_failures(theme: Theme) -> ConsoleState {
    let mut state = awaiting_confirmation(theme);
    apply_all(&mut state, &complete(&through("traffic-10")[4..], 320));
    state.apply(&topology(Some("3.10.0.1"), NodeHealth::Ready));
    state.set_now(at(900));
    state.apply(&traffic(10));
    apply_all(&mut state, &metrics_history(305, 895, 10, 0.002));
    if let Event::Metrics(mut snapshot) = metrics(900, 10, 0.002) {
        snapshot.x.nodes_scraped = 2;
        snapshot.x.not_scraped = vec![("dp-x2".into(), "unreachable".into())];
        snapshot.y.nodes_scraped = 1;
        snapshot.y.not_scraped = vec![
            ("dp-y1".into(), "timeout 800 ms".into()),
            ("dp-y3".into(), "HTTP 404".into()),
        ];
        snapshot.y.slowest_scrapes = vec![("dp-y2".into(), std::time::Duration::from_millis(412))];
        state.apply(&Event::Metrics(snapshot));
    }
    state
}

/// A hybrid fleet of 20 data planes a side rolling in four waves of five
/// (`rolling: {waves: [25%, 50%, 75%, 100%]}`): the control planes done, wave 1 done,
/// wave 2's start under way with dp-y-6, dp-y-7 and dp-y-9 up.
pub fn wave_running(theme: Theme) -> ConsoleState {
    let loaded = crate::plan::load::parse_plan(
        &super::fleet::hybrid_plan_text(
            20,
            "rolling:\n  waves: [25%, 50%, 75%, 100%]\n  between_waves: 5m\n",
        ),
        "fleet.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (plan, expanded) = (loaded.plan, loaded.expanded);
    let mut state = ConsoleState::new(&plan, &expanded, t0(), theme, previewer(&plan, &expanded));
    state.set_now(at(3));
    apply_all(&mut state, &start_events(&expanded));
    let steps: Vec<StepRef> = expanded
        .steps()
        .map(|(phase, step)| StepRef::new(phase.name, step.id.clone()))
        .collect();
    let wave_2 = steps
        .iter()
        .position(|s| s.id == "wave-2-start-y")
        .expect("wave 2");
    apply_all(&mut state, &complete(&steps[..wave_2], 20));
    let outcomes = |step: &str, nodes: std::ops::RangeInclusive<usize>, side: &str| {
        nodes
            .map(|i| Event::NodeOutcome {
                step: dp(step),
                node: format!("dp-{side}-{i}"),
                failed: None,
            })
            .collect::<Vec<_>>()
    };
    apply_all(&mut state, &outcomes("wave-1-start-y", 1..=5, "y"));
    apply_all(&mut state, &outcomes("wave-1-stop-x", 1..=5, "x"));
    state.set_now(at(1800));
    state.apply(&traffic(25));
    state.apply(&changed(dp("wave-2-start-y"), StepState::Running));
    state.apply(&Event::RunChanged(RunState::Running));
    for i in [6, 7, 9] {
        state.apply(&Event::NodeOutcome {
            step: dp("wave-2-start-y"),
            node: format!("dp-y-{i}"),
            failed: None,
        });
    }
    state.set_now(at(1840));
    state
}

/// Wave 2's start failed on dp-y-8 (it did not answer ready) and dp-y-10 (its command
/// failed); dp-y-6, dp-y-7 and dp-y-9 are up.
pub fn wave_failed(theme: Theme) -> ConsoleState {
    let mut state = wave_running(theme);
    for (node, why) in [
        ("dp-y-10", "exit status 1"),
        (
            "dp-y-8",
            "did not become ready within 5m: /status/ready answered 503",
        ),
    ] {
        state.apply(&Event::NodeOutcome {
            step: dp("wave-2-start-y"),
            node: node.into(),
            failed: Some(why.into()),
        });
    }
    state.apply(&Event::StepChanged {
        step: dp("wave-2-start-y"),
        state: StepState::Failed,
        detail: Some("2 of 5 nodes failed: dp-y-8, dp-y-10".into()),
    });
    state.apply(&Event::RunChanged(RunState::Waiting));
    state
}

/// The failed wave's nodes listed under its row (→), the failed first.
pub fn wave_expanded(theme: Theme) -> ConsoleState {
    let mut state = wave_failed(theme);
    press(&mut state, key(KeyCode::Right));
    state
}

/// Eight data planes a side rolled in three waves ([1, 50%, 100%]), the gates on, wave 2's
/// nodes started and stopped by the plan's commands (`kong quit --wait`: kong/cmd/quit.lua@3.9.1), every
/// step before wave 2 done, wave 2's start waiting for its confirm.
fn at_wave_2(theme: Theme) -> ConsoleState {
    let text = super::fleet::hybrid_plan_text(
        8,
        "rolling:\n  waves: [1, 50%, 100%]\n  between_waves: 5m\nsteps:\n  wave-2-start-y:\n    \
         commands: [{run: [systemctl, start, kong]}]\n  wave-2-stop-x:\n    \
         commands: [{run: [kong, quit, --wait, '30']}]\n",
    );
    let loaded = crate::plan::load::parse_plan(&text, "plan.yaml").expect("the waves plan");
    let (plan, expanded) = (loaded.plan, loaded.expanded);
    // A console's run has the monitor's gates: the wave goes on past a bake they judge.
    let previewer = super::hybrid::previewer_with_gates(&plan, &expanded);
    let mut state = ConsoleState::new(&plan, &expanded, t0(), theme, previewer);
    state.set_now(at(3));
    apply_all(&mut state, &start_events(&expanded));
    let wave_2 = dp("wave-2-start-y");
    let before: Vec<StepRef> = expanded
        .steps()
        .map(|(phase, step)| step_ref(phase.name, &step.id))
        .take_while(|s| *s != wave_2)
        .collect();
    apply_all(&mut state, &complete(&before, 20));
    state.apply(&traffic(13));
    state.set_now(at(1200));
    ready(&mut state, wave_2);
    state.apply(&Event::RunChanged(RunState::Waiting));
    state
}

/// The confirm of wave 2's start: what the wave runs as one, and where it pauses.
pub fn wave_confirm(theme: Theme) -> ConsoleState {
    let mut state = at_wave_2(theme);
    press(&mut state, key(KeyCode::Enter));
    state
}

/// Wave 2 confirmed: its start done, its traffic stage baking at 50%; the header says the
/// wave runs as one.
pub fn wave_as_one_running(theme: Theme) -> ConsoleState {
    let mut state = at_wave_2(theme);
    apply_all(&mut state, &complete(&[dp("wave-2-start-y")], 1200));
    state.apply(&changed(dp("wave-2-traffic"), StepState::Running));
    state.apply(&Event::RunChanged(RunState::Running));
    state.apply(&traffic(50));
    state.set_now(at(1300));
    state
}

/// Wave 2's stage baking at 50 %: the gates judge wave 2's three Y nodes against the seven
/// X nodes wave 1 left serving (the metrics pane says so under the verdict), and they hold.
pub fn wave_gate_baking(theme: Theme) -> ConsoleState {
    let mut state = wave_as_one_running(theme);
    apply_all(&mut state, &metrics_history(1000, 1295, 50, 0.002));
    state.apply(&Event::Bake {
        step: dp("wave-2-traffic"),
        remaining_secs: 240,
    });
    let mut gates = GateEvaluator::new(plan().gates);
    let scope = Some(crate::metrics::ScopeCounts {
        wave: 2,
        waves: 3,
        y_nodes: 3,
        x_serving: 7,
    });
    let Event::Metrics(mut snapshot) = metrics(1295, 50, 0.002) else {
        unreachable!("metrics() makes a snapshot")
    };
    snapshot.x.requests_in_window = Some(8_400);
    snapshot.y.requests_in_window = Some(3_600);
    let verdict = gates.evaluate_in(&snapshot, scope);
    assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.checks);
    state.apply(&Event::Gate(verdict));
    state
}

/// Every scenario the snapshots cover, by name.
pub fn all() -> Vec<(&'static str, Scenario)> {
    vec![
        ("new_run", new_run),
        ("awaiting_confirmation", awaiting_confirmation),
        ("confirm_modal", confirm_modal),
        ("sick_y_confirm", sick_y_confirm),
        ("irreversible_modal", irreversible_modal),
        ("running_with_logs", running_with_logs),
        ("paused", paused),
        ("gate_breached", gate_breached),
        ("scrape_failures", scrape_failures),
        ("failed_with_cause", failed_with_cause),
        ("rolling_back", rolling_back),
        ("done", done),
        ("help", help),
        ("abort_modal", abort_modal),
        ("set_traffic_prompt", set_traffic_prompt),
        ("watching", watching),
        ("handover_modal", handover_modal),
        ("still_running", still_running),
        ("still_running_modal", still_running_modal),
        ("still_running_kill", still_running_kill),
        ("fleet", fleet),
        ("fleet_filtered", fleet_filtered),
        ("wave_running", wave_running),
        ("wave_failed", wave_failed),
        ("wave_expanded", wave_expanded),
        ("wave_confirm", wave_confirm),
        ("wave_as_one_running", wave_as_one_running),
        ("wave_gate_baking", wave_gate_baking),
    ]
}

pub fn draw(state: &ConsoleState, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| crate::ui::render(frame, state))
        .expect("draw");
    terminal.backend().buffer().clone()
}

/// The buffer as text, one line a row, trailing spaces trimmed.
pub fn buffer_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn screen(state: &ConsoleState, width: u16, height: u16) -> String {
    buffer_text(&draw(state, width, height))
}

//! `kongup report`: the audit report of a run, read from its journal (`status::read_run`), as
//! JSON or Markdown.

use std::collections::BTreeMap;

use serde::Serialize;

use super::drivers::{Driver, drivers};
use super::event::{RunState, TrafficVerification};
use super::journal::{ConfirmVia, Entry, StepResult};
use super::lock::LockStatus;
use super::outage;
use super::status::{RunOnDisk, split_key, time};
use crate::lb::Split;
use crate::metrics::GateFigures;
use crate::metrics::gates::{ms, percent};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttemptReport {
    pub attempt: u32,
    pub started_at: String,
    pub started_by: String,
    pub runs: Vec<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// `succeeded`, `failed`, `interrupted`, or `running`.
    pub result: String,
    pub detail: Option<String>,
    pub last_lines: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepReport {
    pub id: String,
    pub phase: String,
    pub title: String,
    pub kind: String,
    pub state: String,
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<String>,
    /// `confirm`, `retry` or `auto-advance`.
    pub confirmed_via: Option<String>,
    pub attempts: Vec<AttemptReport>,
    pub skip_reason: Option<String>,
    pub skipped_by_plan: bool,
    pub note: Option<String>,
    pub noted_by: Option<String>,
    pub facts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrafficReport {
    pub at: String,
    pub by: String,
    pub cause: String,
    pub requested: Split,
    pub applied: Option<Split>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GateReport {
    pub step: String,
    pub evaluated_at: String,
    pub verdict: String,
    pub checks: Vec<String>,
    pub requests_in_window: u64,
    pub consecutive_breaches: u32,
    /// Each cluster's requests, 5xx ratio and p99 over the window, and the thresholds;
    /// `None` for a verdict journaled before figures were.
    pub figures: Option<GateFigures>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RollbackReport {
    pub requested_at: String,
    pub requested_by: String,
    pub reason: String,
    pub time_to_safety_ms: Option<u64>,
    /// How the time to safety was verified: `read-back`, `operator-confirmed` or
    /// `unverified`.
    pub time_to_safety_verified: Option<TrafficVerification>,
    /// What was seen, in words (e.g. which file nginx's read-back came from).
    pub time_to_safety_evidence: Option<String>,
    pub traffic_error: Option<String>,
    pub point_of_no_return: bool,
    /// What must happen before traffic can go back to X, when it cannot serve.
    pub note: Option<String>,
    pub steps: Vec<String>,
    pub finished: bool,
    /// When the last rollback step was done: with `requested_at`, how long the whole
    /// rollback took.
    pub finished_at: Option<String>,
}

/// One outage (`engine::outage`): when no cluster served traffic.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutageReport {
    pub from: String,
    /// `None`: still going at the journal's last record.
    pub to: Option<String>,
    /// Up to `to`, or to the last record for one still going.
    pub secs: u64,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventReport {
    pub at: String,
    pub by: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunReport {
    pub run_id: String,
    pub plan: String,
    pub plan_sha256: String,
    pub state: String,
    pub created_at: String,
    pub created_by: String,
    pub last_record_at: String,
    pub steps: Vec<StepReport>,
    pub traffic: Vec<TrafficReport>,
    pub gates: Vec<GateReport>,
    pub rollback: Option<RollbackReport>,
    /// Every moment no cluster served traffic, and their total length.
    pub outages: Vec<OutageReport>,
    pub outage_total_secs: u64,
    /// `0:41 (from 03:12:05 to 03:12:46 UTC)` or `none`.
    pub outage: String,
    /// Every record as a sentence, in order: who did what, when.
    pub timeline: Vec<EventReport>,
    pub warnings: Vec<EventReport>,
    /// Who drove the run, from when to when, and how each turn ended (handed over, quit,
    /// a crash another kongup took the run over from).
    pub drivers: Vec<Driver>,
    /// The nodes taken out of their wave, by name.
    pub taken_out: Vec<TakenOutReport>,
}

/// A node the operator took out of its wave (`node-taken-out`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TakenOutReport {
    pub node: String,
    /// `phase/id` of the wave's step it failed in.
    pub step: String,
    pub reason: String,
    pub by: String,
    pub at: String,
    /// An X node that failed to stop: it may still run and serve.
    pub still_running: bool,
    /// `taken out` or `taken out, still running`.
    pub state: String,
}

fn confirm_via_name(via: ConfirmVia) -> &'static str {
    match via {
        ConfirmVia::Confirm => "confirm",
        ConfirmVia::Retry => "retry",
        ConfirmVia::AutoAdvance => "auto-advance",
        ConfirmVia::Wave => "wave",
    }
}

/// `wave 2: Y 3 nodes vs X 7 serving, ` when a verdict judged a wave's nodes, else empty.
fn judged(figures: Option<&GateFigures>) -> String {
    figures
        .and_then(|f| f.scope)
        .map_or(String::new(), |scope| format!("{scope}, "))
}

/// What a record says, as a sentence for the timeline.
pub fn describe(entry: &Entry) -> String {
    match entry {
        Entry::RunCreated { plan_name, .. } => format!("run created for plan {plan_name}"),
        Entry::SessionOpened { pid } => format!("kongup started driving the run (pid {pid})"),
        Entry::SessionClosed { reason } => format!("kongup stopped driving the run: {reason}"),
        Entry::PlanChangeAccepted { summary, .. } => {
            format!("changed plan accepted: {}", summary.join("; "))
        }
        Entry::StepConfirmed {
            step,
            via,
            typed,
            overridden,
        } => {
            let said = match via {
                ConfirmVia::Confirm if *typed => format!("{step} confirmed (plan name typed)"),
                ConfirmVia::Confirm => format!("{step} confirmed"),
                ConfirmVia::Retry => format!("{step}: retry asked"),
                ConfirmVia::AutoAdvance => format!("{step} confirmed by auto_advance"),
                ConfirmVia::Wave => match crate::engine::wave::wave_number_of_key(step) {
                    Some(n) => format!("{step} confirmed with wave {n}"),
                    None => format!("{step} confirmed with its wave"),
                },
            };
            if overridden.is_empty() {
                said
            } else {
                format!(
                    "{said}, overriding Y's health check: {}",
                    overridden.join("; ")
                )
            }
        }
        Entry::StepSkipped {
            step,
            reason,
            by_plan,
        } => format!(
            "{step} skipped{}: {reason}",
            if *by_plan { " by the plan" } else { "" }
        ),
        Entry::StepStarted { step, attempt, .. } => format!("{step} started (attempt {attempt})"),
        Entry::StepFinished {
            step,
            result,
            detail,
            duration_ms,
            ..
        } => format!(
            "{step} {} after {}{}",
            match result {
                StepResult::Succeeded => "succeeded",
                StepResult::Failed => "failed",
            },
            human_ms(*duration_ms),
            detail
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        Entry::StepInterrupted { step } => {
            format!("{step} found interrupted: kongup had stopped while it ran")
        }
        Entry::ProcessStarted {
            step,
            attempt,
            process,
        } => format!(
            "{step} (attempt {attempt}) started `{}` on {}: pid {}",
            process.command, process.on, process.identity.pid
        ),
        Entry::ProcessOnHost { step, remote, .. } => {
            format!("{step}: its command runs as pid {} on its host", remote.pid)
        }
        Entry::ProcessEnded {
            step,
            attempt,
            number,
            end,
        } => format!(
            "{step} (attempt {attempt}): process {number} ended: {}",
            end.how
        ),
        Entry::ProcessKillRequested {
            step,
            attempt,
            number,
        } => format!("{step} (attempt {attempt}): kill of process {number} requested"),
        Entry::StepMarkedDone { step, note } => format!("{step} marked done: {note}"),
        Entry::NodeOutcome {
            step,
            attempt,
            node,
            ok,
            reason,
        } => match (ok, reason) {
            (true, _) => format!("{step} (attempt {attempt}): done on {node}"),
            (false, reason) => format!(
                "{step} (attempt {attempt}): failed on {node}: {}",
                reason.as_deref().unwrap_or("no reason given")
            ),
        },
        Entry::NodeTakenOut { step, node, reason } => {
            format!("{step}: {node} taken out of its wave: {reason}")
        }
        Entry::AbortRequested { step } => format!("abort of {step} requested"),
        Entry::Fact { step, key, value } => format!("{step}: {key} = {value}"),
        Entry::Paused { reason } => format!("run paused: {reason}"),
        Entry::Resumed => "run resumed".to_string(),
        Entry::TrafficRequested { split, cause } => format!("traffic {split} requested ({cause})"),
        Entry::TrafficApplied { applied, error, .. } => match (applied, error) {
            (_, Some(error)) => format!("traffic change failed: {error}"),
            (Some(applied), None) => format!("load balancer reports {applied}"),
            (None, None) => "traffic set; the driver cannot read it back".to_string(),
        },
        Entry::Gate { step, gate } => format!(
            "gate {} during {step} ({}{} requests): {}",
            gate.verdict,
            judged(gate.figures.as_ref()),
            gate.requests_in_window,
            gate.checks.join("; ")
        ),
        Entry::RollbackRequested { reason } => format!("rollback requested: {reason}"),
        Entry::RollbackTrafficSafe {
            time_to_safety_ms,
            verified,
            evidence,
        } => format!(
            "all traffic on X ({}{}): time to safety {}",
            verified.as_str(),
            if evidence.is_empty() {
                String::new()
            } else {
                format!(": {evidence}")
            },
            human_ms(*time_to_safety_ms)
        ),
        Entry::RollbackTrafficFailed { error } => {
            format!("traffic to X not confirmed: {error}")
        }
        Entry::OutageStarted { why } => format!("outage: no cluster serves traffic: {why}"),
        Entry::OutageEnded => "outage over: a cluster serves traffic again".to_string(),
        Entry::RollbackPlanned {
            steps,
            point_of_no_return,
            note,
        } => format!(
            "rollback planned{}: {}{}",
            if *point_of_no_return {
                " (database-restore path)"
            } else {
                ""
            },
            if steps.is_empty() {
                "nothing to undo".to_string()
            } else {
                steps
                    .iter()
                    .map(|s| s.step.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
        ),
        Entry::RollbackFinished => "rollback finished".to_string(),
        Entry::Warning { text } => format!("warning: {text}"),
        Entry::HandoverRequested { pid, .. } => {
            format!("asked to take the run over (kongup run --take-over, pid {pid})")
        }
        Entry::HandedOver { to, .. } => format!("handed over to {to}"),
        Entry::HandoverDeclined { to, reason, .. } => {
            format!("the run was not handed over to {to}: {reason}")
        }
        Entry::LockTakenOver { from, pid, since } => format!(
            "took the run over from {from} (pid {pid}, driving since {}), which had stopped \
             without closing its session",
            time(since)
        ),
    }
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `kongup report`: everything the journal says about the run.
pub fn build_report(run: &RunOnDisk) -> RunReport {
    let view = &run.view;
    // An outage still going is counted up to the journal's last record.
    let last_at = run
        .records
        .last()
        .map(|r| r.at)
        .unwrap_or_else(chrono::Utc::now);
    let mut steps: BTreeMap<String, StepReport> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let titles: BTreeMap<String, (String, String)> = view
        .steps
        .iter()
        .map(|s| (s.step.clone(), (s.title.clone(), s.kind.clone())))
        .chain(
            view.rollback_steps()
                .iter()
                .map(|s| (s.step.clone(), (s.title.clone(), "rollback".to_string()))),
        )
        .collect();
    for key in view.step_keys() {
        order.push(key.clone());
        let (phase, id) = split_key(&key);
        let (title, kind) = titles.get(&key).cloned().unwrap_or_default();
        let record = view.record(&key);
        steps.insert(
            key.clone(),
            StepReport {
                id: id.to_string(),
                phase: phase.to_string(),
                title,
                kind,
                state: view.effective_state(&key).as_str().to_string(),
                confirmed_by: record.and_then(|r| r.confirmed_by.clone()),
                confirmed_at: record.and_then(|r| r.confirmed_at.as_ref().map(time)),
                confirmed_via: record
                    .and_then(|r| r.confirmed_via)
                    .map(|v| confirm_via_name(v).to_string()),
                attempts: Vec::new(),
                skip_reason: record.and_then(|r| r.skip_reason.clone()),
                skipped_by_plan: record.is_some_and(|r| r.skipped_by_plan),
                note: record.and_then(|r| r.note.clone()),
                noted_by: None,
                facts: record
                    .map(|r| r.facts.iter().cloned().collect())
                    .unwrap_or_default(),
            },
        );
    }
    let mut traffic = Vec::new();
    let mut pending_request: Option<(String, String, String)> = None;
    let mut gates = Vec::new();
    let mut timeline = Vec::new();
    // What reading the journal found (a torn tail, records from before the chain) comes
    // first: it says how far the rest can be trusted.
    let read_at = time(&chrono::Utc::now());
    let mut warnings: Vec<EventReport> = run
        .warnings
        .iter()
        .map(|text| EventReport {
            at: read_at.clone(),
            by: "kongup report".into(),
            text: text.clone(),
        })
        .collect();
    let mut rollback_finished_at = None;
    for record in &run.records {
        let at = time(&record.at);
        timeline.push(EventReport {
            at: at.clone(),
            by: record.by.clone(),
            text: describe(&record.entry),
        });
        match &record.entry {
            Entry::StepStarted {
                step,
                attempt,
                runs,
            } => {
                if let Some(report) = steps.get_mut(step) {
                    report.attempts.push(AttemptReport {
                        attempt: *attempt,
                        started_at: at,
                        started_by: record.by.clone(),
                        runs: runs.clone(),
                        finished_at: None,
                        duration_ms: None,
                        result: "running".into(),
                        detail: None,
                        last_lines: Vec::new(),
                    });
                }
            }
            Entry::StepFinished {
                step,
                result,
                detail,
                duration_ms,
                last_lines,
                ..
            } => {
                if let Some(last) = steps.get_mut(step).and_then(|r| r.attempts.last_mut()) {
                    last.finished_at = Some(at);
                    last.duration_ms = Some(*duration_ms);
                    last.result = match result {
                        StepResult::Succeeded => "succeeded",
                        StepResult::Failed => "failed",
                    }
                    .into();
                    last.detail = detail.clone();
                    last.last_lines = last_lines.clone();
                }
            }
            Entry::StepInterrupted { step } => {
                if let Some(last) = steps.get_mut(step).and_then(|r| r.attempts.last_mut()) {
                    last.result = "interrupted".into();
                }
            }
            Entry::StepMarkedDone { step, .. } => {
                if let Some(report) = steps.get_mut(step) {
                    report.noted_by = Some(record.by.clone());
                }
            }
            Entry::TrafficRequested { cause, .. } => {
                pending_request = Some((at, record.by.clone(), cause.clone()));
            }
            Entry::TrafficApplied {
                requested,
                applied,
                error,
            } => {
                let (at, by, cause) = pending_request
                    .take()
                    .unwrap_or_else(|| (at, record.by.clone(), String::new()));
                traffic.push(TrafficReport {
                    at,
                    by,
                    cause,
                    requested: *requested,
                    applied: *applied,
                    error: error.clone(),
                });
            }
            Entry::Gate { step, gate } => gates.push(GateReport {
                step: step.clone(),
                evaluated_at: time(&gate.evaluated_at),
                verdict: gate.verdict.clone(),
                checks: gate.checks.clone(),
                requests_in_window: gate.requests_in_window,
                consecutive_breaches: gate.consecutive_breaches,
                figures: gate.figures,
            }),
            Entry::RollbackRequested { .. } => rollback_finished_at = None,
            Entry::RollbackFinished => rollback_finished_at = Some(at),
            Entry::Warning { text } => warnings.push(EventReport {
                at,
                by: record.by.clone(),
                text: text.clone(),
            }),
            _ => {}
        }
    }
    // A request the driver never answered (kongup stopped in between).
    if let Some((at, by, cause)) = pending_request
        && let Some(requested) = view.traffic_requested
    {
        traffic.push(TrafficReport {
            at,
            by,
            cause,
            requested,
            applied: None,
            error: Some("no answer was journaled".into()),
        });
    }
    if run.lock == LockStatus::Free {
        for report in steps.values_mut() {
            if let Some(last) = report.attempts.last_mut()
                && last.result == "running"
            {
                last.result = "interrupted".into();
            }
        }
    }
    let first = run.records.first().expect("a run has its first record");
    RunReport {
        run_id: view.run_id.clone(),
        plan: view.plan_name.clone(),
        plan_sha256: view.plan_sha256.clone(),
        state: view.run_state().as_str().to_string(),
        created_at: time(&first.at),
        created_by: first.by.clone(),
        last_record_at: run.records.last().map(|r| time(&r.at)).unwrap_or_default(),
        steps: order.iter().filter_map(|k| steps.remove(k)).collect(),
        traffic,
        gates,
        rollback: view.rollback.as_ref().map(|r| RollbackReport {
            requested_at: time(&r.requested_at),
            requested_by: r.requested_by.clone(),
            reason: r.reason.clone(),
            time_to_safety_ms: r.time_to_safety_ms,
            time_to_safety_verified: r.traffic_verified.as_ref().map(|(v, _)| *v),
            time_to_safety_evidence: r.traffic_verified.as_ref().map(|(_, e)| e.clone()),
            traffic_error: r.traffic_error.clone(),
            point_of_no_return: r.point_of_no_return,
            note: r.note.clone(),
            steps: r.planned.iter().flatten().map(|s| s.step.clone()).collect(),
            finished: r.finished,
            finished_at: rollback_finished_at.filter(|_| r.finished),
        }),
        outages: view
            .outages
            .iter()
            .map(|o| OutageReport {
                from: time(&o.from),
                to: o.to.as_ref().map(time),
                secs: o.secs(last_at),
                why: o.why.clone(),
            })
            .collect(),
        outage_total_secs: view.outages.iter().map(|o| o.secs(last_at)).sum(),
        outage: outage::summary(&view.outages, last_at),
        timeline,
        warnings,
        drivers: drivers(&run.records),
        taken_out: view
            .taken_out
            .iter()
            .map(|(node, out)| TakenOutReport {
                node: node.clone(),
                step: out.step.clone(),
                reason: out.reason.clone(),
                by: out.by.clone(),
                at: time(&out.at),
                still_running: out.still_running,
                state: out.what().to_string(),
            })
            .collect(),
    }
}

/// A figure for a table cell; "—" when unknown or not journaled.
fn or_dash(figure: Option<String>) -> String {
    figure.unwrap_or_else(|| "—".to_string())
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Where a rolled-back run left the traffic, as the last split the run set says: back on X
/// only when the load balancer reported it (or asked, when it cannot report), or never moved.
fn where_traffic_ended(report: &RunReport) -> String {
    if report.state != RunState::RolledBack.as_str() {
        return String::new();
    }
    let last = report
        .traffic
        .iter()
        .rev()
        .find(|t| t.error.is_none())
        .map(|t| t.applied.unwrap_or(t.requested));
    match last {
        None => " (traffic never left cluster X)".to_string(),
        Some(split) if split == Split::ALL_X => " (all traffic back on cluster X)".to_string(),
        Some(split) => format!(" (traffic is not back on cluster X: it was last set to {split})"),
    }
}

/// The report as Markdown.
pub fn render_markdown(report: &RunReport) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("# kongup run report: {}", report.plan));
    line(String::new());
    line(format!("- Run: `{}`", report.run_id));
    line(format!(
        "- State: **{}**{}",
        report.state,
        where_traffic_ended(report)
    ));
    line(format!(
        "- Created: {} by {}",
        report.created_at, report.created_by
    ));
    line(format!("- Last record: {}", report.last_record_at));
    line(format!("- Outage: {}", report.outage));
    line(format!("- Plan SHA-256: `{}`", report.plan_sha256));
    line(String::new());

    line("## Drivers".into());
    line(String::new());
    for driver in &report.drivers {
        line(format!("- {}", super::status::driver_text(driver)));
    }
    line(String::new());

    if !report.taken_out.is_empty() {
        line("## Nodes taken out of their wave".into());
        line(String::new());
        for out in &report.taken_out {
            line(format!(
                "- {}: {}, at {} by {} at {}: {}",
                out.node,
                out.state,
                out.step,
                out.by,
                out.at,
                md_escape(&out.reason)
            ));
        }
        line(String::new());
    }

    line("## Steps".into());
    line(String::new());
    for step in &report.steps {
        line(format!(
            "### {}/{}: {} ({})",
            step.phase, step.id, step.title, step.state
        ));
        line(String::new());
        if let (Some(by), Some(at)) = (&step.confirmed_by, &step.confirmed_at) {
            line(format!(
                "- Confirmed by {by} at {at} ({})",
                step.confirmed_via.as_deref().unwrap_or("confirm")
            ));
        }
        if let Some(reason) = &step.skip_reason {
            line(format!(
                "- Skipped{}: {reason}",
                if step.skipped_by_plan {
                    " by the plan"
                } else {
                    ""
                }
            ));
        }
        if let Some(note) = &step.note {
            line(format!(
                "- Marked done by {}: {note}",
                step.noted_by.as_deref().unwrap_or("the operator")
            ));
        }
        for attempt in &step.attempts {
            line(format!(
                "- Attempt {}: started {} by {}, {}{}{}",
                attempt.attempt,
                attempt.started_at,
                attempt.started_by,
                attempt.result,
                attempt
                    .duration_ms
                    .map(|ms| format!(" after {}", human_ms(ms)))
                    .unwrap_or_default(),
                attempt
                    .detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
            for run in &attempt.runs {
                line(format!("  - ran: {run}"));
            }
            if !attempt.last_lines.is_empty() {
                line("  ```".into());
                for output in &attempt.last_lines {
                    line(format!("  {output}"));
                }
                line("  ```".into());
            }
        }
        for (key, value) in &step.facts {
            line(format!("- {key}: `{value}`"));
        }
        line(String::new());
    }

    line("## Traffic".into());
    line(String::new());
    if report.traffic.is_empty() {
        line("The run never changed the traffic split.".into());
    } else {
        line("| time | asked by | cause | requested | load balancer reports |".into());
        line("|---|---|---|---|---|".into());
        for change in &report.traffic {
            let applied = match (&change.applied, &change.error) {
                (_, Some(error)) => format!("error: {error}"),
                (Some(applied), None) => applied.to_string(),
                (None, None) => "not readable".into(),
            };
            // A split reads `X 90% | Y 10%`: escaped, it stays one cell.
            line(format!(
                "| {} | {} | {} | {} | {} |",
                change.at,
                change.by,
                md_escape(&change.cause),
                md_escape(&change.requested.to_string()),
                md_escape(&applied)
            ));
        }
    }
    line(String::new());

    line("## Gate verdicts".into());
    line(String::new());
    if report.gates.is_empty() {
        line("No gate verdicts were recorded.".into());
    } else {
        line(
            "| evaluated | step | verdict | requests | Y 5xx | Y p99 | X 5xx | X p99 \
             | breaches in a row | checks |"
                .into(),
        );
        line("|---|---|---|---|---|---|---|---|---|---|".into());
        for gate in &report.gates {
            // A verdict journaled without figures shows every figure unknown.
            let (x, y) = gate.figures.map(|f| (f.x, f.y)).unwrap_or_default();
            line(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                gate.evaluated_at,
                match gate.figures.and_then(|f| f.scope) {
                    Some(scope) => format!("{} ({scope})", gate.step),
                    None => gate.step.clone(),
                },
                gate.verdict,
                gate.requests_in_window,
                or_dash(y.error_ratio.map(percent)),
                or_dash(y.p99_ms.map(ms)),
                or_dash(x.error_ratio.map(percent)),
                or_dash(x.p99_ms.map(ms)),
                gate.consecutive_breaches,
                md_escape(&gate.checks.join("; "))
            ));
        }
    }
    line(String::new());

    line("## Rollback".into());
    line(String::new());
    match &report.rollback {
        None => line("The run was not rolled back.".into()),
        Some(rollback) => {
            line(format!(
                "- Requested by {} at {}: {}",
                rollback.requested_by, rollback.requested_at, rollback.reason
            ));
            line(
                match (rollback.time_to_safety_ms, &rollback.traffic_error) {
                    (Some(ms), _) => format!(
                        "- Time to safety: {} (all traffic on X; {}{})",
                        human_ms(ms),
                        rollback
                            .time_to_safety_verified
                            .unwrap_or_default()
                            .as_str(),
                        rollback
                            .time_to_safety_evidence
                            .as_deref()
                            .filter(|e| !e.is_empty())
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                    (None, Some(error)) => format!("- Traffic to X not confirmed: {error}"),
                    (None, None) => "- Traffic was not moved to X by the rollback".into(),
                },
            );
            if rollback.point_of_no_return {
                line("- Past the point of no return: rollback is the database-restore path".into());
            }
            if let Some(note) = &rollback.note {
                line(format!("- X cannot serve: {note}"));
            }
            line(format!(
                "- Rollback steps: {}",
                if rollback.steps.is_empty() {
                    "none".to_string()
                } else {
                    rollback.steps.join(", ")
                }
            ));
            line(match &rollback.finished_at {
                Some(at) => format!("- Finished: yes, at {at}"),
                None if rollback.finished => "- Finished: yes".to_string(),
                None => "- Finished: no".to_string(),
            });
        }
    }
    line(String::new());

    line("## Warnings".into());
    line(String::new());
    if report.warnings.is_empty() {
        line("None.".into());
    }
    for warning in &report.warnings {
        line(format!("- {}: {}", warning.at, warning.text));
    }
    line(String::new());

    line("## Timeline".into());
    line(String::new());
    line("| time | who | what |".into());
    line("|---|---|---|".into());
    for event in &report.timeline {
        line(format!(
            "| {} | {} | {} |",
            event.at,
            event.by,
            md_escape(&event.text)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::engine::journal::{GateRecord, Journal};
    use crate::engine::status::read_run;
    use crate::metrics::{ClusterWindow, GateThresholds};
    use crate::secrets::Redactor;

    const STEP: &str = "cluster/shift-traffic-10";

    fn gate(figures: Option<GateFigures>) -> Entry {
        Entry::Gate {
            step: STEP.into(),
            gate: GateRecord {
                evaluated_at: Utc::now(),
                verdict: "fail".into(),
                checks: vec!["Y 5xx 4.00% > 1.00%: BREACH".into()],
                requests_in_window: 420,
                consecutive_breaches: 2,
                figures,
            },
        }
    }

    /// A run directory whose journal holds `gates` after its first record.
    fn run_with(gates: Vec<Entry>) -> (tempfile::TempDir, RunReport) {
        let dir = tempfile::tempdir().unwrap();
        let lock = crate::engine::lock::RunLock::acquire(dir.path(), "a@b").unwrap();
        let mut journal = Journal::open(lock, 0, 0, Arc::new(Redactor::default())).unwrap();
        journal
            .append(
                "a@b",
                Entry::RunCreated {
                    run_id: "r".into(),
                    plan_name: "p".into(),
                    plan_sha256: "00".into(),
                    plan_text: "name: p\n".into(),
                    steps: vec![],
                    kongup_version: "0".into(),
                },
            )
            .unwrap();
        for entry in gates {
            journal.append("kongup", entry).unwrap();
        }
        drop(journal);
        let report = build_report(&read_run(dir.path()).unwrap());
        (dir, report)
    }

    fn gate_row(markdown: &str) -> &str {
        markdown
            .lines()
            .find(|l| l.contains(&format!("| {STEP} | fail |")))
            .unwrap_or_else(|| panic!("no gate row: {markdown}"))
    }

    #[test]
    fn a_verdict_journaled_without_figures_reports_them_unknown() {
        let (_dir, report) = run_with(vec![gate(None)]);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["gates"][0]["figures"].is_null(), "{json:#}");
        assert_eq!(json["gates"][0]["requests_in_window"], 420);
        let markdown = render_markdown(&report);
        let row = gate_row(&markdown);
        assert!(
            row.contains(&format!("| {STEP} | fail | 420 | — | — | — | — | 2 |")),
            "{row}"
        );
    }

    #[test]
    fn a_verdict_reports_its_figures_in_json_and_as_table_columns() {
        let figures = GateFigures {
            x: ClusterWindow {
                requests: Some(3780),
                error_ratio: Some(0.001),
                p99_ms: None,
            },
            y: ClusterWindow {
                requests: Some(420),
                error_ratio: Some(0.04),
                p99_ms: Some(152.4),
            },
            thresholds: GateThresholds {
                max_error_ratio: Some(0.01),
                min_requests: 10,
                breaches_to_fail: 2,
                ..GateThresholds::default()
            },
            p99_on_shared_bounds: None,
            scope: None,
        };
        let (_dir, report) = run_with(vec![gate(Some(figures))]);
        let json = serde_json::to_value(&report).unwrap();
        let reported = &json["gates"][0]["figures"];
        assert_eq!(reported["y"]["error_ratio"], 0.04, "{reported:#}");
        assert_eq!(reported["y"]["requests"], 420, "{reported:#}");
        assert!(reported["x"]["p99_ms"].is_null(), "{reported:#}");
        assert_eq!(
            reported["thresholds"]["max_error_ratio"], 0.01,
            "{reported:#}"
        );
        assert!(
            reported["thresholds"]["max_p99_ms"].is_null(),
            "{reported:#}"
        );
        let markdown = render_markdown(&report);
        assert!(
            markdown.contains("| requests | Y 5xx | Y p99 | X 5xx | X p99 | breaches in a row |"),
            "{markdown}"
        );
        let row = gate_row(&markdown);
        assert!(
            row.contains("| 420 | 4.00% | 152.4 ms | 0.10% | — | 2 |"),
            "{row}"
        );
    }
}

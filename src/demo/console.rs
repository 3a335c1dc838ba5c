//! A lab run in the console: the console knows nothing of the lab; the demo binds the lab's
//! faults to keys of its own (listed by `?`), whose answers the lab gives in the logs.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::engine::event::{LogLine, LogStream};
use crate::engine::journal::{JOURNAL_FILE, read_journal};
use crate::engine::{EngineHandle, Event, SessionEnd};
use crate::plan::steps::ClusterSide;
use crate::sim::{Fault, Lab};
use crate::ui::run::{ConsoleExit, ConsoleOptions, engine_events, run_console};
use crate::ui::{ExtraKey, Previewer};

use super::{DemoError, DemoRun};

/// The faults the demo's keys inject.
const FAULT_KEYS: &[(char, &str)] = &[
    ('E', "lab: Y answers 20% of requests with 500"),
    ('L', "lab: Y's upstream answers 300 ms slower"),
    ('X', "lab: crash a running Y proxy"),
    ('D', "lab: a Y data plane joins X's control plane (hybrid)"),
];

/// What the demo's fault keys do, in the order of [`FAULT_KEYS`].
fn fault_of(key: char) -> Option<Fault> {
    Some(match key {
        'E' => Fault::ErrorRatio {
            cluster: ClusterSide::Y,
            ratio: 0.2,
        },
        'L' => Fault::ExtraLatency {
            cluster: ClusterSide::Y,
            latency: std::time::Duration::from_millis(300),
        },
        'X' => Fault::Crash { node: None },
        'D' => Fault::DpIncompatible,
        _ => return None,
    })
}

/// The demo's keys: a fault each, and `N` to clear them all. The lab's answer arrives as a
/// warning in the logs (`notices`); the footer says what was asked.
pub fn fault_keys(lab: &Lab, notices: &mpsc::UnboundedSender<Event>) -> Vec<ExtraKey> {
    let mut keys: Vec<ExtraKey> = FAULT_KEYS
        .iter()
        .filter_map(|(key, label)| {
            let fault = fault_of(*key)?;
            let lab = lab.clone();
            let notices = notices.clone();
            Some(ExtraKey {
                key: *key,
                label: label.to_string(),
                action: Arc::new(move || {
                    let (lab, notices, fault) = (lab.clone(), notices.clone(), fault.clone());
                    let asked = format!("lab fault {fault}: injecting");
                    tokio::spawn(async move {
                        let text = match lab.apply_fault(&fault).await {
                            Ok(done) => format!("lab fault: {done}"),
                            Err(e) => format!("lab fault {fault} not injected: {e}"),
                        };
                        let _ = notices.send(Event::Warning(text));
                    });
                    asked
                }),
            })
        })
        .collect();
    let lab = lab.clone();
    let notices = notices.clone();
    keys.push(ExtraKey {
        key: 'N',
        label: "lab: clear every fault (crashed nodes start again)".to_string(),
        action: Arc::new(move || {
            let (lab, notices) = (lab.clone(), notices.clone());
            tokio::spawn(async move {
                let text = match lab.clear_faults().await {
                    Ok(()) => "lab: every fault cleared".to_string(),
                    Err(e) => format!("lab: clearing the faults failed: {e}"),
                };
                let _ = notices.send(Event::Warning(text));
            });
            "lab: clearing the faults".to_string()
        }),
    });
    keys
}

/// When the run began, from its journal (now, for a run whose journal is not readable).
fn started_at(run_dir: &std::path::Path) -> chrono::DateTime<Utc> {
    read_journal(&run_dir.join(JOURNAL_FILE))
        .ok()
        .and_then(|j| j.records.first().map(|r| r.at))
        .unwrap_or_else(Utc::now)
}

/// Drives a started lab run in the console until the operator quits (a running step then
/// finishes on the lab first), then stops the lab. `extra_keys`: the demo's fault keys;
/// `intro`: lines the logs pane starts with (what the lab is, what was rebuilt).
pub async fn drive_console(
    run: DemoRun,
    extra_keys: Vec<ExtraKey>,
    intro: &[String],
) -> Result<SessionEnd, DemoError> {
    for line in intro {
        let _ = run.notices.send(Event::Log(LogLine {
            at: Utc::now(),
            step: None,
            stream: LogStream::Engine,
            text: line.clone(),
        }));
    }
    let DemoRun {
        lab,
        engine,
        plan,
        expanded,
        toolbox,
        live,
        ..
    } = run;
    let EngineHandle {
        commands,
        events,
        task,
        run_dir,
        ..
    } = engine;
    let mut options = ConsoleOptions::new(
        started_at(&run_dir),
        Previewer::from_engine(plan.clone(), expanded.clone(), toolbox),
    );
    options.extra_keys = extra_keys;
    let exit = run_console(&plan, &expanded, commands, engine_events(events), options)
        .await
        .map_err(|e| DemoError::Console(format!("{e:#}")));
    if let Ok(ConsoleExit::Quit {
        step_running: Some(step),
    }) = &exit
    {
        eprintln!(
            "{step} is still running on the lab: kongup journals its result when it ends, then \
             exits"
        );
    }
    // After the console the engine has Quit (or had stopped): it ends once a running step
    // has; the lab must outlive that step, and nothing of it the process.
    let end = task.await.map_err(|e| {
        DemoError::Console(format!(
            "the engine task failed: {e}; the run is resumable from its journal"
        ))
    });
    drop(live);
    lab.shutdown().await;
    exit?;
    Ok(end??)
}

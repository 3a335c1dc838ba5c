//! A lab run in the console: the console knows nothing of the lab; the demo binds the lab's
//! faults to keys of its own (listed by `?`), whose answers the lab gives in the logs.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::engine::event::{LogLine, LogStream};
use crate::engine::{Event, SessionEnd};
use crate::notify::Alerts;
use crate::plan::steps::ClusterSide;
use crate::sim::{Fault, Lab};
use crate::ui::ExtraKey;
use crate::ui::run::console_on_engine;

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

/// Drives a started lab run in the console until the operator quits (a running step then
/// finishes on the lab first), then stops the lab. `extra_keys`: the demo's fault keys;
/// `intro`: lines the logs pane starts with (what the lab is, what was rebuilt); `alerts`:
/// the notifier's bell and desktop notifications.
pub async fn drive_console(
    run: DemoRun,
    extra_keys: Vec<ExtraKey>,
    intro: &[String],
    alerts: Option<Alerts>,
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
    let console = console_on_engine(engine, plan, expanded, toolbox, extra_keys, alerts).await;
    // The lab must outlive a step still running (the engine waited for it above), and
    // nothing of it the process.
    drop(live);
    lab.shutdown().await;
    console
        .map(|console| console.end)
        .map_err(|e| DemoError::Console(format!("{e:#}")))
}

//! Telling the operator (and the team) when kongup needs them: the terminal's bell and
//! desktop notification, a Slack-compatible webhook and a command, and the webhook's URL
//! kept out of everything kongup writes.

mod demo_webhook;
mod outlets;
mod tmux;
mod webhook_server;

use kongup::demo::{demo_plan_text, pacing_for_speed};
use kongup::plan::load::parse_plan;
use kongup::plan::steps::StepKind;
use kongup::sim::Scenario;

use crate::support::demo::SPEED;

/// The scenario's first traffic stage (the first step with a bake): its `phase/id`, and
/// how many steps come before it.
fn first_stage_at(scenario: Scenario) -> (String, usize) {
    let text = demo_plan_text(scenario, None, &pacing_for_speed(SPEED)).unwrap();
    let loaded = parse_plan(&text, "plan.yaml").unwrap();
    let (at, (phase, step)) = loaded
        .expanded
        .steps()
        .enumerate()
        .find(|(_, (_, s))| matches!(s.kind, StepKind::ShiftTraffic { .. }))
        .expect("a traffic stage");
    (format!("{}/{}", phase.name.as_str(), step.id), at)
}

/// `phase/id` of the scenario's first traffic stage.
fn first_stage(scenario: Scenario) -> String {
    first_stage_at(scenario).0
}

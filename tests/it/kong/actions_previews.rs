//! What the Kong actions say they will do, for every step of the example plans: the
//! preview the operator reads before confirming, built from the toolbox `kongup run` uses.

use std::path::PathBuf;

use kongup::actions::kong::{KongAccess, register_kong_actions};
use kongup::engine::Toolbox;
use kongup::engine::preview_step;
use kongup::kong::client::AdminClientOptions;
use kongup::plan::load::load_plan;
use kongup::plan::steps::{PhaseName, StepKind, StepRef};
use kongup::secrets::Redactor;

/// Every step's preview, by `phase/id`.
fn previews(name: &str) -> Vec<(String, StepKind, Vec<String>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/plans")
        .join(name);
    let loaded = load_plan(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut toolbox = Toolbox::for_plan(
        &loaded.plan,
        Redactor::default(),
        kongup::actions::builtins(None),
    )
    .unwrap();
    // The plan's secrets are not here: reach Kong without a token and without databases.
    let access = KongAccess::new(AdminClientOptions::default(), None, None).unwrap();
    register_kong_actions(&mut toolbox.actions, access);
    loaded
        .expanded
        .steps()
        .map(|(phase, step)| {
            let at = StepRef::new(phase.name, step.id.clone());
            let preview = preview_step(&loaded.plan, &loaded.expanded, &toolbox, &at).unwrap();
            (at.to_string(), step.kind.clone(), preview.runs)
        })
        .collect()
}

fn runs_of(all: &[(String, StepKind, Vec<String>)], step: &str) -> String {
    all.iter()
        .find(|(s, ..)| s == step)
        .unwrap_or_else(|| panic!("no step {step}"))
        .2
        .join("\n")
}

#[test]
fn every_automated_step_of_every_example_says_what_it_runs() {
    for plan in [
        "dbless-rolling.yaml",
        "hybrid-blue-green.yaml",
        "hybrid-dual-cluster.yaml",
        "hybrid-in-place.yaml",
        "traditional-blue-green.yaml",
        "traditional-dual-cluster.yaml",
        "traditional-in-place.yaml",
    ] {
        for (step, kind, runs) in previews(plan) {
            let automated = !matches!(kind, StepKind::Manual | StepKind::Review);
            if automated {
                assert!(
                    !runs.is_empty() && !runs[0].starts_with("nothing runs"),
                    "{plan} {step}: {runs:?}"
                );
            }
        }
    }
}

#[test]
fn node_steps_act_on_the_nodes_of_their_phase() {
    let hybrid = previews("hybrid-in-place.yaml");
    let stop = runs_of(&hybrid, "control-plane/stop-x");
    assert!(stop.contains("X's control planes (cp-"), "{stop}");
    assert!(!stop.contains("dp-"), "{stop}");
    let deploy_cp = runs_of(&hybrid, "control-plane/deploy-y");
    assert!(
        deploy_cp.contains("no wait here: Y's nodes start at control-plane/start-y"),
        "{deploy_cp}"
    );
    let deploy_dp = runs_of(&hybrid, "data-plane/deploy-y");
    assert!(
        deploy_dp.contains("wait up to 5m until Y's data planes"),
        "{deploy_dp}"
    );
    let phase = PhaseName::DataPlane.to_string();
    let shift = runs_of(&hybrid, &format!("{phase}/shift-traffic-5"));
    assert!(
        shift.starts_with("check the configuration is unchanged since freeze-writes"),
        "{shift}"
    );

    let in_place = previews("traditional-in-place.yaml");
    let finish = runs_of(&in_place, "cluster/migrations-finish");
    assert!(
        finish.contains("migrations finish -c /etc/kong/kong.conf --db-timeout 1200")
            && finish.contains("y/kong-1-new: "),
        "{finish}"
    );
    let backup = runs_of(&in_place, "cluster/backup");
    assert!(
        backup.contains("the plan names no database for X"),
        "{backup}"
    );
}

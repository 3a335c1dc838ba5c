//! The plan loader on mutations of the example plans (assets/plans): it refuses or
//! accepts, and never panics. `scripts/fuzz.sh` runs it longer.

use crate::support::mutate::no_panics;
use kongup::plan::load::parse_plan;

#[test]
fn fuzz_the_plan_loader_never_panics() {
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir("assets/plans").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            seeds.push(std::fs::read(&path).unwrap());
        }
    }
    seeds.sort();
    assert!(seeds.len() >= 7, "the example plans are the seeds");
    no_panics("plan", &seeds, |bytes| {
        // What `load_plan` does with a file's bytes: UTF-8 first, then the loader.
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = parse_plan(text, "plan.yaml");
        } else {
            let _ = parse_plan(&String::from_utf8_lossy(bytes), "plan.yaml");
        }
    });
}

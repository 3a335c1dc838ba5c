//! Plan loading and expansion at fleet size: a hybrid plan with 1 000 data planes per
//! cluster rolled in waves (`rolling: {waves: [1, 5%, 25%, 100%], between_waves: 5m}`; `max_unavailable` and `drain`
//! are refused by this kongup), read from YAML
//! with every check (`parse_plan`: positions, validation, expansion into steps), and its
//! expansion alone (`templates::expand`, what a resume and `kongup plan` redo).
//!
//! `cargo bench --bench plan_expand`.

use criterion::{Criterion, criterion_group, criterion_main};
use kongup::plan::load::parse_plan;
use kongup::plan::templates::expand;
use kongup::testkit::fleet::fleet_plan_text;

const DATA_PLANES: usize = 1_000;

fn plan_expand(c: &mut Criterion) {
    let source = fleet_plan_text(DATA_PLANES);
    let loaded = parse_plan(&source, "fleet.yaml").unwrap_or_else(|e| panic!("{e}"));
    let steps: usize = loaded.expanded.phases.iter().map(|p| p.steps.len()).sum();
    println!(
        "plan_expand: {} bytes of YAML, {} steps in {} phases",
        source.len(),
        steps,
        loaded.expanded.phases.len()
    );
    let mut group = c.benchmark_group("plan_expand");
    group.sample_size(20);
    group.bench_function("load_1000_dps_per_cluster", |b| {
        b.iter(|| parse_plan(&source, "fleet.yaml").expect("the fleet plan loads"))
    });
    group.bench_function("expand_1000_dps_per_cluster", |b| {
        b.iter(|| expand(&loaded.plan).expect("the fleet plan expands"))
    });
    group.finish();
}

criterion_group!(benches, plan_expand);
criterion_main!(benches);

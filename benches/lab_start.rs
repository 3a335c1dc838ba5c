//! How long the lab takes to start (the demo must open in under a second): every node's
//! ports bound, X (and, headless, Y) serving, ready for the first request.

use criterion::{Criterion, criterion_group, criterion_main};
use kongup::sim::{Lab, LabOptions, Scenario};

fn lab_start(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("lab_start");
    for scenario in [
        Scenario::Hybrid,
        Scenario::DualCluster,
        Scenario::DblessRolling,
    ] {
        for y_deployed in [false, true] {
            let name = format!(
                "{scenario}/{}",
                if y_deployed { "headless" } else { "demo" }
            );
            group.bench_function(name, |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let lab = Lab::start(
                            scenario,
                            LabOptions {
                                y_deployed,
                                ..LabOptions::default()
                            },
                        )
                        .await
                        .expect("the lab starts");
                        lab.shutdown().await;
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lab_start);
criterion_main!(benches);

//! Resuming a long run: a journal of 20 000 records of a fleet's rollout (a hybrid plan
//! of 1 000 data planes per cluster in waves), written by the engine's own writer (see
//! `kongup::testkit::fleet::write_long_journal`), read back as a resume reads it.
//!
//! - `read_and_fold`: `read_journal` (every line parsed, numbered and its chain checked)
//!   and `RunView::replay` (the run folded from it), what `kongup status` also does.
//! - `engine_resume`: `engine::spawn` to the engine's first event: the lock taken, the
//!   journal read and folded, the run's session opened in it. Each resume adds its own
//!   few records (session opened and closed, the running step interrupted).
//!
//! Goal: under 1 s. `cargo bench --bench journal_replay`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kongup::engine::journal::{JOURNAL_FILE, read_journal};
use kongup::engine::view::RunView;
use kongup::testkit::fleet::{fleet_plan, open_and_quit, write_long_journal};

const DATA_PLANES: usize = 1_000;
const RECORDS: u64 = 20_000;

fn journal_replay(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    // Writing 20 000 records fsyncs each; on tmpfs that costs nothing, and reading back
    // comes from memory either way (the page cache).
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let run_dir = dir.path().join("run");
    let loaded = fleet_plan(DATA_PLANES);
    let written = Instant::now();
    runtime.block_on(open_and_quit(&loaded, &run_dir));
    write_long_journal(&loaded, &run_dir, RECORDS);
    let journal = run_dir.join(JOURNAL_FILE);
    let bytes = std::fs::metadata(&journal).expect("the journal").len();
    let records = read_journal(&journal)
        .expect("the journal reads")
        .records
        .len();
    println!(
        "journal_replay: {records} records, {bytes} bytes, written in {:?} (one fsync each)",
        written.elapsed()
    );

    let mut group = c.benchmark_group("journal_replay");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("read_and_fold_20000_records", |b| {
        b.iter(|| {
            let contents = read_journal(&journal).expect("the journal reads");
            RunView::replay(&contents.records).expect("a run")
        })
    });
    group.bench_function("engine_resume_20000_records", |b| {
        b.iter_custom(|rounds| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..rounds {
                    total += open_and_quit(&loaded, &run_dir).await;
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(benches, journal_replay);
criterion_main!(benches);

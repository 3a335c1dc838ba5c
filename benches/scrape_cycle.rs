//! One scrape cycle of the metrics monitor (`metrics::monitor::scrape_round`, what every
//! round of the live monitor runs) against a fleet of loopback `/metrics` endpoints of this
//! process's own (`testkit::scrape_fleet`: one listener per node, each serving the corpus's
//! Kong 3.10.0 data plane exposition, 21 KB), with the client the monitor gets
//! (`metrics::monitor::scrape_client`): over more nodes than the scrapes in flight at once,
//! a connection per scrape, closed by the node; over fewer, kept between cycles.
//!
//! Also prints, outside criterion, the peak heap of one cycle (a counting allocator): 1 000
//! endpoints of 21 KB and 100 endpoints of 1.15 MB (the corpus node with its routes copied).
//! Run: `nice -n 5 cargo bench --bench scrape_cycle`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kongup::metrics::aggregate::ScrapeFailure;
use kongup::metrics::monitor::{
    self, MonitorConfig, ScrapeTarget, round_timeout, scrape_round, scrape_timeout,
};
use kongup::plan::model::TlsOptions;
use kongup::testkit::scrape_fleet::{
    Answer, Bytes, ScrapeFleet, data_plane_exposition, many_routes_exposition,
};

/// The system allocator, counting the bytes held now and the most held since the last reset.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let held = HELD.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(held, Ordering::Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The monitor's default: a 2 s interval.
const INTERVAL: Duration = Duration::from_secs(2);

/// One round as the monitor runs it at the default interval.
async fn round(
    client: &reqwest::Client,
    targets: &[ScrapeTarget],
) -> Vec<Result<kongup::metrics::sample::NodeSample, ScrapeFailure>> {
    let timeout = scrape_timeout(INTERVAL);
    scrape_round(
        client,
        targets.iter(),
        None,
        timeout,
        round_timeout(INTERVAL, timeout),
    )
    .await
}

fn targets(fleet: &ScrapeFleet) -> Vec<ScrapeTarget> {
    (0..fleet.addrs.len())
        .map(|i| ScrapeTarget {
            node: format!("dp-{i:04}"),
            url: Some(fleet.url(i)),
        })
        .collect()
}

/// The client as the monitor's session builds it for these targets.
fn client(targets: &[ScrapeTarget], timeout: Duration) -> reqwest::Client {
    let config = MonitorConfig {
        x: targets.to_vec(),
        y: Vec::new(),
        interval: INTERVAL,
        timeout,
        window: INTERVAL,
        history: INTERVAL,
        gates: None,
        admin_token: None,
    };
    monitor::scrape_client(&TlsOptions::default(), &config)
        .expect("the HTTP client")
        .0
}

/// One cycle's peak heap above what was held before it (the fleet's bodies included in
/// neither: they are built before), after a first cycle (which opened the connections a
/// client keeps).
fn peak_of_cycle(runtime: &tokio::runtime::Runtime, nodes: usize, body: Bytes) {
    let size = body.len();
    runtime.block_on(async {
        let fleet = ScrapeFleet::start(nodes, body, |_| Answer::Now).await;
        let targets = targets(&fleet);
        // Timeouts no loaded machine reaches: every node is read, so that the peak is a
        // whole round's (the monitor's 800 ms would drop the slowest under load).
        let patient = Duration::from_secs(30);
        let client = client(&targets, patient);
        drop(scrape_round(&client, targets.iter(), None, patient, patient).await);
        let before = HELD.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let started = Instant::now();
        let results = scrape_round(&client, targets.iter(), None, patient, patient).await;
        let took = started.elapsed();
        let peak = PEAK.load(Ordering::Relaxed) - before;
        // What the round's results (the samples kept) hold: the rest of the peak is what
        // reading took.
        let kept = HELD.load(Ordering::Relaxed).saturating_sub(before);
        let failed = results.iter().filter(|r| r.is_err()).count();
        let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
        println!(
            "scrape_cycle/peak_heap/{nodes}x{size}B: {:.1} MiB above the {:.1} MiB held before, {:.1} MiB of it the samples kept ({took:?}, {failed} not scraped)",
            mib(peak),
            mib(before),
            mib(kept),
        );
    });
}

fn scrape_cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    peak_of_cycle(&runtime, 1000, data_plane_exposition());
    peak_of_cycle(&runtime, 100, many_routes_exposition(1_150_000));

    let fleet = runtime.block_on(ScrapeFleet::start(1000, data_plane_exposition(), |_| {
        Answer::Now
    }));
    let targets = targets(&fleet);
    let client = client(&targets, scrape_timeout(INTERVAL));
    let mut group = c.benchmark_group("scrape_cycle");
    group.sample_size(10);
    group.bench_function("1000x21KB", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let results = round(&client, &targets).await;
                let failed = results.iter().filter(|r| r.is_err()).count();
                assert_eq!(failed, 0, "{:?}", results.iter().find(|r| r.is_err()));
            })
        })
    });
    group.finish();
}

criterion_group!(benches, scrape_cycle);
criterion_main!(benches);

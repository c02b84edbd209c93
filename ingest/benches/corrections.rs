//! What a correction (SPEC §3: `supersedes`, `event.withdrawn`) costs with 1,000,000 open
//! cases (target ≤ 20 µs). Method and results: docs/BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingest::decode::decode_str;

mod common;

/// The allocator the `jiancha` binary uses.
#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;
use common::{bench_applying, corrections_of, warm_with_sample, OPTS};

const OPEN_CASES: usize = 1_000_000;
/// Steady-state events applied after the warm-up, so cases carry stages, pauses and alerts.
const STEADY: usize = 1_000_000;
/// Corrections per sample, each of a different case.
const CORRECTIONS: usize = 10_000;

fn corrections(c: &mut Criterion) {
    let (engine, sample) = warm_with_sample(OPEN_CASES, STEADY, OPEN_CASES / CORRECTIONS);
    let lines = corrections_of(&sample, engine.clock());
    let events: Vec<_> = lines
        .iter()
        .map(|l| decode_str(l, &OPTS).expect("valid"))
        .collect();
    let mut alerts = Vec::new();
    // How many the engine could correct (a case finished and forgotten cannot be).
    let mut probe = engine.clone();
    let applied = events
        .iter()
        .filter(|ev| probe.on_event(ev, &mut alerts).is_ok())
        .count();
    eprintln!(
        "{applied} of {} corrections applied, {} alert lines, {} cases held",
        events.len(),
        alerts.len(),
        engine.tracked_cases()
    );
    let mut group = c.benchmark_group("corrections_1M_open_cases");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    bench_applying(
        &mut group,
        "supersede_or_withdraw_an_acceptance",
        &engine,
        &events,
    );
    group.finish();
}

criterion_group!(benches, corrections);
criterion_main!(benches);

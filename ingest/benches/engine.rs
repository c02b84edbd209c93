//! Throughput of the engine on one core with 1,000,000 open cases: engine only (events already
//! decoded) and including JSON decoding. Method and results: docs/BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ingest::decode::decode_str;
use rules::Policy;

mod common;

/// The allocator the `jiancha` binary uses.
#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;
use common::{bench_applying, decode_and_apply, stream, warm_engine, OPTS};

const OPEN_CASES: usize = 1_000_000;
const STREAM: usize = 1_000_000;

fn engine(c: &mut Criterion) {
    let (engine, mut workload) = warm_engine(OPEN_CASES, Policy::default());
    let lines = stream(&mut workload, STREAM);
    let events: Vec<_> = lines
        .iter()
        .map(|l| decode_str(l, &OPTS).expect("valid"))
        .collect();
    let mut group = c.benchmark_group("engine_1M_open_cases");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    bench_applying(&mut group, "engine_only", &engine, &events);
    group.bench_function("decode_and_engine", |b| {
        b.iter_batched(
            || engine.clone(),
            |mut engine| {
                decode_and_apply(&mut engine, &lines);
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for line in &lines {
                n += usize::from(decode_str(line, &OPTS).is_ok());
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);

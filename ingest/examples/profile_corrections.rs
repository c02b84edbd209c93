//! Profiling aid for corrections: warm an engine with `PROFILE_CASES` open cases (1M), run
//! `PROFILE_EVENTS` steady-state events (1M), then supersede or withdraw every 100th
//! acceptance of the warm-up once, timed. Under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*apply_corrections*'` it
//! counts the instructions of the corrections alone (docs/BENCHMARKS.md).

use std::time::Instant;

#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;

#[path = "../benches/common.rs"]
mod common;
use common::{apply_all, corrections_of, warm_with_sample};

#[inline(never)]
fn apply_corrections(engine: &mut rules::Engine, events: &[rules::Event<'_>]) -> u64 {
    apply_all(engine, events)
}

fn main() {
    let size = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let cases = size("PROFILE_CASES", 1_000_000);
    let (mut engine, sample) = warm_with_sample(cases, size("PROFILE_EVENTS", 1_000_000), 100);
    let lines = corrections_of(&sample, engine.clock());
    let events: Vec<_> = lines
        .iter()
        .map(|l| ingest::decode::decode_str(l, &common::OPTS).expect("valid"))
        .collect();
    let t = Instant::now();
    let alerts = apply_corrections(&mut engine, &events);
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{} corrections in {secs:.3} s = {:.1} µs each, {alerts} alert lines",
        events.len(),
        secs * 1e6 / events.len() as f64
    );
}

//! Profiling aid: warm an engine with 1M open cases, then run a steady-state stream once.
//! `perf record -D <ms> target/release/examples/profile_engine` skips the warm-up.

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/common.rs"]
mod common;
use common::{stream, warm_engine, OPTS};

fn main() {
    let decode = std::env::args().any(|a| a == "--decode");
    let t = Instant::now();
    let (mut engine, mut workload) = warm_engine(1_000_000, rules::Policy::default());
    let lines = stream(&mut workload, 3_000_000);
    let events: Vec<_> = lines
        .iter()
        .map(|l| ingest::decode::decode_str(l, &OPTS).expect("valid"))
        .collect();
    eprintln!("setup {:?}", t.elapsed());
    let t = Instant::now();
    let mut alerts = Vec::new();
    let mut n = 0u64;
    if decode {
        for line in &lines {
            if let Ok(ev) = ingest::decode::decode_str(line, &OPTS) {
                let _ = engine.on_event(&ev, &mut alerts);
            }
            n += alerts.len() as u64;
            alerts.clear();
        }
    } else {
        for ev in &events {
            let _ = engine.on_event(ev, &mut alerts);
            n += alerts.len() as u64;
            alerts.clear();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{} events in {secs:.2}s = {:.0} events/s, {n} alerts, {} cases",
        lines.len(),
        lines.len() as f64 / secs,
        engine.tracked_cases()
    );
    // Skip freeing gigabytes of state: it would only pollute a profile of the run.
    std::process::exit(0);
}

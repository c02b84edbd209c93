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
    let rounds = if std::env::args().any(|a| a == "--decode-only") {
        10
    } else {
        1
    };
    for _ in 0..rounds {
        let t = Instant::now();
        let valid = lines
            .iter()
            .filter(|l| ingest::decode::decode_str(l, &OPTS).is_ok())
            .count();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "decode only: {valid} lines in {secs:.2}s = {:.0} lines/s",
            lines.len() as f64 / secs
        );
    }
    if rounds > 1 {
        std::process::exit(0);
    }
    if std::env::args().any(|a| a == "--ab") {
        // A/B under a noisy machine: the same chunks through two clones, alternating, so both
        // see the same neighbours. A: one event at a time; B: with the engine's lookahead.
        let mut a = engine.clone();
        let (mut ta, mut tb) = (0.0, 0.0);
        let mut alerts = Vec::new();
        for chunk in events.chunks(50_000) {
            let t = Instant::now();
            for ev in chunk {
                let _ = a.on_event(ev, &mut alerts);
                alerts.clear();
            }
            ta += t.elapsed().as_secs_f64();
            let t = Instant::now();
            common::apply_all(&mut engine, chunk);
            tb += t.elapsed().as_secs_f64();
        }
        let n = events.len() as f64;
        eprintln!("A {:.0}/s  B {:.0}/s  B/A {:.2}", n / ta, n / tb, ta / tb);
        std::process::exit(0);
    }
    let t = Instant::now();
    let n = if decode {
        common::decode_and_apply(&mut engine, &lines)
    } else {
        common::apply_all(&mut engine, &events)
    };
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

//! Profiling aid: warm an engine with 1M open cases, then run a steady-state stream once
//! (pre-decoded; `--decode`: from the JSON lines; `--decode-only`: decoding alone, ten times;
//! `--dump`: every alert in full as a JSON line on stdout, untimed, to check that a change to
//! how alerts are built leaves them byte for byte the same).
//! `perf record -D <ms> target/release/examples/profile_engine` skips the warm-up.
//! `PROFILE_CASES` and `PROFILE_EVENTS` change the sizes, e.g. small enough for
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*apply_all*'`, which
//! counts the instructions of the timed part alone (docs/BENCHMARKS.md).

use std::time::Instant;

#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;

#[path = "../benches/common.rs"]
mod common;
use common::{stream, warm_engine, OPTS};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let t = Instant::now();
    let size = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (mut engine, mut workload) =
        warm_engine(size("PROFILE_CASES", 1_000_000), rules::Policy::default());
    // What the process holds with the engine warm (its cases and the workload generating
    // them), before the stream's lines are made.
    let (resident, committed) = (resident_mib(), heap::committed_bytes() as f64 / 1048576.0);
    let lines = stream(&mut workload, size("PROFILE_EVENTS", 3_000_000));
    eprintln!(
        "setup {:?}; with the engine warm {resident:.0} MiB resident, {committed:.0} MiB committed by the allocator",
        t.elapsed()
    );
    match mode.as_str() {
        "--decode-only" => {
            // Ten rounds, so that decoding dominates a profile of the whole run.
            for _ in 0..10 {
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
        }
        "--dump" => {
            use std::io::Write;
            let events: Vec<_> = lines
                .iter()
                .map(|l| ingest::decode::decode_str(l, &OPTS).expect("valid"))
                .collect();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            common::apply_each(&mut engine, &events, |alerts| {
                for a in alerts {
                    serde_json::to_writer(&mut out, a).expect("stdout");
                    out.write_all(b"\n").expect("stdout");
                }
            });
            out.flush().expect("stdout");
        }
        "--decode" => {
            let t = Instant::now();
            let n = common::decode_and_apply(&mut engine, &lines);
            report(lines.len(), t, n, &engine);
        }
        _ => {
            let events: Vec<_> = lines
                .iter()
                .map(|l| ingest::decode::decode_str(l, &OPTS).expect("valid"))
                .collect();
            let t = Instant::now();
            let n = common::apply_all(&mut engine, &events);
            report(lines.len(), t, n, &engine);
        }
    }
    // Skip freeing gigabytes of state: it would only pollute a profile of the run.
    std::process::exit(0);
}

/// The process's resident memory (`VmRSS` of /proc/self/status), in MiB.
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Print the rate of a run of `events` that started at `since`.
fn report(events: usize, since: Instant, alerts: u64, engine: &rules::Engine) {
    let secs = since.elapsed().as_secs_f64();
    eprintln!(
        "{events} events in {secs:.2}s = {:.0} events/s, {alerts} alerts, {} cases",
        events as f64 / secs,
        engine.tracked_cases()
    );
}

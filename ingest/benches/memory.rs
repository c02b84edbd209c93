//! Bytes of heap per open case, measured with a counting allocator (not a timing benchmark):
//! `cargo bench -p ingest --bench memory`. Method and results: docs/BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rules::Policy;

mod common;
use common::{stream, warm_engine, OPTS};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An engine with `open` cases after `steady_events` of the full mix, so stages, pauses,
/// extensions, fees and fired alerts are in the state too (the input is dropped).
fn steady_engine(open: usize, policy: Policy, steady_events: usize) -> rules::Engine {
    let (mut engine, mut workload) = warm_engine(open, policy);
    let lines = stream(&mut workload, steady_events);
    let mut alerts = Vec::new();
    for line in &lines {
        if let Ok(ev) = ingest::decode::decode_str(line, &OPTS) {
            let _ = engine.on_event(&ev, &mut alerts);
        }
        alerts.clear();
    }
    engine
}

fn measure(open: usize, policy: Policy, steady_events: usize) -> (usize, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let engine = steady_engine(open, policy, steady_events);
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let cases = engine.tracked_cases();
    drop(engine);
    (bytes, cases)
}

/// The engine's heap part by part, in memory (a clone of each part counted).
fn heap_by_part(open: usize, steady_events: usize) {
    let engine = steady_engine(open, Policy::default(), steady_events);
    let cases = engine.tracked_cases() as f64;
    let live = || LIVE.load(Ordering::Relaxed);
    println!("heap bytes per case held, by part:");
    for (part, bytes) in engine.heap_by_part(&live) {
        println!("  {part}: {:.1}", bytes as f64 / cases);
    }
}

/// Snapshot size and the time to take it and to restore from it, with `open` cases.
fn restart(open: usize, steady_events: usize) {
    let engine = steady_engine(open, Policy::default(), steady_events);
    let t = std::time::Instant::now();
    let image = engine.snapshot().expect("snapshot");
    let took = t.elapsed();
    let reference = std::sync::Arc::new(
        rules::Reference::parse(&rules::synth::reference_files()).expect("reference"),
    );
    let t = std::time::Instant::now();
    let restored = rules::Engine::restore(reference, Policy::default(), &image).expect("restore");
    let back = t.elapsed();
    let parts: Vec<String> = engine
        .footprint()
        .into_iter()
        .map(|(part, bytes)| format!("{part} {:.0}", bytes as f64 / engine.tracked_cases() as f64))
        .collect();
    println!("snapshot bytes per case by part: {}", parts.join(", "));
    println!(
        "snapshot of {} cases: {:.1} MiB ({:.0} bytes per case), taken in {:.2} s, restored in {:.2} s",
        restored.tracked_cases(),
        image.len() as f64 / 1048576.0,
        image.len() as f64 / restored.tracked_cases() as f64,
        took.as_secs_f64(),
        back.as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` runs this binary; the measurement is for `cargo bench`.
    }
    let open = 1_000_000;
    let steady = 200_000;
    let (total, cases) = measure(open, Policy::default(), steady);
    let small_dedup = Policy {
        dedup_capacity: 2,
        ..Policy::default()
    };
    let (without_dedup, _) = measure(open, small_dedup, steady);
    println!(
        "cases held: {cases} (open {open}, plus cases finished during {steady} steady events)"
    );
    println!(
        "engine heap: {:.1} MiB = {:.0} bytes per case held",
        total as f64 / 1048576.0,
        total as f64 / cases as f64
    );
    println!(
        "  of which the duplicate filter ({} ids): {:.1} MiB",
        Policy::default().dedup_capacity,
        (total - without_dedup) as f64 / 1048576.0
    );
    println!(
        "  cases, index, timers and symbols: {:.0} bytes per case held",
        without_dedup as f64 / cases as f64
    );
    let no_history = Policy {
        case_history: false,
        ..Policy::default()
    };
    let (without_history, _) = measure(open, no_history, steady);
    println!(
        "  of which the cases' histories (for corrections): {:.0} bytes per case held \
         (engine heap with case_history = false: {:.0} bytes per case)",
        (total - without_history) as f64 / cases as f64,
        without_history as f64 / cases as f64
    );
    heap_by_part(open, steady);
    restart(open, steady);
}

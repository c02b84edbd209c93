//! What a correction (SPEC §3: `supersedes`, `event.withdrawn`) costs with 1,000,000 open
//! cases (target ≤ 20 µs). Method and results: docs/BENCHMARKS.md.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingest::decode::decode_str;
use rules::synth::{self, Workload};
use rules::{Engine, Policy, Reference};
use serde_json::Value;

mod common;

/// The allocator the `jiancha` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::{apply_all, bench_applying, stream, EVENTS_PER_DAY, OPTS};

const OPEN_CASES: usize = 1_000_000;
/// Steady-state events applied after the warm-up, so cases carry stages, pauses and alerts.
const STEADY: usize = 1_000_000;
/// Corrections per sample, each of a different case.
const CORRECTIONS: usize = 10_000;

fn corrections(c: &mut Criterion) {
    let reference = Reference::parse(&synth::reference_files()).expect("synthetic reference");
    let mut engine = Engine::new(Arc::new(reference), Policy::default());
    let mut workload = Workload::new(42, OPEN_CASES, EVENTS_PER_DAY);
    let mut alerts = Vec::new();
    // Every 100th acceptance of the warm-up is corrected later.
    let mut corrected: Vec<Value> = Vec::new();
    let mut i = 0;
    workload.warm_up(OPEN_CASES, |line| {
        let ev = decode_str(line, &OPTS).expect("synthetic events are valid");
        engine.on_event(&ev, &mut alerts).expect("accepted");
        alerts.clear();
        if i % (OPEN_CASES / CORRECTIONS) == 0 {
            corrected.push(serde_json::from_str(line).expect("json"));
        }
        i += 1;
    });
    let lines = stream(&mut workload, STEADY);
    let events: Vec<_> = lines
        .iter()
        .map(|l| decode_str(l, &OPTS).expect("valid"))
        .collect();
    apply_all(&mut engine, &events);
    let now = engine.clock();
    // Half move the acceptance a working day earlier (a new version of the row), half withdraw
    // it (the row deleted): both rebuild the case and re-work its deadlines and alerts.
    let lines: Vec<String> = corrected
        .iter()
        .enumerate()
        .map(|(k, ev)| {
            let id = ev["event_id"].as_str().expect("id");
            let mut v = ev.clone();
            if k % 2 == 0 {
                let t = rules::time::parse_rfc3339(ev["occurred_at"].as_str().expect("t"))
                    .expect("t")
                    .0;
                v["event_id"] = Value::from(format!("{id}:v2"));
                v["supersedes"] = Value::from(id);
                v["occurred_at"] = Value::from(rules::Instant(t - 86_400).to_string());
            } else {
                v = serde_json::json!({
                    "event_id": format!("{id}:withdrawn"),
                    "kind": "event.withdrawn",
                    "occurred_at": now.to_string(),
                    "center_id": ev["center_id"],
                    "region": ev["region"],
                    "case_id": ev["case_id"],
                    "withdraws": id,
                });
            }
            v.to_string()
        })
        .collect();
    let events: Vec<_> = lines
        .iter()
        .map(|l| decode_str(l, &OPTS).expect("valid"))
        .collect();
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

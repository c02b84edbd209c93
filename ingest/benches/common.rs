//! Shared set-up of the engine benchmarks: a warm engine holding `open` cases and the
//! steady-state stream that follows.

#![allow(dead_code)] // each benchmark uses its part

use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions, Receipt};
use rules::synth::{self, Workload};
use rules::{Engine, Policy, Reference};

/// Decoding as in replay: no receipt time, so no future-skew check.
pub const OPTS: DecodeOptions = DecodeOptions {
    receipt: Receipt::ReportedAt,
    default_source: None,
    max_future_skew_secs: 600,
};

/// A province-sized day: steady-state events per simulated day.
pub const EVENTS_PER_DAY: u64 = 3_000_000;

/// An engine holding `open` accepted cases, and the workload positioned after the warm-up.
pub fn warm_engine(open: usize, policy: Policy) -> (Engine, Workload) {
    let reference = Reference::parse(&synth::reference_files()).expect("synthetic reference");
    let mut engine = Engine::new(Arc::new(reference), policy);
    let mut workload = Workload::new(42, open, EVENTS_PER_DAY);
    let mut alerts = Vec::new();
    workload.warm_up(open, |line| {
        let ev = decode_str(line, &OPTS).expect("synthetic events are valid");
        engine.on_event(&ev, &mut alerts).expect("accepted");
        alerts.clear();
    });
    (engine, workload)
}

/// The next `n` steady-state lines.
pub fn stream(workload: &mut Workload, n: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(n + n / 8);
    let mut buf = String::new();
    while lines.len() < n {
        buf.clear();
        workload.next_line(&mut buf);
        lines.extend(buf.split('\n').map(str::to_string));
    }
    lines
}

/// Apply pre-decoded events as `jiancha replay` does, with the engine's lookahead.
pub fn apply_all(engine: &mut Engine, events: &[rules::Event<'_>]) -> u64 {
    let mut n = 0;
    apply_each(engine, events, |alerts| n += alerts.len() as u64);
    n
}

/// The same, handing each event's alerts to `each`.
pub fn apply_each(
    engine: &mut Engine,
    events: &[rules::Event<'_>],
    mut each: impl FnMut(&[rules::Alert]),
) {
    let mut alerts = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        engine.lookahead(events, i, Some);
        let _ = engine.on_event(ev, &mut alerts);
        each(&alerts);
        alerts.clear();
    }
}

/// Decode and apply lines as `jiancha replay` does: decoded a block at a time, then applied
/// with the engine's lookahead.
pub fn decode_and_apply(engine: &mut Engine, lines: &[String]) -> u64 {
    let mut alerts = Vec::new();
    let mut n = 0;
    let mut block = Vec::with_capacity(ingest::replay::BLOCK_EVENTS);
    for chunk in lines.chunks(ingest::replay::BLOCK_EVENTS) {
        block.clear();
        block.extend(chunk.iter().map(|l| decode_str(l, &OPTS)));
        for (i, ev) in block.iter().enumerate() {
            engine.lookahead(&block, i, |r| r.as_ref().ok());
            if let Ok(ev) = ev {
                let _ = engine.on_event(ev, &mut alerts);
            }
            n += alerts.len() as u64;
            alerts.clear();
        }
    }
    n
}

/// Time `apply_all` of `events` on a fresh clone of `engine` per sample (the clone untimed).
pub fn bench_applying(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    engine: &Engine,
    events: &[rules::Event<'_>],
) {
    group.bench_function(name, |b| {
        b.iter_batched(
            || engine.clone(),
            |mut engine| {
                apply_all(&mut engine, events);
                engine
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

/// An engine warmed with `open` accepted cases and then `steady` steady-state events, and every
/// `every`-th acceptance of the warm-up (JSON), for corrections.
pub fn warm_with_sample(
    open: usize,
    steady: usize,
    every: usize,
) -> (Engine, Vec<serde_json::Value>) {
    let reference = Reference::parse(&synth::reference_files()).expect("synthetic reference");
    let mut engine = Engine::new(Arc::new(reference), Policy::default());
    let mut workload = Workload::new(42, open, EVENTS_PER_DAY);
    let mut alerts = Vec::new();
    let mut sample = Vec::new();
    let mut i = 0;
    workload.warm_up(open, |line| {
        let ev = decode_str(line, &OPTS).expect("synthetic events are valid");
        engine.on_event(&ev, &mut alerts).expect("accepted");
        alerts.clear();
        if i % every == 0 {
            sample.push(serde_json::from_str(line).expect("json"));
        }
        i += 1;
    });
    let lines = stream(&mut workload, steady);
    let events: Vec<_> = lines
        .iter()
        .map(|l| decode_str(l, &OPTS).expect("valid"))
        .collect();
    apply_all(&mut engine, &events);
    (engine, sample)
}

/// Corrections of the acceptances `sample` at engine time `now`: half move the acceptance a
/// day earlier (a new version of the row), half withdraw it (the row deleted); both rebuild
/// the case and re-work its deadlines and alerts.
pub fn corrections_of(sample: &[serde_json::Value], now: rules::Instant) -> Vec<String> {
    use serde_json::Value;
    sample
        .iter()
        .enumerate()
        .map(|(k, ev)| {
            let id = ev["event_id"].as_str().expect("id");
            if k % 2 == 0 {
                let t = rules::time::parse_rfc3339(ev["occurred_at"].as_str().expect("t"))
                    .expect("t")
                    .0;
                let mut v = ev.clone();
                v["event_id"] = Value::from(format!("{id}:v2"));
                v["supersedes"] = Value::from(id);
                v["occurred_at"] = Value::from(rules::Instant(t - 86_400).to_string());
                v
            } else {
                serde_json::json!({
                    "event_id": format!("{id}:withdrawn"),
                    "kind": "event.withdrawn",
                    "occurred_at": now.to_string(),
                    "center_id": ev["center_id"],
                    "region": ev["region"],
                    "case_id": ev["case_id"],
                    "withdraws": id,
                })
            }
            .to_string()
        })
        .collect()
}

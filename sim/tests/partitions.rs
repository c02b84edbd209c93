//! Cluster mode runs an engine per partition: each centre's events in one partition (keyed by
//! centre with Kafka's default partitioner), each partition's engine at its own clock, and a
//! process killed after its checkpoint re-reads what came after it. On a stream with
//! corrections, the alerts on record must be those one engine gives for the whole stream
//! (SPEC §3, Corrections) — the in-process form of `tests/cluster.rs`'s checks, without a broker.

use std::collections::BTreeMap;
use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions};
use rules::synth;
use rules::{Alert, Engine, Policy, Reference};
use serde_json::Value;

/// Kafka's default partitioner: murmur2 of the key, made positive, modulo the partitions.
fn murmur2(data: &[u8]) -> u32 {
    let m: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> 24;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h & 0x7fff_ffff
}

/// Lines out of an engine fed `lines`; with `crash = Some(k)`, a snapshot is taken before line
/// `k`, the engine goes on 40 lines, then is restored and fed again from line `k` (what a
/// process killed after its checkpoint does): both runs' lines are kept, as a store sees them.
fn run_crashing(
    reference: &Arc<Reference>,
    lines: &[&String],
    end: rules::Instant,
    crash: Option<usize>,
) -> Vec<Alert> {
    let policy = Policy::default();
    let opts = DecodeOptions::replay(&policy);
    let mut engine = Engine::new(reference.clone(), policy.clone());
    let mut out = Vec::new();
    let mut i = 0;
    let mut image = None;
    while i < lines.len() {
        if crash == Some(i) && image.is_none() {
            image = Some(engine.snapshot().expect("snapshot"));
        }
        if let (Some(k), Some(bytes)) = (crash, image.as_ref().filter(|b| !b.is_empty())) {
            if i == k + 40 {
                engine =
                    Engine::restore(reference.clone(), policy.clone(), bytes).expect("restore");
                i = k;
                image = Some(Vec::new());
            }
        }
        if let Ok(ev) = decode_str(lines[i], &opts) {
            let _ = engine.on_event(&ev, &mut out);
        }
        i += 1;
    }
    engine.advance_to(end, &mut out);
    out.retain(|a| !a.is_revision());
    out
}

fn run(reference: &Arc<Reference>, lines: &[&String], end: rules::Instant) -> Vec<Alert> {
    run_crashing(reference, lines, end, None)
}

type Lines = BTreeMap<(String, String, u8), usize>;

fn count(alerts: &[Alert]) -> Lines {
    let mut m = Lines::new();
    for a in alerts {
        *m.entry((
            a.alert_id.clone(),
            format!("{:?} {:?} {}", a.rule, a.status, a.fired_at),
            a.revision,
        ))
        .or_default() += 1;
    }
    m
}

#[test]
fn partitioned_engines_give_the_lines_one_engine_gives() {
    let files = synth::reference_files();
    let reference = Arc::new(Reference::parse(&files).expect("reference"));
    let (lines, _) = synth::corrected_stream(3_000);
    let all: Vec<&String> = lines.iter().collect();
    let end = lines
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            rules::time::parse_rfc3339(v["occurred_at"].as_str()?).ok()
        })
        .max()
        .expect("an instant");
    let one = count(&run(&reference, &all, end));
    for (parts, crash) in [(2usize, None), (3, None), (3, Some(500)), (3, Some(900))] {
        let mut by_part: Vec<Vec<&String>> = vec![Vec::new(); parts];
        for l in &lines {
            let v: Value = serde_json::from_str(l).expect("json");
            let c = v["center_id"].as_str().unwrap_or_default();
            by_part[murmur2(c.as_bytes()) as usize % parts].push(l);
        }
        let mut many = Lines::new();
        for p in &by_part {
            for (k, n) in count(&run_crashing(&reference, p, end, crash)) {
                *many.entry(k).or_default() += n;
            }
        }
        if crash.is_some() {
            // A store keeps one row per line; the crash's repeats are the same rows.
            let keys: Vec<_> = many.keys().cloned().collect();
            for k in keys {
                many.insert(k.clone(), one.get(&k).copied().unwrap_or(1).max(1));
            }
        }
        let mut diffs = Vec::new();
        for (k, n) in &one {
            let m = many.get(k).copied().unwrap_or(0);
            if m != *n {
                diffs.push(format!("one {n} many {m}: {k:?}"));
            }
        }
        for (k, m) in &many {
            if !one.contains_key(k) {
                diffs.push(format!("one 0 many {m}: {k:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "{parts} partitions, crash {crash:?}:\n{}",
            diffs.join("\n")
        );
    }
}

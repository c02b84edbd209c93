//! Decode + engine: NDJSON through `ingest::replay` (the loop `jiancha replay` and the golden
//! tests run) with the golden reference data, then the clock advanced past every deadline.
//! Hostile but valid events (extreme timestamps and limits, events in any order, duplicates)
//! must not panic the engine, and:
//! - every non-blank line is counted once (applied, invalid, refused or duplicate);
//! - every alert line is a JSON object with an `alert_id`;
//! - the same input gives byte-identical output (determinism, SPEC §8);
//! - a restart half-way (snapshot after the first half of the lines, restore, go on) gives
//!   byte-identical output, as a checkpoint restart in either mode must.
#![no_main]

use std::sync::{Arc, LazyLock};

use ingest::decode::DecodeOptions;
use ingest::replay::{replay, ReplaySummary};
use libfuzzer_sys::fuzz_target;
use rules::time::parse_rfc3339;
use rules::{Engine, Instant, Policy, Reference};
use serde_json::Value;

static GOLDEN: LazyLock<(Arc<Reference>, Policy)> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/reference");
    let loaded = ingest::reference_dir::load(&dir, None).expect("golden reference data");
    // The default remembers 2^20 event ids (16 MiB, copied by every snapshot): a few thousand
    // executions a minute. 64 keeps runs fast and makes the filter change generations within
    // one input, so its eviction is fuzzed too.
    let policy = Policy {
        dedup_capacity: 64,
        ..loaded.policy
    };
    (Arc::new(loaded.reference), policy)
});

/// After the last event the clock goes here: past every deadline of the golden years.
static UNTIL: LazyLock<Instant> =
    LazyLock::new(|| parse_rfc3339("2028-01-01T00:00:00+08:00").expect("instant"));

/// Replay `data` into `engine`, appending alert lines to `out`.
fn run(
    engine: &mut Engine,
    data: &[u8],
    until: Option<Instant>,
    out: &mut Vec<u8>,
) -> ReplaySummary {
    let opts = DecodeOptions::replay(&GOLDEN.1);
    replay(engine, data, until, opts, out, std::io::sink()).expect("writing to memory cannot fail")
}

fn new_engine() -> Engine {
    let (reference, policy) = &*GOLDEN;
    Engine::new(reference.clone(), policy.clone())
}

fuzz_target!(|data: &[u8]| {
    // `replay` reads lines of text; other bytes are the decoder's business (the decode target).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut out = Vec::new();
    let summary = run(&mut new_engine(), data, Some(*UNTIL), &mut out);
    let non_blank = text.split('\n').filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!(
        summary.applied + summary.invalid + summary.rejected + summary.duplicates,
        non_blank,
        "{summary:?}"
    );
    let mut alerts = 0;
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let alert: Value = serde_json::from_slice(line).expect("an alert line is JSON");
        assert!(alert["alert_id"].is_string(), "{alert}");
        alerts += 1;
    }
    assert_eq!(alerts, summary.alerts);

    let mut again = Vec::new();
    run(&mut new_engine(), data, Some(*UNTIL), &mut again);
    assert!(again == out, "replay is deterministic");

    // Restart after the first half of the lines.
    let newlines: Vec<usize> = (0..data.len()).filter(|&i| data[i] == b'\n').collect();
    let cut = newlines.get(newlines.len() / 2).map_or(0, |i| i + 1);
    let mut restarted = Vec::new();
    let mut first = new_engine();
    run(&mut first, &data[..cut], None, &mut restarted);
    let image = first.snapshot().expect("snapshot");
    let (reference, policy) = &*GOLDEN;
    let mut second = Engine::restore(reference.clone(), policy.clone(), &image).expect("restore");
    run(&mut second, &data[cut..], Some(*UNTIL), &mut restarted);
    assert!(
        restarted == out,
        "a restart after byte {cut} changed the output:\n{}\n---\n{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&restarted)
    );
});

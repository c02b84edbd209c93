//! Damaged input never panics: every mutation of valid events either decodes (and then goes
//! through the engine) or is refused with a reason code.

use std::sync::Arc;

use ingest::decode::{decode, DecodeOptions, Receipt};
use rules::synth::{self, Rng, Workload};
use rules::{Engine, Policy, Reference};

#[test]
fn mutated_events_are_decoded_or_refused_never_panic() {
    let mut workload = Workload::new(11, 500, 50_000);
    let mut lines = Vec::new();
    workload.warm_up(500, |l| lines.push(l.as_bytes().to_vec()));
    let mut buf = String::new();
    while lines.len() < 2_000 {
        buf.clear();
        workload.next_line(&mut buf);
        lines.extend(buf.split('\n').map(|l| l.as_bytes().to_vec()));
    }
    let reference = Arc::new(Reference::parse(&synth::reference_files()).expect("reference"));
    let mut engine = Engine::new(reference, Policy::default());
    let opts = DecodeOptions {
        receipt: Receipt::At(rules::time::parse_rfc3339("2026-03-20T00:00:00+08:00").expect("t")),
        default_source: None,
        max_future_skew_secs: 600,
    };
    let mut rng = Rng::new(5);
    let (mut refused, mut accepted) = (0u32, 0u32);
    let mut alerts = Vec::new();
    for i in 0..200_000 {
        let mut bytes = lines[i % lines.len()].clone();
        match rng.below(5) {
            0 => {
                // Flip a few bytes anywhere (may break UTF-8, JSON, values).
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(bytes.len() as u64) as usize;
                    bytes[at] = rng.below(256) as u8;
                }
            }
            1 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
            2 => {
                // Splice in a fragment of another event.
                let other = &lines[rng.below(lines.len() as u64) as usize];
                let from = rng.below(other.len() as u64) as usize;
                let at = rng.below(bytes.len() as u64) as usize;
                bytes.splice(at..at, other[from..].iter().copied().take(40));
            }
            3 => {
                // Replace a digit with a letter (timestamps, amounts, scores).
                if let Some(p) = bytes.iter().position(|b| b.is_ascii_digit()) {
                    let at = p + rng.below((bytes.len() - p) as u64) as usize;
                    bytes[at] = b'x';
                }
            }
            _ => {
                let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.below(256) as u8).collect();
                bytes = junk;
            }
        }
        match decode(&bytes, &opts) {
            Ok(ev) => {
                accepted += 1;
                let _ = engine.on_event(&ev, &mut alerts);
                alerts.clear();
            }
            Err(e) => {
                refused += 1;
                assert!(!e.message.is_empty(), "every refusal says why: {e:?}");
            }
        }
    }
    // Both paths were exercised heavily.
    assert!(
        refused > 50_000 && accepted > 10_000,
        "refused {refused}, accepted {accepted}"
    );
}

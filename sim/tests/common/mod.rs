//! What the simulator-driven property tests share: a simulated hall's stream.

use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions};
use rules::{Alert, Day, Engine, Policy, Reference};
use sim::{Profile, Rates, Simulator, World};

/// A simulated hall's events in time order, with its reference data and its last instant.
pub struct Stream {
    pub reference: Arc<Reference>,
    pub lines: Vec<(i64, String)>,
    pub end: rules::Instant,
}

/// `days` of a simulated hall from 2026-11-16, with four times the usual overdue cases.
pub fn stream(seed: u64, days: u32) -> Stream {
    let world = World::new(&Profile::hall(), seed);
    let reference = Arc::new(Reference::parse(&world.reference_files()).expect("reference"));
    let mut rates = Rates::default();
    // More misconduct than a real hall, so every rule family has alerts to get wrong.
    rates.overdue *= 4;
    let mut sim = Simulator::new(
        world,
        rates,
        seed,
        Day::parse("2026-11-16").expect("day"),
        days,
    );
    let lines = sim.by_ref().map(|(t, l)| (t.0, l)).collect();
    Stream {
        reference,
        lines,
        end: sim.end(),
    }
}

/// Every alert line the engine gives for `lines` (decoded and applied as `jiancha replay`
/// does; with a snapshot and restore before line `restart_at` when given), then the clock
/// advanced to the stream's end.
pub fn run<S: AsRef<str>>(s: &Stream, lines: &[S], restart_at: Option<usize>) -> Vec<Alert> {
    let policy = Policy::default();
    let opts = DecodeOptions::replay(&policy);
    let mut engine = Engine::new(s.reference.clone(), policy.clone());
    let mut out: Vec<Alert> = Vec::new();
    for (i, line) in lines.iter().map(AsRef::as_ref).enumerate() {
        if restart_at == Some(i) {
            let bytes = engine.snapshot().expect("snapshot");
            engine = Engine::restore(s.reference.clone(), policy.clone(), &bytes).expect("restore");
        }
        let ev = decode_str(line, &opts).unwrap_or_else(|e| panic!("{e}: {line}"));
        engine
            .on_event(&ev, &mut out)
            .unwrap_or_else(|e| panic!("refused: {e}: {line}"));
    }
    engine.advance_to(s.end, &mut out);
    out
}

//! What the simulator-driven property tests share: a simulated hall's stream.

use std::sync::Arc;

use rules::{Day, Reference};
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

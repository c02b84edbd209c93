//! What the feeds cost the engine as a province has more of them (SPEC §6 "Sources"): events
//! spread over `REGIONS` regions of `FEEDS` feeds each, one second apart, each a report of its
//! feed (`source`), applied and timed after a warm-up of the same size.
//!
//! ```text
//! cargo run --release -p ingest --example profile_sources -- REGIONS FEEDS [EVENTS]
//! ```
//!
//! Every event is a `case.submitted` of one of 10,000 cases (spread over the regions), so the
//! cases and the duplicate filter stay the same whatever the number of regions and feeds: what
//! grows with them is the feeds' and regions' own state and how the engine finds the next feed
//! to judge.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use rules::event::Body;
use rules::{Engine, Event, Policy, Reference};

#[global_allocator]
static GLOBAL: heap::Mimalloc = heap::Mimalloc;

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (regions, feeds, n) = (arg(1, 1), arg(2, 1), arg(3, 1_000_000));
    let reference = Reference::parse(&rules::synth::reference_files()).expect("reference");
    // The centres and regions are not in the synthetic reference: bound on first use.
    let policy = Policy {
        accept_unlisted_ids: true,
        ..Policy::default()
    };
    let mut engine = Engine::new(Arc::new(reference), policy);
    let start = rules::time::parse_rfc3339("2026-03-02T08:00:00+08:00").expect("time");
    let names: Vec<(String, String)> = (0..regions)
        .map(|r| (format!("{}", 110_101 + r), format!("X{r}")))
        .collect();
    let sources: Vec<String> = (0..feeds).map(|f| format!("feed-{f}")).collect();
    let per_region = (10_000 / regions).max(1);
    let event = |i: usize| {
        let (region, center) = &names[i % regions];
        let at = start.plus_secs(i as i64);
        Event {
            event_id: Cow::Owned(format!("e{i}")),
            occurred_at: at,
            reported_at: Some(at),
            received_at: None,
            center_id: Cow::Borrowed(center.as_str()),
            region: Cow::Borrowed(region.as_str()),
            department: None,
            window_id: None,
            staff_id: None,
            case_id: Some(Cow::Owned(format!("K{}", i / regions % per_region))),
            item_code: None,
            source: Some(Cow::Borrowed(sources[i / regions % feeds].as_str())),
            supersedes: None,
            body: Body::CaseSubmitted { channel: None },
        }
    };
    let mut alerts = Vec::new();
    let mut apply = |from: usize| {
        let events: Vec<Event<'_>> = (from..from + n).map(event).collect();
        let t = Instant::now();
        for ev in &events {
            engine.on_event(ev, &mut alerts).expect("accepted");
            alerts.clear();
        }
        t.elapsed().as_secs_f64()
    };
    apply(0);
    let secs = apply(n);
    println!(
        "{regions} regions × {feeds} feeds: {n} events in {secs:.2}s = {:.0} events/s",
        n as f64 / secs
    );
}

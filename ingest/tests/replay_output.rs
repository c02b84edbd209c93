//! `jiancha replay`'s output is what a plain loop over the engine prints: every alert line in
//! order, byte for byte, revisions left out. The replay runs three threads (reading and
//! decoding, the engine, printing) and has the engine build the revisions it drops lean
//! (`Engine::lean_revisions`); this loop runs on one thread with every revision built in full,
//! as the stores receive them. Streams: the synthetic mix of every rule family with
//! corrections and withdrawals (`rules::synth`), including one of 1,000,000 events.

use std::io::Write as _;
use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions};
use ingest::replay::{replay, ReplaySummary};
use rules::synth::{self, Workload};
use rules::{Engine, Instant, Policy, Reference};

fn engine() -> Engine {
    let reference = Arc::new(Reference::parse(&synth::reference_files()).expect("reference"));
    Engine::new(reference, Policy::default())
}

/// A warm-up of `open` acceptances, then the steady mix up to `events` lines, with
/// corrections and withdrawals; the workload's clock at its end.
fn stream(seed: u64, open: usize, per_day: u64, events: usize) -> (String, Instant) {
    let mut w = Workload::new(seed, open, per_day);
    let mut lines = Vec::with_capacity(events + 16);
    // Reported when they happened, as the corrections need (`synth::with_corrections`).
    w.warm_up(open, |l| lines.push(synth::with_reported_at(l)));
    let mut buf = String::new();
    while lines.len() < events {
        buf.clear();
        w.next_line(&mut buf);
        lines.extend(buf.lines().map(synth::with_reported_at));
    }
    let mut text = synth::with_corrections(lines).join("\n");
    text.push('\n');
    (text, w.now())
}

/// The reference output: one thread, every revision built, dropped at printing.
fn plain_loop(text: &str, until: Option<Instant>) -> Vec<u8> {
    let mut engine = engine();
    let opts = DecodeOptions::replay(&Policy::default());
    let (mut out, mut alerts) = (Vec::new(), Vec::new());
    let mut print = |alerts: &mut Vec<rules::Alert>| {
        for a in alerts.drain(..).filter(|a| !a.is_revision()) {
            serde_json::to_writer(&mut out, &a).expect("serialise");
            out.write_all(b"\n").expect("write");
        }
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(ev) = decode_str(line, &opts) {
            let _ = engine.on_event(&ev, &mut alerts);
            print(&mut alerts);
        }
    }
    if let Some(until) = until {
        engine.advance_to(until, &mut alerts);
        print(&mut alerts);
    }
    out
}

/// Replay's alert lines, diagnostics and counts.
fn replayed(text: &str, until: Option<Instant>) -> (Vec<u8>, String, ReplaySummary) {
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    let summary = replay(
        &mut engine(),
        text.as_bytes(),
        until,
        DecodeOptions::replay(&Policy::default()),
        &mut out,
        &mut diag,
    )
    .expect("replay into memory");
    (out, String::from_utf8_lossy(&diag).into_owned(), summary)
}

fn assert_same(text: &str, until: Option<Instant>) -> ReplaySummary {
    let (got, _, summary) = replayed(text, until);
    let want = plain_loop(text, until);
    if got != want {
        let (got, want) = (
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
        );
        let at = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "replay's output differs from the plain loop's at alert line {} ({} lines against {}):\n  replay {}\n  loop   {}",
            at + 1,
            got.lines().count(),
            want.lines().count(),
            got.lines().nth(at).unwrap_or("(none)"),
            want.lines().nth(at).unwrap_or("(none)")
        );
    }
    summary
}

#[test]
fn replay_prints_what_the_engine_raises_on_a_corrected_mix() {
    let (text, now) = stream(5, 2_000, 20_000, 60_000);
    // Past every deadline: the clock's own firings are compared too.
    let until = Instant(now.0 + 400 * 86_400);
    let summary = assert_same(&text, Some(until));
    assert!(summary.alerts > 1_000, "{summary:?}");
    assert_eq!(summary.invalid + summary.rejected, 0, "{summary:?}");
}

#[test]
fn replay_prints_what_the_engine_raises_on_a_million_events() {
    let (text, _) = stream(9, 20_000, 300_000, 1_000_000);
    let summary = assert_same(&text, None);
    assert!(summary.applied > 1_000_000, "{summary:?}");
    assert_eq!(summary.invalid + summary.rejected, 0, "{summary:?}");
    assert!(summary.alerts > 10_000, "{summary:?}");
}

#[test]
fn blank_lines_bad_lines_and_a_block_boundary_keep_their_line_numbers() {
    // Exactly one block of lines, then a bad one: its number is counted across the boundary.
    let (text, _) = stream(3, 50, 5_000, 300);
    let lines: Vec<&str> = text
        .lines()
        .take(ingest::replay::BLOCK_EVENTS - 1)
        .collect();
    let text = format!("\n{}\nnot json\n", lines.join("\n"));
    let (_, diag, summary) = replayed(&text, None);
    let bad = ingest::replay::BLOCK_EVENTS + 1;
    assert!(diag.starts_with(&format!("line {bad}: ")), "{diag}");
    assert_eq!(summary.lines, bad as u64, "{summary:?}");
    assert_eq!(summary.invalid, 1, "{summary:?}");
}

/// The revisions an engine asked for lean ones emits are the full ones without message and
/// evidence: same alerts, ids, subjects, instants and numbers, in the same order. Later lines
/// of a corrected case follow their numbers, so a wrong id or number would change output.
#[test]
fn lean_revisions_carry_the_ids_and_numbers_of_full_ones() {
    let (text, now) = stream(5, 2_000, 20_000, 60_000);
    let opts = DecodeOptions::replay(&Policy::default());
    let revisions = |lean: bool| {
        let mut engine = engine();
        engine.lean_revisions(lean);
        let mut alerts = Vec::new();
        for line in text.lines() {
            let ev = decode_str(line, &opts).expect("synthetic events are valid");
            let _ = engine.on_event(&ev, &mut alerts);
        }
        engine.advance_to(Instant(now.0 + 400 * 86_400), &mut alerts);
        alerts
            .into_iter()
            .filter(rules::Alert::is_revision)
            .map(|a| {
                (
                    a.alert_id, a.subject, a.fired_at, a.status, a.revision, a.restated,
                )
            })
            .collect::<Vec<_>>()
    };
    let full = revisions(false);
    assert!(
        full.len() > 100,
        "the stream must revise alerts: {}",
        full.len()
    );
    assert!(
        full.iter().any(|r| r.5),
        "the stream must restate revisions after corrections"
    );
    assert_eq!(revisions(true), full);
}

#[test]
fn evidence_is_written_as_the_json_it_reads_as() {
    // Case alerts build their evidence as typed fields, written straight to bytes by the
    // printer and the stores (`rules::evidence`); anyone reading it gets a `Value`. The two
    // must be the same JSON, byte for byte, on every kind of line: firings, revisions, clears,
    // retractions and lines after corrections.
    let (text, now) = stream(5, 2_000, 20_000, 60_000);
    let opts = DecodeOptions::replay(&Policy::default());
    let mut engine = engine();
    let mut alerts = Vec::new();
    for line in text.lines() {
        let ev = decode_str(line, &opts).expect("synthetic events are valid");
        let _ = engine.on_event(&ev, &mut alerts);
    }
    engine.advance_to(Instant(now.0 + 400 * 86_400), &mut alerts);
    let mut kinds = std::collections::BTreeSet::new();
    for a in &alerts {
        let written = serde_json::to_string(&a.evidence).expect("serialise");
        let read = serde_json::to_string(&*a.evidence).expect("serialise");
        assert_eq!(written, read, "{} {:?}", a.alert_id, a.rule);
        assert_eq!(
            a.evidence.to_string(),
            read,
            "{} as a store row",
            a.alert_id
        );
        kinds.insert((a.rule.as_str(), a.status.as_str(), a.is_revision()));
    }
    for want in [
        ("case.overdue", "open", false),
        ("case.overdue", "open", true),
        ("case.overdue", "cleared", false),
        ("case.stage_overdue", "open", false),
    ] {
        assert!(kinds.contains(&want), "no {want:?} line in {kinds:?}");
    }
}

#[test]
fn an_engine_replayed_into_builds_full_revisions_again() {
    // Replay builds the revisions it drops lean (no message, no evidence); an engine that goes
    // on from a replay to feed stores must send them in full again.
    let (text, now) = stream(5, 2_000, 20_000, 60_000);
    let lines: Vec<&str> = text.lines().collect();
    let (first, rest) = lines.split_at(lines.len() / 2);
    let mut engine = engine();
    let mut head = first.join("\n");
    head.push('\n');
    replay(
        &mut engine,
        head.as_bytes(),
        None,
        DecodeOptions::replay(&Policy::default()),
        std::io::sink(),
        std::io::sink(),
    )
    .expect("replay into a sink");
    let opts = DecodeOptions::replay(&Policy::default());
    let mut alerts = Vec::new();
    for line in rest {
        let ev = decode_str(line, &opts).expect("synthetic events are valid");
        let _ = engine.on_event(&ev, &mut alerts);
    }
    engine.advance_to(Instant(now.0 + 400 * 86_400), &mut alerts);
    let revisions: Vec<_> = alerts.iter().filter(|a| a.is_revision()).collect();
    assert!(revisions.len() > 50, "{} revisions", revisions.len());
    for r in revisions {
        assert!(
            !r.message.is_empty() && r.evidence.is_object(),
            "a lean revision after the replay: {} {:?}",
            r.alert_id,
            r.rule
        );
    }
}

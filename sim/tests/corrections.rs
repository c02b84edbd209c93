//! Corrections (SPEC §3, issue "Source adapters I" item 2), as a property test over simulated
//! halls: random case events and fees are superseded (a later version of the row, its time
//! moved or its result changed) or withdrawn (the row deleted), some corrections corrected
//! again, each correction arriving anywhere up to two days of stream later. The alerts on
//! record after the live run — every correction applied as it came, retractions included — are
//! the alerts of a replay of the corrected stream: the stream in which each superseded or
//! withdrawn event never happened and each correcting event did, where it arrived. Also across
//! a restart: the engine is snapshotted and restored halfway through. The simulated stream
//! carries corrections of its own (re-reported acceptances): the corrected stream leaves out
//! what they supersede too, and the random corrections leave those superseded events alone (a
//! chain has one head).

use std::collections::{BTreeMap, HashMap, HashSet};

mod common;
use common::{run, stream, Stream};

use rules::synth::Rng;
use rules::{Alert, AlertStatus, Rule};
use serde_json::Value;

/// alert_id → (rule, level, status, fired_at) after the last word about it, retracted ones
/// left out.
type OnRecord = BTreeMap<String, (String, String, String, String)>;

/// Run `lines` as `jiancha replay` does (restarting from a snapshot after `restart_at` lines
/// when given) and give the alerts on record at the end, as a store keeps them (each id's
/// highest revision).
fn on_record(s: &Stream, lines: &[String], restart_at: Option<usize>) -> OnRecord {
    record(run(s, lines, restart_at))
}

/// The alerts on record after `out`.
fn record(out: Vec<Alert>) -> OnRecord {
    // What a store shows: per id the line with the highest revision, of equal ones the later.
    let mut last: BTreeMap<String, Alert> = BTreeMap::new();
    for a in out {
        if last
            .get(&a.alert_id)
            .is_none_or(|b| a.revision >= b.revision)
        {
            last.insert(a.alert_id.clone(), a);
        }
    }
    // `data.corrected` judges the corrections themselves, which a corrected stream has none of;
    // `source.*` judge a feed's reports, and corrections are reports too.
    last.into_iter()
        .filter(|(_, a)| {
            a.status != AlertStatus::Retracted
                && a.rule != Rule::DataCorrected
                && !a.rule.as_str().starts_with("source.")
        })
        .map(|(id, a)| {
            let v = serde_json::to_value(&a).expect("alert");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (id, (s("rule"), s("level"), s("status"), s("fired_at")))
        })
        .collect()
}

fn differences(want: &OnRecord, got: &OnRecord) -> String {
    let mut out = Vec::new();
    for (id, w) in want {
        match got.get(id) {
            None => out.push(format!("missing {id} {w:?}")),
            Some(g) if g != w => out.push(format!("{id}: want {w:?}, got {g:?}")),
            _ => {}
        }
    }
    for (id, g) in got {
        if !want.contains_key(id) {
            out.push(format!("extra {id} {g:?}"));
        }
    }
    let n = out.len();
    out.truncate(8);
    format!("{n} differences: {}", out.join("; "))
}

fn fmt_time(t: i64) -> String {
    rules::Instant(t).to_string()
}

/// A later version of `ev`, reported at `now` (its time moved by up to a day either way but
/// not past `now`, or a completion's result changed), with a new id.
fn superseding(rng: &mut Rng, ev: &Value, version: u32, now: i64) -> Value {
    let mut v = ev.clone();
    let id = ev["event_id"].as_str().unwrap_or_default();
    let base = id.split(":v").next().unwrap_or(id);
    v["event_id"] = Value::from(format!("{base}:v{version}"));
    v["supersedes"] = Value::from(id);
    let t = rules::time::parse_rfc3339(ev["occurred_at"].as_str().unwrap_or_default())
        .expect("occurred_at")
        .0;
    match rng.below(3) {
        0 if v["kind"] == "case.completed" => {
            let results = ["approved", "denied", "returned"];
            v["result"] = Value::from(results[rng.below(3) as usize]);
        }
        0 => {}
        _ => {
            let shift = rng.below(2 * 86_400) as i64 - 86_400;
            v["occurred_at"] = Value::from(fmt_time((t + shift).min(now)));
        }
    }
    // Reported when it arrives.
    v["reported_at"] = Value::from(fmt_time(now));
    v
}

fn withdrawal(ev: &Value, at: i64) -> Value {
    let id = ev["event_id"].as_str().unwrap_or_default();
    let mut w = serde_json::json!({
        "event_id": format!("{id}:withdrawn"),
        "kind": "event.withdrawn",
        "occurred_at": fmt_time(at),
        "center_id": ev["center_id"],
        "region": ev["region"],
        "case_id": ev["case_id"],
        "withdraws": id,
    });
    if let Some(s) = ev.get("source") {
        w["source"] = s.clone();
    }
    w
}

/// The live stream (with corrections) and the corrected stream, built together.
struct Corrected {
    live: Vec<String>,
    replay: Vec<String>,
    superseded: usize,
    withdrawn: usize,
    chained: usize,
}

fn corrected(s: &Stream, seed: u64) -> Corrected {
    let mut rng = Rng::new(seed);
    // Slots of the live stream; `None` in `replay` marks an event the corrections removed.
    let mut live: Vec<(i64, Value)> = Vec::new();
    let mut keep: Vec<bool> = Vec::new();
    // (position in the original stream to arrive after, slot corrected)
    let mut pending: Vec<(usize, usize)> = Vec::new();
    let mut out = Corrected {
        live: Vec::new(),
        replay: Vec::new(),
        superseded: 0,
        withdrawn: 0,
        chained: 0,
    };
    let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    // What the simulator's own corrections supersede.
    let superseded_by_stream: HashSet<String> = s
        .lines
        .iter()
        .filter_map(|(_, l)| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some(field(&v, "supersedes")).filter(|id| !id.is_empty())
        })
        .collect();
    let correctable = |v: &Value| {
        let k = v["kind"].as_str().unwrap_or_default();
        let case_event =
            k.starts_with("case.") || (k == "fee.charged" && v.get("case_id").is_some());
        case_event && !superseded_by_stream.contains(&field(v, "event_id"))
    };
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    let n = s.lines.len();
    // Corrections and what they replace, in live order: (live slot, replaces slot or None).
    let mut order: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, (t, line)) in s.lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line).expect("json");
        let slot = live.len();
        live.push((*t, v.clone()));
        keep.push(true);
        slot_of.insert(field(&v, "event_id"), slot);
        let replaces = slot_of.get(&field(&v, "supersedes")).copied();
        if let Some(original) = replaces {
            keep[original] = false;
        }
        order.push((slot, replaces));
        if correctable(&v) && rng.below(12) == 0 {
            // Up to two days of stream later (the simulated hall sends ~1,000 events a day).
            pending.push((i + 1 + rng.below(2_000) as usize, slot));
        }
        pending.sort_by_key(|p| p.0);
        while pending.first().is_some_and(|p| p.0 <= i) {
            let (_, target) = pending.remove(0);
            let (_, ev) = live[target].clone();
            let now = *t;
            let slot = live.len();
            if rng.below(3) == 0 {
                live.push((now, withdrawal(&ev, now)));
                keep.push(false);
                keep[target] = false;
                order.push((slot, Some(target)));
                out.withdrawn += 1;
            } else {
                let version = 2 + out.superseded as u32;
                live.push((now, superseding(&mut rng, &ev, version, now)));
                keep.push(true);
                keep[target] = false;
                order.push((slot, Some(target)));
                out.superseded += 1;
                // Sometimes the new version is corrected again.
                if rng.below(4) == 0 && i + 1 < n {
                    pending.push((i + 1 + rng.below(500) as usize, slot));
                    pending.sort_by_key(|p| p.0);
                    out.chained += 1;
                }
            }
        }
    }
    for (slot, _) in &order {
        let (_, v) = &live[*slot];
        out.live.push(v.to_string());
        if keep[*slot] {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("supersedes");
            }
            out.replay.push(v.to_string());
        }
    }
    out
}

#[test]
fn corrected_live_equals_a_replay_of_the_corrected_stream() {
    for seed in [7, 19, 31] {
        let s = stream(seed, 8);
        let c = corrected(&s, seed);
        assert!(
            c.superseded > 50 && c.withdrawn > 25 && c.chained > 5,
            "seed {seed}: {} superseded, {} withdrawn, {} chained",
            c.superseded,
            c.withdrawn,
            c.chained
        );
        let want = on_record(&s, &c.replay, None);
        assert!(want.len() > 100, "seed {seed}: the hall raises alerts");
        let lines = run(&s, &c.live, None);
        let got = record(lines.clone());
        if got != want {
            let id = want
                .keys()
                .chain(got.keys())
                .find(|id| want.get(*id) != got.get(*id))
                .cloned()
                .unwrap_or_default();
            let of = |out: &[Alert]| {
                out.iter()
                    .filter(|a| a.alert_id == id)
                    .map(|a| {
                        format!(
                            "{} {:?} r{} {}",
                            a.fired_at, a.status, a.revision, a.message
                        )
                    })
                    .collect::<Vec<_>>()
            };
            panic!(
                "seed {seed}: live with corrections vs replay of the corrected stream: {}\n\
                 lines of {id}: live {:#?}\nreplay {:#?}",
                differences(&want, &got),
                of(&lines),
                of(&run(&s, &c.replay, None))
            );
        }
        // Corrections a day or more after the original's report are judged (data.corrected).
        let findings = lines
            .iter()
            .filter(|a| a.rule == Rule::DataCorrected)
            .count();
        assert!(
            findings > 10,
            "seed {seed}: {findings} data.corrected findings"
        );
        // The corrections change the record: without them the alerts differ.
        let uncorrected: Vec<String> = s.lines.iter().map(|(_, l)| l.clone()).collect();
        assert_ne!(on_record(&s, &uncorrected, None), want, "seed {seed}");
        // And across a restart from a snapshot taken halfway.
        let restarted = on_record(&s, &c.live, Some(c.live.len() / 2));
        assert!(
            restarted == want,
            "seed {seed}: restarted halfway: {}",
            differences(&want, &restarted)
        );
    }
}

//! Detection quality (issue: embedded mode, item 5): the simulator's events go through the rule
//! engine exactly as `jiancha replay` sends them, and the alerts that stay on record must be
//! exactly the ground truth: every injected violation found with the right rule, level and
//! subject (recall), and nothing raised that was not injected or derived from an injection
//! (precision). The per-rule table is printed (`--nocapture`) for docs/BENCHMARKS.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions};
use rules::{Alert, AlertStatus, Day, Engine, Policy, Reference};
use sim::{Profile, Rates, Simulator, World};

type Key = (String, String, String);

fn key(rule: &str, level: &str, subject: &serde_json::Value) -> Key {
    (rule.to_string(), level.to_string(), subject.to_string())
}

struct Run {
    expected: Vec<sim::Expected>,
    /// Alerts on record at the end (retracted ones removed), by key.
    raised: HashMap<Key, Alert>,
    events: usize,
    /// Events that supersede another (re-reported rows).
    corrections: usize,
}

fn run(profile: &Profile, rates: Rates, seed: u64, start: Day, days: u32) -> Run {
    let world = World::new(profile, seed);
    let reference =
        Reference::parse(&world.reference_files()).expect("simulated reference is valid");
    let policy = Policy::default();
    let opts = DecodeOptions::replay(&policy);
    let mut engine = Engine::new(Arc::new(reference), policy);
    let mut sim = Simulator::new(world, rates, seed, start, days);
    let mut out = Vec::new();
    let mut raised: HashMap<Key, Alert> = HashMap::new();
    let mut events = 0;
    let mut corrections = 0;
    let mut take = |out: &mut Vec<Alert>| {
        for a in out.drain(..) {
            let k = key(
                a.rule.as_str(),
                a.level.as_str(),
                &serde_json::Value::Object(a.subject.clone()),
            );
            if a.status == AlertStatus::Retracted {
                raised.remove(&k);
            } else {
                raised.insert(k, a);
            }
        }
    };
    for (_, line) in sim.by_ref() {
        events += 1;
        let ev = decode_str(&line, &opts).unwrap_or_else(|e| panic!("{e}: {line}"));
        corrections += usize::from(ev.supersedes.is_some());
        engine
            .on_event(&ev, &mut out)
            .unwrap_or_else(|e| panic!("{e}: {line}"));
        take(&mut out);
    }
    engine.advance_to(sim.end(), &mut out);
    take(&mut out);
    Run {
        expected: sim.truth(),
        raised,
        events,
        corrections,
    }
}

/// Per rule: (expected, raised, matched).
fn score(run: &Run) -> BTreeMap<String, (usize, usize, usize)> {
    let expected: HashSet<Key> = run
        .expected
        .iter()
        .map(|e| key(e.rule, e.level, &e.subject))
        .collect();
    let mut table: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for k in &expected {
        let row = table.entry(k.0.clone()).or_default();
        row.0 += 1;
        if run.raised.contains_key(k) {
            row.2 += 1;
        }
    }
    for k in run.raised.keys() {
        table.entry(k.0.clone()).or_default().1 += 1;
    }
    table
}

fn report(name: &str, run: &Run) -> bool {
    let table = score(run);
    println!(
        "\n{name}: {} events, {} expected alerts, {} raised",
        run.events,
        run.expected.len(),
        run.raised.len()
    );
    println!("| rule | injected/derived | raised | matched | precision | recall |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut perfect = true;
    for (rule, (exp, raised, matched)) in &table {
        let p = if *raised == 0 {
            1.0
        } else {
            *matched as f64 / *raised as f64
        };
        let r = if *exp == 0 {
            1.0
        } else {
            *matched as f64 / *exp as f64
        };
        perfect &= matched == exp && matched == raised;
        println!("| `{rule}` | {exp} | {raised} | {matched} | {p:.3} | {r:.3} |");
    }
    perfect
}

fn explain_mismatch(run: &Run) -> String {
    let expected: HashMap<Key, &sim::Expected> = run
        .expected
        .iter()
        .map(|e| (key(e.rule, e.level, &e.subject), e))
        .collect();
    let mut lines = Vec::new();
    for (k, e) in &expected {
        if !run.raised.contains_key(k) {
            lines.push(format!("missed: {k:?} at {} ({})", e.fired_at, e.cause));
        }
    }
    for (k, a) in &run.raised {
        if !expected.contains_key(k) {
            lines.push(format!(
                "not injected: {k:?} at {} staff {:?} evidence {}",
                a.fired_at, a.staff_id, a.evidence
            ));
        }
    }
    lines.sort();
    lines.truncate(30);
    lines.join("\n")
}

#[test]
fn a_county_hall_over_national_day_is_supervised_with_perfect_precision_and_recall() {
    // Eight weeks around 国庆 2026, with its 调休 working weekend.
    let start = Day::from_ymd(2026, 9, 14).expect("date");
    let run = run(&Profile::hall(), Rates::default(), 7, start, 56);
    let perfect = report("hall, 2026-09-14 + 56 days", &run);
    // Every family of injection actually happened, so the check is not vacuous.
    let causes: HashSet<&str> = run.expected.iter().map(|e| e.cause).collect();
    for cause in [
        "overdue",
        "back_office",
        "missing_stages",
        "outside_hall",
        "fee_irregular",
        "fee_without_case",
        "batch_entry",
        "long_wait",
        "complaint",
        "complaint_unresolved",
        "bad_rating",
        "unrectified",
        "empty_window",
        "retroactive_pause",
        "fabricated_stages",
        "placeholder_staff",
        "deadline_mismatch",
        "corrected_acceptance",
        "source_silent",
        "after_completion_feed",
        "late_feed",
        "derived",
    ] {
        assert!(causes.contains(cause), "nothing injected for {cause}");
    }
    assert!(perfect, "{}", explain_mismatch(&run));
}

#[test]
fn heavier_misconduct_rates_still_give_exact_detection() {
    // Ten times the default rates: count-based rules (ladder, repeated complaints, low
    // satisfaction) fire often, and must still match the independent count.
    let r = Rates::default();
    let rates = Rates {
        overdue: r.overdue * 5,
        complaint: r.complaint * 10,
        bad_rating: r.bad_rating * 5,
        empty_window: r.empty_window * 5,
        batch_entry: r.batch_entry * 10,
        ..r
    };
    let start = Day::from_ymd(2026, 12, 14).expect("date");
    let run = run(&Profile::hall(), rates, 11, start, 35);
    let perfect = report("hall at heavy rates, 2026-12-14 + 35 days", &run);
    let derived: HashSet<&str> = run
        .expected
        .iter()
        .filter(|e| e.cause == "derived")
        .map(|e| e.rule)
        .collect();
    for rule in [
        "discipline.ladder",
        "complaint.repeated_window",
        "evaluation.satisfaction_low",
    ] {
        assert!(derived.contains(rule), "no {rule} derived at heavy rates");
    }
    assert!(perfect, "{}", explain_mismatch(&run));
}

#[test]
fn a_city_of_seven_centres_is_supervised_exactly_too() {
    // 德阳-sized: about 6,000 cases a working day over seven centres, one working week.
    let start = Day::from_ymd(2026, 11, 2).expect("date");
    let run = run(&Profile::city(), Rates::default(), 3, start, 7);
    let perfect = report("city, 2026-11-02 + 7 days", &run);
    // About 30,000 cases, two in three of them 即办件 (five or six events each).
    assert!(run.events > 150_000, "a city week is busy: {}", run.events);
    assert!(perfect, "{}", explain_mismatch(&run));
}

/// The data-integrity manipulations (issue 21: the bridge's backdated 挂起, invented stages,
/// placeholder accounts, acceptances re-reported with another time, a feed silent for an
/// afternoon, a feed that reports only after completion) on three seeds: every finding of the
/// seven rules, and nothing else, on record.
#[test]
fn integrity_manipulations_are_detected_exactly_on_three_seeds() {
    let r = Rates::default();
    // Five times the default rates of the case-level manipulations, so each seed has several.
    let rates = Rates {
        retroactive_pause: r.retroactive_pause * 5,
        fabricated_stages: r.fabricated_stages * 5,
        placeholder_staff: r.placeholder_staff * 5,
        deadline_mismatch: r.deadline_mismatch * 5,
        corrected_acceptance: r.corrected_acceptance * 5,
        ..r
    };
    let rules = [
        "data.corrected",
        "data.deadline_mismatch",
        "hall.retroactive_pause",
        "hall.stage_fabricated",
        "data.placeholder_staff",
        "source.silent",
        "source.not_live",
    ];
    let start = Day::from_ymd(2026, 3, 2).expect("date");
    for seed in [1, 2, 3] {
        let run = run(&Profile::hall(), rates.clone(), seed, start, 21);
        let perfect = report(&format!("hall, seed {seed}, 2026-03-02 + 21 days"), &run);
        let table = score(&run);
        for rule in rules {
            let (expected, raised, matched) = table.get(rule).copied().unwrap_or_default();
            assert!(expected > 0, "seed {seed}: nothing injected for {rule}");
            assert_eq!(
                (raised, matched),
                (expected, expected),
                "seed {seed}: {rule} precision or recall below 1"
            );
        }
        // Both levels of data.corrected, and corrections within the grace that raise nothing.
        let corrected = |level: &str| {
            run.expected
                .iter()
                .filter(|e| e.rule == "data.corrected" && e.level == level)
                .count()
        };
        let (warning, yellow) = (corrected("warning"), corrected("yellow"));
        println!(
            "seed {seed}: {} corrected acceptances: {warning} data.corrected warnings, {yellow} yellow, the rest within the grace",
            run.corrections
        );
        assert!(
            warning > 0 && yellow > 0 && run.corrections > warning + yellow,
            "seed {seed}: {} corrections, {warning} warnings, {yellow} yellow",
            run.corrections
        );
        let silent = run
            .expected
            .iter()
            .any(|e| e.cause == "source_silent" && e.rule == "source.silent");
        assert!(
            silent,
            "seed {seed}: the silent afternoon raised no source.silent"
        );
        assert!(perfect, "seed {seed}: {}", explain_mismatch(&run));
    }
}

/// What `jiancha demo` streams (the hall at the default rates, its showcase on) shows every
/// data-integrity finding within its first simulated week, whatever weekday it starts on, and
/// exactly the ground truth.
#[test]
fn the_demo_stream_shows_every_integrity_finding_in_its_first_week() {
    for (seed, start) in [(1, "2026-03-02"), (2, "2026-03-06"), (3, "2026-06-10")] {
        let start = Day::parse(start).expect("date");
        let run = run(&Profile::hall(), Rates::default(), seed, start, 7);
        let perfect = report(&format!("demo hall, seed {seed}, {start} + 7 days"), &run);
        for rule in [
            "data.corrected",
            "data.deadline_mismatch",
            "hall.retroactive_pause",
            "hall.stage_fabricated",
            "data.placeholder_staff",
            "source.silent",
            "source.not_live",
        ] {
            assert!(
                run.raised.keys().any(|k| k.0 == rule),
                "seed {seed} from {start}: no {rule} in the first week"
            );
        }
        assert!(perfect, "seed {seed}: {}", explain_mismatch(&run));
    }
}

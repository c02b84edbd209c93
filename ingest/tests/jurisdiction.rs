//! Property: events of one region change nothing another region sees, whatever ids they carry.
//!
//! The synthetic workload has three regions (centres C0, C1, C2 in 430620–430622). The attacker
//! is a publisher of 430620: every event it sends has that region (the API refuses any other),
//! but it copies ids of the other regions' events — case ids, windows, staff, complaint and
//! rating ids, receipts, tickets, and event ids taken up to 200 events *ahead*, to pre-empt them
//! as duplicates — into events of every kind, sometimes naming their centre too. Run with and
//! without the attacker, the victims' alerts (and so their ladder steps), window tiles and 绩效
//! records must be byte-identical.
//!
//! Attack events carry event times no later than the stream's current time: one region's events
//! do move the engine's shared clock, which only makes other regions' due alerts come out
//! earlier in processing order (docs/RULES.md, "Jurisdiction"), a timing effect this test is not
//! about.

use std::sync::Arc;

use ingest::decode::{decode_str, DecodeOptions};
use rules::synth::{self, Rng, Workload};
use rules::{Engine, Instant, Policy, Reference};

const ATTACKER: &str = "430620";

/// What the victims (every region but the attacker's) can see.
#[derive(Debug, PartialEq)]
struct Seen {
    alerts: Vec<String>,
    facts: Vec<String>,
    activities: Vec<String>,
    tiles: Vec<String>,
    refused: usize,
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":\"");
    let start = line.find(&key)? + key.len();
    let end = start + line[start..].find('"')?;
    Some(&line[start..end])
}

fn run(reference: &Arc<Reference>, lines: &[String], until: Instant) -> Seen {
    let policy = Policy::default();
    let opts = DecodeOptions::replay(&policy);
    let mut engine = Engine::new(Arc::clone(reference), policy);
    engine.collect_facts(true);
    engine.collect_window_status(true);
    let mut alerts = Vec::new();
    let mut tiles = Vec::new();
    let mut refused = 0;
    let victim = |region: &str| region != ATTACKER;
    for line in lines {
        let ev = decode_str(line, &opts).expect("every generated line is valid");
        if engine.on_event(&ev, &mut alerts).is_err() {
            refused += 1;
        }
        tiles.extend(
            engine
                .drain_window_status()
                .into_iter()
                .filter(|w| victim(&w.region))
                .map(|w| serde_json::to_string(&w).expect("status")),
        );
    }
    engine.advance_to(until, &mut alerts);
    tiles.extend(
        engine
            .window_status()
            .into_iter()
            .filter(|w| victim(&w.region))
            .map(|w| serde_json::to_string(&w).expect("status")),
    );
    Seen {
        alerts: alerts
            .iter()
            .filter(|a| victim(&a.region))
            .map(|a| serde_json::to_string(a).expect("alert"))
            .collect(),
        facts: engine
            .drain_facts()
            .iter()
            .filter(|f| victim(&f.region))
            .map(|f| serde_json::to_string(f).expect("fact"))
            .collect(),
        activities: engine
            .drain_activities()
            .iter()
            .filter(|a| victim(&a.region))
            .map(|a| format!("{a:?}"))
            .collect(),
        tiles,
        refused,
    }
}

/// An attacker's event of `kind` at `at`, copying ids from `victim` (a victim's event line) and
/// `ahead` (a victim event still to come, whose id it pre-empts).
fn attack(rng: &mut Rng, n: usize, kind: &str, at: &str, victim: &str, ahead: &str) -> String {
    let event_id = if rng.percent(50) {
        field(ahead, "event_id").unwrap_or("x").to_string()
    } else {
        format!("atk-{n}")
    };
    // Half the time the attacker names the victim's centre too (refused: it is in another
    // region); otherwise its own, with the victim's window, staff, case and matter ids.
    let center = if rng.percent(30) {
        field(victim, "center_id").unwrap_or("C1")
    } else {
        "C0"
    };
    let window = field(victim, "window_id").unwrap_or("W001");
    let staff = field(victim, "staff_id").unwrap_or("S0001");
    let case = field(victim, "case_id").unwrap_or("430621-2026-00000001");
    let mut line = format!(
        r#"{{"event_id":"{event_id}","kind":"{kind}","occurred_at":"{at}","center_id":"{center}","region":"{ATTACKER}","case_id":"{case}""#
    );
    if rng.percent(70) {
        line += &format!(r#","window_id":"{window}""#);
    }
    if rng.percent(70) {
        line += &format!(r#","staff_id":"{staff}""#);
    }
    let item = format!("I{:03}", rng.below(synth::ITEMS as u64));
    let matter = |name: &str| field(victim, name).unwrap_or("K1").to_string();
    let extra = match kind {
        "case.submitted" => format!(r#","item_code":"{item}","channel":"hall""#),
        "case.accepted" => format!(r#","item_code":"{item}","channel":"online""#),
        "case.rejected" | "case.supplement_requested" | "case.suspended" | "case.resumed" => {
            r#","reason":"x""#.to_string()
        }
        "case.stage" => r#","stage":"review","result":"agree""#.to_string(),
        "case.transferred" => r#","to_department":"D01""#.to_string(),
        "case.special_started" => {
            r#","procedure":"hearing","limit_days":1,"limit_unit":"working""#.to_string()
        }
        "case.extended" => r#","extra_days":30"#.to_string(),
        "case.completed" => r#","result":"approved""#.to_string(),
        "fee.charged" => format!(
            r#","item_code":"{item}","receipt_no":"{}","amount_fen":1,"payer_id":"p""#,
            matter("receipt_no")
        ),
        "complaint.filed" => format!(
            r#","complaint_id":"{}","category":"integrity""#,
            matter("complaint_id")
        ),
        "complaint.resolved" => format!(
            r#","complaint_id":"{}","substantiated":true"#,
            matter("complaint_id")
        ),
        "evaluation.submitted" => {
            format!(
                r#","evaluation_id":"{}","score":1"#,
                matter("evaluation_id")
            )
        }
        "evaluation.rectified" => format!(r#","evaluation_id":"{}""#, matter("evaluation_id")),
        "staff.signed_in" | "staff.signed_out" => {
            format!(r#","window_id":"{window}","staff_id":"{staff}""#)
        }
        "window.opened" | "window.paused" | "window.closed" => {
            format!(r#","window_id":"{window}""#)
        }
        "queue.ticket_issued" | "queue.ticket_called" => format!(
            r#","window_id":"{window}","ticket_no":"{}""#,
            field(victim, "ticket_no").unwrap_or("T1")
        ),
        _ => String::new(),
    };
    line + &extra + "}"
}

const KINDS: &[&str] = &[
    "case.submitted",
    "case.accepted",
    "case.rejected",
    "case.supplement_requested",
    "case.supplement_received",
    "case.stage",
    "case.transferred",
    "case.special_started",
    "case.special_ended",
    "case.suspended",
    "case.resumed",
    "case.extended",
    "case.completed",
    "case.delivered",
    "case.archived",
    "fee.charged",
    "complaint.filed",
    "complaint.resolved",
    "evaluation.submitted",
    "evaluation.rectified",
    "staff.signed_in",
    "staff.signed_out",
    "window.opened",
    "window.paused",
    "window.closed",
    "queue.ticket_issued",
    "queue.ticket_called",
];

#[test]
fn another_regions_events_leave_alerts_tiles_ladder_and_metrics_byte_identical() {
    let reference = Arc::new(Reference::parse(&synth::reference_files()).expect("reference"));
    for seed in [1u64, 2, 3] {
        let mut workload = Workload::new(seed, 600, 3_000);
        let mut honest = Vec::new();
        let push = |text: &str, to: &mut Vec<String>| {
            to.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
        };
        workload.warm_up(600, |l| push(l, &mut honest));
        let mut line = String::new();
        for _ in 0..30_000 {
            line.clear();
            workload.next_line(&mut line);
            push(&line, &mut honest);
        }
        let until = workload.now().plus_secs(40 * 86_400);

        let mut rng = Rng::new(seed ^ 0xa77a);
        let mut attacked = Vec::with_capacity(honest.len() * 2);
        let mut attacks = 0;
        let victims: Vec<usize> = (0..honest.len())
            .filter(|&i| field(&honest[i], "region") != Some(ATTACKER))
            .collect();
        for (i, line) in honest.iter().enumerate() {
            if i > 0 && rng.percent(40) {
                // A victim event seen so far, and one still to come.
                let seen = victims.partition_point(|&v| v < i);
                let past = &honest[victims[rng.below(seen.max(1) as u64) as usize]];
                let next = victims[(seen + rng.below(200) as usize).min(victims.len() - 1)];
                let at = field(&honest[i - 1], "occurred_at").expect("time");
                let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
                attacked.push(attack(&mut rng, i, kind, at, past, &honest[next]));
                attacks += 1;
            }
            attacked.push(line.clone());
        }

        let clean = run(&reference, &honest, until);
        let under_attack = run(&reference, &attacked, until);
        assert_eq!(
            clean.refused, 0,
            "seed {seed}: the honest stream is all valid"
        );
        assert!(
            under_attack.refused > attacks / 10,
            "seed {seed}: the attack names other jurisdictions' ids ({} of {attacks} refused)",
            under_attack.refused
        );
        assert!(
            clean.alerts.len() > 100 && clean.facts.len() > 100 && !clean.tiles.is_empty(),
            "seed {seed}: the victims have something to lose ({} alerts, {} facts)",
            clean.alerts.len(),
            clean.facts.len()
        );
        let ladder = clean
            .alerts
            .iter()
            .filter(|a| a.contains("discipline.ladder"))
            .count();
        assert!(
            ladder > 0,
            "seed {seed}: the victims' staff climb the ladder"
        );
        for (what, a, b) in [
            (
                "alerts (and ladder steps)",
                &clean.alerts,
                &under_attack.alerts,
            ),
            ("绩效 case facts", &clean.facts, &under_attack.facts),
            (
                "绩效 activities",
                &clean.activities,
                &under_attack.activities,
            ),
            ("window tiles", &clean.tiles, &under_attack.tiles),
        ] {
            if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
                panic!(
                    "seed {seed}: the victims' {what} differ at {i} of {}/{}:\n without: {:?}\n with:    {:?}",
                    a.len(),
                    b.len(),
                    a.get(i),
                    b.get(i)
                );
            }
        }
    }
}

//! Deterministic synthetic event streams for benchmarks and load tests.
//!
//! Not the simulator (which models a hall's day with ground truth); this only produces a
//! realistic *mix* at any scale, fast, as NDJSON lines in `jiancha.event.v1`:
//! - [`Workload::warm_up`]: `open_cases` cases accepted over the preceding working days, so the
//!   engine holds that many open cases;
//! - [`Workload::next_line`]: the steady state after it — each step either moves a random open
//!   case one step through its lifecycle (stages, 补正, suspensions, special procedures,
//!   extensions, completion) or emits a hall event (queue tickets, fees, evaluations, sign-ins),
//!   and every completed case is replaced by a newly accepted one, so the number of open cases
//!   stays constant while time advances and deadlines fire.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::reference::ReferenceFiles;
use crate::time::{parse_rfc3339, Instant};

/// splitmix64: small, fast, good enough for workloads, and the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Number of items in the synthetic catalogue.
pub const ITEMS: usize = 60;
/// Number of windows (and staff, one per window): a province's halls, so that the per-window
/// rates (tickets, ratings, complaints) stay those of a real window at province volume.
pub const WINDOWS: usize = 2000;

/// The cluster tests' stream: a warm-up of 400 acceptances, then the steady mix of every rule
/// family (seed 11, 400 open cases, 700 events a day) up to `events` lines, each reported when
/// it happened ([`with_reported_at`]) and every completion's next acceptance on a line of its
/// own; with [`with_corrections`] applied. Also the workload's clock at its end.
pub fn corrected_stream(events: usize) -> (Vec<String>, crate::Instant) {
    let mut workload = Workload::new(11, 400, 700);
    let mut lines = Vec::with_capacity(events + 16);
    workload.warm_up(400, |l| lines.push(with_reported_at(l)));
    let mut line = String::new();
    while lines.len() < events {
        line.clear();
        workload.next_line(&mut line);
        lines.extend(line.lines().map(with_reported_at));
    }
    (with_corrections(lines), workload.now())
}

/// The stream with corrections (SPEC §3), as a feed re-reports and deletes rows: every 40th
/// case event is, 120 events later, either superseded by a version an hour earlier or
/// withdrawn. Replay and cluster mode must give the same alerts for it (and across restarts).
/// Panics on a line that is not JSON: it is for the synthetic streams of tests and benchmarks.
pub fn with_corrections(lines: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len() + lines.len() / 30);
    let mut due: Vec<(usize, serde_json::Value)> = Vec::new();
    let mut n = 0;
    for (i, line) in lines.into_iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&line).expect("synthetic JSON");
        out.push(line);
        if v["kind"].as_str().is_some_and(|k| k.starts_with("case.")) {
            n += 1;
            if n % 40 == 0 {
                due.push((i + 120, v.clone()));
            }
        }
        let now = v["reported_at"].as_str().unwrap_or_default().to_string();
        while due.first().is_some_and(|(at, _)| *at <= i) {
            let (_, original) = due.remove(0);
            let id = original["event_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let correction = if n % 3 == 0 {
                serde_json::json!({
                    "event_id": format!("{id}:withdrawn"),
                    "kind": "event.withdrawn",
                    "occurred_at": now,
                    "reported_at": now,
                    "center_id": original["center_id"],
                    "region": original["region"],
                    "case_id": original["case_id"],
                    "withdraws": id,
                })
            } else {
                let mut v = original.clone();
                let t = crate::time::parse_rfc3339(v["occurred_at"].as_str().unwrap_or_default())
                    .expect("occurred_at");
                v["event_id"] = serde_json::Value::from(format!("{id}:v2"));
                v["supersedes"] = serde_json::Value::from(id);
                v["occurred_at"] = serde_json::Value::from(crate::Instant(t.0 - 3600).to_string());
                v["reported_at"] = serde_json::Value::from(now.clone());
                v
            };
            n += 1;
            out.push(correction.to_string());
        }
    }
    out
}

/// `line` with a `reported_at` equal to its `occurred_at`, as sent by a window system that
/// reports at once: lateness is then judged the same by `replay` and by live ingest, whose
/// receipt time (a Kafka timestamp, the HTTP arrival) may be long after a synthetic history.
pub fn with_reported_at(line: &str) -> String {
    let Some(at) = line.find(r#""occurred_at":""#) else {
        return line.to_string();
    };
    let value_start = at + r#""occurred_at":""#.len();
    let value_end = value_start + line[value_start..].find('"').unwrap_or(0);
    format!(
        r#"{}"reported_at":"{}",{}"#,
        &line[..at],
        &line[value_start..value_end],
        &line[at..]
    )
}

/// Reference data matching the workload: a catalogue with limits of 0–20 working or natural
/// days (stage limits on most items) and one staff member per window.
pub fn reference_files() -> ReferenceFiles {
    let mut items = String::from("item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n");
    for i in 0..ITEMS {
        let promised = [1, 3, 5, 7, 10, 15, 20][i % 7];
        let unit = if i % 5 == 4 { "natural" } else { "working" };
        let (kind, promised_cell) = if i % 10 == 0 {
            ("instant", String::new())
        } else {
            ("promised", promised.to_string())
        };
        let punit = if promised_cell.is_empty() { "" } else { unit };
        let stages = if i % 3 == 0 { ",," } else { "1,1,1" };
        let _ = writeln!(
            items,
            "I{i:03},事项{i},D{:02},{kind},{},working,{promised_cell},{punit},{stages},true,hall;online,{},accept",
            i % 20,
            promised * 2 + 5,
            if i % 4 == 0 { String::new() } else { (i * 100).to_string() }
        );
    }
    let mut windows = String::from("window_id,center_id,region,department,in_hall\n");
    let mut staff = String::from("staff_id,name,department,window_id,in_hall\n");
    for w in 0..WINDOWS {
        let _ = writeln!(
            windows,
            "W{w:03},C{},43062{},D{:02},true",
            w % 3,
            w % 3,
            w % 20
        );
        let _ = writeln!(staff, "S{w:04},员工{w},D{:02},W{w:03},true", w % 20);
    }
    ReferenceFiles {
        items: Some(("synth/items.csv".into(), items)),
        windows: Some(("synth/windows.csv".into(), windows)),
        staff: Some(("synth/staff.csv".into(), staff)),
        ..ReferenceFiles::default()
    }
}

const UNDERTAKE: (&str, &str) = ("case.stage", r#","stage":"undertake","result":"agree""#);
const REVIEW: (&str, &str) = ("case.stage", r#","stage":"review","result":"agree""#);
const APPROVE: (&str, &str) = ("case.stage", r#","stage":"approve","result":"agree""#);
const COMPLETE: (&str, &str) = ("case.completed", r#","result":"approved""#);
const PLAIN: &[(&str, &str)] = &[UNDERTAKE, REVIEW, APPROVE, COMPLETE];

/// What happens to a case after its acceptance, one step per event. Most cases go straight
/// through the stages; four in twelve take a detour that pauses or extends its clock.
const LIFECYCLES: &[&[(&str, &str)]] = &[
    PLAIN,
    PLAIN,
    &[
        ("case.supplement_requested", r#","reason":"材料不全""#),
        ("case.supplement_received", ""),
        UNDERTAKE,
        REVIEW,
        APPROVE,
        COMPLETE,
    ],
    PLAIN,
    &[
        UNDERTAKE,
        ("case.suspended", r#","reason":"申请人要求""#),
        ("case.resumed", ""),
        REVIEW,
        APPROVE,
        COMPLETE,
    ],
    PLAIN,
    &[
        UNDERTAKE,
        (
            "case.special_started",
            r#","procedure":"inspection","limit_days":5,"limit_unit":"working""#,
        ),
        ("case.special_ended", ""),
        REVIEW,
        APPROVE,
        COMPLETE,
    ],
    PLAIN,
    &[
        UNDERTAKE,
        ("case.extended", r#","extra_days":5"#),
        REVIEW,
        APPROVE,
        COMPLETE,
    ],
    PLAIN,
    PLAIN,
    PLAIN,
];

/// The 办件编号 of the workload's n-th case (the region of the window that accepts it).
fn case_id(n: u64) -> String {
    format!("43062{}-2026-{n:08}", n % WINDOWS as u64 % 3)
}

/// An open case of the workload and how far along its lifecycle it is.
#[derive(Debug, Clone, Copy)]
struct OpenCase {
    n: u64,
    step: u8,
    item: u16,
}

/// The generator. See the module documentation.
#[derive(Debug, Clone)]
pub struct Workload {
    rng: Rng,
    open: Vec<OpenCase>,
    /// Bad evaluations not yet rectified.
    /// Bad ratings not yet rectified: (event number, window).
    bad: Vec<(u64, u64)>,
    /// Complaints not yet resolved.
    /// Complaints not yet resolved: (event number, window).
    complaints: Vec<(u64, u64)>,
    /// Queue tickets issued and not yet called, oldest first: (ticket number, window).
    waiting: VecDeque<(u64, u64)>,
    next_case: u64,
    next_event: u64,
    /// Current event time.
    now: Instant,
    /// Seconds between consecutive steady-state events.
    step_secs: f64,
    carry: f64,
}

/// First instant of the warm-up period.
const START: &str = "2026-03-02T09:00:00+08:00";

impl Workload {
    /// A workload that will hold `open_cases` open; `events_per_day` sets how fast time runs in
    /// the steady state (a province: a few million a day).
    pub fn new(seed: u64, open_cases: usize, events_per_day: u64) -> Workload {
        Workload {
            rng: Rng::new(seed),
            open: Vec::with_capacity(open_cases),
            bad: Vec::new(),
            complaints: Vec::new(),
            waiting: VecDeque::new(),
            next_case: 0,
            next_event: 0,
            now: parse_rfc3339(START).unwrap_or_default(),
            step_secs: 86_400.0 / events_per_day.max(1) as f64,
            carry: 0.0,
        }
    }

    /// The current event time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The warm-up: `open_cases` acceptances spread over five days, as NDJSON lines.
    pub fn warm_up(&mut self, open_cases: usize, mut sink: impl FnMut(&str)) {
        let span = 5.0 * 86_400.0 / open_cases.max(1) as f64;
        let mut line = String::with_capacity(512);
        for i in 0..open_cases {
            let t = Instant(self.now.0 + (i as f64 * span) as i64);
            let item = self.rng.below(ITEMS as u64) as u16;
            let case = self.new_case(item);
            line.clear();
            self.case_line(&mut line, t, case, "case.accepted", r#","channel":"hall""#);
            sink(&line);
        }
        self.now = Instant(self.now.0 + 5 * 86_400);
    }

    fn new_case(&mut self, item: u16) -> OpenCase {
        let case = OpenCase {
            n: self.next_case,
            step: 0,
            item,
        };
        self.next_case += 1;
        self.open.push(case);
        case
    }

    fn tick(&mut self) -> Instant {
        self.carry += self.step_secs;
        let whole = self.carry as i64;
        self.carry -= whole as f64;
        self.now = Instant(self.now.0 + whole);
        self.now
    }

    fn header(&mut self, line: &mut String, t: Instant, kind: &str, window: u64) {
        self.next_event += 1;
        let _ = write!(
            line,
            r#"{{"event_id":"e{}","kind":"{kind}","occurred_at":"{t}","center_id":"C{}","region":"43062{}","department":"D{:02}","window_id":"W{window:03}","staff_id":"S{window:04}""#,
            self.next_event,
            window % 3,
            window % 3,
            window % 20,
        );
    }

    fn case_line(
        &mut self,
        line: &mut String,
        t: Instant,
        case: OpenCase,
        kind: &str,
        extra: &str,
    ) {
        let window = case.n % WINDOWS as u64;
        self.header(line, t, kind, window);
        let _ = write!(
            line,
            r#","case_id":"{}","item_code":"I{:03}"{extra}}}"#,
            case_id(case.n),
            case.item
        );
    }

    /// Append the next steady-state event (one NDJSON line, no newline) to `line`.
    pub fn next_line(&mut self, line: &mut String) {
        let t = self.tick();
        let roll = self.rng.below(100);
        if roll < 25 || self.open.is_empty() {
            // Hall events: queue tickets, evaluations (one in ten bad, most later rectified),
            // fees for open cases (以票管审: mostly matched), complaints and their resolution.
            // A follow-up (rectification, resolution, a case's fee) happens at the window, and
            // so the centre, of what it follows up: one centre's story stays in one partition.
            let mut window = self.rng.below(WINDOWS as u64);
            let n = self.next_event;
            let (kind, extra) = match self.rng.below(25) {
                // Calls slightly outpace issues, so the queue stays short as in a hall that
                // keeps up; one ticket in 200 is abandoned and waits too long.
                6..=12 if !self.waiting.is_empty() => {
                    let (ticket, at) = self.waiting.pop_front().unwrap_or((n, window));
                    window = at;
                    (
                        "queue.ticket_called",
                        format!(r#","ticket_no":"A{ticket}""#),
                    )
                }
                0..=12 => {
                    if self.rng.below(200) != 0 {
                        self.waiting.push_back((n, window));
                    }
                    ("queue.ticket_issued", format!(r#","ticket_no":"A{n}""#))
                }
                13..=17 => {
                    let score = if self.rng.percent(10) {
                        self.bad.push((n, window));
                        1 + self.rng.below(2)
                    } else {
                        3 + self.rng.below(3)
                    };
                    (
                        "evaluation.submitted",
                        format!(r#","evaluation_id":"V{n}","score":{score}"#),
                    )
                }
                18 if !self.bad.is_empty() => {
                    let (id, at) = self
                        .bad
                        .swap_remove(self.rng.below(self.bad.len() as u64) as usize);
                    window = at;
                    (
                        "evaluation.rectified",
                        format!(r#","evaluation_id":"V{id}""#),
                    )
                }
                18..=22 => {
                    // 以票管审: most fees are for an open, hall-accepted case at the standard
                    // amount; one in twenty is off-standard and one in twenty names no case.
                    let case = self.open[self.rng.below(self.open.len() as u64) as usize];
                    let mut amount = if case.item.is_multiple_of(4) {
                        0
                    } else {
                        u64::from(case.item) * 100
                    };
                    let roll = self.rng.below(20);
                    if roll == 0 {
                        amount += 500;
                    }
                    let case_field = if roll == 1 {
                        String::new()
                    } else {
                        window = case.n % WINDOWS as u64;
                        format!(r#","case_id":"{}""#, case_id(case.n))
                    };
                    let extra = format!(
                        r#"{case_field},"item_code":"I{:03}","receipt_no":"R{n}","amount_fen":{amount},"payer_id":"P{}""#,
                        case.item,
                        self.rng.below(1_000_000)
                    );
                    ("fee.charged", extra)
                }
                23 => {
                    self.complaints.push((n, window));
                    let category = ["attitude", "efficiency", "fee", "integrity", "other"]
                        [self.rng.below(5) as usize];
                    (
                        "complaint.filed",
                        format!(r#","complaint_id":"K{n}","category":"{category}""#),
                    )
                }
                _ if !self.complaints.is_empty() => {
                    let (id, at) = self.complaints.swap_remove(0);
                    window = at;
                    let substantiated = self.rng.percent(30);
                    (
                        "complaint.resolved",
                        format!(r#","complaint_id":"K{id}","substantiated":{substantiated}"#),
                    )
                }
                _ => {
                    self.waiting.push_back((n, window));
                    ("queue.ticket_issued", format!(r#","ticket_no":"A{n}""#))
                }
            };
            self.header(line, t, kind, window);
            line.push_str(&extra);
            line.push('}');
            return;
        }
        // The older of two random open cases moves: offices work roughly oldest first, so
        // cases finish within their limits as most real ones do (a uniform pick leaves a long
        // tail of forgotten cases, and ten times the overdue alerts of a real province).
        let (a, b) = (
            self.rng.below(self.open.len() as u64) as usize,
            self.rng.below(self.open.len() as u64) as usize,
        );
        let idx = if self.open[a].n <= self.open[b].n {
            a
        } else {
            b
        };
        let case = self.open[idx];
        self.open[idx].step += 1;
        let path = LIFECYCLES[(case.n % LIFECYCLES.len() as u64) as usize];
        let (kind, extra) = path[usize::from(case.step).min(path.len() - 1)];
        self.case_line(line, t, case, kind, extra);
        if kind == "case.completed" {
            self.open.swap_remove(idx);
            let item = self.rng.below(ITEMS as u64) as u16;
            let fresh = self.new_case(item);
            line.push('\n');
            self.case_line(line, t, fresh, "case.accepted", r#","channel":"hall""#);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_parseable_reference() {
        let r = crate::Reference::parse(&reference_files()).expect("synthetic reference is valid");
        assert_eq!(r.items().len(), ITEMS);
        let mut a = Workload::new(7, 100, 100_000);
        let mut b = Workload::new(7, 100, 100_000);
        let (mut la, mut lb) = (Vec::new(), Vec::new());
        a.warm_up(100, |l| la.push(l.to_string()));
        b.warm_up(100, |l| lb.push(l.to_string()));
        for _ in 0..1000 {
            let (mut x, mut y) = (String::new(), String::new());
            a.next_line(&mut x);
            b.next_line(&mut y);
            la.push(x);
            lb.push(y);
        }
        assert_eq!(la, lb);
        assert!(la.iter().all(|l| l.starts_with('{') && l.ends_with('}')));
    }
}

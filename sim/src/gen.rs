//! The day-by-day generator: each working day opens the windows, brings visitors by the hour,
//! runs their cases to completion over the following days, and injects misconduct at the
//! configured rates, noting in [`Truth`] what each injection must raise.
//!
//! Normal behaviour raises nothing under the default policy: windows are staffed before they
//! open and until they close; tickets are called within 20 minutes; cases are accepted in the
//! hall minutes after submission, every stage finishes within its limit and the case finishes
//! before the last working day of its promised limit (so not even a 预警); fees name a
//! hall-accepted case and charge the catalogue amount; complaints are resolved and bad ratings
//! rectified within four working days; every event is reported within seconds.
//!
//! Every event names its feed (`source`): `<centre>:qms` for the queue and attendance,
//! `<centre>:approval` for cases, fees, complaints and ratings. The data-integrity
//! manipulations (source-formats.md §7) are injected too: the bridge's backdated 挂起, stages
//! invented at the completion time, placeholder accounts, acceptances re-reported with another
//! time (a new version of the 受理 row, `supersedes` naming the first), the first centre's
//! approval feed silent for an afternoon of the second working day, and one department of the
//! first centre whose cases reach jiancha only once completed (its own feed,
//! `<centre>:D03-bridge`). Events reported late are delivered in report order, as a feed sends
//! them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rules::synth::Rng;
use rules::{Calendar, Day, Instant};

use serde_json::json;

use crate::truth::{subject, Expected, Truth};

/// The placeholder account the simulator's placeholder acceptances use.
const PLACEHOLDER: &str = "000000";
use crate::world::{department_code, World};

/// Misconduct rates, in per mille (‰) of what they apply to.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Promised cases finished after their promised deadline (预警 + 黄牌).
    pub overdue: u64,
    /// Delegated cases whose approval is done by back-office staff (前店后场).
    pub back_office: u64,
    /// Promised cases approved with no stage recorded (审批未在线办理).
    pub missing_stages: u64,
    /// Cases accepted through a channel the item does not allow.
    pub outside_hall: u64,
    /// Fees charged at an amount other than the catalogue's.
    pub fee_irregular: u64,
    /// Window-days with a fee charged for no case (以票管审).
    pub fee_without_case: u64,
    /// Window-days with a burst of back-filled cases (事后补录).
    pub batch_entry: u64,
    /// Tickets left waiting over 30 minutes.
    pub long_wait: u64,
    /// Completed cases followed by a complaint.
    pub complaint: u64,
    /// Complaints never resolved.
    pub complaint_unresolved: u64,
    /// Complaints found substantiated (有效投诉).
    pub substantiated: u64,
    /// Completed cases rated (好差评).
    pub evaluation: u64,
    /// Ratings that are bad (score 1–2).
    pub bad_rating: u64,
    /// Bad ratings never rectified.
    pub unrectified: u64,
    /// Window-days on which the staff member leaves the window for 30–60 minutes (空岗).
    pub empty_window: u64,
    /// Promised cases finished late behind the bridge's backdated 挂起 (a special procedure from
    /// the acceptance, posted just before the 办结: source-formats.md §7).
    pub retroactive_pause: u64,
    /// Promised cases whose stages are invented at the completion time and posted after it.
    pub fabricated_stages: u64,
    /// Cases accepted by the placeholder account `000000`.
    pub placeholder_staff: u64,
    /// Promised cases whose acceptance carries a `source_deadline` one day earlier than the
    /// official D (the source's clock was set back).
    pub deadline_mismatch: u64,
    /// Promised cases (a limit of 4 days or more) whose 受理 row is re-reported with another
    /// time, before the case is finished: a third within the 24-hour grace (nothing to see), a
    /// third two working days later moved by minutes (`data.corrected` warning), a third moved
    /// to the next working day (yellow). The case runs on the corrected time.
    pub corrected_acceptance: u64,
    /// The first eligible cases carry one of each case-level manipulation (backdated 挂起 on a
    /// short limit, invented stages, a placeholder acceptance, a wrong source deadline, an
    /// acceptance moved to the next day), so a demo shows every finding within its first days.
    pub showcase: bool,
    /// The first centre's approval feed sends nothing from 13:30 to 16:27 of the second working
    /// day (then everything held, in three minutes).
    pub silent_afternoon: bool,
    /// The first centre's department D03 reports each case only once it is completed.
    pub after_completion_feed: bool,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            overdue: 15,
            back_office: 10,
            missing_stages: 5,
            outside_hall: 3,
            fee_irregular: 10,
            fee_without_case: 10,
            batch_entry: 3,
            long_wait: 20,
            complaint: 5,
            complaint_unresolved: 200,
            substantiated: 300,
            evaluation: 400,
            bad_rating: 20,
            unrectified: 250,
            empty_window: 20,
            retroactive_pause: 3,
            fabricated_stages: 3,
            placeholder_staff: 3,
            deadline_mismatch: 3,
            corrected_acceptance: 5,
            showcase: true,
            silent_afternoon: true,
            after_completion_feed: true,
        }
    }
}

/// Office-time segments and the relative number of arrivals in each (minutes since midnight):
/// a morning peak from 9:30 to 11:00, a quieter hour before lunch, nobody at lunch (12:00–13:30),
/// an afternoon peak from 14:30 to 16:00, a trickle before closing.
const ARRIVALS: &[(u32, u32, u64)] = &[
    (540, 570, 6),
    (570, 660, 30),
    (660, 720, 10),
    (810, 870, 8),
    (870, 960, 24),
    (960, 1020, 7),
];

/// One case's events before they are queued: (time, kind, extra fields, staff).
type Step = (Instant, &'static str, String, Option<String>);

/// The department (index) of the first centre whose feed reports only after completion.
const BRIDGE_DEPARTMENT: usize = 2;

/// How a re-reported 受理 row changes the acceptance ([`Rates::corrected_acceptance`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fix {
    /// Within the grace: the time moved minutes later, re-reported within hours (no finding).
    Prompt,
    /// After the grace: moved a little earlier (towards the submission), re-reported two
    /// working days later (`data.corrected` warning; that report is 迟报 too).
    Late,
    /// After the grace: moved to the next working day (a day or more later, so the clock starts
    /// a day late), re-reported minutes after the new time (`data.corrected` yellow).
    Redated,
}

impl Fix {
    /// The `data.corrected` level the correction must raise (none within the grace).
    fn level(self) -> Option<&'static str> {
        match self {
            Fix::Prompt => None,
            Fix::Late => Some("warning"),
            Fix::Redated => Some("yellow"),
        }
    }

    /// The working day after the (corrected) start day the case finishes on, given the one
    /// drawn (`k`) and the last one before the deadline day D (`room`): after the correction is
    /// reported; a redated case on D itself, so its 预警 stands and no 黄牌 — by the time
    /// first reported, D was the day before and the case is late.
    fn finish_day(self, k: u32, room: u32) -> u32 {
        match self {
            Fix::Prompt => k.max(1).min(room),
            Fix::Late => k.max(3).min(room),
            Fix::Redated => room + 1,
        }
    }
}

/// How an event is sent: its report time and position in the stream.
#[derive(Clone, Copy)]
enum Send {
    /// Within seconds of occurring, in time order.
    Live,
    /// At this report time, in report order.
    At(Instant),
}

/// The generator: an iterator of `(occurred_at, NDJSON line)` in time order.
pub struct Simulator {
    world: World,
    cal: Calendar,
    rates: Rates,
    rng: Rng,
    next_day: Day,
    end_day: Day,
    heap: BinaryHeap<Reverse<(i64, u64, String)>>,
    order: u64,
    serial: u64,
    tickets: Vec<u32>,
    truth: Truth,
    /// The first working day of the period was seen (the silent afternoon is the second).
    working_days_seen: u32,
    /// The day of the silent afternoon, when it is on.
    silent: Option<Day>,
    /// Showcase manipulations still to place: backdated 挂起, invented stages, placeholder,
    /// source deadline, acceptance moved to the next day.
    showcase: [bool; 5],
    /// The case whose acceptance carries a wrong `source_deadline` (being queued).
    mismatch_case: Option<String>,
    /// The case whose acceptance is re-reported (being queued), and the `data.corrected` level
    /// that must follow.
    corrected_case: Option<(String, Option<&'static str>)>,
}

fn at(day: Day, minute: u32) -> Instant {
    day.start().plus_secs(i64::from(minute) * 60)
}

impl Simulator {
    /// Simulate `days` calendar days from `start`.
    pub fn new(world: World, rates: Rates, seed: u64, start: Day, days: u32) -> Simulator {
        let centres = world.centres.len();
        let showcase = rates.showcase;
        Simulator {
            world,
            cal: Calendar::official(),
            rates,
            rng: Rng::new(seed),
            next_day: start,
            end_day: start.plus(days),
            heap: BinaryHeap::new(),
            order: 0,
            serial: 0,
            tickets: vec![0; centres],
            truth: Truth::default(),
            working_days_seen: 0,
            silent: None,
            showcase: [showcase; 5],
            mismatch_case: None,
            corrected_case: None,
        }
    }

    /// The simulated world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The end of the simulated period (00:00 after its last day): replay with `--until` this.
    pub fn end(&self) -> Instant {
        self.end_day.start()
    }

    /// The ground truth up to the end of the period (call after the last event).
    pub fn truth(self) -> Vec<Expected> {
        let end = self.end();
        self.truth.finish(end, &self.cal)
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.rng.below(1000) < per_mille
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.rng.below((hi - lo).max(1) as u64) as i64
    }

    fn minute_in(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.rng.below(u64::from(hi - lo)) as u32
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// Queue one event, live, on its kind's feed; returns its place in the output order.
    fn emit(&mut self, t: Instant, centre: usize, kind: &str, extra: &str) -> u64 {
        let feed = if kind.starts_with("queue.")
            || kind.starts_with("staff.")
            || kind.starts_with("window.")
        {
            "qms"
        } else {
            "approval"
        };
        self.emit_on(t, centre, kind, extra, feed, Send::Live).2
    }

    /// Queue one event on feed `feed` of its centre: (event id, report time, output order,
    /// delivered within the period).
    /// The first centre's approval feed holds what happens during its silent afternoon and
    /// sends it at 16:30, one event a second.
    fn emit_on(
        &mut self,
        t: Instant,
        centre: usize,
        kind: &str,
        extra: &str,
        feed: &str,
        send: Send,
    ) -> (String, Instant, u64, bool) {
        let n = self.next_serial();
        let mut reported = match send {
            Send::Live => t.plus_secs(self.rng.below(20) as i64),
            Send::At(r) => r,
        };
        let sent_at = reported;
        reported = self.held(centre, feed, reported);
        let held = reported != sent_at;
        let c = &self.world.centres[centre];
        let source = format!("{}:{feed}", c.center_id);
        let id = format!("{}-{n}", c.center_id);
        let line = format!(
            r#"{{"event_id":"{id}","kind":"{kind}","occurred_at":"{t}","reported_at":"{reported}","center_id":"{}","region":"{}","source":"{source}"{extra}}}"#,
            c.center_id, c.region
        );
        let region = c.region.clone();
        let key = match (send, held) {
            (Send::Live, false) => t,
            _ => reported,
        };
        // What is sent after the period is never delivered: it raises nothing.
        let delivered = self.delivered(key);
        if delivered {
            self.truth.report(&region, &source, reported);
        }
        self.order += 1;
        self.heap.push(Reverse((key.0, self.order, line)));
        (id, reported, self.order, delivered)
    }

    /// The report time of something sent at `reported` on `feed` of `centre`: the first
    /// centre's approval feed holds what it would send from 13:30 to 16:30 of its silent day
    /// and sends it from 16:27, in order (a second per minute held).
    fn held(&self, centre: usize, feed: &str, reported: Instant) -> Instant {
        match self.silent {
            Some(d) if centre == 0 && feed == "approval" && reported.day() == d => {
                let since = reported.0 - at(d, 810).0;
                if (0..3 * 3600).contains(&since) {
                    // Released in the last three minutes of the silence, before anything that
                    // happens after it: a second per minute held, in order.
                    at(d, 987).plus_secs(since / 60)
                } else {
                    reported
                }
            }
            _ => reported,
        }
    }

    /// Whether an event sent at `key` is delivered within the period.
    fn delivered(&self, key: Instant) -> bool {
        key < self.end()
    }

    /// Make every working day until `day` (exclusive).
    fn generate(&mut self, day: Day) {
        if !self.cal.is_working(day) {
            return;
        }
        self.working_days_seen += 1;
        if self.working_days_seen == 2 && self.rates.silent_afternoon {
            self.silent = Some(day);
            self.truth.silent_afternoon(day);
        }
        self.tickets.iter_mut().for_each(|t| *t = 0);
        for w in 0..self.world.windows.len() {
            self.window_day(day, w);
        }
        let n = u64::from(self.world.cases_per_day);
        let n = n * 9 / 10 + self.rng.below(n / 5 + 1);
        let windows = self.world.windows.len() as u64;
        // Visitors in the order they arrive, so each window serves one at a time: a ticket is
        // called when its window is free (never more than 20 minutes after it was drawn — a
        // colleague would take it), and nobody waits at an idle window.
        let mut visits: Vec<(Instant, usize)> = (0..n)
            .map(|_| {
                let w = self.rng.below(windows) as usize;
                (self.arrival(day), w)
            })
            .collect();
        visits.sort_by_key(|&(t, w)| (t.0, w));
        let mut free = vec![Instant(0); self.world.windows.len()];
        for (issued, w) in visits {
            self.case(day, w, issued, &mut free[w]);
        }
    }

    /// When a visitor draws a ticket: office time, weighted by [`ARRIVALS`].
    fn arrival(&mut self, day: Day) -> Instant {
        let total: u64 = ARRIVALS.iter().map(|a| a.2).sum();
        let mut pick = self.rng.below(total);
        let (lo, hi) = ARRIVALS
            .iter()
            .find(|a| {
                if pick < a.2 {
                    true
                } else {
                    pick -= a.2;
                    false
                }
            })
            .map_or((540, 600), |a| (a.0, a.1));
        at(day, self.minute_in(lo, hi)).plus_secs(self.between(0, 60))
    }

    fn window_day(&mut self, day: Day, w: usize) {
        let win = self.world.windows[w].clone();
        let (c, id, staff) = (win.centre, win.id.as_str(), win.staff.as_str());
        let dept = department_code(win.department);
        let who = format!(r#","window_id":"{id}","staff_id":"{staff}","department":"{dept}""#);
        let sign_in = at(day, 520).plus_secs(self.between(0, 240));
        self.emit(sign_in, c, "staff.signed_in", &who);
        let open = at(day, 525).plus_secs(self.between(0, 300));
        self.emit(open, c, "window.opened", &who);
        if self.chance(self.rates.empty_window) {
            let minute = if self.rng.percent(50) {
                self.minute_in(570, 660)
            } else {
                self.minute_in(840, 990)
            };
            let left = at(day, minute).plus_secs(self.between(0, 60));
            self.emit(left, c, "staff.signed_out", &who);
            let back = left.plus_secs(self.between(30 * 60, 60 * 60));
            self.emit(back, c, "staff.signed_in", &who);
            self.truth.expect(
                "window.unstaffed",
                "warning",
                subject(&[("window_id", id.to_string()), ("since", left.to_string())]),
                left.plus_secs(15 * 60),
                "empty_window",
                None,
            );
        }
        let close = at(day, 1060).plus_secs(self.between(0, 300));
        self.emit(close, c, "window.closed", &who);

        let fee_items: Vec<usize> = self.world.items_of[win.department]
            .iter()
            .copied()
            .filter(|&i| self.world.items[i].fee_fen > 0)
            .collect();
        if !fee_items.is_empty() && self.chance(self.rates.fee_without_case) {
            let item =
                &self.world.items[fee_items[self.rng.below(fee_items.len() as u64) as usize]];
            let (code, fee) = (item.code.clone(), item.fee_fen);
            let minute = self.minute_in(560, 1000);
            let t = at(day, minute);
            let receipt = self.receipt(c);
            let payer = self.payer();
            self.emit(
                t,
                c,
                "fee.charged",
                &format!(
                    r#"{who},"item_code":"{code}","receipt_no":"{receipt}","amount_fen":{fee},"payer_id":"P{payer}""#
                ),
            );
            let due = self.cal.add_working_days(day, 1).end();
            self.truth.expect(
                "hall.fee_without_case",
                "yellow",
                subject(&[("receipt_no", receipt)]),
                due,
                "fee_without_case",
                Some(staff),
            );
        }
        let promised: Vec<usize> = self.world.items_of[win.department]
            .iter()
            .copied()
            .filter(|&i| !self.world.items[i].instant)
            .collect();
        // The five back-filled cases may repeat an item: a department with one promised item
        // can back-fill too.
        if !promised.is_empty() && self.chance(self.rates.batch_entry) {
            self.batch(day, w, &promised);
        }
    }

    /// 事后补录: five promised cases entered and finished a minute apart each.
    fn batch(&mut self, day: Day, w: usize, promised: &[usize]) {
        let win = self.world.windows[w].clone();
        let t0 = at(day, self.minute_in(900, 960));
        let mut first = None;
        let mut last = t0;
        for i in 0..5 {
            let item = promised[self.rng.below(promised.len() as u64) as usize];
            let ts = t0.plus_secs(i * 90);
            let steps: Vec<Step> = vec![
                (ts, "case.submitted", r#","channel":"hall""#.into(), None),
                (
                    ts.plus_secs(5),
                    "case.accepted",
                    r#","channel":"hall""#.into(),
                    None,
                ),
                (ts.plus_secs(20), "case.stage", stage("undertake"), None),
                (ts.plus_secs(30), "case.stage", stage("review"), None),
                (ts.plus_secs(40), "case.stage", stage("approve"), None),
                (
                    ts.plus_secs(60),
                    "case.completed",
                    r#","result":"approved""#.into(),
                    None,
                ),
            ];
            let case_id = self.case_id(win.centre, day);
            self.case_events(&case_id, item, w, steps);
            first.get_or_insert(ts.plus_secs(60));
            last = ts.plus_secs(60);
        }
        let first = first.unwrap_or(last);
        self.truth.expect(
            "hall.batch_entry",
            "yellow",
            subject(&[
                ("staff_id", win.staff.clone()),
                ("batch", first.to_string()),
            ]),
            last,
            "batch_entry",
            Some(&win.staff),
        );
    }

    fn case_id(&mut self, centre: usize, day: Day) -> String {
        let (y, m, d) = day.ymd();
        let n = self.next_serial();
        format!(
            "{}-{y:04}{m:02}{d:02}-{n:06}",
            self.world.centres[centre].center_id
        )
    }

    fn receipt(&mut self, centre: usize) -> String {
        let n = self.next_serial();
        format!("R{}-{n}", self.world.centres[centre].center_id)
    }

    fn payer(&mut self) -> u64 {
        self.rng.below(1_000_000)
    }

    /// Queue a case's steps; a step without staff is done by the window's staff member.
    fn case_events(&mut self, case_id: &str, item: usize, w: usize, steps: Vec<Step>) {
        let live = vec![Send::Live; steps.len()];
        self.case_events_sent(case_id, item, w, steps, &live, "approval");
    }

    /// The same, each step sent as `sends` says, on `feed`: (event id, report time) per step.
    fn case_events_sent(
        &mut self,
        case_id: &str,
        item: usize,
        w: usize,
        steps: Vec<Step>,
        sends: &[Send],
        feed: &str,
    ) -> Vec<(String, Instant)> {
        let win = &self.world.windows[w];
        let (c, wid, default_staff) = (win.centre, win.id.clone(), win.staff.clone());
        let dept = department_code(self.world.items[item].department);
        let code = self.world.items[item].code.clone();
        let region = self.world.centres[c].region.clone();
        let source = format!("{}:{feed}", self.world.centres[c].center_id);
        let mut sent = Vec::with_capacity(steps.len());
        // The case's acceptance so far: a second one is a new version of its row.
        let mut acceptance: Option<(String, Instant)> = None;
        for (i, (t, kind, extra, staff)) in steps.into_iter().enumerate() {
            let staff = staff.unwrap_or_else(|| default_staff.clone());
            let item_field = if matches!(kind, "case.submitted" | "case.accepted") {
                format!(r#","item_code":"{code}""#)
            } else {
                String::new()
            };
            let window = if kind == "case.stage" && staff != default_staff {
                String::new()
            } else {
                format!(r#","window_id":"{wid}""#)
            };
            let superseded = acceptance.take().filter(|_| kind == "case.accepted");
            let supersedes = superseded
                .as_ref()
                .map(|(id, _)| format!(r#","supersedes":"{id}""#))
                .unwrap_or_default();
            let extra = format!(
                r#","case_id":"{case_id}","department":"{dept}","staff_id":"{staff}"{window}{item_field}{extra}{supersedes}"#
            );
            let send = sends.get(i).copied().unwrap_or(Send::Live);
            let (id, reported, _, delivered) = self.emit_on(t, c, kind, &extra, feed, send);
            if kind == "case.accepted" {
                acceptance = Some((id.clone(), reported));
            }
            if !delivered {
                sent.push((id, reported));
                continue;
            }
            if let Some((original, was)) = superseded {
                self.corrected(case_id, &original, was, reported);
            }
            self.truth
                .case_event(&region, &source, case_id, kind, t, reported);
            if kind == "case.accepted" && self.mismatch_case.as_deref() == Some(case_id) {
                self.mismatch_case = None;
                self.truth.expect(
                    "data.deadline_mismatch",
                    "warning",
                    subject(&[("case_id", case_id.to_string())]),
                    reported,
                    "deadline_mismatch",
                    None,
                );
            }
            if kind == "case.accepted" && staff == PLACEHOLDER {
                self.truth.placeholder(&source, PLACEHOLDER, t, reported);
            }
            // A report more than 24 hours after the event is 迟报 (hall.late_report).
            if reported.0 - t.0 > 24 * 3600 {
                self.truth.expect(
                    "hall.late_report",
                    "warning",
                    subject(&[("event_id", id.clone())]),
                    t,
                    "late_feed",
                    None,
                );
            }
            sent.push((id, reported));
        }
        sent
    }

    /// A re-reported acceptance of `case_id` (reported at `now`) superseded `original`
    /// (reported at `was`): `data.corrected` at the level the injection set, at `now`.
    fn corrected(&mut self, case_id: &str, original: &str, was: Instant, now: Instant) {
        let Some((_, level)) = self.corrected_case.take().filter(|c| c.0 == case_id) else {
            return;
        };
        // The injection's intent, checked against the rule's terms (SPEC §6: more than
        // `correction_grace_hours` = 24 after the original's report).
        debug_assert_eq!(level.is_some(), now.0 - was.0 > 24 * 3600, "{case_id}");
        if let Some(level) = level {
            self.truth.expect(
                "data.corrected",
                level,
                subject(&[("event_id", original.to_string())]),
                now,
                "corrected_acceptance",
                None,
            );
        }
    }

    /// The corrected acceptance of a case of centre `c` submitted at `submitted` on `day` and
    /// first reported accepted at `accepted`, and when the new version of the row is reported
    /// (see [`Fix`]).
    fn corrected_acceptance(
        &mut self,
        fix: Fix,
        (c, day): (usize, Day),
        submitted: Instant,
        accepted: Instant,
    ) -> (Instant, Instant) {
        match fix {
            Fix::Prompt => {
                let t = accepted.plus_secs(self.between(5 * 60, 60 * 60));
                (t, t.plus_secs(self.between(10 * 60, 3 * 3600)))
            }
            Fix::Late => {
                let t = submitted.plus_secs(self.between(10, accepted.0 - submitted.0));
                let reported = at(self.cal.add_working_days(day, 2), self.minute_in(540, 690));
                (t, reported)
            }
            Fix::Redated => {
                // The next working day, and a day after the first row was reported (which the
                // silent afternoon may have held back): the grace is counted from that report.
                let next = self.cal.add_working_days(day, 1);
                let days = i64::from(next.0 - day.0);
                let first_report = self.held(c, "approval", accepted.plus_secs(20));
                let t = accepted
                    .plus_secs(days * 86_400)
                    .max(first_report.plus_secs(86_400))
                    .plus_secs(self.between(60, 3600));
                (t, t.plus_secs(self.between(60, 300)))
            }
        }
    }

    /// One visitor: ticket, call, submission, acceptance, fee, stages, completion, rating,
    /// complaint.
    fn case(&mut self, day: Day, w: usize, issued: Instant, free: &mut Instant) {
        let win = self.world.windows[w].clone();
        let c = win.centre;
        // Most visits are for 即办件 (registrations, certificates, filings) decided on the spot;
        // two in three pick among those where the department has any.
        let list = &self.world.items_of[win.department];
        let instant: Vec<usize> = list
            .iter()
            .copied()
            .filter(|&i| self.world.items[i].instant)
            .collect();
        let bridge =
            self.rates.after_completion_feed && c == 0 && win.department == BRIDGE_DEPARTMENT;
        // The after-completion feed carries the department's 即办件 (same-day cases): a
        // completion posted before its acceptance and stages would otherwise raise and retract
        // 审批未在线办理 for every promised case, and each flip moves a ladder step.
        let list = if !instant.is_empty() && (bridge || self.rng.percent(67)) {
            &instant
        } else {
            list
        };
        let item_ix = list[self.rng.below(list.len() as u64) as usize];
        let item = self.world.items[item_ix].clone();
        let case_id = self.case_id(c, day);
        let staff = win.staff.clone();
        let back = self.world.back_office[c][win.department].clone();

        // Queue: a ticket for this window's department, called within 20 minutes.
        self.tickets[c] += 1;
        let ticket = format!("A{:04}", self.tickets[c]);
        let dept = department_code(win.department);
        self.emit(
            issued,
            c,
            "queue.ticket_issued",
            &format!(
                r#","ticket_no":"{ticket}","window_id":"{}","department":"{dept}""#,
                win.id
            ),
        );
        let long = self.chance(self.rates.long_wait);
        let wait = if long {
            self.between(35 * 60, 60 * 60)
        } else {
            // When the window is free, a minute or two after the ticket at the earliest.
            let earliest = issued.plus_secs(self.between(60, 3 * 60));
            (earliest.0.max(free.0) - issued.0).min(20 * 60)
        };
        let called = issued.plus_secs(wait);
        self.emit(
            called,
            c,
            "queue.ticket_called",
            &format!(
                r#","ticket_no":"{ticket}","window_id":"{}","staff_id":"{staff}""#,
                win.id
            ),
        );
        if long {
            self.truth.expect(
                "window.long_wait",
                "warning",
                subject(&[
                    ("center_id", self.world.centres[c].center_id.clone()),
                    ("ticket_no", ticket),
                    ("issued_at", issued.to_string()),
                ]),
                issued.plus_secs(30 * 60),
                "long_wait",
                None,
            );
        }

        // The department whose feed reports only after completion carries no other injection
        // (its cases are known only once finished).
        // At most one case-level injection per case, so each alert has one cause.
        let roll = self.rng.below(1000);
        let roll = if bridge { 1000 } else { roll };
        let r = &self.rates;
        let mut edge = 0;
        let mut hit = |rate: u64| {
            let yes = roll >= edge && roll < edge + rate;
            edge += rate;
            yes
        };
        let promised = !item.instant;
        let overdue = promised && hit(r.overdue);
        let back_office = promised && item.delegated && hit(r.back_office);
        let missing = promised && hit(r.missing_stages);
        let outside = hit(r.outside_hall);
        let irregular = item.fee_fen > 0 && !outside && hit(r.fee_irregular);
        let retro = promised && hit(r.retroactive_pause);
        let fabricate = promised && hit(r.fabricated_stages);
        let placeholder = hit(r.placeholder_staff);
        let mismatch = promised && item.promised > 0 && hit(r.deadline_mismatch);
        let long_limit = promised && item.promised >= 4;
        let corrected = long_limit && hit(r.corrected_acceptance);
        let injected = overdue
            || back_office
            || missing
            || outside
            || irregular
            || retro
            || fabricate
            || placeholder
            || mismatch
            || corrected;
        // The showcase: the first eligible cases of the period, one manipulation each (a
        // backdated 挂起 needs a limit short enough to run out within days).
        let mut show = [false; 5];
        if !injected && !bridge && !item.instant {
            let short = !item.natural && item.promised <= 2;
            let eligible = [short, true, true, item.promised > 0, long_limit];
            if let Some(i) = (0..5).find(|&i| self.showcase[i] && eligible[i]) {
                self.showcase[i] = false;
                show[i] = true;
            }
        }
        let (retro, fabricate) = (retro || show[0], fabricate || show[1]);
        let (placeholder, mismatch) = (placeholder || show[2], mismatch || show[3]);
        let fix = match (corrected, show[4]) {
            (_, true) => Some(Fix::Redated),
            (true, _) => Some([Fix::Prompt, Fix::Late, Fix::Redated][self.rng.below(3) as usize]),
            _ => None,
        };

        // Checking the papers with the applicant takes a while: the window shows 服务中 from
        // the call until the application is submitted (the engine's first outcome of a
        // service), then the acceptance and a 即办件's completion follow within minutes.
        let submitted = called.plus_secs(self.between(6 * 60, 18 * 60));
        let accepted = submitted.plus_secs(self.between(60, 300));
        *free = Instant(free.0.max(accepted.0));
        let channel = if outside { "office" } else { "hall" };
        let mut steps: Vec<Step> = vec![
            (
                submitted,
                "case.submitted",
                format!(r#","channel":"{channel}""#),
                None,
            ),
            (
                accepted,
                "case.accepted",
                format!(
                    r#","channel":"{channel}"{}"#,
                    self.source_deadline(mismatch, &item, accepted)
                ),
                placeholder.then(|| PLACEHOLDER.to_string()),
            ),
        ];
        if mismatch {
            self.mismatch_case = Some(case_id.clone());
        }
        // A re-reported acceptance: the new version of the row (sent when the feed sends it),
        // and the case runs from the corrected time.
        let mut sends: Vec<Send> = Vec::new();
        let correction = fix.map(|f| {
            let (t, reported) = self.corrected_acceptance(f, (c, day), submitted, accepted);
            let row = steps[1].2.clone();
            steps.push((t, "case.accepted", row, None));
            sends = vec![Send::Live, Send::Live, Send::At(reported)];
            self.corrected_case = Some((case_id.clone(), f.level()));
            (t, f)
        });
        if outside {
            self.truth.expect(
                "hall.accepted_outside_hall",
                "yellow",
                subject(&[("case_id", case_id.clone())]),
                accepted,
                "outside_hall",
                Some(&staff),
            );
        }
        let mut cur = accepted;
        if item.fee_fen > 0 && !outside {
            let t = accepted.plus_secs(self.between(60, 300));
            let receipt = self.receipt(c);
            let payer = self.payer();
            let amount = if irregular {
                item.fee_fen + 1000
            } else {
                item.fee_fen
            };
            self.emit(
                t,
                c,
                "fee.charged",
                &format!(
                    r#","case_id":"{case_id}","item_code":"{}","window_id":"{}","staff_id":"{staff}","department":"{dept}","receipt_no":"{receipt}","amount_fen":{amount},"payer_id":"P{payer}""#,
                    item.code,
                    win.id,
                ),
            );
            if irregular {
                self.truth.expect(
                    "hall.fee_irregular",
                    "yellow",
                    subject(&[("receipt_no", receipt)]),
                    t,
                    "fee_irregular",
                    Some(&staff),
                );
            }
            cur = t;
        }

        if let Some((t, _)) = correction {
            cur = cur.max(t);
        }
        let completed = if item.instant {
            cur.plus_secs(self.between(2 * 60, 8 * 60))
        } else if fabricate {
            // The reporter invents 受理→审核→办结 steps stamped with the completion time and posts
            // them after the completion (source-formats.md §7): finished within the hour.
            let done = cur.plus_secs(self.between(30 * 60, 90 * 60));
            let done_reported = self.held(c, "approval", done.plus_secs(2));
            let last_report = self.held(c, "approval", done.plus_secs(5));
            sends = vec![Send::Live; steps.len()];
            for (i, name) in ["undertake", "review", "approve"].into_iter().enumerate() {
                let by_back = name == "undertake" || !item.delegated;
                steps.push((
                    done,
                    "case.stage",
                    stage(name),
                    by_back.then(|| back.clone()),
                ));
                let r = self.held(c, "approval", done.plus_secs(3 + i as i64));
                sends.push(Send::At(r));
            }
            if self.delivered(last_report) {
                self.truth.expect(
                    "hall.stage_fabricated",
                    "yellow",
                    subject(&[("case_id", case_id.clone())]),
                    last_report,
                    "fabricated_stages",
                    None,
                );
            }
            // The completion goes first, reported 2 seconds after it.
            sends.insert(steps.len() - 3, Send::At(done_reported));
            steps.insert(
                steps.len() - 3,
                (
                    done,
                    "case.completed",
                    r#","result":"approved""#.into(),
                    None,
                ),
            );
            done
        } else {
            let start = correction.map_or(day, |(t, _)| t.day());
            let deadline = if item.natural {
                self.cal.add_natural_days(start, item.promised)
            } else {
                self.cal.add_working_days(start, item.promised)
            };
            let room = self.cal.working_days_between(start, deadline).max(1) - 1;
            let mut k = (self.rng.below(u64::from(room) + 1))
                .min(self.rng.below(u64::from(room) + 1)) as u32;
            if let Some((_, fix)) = correction {
                k = fix.finish_day(k, room);
            }
            if missing {
                // With no stage recorded, the first stage's limit runs until completion.
                k = k.min(item.stage_days.map_or(u32::MAX, |s| s[0]));
            }
            let mut offset = 0;
            let mut stage_time = cur;
            if !missing {
                for (i, name) in ["undertake", "review", "approve"].into_iter().enumerate() {
                    let limit = item.stage_days.map_or(u32::MAX, |s| s[i]);
                    let step = u32::from(offset < k && self.rng.percent(50)).min(limit);
                    offset += step;
                    stage_time = if step == 0 {
                        stage_time.plus_secs(self.between(10 * 60, 40 * 60))
                    } else {
                        at(
                            self.cal.add_working_days(start, offset),
                            self.minute_in(540, 690),
                        )
                    };
                    let by_back = name == "undertake"
                        || !item.delegated
                        || (back_office && name == "approve");
                    steps.push((
                        stage_time,
                        "case.stage",
                        stage(name),
                        by_back.then(|| back.clone()),
                    ));
                    if back_office && name == "approve" {
                        self.truth.expect(
                            "hall.back_office",
                            "warning",
                            subject(&[("case_id", case_id.clone()), ("stage", "approve".into())]),
                            stage_time,
                            "back_office",
                            None,
                        );
                    }
                }
            }
            if let Some((_, Fix::Redated)) = correction {
                // Finished on D of the corrected clock: its 预警, at 00:00 of D. By the time first
                // reported, D was the day before: a 黄牌 the correction disproves.
                self.truth.expect(
                    "case.overdue",
                    "warning",
                    subject(&[("case_id", case_id.clone())]),
                    deadline.start(),
                    "corrected_acceptance",
                    None,
                );
            }
            if overdue || retro {
                let late = self.cal.add_working_days(deadline, 1);
                let done = at(late, self.minute_in(600, 960));
                let last_staff = steps
                    .iter()
                    .rev()
                    .find(|s| s.0 < deadline.end())
                    .and_then(|s| s.3.clone())
                    .unwrap_or_else(|| staff.clone());
                // The bridge's backdated pause, once delivered, disproves the 预警 and 黄牌 (SPEC
                // v1.1 §5: they are retracted; hall.retroactive_pause judges the late report).
                let hidden = retro && self.delivered(self.held(c, "approval", done.plus_secs(-3)));
                if !hidden {
                    self.truth.expect(
                        "case.overdue",
                        "warning",
                        subject(&[("case_id", case_id.clone())]),
                        deadline.start(),
                        "overdue",
                        None,
                    );
                    self.truth.expect(
                        "case.overdue",
                        "yellow",
                        subject(&[("case_id", case_id.clone())]),
                        deadline.end(),
                        "overdue",
                        Some(&last_staff),
                    );
                }
                if retro {
                    let times = (accepted, deadline, done);
                    self.backdated_pause(&mut steps, &mut sends, &case_id, times, (c, &staff));
                }
                done
            } else if k == offset {
                stage_time.plus_secs(self.between(10 * 60, 60 * 60))
            } else {
                at(
                    self.cal.add_working_days(start, k),
                    self.minute_in(540, 990),
                )
            }
        };
        if !fabricate || item.instant {
            steps.push((
                completed,
                "case.completed",
                r#","result":"approved""#.into(),
                None,
            ));
        }
        if missing {
            self.truth.expect(
                "hall.missing_stages",
                "yellow",
                subject(&[("case_id", case_id.clone())]),
                completed,
                "missing_stages",
                Some(&staff),
            );
        }
        if bridge {
            // Sent once finished: the completion first, then the rest, a second apart.
            let done = completed.plus_secs(5);
            let n = steps.len();
            let done_at = steps
                .iter()
                .position(|s| s.1 == "case.completed")
                .unwrap_or(n - 1);
            let done_step = steps.remove(done_at);
            steps.insert(0, done_step);
            let sends: Vec<Send> = (0..n).map(|i| Send::At(done.plus_secs(i as i64))).collect();
            let feed = format!("{}-bridge", department_code(BRIDGE_DEPARTMENT));
            self.case_events_sent(&case_id, item_ix, w, steps, &sends, &feed);
        } else if sends.is_empty() {
            self.case_events(&case_id, item_ix, w, steps);
        } else {
            sends.resize(steps.len(), Send::Live);
            self.case_events_sent(&case_id, item_ix, w, steps, &sends, "approval");
        }
        self.after_completion(&case_id, w, completed);
    }

    /// The `source_deadline` field of an acceptance whose source's clock was set back a day:
    /// the day before the official D (nothing when `wrong` is false).
    fn source_deadline(
        &self,
        wrong: bool,
        item: &crate::world::SimItem,
        accepted: Instant,
    ) -> String {
        if !wrong {
            return String::new();
        }
        let start = accepted.day();
        let d = if item.natural {
            self.cal.add_natural_days(start, item.promised)
        } else {
            self.cal.add_working_days(start, item.promised)
        };
        format!(r#","source_deadline":"{}""#, Day(d.0 - 1))
    }

    /// The bridge's backdated 挂起 (source-formats.md §7): before posting a late 办结 it posts a
    /// special procedure "正常业务办理挂起" starting at the acceptance, limit = the overrun plus
    /// 3 natural days, never ended; posted 3 seconds before the completion, which is reported
    /// 2 seconds after it occurred. The case's 预警 and 黄牌 have fired by then (expected by the
    /// caller); the pause is `hall.retroactive_pause`, its report 迟报, and its own limit runs
    /// out before the completion unless the promised limit is very short.
    fn backdated_pause(
        &mut self,
        steps: &mut Vec<Step>,
        sends: &mut Vec<Send>,
        case_id: &str,
        (accepted, deadline, done): (Instant, Day, Instant),
        (c, staff): (usize, &str),
    ) {
        let overrun = done.day().0 - deadline.0;
        let limit = overrun + 3;
        sends.resize(steps.len(), Send::Live);
        steps.push((
            accepted,
            "case.special_started",
            format!(r#","procedure":"other","limit_days":{limit},"limit_unit":"natural""#),
            None,
        ));
        let reported = self.held(c, "approval", done.plus_secs(-3));
        sends.push(Send::At(reported));
        sends.push(Send::At(self.held(c, "approval", done.plus_secs(2))));
        if !self.delivered(reported) {
            return;
        }
        self.truth.expect(
            "hall.retroactive_pause",
            "yellow",
            subject(&[
                ("case_id", case_id.to_string()),
                ("pause_from", accepted.to_string()),
                ("pause_kind", "special".to_string()),
            ]),
            reported,
            "retroactive_pause",
            None,
        );
        let own = self.cal.add_natural_days(accepted.day(), limit).end();
        if own <= done {
            self.truth.expect(
                "case.special_overdue",
                "yellow",
                json!({"case_id": case_id, "special": 1}),
                own,
                "retroactive_pause",
                Some(staff),
            );
        }
    }

    /// 好差评 and complaints about a finished case.
    fn after_completion(&mut self, case_id: &str, w: usize, done: Instant) {
        let win = self.world.windows[w].clone();
        let (c, wid, staff) = (win.centre, win.id.as_str(), win.staff.as_str());
        let target = format!(r#","window_id":"{wid}","staff_id":"{staff}","case_id":"{case_id}""#);
        if self.chance(self.rates.evaluation) {
            let t = done.plus_secs(self.between(5 * 60, 30 * 60));
            let bad = self.chance(self.rates.bad_rating);
            let score = if bad {
                1 + self.rng.below(2)
            } else {
                4 + u64::from(self.rng.percent(80))
            };
            let id = format!("E-{}", self.next_serial());
            let order = self.emit(
                t,
                c,
                "evaluation.submitted",
                &format!(r#"{target},"evaluation_id":"{id}","score":{score}"#),
            );
            self.truth.evaluation(t, order, wid, score as u8);
            if bad {
                self.truth.window_mark(t, order, wid, &id);
                let sub = subject(&[("evaluation_id", id.clone())]);
                self.truth.expect(
                    "evaluation.bad",
                    "warning",
                    sub.clone(),
                    t,
                    "bad_rating",
                    None,
                );
                if self.chance(self.rates.unrectified) {
                    self.overdue_matter(
                        "evaluation.unrectified",
                        sub,
                        t,
                        "unrectified",
                        Some(staff),
                    );
                } else {
                    let fixed = self.within_four_working_days(t);
                    self.emit(
                        fixed,
                        c,
                        "evaluation.rectified",
                        &format!(r#","evaluation_id":"{id}""#),
                    );
                }
            }
        }
        if self.chance(self.rates.complaint) {
            let t = done.plus_secs(self.between(3600, 3 * 3600));
            let category =
                ["attitude", "efficiency", "fee", "integrity", "other"][self.rng.below(5) as usize];
            let id = format!("C-{}", self.next_serial());
            let order = self.emit(
                t,
                c,
                "complaint.filed",
                &format!(r#"{target},"complaint_id":"{id}","category":"{category}""#),
            );
            self.truth.window_mark(t, order, wid, &id);
            let level = match category {
                "integrity" => "red",
                "fee" => "yellow",
                _ => "warning",
            };
            let sub = subject(&[("complaint_id", id.clone())]);
            self.truth
                .expect("complaint.filed", level, sub.clone(), t, "complaint", None);
            if self.chance(self.rates.complaint_unresolved) {
                self.overdue_matter("complaint.overdue", sub, t, "complaint_unresolved", None);
            } else {
                let resolved = self.within_four_working_days(t);
                let substantiated = self.chance(self.rates.substantiated);
                let order = self.emit(
                    resolved,
                    c,
                    "complaint.resolved",
                    &format!(r#","complaint_id":"{id}","substantiated":{substantiated}"#),
                );
                if substantiated {
                    self.truth.substantiated(resolved, order, staff, &id);
                }
            }
        }
    }

    /// Office time on one of the four working days after `t`.
    fn within_four_working_days(&mut self, t: Instant) -> Instant {
        let n = 1 + self.rng.below(4) as u32;
        let day = self.cal.add_working_days(t.day(), n);
        at(day, self.minute_in(540, 990))
    }

    /// A complaint or bad rating left alone: yellow after five working days, red three later.
    fn overdue_matter(
        &mut self,
        rule: &'static str,
        sub: serde_json::Value,
        t: Instant,
        cause: &'static str,
        card_for: Option<&str>,
    ) {
        let due = self.cal.add_working_days(t.day(), 5);
        let red = self.cal.add_working_days(due, 3);
        self.truth
            .expect(rule, "yellow", sub.clone(), due.end(), cause, card_for);
        self.truth
            .expect(rule, "red", sub, red.end(), cause, card_for);
    }
}

fn stage(name: &str) -> String {
    format!(r#","stage":"{name}","result":"agree""#)
}

impl Iterator for Simulator {
    type Item = (Instant, String);

    fn next(&mut self) -> Option<(Instant, String)> {
        loop {
            let generated_to = self.next_day.start();
            match self.heap.peek() {
                Some(Reverse((t, _, _)))
                    if *t < generated_to.0 || self.next_day >= self.end_day =>
                {
                    if *t >= self.end_day.start().0 {
                        self.heap.clear();
                        return None;
                    }
                    let Reverse((t, _, line)) = self.heap.pop()?;
                    return Some((Instant(t), line));
                }
                _ if self.next_day < self.end_day => {
                    let day = self.next_day;
                    self.generate(day);
                    self.next_day = day.plus(1);
                }
                _ => return None,
            }
        }
    }
}

/// Ground-truth lines (NDJSON) for `expected`.
pub fn truth_lines(expected: &[Expected]) -> String {
    let mut out = String::new();
    for e in expected {
        out.push_str(&e.to_json().to_string());
        out.push('\n');
    }
    out
}

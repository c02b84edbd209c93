//! Ground truth: what the simulator injected and which alerts the default policy must raise for
//! it, including the alerts that follow from counting (the discipline ladder, repeated
//! complaints, low satisfaction), worked out here independently of the engine.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rules::Instant;
use serde_json::{json, Map, Value};

/// Default policy values the ground truth assumes (the simulator writes no `policy.toml`).
const REPEAT_STAFF_COUNT: usize = 2;
const REPEAT_WINDOW_COUNT: usize = 3;
const SATISFACTION_SAMPLE: usize = 50;
const SATISFACTION_FLOOR: f64 = 0.95;
const LADDER_LEVELS: [&str; 4] = ["warning", "yellow", "yellow", "red"];

/// One alert the engine must raise.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Rule id.
    pub rule: &'static str,
    /// Level.
    pub level: &'static str,
    /// The alert's subject, as the engine writes it.
    pub subject: Value,
    /// When it fires (event time).
    pub fired_at: Instant,
    /// What was injected (`overdue`, `empty_window`, …) or `derived` for a count-based
    /// consequence.
    pub cause: &'static str,
}

impl Expected {
    /// The ground-truth line.
    pub fn to_json(&self) -> Value {
        json!({
            "rule": self.rule,
            "level": self.level,
            "subject": self.subject,
            "fired_at": self.fired_at.to_string(),
            "cause": self.cause,
        })
    }
}

/// A subject object from key/value pairs.
pub fn subject(pairs: &[(&str, String)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
        .collect();
    Value::Object(map)
}

/// Collects expectations and the facts the count-based rules need while events are made.
#[derive(Debug, Default)]
pub struct Truth {
    expected: Vec<Expected>,
    /// Yellow and red cards per staff member (counted on the ladder): (fired_at, staff).
    cards: Vec<(Instant, String)>,
    /// Substantiated complaints: (resolution time, emission order, target staff, complaint id).
    substantiated: Vec<(Instant, u64, String, String)>,
    /// Complaints and bad evaluations per window: (time, order, window, id).
    window_marks: Vec<(Instant, u64, String, String)>,
    /// Every evaluation: (time, order, window, score).
    evaluations: Vec<(Instant, u64, String, u8)>,
    /// Every report time per (region, source), for `source.silent`.
    reports: HashMap<(String, String), Vec<Instant>>,
    /// Case events other than completions: (region, source, case, day of occurrence, report).
    case_events: Vec<(String, String, String, u32, Instant)>,
    /// Each case's completion report: (region, case) → report time.
    completions: HashMap<(String, String), Instant>,
    /// Placeholder acts: (source, staff, day) → the earliest report.
    placeholders: BTreeMap<(String, String, u32), Instant>,
    /// The silent afternoon's day, if injected.
    silent_day: Option<rules::Day>,
}

impl Truth {
    /// Expect an alert; a yellow or red card of a counted rule with `staff` goes on the ladder.
    pub fn expect(
        &mut self,
        rule: &'static str,
        level: &'static str,
        subject: Value,
        fired_at: Instant,
        cause: &'static str,
        card_for: Option<&str>,
    ) {
        if let Some(staff) = card_for {
            if level != "warning" {
                self.cards.push((fired_at, staff.to_string()));
            }
        }
        self.expected.push(Expected {
            rule,
            level,
            subject,
            fired_at,
            cause,
        });
    }

    /// A complaint was resolved as substantiated (有效投诉) against `staff`.
    pub fn substantiated(&mut self, at: Instant, order: u64, staff: &str, complaint_id: &str) {
        self.substantiated
            .push((at, order, staff.to_string(), complaint_id.to_string()));
        self.cards.push((at, staff.to_string()));
    }

    /// A complaint or a bad evaluation named `window`.
    pub fn window_mark(&mut self, at: Instant, order: u64, window: &str, id: &str) {
        self.window_marks
            .push((at, order, window.to_string(), id.to_string()));
    }

    /// An evaluation of `window`.
    pub fn evaluation(&mut self, at: Instant, order: u64, window: &str, score: u8) {
        self.evaluations
            .push((at, order, window.to_string(), score));
    }

    /// An event was reported by `source` at `at`.
    pub fn report(&mut self, region: &str, source: &str, at: Instant) {
        self.reports
            .entry((region.to_string(), source.to_string()))
            .or_default()
            .push(at);
    }

    /// A `case.*` event of `case` occurred at `t` and was reported at `reported`.
    pub fn case_event(
        &mut self,
        region: &str,
        source: &str,
        case: &str,
        kind: &str,
        t: Instant,
        reported: Instant,
    ) {
        if kind == "case.completed" {
            let key = (region.to_string(), case.to_string());
            let done = self.completions.entry(key).or_insert(reported);
            *done = (*done).min(reported);
        } else {
            self.case_events.push((
                region.to_string(),
                source.to_string(),
                case.to_string(),
                t.day().0,
                reported,
            ));
        }
    }

    /// A case was accepted by a placeholder account.
    pub fn placeholder(&mut self, source: &str, staff: &str, t: Instant, reported: Instant) {
        let key = (source.to_string(), staff.to_string(), t.day().0);
        let first = self.placeholders.entry(key).or_insert(reported);
        *first = (*first).min(reported);
    }

    /// The approval feed of the first centre is silent on the afternoon of `day`.
    pub fn silent_afternoon(&mut self, day: rules::Day) {
        self.silent_day = Some(day);
    }

    /// Everything that must have fired by `until` (inclusive), in firing order.
    pub fn finish(mut self, until: Instant, cal: &rules::Calendar) -> Vec<Expected> {
        self.derive_placeholders();
        self.derive_silences(until, cal);
        self.derive_not_live(cal);
        self.derive_ladder(until);
        self.derive_repeated_staff(until);
        self.derive_repeated_window(until);
        self.derive_satisfaction(until);
        let mut out: Vec<Expected> = self
            .expected
            .into_iter()
            .filter(|e| e.fired_at <= until)
            .collect();
        out.sort_by_key(|e| e.fired_at);
        out
    }

    /// `data.placeholder_staff`: one per placeholder, source and day, at the earliest report.
    fn derive_placeholders(&mut self) {
        for ((source, staff, day), at) in std::mem::take(&mut self.placeholders) {
            self.expected.push(Expected {
                rule: "data.placeholder_staff",
                level: "warning",
                subject: subject(&[
                    ("staff_id", staff),
                    ("source", source),
                    ("date", rules::Day(day).to_string()),
                ]),
                fired_at: at,
                cause: "placeholder_staff",
            });
        }
    }

    /// `source.silent`, from each source's report times: a report with no later report before
    /// the 60th minute of office time after it (a report at that instant is late), of a source
    /// that reported in the 7 days before. The one in the injected afternoon is its cause.
    fn derive_silences(&mut self, until: Instant, cal: &rules::Calendar) {
        let spans = rules::Policy::default().office_hours().unwrap_or_default();
        let minutes = rules::Policy::default().source_silence_minutes;
        let mut found = Vec::new();
        for ((_, source), reports) in &mut self.reports {
            reports.sort();
            reports.dedup();
            for (i, &r) in reports.iter().enumerate() {
                let Some(d) = rules::engine::office_deadline(cal, &spans, r, minutes) else {
                    continue;
                };
                let next = reports.get(i + 1);
                if d > until || next.is_some_and(|&n| n < d) || d.0 - r.0 > 7 * 86_400 {
                    continue;
                }
                let cause = if self.silent_day == Some(d.day()) && source.ends_with(":approval") {
                    "source_silent"
                } else {
                    "derived"
                };
                found.push(Expected {
                    rule: "source.silent",
                    level: "yellow",
                    subject: json!({"source": source, "since": r.to_string()}),
                    fired_at: d,
                    cause,
                });
            }
        }
        self.expected.extend(found);
    }

    /// `source.not_live`: per source and working day of occurrence, the share of case events
    /// (completions aside) reported after their case's completion report, above one half.
    fn derive_not_live(&mut self, cal: &rules::Calendar) {
        let mut days: BTreeMap<(String, u32), (u32, u32)> = BTreeMap::new();
        for (region, source, case, day, reported) in &self.case_events {
            let done = self.completions.get(&(region.clone(), case.clone()));
            let row = days.entry((source.clone(), *day)).or_default();
            row.0 += 1;
            row.1 += u32::from(done.is_some_and(|d| reported > d));
        }
        for ((source, day), (total, after)) in days {
            let day = rules::Day(day);
            if cal.is_working(day) && f64::from(after) > 0.5 * f64::from(total) {
                self.expected.push(Expected {
                    rule: "source.not_live",
                    level: "warning",
                    subject: subject(&[("source", source), ("date", day.to_string())]),
                    fired_at: day.end(),
                    cause: "after_completion_feed",
                });
            }
        }
    }

    fn derive_ladder(&mut self, until: Instant) {
        let mut count: BTreeMap<(String, i32), usize> = BTreeMap::new();
        let mut cards: Vec<&(Instant, String)> =
            self.cards.iter().filter(|(t, _)| *t <= until).collect();
        cards.sort();
        let mut steps = Vec::new();
        for (t, staff) in cards {
            let year = t.day().year();
            let n = count.entry((staff.clone(), year)).or_default();
            *n += 1;
            if *n <= LADDER_LEVELS.len() {
                steps.push(Expected {
                    rule: "discipline.ladder",
                    level: LADDER_LEVELS[*n - 1],
                    subject: json!({"staff_id": staff, "year": year, "step": *n}),
                    fired_at: *t,
                    cause: "derived",
                });
            }
        }
        self.expected.extend(steps);
    }

    fn derive_repeated_staff(&mut self, until: Instant) {
        let list = self.substantiated.clone();
        let (rule, level, keys) = (
            "complaint.repeated_staff",
            "red",
            ["staff_id", "complaint_id"],
        );
        self.count_in_window(list, until, 365, REPEAT_STAFF_COUNT, (rule, level, keys));
    }

    fn derive_repeated_window(&mut self, until: Instant) {
        let list = self.window_marks.clone();
        let (rule, level, keys) = (
            "complaint.repeated_window",
            "yellow",
            ["window_id", "trigger"],
        );
        self.count_in_window(list, until, 30, REPEAT_WINDOW_COUNT, (rule, level, keys));
    }

    /// A count-based rule: per target, when the number of marks in `(t − days, t]` becomes
    /// exactly `threshold` at a mark at `t`, the alert fires at `t` with subject
    /// `{keys[0]: target, keys[1]: the mark's id}`.
    fn count_in_window(
        &mut self,
        mut marks: Vec<(Instant, u64, String, String)>,
        until: Instant,
        days: i64,
        threshold: usize,
        (rule, level, keys): (&'static str, &'static str, [&str; 2]),
    ) {
        marks.sort();
        let mut per: HashMap<String, VecDeque<Instant>> = HashMap::new();
        for (t, _, target, id) in marks.into_iter().filter(|e| e.0 <= until) {
            let q = per.entry(target.clone()).or_default();
            while q.front().is_some_and(|&s| s.0 <= t.0 - days * 86_400) {
                q.pop_front();
            }
            q.push_back(t);
            if q.len() == threshold {
                self.expected.push(Expected {
                    rule,
                    level,
                    subject: subject(&[(keys[0], target), (keys[1], id)]),
                    fired_at: t,
                    cause: "derived",
                });
            }
        }
    }

    fn derive_satisfaction(&mut self, until: Instant) {
        let mut list = self.evaluations.clone();
        list.sort();
        let mut per: HashMap<String, (VecDeque<u8>, Option<u32>)> = HashMap::new();
        for (t, _, window, score) in list.into_iter().filter(|e| e.0 <= until) {
            let (last, fired_on) = per.entry(window.clone()).or_default();
            last.push_back(score);
            if last.len() > SATISFACTION_SAMPLE {
                last.pop_front();
            }
            if last.len() < SATISFACTION_SAMPLE {
                continue;
            }
            let good = last.iter().filter(|&&s| s >= 4).count();
            let day = t.day();
            if (good as f64) < SATISFACTION_FLOOR * SATISFACTION_SAMPLE as f64
                && *fired_on != Some(day.0)
            {
                *fired_on = Some(day.0);
                self.expected.push(Expected {
                    rule: "evaluation.satisfaction_low",
                    level: "warning",
                    subject: subject(&[("window_id", window), ("date", day.to_string())]),
                    fired_at: t,
                    cause: "derived",
                });
            }
        }
    }
}

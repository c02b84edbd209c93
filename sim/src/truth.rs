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

    /// Everything that must have fired by `until` (inclusive), in firing order.
    pub fn finish(mut self, until: Instant) -> Vec<Expected> {
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

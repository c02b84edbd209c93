//! The feeds themselves (SPEC §6 "Sources", §10): `source.silent` and `source.not_live`.
//!
//! ```text
//! event with `source` ─ report time ─▶ reports (sorted) ─ gaps ≥ source_silence_minutes of
//!                                                         office time ─▶ source.silent
//!       case.* (not 办结) ─ reported after its case's 办结 report? ─▶ counts per day of
//!                                                         occurred_at ─▶ source.not_live
//! ```
//! **Facts, not statuses.** A source's state is its report times and its per-day counts; the
//! alerts are functions of them. A report that arrives late (a batch retried after later ones)
//! is put in its place: a silence it interrupts is retracted, and one it starts is judged; a
//! day's counts re-judged. Only events that carry a `source` are judged (live ingest fills in
//! `http:<publisher>`; a file without sources names no feed).
//!
//! **Timers.** Each source keeps its silences still to be judged (from a report with no later
//! report known) and its days not yet judged; [`Sources::next_due`] is the earliest. The
//! silence deadline of the latest report is first armed at a lower bound (the report plus the
//! minutes in wall time: office time never runs faster) and computed exactly only when that
//! passes, so a busy feed costs no calendar walk per event.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::alert::{Alert, Level, Rule};
use crate::calendar::Calendar;
use crate::time::{Day, Instant};

use super::case::{inst, t32, T32};
use super::explain::{self, Attribution};
use super::windows::office_deadline;

/// A source is judged only if it reported in the 7 days before the silence (SPEC §6).
const RECENT_SECS: u32 = 7 * 86_400;

/// Every source's state, by region, then source (looked up with the event's borrowed
/// strings: nothing is allocated for a known source).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sources {
    map: BTreeMap<String, BTreeMap<String, Src>>,
    /// Each region's own clock: the latest `occurred_at` of its events. A feed's silence and
    /// days are judged when its region's events (or an explicit advance of the clock) pass
    /// them, never because another region's events moved the engine clock: an event reaches
    /// only its own region's state (docs/RULES.md, "Jurisdiction").
    #[serde(default)]
    clocks: BTreeMap<String, T32>,
    /// Each region's earliest judgement, kept in order (derived; not state).
    #[serde(skip)]
    dues: Dues,
}

/// Where each region's earliest judgement stands, derived from the sources and the region
/// clocks and kept beside them, so that [`Sources::next_due`], asked on every event, looks at
/// the first entry of a set instead of walking every source of every region: a province has
/// hundreds of feeds. Only a region's earliest due matters: if it is beyond the region's gate,
/// every later one is too. Not serialised and not compared; built on first use (after a
/// restore), updated as sources report, as clocks move and as the regions due are judged.
#[derive(Debug, Clone, Default)]
struct Dues {
    built: bool,
    /// Region → its index in `of` and `names`.
    ids: hashbrown::HashMap<String, u32>,
    names: Vec<String>,
    /// Each region's earliest due over its sources, whatever its clock, and whether it is in
    /// `ready`. Scanned when the clock is advanced explicitly (every region's gate is open).
    of: Vec<(Option<T32>, bool)>,
    /// (due, region) of the regions whose clock has reached their due. A busy feed's due moves
    /// with each report, ahead of its clock: the set is touched only when a due is reached or
    /// leaves it.
    ready: BTreeSet<(T32, u32)>,
}

/// Derived from the state it sits beside: two equal states may hold it built or not.
impl PartialEq for Dues {
    fn eq(&self, _: &Dues) -> bool {
        true
    }
}

impl Dues {
    fn id(&mut self, region: &str) -> u32 {
        if let Some(&id) = self.ids.get(region) {
            return id;
        }
        let id = self.of.len() as u32;
        self.ids.insert(region.to_string(), id);
        self.names.push(region.to_string());
        self.of.push((None, false));
        id
    }

    /// Region `id`'s earliest due is now `due`, its clock at `clock`.
    fn set(&mut self, id: u32, due: Option<T32>, clock: T32) {
        let Some(slot) = self.of.get_mut(id as usize) else {
            return;
        };
        if slot.0 == due {
            return;
        }
        if let (Some(old), true) = *slot {
            self.ready.remove(&(old, id));
        }
        let ready = due.is_some_and(|d| d <= clock);
        *slot = (due, ready);
        if let (Some(d), true) = (due, ready) {
            self.ready.insert((d, id));
        }
    }

    /// The regions with a due at or before `due` (with every gate open when `explicit`).
    fn due_by(&self, due: T32, explicit: bool) -> Vec<u32> {
        match explicit {
            true => (0..self.of.len() as u32)
                .filter(|&id| self.of[id as usize].0.is_some_and(|d| d <= due))
                .collect(),
            false => self
                .ready
                .range(..=(due, u32::MAX))
                .map(|&(_, id)| id)
                .collect(),
        }
    }

    /// `region`'s clock moved from `from` to `to`: its due may have come within the gate.
    fn clock_moved(&mut self, region: &str, from: T32, to: T32) {
        let Some(&id) = self.ids.get(region) else {
            return;
        };
        if let Some(slot) = self.of.get_mut(id as usize) {
            if let (Some(d), false) = *slot {
                if from < d && d <= to {
                    slot.1 = true;
                    self.ready.insert((d, id));
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Src {
    /// Centre of its latest event (where its alerts are shown).
    center: String,
    /// Report times, sorted, distinct, the last days only.
    reports: Vec<T32>,
    /// Silences to judge: from a report → (when, exact).
    waiting: BTreeMap<T32, (T32, bool)>,
    /// Silences fired: from a report → (fired_at, revision, retracted).
    fired: BTreeMap<T32, (T32, u8, bool)>,
    /// Per day of `occurred_at`.
    days: BTreeMap<u32, DayCount>,
    /// The engine day it was last pruned on (pruning runs once a day).
    pruned: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct DayCount {
    /// Case events other than completions.
    total: u32,
    /// Of those, reported after their case's completion was reported.
    after: u32,
    /// Judged (the day is over).
    judged: bool,
    /// The alert on record: (revision, retracted).
    fired: Option<(u8, bool)>,
}

/// What the rules need from the engine.
#[derive(Clone, Copy)]
pub(super) struct Env<'a> {
    pub cal: &'a Calendar,
    pub office: &'a [(u32, u32)],
    pub policy: &'a crate::Policy,
}

impl Env<'_> {
    fn deadline(&self, since: T32) -> Option<T32> {
        office_deadline(
            self.cal,
            self.office,
            inst(since),
            self.policy.source_silence_minutes,
        )
        .map(t32)
    }
}

/// A report the engine applied.
pub(super) struct Report<'a> {
    pub region: &'a str,
    pub source: &'a str,
    pub center: &'a str,
    pub at: T32,
    pub day: Day,
    /// For a `case.*` event other than a completion: whether it was reported after its case's
    /// completion report.
    pub case_event: Option<bool>,
}

impl Sources {
    /// An event of `region` occurred at `t`: its region's clock moves.
    pub(super) fn note(&mut self, region: &str, t: T32) {
        let from = match self.clocks.get_mut(region) {
            Some(c) if *c >= t => return,
            Some(c) => std::mem::replace(c, t),
            None => {
                self.clocks.insert(region.to_string(), t);
                0
            }
        };
        if self.dues.built {
            self.dues.clock_moved(region, from, t);
        }
    }

    /// How far `region`'s judgements may go: its clock, or everything when the engine clock
    /// is advanced explicitly (`explicit`: `Engine::advance_to`, `--until`, the wall clock).
    fn gate(&self, region: &str, explicit: bool) -> T32 {
        if explicit {
            T32::MAX
        } else {
            self.clocks.get(region).copied().unwrap_or(0)
        }
    }

    /// The earliest instant something is to be judged (within its region's gate).
    pub fn next_due(&mut self, explicit: bool) -> Option<T32> {
        if !self.dues.built {
            self.rebuild_dues();
        }
        match explicit {
            true => self.dues.of.iter().filter_map(|&(due, _)| due).min(),
            false => self.dues.ready.first().map(|&(due, _)| due),
        }
    }

    /// The earliest due of `region`'s sources, whatever its clock.
    fn region_due(&self, region: &str) -> Option<T32> {
        earliest_due(self.map.get(region)?)
    }

    /// Bring `region`'s entry of the dues up to date after its sources changed.
    fn refresh_due(&mut self, region: &str) {
        if !self.dues.built {
            return;
        }
        let due = self.region_due(region);
        self.set_due(region, due);
    }

    /// Set `region`'s earliest due in the dues (which are built).
    fn set_due(&mut self, region: &str, due: Option<T32>) {
        let clock = self.clocks.get(region).copied().unwrap_or(0);
        let id = self.dues.id(region);
        self.dues.set(id, due, clock);
    }

    fn rebuild_dues(&mut self) {
        let mut dues = Dues {
            built: true,
            ..Dues::default()
        };
        for region in self.map.keys() {
            let id = dues.id(region);
            let clock = self.clocks.get(region).copied().unwrap_or(0);
            dues.set(id, self.region_due(region), clock);
        }
        self.dues = dues;
    }

    /// [`Sources::next_due`] by walking every source (what the dues are checked against).
    #[cfg(test)]
    fn next_due_by_walk(&self, explicit: bool) -> Option<T32> {
        self.map
            .iter()
            .flat_map(|(region, m)| {
                let gate = self.gate(region, explicit);
                m.values()
                    .filter_map(move |s| s.due().filter(|&at| at <= gate))
            })
            .min()
    }

    /// [`Sources::fire`] by walking every feed of every region (what it is checked against).
    #[cfg(test)]
    fn fire_by_walk(
        &mut self,
        env: Env<'_>,
        due: T32,
        explicit: bool,
        out: &mut Vec<(String, Alert)>,
    ) {
        let gates: Vec<T32> = self.map.keys().map(|r| self.gate(r, explicit)).collect();
        for ((region, m), gate) in self.map.iter_mut().zip(gates) {
            for (source, src) in m.iter_mut() {
                src.fire(env, (region, source), due.min(gate), out);
            }
        }
        self.dues.built = false;
    }

    /// Take a report; alerts it makes (late reports re-judging what was judged) go to `out`.
    pub(super) fn on_report(
        &mut self,
        env: Env<'_>,
        r: &Report<'_>,
        ev: &crate::Event<'_>,
        now: Instant,
        out: &mut Vec<Alert>,
    ) {
        // Each map looked up once on the common path (the feed is known), and the region's
        // due then computed from the same entry: these run for every event that names a
        // source, which in production is every event.
        if !self.map.contains_key(r.region) {
            self.map.insert(r.region.to_string(), BTreeMap::new());
        }
        let Some(feeds) = self.map.get_mut(r.region) else {
            return;
        };
        if !feeds.contains_key(r.source) {
            feeds.insert(r.source.to_string(), Src::default());
        }
        let Some(src) = feeds.get_mut(r.source) else {
            return;
        };
        if src.center != r.center {
            src.center = r.center.to_string();
        }
        let key = (r.region, r.source);
        if env.policy.source_silence_minutes > 0 {
            src.report(env, r.at, now, &key, ev, out);
        }
        if let Some(after) = r.case_event {
            let d = src.days.entry(r.day.0).or_default();
            d.total += 1;
            d.after += u32::from(after);
            if d.judged {
                src.judge_day(env, r.day, &key, Some(ev), out);
            }
        }
        // Forget what no late report can reach any more, once a day.
        if src.pruned != now.day().0 {
            src.pruned = now.day().0;
            let keep = (env.policy.closed_case_retention_days + 1) * 86_400;
            let floor = t32(now).saturating_sub(keep);
            let cut = src.reports.partition_point(|&t| t < floor);
            if cut > 0 && cut < src.reports.len() {
                src.reports.drain(..cut);
            }
            src.fired.retain(|&since, _| since >= floor);
            let day_floor = now.day().0.saturating_sub(keep / 86_400);
            src.days.retain(|&d, c| d >= day_floor || !c.judged);
        }
        if self.dues.built {
            let due = earliest_due(feeds);
            self.set_due(r.region, due);
        }
    }

    /// Judge everything due at `due` (timers) within its region's gate, in (region, source)
    /// order.
    pub(super) fn fire(
        &mut self,
        env: Env<'_>,
        due: T32,
        explicit: bool,
        out: &mut Vec<(String, Alert)>,
    ) {
        if !self.dues.built {
            self.rebuild_dues();
        }
        // Only the regions with something due by now within their gate (their earliest due
        // is at or before `due`), walked in the order of their names as the map is: each
        // region's clock passes midnight at its own moment, and a walk of every feed at each
        // would cost the square of the regions.
        let mut regions: Vec<&str> = self
            .dues
            .due_by(due, explicit)
            .into_iter()
            .filter_map(|id| self.dues.names.get(id as usize).map(String::as_str))
            .collect();
        regions.sort_unstable();
        let regions: Vec<String> = regions.into_iter().map(str::to_string).collect();
        for region in &regions {
            let gate = self.gate(region, explicit);
            let Some(m) = self.map.get_mut(region) else {
                continue;
            };
            for (source, src) in m.iter_mut() {
                src.fire(env, (region, source), due.min(gate), out);
            }
            self.refresh_due(region);
        }
    }
}

/// The earliest due of a region's feeds.
fn earliest_due(feeds: &BTreeMap<String, Src>) -> Option<T32> {
    feeds.values().filter_map(Src::due).min()
}

impl Src {
    /// Judge what of this source is due at or before `due`: its silences (a lower bound
    /// passing is first made exact) and its days.
    fn fire(
        &mut self,
        env: Env<'_>,
        (region, source): (&str, &str),
        due: T32,
        out: &mut Vec<(String, Alert)>,
    ) {
        let key = (region, source);
        let mut alerts = Vec::new();
        while let Some((&since, &(at, exact))) = self.waiting.iter().find(|(_, w)| w.0 <= due) {
            self.waiting.remove(&since);
            if !exact {
                if let Some(d) = env.deadline(since) {
                    self.waiting.insert(since, (d, true));
                }
                continue;
            }
            self.fire_silence(env, since, at, &key, &mut alerts);
        }
        let days: Vec<u32> = self
            .days
            .iter()
            .filter(|(&d, c)| !c.judged && t32(Day(d).end()) <= due)
            .map(|(&d, _)| d)
            .collect();
        for d in days {
            if let Some(c) = self.days.get_mut(&d) {
                c.judged = true;
            }
            self.judge_day(env, Day(d), &key, None, &mut alerts);
        }
        out.extend(alerts.into_iter().map(|a| (format!("s{source}"), a)));
    }

    /// The earliest instant something of this source is to be judged: a silence, or the end
    /// of a day not judged yet.
    fn due(&self) -> Option<T32> {
        let silence = self.waiting.values().map(|w| w.0).min();
        let day = self
            .days
            .iter()
            .find(|(_, d)| !d.judged)
            .map(|(&d, _)| t32(Day(d).end()));
        silence.into_iter().chain(day).min()
    }

    /// Put a report time in its place and re-judge the silences it touches.
    fn report(
        &mut self,
        env: Env<'_>,
        at: T32,
        now: Instant,
        key: &(&str, &str),
        ev: &crate::Event<'_>,
        out: &mut Vec<Alert>,
    ) {
        let i = self.reports.partition_point(|&t| t < at);
        if self.reports.get(i) == Some(&at) {
            return;
        }
        self.reports.insert(i, at);
        let pred = i.checked_sub(1).map(|j| self.reports[j]);
        let succ = self.reports.get(i + 1).copied();
        let min_gap = env.policy.source_silence_minutes * 60;
        // The silence from the report before: it ends at this one if its deadline is later.
        if let Some(p) = pred {
            if let Some(&(fired_at, _, false)) = self.fired.get(&p) {
                if at < fired_at {
                    self.retract(env, p, key, ev, out);
                }
            }
            if self.waiting.contains_key(&p) {
                let still = at - p >= min_gap && env.deadline(p).is_some_and(|d| d <= at);
                if !still {
                    self.waiting.remove(&p);
                }
            }
        }
        // The silence from this one, until the next report (if any is known).
        match succ {
            None => {
                self.waiting.insert(at, (at + min_gap, false));
            }
            Some(s) if s - at >= min_gap => {
                if let Some(d) = env.deadline(at).filter(|&d| d <= s) {
                    if d <= t32(now) {
                        self.fire_silence(env, at, d, key, out);
                    } else {
                        self.waiting.insert(at, (d, true));
                    }
                }
            }
            Some(_) => {}
        }
    }

    fn fire_silence(
        &mut self,
        env: Env<'_>,
        since: T32,
        at: T32,
        key: &(&str, &str),
        out: &mut Vec<Alert>,
    ) {
        // Only a source that reported in the last 7 days (a feed retired, or one over a long
        // holiday, is not silent).
        if at - since > RECENT_SECS {
            return;
        }
        let revision = match self.fired.get(&since) {
            Some(&(_, _, false)) => return,
            Some(&(_, rev, true)) => explain::revision::fired_after(rev),
            None => 0,
        };
        self.fired.insert(since, (at, revision, false));
        let mut alert = self.silent_alert(env, since, at, key);
        alert.revision = revision;
        out.push(alert);
    }

    fn retract(
        &mut self,
        env: Env<'_>,
        since: T32,
        key: &(&str, &str),
        ev: &crate::Event<'_>,
        out: &mut Vec<Alert>,
    ) {
        let Some(&(at, rev, _)) = self.fired.get(&since) else {
            return;
        };
        self.fired
            .insert(since, (at, explain::revision::ended_after(rev), true));
        let mut alert = self.silent_alert(env, since, at, key);
        alert.revision = rev;
        let next = self
            .reports
            .iter()
            .find(|&&t| t > since)
            .copied()
            .unwrap_or(at);
        let mut alert =
            explain::retracted_as(alert, ev, &format!("该数据源于 {} 有上报", inst(next)));
        alert.evidence["retracted_by"]["reported_at"] = json!(inst(next));
        out.push(alert);
    }

    fn silent_alert(&self, env: Env<'_>, since: T32, at: T32, key: &(&str, &str)) -> Alert {
        let (region, source) = key;
        let minutes = env.policy.source_silence_minutes;
        let message = format!(
            "黄牌：数据源 {source} 自 {} 最后一次上报后，办公时间内已连续 {minutes} 分钟没有任何上报（至 {}），数据源静默，监察可能失明",
            inst(since),
            inst(at)
        );
        let evidence = json!({
            "source": source,
            "last_report_at": inst(since),
            "office_hours": env.policy.office_hours,
            "source_silence_minutes": minutes,
            "deadline": inst(at),
            "judged_on": "reported_at",
        });
        explain::build(
            Rule::SourceSilent,
            Level::Yellow,
            explain::subject(&[("source", json!(source)), ("since", json!(inst(since)))]),
            inst(at),
            self.attribution(region),
            message,
            evidence,
        )
    }

    fn attribution(&self, region: &str) -> Attribution {
        Attribution {
            center_id: self.center.clone(),
            region: region.to_string(),
            ..Attribution::default()
        }
    }

    /// `source.not_live` for a day that is over: fire or retract as its counts say.
    fn judge_day(
        &mut self,
        env: Env<'_>,
        day: Day,
        key: &(&str, &str),
        ev: Option<&crate::Event<'_>>,
        out: &mut Vec<Alert>,
    ) {
        let Some(c) = self.days.get(&day.0).cloned() else {
            return;
        };
        let share = if c.total == 0 {
            0.0
        } else {
            f64::from(c.after) / f64::from(c.total)
        };
        let want = env.cal.is_working(day) && share > env.policy.not_live_share;
        let standing = matches!(c.fired, Some((_, false)));
        if want == standing {
            return;
        }
        let rev = c.fired.map_or(0, |f| f.0);
        let mut alert = self.not_live_alert(env, day, &c, share, key);
        let new = if want {
            let rev = if c.fired.is_some() {
                explain::revision::fired_after(rev)
            } else {
                0
            };
            alert.revision = rev;
            out.push(alert);
            (rev, false)
        } else {
            alert.revision = rev;
            let what = format!("该日办结后上报的比例降至 {:.0}%", share * 100.0);
            // A retraction is caused by a late report, never by a timer.
            let Some(ev) = ev else { return };
            let alert = explain::retracted_as(alert, ev, &what);
            let rev = alert.revision;
            out.push(alert);
            (rev, true)
        };
        if let Some(d) = self.days.get_mut(&day.0) {
            d.fired = Some(new);
        }
    }

    fn not_live_alert(
        &self,
        env: Env<'_>,
        day: Day,
        c: &DayCount,
        share: f64,
        key: &(&str, &str),
    ) -> Alert {
        let (region, source) = key;
        let message = format!(
            "预警：数据源 {source} 在 {day} 发生的 {} 条办件过程数据中有 {} 条（{:.0}%）在办件办结上报之后才上报，超过 {:.0}%：该数据源非实时上报，无法对其办件实时预警",
            c.total,
            c.after,
            share * 100.0,
            env.policy.not_live_share * 100.0
        );
        let evidence = json!({
            "source": source,
            "date": day,
            "case_events": c.total,
            "reported_after_completion": c.after,
            "share": (share * 1000.0).round() / 1000.0,
            "not_live_share": env.policy.not_live_share,
        });
        explain::build(
            Rule::SourceNotLive,
            Level::Warning,
            explain::subject(&[("source", json!(source)), ("date", json!(day.to_string()))]),
            day.end(),
            self.attribution(region),
            message,
            evidence,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// The dues kept in order give what walking every source gives, through reports (late
    /// ones included), region clocks moving, the timers firing, and a restore (which drops
    /// them): three regions of four feeds, 5,000 random steps.
    #[test]
    fn the_ordered_dues_are_the_walks_answer() {
        let reference = crate::Reference::parse(&crate::synth::reference_files()).expect("ref");
        let policy = crate::Policy::default();
        let office = policy.office_hours().expect("office hours");
        let env = Env {
            cal: &reference.calendar,
            office: &office,
            policy: &policy,
        };
        let regions = ["430620", "430621", "430626"];
        let feeds = ["a", "b", "c", "d"];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let start = crate::time::parse_rfc3339("2026-03-02T08:00:00+08:00").expect("time");
        let mut now = t32(start);
        let mut sources = Sources::default();
        let (mut alerts, mut fired) = (Vec::new(), Vec::new());
        let mut judged = 0;
        for step in 0..5_000 {
            now += random(1_800) as T32;
            let region = regions[random(3) as usize];
            match random(20) {
                0 => {
                    // As the engine does: at the earliest due, with the same `explicit`;
                    // judging only the regions due gives what walking every feed gives.
                    let explicit = random(2) == 0;
                    let due = sources.next_due(explicit).unwrap_or(now).min(now);
                    let mut walked = sources.clone();
                    let mut by_walk = Vec::new();
                    walked.fire_by_walk(env, due, explicit, &mut by_walk);
                    let before = fired.len();
                    sources.fire(env, due, explicit, &mut fired);
                    assert_eq!(fired[before..], by_walk[..], "step {step}");
                    assert!(walked == sources, "step {step}: the same state");
                }
                1 => {
                    // A restore: the dues are not part of the state.
                    let text = serde_json::to_string(&sources).expect("serialise");
                    sources = serde_json::from_str(&text).expect("restore");
                }
                2..=5 => sources.note(region, now),
                _ => {
                    let at = now.saturating_sub(random(3) as T32 * 3_000);
                    let ev = crate::Event {
                        event_id: Cow::Owned(format!("e{step}")),
                        occurred_at: inst(at),
                        reported_at: Some(inst(at)),
                        received_at: None,
                        center_id: Cow::Borrowed("C0"),
                        region: Cow::Borrowed(region),
                        department: None,
                        window_id: None,
                        staff_id: None,
                        case_id: Some(Cow::Borrowed("K1")),
                        item_code: None,
                        source: Some(Cow::Borrowed(feeds[random(4) as usize])),
                        supersedes: None,
                        body: crate::event::Body::CaseStage {
                            stage: crate::event::Stage::Review,
                            result: crate::event::StageResult::Agree,
                        },
                    };
                    let report = Report {
                        region,
                        source: ev.source.as_deref().unwrap_or_default(),
                        center: "C0",
                        at,
                        day: inst(at).day(),
                        case_event: Some(random(4) == 0),
                    };
                    sources.note(region, at);
                    sources.on_report(env, &report, &ev, inst(now), &mut alerts);
                }
            }
            for explicit in [false, true] {
                let walked = sources.next_due_by_walk(explicit);
                assert_eq!(
                    sources.next_due(explicit),
                    walked,
                    "step {step}, {explicit}"
                );
                judged += usize::from(walked.is_some());
            }
        }
        // The walk had something to find most of the time, and the feeds were judged.
        assert!(judged > 5_000, "{judged}");
        assert!(!fired.is_empty(), "the timers judged nothing");
    }
}

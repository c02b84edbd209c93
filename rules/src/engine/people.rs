//! Per staff member and per window: the sliding windows behind the count-based rules (事后补录
//! bursts, repeated complaints, satisfaction) and the discipline ladder (一告知二谈话三通报四辞退).
//!
//! Every window drops entries that fall out of it as event time advances, so memory per staff
//! member or window is bounded by the window, and the number of them by the reference data.

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::time::Day;

use super::case::{inst, T32};
use super::ladder::Ladder;
use super::table::Sym;

const DAY_SECS: i64 = 86_400;

/// A qualifying completion in a staff member's batch window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchEntry {
    /// `case.completed`.
    pub completed: T32,
    /// `case.accepted`.
    pub accepted: T32,
    /// The case.
    pub case_id: Box<str>,
}

/// A complaint or bad evaluation counted in a sliding window: when, and which.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Strike {
    /// When it counted.
    pub at: T32,
    /// The complaint or evaluation id.
    pub id: Box<str>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct StaffState {
    /// Qualifying completions inside the batch window, oldest first.
    batch: VecDeque<BatchEntry>,
    /// A burst already alerted and not yet over.
    burst: bool,
    /// Substantiated complaints inside 365 days.
    substantiated: VecDeque<Strike>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct WindowState {
    /// Complaints and bad evaluations inside 30 days.
    strikes: VecDeque<Strike>,
    /// The latest evaluations: score ≥ 4?
    scores: VecDeque<bool>,
    /// Local date of the last satisfaction alert.
    low_day: Option<Day>,
}

/// Staff, window and ladder state.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct People {
    staff: HashMap<Sym, StaffState>,
    windows: HashMap<Sym, WindowState>,
    ladder: HashMap<(Sym, i32), Ladder>,
    /// Whose ladder (staff member, year) each card on record counts on, by alert id: a card's
    /// retraction is rebuilt from its case as it is now, which may name a later actor.
    owners: HashMap<Box<str>, (Sym, i32)>,
}

/// Drop entries at or before `t - window_secs` from the front of a time-ordered deque.
fn expire<T>(q: &mut VecDeque<T>, time: impl Fn(&T) -> T32, t: T32, window_secs: i64) {
    let floor = inst(t).0 - window_secs;
    while q.front().is_some_and(|e| inst(time(e)).0 <= floor) {
        q.pop_front();
    }
}

fn count_strike(
    q: &mut VecDeque<Strike>,
    strike: Strike,
    window_secs: i64,
    threshold: usize,
) -> Option<Vec<Strike>> {
    expire(q, |s| s.at, strike.at, window_secs);
    insert_sorted(q, strike, |s| s.at);
    (q.len() == threshold).then(|| q.iter().cloned().collect())
}

/// Insert keeping time order (late events go where they belong).
fn insert_sorted<T>(q: &mut VecDeque<T>, e: T, time: impl Fn(&T) -> T32) {
    let t = time(&e);
    let pos = q.iter().rposition(|x| time(x) <= t).map_or(0, |p| p + 1);
    q.insert(pos, e);
}

impl People {
    /// A qualifying completion by `staff`; returns the burst when it reaches `min` (事后补录).
    pub fn batch_completion(
        &mut self,
        staff: Sym,
        entry: BatchEntry,
        window_secs: i64,
        min: usize,
    ) -> Option<Vec<BatchEntry>> {
        let s = self.staff.entry(staff).or_default();
        let t = entry.completed;
        expire(&mut s.batch, |e| e.completed, t, window_secs);
        if s.batch.len() < min {
            s.burst = false;
        }
        insert_sorted(&mut s.batch, entry, |e| e.completed);
        if !s.burst && s.batch.len() >= min {
            s.burst = true;
            return Some(s.batch.iter().cloned().collect());
        }
        None
    }

    /// A substantiated complaint against `staff`; when the count in `(t − 365 days, t]` becomes
    /// exactly `threshold`, returns the complaints counted.
    pub fn substantiated(
        &mut self,
        staff: Sym,
        strike: Strike,
        threshold: usize,
    ) -> Option<Vec<Strike>> {
        let s = self.staff.entry(staff).or_default();
        count_strike(&mut s.substantiated, strike, 365 * DAY_SECS, threshold)
    }

    /// A complaint or bad evaluation against `window`; when the count in `(t − 30 days, t]`
    /// becomes exactly `threshold`, returns what was counted.
    pub fn window_strike(
        &mut self,
        window: Sym,
        strike: Strike,
        threshold: usize,
    ) -> Option<Vec<Strike>> {
        let w = self.windows.entry(window).or_default();
        count_strike(&mut w.strikes, strike, 30 * DAY_SECS, threshold)
    }

    /// An evaluation of `window`; returns (satisfied, sample) when the window's satisfaction
    /// over a full sample is below `floor` and it has not been flagged on `day` yet.
    pub fn window_score(
        &mut self,
        window: Sym,
        satisfied: bool,
        day: Day,
        sample: usize,
        floor: f64,
    ) -> Option<(usize, usize)> {
        let w = self.windows.entry(window).or_default();
        w.scores.push_back(satisfied);
        while w.scores.len() > sample {
            w.scores.pop_front();
        }
        if w.scores.len() < sample {
            return None;
        }
        let good = w.scores.iter().filter(|&&s| s).count();
        if (good as f64) / (sample as f64) < floor && w.low_day != Some(day) {
            w.low_day = Some(day);
            return Some((good, sample));
        }
        None
    }

    /// The ladder of `staff` in `year`.
    pub fn ladder(&mut self, staff: Sym, year: i32) -> &mut Ladder {
        self.ladder.entry((staff, year)).or_default()
    }

    /// Record that the card `id` counts on `staff`'s ladder of `year`, unless it already
    /// counts somewhere; returns where it counts.
    pub fn own_card(&mut self, id: &str, staff: Sym, year: i32) -> (Sym, i32) {
        *self.owners.entry(id.into()).or_insert((staff, year))
    }

    /// Where the card `id` counted, forgetting it (it was retracted).
    pub fn disown_card(&mut self, id: &str) -> Option<(Sym, i32)> {
        self.owners.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> T32 {
        super::super::case::t32(crate::time::Instant(1_772_400_000 + secs))
    }

    fn entry(t: i64) -> BatchEntry {
        BatchEntry {
            completed: at(t),
            accepted: at(t - 30),
            case_id: format!("C{t}").into(),
        }
    }

    #[test]
    fn a_burst_alerts_once_until_it_is_over() {
        let mut p = People::default();
        let fired: Vec<bool> = [0, 60, 120, 180, 240, 300, 1000, 1060, 1120, 1180]
            .iter()
            .map(|&t| p.batch_completion(1, entry(t), 600, 5).is_some())
            .collect();
        // 5th completion reaches 5; the 6th is the same burst. At 1000 the window (400, 1000]
        // holds 1 entry: the burst is over, but 1000–1180 make only 4.
        assert_eq!(
            fired,
            [false, false, false, false, true, false, false, false, false, false]
        );
        assert!(
            p.batch_completion(1, entry(1190), 600, 5).is_some(),
            "a new burst of 5"
        );
    }

    #[test]
    fn windows_exclude_their_lower_edge() {
        let mut p = People::default();
        let k = |t: i64, id: &str| Strike {
            at: at(t),
            id: id.into(),
        };
        assert!(p.window_strike(7, k(0, "a"), 2).is_none());
        let outside = p.window_strike(7, k(30 * DAY_SECS, "b"), 2);
        assert!(outside.is_none(), "exactly 30 days later: outside");
        let hit = p
            .window_strike(7, k(30 * DAY_SECS + 1, "c"), 2)
            .expect("inside");
        let ids: Vec<&str> = hit.iter().map(|s| &*s.id).collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn satisfaction_is_judged_on_full_samples_once_a_day() {
        let mut p = People::default();
        let d = Day(9000);
        assert_eq!(p.window_score(1, false, d, 3, 0.9), None, "sample not full");
        assert_eq!(p.window_score(1, true, d, 3, 0.9), None);
        assert_eq!(p.window_score(1, true, d, 3, 0.9), Some((2, 3)));
        assert_eq!(p.window_score(1, true, d, 3, 0.9), None, "once per day");
        assert_eq!(
            p.window_score(1, false, Day(9001), 3, 0.9),
            Some((2, 3)),
            "next day"
        );
    }
}

//! Per staff member and per window: the sliding windows behind the count-based rules (事后补录
//! bursts, repeated complaints, satisfaction) and the discipline ladder (一告知二谈话三通报四辞退).
//!
//! Every window drops entries that fall out of it as event time advances, so memory per staff
//! member or window is bounded by the window, and the number of them by the reference data.

use std::collections::VecDeque;

use hashbrown::HashMap;

use crate::time::Day;

use super::batch::Bursts;
use super::count::{CountChange, Counter, Strike};
use super::ladder::{CardId, Ladder};
use super::table::Sym;

const DAY_SECS: i64 = 86_400;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct StaffState {
    /// Qualifying completions and the bursts they make (事后补录).
    batch: Bursts,
    /// Substantiated complaints (365 days, and late reports' time).
    substantiated: Counter,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct WindowState {
    /// Complaints and bad evaluations (30 days, and late reports' time).
    strikes: Counter,
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
    /// retraction is rebuilt from its case as it is now, which may name a later actor. Keyed
    /// by the id's 16 bytes (24 bytes an entry, against 32 keyed by [`CardId`]); ids that are
    /// not alert ids, which no card the owners are asked about has today, by their text.
    owners: HashMap<[u8; 16], (Sym, i32)>,
    owners_by_text: HashMap<Box<str>, (Sym, i32)>,
}

impl People {
    /// Heap bytes of each part (see `Engine::heap_by_part`).
    pub fn heap_by_part(&self, live: &dyn Fn() -> usize) -> Vec<(&'static str, usize)> {
        use super::snapshot::heap;
        vec![
            (
                "people: staff (事后补录 bursts, substantiated complaints)",
                heap(&self.staff, live),
            ),
            (
                "people: windows (complaints, evaluations)",
                heap(&self.windows, live),
            ),
            (
                "people: ladders (cards and steps)",
                heap(&self.ladder, live),
            ),
            (
                "people: card owners",
                heap(&self.owners, live) + heap(&self.owners_by_text, live),
            ),
        ]
    }

    /// The qualifying completions and bursts of `staff` (事后补录).
    pub fn bursts(&mut self, staff: Sym) -> &mut Bursts {
        &mut self.staff.entry(staff).or_default().batch
    }

    /// Every staff member's counted completions (事后补录), for a case rebuilt on its own.
    pub fn burst_entries(&self) -> impl Iterator<Item = (Sym, &super::batch::BatchEntry)> {
        self.staff
            .iter()
            .flat_map(|(s, st)| st.batch.entries().iter().map(move |e| (*s, e)))
    }

    /// A substantiated complaint against `staff`: `complaint.repeated_staff` counts them in
    /// `(t − 365 days, t]` (`count.rs`); `keep` is how much longer late reports are awaited.
    pub fn substantiated(
        &mut self,
        staff: Sym,
        strike: Strike,
        threshold: usize,
        keep: i64,
        out: &mut Vec<CountChange>,
    ) {
        let s = self.staff.entry(staff).or_default();
        let window = 365 * DAY_SECS;
        s.substantiated
            .insert(strike, window, threshold, window + keep, out);
    }

    /// A complaint or bad evaluation against `window`: `complaint.repeated_window` counts them
    /// in `(t − 30 days, t]`.
    pub fn window_strike(
        &mut self,
        window: Sym,
        strike: Strike,
        threshold: usize,
        keep: i64,
        out: &mut Vec<CountChange>,
    ) {
        let w = self.windows.entry(window).or_default();
        let span = 30 * DAY_SECS;
        w.strikes.insert(strike, span, threshold, span + keep, out);
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
        let owner = match CardId::new(id) {
            CardId::Hex(bytes) => self.owners.entry(bytes),
            CardId::Text(text) => return *self.owners_by_text.entry(text).or_insert((staff, year)),
        };
        *owner.or_insert((staff, year))
    }

    /// Where the card `id` counted, forgetting it (it was retracted).
    pub fn disown_card(&mut self, id: &str) -> Option<(Sym, i32)> {
        match CardId::new(id) {
            CardId::Hex(bytes) => self.owners.remove(&bytes),
            CardId::Text(text) => self.owners_by_text.remove(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> super::super::case::T32 {
        super::super::case::t32(crate::time::Instant(1_772_400_000 + secs))
    }

    #[test]
    fn a_card_counts_where_it_was_first_counted_until_retracted() {
        let mut p = People::default();
        let hex = "0123456789abcdef0123456789abcdef";
        for id in [hex, "complaint:C-9", "ABCDEF0123456789abcdef0123456789"] {
            assert_eq!(p.own_card(id, 7, 2026), (7, 2026), "{id}");
            assert_eq!(
                p.own_card(id, 8, 2027),
                (7, 2026),
                "{id}: first owner stays"
            );
            assert_eq!(p.disown_card(id), Some((7, 2026)), "{id}");
            assert_eq!(p.disown_card(id), None, "{id}: forgotten");
            assert_eq!(p.own_card(id, 8, 2027), (8, 2027), "{id}: counted anew");
        }
        // An upper-case id is not the lower-case one's: ids are compared as text.
        assert_eq!(p.disown_card(&hex.to_uppercase()), None);
        assert_eq!(p.disown_card(hex), Some((8, 2027)));
    }

    #[test]
    fn windows_exclude_their_lower_edge() {
        let mut p = People::default();
        let k = |t: i64, id: &str| Strike {
            at: at(t),
            id: id.into(),
            place: Default::default(),
        };
        let mut out = Vec::new();
        p.window_strike(7, k(0, "a"), 2, 0, &mut out);
        assert!(out.is_empty());
        p.window_strike(7, k(30 * DAY_SECS, "b"), 2, 0, &mut out);
        assert!(out.is_empty(), "exactly 30 days later: outside");
        p.window_strike(7, k(30 * DAY_SECS + 1, "c"), 2, 0, &mut out);
        let Some(CountChange::Fire { counted, .. }) = out.first() else {
            panic!("inside: {out:?}");
        };
        let ids: Vec<&str> = counted.iter().map(|s| &*s.id).collect();
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

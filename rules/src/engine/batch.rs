//! `hall.batch_entry` (事后补录) for one staff member, as a function of their qualifying
//! completions.
//!
//! **Invariant: the bursts on record are those the qualifying completions give**, in time order
//! (docs/RULES.md): walking the completions sorted by (`completed`, case id), the window holds
//! those in `(t − window, t)` before the one at `t`; fewer than `min` there ends a burst; a
//! completion that brings the window to `min` or more while no burst is on starts one, which
//! fires at it. The completions are kept `keep` seconds behind the latest, so one that arrives
//! late (its acceptance or its own report delayed, a batch retried after later ones) re-works
//! the bursts and only the differences come out: a burst that starts elsewhere is retracted and
//! the new one fired, a burst reached at another completion is issued again with a higher
//! revision. In-order arrival gives exactly the bursts it always gave.

use serde::{Deserialize, Serialize};

use super::case::T32;
use super::explain::revision;

/// Where a qualifying completion happened (the alert is attributed like the completion that
/// fired it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub center_id: Box<str>,
    pub region: Box<str>,
    pub department: Option<Box<str>>,
    pub window_id: Option<Box<str>>,
    pub staff_id: Option<Box<str>>,
    pub case_id: Option<Box<str>>,
    pub item_code: Option<Box<str>>,
}

/// A qualifying completion: a 承诺件 completed less than `batch_max_case_seconds` after its
/// acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEntry {
    /// `case.completed`.
    pub completed: T32,
    /// `case.accepted`.
    pub accepted: T32,
    /// The case.
    pub case_id: Box<str>,
    /// Where the completion was recorded.
    pub place: Place,
}

impl Place {
    /// Where an alert was attributed.
    pub fn from_attribution(who: &super::explain::Attribution) -> Place {
        let own = |s: &Option<String>| s.as_deref().map(Into::into);
        Place {
            center_id: who.center_id.as_str().into(),
            region: who.region.as_str().into(),
            department: own(&who.department),
            window_id: own(&who.window_id),
            staff_id: own(&who.staff_id),
            case_id: own(&who.case_id),
            item_code: own(&who.item_code),
        }
    }

    /// The attribution of an alert fired where this was recorded.
    pub fn attribution(&self) -> super::explain::Attribution {
        let own = |s: &Option<Box<str>>| s.as_deref().map(str::to_string);
        super::explain::Attribution {
            center_id: self.center_id.to_string(),
            region: self.region.to_string(),
            department: own(&self.department),
            window_id: own(&self.window_id),
            staff_id: own(&self.staff_id),
            case_id: own(&self.case_id),
            item_code: own(&self.item_code),
        }
    }

    /// Where `ev` was recorded.
    pub fn of(ev: &crate::event::Event<'_>) -> Place {
        let own = |s: &Option<std::borrow::Cow<'_, str>>| s.as_deref().map(Into::into);
        Place {
            center_id: ev.center_id.as_ref().into(),
            region: ev.region.as_ref().into(),
            department: own(&ev.department),
            window_id: own(&ev.window_id),
            staff_id: own(&ev.staff_id),
            case_id: own(&ev.case_id),
            item_code: own(&ev.item_code),
        }
    }
}

impl BatchEntry {
    fn key(&self) -> (T32, &str) {
        (self.completed, &self.case_id)
    }
}

/// A burst as last emitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Emitted {
    entries: Vec<BatchEntry>,
    revision: u8,
    retracted: bool,
}

impl Emitted {
    /// The burst's identity (`subject.batch`): its earliest completion.
    fn first(&self) -> T32 {
        self.entries.first().map_or(0, |e| e.completed)
    }
}

/// What changed: a burst to fire (or issue again), or to retract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BurstChange {
    /// Fire the burst of `entries`, at the last one, with this revision.
    Fire {
        entries: Vec<BatchEntry>,
        revision: u8,
    },
    /// Retract the burst of `entries` (as last fired); the retraction has this revision.
    Retract {
        entries: Vec<BatchEntry>,
        revision: u8,
    },
}

/// One staff member's qualifying completions and bursts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bursts {
    /// Sorted by (`completed`, case id).
    entries: Vec<BatchEntry>,
    emitted: Vec<Emitted>,
    /// The latest completion forgotten: bursts that begin within a window of it are left as
    /// they were (what came before them is no longer known).
    #[serde(default)]
    horizon: Option<T32>,
}

impl Bursts {
    /// Count a qualifying completion (one already counted changes nothing) and emit what that
    /// changes. `window` and `keep` are seconds.
    pub fn insert(
        &mut self,
        entry: BatchEntry,
        window: i64,
        min: usize,
        keep: i64,
        out: &mut Vec<BurstChange>,
    ) {
        let pos = match self.entries.binary_search_by(|e| e.key().cmp(&entry.key())) {
            Ok(_) => return,
            Err(pos) => pos,
        };
        let late = pos < self.entries.len();
        self.entries.insert(pos, entry);
        self.forget(keep);
        let mut want = bursts(&self.entries, window, min);
        let horizon = self.horizon;
        let settled =
            move |first: T32| horizon.is_some_and(|h| i64::from(first) - window <= i64::from(h));
        want.retain(|b| !settled(b[0].completed));
        if !late {
            // The common case: only the newest completion can start a burst.
            let Some(last) = want.last().filter(|b| b.last() == self.entries.last()) else {
                return;
            };
            if self.emitted.iter().any(|e| e.first() == last[0].completed) {
                return self.diff(want, settled, out);
            }
            self.emitted.push(Emitted {
                entries: last.clone(),
                revision: 0,
                retracted: false,
            });
            out.push(BurstChange::Fire {
                entries: last.clone(),
                revision: 0,
            });
            return;
        }
        self.diff(want, settled, out);
    }

    /// The qualifying completions counted, in order.
    pub fn entries(&self) -> &[BatchEntry] {
        &self.entries
    }

    /// Take back the completion of `case_id` (a correction moved or withdrew it) and emit what
    /// that changes. Arguments as for [`Bursts::insert`].
    pub fn remove(&mut self, case_id: &str, window: i64, min: usize, out: &mut Vec<BurstChange>) {
        let Some(pos) = self.entries.iter().position(|e| &*e.case_id == case_id) else {
            return;
        };
        self.entries.remove(pos);
        let mut want = bursts(&self.entries, window, min);
        let horizon = self.horizon;
        let settled =
            move |first: T32| horizon.is_some_and(|h| i64::from(first) - window <= i64::from(h));
        want.retain(|b| !settled(b[0].completed));
        self.diff(want, settled, out);
    }

    /// Bring the emitted bursts in line with `want`.
    fn diff(
        &mut self,
        want: Vec<Vec<BatchEntry>>,
        settled: impl Fn(T32) -> bool,
        out: &mut Vec<BurstChange>,
    ) {
        let firsts: Vec<T32> = want.iter().map(|b| b[0].completed).collect();
        for e in self.emitted.iter_mut() {
            if !e.retracted && !settled(e.first()) && !firsts.contains(&e.first()) {
                e.retracted = true;
                e.revision = revision::ended_after(e.revision);
                out.push(BurstChange::Retract {
                    entries: e.entries.clone(),
                    revision: e.revision,
                });
            }
        }
        for b in want {
            let first = b[0].completed;
            match self.emitted.iter_mut().find(|e| e.first() == first) {
                Some(e) if !e.retracted && e.entries.last() == b.last() => {}
                Some(e) => {
                    e.revision = revision::fired_after(e.revision);
                    e.retracted = false;
                    e.entries = b.clone();
                    out.push(BurstChange::Fire {
                        entries: b,
                        revision: e.revision,
                    });
                }
                None => {
                    self.emitted.push(Emitted {
                        entries: b.clone(),
                        revision: 0,
                        retracted: false,
                    });
                    out.push(BurstChange::Fire {
                        entries: b,
                        revision: 0,
                    });
                }
            }
        }
    }

    /// Drop completions more than `keep` seconds before the latest, and the bursts that began
    /// before the earliest one kept (they can no longer change).
    fn forget(&mut self, keep: i64) {
        let Some(latest) = self.entries.last().map(|e| i64::from(e.completed)) else {
            return;
        };
        let old = self
            .entries
            .partition_point(|e| latest - i64::from(e.completed) > keep);
        if old == 0 {
            return;
        }
        let gone = self.entries.drain(..old).map(|e| e.completed).max();
        self.horizon = self.horizon.max(gone);
        let floor = self.entries.first().map_or(0, |e| e.completed);
        self.emitted.retain(|e| e.first() >= floor);
    }
}

/// The bursts `entries` (sorted) give, each as the completions in its window when it fired.
fn bursts(entries: &[BatchEntry], window: i64, min: usize) -> Vec<Vec<BatchEntry>> {
    let mut out = Vec::new();
    let mut lo = 0;
    let mut on = false;
    for (i, e) in entries.iter().enumerate() {
        let t = i64::from(e.completed);
        while lo < i && i64::from(entries[lo].completed) <= t - window {
            lo += 1;
        }
        if i - lo < min {
            on = false;
        }
        if !on && i - lo + 1 >= min {
            on = true;
            out.push(entries[lo..=i].to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: T32) -> BatchEntry {
        BatchEntry {
            completed: t,
            accepted: t - 30,
            case_id: format!("C{t}").into(),
            place: Place::default(),
        }
    }

    fn fired(changes: &[BurstChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                BurstChange::Fire { entries, revision } => format!(
                    "fire {}..{} r{revision}",
                    entries[0].completed,
                    entries.last().map_or(0, |e| e.completed)
                ),
                BurstChange::Retract { entries, revision } => {
                    format!("retract {} r{revision}", entries[0].completed)
                }
            })
            .collect()
    }

    const T: T32 = 100_000;

    #[test]
    fn a_burst_alerts_once_until_it_is_over() {
        let mut b = Bursts::default();
        let mut out = Vec::new();
        for dt in [0, 60, 120, 180, 240, 300, 1000, 1060, 1120, 1180] {
            b.insert(entry(T + dt), 600, 5, 86_400, &mut out);
        }
        // 5th completion reaches 5; the 6th is the same burst. At 1000 the window (400, 1000)
        // holds none: the burst is over, but 1000–1180 make only 4.
        assert_eq!(fired(&out), ["fire 100000..100240 r0"]);
        out.clear();
        b.insert(entry(T + 1190), 600, 5, 86_400, &mut out);
        assert_eq!(fired(&out), ["fire 101000..101190 r0"], "a new burst of 5");
    }

    #[test]
    fn late_completions_give_the_bursts_of_the_in_order_stream() {
        let times: Vec<T32> = [0, 60, 120, 180, 240, 900, 1300, 1330, 1360, 1390, 1420]
            .iter()
            .map(|dt| T + dt)
            .collect();
        let mut in_order = Bursts::default();
        let mut want = Vec::new();
        for &t in &times {
            in_order.insert(entry(t), 600, 5, 86_400, &mut want);
        }
        // Every arrival order ends with the same bursts on record.
        let mut rng = 7u64;
        for _ in 0..50 {
            let mut shuffled = times.clone();
            for i in (1..shuffled.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                shuffled.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let mut late = Bursts::default();
            let mut sink = Vec::new();
            for &t in &shuffled {
                late.insert(entry(t), 600, 5, 86_400, &mut sink);
            }
            let on_record = |b: &Bursts| -> Vec<(T32, T32)> {
                b.emitted
                    .iter()
                    .filter(|e| !e.retracted)
                    .map(|e| (e.first(), e.entries.last().map_or(0, |x| x.completed)))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect()
            };
            assert_eq!(on_record(&late), on_record(&in_order), "{shuffled:?}");
        }
        assert_eq!(
            fired(&want),
            ["fire 100000..100240 r0", "fire 100900..101390 r0"]
        );
    }

    #[test]
    fn a_late_completion_that_starts_the_burst_earlier_retracts_the_old_one() {
        let mut b = Bursts::default();
        let mut out = Vec::new();
        for dt in [100, 160, 220, 280, 340] {
            b.insert(entry(T + dt), 600, 5, 86_400, &mut out);
        }
        out.clear();
        b.insert(entry(T), 600, 5, 86_400, &mut out);
        // Now the burst starts at T and is reached at T+280.
        assert_eq!(fired(&out), ["retract 100100 r2", "fire 100000..100280 r0"]);
    }
}

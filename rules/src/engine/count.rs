//! The count rules `complaint.repeated_window` and `complaint.repeated_staff` for one window or
//! staff member, as a function of the complaints (and bad ratings) counted against them.
//!
//! **Invariant: the alerts on record are those the strikes give** in time order: walking the
//! strikes sorted by (`at`, id), the one at `t` fires when the strikes in `(t − window, t]` up to
//! and including it number exactly `threshold` (docs/RULES.md). Strikes are kept `keep` seconds
//! behind the latest (the window plus the time late reports may take), so one that arrives late
//! re-works the count and only the differences come out: a trigger no longer reached is
//! retracted, a new one fires at its own instant. In-order arrival gives exactly what it always
//! gave.

use serde::{Deserialize, Serialize};

use super::batch::Place;
use super::case::T32;
use super::explain::revision;

/// A complaint or bad evaluation counted in a sliding window: when, which, and where it was
/// recorded (the alert it triggers is attributed like it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strike {
    /// When it counted.
    pub at: T32,
    /// The complaint or evaluation id.
    pub id: Box<str>,
    /// Where its event was recorded.
    pub place: Place,
}

impl Strike {
    fn key(&self) -> (T32, &str) {
        (self.at, &self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Emitted {
    counted: Vec<Strike>,
    revision: u8,
    retracted: bool,
}

impl Emitted {
    fn trigger(&self) -> Option<&Strike> {
        self.counted.last()
    }
}

/// What changed: an alert to fire at the last strike counted, or to retract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountChange {
    Fire { counted: Vec<Strike>, revision: u8 },
    Retract { counted: Vec<Strike>, revision: u8 },
}

/// The strikes against one window or staff member and the alerts they triggered.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counter {
    /// Sorted by (`at`, id).
    strikes: Vec<Strike>,
    emitted: Vec<Emitted>,
    /// The latest `at` among strikes forgotten: a trigger whose window reaches back to it can
    /// no longer be worked out, and is left as it was.
    #[serde(default)]
    horizon: Option<T32>,
}

impl Counter {
    /// Count a strike (one already counted changes nothing) and emit what that changes.
    /// `window` and `keep` are seconds.
    pub fn insert(
        &mut self,
        strike: Strike,
        window: i64,
        threshold: usize,
        keep: i64,
        out: &mut Vec<CountChange>,
    ) {
        let pos = match self
            .strikes
            .binary_search_by(|s| s.key().cmp(&strike.key()))
        {
            Ok(_) => return,
            Err(pos) => pos,
        };
        self.strikes.insert(pos, strike);
        self.forget(keep.max(window));
        let settled = |at: T32| {
            self.horizon
                .is_some_and(|h| i64::from(at) - window <= i64::from(h))
        };
        let mut want = triggers(&self.strikes, window, threshold);
        want.retain(|w| w.last().is_some_and(|s| !settled(s.at)));
        let horizon = self.horizon;
        for e in self.emitted.iter_mut() {
            let frozen = e
                .trigger()
                .is_some_and(|s| horizon.is_some_and(|h| i64::from(s.at) - window <= i64::from(h)));
            if frozen {
                continue;
            }
            let id = e.trigger().map(|s| s.id.clone());
            let kept = want
                .iter()
                .any(|w| w.last().map(|s| &s.id) == id.as_ref() && !e.retracted);
            if !e.retracted && !kept {
                e.retracted = true;
                e.revision = revision::ended_after(e.revision);
                out.push(CountChange::Retract {
                    counted: e.counted.clone(),
                    revision: e.revision,
                });
            }
        }
        for w in want {
            let id = w.last().map(|s| s.id.clone());
            match self
                .emitted
                .iter_mut()
                .find(|e| e.trigger().map(|s| &s.id) == id.as_ref())
            {
                Some(e) if !e.retracted => {}
                Some(e) => {
                    e.retracted = false;
                    e.revision = revision::fired_after(e.revision);
                    e.counted = w.clone();
                    out.push(CountChange::Fire {
                        counted: w,
                        revision: e.revision,
                    });
                }
                None => {
                    self.emitted.push(Emitted {
                        counted: w.clone(),
                        revision: 0,
                        retracted: false,
                    });
                    out.push(CountChange::Fire {
                        counted: w,
                        revision: 0,
                    });
                }
            }
        }
    }

    /// Drop strikes more than `keep` seconds before the latest, and the alerts they triggered.
    fn forget(&mut self, keep: i64) {
        let Some(latest) = self.strikes.last().map(|s| i64::from(s.at)) else {
            return;
        };
        let old = self
            .strikes
            .partition_point(|s| latest - i64::from(s.at) > keep);
        if old == 0 {
            return;
        }
        let gone = self.strikes.drain(..old).map(|s| s.at).max();
        self.horizon = self.horizon.max(gone);
        let floor = self.strikes.first().map_or(0, |s| s.at);
        self.emitted
            .retain(|e| e.trigger().is_some_and(|s| s.at >= floor));
    }
}

/// Each strike at which the count in its window becomes exactly `threshold`, with the strikes
/// counted.
fn triggers(strikes: &[Strike], window: i64, threshold: usize) -> Vec<Vec<Strike>> {
    let mut out = Vec::new();
    let mut lo = 0;
    for (i, s) in strikes.iter().enumerate() {
        let t = i64::from(s.at);
        while lo < i && i64::from(strikes[lo].at) <= t - window {
            lo += 1;
        }
        if i - lo + 1 == threshold {
            out.push(strikes[lo..=i].to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strike(at: T32) -> Strike {
        Strike {
            at,
            id: format!("K{at}").into(),
            place: Place::default(),
        }
    }

    fn run(times: &[T32]) -> Vec<(String, u8, bool)> {
        let mut c = Counter::default();
        let mut out = Vec::new();
        for &t in times {
            c.insert(strike(t), 100, 3, 1_000, &mut out);
        }
        let mut on_record: Vec<_> = c
            .emitted
            .iter()
            .filter(|e| !e.retracted)
            .map(|e| {
                (
                    e.trigger().map_or(String::new(), |s| s.id.to_string()),
                    0,
                    false,
                )
            })
            .collect();
        on_record.sort();
        on_record
    }

    #[test]
    fn the_count_becomes_exactly_the_threshold_once_per_window() {
        // (t − 100, t]: 10, 20, 30 → 3 at 30; 40 makes 4 (not exactly 3); 200 is alone again;
        // 210, 290 → 3 at 290.
        let got = run(&[10, 20, 30, 40, 200, 210, 290]);
        let ids: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(ids, ["K290", "K30"]);
    }

    #[test]
    fn forgetting_old_strikes_never_retracts_what_they_triggered() {
        let mut c = Counter::default();
        let mut out = Vec::new();
        for t in [10, 20, 30, 120, 125, 126] {
            c.insert(strike(t), 100, 3, 100, &mut out);
        }
        // 10 and 20 are forgotten at 126; the trigger at 30 they made stands, 125 fires.
        let summary: Vec<String> = out
            .iter()
            .map(|c| match c {
                CountChange::Fire { counted, .. } => format!("fire {}", counted[2].at),
                CountChange::Retract { counted, .. } => format!("retract {}", counted[2].at),
            })
            .collect();
        assert_eq!(summary, ["fire 30", "fire 125"]);
    }

    #[test]
    fn any_arrival_order_leaves_the_in_order_triggers() {
        let times = [10, 20, 30, 40, 115, 130, 200, 210, 290, 295];
        let want = run(&times);
        let mut rng = 11u64;
        for _ in 0..100 {
            let mut t = times.to_vec();
            for i in (1..t.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                t.swap(i, (rng >> 33) as usize % (i + 1));
            }
            assert_eq!(run(&t), want, "{t:?}");
        }
    }
}

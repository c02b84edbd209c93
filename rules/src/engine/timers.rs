//! The engine's timers: a min-heap of (due, slot, generation), four children a node.
//!
//! A case or matter keeps one live entry (`arm` in `mod.rs`); stale ones are recognised by
//! their generation or due when they pop. With a province's open cases the heap holds hundreds
//! of thousands of entries, and a binary heap's `pop` walked twice as many levels, each a likely
//! cache miss: a replay's engine thread spent 7 % of its time there. Four children sit in 48
//! contiguous bytes, so a level costs one or two cache lines and there are half as many.
//!
//! Pops come out in the order of the entries (ties are identical entries), as from
//! `BinaryHeap<Reverse<_>>`; a snapshot holds the same sequence of entries as it did with one,
//! so either reads the other's.

use std::cmp::Reverse;

use super::case::T32;

/// One timer: when, which case or matter slot, its generation.
pub type Entry = (T32, u32, u32);

const ARITY: usize = 4;

/// A min-heap of timer entries.
#[derive(Debug, Clone, Default)]
pub struct Timers(Vec<Entry>);

impl Timers {
    /// The earliest entry.
    pub fn peek(&self) -> Option<&Entry> {
        self.0.first()
    }

    /// Add an entry.
    pub fn push(&mut self, e: Entry) {
        self.0.push(e);
        let mut i = self.0.len() - 1;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.0[i] >= self.0[parent] {
                break;
            }
            self.0.swap(i, parent);
            i = parent;
        }
    }

    /// Take the earliest entry.
    pub fn pop(&mut self) -> Option<Entry> {
        let last = self.0.pop()?;
        if self.0.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.0[0], last);
        self.sift_down(0);
        Some(top)
    }

    /// Entries held (stale ones included).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No entry held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.0.len();
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                return;
            }
            let mut least = first;
            for c in first + 1..(first + ARITY).min(n) {
                if self.0[c] < self.0[least] {
                    least = c;
                }
            }
            if self.0[least] >= self.0[i] {
                return;
            }
            self.0.swap(i, least);
            i = least;
        }
    }

    /// A heap of `entries` in any order.
    fn from_entries(entries: Vec<Entry>) -> Timers {
        let mut heap = Timers(entries);
        for i in (0..heap.0.len() / ARITY + 1).rev() {
            heap.sift_down(i);
        }
        heap
    }
}

/// As `BinaryHeap<Reverse<Entry>>` was written: the sequence of entries, each as `Reverse`.
impl serde::Serialize for Timers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|&e| Reverse(e)))
    }
}

impl<'de> serde::Deserialize<'de> for Timers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<Reverse<Entry>>::deserialize(d)?;
        Ok(Timers::from_entries(
            entries.into_iter().map(|Reverse(e)| e).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BinaryHeap;

    /// Pushes and pops at random (small dues, so many equal dues and some equal entries)
    /// against the standard binary heap: the same entry at every pop, and snapshots that each
    /// reads from the other.
    #[test]
    fn pops_as_the_binary_heap_does_and_snapshots_read_both_ways() {
        let mut seed = 11u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % m) as u32
        };
        let mut ours = Timers::default();
        let mut std_heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
        for step in 0..20_000 {
            if next(3) < 2 {
                let e = (next(50), next(20), next(2));
                ours.push(e);
                std_heap.push(Reverse(e));
            } else {
                assert_eq!(
                    ours.pop(),
                    std_heap.pop().map(|Reverse(e)| e),
                    "step {step}"
                );
            }
            assert_eq!(ours.peek(), std_heap.peek().map(|Reverse(e)| e));
            assert_eq!(ours.len(), std_heap.len());
            if step % 2_500 == 0 {
                let from_ours = postcard::to_allocvec(&ours).expect("ours");
                let from_std = postcard::to_allocvec(&std_heap).expect("std");
                let mut a: Timers = postcard::from_bytes(&from_std).expect("std into ours");
                let mut b: BinaryHeap<Reverse<Entry>> =
                    postcard::from_bytes(&from_ours).expect("ours into std");
                let mut c: Timers = postcard::from_bytes(&from_ours).expect("ours again");
                let mut left = ours.clone();
                while let Some(e) = left.pop() {
                    assert_eq!(a.pop(), Some(e));
                    assert_eq!(b.pop(), Some(Reverse(e)));
                    assert_eq!(c.pop(), Some(e));
                }
                assert!(a.is_empty() && b.is_empty() && c.is_empty());
            }
        }
        while let Some(Reverse(e)) = std_heap.pop() {
            assert_eq!(ours.pop(), Some(e));
        }
        assert!(ours.is_empty());
    }
}

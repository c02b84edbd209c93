//! Engine snapshots: the whole state as bytes, for checkpoints (cluster mode, with the Kafka
//! offsets they cover) and restarts (embedded mode).
//!
//! ```text
//! b"JIANCHA\x01" | postcard(Image) | xxh3_64(payload) as little-endian u64
//! ```
//! The image holds facts only — cases, matters, staff and window windows, timers, the duplicate
//! filter, interned names, the clock and counters, and the window board (windows, staff
//! whereabouts, queue tickets and their timers). Hash indexes are rebuilt on restore. The
//! reference data and policy are not in it: they are handed to [`Engine::restore`], and since
//! every deadline is recomputed from facts, a policy or calendar changed across a restart simply
//! applies from then on. Windows added to `windows.csv` since the snapshot join the board on
//! restore. Format 2 added the window board, format 3 the jurisdictions learnt for unlisted ids
//! and region-scoped keys (older images are refused: restart from the events, as for any format
//! change); format 5 the data-integrity state (placeholder firings, the feeds' reports and
//! daily counts) and each case's reported pauses and latest stage report; format 7 every
//! placeholder act (so corrections move the finding) and each case's versions applied before
//! the version they supersede.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::policy::Policy;
use crate::reference::Reference;
use crate::time::Instant;

use super::case::Case;
use super::jurisdiction::Bindings;
use super::matter::Matter;
use super::people::People;
use super::table::{Dedup, Departed, Slab, Symbols};
use super::windows::Board;
use super::{Engine, Stats};

const MAGIC: &[u8; 8] = b"JIANCHA\x01";
/// Version of the image layout; bumped when it changes incompatibly.
const FORMAT: u32 = 8;

/// Why a snapshot cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not a jiancha snapshot at all.
    #[error("not a jiancha engine snapshot (bad header)")]
    NotASnapshot,
    /// Truncated or altered: the checksum does not match.
    #[error("snapshot is truncated or corrupted (checksum mismatch)")]
    Corrupt,
    /// Written by an incompatible version.
    #[error("snapshot format {0} is not supported by this version (expects {FORMAT})")]
    UnsupportedFormat(u32),
    /// The payload does not decode.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// The state could not be encoded (a bug: every part of it is plain data).
    #[error("engine state could not be encoded: {0}")]
    Encode(String),
}

#[derive(Serialize)]
struct ImageRef<'a> {
    format: u32,
    clock: i64,
    stats: &'a Stats,
    symbols: &'a Symbols,
    cases: &'a Slab<Case>,
    matters: &'a Slab<Matter>,
    people: &'a People,
    departed: &'a Departed,
    timers: &'a super::timers::Timers,
    dedup: &'a Dedup,
    board: &'a Board,
    bound: &'a Bindings,
    placeholders: &'a super::integrity::Placeholders,
    sources: &'a super::sources::Sources,
}

#[derive(Deserialize)]
struct Image {
    format: u32,
    clock: i64,
    stats: Stats,
    symbols: Symbols,
    cases: Slab<Case>,
    matters: Slab<Matter>,
    people: People,
    departed: Departed,
    timers: super::timers::Timers,
    dedup: Dedup,
    board: Board,
    bound: Bindings,
    placeholders: super::integrity::Placeholders,
    sources: super::sources::Sources,
}

/// Heap bytes a clone of `value` allocates, as `live` (a counting allocator's live bytes) reads
/// them.
pub(super) fn heap<T: Clone>(value: &T, live: &dyn Fn() -> usize) -> usize {
    let before = live();
    let copy = value.clone();
    let bytes = live().saturating_sub(before);
    drop(copy);
    bytes
}

impl Engine {
    /// The engine's whole state as bytes (see the module documentation).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let image = ImageRef {
            format: FORMAT,
            clock: self.clock.0,
            stats: &self.stats,
            symbols: &self.symbols,
            cases: &self.cases,
            matters: &self.matters,
            people: &self.people,
            departed: &self.departed,
            timers: &self.timers,
            dedup: &self.dedup,
            board: &self.board,
            bound: &self.bound,
            placeholders: &self.placeholders,
            sources: &self.sources,
        };
        let mut out = postcard::to_extend(&image, MAGIC.to_vec())
            .map_err(|e| SnapshotError::Encode(e.to_string()))?;
        let sum = xxh3_64(&out[MAGIC.len()..]);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(out)
    }

    /// The snapshot's bytes part by part (cases, matters, people, …): where a state's size
    /// goes, for the memory benchmark.
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        fn size<T: Serialize>(value: &T) -> usize {
            postcard::to_allocvec(value).map_or(0, |v| v.len())
        }
        vec![
            ("symbols", size(&self.symbols)),
            ("cases", size(&self.cases)),
            ("matters", size(&self.matters)),
            ("people", size(&self.people)),
            ("departed", size(&self.departed)),
            ("timers", size(&self.timers)),
            ("dedup", size(&self.dedup)),
            ("board", size(&self.board)),
        ]
    }

    /// Heap bytes part by part, in memory: `live` reads a counting allocator's live bytes, and
    /// each part is cloned and the growth read (a clone allocates what the part holds, give or
    /// take its collections' spare capacity). For the memory benchmark.
    pub fn heap_by_part(&self, live: &dyn Fn() -> usize) -> Vec<(&'static str, usize)> {
        let mut parts = vec![
            ("symbols", heap(&self.symbols, live)),
            ("cases", heap(&self.cases, live)),
            ("matters", heap(&self.matters, live)),
            ("departed", heap(&self.departed, live)),
            ("timers", heap(&self.timers, live)),
            ("dedup", heap(&self.dedup, live)),
            ("board", heap(&self.board, live)),
            ("sources", heap(&self.sources, live)),
        ];
        parts.extend(self.people.heap_by_part(live));
        parts
    }

    /// An engine continuing exactly where the snapshot was taken.
    pub fn restore(
        reference: Arc<Reference>,
        policy: Policy,
        bytes: &[u8],
    ) -> Result<Engine, SnapshotError> {
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(SnapshotError::NotASnapshot)?;
        if body.len() < 8 {
            return Err(SnapshotError::Corrupt);
        }
        let (payload, sum) = body.split_at(body.len() - 8);
        let mut le = [0u8; 8];
        le.copy_from_slice(sum);
        if xxh3_64(payload) != u64::from_le_bytes(le) {
            return Err(SnapshotError::Corrupt);
        }
        let image: Image =
            postcard::from_bytes(payload).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        if image.format != FORMAT {
            return Err(SnapshotError::UnsupportedFormat(image.format));
        }
        let mut symbols = image.symbols;
        let mut board = image.board;
        board.sync_reference(&reference, &mut symbols);
        Ok(Engine {
            office_hours: policy.office_hours().unwrap_or_default(),
            reference,
            policy,
            board,
            symbols,
            cases: image.cases,
            matters: image.matters,
            people: image.people,
            departed: image.departed,
            timers: image.timers,
            dedup: image.dedup,
            bound: image.bound,
            region: super::table::NONE,
            center: super::table::NONE,
            hot: super::table::HotSymbols::default(),
            clock: Instant(image.clock),
            stats: image.stats,
            facts: None,
            activities: Vec::new(),
            placeholders: image.placeholders,
            sources: image.sources,
            case_done_report: super::case::NEVER,
            advancing: false,
            lean_revisions: false,
            ahead: Default::default(),
            timer_batch: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let reference = Reference::parse(&crate::synth::reference_files()).expect("reference");
        Engine::new(Arc::new(reference), Policy::default())
    }

    #[test]
    fn damaged_snapshots_are_refused_with_the_reason() {
        let e = engine();
        let good = e.snapshot().expect("snapshot");
        let reference = Arc::clone(&e.reference);
        let restore = |bytes: &[u8]| Engine::restore(reference.clone(), Policy::default(), bytes);
        assert!(restore(&good).is_ok());
        assert_eq!(
            restore(b"hello world").err(),
            Some(SnapshotError::NotASnapshot)
        );
        assert_eq!(
            restore(&good[..good.len() - 3]).err(),
            Some(SnapshotError::Corrupt)
        );
        let mut flipped = good.clone();
        flipped[MAGIC.len() + 2] ^= 0x40;
        assert_eq!(restore(&flipped).err(), Some(SnapshotError::Corrupt));
        assert_eq!(restore(MAGIC).err(), Some(SnapshotError::Corrupt));
    }

    #[test]
    fn a_future_format_is_refused() {
        let e = engine();
        let mut image = e.snapshot().expect("snapshot");
        // The format number is the first field of the payload (a one-byte varint).
        let next = u8::try_from(FORMAT + 1).expect("small format number");
        image[MAGIC.len()] = next;
        let payload_end = image.len() - 8;
        let sum = xxh3_64(&image[MAGIC.len()..payload_end]).to_le_bytes();
        image[payload_end..].copy_from_slice(&sum);
        let restored = Engine::restore(Arc::clone(&e.reference), Policy::default(), &image);
        assert_eq!(
            restored.err(),
            Some(SnapshotError::UnsupportedFormat(FORMAT + 1))
        );
    }
}

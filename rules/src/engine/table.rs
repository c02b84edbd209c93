//! Compact containers behind the engine: the case slab, interned strings and the duplicate
//! filter. Each is sized for a province: a million open cases in a few hundred MB.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Ask the CPU to start loading the cache lines of `value` (a hint: it never reads into a
/// register and never faults). The engine is bound by memory latency: issuing the independent
/// loads of an event together lets their cache misses overlap instead of queueing.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_lines((value as *const T).cast(), std::mem::size_of::<T>());
}

/// [`prefetch`] the contents of a slice (at most `max` bytes of it, from the start).
#[inline(always)]
pub fn prefetch_slice<T>(values: &[T], max: usize) {
    prefetch_lines(
        values.as_ptr().cast(),
        std::mem::size_of_val(values).min(max),
    );
}

/// The lines of `len` bytes at `start`.
#[inline(always)]
fn prefetch_lines(start: *const u8, len: usize) {
    let last = start as usize + len.max(1) - 1;
    // Every 64-byte line the value spans (pointer arithmetic only: nothing is dereferenced).
    let mut line = start.wrapping_sub(start as usize % 64);
    loop {
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        // SAFETY: PREFETCHT0 is a hint; it accesses no memory architecturally and cannot fault,
        // and SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.cast());
        }
        if line as usize + 64 > last {
            break;
        }
        line = line.wrapping_add(64);
    }
}

/// Interned string id; [`NONE`] means absent.
pub type Sym = u32;
/// The absent symbol.
pub const NONE: Sym = u32::MAX;

/// Interned strings (centre, region, department, window, staff, item). Their number is bounded
/// by the reference data, so a case stores 4-byte ids instead of strings.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    ids: HashMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
}

/// Snapshots keep the names only; the lookup map is rebuilt on restore.
impl serde::Serialize for Symbols {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Symbols {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<Box<str>>::deserialize(d)?;
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as Sym))
            .collect();
        Ok(Symbols { ids, names })
    }
}

impl Symbols {
    /// The id of `s`, interning it on first sight.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as Sym;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// The id of `s` if it was ever interned (no interning).
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// Point `slot` at `s` unless it already names it (the common case: no hashing at all).
    pub fn update(&mut self, slot: &mut Sym, s: Option<&str>) {
        if let Some(s) = s {
            if *slot == NONE || &*self.names[*slot as usize] != s {
                *slot = self.intern(s);
            }
        }
    }

    /// The string of an id; `None` for [`NONE`].
    pub fn get(&self, id: Sym) -> Option<&str> {
        self.names.get(id as usize).map(|s| &**s)
    }

    /// Owned copy for output, `None` for [`NONE`].
    pub fn owned(&self, id: Sym) -> Option<String> {
        self.get(id).map(str::to_string)
    }
}

/// The symbols of the few short strings every event repeats (its region, its centre), found by
/// comparing one packed word instead of hashing: a stream names a handful of regions and
/// centres, event after event. Strings longer than 8 bytes, and any beyond the cache's few
/// entries, go to [`Symbols`]. Not state: rebuilt as events come.
#[derive(Debug, Clone, Default)]
pub struct HotSymbols {
    entries: Vec<(u64, u8, Sym)>,
}

/// Most entries a [`HotSymbols`] keeps (a linear scan stays cheaper than a hash up to here).
const HOT: usize = 16;

/// A string of at most 8 bytes as one word (and its length).
fn packed(s: &str) -> Option<(u64, u8)> {
    let b = s.as_bytes();
    (b.len() <= 8).then(|| {
        // A byte loop, not a copy into a buffer: the copy's length is unknown at compile time
        // and becomes a call to memcpy.
        let w = b
            .iter()
            .enumerate()
            .fold(0u64, |w, (i, &c)| w | u64::from(c) << (8 * i));
        (w, b.len() as u8)
    })
}

impl HotSymbols {
    /// The symbol of `s`, interning it if new.
    pub fn intern(&mut self, symbols: &mut Symbols, s: &str) -> Sym {
        let Some(key) = packed(s) else {
            return symbols.intern(s);
        };
        if let Some(&(_, _, sym)) = self.entries.iter().find(|e| (e.0, e.1) == key) {
            return sym;
        }
        let sym = symbols.intern(s);
        if self.entries.len() < HOT {
            self.entries.push((key.0, key.1, sym));
        }
        sym
    }

    /// The symbol of `s` if it was ever interned.
    pub fn lookup(&self, symbols: &Symbols, s: &str) -> Option<Sym> {
        match packed(s).and_then(|key| self.entries.iter().find(|e| (e.0, e.1) == key)) {
            Some(&(_, _, sym)) => Some(sym),
            None => symbols.lookup(s),
        }
    }
}

/// Something stored in a [`Slab`] under a string key.
pub trait Keyed {
    /// The key's bytes.
    fn key(&self) -> &[u8];
    /// The jurisdiction the key is unique within (an interned region; [`NONE`] where the table
    /// is not scoped): the same key in two scopes names two values.
    fn scope(&self) -> Sym {
        NONE
    }
}

/// The 128-bit identity of an event for stores that keep every identity they have seen (the
/// embedded ingest log answers `duplicate` with it): `event_id` within region and source, as
/// [`Dedup::hash`] counts them (joined with a separator no id may contain: ids are refused if
/// they hold control characters).
pub fn event_identity(region: &str, source: &str, event_id: &str) -> [u8; 16] {
    let mut bytes = Vec::with_capacity(region.len() + source.len() + event_id.len() + 3);
    for p in [region, source, event_id] {
        bytes.extend_from_slice(p.as_bytes());
        bytes.push(0x1f);
    }
    xxhash_rust::xxh3::xxh3_128(&bytes).to_le_bytes()
}

/// A string key stored inline when short (up to 22 bytes: most 办件编号), else on the heap.
/// Inline keys save an allocation and, more importantly, a dependent cache miss on every lookup.
/// (Ordered and hashed by representation: enough for map keys and heap tie-breaks, not a text
/// order.)
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum CompactKey {
    /// Short key, in place.
    Inline {
        /// Length in bytes.
        len: u8,
        /// The bytes, zero-padded.
        bytes: [u8; 22],
    },
    /// Longer key.
    Heap(Box<str>),
}

impl CompactKey {
    /// Store `s`.
    pub fn new(s: &str) -> Self {
        if s.len() <= 22 {
            let mut bytes = [0u8; 22];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            CompactKey::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            CompactKey::Heap(s.into())
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CompactKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            CompactKey::Heap(s) => s.as_bytes(),
        }
    }

    /// The key as text (always valid UTF-8: it was made from a `&str`).
    pub fn as_str(&self) -> &str {
        match self {
            CompactKey::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            CompactKey::Heap(s) => s,
        }
    }
}

impl std::fmt::Display for CompactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Open-addressing index from a key's 32-bit hash to its slot. Each entry packs
/// `hash << 32 | (slot + 1)` into one `u64` (0 = empty), so a probe reads the hash and the slot
/// from the same cache line: a lookup in a million-case index usually costs one cache miss.
/// Linear probing at load ≤ ½, deletion by backward shift (no tombstones).
#[derive(Debug, Clone, Default)]
struct Index {
    entries: Vec<u64>,
    len: usize,
}

impl Index {
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    fn find(&self, h: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = h as usize & mask;
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            let slot = (e as u32).wrapping_sub(1);
            if (e >> 32) as u32 == h && eq(slot) {
                return Some(slot);
            }
            i = (i + 1) & mask;
        }
    }

    fn prefetch(&self, h: u32) {
        if let Some(e) = self
            .entries
            .get(h as usize & self.entries.len().wrapping_sub(1))
        {
            prefetch(e);
        }
    }

    fn insert(&mut self, h: u32, slot: u32) {
        if (self.len + 1) * 2 > self.entries.len() {
            let bigger = vec![0; (self.entries.len() * 2).max(16)];
            let old = std::mem::replace(&mut self.entries, bigger);
            for e in old.into_iter().filter(|&e| e != 0) {
                self.place(e);
            }
        }
        self.place((u64::from(h) << 32) | u64::from(slot + 1));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = (e >> 32) as usize & mask;
        while self.entries[i] != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
    }

    fn remove(&mut self, h: u32, slot: u32) {
        if self.entries.is_empty() {
            return;
        }
        let mask = self.mask();
        let target = (u64::from(h) << 32) | u64::from(slot + 1);
        let mut hole = h as usize & mask;
        loop {
            match self.entries[hole] {
                0 => return,
                e if e == target => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        self.entries[hole] = 0;
        self.len -= 1;
        // Backward shift: pull later entries of the run into the hole when their home allows.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                return;
            }
            let home = (e >> 32) as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                self.entries[j] = 0;
                hole = j;
            }
        }
    }
}

/// A key's hash in a [`Slab`]'s index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u32);

/// Slots per slab chunk.
const CHUNK: usize = 4096;

/// A slab of values addressed by a stable `u32` slot, with a string-keyed [`Index`] that stores
/// only the slot (the key lives once, inside the value).
///
/// Values live in fixed-size chunks that are never reallocated: growing past a power of two
/// never copies a million cases at once (a stall of tens of milliseconds in a live stream, and a
/// moment of double memory), and capacity slack is at most one chunk.
#[derive(Debug, Clone)]
pub struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    /// Slots ever allocated.
    allocated: usize,
    /// Bumped each time a slot is reused, so stale timer entries can be recognised.
    generations: Vec<u32>,
    free: Vec<u32>,
    index: Index,
    hasher: DefaultHashBuilder,
}

impl<T: Keyed> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            allocated: 0,
            generations: Vec::new(),
            free: Vec::new(),
            index: Index::default(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<T: Keyed> Slab<T> {
    fn hash(&self, key: &[u8], scope: Sym) -> u32 {
        let h = self.hasher.hash_one((key, scope));
        (h ^ (h >> 32)) as u32
    }

    /// The hash of a key in `scope`, to look it up later with [`Slab::find_or_insert_hashed`].
    pub fn key_hash(&self, key: &str, scope: Sym) -> KeyHash {
        KeyHash(self.hash(key.as_bytes(), scope))
    }

    /// Start loading the index entry where `h`'s lookup begins.
    pub fn prefetch(&self, h: KeyHash) {
        self.index.prefetch(h.0);
    }

    /// Start loading the value `h` most likely names, once its index entry is in cache (after
    /// [`Slab::prefetch`]); a hash collision only prefetches the wrong value.
    pub fn prefetch_value(&self, h: KeyHash) {
        if let Some(cell) = self
            .index
            .find(h.0, |_| true)
            .and_then(|slot| self.cell(slot))
        {
            prefetch(cell);
        }
    }

    /// The value `h` most likely names, for prefetching what it points to: read without
    /// comparing keys (a hash collision gives another value, which is only prefetched).
    pub fn hinted(&self, h: KeyHash) -> Option<&T> {
        let slot = self.index.find(h.0, |_| true)?;
        self.cell(slot)?.as_ref()
    }

    fn cell(&self, slot: u32) -> Option<&Option<T>> {
        let slot = slot as usize;
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }

    fn cell_mut(&mut self, slot: u32) -> Option<&mut Option<T>> {
        let slot = slot as usize;
        self.chunks.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)
    }

    /// Slot of `key` in `scope`, if present.
    pub fn find(&self, key: &str, scope: Sym) -> Option<u32> {
        self.find_hashed(self.key_hash(key, scope), key, scope)
    }

    /// [`Slab::find`] with the key's hash already computed.
    pub fn find_hashed(&self, KeyHash(h): KeyHash, key: &str, scope: Sym) -> Option<u32> {
        let key = key.as_bytes();
        self.index.find(h, |s| {
            self.cell(s)
                .and_then(Option::as_ref)
                .is_some_and(|v| v.key() == key && v.scope() == scope)
        })
    }

    /// Slot of `key` in `scope`, inserting `make()` if absent (`make` must give a value of
    /// that key and scope). Returns (slot, inserted).
    pub fn find_or_insert(
        &mut self,
        key: &str,
        scope: Sym,
        make: impl FnOnce() -> T,
    ) -> (u32, bool) {
        let h = self.key_hash(key, scope);
        self.find_or_insert_hashed(h, key, scope, make)
    }

    /// [`Slab::find_or_insert`] with the key's hash already computed.
    pub fn find_or_insert_hashed(
        &mut self,
        KeyHash(h): KeyHash,
        key: &str,
        scope: Sym,
        make: impl FnOnce() -> T,
    ) -> (u32, bool) {
        let bytes = key.as_bytes();
        let found = self.index.find(h, |s| {
            self.cell(s)
                .and_then(Option::as_ref)
                .is_some_and(|v| v.key() == bytes && v.scope() == scope)
        });
        if let Some(slot) = found {
            return (slot, false);
        }
        let value = make();
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(cell) = self.cell_mut(slot) {
                    *cell = Some(value);
                }
                let g = &mut self.generations[slot as usize];
                *g = g.wrapping_add(1);
                slot
            }
            None => {
                if self.allocated.is_multiple_of(CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                if let Some(chunk) = self.chunks.last_mut() {
                    chunk.push(Some(value));
                }
                self.generations.push(0);
                self.allocated += 1;
                (self.allocated - 1) as u32
            }
        };
        self.index.insert(h, slot);
        (slot, true)
    }

    /// Remove the value in `slot`.
    pub fn remove(&mut self, slot: u32) -> Option<T> {
        let value = self.cell_mut(slot)?.take()?;
        let h = self.hash(value.key(), value.scope());
        self.index.remove(h, slot);
        self.free.push(slot);
        Some(value)
    }

    /// The value in `slot`.
    pub fn get(&self, slot: u32) -> Option<&T> {
        self.cell(slot)?.as_ref()
    }

    /// The value in `slot`, mutably.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.cell_mut(slot)?.as_mut()
    }

    /// Generation of `slot` (changes when the slot is reused).
    pub fn generation(&self, slot: u32) -> u32 {
        self.generations.get(slot as usize).copied().unwrap_or(0)
    }

    /// Number of live values.
    pub fn len(&self) -> usize {
        self.allocated - self.free.len()
    }
}

/// The parts of a [`Slab`] a snapshot keeps: values by slot, generations and free slots. The
/// index is rebuilt on restore (its hasher is seeded per process).
#[derive(serde::Serialize)]
struct SlabParts<'a, T> {
    values: Values<'a, T>,
    generations: &'a [u32],
    free: &'a [u32],
}

struct Values<'a, T>(&'a [Vec<Option<T>>]);

impl<T: serde::Serialize> serde::Serialize for Values<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // Compact formats need the length up front; a flattened iterator does not know it.
        let len = self.0.iter().map(Vec::len).sum();
        let mut seq = s.serialize_seq(Some(len))?;
        for value in self.0.iter().flatten() {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

#[derive(serde::Deserialize)]
struct OwnedSlabParts<T> {
    values: Vec<Option<T>>,
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl<T: Keyed + serde::Serialize> serde::Serialize for Slab<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SlabParts {
            values: Values(&self.chunks),
            generations: &self.generations,
            free: &self.free,
        }
        .serialize(s)
    }
}

impl<'de, T: Keyed + serde::Deserialize<'de>> serde::Deserialize<'de> for Slab<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parts = OwnedSlabParts::<T>::deserialize(d)?;
        if parts.generations.len() != parts.values.len() {
            return Err(serde::de::Error::custom(
                "slab generations do not match its values",
            ));
        }
        let mut slab = Slab {
            allocated: parts.values.len(),
            generations: parts.generations,
            free: parts.free,
            ..Slab::default()
        };
        let mut values = parts.values.into_iter();
        loop {
            let chunk: Vec<Option<T>> = values.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let mut full = Vec::with_capacity(CHUNK);
            full.extend(chunk);
            slab.chunks.push(full);
        }
        let entries: Vec<(u32, u32)> = slab
            .chunks
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(slot, v)| {
                v.as_ref()
                    .map(|v| (slab.hash(v.key(), v.scope()), slot as u32))
            })
            .collect();
        for (h, slot) in entries {
            slab.index.insert(h, slot);
        }
        Ok(slab)
    }
}

/// Remembers the most recent event ids to drop duplicates, in bounded memory: two generations
/// of at most `capacity / 2` ids each; when the young one fills up it becomes the old one and
/// the previous old one is forgotten. So at least the last `capacity / 2` and at most the last
/// `capacity` ids are remembered.
///
/// Ids are kept as 64-bit XXH3 hashes (8 bytes each). A new id is mistaken for a remembered one
/// with probability `capacity / 2^64` — with a million remembered ids, about once in 18 trillion
/// events — and then only if it also fits in the window, a risk accepted for the memory saved.
#[derive(Debug, Clone)]
pub struct Dedup {
    young: Generation,
    old: Generation,
    half: usize,
}

/// One generation of remembered ids: an exact open-addressing table of the 64-bit ids
/// (linear probing, load ≤ ½, 0 = empty), behind a one-bit-per-slot filter (16 bits per id,
/// ≈6 % false positives) small enough to stay in cache. Most events are new, and for them the
/// filter answers without touching the table. Both have addresses known from the id alone, so
/// the engine prefetches them as soon as an event arrives.
#[derive(Debug, Clone)]
struct Generation {
    table: Vec<u64>,
    len: usize,
    bits: Vec<u64>,
}

impl Generation {
    fn new(ids: usize) -> Self {
        let words = (ids * 16).next_power_of_two().max(1024) / 64;
        Generation {
            table: vec![0; (ids * 2).next_power_of_two().max(16)],
            len: 0,
            bits: vec![0; words],
        }
    }

    /// The stored form of an id: never 0, which marks an empty slot.
    fn stored(id: u64) -> u64 {
        id.max(1)
    }

    fn home(&self, id: u64) -> usize {
        id as usize & (self.table.len() - 1)
    }

    fn bit(&self, id: u64) -> (usize, u64) {
        // Bits 32.. of the hash: independent of the bits that choose the table slot.
        let i = (id >> 32) as usize & (self.bits.len() * 64 - 1);
        (i / 64, 1 << (i % 64))
    }

    fn prefetch(&self, id: u64, for_insert: bool) {
        prefetch(&self.bits[self.bit(id).0]);
        if for_insert {
            prefetch(&self.table[self.home(id)]);
        }
    }

    fn contains(&self, id: u64) -> bool {
        let (w, b) = self.bit(id);
        if self.bits[w] & b == 0 {
            return false;
        }
        let (want, mask) = (Generation::stored(id), self.table.len() - 1);
        let mut i = self.home(id);
        loop {
            match self.table[i] {
                0 => return false,
                x if x == want => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn insert(&mut self, id: u64) {
        let (w, b) = self.bit(id);
        self.bits[w] |= b;
        let (want, mask) = (Generation::stored(id), self.table.len() - 1);
        let mut i = self.home(id);
        while self.table[i] != 0 {
            if self.table[i] == want {
                return;
            }
            i = (i + 1) & mask;
        }
        self.table[i] = want;
        self.len += 1;
    }

    fn clear(&mut self) {
        self.table.fill(0);
        self.bits.fill(0);
        self.len = 0;
    }
}

/// Snapshots keep the remembered ids of each generation (not the tables, which are mostly
/// empty); the tables and bitmaps are rebuilt on restore.
#[derive(serde::Serialize, serde::Deserialize)]
struct DedupParts {
    half: usize,
    young: Vec<u64>,
    old: Vec<u64>,
}

impl Generation {
    fn ids(&self) -> Vec<u64> {
        self.table.iter().copied().filter(|&x| x != 0).collect()
    }
}

impl serde::Serialize for Dedup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DedupParts {
            half: self.half,
            young: self.young.ids(),
            old: self.old.ids(),
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Dedup {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parts = DedupParts::deserialize(d)?;
        let mut dedup = Dedup::new(parts.half * 2);
        for id in parts.old {
            dedup.old.insert(id);
        }
        for id in parts.young {
            dedup.young.insert(id);
        }
        Ok(dedup)
    }
}

/// Cases forgotten after their retention that had been accepted in the hall: their id hash and
/// acceptance time, kept for a bounded number of days so a fee charged later (at 出件) still
/// matches its case (以票管审). ≈ 30 bytes each.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Departed {
    accepted: HashMap<u64, u32>,
    /// (when forgotten, id hash), oldest first, for expiry.
    order: std::collections::VecDeque<(u32, u64)>,
}

impl Departed {
    /// Remember a forgotten case accepted in the hall at `accepted` (compact time), forgotten
    /// at `now`; drop what is older than `keep_secs`.
    pub fn remember(
        &mut self,
        region: &str,
        case_id: &str,
        accepted: u32,
        now: u32,
        keep_secs: u32,
    ) {
        let h = region_scoped(region, case_id);
        self.accepted.insert(h, accepted);
        self.order.push_back((now, h));
        while self
            .order
            .front()
            .is_some_and(|&(t, _)| now.saturating_sub(t) > keep_secs)
        {
            if let Some((_, old)) = self.order.pop_front() {
                self.accepted.remove(&old);
            }
        }
    }

    /// When a forgotten case was accepted in the hall, if it is remembered.
    pub fn accepted_at(&self, region: &str, case_id: &str) -> Option<u32> {
        self.accepted.get(&region_scoped(region, case_id)).copied()
    }
}

/// The 64-bit hash of `id` within `region`, seeded as [`Dedup::hash`] seeds its ids.
fn region_scoped(region: &str, id: &str) -> u64 {
    xxh3_64_with_seed(id.as_bytes(), xxh3_64(region.as_bytes()))
}

/// An event id's hash, computed once per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdHash(pub u64);

impl Dedup {
    /// A filter remembering up to `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        let half = (capacity / 2).max(1);
        Dedup {
            young: Generation::new(half),
            old: Generation::new(half),
            half,
        }
    }

    /// The hash under which an event is remembered: its `event_id` in the namespace of its
    /// region and source, so that no publisher can make another jurisdiction's or another
    /// source's event look like a duplicate (docs/RULES.md, "Jurisdiction").
    ///
    /// Hot: computed for every event (and for its lookahead), so no bytes are copied: the
    /// region's hash seeds the source's, and that seeds the id's. Distinct (region, source)
    /// pairs give unrelated seeds (each a full hash, never the raw bytes: xxh3 of a short input
    /// is its bytes XOR the seed before mixing, so structured seeds such as two region codes
    /// one digit apart would make structured ids collide), and no pair of parts can be shifted
    /// into another ("ab"+"c" vs "a"+"bc").
    pub fn hash(region: &str, source: &str, event_id: &str) -> IdHash {
        let mut seed = xxh3_64(region.as_bytes());
        // Most events name no source (replay, Kafka) or come from one: hash it only if named.
        if !source.is_empty() {
            seed = xxh3_64_with_seed(source.as_bytes(), seed);
        }
        IdHash(xxh3_64_with_seed(event_id.as_bytes(), seed))
    }

    /// Has this id been seen (without recording it)?
    pub fn contains(&self, id: IdHash) -> bool {
        self.young.contains(id.0) || self.old.contains(id.0)
    }

    /// Start loading what [`Dedup::contains`] and [`Dedup::insert`] will read for this id.
    pub fn prefetch(&self, id: IdHash) {
        self.young.prefetch(id.0, true);
        self.old.prefetch(id.0, false);
    }

    /// Record an id as seen.
    pub fn insert(&mut self, id: IdHash) {
        if self.young.len >= self.half {
            // Reuse the forgotten generation's memory instead of growing a new table.
            self.old.clear();
            std::mem::swap(&mut self.young, &mut self.old);
        }
        self.young.insert(id.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(String);
    impl Keyed for V {
        fn key(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }

    #[test]
    fn compact_keys_inline_short_ids_only() {
        let short = CompactKey::new("430626-2026-00000123");
        assert!(matches!(short, CompactKey::Inline { .. }));
        assert_eq!(short.as_str(), "430626-2026-00000123");
        let long = CompactKey::new("11430626MB1234567X-2026-000000000123");
        assert!(matches!(long, CompactKey::Heap(_)));
        assert_eq!(long.as_bytes(), b"11430626MB1234567X-2026-000000000123");
        assert_eq!(CompactKey::new("办件编号").as_str(), "办件编号");
        assert_eq!(std::mem::size_of::<CompactKey>(), 24);
    }

    #[test]
    fn slab_reuses_slots_with_a_new_generation() {
        let mut s: Slab<V> = Slab::default();
        let (a, new) = s.find_or_insert("a", NONE, || V("a".into()));
        assert!(new);
        let (b, _) = s.find_or_insert("b", NONE, || V("b".into()));
        assert_eq!(s.find_or_insert("a", NONE, || V("x".into())), (a, false));
        let g = s.generation(a);
        assert_eq!(s.remove(a).map(|v| v.0), Some("a".into()));
        assert_eq!(s.find("a", NONE), None);
        let (c, _) = s.find_or_insert("c", NONE, || V("c".into()));
        assert_eq!(c, a, "slot reused");
        assert_ne!(s.generation(c), g);
        assert_eq!(s.find("b", NONE), Some(b));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn keys_are_unique_within_their_scope() {
        struct Scoped(String, Sym);
        impl Keyed for Scoped {
            fn key(&self) -> &[u8] {
                self.0.as_bytes()
            }
            fn scope(&self) -> Sym {
                self.1
            }
        }
        let mut s: Slab<Scoped> = Slab::default();
        let (a, _) = s.find_or_insert("C1", 1, || Scoped("C1".into(), 1));
        let (b, new) = s.find_or_insert("C1", 2, || Scoped("C1".into(), 2));
        assert!(
            new && a != b,
            "the same id in another scope is another value"
        );
        assert_eq!(s.find("C1", 1), Some(a));
        assert_eq!(s.find("C1", 3), None);
        s.remove(a);
        assert_eq!(s.find("C1", 2), Some(b));
    }

    #[test]
    fn structured_ids_in_neighbouring_regions_never_collide() {
        // Window systems number their events; counties' codes differ in a digit or two.
        let mut seen = std::collections::HashSet::new();
        for region in ["430620", "430621", "430622", "430626", "430681", "440300"] {
            for source in ["", "http:pj-pub", "http:yy-pub"] {
                for n in 0..60_000 {
                    let id = Dedup::hash(region, source, &format!("e{n}"));
                    assert!(seen.insert(id.0), "{region} {source:?} e{n} collides");
                }
            }
        }
    }

    #[test]
    fn event_ids_are_namespaced_by_region_and_source() {
        let a = Dedup::hash("430626", "http:pj", "E1");
        assert_ne!(a, Dedup::hash("430621", "http:pj", "E1"));
        assert_ne!(a, Dedup::hash("430626", "http:yy", "E1"));
        // The separator keeps the parts apart.
        assert_ne!(
            Dedup::hash("430626", "ab", "c"),
            Dedup::hash("430626", "a", "bc")
        );
        assert_eq!(a, Dedup::hash("430626", "http:pj", "E1"));
    }

    #[test]
    fn dedup_forgets_only_beyond_its_capacity() {
        let mut d = Dedup::new(4);
        let h = |s: &str| Dedup::hash("430626", "", s);
        for i in 0..4 {
            d.insert(h(&format!("e{i}")));
        }
        assert!(d.contains(h("e0")) && d.contains(h("e3")));
        d.insert(h("e4"));
        d.insert(h("e5"));
        assert!(!d.contains(h("e0")), "oldest generation dropped");
        assert!(d.contains(h("e2")) && d.contains(h("e5")));
    }

    #[test]
    fn index_survives_growth_and_backward_shift_deletion() {
        let mut s: Slab<V> = Slab::default();
        let keys: Vec<String> = (0..5000).map(|i| format!("case-{i}")).collect();
        let slots: Vec<u32> = keys
            .iter()
            .map(|k| s.find_or_insert(k, NONE, || V(k.clone())).0)
            .collect();
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
            assert_eq!(s.remove(slots[i]).map(|v| v.0), Some(k.clone()));
        }
        for (i, k) in keys.iter().enumerate() {
            let want = (i % 3 != 0).then_some(slots[i]);
            assert_eq!(s.find(k, NONE), want, "{k}");
        }
        assert_eq!(s.len(), 5000 - 1667);
    }

    #[test]
    fn symbols_update_only_on_change() {
        let mut s = Symbols::default();
        let mut slot = NONE;
        s.update(&mut slot, Some("W01"));
        let first = slot;
        s.update(&mut slot, None);
        assert_eq!(slot, first);
        s.update(&mut slot, Some("W02"));
        assert_eq!(s.get(slot), Some("W02"));
        assert_eq!(s.intern("W01"), first);
    }
}

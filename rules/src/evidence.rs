//! An alert's evidence: a JSON object, built cheaply on the engine's thread and written out
//! on another.
//!
//! Every alert line carries the computation behind it (`Alert::evidence`): for a case clock
//! some twenty values — instants, dates, limits, pauses, the case's state. Built as a
//! `serde_json::Value` each of them is a heap string under a heap key in a B-tree, formatted
//! (instants as RFC 3339 text) on the thread that applies events: that was most of the
//! engine's cost per alert (docs/BENCHMARKS.md, "Target 1"). So the engine builds the evidence
//! of its busiest alerts as [`Fields`]: static keys and typed values in one vector, sorted once,
//! formatted only when serialised — which `jiancha replay` does on its printer thread and the
//! stores when they write the row, straight to text ([`Evidence::json_text`]).
//!
//! [`Evidence`] is what `Alert` holds: either such fields or a plain `Value` (every other rule,
//! and evidence read back from a store). It reads as a `Value` (`Deref`), made from the fields
//! the first time someone looks, so code that inspects evidence is unchanged; changing it
//! (`DerefMut`) turns it into a plain `Value` for good. Both forms serialise to the same bytes:
//! keys in byte order, as `serde_json`'s map keeps them (test below).

use std::sync::OnceLock;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::time::{Day, Instant};

/// An alert's evidence (module doc).
#[derive(Default)]
pub struct Evidence(Repr);

#[derive(Default)]
enum Repr {
    #[default]
    Null,
    Value(Value),
    /// The fields, and the `Value` made from them once someone reads it.
    Fields(Box<Fields>, OnceLock<Value>),
}

static NULL: Value = Value::Null;

impl Evidence {
    /// The evidence as a plain `Value`, taken out.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Null => Value::Null,
            Repr::Value(v) => v,
            Repr::Fields(f, mut cache) => cache.take().unwrap_or_else(|| f.to_value()),
        }
    }

    /// Whether the evidence is a JSON object; typed fields always are, and are not turned into
    /// a `Value` to say so.
    pub fn is_object(&self) -> bool {
        match &self.0 {
            Repr::Fields(..) => true,
            Repr::Value(v) => v.is_object(),
            Repr::Null => false,
        }
    }

    /// The typed fields, while the evidence is still made of them (`None` once it was changed
    /// as a `Value`, or when it was one from the start).
    pub(crate) fn fields_mut(&mut self) -> Option<&mut Fields> {
        match &mut self.0 {
            Repr::Fields(f, cache) => {
                // Whatever was read before no longer holds.
                cache.take();
                Some(f)
            }
            _ => None,
        }
    }
}

impl From<Value> for Evidence {
    fn from(v: Value) -> Self {
        Evidence(Repr::Value(v))
    }
}

impl From<Fields> for Evidence {
    fn from(f: Fields) -> Self {
        Evidence(Repr::Fields(Box::new(f), OnceLock::new()))
    }
}

impl std::ops::Deref for Evidence {
    type Target = Value;
    fn deref(&self) -> &Value {
        match &self.0 {
            Repr::Null => &NULL,
            Repr::Value(v) => v,
            Repr::Fields(f, cache) => cache.get_or_init(|| f.to_value()),
        }
    }
}

impl std::ops::DerefMut for Evidence {
    fn deref_mut(&mut self) -> &mut Value {
        if !matches!(self.0, Repr::Value(_)) {
            let v = std::mem::take(self).into_value();
            self.0 = Repr::Value(v);
        }
        match &mut self.0 {
            Repr::Value(v) => v,
            // Made a `Value` just above.
            Repr::Null | Repr::Fields(..) => unreachable!("evidence made a Value above"),
        }
    }
}

impl Clone for Evidence {
    fn clone(&self) -> Self {
        Evidence(match &self.0 {
            Repr::Null => Repr::Null,
            Repr::Value(v) => Repr::Value(v.clone()),
            Repr::Fields(f, _) => Repr::Fields(f.clone(), OnceLock::new()),
        })
    }
}

impl PartialEq for Evidence {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Evidence {
    /// As compact JSON text: byte for byte what `serde_json` writes for it, but typed fields
    /// are written straight to the text (see [`Fields::write_json`]). What the stores keep in
    /// an alert row's `evidence` column.
    pub fn json_text(&self) -> String {
        match &self.0 {
            Repr::Null => "null".to_owned(),
            Repr::Value(v) => v.to_string(),
            Repr::Fields(f, _) => {
                // Room for a typical value a field (a case clock's ≈ 25 fields write ≈ 850
                // bytes), not a fixed kilobyte that a two-field object would keep in its row.
                let mut out = Vec::with_capacity(40 * f.0.len() + 2);
                f.write_json(&mut out);
                // Made of `&str`s and ASCII only.
                String::from_utf8(out)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
        }
    }
}

/// As JSON text, like `Value`'s (and written straight from the fields: [`Evidence::json_text`]).
impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Fields(..) => f.write_str(&self.json_text()),
            _ => (**self).fmt(f),
        }
    }
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Null => s.serialize_unit(),
            Repr::Value(v) => v.serialize(s),
            Repr::Fields(f, _) => f.serialize(s),
        }
    }
}

/// The byte order of two keys (`str`'s order), found byte by byte: keys differ within their
/// first few bytes, where a call to `memcmp` for each comparison cost more than the bytes. A
/// `const fn`, so that [`fields!`] can ask [`strictly_ordered`] when compiling.
const fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut j = 0;
    while j < a.len() && j < b.len() {
        if a[j] != b[j] {
            return if a[j] < b[j] { Less } else { Greater };
        }
        j += 1;
    }
    match (a.len() < b.len(), a.len() > b.len()) {
        (true, _) => Less,
        (_, true) => Greater,
        _ => Equal,
    }
}

/// A JSON object with static keys and typed values, kept in key order (module doc).
#[derive(Clone, Debug, Default)]
pub struct Fields(Vec<(&'static str, F)>);

impl Fields {
    /// The object of `pairs`, in any order (sorted here: a literal written in key order, as
    /// ours are, costs one pass). A key given twice keeps its last value, as a map would.
    pub fn new(mut pairs: Vec<(&'static str, F)>) -> Fields {
        // Strictly in order (so no key twice): taken as it is.
        if pairs.windows(2).all(|w| key_order(w[0].0, w[1].0).is_lt()) {
            return Fields(pairs);
        }
        pairs.sort_by(|a, b| key_order(a.0, b.0));
        pairs.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Fields(pairs)
    }

    /// The object of `pairs` already in strictly increasing key order ([`strictly_ordered`]
    /// said so when [`fields!`] was compiled).
    pub fn ordered(pairs: Vec<(&'static str, F)>) -> Fields {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        Fields(pairs)
    }

    /// Set `key` to `value`, in its place.
    pub fn insert(&mut self, key: &'static str, value: F) {
        match self.0.binary_search_by(|(k, _)| key_order(k, key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// As a plain `Value`.
    pub fn to_value(&self) -> Value {
        // Our own types, serialised into a `Value`: cannot fail (no map with non-string keys).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Fields {
    /// Append the fields as compact JSON text to `out`: byte for byte what serialising them
    /// with `serde_json` writes (tests below), without going through its serializer. Most of
    /// an evidence object is keys, instants and dates, which need no escaping; `serde_json`
    /// examines every byte of every string one at a time to find out, which was three
    /// quarters of the cost of an alert's row (docs/BENCHMARKS.md, "eighth session").
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            v.write_json(out);
        }
        out.push(b'}');
    }
}

impl F {
    /// [`Fields::write_json`] for one value.
    fn write_json(&self, out: &mut Vec<u8>) {
        // Numbers and other JSON through `serde_json` itself (it cannot fail on them, and
        // writing to a vector cannot fail).
        match self {
            F::Null => out.extend_from_slice(b"null"),
            F::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            F::U64(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            F::I64(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            F::F64(x) => {
                let _ = serde_json::to_writer(&mut *out, x);
            }
            F::Str(t) => write_str(out, t),
            F::Text(t) => write_str(out, t),
            F::Instant(t) => t.write_json(out),
            F::Day(d) => d.write_json(out),
            F::List(list) => {
                out.push(b'[');
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_json(out);
                }
                out.push(b']');
            }
            F::Object(f) => f.write_json(out),
            F::Json(v) => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
        }
    }
}

/// `s` as a JSON string, as `serde_json` writes it: in one copy when it holds nothing JSON
/// escapes (a control character, a quote or a backslash), which is nearly always; through
/// `serde_json` otherwise.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether `b` holds a byte below 0x20, a quote or a backslash; eight bytes at a time.
fn needs_escape(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero exactly when some byte of `x` is below `n` (n ≤ 128; which byte it marks may
    // be wrong, whether any is never is).
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = b.chunks_exact(8);
    for w in words.by_ref() {
        let mut le = [0u8; 8];
        le.copy_from_slice(w);
        let x = u64::from_le_bytes(le);
        if below(x, 0x20) | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')))
            != 0
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One value of [`Fields`].
#[derive(Clone, Debug)]
pub enum F {
    /// `null`.
    Null,
    /// `true`/`false`.
    Bool(bool),
    /// A non-negative integer.
    U64(u64),
    /// An integer.
    I64(i64),
    /// A number with a fraction (`null` when not finite, as `serde_json` writes it).
    F64(f64),
    /// Text fixed at compile time (codes, units, kinds).
    Str(&'static str),
    /// Other text.
    Text(Box<str>),
    /// An instant, as RFC 3339 text.
    Instant(Instant),
    /// A date, as `YYYY-MM-DD`.
    Day(Day),
    /// An array.
    List(Vec<F>),
    /// An object.
    Object(Fields),
    /// Any other JSON.
    Json(Value),
}

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            F::Null => s.serialize_unit(),
            F::Bool(b) => s.serialize_bool(*b),
            F::U64(n) => s.serialize_u64(*n),
            F::I64(n) => s.serialize_i64(*n),
            F::F64(x) => s.serialize_f64(*x),
            F::Str(t) => s.serialize_str(t),
            F::Text(t) => s.serialize_str(t),
            F::Instant(t) => t.serialize(s),
            F::Day(d) => d.serialize(s),
            F::List(list) => {
                let mut seq = s.serialize_seq(Some(list.len()))?;
                for v in list {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            F::Object(f) => f.serialize(s),
            F::Json(v) => v.serialize(s),
        }
    }
}

macro_rules! from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for F {
            fn from(n: $t) -> F {
                F::U64(u64::from(n))
            }
        }
    )*};
}
from_unsigned!(u8, u16, u32, u64);

impl From<usize> for F {
    fn from(n: usize) -> F {
        F::U64(n as u64)
    }
}

macro_rules! from_variant {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for F {
            fn from(x: $t) -> F {
                F::$v(x)
            }
        }
    )*};
}
from_variant!(f64 => F64, i64 => I64, bool => Bool, &'static str => Str, Instant => Instant,
    Day => Day, Fields => Object, Value => Json);

impl From<i32> for F {
    fn from(n: i32) -> F {
        F::I64(i64::from(n))
    }
}

impl From<String> for F {
    fn from(t: String) -> F {
        F::Text(t.into_boxed_str())
    }
}

impl<T: Into<F>> From<Option<T>> for F {
    fn from(v: Option<T>) -> F {
        v.map_or(F::Null, Into::into)
    }
}

impl<T: Into<F>> From<Vec<T>> for F {
    fn from(list: Vec<T>) -> F {
        F::List(list.into_iter().map(Into::into).collect())
    }
}

/// [`Fields`] from `"key": value` pairs, each value converted with `F::from`; the typed
/// counterpart of `json!({…})` for evidence (module doc).
///
/// The vector has room for [`SPARE`] more keys: the engine adds its own (`subject_state`,
/// `cleared_by`, …) to most evidence, and a vector made to measure would be copied into a new
/// allocation for the first of them (a third of the page faults of a replay's engine thread,
/// docs/BENCHMARKS.md).
macro_rules! fields {
    ({ $($k:literal : $v:expr),* $(,)? }) => {{
        const KEYS: &[&str] = &[$($k),*];
        // Known when compiling: a literal written in key order, as ours are, is not sorted
        // again for every alert.
        const ORDERED: bool = $crate::evidence::strictly_ordered(KEYS);
        let mut pairs = Vec::with_capacity(KEYS.len() + $crate::evidence::SPARE);
        $(pairs.push(($k, $crate::evidence::F::from($v)));)*
        if ORDERED {
            $crate::evidence::Fields::ordered(pairs)
        } else {
            $crate::evidence::Fields::new(pairs)
        }
    }};
}

/// Whether `keys` are in strictly increasing byte order (no key twice), for [`fields!`] to
/// find out when compiling.
pub const fn strictly_ordered(keys: &[&str]) -> bool {
    let mut i = 1;
    while i < keys.len() {
        if !key_order(keys[i - 1], keys[i]).is_lt() {
            return false;
        }
        i += 1;
    }
    true
}

/// Keys the engine may add to evidence after it was made (see [`fields!`]).
pub const SPARE: usize = 2;
pub(crate) use fields;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fields {
        let t = Instant(1_772_416_800);
        fields!({
            "zeta": F::List(vec![F::from(1u32), F::from(t)]),
            "alpha": t,
            "mid": fields!({"b": "x", "a": Some(t.day()), "c": None::<u32>}),
            "alpha": -3i64,
            "rate": 0.85f64,
            "whole": 2.0f64,
            "text": "引号\"与\\".to_string(),
        })
    }

    #[test]
    fn fields_serialise_as_the_value_made_of_them() {
        let f = sample();
        let direct = serde_json::to_string(&f).unwrap();
        let via_value = serde_json::to_string(&f.to_value()).unwrap();
        assert_eq!(direct, via_value);
        // Sorted, the later of two equal keys kept.
        assert!(direct.starts_with(r#"{"alpha":-3,"mid":{"a":"2026-03-02","b":"x","c":null}"#));
    }

    #[test]
    fn keys_are_ordered_as_strings_are_and_inserted_in_place() {
        let keys = [
            "",
            "a",
            "ab",
            "ab\u{0}",
            "abc",
            "b",
            "legal_deadline",
            "legal_deadline_date",
            "pause",
            "pause_days",
            "pauses",
            "z",
            "é",
            "工作日",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(key_order(a, b), a.cmp(b), "{a:?} against {b:?}");
                assert_eq!(strictly_ordered(&[a, b]), a < b, "{a:?} then {b:?}");
            }
        }
        assert!(strictly_ordered(&keys) && strictly_ordered(&[]) && strictly_ordered(&["x"]));
        assert!(!strictly_ordered(&["a", "c", "b"]));
        // In order already, out of order, and with a key twice: each read as a sorted map.
        let made = |keys: &[&'static str]| {
            let pairs = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (*k, F::from(i as u32)));
            serde_json::to_string(&Fields::new(pairs.collect())).unwrap()
        };
        assert_eq!(made(&["a", "ab", "b"]), r#"{"a":0,"ab":1,"b":2}"#);
        assert_eq!(made(&["b", "ab", "a"]), r#"{"a":2,"ab":1,"b":0}"#);
        assert_eq!(made(&["a", "b", "a"]), r#"{"a":2,"b":1}"#);
        let mut f = Fields::new(vec![("pause", F::from(1u32)), ("pauses", F::from(2u32))]);
        f.insert("pause_days", F::from(3u32));
        f.insert("pause", F::from(4u32));
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, r#"{"pause":4,"pause_days":3,"pauses":2}"#);
    }

    /// Written straight to text, fields are byte for byte what `serde_json` writes for them:
    /// every kind of value, nested, and strings with everything JSON escapes and does not.
    #[test]
    fn fields_written_straight_are_what_serde_json_writes() {
        let mut f = sample();
        let tricky = [
            "",
            "plain ascii, long enough to take more than one word of eight bytes",
            "引号\"与\\",
            "tab\there",
            "\u{1}\u{1f}\u{7f} del and controls",
            "slash / and é and 😀",
            "\"",
            "12345678\\",
            "1234567\n",
        ];
        for (i, t) in tricky.iter().enumerate() {
            let key: &'static str = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"][i];
            f.insert(key, F::Text((*t).into()));
        }
        f.insert("k\"ey", F::Str("static \\ text"));
        f.insert(
            "nums",
            F::List(vec![F::U64(u64::MAX), F::I64(i64::MIN), F::F64(-0.5)]),
        );
        f.insert("inf", F::F64(f64::INFINITY));
        f.insert("nan", F::F64(f64::NAN));
        f.insert(
            "bools",
            F::List(vec![F::Bool(true), F::Bool(false), F::Null]),
        );
        f.insert(
            "json",
            F::Json(serde_json::json!({"b": [1, "x\ny"], "a": null})),
        );
        f.insert("far", F::Instant(Instant(-99_999_999_999)));
        f.insert("empty", F::Object(Fields::default()));
        f.insert("none", F::List(Vec::new()));
        let mut direct = Vec::new();
        f.write_json(&mut direct);
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            serde_json::to_string(&f).unwrap()
        );
        let e = Evidence::from(f);
        assert_eq!(e.json_text(), serde_json::to_string(&e).unwrap());
        assert_eq!(e.to_string(), e.json_text());
        let v = Evidence::from(serde_json::json!({"x": "\u{0}"}));
        assert_eq!(v.json_text(), serde_json::to_string(&v).unwrap());
        assert_eq!(Evidence::default().json_text(), "null");
    }

    /// The eight-at-a-time test finds every byte JSON escapes at every place, and nothing else.
    #[test]
    fn needs_escape_finds_exactly_what_json_escapes() {
        for len in 0..20 {
            for at in 0..len {
                for c in 0u8..=255 {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    let naive = b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
                    assert_eq!(needs_escape(&b), naive, "byte {c:#x} at {at} of {len}");
                }
            }
        }
        // Many bytes at once, drawn mostly from the edges of what is escaped and from high
        // bytes (whose borrows the word-wise test must not mistake for a match).
        let edges = [
            0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff,
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let len = (next() % 40) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => next() as u8,
                    1 => 0x20 + (next() % 0x5f) as u8,
                    _ => edges[(next() % edges.len() as u64) as usize],
                })
                .collect();
            let naive = b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
            assert_eq!(needs_escape(&b), naive, "{b:x?}");
        }
    }

    #[test]
    fn evidence_reads_as_its_value_and_changes_as_one() {
        let mut e = Evidence::from(sample());
        assert_eq!(e["mid"]["b"], "x");
        let before = serde_json::to_string(&e).unwrap();
        assert_eq!(before, serde_json::to_string(&*e).unwrap());
        let copy = e.clone();
        e["added"] = Value::from(1);
        assert_eq!(e["added"], 1);
        assert_ne!(e, copy);
        assert_eq!(serde_json::to_string(&copy).unwrap(), before);
        let mut f = Evidence::from(sample());
        f.fields_mut().unwrap().insert("b", F::Null);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            serde_json::to_string(&*f).unwrap()
        );
        assert!(f.get("b").unwrap().is_null());
        assert_eq!(Evidence::default(), Evidence::from(Value::Null));
    }
}

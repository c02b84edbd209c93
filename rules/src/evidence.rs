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
//! stores when they write the row.
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

/// As JSON text, like `Value`'s (and written straight from the fields, as serialising is).
impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Fields(fields, _) => {
                f.write_str(&serde_json::to_string(fields).map_err(|_| std::fmt::Error)?)
            }
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

/// A JSON object with static keys and typed values, kept in key order (module doc).
#[derive(Clone, Debug, Default)]
pub struct Fields(Vec<(&'static str, F)>);

impl Fields {
    /// The object of `pairs`, in any order (sorted here: a literal written in key order, as
    /// ours are, costs one pass). A key given twice keeps its last value, as a map would.
    pub fn new(mut pairs: Vec<(&'static str, F)>) -> Fields {
        pairs.sort_by_key(|(k, _)| *k);
        pairs.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Fields(pairs)
    }

    /// Set `key` to `value`, in its place.
    pub fn insert(&mut self, key: &'static str, value: F) {
        match self.0.binary_search_by_key(&key, |(k, _)| k) {
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
        let keys: &[&str] = &[$($k),*];
        let mut pairs = Vec::with_capacity(keys.len() + $crate::evidence::SPARE);
        $(pairs.push(($k, $crate::evidence::F::from($v)));)*
        $crate::evidence::Fields::new(pairs)
    }};
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

//! One source record: a table row exported as a flat JSON object (SPEC §9 Offline), `"_table"`
//! naming its table, column names as in the format, values as the database exports them.
//!
//! Columns are looked up without regard to ASCII case (Oracle exports upper case, the JSON
//! interfaces lower case); numbers are kept as their text, so `"DATAVER": 2` and
//! `"DATAVER": "2"` are the same; `null` and blank values count as absent, as an empty
//! column does in the source database.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// A parsed row: `(column, value)` pairs in input order, absent values left out.
#[derive(Debug, Default, Clone)]
pub struct Row<'a> {
    cols: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Columns whose value was an array or object (no format has such a column).
    nested: Vec<Cow<'a, str>>,
}

impl<'a> Row<'a> {
    /// Parse one NDJSON line.
    pub fn parse(line: &'a str) -> Result<Row<'a>, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// A row from pairs (tests, the simulator).
    pub fn from_pairs(pairs: &[(&'a str, &'a str)]) -> Row<'a> {
        Row {
            cols: pairs
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|&(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
                .collect(),
            nested: Vec::new(),
        }
    }

    /// The value of `column`, trimmed; `None` when absent, null or blank.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.cols
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(column))
            .map(|(_, v)| v.trim())
    }

    /// The first of `columns` that has a value, with its name.
    pub fn first(&self, columns: &[&'static str]) -> Option<(&'static str, &str)> {
        columns.iter().find_map(|&c| self.get(c).map(|v| (c, v)))
    }

    /// A column whose value is an array or object, if any.
    pub fn nested(&self) -> Option<&str> {
        self.nested.first().map(|c| c.as_ref())
    }
}

/// A JSON scalar as text.
struct Text<'a>(Option<Cow<'a, str>>, bool);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number, a boolean or null")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v)), false))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string())), false))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v)), false))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string())), false))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string())), false))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string())), false))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(if v { "1" } else { "0" })), false))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None, false))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None, false))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None, true))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None, true))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Row<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Row<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object (one table row)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Row<'de>, A::Error> {
                let mut row = Row::default();
                while let Some(k) = a.next_key::<Cow<'de, str>>()? {
                    match a.next_value::<Text<'de>>()? {
                        Text(Some(v), _) if !v.trim().is_empty() => row.cols.push((k, v)),
                        Text(_, true) => row.nested.push(k),
                        Text(_, false) => {}
                    }
                }
                Ok(row)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_ignore_case_and_blank_values() {
        let row = Row::parse(
            r#"{"_table":"T","DATAVER":2,"projid":" K1 ","EMPTY":"  ","N":null,"F":1.5}"#,
        )
        .expect("row");
        assert_eq!(row.get("dataver"), Some("2"));
        assert_eq!(row.get("PROJID"), Some("K1"));
        assert_eq!(row.get("EMPTY"), None);
        assert_eq!(row.get("N"), None);
        assert_eq!(row.get("F"), Some("1.5"));
        assert!(Row::parse("[1]").is_err());
        let nested = Row::parse(r#"{"A":{"b":1}}"#).expect("row");
        assert_eq!(nested.nested(), Some("A"));
    }
}

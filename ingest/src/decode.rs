//! Decoding and validating `jiancha.event.v1` (SPEC §3) into [`rules::Event`].
//!
//! One pass of serde_json over the object keeps each known field as a [`Scalar`] that borrows
//! from the input (no allocation unless a string has escapes); unknown fields are skipped. Then
//! each field is checked for presence and type, per kind, so every invalid input yields a
//! precise, machine-readable [`DecodeError`]: which rule of the format it breaks (`code`), which
//! field, and a sentence for people.

use std::borrow::Cow;
use std::fmt;

use rules::event::{
    is_valid_region, Body, CaseType, Channel, ComplaintCategory, CompletionResult, Kind,
    LimitOverrides, Procedure, Stage, StageResult, Unit,
};
use rules::reference::{Limit, MAX_LIMIT_DAYS};
use rules::time::{parse_rfc3339, Instant};
use rules::Event;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Longest accepted identifier (`event_id` and the other id fields), in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest `source` (SPEC §3).
pub const MAX_SOURCE_LEN: usize = 64;
/// Longest accepted free text (`reason`), in bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// Why an input is invalid: a stable `code`, the field concerned and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodeError {
    /// Stable machine-readable reason.
    pub code: Reason,
    /// The field concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Reason codes of [`DecodeError`] (they label metrics and dead letters; never rename one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// Not a JSON document.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// `kind` is not one of SPEC §3's kinds.
    UnknownKind,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type.
    MistypedField,
    /// A field has the right type but a value outside what is allowed.
    InvalidValue,
    /// `region` is not a GB/T 2260 code.
    BadRegion,
    /// A timestamp is not RFC 3339 with an offset, or is out of range.
    BadTimestamp,
    /// `occurred_at` lies too far in the future of its receipt.
    FutureTimestamp,
    /// An id field holds a character outside the id character set ([`check_id`]).
    BadId,
}

impl Reason {
    /// Every reason (metrics start each at zero).
    pub const ALL: [Reason; 10] = [
        Reason::NotUtf8,
        Reason::NotJson,
        Reason::NotObject,
        Reason::UnknownKind,
        Reason::MissingField,
        Reason::MistypedField,
        Reason::InvalidValue,
        Reason::BadRegion,
        Reason::BadTimestamp,
        Reason::FutureTimestamp,
    ];

    /// The code as a string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotUtf8 => "not_utf8",
            Reason::NotJson => "not_json",
            Reason::NotObject => "not_object",
            Reason::UnknownKind => "unknown_kind",
            Reason::MissingField => "missing_field",
            Reason::MistypedField => "mistyped_field",
            Reason::InvalidValue => "invalid_value",
            Reason::BadRegion => "bad_region",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::FutureTimestamp => "future_timestamp",
            Reason::BadId => "bad_id",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{} {}: {}", self.code.as_str(), field, self.message),
            None => write!(f, "{}: {}", self.code.as_str(), self.message),
        }
    }
}

impl std::error::Error for DecodeError {}

fn err(code: Reason, field: Option<&'static str>, message: impl Into<String>) -> DecodeError {
    DecodeError {
        code,
        field,
        message: message.into(),
    }
}

/// When the event was received, for the future-timestamp check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Received now (live ingest): `occurred_at` may not exceed this plus the skew.
    At(Instant),
    /// A file or replay: compare with the event's own `reported_at`, and skip the check when it
    /// has none (a file has no receipt time, and replay must be deterministic).
    ReportedAt,
}

/// Decoding settings.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions<'s> {
    /// Receipt time.
    pub receipt: Receipt,
    /// `source` of events that name none (HTTP ingest: `http:<publisher>`).
    pub default_source: Option<&'s str>,
    /// Allowed future skew of `occurred_at` over receipt, in seconds (SPEC: 10 minutes).
    pub max_future_skew_secs: i64,
}

impl DecodeOptions<'_> {
    /// Options for replaying a file.
    pub fn replay(policy: &rules::Policy) -> Self {
        DecodeOptions {
            receipt: Receipt::ReportedAt,
            default_source: None,
            max_future_skew_secs: i64::from(policy.future_skew_minutes) * 60,
        }
    }
}

/// A JSON value kept only as far as validation needs it.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float,
    Bool(bool),
    Null,
    Compound,
}

impl Scalar<'_> {
    fn json_type(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Int(_) => "an integer",
            Scalar::Float => "a decimal number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Null => "null",
            Scalar::Compound => "an array or object",
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                // Beyond i64 nothing in the format is valid; keep it as "too large".
                Ok(i64::try_from(v).map_or(Scalar::Int(i64::MAX), Scalar::Int))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Compound)
            }
        }
        d.deserialize_any(V)
    }
}

/// Declares the known wire fields: an index per name and the name per index.
macro_rules! fields {
    ($($name:ident),+ $(,)?) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        enum F { $($name),+ }
        const FIELD_NAMES: &[&str] = &[$(stringify!($name)),+];
    };
}

fields!(
    event_id,
    kind,
    occurred_at,
    reported_at,
    center_id,
    region,
    department,
    window_id,
    staff_id,
    case_id,
    item_code,
    channel,
    case_type,
    promised_days,
    promised_unit,
    legal_days,
    legal_unit,
    reason,
    stage,
    result,
    to_department,
    procedure,
    limit_days,
    limit_unit,
    extra_days,
    receipt_no,
    amount_fen,
    payer_id,
    complaint_id,
    category,
    substantiated,
    evaluation_id,
    score,
    ticket_no,
    source,
    supersedes,
    withdraws,
    source_deadline,
);

const N_FIELDS: usize = FIELD_NAMES.len();

/// A field name (at most 16 bytes) as two little-endian words, zero-padded.
const fn key_words(b: &[u8]) -> (u64, u64) {
    let mut w = [0u64; 2];
    let mut i = 0;
    while i < b.len() && i < 16 {
        w[i / 8] |= (b[i] as u64) << (8 * (i % 8));
        i += 1;
    }
    (w[0], w[1])
}

/// Multiplier of the field-name hash, chosen so the known names land in distinct slots of
/// [`FIELD_TABLE`] (the table's construction refuses to compile otherwise).
const FIELD_HASH_K: u64 = 0x3a43_0d4b_7db1_00ef;

const fn field_hash(len: usize, (lo, hi): (u64, u64)) -> usize {
    ((lo ^ hi.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ len as u64).wrapping_mul(FIELD_HASH_K) >> 58)
        as usize
}

/// Known field names by hash: (length, words, index); length 0 is an empty slot.
const FIELD_TABLE: [(usize, (u64, u64), usize); 64] = {
    let mut table = [(0, (0, 0), 0); 64];
    let mut f = 0;
    while f < N_FIELDS {
        let name = FIELD_NAMES[f].as_bytes();
        assert!(name.len() <= 16, "field names are at most 16 bytes");
        let slot = field_hash(name.len(), key_words(name));
        assert!(
            table[slot].0 == 0,
            "field names collide: choose another FIELD_HASH_K"
        );
        table[slot] = (name.len(), key_words(name), f);
        f += 1;
    }
    table
};

/// The index of a known field: one multiply, one table slot, one comparison.
fn field_index(name: &str) -> Option<usize> {
    let b = name.as_bytes();
    if b.len() > 16 {
        return None;
    }
    lookup_field(b.len(), key_words(b))
}

/// [`field_index`] of `name`, which starts at `start` of `b`: whole words are read from `b`
/// when it has 16 bytes there (it does in practice: the name is followed by its value).
fn field_at(b: &[u8], start: usize, name: &str) -> Option<usize> {
    let len = name.len();
    let word = |at: usize| b.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes);
    let mask = |n: usize| {
        if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        }
    };
    match (len <= 16).then(|| (word(start), word(start + 8))) {
        Some((Some(lo), Some(hi))) => {
            lookup_field(len, (lo & mask(len), hi & mask(len.saturating_sub(8))))
        }
        _ => field_index(name),
    }
}

fn lookup_field(len: usize, words: (u64, u64)) -> Option<usize> {
    let (known_len, known, f) = FIELD_TABLE[field_hash(len, words)];
    (len != 0 && known_len == len && known == words).then_some(f)
}

/// The object's known fields.
struct Raw<'a>([Option<Scalar<'a>>; N_FIELDS]);

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Key(Option<usize>);
        impl<'de> Deserialize<'de> for Key {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct KV;
                impl Visitor<'_> for KV {
                    type Value = Key;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a field name")
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                        Ok(Key(field_index(v)))
                    }
                }
                d.deserialize_str(KV)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw<'de>, A::Error> {
                let mut raw = Raw(std::array::from_fn(|_| None));
                while let Some(Key(k)) = a.next_key::<Key>()? {
                    match k {
                        Some(i) => raw.0[i] = Some(a.next_value::<Scalar<'de>>()?),
                        None => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Raw<'a> {
    fn empty() -> Self {
        Raw(std::array::from_fn(|_| None))
    }

    /// Fill an empty `Raw` with `text`'s known fields, or report it as not JSON or not an
    /// object. (In place: a `Raw` is a kilobyte, not worth moving.)
    fn parse(&mut self, text: &'a str) -> Result<(), DecodeError> {
        if scan_flat(text, self).is_some() {
            return Ok(());
        }
        *self = serde_json::from_str(text).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                err(Reason::NotObject, None, "an event must be a JSON object")
            } else {
                err(Reason::NotJson, None, e.to_string())
            }
        })?;
        Ok(())
    }

    fn take(&mut self, f: F) -> Option<Scalar<'a>> {
        match self.0[f as usize].take() {
            Some(Scalar::Null) | None => None,
            some => some,
        }
    }

    fn name(f: F) -> &'static str {
        FIELD_NAMES[f as usize]
    }

    fn opt_str(&mut self, f: F, max_len: usize) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match self.take(f) {
            None => Ok(None),
            Some(Scalar::Str(s)) if s.len() > max_len => Err(err(
                Reason::InvalidValue,
                Some(Raw::name(f)),
                format!("longer than {max_len} bytes"),
            )),
            Some(Scalar::Str(s)) => Ok(Some(s)),
            Some(other) => Err(mistyped(f, "a string", &other)),
        }
    }

    /// An id-like string: absent, null and blank all count as missing; present, it must be in
    /// the id character set ([`check_id`]).
    fn opt_id(&mut self, f: F) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match self.opt_str(f, MAX_ID_LEN)?.filter(|s| !is_blank(s)) {
            Some(s) => check_id(Raw::name(f), &s).map(|()| Some(s)),
            None => Ok(None),
        }
    }

    fn id(&mut self, f: F, why: Why) -> Result<Cow<'a, str>, DecodeError> {
        self.opt_id(f)?.ok_or_else(|| missing(f, why))
    }

    fn opt_enum<T>(
        &mut self,
        f: F,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, DecodeError> {
        match self.opt_str(f, MAX_ID_LEN)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| {
                err(
                    Reason::InvalidValue,
                    Some(Raw::name(f)),
                    format!("{s:?} is not allowed; expected {expected}"),
                )
            }),
        }
    }

    fn req_enum<T>(
        &mut self,
        f: F,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
        why: Why,
    ) -> Result<T, DecodeError> {
        self.opt_enum(f, parse, expected)?
            .ok_or_else(|| missing(f, why))
    }

    fn opt_int(&mut self, f: F, min: i64, max: i64) -> Result<Option<i64>, DecodeError> {
        match self.take(f) {
            None => Ok(None),
            Some(Scalar::Int(v)) if (min..=max).contains(&v) => Ok(Some(v)),
            Some(Scalar::Int(v)) => Err(err(
                Reason::InvalidValue,
                Some(Raw::name(f)),
                format!("{v} is out of range {min}..={max}"),
            )),
            Some(other) => Err(mistyped(f, "an integer", &other)),
        }
    }

    fn opt_limit(&mut self, days: F, unit: F) -> Result<Option<Limit>, DecodeError> {
        let d = self.opt_int(days, 0, i64::from(MAX_LIMIT_DAYS))?;
        let u = self.opt_enum(unit, Unit::parse, Unit::expected())?;
        match (d, u) {
            (None, None) => Ok(None),
            (Some(d), Some(unit)) => Ok(Some(Limit {
                days: d as u16,
                unit,
            })),
            (Some(_), None) => Err(missing(unit, Why::Given(days))),
            (None, Some(_)) => Err(missing(days, Why::Given(unit))),
        }
    }

    /// A local date (`2026-09-29`) or an RFC 3339 instant, as its China date (`source_deadline`).
    fn date_or_time(&mut self, f: F) -> Result<Option<rules::Day>, DecodeError> {
        match self.opt_str(f, 64)? {
            None => Ok(None),
            Some(s) if s.len() == 10 => rules::Day::parse(&s).map(Some).ok_or_else(|| {
                err(
                    Reason::BadTimestamp,
                    Some(Raw::name(f)),
                    format!("{s:?}: expected a date YYYY-MM-DD or an RFC 3339 time"),
                )
            }),
            Some(s) => parse_rfc3339(&s).map(|t| Some(t.day())).map_err(|e| {
                err(
                    Reason::BadTimestamp,
                    Some(Raw::name(f)),
                    format!("{s:?}: {e}"),
                )
            }),
        }
    }

    fn timestamp(&mut self, f: F) -> Result<Option<Instant>, DecodeError> {
        match self.opt_str(f, 64)? {
            None => Ok(None),
            Some(s) => parse_rfc3339(&s).map(Some).map_err(|e| {
                err(
                    Reason::BadTimestamp,
                    Some(Raw::name(f)),
                    format!("{s:?}: {e}"),
                )
            }),
        }
    }
}

/// The id character set (SPEC §3 ids: `event_id`, `center_id`, `window_id`, `staff_id`,
/// `case_id`, `department`, `item_code`, `complaint_id`, …): any printable character —
/// letters and digits of any script (办件编号 such as `平政〔2026〕12号` are common),
/// punctuation such as `-` `_` `.` `:` `/` `#` `(` `)` `〔` `〕` — except
/// - control and format characters (Unicode Cc and Cf: NUL, line breaks, tabs, escape
///   sequences, bidirectional overrides that make a log or a screen show another text),
/// - whitespace (an id with spaces is a typo two systems will disagree on),
/// - markup and quoting characters: `<` `>` `&` `"` `'` `` ` `` `\`.
///
/// Ids travel into dashboards, logs, CSV exports, notifications and SQL; keeping them inert
/// at the door is simpler than escaping them right everywhere (docs/SECURITY.md). Refused
/// with reason `bad_id`, naming the field and the character.
pub fn check_id(field: &'static str, id: &str) -> Result<(), DecodeError> {
    // Nearly every id is ASCII: a table look-up a byte; any other byte (or a refused one)
    // and the characters are read one by one, which also names the first refused.
    if id.bytes().all(|b| ASCII_ID[usize::from(b)]) {
        return Ok(());
    }
    match id.chars().find(|&c| !is_id_char(c)) {
        None => Ok(()),
        Some(c) => Err(err(
            Reason::BadId,
            Some(field),
            format!(
                "contains {c:?} (U+{:04X}); ids may not hold control characters, whitespace or \
                 any of < > & \" ' ` \\",
                u32::from(c)
            ),
        )),
    }
}

/// The ASCII characters ids may hold: the printable ones (`!` to `~`) except markup and
/// quoting characters. [`is_id_char`] reads it for ASCII; every other byte is `false` (non-ASCII
/// text is judged as characters).
const ASCII_ID: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        table[b] = !matches!(b as u8, b'<' | b'>' | b'&' | b'"' | b'\'' | b'`' | b'\\');
        b += 1;
    }
    table
};

fn is_id_char(c: char) -> bool {
    if c.is_ascii() {
        return ASCII_ID[c as usize];
    }
    // Cf: soft hyphen, zero-width and bidirectional controls, BOM, tags.
    let format = matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'..='\u{E007F}'
    );
    !(c.is_control() || c.is_whitespace() || format || matches!(c, '\u{FF1C}' | '\u{FF1E}'))
}

/// Unknown fields are kept in what is stored (the events table, the ingest log) up to this
/// many; an event with more keeps none of them.
pub const MAX_UNKNOWN_FIELDS: usize = 32;
/// Unknown fields are kept in what is stored up to this many bytes (names and values
/// together); an event with more keeps none of them.
pub const MAX_UNKNOWN_BYTES: usize = 4096;

/// The form of a decoded event's line that is stored: the line itself, or, when its unknown
/// fields exceed [`MAX_UNKNOWN_FIELDS`] or [`MAX_UNKNOWN_BYTES`], the object with its known
/// fields only. Window systems may send extra fields (SPEC §3 ignores them) but not make the
/// store keep megabytes of them per event. The event itself (what the engine sees) is the
/// same either way.
pub fn stored_form(line: &[u8]) -> Cow<'_, [u8]> {
    // A short line with few commas cannot exceed either cap: no parse on the common path.
    // (Counted in runs a byte-sized counter holds, which the compiler turns into vector code;
    // counted with a filter, the scan cost more than decoding the line's ids.)
    let commas: usize = line
        .chunks(255)
        .map(|run| usize::from(run.iter().fold(0u8, |n, &b| n + u8::from(b == b','))))
        .sum();
    if line.len() <= MAX_UNKNOWN_BYTES && commas < MAX_UNKNOWN_FIELDS {
        return Cow::Borrowed(line);
    }
    let Ok(mut object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line)
    else {
        return Cow::Borrowed(line);
    };
    let known = |k: &str| FIELD_NAMES.contains(&k);
    let (mut fields, mut bytes) = (0usize, 0usize);
    for (k, v) in &object {
        if !known(k) {
            fields += 1;
            bytes += k.len() + v.to_string().len();
        }
    }
    if fields <= MAX_UNKNOWN_FIELDS && bytes <= MAX_UNKNOWN_BYTES {
        return Cow::Borrowed(line);
    }
    object.retain(|k, _| known(k));
    Cow::Owned(serde_json::to_vec(&object).unwrap_or_else(|_| line.to_vec()))
}

/// The fast path of [`Raw::parse`]: a flat object whose strings have no escapes and whose
/// numbers are integers — what window systems send. Anything else (an escape, a nested value,
/// a decimal, a syntax error) gives `None` before anything is concluded, and serde_json decodes
/// the text instead, so values and errors are exactly the general path's (the test
/// `fast_path_agrees_with_serde_json` and the `decode` fuzz target hold them to that).
fn scan_flat<'a>(text: &'a str, raw: &mut Raw<'a>) -> Option<()> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if *b.get(i)? != b'{' {
        return None;
    }
    i = skip_ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    loop {
        let (key, j) = plain_str(text, i)?;
        let field = field_at(b, i + 1, key);
        i = skip_ws(b, j);
        if *b.get(i)? != b':' {
            return None;
        }
        i = skip_ws(b, i + 1);
        let (value, j) = match *b.get(i)? {
            b'"' => {
                let (s, j) = plain_str(text, i)?;
                (Scalar::Str(Cow::Borrowed(s)), j)
            }
            b't' if b[i..].starts_with(b"true") => (Scalar::Bool(true), i + 4),
            b'f' if b[i..].starts_with(b"false") => (Scalar::Bool(false), i + 5),
            b'n' if b[i..].starts_with(b"null") => (Scalar::Null, i + 4),
            b'-' | b'0'..=b'9' => integer(b, i)?,
            _ => return None,
        };
        if let Some(k) = field {
            raw.0[k] = Some(value);
        }
        i = skip_ws(b, j);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

/// The index of the first non-whitespace byte (JSON's four) at or after `i`.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The string starting with the quote at `i` and the index after its closing quote, if it has
/// no escape and no control character (those are left to serde_json).
fn plain_str(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if *b.get(i)? != b'"' {
        return None;
    }
    let end = i + 1 + special_byte(&b[i + 1..])?;
    // Both ends are ASCII quotes, so these are character boundaries.
    (b[end] == b'"').then(|| (&text[i + 1..end], end + 1))
}

/// The index of the first quote, backslash or control character in `b`, eight bytes at a time
/// (the lowest flagged byte of each word is exact; multi-byte UTF-8 is never flagged).
fn special_byte(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let flagged = zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if flagged != 0 {
            return Some(at + flagged.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    let rest = tail
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(at + rest)
}

/// An integer literal at `i` as serde_json reads it into [`Scalar`], or `None` for anything
/// else it would read differently (decimals, exponents, leading zeros, beyond 64 bits).
fn integer(b: &[u8], i: usize) -> Option<(Scalar<'static>, usize)> {
    let negative = b[i] == b'-';
    let start = i + usize::from(negative);
    let digits = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    let end = start + digits;
    if digits == 0 || digits > 19 || (digits > 1 && b[start] == b'0') {
        return None;
    }
    if let Some(b'.' | b'e' | b'E') = b.get(end) {
        return None;
    }
    let magnitude = b[start..end].iter().try_fold(0u64, |n, &c| {
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })?;
    let value = if negative {
        // serde_json reads -0 and a negative beyond i64 as floats.
        if magnitude == 0 {
            return None;
        }
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        // As the visitor: beyond i64, "too large".
        i64::try_from(magnitude).unwrap_or(i64::MAX)
    };
    Some((Scalar::Int(value), end))
}

/// Why a field is required; the sentence is only built when it is missing.
#[derive(Clone, Copy)]
enum Why {
    /// Every event has it.
    Always,
    /// Required by this kind.
    Kind(Kind),
    /// Required because this other field is given.
    Given(F),
}

/// Empty or whitespace only. Ids almost never start with whitespace, so look at the first
/// character before trimming.
fn is_blank(s: &str) -> bool {
    s.chars().next().is_none_or(char::is_whitespace) && s.trim().is_empty()
}

fn missing(f: F, why: Why) -> DecodeError {
    let why = match why {
        Why::Always => "every event has one".to_string(),
        Why::Kind(k) => format!("kind is {}", k.as_str()),
        Why::Given(g) => format!("{} is given", Raw::name(g)),
    };
    err(
        Reason::MissingField,
        Some(Raw::name(f)),
        format!("required when {why}"),
    )
}

fn mistyped(f: F, expected: &str, got: &Scalar<'_>) -> DecodeError {
    err(
        Reason::MistypedField,
        Some(Raw::name(f)),
        format!("expected {expected}, got {}", got.json_type()),
    )
}

/// Decode and validate one event from raw bytes (a Kafka message or an NDJSON line).
pub fn decode<'a>(bytes: &'a [u8], opts: &DecodeOptions<'a>) -> Result<Event<'a>, DecodeError> {
    decode_str(text(bytes)?, opts)
}

/// Raw bytes as the text [`decode_str`] takes, or the error [`decode`] gives them: for callers
/// that keep the text (checked once) beside the event.
pub fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|e| {
        err(
            Reason::NotUtf8,
            None,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })
}

/// Decode and validate one event from text.
pub fn decode_str<'a>(text: &'a str, opts: &DecodeOptions<'a>) -> Result<Event<'a>, DecodeError> {
    let mut raw = Raw::empty();
    raw.parse(text)?;
    let kind_text = raw.id(F::kind, Why::Always)?;
    let kind = Kind::parse(&kind_text).ok_or_else(|| {
        err(
            Reason::UnknownKind,
            Some("kind"),
            format!("{kind_text:?} is not a jiancha.event.v1 kind"),
        )
    })?;
    let event_id = raw.id(F::event_id, Why::Always)?;
    let occurred_at = raw
        .timestamp(F::occurred_at)?
        .ok_or_else(|| missing(F::occurred_at, Why::Always))?;
    let reported_at = raw.timestamp(F::reported_at)?;
    let center_id = raw.id(F::center_id, Why::Always)?;
    let region = raw.id(F::region, Why::Always)?;
    if !is_valid_region(&region) {
        return Err(err(
            Reason::BadRegion,
            Some("region"),
            format!("{region:?} is not a 6-digit GB/T 2260 code (e.g. 430626)"),
        ));
    }
    let receipt = match opts.receipt {
        Receipt::At(t) => Some(t),
        Receipt::ReportedAt => reported_at,
    };
    if let Some(received) = receipt {
        if occurred_at.0 > received.0 + opts.max_future_skew_secs {
            return Err(err(
                Reason::FutureTimestamp,
                Some("occurred_at"),
                format!(
                    "{occurred_at} is more than {} minutes after its receipt at {received}",
                    opts.max_future_skew_secs / 60
                ),
            ));
        }
    }
    let department = raw.opt_id(F::department)?;
    let window_id = raw.opt_id(F::window_id)?;
    let staff_id = raw.opt_id(F::staff_id)?;
    let case_id = if kind.is_case() {
        Some(raw.id(F::case_id, Why::Kind(kind))?)
    } else {
        raw.opt_id(F::case_id)?
    };
    let item_code = match kind {
        Kind::CaseSubmitted | Kind::CaseAccepted | Kind::FeeCharged => {
            Some(raw.id(F::item_code, Why::Kind(kind))?)
        }
        _ => raw.opt_id(F::item_code)?,
    };
    let source = match raw
        .opt_str(F::source, MAX_SOURCE_LEN)?
        .filter(|s| !is_blank(s))
    {
        // A source is shown and namespaces event ids: it is held to the id character set.
        Some(s) => check_id("source", &s).map(|()| Some(s))?,
        None => opts.default_source.map(Cow::Borrowed),
    };
    let supersedes = raw.opt_id(F::supersedes)?;
    let body = body(kind, &mut raw, window_id.is_some(), staff_id.is_some())?;
    Ok(Event {
        event_id,
        occurred_at,
        reported_at,
        received_at: match opts.receipt {
            Receipt::At(t) => Some(t),
            Receipt::ReportedAt => None,
        },
        center_id,
        region,
        department,
        window_id,
        staff_id,
        case_id,
        item_code,
        source,
        supersedes,
        body,
    })
}

fn body<'a>(
    kind: Kind,
    raw: &mut Raw<'a>,
    has_window: bool,
    has_staff: bool,
) -> Result<Body<'a>, DecodeError> {
    let why = Why::Kind(kind);
    let need_window = |present: bool| {
        if present {
            Ok(())
        } else {
            Err(missing(F::window_id, why))
        }
    };
    let need_staff = |present: bool| {
        if present {
            Ok(())
        } else {
            Err(missing(F::staff_id, why))
        }
    };
    let reason = |raw: &mut Raw<'a>| raw.opt_str(F::reason, MAX_TEXT_LEN);
    Ok(match kind {
        Kind::CaseSubmitted => Body::CaseSubmitted {
            channel: raw.opt_enum(F::channel, Channel::parse, Channel::expected())?,
        },
        Kind::CaseAccepted => Body::CaseAccepted {
            channel: raw.req_enum(F::channel, Channel::parse, Channel::expected(), why)?,
            overrides: LimitOverrides {
                case_type: raw.opt_enum(F::case_type, CaseType::parse, CaseType::expected())?,
                promised: raw.opt_limit(F::promised_days, F::promised_unit)?,
                legal: raw.opt_limit(F::legal_days, F::legal_unit)?,
                source_deadline: raw.date_or_time(F::source_deadline)?,
            },
        },
        Kind::CaseRejected => Body::CaseRejected {
            reason: reason(raw)?,
        },
        Kind::SupplementRequested => Body::SupplementRequested {
            reason: reason(raw)?,
        },
        Kind::SupplementReceived => Body::SupplementReceived,
        Kind::CaseStage => Body::CaseStage {
            stage: raw.req_enum(F::stage, Stage::parse, Stage::expected(), why)?,
            result: raw.req_enum(F::result, StageResult::parse, StageResult::expected(), why)?,
        },
        Kind::CaseTransferred => Body::CaseTransferred {
            to_department: raw.id(F::to_department, why)?,
        },
        Kind::SpecialStarted => Body::SpecialStarted {
            procedure: raw.req_enum(F::procedure, Procedure::parse, Procedure::expected(), why)?,
            limit: raw.opt_limit(F::limit_days, F::limit_unit)?,
        },
        Kind::SpecialEnded => Body::SpecialEnded,
        Kind::CaseSuspended => Body::CaseSuspended {
            reason: reason(raw)?,
        },
        Kind::CaseResumed => Body::CaseResumed {
            reason: reason(raw)?,
        },
        Kind::CaseExtended => Body::CaseExtended {
            extra_days: raw
                .opt_int(F::extra_days, 0, i64::from(MAX_LIMIT_DAYS))?
                .ok_or_else(|| missing(F::extra_days, why))? as u16,
        },
        Kind::CaseCompleted => Body::CaseCompleted {
            result: raw.req_enum(
                F::result,
                CompletionResult::parse,
                CompletionResult::expected(),
                why,
            )?,
        },
        Kind::CaseDelivered => Body::CaseDelivered,
        Kind::CaseArchived => Body::CaseArchived,
        Kind::FeeCharged => Body::FeeCharged {
            receipt_no: raw.id(F::receipt_no, why)?,
            amount_fen: raw
                .opt_int(F::amount_fen, 0, i64::MAX)?
                .ok_or_else(|| missing(F::amount_fen, why))? as u64,
            payer_id: raw.id(F::payer_id, why)?,
        },
        Kind::ComplaintFiled => Body::ComplaintFiled {
            complaint_id: raw.id(F::complaint_id, why)?,
            category: raw.req_enum(
                F::category,
                ComplaintCategory::parse,
                ComplaintCategory::expected(),
                why,
            )?,
        },
        Kind::ComplaintResolved => Body::ComplaintResolved {
            complaint_id: raw.id(F::complaint_id, why)?,
            substantiated: match raw.take(F::substantiated) {
                Some(Scalar::Bool(b)) => b,
                None => return Err(missing(F::substantiated, why)),
                Some(other) => return Err(mistyped(F::substantiated, "a boolean", &other)),
            },
        },
        Kind::EvaluationSubmitted => Body::EvaluationSubmitted {
            evaluation_id: raw.id(F::evaluation_id, why)?,
            score: raw
                .opt_int(F::score, 1, 5)?
                .ok_or_else(|| missing(F::score, why))? as u8,
        },
        Kind::EvaluationRectified => Body::EvaluationRectified {
            evaluation_id: raw.id(F::evaluation_id, why)?,
        },
        Kind::StaffSignedIn | Kind::StaffSignedOut => {
            need_staff(has_staff)?;
            need_window(has_window)?;
            if kind == Kind::StaffSignedIn {
                Body::StaffSignedIn
            } else {
                Body::StaffSignedOut
            }
        }
        Kind::WindowOpened | Kind::WindowPaused | Kind::WindowClosed => {
            need_window(has_window)?;
            match kind {
                Kind::WindowOpened => Body::WindowOpened,
                Kind::WindowPaused => Body::WindowPaused,
                _ => Body::WindowClosed,
            }
        }
        Kind::TicketIssued => Body::TicketIssued {
            ticket_no: raw.id(F::ticket_no, why)?,
        },
        Kind::TicketCalled => {
            need_window(has_window)?;
            Body::TicketCalled {
                ticket_no: raw.id(F::ticket_no, why)?,
            }
        }
        Kind::EventWithdrawn => Body::EventWithdrawn {
            withdraws: raw.id(F::withdraws, why)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: DecodeOptions = DecodeOptions {
        receipt: Receipt::ReportedAt,
        default_source: None,
        max_future_skew_secs: 600,
    };

    #[test]
    fn the_source_is_the_events_or_the_senders_and_inert() {
        let line = |extra: &str| {
            format!(
                r#"{{"event_id":"e1","kind":"window.opened","occurred_at":"2026-09-28T09:00:00+08:00","center_id":"PJ","region":"430626","window_id":"W01"{extra}}}"#
            )
        };
        let posted = DecodeOptions {
            default_source: Some("http:pj-pub"),
            ..OPTS
        };
        let plain = line("");
        assert_eq!(decode_str(&plain, &OPTS).expect("ok").source, None);
        let ev = decode_str(&plain, &posted).expect("ok");
        assert_eq!(ev.source.as_deref(), Some("http:pj-pub"), "the sender's");
        let named = line(r#","source":"sdjc:pj-approval""#);
        let ev = decode_str(&named, &posted).expect("ok");
        assert_eq!(ev.source.as_deref(), Some("sdjc:pj-approval"), "its own");
        let hostile = line(r#","source":"a\u001b[2Jb""#);
        let e = decode_str(&hostile, &posted).expect_err("control character");
        assert_eq!((e.code, e.field), (Reason::BadId, Some("source")));
        let long = line(&format!(
            r#","source":"{}""#,
            "s".repeat(MAX_SOURCE_LEN + 1)
        ));
        assert_eq!(
            decode_str(&long, &posted).expect_err("too long").field,
            Some("source")
        );
    }

    #[test]
    fn corrections_are_decoded() {
        let head = r#"{"event_id":"e2","occurred_at":"2026-09-28T09:00:00+08:00","center_id":"PJ","region":"430626""#;
        let line = format!(r#"{head},"kind":"case.delivered","case_id":"K1","supersedes":"e1"}}"#);
        let ev = decode_str(&line, &OPTS).expect("a superseding event");
        assert_eq!(ev.supersedes.as_deref(), Some("e1"));
        let line = format!(r#"{head},"kind":"event.withdrawn","withdraws":"e1"}}"#);
        let ev = decode_str(&line, &OPTS).expect("a withdrawal");
        assert_eq!(
            ev.body,
            Body::EventWithdrawn {
                withdraws: Cow::Borrowed("e1")
            }
        );
        let e = decode_str(&format!(r#"{head},"kind":"event.withdrawn"}}"#), &OPTS)
            .expect_err("withdraws nothing");
        assert_eq!((e.code, e.field), (Reason::MissingField, Some("withdraws")));
        let e = decode_str(
            &format!(r#"{head},"kind":"case.delivered","case_id":"K1","supersedes":"e 1"}}"#),
            &OPTS,
        )
        .expect_err("not an id");
        assert_eq!((e.code, e.field), (Reason::BadId, Some("supersedes")));
    }

    #[test]
    fn every_field_name_is_found_and_nothing_else() {
        for (i, name) in FIELD_NAMES.iter().enumerate() {
            assert_eq!(field_index(name), Some(i), "{name}");
            for other in [&name[1..], &name[..name.len() - 1], &format!("{name}x")] {
                assert!(field_index(other).is_none_or(|j| FIELD_NAMES[j] == other));
            }
            assert_eq!(field_index(&format!("{name}\0")), None);
            assert_eq!(field_index(&name.to_uppercase()), None);
        }
        assert_eq!(field_index(""), None);
        assert_eq!(field_index("a_field_name_longer_than_16"), None);
    }

    /// Where the fast path takes an input, it must find exactly what serde_json finds; where it
    /// declines, serde_json decides. Inputs: real lines, and every prefix and one-byte change
    /// of them (so syntax errors at each position), plus the JSON corners the fast path skips.
    #[test]
    fn fast_path_agrees_with_serde_json() {
        let mut workload = rules::synth::Workload::new(3, 50, 100_000);
        let mut lines = Vec::new();
        workload.warm_up(50, |l| lines.push(l.to_string()));
        for _ in 0..300 {
            let mut l = String::new();
            workload.next_line(&mut l);
            lines.extend(l.split('\n').map(str::to_string));
        }
        let mut inputs: Vec<String> = [
            "{}",
            " { } ",
            "{\"a\":1}x",
            "{\"kind\":\"a\\\"b\"}",
            "{\"k\":[1,{\"x\":2}]}",
            "{\"score\":-0}",
            "{\"score\":01}",
            "{\"score\":1.5}",
            "{\"score\":1e3}",
            "{\"score\":9223372036854775807}",
            "{\"score\":9223372036854775808}",
            "{\"score\":-9223372036854775808}",
            "{\"score\":-9223372036854775809}",
            "{\"score\":18446744073709551616}",
            "{\"score\":12345678901234567890}",
            "{\"score\":-}",
            "{\"a\":tru}",
            "{\"a\":truex}",
            "{\"a\":null,\"a\":\"b\"}",
            "{\"a\":\"\t\"}",
            "{\"kind\" : \"x\" ,\r\n \"kind\":\"y\"}",
            "{\"a\":1,}",
            "{,}",
            "[1]",
            "\"s\"",
            "{\"汉字\":\"办件\"}",
            "{\"a\":\"b\"",
            "{\"a\"}",
        ]
        .map(str::to_string)
        .to_vec();
        for line in lines.iter().take(40) {
            for cut in 0..line.len() {
                inputs.push(line[..cut].to_string());
                let mut bytes = line.clone().into_bytes();
                for c in [b'"', b'\\', b'}', b'1', b' ', b'.', b',', b'-'] {
                    bytes[cut] = c;
                    inputs.extend(String::from_utf8(bytes.clone()).ok());
                }
            }
        }
        inputs.extend(lines);
        let mut taken = 0;
        for text in &inputs {
            let mut fast = Raw::empty();
            if scan_flat(text, &mut fast).is_none() {
                continue;
            }
            taken += 1;
            let general: Raw = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("fast path took {text:?}, serde_json refuses: {e}"));
            assert!(fast.0 == general.0, "{text:?}");
        }
        assert!(taken > 400, "the fast path took only {taken} inputs");
    }

    fn base(extra: &str) -> String {
        format!(
            r#"{{"event_id":"e1","kind":"case.accepted","occurred_at":"2026-09-28T10:00:00+08:00","center_id":"PJ","region":"430626","case_id":"C1","item_code":"P5","channel":"hall"{extra}}}"#
        )
    }

    fn fails(text: &str) -> (Reason, Option<&'static str>) {
        let e = decode(text.as_bytes(), &OPTS).expect_err(text);
        (e.code, e.field)
    }

    #[test]
    fn ids_outside_the_character_set_are_refused_naming_field_and_character() {
        for (field, bad) in [
            ("case_id", r#"C\u00001"#),
            ("case_id", r#"C\n1"#),
            ("event_id", "<script>"),
            ("center_id", "P&J"),
            ("case_id", "C 1"),
            ("case_id", r#"C\"1"#),
            ("case_id", "C\u{202e}1"),
            ("item_code", "=HYPERLINK(1)'"),
        ] {
            let text =
                base("").replace(&format!("\"{field}\":\""), &format!("\"{field}\":\"{bad}"));
            let e = decode(text.as_bytes(), &OPTS).expect_err(&text);
            assert_eq!(
                (e.code, e.field),
                (Reason::BadId, Some(field)),
                "{text}: {e}"
            );
            assert!(e.message.contains("U+"), "{e}");
        }
        // Chinese case numbers and the usual punctuation are ids.
        let text = base("").replace("\"C1\"", "\"平政〔2026〕12号-A_1.2/3#(x):y\"");
        assert!(decode(text.as_bytes(), &OPTS).is_ok(), "{text}");
    }

    #[test]
    fn ascii_ids_are_the_printable_characters_but_markup_and_quotes() {
        let refused = "<>&\"'`\\";
        for b in 0..=127u8 {
            let c = char::from(b);
            let allowed = c.is_ascii_graphic() && !refused.contains(c);
            assert_eq!(
                check_id("case_id", &format!("C{c}1")).is_ok(),
                allowed,
                "{c:?}"
            );
        }
        // An id with a refused ASCII byte after non-ASCII text still names that byte.
        let e = check_id("case_id", "平政<1").expect_err("refused");
        assert!(e.message.contains("U+003C"), "{e}");
    }

    #[test]
    fn unknown_fields_beyond_the_cap_are_dropped_from_the_stored_form() {
        let few = base(r#","vendor":"x","extra":{"a":[1]}"#);
        assert!(matches!(stored_form(few.as_bytes()), Cow::Borrowed(_)));
        let many: String = (0..40).map(|i| format!(",\"x{i}\":{i}")).collect();
        let big = base(&format!(r#","pad":"{}""#, "y".repeat(5000)));
        for text in [base(&many), big] {
            let stored = stored_form(text.as_bytes());
            let stored = std::str::from_utf8(&stored).expect("utf8");
            assert!(
                !stored.contains("x39") && !stored.contains("yyy"),
                "{stored}"
            );
            let (a, b) = (
                decode(text.as_bytes(), &OPTS).expect("valid"),
                decode(stored.as_bytes(), &OPTS).expect("still valid"),
            );
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "same event");
        }
    }

    #[test]
    fn decodes_an_acceptance_with_overrides_borrowing_strings() {
        let text = base(r#","promised_days":3,"promised_unit":"natural","unknown":{"a":[1]}"#);
        let ev = decode(text.as_bytes(), &OPTS).unwrap();
        assert!(matches!(ev.event_id, Cow::Borrowed("e1")));
        assert_eq!(ev.case_id.as_deref(), Some("C1"));
        let Body::CaseAccepted { channel, overrides } = ev.body else {
            panic!("{:?}", ev.body)
        };
        assert_eq!(channel, Channel::Hall);
        assert_eq!(
            overrides.promised,
            Some(Limit {
                days: 3,
                unit: Unit::Natural
            })
        );
    }

    #[test]
    fn source_deadline_is_a_date_or_a_time_taken_as_its_china_date() {
        let day = |extra: &str| {
            let text = base(extra);
            let ev = decode(text.as_bytes(), &OPTS).unwrap();
            let Body::CaseAccepted { overrides, .. } = ev.body else {
                panic!("{:?}", ev.body)
            };
            overrides.source_deadline.map(|d| d.to_string())
        };
        assert_eq!(
            day(r#","source_deadline":"2026-10-05""#).as_deref(),
            Some("2026-10-05")
        );
        // 16:30 UTC on the 4th is 00:30 on the 5th in China.
        assert_eq!(
            day(r#","source_deadline":"2026-10-04T16:30:00Z""#).as_deref(),
            Some("2026-10-05")
        );
        assert_eq!(day(""), None);
        assert_eq!(
            fails(&base(r#","source_deadline":"2026-13-01""#)),
            (Reason::BadTimestamp, Some("source_deadline"))
        );
        assert_eq!(
            fails(&base(r#","source_deadline":"next week""#)),
            (Reason::BadTimestamp, Some("source_deadline"))
        );
    }

    #[test]
    fn every_invalid_input_has_a_precise_reason() {
        assert_eq!(fails("{not json"), (Reason::NotJson, None));
        assert_eq!(fails("[1,2]"), (Reason::NotObject, None));
        assert_eq!(
            decode(b"\xff\xfe", &OPTS).unwrap_err().code,
            Reason::NotUtf8
        );
        assert_eq!(
            fails(&base("").replace("case.accepted", "case.teleported")),
            (Reason::UnknownKind, Some("kind"))
        );
        assert_eq!(
            fails(&base("").replace(r#","case_id":"C1""#, "")),
            (Reason::MissingField, Some("case_id"))
        );
        assert_eq!(
            fails(&base("").replace(r#""case_id":"C1""#, r#""case_id":7"#)),
            (Reason::MistypedField, Some("case_id"))
        );
        assert_eq!(
            fails(&base("").replace("430626", "43062")),
            (Reason::BadRegion, Some("region"))
        );
        assert_eq!(
            fails(&base("").replace("+08:00", "")),
            (Reason::BadTimestamp, Some("occurred_at"))
        );
        assert_eq!(
            fails(&base("").replace(r#""channel":"hall""#, r#""channel":"fax""#)),
            (Reason::InvalidValue, Some("channel"))
        );
        assert_eq!(
            fails(&base(r#","promised_days":3"#)),
            (Reason::MissingField, Some("promised_unit"))
        );
        assert_eq!(
            fails(&base(r#","promised_days":-1,"promised_unit":"working""#)),
            (Reason::InvalidValue, Some("promised_days"))
        );
        assert_eq!(
            fails(&base(r#","promised_days":1.5,"promised_unit":"working""#)),
            (Reason::MistypedField, Some("promised_days"))
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(
            fails(&base("").replace(r#""e1""#, &format!("{long:?}"))),
            (Reason::InvalidValue, Some("event_id"))
        );
    }

    #[test]
    fn future_timestamps_beyond_the_skew_are_refused() {
        let live = DecodeOptions {
            receipt: Receipt::At(parse_rfc3339("2026-09-28T09:50:00+08:00").unwrap()),
            default_source: None,
            max_future_skew_secs: 600,
        };
        assert!(
            decode(base("").as_bytes(), &live).is_ok(),
            "exactly 10 minutes"
        );
        let live = DecodeOptions {
            receipt: Receipt::At(parse_rfc3339("2026-09-28T09:49:59+08:00").unwrap()),
            default_source: None,
            ..live
        };
        let e = decode(base("").as_bytes(), &live).unwrap_err();
        assert_eq!(e.code, Reason::FutureTimestamp);
        // In a file, the event's own reported_at is the receipt.
        let text = base(r#","reported_at":"2026-09-28T09:00:00+08:00""#);
        assert_eq!(fails(&text), (Reason::FutureTimestamp, Some("occurred_at")));
    }

    #[test]
    fn kind_specific_fields() {
        let fee = r#"{"event_id":"f","kind":"fee.charged","occurred_at":"2026-09-28T10:00:00Z","center_id":"PJ","region":"430626","item_code":"P5","receipt_no":"R1","payer_id":"P","amount_fen":"80"}"#;
        assert_eq!(fails(fee), (Reason::MistypedField, Some("amount_fen")));
        let eval = r#"{"event_id":"v","kind":"evaluation.submitted","occurred_at":"2026-09-28T10:00:00Z","center_id":"PJ","region":"430626","evaluation_id":"E","score":6}"#;
        assert_eq!(fails(eval), (Reason::InvalidValue, Some("score")));
        let sign = r#"{"event_id":"s","kind":"staff.signed_in","occurred_at":"2026-09-28T10:00:00Z","center_id":"PJ","region":"430626","staff_id":"S1"}"#;
        assert_eq!(fails(sign), (Reason::MissingField, Some("window_id")));
        let e = decode(sign.as_bytes(), &OPTS).unwrap_err();
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""code":"missing_field""#), "{json}");
        assert!(json.contains(r#""field":"window_id""#), "{json}");
    }
}

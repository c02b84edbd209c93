//! Instants, local dates and RFC 3339 — the engine's only notion of time.
//!
//! Every date in jiancha is a local date in UTC+08:00 (SPEC §5). An [`Instant`] is a whole number
//! of seconds since the Unix epoch; a [`Day`] is a local date counted from 2000-01-01. Both are
//! plain integers so the hot path never touches a calendar library. Fractions of a second are
//! truncated when parsing: deadlines fall on whole seconds, so truncation never moves an event
//! across one.

use std::fmt;

/// Seconds east of UTC of the local time every date is taken in (China Standard Time).
pub const LOCAL_OFFSET_SECS: i64 = 8 * 3600;
const SECS_PER_DAY: i64 = 86_400;
/// Days from 1970-01-01 to 2000-01-01.
const EPOCH_2000_DAYS: i64 = 10_957;
/// First supported year (inclusive).
pub const MIN_YEAR: i32 = 2000;
/// Last supported year for event timestamps (inclusive). The calendar extends a little further
/// so that limits counted from the last supported dates still land inside it.
pub const MAX_YEAR: i32 = 2099;

/// A point in time: whole seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub i64);

/// A local (UTC+08:00) date, as days since 2000-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Day(pub u32);

impl Instant {
    /// The local date this instant falls on.
    pub fn day(self) -> Day {
        let local_days = (self.0 + LOCAL_OFFSET_SECS).div_euclid(SECS_PER_DAY);
        Day((local_days - EPOCH_2000_DAYS).max(0) as u32)
    }

    /// This instant plus `secs` seconds.
    pub fn plus_secs(self, secs: i64) -> Instant {
        Instant(self.0 + secs)
    }
}

impl Day {
    /// 00:00 local time at the start of this day.
    pub fn start(self) -> Instant {
        Instant((i64::from(self.0) + EPOCH_2000_DAYS) * SECS_PER_DAY - LOCAL_OFFSET_SECS)
    }

    /// 00:00 of the following day: the deadline instant of a limit whose last day is `self`.
    pub fn end(self) -> Instant {
        Day(self.0 + 1).start()
    }

    /// Days since 1970-01-01 (ClickHouse `Date`, SQLite julian arithmetic).
    pub fn days_since_unix_epoch(self) -> u32 {
        self.0 + EPOCH_2000_DAYS as u32
    }

    /// The date `n` days later.
    pub fn plus(self, n: u32) -> Day {
        Day(self.0 + n)
    }

    /// The day with the same number `n` months later, or the last day of that month if it has
    /// none (民法典 §201: Jan 31 + 1 month = Feb 28/29). Saturates at the end of 2099.
    pub fn plus_months(self, n: u32) -> Day {
        let (y, m, d) = self.ymd();
        let months = i64::from(y) * 12 + i64::from(m - 1) + i64::from(n);
        let year = (months / 12).min(i64::from(MAX_YEAR)) as i32;
        let month = if months / 12 > i64::from(MAX_YEAR) {
            12
        } else {
            (months % 12) as u32 + 1
        };
        let day = d.min(days_in_month(year, month));
        Day::from_ymd(year, month, day).unwrap_or(self)
    }

    /// The day before (saturating at 2000-01-01).
    pub fn prev(self) -> Day {
        Day(self.0.saturating_sub(1))
    }

    /// Build from a civil date; `None` if it is not a real date or before 2000.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let days = days_from_civil(year, month, day) - EPOCH_2000_DAYS;
        u32::try_from(days).ok().map(Day)
    }

    /// The civil (year, month, day) of this date.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(i64::from(self.0) + EPOCH_2000_DAYS)
    }

    /// The year of this date.
    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// ISO weekday, Monday = 1 … Sunday = 7.
    pub fn iso_weekday(self) -> u32 {
        // 2000-01-01 was a Saturday (6).
        ((self.0 + 5) % 7) + 1
    }

    /// Parse `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = digits(&b[0..4])? as i32;
        Day::from_ymd(year, digits(&b[5..7])?, digits(&b[8..10])?)
    }
}

/// Write `v` as `buf.len()` zero-padded decimal digits (the caller keeps `v` in range).
fn put_digits(buf: &mut [u8], mut v: u32) {
    for b in buf.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `YYYY-MM-DD` into the first 10 bytes of `buf`; false if the year has no 4-digit form.
fn put_date(buf: &mut [u8], (y, m, d): (i32, u32, u32)) -> bool {
    let Ok(year) = u32::try_from(y) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    put_digits(&mut buf[0..4], year);
    buf[4] = b'-';
    put_digits(&mut buf[5..7], m);
    buf[7] = b'-';
    put_digits(&mut buf[8..10], d);
    true
}

// Dates and instants are formatted by hand: every alert prints several, and the general
// formatting machinery (padding, width parsing) cost more than the rest of building an alert.
impl Day {
    /// `YYYY-MM-DD` as bytes, when the year has four digits.
    fn text(&self) -> Option<[u8; 10]> {
        let mut buf = [0u8; 10];
        put_date(&mut buf, self.ymd()).then_some(buf)
    }
}

impl Day {
    /// Append `YYYY-MM-DD` to `out`: what `Display` writes, without the formatter (dates are in
    /// every alert's message).
    pub fn push_to(&self, out: &mut String) {
        match self.text() {
            Some(buf) => out.push_str(std::str::from_utf8(&buf).unwrap_or_default()),
            None => {
                use fmt::Write as _;
                let _ = write!(out, "{self}");
            }
        }
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(buf) = self.text() else {
            let (y, m, d) = self.ymd();
            return write!(f, "{y:04}-{m:02}-{d:02}");
        };
        // Only ASCII digits and '-' were written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl Instant {
    /// The RFC 3339 text as bytes, when the year has four digits.
    fn text(&self) -> Option<[u8; 25]> {
        let local = self.0 + LOCAL_OFFSET_SECS;
        let days = local.div_euclid(SECS_PER_DAY);
        let secs = local.rem_euclid(SECS_PER_DAY) as u32;
        let mut buf = *b"0000-00-00T00:00:00+08:00";
        if !put_date(&mut buf, civil_from_days(days)) {
            return None;
        }
        put_digits(&mut buf[11..13], secs / 3600);
        put_digits(&mut buf[14..16], secs / 60 % 60);
        put_digits(&mut buf[17..19], secs % 60);
        Some(buf)
    }
}

impl fmt::Display for Instant {
    /// RFC 3339 in local time, e.g. `2026-10-13T00:00:00+08:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(buf) = self.text() else {
            let local = self.0 + LOCAL_OFFSET_SECS;
            let secs = local.rem_euclid(SECS_PER_DAY) as u32;
            let (y, m, d) = civil_from_days(local.div_euclid(SECS_PER_DAY));
            return write!(
                f,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+08:00",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
        };
        // Only ASCII was written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// Serialised straight from the text's bytes (not through `Display`, whose formatting
/// machinery cost more than the text: every alert's evidence holds several instants).
fn serialize_text<S: serde::Serializer, T: fmt::Display>(
    s: S,
    text: Option<&[u8]>,
    value: &T,
) -> Result<S::Ok, S::Error> {
    match text.and_then(|b| std::str::from_utf8(b).ok()) {
        Some(t) => s.serialize_str(t),
        None => s.collect_str(value),
    }
}

impl Instant {
    /// As a JSON string, byte for byte what serialising it with `serde_json` writes
    /// ([`crate::evidence`] writes evidence straight to text).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        write_json_text(out, self.text().as_ref().map(|b| &b[..]), self);
    }
}

impl Day {
    /// As [`Instant::write_json`].
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        write_json_text(out, self.text().as_ref().map(|b| &b[..]), self);
    }
}

/// `text` (digits and punctuation: nothing JSON escapes) in quotes; what `serde_json` writes
/// for `value` when there is none.
fn write_json_text<T: serde::Serialize>(out: &mut Vec<u8>, text: Option<&[u8]>, value: &T) {
    match text {
        Some(t) => {
            out.reserve(t.len() + 2);
            out.push(b'"');
            out.extend_from_slice(t);
            out.push(b'"');
        }
        None => {
            let _ = serde_json::to_writer(out, value);
        }
    }
}

impl serde::Serialize for Instant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_text(s, self.text().as_ref().map(|b| &b[..]), self)
    }
}

/// Parsed as RFC 3339 with a mandatory offset (any offset: it is the same instant).
impl<'de> serde::Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_rfc3339(&s)
            .map_err(|e| serde::de::Error::custom(format!("not an instant: {s:?}: {e}")))
    }
}

impl serde::Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_text(s, self.text().as_ref().map(|b| &b[..]), self)
    }
}

impl<'de> serde::Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Day::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a date: {s:?}")))
    }
}

/// Why a timestamp could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
    Syntax,
    /// Well-formed but without a UTC offset; local time is ambiguous on the wire.
    MissingOffset,
    /// Not a real date or time (month 13, 25:00 …).
    OutOfRange,
    /// Before 2000 or after 2099, in local time (UTC+08:00).
    UnsupportedYear,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimestampError::Syntax => "not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS+08:00)",
            TimestampError::MissingOffset => "RFC 3339 timestamp without a UTC offset",
            TimestampError::OutOfRange => "not a real date or time",
            TimestampError::UnsupportedYear => {
                "year outside the supported range 2000-2099 (in UTC+08:00)"
            }
        })
    }
}

/// Parse an RFC 3339 timestamp with a mandatory offset (`Z` or `±HH:MM`).
pub fn parse_rfc3339(s: &str) -> Result<Instant, TimestampError> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(TimestampError::Syntax);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(TimestampError::Syntax);
    }
    let num = |r: std::ops::Range<usize>| digits(&b[r]).ok_or(TimestampError::Syntax);
    let year = num(0..4)? as i32;
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == frac_start {
            return Err(TimestampError::Syntax);
        }
    }
    let offset = match b.get(i) {
        None => return Err(TimestampError::MissingOffset),
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(TimestampError::OutOfRange);
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(TimestampError::Syntax),
    };
    // A leap second (:60) is accepted and folded into the next second, as most systems do.
    if month == 0 || month > 12 || day == 0 || day > days_in_month(year, month) {
        return Err(TimestampError::OutOfRange);
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimestampError::OutOfRange);
    }
    let days = days_from_civil(year, month, day);
    let secs = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset;
    // The year written is in the sender's offset; the supported range is of local dates. Found
    // by fuzzing: `2000-01-01T00:00:00+23:59` is 1999-12-31 in China, and `Instant::day` would
    // have clamped it to 2000-01-01 (a wrong date, silently), nor could it be printed and
    // parsed back.
    let local_days = (secs + LOCAL_OFFSET_SECS).div_euclid(SECS_PER_DAY);
    if local_days < days_from_civil(MIN_YEAR, 1, 1)
        || local_days >= days_from_civil(MAX_YEAR + 1, 1, 1)
    {
        return Err(TimestampError::UnsupportedYear);
    }
    Ok(Instant(secs))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_keep_the_day_number_or_take_the_months_last_day() {
        let d = |s: &str| Day::parse(s).unwrap();
        assert_eq!(d("2026-01-31").plus_months(1), d("2026-02-28"));
        assert_eq!(d("2028-01-31").plus_months(1), d("2028-02-29"));
        assert_eq!(d("2026-01-31").plus_months(2), d("2026-03-31"));
        assert_eq!(d("2026-03-31").plus_months(1), d("2026-04-30"));
        assert_eq!(d("2026-11-15").plus_months(3), d("2027-02-15"));
        assert_eq!(d("2026-03-02").plus_months(0), d("2026-03-02"));
        assert_eq!(
            d("2099-06-30").plus_months(12),
            d("2099-12-30"),
            "saturates at 2099"
        );
    }

    #[test]
    fn parses_offsets_into_the_same_instant() {
        let a = parse_rfc3339("2026-10-13T00:00:00+08:00").unwrap();
        let b = parse_rfc3339("2026-10-12T16:00:00Z").unwrap();
        let c = parse_rfc3339("2026-10-12T11:00:00.999-05:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "2026-10-13T00:00:00+08:00");
    }

    #[test]
    fn local_date_is_taken_in_utc_plus_8() {
        // 16:30 UTC on the 12th is 00:30 on the 13th in China.
        let t = parse_rfc3339("2026-10-12T16:30:00Z").unwrap();
        assert_eq!(t.day().to_string(), "2026-10-13");
        assert_eq!(t.day().end().to_string(), "2026-10-14T00:00:00+08:00");
    }

    #[test]
    fn rejects_malformed_timestamps_with_the_reason() {
        assert_eq!(parse_rfc3339("2026-10-13"), Err(TimestampError::Syntax));
        assert_eq!(
            parse_rfc3339("2026-10-13T00:00:00"),
            Err(TimestampError::MissingOffset)
        );
        assert_eq!(
            parse_rfc3339("2026-02-29T00:00:00+08:00"),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            parse_rfc3339("1999-12-31T00:00:00+08:00"),
            Err(TimestampError::UnsupportedYear)
        );
        assert_eq!(
            parse_rfc3339("2026-10-13T00:00:00+0800"),
            Err(TimestampError::Syntax)
        );
    }

    /// Fuzzing regression: the supported years are of the local (UTC+08:00) date, whatever
    /// offset the sender wrote, so every accepted instant has a real `Day` and prints in a form
    /// that parses back to it.
    #[test]
    fn supported_years_are_local_years() {
        for outside in [
            "2000-01-01T00:00:00+23:59",
            "1999-12-31T15:59:59Z",
            "2099-12-31T23:59:59-23:59",
            "2099-12-31T16:00:00Z",
        ] {
            assert_eq!(
                parse_rfc3339(outside),
                Err(TimestampError::UnsupportedYear),
                "{outside}"
            );
        }
        let first = parse_rfc3339("1999-12-31T16:00:00Z").unwrap();
        assert_eq!(first.to_string(), "2000-01-01T00:00:00+08:00");
        assert_eq!(first.day(), Day(0));
        let last = parse_rfc3339("2099-12-31T23:59:59+08:00").unwrap();
        for t in [first, last] {
            assert_eq!(parse_rfc3339(&t.to_string()), Ok(t));
        }
    }

    #[test]
    fn formats_every_second_of_the_day_and_odd_years() {
        let t = parse_rfc3339("2026-10-13T00:00:00+08:00").unwrap();
        for s in [0, 1, 59, 60, 3599, 3600, 43_261, 86_399] {
            let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
            assert_eq!(
                t.plus_secs(s).to_string(),
                format!("2026-10-13T{h:02}:{m:02}:{sec:02}+08:00")
            );
        }
        assert_eq!(Instant(0).to_string(), "1970-01-01T08:00:00+08:00");
        assert_eq!(Day(0).to_string(), "2000-01-01");
        // Far outside the supported years: still printed, through the slow path.
        assert!(Instant(i64::MIN / 2).to_string().ends_with("+08:00"));
        assert!(Instant(1 << 50).to_string().ends_with("+08:00"));
    }

    #[test]
    fn instants_round_trip_through_serde() {
        let t = parse_rfc3339("2026-10-12T16:30:05Z").unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""2026-10-13T00:30:05+08:00""#);
        assert_eq!(serde_json::from_str::<Instant>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Instant>(r#""2026-10-13""#).is_err());
        // Serialised as displayed, in and out of the years with a 4-digit form.
        for t in [t, Instant(i64::MIN / 2), Instant(1 << 50)] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.to_string().as_str());
        }
        for d in [Day(0), Day(9_000), Day(u32::MAX)] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.to_string().as_str());
        }
    }

    #[test]
    fn a_date_appended_reads_as_displayed() {
        for d in [
            Day(0),
            Day(9_000),
            Day(9_466),
            Day(3_000_000),
            Day(u32::MAX),
        ] {
            let mut out = String::from("至 ");
            d.push_to(&mut out);
            assert_eq!(out, format!("至 {d}"));
        }
    }

    #[test]
    fn weekdays_and_civil_round_trip() {
        let d = Day::parse("2026-10-01").unwrap();
        assert_eq!(d.iso_weekday(), 4, "2026-10-01 is a Thursday");
        assert_eq!(Day::parse("2000-01-01").unwrap().iso_weekday(), 6);
        for n in (0..40_000).step_by(97) {
            let day = Day(n);
            let (y, m, dd) = day.ymd();
            assert_eq!(Day::from_ymd(y, m, dd), Some(day));
        }
        assert_eq!(Day::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert_eq!(Day::parse("2023-02-29"), None);
    }
}

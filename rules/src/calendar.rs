//! The official working-day calendar (法定节假日 and 调休), precomputed for O(1) queries.
//!
//! Input is the holiday-cn JSON format, one file per year. A listed date is a working day iff
//! `isOffDay` is false (调休 weekend days are working days); an unlisted date is a working day iff
//! Monday–Friday (SPEC §5). A year with no file, or an empty one, falls back to weekends only and
//! is reported by [`Calendar::provisional_years`] so alerts can say their deadline is provisional.
//!
//! Everything the engine asks — "is D a working day", "the N-th working day after S", "working
//! days in (a, b]" — is answered from three arrays built once: a per-day flag, a running count of
//! working days, and the list of working days. No map or file is touched after [`CalendarBuilder::build`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::reference::ReferenceError;
use crate::time::{Day, Instant, MAX_YEAR, MIN_YEAR};

/// Last year covered by the precomputed tables; later than [`MAX_YEAR`] so that limits counted
/// from the last supported event dates still land inside the table.
const TABLE_LAST_YEAR: i32 = MAX_YEAR + 12;

/// The official data shipped with jiancha (holiday-cn, upstream unchanged).
const BUILT_IN: &[(&str, &str)] = &[
    ("2020.json", include_str!("../data/holidays/2020.json")),
    ("2021.json", include_str!("../data/holidays/2021.json")),
    ("2022.json", include_str!("../data/holidays/2022.json")),
    ("2023.json", include_str!("../data/holidays/2023.json")),
    ("2024.json", include_str!("../data/holidays/2024.json")),
    ("2025.json", include_str!("../data/holidays/2025.json")),
    ("2026.json", include_str!("../data/holidays/2026.json")),
    ("2027.json", include_str!("../data/holidays/2027.json")),
];

/// How far an office-time walk goes: the largest office-time limit (3,650 hours at 7 hours a
/// day) spans about 750 calendar days.
pub const OFFICE_WALK_DAYS: u32 = 800;

/// A working-day calendar over 2000-01-01 ..= 2111-12-31.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// `working[d]`: day `d` is a working day.
    working: Vec<bool>,
    /// `count[d]`: number of working days in `[day 0, d]`.
    count: Vec<u32>,
    /// The working days, in order.
    working_days: Vec<u32>,
    /// Years (from [`MIN_YEAR`]) whose official data was present and non-empty.
    year_has_data: Vec<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HolidayFile {
    year: i32,
    days: Vec<HolidayEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HolidayEntry {
    #[allow(dead_code)] // kept for readable errors; the engine needs only the date and the flag
    name: Option<String>,
    date: String,
    is_off_day: bool,
}

/// Collects holiday-cn files (built-in, then overrides) and builds a [`Calendar`].
#[derive(Debug, Default)]
pub struct CalendarBuilder {
    /// Per year: the file it came from and its entries.
    years: BTreeMap<i32, (String, Vec<(Day, bool)>)>,
}

impl CalendarBuilder {
    /// A builder holding the built-in official data for 2020–2027.
    pub fn with_built_in() -> Self {
        let mut b = CalendarBuilder::default();
        for (name, text) in BUILT_IN {
            // The built-in files are checked by the unit tests below; a failure here is a bug.
            if let Err(e) = b.add_file(&format!("built-in calendar/{name}"), text) {
                panic!("built-in calendar data is invalid: {e}");
            }
        }
        b
    }

    /// Add (or replace) one year from a holiday-cn JSON file. `file` names it in errors.
    pub fn add_file(&mut self, file: &str, text: &str) -> Result<(), ReferenceError> {
        let parsed: HolidayFile = serde_json::from_str(text).map_err(|e| {
            ReferenceError::new(
                file,
                Some(e.line()),
                format!("invalid holiday-cn JSON: {e}"),
            )
        })?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&parsed.year) {
            return Err(ReferenceError::new(
                file,
                line_of(text, "\"year\""),
                format!("year {} is outside 2000-2099", parsed.year),
            ));
        }
        let mut entries: Vec<(Day, bool)> = Vec::with_capacity(parsed.days.len());
        for entry in &parsed.days {
            let line = line_of(text, &format!("\"{}\"", entry.date));
            let day = Day::parse(&entry.date).ok_or_else(|| {
                ReferenceError::new(
                    file,
                    line,
                    format!("date {:?} is not YYYY-MM-DD", entry.date),
                )
            })?;
            if (day.year() - parsed.year).abs() > 1 {
                return Err(ReferenceError::new(
                    file,
                    line,
                    format!(
                        "date {} is far from the file's year {}",
                        entry.date, parsed.year
                    ),
                ));
            }
            if let Some(&(_, off)) = entries.iter().find(|(d, _)| *d == day) {
                if off != entry.is_off_day {
                    return Err(ReferenceError::new(
                        file,
                        line,
                        format!(
                            "date {} is listed twice with different isOffDay",
                            entry.date
                        ),
                    ));
                }
            }
            entries.push((day, entry.is_off_day));
        }
        self.years.insert(parsed.year, (file.to_string(), entries));
        Ok(())
    }

    /// Precompute the tables.
    pub fn build(&self) -> Calendar {
        let last = Day::from_ymd(TABLE_LAST_YEAR, 12, 31).map_or(0, |d| d.0) as usize;
        let mut working: Vec<bool> = (0..=last)
            .map(|d| Day(d as u32).iso_weekday() <= 5)
            .collect();
        let mut year_has_data = vec![false; (TABLE_LAST_YEAR - MIN_YEAR + 1) as usize];
        for (year, (_, entries)) in &self.years {
            if !entries.is_empty() {
                year_has_data[(year - MIN_YEAR) as usize] = true;
            }
            for &(day, off) in entries {
                if let Some(w) = working.get_mut(day.0 as usize) {
                    *w = !off;
                }
            }
        }
        let mut count = Vec::with_capacity(working.len());
        let mut working_days = Vec::with_capacity(working.len() * 5 / 7 + 1);
        let mut n = 0u32;
        for (d, &w) in working.iter().enumerate() {
            if w {
                n += 1;
                working_days.push(d as u32);
            }
            count.push(n);
        }
        Calendar {
            working,
            count,
            working_days,
            year_has_data,
        }
    }
}

impl Calendar {
    /// The built-in official calendar (2020–2027), no overrides.
    pub fn official() -> Calendar {
        CalendarBuilder::with_built_in().build()
    }

    fn last_day(&self) -> Day {
        Day(self.working.len() as u32 - 1)
    }

    fn clamp(&self, d: Day) -> usize {
        d.0.min(self.last_day().0) as usize
    }

    /// Is `d` a working day?
    pub fn is_working(&self, d: Day) -> bool {
        self.working[self.clamp(d)]
    }

    /// Number of working days in `(a, b]`; 0 when `b <= a`.
    pub fn working_days_between(&self, a: Day, b: Day) -> u32 {
        if b <= a {
            return 0;
        }
        self.count[self.clamp(b)] - self.count[self.clamp(a)]
    }

    /// The `n`-th working day after `s` (`s` itself not counted); `n = 0` gives `s`.
    pub fn add_working_days(&self, s: Day, n: u32) -> Day {
        if n == 0 {
            return s;
        }
        let idx = (self.count[self.clamp(s)] + n - 1) as usize;
        self.working_days
            .get(idx)
            .map_or(self.last_day(), |&d| Day(d))
    }

    /// The instant at which `secs` seconds of office time have elapsed since `since`, not
    /// counting what falls inside `pauses` (closed `[from, to)` intervals, in order). Office
    /// time is the `spans` (minutes after local midnight, `[start, end)`) of working days; a
    /// limit that runs out exactly at the end of a span ends at that instant (SPEC §5). `secs`
    /// = 0 gives `since`. `None` if the office time does not run out within
    /// [`OFFICE_WALK_DAYS`] (no span, or no working day, configured).
    pub fn office_elapse(
        &self,
        spans: &[(u32, u32)],
        since: Instant,
        secs: i64,
        pauses: impl Iterator<Item = (Instant, Instant)> + Clone,
    ) -> Option<Instant> {
        if secs <= 0 {
            return Some(since);
        }
        let mut left = secs;
        let mut found = None;
        self.office_segments(spans, since, pauses, |from, to| {
            if left <= to - from {
                found = Some(Instant(from + left));
                return false;
            }
            left -= to - from;
            true
        });
        found
    }

    /// Seconds of office time in `[a, b)` (working days' `spans` only).
    pub fn office_secs(&self, spans: &[(u32, u32)], a: Instant, b: Instant) -> i64 {
        let mut total = 0;
        self.office_segments(spans, a, std::iter::empty(), |from, to| {
            if from >= b.0 {
                return false;
            }
            total += to.min(b.0) - from;
            true
        });
        total
    }

    /// Calls `f(from, to)` for each stretch of office time from `since` on, in order, with the
    /// `pauses` cut out, until `f` returns false or [`OFFICE_WALK_DAYS`] have been walked. The
    /// walk is per day: office-time limits are hours, so it ends after a few days.
    fn office_segments(
        &self,
        spans: &[(u32, u32)],
        since: Instant,
        pauses: impl Iterator<Item = (Instant, Instant)> + Clone,
        mut f: impl FnMut(i64, i64) -> bool,
    ) {
        let mut day = since.day();
        for _ in 0..OFFICE_WALK_DAYS {
            if self.is_working(day) {
                let midnight = day.start().0;
                for &(a, b) in spans {
                    let mut from = (midnight + i64::from(a) * 60).max(since.0);
                    let to = midnight + i64::from(b) * 60;
                    for (p0, p1) in pauses.clone() {
                        if p1.0 <= from || p0.0 >= to {
                            continue;
                        }
                        if p0.0 > from && !f(from, p0.0) {
                            return;
                        }
                        from = from.max(p1.0);
                    }
                    if to > from && !f(from, to) {
                        return;
                    }
                }
            }
            day = day.plus(1);
        }
    }

    /// `s + n` days, moved forward to the next working day if needed (民法典 §203).
    pub fn add_natural_days(&self, s: Day, n: u32) -> Day {
        self.working_day_on_or_after(s.plus(n))
    }

    /// `d` if it is a working day, else the next working day.
    pub fn working_day_on_or_after(&self, d: Day) -> Day {
        let i = self.clamp(d);
        if self.working[i] {
            return Day(i as u32);
        }
        self.working_days
            .get(self.count[i] as usize)
            .map_or(self.last_day(), |&d| Day(d))
    }

    /// The working day `k` working days before the working day `d` (`k = 0` gives `d`);
    /// `None` if that is before the table starts. `d` must be a working day.
    pub fn working_days_before(&self, d: Day, k: u32) -> Option<Day> {
        let pos = self.count[self.clamp(d)].checked_sub(1 + k)?;
        self.working_days.get(pos as usize).map(|&d| Day(d))
    }

    /// Years in `[from, to]` for which no official data was loaded (weekends-only fallback).
    pub fn provisional_years(&self, from: Day, to: Day) -> Vec<i32> {
        let (a, b) = (from.min(to).year(), from.max(to).year());
        (a..=b)
            .filter(|&y| {
                let i = (y - MIN_YEAR) as usize;
                !self.year_has_data.get(i).copied().unwrap_or(false)
            })
            .collect()
    }
}

/// 1-based line of the first occurrence of `needle` in `text`.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|pos| text[..pos].bytes().filter(|&b| b == b'\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn at(s: &str) -> Instant {
        crate::time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn office_time_skips_lunch_nights_holidays_and_pauses() {
        let cal = Calendar::official();
        let spans = [(540, 720), (810, 1050)]; // 09:00-12:00, 13:30-17:30
        let none = || std::iter::empty();
        let elapse = |since: &str, secs: i64| cal.office_elapse(&spans, at(since), secs, none());
        // Runs out exactly at the end of a span: that instant, not the next span's start.
        assert_eq!(
            elapse("2026-03-09T11:00:00+08:00", 3600),
            Some(at("2026-03-09T12:00:00+08:00"))
        );
        // Over lunch.
        assert_eq!(
            elapse("2026-03-09T11:00:00+08:00", 5400),
            Some(at("2026-03-09T14:00:00+08:00"))
        );
        // Accepted at night: starts with the next morning; 劳动节 05-01..05-05 skipped.
        assert_eq!(
            elapse("2026-04-30T20:00:00+08:00", 600),
            Some(at("2026-05-06T09:10:00+08:00"))
        );
        assert_eq!(
            elapse("2026-03-09T11:00:00+08:00", 0),
            Some(at("2026-03-09T11:00:00+08:00"))
        );
        // A pause 11:30-14:30 takes out 90 minutes of office time.
        let pause = [(
            at("2026-03-09T11:30:00+08:00"),
            at("2026-03-09T14:30:00+08:00"),
        )];
        assert_eq!(
            cal.office_elapse(
                &spans,
                at("2026-03-09T11:00:00+08:00"),
                3 * 3600,
                pause.iter().copied()
            ),
            Some(at("2026-03-09T17:00:00+08:00"))
        );
        assert_eq!(cal.office_secs(&spans, pause[0].0, pause[0].1), 90 * 60);
        // Over a weekend: Friday 17:00 to Monday 09:30 is 1 hour of office time.
        assert_eq!(
            cal.office_secs(
                &spans,
                at("2026-03-13T17:00:00+08:00"),
                at("2026-03-16T09:30:00+08:00")
            ),
            3600
        );
    }

    #[test]
    fn official_2026_holidays_and_tiaoxiu() {
        let cal = Calendar::official();
        assert!(!cal.is_working(d("2026-10-01")), "国庆");
        assert!(!cal.is_working(d("2026-10-07")), "国庆");
        assert!(cal.is_working(d("2026-10-10")), "调休 Saturday");
        assert!(cal.is_working(d("2026-09-20")), "调休 Sunday");
        assert!(!cal.is_working(d("2026-09-25")), "中秋 Friday");
        assert!(!cal.is_working(d("2026-10-11")), "ordinary Sunday");
        assert!(cal.is_working(d("2026-02-14")), "春节 调休 Saturday");
        assert!(!cal.is_working(d("2026-02-16")), "春节");
    }

    #[test]
    fn working_day_arithmetic_across_national_day() {
        let cal = Calendar::official();
        // From Mon 2026-09-28: 09-29, 09-30, 10-08, 10-09, 10-10 (Sat, 调休).
        assert_eq!(cal.add_working_days(d("2026-09-28"), 5), d("2026-10-10"));
        assert_eq!(cal.add_working_days(d("2026-09-28"), 0), d("2026-09-28"));
        assert_eq!(
            cal.working_days_between(d("2026-09-28"), d("2026-10-10")),
            5
        );
        assert_eq!(
            cal.working_days_before(d("2026-10-10"), 2),
            Some(d("2026-10-08"))
        );
    }

    #[test]
    fn natural_days_move_to_the_next_working_day() {
        let cal = Calendar::official();
        // 2026-09-24 + 10 = 10-04 (holiday) → 10-08.
        assert_eq!(cal.add_natural_days(d("2026-09-24"), 10), d("2026-10-08"));
        // Ends on the 调休 Saturday: stays.
        assert_eq!(cal.add_natural_days(d("2026-09-30"), 10), d("2026-10-10"));
        // Ends on an ordinary Sunday → Monday.
        assert_eq!(cal.add_natural_days(d("2026-11-12"), 10), d("2026-11-23"));
    }

    #[test]
    fn years_without_data_fall_back_to_weekends_and_say_so() {
        let cal = Calendar::official();
        // 2027-01-01 is a Friday; with no official data it counts as a working day.
        assert!(cal.is_working(d("2027-01-01")));
        assert_eq!(
            cal.provisional_years(d("2026-12-28"), d("2027-01-05")),
            vec![2027]
        );
        assert!(cal
            .provisional_years(d("2026-01-05"), d("2026-12-31"))
            .is_empty());
    }

    #[test]
    fn an_override_replaces_a_built_in_year() {
        let mut b = CalendarBuilder::with_built_in();
        b.add_file(
            "calendar/2027.json",
            r#"{"year":2027,"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}]}"#,
        )
        .unwrap();
        let cal = b.build();
        assert!(!cal.is_working(d("2027-01-01")));
        assert!(cal
            .provisional_years(d("2027-01-01"), d("2027-02-01"))
            .is_empty());
    }

    #[test]
    fn malformed_files_are_refused_with_line_and_reason() {
        let mut b = CalendarBuilder::default();
        let text = "{\"year\":2026,\"days\":[\n{\"name\":\"x\",\"date\":\"2026-13-01\",\"isOffDay\":true}]}";
        let e = b.add_file("calendar/2026.json", text).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.reason.contains("2026-13-01"), "{e}");
        let e = b
            .add_file(
                "calendar/x.json",
                "{\"year\":2026,\n\"days\":[{\"date\":5}]}",
            )
            .unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}

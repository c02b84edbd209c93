//! The read queries both backends share: history, dead letters and the 绩效 counts, built once
//! as SQL text with `?` placeholders and their values in order, so the two backends differ only
//! in how they name a table (ClickHouse: `db.t FINAL`) and a time (ClickHouse:
//! `toDateTime(?)`). Values are always bound, never pasted into the text.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::api::{
    DeadLetterQuery, HistoryQuery, PerfCounts, PerfQuery, SourceFigures, SourceQuery,
};
use crate::rows::DeadLetterRow;

/// A value bound to a `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// A string column's value.
    Text(String),
    /// Seconds, compared with a time column (ClickHouse wraps its `?` in `toDateTime`).
    Time(u32),
    /// A row count.
    Limit(u32),
    /// A partition's month, `YYYYMM`.
    Month(u32),
}

/// How a backend spells what differs: a table reference and a bound time.
pub(crate) struct Dialect {
    /// `table` as it is read, e.g. `db.alerts FINAL`.
    pub table: fn(&Dialect, &str) -> String,
    /// ClickHouse's database (empty for SQLite).
    pub database: String,
    /// The placeholder of a [`Param::Time`].
    pub time: &'static str,
    /// A left join that keeps one right row per key (ClickHouse: `ANY LEFT JOIN`).
    pub left_join: &'static str,
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug)]
pub(crate) struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

/// A `WHERE` clause under construction.
struct Conditions<'a> {
    dialect: &'a Dialect,
    sql: Vec<String>,
    params: Vec<Param>,
}

impl<'a> Conditions<'a> {
    fn new(dialect: &'a Dialect) -> Self {
        Conditions {
            dialect,
            sql: Vec::new(),
            params: Vec::new(),
        }
    }

    /// `column` starts with `prefix`, as a range a `(region, …)` key or index serves: every
    /// string with that prefix lies in [p, p + U+10FFFF), and no other string does (both
    /// backends compare strings bytewise, and U+10FFFF's UTF-8 sorts above every other
    /// character's).
    fn prefix(&mut self, column: &str, prefix: &str) {
        if prefix.is_empty() {
            return;
        }
        self.sql.push(format!("{column} >= ? AND {column} < ?"));
        self.params.push(Param::Text(prefix.to_string()));
        self.params.push(Param::Text(format!("{prefix}\u{10FFFF}")));
    }

    /// `column` in [from, to), either bound 0 meaning unbounded.
    fn period(&mut self, column: &str, from: u32, to: u32) {
        let t = self.dialect.time;
        if from > 0 {
            self.sql.push(format!("{column} >= {t}"));
            self.params.push(Param::Time(from));
        }
        if to > 0 {
            self.sql.push(format!("{column} < {t}"));
            self.params.push(Param::Time(to));
        }
    }

    fn equals(&mut self, column: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.sql.push(format!("{column} = ?"));
            self.params.push(Param::Text(v.clone()));
        }
    }

    /// Rows after `(time, text)` in the order `time DESC, text ASC`.
    fn after(&mut self, time: &str, text: &str, cursor: &Option<(u32, String)>) {
        if let Some((at, id)) = cursor {
            let t = self.dialect.time;
            self.sql
                .push(format!("({time} < {t} OR ({time} = {t} AND {text} > ?))"));
            self.params.push(Param::Time(*at));
            self.params.push(Param::Time(*at));
            self.params.push(Param::Text(id.clone()));
        }
    }

    /// `SELECT columns FROM table WHERE … tail`, with `tail_params` after the conditions'.
    fn select(
        mut self,
        columns: &str,
        table: &str,
        tail: &str,
        tail_params: Vec<Param>,
    ) -> Statement {
        let filter = if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        };
        self.params.extend(tail_params);
        Statement {
            sql: format!(
                "SELECT {columns} FROM {}{filter} {tail}",
                (self.dialect.table)(self.dialect, table)
            ),
            params: self.params,
        }
    }
}

/// The time column each table of [`perf`] selects the period on (and ClickHouse partitions
/// by month).
pub(crate) const PERF_TIMES: [&str; 3] = ["completed_at", "fired_at", "at"];

/// The status of a tombstone in ClickHouse's `alerts_by_region`: the earlier row of an alert
/// whose later line carries another instant (`ClickHouseStore::moved`). Never an alert's own
/// status; every reader leaves these rows out.
pub(crate) const MOVED: &str = "moved";

/// The columns of [`crate::rows::AlertRow`], in its field order.
pub(crate) const ALERT_COLUMNS: &str = "alert_id, rule, level, status, version, fired_at, \
    center_id, region, department, window_id, staff_id, case_id, item_code, subject, message, \
    evidence";

/// The columns of [`crate::rows::DeadLetterRow`], in its field order.
pub(crate) const DEAD_LETTER_COLUMNS: &str = "received_at, source, reason, field, message, raw";

/// [`crate::Store::history`] reading `table` (alerts, or a copy with the same columns).
/// `extra` adds a condition (SQL, values).
pub(crate) fn history(
    dialect: &Dialect,
    table: &str,
    q: &HistoryQuery,
    extra: Option<(String, Vec<Param>)>,
) -> Statement {
    let mut c = Conditions::new(dialect);
    if let Some((sql, params)) = extra {
        c.sql.push(sql);
        c.params.extend(params);
    }
    c.sql.push(format!("status != '{MOVED}'"));
    c.prefix("region", &q.region_prefix);
    c.period("fired_at", q.from, q.to);
    c.equals("center_id", &q.center);
    c.equals("department", &q.department);
    c.equals("window_id", &q.window);
    c.equals("staff_id", &q.staff);
    c.equals("rule", &q.rule);
    c.equals("level", &q.level);
    c.equals("status", &q.status);
    c.after("fired_at", "alert_id", &q.after);
    c.select(
        ALERT_COLUMNS,
        table,
        "ORDER BY fired_at DESC, alert_id LIMIT ?",
        vec![Param::Limit(q.effective_limit())],
    )
}

/// [`crate::Store::dead_letters`].
pub(crate) fn dead_letters(dialect: &Dialect, q: &DeadLetterQuery) -> Statement {
    let mut c = Conditions::new(dialect);
    c.period("received_at", q.from, q.to);
    c.equals("reason", &q.reason);
    c.after("received_at", "source", &q.after);
    c.select(
        DEAD_LETTER_COLUMNS,
        "dead_letters",
        "ORDER BY received_at DESC, source LIMIT ?",
        vec![Param::Limit(q.effective_limit())],
    )
}

/// Per key, from the case facts finished in the period (see [`PerfCounts`]).
#[derive(Debug, Default, Deserialize, clickhouse::Row)]
pub(crate) struct FactCounts {
    pub key: String,
    pub completed: u64,
    pub on_time: u64,
    pub early: u64,
    pub on_site: u64,
    pub late: u64,
    pub days_used: u64,
    pub speedup_cases: u64,
    pub legal_days: u64,
    pub promised_days: u64,
}

/// Per key, from the alerts fired in the period.
#[derive(Debug, Default, Deserialize, clickhouse::Row)]
pub(crate) struct AlertCounts {
    pub key: String,
    pub warnings: u64,
    pub yellows: u64,
    pub reds: u64,
    pub complaints: u64,
}

/// Per key, from the activity facts dated in the period.
#[derive(Debug, Default, Deserialize, clickhouse::Row)]
pub(crate) struct ActivityCounts {
    pub key: String,
    pub accepted: u64,
    pub substantiated: u64,
    pub evaluations: u64,
    pub satisfied: u64,
}

/// What each table of [`perf`] sums, in the field order of its counts struct ([`FactCounts`],
/// [`AlertCounts`], [`ActivityCounts`]). Plain SQL both backends run (`SUM` of a comparison
/// counts the rows where it holds).
pub(crate) const PERF_SUMS: [&[&str]; 3] = [
    &[
        "COUNT(*)",
        "SUM(on_time)",
        "SUM(early)",
        "SUM(on_site)",
        "SUM(on_time = 0)",
        "SUM(working_days_used)",
        "SUM(case_type = 'promised' AND legal_days > 0)",
        "SUM(CASE WHEN case_type = 'promised' AND legal_days > 0 THEN legal_days ELSE 0 END)",
        "SUM(CASE WHEN case_type = 'promised' AND legal_days > 0 THEN promised_days ELSE 0 END)",
    ],
    &[
        "SUM(level = 'warning')",
        "SUM(level = 'yellow')",
        "SUM(level = 'red')",
        "SUM(rule = 'complaint.filed')",
    ],
    &[
        "SUM(kind = 'accepted')",
        "SUM(kind = 'complaint_resolved' AND value = 1)",
        "SUM(kind = 'evaluation')",
        "SUM(kind = 'evaluation' AND value >= 4)",
    ],
];

/// The rows each table of [`perf`] counts at all (alerts: standing — neither retracted nor
/// cleared, a warning whose case finished in time — not a ladder step, and not a finding about
/// a feed rather than a person: `source.*`, `data.corrected`, `data.placeholder_staff`; and
/// not a tombstone, [`MOVED`]).
pub(crate) const PERF_FILTERS: [Option<&str>; 3] = [
    None,
    Some(
        "status NOT IN ('retracted', 'cleared', 'moved') AND rule != 'discipline.ladder' \
         AND rule NOT LIKE 'source.%' AND rule NOT IN ('data.corrected', 'data.placeholder_staff')",
    ),
    None,
];

/// The columns of [`Tally`] after its key: the row count, then table `i`'s sums padded
/// with zeros to nine.
pub(crate) fn tally_columns(i: usize) -> String {
    let mut columns = vec!["COUNT(*)".to_string()];
    columns.extend(PERF_SUMS[i].iter().map(|s| format!("toUInt64({s})")));
    columns.resize(10, "toUInt64(0)".to_string());
    columns.join(", ")
}

/// The three statements of [`crate::Store::perf_counts`], reading `tables` (case facts, alerts,
/// activity): each groups one table by the dimension's column; [`merge`] joins their results.
/// `extra` adds a condition (SQL, values) to each table's statement.
pub(crate) fn perf(
    dialect: &Dialect,
    tables: [&str; 3],
    q: &PerfQuery,
    extra: [Option<(String, Vec<Param>)>; 3],
) -> [Statement; 3] {
    perf_shaped(dialect, tables, q, extra, |i| PERF_SUMS[i].join(", "))
}

/// [`perf`] with `columns(i)` after the key of table `i`'s statement ([`tally_columns`]:
/// [`Tally`] rows, ClickHouse's counts that add and subtract).
pub(crate) fn perf_shaped(
    dialect: &Dialect,
    tables: [&str; 3],
    q: &PerfQuery,
    extra: [Option<(String, Vec<Param>)>; 3],
    columns: fn(usize) -> String,
) -> [Statement; 3] {
    let by = q.by.column();
    let mut extras = extra.into_iter();
    let mut i = 0;
    [(); 3].map(|()| {
        let mut c = Conditions::new(dialect);
        c.prefix("region", &q.region_prefix);
        c.period(PERF_TIMES[i], q.from, q.to);
        if let Some(filter) = PERF_FILTERS[i] {
            c.sql.push(filter.into());
        }
        if let Some((sql, params)) = extras.next().flatten() {
            c.sql.push(sql);
            c.params.extend(params);
        }
        let statement = c.select(
            &format!("{by}, {}", columns(i)),
            tables[i],
            &format!("GROUP BY {by}"),
            Vec::new(),
        );
        i += 1;
        statement
    })
}

/// ClickHouse's stored per-month totals (`perf_month`) of the computations listed in
/// `batches`, summed per key for the rows of regions under `q`'s prefix.
pub(crate) fn perf_totals(dialect: &Dialect, q: &PerfQuery, batches: &[String]) -> Statement {
    let mut c = Conditions::new(dialect);
    c.prefix("region", &q.region_prefix);
    c.sql.push(format!(
        "batch IN ({})",
        vec!["?"; batches.len()].join(", ")
    ));
    c.params
        .extend(batches.iter().map(|b| Param::Text(b.clone())));
    let sums: Vec<String> = std::iter::once("sum(n)".to_string())
        .chain((0..9).map(|k| format!("sum(c{k})")))
        .collect();
    c.select(
        &format!("key, {}", sums.join(", ")),
        "perf_month",
        "GROUP BY key",
        Vec::new(),
    )
}

/// Per key, one table's row count and sums (padded to nine, see [`tally_columns`]): the
/// shape in which ClickHouse's partial counts add up and subtract.
#[derive(Debug, Default, Deserialize, clickhouse::Row)]
pub(crate) struct Tally {
    pub key: String,
    pub n: u64,
    pub c0: u64,
    pub c1: u64,
    pub c2: u64,
    pub c3: u64,
    pub c4: u64,
    pub c5: u64,
    pub c6: u64,
    pub c7: u64,
    pub c8: u64,
}

/// Signed per-key sums of [`Tally`] rows of one table: `n` and the nine sums.
pub(crate) type Tallies = BTreeMap<String, [i64; 10]>;

/// Add (`sign` 1) or subtract (`sign` -1) `rows` into `into`.
pub(crate) fn add_tallies(into: &mut Tallies, rows: Vec<Tally>, sign: i64) {
    for t in rows {
        let values = [t.n, t.c0, t.c1, t.c2, t.c3, t.c4, t.c5, t.c6, t.c7, t.c8];
        let sum = into.entry(t.key).or_insert([0; 10]);
        for (s, v) in sum.iter_mut().zip(values) {
            *s += sign * v as i64;
        }
    }
}

/// [`merge`] of the three tables' tallies: a key counts for a table when at least one of its
/// rows does, as in the plain statements.
pub(crate) fn merge_tallies(tallies: [Tallies; 3]) -> Vec<PerfCounts> {
    let [facts, alerts, activity] = tallies;
    let rows = |t: Tallies| {
        t.into_iter()
            .filter(|(_, v)| v[0] > 0)
            .map(|(key, v)| (key, v.map(|x| x.max(0) as u64)))
            .collect::<Vec<_>>()
    };
    merge(
        rows(facts)
            .into_iter()
            .map(|(key, v)| FactCounts {
                key,
                completed: v[1],
                on_time: v[2],
                early: v[3],
                on_site: v[4],
                late: v[5],
                days_used: v[6],
                speedup_cases: v[7],
                legal_days: v[8],
                promised_days: v[9],
            })
            .collect(),
        rows(alerts)
            .into_iter()
            .map(|(key, v)| AlertCounts {
                key,
                warnings: v[1],
                yellows: v[2],
                reds: v[3],
                complaints: v[4],
            })
            .collect(),
        rows(activity)
            .into_iter()
            .map(|(key, v)| ActivityCounts {
                key,
                accepted: v[1],
                substantiated: v[2],
                evaluations: v[3],
                satisfied: v[4],
            })
            .collect(),
    )
}

/// One [`PerfCounts`] per key found in any of the three results, sorted by key.
pub(crate) fn merge(
    facts: Vec<FactCounts>,
    alerts: Vec<AlertCounts>,
    activity: Vec<ActivityCounts>,
) -> Vec<PerfCounts> {
    let mut out: BTreeMap<String, PerfCounts> = BTreeMap::new();
    // A key may come more than once from one statement (ClickHouse sums partitions read in
    // separate statements), so every field adds up.
    fn get(out: &mut BTreeMap<String, PerfCounts>, key: String) -> &mut PerfCounts {
        out.entry(key.clone()).or_insert_with(|| PerfCounts {
            key,
            ..PerfCounts::default()
        })
    }
    for f in facts {
        let p = get(&mut out, f.key);
        p.completed += f.completed;
        p.on_time += f.on_time;
        p.early += f.early;
        p.on_site += f.on_site;
        p.late += f.late;
        p.days_used += f.days_used;
        p.speedup_cases += f.speedup_cases;
        p.legal_days += f.legal_days;
        p.promised_days += f.promised_days;
    }
    for a in alerts {
        let p = get(&mut out, a.key);
        p.warnings += a.warnings;
        p.yellows += a.yellows;
        p.reds += a.reds;
        p.complaints += a.complaints;
    }
    for a in activity {
        let p = get(&mut out, a.key);
        p.accepted += a.accepted;
        p.substantiated += a.substantiated;
        p.evaluations += a.evaluations;
        p.satisfied += a.satisfied;
    }
    out.into_values().collect()
}

/// One day's count of one kind (see [`source_health`]).
#[derive(Debug, Deserialize, clickhouse::Row)]
pub(crate) struct DailyCount {
    pub source: String,
    pub day: u16,
    pub kind: String,
    pub n: u64,
}

/// How many events had one report delay (see [`source_health`]).
#[derive(Debug, Deserialize, clickhouse::Row)]
pub(crate) struct DelayCount {
    pub source: String,
    pub delay_seconds: i32,
    pub n: u64,
}

/// Per source: case events, those reported after completion, corrections, withdrawals.
#[derive(Debug, Deserialize, clickhouse::Row)]
pub(crate) struct SourceTotals {
    pub source: String,
    pub case_events: u64,
    pub after_completion: u64,
    pub corrections: u64,
    pub withdrawals: u64,
}

/// Per source, its latest report.
#[derive(Debug, Deserialize, clickhouse::Row)]
pub(crate) struct LastReport {
    pub source: String,
    pub last: u32,
}

/// The statements of [`crate::Store::source_health`]: daily counts, delays, totals and last
/// reports from `source_events`, and the period's dead letters (attributed in Rust, by
/// [`dead_letter_source`]). All plain SQL both backends run; the one join is spelt by the
/// dialect (ClickHouse 18.16 needs its strictness, `ANY`).
pub(crate) fn source_health(dialect: &Dialect, q: &SourceQuery) -> [Statement; 5] {
    let table = "source_events";
    let scoped = |period: bool| {
        let mut c = Conditions::new(dialect);
        c.prefix("region", &q.region_prefix);
        if period {
            c.period("occurred_at", q.from, q.to);
        }
        c
    };
    let daily = scoped(true).select(
        "source, day, kind, COUNT(*)",
        table,
        "GROUP BY source, day, kind",
        Vec::new(),
    );
    let delays = scoped(true).select(
        "source, delay_seconds, COUNT(*)",
        table,
        "GROUP BY source, delay_seconds",
        Vec::new(),
    );
    // Each case's first completion report, from any source in the jurisdiction, at any time.
    let completions = {
        let mut c = scoped(false);
        c.sql.push("kind = 'case.completed'".into());
        c.select(
            "region, case_id, MIN(reported_at) AS done",
            table,
            "GROUP BY region, case_id",
            Vec::new(),
        )
    };
    let totals = {
        let c = scoped(true);
        let filter = if c.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", c.sql.join(" AND "))
        };
        let case_event = "kind LIKE 'case.%' AND kind != 'case.completed'";
        let mut params = completions.params;
        params.extend(c.params);
        Statement {
            // A case without completion: ClickHouse fills `done` with 0, SQLite with NULL (and
            // `CASE` counts neither).
            sql: format!(
                "SELECT source, SUM({case_event}), \
                 SUM(CASE WHEN {case_event} AND done > 0 AND reported_at > done \
                 THEN 1 ELSE 0 END), \
                 SUM(corrects), SUM(kind = 'event.withdrawn') FROM {} {} ({}) \
                 USING (region, case_id){filter} GROUP BY source",
                (dialect.table)(dialect, table),
                dialect.left_join,
                completions.sql,
            ),
            params,
        }
    };
    let last = scoped(false).select(
        "source, MAX(reported_at)",
        table,
        "GROUP BY source",
        Vec::new(),
    );
    let mut dead = Conditions::new(dialect);
    dead.period("received_at", q.from, q.to);
    let dead = dead.select(DEAD_LETTER_COLUMNS, "dead_letters", "", Vec::new());
    [daily, delays, totals, last, dead]
}

/// The source a dead letter came from, when it can be told: the `source` its raw JSON names,
/// else the publisher of an HTTP request (`http:<publisher>:<line>` → `http:<publisher>`, what
/// HTTP ingest stamps on the events it accepts). Kafka or file input without a `source` field
/// is attributed to no source.
pub(crate) fn dead_letter_source(d: &DeadLetterRow) -> Option<String> {
    let named = serde_json::from_str::<serde_json::Value>(&d.raw)
        .ok()
        .and_then(|v| v.get("source")?.as_str().map(str::to_string));
    named.or_else(|| {
        let user = d.source.strip_prefix("http:")?.rsplit_once(':')?.0;
        Some(format!("http:{user}"))
    })
}

/// The nearest-rank `q`-quantile (`percent`/100) of delays counted per value: the value at
/// index ⌊q·n⌋ (capped at n − 1) of the sorted delays, as ClickHouse's `quantileExact`.
fn quantile(sorted: &[(i32, u64)], percent: u64) -> Option<i64> {
    let n: u64 = sorted.iter().map(|(_, k)| k).sum();
    if n == 0 {
        return None;
    }
    let index = (n * percent / 100).min(n - 1);
    let mut seen = 0;
    for (delay, k) in sorted {
        seen += k;
        if seen > index {
            return Some(i64::from(*delay));
        }
    }
    None
}

/// [`crate::Store::source_health`]'s figures from the five statements' rows.
pub(crate) fn source_figures(
    q: &SourceQuery,
    daily: Vec<DailyCount>,
    delays: Vec<DelayCount>,
    totals: Vec<SourceTotals>,
    last: Vec<LastReport>,
    dead: Vec<DeadLetterRow>,
) -> Vec<SourceFigures> {
    let mut out: BTreeMap<String, SourceFigures> = BTreeMap::new();
    // Sources in scope: those with events in the jurisdiction, and those named for it.
    for source in last.iter().map(|l| &l.source).chain(&q.also) {
        out.entry(source.clone()).or_insert_with(|| SourceFigures {
            source: source.clone(),
            ..SourceFigures::default()
        });
    }
    for l in last {
        if let Some(f) = out.get_mut(&l.source) {
            f.last_reported_at = Some(f.last_reported_at.unwrap_or(0).max(l.last));
        }
    }
    for d in daily {
        if let Some(f) = out.get_mut(&d.source) {
            f.events += d.n;
            f.daily.push((d.day, d.kind, d.n));
        }
    }
    let mut by_source: BTreeMap<String, BTreeMap<i32, u64>> = BTreeMap::new();
    for d in delays {
        *by_source
            .entry(d.source)
            .or_default()
            .entry(d.delay_seconds)
            .or_default() += d.n;
    }
    for (source, counts) in by_source {
        if let Some(f) = out.get_mut(&source) {
            let sorted: Vec<(i32, u64)> = counts.into_iter().collect();
            f.delay_p50 = quantile(&sorted, 50);
            f.delay_p95 = quantile(&sorted, 95);
        }
    }
    for t in totals {
        if let Some(f) = out.get_mut(&t.source) {
            f.case_events += t.case_events;
            f.after_completion += t.after_completion;
            f.corrections += t.corrections;
            f.withdrawals += t.withdrawals;
        }
    }
    for d in dead {
        if let Some(f) = dead_letter_source(&d).and_then(|s| out.get_mut(&s)) {
            *f.dead_letters.entry(d.reason).or_default() += 1;
        }
    }
    let mut figures: Vec<SourceFigures> = out.into_values().collect();
    for f in &mut figures {
        f.daily.sort();
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_over_counted_values() {
        // Delays 10, 20, 20, 30, 600 (five events).
        let sorted = [(10, 1), (20, 2), (30, 1), (600, 1)];
        assert_eq!(quantile(&sorted, 50), Some(20), "index 2 of 5");
        assert_eq!(quantile(&sorted, 95), Some(600), "index 4 of 5");
        assert_eq!(quantile(&[], 50), None);
    }

    #[test]
    fn dead_letters_are_attributed_to_the_source_they_name_or_their_publisher() {
        let dead = |source: &str, raw: &str| DeadLetterRow {
            received_at: 0,
            source: source.into(),
            reason: "missing_field".into(),
            field: String::new(),
            message: String::new(),
            raw: raw.into(),
        };
        assert_eq!(
            dead_letter_source(&dead("kafka:t/0/9", r#"{"source":"sdjc:pj"}"#)).as_deref(),
            Some("sdjc:pj")
        );
        assert_eq!(
            dead_letter_source(&dead("http:pj-pub:3", "not json")).as_deref(),
            Some("http:pj-pub")
        );
        assert_eq!(dead_letter_source(&dead("kafka:t/0/9", "{}")), None);
    }
}

//! Source adapters (SPEC §9): the records approval systems already produce for 电子监察 —
//! `sdjc` (Shandong 电子监察前置库), `gdbs` (Guangdong `EX_GDBS_*`) and `gb39046` (GB/T
//! 39046-2020 datasets and the national `up_pro_*` tables) — mapped to `jiancha.event.v1`
//! (SPEC §3) as `source-formats.md` §5 lays out. docs/ADAPTERS.md is the guide.
//!
//! ```text
//! NDJSON row ─ Row::parse ─▶ Adapter::adapt ─▶ format module (sdjc/gdbs/gb39046)
//!   {"_table":…}               │ codes (adapters/<format>.toml over the defaults)
//!                              │ place: row's centre ▸ sources.csv ▸ the case's ▸ department's
//!                              │ people: ids (placeholders are nobody), names via staff.csv
//!                              ▼
//!                     Vec<Event> (serialised as §3 JSON)  or  Dead { reason, column, message }
//! ```
//!
//! **Invariant: no I/O.** Rows, code tables and reference data come in as values; events and
//! dead letters go out as values. The transports (`jiancha adapt`, pollers, endpoints) live
//! elsewhere and share this mapping, so a row means the same whichever way it came.
//!
//! Why the choices:
//! - **Identity from the row.** `event_id` is the format, table, natural key and data version
//!   (`sdjc:EA_JC_STEP_PROC:<PROJID>:<ORGBUSNO>:<SN>:v<DATAVER>`): reading a table twice gives
//!   the same ids, which the engine drops as duplicates. A higher version `supersedes` the
//!   version below it; a deleted row (`CD_OPERATION = D`, `DATASTATE = 0`) is an
//!   `event.withdrawn` of each event the row gave.
//! - **Honest times.** `occurred_at` is the table's event time, `reported_at` the row's write
//!   time (`MAKETIME`, `cd_time`, `INSERTTIME`), so late reporting stays visible.
//! - **No guesses.** A code outside its table is a dead letter naming column and value; a name
//!   that is not exactly one member of staff leaves `staff_id` empty and says why in the event
//!   (`staff_note`, kept with the event and shown in its evidence).
//! - **Memory of a case.** Rows that carry no item or centre (fees, ratings, steps) take them
//!   from an earlier row of the same case seen by this adapter.

mod codes;
pub mod emit;
pub mod envelope;
mod gb39046;
mod gdbs;
mod row;
mod sdjc;

use std::collections::HashMap;
use std::fmt;

use rules::Reference;
use serde::Serialize;

pub use codes::{Codes, CodesError, Column, Domain, IGNORE};
pub use row::Row;

/// The formats (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Shandong-style 电子监察前置库 (`PRE_APASINFO`, `EA_JC_*`).
    Sdjc,
    /// Guangdong-lineage `EX_GDBS_*` records.
    Gdbs,
    /// GB/T 39046-2020 datasets and the national `up_pro_*` tables.
    Gb39046,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Sdjc, Format::Gdbs, Format::Gb39046];

    /// The name on the command line and in `adapters/<name>.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Sdjc => "sdjc",
            Format::Gdbs => "gdbs",
            Format::Gb39046 => "gb39046",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Its coded columns with their default tables.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Format::Sdjc => sdjc::COLUMNS,
            Format::Gdbs => gdbs::COLUMNS,
            Format::Gb39046 => gb39046::COLUMNS,
        }
    }

    /// Its tables (`_table` values).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Format::Sdjc => sdjc::TABLES,
            Format::Gdbs => gdbs::TABLES,
            Format::Gb39046 => gb39046::TABLES,
        }
    }
}

/// A row that gives no event, and why: a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dead {
    /// Stable reason code (`unmapped_code`, `missing_column`, `bad_timestamp`, `bad_value`,
    /// `unknown_table`, `unknown_center`, `not_json`).
    pub reason: &'static str,
    /// The column concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for Dead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{} {}: {}", self.reason, c, self.message),
            None => write!(f, "{}: {}", self.reason, self.message),
        }
    }
}

impl std::error::Error for Dead {}

fn dead(reason: &'static str, column: Option<&str>, message: impl Into<String>) -> Dead {
    Dead {
        reason,
        column: column.map(str::to_string),
        message: message.into(),
    }
}

/// Every reason code a [`Dead`] may carry.
pub const REASONS: &[&str] = &[
    "not_json",
    "unknown_table",
    "missing_column",
    "bad_timestamp",
    "bad_value",
    "unmapped_code",
    "unknown_center",
];

/// One `jiancha.event.v1` event as an adapter makes it (field names are SPEC §3's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // field names are the wire names of SPEC §3
pub struct Event {
    pub event_id: String,
    pub kind: &'static str,
    pub occurred_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<String>,
    pub center_id: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promised_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promised_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complaint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substantiated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraws: Option<String>,
    /// Why `staff_id` is empty although the record named someone (an ambiguous or unknown
    /// name, a placeholder account): evidence, not a §3 field (the decoder ignores it, the
    /// stored event keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_note: Option<String>,
}

impl Event {
    /// The event as one JSON line (no newline).
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What every event of one row shares.
#[derive(Debug, Clone, Default)]
struct Head {
    case: Option<String>,
    item: Option<String>,
    department: Option<String>,
    window: Option<String>,
    /// (centre, region)
    center: (String, String),
    reported_at: Option<String>,
    /// (staff id, why none)
    staff: (Option<String>, Option<String>),
}

/// What the adapter remembers of a case from its earlier rows.
#[derive(Debug, Clone, Default)]
struct CaseMemo {
    item: Option<String>,
    center: Option<(String, String)>,
    department: Option<String>,
}

/// The adapter of one format for one source: code tables, the reference it resolves names and
/// centres against, and what it learnt of each case.
pub struct Adapter<'r> {
    format: Format,
    codes: Codes,
    reference: &'r Reference,
    source: String,
    /// The source's centre and region from `sources.csv`.
    source_place: Option<(String, String)>,
    /// Staff name → ids.
    names: HashMap<String, Vec<String>>,
    /// Department → its one centre and region (`None`: windows of several centres serve it).
    department_centers: HashMap<String, Option<(String, String)>>,
    cases: HashMap<String, CaseMemo>,
}

/// A problem in `sources.csv`.
pub type SourcesError = CodesError;

impl<'r> Adapter<'r> {
    /// An adapter. `source`: the `--source` given (else the code file's `source`, else the
    /// format's name); `sources_csv`: the reference directory's `sources.csv`, if any.
    pub fn new(
        format: Format,
        codes: Codes,
        reference: &'r Reference,
        sources_csv: Option<&str>,
        source: Option<&str>,
    ) -> Result<Adapter<'r>, Vec<SourcesError>> {
        let source = source
            .map(str::to_string)
            .or_else(|| codes.source.clone())
            .unwrap_or_else(|| format.as_str().to_string());
        let source_place = match sources_csv {
            Some(text) => parse_sources(text)?.remove(&source),
            None => None,
        };
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        let mut staff: Vec<_> = reference.staff.values().collect();
        staff.sort_by(|a, b| a.staff_id.cmp(&b.staff_id));
        for s in staff {
            names
                .entry(s.name.clone())
                .or_default()
                .push(s.staff_id.clone());
        }
        let mut department_centers: HashMap<String, Option<(String, String)>> = HashMap::new();
        for w in reference.windows.values() {
            let place = (w.center_id.clone(), w.region.clone());
            department_centers
                .entry(w.department.clone())
                .and_modify(|p| {
                    if p.as_ref() != Some(&place) {
                        *p = None;
                    }
                })
                .or_insert(Some(place));
        }
        Ok(Adapter {
            format,
            codes,
            reference,
            source,
            source_place,
            names,
            department_centers,
            cases: HashMap::new(),
        })
    }

    /// The source name events carry.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Map one NDJSON line; events are appended to `out`.
    pub fn adapt_line(&mut self, line: &str, out: &mut Vec<Event>) -> Result<(), Dead> {
        let row = Row::parse(line).map_err(|e| dead("not_json", None, e.to_string()))?;
        self.adapt(&row, out)
    }

    /// Map one row; events are appended to `out`. A row that gives a dead letter appends
    /// nothing.
    pub fn adapt(&mut self, row: &Row<'_>, out: &mut Vec<Event>) -> Result<(), Dead> {
        if let Some(c) = row.nested() {
            return Err(dead(
                "bad_value",
                Some(c),
                "a column holds an array or object; rows are flat",
            ));
        }
        let table = row.get("_table").ok_or_else(|| {
            dead(
                "missing_column",
                Some("_table"),
                format!(
                    "every row names its table; {} tables are {}",
                    self.format.as_str(),
                    self.format.tables().join(", ")
                ),
            )
        })?;
        let Some(&table) = self
            .format
            .tables()
            .iter()
            .find(|t| t.eq_ignore_ascii_case(table))
        else {
            return Err(dead(
                "unknown_table",
                Some("_table"),
                format!(
                    "{table:?} is not a {} table; expected one of {}",
                    self.format.as_str(),
                    self.format.tables().join(", ")
                ),
            ));
        };
        let start = out.len();
        let deleted = match self.format {
            Format::Sdjc => sdjc::map(self, table, row, out),
            Format::Gdbs => gdbs::map(self, table, row, out),
            Format::Gb39046 => gb39046::map(self, table, row, out),
        };
        let deleted = match deleted {
            Ok(d) => d,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        for ev in &mut out[start..] {
            if let Some(case) = &ev.case_id {
                // Most rows repeat what the case's first row said: copy only what changed.
                let memo = match self.cases.get_mut(case.as_str()) {
                    Some(m) => m,
                    None => self.cases.entry(case.clone()).or_default(),
                };
                if ev.item_code.is_some() && memo.item != ev.item_code {
                    memo.item.clone_from(&ev.item_code);
                }
                let same_center = memo
                    .center
                    .as_ref()
                    .is_some_and(|(c, r)| *c == ev.center_id && *r == ev.region);
                if !same_center {
                    memo.center = Some((ev.center_id.clone(), ev.region.clone()));
                }
                if ev.department.is_some() && memo.department != ev.department {
                    memo.department.clone_from(&ev.department);
                }
            }
            if deleted {
                *ev = ev.withdrawal();
            }
        }
        Ok(())
    }

    // ---- what the format modules share ----

    /// A required column.
    fn req<'a>(
        &self,
        row: &'a Row<'_>,
        column: &'static str,
        table: &str,
    ) -> Result<&'a str, Dead> {
        row.get(column).ok_or_else(|| {
            dead(
                "missing_column",
                Some(column),
                format!("{table} rows need {column}"),
            )
        })
    }

    /// The meaning of a coded column's value by its code table `name` (`None`: the column is
    /// absent).
    fn code<'a>(&'a self, row: &Row<'_>, name: &'static str) -> Result<Option<&'a str>, Dead> {
        let column = self
            .format
            .columns()
            .iter()
            .find(|c| c.name == name)
            .map_or(name, |c| c.column);
        let Some(value) = row.get(column) else {
            return Ok(None);
        };
        self.codes.lookup(name, value).map(Some).ok_or_else(|| {
            dead(
                "unmapped_code",
                Some(column),
                format!(
                    "{column} = {value:?} is not in its code table; add it under \
                     [codes.{name}] in adapters/{}.toml",
                    self.format.as_str()
                ),
            )
        })
    }

    /// A coded column that must be present.
    fn req_code<'a>(
        &'a self,
        row: &Row<'_>,
        name: &'static str,
        table: &str,
    ) -> Result<&'a str, Dead> {
        let column = self
            .format
            .columns()
            .iter()
            .find(|c| c.name == name)
            .map_or(name, |c| c.column);
        self.req(row, column, table)?;
        Ok(self.code(row, name)?.unwrap_or(IGNORE))
    }

    /// An event of `kind` at `occurred` with the row's head.
    fn event(
        &self,
        head: &Head,
        (event_id, supersedes): (String, Option<String>),
        kind: &'static str,
        occurred_at: String,
    ) -> Event {
        Event {
            event_id,
            kind,
            occurred_at,
            reported_at: head.reported_at.clone(),
            center_id: head.center.0.clone(),
            region: head.center.1.clone(),
            department: head.department.clone(),
            window_id: head.window.clone(),
            staff_id: head.staff.0.clone(),
            staff_note: head.staff.1.clone(),
            case_id: head.case.clone(),
            item_code: head.item.clone(),
            source: self.source.clone(),
            supersedes,
            ..Event::default()
        }
    }

    /// A time column (local China time) as RFC 3339.
    fn time(&self, row: &Row<'_>, column: &'static str, table: &str) -> Result<String, Dead> {
        local_time(self.req(row, column, table)?).ok_or_else(|| bad_time(row, column))
    }

    fn opt_time(&self, row: &Row<'_>, column: &'static str) -> Result<Option<String>, Dead> {
        row.get(column)
            .map(|v| local_time(v).ok_or_else(|| bad_time(row, column)))
            .transpose()
    }

    /// A non-negative whole number.
    fn number(&self, row: &Row<'_>, column: &'static str) -> Result<Option<u32>, Dead> {
        row.get(column)
            .map(|v| {
                let v = v.strip_suffix(".0").unwrap_or(v);
                v.parse::<u32>().map_err(|_| {
                    dead(
                        "bad_value",
                        Some(column),
                        format!("{column} = {v:?} is not a whole number ≥ 0"),
                    )
                })
            })
            .transpose()
    }

    /// An amount in 元 (up to two decimals) as fen.
    fn fen(&self, row: &Row<'_>, column: &'static str) -> Result<Option<u64>, Dead> {
        row.get(column)
            .map(|v| {
                yuan_to_fen(v).ok_or_else(|| {
                    dead(
                        "bad_value",
                        Some(column),
                        format!("{column} = {v:?} is not an amount in 元 (e.g. 80 or 80.50)"),
                    )
                })
            })
            .transpose()
    }

    /// The item of a case: the row's, else the one learnt from an earlier row.
    fn item(&self, row: &Row<'_>, columns: &[&'static str], case: &str) -> Option<String> {
        row.first(columns)
            .map(|(_, v)| v.to_string())
            .or_else(|| self.cases.get(case)?.item.clone())
    }

    /// The department: the row's, else the case's.
    fn department(&self, row: &Row<'_>, columns: &[&'static str], case: &str) -> Option<String> {
        row.first(columns)
            .map(|(_, v)| v.to_string())
            .or_else(|| self.cases.get(case)?.department.clone())
    }

    /// Centre and region (SPEC §9): the row's own centre, else the source's (`sources.csv`),
    /// else the case's (an earlier row), else the one centre whose windows serve the
    /// department; the region is the reference's for that centre, else the source's, else
    /// the row's 行政区划 (first six digits).
    fn place(
        &self,
        row_center: Option<&str>,
        row_region: Option<&str>,
        department: Option<&str>,
        case: Option<&str>,
    ) -> Result<(String, String), Dead> {
        let row_region = row_region
            .and_then(|r| r.get(..6))
            .filter(|r| rules::event::is_valid_region(r));
        let region_of = |center: &str, fallback: Option<&str>| {
            self.reference
                .center_region(center)
                .or(fallback)
                .or(row_region)
                .map(str::to_string)
        };
        let found = if let Some(c) = row_center {
            region_of(c, None).map(|r| (c.to_string(), r))
        } else if let Some((c, r)) = &self.source_place {
            Some((
                c.clone(),
                region_of(c, Some(r)).unwrap_or_else(|| r.clone()),
            ))
        } else if let Some(p) = case.and_then(|c| self.cases.get(c)?.center.clone()) {
            Some(p)
        } else {
            department.and_then(|d| self.department_centers.get(d).cloned().flatten())
        };
        found.ok_or_else(|| {
            dead(
                "unknown_center",
                None,
                format!(
                    "the record names no centre and none follows from source {:?} \
                     (sources.csv), its case or its department {:?} (windows.csv: no window, \
                     or windows of several centres, serve it)",
                    self.source,
                    department.unwrap_or("")
                ),
            )
        })
    }

    /// A staff id from an id column: placeholders are nobody.
    fn staff_by_id(&self, id: Option<&str>) -> (Option<String>, Option<String>) {
        match id {
            Some(id) if self.codes.is_placeholder(id) => (
                None,
                Some(format!("{id} is a placeholder account (nobody)")),
            ),
            Some(id) => (Some(id.to_string()), None),
            None => (None, None),
        }
    }

    /// A staff id from a name (审批人姓名) through staff.csv: exactly one member of that name
    /// (after narrowing by department) or none, and the note says why.
    fn staff_by_name(
        &self,
        name: Option<&str>,
        department: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let Some(name) = name else {
            return (None, None);
        };
        if self.codes.is_placeholder(name) {
            return (
                None,
                Some(format!("{name} is a placeholder account (nobody)")),
            );
        }
        let ids = self.names.get(name).map(Vec::as_slice).unwrap_or_default();
        let narrowed: Vec<&String> = match department {
            Some(d) if ids.len() > 1 => ids
                .iter()
                .filter(|id| {
                    self.reference
                        .staff
                        .get(*id)
                        .is_some_and(|s| s.department == d)
                })
                .collect(),
            _ => ids.iter().collect(),
        };
        match (ids.len(), narrowed.as_slice()) {
            (0, _) => (
                None,
                Some(format!("no staff member named {name} in staff.csv")),
            ),
            (_, [one]) => (Some((*one).clone()), None),
            _ => (
                None,
                Some(format!(
                    "{name} is ambiguous: {} staff members share the name ({})",
                    ids.len(),
                    ids.join(", ")
                )),
            ),
        }
    }

    /// The identity of a row's event: `format:table:key…:v<version>`, and the id it
    /// supersedes (the version below) when the version is above 1.
    fn identity(
        &self,
        table: &str,
        key: &[&str],
        version: Option<&str>,
        suffix: &str,
    ) -> Result<(String, Option<String>), Dead> {
        let version = match version {
            None => 1,
            Some(v) => v
                .strip_suffix(".0")
                .unwrap_or(v)
                .parse::<u32>()
                .map_err(|_| {
                    dead(
                        "bad_value",
                        Some("version"),
                        format!("data version {v:?} is not a whole number"),
                    )
                })?,
        };
        let id = |v: u32| {
            let mut id = String::with_capacity(64);
            id.push_str(self.format.as_str());
            id.push(':');
            id.push_str(table);
            for k in key {
                id.push(':');
                id.push_str(k);
            }
            id.push_str(":v");
            id.push_str(&v.to_string());
            id.push_str(suffix);
            id
        };
        Ok((id(version), (version > 1).then(|| id(version - 1))))
    }
}

fn bad_time(row: &Row<'_>, column: &'static str) -> Dead {
    dead(
        "bad_timestamp",
        Some(column),
        format!(
            "{column} = {:?} is not a local time YYYY-MM-DD hh:mm:ss (or YYYYMMDDhhmmss, or a \
             date)",
            row.get(column).unwrap_or("")
        ),
    )
}

/// A local China time as the formats write it — `YYYY-MM-DD hh:mm:ss[.f]`,
/// `YYYY-MM-DDThh:mm:ss`, `YYYYMMDDhhmmss`, `YYYYMMDDThhmmss`, or a date alone (midnight) —
/// as RFC 3339 with `+08:00`.
pub fn local_time(s: &str) -> Option<String> {
    let s = s.split('.').next().unwrap_or(s);
    let mut d = [b'0'; 14];
    let mut n = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' if n < 14 => {
                d[n] = b;
                n += 1;
            }
            b'-' | b':' | b' ' | b'T' | b'/' => {}
            _ => return None,
        }
    }
    if !(n == 8 || n == 12 || n == 14) {
        return None;
    }
    let mut text = String::with_capacity(25);
    for (i, &b) in d.iter().enumerate() {
        text.push(char::from(b));
        text.push_str(match i {
            3 | 5 => "-",
            7 => "T",
            9 | 11 => ":",
            _ => "",
        });
    }
    text.push_str("+08:00");
    rules::time::parse_rfc3339(&text).ok().map(|_| text)
}

/// `80`, `80.5`, `80.50` 元 → fen.
fn yuan_to_fen(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u64 = format!("{frac:0<2}").parse().ok()?;
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac)
}

/// A row of `sources.csv` (SPEC §4, §10): a source system, the name the dashboards show for
/// it, and the centre and region of its records (either may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// `source`, as events carry it.
    pub source: String,
    /// Display name (empty: unnamed).
    pub name: String,
    /// Centre of its records.
    pub center_id: String,
    /// GB/T 2260 region (validated when given).
    pub region: String,
    /// Vendor.
    pub vendor: String,
    /// Transport (`poll`, `http`, `kafka`…; free text).
    pub transport: String,
}

/// `sources.csv`: `source,name,center_id,region,vendor,transport` → source → (centre, region),
/// for the sources that name a centre.
pub fn parse_sources(text: &str) -> Result<HashMap<String, (String, String)>, Vec<SourcesError>> {
    Ok(parse_source_list(text)?
        .into_iter()
        .filter(|s| !s.center_id.is_empty())
        .map(|s| (s.source, (s.center_id, s.region)))
        .collect())
}

/// Every row of `sources.csv`, in file order; problems with their line (a header that lacks
/// `source`, `center_id` or `region`, an empty source, a region that is not a GB/T 2260 code,
/// a source listed twice).
pub fn parse_source_list(text: &str) -> Result<Vec<SourceInfo>, Vec<SourcesError>> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| {
            h.trim_start_matches('\u{feff}')
                .split(',')
                .map(str::trim)
                .collect()
        })
        .unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(s), Some(c), Some(r)) = (col("source"), col("center_id"), col("region")) else {
        return Err(vec![CodesError {
            line: Some(1),
            reason: "sources.csv needs the header source,name,center_id,region,vendor,transport"
                .into(),
        }]);
    };
    let mut out: Vec<SourceInfo> = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |k: Option<usize>| k.and_then(|k| f.get(k)).copied().unwrap_or("").to_string();
        let row = SourceInfo {
            source: get(Some(s)),
            name: get(col("name")),
            center_id: get(Some(c)),
            region: get(Some(r)),
            vendor: get(col("vendor")),
            transport: get(col("transport")),
        };
        let reason = if row.source.is_empty() {
            Some("empty source".to_string())
        } else if !row.region.is_empty() && !rules::event::is_valid_region(&row.region) {
            Some(format!(
                "region {:?} is not a 6-digit GB/T 2260 code",
                row.region
            ))
        } else if out.iter().any(|o| o.source == row.source) {
            Some(format!("source {:?} is listed twice", row.source))
        } else {
            None
        };
        match reason {
            Some(reason) => errors.push(CodesError {
                line: Some(i + 1),
                reason,
            }),
            None => out.push(row),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn sources_csv_is_read_whole_and_refused_with_lines() {
        let text = "source,name,center_id,region,vendor,transport\n\
                    sdjc:pj,平江审批系统,PJ,430626,浪潮,poll\n\
                    gdbs:yy,,,430621,,http\n";
        let rows = parse_source_list(text).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].name.as_str(),
                rows[0].vendor.as_str(),
                rows[0].transport.as_str()
            ),
            ("平江审批系统", "浪潮", "poll")
        );
        assert_eq!(rows[1].name, "", "unnamed");
        // The adapters' placing keeps only the sources that name a centre.
        assert_eq!(parse_sources(text).expect("valid").len(), 1);
        let bad = "source,name,center_id,region,vendor,transport\n\
                   sdjc:pj,a,PJ,430626,,\n\
                   ,b,PJ,430626,,\n\
                   sdjc:pj,c,PJ,430626,,\n\
                   x,d,PJ,4306,,\n";
        let errors = parse_source_list(bad).expect_err("refused");
        let lines: Vec<_> = errors.iter().map(|e| (e.line, e.reason.clone())).collect();
        assert_eq!(
            lines,
            [
                (Some(3), "empty source".to_string()),
                (Some(4), "source \"sdjc:pj\" is listed twice".to_string()),
                (
                    Some(5),
                    "region \"4306\" is not a 6-digit GB/T 2260 code".to_string()
                ),
            ]
        );
    }
    use super::*;

    fn reference() -> Reference {
        let file = |name: &str, text: &str| Some((name.to_string(), text.to_string()));
        Reference::parse(&rules::ReferenceFiles {
            items: file("items.csv", "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\nP5,登记,BDC,promised,20,working,5,working,,,,true,hall,,accept\n"),
            windows: file("windows.csv", "window_id,center_id,region,department,in_hall\nW01,PJ,430626,BDC,true\nW02,PJ,430626,SC,true\nY01,YY,430621,SC,true\n"),
            staff: file("staff.csv", "staff_id,name,department,window_id,in_hall\nS1,李明,BDC,W01,true\nS2,张伟,BDC,W01,true\nS3,张伟,BDC,W01,true\n"),
            ..Default::default()
        })
        .expect("reference")
    }

    fn adapt(
        format: Format,
        sources: Option<&str>,
        lines: &[&str],
    ) -> Vec<Result<Vec<Event>, Dead>> {
        let r = reference();
        let mut a =
            Adapter::new(format, Codes::defaults(format), &r, sources, None).expect("adapter");
        lines
            .iter()
            .map(|l| {
                let mut out = Vec::new();
                a.adapt_line(l, &mut out).map(|()| out)
            })
            .collect()
    }

    #[test]
    fn versions_supersede_and_deletions_withdraw_every_event_of_the_row() {
        let out = adapt(
            Format::Sdjc,
            None,
            &[
                r#"{"_table":"EA_JC_STEP_SPECIALNODE","PROJID":"K1","ORGBUSNO":"R1","DATAVER":3,"SN":1,"PROCUNITID":"BDC","NODERESULT":"2","NODESTARTTIME":"2026-03-02 09:00:00","NODEENDTIME":"2026-03-03 09:00:00","MAKETIME":"2026-03-03 10:00:00"}"#,
                r#"{"_table":"EA_JC_STEP_SPECIALNODE","PROJID":"K1","ORGBUSNO":"R1","DATAVER":3,"SN":1,"PROCUNITID":"BDC","NODERESULT":"2","NODESTARTTIME":"2026-03-02 09:00:00","NODEENDTIME":"2026-03-03 09:00:00","CD_OPERATION":"D"}"#,
            ],
        );
        let kept = out[0].as_ref().expect("events");
        assert_eq!(kept.len(), 2, "start and end");
        assert_eq!(kept[0].event_id, "sdjc:EA_JC_STEP_SPECIALNODE:K1:R1:1:v3");
        assert_eq!(
            kept[0].supersedes.as_deref(),
            Some("sdjc:EA_JC_STEP_SPECIALNODE:K1:R1:1:v2")
        );
        assert_eq!(
            kept[1].supersedes.as_deref(),
            Some("sdjc:EA_JC_STEP_SPECIALNODE:K1:R1:1:v2:end")
        );
        assert_eq!(
            kept[0].reported_at.as_deref(),
            Some("2026-03-03T10:00:00+08:00")
        );
        let gone = out[1].as_ref().expect("withdrawals");
        assert_eq!(gone.len(), 2);
        for (w, e) in gone.iter().zip(kept) {
            assert_eq!(w.kind, "event.withdrawn");
            assert_eq!(w.withdraws.as_deref(), Some(e.event_id.as_str()));
            assert_ne!(w.event_id, e.event_id);
        }
    }

    #[test]
    fn people_names_placeholders_and_centres() {
        let out = adapt(
            Format::Gdbs,
            None,
            &[
                // a placeholder 工号 on an auto-accept: nobody
                r#"{"_table":"EX_GDBS_SL","SBLSH":"K1","SXBM":"P5","XZQHDM":"430626","SLBMZZJGDM":"BDC","SLZTDM":"1","TJFS":"0","BLRXM":"自动预审","BLRGH":"00000000","SLSJ":"2026-03-02 09:00:00"}"#,
                // a name two members share: nobody, and why
                r#"{"_table":"EX_GDBS_SPCL","SBLSH":"K1","XZQHDM":"430626","SPHJDM":"1","SPHJZTDM":"1","SPRXM":"张伟","SPSJ":"2026-03-02 10:00:00"}"#,
                r#"{"_table":"EX_GDBS_SPCL","SBLSH":"K1","XZQHDM":"430626","SPHJDM":"2","SPHJZTDM":"1","SPRXM":"李明","SPSJ":"2026-03-02 11:00:00"}"#,
                r#"{"_table":"EX_GDBS_SPCL","SBLSH":"K1","XZQHDM":"430626","SPHJDM":"3","SPHJZTDM":"1","SPRXM":"王五","SPSJ":"2026-03-02 12:00:00"}"#,
                // SC is served by two centres: no centre for a case never seen
                r#"{"_table":"EX_GDBS_BJGZ","SBLSH":"K2","XZQHDM":"430626","SPBMZZJGDM":"SC","BZGZSJ":"2026-03-02 12:00:00"}"#,
            ],
        );
        let accepted = &out[0].as_ref().expect("ok")[0];
        assert_eq!(
            (accepted.staff_id.as_deref(), accepted.center_id.as_str()),
            (None, "PJ")
        );
        assert!(accepted
            .staff_note
            .as_deref()
            .is_some_and(|n| n.contains("placeholder")));
        let ambiguous = &out[1].as_ref().expect("ok")[0];
        assert_eq!(ambiguous.staff_id, None);
        assert!(
            ambiguous
                .staff_note
                .as_deref()
                .is_some_and(|n| n.contains("S2, S3")),
            "{ambiguous:?}"
        );
        assert_eq!(ambiguous.center_id, "PJ", "the case's centre");
        assert_eq!(
            out[2].as_ref().expect("ok")[0].staff_id.as_deref(),
            Some("S1")
        );
        let unknown = &out[3].as_ref().expect("ok")[0];
        assert!(unknown
            .staff_note
            .as_deref()
            .is_some_and(|n| n.contains("no staff member named 王五")));
        assert_eq!(
            out[4].as_ref().expect_err("no centre").reason,
            "unknown_center"
        );
        // sources.csv places a source's records
        let out = adapt(
            Format::Gdbs,
            Some("source,name,center_id,region,vendor,transport\ngdbs,x,YY,430621,,\n"),
            &[
                r#"{"_table":"EX_GDBS_BJGZ","SBLSH":"K2","SPBMZZJGDM":"SC","BZGZSJ":"2026-03-02 12:00:00"}"#,
            ],
        );
        let ev = &out[0].as_ref().expect("placed")[0];
        assert_eq!(
            (ev.center_id.as_str(), ev.region.as_str()),
            ("YY", "430621")
        );
    }

    #[test]
    fn units_the_engine_does_not_compute_yet_are_named_as_the_spec_names_them() {
        let out = adapt(
            Format::Sdjc,
            None,
            &[
                r#"{"_table":"EA_JC_STEP_BASICINFO","PROJID":"K1","ORGBUSNO":"R1","ITEMNO":"P5","ACCEPTDEPTID":"BDC","SUBMIT":"0","PROMISETIMELIMIT":4,"PROMISETIMEUNIT":"3","TIMELIMIT":2,"TIMEUNIT":"G","OCCURTIME":"2026-03-02 09:00:00"}"#,
                r#"{"_table":"EA_JC_STEP_BASICINFO","PROJID":"K2","ORGBUSNO":"R2","ITEMNO":"P5","ACCEPTDEPTID":"BDC","SUBMIT":"0","PROMISETIMELIMIT":30,"PROMISETIMEUNIT":"4","OCCURTIME":"2026-03-02 09:00:00"}"#,
                r#"{"_table":"EA_JC_STEP_BASICINFO","PROJID":"K3","ORGBUSNO":"R3","ITEMNO":"P5","ACCEPTDEPTID":"BDC","SUBMIT":"0","PROMISETIMELIMIT":2,"PROMISETIMEUNIT":"5","OCCURTIME":"2026-03-02 09:00:00"}"#,
            ],
        );
        let units: Vec<_> = out
            .iter()
            .map(|r| {
                r.as_ref().expect("ok")[0]
                    .promised_unit
                    .clone()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(units, ["working_hours", "working_minutes", "months"]);
    }

    #[test]
    fn local_times_in_every_spelling() {
        let t = "2026-03-02T09:30:00+08:00";
        for s in [
            "2026-03-02 09:30:00",
            "2026-03-02 09:30:00.0",
            "2026-03-02T09:30:00",
            "20260302093000",
            "20260302T093000",
            "2026/03/02 09:30:00",
        ] {
            assert_eq!(local_time(s).as_deref(), Some(t), "{s}");
        }
        assert_eq!(
            local_time("2026-03-02").as_deref(),
            Some("2026-03-02T00:00:00+08:00")
        );
        for bad in [
            "02/03/2026 9:30",
            "2026-13-02 09:30:00",
            "yesterday",
            "2026-03-02 25:00:00",
        ] {
            assert_eq!(local_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_in_yuan() {
        assert_eq!(yuan_to_fen("80"), Some(8000));
        assert_eq!(yuan_to_fen("80.5"), Some(8050));
        assert_eq!(yuan_to_fen("0.05"), Some(5));
        assert_eq!(yuan_to_fen("80.505"), None);
        assert_eq!(yuan_to_fen("-1"), None);
        assert_eq!(yuan_to_fen("八十"), None);
    }
}

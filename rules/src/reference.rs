//! Reference data (SPEC §4): the item catalogue (事项目录), windows, staff and the calendar.
//!
//! Parsing works on file contents handed in by the caller (the `ingest` crate reads the
//! directory), so this crate stays free of I/O. Every problem is reported with the file, the
//! line and a reason, and parsing goes on after an error so `jiancha check` can list them all.

use hashbrown::HashMap;
use std::fmt;

use crate::calendar::{Calendar, CalendarBuilder};
use crate::event::{CaseType, Channel, Stage, Unit};

/// A problem in a reference file: which file, which line (1-based, when known) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReferenceError {
    /// File name as given by the caller (e.g. `items.csv`).
    pub file: String,
    /// 1-based line, when the problem can be tied to one.
    pub line: Option<usize>,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl ReferenceError {
    /// A new error.
    pub fn new(file: &str, line: Option<usize>, reason: impl Into<String>) -> Self {
        ReferenceError {
            file: file.to_string(),
            line,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// A time limit: a number of days in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limit {
    /// Number of days.
    pub days: u16,
    /// 工作日 or 自然日.
    pub unit: Unit,
}

/// One 事项 of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// 事项编码.
    pub code: String,
    /// 事项名称.
    pub name: String,
    /// Owning department code.
    pub department: String,
    /// 即办件 / 承诺件 / 上报件 / 联办件.
    pub case_type: CaseType,
    /// 法定时限; `None` when the catalogue gives none.
    pub legal: Option<Limit>,
    /// 承诺时限; 0 days for 即办件.
    pub promised: Limit,
    /// Stage limits in days (unit of the promised limit), indexed by [`Stage::index`].
    pub stage_days: [Option<u16>; 3],
    /// Must be handled in the hall.
    pub in_hall: bool,
    /// Allowed acceptance channels, as a [`Channel::bit`] mask.
    pub channels: u8,
    /// Statutory fee in fen; `None` = no standard known.
    pub fee_fen: Option<u64>,
    /// Stages delegated to the window (`accept` = bit 0, then [`Stage::bit`] shifted by one).
    pub window_authority: u8,
}

/// A service window (窗口).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Window id.
    pub window_id: String,
    /// Service centre.
    pub center_id: String,
    /// GB/T 2260 code.
    pub region: String,
    /// Department code.
    pub department: String,
    /// Is the window inside the hall.
    pub in_hall: bool,
}

/// A staff member (工作人员).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// 工号.
    pub staff_id: String,
    /// Name.
    pub name: String,
    /// Department code.
    pub department: String,
    /// Window normally staffed, if any.
    pub window_id: Option<String>,
    /// Works in the hall (false = back office: 前店后场 signal).
    pub in_hall: bool,
    /// Home centre, the jurisdiction the member acts in: the optional `center_id` column, else
    /// the centre of their window, else the one centre with windows of their department (or the
    /// reference's only centre). `None` when the reference names no centre at all. Resolved by
    /// [`Reference::new`]; [`Reference::parse`] refuses a member it cannot place.
    pub center_id: Option<String>,
}

/// The contents of a reference directory, as text, for [`Reference::parse`].
#[derive(Debug, Default, Clone)]
pub struct ReferenceFiles {
    /// `items.csv` (required).
    pub items: Option<(String, String)>,
    /// `windows.csv`.
    pub windows: Option<(String, String)>,
    /// `staff.csv`.
    pub staff: Option<(String, String)>,
    /// `calendar/*.json`, each replacing the built-in file of its year.
    pub calendar: Vec<(String, String)>,
    /// `departments.csv` (optional): `department,name`, the names dashboards show.
    pub departments: Option<(String, String)>,
    /// `centers.csv` (optional): `center_id,name`, the names dashboards show.
    pub centers: Option<(String, String)>,
}

/// Validated reference data, shared read-only by the engine.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Working-day calendar.
    pub calendar: Calendar,
    items: Vec<Item>,
    item_index: HashMap<String, u32>,
    /// Windows by id.
    pub windows: HashMap<String, Window>,
    /// Staff by 工号.
    pub staff: HashMap<String, Staff>,
    /// Display names of departments by code (`departments.csv`; the engine never reads them).
    pub department_names: std::collections::HashMap<String, String>,
    /// Display names of centres by id (`centers.csv`; the engine never reads them).
    pub center_names: std::collections::HashMap<String, String>,
    /// The region of every centre that has a window (`windows.csv`): what binds a centre, its
    /// windows and its staff to a jurisdiction (docs/RULES.md, "Jurisdiction").
    center_regions: HashMap<String, String>,
}

impl Reference {
    /// Parse and validate. Returns every problem found, not just the first.
    pub fn parse(files: &ReferenceFiles) -> Result<Reference, Vec<ReferenceError>> {
        let mut errors = Vec::new();
        let mut cal = CalendarBuilder::with_built_in();
        for (name, text) in &files.calendar {
            if let Err(e) = cal.add_file(name, text) {
                errors.push(e);
            }
        }
        let items = match &files.items {
            Some((name, text)) => parse_items(name, text, &mut errors),
            None => {
                errors.push(ReferenceError::new(
                    "items.csv",
                    None,
                    "missing: the item catalogue (事项目录) is required",
                ));
                Vec::new()
            }
        };
        let windows = files
            .windows
            .as_ref()
            .map(|(name, text)| parse_windows(name, text, &mut errors))
            .unwrap_or_default();
        let staff = files
            .staff
            .as_ref()
            .map(|(name, text)| parse_staff(name, text, &mut errors))
            .unwrap_or_default();
        let center_regions = center_regions(&windows, files.windows.as_ref(), &mut errors);
        let staff = place_staff(
            staff,
            &windows,
            &center_regions,
            files.staff.as_ref(),
            &mut errors,
        );
        let names = |file: &Option<(String, String)>, key: &str, errors: &mut Vec<_>| {
            file.as_ref()
                .map(|(name, text)| parse_names(name, text, key, errors))
                .unwrap_or_default()
        };
        let department_names = names(&files.departments, "department", &mut errors);
        let center_names = names(&files.centers, "center_id", &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut reference = Reference::new(cal.build(), items, windows, staff);
        reference.department_names = department_names;
        reference.center_names = center_names;
        Ok(reference)
    }

    /// Assemble from already-validated parts (tests and benchmarks).
    pub fn new(
        calendar: Calendar,
        items: Vec<Item>,
        windows: Vec<Window>,
        staff: Vec<Staff>,
    ) -> Reference {
        let center_regions: HashMap<String, String> = windows
            .iter()
            .map(|w| (w.center_id.clone(), w.region.clone()))
            .collect();
        // `parse` has placed every member already (refusing those it cannot); here only members
        // handed over unplaced (tests, benchmarks) are placed, best effort.
        let by_id = window_index(&windows);
        let staff = staff
            .into_iter()
            .map(|mut s| {
                if s.center_id.is_none() {
                    s.center_id = home_center(&s, &by_id, &center_regions).ok().flatten();
                }
                s
            })
            .collect::<Vec<_>>();
        drop(by_id);
        let item_index = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.code.clone(), i as u32))
            .collect();
        Reference {
            calendar,
            items,
            item_index,
            windows: windows
                .into_iter()
                .map(|w| (w.window_id.clone(), w))
                .collect(),
            staff: staff.into_iter().map(|s| (s.staff_id.clone(), s)).collect(),
            department_names: std::collections::HashMap::new(),
            center_names: std::collections::HashMap::new(),
            center_regions,
        }
    }

    /// Does the reference list service centres (a `windows.csv` with rows)? When it does, every
    /// `center_id`, `window_id` and `staff_id` an event names is checked against it.
    pub fn lists_centers(&self) -> bool {
        !self.center_regions.is_empty()
    }

    /// The region of centre `center_id`, when the reference lists it.
    pub fn center_region(&self, center_id: &str) -> Option<&str> {
        self.center_regions.get(center_id).map(String::as_str)
    }

    /// Index of an item by code.
    pub fn item_id(&self, code: &str) -> Option<u32> {
        self.item_index.get(code).copied()
    }

    /// Item by index from [`Reference::item_id`].
    pub fn item(&self, id: u32) -> &Item {
        &self.items[id as usize]
    }

    /// Every item of the catalogue.
    pub fn items(&self) -> &[Item] {
        &self.items
    }
}

/// One CSV row, addressed by column name.
struct Row<'a> {
    header: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
    /// Line of the record (1 = the header).
    line: usize,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.header
            .iter()
            .position(|h| h == column)
            .and_then(|i| self.record.get(i))
            .map_or("", str::trim)
    }

    fn required(&self, column: &str) -> Result<&str, String> {
        let v = self.get(column);
        if v.is_empty() {
            Err(format!("{column} is empty"))
        } else {
            Ok(v)
        }
    }
}

/// Read a CSV file whose header must hold exactly `columns` (any order; a name ending in `?` is
/// an optional column), calling `row` per record; errors are collected with their line.
fn read_csv(
    file: &str,
    text: &str,
    columns: &[&str],
    errors: &mut Vec<ReferenceError>,
    mut row: impl FnMut(&Row<'_>) -> Result<(), String>,
) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(ReferenceError::new(
                file,
                Some(1),
                format!("bad header: {e}"),
            ));
            return;
        }
    };
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let required: Vec<&str> = columns
        .iter()
        .filter(|c| !c.ends_with('?'))
        .copied()
        .collect();
    let known: Vec<&str> = columns.iter().map(|c| c.trim_end_matches('?')).collect();
    let missing: Vec<&&str> = required.iter().filter(|c| !names.contains(c)).collect();
    let unknown: Vec<&&str> = names.iter().filter(|n| !known.contains(n)).collect();
    if !missing.is_empty() || !unknown.is_empty() {
        errors.push(ReferenceError::new(
            file,
            Some(1),
            format!(
                "header must name the columns {}; missing {missing:?}, unknown {unknown:?}",
                columns.join(",").replace('?', " (optional)")
            ),
        ));
        return;
    }
    let header = csv::StringRecord::from(names);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line() as usize);
                if let Err(reason) = row(&Row {
                    header: &header,
                    record: &record,
                    line: line.unwrap_or(0),
                }) {
                    errors.push(ReferenceError::new(file, line, reason));
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                errors.push(ReferenceError::new(file, line, e.to_string()));
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
}

const ITEM_COLUMNS: &[&str] = &[
    "item_code",
    "item_name",
    "department",
    "case_type",
    "legal_days",
    "legal_unit",
    "promised_days",
    "promised_unit",
    "stage_undertake_days",
    "stage_review_days",
    "stage_approve_days",
    "in_hall",
    "channels",
    "fee_fen",
    "window_authority",
];

fn parse_items(file: &str, text: &str, errors: &mut Vec<ReferenceError>) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mut seen: HashMap<String, ()> = HashMap::new();
    read_csv(file, text, ITEM_COLUMNS, errors, |row| {
        let item = parse_item(row)?;
        if seen.insert(item.code.clone(), ()).is_some() {
            return Err(format!("item_code {} is listed twice", item.code));
        }
        items.push(item);
        Ok(())
    });
    items
}

fn parse_item(row: &Row<'_>) -> Result<Item, String> {
    let code = row.required("item_code")?.to_string();
    let case_type = parse_enum("case_type", row.required("case_type")?, CaseType::parse)?;
    let legal = parse_limit(row, "legal_days", "legal_unit")?;
    let promised = match parse_limit(row, "promised_days", "promised_unit")? {
        Some(l) if case_type == CaseType::Instant && l.days != 0 => {
            return Err(format!(
                "case_type instant (即办件) must have promised_days empty or 0, not {}",
                l.days
            ))
        }
        Some(l) => l,
        None if case_type == CaseType::Instant => Limit {
            days: 0,
            unit: Unit::Working,
        },
        None => return Err(format!("promised_days is empty for a {case_type:?} item")),
    };
    let mut stage_days = [None; 3];
    for stage in Stage::ALL {
        let column = format!("stage_{}_days", stage.as_str());
        stage_days[stage.index()] = parse_opt_number::<u16>(&column, row.get(&column))?;
    }
    let mut channels = 0u8;
    for c in split_list(row.get("channels")) {
        channels |= parse_enum("channels", c, Channel::parse)?.bit();
    }
    let mut window_authority = 0u8;
    for a in split_list(row.get("window_authority")) {
        window_authority |= match a {
            "accept" => 1,
            other => match Stage::parse(other) {
                Some(Stage::Undertake) | None => {
                    return Err(format!(
                        "window_authority: {other:?} is not one of accept, review, approve"
                    ))
                }
                Some(s) => s.bit() << 1,
            },
        };
    }
    Ok(Item {
        code,
        name: row.required("item_name")?.to_string(),
        department: row.required("department")?.to_string(),
        case_type,
        legal,
        promised,
        stage_days,
        in_hall: parse_bool("in_hall", row.required("in_hall")?)?,
        channels,
        fee_fen: parse_opt_number("fee_fen", row.get("fee_fen"))?,
        window_authority,
    })
}

fn parse_windows(file: &str, text: &str, errors: &mut Vec<ReferenceError>) -> Vec<Window> {
    let mut out = Vec::new();
    read_csv(
        file,
        text,
        &["window_id", "center_id", "region", "department", "in_hall"],
        errors,
        |row| {
            let region = row.required("region")?;
            if !crate::event::is_valid_region(region) {
                return Err(format!("region {region:?} is not a GB/T 2260 code"));
            }
            out.push(Window {
                window_id: row.required("window_id")?.to_string(),
                center_id: row.required("center_id")?.to_string(),
                region: region.to_string(),
                department: row.required("department")?.to_string(),
                in_hall: parse_bool("in_hall", row.required("in_hall")?)?,
            });
            Ok(())
        },
    );
    out
}

/// Staff rows with their line numbers (for [`place_staff`]'s errors).
fn parse_staff(file: &str, text: &str, errors: &mut Vec<ReferenceError>) -> Vec<(Staff, usize)> {
    let mut out = Vec::new();
    read_csv(
        file,
        text,
        &[
            "staff_id",
            "name",
            "department",
            "window_id",
            "in_hall",
            "center_id?",
        ],
        errors,
        |row| {
            let window = row.get("window_id");
            let center = row.get("center_id");
            let staff = Staff {
                staff_id: row.required("staff_id")?.to_string(),
                name: row.required("name")?.to_string(),
                department: row.required("department")?.to_string(),
                window_id: (!window.is_empty()).then(|| window.to_string()),
                in_hall: parse_bool("in_hall", row.required("in_hall")?)?,
                center_id: (!center.is_empty()).then(|| center.to_string()),
            };
            out.push((staff, row.line));
            Ok(())
        },
    );
    out
}

/// Each centre's region, from `windows.csv`; a centre listed under two regions is refused (which
/// jurisdiction would its events belong to?).
fn center_regions(
    windows: &[Window],
    file: Option<&(String, String)>,
    errors: &mut Vec<ReferenceError>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for (i, w) in windows.iter().enumerate() {
        match out.get(&w.center_id) {
            Some(region) if *region != w.region => errors.push(ReferenceError::new(
                file.map_or("windows.csv", |f| f.0.as_str()),
                None,
                format!(
                    "window {} (row {}) puts centre {} in region {}, but an earlier window puts it                      in {region}: a centre belongs to one region",
                    w.window_id,
                    i + 1,
                    w.center_id,
                    w.region
                ),
            )),
            Some(_) => {}
            None => {
                out.insert(w.center_id.clone(), w.region.clone());
            }
        }
    }
    out
}

/// Resolve every member's home centre ([`Staff::center_id`]), refusing with file and line a
/// member whose window or centre is not listed, or who cannot be placed in one centre.
fn place_staff(
    staff: Vec<(Staff, usize)>,
    windows: &[Window],
    centers: &HashMap<String, String>,
    file: Option<&(String, String)>,
    errors: &mut Vec<ReferenceError>,
) -> Vec<Staff> {
    let name = file.map_or("staff.csv", |f| f.0.as_str());
    let windows = window_index(windows);
    staff
        .into_iter()
        .map(|(mut s, line)| {
            match home_center(&s, &windows, centers) {
                Ok(home) => s.center_id = home,
                Err(reason) => errors.push(ReferenceError::new(name, Some(line), reason)),
            }
            s
        })
        .collect()
}

/// Windows by id, for placing staff (a scan per member would make start-up quadratic).
fn window_index(windows: &[Window]) -> HashMap<&str, &Window> {
    windows.iter().map(|w| (w.window_id.as_str(), w)).collect()
}

/// Where a staff member belongs (see [`Staff::center_id`]), or why that cannot be said.
fn home_center(
    s: &Staff,
    windows: &HashMap<&str, &Window>,
    centers: &HashMap<String, String>,
) -> Result<Option<String>, String> {
    if centers.is_empty() {
        return Ok(s.center_id.clone());
    }
    let window = match &s.window_id {
        Some(id) => match windows.get(id.as_str()) {
            Some(w) => Some(w),
            None => return Err(format!("window_id {id} is not in windows.csv")),
        },
        None => None,
    };
    if let Some(c) = &s.center_id {
        if !centers.contains_key(c) {
            return Err(format!("center_id {c} has no window in windows.csv"));
        }
        if let Some(w) = window.filter(|w| &w.center_id != c) {
            return Err(format!(
                "center_id {c} differs from the centre of window {} ({})",
                w.window_id, w.center_id
            ));
        }
        return Ok(Some(c.clone()));
    }
    if let Some(w) = window {
        return Ok(Some(w.center_id.clone()));
    }
    let mut of_department: Vec<&str> = windows
        .values()
        .filter(|w| w.department == s.department)
        .map(|w| w.center_id.as_str())
        .collect();
    of_department.sort_unstable();
    of_department.dedup();
    match (of_department.as_slice(), centers.len()) {
        ([one], _) => Ok(Some((*one).to_string())),
        ([], 1) => Ok(centers.keys().next().cloned()),
        (several, _) => Err(format!(
            "back-office member of department {} has no window_id and no center_id, and the \
             department has windows in {} centres ({}): add a center_id column naming the centre \
             this member works for",
            s.department,
            several.len().max(centers.len()),
            if several.is_empty() {
                "none of its own".to_string()
            } else {
                several.join(", ")
            }
        )),
    }
}

/// `key,name` display names; a key given twice is refused (which name would be shown?).
fn parse_names(
    file: &str,
    text: &str,
    key: &str,
    errors: &mut Vec<ReferenceError>,
) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    read_csv(file, text, &[key, "name"], errors, |row| {
        let id = row.required(key)?;
        let name = row.required("name")?;
        if out.insert(id.to_string(), name.to_string()).is_some() {
            return Err(format!("{key} {id:?} is named twice"));
        }
        Ok(())
    });
    out
}

fn parse_limit(row: &Row<'_>, days_col: &str, unit_col: &str) -> Result<Option<Limit>, String> {
    let Some(days) = parse_opt_number::<u16>(days_col, row.get(days_col))? else {
        if !row.get(unit_col).is_empty() {
            return Err(format!("{unit_col} is set but {days_col} is empty"));
        }
        return Ok(None);
    };
    if days > MAX_LIMIT_DAYS {
        return Err(format!("{days_col} {days} exceeds {MAX_LIMIT_DAYS}"));
    }
    let unit = parse_enum(unit_col, row.required(unit_col)?, Unit::parse)?;
    Ok(Some(Limit { days, unit }))
}

/// Largest limit accepted anywhere (ten years of days): guards the calendar tables.
pub const MAX_LIMIT_DAYS: u16 = 3650;

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(';').map(str::trim).filter(|x| !x.is_empty())
}

fn parse_enum<T>(column: &str, v: &str, f: impl Fn(&str) -> Option<T>) -> Result<T, String> {
    f(v).ok_or_else(|| format!("{column}: {v:?} is not an allowed value"))
}

fn parse_bool(column: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{column}: {v:?} is not true or false")),
    }
}

fn parse_opt_number<T: std::str::FromStr>(column: &str, v: &str) -> Result<Option<T>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| format!("{column}: {v:?} is not a non-negative whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n";

    fn items(rows: &str) -> Result<Reference, Vec<ReferenceError>> {
        Reference::parse(&ReferenceFiles {
            items: Some(("items.csv".into(), format!("{HEADER}{rows}"))),
            ..Default::default()
        })
    }

    #[test]
    fn parses_a_catalogue_row() {
        let r = items("P5,不动产登记,BDC,promised,20,working,5,working,2,2,,true,hall;online,8000,accept;review\n")
            .unwrap();
        let item = r.item(r.item_id("P5").unwrap());
        assert_eq!(
            item.promised,
            Limit {
                days: 5,
                unit: Unit::Working
            }
        );
        assert_eq!(
            item.legal,
            Some(Limit {
                days: 20,
                unit: Unit::Working
            })
        );
        assert_eq!(item.stage_days, [Some(2), Some(2), None]);
        assert_eq!(item.channels, Channel::Hall.bit() | Channel::Online.bit());
        assert_eq!(item.fee_fen, Some(8000));
        assert_eq!(item.window_authority, 1 | (Stage::Review.bit() << 1));
    }

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let errs = items(concat!(
            "A,甲,D,promised,20,working,5,weeks,,,,true,hall,,accept\n",
            "B,乙,D,instant,1,working,3,working,,,,true,hall,,accept\n",
            "C,丙,D,promised,20,working,5,working,,,,yes,hall,,accept\n",
            "C2,丙,D,promised,20,working,5,working,,,,true,hall,-3,accept\n",
        ))
        .unwrap_err();
        let lines: Vec<_> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(2), Some(3), Some(4), Some(5)], "{errs:?}");
        assert!(errs[0].reason.contains("promised_unit"), "{}", errs[0]);
        assert!(errs[1].reason.contains("instant"), "{}", errs[1]);
        assert!(errs[2].reason.contains("in_hall"), "{}", errs[2]);
        assert!(errs[3].reason.contains("fee_fen"), "{}", errs[3]);
        assert_eq!(errs[0].to_string().split(':').next(), Some("items.csv"));
    }

    #[test]
    fn refuses_wrong_headers_ragged_rows_and_duplicates() {
        let e = Reference::parse(&ReferenceFiles {
            items: Some(("items.csv".into(), "item_code,name\nA,B\n".into())),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e[0].line, Some(1));
        let e = items("A,甲,D,promised,20,working,5,working\n").unwrap_err();
        assert_eq!(e[0].line, Some(2));
        let e = items(concat!(
            "A,甲,D,promised,20,working,5,working,,,,true,hall,,accept\n",
            "A,甲,D,promised,20,working,5,working,,,,true,hall,,accept\n"
        ))
        .unwrap_err();
        assert_eq!(e[0].line, Some(3));
        assert!(e[0].reason.contains("twice"));
    }

    #[test]
    fn display_names_are_optional_and_refused_when_ambiguous() {
        let catalogue =
            format!("{HEADER}A,甲,D,promised,20,working,5,working,,,,true,hall,,accept\n");
        let r = Reference::parse(&ReferenceFiles {
            items: Some(("items.csv".into(), catalogue.clone())),
            departments: Some((
                "departments.csv".into(),
                "department,name\nD,不动产登记中心\n".into(),
            )),
            centers: Some((
                "centers.csv".into(),
                "center_id,name\nPJ,平江县政务服务中心\n".into(),
            )),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.department_names["D"], "不动产登记中心");
        assert_eq!(r.center_names["PJ"], "平江县政务服务中心");
        let e = Reference::parse(&ReferenceFiles {
            items: Some(("items.csv".into(), catalogue)),
            departments: Some((
                "departments.csv".into(),
                "department,name\nD,甲\nE,\nD,乙\n".into(),
            )),
            ..Default::default()
        })
        .unwrap_err();
        let found: Vec<_> = e.iter().map(|e| (e.file.as_str(), e.line)).collect();
        assert_eq!(
            found,
            [("departments.csv", Some(3)), ("departments.csv", Some(4))]
        );
        assert!(e[1].reason.contains("named twice"), "{}", e[1]);
    }

    #[test]
    fn missing_catalogue_is_an_error() {
        let e = Reference::parse(&ReferenceFiles::default()).unwrap_err();
        assert!(e[0].reason.contains("required"));
    }
}

//! Source adapters end to end: `tests/equivalence/*.eqv`, each a hand-written case sent natively
//! and in every format that can express it (SPEC §9: the same alerts apart from `source`),
//! their coverage of every table and default code, and the dead letters of bad rows.
//!
//! Case file format (like `tests/golden/*.scn`):
//! ```text
//! # Title and the working of the expected alerts
//! [native]    §3 events; event_id = ev-<line>, center_id = PJ, region = 430626 when absent
//! [sdjc]      rows of the format, one JSON object per line with "_table"
//! [gdbs]
//! [gb39046]
//! [until]     the clock after the last event
//! [expect]    <fired_at> <rule> <level> <case_id|-> per alert of the native run, in order
//! ```
//! Every section a case has is replayed against `tests/equivalence/reference/`; the alerts of
//! each format must equal the native ones once `source` and event ids (which name the rows)
//! are set aside, and no row may be a dead letter. The events themselves must equal the native
//! ones too (apart from ids, `source` and the adapter's `staff_note`), so a case that raises
//! nothing still checks every code it carries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters::{Adapter, Codes, Format, Row};
use ingest::decode::DecodeOptions;
use ingest::reference_dir::Loaded;
use rules::time::parse_rfc3339;
use rules::Engine;
use serde_json::Value;

#[derive(Default)]
struct Case {
    sections: BTreeMap<String, Vec<(usize, String)>>,
    until: Option<String>,
    expect: Vec<String>,
}

fn parse(text: &str) -> Result<Case, String> {
    let mut case = Case::default();
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].to_string();
            if !["native", "sdjc", "gdbs", "gb39046", "until", "expect"].contains(&section.as_str())
            {
                return Err(format!("line {}: unknown section [{section}]", i + 1));
            }
            continue;
        }
        match section.as_str() {
            "until" => case.until = Some(t.to_string()),
            "expect" => case.expect.push(t.to_string()),
            "" => return Err(format!("line {}: text outside a section", i + 1)),
            s => case
                .sections
                .entry(s.to_string())
                .or_default()
                .push((i + 1, t.to_string())),
        }
    }
    if !case.sections.contains_key("native") {
        return Err("no [native] section".into());
    }
    if case.sections.len() < 2 {
        return Err("no format section: a case is sent in at least one format".into());
    }
    Ok(case)
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/equivalence")
}

fn reference() -> Loaded {
    ingest::reference_dir::load(&dir().join("reference"), None).expect("reference")
}

fn cases() -> Vec<(String, Case)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/equivalence")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eqv"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&p).expect("read");
            let case = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect()
}

fn native_line(n: usize, line: &str) -> String {
    let mut v: serde_json::Map<String, Value> =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("line {n}: {e}"));
    v.entry("event_id")
        .or_insert_with(|| format!("ev-{n}").into());
    v.entry("center_id").or_insert_with(|| "PJ".into());
    v.entry("region").or_insert_with(|| "430626".into());
    Value::Object(v).to_string()
}

/// Replay NDJSON events; the alerts, and the diagnostics (invalid or refused lines).
fn replay(loaded: &Loaded, events: &str, until: Option<&str>) -> (Vec<Value>, String) {
    let until = until.map(|u| parse_rfc3339(u).expect("[until]"));
    let opts = DecodeOptions::replay(&loaded.policy);
    let mut engine = Engine::new(Arc::new(loaded.reference.clone()), loaded.policy.clone());
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    ingest::replay::replay(
        &mut engine,
        events.as_bytes(),
        until,
        opts,
        &mut out,
        &mut diag,
    )
    .expect("replay");
    let alerts = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert JSON"))
        .collect();
    (alerts, String::from_utf8_lossy(&diag).to_string())
}

/// An alert without what names the rows rather than the facts: `source` and event ids.
fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("source");
            m.remove("event_id");
            m.values_mut().for_each(normalise);
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        _ => {}
    }
}

fn summary(a: &Value) -> String {
    let text = |k: &str| match &a[k] {
        Value::String(s) => s.clone(),
        _ => "-".to_string(),
    };
    let status = if a["status"] == "retracted" {
        "retracted "
    } else {
        ""
    };
    format!(
        "{status}{} {} {} {}",
        text("fired_at"),
        text("rule"),
        text("level"),
        text("case_id")
    )
}

/// A format section through the adapter: the events (NDJSON) or the dead letters.
fn adapt(
    loaded: &Loaded,
    format: Format,
    rows: &[(usize, String)],
    sources: Option<String>,
) -> Result<String, String> {
    let mut adapter = Adapter::new(
        format,
        Codes::defaults(format),
        &loaded.reference,
        sources.as_deref(),
        None,
    )
    .expect("adapter");
    let (mut events, mut dead) = (String::new(), String::new());
    let mut out = Vec::new();
    for (n, line) in rows {
        out.clear();
        match adapter.adapt_line(line, &mut out) {
            Ok(()) => out.iter().for_each(|e| {
                events.push_str(&e.to_json());
                events.push('\n');
            }),
            Err(d) => dead.push_str(&format!("  line {n}: {d}\n")),
        }
    }
    if dead.is_empty() {
        Ok(events)
    } else {
        Err(dead)
    }
}

#[test]
fn every_case_gives_the_same_alerts_natively_and_in_every_format() {
    let loaded = reference();
    let cases = cases();
    let mut failures = String::new();
    for (name, case) in &cases {
        let native: String = case.sections["native"]
            .iter()
            .map(|(n, l)| native_line(*n, l) + "\n")
            .collect();
        let (mut want, diag) = replay(&loaded, &native, case.until.as_deref());
        if !diag.is_empty() {
            failures.push_str(&format!("{name} native: {diag}\n"));
        }
        let got_summary: Vec<String> = want.iter().map(summary).collect();
        if got_summary != case.expect {
            failures.push_str(&format!(
                "{name}: native alerts differ from [expect]\n  want: {:#?}\n  got: {got_summary:#?}\n",
                case.expect
            ));
        }
        want.iter_mut().for_each(normalise);
        for format in Format::ALL {
            let Some(rows) = case.sections.get(format.as_str()) else {
                continue;
            };
            let sources = std::fs::read_to_string(dir().join("reference/sources.csv")).ok();
            let events = match adapt(&loaded, format, rows, sources) {
                Ok(e) => e,
                Err(dead) => {
                    failures.push_str(&format!("{name} {}: dead letters\n{dead}", format.as_str()));
                    continue;
                }
            };
            // The events themselves, not only their alerts: a quiet case must still say the same.
            let facts = |text: &str| -> Vec<Value> {
                text.lines()
                    .map(|l| {
                        let mut v: Value = serde_json::from_str(l).expect("event JSON");
                        if let Value::Object(m) = &mut v {
                            for k in ["event_id", "source", "staff_note"] {
                                m.remove(k);
                            }
                        }
                        v
                    })
                    .collect()
            };
            let (theirs, ours) = (facts(&events), facts(&native));
            if let Some(i) =
                (0..theirs.len().max(ours.len())).find(|&i| theirs.get(i) != ours.get(i))
            {
                failures.push_str(&format!(
                    "{name} {}: event #{i} differs\n  native: {}\n  {}: {}\n",
                    format.as_str(),
                    ours.get(i).map_or("<none>".into(), Value::to_string),
                    format.as_str(),
                    theirs.get(i).map_or("<none>".into(), Value::to_string),
                ));
            }
            let (mut got, diag) = replay(&loaded, &events, case.until.as_deref());
            // `source.*` judge the feed itself: adapted events name one, the native ones none.
            got.retain(|a| !a["rule"].as_str().unwrap_or("").starts_with("source."));
            if !diag.is_empty() {
                failures.push_str(&format!("{name} {}: {diag}\n{events}", format.as_str()));
            }
            got.iter_mut().for_each(normalise);
            if got != want {
                let first = (0..want.len().max(got.len()))
                    .find(|&i| want.get(i) != got.get(i))
                    .unwrap_or(0);
                failures.push_str(&format!(
                    "{name} {}: alerts differ from native at #{first}\n  native: {}\n  {}: {}\n  events:\n{events}",
                    format.as_str(),
                    want.get(first).map_or("<none>".into(), Value::to_string),
                    format.as_str(),
                    got.get(first).map_or("<none>".into(), Value::to_string),
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
    assert!(
        cases.len() >= 30,
        "{} cases; the contract asks for 30",
        cases.len()
    );
}

/// The coded column of a row's table that `name` reads (two sdjc tables share NODERESULT).
fn applies(format: Format, name: &str, table: &str) -> bool {
    match (format, name) {
        (Format::Sdjc, "PROC_NODERESULT" | "NODESTATE" | "NODENAME") => table == "EA_JC_STEP_PROC",
        (Format::Sdjc, "SPECIALNODE_NODERESULT") => table == "EA_JC_STEP_SPECIALNODE",
        _ => true,
    }
}

#[test]
fn the_cases_cover_every_table_and_every_default_code() {
    let mut missing = Vec::new();
    let cases = cases();
    for format in Format::ALL {
        let codes = Codes::defaults(format);
        let mut tables = BTreeSet::new();
        let mut used = BTreeSet::new();
        for (_, case) in &cases {
            for (_, line) in case.sections.get(format.as_str()).into_iter().flatten() {
                let row = Row::parse(line).expect("row");
                let table = row.get("_table").unwrap_or("").to_string();
                tables.insert(table.clone());
                for c in format.columns() {
                    if !applies(format, c.name, &table) {
                        continue;
                    }
                    if let Some((key, _)) = row.get(c.column).and_then(|v| codes.entry(c.name, v)) {
                        used.insert((c.name, key.to_string()));
                    }
                }
            }
        }
        for t in format.tables() {
            if !tables.contains(*t) {
                missing.push(format!("{} table {t}", format.as_str()));
            }
        }
        for c in format.columns() {
            for (code, meaning) in c.defaults {
                if !used.contains(&(c.name, code.to_string())) {
                    missing.push(format!(
                        "{} {} {code:?} = {meaning}",
                        format.as_str(),
                        c.name
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not covered by any case:\n{}",
        missing.join("\n")
    );
}

/// One row through the adapter: its dead letter.
fn dead_letter(format: Format, line: &str) -> adapters::Dead {
    let loaded = reference();
    let mut adapter = Adapter::new(
        format,
        Codes::defaults(format),
        &loaded.reference,
        None,
        None,
    )
    .expect("adapter");
    let mut out = Vec::new();
    let d = adapter
        .adapt_line(line, &mut out)
        .expect_err("a dead letter");
    assert!(out.is_empty(), "a dead letter gives no event: {out:?}");
    d
}

#[test]
fn bad_rows_are_dead_letters_that_name_their_reason_and_column() {
    let cases: &[(Format, &str, &str, Option<&str>)] = &[
        // missing required columns
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_STEP_BASICINFO","ORGBUSNO":"R1","ITEMNO":"P5","ACCEPTDEPTID":"BDC","SUBMIT":"0","OCCURTIME":"2026-03-02 09:00:00"}"#,
            "missing_column",
            Some("PROJID"),
        ),
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_STEP_DONE","PROJID":"C1","ORGBUSNO":"R1","ACCEPTDEPTID":"BDC","DONERESULT":"0"}"#,
            "missing_column",
            Some("OCCURTIME"),
        ),
        (
            Format::Gdbs,
            r#"{"_table":"EX_GDBS_SL","SXBM":"P5","XZQHDM":"430626","SLZTDM":"1","SLSJ":"2026-03-02 09:00:00"}"#,
            "missing_column",
            Some("SBLSH"),
        ),
        (
            Format::Gb39046,
            r#"{"_table":"up_pro_result","project_no":"C1","org_code":"BDC","result_date":"2026-03-02 09:00:00"}"#,
            "missing_column",
            Some("result_type"),
        ),
        (
            Format::Sdjc,
            r#"{"PROJID":"C1"}"#,
            "missing_column",
            Some("_table"),
        ),
        // unknown tables
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_STEP_NOPE","PROJID":"C1"}"#,
            "unknown_table",
            Some("_table"),
        ),
        (
            Format::Gdbs,
            r#"{"_table":"EA_JC_STEP_DONE","PROJID":"C1"}"#,
            "unknown_table",
            Some("_table"),
        ),
        // dates in the wrong format
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_STEP_DONE","PROJID":"C1","ORGBUSNO":"R1","ACCEPTDEPTID":"BDC","DONERESULT":"0","OCCURTIME":"02/03/2026 09:00"}"#,
            "bad_timestamp",
            Some("OCCURTIME"),
        ),
        (
            Format::Gdbs,
            r#"{"_table":"EX_GDBS_LQDJ","SBLSH":"C1","XZQHDM":"430626","BJDTBM":"PJ","LQSJ":"2026-02-30 09:00:00"}"#,
            "bad_timestamp",
            Some("LQSJ"),
        ),
        (
            Format::Gb39046,
            r#"{"_table":"up_pro_result","project_no":"C1","org_code":"BDC","result_type":"0","result_date":"yesterday"}"#,
            "bad_timestamp",
            Some("result_date"),
        ),
        // codes outside the tables
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_STEP_DONE","PROJID":"C1","ORGBUSNO":"R1","ACCEPTDEPTID":"BDC","DONERESULT":"9","OCCURTIME":"2026-03-02 09:00:00"}"#,
            "unmapped_code",
            Some("DONERESULT"),
        ),
        (
            Format::Gdbs,
            r#"{"_table":"EX_GDBS_SPCL","SBLSH":"C1","XZQHDM":"430626","BJDTBM":"PJ","SPHJDM":"2","SPHJZTDM":"9","SPSJ":"2026-03-02 09:00:00"}"#,
            "unmapped_code",
            Some("SPHJZTDM"),
        ),
        (
            Format::Gb39046,
            r#"{"_table":"up_pro_accept","project_no":"C1","task_code":"P5","org_code":"BDC","apply_date":"2026-03-02 09:00:00","accept_date":"2026-03-02 09:10:00","apply_type":"7"}"#,
            "unmapped_code",
            Some("apply_type"),
        ),
        // no centre follows from anything
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_STEP_DONE","PROJID":"C1","ORGBUSNO":"R1","DONERESULT":"0","OCCURTIME":"2026-03-02 09:00:00"}"#,
            "unknown_center",
            None,
        ),
        // not a row
        (Format::Sdjc, r#"["EA_JC_STEP_DONE"]"#, "not_json", None),
        (
            Format::Gdbs,
            r#"{"_table":"EX_GDBS_LQDJ","SBLSH":"C1","BJDTBM":"PJ","LQSJ":{"t":1}}"#,
            "bad_value",
            Some("LQSJ"),
        ),
        (
            Format::Sdjc,
            r#"{"_table":"EA_JC_FEEINFO","PROJID":"C1","ORGBUSNO":"R1","ITEMNO":"P5","FEEORGID":"BDC","STATE":"1","FEETOTAL":"八十","PAYPERSON":"A1","PAYTIME":"2026-03-02 09:00:00"}"#,
            "bad_value",
            Some("FEETOTAL"),
        ),
    ];
    for (format, line, reason, column) in cases {
        let d = dead_letter(*format, line);
        assert_eq!(
            (d.reason, d.column.as_deref()),
            (*reason, *column),
            "{} {line}: {d}",
            format.as_str()
        );
        assert!(adapters::REASONS.contains(&d.reason));
        if let Some(c) = column {
            assert!(
                d.to_string().contains(c),
                "the message names the column: {d}"
            );
        }
    }
    // An unmapped code says which value and where to map it.
    let d = dead_letter(Format::Sdjc, cases[10].1);
    assert!(
        d.message.contains("\"9\"") && d.message.contains("[codes.DONERESULT]"),
        "{d}"
    );
}

/// `jiancha adapt | jiancha replay` as an operator runs it, and `jiancha lint`, `jiancha check`.
#[test]
fn the_commands_adapt_lint_and_check() {
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_jiancha");
    let refdir = dir().join("reference");
    let tmp = std::env::temp_dir().join(format!("jiancha-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let rows = tmp.join("rows.ndjson");
    // golden 111's fee as sdjc rows, with one bad row in the middle
    std::fs::write(
        &rows,
        concat!(
            r#"{"_table":"EA_JC_STEP_BASICINFO","PROJID":"C1","ORGBUSNO":"R1","DATAVER":1,"ITEMNO":"P5","ACCEPTDEPTID":"BDC","SUBMIT":"0","OCCURTIME":"2026-03-02 09:00:00"}"#, "\n",
            r#"{"_table":"EA_JC_STEP_DONE","PROJID":"C1","ORGBUSNO":"R1","DONERESULT":"x","OCCURTIME":"2026-03-02 09:10:00"}"#, "\n",
            r#"{"_table":"EA_JC_FEEINFO","PROJID":"C1","ORGBUSNO":"R1","SN":1,"BILLNUM":"R1","PAYPERSON":"A1","FEETOTAL":88,"PAYTIME":"2026-03-02 09:30:00","STATE":"1"}"#, "\n",
        ),
    )
    .expect("write");
    let adapt = Command::new(bin)
        .args(["adapt", "--format", "sdjc", "--source", "sdjc:pj"])
        .arg("--reference")
        .arg(&refdir)
        .arg(&rows)
        .output()
        .expect("adapt");
    assert!(adapt.status.success());
    let stderr = String::from_utf8_lossy(&adapt.stderr);
    assert!(
        stderr.contains("line 2: unmapped_code DONERESULT"),
        "{stderr}"
    );
    let events = String::from_utf8_lossy(&adapt.stdout).to_string();
    assert_eq!(events.lines().count(), 2, "{events}");
    assert!(events.lines().all(|l| l.contains(r#""source":"sdjc:pj""#)));
    let mut replay = Command::new(bin)
        .args([
            "replay",
            "--events",
            "-",
            "--until",
            "2026-03-06T00:00:00+08:00",
        ])
        .arg("--reference")
        .arg(&refdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("replay");
    use std::io::Write as _;
    replay
        .stdin
        .take()
        .expect("stdin")
        .write_all(events.as_bytes())
        .expect("pipe");
    let out = replay.wait_with_output().expect("replay");
    let alerts = String::from_utf8_lossy(&out.stdout);
    assert!(
        alerts.contains(r#""rule":"hall.fee_irregular""#),
        "{alerts}"
    );

    let lint = Command::new(bin)
        .args(["lint", "--format", "sdjc"])
        .arg("--reference")
        .arg(&refdir)
        .arg(&rows)
        .output()
        .expect("lint");
    assert_eq!(
        lint.status.code(),
        Some(1),
        "a sample with a bad row fails the lint"
    );
    let report = String::from_utf8_lossy(&lint.stdout);
    assert!(report.contains("3 lines, 2 clean"), "{report}");
    assert!(
        report.contains("unmapped_code (DONERESULT): 1 (lines 2)"),
        "{report}"
    );
    let sample = tmp.join("events.ndjson");
    std::fs::write(
        &sample,
        concat!(
            r#"{"event_id":"e1","kind":"case.accepted","occurred_at":"2026-03-02T09:00:00+08:00","center_id":"PJ","region":"430626","case_id":"C1","item_code":"P5","channel":"hall"}"#, "\n",
            r#"{"event_id":"e2","kind":"case.accepted","occurred_at":"2026-03-02T09:00:00+08:00","center_id":"PJ","region":"430626","case_id":"C2","item_code":"NOPE","channel":"hall"}"#, "\n",
            r#"{"event_id":"e3","kind":"case.teleported","occurred_at":"2026-03-02T09:00:00+08:00","center_id":"PJ","region":"430626"}"#, "\n",
        ),
    )
    .expect("write");
    let lint = Command::new(bin)
        .arg("lint")
        .arg("--events")
        .arg(&sample)
        .arg("--reference")
        .arg(&refdir)
        .output()
        .expect("lint");
    let report = String::from_utf8_lossy(&lint.stdout);
    assert_eq!(lint.status.code(), Some(1), "{report}");
    assert!(
        report.contains("unknown_item (item_code): 1 (lines 2)"),
        "{report}"
    );
    assert!(
        report.contains("unknown_kind (kind): 1 (lines 3)"),
        "{report}"
    );

    // check: a bad code table is refused with file:line: reason
    let bad = tmp.join("ref");
    std::fs::create_dir_all(bad.join("adapters")).expect("mkdir");
    for f in ["items.csv", "windows.csv", "staff.csv"] {
        std::fs::copy(refdir.join(f), bad.join(f)).expect("copy");
    }
    std::fs::write(
        bad.join("adapters/gdbs.toml"),
        "source = \"gdbs:pj\"\n[codes.SLZTDM]\n\"1\" = \"accepted\"\n\"5\" = \"approved\"\n",
    )
    .expect("write");
    let check = Command::new(bin)
        .arg("check")
        .arg("--reference")
        .arg(&bad)
        .output()
        .expect("check");
    let err = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(2), "{err}");
    assert!(
        err.contains("adapters/gdbs.toml:4: [codes.SLZTDM] \"5\" = \"approved\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `jiancha simulate --format F` feeds an adapter as an approval system's 前置库 would: no
/// dead letter, and the case and hall alerts the rows can carry equal the native run's (apart
/// from the window, which sdjc and gb39046 rows do not name).
#[test]
fn the_simulator_emits_every_format_and_the_adapters_take_it_back() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_jiancha");
    let tmp = std::env::temp_dir().join(format!("jiancha-sim-formats-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let refdir = tmp.join("ref");
    let simulate = |format: Option<&str>| -> (String, String) {
        let mut cmd = Command::new(bin);
        cmd.args([
            "simulate",
            "--start",
            "2026-03-02",
            "--days",
            "7",
            "--misconduct",
            "5",
        ])
        .arg("--reference-out")
        .arg(&refdir);
        if let Some(f) = format {
            cmd.args(["--format", f]);
        }
        let out = cmd.output().expect("simulate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (String::from_utf8_lossy(&out.stdout).to_string(), stderr)
    };
    let (native, said) = simulate(None);
    let until = said
        .split("--until ")
        .nth(1)
        .map(str::trim)
        .expect("the simulator names the end")
        .to_string();
    let loaded = ingest::reference_dir::load(&refdir, None).expect("simulated reference");
    // what every format carries: the case clocks and the hall checks on cases
    let carried = |a: &Value| {
        let rule = a["rule"].as_str().unwrap_or("");
        rule.starts_with("case.")
            || [
                "hall.accepted_outside_hall",
                "hall.back_office",
                "hall.batch_entry",
                "hall.missing_stages",
            ]
            .contains(&rule)
    };
    let keep = |alerts: Vec<Value>| -> Vec<String> {
        let mut v: Vec<String> = alerts
            .into_iter()
            .filter(|a| carried(a))
            .map(|mut a| {
                normalise(&mut a);
                // sdjc and gb39046 rows name no window (docs/ADAPTERS.md)
                fn strip_windows(v: &mut Value) {
                    match v {
                        Value::Object(m) => {
                            m.remove("window_id");
                            m.values_mut().for_each(strip_windows);
                        }
                        Value::Array(a) => a.iter_mut().for_each(strip_windows),
                        _ => {}
                    }
                }
                strip_windows(&mut a);
                // adapters name the case's item on every event of it (the case memory), the
                // simulator only where SPEC §3 requires it: hall.batch_entry, fired by a
                // completion, shows the completion's
                if let Value::Object(m) = &mut a {
                    m.remove("item_code");
                }
                a.to_string()
            })
            .collect();
        v.sort();
        v
    };
    let (alerts, _) = replay(&loaded, &native, Some(&until));
    let want = keep(alerts);
    assert!(
        want.len() > 50,
        "{} case and hall alerts natively",
        want.len()
    );
    for format in Format::ALL {
        let (rows, said) = simulate(Some(format.as_str()));
        assert!(said.contains("left out"), "{said}");
        let rows: Vec<(usize, String)> = rows.lines().map(str::to_string).enumerate().collect();
        let events = adapt(&loaded, format, &rows, None)
            .unwrap_or_else(|dead| panic!("{}: dead letters\n{dead}", format.as_str()));
        let (alerts, diag) = replay(&loaded, &events, Some(&until));
        assert!(diag.is_empty(), "{}: {diag}", format.as_str());
        let got = keep(alerts);
        assert_eq!(got.len(), want.len(), "{}", format.as_str());
        let first = got.iter().zip(&want).find(|(g, w)| g != w);
        assert!(
            first.is_none(),
            "{}: the case and hall alerts differ from the native run's: {first:#?}",
            format.as_str()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
